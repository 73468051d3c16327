//! Small single-layer OCI artifacts other than plugins (plugin indexes):
//! written and read whole, in memory, with a size cap.
//!
//! The layout follows the OCI 1.0 way of typing an artifact, which every
//! registry stores: an image manifest whose config has the artifact's own
//! media type (content `{}`) and whose one layer is the document. The caller
//! chooses both media types; [`RegistryClient::fetch_artifact`] refuses a
//! manifest of another type, naming what it is instead.

use std::collections::BTreeMap;

use crate::digest::sha256_digest;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::client::{OciError, RegistryClient};
use crate::manifest::{
    OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST, WASM_LAYER_MEDIA_TYPES, is_sha256_digest,
};
use crate::push::{PushError, WASM_CONFIG_MEDIA_TYPE};
use crate::reference::PluginReference;

/// The config blob of an artifact: an empty JSON object.
const EMPTY_CONFIG: &[u8] = b"{}";

/// An artifact to push.
#[derive(Debug, Clone)]
pub struct ArtifactUpload {
    /// The config's media type: what kind of artifact this is.
    pub config_media_type: String,
    /// The layer's media type.
    pub layer_media_type: String,
    /// The layer: the document itself.
    pub layer: Bytes,
    /// The manifest's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// What [`ArtifactUpload::build`] writes: the manifest and its digests.
#[derive(Debug, Clone)]
pub struct BuiltArtifact {
    pub config_digest: String,
    pub layer_digest: String,
    pub manifest: Bytes,
    pub manifest_digest: String,
}

/// An artifact read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedArtifact {
    /// Digest of its manifest (what a pinned reference names).
    pub manifest_digest: String,
    /// The layer's bytes, checked against its digest and size.
    pub layer: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

/// Why an artifact could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(transparent)]
    Registry(#[from] OciError),
    #[error("{reference} is not a {expected}: its manifest {found}{hint}")]
    WrongType {
        reference: String,
        expected: String,
        found: String,
        hint: &'static str,
    },
    #[error("{reference}: the manifest is not valid JSON of an OCI image manifest: {reason}")]
    BadManifest { reference: String, reason: String },
    #[error(
        "{reference}: the {what} is {size} bytes, more than the {max} bytes accepted; \
         nothing was read"
    )]
    TooLarge {
        reference: String,
        what: &'static str,
        size: u64,
        max: u64,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestDocument {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    config: DescriptorDocument,
    #[serde(default)]
    layers: Vec<DescriptorDocument>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorDocument {
    media_type: String,
    digest: String,
    size: u64,
}

impl ArtifactUpload {
    /// The manifest (pure): config `{}` of `config_media_type`, one layer.
    pub fn build(&self) -> BuiltArtifact {
        let config_digest = sha256_digest(EMPTY_CONFIG);
        let layer_digest = sha256_digest(&self.layer);
        let manifest = ManifestDocument {
            schema_version: 2,
            media_type: Some(OCI_IMAGE_MANIFEST.to_string()),
            config: DescriptorDocument {
                media_type: self.config_media_type.clone(),
                digest: config_digest.clone(),
                size: EMPTY_CONFIG.len() as u64,
            },
            layers: vec![DescriptorDocument {
                media_type: self.layer_media_type.clone(),
                digest: layer_digest.clone(),
                size: self.layer.len() as u64,
            }],
            annotations: self.annotations.clone(),
        };
        // Strings and numbers: always serialisable.
        let manifest = serde_json::to_vec(&manifest).unwrap_or_default();
        BuiltArtifact {
            config_digest,
            layer_digest,
            manifest_digest: sha256_digest(&manifest),
            manifest: Bytes::from(manifest),
        }
    }
}

/// Checks a fetched manifest is of the expected artifact type and returns
/// its one layer (pure).
fn expected_layer(
    reference: &str,
    body: &[u8],
    config_media_type: &str,
    layer_media_type: &str,
    what: &str,
) -> Result<(DescriptorDocument, BTreeMap<String, String>), ArtifactError> {
    let wrong = |found: String, hint: &'static str| ArtifactError::WrongType {
        reference: reference.to_string(),
        expected: what.to_string(),
        found,
        hint,
    };
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ArtifactError::BadManifest {
            reference: reference.to_string(),
            reason: e.to_string(),
        })?;
    if value.get("manifests").is_some() {
        return Err(wrong(
            format!("is an image index ({OCI_IMAGE_INDEX}), not one manifest"),
            "",
        ));
    }
    let manifest: ManifestDocument =
        serde_json::from_value(value).map_err(|e| ArtifactError::BadManifest {
            reference: reference.to_string(),
            reason: e.to_string(),
        })?;
    if manifest.config.media_type != config_media_type {
        let is_plugin = manifest.config.media_type == WASM_CONFIG_MEDIA_TYPE
            || manifest
                .layers
                .iter()
                .any(|l| WASM_LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()));
        return Err(wrong(
            format!(
                "has a config of type `{}`, not `{config_media_type}`",
                manifest.config.media_type
            ),
            if is_plugin {
                " (it is a plugin: install it with `krew-wasm pull`)"
            } else {
                ""
            },
        ));
    }
    let count = manifest.layers.len();
    let Some(layer) = manifest.layers.into_iter().next().filter(|_| count == 1) else {
        return Err(wrong(format!("has {count} layers, not exactly one"), ""));
    };
    if layer.media_type != layer_media_type {
        return Err(wrong(
            format!(
                "has a layer of type `{}`, not `{layer_media_type}`",
                layer.media_type
            ),
            "",
        ));
    }
    if !is_sha256_digest(&layer.digest) {
        return Err(ArtifactError::BadManifest {
            reference: reference.to_string(),
            reason: format!("layer digest `{}` is not sha256", layer.digest),
        });
    }
    Ok((layer, manifest.annotations))
}

