//! Consent: what a plugin gets of what it asks for, decided at install (and
//! again when an upgrade asks for more).
//!
//! Nothing a plugin declares is granted silently. On a terminal the user is
//! shown each permission in words and asked; in a script every requested
//! permission must be answered in advance with `--yes`, `--grant` or
//! `--deny`, else the install is refused before anything is written.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::{Result, bail};
use krew_wasm_permissions::{Deny, Permission, Permissions};

use crate::cli::ConsentFlags;

/// The plugin's request and what the user said in advance.
pub struct Request<'a> {
    /// The plugin, for messages.
    pub name: &'a str,
    /// What the plugin being installed declares.
    pub declared: &'a Permissions,
    /// The installed version's declaration and grants, when this replaces it.
    pub previous: Option<(&'a Permissions, &'a Permissions)>,
    pub flags: &'a ConsentFlags,
}

/// Decides the grants of an install. Asks on a terminal (the question is
/// answered on a blocking thread so Ctrl-C still ends the command); refuses
/// in a script when something is left unanswered.
pub async fn decide(request: Request<'_>) -> Result<Permissions> {
    let deny = deny_list(&request.flags.deny)?;
    let mut granted = carried_over(request.declared, request.previous);
    for permission in &request.flags.grant {
        granted.insert(permission.clone());
    }
    if request.flags.yes {
        granted = granted.union(request.declared);
    }
    let undecided = request.declared.not_covered_by(&granted).narrowed(&deny);
    if !undecided.is_empty() {
        let asked_again = request.previous.is_some();
        if !interactive() {
            bail!(
                "{}\nNothing was installed. To install it from a script, answer in advance: \
                 --yes grants all of it, --grant PERMISSION grants one, --deny PERMISSION (or \
                 --deny all) installs without it.",
                describe_request(request.name, &undecided, asked_again)
            );
        }
        let text = describe_request(request.name, &undecided, asked_again);
        let answer = tokio::task::spawn_blocking(move || ask(&text)).await??;
        if !answer {
            bail!(
                "permissions not granted; nothing was installed (use --deny PERMISSION to install without some of them)"
            );
        }
        granted = granted.union(&undecided);
    }
    let refused = request.declared.not_covered_by(&granted);
    for permission in refused.iter() {
        eprintln!(
            "not granted: {permission} ({}); grant it later with `krew-wasm grant {} {permission}`",
            permission.describe(),
            request.name
        );
    }
    Ok(granted)
}

/// What an upgrade keeps of the grants: those the new version still asks
/// for, and those the user gave beyond what the old one asked for. A grant
/// the plugin no longer wants is dropped.
fn carried_over(
    declared: &Permissions,
    previous: Option<(&Permissions, &Permissions)>,
) -> Permissions {
    let mut kept = Permissions::none();
    if let Some((previously_declared, previously_granted)) = previous {
        for permission in previously_granted.iter() {
            if declared.covers(&permission) || !previously_declared.covers(&permission) {
                kept.insert(permission);
            }
        }
    }
    kept
}

/// `--deny` values: `all`, or permissions.
pub fn deny_list(values: &[String]) -> Result<Deny> {
    if values.iter().any(|v| v == "all") {
        return Ok(Deny::All);
    }
    Ok(Deny::parse(&values.join(","))?)
}

/// The request in words, one permission per line.
pub fn describe_request(name: &str, permissions: &Permissions, again: bool) -> String {
    let mut text = if again {
        format!("This version of plugin `{name}` asks for more than you granted before:")
    } else {
        format!("Plugin `{name}` asks for permission to:")
    };
    for permission in permissions.iter() {
        text.push_str(&format!("\n  - {}  [{permission}]", permission.describe()));
    }
    text
}

/// Lines for `info`: each permission, in words.
pub fn describe_lines(permissions: &Permissions) -> String {
    if permissions.is_empty() {
        return "none beyond the defaults".into();
    }
    permissions
        .iter()
        .iter()
        .map(|p: &Permission| format!("{p} ({})", p.describe()))
        .collect::<Vec<_>>()
        .join("\n                 ")
}

fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

fn ask(question: &str) -> Result<bool> {
    let mut stderr = std::io::stderr().lock();
    write!(stderr, "{question}\nGrant these permissions? [y/N] ")?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}
