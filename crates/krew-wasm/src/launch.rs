//! Starting plugins: wrapper mode (`kubectl-<name>`) and the shared run path.
//!
//! This is the start-up path a user waits on at every `kubectl <name>`: read
//! one small receipt, memory-map the precompiled artifact, run. It takes no
//! lock and writes nothing unless the artifact must be rebuilt or the
//! kubeconfig view is new (views are kept by content, see
//! [`Store::view_dir`]).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use krew_wasm_kube_gateway::{ApiGateway, KubeconfigSources, KubectlFlags, Origin, Selection};
use krew_wasm_permissions::{Access, ByteSize, Permission, Permissions};
use krew_wasm_runtime::{
    DirMount, Exit, HttpPolicy, Invocation, Limits, Plugin, Runtime, WasmKind, allowed_env,
};
use krew_wasm_store::{
    NameError, PluginKind, PluginName, Receipt, Store, StoreError, sha256_digest,
};

use crate::settings::RunEnv;

/// Exit code for a plugin that trapped or ran out of memory: what a shell
/// shows for a native program that aborted (128 + SIGABRT).
const TRAP_EXIT_CODE: u8 = 134;

/// Exit code for a plugin stopped by its timeout, as timeout(1) uses.
const TIMEOUT_EXIT_CODE: u8 = 124;

/// How long past its timeout a run may take to stop before the process
/// ends anyway (a host thread stuck in a blocking write to a full pipe).
const TIMEOUT_GRACE: Duration = Duration::from_secs(2);

/// What one run is given beyond the defaults, before the environment's
/// narrowing (`KREW_WASM_DENY`, `KREW_WASM_MAX_MEMORY`).
#[derive(Default)]
pub struct RunGrants {
    /// The receipt's grants, or `krew-wasm run`'s `--grant`/`--yes`.
    pub granted: Permissions,
    /// `krew-wasm run --max-memory`: the cap for this run.
    pub max_memory: Option<ByteSize>,
    /// `krew-wasm run --timeout`.
    pub timeout: Option<Duration>,
}

/// Wrapper mode: kubectl ran `kubectl-<name>`; run the installed plugin with
/// argv as received, except that argv[0] is reduced to its file name: the full
/// path would tell the plugin the user's home directory.
pub fn wrapper_main(
    program: &str,
    name: Result<PluginName, NameError>,
    argv: Vec<OsString>,
) -> ExitCode {
    let result = (|| -> Result<ExitCode> {
        let name = name.with_context(|| format!("`{program}` does not name a krew-wasm plugin"))?;
        let mut argv = utf8_args(argv)?;
        if let Some(arg0) = argv.first_mut() {
            *arg0 = program.to_string();
        }
        let store = Store::new(crate::settings::store_root()?);
        let read_receipt = || match store.receipt(name.as_str()) {
            Ok(receipt) => Ok(receipt),
            Err(StoreError::NotInstalled(_)) => bail!(
                "kubectl plugin `{name}` is not installed in {}; install it with\n  krew-wasm pull <registry>/<repository>:<tag> --name {name}",
                store.root().display()
            ),
            Err(e) => Err(e.into()),
        };
        let receipt = read_receipt()?;
        crate::trust::check_installed(&receipt)?;
        let run_env = RunEnv::from_env()?;
        let runtime = Runtime::for_timeout(run_env.timeout)?.exit_after_run();
        let (plugin, receipt) = match load_installed(&runtime, &store, &receipt) {
            Ok(plugin) => (plugin, receipt),
            // A `pull --force` may have replaced the plugin since the receipt
            // was read: read it once more before giving up.
            Err(first) => match read_receipt() {
                Ok(current) if current.digest != receipt.digest => {
                    crate::trust::check_installed(&current)?;
                    (load_installed(&runtime, &store, &current)?, current)
                }
                _ => return Err(first),
            },
        };
        let grants = RunGrants {
            granted: receipt.granted,
            ..RunGrants::default()
        };
        let code = run_to_exit_code(
            &runtime,
            &store,
            &plugin,
            name.as_str(),
            argv,
            grants,
            &run_env,
        );
        leave_to_exit(runtime, plugin);
        code
    })();
    result.unwrap_or_else(|err| {
        eprintln!("krew-wasm: error: {err:#}");
        ExitCode::FAILURE
    })
}

