//! The store directory and every change made to it.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tempfile::NamedTempFile;

use crate::name::PluginName;
use crate::receipt::Receipt;

/// Staged files older than this are leftovers of a killed command.
const STALE_STAGING_AGE: Duration = Duration::from_secs(60 * 60);

/// Errors of the store, phrased for the user.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no plugin named `{0}` is installed; `krew-wasm list` shows the installed plugins")]
    NotInstalled(String),
    #[error(
        "`{name}` is already installed (from {installed_from}); pass --force to replace \
         it, or --name NAME to install this one under another name"
    )]
    AlreadyInstalled {
        name: String,
        installed_from: String,
    },
    #[error(
        "the receipt {path} is unreadable ({reason}); reinstall the plugin with `krew-wasm pull --force …` or remove it with `krew-wasm rm`"
    )]
    CorruptReceipt { path: PathBuf, reason: String },
    #[error(
        "`{0}` has no previous version to roll back to: one is kept when an upgrade or pull \
         replaces the installed version, and a rollback uses it up"
    )]
    NoPreviousVersion(String),
    #[error(
        "the previous version of `{name}` ({digest}) is missing or corrupt in the store; \
         install it again with `krew-wasm pull {from}`"
    )]
    PreviousVersionDamaged {
        name: String,
        digest: String,
        from: String,
    },
    #[error("`{0}` changed while this command ran; run it again")]
    ChangedMeanwhile(String),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    move |source| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The krew-wasm store rooted at `$KREW_WASM_ROOT` (default `~/.krew-wasm`).
///
/// Reading never locks. Every change happens under [`StoreLock`] and reaches
/// its final path by a rename, so a reader sees either the old or the new
/// state, and a killed command leaves at most a file under `tmp/`.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// Proof that this process holds the store's advisory lock.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// What [`Store::install`] is asked to do.
pub struct Install<'a> {
    pub name: &'a PluginName,
    pub receipt: Receipt,
    /// The plugin's bytes, already verified against `receipt.digest`.
    pub wasm: &'a [u8],
    /// Where those bytes were downloaded under `tmp/`, if they were: moved
    /// into place rather than written again.
    pub staged: Option<NamedTempFile>,
    /// Precompiled artifact: engine compatibility hash and bytes.
    pub artifact: Option<(&'a str, Vec<u8>)>,
    /// The compatibility hashes of the engine configurations in use: the
    /// cache directories of any other (another wasmtime, another
    /// configuration) are collected. Empty: no cache directory is.
    pub current_engines: &'a [String],
    /// The krew-wasm executable the `kubectl-<name>` link points to.
    pub executable: &'a Path,
    /// Replace an installed plugin of the same name.
    pub force: bool,
}

/// What [`Store::install`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// Newly installed.
    New,
    /// Replaced a plugin of the same name (which had this receipt).
    Replaced(Box<Receipt>),
    /// The same source and digest were installed but damaged (blob, link or
    /// artifact missing or corrupt): repaired.
    Repaired,
    /// The same source and digest, intact, installed again (`--force`).
    Reinstalled,
    /// The same source and digest were already installed: nothing changed.
    Unchanged,
}

/// The state of an installed plugin, as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// The receipt, or why it could not be read.
    pub receipt: Result<Receipt, String>,
    /// Problems found: missing blob, missing or dangling link.
    pub problems: Vec<String>,
}

impl Store {
    /// A store at `root`. Nothing is created until the first change.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `bin/`: the directory to put on PATH.
    pub fn bin_dir(&self) -> PathBuf {
        self.root.join("bin")
    }

    pub fn link_path(&self, name: &PluginName) -> PathBuf {
        self.bin_dir().join(name.executable_name())
    }

    pub fn receipt_path(&self, name: &str) -> PathBuf {
        self.root.join("receipts").join(format!("{name}.json"))
    }

