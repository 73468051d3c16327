//! Write kubectl plugins that run inside [krew-wasm](https://github.com/krew-wasm/krew-wasm):
//! WebAssembly components started by kubectl as `kubectl-<name>`, talking to the
//! cluster through the host.
//!
//! # The smallest plugin
//!
//! `Cargo.toml`: `krew-wasm-sdk = { path = "…/guest/sdk" }`, then:
//!
//! ```no_run
//! use krew_wasm_sdk::k8s_openapi::api::core::v1::Pod;
//! use krew_wasm_sdk::kube::{Api, api::ListParams};
//!
//! fn main() {
//!     krew_wasm_sdk::run(async {
//!         let pods: Api<Pod> = Api::default_namespaced(krew_wasm_sdk::client()?);
//!         for pod in pods.list(&ListParams::default()).await? {
//!             println!("{}", pod.metadata.name.unwrap_or_default());
//!         }
//!         Ok::<_, krew_wasm_sdk::Error>(())
//!     })
//! }
//! ```
//!
//! Build it with `cargo build --release` and the settings [below](#build-settings);
//! `krew-wasm` runs `target/wasm32-wasip2/release/<name>.wasm` as `kubectl <name>`.
//!
//! # The parts
//!
//! **The kubeconfig view** ([`view()`], [`KubeconfigView`]). The host selects one
//! cluster, context and user with kubectl's rules (including `--kubeconfig`,
//! `--context`, `-n` found in the plugin's argv, which stay in argv) and gives the
//! plugin a credential-free kubeconfig at `$KUBECONFIG`. The view tells you the
//! context, cluster and user names, the namespace (`-n`, else the context's, else
//! `default`) and the server URL. No view means no kubeconfig on the host:
//! [`Error::NoKubeconfig`] says so and tells the user what to set.
//!
//! **A kube-rs client** ([`client()`], [`run()`], feature `kube`). A real
//! [`kube::Client`]: `Api<K>` get/list/watch/create/patch/delete work as on a
//! native build. Its transport sends each request over wasi:http to the view's
//! server; the host adds the user's credentials and does TLS. Bodies stream both
//! ways, so a watch yields each event as it arrives. [`run`] drives your async main
//! on a current-thread tokio runtime and turns an error into one stderr line and
//! exit code 1.
//!
//! **Blocking HTTP** ([`http`]). `http::get("/api/v1/…")` returns a response whose
//! body implements [`std::io::Read`] and streams; no async runtime needed. With
//! `default-features = false` (no `kube`), a plugin built on it stays a few hundred KB.
//!
//! **Permissions** ([`permissions!`]). A plugin gets stdio, its argv, a short
//! env allow-list and its cluster. Anything more (an env var, a directory, another
//! host, more than 512 MiB of memory) it declares, and the user grants at install:
//! `krew_wasm_sdk::permissions!(r#"{"version":1,"env":["AWS_PROFILE"]}"#);` at the
//! top level of `main.rs`. The format is in the project's `docs/permissions.md`.
//!
//! **Errors** ([`Error`], [`describe`], [`exit_with_error`]). An API `Status` becomes
//! [`Error::Api`] whose text is the Status `message`, and is reported the way kubectl
//! does (`Error from server (NotFound): secrets "x" not found`). A request the host
//! refuses (another host, a credential header) is [`Error::Denied`].
//!
//! # Build settings
//!
//! Exactly these, in the plugin's `.cargo/config.toml` (the template that
//! `krew-wasm new` writes has them):
//!
//! ```toml
//! [build]
//! target = "wasm32-wasip2"          # a WASI 0.2 component: wasi:http exists only there
//!
//! [target.wasm32-wasip2]
//! rustflags = ["--cfg", "tokio_unstable"]   # only with the `kube` feature
//! ```
//!
//! - **wasm32-wasip2** is required for any API access. A wasm32-wasip1 build still
//!   compiles and can read the view, but every request returns [`Error::Unsupported`].
//! - **`--cfg tokio_unstable`**: kube-client turns on tokio's `signal` feature, which
//!   tokio compiles for WASI only under this flag. A dependency cannot set
//!   rustflags for you, so it has to be in the plugin's config. Not needed with
//!   `default-features = false`.
//! - **A current-thread runtime**: wasm32-wasip2 has no threads. [`run`] builds it
//!   ([`runtime`] if you want to hold it), so do not use `#[tokio::main]`; under a
//!   runtime of your own, HTTP still works but each wait blocks the thread.
//! - Recommended for size, not required: `[profile.release]` with `opt-level = "z"`,
//!   `lto = true`, `codegen-units = 1`, `panic = "abort"`, `strip = true`.
//!   `"z"` costs speed where a plugin reads a lot: decoding a 1,000-pod list (600 KB
//!   of JSON) took 7.4 ms at `"z"`, 4.6 ms at `"s"` (+13% size) and 4.3 ms at `3`
//!   (+60%), the same as a native build at the same level; start-up did not change.
//!
//! # Performance
//!
//! A plugin's own code runs about as fast as the same code built natively (wasmtime
//! compiles it ahead of time at install); what differs is the host around it. Two
//! habits keep it that way: write output in one piece (a `String`, or a
//! `BufWriter` around `stdout().lock()`), since every line a line-buffered
//! `println!` flushes is a call into the host; and make requests from [`run`]'s
//! runtime, whose reactor never delays I/O (see `reactor.rs`).
//!
//! # Native builds
//!
//! The same source also builds as an ordinary native `kubectl-<name>` binary
//! (`cargo build --release --target x86_64-unknown-linux-gnu`, or your host's
//! triple), to compare with, or to ship where krew-wasm is not installed. There
//! [`view()`] and [`client()`] do what the krew-wasm host does for a plugin: load
//! the real kubeconfig with kubectl's rules (`--kubeconfig`, else the `KUBECONFIG`
//! list merged, else `~/.kube/config`) and apply `--context`, `--cluster`, `--user`
//! and `-n/--namespace` from argv, which stay in argv; the client is kube-rs's own
//! (rustls with ring, the kubeconfig's auth), and [`run`] uses an ordinary
//! current-thread tokio runtime. The blocking [`http`] helper is krew-wasm only and
//! returns [`Error::Unsupported`] natively, as do [`view()`] and every request
//! without the `kube` feature. None of this reaches a wasm build: the native
//! dependencies are target-specific.
//!
//! What the SDK hides: the wasi:http transport and its reactor (tokio cannot wait on
//! a wasi pollable; the SDK waits in tokio's idle hook, see `reactor.rs`); the
//! k8s-openapi version feature (the SDK enables `latest`; use the re-exported
//! [`k8s_openapi`] and do not enable another version feature); kubeconfig loading
//! (the host did it); and error reporting.

