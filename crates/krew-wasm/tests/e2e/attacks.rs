//! The attack suite: 22 hostile plugins (`guest/fixtures/attacks`, one
//! binary each), each trying one thing a plugin must never do, as hard as a
//! real attacker would (several paths, spellings and raw WASI calls):
//!
//! | attack | what it tries |
//! |---|---|
//! | `read-ssh-key` | read `~/.ssh/id_rsa` (and list `~/.ssh`) |
//! | `read-shadow` | read `/etc/shadow`, `/proc/self/environ`, …; list `/`, `/etc` |
//! | `read-kubeconfig` | read the real `~/.kube/config`; find a credential in the view |
//! | `read-store` | read the store's receipts, blobs, compiled code, list its directories |
//! | `read-other-plugin` | as an installed plugin (through kubectl), read another plugin's files |
//! | `write-bashrc` | append to, overwrite, replace or remove `~/.bashrc` |
//! | `write-store` | plant a plugin, receipt or compiled code in `$KREW_WASM_ROOT`; write the view |
//! | `escape-dotdot` | leave a granted directory through `..` (read and write) |
//! | `escape-symlink` | leave a granted directory through symbolic links, its own and planted ones |
//! | `env-secret` | read `AWS_SECRET_ACCESS_KEY` and other host variables |
//! | `tcp-socket` | connect to a local listener, listen on any interface |
//! | `udp-socket` | send datagrams to a local socket, bind any interface |
//! | `dns-lookup` | resolve names |
//! | `http-metadata` | ask 169.254.169.254 (and friends) for cloud credentials |
//! | `http-loopback-port` | HTTP to a local listener under every spelling of loopback |
//! | `http-api-other-port` | HTTP to the API server's host on another port, or scheme |
//! | `set-authorization` | send its own `Authorization` (and cookie, impersonation) to the API server |
//! | `exhaust-memory` | allocate and touch memory without end |
//! | `spin-forever` | burn CPU forever, under `--timeout` |
//! | `block-forever` | wait forever on stdin, a sleep, a poll, an API watch, under `--timeout` |
//! | `flood-stdout` | write stdout without end, for the host to buffer |
//! | `huge-argv` | receive the largest argv Linux can pass (about 6 MB) |
//!
//! For every attack the tests check what a user would notice: the plugin
//! itself reports that it failed (`RESULT <attack>: contained (N attempts,
//! all refused)`, exit 0, with at least as many attempts as the case makes,
//! so a lost argument or a missing view cannot pass with nothing tried; an
//! escape prints `ESCAPED: …` and exits 1), every refusal is one the sandbox
//! gives (wasmtime's `not-permitted`, wasi-libc finding no preopen,
//! `access-denied` for sockets, the resolver failure of a lookup that is not
//! allowed, the host's `HTTP-request-denied`): a connection refused or a name
//! not found after the host let the attempt out is `SUSPICIOUS` and fails the
//! test, and so does a control that did not work (`CONTROL FAILED`). None of
//! the bait's secret bytes appear on its stdout or stderr (an escape prints
//! all it got, up to 64 KiB, and `env-secret` every variable it sees), the
//! host says clearly what it refused where the host is what refuses, and
//! nothing under the user's sandbox (home and store) changed: every path,
//! mode, file digest and link target (and the file at the end of each link,
//! such as the krew-wasm executable behind `bin/kubectl-*`) is the same
//! before and after, except what krew-wasm itself writes for a run: the
//! compiled plugin it ran in `cache/<engine>/<digest>.cwasm` and the
//! kubeconfig view in `views/<sha256 of its content>/kubeconfig`. Every bait
//! file is checked to be in place before each run. Listeners the test opens
//! itself prove that no socket or request ever reached them, and the test API
//! server's request log that the plugin's own credentials never did, while
//! the gateway did answer the plugin's `GET /api` (the control). Resource
//! attacks end with the host's limit: exit 124 and `timed out after` within
//! [`TIMEOUT_SLACK`] of the deadline (within the watchdog's grace for a
//! plugin blocked on a full stdout pipe), `memory limit` at the limit,
//! bounded host memory under a stdout flood.
//!
//! Linux's execve (fs/exec.c) takes argv and the environment, strings and
//! pointers, up to max(min(6 MiB, RLIMIT_STACK / 4), 128 KiB): 2 MiB under the
//! default 8 MiB stack limit, 6 MiB once `ulimit -s` is raised to 24 MiB or
//! more, as `a_huge_argv_arrives_whole` does. It sends the most that fits in
//! strings of about 128 KiB (Linux's limit for one string).

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use test_support::{KubeApiServer, Registry, fixtures, require_tool, sha256_digest};

use crate::{Sandbox, krew_wasm_exe, push_fixture, stderr, stdout};

/// Every attack, as named by its binary in `guest/fixtures/attacks/src/bin`.
const ATTACKS: &[&str] = &[
    "read-ssh-key",
    "read-shadow",
    "read-kubeconfig",
    "read-store",
    "read-other-plugin",
    "write-bashrc",
    "write-store",
    "escape-dotdot",
    "escape-symlink",
    "env-secret",
    "tcp-socket",
    "udp-socket",
    "dns-lookup",
    "http-metadata",
    "http-loopback-port",
    "http-api-other-port",
    "set-authorization",
    "exhaust-memory",
    "spin-forever",
    "block-forever",
    "flood-stdout",
    "huge-argv",
];

// The attempts each case makes (`RESULT <attack>: contained (N attempts, …)`),
// with its arguments and the view: fewer means the attack lost something it
// needed, and proved less than it claims.
const MIN_READ_SSH_KEY: usize = 23;
const MIN_READ_SHADOW: usize = 55;
const MIN_READ_KUBECONFIG: usize = 22;
const MIN_READ_STORE: usize = 50;
const MIN_READ_OTHER_PLUGIN: usize = 24;
const MIN_WRITE_BASHRC: usize = 12;
const MIN_WRITE_STORE: usize = 42;
const MIN_ENV_SECRET: usize = 22;
const MIN_TCP_SOCKET: usize = 17;
const MIN_UDP_SOCKET: usize = 10;
const MIN_DNS_LOOKUP: usize = 12;
const MIN_HTTP_METADATA: usize = 10;
const MIN_HTTP_LOOPBACK_PORT: usize = 14;
const MIN_HTTP_API_OTHER_PORT: usize = 5;
const MIN_SET_AUTHORIZATION: usize = 9;
const MIN_ESCAPE_DOTDOT: usize = 35;
/// `escape-dotdot` under `dir:.`, where `cd GRANTED` is not possible.
const MIN_ESCAPE_DOTDOT_CWD: usize = 34;
const MIN_ESCAPE_SYMLINK_READ_ONLY: usize = 49;
const MIN_ESCAPE_SYMLINK_WRITABLE: usize = 66;