impl RegistryClient {
    /// Uploads `artifact` as `reference` (which must carry a tag): the `{}`
    /// config, the layer, then the manifest. Returns the manifest digest,
    /// checked against what the registry says it stored.
    pub async fn push_artifact(
        &mut self,
        reference: &PluginReference,
        artifact: &ArtifactUpload,
    ) -> Result<String, PushError> {
        let shown = reference.to_string();
        if reference.is_pinned() {
            return Err(PushError::DigestReference(shown));
        }
        let built = artifact.build();
        self.authorize_push(reference).await?;
        let image = reference.as_oci().clone();
        for (bytes, digest) in [
            (Bytes::from_static(EMPTY_CONFIG), &built.config_digest),
            (artifact.layer.clone(), &built.layer_digest),
        ] {
            self.client
                .push_blob(&image, bytes, digest)
                .await
                .map_err(|e| self.translate_push(e, &shown))?;
        }
        self.push_manifest_checked(
            &image,
            built.manifest.clone(),
            &built.manifest_digest,
            &shown,
        )
        .await?;
        Ok(built.manifest_digest)
    }

    /// Reads the one layer of the artifact at `reference`, refusing any
    /// manifest whose config is not `config_media_type` or whose single layer
    /// is not `layer_media_type` (`what` names the artifact in errors), and
    /// any layer larger than `max_size`. The layer is checked against its
    /// digest and size.
    pub async fn fetch_artifact(
        &mut self,
        reference: &PluginReference,
        config_media_type: &str,
        layer_media_type: &str,
        what: &str,
        max_size: u64,
    ) -> Result<FetchedArtifact, ArtifactError> {
        let shown = reference.to_string();
        let (body, manifest_digest) = self.fetch_manifest(reference).await?;
        let (layer, annotations) =
            expected_layer(&shown, &body, config_media_type, layer_media_type, what)?;
        if layer.size > max_size {
            return Err(ArtifactError::TooLarge {
                reference: shown,
                what: "layer",
                size: layer.size,
                max: max_size,
            });
        }
        let bytes = self
            .fetch_blob_whole(
                reference,
                &layer.media_type,
                &layer.digest,
                layer.size,
                &shown,
            )
            .await?;
        Ok(FetchedArtifact {
            manifest_digest,
            layer: bytes,
            annotations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "application/vnd.example.thing.config.v1+json";
    const LAYER: &str = "application/vnd.example.thing.v1+yaml";

    fn upload() -> ArtifactUpload {
        ArtifactUpload {
            config_media_type: CONFIG.into(),
            layer_media_type: LAYER.into(),
            layer: Bytes::from_static(b"hello: world\n"),
            annotations: BTreeMap::from([(
                "org.opencontainers.image.created".to_string(),
                "2026-11-21T13:00:00Z".to_string(),
            )]),
        }
    }

    #[test]
    fn builds_a_typed_single_layer_manifest_and_reads_it_back() {
        let built = upload().build();
        let manifest: serde_json::Value = serde_json::from_slice(&built.manifest).unwrap();
        assert_eq!(
            manifest,
            serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_IMAGE_MANIFEST,
                "config": {"mediaType": CONFIG, "digest": sha256_digest(b"{}"), "size": 2},
                "layers": [{"mediaType": LAYER, "digest": sha256_digest(b"hello: world\n"), "size": 13}],
                "annotations": {"org.opencontainers.image.created": "2026-11-21T13:00:00Z"},
            })
        );
        assert_eq!(built.manifest_digest, sha256_digest(&built.manifest));
        let (layer, annotations) =
            expected_layer("r", &built.manifest, CONFIG, LAYER, "thing").unwrap();
        assert_eq!(layer.digest, built.layer_digest);
        assert_eq!(layer.size, 13);
        assert_eq!(annotations.len(), 1);
    }

    #[test]
    fn refuses_other_artifacts() {
        let built = upload().build();
        let err = expected_layer("r", &built.manifest, "other/config", LAYER, "plugin index")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("r is not a plugin index") && err.contains(CONFIG),
            "{err}"
        );

        let mut plugin = upload();
        plugin.config_media_type = WASM_CONFIG_MEDIA_TYPE.into();
        plugin.layer_media_type = "application/wasm".into();
        let err = expected_layer("r", &plugin.build().manifest, CONFIG, LAYER, "plugin index")
            .unwrap_err()
            .to_string();
        assert!(err.contains("krew-wasm pull"), "{err}");

        let err = expected_layer("r", &built.manifest, CONFIG, "text/plain", "thing")
            .unwrap_err()
            .to_string();
        assert!(err.contains(LAYER), "{err}");

        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        let err = expected_layer("r", index, CONFIG, LAYER, "thing").unwrap_err();
        assert!(err.to_string().contains("image index"), "{err}");

        let two = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": CONFIG, "digest": sha256_digest(b"{}"), "size": 2},
            "layers": [
                {"mediaType": LAYER, "digest": sha256_digest(b"a"), "size": 1},
                {"mediaType": LAYER, "digest": sha256_digest(b"b"), "size": 1},
            ],
        });
        let err =
            expected_layer("r", two.to_string().as_bytes(), CONFIG, LAYER, "thing").unwrap_err();
        assert!(err.to_string().contains("2 layers"), "{err}");
        assert!(matches!(
            expected_layer("r", b"not json", CONFIG, LAYER, "thing"),
            Err(ArtifactError::BadManifest { .. })
        ));
    }
}
