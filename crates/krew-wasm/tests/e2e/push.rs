//! push: what `krew-wasm push` writes, independent tools (skopeo) read, and
//! `krew-wasm pull` installs; bad input is refused before the registry is
//! touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use test_support::{
    Registry, RegistryConfig, TestCa, fixtures, sha256_digest, with_custom_section,
};

use crate::{Sandbox, hello_output, stderr, stdout};

/// How skopeo reaches a test registry.
struct SkopeoAccess {
    flags: Vec<String>,
}

impl SkopeoAccess {
    fn plain() -> Self {
        Self {
            flags: vec!["--tls-verify=false".into()],
        }
    }

    fn secured(cert_dir: &Path, creds: &str) -> Self {
        Self {
            flags: vec![
                format!("--cert-dir={}", cert_dir.display()),
                format!("--creds={creds}"),
            ],
        }
    }

    /// The same access for `skopeo copy`'s source side.
    fn as_source(&self) -> Vec<String> {
        self.flags
            .iter()
            .map(|f| f.replacen("--", "--src-", 1))
            .collect()
    }
}

fn skopeo(args: &[&str]) -> Output {
    Command::new(test_support::require_tool("skopeo"))
        .args(args)
        .output()
        .expect("running skopeo")
}

/// `skopeo inspect --raw [--config]`: the bytes the registry serves.
#[track_caller]
fn inspect(access: &SkopeoAccess, reference: &str, config: bool) -> Vec<u8> {
    let image = format!("docker://{reference}");
    let mut args = vec!["inspect", "--raw"];
    if config {
        args.push("--config");
    }
    args.extend(access.flags.iter().map(String::as_str));
    args.push(&image);
    let output = skopeo(&args);
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        stderr(&output)
    );
    output.stdout
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

/// Pushes, asserts success, returns the one line of stdout (the digest).
#[track_caller]
fn push_ok(sandbox: &Sandbox, args: &[&str]) -> String {
    let mut all = vec!["push"];
    all.extend_from_slice(args);
    let output = sandbox.krew(&all);
    assert!(
        output.status.success(),
        "krew-wasm {all:?} failed: {}",
        stderr(&output)
    );
    // Piped: nothing but the digest, no progress bar, no summary.
    assert_eq!(stderr(&output), "", "{all:?}");
    let out = stdout(&output);
    let digest = out.trim_end().to_string();
    assert_eq!(out, format!("{digest}\n"), "stdout is the digest alone");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    digest
}

fn write_file(sandbox: &Sandbox, name: &str, bytes: &[u8]) -> PathBuf {
    let path = sandbox.home().join(name);
    std::fs::write(&path, bytes).expect("writing a test file");
    path
}

