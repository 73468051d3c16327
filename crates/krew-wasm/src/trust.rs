//! Signature requirements: the trust policy file and the verify flags,
//! applied where plugins come in (`pull`, `upgrade`, `import`, `run REF`,
//! `verify`) and where they start (every run of an installed plugin).
//!
//! Installing checks signatures on the registry and records what passed in
//! the receipt. Starting an installed plugin never goes to the network: it
//! checks that the receipt's records satisfy the policy as it is now, so a
//! rule added after an install applies to plugins already installed (and
//! `krew-wasm verify NAME` records the check that satisfies it).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use krew_wasm_oci::PluginReference;
use krew_wasm_oci::RegistryClient;
use krew_wasm_oci::signature::{
    self, CertificateIdentity, PublicKey, SubjectMatcher, TrustedRoot, TrustedSigners, Verification,
};
use krew_wasm_policy::{Decision, Policy, Signers, Subject};
use krew_wasm_store::{Receipt, SignatureRecord, source_repository};

use crate::commands::now_rfc3339;

/// `KREW_WASM_POLICY`, else `$KREW_WASM_ROOT/policy.yaml`.
pub fn policy_path() -> Result<(PathBuf, bool)> {
    match std::env::var_os("KREW_WASM_POLICY").filter(|p| !p.is_empty()) {
        Some(path) => Ok((PathBuf::from(path), true)),
        None => Ok((
            crate::settings::store_root()?.join(krew_wasm_policy::FILE_NAME),
            false,
        )),
    }
}

/// The trust policy in force, if any. A policy named by `KREW_WASM_POLICY`
/// must exist; the default file is optional.
pub fn load_policy() -> Result<Option<Policy>> {
    let (path, explicit) = policy_path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "reading the trust policy {}{}",
                    path.display(),
                    if explicit { " (KREW_WASM_POLICY)" } else { "" }
                )
            });
        }
    };
    Ok(Some(read_policy(&text, &path)?))
}

/// Parses the policy at `path` (for `policy check` too).
pub fn read_policy(text: &str, path: &Path) -> Result<Policy> {
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(Policy::parse(text, &path.display().to_string(), base)?)
}

/// One signature check an install or run must pass.
pub struct Check {
    /// What asks for it: `policy rule `…` (FILE:LINE)` or `--verify-key`.
    pub required_by: String,
    pub signers: TrustedSigners,
}

/// Everything that must pass before a plugin from `reference` comes in:
/// the policy's rule for its repository, plus `extra` (from flags).
pub fn checks_for(
    policy: Option<&Policy>,
    reference: &PluginReference,
    extra: Option<Check>,
) -> Result<Vec<Check>> {
    let mut checks = Vec::new();
    if let Some(policy) = policy {
        let repository = signature::docker_reference(reference);
        match policy.decide(&repository) {
            Decision::Refuse => bail!(refused_unmatched(policy, &repository)),
            Decision::Allow(_) => {}
            Decision::Require(rule, signers) => {
                let required_by = policy.describe(rule);
                let signers = load_signers(signers)
                    .with_context(|| format!("the trust policy's {required_by}"))?;
                checks.push(Check {
                    required_by,
                    signers,
                });
            }
        }
    }
    checks.extend(extra);
    Ok(checks)
}

fn refused_unmatched(policy: &Policy, repository: &str) -> String {
    let registry = repository.split('/').next().unwrap_or(repository);
    format!(
        "the trust policy {} has no rule for {repository}, and refuses what no rule covers; \
         add a rule (e.g. `- match: {registry}` with `keys: [...]`, or `allowUnsigned: true`), \
         or set `unmatched: allow`",
        policy.file()
    )
}

