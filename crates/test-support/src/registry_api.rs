//! The registry's HTTP API driven with `curl`, for what no pusher writes:
//! Docker v2 manifests with wasm layers, tampered signatures, raw reads.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Registry, sha256_digest};

/// `curl` against one registry, with its CA and basic-auth credentials.
pub struct RegistryApi<'a> {
    registry: &'a Registry,
    base: String,
    work: tempfile::TempDir,
}

impl<'a> RegistryApi<'a> {
    pub fn new(registry: &'a Registry) -> Self {
        let scheme = if registry.is_tls() { "https" } else { "http" };
        Self {
            base: format!("{scheme}://{}", registry.host()),
            registry,
            work: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Runs curl with `args`; panics with its output when it fails.
    pub fn curl(&self, args: &[&str]) -> Vec<u8> {
        let mut command = Command::new(crate::require_tool("curl"));
        command.args(["-sS", "--fail-with-body"]);
        if self.registry.is_tls() {
            command
                .arg("--cacert")
                .arg(self.registry.write_ca(&self.work.path().join("certs")));
        }
        if let Some((user, password)) = self.registry.credentials() {
            command.arg("-u").arg(format!("{user}:{password}"));
        }
        let output = command.args(args).output().expect("running curl");
        assert!(
            output.status.success(),
            "curl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// Uploads `blob` into `repo` (monolithic: POST for a location, PUT the
    /// bytes there); returns its digest.
    pub fn upload_blob(&self, repo: &str, blob: &[u8]) -> String {
        let headers = self.curl(&[
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-X",
            "POST",
            &format!("{}/v2/{repo}/blobs/uploads/", self.base),
        ]);
        let location = String::from_utf8_lossy(&headers)
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
                    .map(|(_, v)| v.trim().to_string())
            })
            .expect("upload location");
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let digest = sha256_digest(blob);
        let file = self.file("blob", blob);
        self.curl(&[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
            &format!("{location}{separator}digest={digest}"),
        ]);
        digest
    }

    /// PUTs `manifest` as `repo:reference` with `media_type`.
    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, manifest: &[u8]) {
        let file = self.file("manifest.json", manifest);
        self.curl(&[
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {media_type}"),
            "--data-binary",
            &format!("@{}", file.display()),
            &format!("{}/v2/{repo}/manifests/{reference}", self.base),
        ]);
    }

    /// GETs the manifest `repo:reference`, accepting `media_type`.
    pub fn manifest(&self, repo: &str, reference: &str, media_type: &str) -> Vec<u8> {
        self.curl(&[
            "-H",
            &format!("Accept: {media_type}"),
            &format!("{}/v2/{repo}/manifests/{reference}", self.base),
        ])
    }

    /// GETs a blob by digest.
    pub fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        self.curl(&["-L", &format!("{}/v2/{repo}/blobs/{digest}", self.base)])
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path: &Path = self.work.path();
        let file = path.join(name);
        std::fs::write(&file, bytes).expect("writing a request body");
        file
    }
}
