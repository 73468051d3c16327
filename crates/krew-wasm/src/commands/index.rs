//! Plugin indexes: `index add|list|update|remove|push`, `search`, and the
//! lookup of `pull NAME` / `pull INDEX/NAME`.
//!
//! The document and its rules are `krew_wasm_index`'s; this module reads
//! files and registries, and keeps what it read in the store
//! (`indexes/<name>.json`, under the lock, renamed into place). A document
//! is validated whole before anything is written: an invalid index changes
//! nothing.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueHint};
use krew_wasm_index::{
    CACHED_INDEX_VERSION, CachedIndex, INDEX_CONFIG_MEDIA_TYPE, INDEX_LAYER_MEDIA_TYPE,
    IndexLocation, IndexName, MAX_INDEX_SIZE, PluginIndex,
};
use krew_wasm_oci::artifact::ArtifactUpload;
use krew_wasm_oci::{PluginReference, RegistryClient, RegistryOptions};
use krew_wasm_store::{PluginName, Store, sha256_digest, source_repository};
use serde::Serialize;

use crate::cli::{OutputFormat, RegistryFlags};
use crate::output::{print_table, short_digest};
use crate::settings::store_root;

/// What an index artifact is called in errors.
const INDEX_ARTIFACT: &str = "krew-wasm plugin index";