/// The process ends after its one run: the engine and the plugin's mapped
/// code are left for the exit to free (see [`Runtime::exit_after_run`]).
pub fn leave_to_exit(runtime: Runtime, plugin: Plugin) {
    std::mem::forget((runtime, plugin));
}

/// Loads the precompiled artifact of an installed plugin, rebuilding it from
/// the blob when it is missing or was made by another engine.
pub fn load_installed(runtime: &Runtime, store: &Store, receipt: &Receipt) -> Result<Plugin> {
    let kind = match receipt.kind {
        PluginKind::P1Module => WasmKind::Module,
        PluginKind::P2Component => WasmKind::Component,
    };
    let engine = runtime.compatibility_hash();
    let artifact = store.artifact_path(&engine, &receipt.digest);
    match runtime.load_precompiled_file(kind, &artifact) {
        Ok(plugin) => return Ok(plugin),
        Err(e) => log::debug!("precompiled artifact unusable, rebuilding: {e}"),
    }
    let blob_path = store.blob_path(&receipt.digest);
    let wasm = std::fs::read(&blob_path).with_context(|| {
        format!(
            "the blob of plugin `{}` is missing ({}); reinstall it with `krew-wasm pull --force {}`",
            receipt.name,
            blob_path.display(),
            receipt.source
        )
    })?;
    let actual = sha256_digest(&wasm);
    if actual != receipt.digest {
        bail!(
            "the blob of plugin `{}` is corrupt (digest {actual}, expected {}); reinstall it with `krew-wasm pull --force {}`",
            receipt.name,
            receipt.digest,
            receipt.source
        );
    }
    compile_and_cache(runtime, store, &receipt.digest, &wasm)
}

/// A plugin from wasm bytes that are not installed (`krew-wasm run FILE|REF`):
/// its precompiled artifact from the cache when an earlier run made one (the
/// cache is keyed by the bytes' digest, as wasmtime's own cache is), else
/// compiled now and cached for the next run. The next `pull` or `rm`
/// collects artifacts that no receipt names.
pub fn load_uninstalled(runtime: &Runtime, store: &Store, wasm: &[u8]) -> Result<Plugin> {
    let kind = WasmKind::detect(wasm)?;
    let digest = sha256_digest(wasm);
    let artifact = store.artifact_path(&runtime.compatibility_hash(), &digest);
    match runtime.load_precompiled_file(kind, &artifact) {
        Ok(plugin) => Ok(plugin),
        Err(e) => {
            log::debug!("no usable precompiled artifact, compiling: {e}");
            compile_and_cache(runtime, store, &digest, wasm)
        }
    }
}

/// Compiles `wasm` and writes its artifact to the cache; a failed write only
/// costs the next run a compilation.
fn compile_and_cache(
    runtime: &Runtime,
    store: &Store,
    digest: &str,
    wasm: &[u8],
) -> Result<Plugin> {
    let precompiled = runtime.precompile(wasm)?;
    if let Err(e) = store.write_artifact(&runtime.compatibility_hash(), digest, &precompiled.bytes)
    {
        log::warn!("could not cache the precompiled plugin: {e}");
    }
    Ok(runtime.load_precompiled_bytes(precompiled.kind, &precompiled.bytes)?)
}

/// Where a plugin finds its kubeconfig view.
const VIEW_DIR_IN_GUEST: &str = "/krew-wasm";