mod error;
pub mod http;
// Only requests use it, and only a WASI 0.2 build sends requests.
#[cfg_attr(not(all(target_os = "wasi", target_env = "p2")), allow(dead_code))]
mod target;
mod view;
#[cfg(all(target_os = "wasi", target_env = "p2"))]
mod wasi;
mod yaml;

#[cfg(all(feature = "kube", not(target_os = "wasi")))]
mod native;
#[cfg(all(feature = "kube", target_os = "wasi", target_env = "p2"))]
mod reactor;
#[cfg(feature = "kube")]
mod runtime;
#[cfg(feature = "kube")]
mod transport;

use std::io::Write;

pub use error::{Error, Result, describe};
pub use view::{DEFAULT_NAMESPACE, KubeconfigView, view};

#[cfg(feature = "kube")]
pub use runtime::{client, run, runtime};
#[cfg(feature = "kube")]
pub use transport::ResponseBody;

/// kube-rs, as the SDK builds it (`Api`, `Client`, `api::{ListParams, WatchParams, …}`).
#[cfg(feature = "kube")]
pub use kube;

/// Kubernetes API types (`api::core::v1::Pod`, …), version `latest`.
#[cfg(feature = "kube")]
pub use k8s_openapi;

/// tokio, for `select!`, timers and channels inside [`run`].
#[cfg(feature = "kube")]
pub use tokio;

/// futures, for `StreamExt`/`TryStreamExt` on watch streams.
#[cfg(feature = "kube")]
pub use futures;

/// Declares the permissions a plugin needs beyond the defaults, as JSON in
/// the wasm custom section `krew-wasm.permissions` that krew-wasm reads at
/// install (and `krew-wasm push` copies into the manifest's annotations).
/// Use it once, at the top level of the binary crate:
///
/// ```
/// krew_wasm_sdk::permissions!(
///     r#"{"version":1,"env":["AWS_PROFILE"],"dirs":[{"path":".","access":"read-only"}]}"#
/// );
/// # fn main() {}
/// ```
///
/// Nothing is checked here: `krew-wasm pull` (and `krew-wasm run --yes`)
/// refuse a malformed declaration with the line and field at fault.
#[macro_export]
macro_rules! permissions {
    ($json:literal) => {
        const _: () = {
            const DECLARATION: &str = $json;
            // `#[used]` keeps the linker from dropping the section.
            #[used]
            #[unsafe(link_section = "krew-wasm.permissions")]
            static PERMISSIONS: [u8; DECLARATION.len()] = {
                let bytes = DECLARATION.as_bytes();
                let mut array = [0; DECLARATION.len()];
                let mut i = 0;
                while i < array.len() {
                    array[i] = bytes[i];
                    i += 1;
                }
                array
            };
        };
    };
}

/// Runs a blocking `main`; on error, prints one line on stderr and exits with code 1.
///
/// ```no_run
/// krew_wasm_sdk::run_sync(|| {
///     let view = krew_wasm_sdk::view()?;
///     println!("{} at {}", view.context(), view.server());
///     Ok::<_, krew_wasm_sdk::Error>(())
/// })
/// ```
pub fn run_sync<E>(main: impl FnOnce() -> Result<(), E>)
where
    E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    if let Err(err) = main() {
        let err: Box<dyn std::error::Error + Send + Sync> = err.into();
        exit_with_error(&*err);
    }
}

/// Prints `error` the way kubectl would and exits with code 1.
///
/// A broken pipe (the plugin was piped into `head`, which has exited) is not an
/// error for a command-line tool: it exits 0 without a word.
pub fn exit_with_error(error: &(dyn std::error::Error + 'static)) -> ! {
    let _ = std::io::stdout().flush();
    if is_broken_pipe(error) {
        std::process::exit(0);
    }
    let line = describe(error);
    if line.starts_with("Error from server") {
        eprintln!("{line}");
    } else {
        eprintln!("error: {line}");
    }
    std::process::exit(1)
}

fn is_broken_pipe(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(err) = current {
        // `Error::Io` gives its io::Error as its source, so one check covers both.
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            return true;
        }
        current = err.source();
    }
    false
}