#[derive(Debug, Args)]
pub struct IndexArgs {
    #[command(subcommand)]
    pub command: IndexCommand,
}

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Add an index from a file or a registry; it is checked, then kept in the store
    #[command(
        after_help = "Examples:\n  krew-wasm index add team ./plugins.yaml\n  \
            krew-wasm index add team ghcr.io/org/krew-wasm-index:v1"
    )]
    Add(AddArgs),
    /// List the added indexes: name, location, plugin count, last update
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Fetch indexes again (all of them, or those named); a failing one keeps its copy
    Update(UpdateArgs),
    /// Remove added indexes (installed plugins stay installed)
    #[command(visible_alias = "rm")]
    Remove(RemoveArgs),
    /// Check an index file and publish it to a registry as an OCI artifact; prints the digest
    #[command(
        after_help = "Example:\n  krew-wasm index push plugins.yaml ghcr.io/org/krew-wasm-index:v1"
    )]
    Push(PushArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The name to refer to it by (`pull NAME/PLUGIN`): lowercase letters, digits and inner dashes
    pub name: String,
    /// A YAML or JSON file, or an index artifact in a registry (registry/repository:tag)
    #[arg(value_name = "FILE|REF", value_hint = ValueHint::AnyPath)]
    pub location: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Indexes to update (default: all)
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Indexes to remove
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The index document (YAML or JSON)
    #[arg(value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub file: PathBuf,
    /// Where to push: registry/repository:tag (the tag is required)
    #[arg(value_name = "REF")]
    pub reference: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words every result's name or description contains (case-insensitive); none lists all
    #[arg(value_name = "TERM")]
    pub terms: Vec<String>,
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

pub async fn index(args: IndexArgs) -> Result<()> {
    match args.command {
        IndexCommand::Add(args) => add(args).await,
        IndexCommand::List(args) => list(args),
        IndexCommand::Update(args) => update(args).await,
        IndexCommand::Remove(args) => remove(args),
        IndexCommand::Push(args) => push(args).await,
    }
}

/// Reads LOCATION: an existing file, else a registry reference.
fn parse_location(arg: &str) -> Result<IndexLocation> {
    let path = Path::new(arg);
    if path.exists() {
        let path = std::fs::canonicalize(path).with_context(|| format!("resolving {arg}"))?;
        return Ok(IndexLocation::File { path });
    }
    let looks_like_path = arg.starts_with(['/', '.', '~'])
        || [".yaml", ".yml", ".json"].iter().any(|s| arg.ends_with(s)) && !arg.contains(':');
    if looks_like_path {
        bail!("{arg}: no such file");
    }
    let reference = PluginReference::parse(arg).map_err(|e| {
        anyhow!(
            "`{arg}` is neither an existing file nor a registry reference ({e}); give a YAML or \
             JSON file, or an index artifact as registry/repository:tag"
        )
    })?;
    Ok(IndexLocation::Oci {
        reference: reference.to_string(),
    })
}

/// An index read from its location, valid.
struct Fetched {
    bytes: Vec<u8>,
    index: PluginIndex,
    manifest_digest: Option<String>,
}

/// Reads an index from its location and validates all of it.
async fn fetch(location: &IndexLocation, options: &RegistryOptions) -> Result<Fetched> {
    let (bytes, manifest_digest) = match location {
        IndexLocation::File { path } => (read_capped(path)?, None),
        IndexLocation::Oci { reference } => {
            let reference = PluginReference::parse(reference)?;
            let mut client = RegistryClient::new(&reference, options)?;
            let artifact = client
                .fetch_artifact(
                    &reference,
                    INDEX_CONFIG_MEDIA_TYPE,
                    INDEX_LAYER_MEDIA_TYPE,
                    INDEX_ARTIFACT,
                    MAX_INDEX_SIZE,
                )
                .await?;
            (artifact.layer, Some(artifact.manifest_digest))
        }
    };
    let index = PluginIndex::parse(&bytes)
        .with_context(|| format!("{location} is not a valid plugin index"))?;
    Ok(Fetched {
        bytes,
        index,
        manifest_digest,
    })
}

/// Reads a file of at most [`MAX_INDEX_SIZE`] bytes.
fn read_capped(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_INDEX_SIZE + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_INDEX_SIZE {
        bail!(
            "{} is larger than the {MAX_INDEX_SIZE} bytes an index may weigh",
            path.display()
        );
    }
    Ok(bytes)
}

fn record(
    name: &IndexName,
    location: IndexLocation,
    fetched: &Fetched,
    added_at: Option<String>,
) -> Result<CachedIndex> {
    let now = super::now_rfc3339();
    let document = String::from_utf8(fetched.bytes.clone())
        .context("the index is not UTF-8 text")?
        .trim_start_matches('\u{feff}')
        .to_string();
    Ok(CachedIndex {
        version: CACHED_INDEX_VERSION,
        name: name.to_string(),
        location,
        added_at: added_at.unwrap_or_else(|| now.clone()),
        updated_at: now,
        digest: sha256_digest(&fetched.bytes),
        manifest_digest: fetched.manifest_digest.clone(),
        document,
    })
}

/// The added index `name`, or an error saying how to add it.
fn cached(store: &Store, name: &str) -> Result<(CachedIndex, PluginIndex)> {
    let index = IndexName::new(name)?;
    let bytes = store.read_index(index.as_str())?.ok_or_else(|| {
        anyhow!(
            "no index named `{name}` is added; `krew-wasm index list` shows them, \
             `krew-wasm index add {name} FILE|REF` adds one"
        )
    })?;
    CachedIndex::parse(index.as_str(), &bytes).map_err(|e| {
        anyhow!(
            "the stored copy of index `{name}` ({}) is unreadable: {e}; remove it with \
             `krew-wasm index remove {name}` and add it again",
            store
                .index_path(index.as_str())
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )
    })
}

/// Every added index that reads; the others are reported on stderr and
/// skipped.
fn load_all(store: &Store) -> Result<Vec<(IndexName, PluginIndex)>> {
    let mut out = Vec::new();
    for name in store.index_names()? {
        match cached(store, &name) {
            Ok((_, document)) => out.push((IndexName::new(&name)?, document)),
            Err(e) => eprintln!("warning: skipping index `{name}`: {e:#}"),
        }
    }
    Ok(out)
}

async fn add(args: AddArgs) -> Result<()> {
    let name = IndexName::new(&args.name)?;
    let store = Store::new(store_root()?);
    let exists = |store: &Store| -> Result<()> {
        if store.read_index(name.as_str())?.is_some() {
            let from = cached(store, name.as_str())
                .map(|(record, _)| format!(" (from {})", record.location))
                .unwrap_or_default();
            bail!(
                "an index named `{name}` is already added{from}; `krew-wasm index update {name}` \
                 fetches it again, `krew-wasm index remove {name}` removes it"
            );
        }
        Ok(())
    };
    exists(&store)?;
    let location = parse_location(&args.location)?;
    let fetched = fetch(&location, &args.registry.to_options())
        .await
        .context("nothing was added")?;
    let record = record(&name, location.clone(), &fetched, None)?;
    let lock = super::lock_store(&store).await?;
    exists(&store)?;
    store.write_index(&lock, name.as_str(), &record.to_json())?;
    drop(lock);
    println!(
        "added index {name} from {location}: {} plugin(s); `krew-wasm search` lists them, \
         `krew-wasm pull {name}/NAME` installs one",
        fetched.index.plugins.len()
    );
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListItem {
    name: String,
    #[serde(rename = "type")]
    kind: Option<&'static str>,
    location: Option<String>,
    plugins: Option<usize>,
    added_at: Option<String>,
    updated_at: Option<String>,
    digest: Option<String>,
    manifest_digest: Option<String>,
    problem: Option<String>,
}

fn list(args: ListArgs) -> Result<()> {
    let store = Store::new(store_root()?);
    let items: Vec<ListItem> = store
        .index_names()?
        .into_iter()
        .map(|name| match cached(&store, &name) {
            Ok((record, document)) => ListItem {
                name,
                kind: Some(match record.location {
                    IndexLocation::File { .. } => "file",
                    IndexLocation::Oci { .. } => "oci",
                }),
                location: Some(record.location.to_string()),
                plugins: Some(document.plugins.len()),
                added_at: Some(record.added_at),
                updated_at: Some(record.updated_at),
                digest: Some(record.digest),
                manifest_digest: record.manifest_digest,
                problem: None,
            },
            Err(e) => ListItem {
                name,
                kind: None,
                location: None,
                plugins: None,
                added_at: None,
                updated_at: None,
                digest: None,
                manifest_digest: None,
                problem: Some(format!("{e:#}")),
            },
        })
        .collect();
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&items)?),
        OutputFormat::Table => {
            if items.is_empty() {
                eprintln!("no index is added; add one with `krew-wasm index add NAME FILE|REF`");
                return Ok(());
            }
            let dash = || "-".to_string();
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|item| {
                    vec![
                        item.name.clone(),
                        item.location.clone().unwrap_or_else(dash),
                        match (&item.plugins, &item.problem) {
                            (Some(n), _) => n.to_string(),
                            (None, Some(problem)) => format!("BROKEN: {problem}"),
                            (None, None) => dash(),
                        },
                        item.updated_at.clone().unwrap_or_else(dash),
                    ]
                })
                .collect();
            print_table(&["NAME", "LOCATION", "PLUGINS", "UPDATED"], &rows);
        }
    }
    Ok(())
}

