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
    /// The downloaded blob, already verified, staged under `tmp/`.
    /// `None` when the store already holds this digest.
    pub blob: Option<NamedTempFile>,
    /// Precompiled artifact: engine compatibility hash and bytes.
    pub artifact: Option<(&'a str, Vec<u8>)>,
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
            let mut problems = Vec::new();
            if let Ok(receipt) = &receipt
                && !self.blob_path(&receipt.digest).is_file()
            {
                problems.push("blob missing".to_string());
            }
            match PluginName::new(&name) {
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
            entries.push(Entry {
                name,
                receipt,
                problems,
            });
        }
        Ok(entries)
    }

    /// Installs a verified plugin: moves the staged blob into place, writes the
    /// precompiled artifact, the link and, last, the receipt. The receipt is
    /// the commit point: until it is renamed into place the plugin does not
    /// exist, and [`Store::collect_garbage`] removes what a killed install left.
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
        if let Some(previous) = &previous {
            let unchanged = previous.source == install.receipt.source
                && previous.digest == install.receipt.digest
                && previous.manifest_digest == install.receipt.manifest_digest;
            if unchanged && !install.force && self.blob_path(&previous.digest).is_file() {
                return Ok(Installed::Unchanged);
            }
            if !install.force {
                return Err(StoreError::AlreadyInstalled {
                    name: name.to_string(),
                    installed_from: previous.source.clone(),
                });
            }
        }

        let blob_path = self.blob_path(&install.receipt.digest);
        if let Some(staged) = install.blob
            && !blob_path.is_file()
        {
            let dir = parent(&blob_path);
            fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
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
        if let Some((engine, bytes)) = install.artifact {
            self.write_artifact(engine, &install.receipt.digest, &bytes)?;
        }
        self.write_link(install.name, install.executable)?;
        let receipt_path = self.receipt_path(name);
        let json = serde_json::to_vec_pretty(&install.receipt).map_err(|e| StoreError::Io {
            action: "serialising",
            path: receipt_path.clone(),
            source: io::Error::other(e),
        })?;
        write_atomically(&receipt_path, &json)?;
        self.collect_garbage()?;
        Ok(match previous {
            Some(previous) => Installed::Replaced(Box::new(previous)),
            None => Installed::New,
        })
    }

    /// Removes a plugin: receipt first (the commit point), then its link, then
    /// the blob and precompiled artifacts no other plugin uses.
    pub fn remove(&self, _lock: &StoreLock, name: &str) -> Result<Receipt, StoreError> {
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
        self.collect_garbage()?;
        receipt.ok_or_else(|| StoreError::CorruptReceipt {
            path: receipt_path,
            reason: "removed anyway".to_string(),
        })
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

    /// Removes what no receipt refers to: blobs, precompiled artifacts, links
    /// named `kubectl-*` without a receipt, and staged files of commands that
    /// were killed long ago. Runs under the lock, after every change.
    fn collect_garbage(&self) -> Result<(), StoreError> {
        let mut digests = BTreeSet::new();
        let mut executables = BTreeSet::new();
        for name in self.names()? {
            if let Ok(receipt) = self.receipt(&name) {
                digests.insert(receipt.digest_hex().to_string());
            } else {
                // Keep the files of a plugin whose receipt we cannot read:
                // the user decides with `rm` or `pull --force`.
                return Ok(());
            }
            if let Ok(plugin) = PluginName::new(&name) {
                executables.insert(plugin.executable_name());
            }
        }
        for path in list_dir(&self.root.join("blobs").join("sha256"))? {
            if !file_name_in(&path, &digests, "") {
                remove_if_present(&path)?;
            }
        }
        for engine_dir in list_dir(&self.root.join("cache"))? {
            for path in list_dir(&engine_dir)? {
                if !file_name_in(&path, &digests, ".cwasm") {
                    remove_if_present(&path)?;
                }
            }
        }
        for path in list_dir(&self.bin_dir())? {
            let is_plugin_link = path
                .file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(crate::name::KUBECTL_PREFIX))
                && fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
            if is_plugin_link && !file_name_in(&path, &executables, "") {
                remove_if_present(&path)?;
            }
        }
        let now = SystemTime::now();
        for path in list_dir(&self.tmp_dir())? {
            let stale = fs::symlink_metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_STAGING_AGE);
            if stale {
                remove_if_present(&path)?;
            }
        }
        Ok(())
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

