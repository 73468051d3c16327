//! `krew-wasm sign REF --key FILE` and `krew-wasm verify NAME|REF` with
//! `--key FILE` or a keyless identity (`--certificate-identity[-regexp]`,
//! `--certificate-oidc-issuer`, `--trusted-root`): cosign signatures of
//! plugin manifests, in the `sha256-<hex>.sig` tag form or as sigstore
//! bundles (verification only; `sign` writes the tag form).
//!
//! Keys, identities and the trusted root are read and checked before the
//! registry is contacted. `sign` reads cosign's encrypted `cosign.key` as
//! cosign does: the password is `COSIGN_PASSWORD`, else it is asked for on
//! the terminal (without echo), else signing is refused. `sign` signs the
//! image manifest a reference resolves to (after an image index, the wasm
//! entry: what `pull` installs and records in the receipt). `verify` exits 0 only when at least one
//! signature by a trusted signer names that exact digest; an unsigned
//! artifact is a failure.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueHint};
use krew_wasm_oci::signature::{
    self, CertificateIdentity, PrivateKey, PublicKey, SignatureError, SubjectMatcher, TrustedRoot,
    TrustedSigners, Verification,
};
use krew_wasm_oci::{PluginReference, RegistryClient};
use krew_wasm_store::Store;
use zeroize::Zeroizing;

use crate::cli::RegistryFlags;
use crate::commands::lock_store;
use crate::settings::store_root;
use crate::trust::{self, Check};

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The plugin to sign: registry/repository:tag or registry/repository@sha256:…
    #[arg(value_name = "REF")]
    pub reference: String,
    /// ECDSA P-256 private key: cosign's encrypted cosign.key (password from COSIGN_PASSWORD, else asked on the terminal), or PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`) PEM
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub key: PathBuf,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// An installed plugin's name (its source at the installed digest is
    /// checked), or a registry reference
    #[arg(value_name = "NAME|REF")]
    pub target: String,
    /// ECDSA P-256 public key, PEM (`BEGIN PUBLIC KEY`, as in cosign.pub)
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub keyless: KeylessFlags,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Keyless verification: who must have signed (cosign's flag names).
#[derive(Debug, Args, Clone, Default)]
pub struct KeylessFlags {
    /// Keyless: the signing certificate's subject (email or URI SAN), exactly
    #[arg(
        long,
        value_name = "SUBJECT",
        conflicts_with = "certificate_identity_regexp"
    )]
    pub certificate_identity: Option<String>,
    /// Keyless: a regular expression the certificate's subject must match (unanchored, as in cosign: use ^…$)
    #[arg(long, value_name = "REGEXP")]
    pub certificate_identity_regexp: Option<String>,
    /// Keyless: the OIDC issuer the signing certificate must name (e.g. https://token.actions.githubusercontent.com)
    #[arg(long, value_name = "URL")]
    pub certificate_oidc_issuer: Option<String>,
    /// Sigstore trusted root (trusted_root.json: Fulcio CAs, Rekor, CT log and TSA keys); nothing is fetched
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub trusted_root: Option<PathBuf>,
}

impl KeylessFlags {
    /// True when any keyless flag was given.
    pub(crate) fn any(&self) -> bool {
        self.certificate_identity.is_some()
            || self.certificate_identity_regexp.is_some()
            || self.certificate_oidc_issuer.is_some()
            || self.trusted_root.is_some()
    }
}

/// The signers a verification trusts: the key (`--key` / `--verify-key`,
/// named `key_flag` in messages) and the keyless identity, all read and
/// checked before anything else happens.
pub(crate) fn trusted_signers(
    key: Option<&Path>,
    key_flag: &str,
    keyless: &KeylessFlags,
) -> Result<TrustedSigners> {
    let mut signers = TrustedSigners::default();
    if let Some(path) = key {
        signers.keys.push(load_public_key(path)?);
    }
    let subject = match (
        &keyless.certificate_identity,
        &keyless.certificate_identity_regexp,
    ) {
        (Some(exact), None) => Some(SubjectMatcher::Exact(exact.clone())),
        (None, Some(pattern)) => Some(SubjectMatcher::regex(pattern)?),
        (Some(_), Some(_)) => {
            bail!("give either --certificate-identity or --certificate-identity-regexp, not both")
        }
        (None, None) => None,
    };
    match (subject, &keyless.certificate_oidc_issuer) {
        (Some(subject), Some(issuer)) => signers.identities.push(CertificateIdentity {
            subject,
            issuer: issuer.clone(),
        }),
        (Some(_), None) => bail!(
            "a certificate identity needs the OIDC issuer that vouched for it: add \
             --certificate-oidc-issuer URL (e.g. https://token.actions.githubusercontent.com \
             for GitHub Actions, https://accounts.google.com for Google accounts)"
        ),
        (None, Some(_)) => bail!(
            "--certificate-oidc-issuer needs the signer's identity: add \
             --certificate-identity SUBJECT or --certificate-identity-regexp REGEXP"
        ),
        (None, None) => {}
    }
    if let Some(path) = &keyless.trusted_root {
        signers.trusted_root = Some(TrustedRoot::from_file(path)?);
    }
    if signers.is_empty() {
        bail!(
            "nothing to verify against: give a public key ({key_flag} cosign.pub) or a keyless \
             signer (--certificate-identity SUBJECT --certificate-oidc-issuer URL \
             --trusted-root trusted_root.json)"
        );
    }
    signers.check()?;
    Ok(signers)
}