/// Runs `plugin` with `argv`, the allow-listed environment, API access to
/// the cluster its kubectl flags select, and what `grants` gives (less what
/// `run_env` takes away); turns its end into this process's exit code.
/// `runtime` must be the one [`Runtime::for_timeout`] gives for the run's
/// timeout.
pub fn run_to_exit_code(
    runtime: &Runtime,
    store: &Store,
    plugin: &Plugin,
    name: &str,
    argv: Vec<String>,
    grants: RunGrants,
    run_env: &RunEnv,
) -> Result<ExitCode> {
    let granted = grants.granted.narrowed(&run_env.deny);
    let memory = grants
        .max_memory
        .unwrap_or_else(|| granted.memory_limit())
        .min(run_env.max_memory.unwrap_or(ByteSize::MAX));
    let timeout = run_env.timeout_with(grants.timeout);

    let host_env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let mut env: Vec<(String, String)> = host_env
        .iter()
        .filter(|(key, _)| granted.env().any(|granted| granted == key))
        .cloned()
        .collect();
    env.extend(allowed_env(host_env));
    let mut dirs = granted_dirs(&granted, store, name)?;
    // A plugin that can neither open files nor make requests could not use
    // the kubeconfig view nor the API gateway: skip reading the kubeconfig
    // (17% of hello's instructions with a small one) and the network event
    // loop.
    let reach = plugin.reach();
    let kube_access = reach.files || reach.network;
    let selection = kube_access.then(|| {
        let flags = KubectlFlags::from_args(argv.get(1..).unwrap_or_default());
        Selection::load(&flags, &KubeconfigSources::from_env())
    });
    match &selection {
        None => {
            log::debug!("no kubeconfig view: the plugin can neither open files nor make requests")
        }
        // The plugin sees the view's directory only, read-only.
        Some(Ok(selection)) => {
            let dir = store
                .view_dir("kubeconfig", selection.view_json().as_bytes())
                .context("writing the kubeconfig view")?;
            dirs.push(DirMount {
                host: dir,
                guest: VIEW_DIR_IN_GUEST.to_string(),
                writable: false,
            });
            env.push((
                "KUBECONFIG".into(),
                format!("{VIEW_DIR_IN_GUEST}/kubeconfig"),
            ));
        }
        Some(Err(e)) => log::debug!("no kubeconfig view for this run: {e}"),
    }
    let granted_hosts = granted
        .hosts()
        .filter_map(|origin| Origin::parse(&origin.to_string()).ok());
    let invocation = Invocation {
        argv,
        env,
        dirs,
        http: selection.filter(|_| reach.network).map(|selection| {
            Box::new(ApiGateway::new(name, selection).with_granted_hosts(granted_hosts))
                as Box<dyn HttpPolicy>
        }),
        limits: Limits {
            memory_bytes: memory.bytes(),
            timeout,
        },
    };
    if let Some(after) = timeout {
        end_process_after(after + TIMEOUT_GRACE, name, after);
    }
    let mut tokio = tokio::runtime::Builder::new_current_thread();
    tokio.enable_time();
    if reach.network {
        tokio.enable_io();
    }
    let tokio = tokio.build().context("starting the async runtime")?;
    let exit = tokio.block_on(runtime.run(plugin, invocation));
    let exit = exit?;
    // Leave the async runtime, the store and the engine to the OS rather
    // than tearing them down: the process is done, and a user waits on it.
    std::mem::forget(tokio);
    let _ = std::io::stdout().flush();
    Ok(match exit {
        Exit::Code(code) => ExitCode::from(u8::try_from(code.rem_euclid(256)).unwrap_or(1)),
        Exit::Trap { summary, details } => {
            eprintln!("krew-wasm: plugin `{name}` crashed: {summary}");
            if log::log_enabled!(log::Level::Debug) {
                eprintln!("{details}");
            } else {
                eprintln!("krew-wasm: set KREW_WASM_LOG=debug for details");
            }
            ExitCode::from(TRAP_EXIT_CODE)
        }
        Exit::OverMemoryLimit { limit } => {
            let limit = ByteSize::from_bytes(limit);
            eprintln!(
                "krew-wasm: plugin `{name}` ran out of memory: it tried to grow past its memory limit of {limit}.\n\
                 Raise the limit with `krew-wasm grant {name} memory:SIZE` (or `krew-wasm run --max-memory SIZE`); \
                 KREW_WASM_MAX_MEMORY can only lower it."
            );
            ExitCode::from(TRAP_EXIT_CODE)
        }
        Exit::TimedOut { after } => {
            eprintln!("{}", timed_out(name, after));
            ExitCode::from(TIMEOUT_EXIT_CODE)
        }
    })
}

