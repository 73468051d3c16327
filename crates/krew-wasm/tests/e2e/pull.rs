//! pull, list, info, rm: the install life cycle against a real registry.

use test_support::{Artifact, Registry, fixtures, sha256_digest};

use crate::{Sandbox, hello_output, push_fixture, stderr, stdout};

#[test]
fn pull_by_tag_then_list_info_run_and_rm() {
    let registry = Registry::start();
    let (reference, digest) = push_fixture(&registry, "hello", "plugins/hello:v1");
    let sandbox = Sandbox::new();

    let output = sandbox.krew(&["pull", &reference]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains("installed hello from") && out.contains("kubectl hello"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    // Piped, with bin on PATH: no progress bar, no hint, nothing on stderr.
    assert_eq!(stderr(&output), "");

    let list = sandbox.list_json();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "hello");
    assert_eq!(list[0]["reference"], reference);
    assert_eq!(list[0]["digest"], digest);
    assert_eq!(list[0]["kind"], "p2");
    assert_eq!(list[0]["status"], "ok");
    assert_eq!(list[0]["pinned"], false);
    let table = sandbox.ok(&["ls"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("p2 component") && table.contains(&digest[..19]),
        "{table}"
    );

    let info = sandbox.ok(&["info", "hello"]);
    for expected in [
        reference.as_str(),
        digest.as_str(),
        "application/wasm",
        "p2 component",
        "Pinned:          no",
    ] {
        assert!(info.contains(expected), "info lacks {expected}:\n{info}");
    }
    assert!(
        !info.contains("BROKEN") && !info.contains("missing"),
        "{info}"
    );

    // The link runs the plugin, whatever directory it is started from.
    let link = sandbox.bin().join("kubectl-hello");
    let target = std::fs::read_link(&link).expect("link");
    assert!(
        target.is_relative(),
        "link target {target:?} should be relative"
    );
    let output = sandbox
        .command(&link)
        .args(["a", "b"])
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(
        stdout(&output),
        hello_output(&["a", "b"]),
        "{}",
        stderr(&output)
    );

    let out = sandbox.ok(&["rm", "hello"]);
    assert!(out.contains("removed hello"), "{out}");
    assert!(!link.exists() && std::fs::symlink_metadata(&link).is_err());
    assert!(sandbox.list_json().is_empty());
    let snapshot = sandbox.snapshot();
    assert!(
        snapshot.keys().all(|k| !k.starts_with("blobs/sha256/")
            && !k.starts_with("receipts/")
            && !k.ends_with(".cwasm")),
        "rm left files behind: {snapshot:?}"
    );
}

#[test]
fn pull_by_digest_pins_the_plugin() {
    let registry = Registry::start();
    let wasm = std::fs::read(fixtures().p1("hello")).unwrap();
    let manifest_digest =
        Artifact::wasm(wasm, "application/wasm").push(&registry, "plugins/hello:v1");
    let sandbox = Sandbox::new();
    let reference = format!("oci://{}/plugins/hello@{manifest_digest}", registry.host());
    sandbox.ok(&["install", &reference]);
    let list = sandbox.list_json();
    assert_eq!(list[0]["pinned"], true);
    assert_eq!(list[0]["kind"], "p1");
    assert_eq!(
        list[0]["reference"],
        format!("{}/plugins/hello@{manifest_digest}", registry.host())
    );
    assert!(
        sandbox
            .ok(&["info", "hello"])
            .contains("yes (installed by digest)")
    );
    let output = sandbox
        .command(sandbox.bin().join("kubectl-hello"))
        .arg("pinned")
        .output()
        .unwrap();
    assert_eq!(stdout(&output), hello_output(&["pinned"]));
}

#[test]
fn re_pull_is_a_no_op_a_moved_tag_updates_and_force_replaces() {
    let registry = Registry::start();
    let (reference, hello_digest) = push_fixture(&registry, "hello", "plugins/tool:v1");
    let sandbox = Sandbox::new();
    sandbox.ok(&["pull", &reference]);
    let before = sandbox.snapshot();
    let out = sandbox.ok(&["pull", &reference]);
    assert!(out.contains("already installed and up to date"), "{out}");
    assert_eq!(sandbox.snapshot(), before, "a no-op pull changed the store");

    // The tag moves: pulling it again installs the new version, and keeps
    // the old one for `rollback`.
    let (_, exit_digest) = push_fixture(&registry, "exit-code", "plugins/tool:v1");
    let out = sandbox.ok(&["pull", &reference]);
    assert!(out.contains("updated tool"), "{out}");
    let list = sandbox.list_json();
    assert_eq!(list[0]["digest"], exit_digest);
    let output = sandbox
        .command(sandbox.bin().join("kubectl-tool"))
        .arg("5")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(5));
    let hello_blob = sandbox.root().join("blobs/sha256").join(&hello_digest[7..]);
    assert!(hello_blob.is_file(), "the previous version was not kept");

    // Another repository under an installed name: replacing needs --force.
    let (other, other_digest) = push_fixture(&registry, "sandbox-probe", "elsewhere/tool:v1");
    let before = sandbox.snapshot();
    let err = sandbox.fails(&["pull", &other]);
    assert!(
        err.contains("already installed") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(sandbox.snapshot(), before);
    let out = sandbox.ok(&["pull", "--force", &other]);
    assert!(out.contains("replaced tool"), "{out}");
    assert_eq!(sandbox.list_json()[0]["digest"], other_digest);
    // One previous version is kept: the first one is no longer referenced.
    assert!(!hello_blob.exists());
}

#[test]
fn names_are_derived_from_the_repository_or_given() {
    let registry = Registry::start();
    let (reference, _) = push_fixture(&registry, "hello", "team/kubectl-foo-bar.wasm:1.0");
    let sandbox = Sandbox::new();
    let out = sandbox.ok(&["pull", &reference]);
    assert!(out.contains("installed foo-bar"), "{out}");
    assert!(sandbox.bin().join("kubectl-foo_bar").exists());

    sandbox.ok(&["pull", &reference, "--name", "greeter"]);
    let names: Vec<String> = sandbox
        .list_json()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["foo-bar", "greeter"]);
}

#[test]
fn shared_blobs_stay_until_the_last_user_is_removed() {
    let registry = Registry::start();
    let (reference, digest) = push_fixture(&registry, "hello", "plugins/hello:v1");
    let sandbox = Sandbox::new();
    sandbox.ok(&["pull", &reference, "--name", "one"]);
    sandbox.ok(&["pull", &reference, "--name", "two"]);
    let blob = sandbox.root().join("blobs/sha256").join(&digest[7..]);
    sandbox.ok(&["rm", "one"]);
    assert!(blob.is_file(), "blob removed while `two` uses it");
    let output = sandbox
        .command(sandbox.bin().join("kubectl-two"))
        .output()
        .unwrap();
    assert!(output.status.success());
    sandbox.ok(&["uninstall", "two"]);
    assert!(!blob.exists());
}

#[test]
fn broken_entries_are_marked_and_explained() {
    let registry = Registry::start();
    let (reference, digest) = push_fixture(&registry, "hello", "plugins/hello:v1");
    let sandbox = Sandbox::new();
    sandbox.ok(&["pull", &reference]);
    let blob = sandbox.root().join("blobs/sha256").join(&digest[7..]);
    std::fs::remove_file(&blob).unwrap();
    let list = sandbox.list_json();
    assert_eq!(list[0]["status"], "broken");
    assert_eq!(list[0]["problems"][0], "blob missing");
    assert!(sandbox.ok(&["list"]).contains("BROKEN: blob missing"));

    // It still runs from the precompiled artifact; without that too, the
    // error says how to repair it.
    let cache = sandbox.root().join("cache");
    std::fs::remove_dir_all(&cache).unwrap();
    let output = sandbox
        .command(sandbox.bin().join("kubectl-hello"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!("krew-wasm pull --force {reference}")),
        "{}",
        stderr(&output)
    );

    std::fs::remove_file(sandbox.bin().join("kubectl-hello")).unwrap();
    assert!(sandbox.ok(&["list"]).contains("link missing"));
    sandbox.ok(&["pull", "--force", &reference]);
    assert_eq!(sandbox.list_json()[0]["status"], "ok");
}

/// A run with a timeout uses the engine with epoch checks compiled in: its
/// first run compiles the plugin for it into a second cache directory, which
/// the next pull (which collects other engines' caches) keeps.
#[test]
fn a_run_with_a_timeout_has_its_own_artifact_and_pull_keeps_it() {
    let registry = Registry::start();
    let (hello, digest) = push_fixture(&registry, "hello", "plugins/hello:v1");
    let (exit_code, _) = push_fixture(&registry, "exit-code", "plugins/exit-code:v1");
    let sandbox = Sandbox::new();
    sandbox.ok(&["pull", &hello]);
    let version = sandbox.ok(&["version"]);
    let engines: Vec<String> = version
        .lines()
        .find_map(|line| line.strip_prefix("engine "))
        .map(|rest| {
            rest.split(|c: char| !c.is_ascii_hexdigit())
                .filter(|word| word.len() == 16)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(engines.len(), 2, "two engine hashes in {version}");
    let artifact = |engine: &str| {
        sandbox
            .root()
            .join("cache")
            .join(engine)
            .join(format!("{}.cwasm", &digest[7..]))
    };
    assert!(
        artifact(&engines[0]).is_file(),
        "pull compiles for runs without a timeout"
    );
    assert!(!artifact(&engines[1]).exists(), "and only for those");

    let output = sandbox
        .command(sandbox.bin().join("kubectl-hello"))
        .arg("x")
        .env("KREW_WASM_TIMEOUT", "30s")
        .output()
        .unwrap();
    assert_eq!(stdout(&output), hello_output(&["x"]), "{}", stderr(&output));
    assert!(
        artifact(&engines[1]).is_file(),
        "the timed run cached its artifact"
    );

    std::fs::create_dir_all(sandbox.root().join("cache/0123456789abcdef")).unwrap();
    sandbox.ok(&["pull", &exit_code]);
    assert!(artifact(&engines[0]).is_file() && artifact(&engines[1]).is_file());
    assert!(
        !sandbox.root().join("cache/0123456789abcdef").exists(),
        "another engine's cache is collected"
    );
}

#[test]
fn missing_or_stale_precompiled_artifacts_are_rebuilt() {
    let registry = Registry::start();
    let (reference, digest) = push_fixture(&registry, "hello", "plugins/hello:v1");
    let sandbox = Sandbox::new();
    sandbox.ok(&["pull", &reference]);
    let artifact = walk_find(
        &sandbox.root().join("cache"),
        &format!("{}.cwasm", &digest[7..]),
    )
    .expect("precompiled at pull");
    let run = || {
        sandbox
            .command(sandbox.bin().join("kubectl-hello"))
            .arg("x")
            .output()
            .unwrap()
    };

    std::fs::write(&artifact, b"garbage, as if written by another engine").unwrap();
    let output = run();
    assert_eq!(stdout(&output), hello_output(&["x"]), "{}", stderr(&output));
    assert!(
        std::fs::read(&artifact).unwrap().starts_with(b"\x7fELF"),
        "stale artifact not replaced"
    );

    std::fs::remove_file(&artifact).unwrap();
    assert_eq!(stdout(&run()), hello_output(&["x"]));
    assert!(artifact.is_file(), "missing artifact not rebuilt");
    // The blob itself is checked before recompiling from it.
    let blob = sandbox.root().join("blobs/sha256").join(&digest[7..]);
    std::fs::remove_file(&artifact).unwrap();
    let mut perms = std::fs::metadata(&blob).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&blob, perms).unwrap();
    let mut tampered = std::fs::read(&blob).unwrap();
    tampered.push(0);
    std::fs::write(&blob, &tampered).unwrap();
    assert_ne!(sha256_digest(&tampered), digest);
    let output = run();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("corrupt") && err.contains("krew-wasm pull --force"),
        "{err}"
    );
    // The repair the message gives works: the blob is downloaded again.
    assert_eq!(sandbox.list_json()[0]["problems"][0], "blob corrupt");
    let out = sandbox.ok(&["pull", "--force", &reference]);
    assert!(out.contains("repaired hello"), "{out}");
    assert_eq!(stdout(&run()), hello_output(&["x"]));
    assert_eq!(sha256_digest(&std::fs::read(&blob).unwrap()), digest);
    // Without --force too: same source and digest, damaged, so it is repaired.
    std::fs::remove_file(sandbox.bin().join("kubectl-hello")).unwrap();
    let out = sandbox.ok(&["pull", &reference]);
    assert!(out.contains("repaired hello"), "{out}");
}

#[test]
fn the_plugin_sees_its_name_not_the_host_path() {
    let registry = Registry::start();
    let (reference, _) = push_fixture(&registry, "sandbox-probe", "plugins/probe:v1");
    let sandbox = Sandbox::new();
    sandbox.ok(&["pull", &reference]);
    let link = sandbox.bin().join("kubectl-probe");
    assert!(link.is_absolute());
    let output = sandbox.command(&link).output().unwrap();
    assert!(
        stdout(&output).starts_with("arg0 kubectl-probe\n"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn path_hint_only_when_bin_is_not_on_path() {
    let registry = Registry::start();
    let (reference, _) = push_fixture(&registry, "hello", "plugins/hello:v1");
    let sandbox = Sandbox::new();
    let output = sandbox
        .command(crate::krew_wasm_exe())
        .args(["pull", &reference])
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(output.status.success());
    let err = stderr(&output);
    let line = format!("export PATH=\"{}:$PATH\"", sandbox.bin().display());
    assert!(
        err.contains("is not on your PATH") && err.contains(&line),
        "{err}"
    );
    let output = sandbox
        .command(crate::krew_wasm_exe())
        .args(["rm", "hello"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        !stderr(&output).contains("not on your PATH"),
        "{}",
        stderr(&output)
    );
}

fn walk_find(dir: &std::path::Path, file_name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = walk_find(&path, file_name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|f| f == file_name) {
            return Some(path);
        }
    }
    None
}
