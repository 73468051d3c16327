//! The host interfaces a component is linked against: those it imports.
//!
//! Defining all of WASI 0.2 and `wasi:http` in a linker means wrapping some
//! 250 host functions and interning their names, and it happens at every
//! start: it was a third of `kubectl hello`'s instructions (1.06 M of 2.95 M,
//! callgrind). A component imports far fewer (hello: `wasi:cli` and `wasi:io`),
//! so [`linker_for`] defines only the interfaces the component names.
//!
//! Interfaces outside [`INTERFACES`] (today the `wasi:sockets` family, which
//! Rust's standard library imports for `std::net`) make it fall back to the
//! whole set, exactly as before: linking changes what is defined, never what a
//! plugin may do. The capabilities (no sockets, the HTTP policy, the
//! preopened directories) live in the store's context, not here.

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView};

use crate::Host;

type Define = fn(&mut Linker<Host>) -> wasmtime::Result<()>;

/// Defines one interface from wasmtime-wasi's generated bindings.
macro_rules! one {
    ($($module:ident)::+, $data:ty, $view:expr) => {
        Group::One(|l| $($module)::+::add_to_linker::<Host, $data>(l, $view))
    };
}

/// Each interface krew-wasm defines one by one, by name without version, with
/// the group that defines it. Interfaces of one group are defined together.
#[rustfmt::skip]
const INTERFACES: &[(&str, Group)] = &[
    ("wasi:io/error", Group::Io),
    ("wasi:io/poll", Group::Io),
    ("wasi:io/streams", Group::Io),
    ("wasi:http/types", Group::Http),
    ("wasi:http/outgoing-handler", Group::Http),
    ("wasi:cli/environment", one!(cli::environment, WasiCli, Host::cli)),
    ("wasi:cli/exit", one!(cli::exit, WasiCli, Host::cli)),
    ("wasi:cli/stdin", one!(cli::stdin, WasiCli, Host::cli)),
    ("wasi:cli/stdout", one!(cli::stdout, WasiCli, Host::cli)),
    ("wasi:cli/stderr", one!(cli::stderr, WasiCli, Host::cli)),
    ("wasi:cli/terminal-input", one!(cli::terminal_input, WasiCli, Host::cli)),
    ("wasi:cli/terminal-output", one!(cli::terminal_output, WasiCli, Host::cli)),
    ("wasi:cli/terminal-stdin", one!(cli::terminal_stdin, WasiCli, Host::cli)),
    ("wasi:cli/terminal-stdout", one!(cli::terminal_stdout, WasiCli, Host::cli)),
    ("wasi:cli/terminal-stderr", one!(cli::terminal_stderr, WasiCli, Host::cli)),
    ("wasi:clocks/wall-clock", one!(clocks::wall_clock, WasiClocks, Host::clocks)),
    ("wasi:clocks/monotonic-clock", one!(clocks::monotonic_clock, WasiClocks, Host::clocks)),
    ("wasi:random/random", one!(random::random, WasiRandom, Host::random)),
    ("wasi:random/insecure", one!(random::insecure, WasiRandom, Host::random)),
    ("wasi:random/insecure-seed", one!(random::insecure_seed, WasiRandom, Host::random)),
    ("wasi:filesystem/types", one!(filesystem::types, WasiFilesystem, Host::filesystem)),
    ("wasi:filesystem/preopens", one!(filesystem::preopens, WasiFilesystem, Host::filesystem)),
];

#[derive(Clone, Copy)]
enum Group {
    /// `wasi:io`: defined by wasmtime-wasi-io in one call.
    Io,
    /// `wasi:http`: defined by wasmtime-wasi-http in one call.
    Http,
    /// An interface defined on its own.
    One(Define),
}

/// A linker defining what `component` imports: each known interface it names,
/// or everything krew-wasm provides when it names one outside [`INTERFACES`].
pub(crate) fn linker_for(engine: &Engine, component: &Component) -> wasmtime::Result<Linker<Host>> {
    let mut linker = Linker::new(engine);
    let (mut io, mut http) = (false, false);
    let mut defined = Vec::new();
    for (import, _) in component.component_type().imports(engine) {
        let interface = import
            .split_once('@')
            .map_or(import, |(name, _version)| name);
        let Some(&(name, group)) = INTERFACES.iter().find(|(name, _)| *name == interface) else {
            log::debug!("`{import}` is not linked one by one: linking all of WASI");
            return linker_with_everything(engine);
        };
        match group {
            Group::Io => io = true,
            Group::Http => http = true,
            // Several versions of one interface (…@0.2.0, …@0.2.6) are one
            // definition: the linker matches semver-compatible versions.
            Group::One(define) if !defined.contains(&name) => {
                define(&mut linker)?;
                defined.push(name);
            }
            Group::One(_) => {}
        }
    }
    if io {
        wasmtime_wasi_io::add_to_linker_async(&mut linker)?;
    }
    if http {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    }
    Ok(linker)
}

/// What a plugin can reach beyond its standard streams, arguments,
/// environment, clocks and random numbers, judged from its imports: a plugin
/// cannot call what it does not import. The caller uses it to skip set-up a
/// plugin could never use (the kubeconfig view, the network event loop);
/// what the plugin is *allowed* to do is decided elsewhere, as always.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    /// It can open files under preopened directories: a component importing
    /// `wasi:filesystem/preopens`, a module importing `path_open`.
    pub files: bool,
    /// It can make network requests: a component importing `wasi:http` or
    /// `wasi:sockets` (modules have no way to).
    pub network: bool,
}

impl Reach {
    /// Anything krew-wasm provides (an import it does not know by name).
    const EVERYTHING: Reach = Reach {
        files: true,
        network: true,
    };
}

/// What `component` can reach, from its imports. An import outside
/// [`INTERFACES`] and the `wasi:sockets` family counts as everything.
pub(crate) fn component_reach(engine: &Engine, component: &Component) -> Reach {
    let mut reach = Reach {
        files: false,
        network: false,
    };
    for (import, _) in component.component_type().imports(engine) {
        let interface = import
            .split_once('@')
            .map_or(import, |(name, _version)| name);
        if interface == "wasi:filesystem/preopens" {
            reach.files = true;
        } else if interface.starts_with("wasi:http/") || interface.starts_with("wasi:sockets/") {
            reach.network = true;
        } else if !INTERFACES.iter().any(|(name, _)| *name == interface) {
            return Reach::EVERYTHING;
        }
    }
    reach
}

/// What a preview-1 `module` can reach: files through `path_open`; preview 1
/// has no way to open a network connection.
pub(crate) fn module_reach(module: &wasmtime::Module) -> Reach {
    Reach {
        files: module.imports().any(|import| {
            import.module() == "wasi_snapshot_preview1" && import.name() == "path_open"
        }),
        network: false,
    }
}

/// Every interface krew-wasm provides: all of WASI 0.2 and `wasi:http`.
fn linker_with_everything(engine: &Engine) -> wasmtime::Result<Linker<Host>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    Ok(linker)
}
