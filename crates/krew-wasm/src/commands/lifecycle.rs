//! The life cycle of installed plugins: `upgrade`, `outdated`, `rollback`,
//! `export` and `import`. Installs go through [`super::install_plugin`], as
//! `pull`'s do.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use krew_wasm_oci::{PluginReference, RegistryClient, RegistryOptions};
use krew_wasm_permissions::Permissions;
use krew_wasm_runtime::Runtime;
use krew_wasm_store::{PluginName, Receipt, Store, StoreError, sha256_digest, source_repository};
use serde::{Deserialize, Serialize};

use super::{
    Grants, InstallOutcome, InstallRequest, install_plugin, lock_store, now_rfc3339,
    print_path_hint,
};
use crate::cli::{
    ConsentFlags, ExportArgs, ImportArgs, OutdatedArgs, OutputFormat, RollbackArgs, UpgradeArgs,
};
use crate::output::{human_size, print_table, short_digest, spinner};
use crate::settings::store_root;

/// `upgrade NAME…|--all`: installs what moved, says what did not.
pub(super) async fn upgrade(args: UpgradeArgs) -> Result<()> {
    let store = Store::new(store_root()?);
    let names = if args.all {
        store.names()?
    } else {
        args.names.clone()
    };
    // Check every name first, so `upgrade a typo` upgrades nothing.
    for name in &names {
        if !store.contains(name) {
            bail!(StoreError::NotInstalled(name.clone()));
        }
    }
    if names.is_empty() {
        eprintln!(
            "no plugins installed in {}; install one with `krew-wasm pull REF`",
            store.root().display()
        );
        return Ok(());
    }
    let options = args.registry.to_options();
    let mut failed = Vec::new();
    let mut changed = false;
    for name in &names {
        match upgrade_one(&store, name, &args.consent, &options).await {
            Ok(upgraded) => changed |= upgraded,
            Err(e) => {
                eprintln!("error: {name} was not upgraded: {e:#}");
                failed.push(name.as_str());
            }
        }
    }
    if changed {
        print_path_hint(&store);
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} plugins could not be upgraded: {}",
            failed.len(),
            names.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// Upgrades one plugin; true when it changed.
async fn upgrade_one(
    store: &Store,
    name: &str,
    consent: &ConsentFlags,
    registry: &RegistryOptions,
) -> Result<bool> {
    let receipt = store.receipt(name)?;
    let reference = source_reference(&receipt)?;
    if receipt.pinned {
        let digest = reference.digest().unwrap_or(&receipt.manifest_digest);
        println!(
            "{name} is pinned to {}; pull a tag to unpin (`krew-wasm pull {}:TAG --name {name}`)",
            short_digest(digest),
            source_repository(&receipt.source)
        );
        return Ok(false);
    }
    let plugin = PluginName::new(name)?;
    let outcome = install_plugin(
        store,
        InstallRequest {
            reference: &reference,
            source: None,
            name: &plugin,
            registry,
            grants: Grants::Consent(consent),
            force: false,
            resolved: None,
            flag_check: None,
        },
    )
    .await?;
    match outcome {
        InstallOutcome::UpToDate(receipt) => {
            println!("{name} is up to date ({})", short_digest(&receipt.digest));
            Ok(false)
        }
        InstallOutcome::Changed {
            what,
            receipt: new,
            replaced,
        } => {
            // Grants change on an upgrade only when the new version asks
            // for something else: then say what they are now.
            let grants_changed = replaced
                .as_ref()
                .is_none_or(|old| old.granted != new.granted);
            match replaced {
                Some(old) => println!(
                    "upgraded {name} from {reference}: {} -> {} ({}, {}); `krew-wasm rollback {name}` returns to {}",
                    short_digest(&old.digest),
                    short_digest(&new.digest),
                    new.kind.describe(),
                    human_size(new.size),
                    short_digest(&old.digest),
                ),
                None => println!(
                    "{what} {name} from {reference} ({})",
                    short_digest(&new.digest)
                ),
            }
            if grants_changed {
                crate::consent::print_grants(name, &new.granted);
            }
            Ok(true)
        }
    }
}

/// The reference a receipt was installed from.
fn source_reference(receipt: &Receipt) -> Result<PluginReference> {
    PluginReference::parse(&receipt.source).with_context(|| {
        format!(
            "the receipt of `{}` records an invalid source `{}`",
            receipt.name, receipt.source
        )
    })
}

/// A row of `outdated`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutdatedItem {
    name: String,
    reference: Option<String>,
    /// Digest of the installed wasm blob.
    current: Option<String>,
    /// Digest of the wasm blob the tag points at now.
    latest: Option<String>,
    pinned: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `outdated`: resolves every tag, lists what `upgrade --all` would change,
/// and the pinned plugins it would leave alone. A registry that fails is
/// reported for its plugins only.
pub(super) async fn outdated(args: OutdatedArgs) -> Result<()> {
    let store = Store::new(store_root()?);
    let options = args.registry.to_options();
    let mut items = Vec::new();
    let mut up_to_date = 0;
    for name in store.names()? {
        let mut item = OutdatedItem {
            name: name.clone(),
            reference: None,
            current: None,
            latest: None,
            pinned: false,
            error: None,
        };
        match check(&store, &name, &options, &mut item).await {
            Ok(true) => items.push(item),
            Ok(false) => up_to_date += 1,
            Err(e) => {
                eprintln!("error: cannot check {name}: {e:#}");
                item.error = Some(format!("{e:#}"));
                items.push(item);
            }
        }
    }
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&items)?),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = items
                .iter()
                .filter(|item| item.error.is_none())
                .map(|item| {
                    let dash = || "-".to_string();
                    vec![
                        item.name.clone(),
                        item.current
                            .as_deref()
                            .map(short_digest)
                            .unwrap_or_else(dash),
                        if item.pinned {
                            "pinned".to_string()
                        } else {
                            item.latest
                                .as_deref()
                                .map(short_digest)
                                .unwrap_or_else(dash)
                        },
                        item.reference.clone().unwrap_or_else(dash),
                    ]
                })
                .collect();
            if rows.is_empty() {
                if items.is_empty() {
                    eprintln!("all {up_to_date} plugins are up to date");
                }
            } else {
                print_table(&["NAME", "CURRENT", "LATEST", "REFERENCE"], &rows);
            }
        }
    }
    Ok(())
}

