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
//! itself reports that it failed (`RESULT <attack>: contained`, exit 0; an
//! escape prints `ESCAPED: …` and exits 1), none of the bait's secret bytes
//! appear on its stdout or stderr, the host says clearly what it refused
//! where the host is what refuses, and nothing under the user's sandbox
//! (home and store) changed: every path, mode, file digest and link target is
//! the same before and after, except what krew-wasm itself writes for a run
//! (the compiled plugin in `cache/`, the kubeconfig view in `views/`).
//! Listeners the test opens itself prove that no socket or request ever
//! reached them, and the test API server's request log that the plugin's own
//! credentials never did. Resource attacks end with the host's limit: exit
//! 124 and `timed out after` within seconds of the deadline, `memory limit`
//! at the limit, bounded host memory under a stdout flood.
//!
//! Linux caps one execve at 6 MiB of argv (3/4 of the default 8 MiB stack
//! limit; `ulimit -s` can only lower that), so `huge-argv` sends the most a
//! kernel delivers, not 10 MB.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
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
            ("the SSH key".to_string(), ssh_key),
            (
                "the kubeconfig's token".to_string(),
                server.token().to_string(),
            ),
            ("the AWS secret".to_string(), AWS_SECRET.to_string()),
            ("hello's receipt".to_string(), manifest),
        ];
        // Running as root, krew-wasm could read /etc/shadow itself.
        if let Ok(shadow) = std::fs::read_to_string("/etc/shadow")
            && let Some(line) = shadow.lines().find(|l| l.len() >= 16)
        {
            secrets.push(("/etc/shadow".to_string(), line.to_string()));
        }
        Self {
            sandbox,
            server,
            _registry: registry,
            work,
            secrets,
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

    fn run(&self, attack: &str, options: &[&str], args: &[String]) -> Output {
        self.run_command(attack, options, args)
            .output()
            .expect("running krew-wasm")
    }

    /// The hex digest of an attack's wasm (its compiled form's cache name).
    fn digest_hex(attack: &str) -> String {
        let wasm = std::fs::read(fixtures().p2(attack)).expect("the attack's wasm");
        sha256_digest(&wasm)
            .trim_start_matches("sha256:")
            .to_string()
    }

    /// Runs `attack` under a snapshot and returns what is wrong with the
    /// outcome (empty: contained), plus the output.
    fn attempt(&self, attack: &str, options: &[&str], args: &[String]) -> (Vec<String>, Output) {
        let before = snapshot(&self.everything());
        let output = self.run(attack, options, args);
        let after = snapshot(&self.everything());
        let mut problems = self.contained(attack, &output);
        problems.extend(changes(&before, &after, &[Self::digest_hex(attack)]));
        (problems, output)
    }

    /// What is wrong with the output of a contained attack.
    fn contained(&self, attack: &str, output: &Output) -> Vec<String> {
        let (out, err) = (stdout(output), stderr(output));
        let mut problems = Vec::new();
        if !out.starts_with(&format!("ATTACK {attack}\n")) {
            problems.push("the plugin did not start".to_string());
        }
        for line in out.lines().filter(|l| l.starts_with("ESCAPED")) {
            problems.push(format!("got through: {line}"));
        }
        if !out.contains(&format!("RESULT {attack}: contained")) {
            problems.push("no `contained` verdict".to_string());
        }
        if output.status.code() != Some(0) {
            problems.push(format!("exit status {}", output.status));
        }
        for (what, secret) in &self.secrets {
            if out.contains(secret.as_str()) || err.contains(secret.as_str()) {
                problems.push(format!("{what} appears in the output"));
            }
        }
        problems
    }
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
/// content, or a link's target.
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
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).expect("link target");
                out.insert(rel, format!("link -> {}", target.display()));
            } else if meta.is_dir() {
                out.insert(rel, format!("dir {mode:o}"));
                walk(base, &path, out);
            } else {
                let bytes = std::fs::read(&path).expect("reading a sandbox file");
                out.insert(rel, format!("file {mode:o} {}", sha256_digest(&bytes)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The differences between two snapshots, except what krew-wasm writes for
/// a run: the compiled form of a plugin it ran (`ran`: wasm digests) in
/// `root/cache/<engine>/`, kubeconfig views in `root/views/`, the store's
/// lock and temporary directory.
fn changes(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    ran: &[String],
) -> Vec<String> {
    let host_writes = |path: &str| {
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["root", "cache"] | ["root", "cache", _] => true,
            ["root", "cache", _, artifact] => {
                ran.iter().any(|hex| *artifact == format!("{hex}.cwasm"))
            }
            ["root", "views", ..] | ["root", "lock"] | ["root", "tmp"] => true,
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
        if !before.contains_key(path) && !host_writes(path) {
            out.push(format!("{path} appeared ({now})"));
        }
    }
    out
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
    let with_root = |files: &[String]| {
        std::iter::once(s(&root))
            .chain(files.iter().cloned())
            .collect::<Vec<_>>()
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("read-ssh-key", vec![s(home.join(".ssh/id_rsa"))]),
        ("read-shadow", vec![]),
        ("read-kubeconfig", vec![s(home.join(".kube/config"))]),
        ("read-store", with_root(&store_files)),
        (
            "write-bashrc",
            vec![s(home.join(".bashrc")), s(home.join(".profile"))],
        ),
        ("write-store", with_root(&store_files)),
        (
            "env-secret",
            ENV_SECRETS.iter().map(|n| n.to_string()).collect(),
        ),
    ];
    let mut results = Vec::new();
    for (attack, args) in cases {
        let (problems, output) = victim.attempt(attack, &[], &args);
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
    let kubectl = require_tool("kubectl");
    let mut results = Vec::new();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("read-other-plugin", hello_files.clone()),
        ("write-store", hello_files),
        (
            "env-secret",
            ENV_SECRETS.iter().map(|n| n.to_string()).collect(),
        ),
    ];
    for (attack, args) in cases {
        let before = snapshot(&victim.everything());
        let output = victim
            .command(&kubectl)
            .arg(attack)
            .args(&args)
            .output()
            .expect("running kubectl");
        let after = snapshot(&victim.everything());
        let mut problems = victim.contained(attack, &output);
        problems.extend(changes(&before, &after, &[]));
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
    for (attack, args) in [
        (
            "tcp-socket",
            vec![
                tcp_addr.to_string(),
                format!("[::1]:{}", tcp_addr.port()),
                api,
            ],
        ),
        (
            "udp-socket",
            vec![udp_addr.to_string(), "8.8.8.8:53".to_string()],
        ),
        (
            "dns-lookup",
            vec!["example.com".to_string(), "localhost".to_string()],
        ),
    ] {
        let (problems, output) = victim.attempt(attack, &[], &args);
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
    let guest_token = "guest-forged-token-0f9e8d7c";
    let mut results = Vec::new();
    let cases: Vec<(&str, Vec<String>, Vec<String>)> = vec![
        (
            "http-metadata",
            vec![],
            vec![
                "refused a request to http://169.254.169.254".to_string(),
                "refused a request to http://metadata.google.internal".to_string(),
            ],
        ),
        (
            "http-loopback-port",
            vec![port.to_string()],
            vec![
                format!("refused a request to http://127.0.0.1:{port}"),
                format!("refused a request to https://127.0.0.1:{port}"),
                format!("refused a request to http://localhost:{port}"),
            ],
        ),
        (
            "http-api-other-port",
            vec![port.to_string()],
            vec![
                format!("refused a request to https://127.0.0.1:{port}"),
                format!(
                    "refused a request to http://127.0.0.1:{}",
                    victim.server.port()
                ),
            ],
        ),
        (
            "set-authorization",
            vec![guest_token.to_string()],
            vec![
                "set the `authorization` header".to_string(),
                "set the `cookie` header".to_string(),
                "set the `impersonate-user` header".to_string(),
            ],
        ),
    ];
    for (attack, args, reasons) in cases {
        let (mut problems, output) = victim.attempt(attack, &[], &args);
        let err = stderr(&output);
        for reason in reasons {
            if !err.contains(&reason) {
                problems.push(format!("the host did not say {reason:?}"));
            }
        }
        for line in err.lines().filter(|l| l.contains("refused")) {
            if !line.starts_with("krew-wasm: ") {
                problems.push(format!("a refusal not from krew-wasm: {line}"));
            }
        }
        results.push((attack.to_string(), problems, output));
    }
    assert_all_contained(&results);
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "an HTTP attack connected to the test's listener on port {port}"
    );
    for request in victim.server.requests() {
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
    for (name, points_to) in links {
        symlink(points_to, granted.join(name)).expect("a link in the granted dir");
    }
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
    let listed = format!("NOTE control: list {g}: ok");
    let through_links = [
        format!("NOTE control: read {g}/in-file: ok"),
        format!("NOTE control: read {g}/in-sub: ok"),
    ];
    let cases: Vec<(&str, Vec<&str>, Vec<String>)> = vec![
        (
            "escape-dotdot",
            vec!["--grant", &read_only],
            vec![listed.clone()],
        ),
        ("escape-dotdot", vec!["--grant", &writable], vec![listed]),
        (
            "escape-symlink",
            vec!["--grant", &read_only],
            through_links.to_vec(),
        ),
        (
            "escape-symlink",
            vec!["--grant", &writable],
            through_links.to_vec(),
        ),
    ];
    let mut results = Vec::new();
    for (attack, options, controls) in cases {
        let (mut problems, output) = victim.attempt(attack, &options, &args);
        let out = stdout(&output);
        for control in controls {
            if !out.contains(&control) {
                problems.push(format!(
                    "no {control:?}: the grant did not work, so the attack proves nothing"
                ));
            }
        }
        results.push((format!("{attack} {}", options.join(" ")), problems, output));
    }
    // `dir:.` mounts the working directory at the guest's `.`.
    let mut cd_granted = victim.run_command("escape-dotdot", &["--grant", "dir:."], &args);
    cd_granted.current_dir(&granted);
    let before = snapshot(&victim.everything());
    let output = cd_granted.output().expect("running krew-wasm");
    let after = snapshot(&victim.everything());
    let mut problems = victim.contained("escape-dotdot", &output);
    problems.extend(changes(
        &before,
        &after,
        &[Victim::digest_hex("escape-dotdot")],
    ));
    if !stdout(&output).contains("NOTE control: list .: ok") {
        problems.push("the guest could not list `.`: the grant did not work".to_string());
    }
    results.push(("escape-dotdot --grant dir:.".to_string(), problems, output));
    assert_all_contained(&results);
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
        let before = snapshot(&victim.everything());
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
        let output = command.output().expect("running krew-wasm");
        let after = snapshot(&victim.everything());
        let mut problems = victim.contained("env-secret", &output);
        problems.extend(changes(
            &before,
            &after,
            &[Victim::digest_hex("env-secret")],
        ));
        let sees = stdout(&output)
            .lines()
            .any(|l| l.starts_with("NOTE visible variables:") && l.contains("SHARED_SETTING"));
        if sees != visible {
            problems.push(format!(
                "SHARED_SETTING visible: {sees}, expected {visible}"
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

/// The largest `got N MiB` the exhaust-memory attack printed.
fn memory_got(out: &str) -> usize {
    out.lines()
        .filter_map(|l| l.strip_prefix("got ")?.strip_suffix(" MiB")?.parse().ok())
        .max()
        .unwrap_or(0)
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
        let got = memory_got(&out);
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

#[test]
fn runaway_plugins_stop_at_the_timeout() {
    let victim = Victim::new(&["block-forever", "spin-forever"]);
    let deadline = Duration::from_secs(1);
    let grace = Duration::from_secs(5);
    let mut failures = Vec::new();
    let mut check = |label: String, command: Command| {
        let (output, elapsed) = run_for(command, deadline + grace + Duration::from_secs(5));
        let (out, err) = (stdout(&output), stderr(&output));
        eprintln!("{label}: {} after {elapsed:?}", output.status);
        if output.status.code() != Some(124) || !err.contains("timed out after") {
            failures.push(format!(
                "{label}: exit {} after {elapsed:?}, expected 124 and `timed out after`\nstdout: {}\nstderr: {}",
                output.status,
                clip(&out),
                clip(&err)
            ));
        } else if elapsed > deadline + grace {
            failures.push(format!(
                "{label}: took {elapsed:?} for a {deadline:?} timeout"
            ));
        }
        if label.contains("\"http\"") && !out.contains("response 200") {
            failures.push(format!(
                "{label}: the watch never answered, so nothing blocked on it"
            ));
        }
        if !out.contains("spinning") && !out.contains("blocking") {
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
        // The first run compiles the plugin; the timing is measured on the
        // second, as a user running it again would see.
        for round in ["first", "cached"] {
            check(
                format!("{attack} {args:?} --timeout 1s ({round} run)"),
                victim.run_command(attack, &["--timeout", "1s"], &args),
            );
        }
        let mut with_env = victim.run_command(attack, &[], &args);
        with_env.env("KREW_WASM_TIMEOUT", "1s");
        check(format!("{attack} {args:?} KREW_WASM_TIMEOUT=1s"), with_env);
    }
    // Installed plugins through kubectl honour the variable too.
    for (attack, args) in [("spin-forever", "busy"), ("block-forever", "stdin")] {
        let mut command = victim.command(require_tool("kubectl"));
        command.args([attack, args]).env("KREW_WASM_TIMEOUT", "1s");
        check(
            format!("kubectl {attack} {args} KREW_WASM_TIMEOUT=1s"),
            command,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn ctrl_c_stops_a_busy_plugin_at_once() {
    use std::os::unix::process::ExitStatusExt as _;
    let victim = Victim::new(&["spin-forever"]);
    let mut command = victim.run_command("spin-forever", &[], &["busy".to_string()]);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning");
    // Wait until it spins (the first run compiles it first).
    let mut first = [0u8; 64];
    let read = child
        .stdout
        .as_mut()
        .expect("stdout")
        .read(&mut first)
        .expect("reading");
    assert!(String::from_utf8_lossy(&first[..read]).contains("spin"));
    std::thread::sleep(Duration::from_millis(300));
    let interrupted = Instant::now();
    // What the terminal sends on Ctrl-C.
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(kill.success());
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            interrupted.elapsed() < Duration::from_secs(2),
            "a spinning plugin outlived Ctrl-C by {:?}",
            interrupted.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!("Ctrl-C: {status} after {:?}", interrupted.elapsed());
    assert_eq!(status.signal(), Some(2), "{status}");
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
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if closed.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("krew-wasm kept running 5 s after its stdout was closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
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
    // Linux's limits: 128 KiB per string, and all of argv and the
    // environment within a quarter of the stack limit, at most 6 MiB.
    let (count, len) = (46usize, 130_000usize);
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
    assert!(bytes > 5_900_000, "the argv is about 6 MB: {bytes}");
    assert_eq!(
        stdout(&output),
        format!("ATTACK huge-argv\nargc {count} bytes {bytes} fnv1a {hash:016x}\n"),
        "stderr: {}",
        clip(&stderr(&output))
    );
}