#[test]
fn pushed_components_and_modules_read_back_with_skopeo_and_install_with_pull() {
    let registry = Registry::start();
    let host = registry.host();
    let sandbox = Sandbox::new();
    let access = SkopeoAccess::plain();
    let p2_path = fixtures().p2("hello");
    let p2 = std::fs::read(&p2_path).unwrap();
    let reference = format!("{host}/plugins/hello:v1");

    let digest = push_ok(
        &sandbox,
        &[
            p2_path.to_str().unwrap(),
            &reference,
            "--description",
            "Says hello",
            "--source",
            "https://github.com/krew-wasm/krew-wasm",
            "--version",
            "1.0.0",
            "--licenses",
            "Apache-2.0",
            "--annotation",
            "com.example.team=platform",
        ],
    );

    // The manifest, as the registry serves it, is the one whose digest was printed.
    let raw = inspect(&access, &reference, false);
    assert_eq!(sha256_digest(&raw), digest);
    let manifest = json(&raw);
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    assert_eq!(layers[0]["digest"], sha256_digest(&p2));
    assert_eq!(layers[0]["size"], p2.len());
    let annotations = &manifest["annotations"];
    assert_eq!(
        annotations["org.opencontainers.image.description"],
        "Says hello"
    );
    assert_eq!(
        annotations["org.opencontainers.image.source"],
        "https://github.com/krew-wasm/krew-wasm"
    );
    assert_eq!(annotations["org.opencontainers.image.version"], "1.0.0");
    assert_eq!(
        annotations["org.opencontainers.image.licenses"],
        "Apache-2.0"
    );
    assert_eq!(annotations["com.example.team"], "platform");
    let created = annotations["org.opencontainers.image.created"]
        .as_str()
        .expect("created");
    humantime::parse_rfc3339(created).expect("created is RFC 3339");
    // No declaration in the binary, none given: no permissions annotation.
    assert!(
        annotations.get("dev.krew-wasm.permissions").is_none(),
        "{annotations}"
    );

    let config_raw = inspect(&access, &reference, true);
    assert_eq!(sha256_digest(&config_raw), manifest["config"]["digest"]);
    let config = json(&config_raw);
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip2");
    assert_eq!(config["created"], created);
    assert_eq!(
        config["layerDigests"],
        serde_json::json!([sha256_digest(&p2)])
    );
    let names = |key: &str| -> Vec<String> {
        config["component"][key]
            .as_array()
            .unwrap_or_else(|| panic!("component.{key} in {config}"))
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert!(
        names("exports")
            .iter()
            .any(|e| e.starts_with("wasi:cli/run@0.2")),
        "{config}"
    );
    assert!(
        names("imports")
            .iter()
            .any(|i| i.starts_with("wasi:cli/stdout@0.2")),
        "{config}"
    );

    // skopeo copies it out into an OCI layout, byte for byte.
    let layout = sandbox.home().join("layout");
    let mut args = vec![
        "copy".to_string(),
        "--quiet".into(),
        "--insecure-policy".into(),
    ];
    args.extend(access.as_source());
    args.push(format!("docker://{reference}"));
    args.push(format!("oci:{}:v1", layout.display()));
    let output = skopeo(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(output.status.success(), "skopeo copy: {}", stderr(&output));
    let hex = sha256_digest(&p2).trim_start_matches("sha256:").to_string();
    assert_eq!(
        std::fs::read(layout.join("blobs/sha256").join(&hex)).expect("layer in the layout"),
        p2
    );

    // krew-wasm pull installs it, and kubectl's way of running it works.
    sandbox.ok(&["pull", &reference]);
    let list = sandbox.list_json();
    assert_eq!(list[0]["kind"], "p2");
    assert_eq!(list[0]["digest"], sha256_digest(&p2));
    let output = sandbox
        .command(sandbox.bin().join("kubectl-hello"))
        .arg("pushed")
        .output()
        .unwrap();
    assert_eq!(
        stdout(&output),
        hello_output(&["pushed"]),
        "{}",
        stderr(&output)
    );

    // A core module is a wasip1 artifact without component metadata.
    let p1_path = fixtures().p1("hello");
    let p1 = std::fs::read(&p1_path).unwrap();
    let p1_reference = format!("{host}/plugins/hello1:v1");
    push_ok(&sandbox, &[p1_path.to_str().unwrap(), &p1_reference]);
    let config = json(&inspect(&access, &p1_reference, true));
    assert_eq!(config["os"], "wasip1");
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(
        config["layerDigests"],
        serde_json::json!([sha256_digest(&p1)])
    );
    assert!(config.get("component").is_none(), "{config}");
    sandbox.ok(&["pull", &p1_reference]);
    assert_eq!(sandbox.list_json()[1]["kind"], "p1");
    let output = sandbox
        .command(sandbox.bin().join("kubectl-hello1"))
        .arg("p1")
        .output()
        .unwrap();
    assert_eq!(
        stdout(&output),
        hello_output(&["p1"]),
        "{}",
        stderr(&output)
    );
    let run = sandbox.ok(&["run", &p1_reference, "--", "ran"]);
    assert_eq!(run, hello_output(&["ran"]));

    // The layer is in the repository already: a second tag reuses it.
    let v2 = format!("{host}/plugins/hello:v2");
    push_ok(&sandbox, &[p2_path.to_str().unwrap(), &v2]);
    let manifest = json(&inspect(&access, &v2, false));
    assert_eq!(manifest["layers"][0]["digest"], sha256_digest(&p2));
}

#[test]
fn the_permission_declaration_is_published_as_an_annotation() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let access = SkopeoAccess::plain();
    let p2 = std::fs::read(fixtures().p2("hello")).unwrap();
    let declared = with_custom_section(
        &p2,
        "krew-wasm.permissions",
        br#"{"version":1,"env":["AWS_PROFILE"],"hosts":["https://api.github.com"]}"#,
    );
    let file = write_file(&sandbox, "declared.wasm", &declared);
    let annotation = |reference: &str| -> Value {
        let manifest = json(&inspect(&access, reference, false));
        let text = manifest["annotations"]["dev.krew-wasm.permissions"]
            .as_str()
            .unwrap_or_else(|| panic!("no permissions annotation: {manifest}"))
            .to_string();
        json(text.as_bytes())
    };

    // From the binary's custom section.
    let reference = format!("{}/plugins/declared:v1", registry.host());
    push_ok(&sandbox, &[file.to_str().unwrap(), &reference]);
    assert_eq!(
        annotation(&reference),
        serde_json::json!({"version": 1, "env": ["AWS_PROFILE"], "hosts": ["https://api.github.com"]})
    );

    // --permissions replaces it.
    let declaration = write_file(
        &sandbox,
        "permissions.json",
        b"{\n  \"version\": 1,\n  \"dirs\": [{\"path\": \".\", \"access\": \"read-only\"}],\n  \"memory\": \"1GiB\"\n}\n",
    );
    let reference = format!("{}/plugins/declared:v2", registry.host());
    push_ok(
        &sandbox,
        &[
            file.to_str().unwrap(),
            &reference,
            "--permissions",
            declaration.to_str().unwrap(),
        ],
    );
    let published = annotation(&reference);
    assert_eq!(published["version"], 1);
    assert_eq!(published["dirs"][0]["path"], ".");
    assert_eq!(published["dirs"][0]["access"], "read-only");
    assert!(published.get("env").is_none(), "{published}");
    assert!(published.get("memory").is_some(), "{published}");
}

/// The repositories a plain registry holds.
fn catalog(registry: &Registry) -> Value {
    let output = Command::new(test_support::require_tool("curl"))
        .args(["-sS", "--fail"])
        .arg(format!("http://{}/v2/_catalog", registry.host()))
        .output()
        .expect("running curl");
    assert!(output.status.success(), "{}", stderr(&output));
    json(&output.stdout)
}

#[test]
fn bad_input_is_refused_with_nothing_written() {
    let registry = Registry::start();
    let host = registry.host();
    let sandbox = Sandbox::new();
    let p2_path = fixtures().p2("hello");
    let p2 = std::fs::read(&p2_path).unwrap();
    let wasm = p2_path.to_str().unwrap();
    let script = write_file(&sandbox, "plugin.wasm", b"#!/bin/sh\necho hello\n");
    let truncated = write_file(&sandbox, "truncated.wasm", &p2[..p2.len() / 2]);
    let bad_permissions = write_file(
        &sandbox,
        "bad.json",
        b"{\n  \"version\": 1,\n  \"hostz\": [\"https://api.github.com\"]\n}\n",
    );
    let reference = format!("{host}/plugins/hello:v1");
    let digest = format!("sha256:{}", "a".repeat(64));
    let suggested = format!("`{host}/plugins/hello:v1`");

    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec![script.display().to_string(), reference.clone()],
            vec!["not a WebAssembly binary", "wasm magic"],
        ),
        (
            vec![truncated.display().to_string(), reference.clone()],
            vec!["not a valid WebAssembly binary"],
        ),
        (
            vec![wasm.into(), format!("{host}/plugins/hello")],
            vec!["has no tag", ":TAG", &suggested],
        ),
        (
            vec![wasm.into(), format!("{host}/plugins/hello@{digest}")],
            vec!["cannot target a digest", ":TAG"],
        ),
        (
            vec![
                wasm.into(),
                reference.clone(),
                "--permissions".into(),
                bad_permissions.display().to_string(),
            ],
            vec!["--permissions", "bad.json", "line 3", "hostz"],
        ),
        (
            vec![
                wasm.into(),
                reference.clone(),
                "--annotation".into(),
                "no-value".into(),
            ],
            vec!["invalid annotation `no-value`", "KEY=VALUE"],
        ),
        (
            vec![
                sandbox.home().join("missing.wasm").display().to_string(),
                reference.clone(),
            ],
            vec!["reading", "missing.wasm"],
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["push"];
        all.extend(args.iter().map(String::as_str));
        let err = sandbox.fails(&all);
        for text in expected {
            assert!(err.contains(text), "{all:?}: `{text}` not in: {err}");
        }
        assert_eq!(err.lines().count(), 1, "{all:?}: one line of error: {err}");
    }

    // Nothing reached the registry.
    assert_eq!(catalog(&registry), serde_json::json!({"repositories": []}));
    let output = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    assert!(!output.status.success(), "{}", stdout(&output));
    // Nor the store.
    assert!(sandbox.snapshot().is_empty(), "{:?}", sandbox.snapshot());
}