/// Fills `item` for one plugin; true when it is to be listed (outdated or
/// pinned).
async fn check(
    store: &Store,
    name: &str,
    options: &RegistryOptions,
    item: &mut OutdatedItem,
) -> Result<bool> {
    let receipt = store.receipt(name)?;
    item.reference = Some(receipt.source.clone());
    item.current = Some(receipt.digest.clone());
    item.pinned = receipt.pinned;
    if receipt.pinned {
        return Ok(true);
    }
    let reference = source_reference(&receipt)?;
    let mut client = RegistryClient::new(&reference, options)?;
    let resolved = client.resolve(&reference).await?;
    item.latest = Some(resolved.layer.digest.clone());
    Ok(resolved.manifest_digest != receipt.manifest_digest
        || resolved.layer.digest != receipt.digest)
}

/// `rollback NAME`: back to the version before the last upgrade.
pub(super) async fn rollback(args: RollbackArgs) -> Result<()> {
    let store = Store::new(store_root()?);
    let receipt = store.receipt(&args.name)?;
    let name = PluginName::new(&receipt.name)?;
    let Some(previous) = receipt.previous.clone() else {
        bail!(StoreError::NoPreviousVersion(receipt.name));
    };
    let damaged = || StoreError::PreviousVersionDamaged {
        name: receipt.name.clone(),
        digest: previous.digest.clone(),
        from: previous.source.clone(),
    };
    // Verified and compiled before the lock; the store checks the blob and
    // the receipt again under it.
    let wasm = std::fs::read(store.blob_path(&previous.digest))
        .ok()
        .filter(|bytes| sha256_digest(bytes) == previous.digest)
        .ok_or_else(damaged)?;
    let compiling = spinner(&format!("precompiling {name}"));
    let artifact_of = {
        let store = store.clone();
        let digest = previous.digest.clone();
        move || -> Result<Option<(String, Vec<u8>)>> {
            let runtime = Runtime::new()?;
            let engine = runtime.compatibility_hash();
            if store.artifact_path(&engine, &digest).is_file() {
                return Ok(None);
            }
            let precompiled = runtime.precompile(&wasm)?;
            Ok(Some((engine, precompiled.bytes)))
        }
    };
    let artifact = tokio::task::spawn_blocking(artifact_of)
        .await
        .context("precompiling")?
        .with_context(|| {
            format!("the previous version of {name} does not compile; nothing was changed")
        })?;
    compiling.finish_and_clear();
    let executable = std::env::current_exe().context("finding the krew-wasm executable")?;
    let lock = lock_store(&store).await?;
    let rolled = store.rollback(
        &lock,
        &name,
        &previous,
        |current, previous| {
            crate::consent::granted_on_rollback(
                (&current.requested, &current.granted),
                (&previous.requested, &previous.granted),
            )
        },
        artifact
            .as_ref()
            .map(|(engine, bytes)| (engine.as_str(), bytes.clone())),
        &executable,
        now_rfc3339(),
    )?;
    drop(lock);
    println!(
        "rolled back {name} to {} ({}, was {}); `krew-wasm upgrade {name}` goes forward again",
        rolled.source,
        short_digest(&rolled.digest),
        short_digest(&receipt.digest)
    );
    if !rolled.granted.is_empty() || !receipt.granted.is_empty() {
        println!(
            "{name} is granted: {}",
            crate::consent::describe_lines(&rolled.granted)
        );
    }
    Ok(())
}

