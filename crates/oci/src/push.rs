//! `krew-wasm push`: a plugin written as a CNCF Wasm OCI artifact.
//!
//! The layout (the CNCF TAG Runtime "Wasm OCI Artifact" format, as `wkg`,
//! Spin and wasmCloud write it): an OCI image manifest whose config has media
//! type `application/vnd.wasm.config.v0+json` and whose one layer is the
//! binary itself, `application/wasm`. The config says `architecture: wasm`,
//! `os: wasip1` (a core module) or `wasip2` (a component), the layer's digest
//! in `layerDigests` and, for a component, its top-level imports and exports.
//! The manifest carries the standard `org.opencontainers.image.*` annotations
//! and the plugin's permission declaration under
//! [`krew_wasm_permissions::ANNOTATION`].
//!
//! [`PushArtifact::build`] and the helpers before it are pure (bytes in,
//! documents out); [`RegistryClient::push`] is the I/O: blobs first, then the
//! manifest, then a check that the registry stored the manifest under our
//! digest.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::digest::sha256_digest;
use bytes::Bytes;
use krew_wasm_permissions::{Permissions, PermissionsError};
use oci_client::RegistryOperation;
use oci_client::errors::{OciDistributionError, OciEnvelope};
use reqwest::header::HeaderValue;
use serde::Serialize;

use crate::client::{OciError, RegistryClient, WASM_MAGIC};
use crate::manifest::{MAX_PLUGIN_SIZE, OCI_IMAGE_MANIFEST, WASM_LAYER_CNCF, is_sha256_digest};
use crate::reference::{PluginReference, ReferenceError};

/// Media type of the config blob of a CNCF Wasm OCI artifact.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";

/// `org.opencontainers.image.created`: when the artifact was pushed (RFC 3339).
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// `org.opencontainers.image.description`: the plugin's short description.
pub const ANNOTATION_DESCRIPTION: &str = "org.opencontainers.image.description";
/// `org.opencontainers.image.source`: where its source code lives.
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
/// `org.opencontainers.image.version`: the plugin's version.
pub const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";
/// `org.opencontainers.image.licenses`: an SPDX license expression.
pub const ANNOTATION_LICENSES: &str = "org.opencontainers.image.licenses";

/// Bytes handed to the HTTP client at a time, and so between progress calls.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// Why a push was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(
        "`{0}` has no tag: a push needs one so the plugin can be pulled by name; \
         add `:TAG`, as in `{0}:v1`"
    )]
    NoTag(String),
    #[error(
        "a push writes a manifest under a tag (its digest follows from its content), so it \
         cannot target a digest; add `:TAG` instead, as in `{0}:v1`"
    )]
    DigestReference(String),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(
        "not a WebAssembly binary: it starts with {head:02x?}, not the wasm magic \\0asm; \
         push the .wasm file your build wrote (target/wasm32-wasip2/release/NAME.wasm)"
    )]
    NotWasm { head: Vec<u8> },
    #[error("not a valid WebAssembly binary: {0}")]
    InvalidWasm(String),
    #[error("{size} bytes is more than the {max} bytes a plugin may weigh")]
    TooLarge { size: u64, max: u64 },
    #[error(transparent)]
    Permissions(#[from] PermissionsError),
    #[error("invalid annotation `{annotation}`: {reason}")]
    Annotation { annotation: String, reason: String },
    #[error(transparent)]
    Registry(#[from] OciError),
    #[error(
        "the registry stored the manifest of {reference} under digest {actual}, but krew-wasm \
         wrote {expected}: the registry (or something between you and it) rewrote the manifest"
    )]
    DigestMismatch {
        reference: String,
        expected: String,
        actual: String,
    },
}

/// Parses a push target: like [`PluginReference::parse`], but the tag must be
/// written out (no implicit `latest`) and a digest is refused.
pub fn push_reference(s: &str) -> Result<PluginReference, PushError> {
    let reference = PluginReference::parse(s)?;
    let repository = format!("{}/{}", reference.registry(), reference.repository());
    if reference.is_pinned() {
        return Err(PushError::DigestReference(repository));
    }
    // oci-client fills in `latest` for a bare repository; look at what was written.
    let last_segment = s.trim().rsplit('/').next().unwrap_or_default();
    if !last_segment.contains(':') {
        return Err(PushError::NoTag(repository));
    }
    Ok(reference)
}

