//! Manifests and media types: which documents a registry may answer with, and
//! how the single wasm layer is found in them. Pure functions over bytes, so
//! they can be unit-tested and fuzzed without a registry.

use std::collections::BTreeMap;

use serde::Deserialize;

/// CNCF Wasm OCI artifact layer (what `krew-wasm push` writes).
pub const WASM_LAYER_CNCF: &str = "application/wasm";
/// wasm-to-oci layer (the original krew-wasm plugins, Kubewarden policies).
pub const WASM_LAYER_WASM_TO_OCI: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// wasmCloud module layer.
pub const WASM_LAYER_WASMCLOUD: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// Every layer media type that holds a plugin.
pub const WASM_LAYER_MEDIA_TYPES: [&str; 3] = [
    WASM_LAYER_CNCF,
    WASM_LAYER_WASM_TO_OCI,
    WASM_LAYER_WASMCLOUD,
];

pub const OCI_IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The manifest media types sent in `Accept`.
pub const ACCEPTED_MANIFEST_TYPES: [&str; 4] = [
    OCI_IMAGE_MANIFEST,
    DOCKER_MANIFEST_V2,
    OCI_IMAGE_INDEX,
    DOCKER_MANIFEST_LIST,
];

/// Largest plugin accepted, so a hostile manifest cannot fill the disk.
pub const MAX_PLUGIN_SIZE: u64 = 256 * 1024 * 1024;

/// Why a manifest does not describe a plugin.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("the registry answered with a document that is not an OCI or Docker manifest: {0}")]
    Unparsable(String),
    #[error(
        "unsupported manifest media type `{0}` (expected an OCI image manifest, a Docker v2 manifest or an image index)"
    )]
    UnsupportedMediaType(String),
    #[error("unsupported manifest schemaVersion {0} (only 2 is supported)")]
    UnsupportedSchema(u32),
    #[error(
        "no WebAssembly layer in this artifact (its layers are: {found}); \
         a plugin has exactly one layer of media type `application/wasm`, \
         `application/vnd.wasm.content.layer.v1+wasm` or \
         `application/vnd.module.wasm.content.layer.v1+wasm` — is this a container image?"
    )]
    NoWasmLayer { found: String },
    #[error("this artifact has {0} WebAssembly layers; a plugin must have exactly one")]
    TooManyWasmLayers(usize),
    #[error(
        "this is a multi-platform image index with no WebAssembly entry (platforms: {found}); \
         a plugin index needs an entry with os `wasip2`, `wasip1` or `wasi`, or architecture `wasm`"
    )]
    NoWasmPlatform { found: String },
    #[error("the wasm layer declares {size} bytes, more than the {max} bytes allowed for a plugin")]
    TooLarge { size: u64, max: u64 },
    #[error("unsupported digest `{0}` in the manifest (only sha256:<64 hex digits> is accepted)")]
    BadLayerDigest(String),
}

/// A content descriptor: what a manifest says about a blob.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// The platform of an image index entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
}

/// What a manifest request returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// An OCI image manifest or Docker v2 manifest.
    Image {
        media_type: String,
        layers: Vec<Descriptor>,
        /// The manifest's annotations (`krew-wasm push` writes the plugin's
        /// description and requested permissions there).
        annotations: BTreeMap<String, String>,
    },
    /// An OCI image index or Docker manifest list.
    Index { manifests: Vec<Descriptor> },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// Parses a manifest body. `content_type` is the response's Content-Type,
    /// used when the document itself carries no `mediaType`.
    pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Self, ManifestError> {
        let raw: RawManifest =
            serde_json::from_slice(body).map_err(|e| ManifestError::Unparsable(e.to_string()))?;
        if raw.schema_version != 2 {
            return Err(ManifestError::UnsupportedSchema(raw.schema_version));
        }
        let media_type = raw
            .media_type
            .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string()))
            .filter(|m| !m.is_empty() && m != "application/json");
        let is_index = match media_type.as_deref() {
            Some(OCI_IMAGE_INDEX | DOCKER_MANIFEST_LIST) => true,
            Some(OCI_IMAGE_MANIFEST | DOCKER_MANIFEST_V2) => false,
            Some(other) => return Err(ManifestError::UnsupportedMediaType(other.to_string())),
            // OCI allows mediaType to be absent: tell the kinds apart by shape.
            None => raw.manifests.is_some() && raw.layers.is_none(),
        };
        if is_index {
            Ok(Manifest::Index {
                manifests: raw.manifests.unwrap_or_default(),
            })
        } else {
            Ok(Manifest::Image {
                media_type: media_type.unwrap_or_else(|| OCI_IMAGE_MANIFEST.to_string()),
                layers: raw.layers.unwrap_or_default(),
                annotations: raw.annotations,
            })
        }
    }
}