/// Lock file format version written by `export`.
const LOCK_VERSION: u32 = 1;

/// The document `export` writes and `import` reads.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LockFile {
    version: LockVersion,
    plugins: Vec<LockedPlugin>,
}

/// The lock file's `version`: only [`LOCK_VERSION`] is read.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
struct LockVersion(u32);

impl TryFrom<u32> for LockVersion {
    type Error = String;
    fn try_from(version: u32) -> Result<Self, String> {
        if version == LOCK_VERSION {
            Ok(Self(version))
        } else {
            Err(format!(
                "field `version`: this krew-wasm reads lock files of version {LOCK_VERSION}, not {version}"
            ))
        }
    }
}

impl From<LockVersion> for u32 {
    fn from(version: LockVersion) -> u32 {
        version.0
    }
}

/// One plugin of a lock file, as written; each field checked as it is read,
/// so an error names its line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawLockedPlugin {
    name: LockField<NameField>,
    source: LockField<SourceField>,
    reference: LockField<ReferenceField>,
    digest: LockField<DigestField>,
    #[serde(default, skip_serializing_if = "Permissions::is_empty")]
    granted: Permissions,
}

/// A string field of a lock entry, checked by `K` when read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
struct LockField<K: FieldCheck> {
    text: String,
    _kind: std::marker::PhantomData<K>,
}

trait FieldCheck: Clone {
    const FIELD: &'static str;
    fn check(text: &str) -> Result<(), String>;
}

impl<K: FieldCheck> TryFrom<String> for LockField<K> {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        K::check(&text).map_err(|e| format!("field `{}`: {e}", K::FIELD))?;
        Ok(Self {
            text,
            _kind: std::marker::PhantomData,
        })
    }
}

impl<K: FieldCheck> From<LockField<K>> for String {
    fn from(field: LockField<K>) -> String {
        field.text
    }
}

impl<K: FieldCheck> LockField<K> {
    fn as_str(&self) -> &str {
        &self.text
    }
}

#[derive(Debug, Clone)]
struct NameField;
impl FieldCheck for NameField {
    const FIELD: &'static str = "name";
    fn check(text: &str) -> Result<(), String> {
        PluginName::new(text).map(drop).map_err(|e| e.to_string())
    }
}