async fn update(args: UpdateArgs) -> Result<()> {
    let store = Store::new(store_root()?);
    let names = if args.names.is_empty() {
        store.index_names()?
    } else {
        // Every name must be an added index before anything is fetched.
        for name in &args.names {
            if store.read_index(IndexName::new(name)?.as_str())?.is_none() {
                bail!(
                    "no index named `{name}` is added; `krew-wasm index list` shows them, \
                     `krew-wasm index add {name} FILE|REF` adds one"
                );
            }
        }
        args.names.clone()
    };
    if names.is_empty() {
        eprintln!("no index is added; add one with `krew-wasm index add NAME FILE|REF`");
        return Ok(());
    }
    let options = args.registry.to_options();
    let mut failed = Vec::new();
    for name in &names {
        if let Err(e) = update_one(&store, name, &options).await {
            eprintln!("error: index `{name}`: {e:#}; its previous copy is kept");
            failed.push(name.as_str());
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} index(es) could not be updated: {}",
            failed.len(),
            names.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

async fn update_one(store: &Store, name: &str, options: &RegistryOptions) -> Result<()> {
    let (previous, previous_index) = cached(store, name)?;
    let index_name = IndexName::new(name)?;
    let fetched = fetch(&previous.location, options).await?;
    let record = record(
        &index_name,
        previous.location.clone(),
        &fetched,
        Some(previous.added_at.clone()),
    )?;
    let lock = super::lock_store(store).await?;
    store.write_index(&lock, name, &record.to_json())?;
    drop(lock);
    let count = fetched.index.plugins.len();
    if record.digest == previous.digest {
        println!("index {name} is up to date ({count} plugin(s))");
    } else {
        println!(
            "updated index {name} from {}: {count} plugin(s), was {} ({} -> {})",
            record.location,
            previous_index.plugins.len(),
            short_digest(&previous.digest),
            short_digest(&record.digest)
        );
    }
    Ok(())
}

fn remove(args: RemoveArgs) -> Result<()> {
    let store = Store::new(store_root()?);
    // Check every name first, so `remove a typo` removes nothing.
    for name in &args.names {
        if store.read_index(IndexName::new(name)?.as_str())?.is_none() {
            bail!("no index named `{name}` is added; `krew-wasm index list` shows them");
        }
    }
    let lock = super::lock_with_notice(&store)?;
    for name in &args.names {
        store.remove_index(&lock, name)?;
        println!("removed index {name}");
    }
    drop(lock);
    Ok(())
}

async fn push(args: PushArgs) -> Result<()> {
    let reference = krew_wasm_oci::push::push_reference(&args.reference)?;
    let file = args.file.display().to_string();
    let bytes = read_capped(&args.file)?;
    let index = PluginIndex::parse(&bytes)
        .with_context(|| format!("{file} is not a valid plugin index; nothing was pushed"))?;
    let mut annotations = BTreeMap::new();
    annotations.insert(
        krew_wasm_oci::push::ANNOTATION_CREATED.to_string(),
        super::now_rfc3339(),
    );
    annotations.insert(
        "org.opencontainers.image.title".to_string(),
        args.file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "index.yaml".to_string()),
    );
    let mut client = RegistryClient::new(&reference, &args.registry.to_options())?;
    let digest = client
        .push_artifact(
            &reference,
            &ArtifactUpload {
                config_media_type: INDEX_CONFIG_MEDIA_TYPE.to_string(),
                layer_media_type: INDEX_LAYER_MEDIA_TYPE.to_string(),
                layer: bytes.into(),
                annotations,
            },
        )
        .await?;
    println!("{digest}");
    log::info!("pushed {} plugin(s) to {reference}", index.plugins.len());
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SearchItem {
    index: String,
    name: String,
    description: Option<String>,
    homepage: Option<String>,
    reference: String,
    installed: bool,
    /// The names it is installed under (`pull --name` may differ).
    installed_as: Vec<String>,
}

pub fn search(args: SearchArgs) -> Result<()> {
    let store = Store::new(store_root()?);
    let indexes = load_all(&store)?;
    // Installed plugins by repository: an index entry is installed when a
    // receipt's source is in the same repository, whatever its tag.
    let mut installed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in store.entries()? {
        if let Ok(receipt) = entry.receipt {
            installed
                .entry(receipt.repository().to_string())
                .or_default()
                .push(receipt.name.clone());
        }
    }
    let hits = krew_wasm_index::search(&indexes, &args.terms);
    let items: Vec<SearchItem> = hits
        .iter()
        .map(|hit| {
            let reference = hit.entry.reference.to_string();
            let installed_as = installed
                .get(source_repository(&reference))
                .cloned()
                .unwrap_or_default();
            SearchItem {
                index: hit.index.to_string(),
                name: hit.entry.name.to_string(),
                description: hit.entry.description.clone(),
                homepage: hit.entry.homepage.clone(),
                reference,
                installed: !installed_as.is_empty(),
                installed_as,
            }
        })
        .collect();
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&items)?),
        OutputFormat::Table => {
            if indexes.is_empty() {
                eprintln!("no index is added; add one with `krew-wasm index add NAME FILE|REF`");
                return Ok(());
            }
            if items.is_empty() {
                eprintln!(
                    "no plugin matches `{}` in {} index(es); `krew-wasm search` lists them all",
                    args.terms.join(" "),
                    indexes.len()
                );
                return Ok(());
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|item| {
                    vec![
                        format!("{}/{}", item.index, item.name),
                        item.description.clone().unwrap_or_default(),
                        item.reference.clone(),
                        match item.installed_as.as_slice() {
                            [] => "no".to_string(),
                            [one] if *one == item.name => "yes".to_string(),
                            names => format!("yes (as {})", names.join(", ")),
                        },
                    ]
                })
                .collect();
            print_table(&["NAME", "DESCRIPTION", "REFERENCE", "INSTALLED"], &rows);
        }
    }
    Ok(())
}

/// What `pull ARG` installs: a registry reference, or `NAME` / `INDEX/NAME`
/// looked up in the added indexes (then with the index's name for it).
pub(crate) fn pull_target(
    arg: &str,
    store: &Store,
) -> Result<(PluginReference, Option<PluginName>)> {
    let Some(lookup) = krew_wasm_index::lookup_syntax(arg) else {
        return Ok((PluginReference::parse(arg)?, None));
    };
    let indexes = load_all(store)?;
    let hit = krew_wasm_index::resolve(&indexes, &lookup)?;
    eprintln!("{} is {}", hit.qualified_name(), hit.entry.reference);
    Ok((hit.entry.reference.clone(), Some(hit.entry.name.clone())))
}