    /// `blobs/sha256/<hex>` for a `sha256:<hex>` digest.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("blobs").join("sha256").join(hex)
    }

    /// `cache/<engine>/<hex>.cwasm`: the precompiled artifact of a blob for one
    /// engine configuration.
    pub fn artifact_path(&self, engine: &str, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root
            .join("cache")
            .join(engine)
            .join(format!("{hex}.cwasm"))
    }

    /// `views/<hex>/`: a read-only directory holding one file, `file_name`,
    /// with `content`, for plugin runs to be given (the kubeconfig view).
    ///
    /// Directories are named by the SHA-256 of the content, so every run that
    /// needs the same content shares one, written once: a run reads no more
    /// than whether it exists, and leaves nothing behind when it is killed.
    /// Runs take no lock; two of them writing the same directory both stage it
    /// apart and rename it into place, and the loser keeps the winner's.
    pub fn view_dir(&self, file_name: &str, content: &[u8]) -> Result<PathBuf, StoreError> {
        let views = self.root.join("views");
        let digest = sha256_digest(content);
        let dir = views.join(digest.trim_start_matches("sha256:"));
        if dir.join(file_name).is_file() {
            return Ok(dir);
        }
        fs::create_dir_all(&views).map_err(io_err("creating", &views))?;
        let staging = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(&views)
            .map_err(io_err("creating a directory in", &views))?;
        let file = staging.path().join(file_name);
        fs::write(&file, content).map_err(io_err("writing", &file))?;
        match fs::rename(staging.path(), &dir) {
            Ok(()) => {
                // Renamed away: nothing is left for the guard to remove.
                let _ = staging.keep();
                Ok(dir)
            }
            Err(_) if dir.join(file_name).is_file() => Ok(dir),
            Err(e) => Err(StoreError::Io {
                action: "renaming into place",
                path: dir,
                source: e,
            }),
        }
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// A new file under `tmp/` to download into. It is deleted when dropped
    /// unless [`Store::install`] moves it into place.
    pub fn staging_file(&self) -> Result<NamedTempFile, StoreError> {
        let dir = self.tmp_dir();
        fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        tempfile::Builder::new()
            .prefix("blob-")
            .suffix(".partial")
            .tempfile_in(&dir)
            .map_err(io_err("creating a file in", &dir))
    }

    /// Takes the store's advisory lock, waiting for another krew-wasm command
    /// to finish; `on_wait` is called once if that happens.
    pub fn lock(&self, on_wait: impl FnOnce()) -> Result<StoreLock, StoreError> {
        fs::create_dir_all(&self.root).map_err(io_err("creating", &self.root))?;
        let path = self.lock_path();
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("opening", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                on_wait();
                file.lock().map_err(io_err("locking", &path))?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err("locking", &path)(e)),
        }
        Ok(StoreLock { _file: file })
    }

    /// Reads the receipt of `name`.
    pub fn receipt(&self, name: &str) -> Result<Receipt, StoreError> {
        // Receipts only exist under well-formed names; anything else (`../x`)
        // must never become a path.
        if !crate::name::is_well_formed(name) {
            return Err(StoreError::NotInstalled(name.to_string()));
        }
        let path = self.receipt_path(name);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotInstalled(name.to_string()));
            }
            Err(e) => return Err(io_err("reading", &path)(e)),
        };
        let receipt: Receipt =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::CorruptReceipt {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if receipt.name != name {
            return Err(StoreError::CorruptReceipt {
                path,
                reason: format!("it names plugin `{}`", receipt.name),
            });
        }
        // Digests become paths (`blobs/sha256/<hex>`, `cache/…/<hex>.cwasm`):
        // `sha256:../../x` must never reach a join. Found by fuzz/receipt.
        let previous = receipt.previous.as_ref();
        for (field, digest) in [
            ("digest", Some(&receipt.digest)),
            ("manifestDigest", Some(&receipt.manifest_digest)),
            ("previous.digest", previous.map(|p| &p.digest)),
            (
                "previous.manifestDigest",
                previous.map(|p| &p.manifest_digest),
            ),
        ]
        .into_iter()
        .filter_map(|(field, digest)| Some((field, digest?)))
        {
            if !is_sha256_digest(digest) {
                return Err(StoreError::CorruptReceipt {
                    path,
                    reason: format!(
                        "its {field} `{digest}` is not sha256:<64 lowercase hex digits>"
                    ),
                });
            }
        }
        Ok(receipt)
    }

    /// The names of all installed plugins, sorted.
    pub fn names(&self) -> Result<Vec<String>, StoreError> {
        let dir = self.root.join("receipts");
        let read = match fs::read_dir(&dir) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("reading", &dir)(e)),
        };
        let mut names = Vec::new();
        for entry in read {
            let entry = entry.map_err(io_err("reading", &dir))?;
            let file_name = entry.file_name();
            if let Some(name) = file_name.to_str().and_then(|f| f.strip_suffix(".json")) {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Every installed plugin with the problems found on disk.
    pub fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        let mut entries = Vec::new();
        for name in self.names()? {
            let receipt = self.receipt(&name).map_err(|e| e.to_string());
            let problems = match &receipt {
                Ok(receipt) => self.problems(receipt),
                Err(_) => Vec::new(),
            };
            entries.push(Entry {
                name,
                receipt,
                problems,
            });
        }
        Ok(entries)
    }

    /// What is wrong on disk with an installed plugin: its blob missing or of
    /// the wrong size, its link missing or dangling. Cheap: no hashing.
    pub fn problems(&self, receipt: &Receipt) -> Vec<String> {
        let mut problems = Vec::new();
        match fs::metadata(self.blob_path(&receipt.digest)) {
            Ok(meta) if meta.len() == receipt.size => {}
            Ok(_) => problems.push("blob corrupt".to_string()),
            Err(_) => problems.push("blob missing".to_string()),
        }
        match PluginName::new(&receipt.name) {
            Ok(plugin) => {
                let link = self.link_path(&plugin);
                match (fs::symlink_metadata(&link), fs::metadata(&link)) {
                    (Err(_), _) => problems.push("link missing".to_string()),
                    (Ok(_), Err(_)) => problems.push("link dangling".to_string()),
                    (Ok(_), Ok(_)) => {}
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
        problems
    }

    /// True when the blob of `digest` exists and hashes to `digest`.
    pub fn blob_is_intact(&self, digest: &str) -> bool {
        fs::read(self.blob_path(digest)).is_ok_and(|bytes| sha256_digest(&bytes) == digest)
    }

    /// Installs a verified plugin: puts the blob in place (unless an intact
    /// copy is there), writes the precompiled artifact, the link and, last,
    /// the receipt. The receipt is the commit point: until it is renamed into
    /// place the plugin does not exist, and the garbage collection of later
    /// changes removes what a killed install left.
    pub fn install(
        &self,
        _lock: &StoreLock,
        install: Install<'_>,
    ) -> Result<Installed, StoreError> {
        let name = install.name.as_str();
        let previous = match self.receipt(name) {
            Ok(previous) => Some(previous),
            Err(StoreError::NotInstalled(_)) => None,
            // A corrupt receipt may be replaced by --force, not silently.
            Err(e) if !install.force => return Err(e),
            Err(_) => None,
        };
        let same_content = |p: &Receipt| {
            p.digest == install.receipt.digest
                && p.manifest_digest == install.receipt.manifest_digest
        };
        let same = previous
            .as_ref()
            .is_some_and(|p| p.source == install.receipt.source && same_content(p));
        // Another tag or digest of the same repository is another version of
        // the same plugin (a moved tag, pinning, unpinning): no --force needed.
        let same_plugin = previous
            .as_ref()
            .is_some_and(|p| p.repository() == install.receipt.repository());
        if let Some(previous) = &previous
            && !same_plugin
            && !install.force
        {
            return Err(StoreError::AlreadyInstalled {
                name: name.to_string(),
                installed_from: previous.source.clone(),
            });
        }
        let intact = self.blob_is_intact(&install.receipt.digest);
        let damaged = !intact || !self.problems(&install.receipt).is_empty();
        if same && !install.force && !damaged {
            return Ok(Installed::Unchanged);
        }

        if !intact {
            self.put_blob(&install.receipt.digest, install.wasm, install.staged)?;
        }
        if let Some((engine, bytes)) = install.artifact {
            self.write_artifact(engine, &install.receipt.digest, &bytes)?;
        }
        self.write_link(install.name, install.executable)?;
        // One previous version is kept: the one this install replaces, when it
        // is other content; the same content keeps the one it had.
        let kept = match &previous {
            Some(p) if same_content(p) => p.previous.clone(),
            Some(p) => Some(p.current_version()),
            None => None,
        };
        let mut receipt = install.receipt;
        receipt.previous = kept;
        self.write_receipt(&receipt)?;
        // Committed: from here on, trouble is a warning, not a failure.
        self.collect_garbage(install.current_engines, install.executable);
        Ok(match previous {
            Some(_) if same && damaged => Installed::Repaired,
            Some(_) if same => Installed::Reinstalled,
            Some(previous) => Installed::Replaced(Box::new(previous)),
            None => Installed::New,
        })
    }

    /// Returns `name` to its previous version (`expected`, as the caller read
    /// it before precompiling): its blob is re-hashed, its precompiled
    /// artifact written, and the receipt, written last, records that version
    /// with the grants `granted` gives, from the current receipt and that
    /// version as read under the lock (the caller decides what of its old
    /// grants still stands), and no previous one. What the rolled-back
    /// version alone used is collected.
    #[allow(clippy::too_many_arguments)] // each is one fact the commit needs
    pub fn rollback(
        &self,
        _lock: &StoreLock,
        name: &PluginName,
        expected: &crate::receipt::PreviousVersion,
        granted: impl FnOnce(
            &Receipt,
            &crate::receipt::PreviousVersion,
        ) -> krew_wasm_permissions::Permissions,
        artifact: Option<(&str, Vec<u8>)>,
        executable: &Path,
        installed_at: String,
    ) -> Result<Receipt, StoreError> {
        let current = self.receipt(name.as_str())?;
        let Some(previous) = current.previous.clone() else {
            return Err(StoreError::NoPreviousVersion(name.to_string()));
        };
        if &previous != expected {
            return Err(StoreError::ChangedMeanwhile(name.to_string()));
        }
        // A well-formed digest too: only `sha256:<hex>` of the bytes matches.
        if !self.blob_is_intact(&previous.digest) {
            return Err(StoreError::PreviousVersionDamaged {
                name: name.to_string(),
                digest: previous.digest,
                from: previous.source,
            });
        }
        if let Some((engine, bytes)) = artifact {
            self.write_artifact(engine, &previous.digest, &bytes)?;
        }
        self.write_link(name, executable)?;
        let granted = granted(&current, &previous);
        let mut receipt = Receipt::at_version(name.as_str(), previous, installed_at, None);
        receipt.granted = granted;
        self.write_receipt(&receipt)?;
        // Other engines' caches are left to the next install.
        self.collect_garbage(&[], executable);
        Ok(receipt)
    }

    /// Puts verified bytes at `blobs/sha256/<hex>`, replacing a corrupt copy:
    /// by renaming the staged download, or by writing `wasm`.
    fn put_blob(
        &self,
        digest: &str,
        wasm: &[u8],
        staged: Option<NamedTempFile>,
    ) -> Result<(), StoreError> {
        let blob_path = self.blob_path(digest);
        let dir = parent(&blob_path);
        fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        match staged {
            Some(staged) => {
                staged
                    .as_file()
                    .sync_all()
                    .map_err(io_err("syncing", staged.path()))?;
                set_read_only(staged.path())?;
                staged.persist(&blob_path).map_err(|e| StoreError::Io {
                    action: "moving the downloaded blob to",
                    path: blob_path.clone(),
                    source: e.error,
                })?;
            }
            None => {
                write_atomically(&blob_path, wasm)?;
                set_read_only(&blob_path)?;
            }
        }
        Ok(())
    }

    /// Replaces the permissions granted to an installed plugin (`grant`,
    /// `revoke`): one atomic rewrite of its receipt, nothing else touched.
    pub fn set_granted(
        &self,
        _lock: &StoreLock,
        name: &str,
        granted: krew_wasm_permissions::Permissions,
    ) -> Result<Receipt, StoreError> {
        let mut receipt = self.receipt(name)?;
        receipt.granted = granted;
        self.write_receipt(&receipt)?;
        Ok(receipt)
    }

    /// Records a signature check that passed for the installed version of
    /// `name` (`verify NAME`): one atomic rewrite of its receipt. A check of
    /// `manifest_digest` does not apply when another version was installed
    /// meanwhile ([`StoreError::ChangedMeanwhile`]). A record with the same
    /// `required_by` is replaced, so checking again does not pile them up.
    pub fn record_signature(
        &self,
        _lock: &StoreLock,
        name: &str,
        manifest_digest: &str,
        record: crate::SignatureRecord,
    ) -> Result<Receipt, StoreError> {
        let mut receipt = self.receipt(name)?;
        if receipt.manifest_digest != manifest_digest {
            return Err(StoreError::ChangedMeanwhile(name.to_string()));
        }
        receipt
            .signatures
            .retain(|existing| existing.required_by != record.required_by);
        receipt.signatures.push(record);
        self.write_receipt(&receipt)?;
        Ok(receipt)
    }

    /// Writes `receipts/<name>.json` atomically (temp file + rename).
    fn write_receipt(&self, receipt: &Receipt) -> Result<(), StoreError> {
        let receipt_path = self.receipt_path(&receipt.name);
        let json = serde_json::to_vec_pretty(receipt).map_err(|e| StoreError::Io {
            action: "serialising",
            path: receipt_path.clone(),
            source: io::Error::other(e),
        })?;
        write_atomically(&receipt_path, &json)
    }

    /// True when a receipt exists for `name`, readable or not.
    pub fn contains(&self, name: &str) -> bool {
        crate::name::is_well_formed(name) && self.receipt_path(name).is_file()
    }

    /// Removes a plugin: receipt first (the commit point), then its link, then
    /// the blob and precompiled artifacts no other plugin uses. Returns the
    /// receipt, or `None` when it was unreadable (removed all the same).
    pub fn remove(
        &self,
        _lock: &StoreLock,
        name: &str,
        executable: &Path,
    ) -> Result<Option<Receipt>, StoreError> {
        let receipt = match self.receipt(name) {
            Ok(receipt) => Some(receipt),
            Err(StoreError::CorruptReceipt { .. }) => None,
            Err(e) => return Err(e),
        };
        let receipt_path = self.receipt_path(name);
        fs::remove_file(&receipt_path).map_err(io_err("removing", &receipt_path))?;
        if let Ok(plugin) = PluginName::new(name) {
            remove_if_present(&self.link_path(&plugin))?;
        }
        self.collect_garbage(&[], executable);
        Ok(receipt)
    }

    /// Writes a precompiled artifact atomically. Needs no lock: runs call it
    /// to replace a missing or stale artifact, and a rename is all-or-nothing.
    pub fn write_artifact(
        &self,
        engine: &str,
        digest: &str,
        bytes: &[u8],
    ) -> Result<PathBuf, StoreError> {
        let path = self.artifact_path(engine, digest);
        write_atomically(&path, bytes)?;
        Ok(path)
    }

    /// Removes what no receipt refers to: blobs, precompiled artifacts (and
    /// whole cache directories of engines not in `current_engines`, unless
    /// it is empty), orphan `kubectl-*` links to `executable`, and temporary
    /// files of commands killed more than an hour ago. Runs under the lock
    /// after every change; failures are logged as warnings, since the change
    /// itself is already committed.
    fn collect_garbage(&self, current_engines: &[String], executable: &Path) {
        let mut digests = BTreeSet::new();
        let mut executables = BTreeSet::new();
        let mut all_readable = true;
        for name in self.names().unwrap_or_default() {
            match self.receipt(&name) {
                Ok(receipt) => {
                    digests.insert(receipt.digest_hex().to_string());
                    // Kept for `rollback`.
                    if let Some(previous) = &receipt.previous {
                        digests.insert(previous.digest_hex().to_string());
                    }
                }
                Err(e) => {
                    // Its blob is unknown: keep every blob and artifact.
                    log::warn!("not collecting unused blobs: {e}");
                    all_readable = false;
                }
            }
            if let Ok(plugin) = PluginName::new(&name) {
                executables.insert(plugin.executable_name());
            }
        }
        let remove = |path: &Path| {
            if let Err(e) = remove_if_present(path) {
                log::warn!("{e}");
            }
        };
        let entries = |dir: &Path| list_dir(dir).unwrap_or_default();
        if all_readable {
            for path in entries(&self.root.join("blobs").join("sha256")) {
                if is_stale_temp(&path)
                    || (path.is_file() && !is_temp(&path) && !file_name_in(&path, &digests, ""))
                {
                    remove(&path);
                }
            }
            for engine_dir in entries(&self.root.join("cache"))
                .into_iter()
                .filter(|p| p.is_dir())
            {
                let other_engine = !current_engines.is_empty()
                    && !current_engines
                        .iter()
                        .any(|current| engine_dir.ends_with(current));
                if other_engine {
                    if let Err(e) = fs::remove_dir_all(&engine_dir) {
                        log::warn!("removing {}: {e}", engine_dir.display());
                    }
                    continue;
                }
                for path in entries(&engine_dir) {
                    if is_stale_temp(&path)
                        || (path.is_file()
                            && !is_temp(&path)
                            && !file_name_in(&path, &digests, ".cwasm"))
                    {
                        remove(&path);
                    }
                }
            }
        }
        let executable_name = executable.file_name();
        for path in entries(&self.bin_dir()) {
            let orphan_link = path
                .file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(crate::name::KUBECTL_PREFIX))
                && !file_name_in(&path, &executables, "")
                // Only links to krew-wasm: the directory may hold the user's own plugins.
                && fs::read_link(&path).is_ok_and(|target| target.file_name() == executable_name);
            if orphan_link || is_stale_temp(&path) {
                remove(&path);
            }
        }
        for path in entries(&self.root.join("receipts")) {
            if is_stale_temp(&path) {
                remove(&path);
            }
        }
        // Views are a few hundred bytes each and may be in use by a running
        // plugin (a watch can run for days), so only staging leftovers go.
        for path in entries(&self.root.join("views")) {
            if is_stale_temp(&path)
                && let Err(e) = fs::remove_dir_all(&path)
            {
                log::warn!("removing {}: {e}", path.display());
            }
        }
        for path in entries(&self.tmp_dir()) {
            if path.is_file() && is_older_than(&path, STALE_STAGING_AGE) {
                remove(&path);
            }
        }
    }

    /// Points `bin/kubectl-<name>` at the krew-wasm executable with a relative
    /// link, replacing any previous link in one rename.
    fn write_link(&self, name: &PluginName, executable: &Path) -> Result<(), StoreError> {
        let bin = self.bin_dir();
        fs::create_dir_all(&bin).map_err(io_err("creating", &bin))?;
        let bin_real = fs::canonicalize(&bin).map_err(io_err("resolving", &bin))?;
        let exe_real = fs::canonicalize(executable).map_err(io_err("resolving", executable))?;
        let target = relative_path(&bin_real, &exe_real);
        let link = self.link_path(name);
        let temp = bin.join(format!(
            ".{}.{}.tmp",
            name.executable_name(),
            std::process::id()
        ));
        remove_if_present(&temp)?;
        symlink(&target, &temp).map_err(io_err("creating link", &temp))?;
        fs::rename(&temp, &link).map_err(io_err("renaming link to", &link))?;
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory,
/// synced before the rename, so `path` holds either the old or the new bytes.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = parent(path);
    fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err("creating a file in", dir))?;
    temp.write_all(bytes)
        .map_err(io_err("writing", temp.path()))?;
    temp.as_file()
        .sync_all()
        .map_err(io_err("syncing", temp.path()))?;
    temp.persist(path).map_err(|e| StoreError::Io {
        action: "renaming into place",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// The path that leads from directory `from` to `to` (both absolute).
pub fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to_components: Vec<_> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_components)
        .take_while(|(a, b)| a == b)
        .count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for component in &to_components[common..] {
        path.push(component);
    }
    path
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Temporary files this module creates: `.tmp-*` (atomic writes) and
/// `.kubectl-*.tmp` (link swaps).
fn is_temp(path: &Path) -> bool {
    path.file_name()
        .and_then(|f| f.to_str())
        .is_some_and(|f| f.starts_with('.') && (f.starts_with(".tmp-") || f.ends_with(".tmp")))
}

/// A temporary file left by a command killed long ago. Younger ones may
/// belong to a command running now (a plugin run rewriting its artifact).
fn is_stale_temp(path: &Path) -> bool {
    is_temp(path) && is_older_than(path, STALE_STAGING_AGE)
}

fn is_older_than(path: &Path, age: Duration) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| SystemTime::now().duration_since(t).unwrap_or_default() > age)
}

/// Whether `digest` is `sha256:` and 64 lowercase hex digits.
pub fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `sha256:<hex>` of `bytes` (ring: nearly twice sha2's speed on CPUs
/// without SHA extensions; `run FILE` hashes the whole plugin every time).
pub fn sha256_digest(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    format!("sha256:{}", hex::encode(digest))
}

fn file_name_in(path: &Path, set: &BTreeSet<String>, suffix: &str) -> bool {
    path.file_name()
        .and_then(|f| f.to_str())
        .and_then(|f| f.strip_suffix(suffix))
        .is_some_and(|stem| set.contains(stem))
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => Ok(Vec::new()),
        Ok(read) => read
            .map(|e| e.map(|e| e.path()).map_err(io_err("reading", dir)))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err("reading", dir)(e)),
    }
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("removing", path)(e)),
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

#[cfg(unix)]
fn set_read_only(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o444)).map_err(io_err("protecting", path))
}