#[derive(Debug, Clone)]
struct SourceField;
impl FieldCheck for SourceField {
    const FIELD: &'static str = "source";
    fn check(text: &str) -> Result<(), String> {
        PluginReference::parse(text)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

#[derive(Debug, Clone)]
struct ReferenceField;
impl FieldCheck for ReferenceField {
    const FIELD: &'static str = "reference";
    fn check(text: &str) -> Result<(), String> {
        let reference = PluginReference::parse(text).map_err(|e| e.to_string())?;
        match (reference.digest(), reference.tag()) {
            (Some(_), None) => Ok(()),
            (Some(digest), Some(_)) => Err(format!(
                "`{text}` has a tag as well as a digest: write `{}/{}@{digest}`",
                reference.registry(),
                reference.repository()
            )),
            (None, _) => Err(format!(
                "`{text}` is not pinned: write registry/repository@sha256:…"
            )),
        }
    }
}

#[derive(Debug, Clone)]
struct DigestField;
impl FieldCheck for DigestField {
    const FIELD: &'static str = "digest";
    fn check(text: &str) -> Result<(), String> {
        let well_formed = text.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if well_formed {
            Ok(())
        } else {
            Err(format!(
                "`{text}` is not `sha256:` and 64 lowercase hex digits"
            ))
        }
    }
}

/// One plugin of a lock file, checked: its fields, and a source of the same
/// repository as the pinned reference.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RawLockedPlugin", into = "RawLockedPlugin")]
struct LockedPlugin {
    name: PluginName,
    source: PluginReference,
    reference: PluginReference,
    raw: RawLockedPlugin,
}

impl LockedPlugin {
    fn digest(&self) -> &str {
        self.raw.digest.as_str()
    }
}

impl TryFrom<RawLockedPlugin> for LockedPlugin {
    type Error = String;
    fn try_from(raw: RawLockedPlugin) -> Result<Self, String> {
        // Checked as the fields were read: these parse.
        let invalid = |field: &str, e: &dyn std::fmt::Display| {
            format!("plugin `{}`, field `{field}`: {e}", raw.name.as_str())
        };
        let name = PluginName::new(raw.name.as_str()).map_err(|e| invalid("name", &e))?;
        let source =
            PluginReference::parse(raw.source.as_str()).map_err(|e| invalid("source", &e))?;
        let reference =
            PluginReference::parse(raw.reference.as_str()).map_err(|e| invalid("reference", &e))?;
        if (source.registry(), source.repository())
            != (reference.registry(), reference.repository())
        {
            return Err(invalid(
                "source",
                &format!(
                    "`{}` is another repository than `reference` (`{}`)",
                    raw.source.as_str(),
                    raw.reference.as_str()
                ),
            ));
        }
        Ok(Self {
            name,
            source,
            reference,
            raw,
        })
    }
}

/// `export [-o FILE]`: every installed plugin, pinned by digest, with its grants.
pub(super) fn export(args: ExportArgs) -> Result<()> {
    let store = Store::new(store_root()?);
    let mut plugins = Vec::new();
    for name in store.names()? {
        let receipt = store
            .receipt(&name)
            .with_context(|| format!("cannot export `{name}`; nothing was written"))?;
        let plugin = locked(&receipt)
            .map_err(|e| anyhow!("cannot export `{name}`: {e}; nothing was written"))?;
        plugins.push(plugin);
    }
    let lock = LockFile {
        version: LockVersion(LOCK_VERSION),
        plugins,
    };
    let mut json = serde_json::to_string_pretty(&lock)?;
    json.push('\n');
    match &args.output {
        Some(path) => {
            krew_wasm_store::write_atomically(path, json.as_bytes())?;
            eprintln!("wrote {} plugins to {}", lock.plugins.len(), path.display());
        }
        None => print!("{json}"),
    }
    Ok(())
}

impl From<LockedPlugin> for RawLockedPlugin {
    fn from(plugin: LockedPlugin) -> Self {
        plugin.raw
    }
}

/// The lock entry of an installed plugin.
fn locked(receipt: &Receipt) -> Result<LockedPlugin, String> {
    let raw = RawLockedPlugin {
        name: receipt.name.clone().try_into()?,
        source: receipt.source.clone().try_into()?,
        reference: format!(
            "{}@{}",
            source_repository(&receipt.source),
            receipt.manifest_digest
        )
        .try_into()?,
        digest: receipt.digest.clone().try_into()?,
        granted: receipt.granted.clone(),
    };
    LockedPlugin::try_from(raw)
}

/// Reads and checks a lock file: any error names the line and the field.
fn read_lock(path: &Path) -> Result<LockFile> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let lock: LockFile = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow!(
            "{} is not a valid krew-wasm lock file: {e}; nothing was installed",
            path.display()
        )
    })?;
    let mut seen = BTreeSet::new();
    for plugin in &lock.plugins {
        if !seen.insert(plugin.name.as_str()) {
            bail!(
                "{} lists plugin `{}` twice; nothing was installed",
                path.display(),
                plugin.name
            );
        }
    }
    Ok(lock)
}