/// What `env-secret` looks for; the first is set on the host for every run.
const AWS_SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY-attack-bait";
const ENV_SECRETS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "GITHUB_TOKEN",
    "HOME",
    "PATH",
    "KREW_WASM_ROOT",
    "DOCKER_CONFIG",
    "SECRET",
];

/// Every refusal an attack may report (`<what>: denied (<reason>)`): the
/// sandbox's own, as the attacks' library classifies them. Anything else is
/// a guest that counted some other failure as a refusal.
const REFUSALS: &[&str] = &[
    // wasmtime's `not-permitted`: a path or link out of a preopen, a change
    // in a read-only one (std through wasi-libc, and raw wasi:filesystem).
    "Operation not permitted (os error 63)",
    "not-permitted (error 31)",
    // wasi-libc found no preopen for the path, or the host looked inside the
    // grant (by no `..` out of it and through no link) and found nothing.
    "No such file or directory (os error 44); ",
    // Sockets when the network is not allowed: `access-denied`.
    "Permission denied (os error 2)",
    "access-denied (error 1)",
    // Name lookup when it is not allowed: `permanent-resolver-failure`.
    "failed to lookup address information: Non-recoverable error",
    "permanent-resolver-failure (error 20)",
    // The host's `HTTP-request-denied`, a forbidden header (krew_wasm_sdk's words).
    "krew-wasm refused the request to ",
    "krew-wasm refused the header ",
    // What the plugin looked for is not there: a variable, a credential field
    // in the view.
    "not set",
    "none",
    "absent",
];

/// A user worth attacking: an SSH key, a shell start-up file, a kubeconfig
/// with a real token for a running API server, an AWS secret in the
/// environment, and a store with another plugin (`hello`) installed.
struct Victim {
    sandbox: Sandbox,
    server: KubeApiServer,
    _registry: Registry,
    /// The working directory of every run (`~/work`).
    work: PathBuf,
    /// (what, bytes) that must never appear in a plugin's output.
    secrets: Vec<(String, String)>,
    /// (file, a secret in it): the bait, checked in place before each run.
    bait: Vec<(PathBuf, String)>,
}

impl Victim {
    /// Sets the bait and installs `hello` plus `installed` (fixture names).
    fn new(installed: &[&str]) -> Self {
        require_tool("kubectl");
        let registry = Registry::start();
        let sandbox = Sandbox::new();
        let server = KubeApiServer::start();
        let home = sandbox.home();
        let marker =
            sha256_digest(format!("{home:?}{:?}", std::time::SystemTime::now()).as_bytes())[7..31]
                .to_string();
        let ssh_key = format!("ssh-private-key-bait-{marker}");
        std::fs::create_dir_all(home.join(".ssh")).expect("~/.ssh");
        std::fs::write(
            home.join(".ssh/id_rsa"),
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{ssh_key}\n-----END OPENSSH PRIVATE KEY-----\n"
            ),
        )
        .expect("~/.ssh/id_rsa");
        std::fs::set_permissions(
            home.join(".ssh/id_rsa"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod id_rsa");
        std::fs::write(
            home.join(".bashrc"),
            "# ~/.bashrc\nexport PATH=\"$HOME/.krew-wasm/bin:$PATH\"\n",
        )
        .expect("~/.bashrc");
        std::fs::create_dir_all(home.join(".kube")).expect("~/.kube");
        std::fs::write(
            home.join(".kube/config"),
            server.kubeconfig_with_token("prod"),
        )
        .expect("~/.kube/config");
        let work = home.join("work");
        std::fs::create_dir_all(&work).expect("~/work");
        std::fs::write(work.join("notes.txt"), "the user's own notes\n").expect("notes");

        for plugin in std::iter::once(&"hello").chain(installed) {
            let (reference, _) = push_fixture(&registry, plugin, &format!("plugins/{plugin}:v1"));
            sandbox.ok(&["pull", &reference]);
        }
        let receipt: serde_json::Value = serde_json::from_slice(
            &std::fs::read(sandbox.root().join("receipts/hello.json")).expect("hello's receipt"),
        )
        .expect("a receipt is JSON");
        let manifest = receipt
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.contains("manifest")))
            .and_then(|(_, v)| v.as_str())
            .expect("the receipt names the manifest digest")
            .trim_start_matches("sha256:")
            .to_string();

