//! The async side: a current-thread tokio runtime wired to the SDK's wasi:io
//! reactor, [`run`] to drive a plugin's async main on it, and [`client`] for a
//! `kube::Client` whose transport is wasi:http (natively: kube-rs's own).

use std::error::Error as StdError;
use std::future::Future;

use crate::error::{Error, Result};

/// A current-thread tokio runtime (with timers) that can wait on wasi:http; in a
/// native build, an ordinary one with timers and I/O.
///
/// [`run`] builds one for you; build your own only to call `block_on` yourself.
/// A multi-thread runtime is not possible on wasm32-wasip2, and a runtime built
/// without this function (e.g. by `#[tokio::main]`) makes every HTTP wait block the
/// whole thread.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    #[cfg(target_os = "wasi")]
    builder.enable_time();
    #[cfg(all(target_os = "wasi", target_env = "p2"))]
    {
        crate::reactor::mark_hooked();
        builder.on_thread_park(crate::reactor::park);
    }
    // Natively kube-rs's hyper client needs tokio's I/O driver too.
    #[cfg(not(target_os = "wasi"))]
    builder.enable_all();
    builder.build()
}

/// Runs the plugin's async `main` to completion on [`runtime`]; on error, prints
/// one line on stderr (see [`crate::describe`]) and exits with code 1.
///
/// ```no_run
/// krew_wasm_sdk::run(async {
///     let client = krew_wasm_sdk::client()?;
///     let version = client.apiserver_version().await?;
///     println!("{}.{}", version.major, version.minor);
///     Ok::<_, krew_wasm_sdk::Error>(())
/// })
/// ```
pub fn run<Fut, E>(main: Fut)
where
    Fut: Future<Output = Result<(), E>>,
    E: Into<Box<dyn StdError + Send + Sync + 'static>>,
{
    let result = match runtime() {
        Ok(runtime) => runtime.block_on(main).map_err(Into::into),
        Err(err) => Err(err.into()),
    };
    if let Err(err) = result {
        crate::exit_with_error(&*err);
    }
}

/// A `kube::Client` for the view's cluster, defaulting to the view's namespace.
///
/// Call it inside [`run`] (the client spawns a task on the runtime). It fails with
/// [`Error::NoKubeconfig`] when the host gave no kubeconfig view.
///
/// In a native build it is kube-rs's own client (rustls, kubeconfig auth) for the
/// cluster, user and namespace that the real kubeconfig and argv's kubectl flags
/// select, as krew-wasm would have selected them (see [`crate::view()`]).
pub fn client() -> Result<kube::Client> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::other(
            "krew_wasm_sdk::client() must be called inside krew_wasm_sdk::run(async { … })",
        ));
    }
    #[cfg(not(target_os = "wasi"))]
    return crate::native::client();
    #[cfg(target_os = "wasi")]
    {
        let view = crate::view()?;
        let service = crate::transport::service(view.server_uri().clone());
        Ok(kube::Client::new(service, view.namespace()))
    }
}
