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
    /// The signatures checked when this version was installed (or later by
    /// `verify NAME`); empty when none was required or asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<SignatureRecord>,
    /// The version this one replaced, kept (with its blob and precompiled
    /// artifact) for `rollback` until the next change of version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousVersion>,
}

/// An installed version of a plugin other than the current one: everything
/// of its receipt but the name, and no history of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousVersion {
    pub source: String,
    pub manifest_digest: String,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub kind: PluginKind,
    pub installed_at: String,
    pub pinned: bool,
    #[serde(default, skip_serializing_if = "Permissions::is_empty")]
    pub requested: Permissions,
    #[serde(default, skip_serializing_if = "Permissions::is_empty")]
    pub granted: Permissions,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<SignatureRecord>,
}

/// A signature check that passed: who signed the manifest, in which form,
/// and what asked for the check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureRecord {
    /// `SHA256:<hex>` of the public key, for a key-based signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    /// The certificate's subject, for a keyless signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The OIDC issuer in the certificate, for a keyless signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Where the signature was found: `cosign .sig tag` or `sigstore bundle`.
    pub form: String,
    /// What required it: a policy rule, or a flag such as `--verify-key`.
    pub required_by: String,
    /// RFC 3339 time of the check.
    pub verified_at: String,
}

impl SignatureRecord {
    /// Who signed, as shown to users: `key SHA256:…` or `SUBJECT (issuer ISSUER)`.
    pub fn signer(&self) -> String {
        match (&self.key_fingerprint, &self.subject, &self.issuer) {
            (Some(fingerprint), _, _) => format!("key {fingerprint}"),
            (None, Some(subject), Some(issuer)) => format!("{subject} (issuer {issuer})"),
            (None, Some(subject), None) => subject.clone(),
            _ => "an unnamed signer".to_string(),
        }
    }
}

impl PreviousVersion {
    /// The hex part of the blob digest.
    pub fn digest_hex(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap_or(&self.digest)
    }
}

impl Receipt {
    /// The current version, as it is kept once another one replaces it.
    pub fn current_version(&self) -> PreviousVersion {
        PreviousVersion {
            source: self.source.clone(),
            manifest_digest: self.manifest_digest.clone(),
            digest: self.digest.clone(),
            media_type: self.media_type.clone(),
            size: self.size,
            kind: self.kind,
            installed_at: self.installed_at.clone(),
            pinned: self.pinned,
            requested: self.requested.clone(),
            granted: self.granted.clone(),
            signatures: self.signatures.clone(),
        }
    }

    /// The receipt of `name` at `version`, installed at `installed_at`, with
    /// `previous` as the version before it.
    pub fn at_version(
        name: &str,
        version: PreviousVersion,
        installed_at: String,
        previous: Option<PreviousVersion>,
    ) -> Self {
        Receipt {
            version: RECEIPT_VERSION,
            name: name.to_string(),
            source: version.source,
            manifest_digest: version.manifest_digest,
            digest: version.digest,
            media_type: version.media_type,
            size: version.size,
            kind: version.kind,
            installed_at,
            pinned: version.pinned,
            requested: version.requested,
            granted: version.granted,
            signatures: version.signatures,
            previous,
        }
    }

    /// True when this version and `other` are the same content: manifest and
    /// blob digests.
    pub fn same_content(&self, other: &PreviousVersion) -> bool {
        self.digest == other.digest && self.manifest_digest == other.manifest_digest
    }

    /// `registry/repository` of the source, without tag or digest: two
    /// versions of one plugin share it.
    pub fn repository(&self) -> &str {
        source_repository(&self.source)
    }

    /// The hex part of the blob digest.
    pub fn digest_hex(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap_or(&self.digest)
    }
}

/// `registry/repository` of a canonical reference (`registry/repo:tag`,
/// `registry/repo@sha256:…`, `registry/repo:tag@sha256:…`).
pub fn source_repository(source: &str) -> &str {
    let without_digest = source.split_once('@').map_or(source, |(repo, _)| repo);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].find(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_of_sources() {
        for (source, repository) in [
            (
                "127.0.0.1:5000/plugins/hello:v1",
                "127.0.0.1:5000/plugins/hello",
            ),
            ("ghcr.io/org/hello@sha256:ab", "ghcr.io/org/hello"),
            ("localhost:5000/a/b:v1@sha256:ab", "localhost:5000/a/b"),
            ("localhost:5000/hello", "localhost:5000/hello"),
        ] {
            assert_eq!(source_repository(source), repository, "{source}");
        }
    }
}
