//! `krew-wasm policy [REF] [--file FILE]`: checks the trust policy and shows
//! its rules, or the rule that covers one reference and what it requires.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueHint};
use krew_wasm_oci::PluginReference;
use krew_wasm_policy::{Decision, Policy, Requirement, Rule, Unmatched};

use crate::trust;

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// A registry reference: show the rule that covers it
    #[arg(value_name = "REF")]
    pub reference: Option<String>,
    /// Check this file instead of the policy in force
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub file: Option<PathBuf>,
}

pub fn policy(args: PolicyArgs) -> Result<()> {
    let policy = match &args.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            trust::read_policy(&text, path)?
        }
        None => match trust::load_policy()? {
            Some(policy) => policy,
            None => {
                let (path, _) = trust::policy_path()?;
                println!(
                    "no trust policy ({} does not exist): no signature is required, except by \
                     flags such as `pull --verify-key`",
                    path.display()
                );
                return Ok(());
            }
        },
    };
    // The files a rule names must be readable keys and roots, or every pull
    // it covers would fail: say so now.
    for rule in policy.rules() {
        if let Requirement::SignedBy(signers) = &rule.requirement {
            trust::load_signers(signers).with_context(|| policy.describe(rule))?;
        }
    }
    match &args.reference {
        Some(reference) => explain(&policy, reference),
        None => {
            show(&policy);
            Ok(())
        }
    }
}

fn show(policy: &Policy) {
    println!("{}: valid, {} rule(s)", policy.file(), policy.rules().len());
    for rule in policy.rules() {
        println!("  {:<40} {}", rule.prefix, requirement(rule));
    }
    println!(
        "  {:<40} {}",
        "(anything else)",
        match policy.unmatched() {
            Unmatched::Refuse => "refused",
            Unmatched::Allow => "no signature required",
        }
    );
}

fn explain(policy: &Policy, reference: &str) -> Result<()> {
    let reference = PluginReference::parse(reference)?;
    let repository = krew_wasm_oci::signature::docker_reference(&reference);
    match policy.decide(&repository) {
        Decision::Require(rule, _) | Decision::Allow(Some(rule)) => {
            println!(
                "{repository}: {}: {}",
                policy.describe(rule),
                requirement(rule)
            );
            Ok(())
        }
        Decision::Allow(None) => {
            println!("{repository}: no rule matches; `unmatched: allow`: no signature required");
            Ok(())
        }
        Decision::Refuse => bail!(
            "{repository}: no rule of {} matches, and it refuses what no rule covers",
            policy.file()
        ),
    }
}

fn requirement(rule: &Rule) -> String {
    match &rule.requirement {
        Requirement::AllowUnsigned => "no signature required".into(),
        Requirement::SignedBy(signers) => {
            format!("signed by {}", trust::describe_signers(signers))
        }
    }
}