        let mut secrets = vec![
            ("the SSH key".to_string(), ssh_key.clone()),
            (
                "the kubeconfig's token".to_string(),
                server.token().to_string(),
            ),
            ("the AWS secret".to_string(), AWS_SECRET.to_string()),
            ("hello's receipt".to_string(), manifest.clone()),
        ];
        let mut bait = vec![
            (home.join(".ssh/id_rsa"), ssh_key),
            (home.join(".kube/config"), server.token().to_string()),
            (home.join(".bashrc"), "export PATH".to_string()),
            (sandbox.root().join("receipts/hello.json"), manifest),
        ];
        // Running as root, krew-wasm could read /etc/shadow itself: then a
        // line of it is bait too. As anyone else the host cannot read it
        // either, and read-shadow only shows that no path reaches it.
        match std::fs::read_to_string("/etc/shadow") {
            Ok(shadow) => match shadow.lines().find(|l| l.len() >= 16) {
                Some(line) => {
                    secrets.push(("/etc/shadow".to_string(), line.to_string()));
                    bait.push(("/etc/shadow".into(), line.to_string()));
                }
                None => eprintln!("note: /etc/shadow has no line to use as bait"),
            },
            Err(err) => eprintln!(
                "note: /etc/shadow is not bait in this run: this user cannot read it ({err}), \
                 so krew-wasm cannot either (only root's runs check that its content never leaks)"
            ),
        }
        Self {
            sandbox,
            server,
            _registry: registry,
            work,
            secrets,
            bait,
        }
    }

    fn home(&self) -> PathBuf {
        self.sandbox.home()
    }

    fn root(&self) -> PathBuf {
        self.sandbox.root()
    }

    /// The directory holding home and store: what the snapshot covers.
    fn everything(&self) -> PathBuf {
        self.home()
            .parent()
            .map(Path::to_path_buf)
            .expect("the sandbox directory")
    }

    /// Fails unless every bait file is in place with its secret: an attack
    /// on a file that is not there proves nothing.
    #[track_caller]
    fn assert_bait(&self) {
        for (file, secret) in &self.bait {
            let text = std::fs::read_to_string(file)
                .unwrap_or_else(|e| panic!("the bait {} is not in place: {e}", file.display()));
            assert!(
                text.contains(secret.as_str()),
                "the bait {} lost its secret",
                file.display()
            );
        }
    }

    /// The sandbox's environment plus secrets on the host, in `~/work`.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = self.sandbox.command(program);
        command
            .env("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
            .env("GITHUB_TOKEN", "ghp_bait_token")
            .current_dir(&self.work);
        command
    }

    /// `krew-wasm run <attack>.wasm OPTIONS -- ARGS`.
    fn run_command(&self, attack: &str, options: &[&str], args: &[String]) -> Command {
        let mut command = self.command(krew_wasm_exe());
        command
            .arg("run")
            .arg(fixtures().p2(attack))
            .args(options)
            .arg("--")
            .args(args);
        command
    }

    /// The hex digest of an attack's wasm (its compiled form's cache name).
    fn digest_hex(attack: &str) -> String {
        let wasm = std::fs::read(fixtures().p2(attack)).expect("the attack's wasm");
        sha256_digest(&wasm)
            .trim_start_matches("sha256:")
            .to_string()
    }

    /// Runs `command` (`attack`, which must make at least `min_attempts`)
    /// with the bait in place and under a snapshot; returns what is wrong
    /// with the outcome (empty: contained), plus the output. `ran`: the wasm
    /// digests krew-wasm may compile into its cache on the way.
    fn attempt_with(
        &self,
        attack: &str,
        min_attempts: usize,
        mut command: Command,
        ran: &[String],
    ) -> (Vec<String>, Output) {
        self.assert_bait();
        let before = snapshot(&self.everything());
        let output = command.output().expect("running the attack");
        let after = snapshot(&self.everything());
        let mut problems = self.contained(attack, min_attempts, &output);
        problems.extend(changes(&before, &after, ran));
        (problems, output)
    }

    /// `krew-wasm run <attack>.wasm OPTIONS -- ARGS` by [`Victim::attempt_with`].
    fn attempt(
        &self,
        attack: &str,
        min_attempts: usize,
        options: &[&str],
        args: &[String],
    ) -> (Vec<String>, Output) {
        self.attempt_with(
            attack,
            min_attempts,
            self.run_command(attack, options, args),
            &[Self::digest_hex(attack)],
        )
    }

    /// What is wrong with the output of a contained attack.
    fn contained(&self, attack: &str, min_attempts: usize, output: &Output) -> Vec<String> {
        let (out, err) = (stdout(output), stderr(output));
        let mut problems = Vec::new();
        if !out.starts_with(&format!("ATTACK {attack}\n")) {
            problems.push("the plugin did not start".to_string());
        }
        for line in out.lines().filter(|l| {
            l.starts_with("ESCAPED")
                || l.starts_with("SUSPICIOUS")
                || l.starts_with("CONTROL FAILED")
        }) {
            problems.push(format!("got through, or proves nothing: {line}"));
        }
        for line in out.lines() {
            if let Some((_, reason)) = line.split_once(": denied (")
                && !REFUSALS.iter().any(|r| reason.starts_with(r))
            {
                problems.push(format!("a refusal the sandbox does not give: {line}"));
            }
        }
        match attempts_contained(&out, attack) {
            None => problems.push("no `contained` verdict".to_string()),
            Some(n) if n < min_attempts => problems.push(format!(
                "only {n} attempts, fewer than the {min_attempts} this case makes: \
                 something it needed (an argument, a preopen, the view) was missing"
            )),
            Some(_) => {}
        }
        if output.status.code() != Some(0) {
            problems.push(format!("exit status {}", output.status));
        }
        for (what, secret) in &self.secrets {
            // Escapes print what they got escaped, as `{:?}` does.
            let escaped = format!("{secret:?}");
            let escaped = escaped.trim_matches('"');
            if [secret.as_str(), escaped]
                .iter()
                .any(|s| out.contains(s) || err.contains(s))
            {
                problems.push(format!("{what} appears in the output"));
            }
        }
        problems
    }
}

/// N of `RESULT <attack>: contained (N attempts, all refused)`.
fn attempts_contained(out: &str, attack: &str) -> Option<usize> {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("RESULT {attack}: ")))?;
    line.strip_prefix(&format!("RESULT {attack}: contained ("))?
        .strip_suffix(" attempts, all refused)")?
        .parse()
        .ok()
}

