//! The subcommands of the CLI.

use std::ffi::OsString;
use std::io::BufWriter;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{CommandFactory, Parser};
use krew_wasm_oci::{PluginReference, RegistryClient, RegistryOptions, ResolvedPlugin};
use krew_wasm_permissions::{Permission, Permissions};
use krew_wasm_runtime::{Runtime, WasmKind};
use krew_wasm_store::{
    Install, Installed, PluginKind, PluginName, RECEIPT_VERSION, Receipt, SignatureRecord, Store,
    StoreError, StoreLock, sha256_digest, source_repository,
};
use serde::Serialize;

use crate::cli::{
    Cli, Command, ConsentFlags, GrantArgs, InfoArgs, ListArgs, OutputFormat, PullArgs, RevokeArgs,
    RmArgs, RunArgs,
};
use crate::output::{download_bar, human_size, print_table, short_digest, spinner};
use crate::settings::{RunEnv, path_hint, store_root};
use crate::{consent, launch, trust};

pub(crate) mod index;
mod lifecycle;
pub(crate) mod policy;
pub(crate) mod push;
mod scaffold;
pub(crate) mod verify;

/// Exit code after Ctrl-C, as shells report SIGINT.
const INTERRUPTED_EXIT_CODE: u8 = 130;

pub fn main(argv: Vec<OsString>) -> ExitCode {
    let cli = Cli::parse_from(argv);
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) if err.is::<Interrupted>() => {
            eprintln!("{err}");
            ExitCode::from(INTERRUPTED_EXIT_CODE)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Pull(args) => block_on_interruptible(pull(args)).map(|()| ExitCode::SUCCESS),
        Command::Upgrade(args) => {
            block_on_interruptible(lifecycle::upgrade(args)).map(|()| ExitCode::SUCCESS)
        }
        Command::Outdated(args) => {
            block_on_interruptible(lifecycle::outdated(args)).map(|()| ExitCode::SUCCESS)
        }
        Command::Rollback(args) => {
            block_on_interruptible(lifecycle::rollback(args)).map(|()| ExitCode::SUCCESS)
        }
        Command::Export(args) => lifecycle::export(args).map(|()| ExitCode::SUCCESS),
        Command::Import(args) => {
            block_on_interruptible(lifecycle::import(args)).map(|()| ExitCode::SUCCESS)
        }
        Command::List(args) => list(args).map(|()| ExitCode::SUCCESS),
        Command::Rm(args) => rm(args).map(|()| ExitCode::SUCCESS),
        Command::Info(args) => info(args).map(|()| ExitCode::SUCCESS),
        Command::Run(args) => run(args),
        Command::New(args) => scaffold::new(args).map(|()| ExitCode::SUCCESS),
        Command::Push(args) => block_on_interruptible(push::push(args)).map(|()| ExitCode::SUCCESS),
        Command::Sign(args) => {
            block_on_interruptible(verify::sign(args)).map(|()| ExitCode::SUCCESS)
        }
        Command::Verify(args) => {
            block_on_interruptible(verify::verify(args)).map(|()| ExitCode::SUCCESS)
        }
        Command::Policy(args) => policy::policy(args).map(|()| ExitCode::SUCCESS),
        Command::Index(args) => {
            block_on_interruptible(index::index(args)).map(|()| ExitCode::SUCCESS)
        }
        Command::Search(args) => index::search(args).map(|()| ExitCode::SUCCESS),
        Command::Grant(args) => grant(args).map(|()| ExitCode::SUCCESS),
        Command::Revoke(args) => revoke(args).map(|()| ExitCode::SUCCESS),
        Command::Version => {
            let [plain, with_timeouts] = Runtime::current_compatibility_hashes()?;
            println!("krew-wasm {}", env!("CARGO_PKG_VERSION"));
            println!("wasmtime {}", krew_wasm_runtime::WASMTIME_VERSION);
            println!("engine {plain} (runs with a timeout: {with_timeouts})");
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut Cli::command(),
                "krew-wasm",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Ctrl-C ended the command.
#[derive(Debug, thiserror::Error)]
#[error("interrupted; nothing was changed")]
struct Interrupted;

/// Runs a future on a current-thread runtime. Ctrl-C drops the future, so
/// staged files are deleted before the process exits with 130.
fn block_on_interruptible<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = tokio.block_on(async {
        tokio::select! {
            // Ctrl-C's listener first: it is installed on its first poll, and
            // until then SIGINT kills the process outright, which the command
            // may already have given cause to clean up after (a password
            // prompt with the terminal's echo off). Unbiased, select! polled
            // the command first half of the time.
            biased;
            _ = tokio::signal::ctrl_c() => Err(Interrupted.into()),
            result = future => result,
        }
    });
    // Do not wait for a blocking task (a compile, a lock wait) that Ctrl-C
    // abandoned: the process is about to exit.
    tokio.shutdown_background();
    result
}

/// Runs a future on a current-thread runtime, leaving SIGINT's default
/// action (end the process) alone.
fn block_on_uninterruptible<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = tokio.block_on(future);
    tokio.shutdown_background();
    result
}

