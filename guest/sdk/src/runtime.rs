//! The async side: a current-thread tokio runtime wired to the SDK's wasi:io
//! reactor, [`run`] to drive a plugin's async main on it, and [`client`] for a
//! `kube::Client` whose transport is wasi:http.

use std::error::Error as StdError;
use std::future::Future;

use crate::error::{Error, Result};
use crate::transport;

/// A current-thread tokio runtime (with timers) that can wait on wasi:http.
///
/// [`run`] builds one for you; build your own only to call `block_on` yourself.
/// A multi-thread runtime is not possible on wasm32-wasip2, and a runtime built
/// without this function (e.g. by `#[tokio::main]`) makes every HTTP wait block the
/// whole thread.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_time();
    #[cfg(all(target_os = "wasi", target_env = "p2"))]
    {
        crate::reactor::mark_hooked();
        builder.on_thread_park(crate::reactor::park);
    }
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
pub fn client() -> Result<kube::Client> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::other(
            "krew_wasm_sdk::client() must be called inside krew_wasm_sdk::run(async { … })",
        ));
    }
    let view = crate::view()?;
    let service = transport::service(view.server_uri().clone());
    Ok(kube::Client::new(service, view.namespace()))
}
