//! The command line: every subcommand, flag and alias.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum, ValueHint};
use krew_wasm_permissions::{ByteSize, Permission};

#[derive(Debug, Parser)]
#[command(
    name = "krew-wasm",
    version,
    about = "Install WebAssembly kubectl plugins from OCI registries and run them with kubectl",
    long_about = "Install WebAssembly kubectl plugins from OCI registries and run them with kubectl.\n\n\
        Installed plugins are linked as $KREW_WASM_ROOT/bin/kubectl-<name> (default ~/.krew-wasm/bin); \
        put that directory on PATH and run them as `kubectl <name>`. Each plugin runs sandboxed: \
        it sees its arguments, stdio and a short list of environment variables, nothing else.",
    after_help = "Environment:\n  \
        KREW_WASM_ROOT        store directory (default ~/.krew-wasm)\n  \
        KREW_WASM_LOG         log level on stderr: error, warn, info, debug\n  \
        KREW_WASM_TIMEOUT     stop every plugin run after this long (e.g. 30s)\n  \
        KREW_WASM_MAX_MEMORY  lower every plugin's memory cap (e.g. 256MiB)\n  \
        KREW_WASM_DENY        drop granted permissions for a run: `all`, or specs like env:X,dir:.\n  \
        KREW_WASM_POLICY      trust policy file (default $KREW_WASM_ROOT/policy.yaml)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download a plugin from an OCI registry and install it
    #[command(
        visible_alias = "install",
        after_help = "Examples:\n  krew-wasm pull ghcr.io/org/decoder:v1.2.0\n  \
            krew-wasm pull 127.0.0.1:5000/plugins/hello@sha256:4f2c…  # pinned by digest\n  \
            krew-wasm pull oci://registry.example.com/kubectl-foo-bar.wasm:latest --name foo-bar"
    )]
    Pull(PullArgs),
    /// Install the newest version of installed plugins whose tag moved
    #[command(
        after_help = "Plugins installed by digest are pinned and left alone; pull a tag to unpin one. \
            The version replaced is kept for `krew-wasm rollback`.\n\n\
            Examples:\n  krew-wasm upgrade --all\n  krew-wasm upgrade decoder podwatch --yes"
    )]
    Upgrade(UpgradeArgs),
    /// List installed plugins whose tag now points at another version
    #[command(after_help = "Examples:\n  krew-wasm outdated\n  krew-wasm outdated -o json")]
    Outdated(OutdatedArgs),
    /// Return a plugin to the version it had before its last upgrade
    #[command(after_help = "Example:\n  krew-wasm rollback decoder")]
    Rollback(RollbackArgs),
    /// Write the installed plugins, pinned by digest with their grants, as a lock file
    #[command(after_help = "Examples:\n  krew-wasm export > plugins.lock\n  \
            krew-wasm export -o plugins.lock")]
    Export(ExportArgs),
    /// Install the plugins of a lock file written by `export`, by digest, verified
    #[command(
        after_help = "The lock's grants are applied as recorded: import only files you trust.\n\n\
            Example:\n  krew-wasm import plugins.lock"
    )]
    Import(ImportArgs),
    /// List installed plugins
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Remove installed plugins
    #[command(
        visible_alias = "uninstall",
        after_help = "Example:\n  krew-wasm rm hello decoder"
    )]
    Rm(RmArgs),
    /// Show everything recorded about an installed plugin
    #[command(after_help = "Example:\n  krew-wasm info hello")]
    Info(InfoArgs),
    /// Run a local .wasm file or a plugin from a registry without installing it
    #[command(after_help = "Examples:\n  krew-wasm run ./hello.wasm -- a b\n  \
            krew-wasm run ghcr.io/org/decoder:v1 -- secret my-tls")]
    Run(RunArgs),
    /// Create a new plugin project (Rust, built as a WASI 0.2 component)
    #[command(after_help = "Examples:\n  krew-wasm new my-pods\n  \
            krew-wasm new my-pods --path plugins/my-pods --sdk ~/src/krew-wasm/guest/sdk")]
    New(NewArgs),
    /// Upload a .wasm plugin to an OCI registry (CNCF Wasm artifact); prints the manifest digest
    #[command(
        after_help = "Examples:\n  krew-wasm push target/wasm32-wasip2/release/hello.wasm ghcr.io/org/hello:v1.0.0\n  \
            krew-wasm push hello.wasm 127.0.0.1:5000/plugins/hello:v1 --description 'Says hello' \\\n      \
            --source https://github.com/org/hello --version 1.0.0 --licenses Apache-2.0"
    )]
    Push(crate::commands::push::PushArgs),
    /// Sign a plugin in a registry with a cosign key (ECDSA P-256); stored as cosign does
    #[command(
        after_help = "Example:\n  krew-wasm sign ghcr.io/org/hello:v1 --key cosign.key\n\n\
            The key: PKCS#8 or SEC1 PEM (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`). \
            `cosign verify --key cosign.pub --insecure-ignore-tlog` accepts the signature."
    )]
    Sign(crate::commands::verify::SignArgs),
    /// Check a plugin's cosign signature (by key, or keyless by identity); exits 1 unless one is valid
    #[command(
        after_help = "Examples:\n  krew-wasm verify hello --key cosign.pub  # an installed plugin\n  \
            krew-wasm verify ghcr.io/org/hello:v1 --key cosign.pub\n  \
            krew-wasm verify ghcr.io/org/hello:v1 --trusted-root trusted_root.json \\\n      \
            --certificate-identity-regexp '^https://github.com/org/hello/' \\\n      \
            --certificate-oidc-issuer https://token.actions.githubusercontent.com\n\n\
            Both cosign's .sig tag and sigstore bundles (OCI referrers) are checked. See docs/signing.md.\n\n\
            With no key or identity, the trust policy's rule for the plugin names the signers \
            (docs/policy.md). For an installed plugin, what passed is recorded in its receipt."
    )]
    Verify(crate::commands::verify::VerifyArgs),
    /// Check the trust policy file and show its rules, or the rule that covers REF
    #[command(
        after_help = "The policy is $KREW_WASM_ROOT/policy.yaml, or the file KREW_WASM_POLICY names; \
            see docs/policy.md for its format.\n\n\
            Examples:\n  krew-wasm policy\n  krew-wasm policy ghcr.io/acme/kubectl-audit:v1\n  \
            krew-wasm policy --file new-policy.yaml  # check a file before putting it in place"
    )]
    Policy(crate::commands::policy::PolicyArgs),
    /// Add, list, update, remove and publish plugin indexes (what `pull NAME` and `search` read)
    #[command(
        after_help = "Examples:\n  krew-wasm index add team ./plugins.yaml\n  \
            krew-wasm index add team ghcr.io/org/krew-wasm-index:v1\n  krew-wasm index list\n  \
            krew-wasm index update\n  krew-wasm index push plugins.yaml ghcr.io/org/krew-wasm-index:v1\n\n\
            See docs/index.md for the format."
    )]
    Index(crate::commands::index::IndexArgs),
    /// Find plugins in the added indexes by name or description
    #[command(
        after_help = "Examples:\n  krew-wasm search\n  krew-wasm search secret\n  \
            krew-wasm search -o json"
    )]
    Search(crate::commands::index::SearchArgs),
    /// Give an installed plugin more permissions
    #[command(
        after_help = "Permissions: env:NAME, dir:PATH (read-only), dir:PATH:rw, \
            host:https://HOST[:PORT], memory:SIZE; `all` grants everything the plugin declares.\n\n\
            Examples:\n  krew-wasm grant decoder env:AWS_PROFILE\n  \
            krew-wasm grant report dir:.:rw memory:1GiB\n  krew-wasm grant report all"
    )]
    Grant(GrantArgs),
    /// Take permissions back from an installed plugin
    #[command(after_help = "Examples:\n  krew-wasm revoke report dir:.\n  \
            krew-wasm revoke report all")]
    Revoke(RevokeArgs),
    /// Print version information
    Version,
    /// Print a shell completion script
    #[command(
        after_help = "Example:\n  krew-wasm completions bash > /etc/bash_completion.d/krew-wasm"
    )]
    Completions(CompletionsArgs),
}

