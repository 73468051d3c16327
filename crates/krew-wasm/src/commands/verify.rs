//! `krew-wasm sign REF --key FILE` and `krew-wasm verify NAME|REF --key FILE`:
//! cosign key-based signatures (the `sha256-<hex>.sig` tag form) of plugin
//! manifests.
//!
//! The key is read and checked before the registry is contacted. `sign`
//! signs the image manifest a reference resolves to (after an image index,
//! the wasm entry: what `pull` installs and records in the receipt). `verify`
//! exits 0 only when at least one signature by the key names that exact
//! digest; an unsigned artifact is a failure.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueHint};
use krew_wasm_oci::signature::{self, PrivateKey, PublicKey};
use krew_wasm_oci::{PluginReference, RegistryClient, RegistryOptions, ResolvedPlugin};
use krew_wasm_store::Store;

use crate::cli::RegistryFlags;
use crate::settings::store_root;

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The plugin to sign: registry/repository:tag or registry/repository@sha256:…
    #[arg(value_name = "REF")]
    pub reference: String,
    /// ECDSA P-256 private key, PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`) PEM
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
    pub key: PathBuf,
    #[command(flatten)]
    pub registry: RegistryFlags,
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

pub async fn sign(args: SignArgs) -> Result<()> {
    let key = PrivateKey::from_pem(&read_key_file(&args.key)?, &args.key.display().to_string())?;
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

/// Verifies the signatures of `digest` in `reference`'s repository by `key`.
pub(crate) async fn verify_digest(
    client: &mut RegistryClient,
    reference: &PluginReference,
    digest: &str,
    key: &PublicKey,
) -> Result<signature::VerifiedSignature> {
    let shown = format!("{}@{digest}", signature::docker_reference(reference));
    let layers = client
        .fetch_signatures(reference, digest)
        .await
        .with_context(|| format!("fetching the signatures of {shown}"))?;
    Ok(signature::verify_signatures(&shown, &layers, key, digest)?)
}

/// `pull --verify-key`: resolves `reference` and refuses it, before anything
/// is downloaded or written, unless a signature by the key names the
/// manifest digest it resolved to.
pub(crate) async fn resolve_verified(
    reference: &PluginReference,
    options: &RegistryOptions,
    key_path: &Path,
) -> Result<(RegistryClient, ResolvedPlugin)> {
    let key = load_public_key(key_path)?;
    let mut client = RegistryClient::new(reference, options)?;
    let resolved = client.resolve(reference).await?;
    let verified = verify_digest(&mut client, reference, &resolved.manifest_digest, &key)
        .await
        .context("--verify-key: nothing was installed")?;
    eprintln!(
        "signature verified: {}@{} is signed by key {}",
        signature::docker_reference(reference),
        verified.manifest_digest,
        verified.key_fingerprint
    );
    Ok((client, resolved))
}

pub async fn verify(args: VerifyArgs) -> Result<()> {
    let key = load_public_key(&args.key)?;
    let (reference, digest) = if args.target.contains('/') {
        let reference = PluginReference::parse(&args.target)?;
        let mut client = RegistryClient::new(&reference, &args.registry.to_options())?;
        let digest = client.resolve(&reference).await?.manifest_digest;
        (reference, digest)
    } else {
        let store = Store::new(store_root()?);
        let receipt = store.receipt(&args.target)?;
        let reference = PluginReference::parse(&receipt.source)
            .with_context(|| format!("the receipt of {} names its source", receipt.name))?;
        (reference, receipt.manifest_digest)
    };
    let mut client = RegistryClient::new(&reference, &args.registry.to_options())?;
    let verified = verify_digest(&mut client, &reference, &digest, &key).await?;
    println!(
        "verified {}@{}: signed by key {} ({} signature(s) on the registry)",
        signature::docker_reference(&reference),
        verified.manifest_digest,
        verified.key_fingerprint,
        verified.signatures
    );
    Ok(())
}
