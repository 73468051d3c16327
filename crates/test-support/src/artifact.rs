//! OCI artifacts written to disk and pushed with skopeo.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::{Registry, RegistryApi, sha256_digest};

/// Which manifest schema an artifact uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    /// `application/vnd.oci.image.manifest.v1+json`
    Oci,
    /// `application/vnd.docker.distribution.manifest.v2+json`
    DockerV2,
}

/// An artifact: a config blob and layers, described by one manifest.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub format: ManifestFormat,
    pub config_media_type: String,
    pub config: Vec<u8>,
    pub layers: Vec<(String, Vec<u8>)>,
}

impl Artifact {
    /// A plugin artifact in the layout the given layer media type comes from:
    /// the CNCF layout for `application/wasm`, wasm-to-oci's otherwise.
    pub fn wasm(wasm: Vec<u8>, layer_media_type: &str) -> Self {
        let (config_media_type, config) = if layer_media_type == "application/wasm" {
            let os = if wasm.get(4..8) == Some(&[1, 0, 0, 0]) {
                "wasip1"
            } else {
                "wasip2"
            };
            let digest = sha256_digest(&wasm);
            (
                "application/vnd.wasm.config.v0+json".to_string(),
                serde_json::to_vec(
                    &json!({"architecture": "wasm", "os": os, "layerDigests": [digest]}),
                )
                .unwrap_or_default(),
            )
        } else {
            (
                "application/vnd.wasm.config.v1+json".to_string(),
                b"{}".to_vec(),
            )
        };
        Self {
            format: ManifestFormat::Oci,
            config_media_type,
            config,
            layers: vec![(layer_media_type.to_string(), wasm)],
        }
    }

    /// A plugin in a Docker v2 schema 2 manifest (wasm-to-oci layer type).
    pub fn docker_v2(wasm: Vec<u8>) -> Self {
        Self {
            format: ManifestFormat::DockerV2,
            config_media_type: "application/vnd.docker.container.image.v1+json".to_string(),
            config: br#"{"architecture":"wasm","os":"wasip2"}"#.to_vec(),
            layers: vec![(
                "application/vnd.wasm.content.layer.v1+wasm".to_string(),
                wasm,
            )],
        }
    }

    /// An ordinary linux/amd64 container image (one gzip layer): what a
    /// plugin reference must not resolve to.
    pub fn container_image() -> Self {
        Self {
            format: ManifestFormat::Oci,
            config_media_type: "application/vnd.oci.image.config.v1+json".to_string(),
            config:
                br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                    .to_vec(),
            layers: vec![(
                "application/vnd.oci.image.layer.v1.tar+gzip".to_string(),
                b"not really a tarball".to_vec(),
            )],
        }
    }

    /// The manifest JSON and its digest.
    pub fn manifest(&self) -> (Vec<u8>, String) {
        let descriptor = |media_type: &str, bytes: &[u8]| json!({"mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len()});
        let media_type = match self.format {
            ManifestFormat::Oci => "application/vnd.oci.image.manifest.v1+json",
            ManifestFormat::DockerV2 => "application/vnd.docker.distribution.manifest.v2+json",
        };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": descriptor(&self.config_media_type, &self.config),
            "layers": self.layers.iter().map(|(mt, bytes)| descriptor(mt, bytes)).collect::<Vec<Value>>(),
        });
        let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
        let digest = sha256_digest(&bytes);
        (bytes, digest)
    }

    fn blobs(&self) -> Vec<&[u8]> {
        let mut blobs: Vec<&[u8]> = vec![&self.config];
        blobs.extend(self.layers.iter().map(|(_, b)| b.as_slice()));
        blobs
    }

