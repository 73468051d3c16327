//! Receipts: the JSON record of one installed plugin (`receipts/<name>.json`).

use krew_wasm_permissions::Permissions;
use serde::{Deserialize, Serialize};

/// The kind of WebAssembly binary a plugin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PluginKind {
    /// A WASI preview-1 core module.
    #[serde(rename = "p1")]
    P1Module,
    /// A WASI 0.2 command component.
    #[serde(rename = "p2")]
    P2Component,
}

impl PluginKind {
    /// `p1 module` or `p2 component`, as shown to users.
    pub fn describe(self) -> &'static str {
        match self {
            PluginKind::P1Module => "p1 module",
            PluginKind::P2Component => "p2 component",
        }
    }
}

/// Current receipt format version.
pub const RECEIPT_VERSION: u32 = 1;

/// Everything krew-wasm knows about an installed plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// Receipt format version.
    pub version: u32,
    /// The plugin name (`kubectl <name>`).
    pub name: String,
    /// The reference it was installed from, canonical form.
    pub source: String,
    /// Digest of the image manifest the reference resolved to.
    pub manifest_digest: String,
    /// Digest of the wasm blob (`blobs/sha256/<hex>`).
    pub digest: String,
    /// Media type of the wasm layer.
    pub media_type: String,
    /// Size of the wasm blob in bytes.
    pub size: u64,
    /// p1 module or p2 component.
    pub kind: PluginKind,
    /// RFC 3339 time of installation.
    pub installed_at: String,
    /// True when installed by digest: the content cannot move.
    pub pinned: bool,
    /// What the plugin declares it needs beyond the defaults (its wasm
    /// custom section and manifest annotation), as installed.
    #[serde(default, skip_serializing_if = "Permissions::is_empty")]
    pub requested: Permissions,
    /// What the user granted: at install, or later with `grant`/`revoke`.
    /// Runs get exactly this, or less.
    #[serde(default, skip_serializing_if = "Permissions::is_empty")]
    pub granted: Permissions,
}

impl Receipt {
    /// The hex part of the blob digest.
    pub fn digest_hex(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap_or(&self.digest)
    }
}
