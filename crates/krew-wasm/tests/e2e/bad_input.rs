//! Bad input: each case gets a clear error, exit code 1, and an untouched store.

use test_support::{Artifact, Registry, RegistryConfig, fixtures};

use crate::{Sandbox, push_fixture};

/// A sandbox with one plugin installed, so "untouched" means something.
fn installed() -> (Registry, Sandbox) {
    let registry = Registry::start();
    let (reference, _) = push_fixture(&registry, "hello", "plugins/hello:v1");
    let sandbox = Sandbox::new();
    sandbox.ok(&["pull", &reference]);
    (registry, sandbox)
}

/// Runs a failing command and checks the error names the problem and the
/// store did not change.
#[track_caller]
fn refused(sandbox: &Sandbox, args: &[&str], expected: &[&str]) {
    let before = sandbox.snapshot();
    let err = sandbox.fails(args);
    for phrase in expected {
        assert!(
            err.contains(phrase),
            "`krew-wasm {}`: error lacks {phrase:?}:\n{err}",
            args.join(" ")
        );
    }
    assert!(err.lines().count() <= 4, "error too long:\n{err}");
    assert_eq!(
        sandbox.snapshot(),
        before,
        "`krew-wasm {}` changed the store",
        args.join(" ")
    );
}

#[test]
fn malformed_references() {
    let (_registry, sandbox) = installed();
    refused(
        &sandbox,
        &["pull", "hello"],
        &["no registry host", "ghcr.io/org/hello:v1"],
    );
    refused(&sandbox, &["pull", "org/hello:v1"], &["no registry host"]);
    refused(
        &sandbox,
        &["pull", "ghcr.io/Org/Hello:v1"],
        &["not a valid OCI reference"],
    );
    refused(
        &sandbox,
        &["pull", "ghcr.io/org/hello@sha256:1234"],
        &["unsupported digest", "64"],
    );
    refused(
        &sandbox,
        &["pull", "https://ghcr.io/org/hello:v1"],
        &["registry://", "oci://"],
    );
    refused(&sandbox, &["pull", ""], &["empty reference"]);
}

#[test]
fn unreachable_and_unknown_registries() {
    let (_registry, sandbox) = installed();
    // Nothing listens on port 1 of the loopback interface.
    refused(
        &sandbox,
        &["pull", "127.0.0.1:1/plugins/other:v1"],
        &["cannot reach registry 127.0.0.1:1", "Connection refused"],
    );
    // A host name the resolver rejects before sending any query (a DNS label
    // is at most 63 bytes), so the test never leaves the machine (checked
    // with strace: no packet is sent). Over plain HTTP it goes through the
    // system resolver; over TLS it is refused as a server name first.
    let unknown = format!("{}.example:5000/plugins/other:v1", "x".repeat(64));
    refused(
        &sandbox,
        &["pull", "--plain-http", &unknown],
        &[
            "cannot reach registry",
            "lookup address",
            "check the host name",
        ],
    );
    refused(
        &sandbox,
        &["pull", &unknown],
        &[
            "cannot reach registry",
            "invalid dns name",
            "check the host name",
        ],
    );
}

#[test]
fn registry_errors() {
    let (registry, sandbox) = installed();
    let host = registry.host();
    refused(
        &sandbox,
        &[
            "pull",
            &format!("{host}/plugins/hello:v2"),
            "--name",
            "other",
        ],
        &["was not found", "check the repository and tag"],
    );
    refused(
        &sandbox,
        &["pull", &format!("{host}/plugins/nothing:v1")],
        &["was not found"],
    );

    let auth_registry = Registry::start_with(RegistryConfig {
        tls: None,
        basic_auth: Some(("u", "p")),
        ..Default::default()
    });
    refused(
        &sandbox,
        &[
            "pull",
            &format!("{}/plugins/other:v1", auth_registry.host()),
        ],
        &["401", "docker login"],
    );
}

