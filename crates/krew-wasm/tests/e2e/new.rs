//! `krew-wasm new`: the project it writes builds as it is, and the plugin
//! lists pods through krew-wasm; bad names and occupied directories are
//! refused without writing anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use serde_json::json;
use test_support::{KubeApiServer, fixtures, repo_root};

use crate::{Sandbox, krew_wasm_exe, stderr, stdout};

/// The template's files, as written into a project.
const PROJECT_FILES: &[&str] = &[
    ".cargo/config.toml",
    ".gitignore",
    "Cargo.toml",
    "README.md",
    "rust-toolchain.toml",
    "src/main.rs",
];

/// A sandbox and a working directory inside it to run `krew-wasm new` from.
fn workspace() -> (Sandbox, PathBuf) {
    let sandbox = Sandbox::new();
    let work = sandbox.home().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    (sandbox, work)
}

/// `krew-wasm ARGS` run from `dir`.
fn krew_in(sandbox: &Sandbox, dir: &Path, args: &[&str]) -> Output {
    sandbox
        .command(krew_wasm_exe())
        .current_dir(dir)
        .args(args)
        .output()
        .expect("running krew-wasm")
}

/// Every file and directory under `dir`, with a digest of each file.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    crate::walk(dir, dir, &mut out);
    out
}

fn sdk_dir() -> PathBuf {
    std::fs::canonicalize(repo_root().join("guest/sdk")).expect("guest/sdk")
}

#[test]
fn new_project_builds_and_lists_pods() {
    let started = Instant::now();
    // Builds the guest workspace, whose compiled dependencies the project reuses.
    fixtures();
    let fixtures_done = started.elapsed();

    let (sandbox, work) = workspace();
    let output = krew_in(&sandbox, &work, &["new", "my-pods"]);
    assert!(
        output.status.success(),
        "krew-wasm new failed:\n{}{}",
        stdout(&output),
        stderr(&output)
    );
    let out = stdout(&output);
    for step in [
        "cd my-pods && cargo build --release",
        "krew-wasm run target/wasm32-wasip2/release/my-pods.wasm",
        "krew-wasm pull REGISTRY/my-pods:v1",
    ] {
        assert!(out.contains(step), "next steps lack {step:?}:\n{out}");
    }
    assert!(
        !out.contains("krew-wasm push"),
        "promises a command that does not exist:\n{out}"
    );
    assert!(
        stderr(&output).is_empty(),
        "a checkout SDK needs no note:\n{}",
        stderr(&output)
    );

    let project = work.join("my-pods");
    let written: Vec<String> = snapshot(&project)
        .into_iter()
        .filter(|(_, digest)| digest != "dir")
        .map(|(path, _)| path)
        .collect();
    assert_eq!(written, PROJECT_FILES);
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).expect("Cargo.toml");
    assert!(
        manifest.contains("[package]\nname = \"my-pods\"\n"),
        "{manifest}"
    );
    let dependency = format!("krew-wasm-sdk = {{ path = \"{}\" }}", sdk_dir().display());
    assert!(manifest.contains(&dependency), "{manifest}");
    for (path, text) in PROJECT_FILES
        .iter()
        .map(|p| (p, std::fs::read_to_string(project.join(p)).expect("file")))
    {
        assert!(!text.contains("{{"), "{path} keeps a placeholder:\n{text}");
    }

    // The guest workspace's target directory: same toolchain, flags
    // (.cargo/config.toml) and release profile, so its compiled dependencies
    // are reused. Its lock file pins the versions that were compiled.
    let target_dir = repo_root().join("guest/target");
    let wasm = target_dir.join("wasm32-wasip2/release/my-pods.wasm");
    let _ = std::fs::remove_file(&wasm);
    std::fs::copy(
        repo_root().join("guest/Cargo.lock"),
        project.join("Cargo.lock"),
    )
    .expect("copying guest/Cargo.lock");
    let build_started = Instant::now();
    let build = Command::new("cargo")
        .current_dir(&project)
        .args(["build", "--release"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("running cargo");
    let build_time = build_started.elapsed();
    assert!(
        build.status.success(),
        "cargo build --release of the new project failed:\n{}",
        stderr(&build)
    );
    assert!(wasm.is_file(), "no {}", wasm.display());

    let server = KubeApiServer::start();
    let kube = sandbox.home().join(".kube");
    std::fs::create_dir_all(&kube).expect("~/.kube");
    std::fs::write(kube.join("config"), server.kubeconfig_with_token("test")).expect("kubeconfig");
    let pod = |namespace: &str, name: &str, phase: &str| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "main", "image": "nginx"}]},
            "status": {"phase": phase}
        })
    };
    server.apply(pod("default", "web-1", "Running"));
    server.apply(pod("default", "migrate-1", "Succeeded"));
    server.apply(pod("team", "api-1", "Pending"));

    let wasm_arg = wasm.to_str().expect("UTF-8 path");
    let lines = |out: String| -> Vec<Vec<String>> {
        out.lines()
            .map(|line| line.split_whitespace().map(str::to_string).collect())
            .collect()
    };
    let out = sandbox.ok(&["run", wasm_arg]);
    assert_eq!(
        lines(out),
        [["migrate-1", "Succeeded"], ["web-1", "Running"]],
        "the pods of the context's namespace (default)"
    );
    let out = sandbox.ok(&["run", wasm_arg, "--", "-n", "team"]);
    assert_eq!(lines(out), [["api-1", "Pending"]]);
    let out = sandbox.ok(&["run", wasm_arg, "--", "-n", "empty"]);
    assert_eq!(out, "No pods in namespace empty (context test).\n");

    eprintln!(
        "new_project_builds_and_lists_pods: fixtures {fixtures_done:.1?}, cargo build {build_time:.1?}, total {:.1?}",
        started.elapsed()
    );
}