fn write_docker_config(sandbox: &Sandbox, host: &str, user: &str, password: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let dir = sandbox.home().join(".docker");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
}

#[test]
fn push_over_tls_with_basic_auth_as_pull_does() {
    let ca = TestCa::new();
    let registry = Registry::start_with(RegistryConfig {
        tls: Some(&ca),
        basic_auth: Some(("alice", "s3cret")),
        ..Default::default()
    });
    let sandbox = Sandbox::new();
    let cert_dir = sandbox.home().join("certs");
    let ca_file = registry.write_ca(&cert_dir);
    let ca = ca_file.to_str().unwrap();
    let p2_path = fixtures().p2("hello");
    let wasm = p2_path.to_str().unwrap();
    let reference = format!("{}/private/hello:v1", registry.host());
    let access = SkopeoAccess::secured(&cert_dir, "alice:s3cret");

    // Without the CA: TLS fails and says how to fix it.
    let err = sandbox.fails(&["push", wasm, &reference]);
    assert!(
        err.contains("not trusted") && err.contains("--ca-file"),
        "{err}"
    );
    // Without credentials: 401, and how to log in.
    let err = sandbox.fails(&["push", wasm, &reference, "--ca-file", ca]);
    assert!(
        err.contains("401")
            && err.contains(&format!("docker login {}", registry.host()))
            && err.contains("no credential is stored"),
        "{err}"
    );
    // With a wrong password from docker's config.
    write_docker_config(&sandbox, registry.host(), "alice", "wrong");
    let err = sandbox.fails(&["push", wasm, &reference, "--ca-file", ca]);
    assert!(
        err.contains("401") && err.contains("docker's config.json"),
        "{err}"
    );
    let image = format!("docker://{reference}");
    let mut args = vec!["inspect", "--raw"];
    args.extend(access.flags.iter().map(String::as_str));
    args.push(&image);
    assert!(
        !skopeo(&args).status.success(),
        "a refused push left a manifest"
    );

    write_docker_config(&sandbox, registry.host(), "alice", "s3cret");
    let digest = push_ok(&sandbox, &[wasm, &reference, "--ca-file", ca]);
    let raw = inspect(&access, &reference, false);
    assert_eq!(sha256_digest(&raw), digest);
    assert_eq!(json(&raw)["layers"][0]["mediaType"], "application/wasm");

    sandbox.ok(&["pull", &reference, "--ca-file", ca]);
    let output = sandbox
        .command(sandbox.bin().join("kubectl-hello"))
        .arg("tls")
        .output()
        .unwrap();
    assert_eq!(
        stdout(&output),
        hello_output(&["tls"]),
        "{}",
        stderr(&output)
    );
}