/// Refuses a binary larger than pull accepts ([`MAX_PLUGIN_SIZE`]).
pub fn check_size(size: u64) -> Result<(), PushError> {
    if size > MAX_PLUGIN_SIZE {
        return Err(PushError::TooLarge {
            size,
            max: MAX_PLUGIN_SIZE,
        });
    }
    Ok(())
}

/// The WASI flavour of a binary, as the config's `os` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmOs {
    /// A core module (WASI preview 1).
    Wasip1,
    /// A component (WASI 0.2).
    Wasip2,
}

impl WasmOs {
    pub fn as_str(self) -> &'static str {
        match self {
            WasmOs::Wasip1 => "wasip1",
            WasmOs::Wasip2 => "wasip2",
        }
    }
}

/// What the config says about the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmInfo {
    pub os: WasmOs,
    /// For a component, its top-level import and export names.
    pub component: Option<ComponentWorld>,
}

/// The top-level imports and exports of a component
/// (`wasi:cli/environment@0.2.0`, `wasi:cli/run@0.2.0`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ComponentWorld {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
}

/// Reads the header and the top-level sections: a core module of version 1
/// is `wasip1`, a component `wasip2` (with its imports and exports). Every
/// section is walked, so a truncated or garbled binary is refused here.
pub fn inspect_wasm(wasm: &[u8]) -> Result<WasmInfo, PushError> {
    let head = wasm.get(..4).unwrap_or(wasm);
    if head != WASM_MAGIC {
        return Err(PushError::NotWasm {
            head: head.to_vec(),
        });
    }
    let invalid = |e: wasmparser::BinaryReaderError| PushError::InvalidWasm(e.to_string());
    let mut os = None;
    let mut world = ComponentWorld::default();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.map_err(invalid)? {
            wasmparser::Payload::Version { num, encoding, .. } => {
                depth += 1;
                if depth == 1 {
                    os = Some(match encoding {
                        wasmparser::Encoding::Module if num == 1 => WasmOs::Wasip1,
                        wasmparser::Encoding::Module => {
                            return Err(PushError::InvalidWasm(format!(
                                "core module version {num}; only version 1 is supported"
                            )));
                        }
                        wasmparser::Encoding::Component => WasmOs::Wasip2,
                    });
                }
            }
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    push_unique(&mut world.imports, import.map_err(invalid)?.name.name);
                }
            }
            wasmparser::Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    push_unique(&mut world.exports, export.map_err(invalid)?.name.name);
                }
            }
            _ => {}
        }
    }
    let os = os.ok_or_else(|| PushError::InvalidWasm("no header".to_string()))?;
    Ok(WasmInfo {
        os,
        component: (os == WasmOs::Wasip2).then_some(world),
    })
}

fn push_unique(names: &mut Vec<String>, name: &str) {
    if !names.iter().any(|n| n == name) {
        names.push(name.to_string());
    }
}

/// The permission declaration to publish: the given declaration file's
/// (which replaces the binary's), else the binary's `krew-wasm.permissions`
/// custom section, else none.
pub fn plugin_permissions(
    wasm: &[u8],
    declaration_file: Option<&[u8]>,
) -> Result<Option<Permissions>, PermissionsError> {
    match declaration_file {
        Some(json) => Permissions::from_json(json).map(Some),
        None => Permissions::from_wasm(wasm),
    }
}

/// Parses `KEY=VALUE` (`--annotation`).
pub fn parse_annotation(text: &str) -> Result<(String, String), PushError> {
    let error = |reason: &str| PushError::Annotation {
        annotation: text.to_string(),
        reason: reason.to_string(),
    };
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| error("expected KEY=VALUE"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(error("the key is empty"));
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(error("the key contains a space or control character"));
    }
    Ok((key.to_string(), value.to_string()))
}

/// What the user says about the plugin (from flags) and what the binary
/// declares.
#[derive(Debug, Clone)]
pub struct PushMetadata {
    pub description: Option<String>,
    pub source: Option<String>,
    pub version: Option<String>,
    pub licenses: Option<String>,
    /// Further annotations (`--annotation KEY=VALUE`), in the order given.
    pub annotations: Vec<(String, String)>,
    pub created: SystemTime,
    pub permissions: Option<Permissions>,
}