fn plugin_name(reference: &PluginReference, explicit: Option<&str>) -> Result<PluginName> {
    match explicit {
        Some(name) => Ok(PluginName::new(name)?),
        None => PluginName::derive(reference.repository_basename()).map_err(|e| {
            anyhow!("{e}\nThat name was derived from `{reference}`; choose one with --name NAME")
        }),
    }
}

async fn pull(args: PullArgs) -> Result<()> {
    let store = Store::new(store_root()?);
    // `NAME` and `INDEX/NAME` are looked up in the indexes; anything else is a reference.
    let (reference, indexed_name) = index::pull_target(&args.reference, &store)?;
    let name = match (args.name.as_deref(), indexed_name) {
        (None, Some(name)) => name,
        (explicit, _) => plugin_name(&reference, explicit)?,
    };
    let flag_check = verify::flag_check(args.verify_key.as_deref(), &args.keyless)?;
    let outcome = install_plugin(
        &store,
        InstallRequest {
            reference: &reference,
            source: None,
            name: &name,
            registry: &args.registry.to_options(),
            grants: Grants::Consent(&args.consent),
            force: args.force,
            resolved: None,
            flag_check,
        },
    )
    .await?;
    match outcome {
        InstallOutcome::UpToDate(receipt) => up_to_date(&name, &receipt.digest, &args.consent),
        InstallOutcome::Changed { what, receipt, .. } => {
            println!(
                "{what} {name} from {reference} ({}, {}, {}); run it with `kubectl {name}`",
                short_digest(&receipt.digest),
                receipt.kind.describe(),
                human_size(receipt.size)
            );
            consent::print_grants(name.as_str(), &receipt.granted);
            print_path_hint(&store);
        }
    }
    Ok(())
}

/// How the grants of an install are decided.
pub(crate) enum Grants<'a> {
    /// Asked for ([`consent::decide`]), with the answers given in advance.
    Consent(&'a ConsentFlags),
    /// Given: `import` applies what the lock file records.
    Exactly(Permissions),
}

/// One install: `pull`, `upgrade` and `import` all go through
/// [`install_plugin`].
pub(crate) struct InstallRequest<'a> {
    /// What is resolved and downloaded.
    pub reference: &'a PluginReference,
    /// What the receipt records as the source, when not `reference` (`import`
    /// fetches by digest what was installed from a tag).
    pub source: Option<&'a PluginReference>,
    pub name: &'a PluginName,
    pub registry: &'a RegistryOptions,
    pub grants: Grants<'a>,
    /// Replace a plugin of another repository installed under `name`.
    pub force: bool,
    /// `reference` already resolved, with the client that did it.
    pub resolved: Option<(RegistryClient, ResolvedPlugin)>,
    /// A signature check asked for by flags, on top of the trust policy's.
    pub flag_check: Option<trust::Check>,
}

/// What [`install_plugin`] did.
pub(crate) enum InstallOutcome {
    /// Nothing: that version is installed, intact.
    UpToDate(Receipt),
    /// Installed, repaired or replaced (`what` says which, as a verb).
    Changed {
        what: &'static str,
        receipt: Receipt,
        /// The version it replaced, if any.
        replaced: Option<Box<Receipt>>,
    },
}