/// Fails with every problem of every attack, and their outputs.
#[track_caller]
fn assert_all_contained(results: &[(String, Vec<String>, Output)]) {
    let failed: Vec<String> = results
        .iter()
        .filter(|(_, problems, _)| !problems.is_empty())
        .map(|(label, problems, output)| {
            format!(
                "{label}:\n  - {}\n  stdout:\n{}\n  stderr:\n{}",
                problems.join("\n  - "),
                clip(&stdout(output)),
                clip(&stderr(output))
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} attacks were not contained:\n\n{}",
        failed.len(),
        results.len(),
        failed.join("\n\n")
    );
}

/// At most 6000 characters of `text`, from its start.
fn clip(text: &str) -> String {
    match text.char_indices().nth(6000) {
        Some((at, _)) => format!("{}\n[… {} more bytes]", &text[..at], text.len() - at),
        None => text.to_string(),
    }
}

/// Every path under `dir` with its mode and the sha256 of a file's
/// content; a link's target, and the same of what the link leads to
/// (`bin/kubectl-*` leads out of `dir`, to the krew-wasm executable).
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("listing the sandbox")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let rel = path
                .strip_prefix(base)
                .expect("under the sandbox")
                .display()
                .to_string();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).expect("link target");
                let leads_to = match std::fs::metadata(&path) {
                    Ok(m) if m.is_dir() => format!("dir {:o}", m.permissions().mode() & 0o7777),
                    Ok(m) => describe_file(&path, &m),
                    Err(e) => format!("nothing ({})", e.kind()),
                };
                out.insert(rel, format!("link -> {} ({leads_to})", target.display()));
            } else if meta.is_dir() {
                out.insert(rel, format!("dir {:o}", meta.permissions().mode() & 0o7777));
                walk(base, &path, out);
            } else {
                out.insert(rel, describe_file(&path, &meta));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// `file <mode> <sha256>` of the file at `path` (`meta`: its metadata,
/// links followed). The digest of a big file (the krew-wasm executable
/// behind `bin/kubectl-*` is 100 MB, and every attempt snapshots twice) is
/// computed again only when its identity, size, mtime or ctime changed: any
/// write changes the ctime, which no one can set back.
fn describe_file(path: &Path, meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt as _;
    type Key = (u64, u64, u64, i64, i64, i64, i64);
    static DIGESTS: Mutex<BTreeMap<Key, String>> = Mutex::new(BTreeMap::new());
    let digest_of = || sha256_digest(&std::fs::read(path).expect("reading a sandbox file"));
    let digest = if meta.len() < 16 << 20 {
        digest_of()
    } else {
        let key = (
            meta.dev(),
            meta.ino(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
        );
        let known = DIGESTS.lock().expect("digests").get(&key).cloned();
        known.unwrap_or_else(|| {
            let digest = digest_of();
            DIGESTS.lock().expect("digests").insert(key, digest.clone());
            digest
        })
    };
    format!("file {:o} {digest}", meta.permissions().mode() & 0o7777)
}

/// The differences between two snapshots, except what krew-wasm writes for
/// a run, and only that: the directories `root/cache/<engine>`, the
/// compiled form of a plugin it ran (`ran`: wasm digests) in them,
/// `root/views/<hex>/kubeconfig` whose content's sha256 is `<hex>`, the
/// store's lock and temporary directory.
fn changes(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    ran: &[String],
) -> Vec<String> {
    let host_writes = |path: &str, now: &str| {
        let parts: Vec<&str> = path.split('/').collect();
        let dir = now.starts_with("dir ");
        let file = now.starts_with("file ");
        match parts.as_slice() {
            ["root", "cache"] | ["root", "cache", _] | ["root", "views"] | ["root", "tmp"] => dir,
            ["root", "cache", _, artifact] => {
                file && ran.iter().any(|hex| *artifact == format!("{hex}.cwasm"))
            }
            ["root", "views", hex] => {
                dir && hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
            }
            ["root", "views", hex, "kubeconfig"] => {
                file && now.ends_with(&format!(" sha256:{hex}"))
            }
            ["root", "lock"] => file,
            _ => false,
        }
    };
    let mut out = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => out.push(format!("{path} was removed ({was})")),
            Some(now) if now != was => out.push(format!("{path} changed: {was} -> {now}")),
            Some(_) => {}
        }
    }
    for (path, now) in after {
        if !before.contains_key(path) && !host_writes(path, now) {
            out.push(format!("{path} appeared ({now})"));
        }
    }
    out
}

/// Fails unless every path in `paths` exists (a link: that it leads to
/// something): an attack on what is not there proves nothing.
#[track_caller]
fn assert_exist(paths: &[String]) {
    for path in paths {
        assert!(
            Path::new(path).exists(),
            "the bait {path} is not in place (or leads nowhere)"
        );
    }
}

fn s(text: impl AsRef<std::ffi::OsStr>) -> String {
    text.as_ref().to_string_lossy().into_owned()
}

