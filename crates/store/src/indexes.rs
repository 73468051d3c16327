//! `indexes/<name>.json`: the copies of plugin indexes `index add` keeps.
//!
//! The store knows them only as bytes under a well-formed name; what is in
//! them is the index crate's business. They are written as every other
//! file of the store: under the lock, through a temporary file renamed into
//! place.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::store::{Store, StoreError, StoreLock, write_atomically};

/// Temporary files older than this are leftovers of a killed command.
const STALE_TEMP_AGE: Duration = Duration::from_secs(60 * 60);

impl Store {
    /// `indexes/`.
    pub fn indexes_dir(&self) -> PathBuf {
        self.root().join("indexes")
    }

    /// `indexes/<name>.json`, for a name of the plugin name shape.
    pub fn index_path(&self, name: &str) -> Result<PathBuf, StoreError> {
        if !crate::name::is_well_formed(name) {
            return Err(StoreError::Io {
                action: "naming an index",
                path: self.indexes_dir().join(name),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "an index name is lowercase letters, digits and inner dashes",
                ),
            });
        }
        Ok(self.indexes_dir().join(format!("{name}.json")))
    }

    /// The names of the stored indexes, sorted.
    pub fn index_names(&self) -> Result<Vec<String>, StoreError> {
        let dir = self.indexes_dir();
        let read = match fs::read_dir(&dir) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(StoreError::Io {
                    action: "reading",
                    path: dir,
                    source: e,
                });
            }
        };
        let mut names: Vec<String> = read
            .flatten()
            .filter_map(|entry| {
                let file_name = entry.file_name();
                let name = file_name.to_str()?.strip_suffix(".json")?;
                crate::name::is_well_formed(name).then(|| name.to_string())
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// The stored bytes of index `name`, or `None` when there is none.
    pub fn read_index(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.index_path(name)?;
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io {
                action: "reading",
                path,
                source: e,
            }),
        }
    }

    /// Writes index `name` (temporary file, synced, renamed into place), and
    /// removes temporary files a killed command left there long ago.
    pub fn write_index(
        &self,
        _lock: &StoreLock,
        name: &str,
        bytes: &[u8],
    ) -> Result<PathBuf, StoreError> {
        let path = self.index_path(name)?;
        write_atomically(&path, bytes)?;
        remove_stale_temps(&self.indexes_dir());
        Ok(path)
    }

    /// Removes index `name`; false when there was none.
    pub fn remove_index(&self, _lock: &StoreLock, name: &str) -> Result<bool, StoreError> {
        let path = self.index_path(name)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::Io {
                action: "removing",
                path,
                source: e,
            }),
        }
    }
}

fn remove_stale_temps(dir: &Path) {
    let Ok(read) = fs::read_dir(dir) else {
        return;
    };
    for entry in read.flatten() {
        let path = entry.path();
        let is_temp = path
            .file_name()
            .and_then(|f| f.to_str())
            .is_some_and(|f| f.starts_with(".tmp-"));
        let stale = fs::symlink_metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() > STALE_TEMP_AGE);
        if is_temp
            && stale
            && let Err(e) = fs::remove_file(&path)
        {
            log::warn!("removing {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("root"));
        assert_eq!(store.index_names().unwrap(), Vec::<String>::new());
        assert_eq!(store.read_index("team").unwrap(), None);
        let lock = store.lock(|| {}).unwrap();
        let path = store.write_index(&lock, "team", b"{}").unwrap();
        assert_eq!(path, dir.path().join("root/indexes/team.json"));
        store.write_index(&lock, "main", b"[]").unwrap();
        store.write_index(&lock, "team", b"{\"a\":1}").unwrap();
        assert_eq!(store.index_names().unwrap(), ["main", "team"]);
        assert_eq!(
            store.read_index("team").unwrap().as_deref(),
            Some(&b"{\"a\":1}"[..])
        );
        // Nothing else is left in the directory: no temporary file.
        assert_eq!(fs::read_dir(store.indexes_dir()).unwrap().count(), 2);
        assert!(store.remove_index(&lock, "team").unwrap());
        assert!(!store.remove_index(&lock, "team").unwrap());
        assert_eq!(store.index_names().unwrap(), ["main"]);
    }

    #[test]
    fn names_never_become_other_paths() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let lock = store.lock(|| {}).unwrap();
        for bad in ["../x", "a/b", "", "A", ".tmp-x"] {
            assert!(store.index_path(bad).is_err(), "{bad}");
            assert!(store.write_index(&lock, bad, b"x").is_err(), "{bad}");
            assert!(store.read_index(bad).is_err(), "{bad}");
        }
    }
}