/// Resolves, downloads (unless an intact copy is stored), decides the grants,
/// precompiles and installs under the lock. Every failure leaves the store
/// as it was.
pub(crate) async fn install_plugin(
    store: &Store,
    request: InstallRequest<'_>,
) -> Result<InstallOutcome> {
    let InstallRequest {
        reference,
        source,
        name,
        registry,
        grants,
        force,
        resolved,
        flag_check,
    } = request;
    let source = source.unwrap_or(reference);
    let source_string = source.to_string();
    // Fail before downloading when the answer is already known; the store
    // checks again under the lock.
    let previous = store.receipt(name.as_str()).ok();
    if let Some(previous) = &previous
        && !force
        && previous.repository() != source_repository(&source_string)
    {
        return Err(krew_wasm_store::StoreError::AlreadyInstalled {
            name: name.to_string(),
            installed_from: previous.source.clone(),
        }
        .into());
    }

    // The trust policy's rule for this repository, read (keys and trusted
    // roots included) before the registry is contacted; the signatures are
    // checked before anything is downloaded, and what passed is recorded in
    // the receipt.
    let policy = trust::load_policy()?;
    let checks = trust::checks_for(policy.as_ref(), reference, flag_check)
        .with_context(|| format!("{reference}: nothing was installed"))?;
    let (mut client, resolved) = match resolved {
        Some(resolved) => resolved,
        None => {
            let mut client = RegistryClient::new(reference, registry)?;
            let resolved = client.resolve(reference).await?;
            (client, resolved)
        }
    };
    let signatures = trust::verify_all(&mut client, reference, &resolved.manifest_digest, &checks)
        .await
        .with_context(|| format!("{reference}: nothing was installed"))?;
    let digest = resolved.layer.digest.clone();
    // An intact stored copy (this plugin's, or another's with the same
    // digest) is reused; anything else is downloaded again, which also
    // repairs a corrupt blob.
    let stored = std::fs::read(store.blob_path(&digest))
        .ok()
        .filter(|bytes| sha256_digest(bytes) == digest);
    if let Some(previous) = &previous
        && !force
        && previous.source == source_string
        && previous.digest == digest
        && previous.manifest_digest == resolved.manifest_digest
        && stored.is_some()
        && store.problems(previous).is_empty()
    {
        let mut receipt = previous.clone();
        if !signatures.is_empty() {
            // A policy rule may be newer than the install: keep what passed.
            let lock = lock_store(store).await?;
            for record in signatures {
                receipt = store.record_signature(
                    &lock,
                    name.as_str(),
                    &resolved.manifest_digest,
                    record,
                )?;
            }
        }
        return Ok(InstallOutcome::UpToDate(receipt));
    }

    let (staged, wasm) = match stored {
        Some(wasm) => (None, wasm),
        None => {
            let staged = download(&client, store, &resolved, name.as_str()).await?;
            let wasm = std::fs::read(staged.path()).context("reading the downloaded blob")?;
            (Some(staged), wasm)
        }
    };
    let requested = declared_permissions(&wasm, &resolved).with_context(|| {
        format!("{reference} declares its permissions wrongly; nothing was installed")
    })?;
    let granted = match grants {
        Grants::Consent(flags) => {
            consent::decide(consent::Request {
                name: name.as_str(),
                declared: &requested,
                // Grants carry over to a new version of the same plugin,
                // never to another repository's plugin replacing it.
                previous: previous
                    .as_ref()
                    .filter(|p| p.repository() == source_repository(&source_string))
                    .map(|p| (&p.requested, &p.granted)),
                flags,
            })
            .await?
        }
        Grants::Exactly(granted) => granted,
    };

    // Compiling and waiting for the lock block; they run off the async
    // thread so that Ctrl-C still ends the command meanwhile.
    let compiling = spinner(&format!("precompiling {name}"));
    let (wasm, compiled) = tokio::task::spawn_blocking(move || {
        // For the engine of runs without a timeout; a run with one compiles
        // for its own engine the first time (see krew_wasm_runtime).
        let compiled = Runtime::new().and_then(|runtime| {
            let precompiled = runtime.precompile(&wasm)?;
            Ok((runtime.compatibility_hash(), precompiled))
        });
        (wasm, compiled)
    })
    .await
    .context("precompiling")?;
    let (engine, precompiled) = compiled
        .with_context(|| format!("{reference} is not a runnable plugin; nothing was installed"))?;
    compiling.finish_and_clear();

    let receipt = Receipt {
        version: RECEIPT_VERSION,
        name: name.to_string(),
        source: source_string,
        manifest_digest: resolved.manifest_digest.clone(),
        digest,
        media_type: resolved.layer.media_type.clone(),
        size: resolved.layer.size,
        kind: match precompiled.kind {
            WasmKind::Module => PluginKind::P1Module,
            WasmKind::Component => PluginKind::P2Component,
        },
        installed_at: now_rfc3339(),
        pinned: source.is_pinned(),
        requested,
        granted,
        signatures,
        // The store records the version this one replaces.
        previous: None,
    };
    let executable = std::env::current_exe().context("finding the krew-wasm executable")?;
    let current_engines = Runtime::current_compatibility_hashes()?;
    let lock = lock_store(store).await?;
    let outcome = store.install(
        &lock,
        Install {
            name,
            receipt: receipt.clone(),
            wasm: &wasm,
            staged,
            artifact: Some((&engine, precompiled.bytes)),
            current_engines: &current_engines,
            executable: &executable,
            force,
        },
    )?;
    drop(lock);
    let (what, replaced) = match outcome {
        Installed::Unchanged => return Ok(InstallOutcome::UpToDate(receipt)),
        Installed::New => ("installed", None),
        Installed::Repaired => ("repaired", None),
        Installed::Reinstalled => ("reinstalled", None),
        Installed::Replaced(old) => {
            let what = if old.repository() != receipt.repository() {
                "replaced"
            } else if old.digest != receipt.digest || old.pinned == receipt.pinned {
                "updated"
            } else if receipt.pinned {
                "pinned"
            } else {
                "unpinned"
            };
            (what, Some(old))
        }
    };
    Ok(InstallOutcome::Changed {
        what,
        receipt,
        replaced,
    })
}

