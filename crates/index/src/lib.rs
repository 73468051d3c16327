//! Plugin indexes for krew-wasm: what Krew's index is, without its git
//! repository.
//!
//! An index is one small versioned YAML or JSON document listing plugins by
//! name, each with the OCI reference it is pulled from, a short description
//! and a homepage:
//!
//! ```yaml
//! apiVersion: krew-wasm.dev/v1
//! kind: PluginIndex
//! plugins:
//!   - name: decoder
//!     reference: ghcr.io/example/kubectl-decoder:v1
//!     description: Decodes secrets and describes their certificates
//!     homepage: https://github.com/example/decoder
//! ```
//!
//! This crate owns, without any I/O:
//! - [`PluginIndex::parse`]: the document, checked whole (syntax with line
//!   and column, the version, unknown fields, plugin names by the store's
//!   rules, references by [`krew_wasm_oci::PluginReference::parse`],
//!   duplicates, text fields) before anyone acts on it;
//! - [`IndexName`]: the names indexes are added under (`INDEX/NAME`);
//! - [`search`] and [`resolve`]: finding plugins across indexes, and turning
//!   `NAME` or `INDEX/NAME` into one entry or an error that lists the choices;
//! - [`CachedIndex`]: the record `index add` keeps under
//!   `$KREW_WASM_ROOT/indexes/` (where the index came from, when, and the
//!   document as fetched);
//! - the media types an index is published with as an OCI artifact.
//!
//! Reading files and registries is the binary's job (`commands/index.rs`,
//! `krew_wasm_oci::artifact`); writing the cached records is the store's.

mod cached;
mod document;
mod name;
mod search;

pub use cached::{CACHED_INDEX_VERSION, CachedIndex, CachedIndexError, IndexLocation};
pub use document::{
    API_VERSION, IndexEntry, IndexError, KIND, MAX_INDEX_SIZE, PluginIndex, SUPPORTED_API_VERSIONS,
};
pub use name::{IndexName, IndexNameError};
pub use search::{Hit, Lookup, ResolveError, lookup_syntax, resolve, search};

/// Media type of the one layer of an index artifact: the document itself.
pub const INDEX_LAYER_MEDIA_TYPE: &str = "application/vnd.krew-wasm.index.v1+yaml";
/// Media type of the config of an index artifact (its artifact type); the
/// config blob is `{}`.
pub const INDEX_CONFIG_MEDIA_TYPE: &str = "application/vnd.krew-wasm.index.config.v1+json";