fn file_name_in(path: &Path, set: &BTreeSet<String>, suffix: &str) -> bool {
    path.file_name()
        .and_then(|f| f.to_str())
        .and_then(|f| f.strip_suffix(suffix))
        .is_some_and(|stem| set.contains(stem))
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    match fs::read_dir(dir) {
        Ok(read) => read
            .map(|e| e.map(|e| e.path()).map_err(io_err("reading", dir)))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err("reading", dir)(e)),
    }
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
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
    use crate::receipt::{PluginKind, RECEIPT_VERSION};

    fn receipt(name: &str, digest_char: char) -> Receipt {
        Receipt {
            version: RECEIPT_VERSION,
            name: name.to_string(),
            source: format!("127.0.0.1:5000/{name}:v1"),
            manifest_digest: format!("sha256:{}", "0".repeat(64)),
            digest: format!("sha256:{}", digest_char.to_string().repeat(64)),
            media_type: "application/wasm".to_string(),
            size: 4,
            kind: PluginKind::P2Component,
            installed_at: "2026-01-01T00:00:00Z".to_string(),
            pinned: false,
        }
    }

    fn staged(store: &Store) -> NamedTempFile {
        let mut file = store.staging_file().unwrap();
        file.write_all(b"\0asm").unwrap();
        file
    }

    fn install(
        store: &Store,
        name: &str,
        digest_char: char,
        force: bool,
    ) -> Result<Installed, StoreError> {
        let lock = store.lock(|| {}).unwrap();
        let exe = store.root().join("krew-wasm");
        if !exe.exists() {
            fs::write(&exe, b"#!").unwrap();
        }
        let plugin = PluginName::new(name).unwrap();
        store.install(
            &lock,
            Install {
                name: &plugin,
                receipt: receipt(name, digest_char),
                blob: Some(staged(store)),
                artifact: Some(("engine1", b"compiled".to_vec())),
                executable: &exe,
                force,
            },
        )
    }

    #[test]
    fn install_list_remove_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("root"));
        assert_eq!(
            install(&store, "foo-bar", 'a', false).unwrap(),
            Installed::New
        );
        let link = store.bin_dir().join("kubectl-foo_bar");
        assert_eq!(fs::read_link(&link).unwrap(), PathBuf::from("../krew-wasm"));
        assert!(store.blob_path(&receipt("x", 'a').digest).is_file());
        assert!(
            store
                .artifact_path("engine1", &receipt("x", 'a').digest)
                .is_file()
        );
        let entries = store.entries().unwrap();
        assert_eq!(entries.len(), 1);
        assert!(entries[0].problems.is_empty(), "{:?}", entries[0].problems);

        let lock = store.lock(|| {}).unwrap();
        store.remove(&lock, "foo-bar").unwrap();
        assert!(!link.exists());
        assert!(!store.blob_path(&receipt("x", 'a').digest).exists());
        assert!(
            !store
                .artifact_path("engine1", &receipt("x", 'a').digest)
                .exists()
        );
        assert!(matches!(
            store.remove(&lock, "foo-bar"),
            Err(StoreError::NotInstalled(_))
        ));
    }

    #[test]
    fn refuses_to_overwrite_without_force_and_keeps_shared_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        install(&store, "one", 'a', false).unwrap();
        install(&store, "two", 'a', false).unwrap();
        assert!(matches!(
            install(&store, "one", 'b', false),
            Err(StoreError::AlreadyInstalled { .. })
        ));
        assert_eq!(
            install(&store, "one", 'a', false).unwrap(),
            Installed::Unchanged
        );
        assert!(matches!(
            install(&store, "one", 'b', true).unwrap(),
            Installed::Replaced(_)
        ));
        // `two` still uses blob a; `one` now uses b.
        assert!(store.blob_path(&receipt("x", 'a').digest).is_file());
        assert!(store.blob_path(&receipt("x", 'b').digest).is_file());
        let lock = store.lock(|| {}).unwrap();
        store.remove(&lock, "two").unwrap();
        assert!(!store.blob_path(&receipt("x", 'a').digest).exists());
        assert!(store.blob_path(&receipt("x", 'b').digest).is_file());
    }

    #[test]
    fn reports_broken_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        install(&store, "hello", 'a', false).unwrap();
        fs::remove_file(store.blob_path(&receipt("x", 'a').digest)).unwrap();
        fs::remove_file(store.root().join("krew-wasm")).unwrap();
        let entries = store.entries().unwrap();
        assert_eq!(
            entries[0].problems,
            vec!["blob missing".to_string(), "link dangling".to_string()]
        );
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