fn read_key_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading key {}", path.display()))
}

/// Reads a public key file (for `verify` and `pull --verify-key`).
pub(crate) fn load_public_key(path: &Path) -> Result<PublicKey> {
    Ok(PublicKey::from_pem(
        &read_key_file(path)?,
        &path.display().to_string(),
    )?)
}

/// The environment variable cosign reads a key's password from.
const PASSWORD_ENV: &str = "COSIGN_PASSWORD";

/// Reads the signing key. cosign's encrypted key is decrypted with
/// `COSIGN_PASSWORD` when it is set (even empty: an empty password is one),
/// else with a password asked for on the terminal; without a terminal it is
/// refused. The file's text and the password are wiped once read.
async fn load_private_key(path: &Path) -> Result<PrivateKey> {
    let text = Zeroizing::new(read_key_file(path)?);
    let what = path.display().to_string();
    match PrivateKey::from_pem(&text, &what) {
        Err(SignatureError::PasswordNeeded { .. }) => {}
        other => return Ok(other?),
    }
    let (password, source) = match std::env::var_os(PASSWORD_ENV) {
        Some(value) => (env_password(value)?, "it came from COSIGN_PASSWORD"),
        None if std::io::stdin().is_terminal() => {
            (prompt_password().await?, "it was the one typed")
        }
        None => bail!(
            "{what} is an encrypted cosign key and needs its password: set {PASSWORD_ENV} (as \
             for cosign; an empty value is an empty password), or run krew-wasm sign on a \
             terminal to be asked for it"
        ),
    };
    PrivateKey::from_pem_with_password(&text, &what, Some(&password)).map_err(|e| match e {
        SignatureError::WrongPassword { .. } => anyhow!("{e}; {source}"),
        e => e.into(),
    })
}

/// `COSIGN_PASSWORD`'s bytes, as cosign takes them.
fn env_password(value: std::ffi::OsString) -> Result<Zeroizing<Vec<u8>>> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt as _;
        Ok(Zeroizing::new(value.into_vec()))
    }
    #[cfg(not(unix))]
    {
        value
            .into_string()
            .map(|v| Zeroizing::new(v.into_bytes()))
            .map_err(|_| anyhow!("{PASSWORD_ENV} is not valid Unicode"))
    }
}