/// The directories granted to a run, resolved against the current and home
/// directories. Refuses a directory that does not exist, and one that holds
/// or is inside the store: a plugin that could write there could replace
/// another plugin's precompiled code, which runs natively trusted.
fn granted_dirs(granted: &Permissions, store: &Store, name: &str) -> Result<Vec<DirMount>> {
    let mut mounts = Vec::new();
    if granted.dirs().next().is_none() {
        return Ok(mounts);
    }
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let home = std::env::home_dir();
    let store_root = canonical_or_self(store.root());
    for (path, access) in granted.dirs() {
        // The grant as a spec (`dir:/data:rw:ro` for a path ending in `:rw`),
        // so what the messages name is what `revoke` takes.
        let grant = Permission::Dir {
            path: path.clone(),
            access,
        };
        let resolved = path
            .resolve(&cwd, home.as_deref())
            .map_err(|e| anyhow::anyhow!("plugin `{name}` is granted {grant}, but {e}"))?;
        let host = std::fs::canonicalize(&resolved).with_context(|| {
            format!(
                "plugin `{name}` is granted {grant}, but {} cannot be opened",
                resolved.display()
            )
        })?;
        if !host.is_dir() {
            bail!(
                "plugin `{name}` is granted {grant}, but {} is not a directory",
                host.display()
            );
        }
        if host.starts_with(&store_root) || store_root.starts_with(&host) {
            bail!(
                "plugin `{name}` is granted {grant} ({}), which {} the krew-wasm store {}; \
                 krew-wasm refuses, because a plugin that can reach the store can change other plugins. \
                 Run it from another directory, or take the grant back with `krew-wasm revoke {name} {grant}`.",
                host.display(),
                if host.starts_with(&store_root) {
                    "is inside"
                } else {
                    "contains"
                },
                store_root.display()
            );
        }
        mounts.push(DirMount {
            guest: path.guest_path(&resolved),
            host,
            writable: access == Access::ReadWrite,
        });
    }
    Ok(mounts)
}

fn canonical_or_self(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The last resort of a timeout: the runtime stops a guest at its deadline,
/// but not a host thread blocked in a system call (a write to a pipe nobody
/// reads); past the grace period the process ends regardless.
fn end_process_after(deadline: Duration, name: &str, timeout: Duration) {
    let name = name.to_string();
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        eprintln!("{}", timed_out(&name, timeout));
        std::process::exit(i32::from(TIMEOUT_EXIT_CODE));
    });
}

fn timed_out(name: &str, after: Duration) -> String {
    format!(
        "krew-wasm: plugin `{name}` timed out after {} and was stopped (--timeout / KREW_WASM_TIMEOUT)",
        humantime::format_duration(after)
    )
}

/// WASI arguments are strings: refuse non-UTF-8 ones clearly rather than
/// mangling them.
pub fn utf8_args(argv: Vec<OsString>) -> Result<Vec<String>> {
    argv.into_iter()
        .enumerate()
        .map(|(i, arg)| {
            arg.into_string()
                .map_err(|arg| anyhow::anyhow!("argument {i} ({arg:?}) is not valid UTF-8, which WebAssembly plugins cannot receive"))
        })
        .collect()
}
