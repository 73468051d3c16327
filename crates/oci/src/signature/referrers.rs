//! Sigstore bundles attached to a manifest as OCI referrers (what `cosign
//! sign --new-bundle-format`, cosign 3's default, writes): a manifest whose
//! `subject` is the signed manifest, `artifactType`
//! `application/vnd.dev.sigstore.bundle.v0.3+json`, one layer holding the
//! bundle JSON. Found through the registry's referrers API, or, on
//! registries without it (404), the referrers tag schema (`sha256-<hex>`
//! holding an image index of referrers); oci-client does both.
//!
//! I/O only: what is fetched is checked (subject, digests, sizes) and
//! handed to the pure verification.

use serde::Deserialize;

use super::{MAX_SIGNATURES, RawLayer, SignatureError};
use crate::client::RegistryClient;
use crate::manifest::is_sha256_digest;
use crate::reference::PluginReference;

/// `artifactType` of a sigstore bundle referrer (and its layer's media type).
pub const BUNDLE_ARTIFACT_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Largest bundle read: real ones are a few KiB.
pub const MAX_BUNDLE_SIZE: u64 = 256 * 1024;
/// Largest referrer manifest read.
const MAX_REFERRER_MANIFEST: usize = 64 * 1024;

/// A bundle found attached to a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleReferrer {
    /// Digest of the referrer manifest.
    pub manifest_digest: String,
    /// The bundle JSON, exactly as stored.
    pub bundle: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferrerManifest {
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    subject: Option<SubjectDescriptor>,
    #[serde(default)]
    layers: Vec<RawLayer>,
}

#[derive(Deserialize)]
struct SubjectDescriptor {
    digest: String,
}

/// Whether a media or artifact type is a sigstore bundle's (any version).
fn is_bundle_type(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.dev.sigstore.bundle")
}

impl RegistryClient {
    /// The sigstore bundles attached to `digest` in `reference`'s
    /// repository. None attached is an empty list.
    pub async fn fetch_bundles(
        &mut self,
        reference: &PluginReference,
        digest: &str,
    ) -> Result<Vec<BundleReferrer>, SignatureError> {
        if !is_sha256_digest(digest) {
            return Err(SignatureError::BadDigest(digest.to_string()));
        }
        let subject = reference.with_digest(digest);
        let shown = subject.to_string();
        let index = self
            .client
            .pull_referrers(subject.as_oci(), Some(BUNDLE_ARTIFACT_TYPE))
            .await
            .map_err(|e| self.translate(e, &format!("the referrers of {shown}")))?;
        let malformed = |what: &str, reason: String| SignatureError::BadReferrer {
            reference: shown.clone(),
            referrer: what.to_string(),
            reason,
        };
        let mut out = Vec::new();
        for entry in index.manifests.into_iter().take(MAX_SIGNATURES) {
            if !entry.artifact_type.as_deref().is_some_and(is_bundle_type) {
                continue;
            }
            if !is_sha256_digest(&entry.digest) {
                return Err(malformed(&entry.digest, "not a sha256 digest".to_string()));
            }
            let referrer = reference.with_digest(&entry.digest);
            let (body, _) = self.fetch_manifest(&referrer).await?;
            if body.len() > MAX_REFERRER_MANIFEST {
                return Err(malformed(&entry.digest, format!("{} bytes", body.len())));
            }
            let manifest: ReferrerManifest = serde_json::from_slice(&body)
                .map_err(|e| malformed(&entry.digest, e.to_string()))?;
            // The index (a tag anyone with push access can rewrite) only
            // points; the referrer itself must name the manifest.
            if manifest.subject.as_ref().map(|s| s.digest.as_str()) != Some(digest) {
                return Err(malformed(
                    &entry.digest,
                    format!("its subject is not {digest}"),
                ));
            }
            if !manifest
                .artifact_type
                .as_deref()
                .is_some_and(is_bundle_type)
            {
                continue;
            }
            let Some(layer) = manifest
                .layers
                .into_iter()
                .find(|l| is_bundle_type(&l.media_type))
            else {
                return Err(malformed(&entry.digest, "no bundle layer".to_string()));
            };
            if !is_sha256_digest(&layer.digest) {
                return Err(malformed(
                    &entry.digest,
                    format!("layer digest `{}`", layer.digest),
                ));
            }
            if layer.size > MAX_BUNDLE_SIZE {
                return Err(malformed(
                    &entry.digest,
                    format!(
                        "a bundle of {} bytes (at most {MAX_BUNDLE_SIZE})",
                        layer.size
                    ),
                ));
            }
            let bundle = self.fetch_small_blob(&referrer, &layer, &shown).await?;
            out.push(BundleReferrer {
                manifest_digest: entry.digest,
                bundle,
            });
        }
        Ok(out)
    }
}
