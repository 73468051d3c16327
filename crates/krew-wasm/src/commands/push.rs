//! `krew-wasm push FILE.wasm REF`: a plugin uploaded as a CNCF Wasm OCI
//! artifact, ready for `krew-wasm pull`.
//!
//! Everything that can be refused without the network is checked first (the
//! reference's tag, the wasm magic and sections, the permission declaration,
//! the annotations); only then is the registry contacted. stdout gets the
//! manifest digest alone, so scripts can capture it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result};
use clap::{Args, ValueHint};
use krew_wasm_oci::push::{self, PushArtifact, PushMetadata};
use krew_wasm_oci::{RegistryClient, WasmOs};

use crate::output::{download_bar, human_size, short_digest};

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The plugin: a WebAssembly component (wasip2) or core module (wasip1)
    #[arg(value_name = "FILE.wasm", value_hint = ValueHint::FilePath)]
    pub file: PathBuf,
    /// Where to push: registry/repository:tag (the tag is required), optionally prefixed by oci://
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Short description of the plugin (annotation org.opencontainers.image.description)
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// URL of the plugin's source code (org.opencontainers.image.source)
    #[arg(long, value_name = "URL")]
    pub source: Option<String>,
    /// Version of the plugin (org.opencontainers.image.version)
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// SPDX license expression (org.opencontainers.image.licenses)
    #[arg(long, value_name = "SPDX")]
    pub licenses: Option<String>,
    /// Publish this permission declaration instead of the one in the binary's
    /// `krew-wasm.permissions` section
    #[arg(long, value_name = "FILE.json", value_hint = ValueHint::FilePath)]
    pub permissions: Option<PathBuf>,
    /// Another manifest annotation; repeatable
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    #[command(flatten)]
    pub registry: crate::cli::RegistryFlags,
}

pub async fn push(args: PushArgs) -> Result<()> {
    let reference = push::push_reference(&args.reference)?;
    let annotations = args
        .annotations
        .iter()
        .map(|a| push::parse_annotation(a))
        .collect::<Result<Vec<_>, _>>()?;
    let file = args.file.display().to_string();
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("reading {file}"))?
        .len();
    push::check_size(size).with_context(|| format!("{file} is too large"))?;
    let wasm = std::fs::read(&args.file).with_context(|| format!("reading {file}"))?;
    // Not wasm at all (or cut short) is the first thing to say.
    push::inspect_wasm(&wasm).with_context(|| file.clone())?;
    // The declaration to publish: read and checked now, so a mistake in it
    // stops the push before anything reaches the registry.
    let declaration = match &args.permissions {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("reading --permissions {}", path.display()))?,
        ),
        None => None,
    };
    let permissions =
        push::plugin_permissions(&wasm, declaration.as_deref()).with_context(|| {
            match &args.permissions {
                Some(path) => format!("--permissions {}", path.display()),
                None => format!("{file}: the `krew-wasm.permissions` section"),
            }
        })?;
    let metadata = PushMetadata {
        description: args.description,
        source: args.source,
        version: args.version,
        licenses: args.licenses,
        annotations,
        created: SystemTime::now(),
        permissions,
    };
    // The binary was checked above: what is left to refuse is the annotations.
    let artifact = PushArtifact::build(wasm, &metadata)?;

    let mut client = RegistryClient::new(&reference, &args.registry.to_options())?;
    let label = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.clone());
    let bar = download_bar(artifact.wasm.len() as u64, &label);
    let progress = bar.clone();
    let digest = client
        .push(&reference, &artifact, move |n| progress.set_position(n))
        .await;
    bar.finish_and_clear();
    let digest = digest?;
    if std::io::stderr().is_terminal() {
        eprintln!(
            "pushed {reference} ({}, {}, layer {}); install it with `krew-wasm pull {reference}`",
            match artifact.info.os {
                WasmOs::Wasip1 => "wasip1 module",
                WasmOs::Wasip2 => "wasip2 component",
            },
            human_size(artifact.wasm.len() as u64),
            short_digest(&artifact.layer_digest),
        );
    }
    println!("{digest}");
    Ok(())
}