impl PushMetadata {
    /// Metadata with only the creation time set.
    pub fn new(created: SystemTime) -> Self {
        Self {
            description: None,
            source: None,
            version: None,
            licenses: None,
            annotations: Vec::new(),
            created,
            permissions: None,
        }
    }

    /// The manifest's annotations. An `--annotation` may set any key but one
    /// a dedicated flag owns or the permissions, which only a validated
    /// declaration may set; `created` may be overridden with an RFC 3339 time
    /// (for reproducible artifacts) and the config then says the same.
    pub fn annotations(&self) -> Result<BTreeMap<String, String>, PushError> {
        let mut out = BTreeMap::new();
        out.insert(
            ANNOTATION_CREATED.to_string(),
            humantime::format_rfc3339_seconds(self.created).to_string(),
        );
        let flags = [
            (ANNOTATION_DESCRIPTION, &self.description, "--description"),
            (ANNOTATION_SOURCE, &self.source, "--source"),
            (ANNOTATION_VERSION, &self.version, "--version"),
            (ANNOTATION_LICENSES, &self.licenses, "--licenses"),
        ];
        for (key, value, _) in &flags {
            if let Some(value) = value {
                out.insert(key.to_string(), value.clone());
            }
        }
        if let Some(permissions) = &self.permissions {
            out.insert(
                krew_wasm_permissions::ANNOTATION.to_string(),
                permissions.to_json(),
            );
        }
        let mut seen = Vec::new();
        for (key, value) in &self.annotations {
            let error = |reason: String| PushError::Annotation {
                annotation: format!("{key}={value}"),
                reason,
            };
            if let Some((_, _, flag)) = flags.iter().find(|(k, _, _)| k == key) {
                return Err(error(format!("set it with {flag}")));
            }
            if key == krew_wasm_permissions::ANNOTATION {
                return Err(error(
                    "the permission declaration comes from the binary's `krew-wasm.permissions` \
                     section or from --permissions FILE.json, which are checked"
                        .to_string(),
                ));
            }
            if key == ANNOTATION_CREATED && humantime::parse_rfc3339_weak(value).is_err() {
                return Err(error(
                    "not an RFC 3339 time such as 2024-05-01T12:00:00Z".to_string(),
                ));
            }
            if seen.contains(&key) {
                return Err(error("given twice".to_string()));
            }
            seen.push(key);
            out.insert(key.clone(), value.clone());
        }
        Ok(out)
    }
}

/// The config blob (`application/vnd.wasm.config.v0+json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WasmConfig<'a> {
    created: &'a str,
    architecture: &'static str,
    os: &'static str,
    layer_digests: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    component: Option<&'a ComponentWorld>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestDocument<'a> {
    schema_version: u32,
    media_type: &'static str,
    config: DescriptorDocument<'a>,
    layers: Vec<DescriptorDocument<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorDocument<'a> {
    media_type: &'static str,
    digest: &'a str,
    size: usize,
}

/// Everything a push uploads, with the digests it must come back under.
#[derive(Debug, Clone)]
pub struct PushArtifact {
    pub info: WasmInfo,
    pub wasm: Bytes,
    pub layer_digest: String,
    pub config: Bytes,
    pub config_digest: String,
    pub manifest: Bytes,
    pub manifest_digest: String,
    pub annotations: BTreeMap<String, String>,
}

impl PushArtifact {
    /// Checks the binary and writes the config and manifest documents.
    pub fn build(wasm: Vec<u8>, metadata: &PushMetadata) -> Result<Self, PushError> {
        check_size(wasm.len() as u64)?;
        let info = inspect_wasm(&wasm)?;
        let annotations = metadata.annotations()?;
        let layer_digest = sha256_digest(&wasm);
        let created = annotations
            .get(ANNOTATION_CREATED)
            .map(String::as_str)
            .unwrap_or_default();
        let config = to_json(&WasmConfig {
            created,
            architecture: "wasm",
            os: info.os.as_str(),
            layer_digests: vec![&layer_digest],
            component: info.component.as_ref(),
        });
        let config_digest = sha256_digest(&config);
        let manifest = to_json(&ManifestDocument {
            schema_version: 2,
            media_type: OCI_IMAGE_MANIFEST,
            config: DescriptorDocument {
                media_type: WASM_CONFIG_MEDIA_TYPE,
                digest: &config_digest,
                size: config.len(),
            },
            layers: vec![DescriptorDocument {
                media_type: WASM_LAYER_CNCF,
                digest: &layer_digest,
                size: wasm.len(),
            }],
            annotations: &annotations,
        });
        let manifest_digest = sha256_digest(&manifest);
        Ok(Self {
            info,
            wasm: Bytes::from(wasm),
            layer_digest,
            config: Bytes::from(config),
            config_digest,
            manifest: Bytes::from(manifest),
            manifest_digest,
            annotations,
        })
    }
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
    // Strings, numbers and maps of strings always serialize.
    serde_json::to_vec(value).unwrap_or_default()
}