/// The time now, as receipts record it.
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// A pull that changes nothing; consent flags then change nothing either,
/// which the user should hear about.
fn up_to_date(name: &PluginName, digest: &str, consent: &ConsentFlags) {
    println!(
        "{name} is already installed and up to date ({})",
        short_digest(digest)
    );
    if consent.yes || !consent.grant.is_empty() || !consent.deny.is_empty() {
        eprintln!(
            "note: its permissions are unchanged; change them with `krew-wasm grant {name} …` or `krew-wasm revoke {name} …`"
        );
    }
}

/// What a plugin asks for: its wasm custom section, and its manifest's
/// annotation (written by `krew-wasm push`), merged.
fn declared_permissions(wasm: &[u8], resolved: &ResolvedPlugin) -> Result<Permissions> {
    let in_wasm = Permissions::from_wasm(wasm)?.unwrap_or_default();
    let in_manifest = match resolved.annotations.get(krew_wasm_permissions::ANNOTATION) {
        Some(json) => Permissions::from_json(json.as_bytes()).with_context(|| {
            format!(
                "in the manifest annotation {}",
                krew_wasm_permissions::ANNOTATION
            )
        })?,
        None => Permissions::none(),
    };
    Ok(in_wasm.union(&in_manifest))
}

/// `grant NAME PERMISSION…|all`: adds to an installed plugin's grants.
fn grant(args: GrantArgs) -> Result<()> {
    change_grants(
        &args.name,
        &args.permissions,
        |receipt, all, permissions| {
            let mut granted = receipt.granted.clone();
            if all {
                granted = granted.union(&receipt.requested);
            }
            for permission in permissions {
                if !receipt.requested.covers(&permission) {
                    eprintln!(
                        "note: `{}` does not ask for {permission}; granting it anyway",
                        receipt.name
                    );
                }
                granted.insert(permission);
            }
            granted
        },
    )
}

/// `revoke NAME PERMISSION…|all`: takes grants back.
fn revoke(args: RevokeArgs) -> Result<()> {
    change_grants(
        &args.name,
        &args.permissions,
        |receipt, all, permissions| {
            if all {
                return Permissions::none();
            }
            let mut granted = receipt.granted.clone();
            for permission in permissions {
                if !granted.remove(&permission) {
                    eprintln!("note: `{}` was not granted {permission}", receipt.name);
                }
            }
            granted
        },
    )
}

