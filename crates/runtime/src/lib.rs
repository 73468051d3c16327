//! The WebAssembly side of krew-wasm: one wasmtime [`Engine`] configuration,
//! precompilation, and running a plugin with exactly the capabilities it is
//! granted.
//!
//! The smallest embedding:
//!
//! ```no_run
//! # async fn demo(wasm: &[u8]) -> Result<(), krew_wasm_runtime::RuntimeError> {
//! use krew_wasm_runtime::{Invocation, Runtime};
//! let runtime = Runtime::new()?;
//! let compiled = runtime.precompile(wasm)?;          // at install time
//! let plugin = runtime.load_precompiled_bytes(compiled.kind, &compiled.bytes)?;
//! let exit = runtime.run(&plugin, Invocation::new(vec!["kubectl-hello".into()])).await?;
//! # Ok(()) }
//! ```
//!
//! Then the knobs: [`Runtime::compatibility_hash`] keys the precompiled cache
//! (an artifact is only valid for the engine configuration that made it);
//! [`Runtime::load_precompiled_file`] memory-maps an artifact at start-up;
//! [`Invocation`] carries argv and the environment, which the caller filters
//! with [`allowed_env`].
//!
//! Capabilities are default-deny. A plugin gets stdin, stdout, stderr, its
//! argv, the environment variables named in [`ENV_ALLOW_LIST`], clocks and
//! random numbers. It sees only the directories the caller mounts in
//! [`Invocation::dirs`] (krew-wasm mounts the kubeconfig view's, read-only,
//! and what the user granted), and TCP, UDP and name lookups are switched
//! off. Components get `wasi:http`, but every request goes through the
//! [`HttpPolicy`] the caller gives: without one, every request is refused.
//! [`Plugin::reach`] tells from a plugin's imports whether it can open files
//! or reach the network at all, so the caller can skip set-up it could never
//! use.
//!
//! Every run is bounded by its [`Limits`]: a memory cap enforced on every
//! `memory.grow` (a plugin over it ends as [`Exit::OverMemoryLimit`]), and an
//! optional wall-clock timeout ([`Exit::TimedOut`]). A busy guest is stopped
//! by epoch interruption: while a timeout is set, a ticker thread advances the
//! engine's epoch every [`EPOCH_TICK`] and the guest yields to the executor at
//! each tick, so the timeout fires whether the guest computes or waits in an
//! asynchronous host call (a sleep, a poll, stdin, an HTTP response). A host
//! call that blocks the thread itself (a write to a stdout pipe nobody
//! reads, a file read from a FIFO in a granted directory) holds the timer
//! too: an embedder that must end such a run on time needs a watchdog of
//! its own, as krew-wasm's CLI has. Epoch checks are compiled into the code, at every loop head and
//! function entry, and cost a plugin that does real work about a fifth of its
//! instructions; so there are two engine configurations: [`Runtime::new`]
//! without them, for runs without a timeout (the common case), and
//! [`Runtime::with_timeouts`] with them. Each has its own
//! [`Runtime::compatibility_hash`], hence its own precompiled artifacts.
//!
//! Two kinds of plugins run: WASI 0.2 command components (`wasi:cli/run`)
//! and WASI preview-1 modules (`_start`). This crate knows nothing of
//! registries or of the store's layout.

mod linking;

pub use linking::Reach;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Config, Engine, Module, ResourceLimiter, Store};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Decides what a plugin's `wasi:http` requests may reach, and sends them.
/// krew-wasm's is the Kubernetes API gateway; this crate knows nothing of
/// Kubernetes.
pub use wasmtime_wasi_http::WasiHttpHooks as HttpPolicy;

/// The wasmtime release krew-wasm embeds (pinned exactly in Cargo.toml).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Environment variables a plugin sees when the user has them set. Every
/// other variable stays on the host. `LC_*` is matched as a prefix.
pub const ENV_ALLOW_LIST: &[&str] = &["TERM", "LANG", "LC_*", "NO_COLOR", "COLUMNS", "LINES", "TZ"];