/// `import FILE`: installs each plugin of the lock by digest, verified
/// against the lock, with the lock's grants. Everything is resolved and
/// checked before anything is installed.
pub(super) async fn import(args: ImportArgs) -> Result<()> {
    let lock = read_lock(&args.file)?;
    let store = Store::new(store_root()?);
    let options = args.registry.to_options();

    let mut todo = Vec::new();
    for plugin in &lock.plugins {
        let name = plugin.name.as_str();
        match store.receipt(name) {
            Ok(receipt)
                if receipt.manifest_digest == plugin.reference.digest().unwrap_or_default()
                    && receipt.digest == plugin.digest()
                    && store.problems(&receipt).is_empty()
                    && store.blob_is_intact(&receipt.digest) =>
            {
                println!(
                    "{name} is already installed at {}",
                    short_digest(&receipt.digest)
                );
            }
            Ok(receipt)
                if !args.force
                    && receipt.repository() != source_repository(plugin.raw.source.as_str()) =>
            {
                bail!(
                    "plugin `{name}`: {}; nothing was installed",
                    StoreError::AlreadyInstalled {
                        name: name.to_string(),
                        installed_from: receipt.source,
                    }
                );
            }
            Ok(_) | Err(StoreError::NotInstalled(_)) => todo.push(plugin),
            Err(_) if args.force => todo.push(plugin),
            Err(e) => bail!("plugin `{name}`: {e}; nothing was installed"),
        }
    }

    // Resolve every plugin and compare with the lock before installing any.
    let mut resolved = Vec::new();
    for plugin in todo {
        let name = &plugin.name;
        let reference = &plugin.reference;
        let mut client = RegistryClient::new(reference, &options)
            .with_context(|| format!("plugin `{name}`; nothing was installed"))?;
        let found = client.resolve(reference).await.with_context(|| {
            format!("plugin `{name}`: resolving {reference}; nothing was installed")
        })?;
        if found.layer.digest != plugin.digest() {
            bail!(
                "plugin `{name}`: {reference} holds the wasm blob {}, but the lock file says {}; nothing was installed",
                found.layer.digest,
                plugin.digest()
            );
        }
        resolved.push((plugin, client, found));
    }

    let mut changed = false;
    for (plugin, client, found) in resolved {
        let outcome = install_plugin(
            &store,
            InstallRequest {
                reference: &plugin.reference,
                source: Some(&plugin.source),
                name: &plugin.name,
                registry: &options,
                grants: Grants::Exactly(plugin.raw.granted.clone()),
                force: args.force,
                resolved: Some((client, found)),
                flag_check: None,
            },
        )
        .await
        .with_context(|| format!("plugin `{}`", plugin.name))?;
        match outcome {
            InstallOutcome::UpToDate(receipt) => println!(
                "{} is already installed at {}",
                plugin.name,
                short_digest(&receipt.digest)
            ),
            InstallOutcome::Changed { what, receipt, .. } => {
                changed = true;
                println!(
                    "{what} {} from {} ({}, {}, {})",
                    plugin.name,
                    receipt.source,
                    short_digest(&receipt.digest),
                    receipt.kind.describe(),
                    human_size(receipt.size)
                );
                // The lock's grants, applied as recorded: say what they are.
                crate::consent::print_grants(plugin.name.as_str(), &receipt.granted);
            }
        }
    }
    if changed {
        print_path_hint(&store);
    }
    Ok(())
}