/// Runs a `krew-wasm new` that must fail: exit code 1, a short error with
/// each of `expected`, and nothing written in `work`.
#[track_caller]
fn refused(sandbox: &Sandbox, work: &Path, args: &[&str], expected: &[&str]) {
    let before = snapshot(work);
    let output = krew_in(sandbox, work, args);
    let err = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "`krew-wasm {}` should fail with 1:\n{}{err}",
        args.join(" "),
        stdout(&output)
    );
    for phrase in expected {
        assert!(
            err.contains(phrase),
            "`krew-wasm {}`: error lacks {phrase:?}:\n{err}",
            args.join(" ")
        );
    }
    assert!(err.lines().count() <= 4, "error too long:\n{err}");
    assert_eq!(
        snapshot(work),
        before,
        "`krew-wasm {}` wrote something",
        args.join(" ")
    );
}

#[test]
fn bad_names_and_occupied_directories_are_refused() {
    let (sandbox, work) = workspace();
    std::fs::create_dir(work.join("taken")).expect("dir");
    std::fs::write(work.join("taken/notes.txt"), "mine\n").expect("file");
    std::fs::write(work.join("a-file"), "mine\n").expect("file");

    refused(
        &sandbox,
        &work,
        &["new", "My_Plugin"],
        &[
            "`My_Plugin` is not a valid plugin name",
            "lowercase letters, digits and inner dashes",
        ],
    );
    refused(
        &sandbox,
        &work,
        &["new", "get"],
        &["`get` is a built-in kubectl command", "choose another name"],
    );
    refused(
        &sandbox,
        &work,
        &["new", "taken"],
        &["taken already exists and is not empty", "--path DIR"],
    );
    refused(
        &sandbox,
        &work,
        &["new", "my-pods", "--path", "taken"],
        &["taken already exists and is not empty"],
    );
    refused(
        &sandbox,
        &work,
        &["new", "a-file"],
        &["a-file already exists and is not a directory"],
    );
    refused(
        &sandbox,
        &work,
        &["new", "2fa"],
        &[
            "cannot name the Cargo package",
            "starts with a digit",
            "--name 2fa",
        ],
    );
    refused(
        &sandbox,
        &work,
        &["new", "my-pods", "--sdk", "nowhere"],
        &["--sdk nowhere"],
    );
    refused(
        &sandbox,
        &work,
        &["new", "my-pods", "--sdk", "taken"],
        &["no krew-wasm-sdk there"],
    );
    refused(
        &sandbox,
        &work,
        &["new", "my-pods", "--path", "."],
        &["current directory"],
    );

    // An empty directory is not occupied; --sdk is written as an absolute path.
    std::fs::create_dir(work.join("empty")).expect("dir");
    let sdk = repo_root().join("guest/sdk");
    let output = krew_in(
        &sandbox,
        &work,
        &[
            "new",
            "my-pods",
            "--path",
            "empty",
            "--sdk",
            sdk.to_str().expect("UTF-8"),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("cd empty && cargo build --release"));
    let manifest = std::fs::read_to_string(work.join("empty/Cargo.toml")).expect("Cargo.toml");
    assert!(
        manifest.contains(&format!(
            "krew-wasm-sdk = {{ path = \"{}\" }}",
            sdk_dir().display()
        )),
        "{manifest}"
    );
    let leftovers: Vec<String> = snapshot(&work)
        .into_keys()
        .filter(|path| path.contains(".krew-wasm-new-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}
