//! The on-disk store of krew-wasm, rooted at `$KREW_WASM_ROOT` (default
//! `~/.krew-wasm`):
//!
//! ```text
//! bin/kubectl-<name>               relative link to the krew-wasm executable ('-' -> '_')
//! blobs/sha256/<hex>               wasm, content-addressed, read-only
//! receipts/<name>.json             what was installed from where (see Receipt)
//! cache/<engine>/<hex>.cwasm       precompiled artifacts, keyed by engine compatibility hash
//! views/<hex>/kubeconfig           credential-free kubeconfig views given to runs, by content
//! tmp/                             downloads in progress
//! lock                             advisory lock held by mutating commands
//! indexes/<name>.json              plugin indexes added with `index add` (see indexes.rs)
//! ```
//!
//! [`Store`] reads without locking (so running a plugin never waits) and
//! changes the store only while holding a [`StoreLock`]. Each change reaches
//! its final path through a rename, and the receipt is written last: it is the
//! commit point of an install and the first thing removed by `rm`. Whatever a
//! killed command leaves behind (a staged download, an orphan blob or link) is
//! collected by the next change. [`PluginName`] holds the naming rules shared
//! with kubectl.
//!
//! This crate knows nothing of registries or of wasmtime: it stores bytes it is
//! given and hands back paths.

mod indexes;
mod name;
mod receipt;
mod store;

pub use name::{KUBECTL_BUILTINS, KUBECTL_PREFIX, NameError, PluginName, is_well_formed};
pub use receipt::{
    PluginKind, PreviousVersion, RECEIPT_VERSION, Receipt, SignatureRecord, source_repository,
};
pub use store::{
    Entry, Install, Installed, Store, StoreError, StoreLock, is_sha256_digest, relative_path,
    sha256_digest, write_atomically,
};
