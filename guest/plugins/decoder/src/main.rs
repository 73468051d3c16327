//! `kubectl decoder secret NAME`: shows a Secret with every value base64-decoded and
//! every certificate explained.
//!
//! The plugin is a few blocking requests through the SDK's `http` helper (no async
//! runtime, no kube-client) so that `decoder.wasm` stays small. Modules:
//! [`args`] reads the command line, [`secret`] decodes the object, [`cert`] reads
//! certificates, [`render`] prints, [`clock`] formats dates. All but this file are
//! pure and tested natively.

mod args;
mod cert;
mod clock;
mod render;
mod secret;

use std::io::Write;

use krew_wasm_sdk::{Error, http};

use crate::args::{Invocation, Output, Request, USAGE};
use crate::secret::{Decoded, Secret};

fn main() {
    let request = match args::parse(std::env::args().skip(1)) {
        Ok(Invocation::Show(request)) => request,
        Ok(Invocation::Help) => {
            println!("{USAGE}");
            return;
        }
        Err(err) => {
            eprintln!("error: {err}\n\n{USAGE}");
            std::process::exit(1);
        }
    };
    krew_wasm_sdk::run_sync(|| show(&request));
}

fn show(request: &Request) -> Result<(), Error> {
    let namespace = match &request.namespace {
        Some(namespace) => namespace.as_str(),
        None => krew_wasm_sdk::view()?.namespace(),
    };
    let secret = fetch(namespace, &request.name)?;
    let decoded = Decoded::new(secret, namespace);
    let output = match request.output {
        Output::Text => render::text(&decoded, now()),
        Output::Json => {
            let mut json = serde_json::to_string_pretty(&decoded.manifest())?;
            json.push('\n');
            json
        }
        Output::Yaml => render::yaml(&decoded.manifest()),
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(output.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// GETs the Secret. A 404 may mean the namespace is missing rather than the
/// Secret: the API server says `secrets "x" not found` either way, so ask.
fn fetch(namespace: &str, name: &str) -> Result<Secret, Error> {
    match http::get_json(&format!("/api/v1/namespaces/{namespace}/secrets/{name}")) {
        Err(err) if err.api_code() == Some(404) => Err(missing_namespace(namespace).unwrap_or(err)),
        other => other,
    }
}

fn missing_namespace(namespace: &str) -> Option<Error> {
    let response = http::get(&format!("/api/v1/namespaces/{namespace}")).ok()?;
    (response.status() == http::StatusCode::NOT_FOUND).then(|| Error::Api {
        code: 404,
        reason: "NotFound".to_string(),
        message: format!("namespaces \"{namespace}\" not found"),
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