/// Keeps the allow-listed variables of `vars`.
pub fn allowed_env(vars: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    vars.into_iter()
        .filter(|(key, _)| {
            ENV_ALLOW_LIST
                .iter()
                .any(|allowed| match allowed.strip_suffix('*') {
                    Some(prefix) => key.starts_with(prefix),
                    None => key == allowed,
                })
        })
        .collect()
}

/// The two kinds of WebAssembly binaries that can be plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A core module using WASI preview 1.
    Module,
    /// A component using WASI 0.2.
    Component,
}

impl WasmKind {
    /// Tells a core module from a component by the 8-byte header.
    pub fn detect(bytes: &[u8]) -> Result<Self, RuntimeError> {
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Ok(WasmKind::Module),
            Some([0, b'a', b's', b'm', _, _, 1, 0]) => Ok(WasmKind::Component),
            Some([0, b'a', b's', b'm', ..]) => Err(RuntimeError::Invalid(
                "unknown WebAssembly binary version (neither a core module nor a component)".into(),
            )),
            _ => Err(RuntimeError::Invalid(
                "not a WebAssembly binary (it does not start with \\0asm)".into(),
            )),
        }
    }
}

/// Errors of compiling, loading and running plugins.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    Invalid(String),
    #[error("this is not a plugin krew-wasm can run: {0}")]
    NotACommand(String),
    #[error("compiling the plugin failed: {0}")]
    Compile(String),
    #[error("loading the precompiled plugin failed: {0}")]
    Load(String),
    #[error("setting up the WebAssembly engine failed: {0}")]
    Engine(String),
    #[error("starting the plugin failed: {0}")]
    Instantiate(String),
}

/// How a plugin ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It returned or called exit: the code for the process.
    Code(i32),
    /// It trapped (panic with `panic=abort`, `unreachable`, out of bounds…).
    Trap {
        /// One line, for everybody.
        summary: String,
        /// Everything wasmtime knows (backtrace), for `KREW_WASM_LOG=debug`.
        details: String,
    },
    /// It failed after a `memory.grow` past [`Limits::memory_bytes`] was
    /// refused (or its initial memory was already over).
    OverMemoryLimit {
        /// The cap, in bytes.
        limit: u64,
    },
    /// It was still running when [`Limits::timeout`] expired, and was
    /// stopped.
    TimedOut {
        /// The timeout.
        after: Duration,
    },
}

/// The memory cap of a run when the caller sets none: 512 MiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 512 << 20;

/// How often the engine's epoch advances while a run has a timeout: the
/// longest a busy guest keeps its thread past the deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The bounds of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most linear memory (per memory) the plugin may grow to.
    pub memory_bytes: u64,
    /// Wall-clock time after which the plugin is stopped; `None`: no limit.
    pub timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            timeout: None,
        }
    }
}

/// A host directory the plugin may open files under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirMount {
    /// The directory on the host. WASI resolves every path the plugin opens
    /// beneath it (cap-std): `..` and symlinks cannot leave it.
    pub host: PathBuf,
    /// Where the plugin sees it (`.` for its current directory).
    pub guest: String,
    /// Whether the plugin may create, change and delete files in it.
    pub writable: bool,
}

/// A plugin ready to run.
pub enum Plugin {
    Module(Module),
    Component(Component),
}

impl Plugin {
    pub fn kind(&self) -> WasmKind {
        match self {
            Plugin::Module(_) => WasmKind::Module,
            Plugin::Component(_) => WasmKind::Component,
        }
    }

    /// What the plugin can reach beyond stdio, from its imports.
    pub fn reach(&self) -> Reach {
        match self {
            Plugin::Module(module) => linking::module_reach(module),
            Plugin::Component(component) => linking::component_reach(component.engine(), component),
        }
    }
}

/// A precompiled plugin: what the store caches.
pub struct Precompiled {
    pub kind: WasmKind,
    pub bytes: Vec<u8>,
}

/// What one run of a plugin gets.
#[derive(Default)]
pub struct Invocation {
    /// argv, program name first.
    pub argv: Vec<String>,
    /// Environment variables (already filtered by the caller).
    pub env: Vec<(String, String)>,
    /// Host directories the plugin may open files under.
    pub dirs: Vec<DirMount>,
    /// Where `wasi:http` requests go. `None`: every request is refused.
    pub http: Option<Box<dyn HttpPolicy>>,
    /// Memory and time bounds.
    pub limits: Limits,
}