/// Parses the permissions first (so a typo changes nothing), then rewrites
/// the receipt's grants under the lock and shows the result.
fn change_grants(
    name: &str,
    values: &[String],
    change: impl FnOnce(&Receipt, bool, Vec<Permission>) -> Permissions,
) -> Result<()> {
    let all = values.iter().any(|v| v == "all");
    let permissions = values
        .iter()
        .filter(|v| *v != "all")
        .map(|v| v.parse::<Permission>())
        .collect::<Result<Vec<_>, _>>()?;
    let store = Store::new(store_root()?);
    let lock = lock_with_notice(&store)?;
    let receipt = store.receipt(name)?;
    let granted = change(&receipt, all, permissions);
    let receipt = store.set_granted(&lock, name, granted)?;
    drop(lock);
    println!(
        "{name} is granted: {}",
        consent::describe_lines(&receipt.granted)
    );
    Ok(())
}

/// Takes the store lock, saying so when another command holds it.
fn lock_with_notice(store: &Store) -> Result<StoreLock, StoreError> {
    store.lock(|| eprintln!("waiting for another krew-wasm command to finish…"))
}

/// [`lock_with_notice`] on a blocking thread, so Ctrl-C can end the wait.
pub(crate) async fn lock_store(store: &Store) -> Result<StoreLock> {
    let store = store.clone();
    let lock = tokio::task::spawn_blocking(move || lock_with_notice(&store))
        .await
        .context("waiting for the store lock")??;
    Ok(lock)
}

/// Streams the wasm layer into a staged file of the store.
async fn download(
    client: &RegistryClient,
    store: &Store,
    resolved: &ResolvedPlugin,
    label: &str,
) -> Result<tempfile::NamedTempFile> {
    let mut staged = store.staging_file()?;
    let bar = download_bar(resolved.layer.size, label);
    {
        let mut writer = BufWriter::with_capacity(256 * 1024, staged.as_file_mut());
        client
            .fetch_layer(resolved, &mut writer, |n| bar.set_position(n))
            .await?;
    }
    bar.finish_and_clear();
    Ok(staged)
}

fn print_path_hint(store: &Store) {
    if let Some(hint) = path_hint(&store.bin_dir()) {
        eprintln!("{hint}");
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListItem {
    name: String,
    reference: Option<String>,
    digest: Option<String>,
    kind: Option<PluginKind>,
    size: Option<u64>,
    installed_at: Option<String>,
    pinned: Option<bool>,
    signatures: Vec<SignatureRecord>,
    status: String,
    problems: Vec<String>,
}

fn list(args: ListArgs) -> Result<()> {
    let store = Store::new(store_root()?);
    let entries = store.entries()?;
    let items: Vec<ListItem> = entries
        .into_iter()
        .map(|entry| {
            let mut problems = entry.problems;
            let receipt = match entry.receipt {
                Ok(receipt) => Some(receipt),
                Err(e) => {
                    problems.insert(0, e);
                    None
                }
            };
            ListItem {
                name: entry.name,
                reference: receipt.as_ref().map(|r| r.source.clone()),
                digest: receipt.as_ref().map(|r| r.digest.clone()),
                kind: receipt.as_ref().map(|r| r.kind),
                size: receipt.as_ref().map(|r| r.size),
                installed_at: receipt.as_ref().map(|r| r.installed_at.clone()),
                pinned: receipt.as_ref().map(|r| r.pinned),
                signatures: receipt
                    .as_ref()
                    .map(|r| r.signatures.clone())
                    .unwrap_or_default(),
                status: if problems.is_empty() {
                    "ok".into()
                } else {
                    "broken".into()
                },
                problems,
            }
        })
        .collect();
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&items)?),
        OutputFormat::Table => {
            if items.is_empty() {
                eprintln!(
                    "no plugins installed in {}; install one with `krew-wasm pull REF`",
                    store.root().display()
                );
                return Ok(());
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|item| {
                    let dash = || "-".to_string();
                    vec![
                        item.name.clone(),
                        item.reference.clone().unwrap_or_else(dash),
                        item.digest
                            .as_deref()
                            .map(short_digest)
                            .unwrap_or_else(dash),
                        item.kind
                            .map(|k| k.describe().to_string())
                            .unwrap_or_else(dash),
                        item.size.map(human_size).unwrap_or_else(dash),
                        item.installed_at.clone().unwrap_or_else(dash),
                        item.signatures
                            .first()
                            .map(short_signer)
                            .unwrap_or_else(dash),
                        if item.problems.is_empty() {
                            "ok".to_string()
                        } else {
                            format!("BROKEN: {}", item.problems.join("; "))
                        },
                    ]
                })
                .collect();
            print_table(
                &[
                    "NAME",
                    "REFERENCE",
                    "DIGEST",
                    "KIND",
                    "SIZE",
                    "INSTALLED",
                    "SIGNED BY",
                    "STATUS",
                ],
                &rows,
            );
        }
    }
    Ok(())
}