/// How to reach registries (pull and run).
#[derive(Debug, Args, Clone)]
pub struct RegistryFlags {
    /// Talk plain HTTP to the registry (loopback registries fall back to it on their own)
    #[arg(long)]
    pub plain_http: bool,
    /// Trust this PEM CA certificate for the registry's TLS, in addition to the system roots
    #[arg(long, value_name = "PEM", env = "KREW_WASM_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// registry/repository:tag or registry/repository@sha256:…, optionally prefixed by registry:// or oci://;
    /// or NAME or INDEX/NAME, looked up in the added indexes
    #[arg(value_name = "REF|NAME")]
    pub reference: String,
    /// Install under this name (default: the last path segment of REF, without a `kubectl-` prefix or `.wasm`)
    #[arg(long)]
    pub name: Option<String>,
    /// Replace a plugin already installed under the same name
    #[arg(long)]
    pub force: bool,
    /// Install only if the manifest has a cosign signature by this public key (PEM)
    #[arg(long, value_name = "PUB", value_hint = ValueHint::FilePath)]
    pub verify_key: Option<PathBuf>,
    /// Install only if signed by this keyless identity (see `krew-wasm verify --help`)
    #[command(flatten)]
    pub keyless: crate::commands::verify::KeylessFlags,
    #[command(flatten)]
    pub consent: ConsentFlags,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Answers, given in advance, to what a plugin asks for at install.
#[derive(Debug, Args, Clone)]
pub struct ConsentFlags {
    /// Grant every permission the plugin declares, without asking
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Grant this permission (env:NAME, dir:PATH[:rw], host:URL, memory:SIZE); repeatable
    #[arg(long, value_name = "PERMISSION")]
    pub grant: Vec<Permission>,
    /// Install without this requested permission (wins over --yes and --grant), or `all` for all that is left; repeatable
    #[arg(long, value_name = "PERMISSION|all")]
    pub deny: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Names of the plugins to upgrade
    #[arg(
        value_name = "NAME",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub names: Vec<String>,
    /// Upgrade every installed plugin
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub consent: ConsentFlags,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(Debug, Args)]
pub struct OutdatedArgs {
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Name of an installed plugin
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write the lock file here instead of stdout
    #[arg(short, long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A lock file written by `krew-wasm export`
    #[arg(value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub file: PathBuf,
    /// Replace plugins of the same name installed from another repository
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Names of the plugins to remove
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Name of an installed plugin
    pub name: String,
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A .wasm file, or a registry reference
    #[arg(value_name = "FILE.wasm|REF")]
    pub target: String,
    /// Arguments passed to the plugin (after `--`)
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
    /// Grant every permission the plugin declares, for this run
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Grant this permission for this run (env:NAME, dir:PATH[:rw], host:URL, memory:SIZE); repeatable
    #[arg(long, value_name = "PERMISSION")]
    pub grant: Vec<Permission>,
    /// Stop the plugin after this long (e.g. 30s, 500ms); also KREW_WASM_TIMEOUT
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// Cap the plugin's memory (default 512MiB), e.g. 64MiB or 2GiB
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<ByteSize>,
    /// REF only: run it only if its manifest has a cosign signature by this public key (PEM)
    #[arg(long, value_name = "PUB", value_hint = ValueHint::FilePath)]
    pub verify_key: Option<PathBuf>,
    #[command(flatten)]
    pub keyless: crate::commands::verify::KeylessFlags,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    /// Name of an installed plugin
    pub name: String,
    /// Permissions to grant, or `all` for everything the plugin declares
    #[arg(required = true, value_name = "PERMISSION|all")]
    pub permissions: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Name of an installed plugin
    pub name: String,
    /// Permissions to take back, or `all`
    #[arg(required = true, value_name = "PERMISSION|all")]
    pub permissions: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// Plugin name, run as `kubectl NAME`: lowercase letters, digits and inner dashes
    pub name: String,
    /// Directory to create; it must not exist or be empty (default: ./NAME)
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub path: Option<PathBuf>,
    /// Depend on the krew-wasm-sdk crate in this directory (default: the SDK of the
    /// source checkout krew-wasm was built from, else its git repository)
    #[arg(long, value_name = "PATH", value_hint = ValueHint::DirPath)]
    pub sdk: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    pub shell: clap_complete::Shell,
}

impl RegistryFlags {
    pub fn to_options(&self) -> krew_wasm_oci::RegistryOptions {
        krew_wasm_oci::RegistryOptions {
            plain_http: self.plain_http,
            ca_files: self.ca_file.iter().cloned().collect(),
        }
    }
}