impl Invocation {
    pub fn new(argv: Vec<String>) -> Self {
        Self {
            argv,
            ..Self::default()
        }
    }
}

/// The policy of a run without one: no request leaves.
struct NoHttp;

impl HttpPolicy for NoHttp {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<dyn Future<Output = wasmtime_wasi_http::Result<SentResponse>> + Send> {
        eprintln!(
            "krew-wasm: refused a request to {}: this plugin run has no network access",
            request.uri()
        );
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

type SentResponse = (
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
);

/// The engine and everything derived from its configuration.
pub struct Runtime {
    engine: Engine,
    /// Whether compiled code checks the epoch, so a run can have a timeout.
    interruptible: bool,
    /// See [`Runtime::exit_after_run`].
    exit_after_run: bool,
}

impl Runtime {
    /// The engine for runs without a timeout: what `pull` precompiles for,
    /// and what starts an installed plugin unless a timeout is asked for.
    /// [`Runtime::run`] refuses a timeout on it.
    pub fn new() -> Result<Self, RuntimeError> {
        Self::configured(false)
    }

    /// The engine for runs with a timeout: compiled code checks the epoch at
    /// loop heads and function entries, so a guest that never returns can be
    /// stopped. Its artifacts are not [`Runtime::new`]'s.
    pub fn with_timeouts() -> Result<Self, RuntimeError> {
        Self::configured(true)
    }

    /// The engine a run with or without a timeout needs.
    pub fn for_timeout(timeout: Option<Duration>) -> Result<Self, RuntimeError> {
        Self::configured(timeout.is_some())
    }

    fn configured(interruptible: bool) -> Result<Self, RuntimeError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(interruptible);
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(e.to_string()))?;
        Ok(Self {
            engine,
            interruptible,
            exit_after_run: false,
        })
    }

    /// The [`Runtime::compatibility_hash`] of both configurations: the
    /// precompiled caches that are current; any other was made by another
    /// wasmtime or configuration.
    pub fn current_compatibility_hashes() -> Result<[String; 2], RuntimeError> {
        Ok([
            Self::new()?.compatibility_hash(),
            Self::with_timeouts()?.compatibility_hash(),
        ])
    }

    /// Whether runs on this engine may have a timeout.
    pub fn supports_timeouts(&self) -> bool {
        self.interruptible
    }

    /// For a process that exits as soon as its one run ends: the run's store
    /// (instance, linear memory, async stack, WASI context) is left for the
    /// process's exit to free instead of being torn down piece by piece,
    /// which a user would wait on for nothing. Each run leaks its store, so
    /// a long-lived embedder must not set this.
    pub fn exit_after_run(mut self) -> Self {
        self.exit_after_run = true;
        self
    }

    /// A short hex string that changes whenever precompiled artifacts of this
    /// engine stop being loadable (another wasmtime version or configuration).
    pub fn compatibility_hash(&self) -> String {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }

    /// Validates `wasm` as a plugin (a command whose imports krew-wasm
    /// provides) and compiles it to native code for this engine.
    pub fn precompile(&self, wasm: &[u8]) -> Result<Precompiled, RuntimeError> {
        let kind = WasmKind::detect(wasm)?;
        let plugin = match kind {
            WasmKind::Module => Plugin::Module(
                Module::new(&self.engine, wasm)
                    .map_err(|e| RuntimeError::Compile(format!("{e:#}")))?,
            ),
            WasmKind::Component => Plugin::Component(
                Component::new(&self.engine, wasm)
                    .map_err(|e| RuntimeError::Compile(format!("{e:#}")))?,
            ),
        };
        self.check_runnable(&plugin)?;
        let bytes = match &plugin {
            Plugin::Module(m) => m.serialize(),
            Plugin::Component(c) => c.serialize(),
        }
        .map_err(|e| RuntimeError::Compile(format!("{e:#}")))?;
        Ok(Precompiled { kind, bytes })
    }

