//! End-to-end tests of the krew-wasm binary against real parts: Debian's
//! docker-registry, skopeo, the real kubectl, and plugins built from source.

mod api;
mod atomicity;
mod attacks;
mod bad_input;
mod index;
mod kubectl;
mod lifecycle;
mod new;
mod permissions;
mod policy;
mod pull;
mod push;
mod registries;
mod run;
mod signing;
mod signing_sigstore;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use test_support::{Artifact, Registry, fixtures, sha256_digest};

/// The krew-wasm binary under test.
pub fn krew_wasm_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_krew-wasm"))
}

/// A user's world: a home directory, a store, and a clean environment, so
/// tests never see the real ~/.docker, ~/.kube or ~/.krew-wasm.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("sandbox dir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        Self { dir }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn bin(&self) -> PathBuf {
        self.root().join("bin")
    }

    /// PATH with the store's bin first, then the system directories.
    pub fn path_var(&self) -> String {
        let kubectl_dir = test_support::require_tool("kubectl")
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        format!(
            "{}:{}:/usr/local/bin:/usr/bin:/bin",
            self.bin().display(),
            kubectl_dir.display()
        )
    }

    /// `command_line` run by `sh` on a real terminal (a pty made by
    /// script(1)): the child's stdin is what is typed on it, its stdout is
    /// everything the terminal shows, echo included.
    pub fn spawn_on_a_terminal(&self, command_line: &str) -> std::process::Child {
        self.command(test_support::require_tool("script"))
            .env("SHELL", "/bin/sh")
            .args(["-qec", command_line, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("running script(1)")
    }

    /// Any command, with the sandbox's environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("HOME", self.home())
            .env("KREW_WASM_ROOT", self.root())
            .env("PATH", self.path_var())
            .env("DOCKER_CONFIG", self.home().join(".docker"))
            .env("XDG_RUNTIME_DIR", self.home().join("run"))
            .env("KUBECONFIG", self.home().join(".kube/config"))
            .env("LANG", "C.UTF-8");
        command
    }

    pub fn krew(&self, args: &[&str]) -> Output {
        self.command(krew_wasm_exe())
            .args(args)
            .output()
            .expect("running krew-wasm")
    }

    /// Runs krew-wasm, asserts success, returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.krew(args);
        assert!(
            output.status.success(),
            "krew-wasm {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs krew-wasm, asserts a non-zero exit, returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.krew(args);
        assert!(
            !output.status.success(),
            "krew-wasm {args:?} should have failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(1), "errors exit with 1");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// Every file, link and directory of the store, with a digest of each
    /// file's content or each link's target; the lock file is left out.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        walk(&self.root(), &self.root(), &mut out);
        out.remove("lock");
        out
    }

    pub fn list_json(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["list", "-o", "json"])).expect("list -o json is JSON")
    }
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in read.flatten() {
        let path = entry.path();
        let rel = path
            .strip_prefix(base)
            .unwrap_or(&path)
            .display()
            .to_string();
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        if meta.file_type().is_symlink() {
            out.insert(
                rel,
                format!("-> {}", std::fs::read_link(&path).expect("link").display()),
            );
        } else if meta.is_dir() {
            out.insert(rel.clone(), "dir".into());
            walk(base, &path, out);
        } else {
            out.insert(rel, sha256_digest(&std::fs::read(&path).expect("read")));
        }
    }
}

/// Pushes a fixture's p2 component as a CNCF artifact; returns (reference, wasm digest).
pub fn push_fixture(registry: &Registry, fixture: &str, repo_tag: &str) -> (String, String) {
    let wasm = std::fs::read(fixtures().p2(fixture)).expect("fixture");
    let digest = sha256_digest(&wasm);
    Artifact::wasm(wasm, "application/wasm").push(registry, repo_tag);
    (format!("{}/{repo_tag}", registry.host()), digest)
}

/// What the hello fixture prints for `args`.
pub fn hello_output(args: &[&str]) -> String {
    format!(
        "Hello from a WebAssembly kubectl plugin!\nargs: {}\n",
        args.join(" ")
    )
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Starts `command` (a run of the spin-forever attack, `busy`), waits until
/// it spins, sends SIGINT as a terminal's Ctrl-C does, and asserts the
/// process died of it within 2 s.
pub fn assert_ctrl_c_ends_a_spinning_run(mut command: Command) {
    use std::io::Read as _;
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning");
    // Spinning once it has said so (after any download and compile).
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
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(kill.success());
    let status = wait_at_most(
        &mut child,
        Duration::from_secs(2),
        "a spinning plugin outlived Ctrl-C by 2 s",
    );
    eprintln!("Ctrl-C: {status} after {:?}", interrupted.elapsed());
    assert_eq!(status.signal(), Some(2), "{status}");
}

/// Waits for `child` to end, for at most `limit`; past it, kills it and
/// fails with `overdue`.
pub fn wait_at_most(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    overdue: &str,
) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{overdue}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The largest `got N MiB` the exhaust-memory attack printed.
pub fn memory_got(out: &str) -> usize {
    out.lines()
        .filter_map(|l| l.strip_prefix("got ")?.strip_suffix(" MiB")?.parse().ok())
        .max()
        .unwrap_or(0)
}
