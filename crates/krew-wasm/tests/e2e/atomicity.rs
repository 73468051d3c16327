//! A killed or interrupted pull leaves the store as it was; concurrent pulls
//! end in a consistent store.

use std::process::{Command, Stdio};
use std::time::Duration;

use test_support::{Artifact, Registry, StallingProxy, fixtures, pad_wasm, sha256_digest};

use crate::{Sandbox, hello_output, krew_wasm_exe, push_fixture, stdout};

/// A 2 MiB plugin behind a proxy that stalls after 256 KiB.
fn stalled_pull(sandbox: &Sandbox) -> (Registry, StallingProxy, std::process::Child, String) {
    let registry = Registry::start();
    let wasm = pad_wasm(
        &std::fs::read(fixtures().p2("hello")).unwrap(),
        2 * 1024 * 1024,
    );
    let digest = sha256_digest(&wasm);
    Artifact::wasm(wasm, "application/wasm").push(&registry, "big/hello:v1");
    let proxy = StallingProxy::start(registry.host(), 256 * 1024);
    let child = sandbox
        .command(krew_wasm_exe())
        .args([
            "pull",
            "--plain-http",
            &format!("{}/big/hello:v1", proxy.host()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    proxy.wait_until_stalled(Duration::from_secs(30));
    (registry, proxy, child, digest)
}

fn assert_nothing_installed(sandbox: &Sandbox, digest: &str) {
    let snapshot = sandbox.snapshot();
    for key in snapshot.keys() {
        assert!(
            !key.starts_with("receipts/")
                && !key.starts_with("bin/")
                && !key.starts_with("blobs/sha256/")
                && !key.starts_with("cache/"),
            "the interrupted pull left {key} in place: {snapshot:?}"
        );
        assert!(!key.contains(&digest[7..]), "{key}");
    }
}

#[test]
fn a_pull_killed_mid_download_leaves_nothing_in_place() {
    let sandbox = Sandbox::new();
    let (registry, _proxy, mut child, digest) = stalled_pull(&sandbox);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_nothing_installed(&sandbox, &digest);

    // The store still works, and the next change sweeps nothing it should keep.
    let (reference, _) = push_fixture(&registry, "hello", "plugins/hello:v1");
    sandbox.ok(&["pull", &reference]);
    assert_eq!(sandbox.list_json().len(), 1);
    sandbox.ok(&[
        "pull",
        &format!("{}/big/hello:v1", registry.host()),
        "--name",
        "big",
    ]);
    let out = sandbox
        .command(sandbox.bin().join("kubectl-hello"))
        .arg("after")
        .output()
        .unwrap();
    assert_eq!(stdout(&out), hello_output(&["after"]));
}

#[test]
fn ctrl_c_during_a_pull_cleans_up_and_exits_130() {
    let sandbox = Sandbox::new();
    let (_registry, _proxy, mut child, digest) = stalled_pull(&sandbox);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_nothing_installed(&sandbox, &digest);
    let tmp: Vec<_> = std::fs::read_dir(sandbox.root().join("tmp"))
        .map(|r| r.flatten().collect())
        .unwrap_or_default();
    assert!(tmp.is_empty(), "Ctrl-C left staged files: {tmp:?}");
}

#[test]
fn parallel_pulls_end_in_a_consistent_store() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let mut references = Vec::new();
    for (i, fixture) in ["hello", "exit-code", "sandbox-probe", "hello"]
        .iter()
        .enumerate()
    {
        references.push(push_fixture(&registry, fixture, &format!("parallel/p{i}:v1")).0);
    }
    // Four different plugins and three pulls of the same one, all at once.
    let mut args: Vec<Vec<String>> = references
        .iter()
        .map(|r| vec!["pull".into(), r.clone()])
        .collect();
    for _ in 0..3 {
        args.push(vec![
            "pull".into(),
            references[0].clone(),
            "--name".into(),
            "same".into(),
        ]);
    }
    let children: Vec<_> = args
        .iter()
        .map(|a| {
            sandbox
                .command(krew_wasm_exe())
                .args(a)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (child, a) in children.into_iter().zip(&args) {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{a:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let list = sandbox.list_json();
    let names: Vec<&str> = list.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["p0", "p1", "p2", "p3", "same"]);
    assert!(list.iter().all(|e| e["status"] == "ok"), "{list:?}");
    // Exactly one blob per distinct digest, no leftovers.
    let mut digests: Vec<String> = list
        .iter()
        .map(|e| e["digest"].as_str().unwrap()[7..].to_string())
        .collect();
    digests.sort();
    digests.dedup();
    let mut blobs: Vec<String> = std::fs::read_dir(sandbox.root().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    blobs.sort();
    assert_eq!(blobs, digests);
    let tmp: Vec<_> = std::fs::read_dir(sandbox.root().join("tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    for name in ["p0", "p3", "same"] {
        let out = sandbox
            .command(sandbox.bin().join(format!("kubectl-{name}")))
            .output()
            .unwrap();
        assert_eq!(stdout(&out), hello_output(&[]), "{name}");
    }
}