    /// Memory-maps a precompiled artifact. Fails (and the caller recompiles)
    /// when the file is missing, truncated or made by another engine.
    ///
    /// The file must have been written by [`Runtime::precompile`]: wasmtime
    /// trusts precompiled code, which is why the store's cache directory is
    /// written by krew-wasm alone.
    pub fn load_precompiled_file(
        &self,
        kind: WasmKind,
        path: &Path,
    ) -> Result<Plugin, RuntimeError> {
        let load = |e: wasmtime::Error| RuntimeError::Load(format!("{}: {e:#}", path.display()));
        // SAFETY: the cache holds only artifacts that krew-wasm itself
        // produced with `precompile` (see above); wasmtime checks the header
        // and the engine compatibility before using one.
        Ok(match kind {
            WasmKind::Module => Plugin::Module(
                unsafe { Module::deserialize_file(&self.engine, path) }.map_err(load)?,
            ),
            WasmKind::Component => Plugin::Component(
                unsafe { Component::deserialize_file(&self.engine, path) }.map_err(load)?,
            ),
        })
    }

    /// Loads artifact bytes just returned by [`Runtime::precompile`].
    pub fn load_precompiled_bytes(
        &self,
        kind: WasmKind,
        bytes: &[u8],
    ) -> Result<Plugin, RuntimeError> {
        let load = |e: wasmtime::Error| RuntimeError::Load(format!("{e:#}"));
        // SAFETY: `bytes` come from `precompile` in this process.
        Ok(match kind {
            WasmKind::Module => {
                Plugin::Module(unsafe { Module::deserialize(&self.engine, bytes) }.map_err(load)?)
            }
            WasmKind::Component => Plugin::Component(
                unsafe { Component::deserialize(&self.engine, bytes) }.map_err(load)?,
            ),
        })
    }

    /// Compiles and checks a plugin from wasm bytes, without caching.
    pub fn compile(&self, wasm: &[u8]) -> Result<Plugin, RuntimeError> {
        let precompiled = self.precompile(wasm)?;
        self.load_precompiled_bytes(precompiled.kind, &precompiled.bytes)
    }

    /// Runs a plugin to completion, or until it goes over its limits.
    pub async fn run(&self, plugin: &Plugin, invocation: Invocation) -> Result<Exit, RuntimeError> {
        let limits = invocation.limits;
        let Some(timeout) = limits.timeout else {
            return self.run_unbounded(plugin, invocation).await;
        };
        if !self.interruptible {
            return Err(RuntimeError::Engine(
                "a run with a timeout needs the engine of Runtime::with_timeouts: \
                 this one's code cannot be interrupted"
                    .into(),
            ));
        }
        let _ticker = EpochTicker::start(&self.engine);
        match tokio::time::timeout(timeout, self.run_unbounded(plugin, invocation)).await {
            Ok(exit) => exit,
            Err(_elapsed) => Ok(Exit::TimedOut { after: timeout }),
        }
    }