#[cfg(not(unix))]
fn set_read_only(path: &Path) -> Result<(), StoreError> {
    let mut perms = fs::metadata(path)
        .map_err(io_err("reading", path))?
        .permissions();
    perms.set_readonly(true);
    fs::set_permissions(path, perms).map_err(io_err("protecting", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{PluginKind, PreviousVersion, RECEIPT_VERSION};

    const WASM_A: &[u8] = b"\0asm-a";
    const WASM_B: &[u8] = b"\0asm-bb";

    fn receipt(name: &str, wasm: &[u8]) -> Receipt {
        Receipt {
            version: RECEIPT_VERSION,
            name: name.to_string(),
            source: format!("127.0.0.1:5000/{name}:v1"),
            manifest_digest: format!("sha256:{}", "0".repeat(64)),
            digest: sha256_digest(wasm),
            media_type: "application/wasm".to_string(),
            size: wasm.len() as u64,
            kind: PluginKind::P2Component,
            installed_at: "2026-01-01T00:00:00Z".to_string(),
            pinned: false,
            requested: Default::default(),
            granted: Default::default(),
            signatures: Vec::new(),
            previous: None,
        }
    }

    /// [`Store::rollback`] keeping the previous version's grants as they were.
    fn roll_back(
        store: &Store,
        lock: &StoreLock,
        plugin: &PluginName,
        previous: &crate::receipt::PreviousVersion,
        exe: &Path,
    ) -> Result<Receipt, StoreError> {
        store.rollback(
            lock,
            plugin,
            previous,
            |_, previous| previous.granted.clone(),
            None,
            exe,
            "now".into(),
        )
    }

    fn exe(store: &Store) -> PathBuf {
        let exe = store.root().join("krew-wasm");
        if !exe.exists() {
            fs::create_dir_all(store.root()).unwrap();
            fs::write(&exe, b"#!").unwrap();
        }
        exe
    }

    fn install(
        store: &Store,
        name: &str,
        wasm: &[u8],
        staged: bool,
        force: bool,
    ) -> Result<Installed, StoreError> {
        install_from(store, receipt(name, wasm), wasm, staged, force)
    }

    fn install_from(
        store: &Store,
        receipt: Receipt,
        wasm: &[u8],
        staged: bool,
        force: bool,
    ) -> Result<Installed, StoreError> {
        let name = receipt.name.clone();
        let name = name.as_str();
        let exe = exe(store);
        let lock = store.lock(|| {}).unwrap();
        let plugin = PluginName::new(name).unwrap();
        let staged = staged.then(|| {
            let mut file = store.staging_file().unwrap();
            file.write_all(wasm).unwrap();
            file
        });
        store.install(
            &lock,
            Install {
                name: &plugin,
                receipt,
                wasm,
                staged,
                artifact: Some(("engine1", b"compiled".to_vec())),
                current_engines: &["engine1".to_string(), "engine1-timeouts".to_string()],
                executable: &exe,
                force,
            },
        )
    }

    fn remove(store: &Store, name: &str) -> Result<Option<Receipt>, StoreError> {
        let lock = store.lock(|| {}).unwrap();
        store.remove(&lock, name, &exe(store))
    }

    #[test]
    fn install_list_remove_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("root"));
        assert_eq!(
            install(&store, "foo-bar", WASM_A, true, false).unwrap(),
            Installed::New
        );
        let link = store.bin_dir().join("kubectl-foo_bar");
        assert_eq!(fs::read_link(&link).unwrap(), PathBuf::from("../krew-wasm"));
        let digest = sha256_digest(WASM_A);
        assert!(store.blob_is_intact(&digest));
        assert!(store.artifact_path("engine1", &digest).is_file());
        let entries = store.entries().unwrap();
        assert_eq!(entries.len(), 1);
        assert!(entries[0].problems.is_empty(), "{:?}", entries[0].problems);

        assert!(remove(&store, "foo-bar").unwrap().is_some());
        assert!(fs::symlink_metadata(&link).is_err());
        assert!(!store.blob_path(&digest).exists());
        assert!(!store.artifact_path("engine1", &digest).exists());
        assert!(matches!(
            remove(&store, "foo-bar"),
            Err(StoreError::NotInstalled(_))
        ));
    }

    #[test]
    fn a_receipt_whose_digest_is_not_a_digest_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("root"));
        install(&store, "foo", WASM_A, true, false).unwrap();
        let good = fs::read_to_string(store.receipt_path("foo")).unwrap();
        let digest = sha256_digest(WASM_A);
        for bad in ["sha256:../../../../tmp/evil", "sha256:/tmp/evil", "md5:abc"] {
            fs::write(store.receipt_path("foo"), good.replace(&digest, bad)).unwrap();
            assert!(
                matches!(store.receipt("foo"), Err(StoreError::CorruptReceipt { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn grants_are_rewritten_in_the_receipt_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("root"));
        install(&store, "foo", WASM_A, true, false).unwrap();
        let before = fs::read(store.blob_path(&sha256_digest(WASM_A))).unwrap();
        let mut granted = krew_wasm_permissions::Permissions::none();
        granted.insert("env:AWS_PROFILE".parse().unwrap());
        let lock = store.lock(|| ()).unwrap();
        store.set_granted(&lock, "foo", granted.clone()).unwrap();
        drop(lock);
        let receipt = store.receipt("foo").unwrap();
        assert_eq!(receipt.granted, granted);
        assert!(receipt.requested.is_empty());
        let json = fs::read_to_string(store.receipt_path("foo")).unwrap();
        assert!(
            json.contains("AWS_PROFILE") && !json.contains("requested"),
            "{json}"
        );
        assert_eq!(
            fs::read(store.blob_path(&sha256_digest(WASM_A))).unwrap(),
            before
        );

        // A receipt written before permissions existed still reads.
        let old = json.replace("AWS_PROFILE", "X");
        let mut value: serde_json::Value = serde_json::from_str(&old).unwrap();
        value.as_object_mut().unwrap().remove("granted");
        fs::write(store.receipt_path("foo"), value.to_string()).unwrap();
        assert!(store.receipt("foo").unwrap().granted.is_empty());

        let lock = store.lock(|| ()).unwrap();
        assert!(matches!(
            store.set_granted(&lock, "nope", granted),
            Err(StoreError::NotInstalled(_))
        ));
    }

    /// `name`'s receipt for `wasm` from another repository.
    fn elsewhere(name: &str, wasm: &[u8]) -> Receipt {
        Receipt {
            source: format!("127.0.0.1:5000/elsewhere/{name}:v1"),
            ..receipt(name, wasm)
        }
    }

    #[test]
    fn refuses_to_overwrite_without_force_and_keeps_shared_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        install(&store, "one", WASM_A, true, false).unwrap();
        install(&store, "two", WASM_A, false, false).unwrap();
        assert!(matches!(
            install_from(&store, elsewhere("one", WASM_B), WASM_B, true, false),
            Err(StoreError::AlreadyInstalled { .. })
        ));
        assert_eq!(
            install(&store, "one", WASM_A, false, false).unwrap(),
            Installed::Unchanged
        );
        assert_eq!(
            install(&store, "two", WASM_A, false, true).unwrap(),
            Installed::Reinstalled
        );
        assert!(matches!(
            install_from(&store, elsewhere("one", WASM_B), WASM_B, true, true).unwrap(),
            Installed::Replaced(_)
        ));
        assert!(
            store.blob_is_intact(&sha256_digest(WASM_A)),
            "`two` still uses it"
        );
        assert!(store.blob_is_intact(&sha256_digest(WASM_B)));
        remove(&store, "two").unwrap();
        assert!(
            store.blob_is_intact(&sha256_digest(WASM_A)),
            "`one` keeps it as its previous version"
        );
        remove(&store, "one").unwrap();
        assert!(!store.blob_path(&sha256_digest(WASM_A)).exists());
        assert!(!store.blob_path(&sha256_digest(WASM_B)).exists());
    }

    #[test]
    fn one_previous_version_is_kept_until_the_next_change_of_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        const WASM_C: &[u8] = b"\0asm-ccc";
        let (a, b, c) = (
            sha256_digest(WASM_A),
            sha256_digest(WASM_B),
            sha256_digest(WASM_C),
        );
        let kept = |digest: &str| {
            store.blob_is_intact(digest) && store.artifact_path("engine1", digest).is_file()
        };
        install(&store, "tool", WASM_A, true, false).unwrap();
        assert_eq!(store.receipt("tool").unwrap().previous, None);
        // The tag moved: no --force needed, A is kept as the previous version.
        assert!(matches!(
            install(&store, "tool", WASM_B, true, false).unwrap(),
            Installed::Replaced(_)
        ));
        let current = store.receipt("tool").unwrap();
        assert_eq!(current.digest, b);
        assert_eq!(
            current.previous.as_ref().map(|p| p.digest.as_str()),
            Some(a.as_str())
        );
        assert!(kept(&a) && kept(&b));
        // Re-pulling B changes nothing, and keeps A.
        assert_eq!(
            install(&store, "tool", WASM_B, false, false).unwrap(),
            Installed::Unchanged
        );
        // Pinning B (same content, another source) keeps A as well.
        let pinned = Receipt {
            source: format!("127.0.0.1:5000/tool@sha256:{}", "0".repeat(64)),
            pinned: true,
            ..receipt("tool", WASM_B)
        };
        install_from(&store, pinned, WASM_B, false, false).unwrap();
        let current = store.receipt("tool").unwrap();
        assert!(current.pinned);
        assert_eq!(
            current.previous.as_ref().map(|p| p.digest.as_str()),
            Some(a.as_str())
        );
        assert!(kept(&a));
        // The next version drops A: only one previous version is kept.
        install(&store, "tool", WASM_C, true, false).unwrap();
        let current = store.receipt("tool").unwrap();
        assert_eq!(
            current.previous.as_ref().map(|p| p.digest.as_str()),
            Some(b.as_str())
        );
        assert!(!store.blob_path(&a).exists());
        assert!(!store.artifact_path("engine1", &a).exists());
        assert!(kept(&b) && kept(&c));

        // Rollback returns to B, uses the previous version up, drops C.
        let exe = exe(&store);
        let plugin = PluginName::new("tool").unwrap();
        let previous = current.previous.clone().unwrap();
        let lock = store.lock(|| {}).unwrap();
        let rolled = roll_back(&store, &lock, &plugin, &previous, &exe).unwrap();
        assert_eq!(rolled.digest, b);
        assert_eq!(rolled.previous, None);
        assert_eq!(store.receipt("tool").unwrap(), rolled);
        assert!(kept(&b));
        assert!(!store.blob_path(&c).exists());
        assert!(matches!(
            roll_back(&store, &lock, &plugin, &previous, &exe),
            Err(StoreError::NoPreviousVersion(_))
        ));
    }

    #[test]
    fn a_rollback_to_a_damaged_blob_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        install(&store, "tool", WASM_A, true, false).unwrap();
        install(&store, "tool", WASM_B, true, false).unwrap();
        let receipt_before = fs::read(store.receipt_path("tool")).unwrap();
        let previous = store.receipt("tool").unwrap().previous.unwrap();
        let blob = store.blob_path(&previous.digest);
        fs::remove_file(&blob).unwrap();
        fs::write(&blob, b"\0asm-x").unwrap();
        let lock = store.lock(|| {}).unwrap();
        let plugin = PluginName::new("tool").unwrap();
        let exe = exe(&store);
        assert!(matches!(
            roll_back(&store, &lock, &plugin, &previous, &exe),
            Err(StoreError::PreviousVersionDamaged { .. })
        ));
        assert_eq!(
            fs::read(store.receipt_path("tool")).unwrap(),
            receipt_before
        );
        // A previous version other than the one the caller read: refused.
        let other = PreviousVersion {
            digest: sha256_digest(WASM_B),
            ..previous
        };
        assert!(matches!(
            roll_back(&store, &lock, &plugin, &other, &exe),
            Err(StoreError::ChangedMeanwhile(_))
        ));
    }

    #[test]
    fn a_receipt_without_a_previous_version_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        install(&store, "tool", WASM_A, true, false).unwrap();
        let json = fs::read_to_string(store.receipt_path("tool")).unwrap();
        assert!(!json.contains("previous"), "{json}");
        install(&store, "tool", WASM_B, true, false).unwrap();
        let json = fs::read_to_string(store.receipt_path("tool")).unwrap();
        assert!(json.contains("\"previous\""), "{json}");
        // A previous digest that is no digest makes the receipt corrupt.
        let tampered = json.replacen(&sha256_digest(WASM_A), "sha256:../../x", 1);
        assert_ne!(tampered, json);
        fs::write(store.receipt_path("tool"), tampered).unwrap();
        assert!(matches!(
            store.receipt("tool"),
            Err(StoreError::CorruptReceipt { .. })
        ));
    }

    #[test]
    fn a_damaged_install_is_repaired_from_verified_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        install(&store, "hello", WASM_A, true, false).unwrap();
        let blob = store.blob_path(&sha256_digest(WASM_A));
        // Corrupt the blob (it is read-only: replace it) and drop the link.
        fs::remove_file(&blob).unwrap();
        fs::write(&blob, b"\0asm-x").unwrap();
        fs::remove_file(store.bin_dir().join("kubectl-hello")).unwrap();
        assert_eq!(store.entries().unwrap()[0].problems, ["link missing"]);
        assert!(!store.blob_is_intact(&sha256_digest(WASM_A)));
        // Same source and digest, no staged download: repaired, not refused.
        assert_eq!(
            install(&store, "hello", WASM_A, false, false).unwrap(),
            Installed::Repaired
        );
        assert!(store.blob_is_intact(&sha256_digest(WASM_A)));
        assert!(store.entries().unwrap()[0].problems.is_empty());
    }

    #[test]
    fn views_are_shared_by_content_and_leave_no_staging() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let first = store.view_dir("kubeconfig", b"view one").unwrap();
        assert_eq!(fs::read(first.join("kubeconfig")).unwrap(), b"view one");
        assert_eq!(store.view_dir("kubeconfig", b"view one").unwrap(), first);
        let second = store.view_dir("kubeconfig", b"view two").unwrap();
        assert_ne!(second, first);
        assert_eq!(fs::read(second.join("kubeconfig")).unwrap(), b"view two");
        let mut names: Vec<_> = list_dir(&dir.path().join("views"))
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(
            names.iter().all(|n| n.len() == 64 && !n.starts_with('.')),
            "{names:?}"
        );
    }

    #[test]
    fn reports_broken_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        install(&store, "hello", WASM_A, true, false).unwrap();
        fs::remove_file(store.blob_path(&sha256_digest(WASM_A))).unwrap();
        fs::remove_file(store.root().join("krew-wasm")).unwrap();
        let entries = store.entries().unwrap();
        assert_eq!(entries[0].problems, ["blob missing", "link dangling"]);
    }

    #[test]
    fn garbage_collection_keeps_what_is_not_ours() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        install(&store, "hello", WASM_A, true, false).unwrap();
        // Left by a killed install: an orphan blob and a link to krew-wasm.
        let orphan_blob = store.blob_path(&sha256_digest(WASM_B));
        fs::write(&orphan_blob, WASM_B).unwrap();
        symlink(
            Path::new("../krew-wasm"),
            &store.bin_dir().join("kubectl-orphan"),
        )
        .unwrap();
        // The user's own plugin in the same directory, and another engine's cache.
        symlink(
            Path::new("/usr/bin/true"),
            &store.bin_dir().join("kubectl-mine"),
        )
        .unwrap();
        fs::create_dir_all(store.root().join("cache/old-engine")).unwrap();
        // The artifact a run with a timeout compiled, for the other current
        // engine: kept, as the one of a plugin no receipt names is not.
        let timed = store.artifact_path("engine1-timeouts", &sha256_digest(WASM_A));
        let timed_orphan = store.artifact_path("engine1-timeouts", &sha256_digest(WASM_B));
        fs::create_dir_all(timed.parent().unwrap()).unwrap();
        fs::write(&timed, b"compiled").unwrap();
        fs::write(&timed_orphan, b"compiled").unwrap();
        install(&store, "other", WASM_A, false, false).unwrap();
        assert!(timed.is_file(), "removed a current engine's artifact");
        assert!(!timed_orphan.exists());
        assert!(!orphan_blob.exists());
        assert!(fs::symlink_metadata(store.bin_dir().join("kubectl-orphan")).is_err());
        assert!(
            fs::symlink_metadata(store.bin_dir().join("kubectl-mine")).is_ok(),
            "removed the user's own plugin"
        );
        assert!(!store.root().join("cache/old-engine").exists());
    }

    #[test]
    fn names_never_become_paths() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("root"));
        let outside = dir.path().join("victim.json");
        fs::write(&outside, b"{}").unwrap();
        install(&store, "hello", WASM_A, true, false).unwrap();
        for name in ["../victim", "../../victim", "a/b", ""] {
            assert!(!store.contains(name));
            assert!(matches!(
                store.receipt(name),
                Err(StoreError::NotInstalled(_))
            ));
            assert!(matches!(
                remove(&store, name),
                Err(StoreError::NotInstalled(_))
            ));
        }
        assert!(outside.exists());
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_path(Path::new("/a/b/bin"), Path::new("/a/c/krew")),
            PathBuf::from("../../c/krew")
        );
        assert_eq!(
            relative_path(Path::new("/x"), Path::new("/x/y")),
            PathBuf::from("y")
        );
    }
}
