//! Dev-only helpers for krew-wasm's tests. Everything here drives real parts:
//!
//! - [`Registry`] starts Debian's `docker-registry` (CNCF distribution) on
//!   127.0.0.1 with a temporary config: plain HTTP, or TLS from a [`TestCa`],
//!   optionally with htpasswd basic auth or bearer tokens from a
//!   [`TokenServer`] (docker's token auth, as hosted registries use).
//! - [`fixtures`] builds the guest fixtures in `guest/` from source, once per
//!   test process, for wasm32-wasip2 and wasm32-wasip1.
//! - [`Artifact`] writes an OCI image layout and [`Artifact::push`] copies it
//!   into a registry with `skopeo`, the independent pusher (Docker v2
//!   manifests with wasm layers, which skopeo refuses, go up with `curl`).
//! - [`StallingProxy`] forwards to a registry and stops forwarding after a
//!   number of bytes, so a test can kill a pull in the middle of a download.
//! - [`KubeApiServer`] is an in-process, TLS-only stand-in for kube-apiserver
//!   (core v1 pods, secrets, configmaps, events, namespaces; watches, tables,
//!   token/client-cert/basic auth), held to the real `kubectl` by its tests.
//! - [`require_tool`] turns a missing tool into a failing test that says what
//!   to install, never a silent skip.

mod artifact;
mod kube_api;
mod proxy;
mod registry;
mod registry_api;
pub mod sigstore;
mod tls;
mod token;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub use artifact::{Artifact, ManifestFormat, pad_wasm, push_index, with_custom_section};
pub use kube_api::{KubeApiServer, KubeconfigUser, RecordedRequest};
pub use proxy::StallingProxy;
pub use registry::{Registry, RegistryConfig};
pub use registry_api::RegistryApi;
pub use tls::TestCa;
pub use token::TokenServer;

/// The Debian package that provides each tool the tests use.
fn package_of(tool: &str) -> &str {
    match tool {
        "docker-registry" => "docker-registry",
        "skopeo" => "skopeo",
        "kubectl" => "kubernetes-client",
        "curl" => "curl",
        "script" => "bsdutils",
        other => other,
    }
}

/// The full path of `tool` on PATH; panics with the install command if absent.
pub fn require_tool(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(tool);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{tool}` is not installed, and this test needs the real one: install it with \
         `apt-get install -y {}` (or run .ci/run, which installs every tool the tests use)",
        package_of(tool)
    );
}

/// The repository root (the host workspace).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The guest fixtures, built from source.
pub struct Fixtures {
    target_dir: PathBuf,
}

impl Fixtures {
    /// A fixture or plugin built as a WASI 0.2 component (`hello`,
    /// `exit-code`, `sandbox-probe`, `decoder`, `podwatch`, `api-probe`, or
    /// one of the `attacks` package's binaries, e.g. `read-shadow`).
    pub fn p2(&self, name: &str) -> PathBuf {
        self.target_dir
            .join("wasm32-wasip2/release")
            .join(format!("{name}.wasm"))
    }

    /// A fixture built as a WASI preview-1 module.
    pub fn p1(&self, name: &str) -> PathBuf {
        self.target_dir
            .join("wasm32-wasip1/release")
            .join(format!("{name}.wasm"))
    }
}

/// Guest packages built for both WASI targets.
const FIXTURES_P1_AND_P2: &[&str] = &["hello", "exit-code", "sandbox-probe"];
/// Guest packages that use `wasi:http` (WASI 0.2 only).
const FIXTURES_P2_ONLY: &[&str] = &["decoder", "podwatch", "api-probe", "kube-crud", "attacks"];

/// Builds `guest/` (once per process; cargo makes later builds in the same
/// run no-ops) and returns where the files are.
pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let guest = repo_root().join("guest");
        let target_dir = guest.join("target");
        let build = |targets: &[&str], packages: &[&str]| {
            let mut command = Command::new("cargo");
            command
                .current_dir(&guest)
                .args(["build", "--release", "--quiet", "--target-dir"])
                .arg(&target_dir)
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS");
            for target in targets {
                command.args(["--target", target]);
            }
            for package in packages {
                command.args(["-p", package]);
            }
            let status = command
                .status()
                .unwrap_or_else(|e| panic!("running cargo to build the guest fixtures: {e}"));
            assert!(
                status.success(),
                "building the guest packages {packages:?} failed; they need `rustup target add wasm32-wasip1 wasm32-wasip2`"
            );
        };
        build(&["wasm32-wasip2", "wasm32-wasip1"], FIXTURES_P1_AND_P2);
        build(&["wasm32-wasip2"], FIXTURES_P2_ONLY);
        Fixtures { target_dir }
    })
}

/// sha256 digest of `bytes` as `sha256:<hex>`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}
