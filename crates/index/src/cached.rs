//! The copy of an index that `index add` keeps: `indexes/<name>.json`.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::document::{IndexError, PluginIndex};
use crate::name::{IndexName, IndexNameError};

/// Format version of the cached record.
pub const CACHED_INDEX_VERSION: u32 = 1;

/// Where an index comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum IndexLocation {
    /// A file, by absolute path.
    File { path: PathBuf },
    /// An index artifact in an OCI registry.
    Oci { reference: String },
}

impl fmt::Display for IndexLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexLocation::File { path } => write!(f, "{}", path.display()),
            IndexLocation::Oci { reference } => write!(f, "oci://{reference}"),
        }
    }
}

/// An added index: where it came from, when, and the document as fetched
/// (valid when written, checked again when read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CachedIndex {
    pub version: u32,
    pub name: String,
    pub location: IndexLocation,
    /// RFC 3339: when `index add` first fetched it.
    pub added_at: String,
    /// RFC 3339: when it was last fetched.
    pub updated_at: String,
    /// sha256 of `document`.
    pub digest: String,
    /// For an OCI index, the manifest digest it was fetched at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    /// The document, exactly as fetched.
    pub document: String,
}

/// Why a cached record cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CachedIndexError {
    #[error("not a cached index record: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "cached index record of version {0}; this krew-wasm reads version {CACHED_INDEX_VERSION}"
    )]
    Version(u32),
    #[error("the record names index `{found}`, not `{expected}`")]
    WrongName { expected: String, found: String },
    #[error(transparent)]
    Name(#[from] IndexNameError),
    #[error("its document is no longer valid: {0}")]
    Document(#[from] IndexError),
}

impl CachedIndex {
    /// Reads a record written by [`CachedIndex::to_json`] for index `name`,
    /// and its document.
    pub fn parse(name: &str, bytes: &[u8]) -> Result<(Self, PluginIndex), CachedIndexError> {
        let record: CachedIndex = serde_json::from_slice(bytes)?;
        if record.version != CACHED_INDEX_VERSION {
            return Err(CachedIndexError::Version(record.version));
        }
        if record.name != name {
            return Err(CachedIndexError::WrongName {
                expected: name.to_string(),
                found: record.name,
            });
        }
        IndexName::new(&record.name)?;
        let document = PluginIndex::parse(record.document.as_bytes())?;
        Ok((record, document))
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Strings, numbers and a path: always serialisable.
        let mut json = serde_json::to_vec_pretty(self).unwrap_or_default();
        json.push(b'\n');
        json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> CachedIndex {
        CachedIndex {
            version: CACHED_INDEX_VERSION,
            name: "team".into(),
            location: IndexLocation::Oci {
                reference: "127.0.0.1:5000/indexes/team:v1".into(),
            },
            added_at: "2026-11-21T13:00:00Z".into(),
            updated_at: "2026-11-21T13:00:00Z".into(),
            digest: "sha256:00".into(),
            manifest_digest: None,
            document: "apiVersion: krew-wasm.dev/v1\nkind: PluginIndex\nplugins: []\n".into(),
        }
    }

    #[test]
    fn round_trips() {
        let json = record().to_json();
        let (back, document) = CachedIndex::parse("team", &json).unwrap();
        assert_eq!(back, record());
        assert!(document.plugins.is_empty());
        let text = String::from_utf8(json).unwrap();
        assert!(text.contains("\"type\": \"oci\""), "{text}");
        assert_eq!(
            back.location.to_string(),
            "oci://127.0.0.1:5000/indexes/team:v1"
        );
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        let json = record().to_json();
        assert!(matches!(
            CachedIndex::parse("other", &json),
            Err(CachedIndexError::WrongName { .. })
        ));
        let mut bad = record();
        bad.version = 2;
        assert!(matches!(
            CachedIndex::parse("team", &bad.to_json()),
            Err(CachedIndexError::Version(2))
        ));
        let mut bad = record();
        bad.document = "plugins: []".into();
        assert!(matches!(
            CachedIndex::parse("team", &bad.to_json()),
            Err(CachedIndexError::Document(_))
        ));
        assert!(matches!(
            CachedIndex::parse("team", b"{"),
            Err(CachedIndexError::Json(_))
        ));
    }
}