    /// Runs a plugin with its memory cap but no timeout.
    async fn run_unbounded(
        &self,
        plugin: &Plugin,
        invocation: Invocation,
    ) -> Result<Exit, RuntimeError> {
        let mut builder = WasiCtxBuilder::new();
        builder
            .inherit_stdio()
            .args(&invocation.argv)
            .envs(&invocation.env)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            // The plugin's file reads (its kubeconfig view) run inline on
            // this thread, which waits for the guest anyway, instead of
            // through tokio's blocking pool: view() 0.45 ms -> 0.14 ms.
            .allow_blocking_current_thread(true);
        for dir in &invocation.dirs {
            let perms = if dir.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            builder
                .preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(|e| {
                    RuntimeError::Instantiate(format!("granting {}: {e:#}", dir.host.display()))
                })?;
        }
        let http = invocation.http.unwrap_or_else(|| Box::new(NoHttp));
        let memory = MemoryCap::new(invocation.limits.memory_bytes);
        let went_over = memory.went_over.clone();
        let yields = invocation.limits.timeout.is_some();
        let outcome = match plugin {
            Plugin::Module(module) => {
                let mut store = Store::new(
                    &self.engine,
                    ModuleHost {
                        ctx: builder.build_p1(),
                        memory,
                    },
                );
                store.limiter(|host| &mut host.memory);
                self.set_epoch_behaviour(&mut store, yields);
                let linker = self.module_linker()?;
                let outcome = match linker.instantiate_async(&mut store, module).await {
                    Ok(instance) => {
                        let start = instance
                            .get_typed_func::<(), ()>(&mut store, "_start")
                            .map_err(|e| RuntimeError::NotACommand(format!("{e:#}")))?;
                        start.call_async(&mut store, ()).await.map(|()| 0)
                    }
                    Err(e) if went_over.load(Ordering::Relaxed) => Err(e),
                    Err(e) => return Err(RuntimeError::Instantiate(format!("{e:#}"))),
                };
                self.end_of_run(store);
                outcome
            }
            Plugin::Component(component) => {
                let mut store = Store::new(
                    &self.engine,
                    Host {
                        ctx: builder.build(),
                        table: ResourceTable::new(),
                        http_ctx: WasiHttpCtx::new(),
                        http,
                        memory,
                    },
                );
                store.limiter(|host| &mut host.memory);
                self.set_epoch_behaviour(&mut store, yields);
                let pre = self.command_pre(component)?;
                let outcome = match pre.instantiate_async(&mut store).await {
                    Ok(command) => command
                        .wasi_cli_run()
                        .call_run(&mut store)
                        .await
                        .map(|result| if result.is_ok() { 0 } else { 1 }),
                    Err(e) if went_over.load(Ordering::Relaxed) => Err(e),
                    Err(e) => return Err(RuntimeError::Instantiate(format!("{e:#}"))),
                };
                self.end_of_run(store);
                outcome
            }
        };
        let over_memory = went_over.load(Ordering::Relaxed);
        Ok(match outcome {
            Ok(0) => Exit::Code(0),
            // A plugin that handled a refused allocation and still succeeded
            // is fine; one that failed after it failed for want of memory.
            _ if over_memory => Exit::OverMemoryLimit {
                limit: invocation.limits.memory_bytes,
            },
            Ok(code) => Exit::Code(code),
            Err(err) => match err.downcast_ref::<I32Exit>() {
                Some(I32Exit(code)) => Exit::Code(*code),
                None => Exit::Trap {
                    summary: match err.downcast_ref::<wasmtime::Trap>() {
                        Some(trap) => trap.to_string(),
                        None => format!("{err}"),
                    },
                    details: format!("{err:?}"),
                },
            },
        })
    }

    /// On the engine with epochs: without a timeout the epoch never
    /// advances, a deadline that is never reached; with one, the guest yields
    /// to the executor at every tick, which is what lets
    /// `tokio::time::timeout` stop a guest that never waits. The engine
    /// without epochs has no deadline to set.
    fn set_epoch_behaviour<T>(&self, store: &mut Store<T>, yields: bool) {
        if !self.interruptible {
            return;
        }
        if yields {
            store.set_epoch_deadline(1);
            store.epoch_deadline_async_yield_and_update(1);
        } else {
            store.set_epoch_deadline(u64::MAX / 2);
        }
    }

    /// Frees a finished run's store, unless the process is about to exit
    /// ([`Runtime::exit_after_run`]).
    fn end_of_run<T>(&self, store: Store<T>) {
        if self.exit_after_run {
            std::mem::forget(store);
        }
    }

    /// Checks that every import is provided and the entry point exists, so a
    /// plugin that cannot run is refused at install time.
    fn check_runnable(&self, plugin: &Plugin) -> Result<(), RuntimeError> {
        match plugin {
            Plugin::Module(module) => {
                let has_start = module
                    .exports()
                    .any(|e| e.name() == "_start" && e.ty().func().is_some());
                if !has_start {
                    return Err(RuntimeError::NotACommand(
                        "the module has no `_start` function: build it as a WASI command (a `fn main`), not a library or reactor".into(),
                    ));
                }
                self.module_linker()?
                    .instantiate_pre(module)
                    .map_err(|e| RuntimeError::NotACommand(format!("{e:#}")))?;
            }
            Plugin::Component(component) => {
                self.command_pre(component)?;
            }
        }
        Ok(())
    }

