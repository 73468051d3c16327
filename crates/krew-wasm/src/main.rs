//! `krew-wasm`: installs WebAssembly kubectl plugins from OCI registries and
//! runs them when kubectl calls `kubectl-<name>`.
//!
//! One executable, two modes, chosen by the file name of argv[0]:
//! - `kubectl-<name>` (the links in `$KREW_WASM_ROOT/bin`): wrapper mode, run
//!   the installed plugin `<name>` with argv passed through ([`launch`]);
//! - anything else: the command-line interface ([`cli`], [`commands`]).

mod cli;
mod commands;
mod consent;
mod launch;
mod output;
mod settings;
mod trust;

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let program = argv
        .first()
        .and_then(|arg0| std::path::Path::new(arg0).file_name())
        .and_then(|f| f.to_str())
        .unwrap_or_default()
        .to_string();
    if let Some(name) = krew_wasm_store::PluginName::from_executable_name(&program) {
        init_logging(None);
        return launch::wrapper_main(&program, name, argv);
    }
    init_logging(Some(OWN_WARNINGS));
    commands::main(argv)
}

/// Warnings of krew-wasm's own crates; libraries' logs (rustls reports each
/// failed handshake as an error) stay off unless `KREW_WASM_LOG` asks.
const OWN_WARNINGS: &str =
    "krew_wasm=warn,krew_wasm_oci=warn,krew_wasm_store=warn,krew_wasm_runtime=warn";

/// Logs go to stderr. `KREW_WASM_LOG` (`debug`, `info`, `warn`…) selects the
/// level; without it the CLI shows warnings and wrapper mode shows nothing,
/// so a plugin's output is the plugin's alone.
fn init_logging(default: Option<&str>) {
    let filter = std::env::var("KREW_WASM_LOG")
        .ok()
        .or(default.map(str::to_string));
    if let Some(filter) = filter {
        env_logger::Builder::new()
            .parse_filters(&filter)
            .format_target(false)
            .format_timestamp(None)
            .init();
    }
}