/// A signer in a table cell: `key 1a2b3c4d` (the fingerprint's start) or
/// the certificate subject, cut to a column's width.
fn short_signer(record: &SignatureRecord) -> String {
    const WIDTH: usize = 32;
    let text = match (&record.key_fingerprint, &record.subject) {
        (Some(fingerprint), _) => {
            let hex = fingerprint.strip_prefix("SHA256:").unwrap_or(fingerprint);
            format!("key {}", hex.get(..8).unwrap_or(hex))
        }
        (None, Some(subject)) => subject.clone(),
        (None, None) => record.signer(),
    };
    if text.chars().count() > WIDTH {
        format!("{}…", text.chars().take(WIDTH - 1).collect::<String>())
    } else {
        text
    }
}

/// The receipt's signature records, one per line, for `info`.
fn describe_signatures(records: &[SignatureRecord]) -> String {
    if records.is_empty() {
        return "not checked (no policy rule or flag asked for a signature)".into();
    }
    records
        .iter()
        .map(|r| {
            format!(
                "signed by {} ({}), required by {}, verified {}",
                r.signer(),
                r.form,
                r.required_by,
                r.verified_at
            )
        })
        .collect::<Vec<_>>()
        .join("\n                 ")
}

fn rm(args: RmArgs) -> Result<()> {
    let store = Store::new(store_root()?);
    // Check every name first, so `rm a typo` removes nothing.
    for name in &args.names {
        if !store.contains(name) {
            bail!(krew_wasm_store::StoreError::NotInstalled(name.clone()));
        }
    }
    let executable = std::env::current_exe().context("finding the krew-wasm executable")?;
    let lock = lock_with_notice(&store)?;
    for name in &args.names {
        match store.remove(&lock, name, &executable)? {
            Some(_) => println!("removed {name}"),
            None => println!("removed {name} (its receipt was unreadable)"),
        }
    }
    drop(lock);
    print_path_hint(&store);
    Ok(())
}

fn info(args: InfoArgs) -> Result<()> {
    let store = Store::new(store_root()?);
    let receipt = store.receipt(&args.name)?;
    if args.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&receipt)?);
        return Ok(());
    }
    let runtime = Runtime::new()?;
    let artifact = store.artifact_path(&runtime.compatibility_hash(), &receipt.digest);
    let blob = store.blob_path(&receipt.digest);
    let link = PluginName::new(&receipt.name).map(|n| store.link_path(&n));
    let link_line = match &link {
        Ok(link) => match std::fs::read_link(link) {
            Ok(target) if link.exists() => format!("{} -> {}", link.display(), target.display()),
            Ok(target) => format!(
                "{} -> {} (BROKEN: dangling)",
                link.display(),
                target.display()
            ),
            Err(_) => format!("{} (BROKEN: missing)", link.display()),
        },
        Err(e) => format!("(none: {e})"),
    };
    let present = |path: &Path, missing: &str| {
        if path.is_file() {
            path.display().to_string()
        } else {
            format!("{} ({missing})", path.display())
        }
    };
    let rows = [
        ("Name", receipt.name.clone()),
        ("Source", receipt.source.clone()),
        (
            "Pinned",
            if receipt.pinned {
                "yes (installed by digest)".into()
            } else {
                "no".into()
            },
        ),
        ("Manifest digest", receipt.manifest_digest.clone()),
        ("Digest", receipt.digest.clone()),
        ("Media type", receipt.media_type.clone()),
        ("Kind", receipt.kind.describe().to_string()),
        (
            "Size",
            format!("{} ({} bytes)", human_size(receipt.size), receipt.size),
        ),
        ("Installed", receipt.installed_at.clone()),
        ("Signature", describe_signatures(&receipt.signatures)),
        ("Requests", consent::describe_lines(&receipt.requested)),
        ("Granted", consent::describe_lines(&receipt.granted)),
        ("Blob", present(&blob, "BROKEN: missing")),
        (
            "Precompiled",
            present(&artifact, "missing: rebuilt on the next run"),
        ),
        ("Link", link_line),
        ("Run with", format!("kubectl {}", receipt.name)),
    ];
    for (key, value) in rows {
        println!("{:<16} {value}", format!("{key}:"));
    }
    Ok(())
}