    /// Writes the artifact as an OCI image layout with `tag`.
    pub fn write_oci_layout(&self, dir: &Path, tag: &str) {
        let (manifest, digest) = self.manifest();
        let entry = json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        });
        let mut blobs = self.blobs();
        blobs.push(&manifest);
        write_layout(dir, &blobs, vec![entry]);
    }

    /// Pushes the artifact to `registry` as `repo:tag` and returns the
    /// manifest digest. OCI manifests go through an OCI layout and skopeo
    /// (`--preserve-digests` makes it refuse to rewrite anything). skopeo
    /// refuses Docker v2 manifests whose layers are not Docker layer types, so
    /// those are pushed with curl over the distribution API, as a registry
    /// client of another kind would.
    pub fn push(&self, registry: &Registry, repo_tag: &str) -> String {
        let work = tempfile::tempdir().expect("temp dir");
        match self.format {
            ManifestFormat::Oci => {
                self.write_oci_layout(&work.path().join("layout"), "push");
                let source = format!("oci:{}:push", work.path().join("layout").display());
                skopeo_copy(&source, registry, repo_tag, false, work.path());
            }
            ManifestFormat::DockerV2 => self.curl_push(registry, repo_tag),
        }
        self.manifest().1
    }

    fn curl_push(&self, registry: &Registry, repo_tag: &str) {
        let (repo, tag) = repo_tag.rsplit_once(':').expect("repo:tag");
        let api = RegistryApi::new(registry);
        for blob in self.blobs() {
            api.upload_blob(repo, blob);
        }
        let (manifest, _) = self.manifest();
        api.put_manifest(
            repo,
            tag,
            "application/vnd.docker.distribution.manifest.v2+json",
            &manifest,
        );
    }
}

/// An image index over several artifacts, each with a platform.
pub fn push_index(
    registry: &Registry,
    repo_tag: &str,
    entries: &[(&Artifact, &str, &str)],
) -> String {
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("layout");
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let mut manifests = Vec::new();
    for (artifact, os, arch) in entries {
        let (manifest, digest) = artifact.manifest();
        manifests.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": manifest.len(),
            "platform": {"os": os, "architecture": arch},
        }));
        blobs.extend(artifact.blobs().into_iter().map(<[u8]>::to_vec));
        blobs.push(manifest);
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))
    .unwrap_or_default();
    let index_digest = sha256_digest(&index);
    let entry = json!({
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": index_digest,
        "size": index.len(),
        "annotations": {"org.opencontainers.image.ref.name": "push"},
    });
    blobs.push(index);
    write_layout(
        &layout,
        &blobs.iter().map(Vec::as_slice).collect::<Vec<_>>(),
        vec![entry],
    );
    skopeo_copy(
        &format!("oci:{}:push", layout.display()),
        registry,
        repo_tag,
        true,
        work.path(),
    );
    index_digest
}

fn write_layout(dir: &Path, blobs: &[&[u8]], index_entries: Vec<Value>) {
    let blob_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blob_dir).expect("creating the OCI layout");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("writing oci-layout");
    for blob in blobs {
        let digest = sha256_digest(blob);
        std::fs::write(blob_dir.join(digest.trim_start_matches("sha256:")), blob)
            .expect("writing a blob");
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index_entries});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).unwrap_or_default(),
    )
    .expect("writing index.json");
}

fn skopeo_copy(source: &str, registry: &Registry, repo_tag: &str, all: bool, work: &Path) {
    let skopeo = crate::require_tool("skopeo");
    let mut command = Command::new(skopeo);
    command.args(["copy", "--quiet", "--preserve-digests", "--insecure-policy"]);
    if all {
        command.arg("--all");
    }
    command
        .arg(source)
        .arg(format!("docker://{}/{repo_tag}", registry.host()));
    if registry.is_tls() {
        let ca = registry_ca(registry, work);
        command.arg("--dest-cert-dir").arg(ca);
    } else {
        command.arg("--dest-tls-verify=false");
    }
    if let Some((user, password)) = registry.credentials() {
        command
            .arg("--dest-creds")
            .arg(format!("{user}:{password}"));
    }
    let output = command.output().expect("running skopeo");
    assert!(
        output.status.success(),
        "skopeo copy {source} -> {repo_tag} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn registry_ca(registry: &Registry, work: &Path) -> std::path::PathBuf {
    let dir = work.join("certs");
    registry.write_ca(&dir);
    dir
}

/// Appends a custom section to a wasm binary (module or component) so it
/// weighs about `target_size` bytes and still runs the same.
pub fn pad_wasm(wasm: &[u8], target_size: usize) -> Vec<u8> {
    let name = "krew-wasm-test-padding";
    let overhead = 1 + 5 + 1 + name.len();
    let payload_len = target_size.saturating_sub(wasm.len() + overhead);
    with_custom_section(wasm, name, &vec![0x5a; payload_len])
}

/// `wasm` with a custom section (id 0) appended: valid at the end of a
/// module or a component, and ignored by the runtime.
pub fn with_custom_section(wasm: &[u8], name: &str, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(5 + name.len() + data.len());
    write_leb128(&mut body, name.len());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    let mut out = wasm.to_vec();
    out.push(0);
    write_leb128(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn write_leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