/// The compiled form of an installed plugin, in `root/cache/<engine>/`.
fn cwasm_of(root: &Path, digest: &str) -> PathBuf {
    let name = format!("{}.cwasm", digest.trim_start_matches("sha256:"));
    std::fs::read_dir(root.join("cache"))
        .expect("the store's cache")
        .map(|engine| engine.expect("an engine directory").path().join(&name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("no compiled {name} in the cache"))
}

#[test]
fn the_suite_holds_every_attack() {
    let bins = test_support::repo_root().join("guest/fixtures/attacks/src/bin");
    let mut found: Vec<String> = std::fs::read_dir(&bins)
        .expect("guest/fixtures/attacks/src/bin")
        .map(|e| s(e.expect("entry").file_name()))
        .filter_map(|name| name.strip_suffix(".rs").map(str::to_string))
        .collect();
    found.sort();
    let mut listed: Vec<String> = ATTACKS.iter().map(|a| a.to_string()).collect();
    listed.sort();
    assert_eq!(
        found, listed,
        "every attack binary is in ATTACKS, and only those"
    );
    assert_eq!(ATTACKS.len(), 22, "the README quotes this count");
    for attack in ATTACKS {
        assert!(
            fixtures().p2(attack).is_file(),
            "{attack}.wasm was not built"
        );
    }
}

#[test]
fn plugins_cannot_read_or_change_the_users_files_the_store_or_the_env() {
    let victim = Victim::new(&[]);
    let home = victim.home();
    let root = victim.root();
    let hello = victim.sandbox.list_json();
    let hello_digest = hello[0]["digest"]
        .as_str()
        .expect("list -o json gives the digest")
        .to_string();
    let store_files = vec![
        s(root.join("receipts/hello.json")),
        s(root
            .join("blobs/sha256")
            .join(hello_digest.trim_start_matches("sha256:"))),
        s(cwasm_of(&root, &hello_digest)),
        s(root.join("bin/kubectl-hello")),
    ];
    assert_exist(&store_files);
    let with_root = |files: &[String]| {
        std::iter::once(s(&root))
            .chain(files.iter().cloned())
            .collect::<Vec<_>>()
    };
    // (attack, arguments, the attempts it makes with them and the view)
    let cases: Vec<(&str, Vec<String>, usize)> = vec![
        (
            "read-ssh-key",
            vec![s(home.join(".ssh/id_rsa"))],
            MIN_READ_SSH_KEY,
        ),
        ("read-shadow", vec![], MIN_READ_SHADOW),
        (
            "read-kubeconfig",
            vec![s(home.join(".kube/config"))],
            MIN_READ_KUBECONFIG,
        ),
        ("read-store", with_root(&store_files), MIN_READ_STORE),
        (
            "write-bashrc",
            vec![s(home.join(".bashrc")), s(home.join(".profile"))],
            MIN_WRITE_BASHRC,
        ),
        ("write-store", with_root(&store_files), MIN_WRITE_STORE),
        (
            "env-secret",
            ENV_SECRETS.iter().map(|n| n.to_string()).collect(),
            MIN_ENV_SECRET,
        ),
    ];
    let mut results = Vec::new();
    for (attack, args, min_attempts) in cases {
        let (problems, output) = victim.attempt(attack, min_attempts, &[], &args);
        results.push((attack.to_string(), problems, output));
    }
    assert_all_contained(&results);
    // The view is there and readable: the file attacks were not blind.
    let (_, _, output) = &results[2];
    assert!(
        stdout(output).contains("NOTE the view /krew-wasm/kubeconfig is readable"),
        "read-kubeconfig saw no view:\n{}",
        stdout(output)
    );
}

#[test]
fn an_installed_plugin_cannot_reach_another_plugins_files() {
    let victim = Victim::new(&["read-other-plugin", "write-store", "env-secret"]);
    let root = victim.root();
    let plugins = victim.sandbox.list_json();
    let hello_digest = plugins
        .iter()
        .find(|p| p["name"] == "hello")
        .and_then(|p| p["digest"].as_str())
        .expect("hello is installed")
        .to_string();
    let hello_files = vec![
        s(&root),
        s(root.join("receipts/hello.json")),
        s(root
            .join("blobs/sha256")
            .join(hello_digest.trim_start_matches("sha256:"))),
        s(cwasm_of(&root, &hello_digest)),
        s(root.join("bin/kubectl-hello")),
    ];
    assert_exist(&hello_files);
    let kubectl = require_tool("kubectl");
    let mut results = Vec::new();
    let cases: Vec<(&str, Vec<String>, usize)> = vec![
        (
            "read-other-plugin",
            hello_files.clone(),
            MIN_READ_OTHER_PLUGIN,
        ),
        ("write-store", hello_files, MIN_WRITE_STORE),
        (
            "env-secret",
            ENV_SECRETS.iter().map(|n| n.to_string()).collect(),
            MIN_ENV_SECRET,
        ),
    ];
    for (attack, args, min_attempts) in cases {
        let mut command = victim.command(&kubectl);
        command.arg(attack).args(&args);
        // Installed plugins were compiled at install: a run compiles nothing.
        let (problems, output) = victim.attempt_with(attack, min_attempts, command, &[]);
        results.push((format!("kubectl {attack}"), problems, output));
    }
    assert_all_contained(&results);
}

#[test]
fn plugins_open_no_socket_and_resolve_no_name() {
    let victim = Victim::new(&[]);
    let tcp = TcpListener::bind("127.0.0.1:0").expect("a TCP listener");
    tcp.set_nonblocking(true).expect("non-blocking");
    let udp = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    udp.set_nonblocking(true).expect("non-blocking");
    let tcp_addr = tcp.local_addr().expect("address");
    let udp_addr = udp.local_addr().expect("address");
    let api = format!("127.0.0.1:{}", victim.server.port());
    let mut results = Vec::new();
    for (attack, args, min_attempts) in [
        (
            "tcp-socket",
            vec![
                tcp_addr.to_string(),
                format!("[::1]:{}", tcp_addr.port()),
                api,
            ],
            MIN_TCP_SOCKET,
        ),
        (
            "udp-socket",
            vec![udp_addr.to_string(), "8.8.8.8:53".to_string()],
            MIN_UDP_SOCKET,
        ),
        (
            "dns-lookup",
            vec!["example.com".to_string(), "localhost".to_string()],
            MIN_DNS_LOOKUP,
        ),
    ] {
        let (problems, output) = victim.attempt(attack, min_attempts, &[], &args);
        results.push((attack.to_string(), problems, output));
    }
    assert_all_contained(&results);
    assert!(
        matches!(tcp.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "something connected to the test's TCP listener"
    );
    let mut buf = [0u8; 512];
    assert!(
        matches!(udp.recv_from(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a datagram reached the test's UDP socket"
    );
}

#[test]
fn the_host_refuses_http_to_anything_but_the_api_server_and_any_credential_header() {
    let victim = Victim::new(&[]);
    let listener = TcpListener::bind("127.0.0.1:0").expect("a TCP listener");
    listener.set_nonblocking(true).expect("non-blocking");
    let port = listener.local_addr().expect("address").port();
    let api = format!("https://127.0.0.1:{}", victim.server.port());
    let guest_token = "guest-forged-token-0f9e8d7c";
    // The gateway's reasons, as krew-wasm prints them (kube-gateway's
    // `Refusal`): not the "no network access" of a run without a gateway.
    let other_host = |origin: &str| {
        format!(
            "krew-wasm: plugin `{{}}`: refused a request to {origin}: plugins may only reach \
             the cluster's API server {api} and the hosts granted to them"
        )
    };
    let credential = |header: &str| {
        format!(
            "krew-wasm: plugin `{{}}`: refused a request that set the `{header}` header: \
             krew-wasm adds the user's credentials itself, and a plugin may not supply or change them"
        )
    };
    let mut results = Vec::new();
    // (attack, arguments, attempts, what the host must say: `{}` is the attack)
    let cases: Vec<(&str, Vec<String>, usize, Vec<String>)> = vec![
        (
            "http-metadata",
            vec![],
            MIN_HTTP_METADATA,
            vec![
                other_host("http://169.254.169.254:80"),
                other_host("https://169.254.169.254:443"),
                other_host("http://metadata.google.internal:80"),
                other_host("http://[fd00:ec2::254]:80"),
            ],
        ),
        (
            "http-loopback-port",
            vec![port.to_string()],
            MIN_HTTP_LOOPBACK_PORT,
            vec![
                other_host(&format!("http://127.0.0.1:{port}")),
                other_host(&format!("https://127.0.0.1:{port}")),
                other_host(&format!("http://localhost:{port}")),
                other_host(&format!("https://[::1]:{port}")),
            ],
        ),
        (
            "http-api-other-port",
            vec![port.to_string()],
            MIN_HTTP_API_OTHER_PORT,
            vec![
                other_host(&format!("https://127.0.0.1:{port}")),
                other_host(&format!("http://127.0.0.1:{}", victim.server.port())),
            ],
        ),
        (
            "set-authorization",
            vec![guest_token.to_string()],
            MIN_SET_AUTHORIZATION,
            vec![
                credential("authorization"),
                credential("cookie"),
                credential("impersonate-user"),
                "refused a request with credentials in its URL (`user@host`)".to_string(),
            ],
        ),
    ];
    for (attack, args, min_attempts, reasons) in cases {
        let (mut problems, output) = victim.attempt(attack, min_attempts, &[], &args);
        let (out, err) = (stdout(&output), stderr(&output));
        for reason in reasons {
            let reason = reason.replace("{}", attack);
            if !err.contains(&reason) {
                problems.push(format!("the host did not say {reason:?}"));
            }
        }
        for line in err.lines().filter(|l| l.contains("refused")) {
            if !line.starts_with(&format!("krew-wasm: plugin `{attack}`: refused ")) {
                problems.push(format!("a refusal not from krew-wasm's gateway: {line}"));
            }
        }
        // The control: the gateway lets the plugin reach the API server.
        let control = format!("NOTE control: GET {api}/api: ok (status 200)");
        if !out.contains(&control) {
            problems.push(format!(
                "no {control:?}: the gateway did not work, so its refusals prove nothing"
            ));
        }
        results.push((attack.to_string(), problems, output));
    }
    assert_all_contained(&results);
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "an HTTP attack connected to the test's listener on port {port}"
    );
    let requests = victim.server.requests();
    let controls = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/api")
        .count();
    assert!(
        controls >= 4,
        "the API server saw {controls} of the 4 controls' GET /api"
    );
    for request in requests {
        let seen = format!("{} {:?}", request.path, request.headers);
        assert!(
            !seen.contains(guest_token),
            "the plugin's own token reached the API server: {seen}"
        );
        assert_eq!(
            request.header("impersonate-user"),
            None,
            "impersonation reached the server"
        );
    }
}

/// `~/work/granted`, with a file, a subdirectory, links inside it (`in-*`:
/// controls) and links out of it (`out-*`) to the SSH key, `~/.bashrc`,
/// `/` and `..`.
fn granted_dir(victim: &Victim) -> PathBuf {
    use std::os::unix::fs::symlink;
    let granted = victim.work.join("granted");
    std::fs::create_dir_all(granted.join("sub")).expect("granted dir");
    std::fs::write(granted.join("inside.txt"), "inside the grant\n").expect("inside.txt");
    std::fs::write(granted.join("sub/deeper.txt"), "deeper\n").expect("deeper.txt");
    let secret = victim.home().join(".ssh/id_rsa");
    let target = victim.home().join(".bashrc");
    let links: [(&str, PathBuf); 8] = [
        ("in-file", "inside.txt".into()),
        ("in-sub", "sub/deeper.txt".into()),
        ("out-abs-secret", secret),
        ("out-rel-secret", "../../.ssh/id_rsa".into()),
        ("out-abs-target", target),
        ("out-rel-target", "../../.bashrc".into()),
        ("out-root", "/".into()),
        ("out-up", "..".into()),
    ];
    for (name, points_to) in &links {
        symlink(points_to, granted.join(name)).expect("a link in the granted dir");
    }
    // The bait: every link leads to what it is named for.
    assert_exist(&links.map(|(name, _)| s(granted.join(name))));
    granted
}

#[test]
fn granted_directories_cannot_be_left_through_dotdot_or_links() {
    let victim = Victim::new(&[]);
    let granted = granted_dir(&victim);
    let (g, secret, target) = (
        s(&granted),
        s(victim.home().join(".ssh/id_rsa")),
        s(victim.home().join(".bashrc")),
    );
    let read_only = format!("dir:{g}");
    let writable = format!("dir:{g}:rw");
    let args = vec![g.clone(), secret, target];
    // What must be in the output: controls (`NOTE control: …: ok`), which
    // show the grant worked, and attempts that must have been made.
    let listed = format!("NOTE control: list {g}: ok");
    let through_links = [
        listed.clone(),
        format!("NOTE control: read {g}/in-file: ok"),
        format!("NOTE control: read {g}/in-sub: ok"),
    ];
    let raw_up = |at: &str| format!("open-at {at:?} \"../../.ssh/id_rsa\": denied (");
    let made = [
        "made-rel-secret -> ../../.ssh/id_rsa",
        "made-rel-target -> ../../.bashrc",
        "made-up -> ..",
    ];
    let cases: Vec<(&str, Vec<&str>, usize, Vec<String>)> = vec![
        (
            "escape-dotdot",
            vec!["--grant", &read_only],
            MIN_ESCAPE_DOTDOT,
            vec![
                listed.clone(),
                raw_up(&g),
                format!("write {g}/moved-out: denied ("),
            ],
        ),
        (
            "escape-dotdot",
            vec!["--grant", &writable],
            MIN_ESCAPE_DOTDOT,
            vec![
                listed.clone(),
                raw_up(&g),
                format!("NOTE control: write {g}/moved-out: ok"),
                format!("rename {g}/moved-out to {g}/../moved-out: denied ("),
            ],
        ),
        (
            "escape-symlink",
            vec!["--grant", &read_only],
            MIN_ESCAPE_SYMLINK_READ_ONLY,
            through_links
                .iter()
                .cloned()
                .chain([format!("write {g}/made-inside: denied (")])
                .chain(made.iter().map(|m| format!("make {g}/{m}: denied (")))
                .collect(),
        ),
        (
            "escape-symlink",
            vec!["--grant", &writable],
            MIN_ESCAPE_SYMLINK_WRITABLE,
            through_links
                .iter()
                .cloned()
                .chain([format!("NOTE control: write {g}/made-inside: ok")])
                .chain(
                    made.iter()
                        .map(|m| format!("NOTE control: make {g}/{m}: ok")),
                )
                .chain([
                    format!("read {g}/made-rel-secret: denied ("),
                    format!("append through {g}/made-rel-target: denied ("),
                    format!("list {g}/made-up: denied ("),
                ])
                .collect(),
        ),
    ];
    let mut results = Vec::new();
    for (attack, options, min_attempts, expected) in cases {
        let (problems, output) = victim.attempt(attack, min_attempts, &options, &args);
        let label = format!("{attack} {}", options.join(" "));
        results.push((label, grant_problems(problems, &output, &expected), output));
    }
    // `dir:.` mounts the working directory at the guest's `.`.
    let mut cd_granted = victim.run_command("escape-dotdot", &["--grant", "dir:."], &args);
    cd_granted.current_dir(&granted);
    let (problems, output) = victim.attempt_with(
        "escape-dotdot",
        MIN_ESCAPE_DOTDOT_CWD,
        cd_granted,
        &[Victim::digest_hex("escape-dotdot")],
    );
    let expected = [
        "NOTE control: list .: ok".to_string(),
        raw_up("."),
        format!("write {g}/moved-out: denied ("),
    ];
    results.push((
        "escape-dotdot --grant dir:.".to_string(),
        grant_problems(problems, &output, &expected),
        output,
    ));
    assert_all_contained(&results);
}

/// `problems` plus what is missing from a granted-directory attack's
/// output: an `expected` line (a control that did not work, an attempt not
/// made), or a grant that was not preopened.
fn grant_problems(mut problems: Vec<String>, output: &Output, expected: &[String]) -> Vec<String> {
    let out = stdout(output);
    for line in expected {
        if !out.contains(line.as_str()) {
            problems.push(format!(
                "no {line:?}: the grant did not work as given, so the attack proves less"
            ));
        }
    }
    for line in out.lines().filter(|l| l.contains("is not preopened")) {
        problems.push(format!("the grant was not preopened: {line}"));
    }
    problems
}

#[test]
fn an_env_grant_reveals_that_variable_and_no_other() {
    let victim = Victim::new(&[]);
    let mut results = Vec::new();
    for (grant, deny, visible) in [
        ("env:SHARED_SETTING", None, true),
        ("env:SHARED_SETTING", Some("env:SHARED_SETTING"), false),
        ("env:SHARED_SETTING", Some("all"), false),
    ] {
        let mut command = victim.run_command(
            "env-secret",
            &["--grant", grant],
            &ENV_SECRETS
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>(),
        );
        command.env("SHARED_SETTING", "granted-value");
        if let Some(deny) = deny {
            command.env("KREW_WASM_DENY", deny);
        }
        let (mut problems, output) = victim.attempt_with(
            "env-secret",
            MIN_ENV_SECRET,
            command,
            &[Victim::digest_hex("env-secret")],
        );
        let out = stdout(&output);
        let sees = out
            .lines()
            .any(|l| l.starts_with("NOTE visible variables:") && l.contains("SHARED_SETTING"));
        let value = out.contains("NOTE env SHARED_SETTING=\"granted-value\"");
        if (sees, value) != (visible, visible) {
            problems.push(format!(
                "SHARED_SETTING visible: {sees}, its value: {value}, expected {visible}"
            ));
        }
        results.push((
            format!("env-secret --grant {grant} KREW_WASM_DENY={deny:?}"),
            problems,
            output,
        ));
    }
    assert_all_contained(&results);
}

#[test]
fn memory_is_capped_at_the_limit() {
    let victim = Victim::new(&[]);
    let want = vec!["1024".to_string()];
    // (options, KREW_WASM_MAX_MEMORY, the limit that must hold)
    let cases: [(&[&str], Option<&str>, usize); 4] = [
        (&["--max-memory", "64MiB"], None, 64),
        (&[], Some("64MiB"), 64),
        (&[], None, 512),
        // The variable can only lower the limit.
        (&[], Some("2GiB"), 512),
    ];
    let mut failures = Vec::new();
    for (options, env, limit) in cases {
        let mut command = victim.run_command("exhaust-memory", options, &want);
        if let Some(env) = env {
            command.env("KREW_WASM_MAX_MEMORY", env);
        }
        let output = command.output().expect("running krew-wasm");
        let (out, err) = (stdout(&output), stderr(&output));
        let got = crate::memory_got(&out);
        let label = format!("{options:?} KREW_WASM_MAX_MEMORY={env:?}");
        if out.contains("ESCAPED") || got > limit {
            failures.push(format!("{label}: got {got} MiB past the {limit} MiB limit"));
        }
        if output.status.success() {
            failures.push(format!("{label}: exited 0"));
        }
        let named = [format!("{limit} MiB"), format!("{limit}MiB")];
        if !err.contains("memory limit") || !named.iter().any(|n| err.contains(n.as_str())) {
            failures.push(format!(
                "{label}: stderr does not name the {limit} MiB memory limit:\n{}",
                clip(&err)
            ));
        }
        if got + 64 < limit {
            failures.push(format!(
                "{label}: stopped at {got} MiB, far below the {limit} MiB limit"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs `command` to its end or `limit`, whichever comes first (killing it
/// then); returns the output and how long it ran.
fn run_for(mut command: Command, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning");
    // Held open and never written: stdin that never ends.
    let stdin = child.stdin.take();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    drop(stdin);
    (child.wait_with_output().expect("output"), elapsed)
}

/// How long past its deadline a runaway plugin may take to end, process
/// start and exit included. Epochs tick every 10 ms and the host's timer
/// fires within a tick: runs of compiled plugins took 1.01–1.15 s for a 1 s
/// timeout (on 2 CPUs, alone, beside the rest of the suite, and beside a
/// fuzz build); the rest is headroom for a slow, loaded CI machine.
const TIMEOUT_SLACK: Duration = Duration::from_millis(1500);

/// What a plugin's first timed run adds: it compiles the plugin for the
/// interruptible engine (a cache of its own) before the clock starts
/// (block-forever, the largest: 1.57–2.31 s in all).
const FIRST_RUN_COMPILE: Duration = Duration::from_secs(3);

/// How long past its deadline krew-wasm's watchdog ends a run whose host
/// thread is stuck in a system call (`TIMEOUT_GRACE` in launch.rs).
const WATCHDOG_GRACE: Duration = Duration::from_secs(2);

#[test]
fn runaway_plugins_stop_at_the_timeout() {
    let victim = Victim::new(&["block-forever", "spin-forever", "flood-stdout"]);
    let deadline = Duration::from_secs(1);
    let mut failures = Vec::new();
    let mut check = |label: String, command: Command, slack: Duration| {
        let (output, elapsed) = run_for(command, deadline + slack + Duration::from_secs(5));
        let (out, err) = (stdout(&output), stderr(&output));
        eprintln!("{label}: {} after {elapsed:?}", output.status);
        if output.status.code() != Some(124) || !err.contains("timed out after 1s") {
            failures.push(format!(
                "{label}: exit {} after {elapsed:?}, expected 124 and `timed out after 1s`\nstdout: {}\nstderr: {}",
                output.status,
                clip(&out),
                clip(&err)
            ));
        } else if elapsed > deadline + slack {
            failures.push(format!(
                "{label}: took {elapsed:?} for a {deadline:?} timeout (at most {:?})",
                deadline + slack
            ));
        }
        if label.contains("\"http\"") && !out.contains("response 200") {
            failures.push(format!(
                "{label}: the watch never answered, so nothing blocked on it"
            ));
        }
        if !out.contains("spinning") && !out.contains("blocking") && !out.starts_with("AAAA") {
            failures.push(format!("{label}: the plugin never started: {}", clip(&err)));
        }
    };
    let cases: [(&str, &[&str]); 6] = [
        ("spin-forever", &["busy"]),
        ("spin-forever", &["hostcalls"]),
        ("block-forever", &["stdin"]),
        ("block-forever", &["sleep"]),
        ("block-forever", &["poll"]),
        (
            "block-forever",
            &["http", "/api/v1/namespaces/default/pods?watch=true"],
        ),
    ];
    for (attack, args) in cases {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        // The first timed run of a plugin compiles it; the second is what a
        // user running it again sees.
        for (round, slack) in [
            ("first", TIMEOUT_SLACK + FIRST_RUN_COMPILE),
            ("second", TIMEOUT_SLACK),
        ] {
            check(
                format!("{attack} {args:?} --timeout 1s ({round} run)"),
                victim.run_command(attack, &["--timeout", "1s"], &args),
                slack,
            );
        }
        let mut with_env = victim.run_command(attack, &[], &args);
        with_env.env("KREW_WASM_TIMEOUT", "1s");
        check(
            format!("{attack} {args:?} KREW_WASM_TIMEOUT=1s"),
            with_env,
            TIMEOUT_SLACK,
        );
    }
    // Installed plugins through kubectl honour the variable too.
    for (attack, args) in [("spin-forever", "busy"), ("block-forever", "stdin")] {
        let mut command = victim.command(require_tool("kubectl"));
        command.args([attack, args]).env("KREW_WASM_TIMEOUT", "1s");
        check(
            format!("kubectl {attack} {args} KREW_WASM_TIMEOUT=1s"),
            command,
            TIMEOUT_SLACK,
        );
    }
    // Blocked writing to a pipe nobody reads (run_for reads nothing until
    // the end): the host thread is stuck in write(2), out of the epochs'
    // reach, and the watchdog ends the process at deadline + its grace
    // (3.08–3.18 s measured, compiling flood-stdout first included).
    check(
        "flood-stdout into a full pipe --timeout 1s".to_string(),
        victim.run_command("flood-stdout", &["--timeout", "1s"], &[]),
        WATCHDOG_GRACE + Duration::from_secs(1),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn ctrl_c_stops_a_busy_plugin_at_once() {
    let victim = Victim::new(&["spin-forever"]);
    let command = victim.run_command("spin-forever", &[], &["busy".to_string()]);
    crate::assert_ctrl_c_ends_a_spinning_run(command);
}

/// The peak resident memory of a process, from /proc.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[test]
fn a_stdout_flood_is_not_buffered_and_ends_with_the_reader() {
    let victim = Victim::new(&[]);
    let mut child = victim
        .run_command("flood-stdout", &[], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning krew-wasm");
    let pid = child.id();
    let mut out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::BufReader::new(err).read_to_string(&mut text);
        text
    });
    let mut read_some = |bytes: usize| {
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0;
        while total < bytes {
            let n = out.read(&mut buf).expect("reading the flood");
            assert!(n > 0, "the flood ended after {total} bytes");
            assert!(buf[..n].iter().all(|&b| b == b'A'), "the flood is all `A`");
            total += n;
        }
    };
    read_some(16 << 20);
    // Stop reading: the plugin must wait for the pipe, not the host buffer.
    std::thread::sleep(Duration::from_secs(3));
    let stalled = vm_hwm_kib(pid).expect("krew-wasm's VmHWM");
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "krew-wasm ended while its reader was only slow"
    );
    read_some(16 << 20);
    std::thread::sleep(Duration::from_secs(2));
    let after = vm_hwm_kib(pid).expect("krew-wasm's VmHWM");
    assert!(
        stalled < 200 << 10 && after < 200 << 10,
        "krew-wasm's peak memory grew to {stalled} KiB / {after} KiB under a stdout flood"
    );
    // The reader goes away: the run must end promptly.
    drop(out);
    let closed = Instant::now();
    let status = crate::wait_at_most(
        &mut child,
        Duration::from_secs(5),
        "krew-wasm kept running 5 s after its stdout was closed",
    );
    let err = errors.join().unwrap_or_default();
    eprintln!(
        "flood-stdout: peak {stalled} KiB stalled, {after} KiB after; ended {:?} after the pipe closed with {status}; stderr: {err}",
        closed.elapsed()
    );
    assert!(
        !err.contains("panicked"),
        "krew-wasm panicked on a closed stdout: {err}"
    );
}

#[test]
fn a_huge_argv_arrives_whole() {
    let victim = Victim::new(&[]);
    // Linux's limits (fs/exec.c): 128 KiB per string, and argv plus the
    // environment, strings and pointers, within max(min(6 MiB, stack limit /
    // 4), 128 KiB): 2 MiB under the default 8 MiB stack limit, 6 MiB under
    // the 64 MiB one set below. 48 strings of 127 KiB fill 6.24 MB of it,
    // leaving about 50 KB for the environment; a 49th does not fit (E2BIG,
    // measured), nor do 48 under an 8 MiB stack limit.
    let (count, len) = (48usize, 130_000usize);
    let mut command = victim.command("sh");
    command
        .arg("-c")
        .arg(
            "ulimit -s 65536 || exit 99\n\
             pad=$(head -c \"$LEN\" /dev/zero | tr '\\0' x)\n\
             i=0\n\
             set --\n\
             while [ \"$i\" -lt \"$COUNT\" ]; do set -- \"$@\" \"$i$pad\"; i=$((i + 1)); done\n\
             exec \"$KW\" run \"$WASM\" -- \"$@\"",
        )
        .env("LEN", len.to_string())
        .env("COUNT", count.to_string())
        .env("KW", krew_wasm_exe())
        .env("WASM", fixtures().p2("huge-argv"));
    let output = command.output().expect("running sh");
    assert!(
        output.status.success(),
        "krew-wasm failed on a {count} x {len} byte argv ({}):\n{}",
        output.status,
        clip(&stderr(&output))
    );
    let mut hash: u64 = 0xcbf29ce484222325;
    let mut bytes = 0;
    for i in 0..count {
        let arg = format!("{i}{}", "x".repeat(len));
        bytes += arg.len();
        for &b in arg.as_bytes().iter().chain(&[0u8]) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
    }
    assert!(bytes > 6_200_000, "the argv is about 6.2 MB: {bytes}");
    assert_eq!(
        stdout(&output),
        format!("ATTACK huge-argv\nargc {count} bytes {bytes} fnv1a {hash:016x}\n"),
        "stderr: {}",
        clip(&stderr(&output))
    );
}