impl RegistryClient {
    /// Uploads `artifact` as `reference` (which must carry a tag): the config
    /// and the wasm layer (skipped when the repository has it already), then
    /// the manifest. `progress` is called with the running count of layer
    /// bytes handed to the connection. Returns the manifest digest, checked
    /// against what the registry says it stored.
    pub async fn push(
        &mut self,
        reference: &PluginReference,
        artifact: &PushArtifact,
        mut progress: impl FnMut(u64) + Send + 'static,
    ) -> Result<String, PushError> {
        let shown = reference.to_string();
        if reference.is_pinned() {
            return Err(PushError::DigestReference(shown));
        }
        self.authorize_push(reference).await?;
        let image = reference.as_oci().clone();

        self.client
            .push_blob(&image, artifact.config.clone(), &artifact.config_digest)
            .await
            .map_err(|e| self.translate_push(e, &shown))?;

        let total = artifact.wasm.len() as u64;
        let present = self
            .client
            .blob_exists(&image, &artifact.layer_digest)
            .await
            .unwrap_or_else(|e| {
                log::debug!("HEAD of the layer failed ({e}); uploading it");
                false
            });
        if present {
            log::debug!("{} already has {}", self.registry, artifact.layer_digest);
            progress(total);
        } else {
            let wasm = artifact.wasm.clone();
            let chunks: Vec<Bytes> = (0..wasm.len())
                .step_by(UPLOAD_CHUNK)
                .map(|start| wasm.slice(start..wasm.len().min(start + UPLOAD_CHUNK)))
                .collect();
            let mut sent = 0u64;
            let stream = futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
                sent += chunk.len() as u64;
                progress(sent);
                Ok::<_, OciDistributionError>(chunk)
            }));
            self.client
                .push_blob_stream(&image, stream, &artifact.layer_digest, Some(total))
                .await
                .map_err(|e| self.translate_push(e, &shown))?;
        }

        self.push_manifest_checked(
            &image,
            artifact.manifest.clone(),
            &artifact.manifest_digest,
            &shown,
        )
        .await?;
        Ok(artifact.manifest_digest.clone())
    }

    /// Puts an OCI image manifest and checks that the registry stored what
    /// was sent: the digest of its answer's location, or, from a registry
    /// that does not say, of the manifest read back.
    pub(crate) async fn push_manifest_checked(
        &self,
        image: &oci_client::Reference,
        manifest: Bytes,
        expected_digest: &str,
        shown: &str,
    ) -> Result<(), PushError> {
        let location = self
            .client
            .push_manifest_raw(
                image,
                manifest,
                HeaderValue::from_static(OCI_IMAGE_MANIFEST),
            )
            .await
            .map_err(|e| self.translate_push(e, shown))?;
        let stored = match location.rsplit('/').next().filter(|d| is_sha256_digest(d)) {
            Some(digest) => digest.to_string(),
            None => {
                let (body, _) = self
                    .client
                    .pull_manifest_raw(image, &self.auth, &[OCI_IMAGE_MANIFEST])
                    .await
                    .map_err(|e| self.translate(e, shown))?;
                sha256_digest(&body)
            }
        };
        if stored != expected_digest {
            return Err(PushError::DigestMismatch {
                reference: shown.to_string(),
                expected: expected_digest.to_string(),
                actual: stored,
            });
        }
        Ok(())
    }

    /// Authenticates for pushing (a token with push scope, or basic auth),
    /// falling back to plain HTTP for a loopback registry whose HTTPS
    /// endpoint does not answer, as pulls do.
    pub(crate) async fn authorize_push(
        &mut self,
        reference: &PluginReference,
    ) -> Result<(), PushError> {
        let first = self
            .client
            .auth(reference.as_oci(), &self.auth, RegistryOperation::Push)
            .await;
        let result = match first {
            Err(e) if self.falls_back_to_plain_http(&e, reference) => {
                self.switch_to_plain_http(&e)?;
                self.client
                    .auth(reference.as_oci(), &self.auth, RegistryOperation::Push)
                    .await
            }
            other => other,
        };
        result
            .map(|_| ())
            .map_err(|e| self.translate_push(e, &reference.to_string()).into())
    }

    /// Upload requests fail with the bare status and body; give them the
    /// shape [`RegistryClient::translate`] knows, so a 401 says how to log in.
    pub(crate) fn translate_push(&self, err: OciDistributionError, reference: &str) -> OciError {
        let unauthorized = || OciDistributionError::UnauthorizedError {
            url: self.registry.clone(),
        };
        let err = match err {
            OciDistributionError::ServerError { code: 401, .. } => unauthorized(),
            OciDistributionError::RequestError(e)
                if e.status().is_some_and(|s| s.as_u16() == 401) =>
            {
                unauthorized()
            }
            OciDistributionError::ServerError { code, url, message } => {
                match serde_json::from_str::<OciEnvelope>(&message) {
                    Ok(envelope) if !envelope.errors.is_empty() => {
                        OciDistributionError::RegistryError { envelope, url }
                    }
                    _ => OciDistributionError::ServerError { code, url, message },
                }
            }
            other => other,
        };
        self.translate(err, reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module: magic, version 1, and nothing else.
    const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";

    /// A component importing `wasi:cli/stdout@0.2.0` (an instance of an empty
    /// instance type) and exporting that instance again as `wasi:cli/run@0.2.0`.
    fn tiny_component() -> Vec<u8> {
        let mut out = b"\0asm\x0d\0\x01\0".to_vec();
        // Type section (id 7): one type, an instance type (0x42) with no decls.
        section(&mut out, 7, &[0x01, 0x42, 0x00]);
        // Import section (id 10): one import, name form 0x00, the name,
        // extern desc instance (0x05) of type 0.
        let mut import = vec![0x01, 0x00];
        name(&mut import, "wasi:cli/stdout@0.2.0");
        import.extend_from_slice(&[0x05, 0x00]);
        section(&mut out, 10, &import);
        // Export section (id 11): one export, name form 0x00, the name,
        // sort instance (0x05), index 0, no type ascription.
        let mut export = vec![0x01, 0x00];
        name(&mut export, "wasi:cli/run@0.2.0");
        export.extend_from_slice(&[0x05, 0x00, 0x00]);
        section(&mut out, 11, &export);
        out
    }

    fn section(out: &mut Vec<u8>, id: u8, body: &[u8]) {
        out.push(id);
        out.push(u8::try_from(body.len()).unwrap());
        out.extend_from_slice(body);
    }

    fn name(out: &mut Vec<u8>, name: &str) {
        out.push(u8::try_from(name.len()).unwrap());
        out.extend_from_slice(name.as_bytes());
    }

    /// `wasm` with a custom section appended.
    fn with_custom_section(wasm: &[u8], section_name: &str, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        name(&mut body, section_name);
        body.extend_from_slice(data);
        let mut out = wasm.to_vec();
        section(&mut out, 0, &body);
        out
    }

    fn created() -> SystemTime {
        humantime::parse_rfc3339("2024-05-01T12:00:00Z").unwrap()
    }

    fn json(bytes: &[u8]) -> serde_json::Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn detects_wasip1_modules_and_wasip2_components() {
        assert_eq!(
            inspect_wasm(EMPTY_MODULE).unwrap(),
            WasmInfo {
                os: WasmOs::Wasip1,
                component: None
            }
        );
        let info = inspect_wasm(&tiny_component()).unwrap();
        assert_eq!(info.os, WasmOs::Wasip2);
        assert_eq!(
            info.component.unwrap(),
            ComponentWorld {
                imports: vec!["wasi:cli/stdout@0.2.0".into()],
                exports: vec!["wasi:cli/run@0.2.0".into()],
            }
        );
    }

    #[test]
    fn refuses_what_is_not_wasm() {
        for bytes in [
            &b""[..],
            b"\0as",
            b"#!/bin/sh\necho hi\n",
            b"\x7fELF\x02\x01\x01",
        ] {
            let err = inspect_wasm(bytes).unwrap_err();
            assert!(matches!(err, PushError::NotWasm { .. }), "{err}");
            assert!(err.to_string().contains("wasm magic"), "{err}");
        }
        // Right magic, unknown version; then a section cut short.
        assert!(matches!(
            inspect_wasm(b"\0asm\x02\0\0\0"),
            Err(PushError::InvalidWasm(_))
        ));
        let component = tiny_component();
        assert!(matches!(
            inspect_wasm(&component[..component.len() - 3]),
            Err(PushError::InvalidWasm(_))
        ));
    }

    #[test]
    fn references_need_a_tag() {
        let r = push_reference("127.0.0.1:5000/plugins/hello:v1").unwrap();
        assert_eq!(r.tag(), Some("v1"));
        assert!(push_reference("oci://ghcr.io/org/hello:latest").is_ok());
        for s in ["127.0.0.1:5000/plugins/hello", "ghcr.io/org/hello"] {
            let err = push_reference(s).unwrap_err();
            assert!(matches!(err, PushError::NoTag(_)), "{s}: {err}");
            assert!(err.to_string().contains(":TAG"), "{err}");
            assert!(err.to_string().contains(&format!("`{s}:v1`")), "{err}");
        }
        let digest = format!("sha256:{}", "a".repeat(64));
        for s in [
            format!("ghcr.io/org/hello@{digest}"),
            format!("ghcr.io/org/hello:v1@{digest}"),
        ] {
            let err = push_reference(&s).unwrap_err();
            assert!(matches!(err, PushError::DigestReference(_)), "{s}: {err}");
            assert!(err.to_string().contains(":TAG"), "{err}");
        }
        assert!(matches!(
            push_reference("hello:v1"),
            Err(PushError::Reference(ReferenceError::NoRegistry(_)))
        ));
    }

    #[test]
    fn config_and_manifest_of_a_component() {
        let wasm = tiny_component();
        let mut metadata = PushMetadata::new(created());
        metadata.description = Some("Says hello".into());
        metadata.source = Some("https://github.com/org/hello".into());
        metadata.version = Some("1.2.0".into());
        metadata.licenses = Some("Apache-2.0".into());
        metadata.annotations = vec![("com.example.team".into(), "platform".into())];
        let artifact = PushArtifact::build(wasm.clone(), &metadata).unwrap();

        assert_eq!(artifact.layer_digest, sha256_digest(&wasm));
        assert_eq!(artifact.config_digest, sha256_digest(&artifact.config));
        assert_eq!(artifact.manifest_digest, sha256_digest(&artifact.manifest));
        assert_eq!(
            json(&artifact.config),
            serde_json::json!({
                "created": "2024-05-01T12:00:00Z",
                "architecture": "wasm",
                "os": "wasip2",
                "layerDigests": [artifact.layer_digest],
                "component": {
                    "exports": ["wasi:cli/run@0.2.0"],
                    "imports": ["wasi:cli/stdout@0.2.0"],
                },
            })
        );
        assert_eq!(
            json(&artifact.manifest),
            serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.wasm.config.v0+json",
                    "digest": artifact.config_digest,
                    "size": artifact.config.len(),
                },
                "layers": [{
                    "mediaType": "application/wasm",
                    "digest": artifact.layer_digest,
                    "size": wasm.len(),
                }],
                "annotations": {
                    "com.example.team": "platform",
                    "org.opencontainers.image.created": "2024-05-01T12:00:00Z",
                    "org.opencontainers.image.description": "Says hello",
                    "org.opencontainers.image.licenses": "Apache-2.0",
                    "org.opencontainers.image.source": "https://github.com/org/hello",
                    "org.opencontainers.image.version": "1.2.0",
                },
            })
        );
        // What pull reads back from it.
        let crate::Manifest::Image {
            media_type, layers, ..
        } = crate::Manifest::parse(&artifact.manifest, None).unwrap()
        else {
            panic!("not an image manifest")
        };
        assert_eq!(media_type, OCI_IMAGE_MANIFEST);
        let layer = crate::manifest::select_wasm_layer(&layers).unwrap();
        assert_eq!(layer.digest, artifact.layer_digest);
        assert_eq!(layer.size, wasm.len() as u64);
    }

    #[test]
    fn config_of_a_module_has_no_component() {
        let artifact =
            PushArtifact::build(EMPTY_MODULE.to_vec(), &PushMetadata::new(created())).unwrap();
        let config = json(&artifact.config);
        assert_eq!(config["os"], "wasip1");
        assert_eq!(config["architecture"], "wasm");
        assert!(config.get("component").is_none(), "{config}");
        let manifest = json(&artifact.manifest);
        assert_eq!(
            manifest["annotations"],
            serde_json::json!({"org.opencontainers.image.created": "2024-05-01T12:00:00Z"})
        );
    }

    #[test]
    fn permissions_from_the_binary_or_a_file() {
        let declared = br#"{"version":1,"env":["AWS_PROFILE"],"hosts":["https://api.github.com"]}"#;
        let wasm = with_custom_section(
            EMPTY_MODULE,
            krew_wasm_permissions::CUSTOM_SECTION,
            declared,
        );
        let from_binary = plugin_permissions(&wasm, None).unwrap().unwrap();
        let mut metadata = PushMetadata::new(created());
        metadata.permissions = Some(from_binary.clone());
        let artifact = PushArtifact::build(wasm.clone(), &metadata).unwrap();
        let annotation =
            &json(&artifact.manifest)["annotations"][krew_wasm_permissions::ANNOTATION];
        assert_eq!(
            annotation,
            &serde_json::Value::String(from_binary.to_json())
        );
        assert_eq!(
            Permissions::from_json(annotation.as_str().unwrap().as_bytes()).unwrap(),
            from_binary
        );

        // A file replaces the binary's declaration.
        let file = br#"{"version": 1, "memory": "1GiB"}"#;
        let from_file = plugin_permissions(&wasm, Some(file)).unwrap().unwrap();
        assert_ne!(from_file, from_binary);
        assert_eq!(from_file, Permissions::from_json(file).unwrap());

        // None declared: no annotation.
        assert_eq!(plugin_permissions(EMPTY_MODULE, None).unwrap(), None);

        // A bad file names where it is wrong.
        let err = plugin_permissions(&wasm, Some(b"{\"version\": 1,\n \"hostz\": []}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("hostz"), "{err}");
    }

    #[test]
    fn annotations_from_flags_and_their_limits() {
        assert_eq!(
            parse_annotation("a.b/c=x=y").unwrap(),
            ("a.b/c".to_string(), "x=y".to_string())
        );
        assert_eq!(
            parse_annotation("k=").unwrap(),
            ("k".to_string(), String::new())
        );
        for bad in ["novalue", "=v", "a key=v"] {
            assert!(
                matches!(parse_annotation(bad), Err(PushError::Annotation { .. })),
                "{bad}"
            );
        }

        let with = |pairs: &[(&str, &str)]| {
            let mut metadata = PushMetadata::new(created());
            metadata.annotations = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            metadata.annotations()
        };
        let err = with(&[(ANNOTATION_DESCRIPTION, "x")]).unwrap_err();
        assert!(err.to_string().contains("--description"), "{err}");
        let err = with(&[(krew_wasm_permissions::ANNOTATION, "{}")]).unwrap_err();
        assert!(err.to_string().contains("--permissions"), "{err}");
        let err = with(&[("k", "1"), ("k", "2")]).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        let err = with(&[(ANNOTATION_CREATED, "yesterday")]).unwrap_err();
        assert!(err.to_string().contains("RFC 3339"), "{err}");

        // A fixed creation time reaches the config too: reproducible pushes.
        let mut metadata = PushMetadata::new(SystemTime::now());
        metadata.annotations = vec![(ANNOTATION_CREATED.into(), "2020-01-01T00:00:00Z".into())];
        let a = PushArtifact::build(EMPTY_MODULE.to_vec(), &metadata).unwrap();
        let b = PushArtifact::build(EMPTY_MODULE.to_vec(), &metadata).unwrap();
        assert_eq!(json(&a.config)["created"], "2020-01-01T00:00:00Z");
        assert_eq!(a.manifest_digest, b.manifest_digest);
    }

    #[test]
    fn refuses_oversized_binaries() {
        assert!(check_size(MAX_PLUGIN_SIZE).is_ok());
        let err = check_size(MAX_PLUGIN_SIZE + 1).unwrap_err();
        assert!(matches!(err, PushError::TooLarge { .. }), "{err}");
    }
}