fn run(args: RunArgs) -> Result<ExitCode> {
    let run_env = RunEnv::from_env()?;
    let runtime = Runtime::for_timeout(run_env.timeout_with(args.timeout))?.exit_after_run();
    let path = Path::new(&args.target);
    let looks_like_file =
        path.exists() || args.target.ends_with(".wasm") && !args.target.contains(':');
    let flag_check = verify::flag_check(args.verify_key.as_deref(), &args.keyless)?;
    let (program, wasm, name, declared) = if looks_like_file {
        if flag_check.is_some() {
            bail!(
                "{} is a local file: it carries no registry signature to verify; \
                 run it without --verify-key or the --certificate-* flags, or run a registry reference",
                args.target
            );
        }
        let wasm = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("plugin")
            .to_string();
        let declared = Permissions::from_wasm(&wasm)
            .with_context(|| format!("{} declares its permissions wrongly", args.target))?
            .unwrap_or_default();
        (args.target.clone(), wasm, name, declared)
    } else {
        let reference = PluginReference::parse(&args.target).with_context(|| {
            format!(
                "`{}` is neither a file nor a registry reference",
                args.target
            )
        })?;
        let name = PluginName::derive(reference.repository_basename())
            .map(|n| n.to_string())
            .unwrap_or_else(|_| reference.repository_basename().to_string());
        let options = args.registry.to_options();
        let policy = trust::load_policy()?;
        let checks = trust::checks_for(policy.as_ref(), &reference, flag_check)
            .with_context(|| format!("{reference} was not run"))?;
        // Not interruptible: nothing is staged, and tokio's Ctrl-C listener,
        // once installed, would stay for the plugin's run and keep Ctrl-C
        // from ending it.
        let (wasm, resolved) =
            block_on_uninterruptible(fetch_to_memory(&reference, &options, &checks))?;
        let declared = declared_permissions(&wasm, &resolved)
            .with_context(|| format!("{} declares its permissions wrongly", args.target))?;
        (format!("kubectl-{name}"), wasm, name, declared)
    };
    let mut granted = if args.yes {
        declared.clone()
    } else {
        Permissions::none()
    };
    for permission in args.grant {
        granted.insert(permission);
    }
    let not_granted = declared.not_covered_by(&granted);
    if !not_granted.is_empty() {
        eprintln!(
            "note: {}\nnot granted for this run (pass --yes, or --grant PERMISSION)",
            consent::describe_request(&name, &not_granted, false)
        );
    }
    let store = Store::new(crate::settings::store_root()?);
    let plugin = launch::load_uninstalled(&runtime, &store, &wasm)
        .with_context(|| format!("{} is not a runnable plugin", args.target))?;
    let mut argv = vec![program];
    argv.extend(args.args);
    let grants = launch::RunGrants {
        granted,
        max_memory: args.max_memory,
        timeout: args.timeout,
    };
    let code = launch::run_to_exit_code(&runtime, &store, &plugin, &name, argv, grants, &run_env);
    launch::leave_to_exit(runtime, plugin);
    code
}

/// Downloads a plugin into memory, its signatures checked first, then its
/// digest, without touching the store.
async fn fetch_to_memory(
    reference: &PluginReference,
    options: &RegistryOptions,
    checks: &[trust::Check],
) -> Result<(Vec<u8>, ResolvedPlugin)> {
    let mut client = RegistryClient::new(reference, options)?;
    let resolved = client.resolve(reference).await?;
    trust::verify_all(&mut client, reference, &resolved.manifest_digest, checks)
        .await
        .with_context(|| format!("{reference} was not run"))?;
    let mut wasm = Vec::with_capacity(usize::try_from(resolved.layer.size).unwrap_or(0));
    let bar = download_bar(resolved.layer.size, reference.repository_basename());
    client
        .fetch_layer(&resolved, &mut wasm, |n| bar.set_position(n))
        .await?;
    bar.finish_and_clear();
    Ok((wasm, resolved))
}