    fn module_linker(&self) -> Result<wasmtime::Linker<ModuleHost>, RuntimeError> {
        let mut linker = wasmtime::Linker::new(&self.engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |host: &mut ModuleHost| &mut host.ctx)
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        Ok(linker)
    }

    fn command_pre(&self, component: &Component) -> Result<CommandPre<Host>, RuntimeError> {
        let linker = linking::linker_for(&self.engine, component)
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let pre = linker.instantiate_pre(component).map_err(|e| {
            RuntimeError::NotACommand(format!(
                "{e:#} (krew-wasm provides WASI 0.2 cli, io, clocks, random, filesystem, sockets and http interfaces)"
            ))
        })?;
        CommandPre::new(pre).map_err(|e| {
            RuntimeError::NotACommand(format!(
                "{e:#}: the component does not export `wasi:cli/run`; build it as a command (a `fn main`)"
            ))
        })
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Refuses every `memory.grow` past the cap, and remembers that it did so
/// the end of the run can be reported as what it is.
///
/// The cap is over all the plugin's linear memories together: a
/// component holds several core instances, and a module may declare many
/// memories, so a cap per memory would be a cap times their number. Tables
/// are bounded the same way, by elements over all tables, and the number of
/// instances, memories and tables is bounded too.
struct MemoryCap {
    limit: usize,
    /// Bytes of linear memory, over all the plugin's memories.
    memory: Tally,
    /// Elements, over all the plugin's tables.
    table_elements: Tally,
    went_over: Arc<AtomicBool>,
}

/// A total over several memories (or tables), each growing on its own.
#[derive(Default)]
struct Tally {
    total: usize,
    /// What the last growth allowed added, taken back if it then failed.
    last_growth: usize,
}

impl Tally {
    /// Counts one memory's growth from `current` (already counted; 0 for
    /// one being created) to `desired`, if the total stays within `limit`.
    fn grow(&mut self, current: usize, desired: usize, limit: usize) -> bool {
        let growth = desired.saturating_sub(current);
        let total = self.total.saturating_add(growth);
        if total > limit {
            return false;
        }
        self.total = total;
        self.last_growth = growth;
        true
    }

    /// The growth just allowed did not happen (past the memory's own
    /// maximum, or the system said no).
    fn undo_last_growth(&mut self) {
        self.total -= self.last_growth.min(self.total);
        self.last_growth = 0;
    }
}

impl MemoryCap {
    fn new(limit: u64) -> Self {
        Self {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            memory: Tally::default(),
            table_elements: Tally::default(),
            went_over: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.memory.grow(current, desired, self.limit);
        if !allowed {
            self.went_over.store(true, Ordering::Relaxed);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory.undo_last_growth();
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million over all tables is far
        // beyond any plugin and keeps a hostile one from growing host
        // memory this way.
        Ok(self
            .table_elements
            .grow(current, desired, MAX_TABLE_ELEMENTS))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.table_elements.undo_last_growth();
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

const MAX_TABLE_ELEMENTS: usize = 1_000_000;
/// A Rust command component has about ten core instances, two or three
/// memories and a few tables; these bounds leave room for far larger ones.
const MAX_INSTANCES: usize = 1_000;
const MAX_MEMORIES: usize = 100;
const MAX_TABLES: usize = 1_000;

/// Store data of a core module: its WASI preview-1 context and memory cap.
struct ModuleHost {
    ctx: wasmtime_wasi::p1::WasiP1Ctx,
    memory: MemoryCap,
}

/// Store data of a component: its WASI context, resource table, HTTP
/// policy and memory cap.
struct Host {
    ctx: WasiCtx,
    table: ResourceTable,
    http_ctx: WasiHttpCtx,
    http: Box<dyn HttpPolicy>,
    memory: MemoryCap,
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut *self.http,
        }
    }
}

impl wasmtime_wasi_io::IoView for Host {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_allow_list() {
        let vars = [
            ("TERM", "xterm"),
            ("LC_ALL", "C"),
            ("HOME", "/root"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("TZ", "UTC"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let kept: Vec<String> = allowed_env(vars).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kept, ["TERM", "LC_ALL", "TZ"]);
    }

    #[test]
    fn detects_kinds() {
        assert_eq!(
            WasmKind::detect(b"\0asm\x01\0\0\0rest").unwrap(),
            WasmKind::Module
        );
        assert_eq!(
            WasmKind::detect(b"\0asm\x0d\0\x01\0rest").unwrap(),
            WasmKind::Component
        );
        assert!(WasmKind::detect(b"\x7fELF\x02\x01\x01\0").is_err());
        assert!(WasmKind::detect(b"\0as").is_err());
    }

    /// `(module (func (export "_start") <body>))` with an empty type.
    fn command_module(body: &[u8]) -> Vec<u8> {
        command_module_with_memories(0, body)
    }

    /// [`command_module`] with `memories` memories of no pages and no
    /// maximum.
    fn command_module_with_memories(memories: u8, body: &[u8]) -> Vec<u8> {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        wasm.extend([0x01, 0x04, 0x01, 0x60, 0x00, 0x00]); // type: () -> ()
        wasm.extend([0x03, 0x02, 0x01, 0x00]); // one function of that type
        if memories > 0 {
            wasm.extend([0x05, 1 + 2 * memories, memories]); // memories…
            for _ in 0..memories {
                wasm.extend([0x00, 0x00]); // …each: minimum 0, no maximum
            }
        }
        wasm.extend([0x07, 0x0a, 0x01, 0x06]); // export "_start", func 0
        wasm.extend(b"_start");
        wasm.extend([0x00, 0x00]);
        let len = u8::try_from(body.len()).unwrap();
        wasm.extend([0x0a, len + 3, 0x01, len + 1, 0x00]); // code: no locals
        wasm.extend(body);
        wasm
    }

    /// `loop br 0 end end`: never returns.
    const SPIN: &[u8] = &[0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b];

    /// A command module with `memories` empty memories whose `_start` grows
    /// each by `pages` (64 KiB each) and traps (`unreachable`) if one
    /// growth is refused.
    fn module_growing_memories(memories: u8, pages: u8) -> Vec<u8> {
        let mut body = Vec::new();
        for memory in 0..memories {
            body.extend([0x41, pages, 0x40, memory]); // i32.const pages; memory.grow memory
            body.extend([0x41, 0x7f, 0x46]); // i32.const -1; i32.eq
            body.extend([0x04, 0x40, 0x00, 0x0b]); // if unreachable end
        }
        body.push(0x0b);
        command_module_with_memories(memories, &body)
    }

    #[test]
    fn a_tally_counts_every_memory_and_forgets_a_growth_that_failed() {
        let mut tally = Tally::default();
        assert!(tally.grow(0, 10, 30)); // memory A: 10
        assert!(tally.grow(0, 15, 30)); // memory B: 15, total 25
        tally.undo_last_growth(); // B's growth failed after all: total 10
        assert!(tally.grow(10, 30, 30)); // A: 30, total 30
        assert!(!tally.grow(0, 1, 30)); // B: nothing left
        assert_eq!(tally.total, 30);
    }

    #[test]
    fn the_memory_cap_holds_over_all_memories_together() {
        let runtime = Runtime::new().unwrap();
        // Four memories of 1 MiB each: 4 MiB in all.
        let plugin = runtime.compile(&module_growing_memories(4, 16)).unwrap();
        let capped_at = |mib: u64| Invocation {
            limits: Limits {
                memory_bytes: mib << 20,
                ..Limits::default()
            },
            ..Invocation::new(vec!["grow".into()])
        };
        let within = block_on(runtime.run(&plugin, capped_at(4))).unwrap();
        assert_eq!(within, Exit::Code(0));
        // Each memory alone is under 3 MiB; together they are not.
        let over = block_on(runtime.run(&plugin, capped_at(3))).unwrap();
        assert_eq!(over, Exit::OverMemoryLimit { limit: 3 << 20 });
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn with_timeout(timeout: Duration) -> Invocation {
        Invocation {
            limits: Limits {
                timeout: Some(timeout),
                ..Limits::default()
            },
            ..Invocation::new(vec!["spin".into()])
        }
    }

    #[test]
    fn the_engine_with_timeouts_stops_a_guest_that_never_returns() {
        let runtime = Runtime::with_timeouts().unwrap();
        let plugin = runtime.compile(&command_module(SPIN)).unwrap();
        let timeout = Duration::from_millis(50);
        let exit = block_on(runtime.run(&plugin, with_timeout(timeout))).unwrap();
        assert_eq!(exit, Exit::TimedOut { after: timeout });
    }

    #[test]
    fn the_engine_without_timeouts_refuses_a_timeout_and_runs_without_one() {
        let runtime = Runtime::new().unwrap();
        let spin = runtime.compile(&command_module(SPIN)).unwrap();
        let err = block_on(runtime.run(&spin, with_timeout(Duration::from_millis(50))))
            .err()
            .unwrap();
        assert!(err.to_string().contains("with_timeouts"), "{err}");
        let returns = runtime.compile(&command_module(&[0x0b])).unwrap();
        let exit = block_on(runtime.run(&returns, Invocation::new(vec!["ok".into()]))).unwrap();
        assert_eq!(exit, Exit::Code(0));
    }

    #[test]
    fn each_engine_has_its_own_artifacts() {
        let plain = Runtime::new().unwrap();
        let timed = Runtime::with_timeouts().unwrap();
        assert!(!plain.supports_timeouts() && timed.supports_timeouts());
        assert_ne!(plain.compatibility_hash(), timed.compatibility_hash());
        assert_eq!(
            Runtime::current_compatibility_hashes().unwrap(),
            [plain.compatibility_hash(), timed.compatibility_hash()]
        );
        // An artifact is refused by the other engine, so a cache keyed by
        // the hash can never hand one engine the other's code.
        let artifact = plain.precompile(&command_module(&[0x0b])).unwrap();
        assert!(
            timed
                .load_precompiled_bytes(artifact.kind, &artifact.bytes)
                .is_err()
        );
    }

    /// A command module that imports `wasi_snapshot_preview1.<name>`, a
    /// function of `params` to one i32 (value types as bytes: i32 0x7f,
    /// i64 0x7e).
    fn module_importing(name: &str, params: &[u8]) -> Vec<u8> {
        const WASI: &[u8] = b"wasi_snapshot_preview1";
        let byte = |n: usize| u8::try_from(n).unwrap();
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        // types: 0 is () -> (), 1 is the import's
        wasm.extend([0x01, byte(8 + params.len()), 0x02, 0x60, 0x00, 0x00]);
        wasm.extend([0x60, byte(params.len())]);
        wasm.extend(params);
        wasm.extend([0x01, 0x7f]);
        let size = 1 + 1 + WASI.len() + 1 + name.len() + 2;
        wasm.extend([0x02, byte(size), 0x01, byte(WASI.len())]); // one import
        wasm.extend(WASI);
        wasm.push(byte(name.len()));
        wasm.extend(name.as_bytes());
        wasm.extend([0x00, 0x01]); // a function of type 1
        wasm.extend([0x03, 0x02, 0x01, 0x00]); // one function of type 0
        wasm.extend([0x07, 0x0a, 0x01, 0x06]); // export "_start", func 1
        wasm.extend(b"_start");
        wasm.extend([0x00, 0x01]);
        wasm.extend([0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b]); // code: empty body
        wasm
    }

    #[test]
    fn a_module_reaches_files_only_through_path_open_and_never_the_network() {
        let runtime = Runtime::new().unwrap();
        let reach = |wasm: &[u8]| runtime.compile(wasm).unwrap().reach();
        assert_eq!(
            reach(&module_importing(
                "path_open",
                &[0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7e, 0x7e, 0x7f, 0x7f]
            )),
            Reach {
                files: true,
                network: false
            }
        );
        let fd_write = module_importing("fd_write", &[0x7f; 4]);
        for wasm in [fd_write, command_module(&[0x0b])] {
            assert_eq!(
                reach(&wasm),
                Reach {
                    files: false,
                    network: false
                }
            );
        }
    }

    #[test]
    fn refuses_a_module_without_start() {
        let runtime = Runtime::new().unwrap();
        // (module) — the smallest valid module: no `_start`.
        let err = runtime.precompile(b"\0asm\x01\0\0\0").err().unwrap();
        assert!(err.to_string().contains("_start"), "{err}");
    }
}