/// Picks the one wasm layer of an image manifest's layers.
pub fn select_wasm_layer(layers: &[Descriptor]) -> Result<Descriptor, ManifestError> {
    let wasm: Vec<&Descriptor> = layers
        .iter()
        .filter(|l| WASM_LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()))
        .collect();
    match wasm.as_slice() {
        [] => Err(ManifestError::NoWasmLayer {
            found: if layers.is_empty() {
                "none".to_string()
            } else {
                layers
                    .iter()
                    .map(|l| l.media_type.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        }),
        [one] => {
            if !is_sha256_digest(&one.digest) {
                return Err(ManifestError::BadLayerDigest(one.digest.clone()));
            }
            if one.size > MAX_PLUGIN_SIZE {
                return Err(ManifestError::TooLarge {
                    size: one.size,
                    max: MAX_PLUGIN_SIZE,
                });
            }
            Ok((*one).clone())
        }
        many => Err(ManifestError::TooManyWasmLayers(many.len())),
    }
}

/// Picks the wasm entry of an image index: `wasip2` first, then `wasip1`,
/// then any other entry marked `wasi` or `wasm`.
pub fn select_wasm_platform(manifests: &[Descriptor]) -> Result<Descriptor, ManifestError> {
    let rank = |d: &Descriptor| -> Option<u8> {
        let p = d.platform.as_ref()?;
        match (p.os.as_str(), p.architecture.as_str()) {
            ("wasip2", _) => Some(0),
            ("wasip1", _) => Some(1),
            ("wasi", _) | (_, "wasm") => Some(2),
            _ => None,
        }
    };
    let chosen = manifests
        .iter()
        .filter_map(|d| rank(d).map(|r| (r, d)))
        .min_by_key(|(r, _)| *r)
        .map(|(_, d)| d.clone());
    if let Some(entry) = &chosen
        && !is_sha256_digest(&entry.digest)
    {
        return Err(ManifestError::BadLayerDigest(entry.digest.clone()));
    }
    chosen.ok_or_else(|| ManifestError::NoWasmPlatform {
        found: if manifests.is_empty() {
            "none".to_string()
        } else {
            manifests
                .iter()
                .map(|d| match &d.platform {
                    Some(p) => format!("{}/{}", p.os, p.architecture),
                    None => "unspecified".to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        },
    })
}

/// True for `sha256:` followed by 64 lowercase hex digits.
pub fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn image(layers: &[(&str, u64)]) -> Vec<u8> {
        let layers: Vec<_> = layers
            .iter()
            .enumerate()
            .map(|(i, (mt, size))| {
                serde_json::json!({"mediaType": mt, "digest": digest(char::from_digit(i as u32, 16).unwrap()), "size": size})
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_MANIFEST,
            "config": {"mediaType": "application/vnd.wasm.config.v0+json", "digest": digest('f'), "size": 2},
            "layers": layers,
        }))
        .unwrap()
    }

    #[test]
    fn finds_each_wasm_media_type() {
        for mt in WASM_LAYER_MEDIA_TYPES {
            let Manifest::Image { layers, .. } =
                Manifest::parse(&image(&[(mt, 10)]), None).unwrap()
            else {
                panic!("not an image")
            };
            assert_eq!(select_wasm_layer(&layers).unwrap().media_type, mt);
        }
    }

    #[test]
    fn refuses_container_images_and_double_layers() {
        let Manifest::Image { layers, .. } = Manifest::parse(
            &image(&[("application/vnd.oci.image.layer.v1.tar+gzip", 10)]),
            None,
        )
        .unwrap() else {
            panic!()
        };
        let err = select_wasm_layer(&layers).unwrap_err();
        assert!(
            err.to_string()
                .contains("application/vnd.oci.image.layer.v1.tar+gzip"),
            "{err}"
        );

        let Manifest::Image { layers, .. } = Manifest::parse(
            &image(&[(WASM_LAYER_CNCF, 1), (WASM_LAYER_WASM_TO_OCI, 1)]),
            None,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            select_wasm_layer(&layers),
            Err(ManifestError::TooManyWasmLayers(2))
        );
    }

    #[test]
    fn refuses_oversized_layers() {
        let Manifest::Image { layers, .. } =
            Manifest::parse(&image(&[(WASM_LAYER_CNCF, MAX_PLUGIN_SIZE + 1)]), None).unwrap()
        else {
            panic!()
        };
        assert!(matches!(
            select_wasm_layer(&layers),
            Err(ManifestError::TooLarge { .. })
        ));
    }

    #[test]
    fn docker_v2_and_untyped_documents() {
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST_V2,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest('1'), "size": 1},
            "layers": [{"mediaType": WASM_LAYER_WASM_TO_OCI, "digest": digest('2'), "size": 3}],
        });
        let m = Manifest::parse(&serde_json::to_vec(&body).unwrap(), None).unwrap();
        assert!(
            matches!(m, Manifest::Image { ref media_type, .. } if media_type == DOCKER_MANIFEST_V2)
        );

        let untyped_index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            Manifest::parse(untyped_index, None).unwrap(),
            Manifest::Index { .. }
        ));
        let untyped_image = br#"{"schemaVersion":2,"layers":[]}"#;
        assert!(matches!(
            Manifest::parse(untyped_image, None).unwrap(),
            Manifest::Image { .. }
        ));
    }

    #[test]
    fn refuses_other_documents() {
        assert!(matches!(
            Manifest::parse(b"<html>", None),
            Err(ManifestError::Unparsable(_))
        ));
        assert_eq!(
            Manifest::parse(br#"{"schemaVersion":1}"#, None),
            Err(ManifestError::UnsupportedSchema(1))
        );
        assert!(matches!(
            Manifest::parse(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#, None),
            Err(ManifestError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn index_prefers_wasip2() {
        let entry = |os: &str, arch: &str, c: char| Descriptor {
            media_type: OCI_IMAGE_MANIFEST.into(),
            digest: digest(c),
            size: 1,
            platform: Some(Platform {
                os: os.into(),
                architecture: arch.into(),
            }),
        };
        let chosen = select_wasm_platform(&[
            entry("linux", "amd64", '1'),
            entry("wasip1", "wasm", '2'),
            entry("wasip2", "wasm", '3'),
        ])
        .unwrap();
        assert_eq!(chosen.digest, digest('3'));
        let err =
            select_wasm_platform(&[entry("linux", "amd64", '1'), entry("linux", "arm64", '2')])
                .unwrap_err();
        assert!(
            err.to_string().contains("linux/amd64, linux/arm64"),
            "{err}"
        );
    }
}