#[test]
fn artifacts_that_are_not_plugins() {
    let (registry, sandbox) = installed();
    let host = registry.host();
    let hello = std::fs::read(fixtures().p2("hello")).unwrap();

    let container = Artifact::container_image();
    container.push(&registry, "bad/container:v1");
    refused(
        &sandbox,
        &["pull", &format!("{host}/bad/container:v1")],
        &[
            "no WebAssembly layer",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ],
    );

    let mut two = Artifact::wasm(hello.clone(), "application/wasm");
    two.layers.push((
        "application/wasm".into(),
        std::fs::read(fixtures().p1("hello")).unwrap(),
    ));
    two.push(&registry, "bad/two:v1");
    refused(
        &sandbox,
        &["pull", &format!("{host}/bad/two:v1")],
        &["2 WebAssembly layers", "exactly one"],
    );

    Artifact::wasm(b"#!/bin/sh\necho not wasm\n".to_vec(), "application/wasm")
        .push(&registry, "bad/script:v1");
    refused(
        &sandbox,
        &["pull", &format!("{host}/bad/script:v1")],
        &["not WebAssembly", "wasm magic"],
    );

    // Valid wasm, but a library: no `_start`, nothing to run.
    Artifact::wasm(b"\0asm\x01\0\0\0".to_vec(), "application/wasm")
        .push(&registry, "bad/library:v1");
    refused(
        &sandbox,
        &["pull", &format!("{host}/bad/library:v1")],
        &["not a runnable plugin", "_start"],
    );
}

#[test]
fn registries_that_serve_other_bytes() {
    let (registry, sandbox) = installed();
    let host = registry.host();
    let wasm = std::fs::read(fixtures().p1("exit-code")).unwrap();
    let digest = test_support::sha256_digest(&wasm);
    Artifact::wasm(wasm.clone(), "application/wasm").push(&registry, "evil/tampered:v1");
    let data = registry.blob_data_path(&digest);

    // Same length, other content: only the digest can tell.
    let mut tampered = wasm.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    std::fs::write(&data, &tampered).unwrap();
    refused(
        &sandbox,
        &["pull", &format!("{host}/evil/tampered:v1")],
        &["digest mismatch", &digest],
    );

    // Half the bytes: a truncated download.
    std::fs::write(&data, &wasm[..wasm.len() / 2]).unwrap();
    refused(
        &sandbox,
        &["pull", &format!("{host}/evil/tampered:v1")],
        &["cut short", &format!("of {} bytes", wasm.len())],
    );
}

#[test]
fn bad_names() {
    let (registry, sandbox) = installed();
    let host = registry.host();
    let hello = format!("{host}/plugins/hello:v1");
    refused(
        &sandbox,
        &["pull", &hello, "--name", "Bad_Name"],
        &["not a valid plugin name", "[a-z0-9]"],
    );
    refused(
        &sandbox,
        &["pull", &hello, "--name", "logs"],
        &["built-in kubectl command", "kubectl logs"],
    );
    // A derived name that is invalid says how to pass --name.
    push_fixture(&registry, "hello", "plugins/hello_world:v1");
    refused(
        &sandbox,
        &["pull", &format!("{host}/plugins/hello_world:v1")],
        &["hello_world", "--name NAME"],
    );
    push_fixture(&registry, "hello", "plugins/get:v1");
    refused(
        &sandbox,
        &["pull", &format!("{host}/plugins/get:v1")],
        &["built-in kubectl command", "--name NAME"],
    );
    // Another plugin under an installed name.
    let (exit_code, _) = push_fixture(&registry, "exit-code", "plugins/exit-code:v1");
    refused(
        &sandbox,
        &["pull", &exit_code, "--name", "hello"],
        &["`hello` is already installed", "--force", "--name NAME"],
    );
}

#[test]
fn removing_unknown_plugins() {
    let (_registry, sandbox) = installed();
    refused(
        &sandbox,
        &["rm", "nope"],
        &["no plugin named `nope` is installed", "krew-wasm list"],
    );
    // Nothing is removed when one of several names is unknown.
    refused(&sandbox, &["rm", "hello", "nope"], &["`nope`"]);
    refused(&sandbox, &["info", "nope"], &["no plugin named `nope`"]);
    // Names never become paths: a receipt-shaped file outside the store stays.
    let victim = sandbox.home().join("victim.json");
    std::fs::write(&victim, br#"{"name":"victim"}"#).unwrap();
    let traversal = "../../home/victim"; // receipts/../../home/victim.json
    refused(&sandbox, &["rm", traversal], &["no plugin named"]);
    refused(&sandbox, &["info", traversal], &["no plugin named"]);
    assert!(victim.exists());
}