/// Reads the key files and trusted root a rule names.
pub fn load_signers(signers: &Signers) -> Result<TrustedSigners> {
    let keys = signers
        .keys
        .iter()
        .map(|path| load_key(path))
        .collect::<Result<Vec<_>>>()?;
    let trusted_root = match &signers.trusted_root {
        Some(path) => Some(TrustedRoot::from_file(path)?),
        None => None,
    };
    let identities = signers
        .identities
        .iter()
        .map(|identity| {
            let subject = match &identity.subject {
                Subject::Exact(subject) => SubjectMatcher::Exact(subject.clone()),
                // Anchored, as the policy documents (cosign's flag is not):
                // the run-time check of the receipt matches the same way.
                Subject::Regexp(pattern) => SubjectMatcher::regex(&format!("^(?:{pattern})$"))?,
            };
            Ok(CertificateIdentity {
                subject,
                issuer: identity.issuer.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TrustedSigners {
        keys,
        identities,
        trusted_root,
    })
}

fn load_key(path: &Path) -> Result<PublicKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading public key {}", path.display()))?;
    Ok(PublicKey::from_pem(&text, &path.display().to_string())?)
}

/// Runs every check against the registry; the records of what passed, for
/// the receipt. The first failure ends it, saying what required the check.
pub async fn verify_all(
    client: &mut RegistryClient,
    reference: &PluginReference,
    manifest_digest: &str,
    checks: &[Check],
) -> Result<Vec<SignatureRecord>> {
    let mut records = Vec::with_capacity(checks.len());
    for check in checks {
        let verification = client
            .verify_manifest(reference, manifest_digest, &check.signers)
            .await
            .with_context(|| format!("{} requires a signature", check.required_by))?;
        eprintln!(
            "signature verified: {}@{} is signed by {} ({}); required by {}",
            signature::docker_reference(reference),
            manifest_digest,
            verification.signer,
            verification.form,
            check.required_by
        );
        records.push(record(&verification, &check.required_by));
    }
    Ok(records)
}

/// The receipt's record of a verification.
pub fn record(verification: &Verification, required_by: &str) -> SignatureRecord {
    use krew_wasm_oci::signature::Signer;
    let (key_fingerprint, subject, issuer) = match &verification.signer {
        Signer::Key { fingerprint } => (Some(fingerprint.clone()), None, None),
        Signer::Identity { subject, issuer } => (None, Some(subject.clone()), Some(issuer.clone())),
    };
    SignatureRecord {
        key_fingerprint,
        subject,
        issuer,
        form: verification.form.to_string(),
        required_by: required_by.to_string(),
        verified_at: now_rfc3339(),
    }
}

/// Before an installed plugin starts: its receipt must satisfy the policy
/// as it is now. No policy file costs one failed open.
pub fn check_installed(receipt: &Receipt) -> Result<()> {
    let Some(policy) = load_policy()? else {
        return Ok(());
    };
    let repository = source_repository(&receipt.source);
    match policy.decide(repository) {
        Decision::Allow(_) => Ok(()),
        Decision::Refuse => bail!(
            "{}\n`{}` was not started; remove it with `krew-wasm rm {}`, or change the policy",
            refused_unmatched(&policy, repository),
            receipt.name,
            receipt.name
        ),
        Decision::Require(rule, signers) => {
            if satisfies(&receipt.signatures, signers)? {
                return Ok(());
            }
            let recorded = if receipt.signatures.is_empty() {
                "its receipt records no signature check".to_string()
            } else {
                format!(
                    "its receipt records signatures by {} only",
                    receipt
                        .signatures
                        .iter()
                        .map(SignatureRecord::signer)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            bail!(
                "the trust policy's {} requires plugins from {repository} to be signed by {}; \
                 {recorded}. `{}` was not started: check its signature with \
                 `krew-wasm verify {}` (which records the result), or remove it",
                policy.describe(rule),
                describe_signers(signers),
                receipt.name,
                receipt.name
            )
        }
    }
}

/// True when one of `records` names a signer of `signers`: a key with the
/// same fingerprint, or a certificate identity the rule accepts.
fn satisfies(records: &[SignatureRecord], signers: &Signers) -> Result<bool> {
    if records.is_empty() {
        return Ok(false);
    }
    let by_identity = records
        .iter()
        .any(|record| match (&record.subject, &record.issuer) {
            (Some(subject), Some(issuer)) => signers
                .identities
                .iter()
                .any(|identity| identity.matches(subject, issuer)),
            _ => false,
        });
    if by_identity {
        return Ok(true);
    }
    if !records.iter().any(|r| r.key_fingerprint.is_some()) {
        return Ok(false);
    }
    for path in &signers.keys {
        let fingerprint = load_key(path)?.fingerprint();
        if records
            .iter()
            .any(|r| r.key_fingerprint.as_deref() == Some(fingerprint.as_str()))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `key PATH or SUBJECT (issuer ISSUER) or …`.
pub fn describe_signers(signers: &Signers) -> String {
    let mut names: Vec<String> = signers
        .keys
        .iter()
        .map(|key| format!("key {}", key.display()))
        .collect();
    names.extend(signers.identities.iter().map(ToString::to_string));
    names.join(" or ")
}