/// Asks for the password on the terminal (stdin), echo off, as cosign does.
/// The line is read on a blocking thread so Ctrl-C still ends the command;
/// the echo comes back when this future ends or is dropped.
#[cfg(unix)]
async fn prompt_password() -> Result<Zeroizing<Vec<u8>>> {
    use rustix::termios::{self, LocalModes, OptionalActions, Termios};
    use std::io::{BufRead as _, Write as _};

    struct EchoOff(Termios);
    impl Drop for EchoOff {
        fn drop(&mut self) {
            // Nothing to do if it fails: the terminal is gone.
            let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.0);
        }
    }
    let original =
        termios::tcgetattr(std::io::stdin()).context("reading the terminal's settings")?;
    let mut quiet = original.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &quiet)
        .context("turning the terminal's echo off")?;
    let echo_off = EchoOff(original);
    eprint!("Enter password for private key: ");
    std::io::stderr().flush()?;
    let read = tokio::task::spawn_blocking(|| {
        let mut line = Zeroizing::new(Vec::new());
        std::io::stdin()
            .lock()
            .read_until(b'\n', &mut line)
            .map(|n| (n, line))
    })
    .await?;
    drop(echo_off);
    eprintln!();
    let (n, mut line) = read.context("reading the password from the terminal")?;
    if n == 0 {
        bail!("no password was entered (end of input)");
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

#[cfg(not(unix))]
async fn prompt_password() -> Result<Zeroizing<Vec<u8>>> {
    bail!(
        "krew-wasm asks for a key's password only on Unix terminals; set {PASSWORD_ENV} \
         (an empty value is an empty password)"
    )
}

pub async fn sign(args: SignArgs) -> Result<()> {
    let key = load_private_key(&args.key).await?;
    let reference = PluginReference::parse(&args.reference)?;
    let mut client = RegistryClient::new(&reference, &args.registry.to_options())?;
    let resolved = client.resolve(&reference).await?;
    let digest = resolved.manifest_digest;
    let payload =
        signature::simple_signing_payload(&signature::docker_reference(&reference), &digest);
    let signature = key.sign(&payload);
    let pushed = client
        .push_signature(&reference, &digest, &payload, &signature)
        .await?;
    let fingerprint = key.public_key().fingerprint();
    if pushed.already_present {
        eprintln!(
            "{} already holds this signature; nothing was pushed",
            pushed.tag_reference
        );
    } else {
        eprintln!(
            "stored as {} ({} signature(s) there now)",
            pushed.tag_reference, pushed.signatures
        );
    }
    println!(
        "signed {}@{digest} with key {fingerprint}",
        signature::docker_reference(&reference)
    );
    Ok(())
}

/// Verifies the signatures (both forms) of `digest` in `reference`'s
/// repository against `signers`.
pub(crate) async fn verify_digest(
    client: &mut RegistryClient,
    reference: &PluginReference,
    digest: &str,
    signers: &TrustedSigners,
) -> Result<Verification> {
    Ok(client.verify_manifest(reference, digest, signers).await?)
}

/// What `pull`'s signature flags (`--verify-key`, the keyless flags) ask
/// for, read and checked before the registry is contacted; none without
/// flags.
pub(crate) fn flag_check(key: Option<&Path>, keyless: &KeylessFlags) -> Result<Option<Check>> {
    if key.is_none() && !keyless.any() {
        return Ok(None);
    }
    let signers = trusted_signers(key, "--verify-key", keyless)?;
    let flag = if key.is_some() {
        "--verify-key"
    } else if keyless.certificate_identity_regexp.is_some() {
        "--certificate-identity-regexp"
    } else {
        "--certificate-identity"
    };
    Ok(Some(Check {
        required_by: flag.to_string(),
        signers,
    }))
}

pub async fn verify(args: VerifyArgs) -> Result<()> {
    // Flags name the signers; without them, the trust policy's rule for
    // the plugin's repository does. Either is read before the registry is
    // contacted.
    let flag_check = if args.key.is_some() || args.keyless.any() {
        let flag = if args.key.is_some() {
            "--key"
        } else {
            "--certificate-identity"
        };
        Some(Check {
            required_by: format!("krew-wasm verify {flag}"),
            signers: trusted_signers(args.key.as_deref(), "--key", &args.keyless)?,
        })
    } else {
        None
    };
    let store = Store::new(store_root()?);
    let installed = !args.target.contains('/');
    let (reference, digest) = if installed {
        let receipt = store.receipt(&args.target)?;
        let reference = PluginReference::parse(&receipt.source)
            .with_context(|| format!("the receipt of {} names its source", receipt.name))?;
        (reference, receipt.manifest_digest)
    } else {
        let reference = PluginReference::parse(&args.target)?;
        let mut client = RegistryClient::new(&reference, &args.registry.to_options())?;
        let digest = client.resolve(&reference).await?.manifest_digest;
        (reference, digest)
    };
    let check = match flag_check {
        Some(check) => check,
        None => policy_check(&reference)?,
    };
    let mut client = RegistryClient::new(&reference, &args.registry.to_options())?;
    let verified = verify_digest(&mut client, &reference, &digest, &check.signers)
        .await
        .with_context(|| format!("{} requires a signature", check.required_by))?;
    println!(
        "verified {}@{}: signed by {} ({}; {} signature(s) on the registry)",
        signature::docker_reference(&reference),
        verified.manifest_digest,
        verified.signer,
        verified.form,
        verified.signatures
    );
    if installed {
        // What passed is what starting the plugin checks under a policy.
        let lock = lock_store(&store).await?;
        store.record_signature(
            &lock,
            &args.target,
            &digest,
            trust::record(&verified, &check.required_by),
        )?;
        eprintln!("recorded in the receipt of {}", args.target);
    }
    Ok(())
}

/// The trust policy's check for `reference`, when `verify` got no flags.
fn policy_check(reference: &PluginReference) -> Result<Check> {
    let policy = trust::load_policy()?;
    let repository = signature::docker_reference(reference);
    let checks = trust::checks_for(policy.as_ref(), reference, None)?;
    match (checks.into_iter().next(), policy) {
        (Some(check), _) => Ok(check),
        (None, policy) => bail!(
            "nothing to verify against: give a public key (--key cosign.pub) or a keyless signer \
             (--certificate-identity SUBJECT --certificate-oidc-issuer URL --trusted-root FILE); {}",
            match policy {
                Some(policy) => format!(
                    "the trust policy {} requires no signature for {repository}",
                    policy.file()
                ),
                None => "there is no trust policy to take them from".to_string(),
            }
        ),
    }
}
