//! Interoperability: artifacts written by skopeo in every accepted layout,
//! image indexes, and registries behind TLS and basic auth.

use test_support::{Artifact, Registry, RegistryConfig, TestCa, TokenServer, fixtures, push_index};

use crate::{Sandbox, hello_output, stderr, stdout};

#[test]
fn every_wasm_media_type_and_docker_v2_install_and_run() {
    let registry = Registry::start();
    let p2 = std::fs::read(fixtures().p2("hello")).unwrap();
    let p1 = std::fs::read(fixtures().p1("hello")).unwrap();
    let cases = [
        ("cncf", Artifact::wasm(p2.clone(), "application/wasm"), "p2"),
        (
            "wasm-to-oci",
            Artifact::wasm(p1.clone(), "application/vnd.wasm.content.layer.v1+wasm"),
            "p1",
        ),
        (
            "wasmcloud",
            Artifact::wasm(
                p2.clone(),
                "application/vnd.module.wasm.content.layer.v1+wasm",
            ),
            "p2",
        ),
        ("docker-v2", Artifact::docker_v2(p2.clone()), "p2"),
    ];
    let sandbox = Sandbox::new();
    for (name, artifact, kind) in cases {
        artifact.push(&registry, &format!("interop/{name}:latest"));
        sandbox.ok(&[
            "pull",
            &format!("{}/interop/{name}:latest", registry.host()),
        ]);
        let entry = sandbox
            .list_json()
            .into_iter()
            .find(|e| e["name"] == name)
            .expect("listed");
        assert_eq!(entry["kind"], kind, "{name}");
        let output = sandbox
            .command(
                sandbox
                    .bin()
                    .join(format!("kubectl-{}", name.replace('-', "_"))),
            )
            .arg(name)
            .output()
            .unwrap();
        assert_eq!(
            stdout(&output),
            hello_output(&[name]),
            "{name}: {}",
            stderr(&output)
        );
    }
    // What the registry holds for the Docker case really is a Docker v2 manifest.
    let raw = std::process::Command::new(test_support::require_tool("skopeo"))
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/interop/docker-v2:latest", registry.host()),
        ])
        .output()
        .unwrap();
    assert!(
        stdout(&raw).contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{}",
        stdout(&raw)
    );
}

#[test]
fn image_indexes_resolve_to_their_wasm_entry_or_are_refused() {
    let registry = Registry::start();
    let wasm = std::fs::read(fixtures().p2("hello")).unwrap();
    let plugin = Artifact::wasm(wasm, "application/wasm");
    let container = Artifact::container_image();
    push_index(
        &registry,
        "multi/tool:v1",
        &[(&container, "linux", "amd64"), (&plugin, "wasip2", "wasm")],
    );
    push_index(
        &registry,
        "multi/image:v1",
        &[
            (&container, "linux", "amd64"),
            (&container, "linux", "arm64"),
        ],
    );
    let sandbox = Sandbox::new();
    sandbox.ok(&["pull", &format!("{}/multi/tool:v1", registry.host())]);
    let output = sandbox
        .command(sandbox.bin().join("kubectl-tool"))
        .output()
        .unwrap();
    assert_eq!(stdout(&output), hello_output(&[]));

    let before = sandbox.snapshot();
    let err = sandbox.fails(&["pull", &format!("{}/multi/image:v1", registry.host())]);
    assert!(
        err.contains("multi-platform image index with no WebAssembly entry")
            && err.contains("linux/amd64, linux/arm64"),
        "{err}"
    );
    assert_eq!(sandbox.snapshot(), before);
}

/// A registry with TLS from a test CA and basic auth, and a sandbox whose
/// docker config holds the given password.
fn secured(password_in_config: Option<&str>) -> (Registry, Sandbox, std::path::PathBuf, String) {
    let ca = TestCa::new();
    let registry = Registry::start_with(RegistryConfig {
        tls: Some(&ca),
        basic_auth: Some(("alice", "s3cret")),
        ..Default::default()
    });
    let wasm = std::fs::read(fixtures().p2("hello")).unwrap();
    Artifact::wasm(wasm, "application/wasm").push(&registry, "private/hello:v1");
    let sandbox = Sandbox::new();
    let ca_file = registry.write_ca(&sandbox.home().join("ca"));
    if let Some(password) = password_in_config {
        write_docker_config(&sandbox, registry.host(), "alice", password);
    }
    let reference = format!("{}/private/hello:v1", registry.host());
    (registry, sandbox, ca_file, reference)
}

fn write_docker_config(sandbox: &Sandbox, host: &str, user: &str, password: &str) {
    let auth = base64_encode(format!("{user}:{password}").as_bytes());
    let dir = sandbox.home().join(".docker");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
}

#[test]
fn basic_auth_over_tls_with_a_private_ca() {
    let (_registry, sandbox, ca_file, reference) = secured(Some("s3cret"));
    let ca = ca_file.to_str().unwrap();

    // Without the CA, TLS fails and the message names the fix.
    let err = sandbox.fails(&["pull", &reference]);
    assert!(
        err.contains("certificate of registry")
            && err.contains("not trusted")
            && err.contains("--ca-file"),
        "{err}"
    );
    assert!(!err.contains("[ERROR]"), "library logs leaked: {err}");

    sandbox.ok(&["pull", &reference, "--ca-file", ca]);
    let output = sandbox
        .command(sandbox.bin().join("kubectl-hello"))
        .arg("tls")
        .output()
        .unwrap();
    assert_eq!(stdout(&output), hello_output(&["tls"]));

    // The CA can come from the environment too.
    let output = sandbox
        .command(crate::krew_wasm_exe())
        .args(["run", &reference, "--", "env-ca"])
        .env("KREW_WASM_CA_FILE", ca)
        .output()
        .unwrap();
    assert_eq!(
        stdout(&output),
        hello_output(&["env-ca"]),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unauthorized_pulls_say_how_to_log_in() {
    let (registry, sandbox, ca_file, reference) = secured(None);
    let ca = ca_file.to_str().unwrap();
    let err = sandbox.fails(&["pull", &reference, "--ca-file", ca]);
    assert!(
        err.contains("401") && err.contains(&format!("docker login {}", registry.host())),
        "{err}"
    );
    assert!(err.contains("no credential is stored"), "{err}");
    assert!(
        sandbox.snapshot().keys().all(|k| k == "tmp"),
        "{:?}",
        sandbox.snapshot()
    );

    write_docker_config(&sandbox, registry.host(), "alice", "wrong");
    let err = sandbox.fails(&["pull", &reference, "--ca-file", ca]);
    assert!(
        err.contains("401") && err.contains("docker's config.json"),
        "{err}"
    );
}

#[test]
fn podman_auth_json_is_read_too() {
    let (registry, sandbox, ca_file, reference) = secured(None);
    let dir = sandbox.home().join("run/containers");
    std::fs::create_dir_all(&dir).unwrap();
    let auth = base64_encode(b"alice:s3cret");
    std::fs::write(
        dir.join("auth.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    sandbox.ok(&["pull", &reference, "--ca-file", ca_file.to_str().unwrap()]);
    assert_eq!(sandbox.list_json()[0]["status"], "ok");
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn docker_credential_helpers_and_stores_are_used() {
    // credHelpers names a helper per registry; credsStore one for all.
    for config in [
        r#"{"credHelpers":{"HOST":"testhelper"}}"#,
        r#"{"credsStore":"testhelper"}"#,
    ] {
        let (registry, sandbox, ca_file, reference) = secured(None);
        // A credential helper as docker runs it: `docker-credential-<name> get`,
        // server URL on stdin, JSON on stdout.
        let helpers = sandbox.home().join("helpers");
        std::fs::create_dir_all(&helpers).unwrap();
        let helper = helpers.join("docker-credential-testhelper");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\n[ \"$1\" = get ] || exit 1\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}' \"$server\"\n",
        )
        .unwrap();
        std::fs::set_permissions(
            &helper,
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
        )
        .unwrap();
        let dir = sandbox.home().join(".docker");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.json"),
            config.replace("HOST", registry.host()),
        )
        .unwrap();
        let output = sandbox
            .command(crate::krew_wasm_exe())
            .args(["pull", &reference, "--ca-file", ca_file.to_str().unwrap()])
            .env(
                "PATH",
                format!("{}:{}", helpers.display(), sandbox.path_var()),
            )
            .output()
            .unwrap();
        assert!(output.status.success(), "{config}: {}", stderr(&output));
        assert_eq!(sandbox.list_json()[0]["status"], "ok");
    }
}

#[test]
fn bearer_token_auth_as_hosted_registries_use() {
    let issuer = TokenServer::start("alice", "s3cret");
    let registry = Registry::start_with(RegistryConfig {
        token_auth: Some(&issuer),
        ..Default::default()
    });
    let wasm = std::fs::read(fixtures().p2("hello")).unwrap();
    Artifact::wasm(wasm, "application/wasm").push(&registry, "private/hello:v1");
    let pushed = issuer.issued();
    let sandbox = Sandbox::new();
    let reference = format!("{}/private/hello:v1", registry.host());

    let err = sandbox.fails(&["pull", &reference]);
    assert!(err.contains("docker login"), "{err}");
    assert_eq!(
        issuer.issued(),
        pushed,
        "a token was issued without credentials"
    );

    write_docker_config(&sandbox, registry.host(), "alice", "s3cret");
    sandbox.ok(&["pull", &reference]);
    assert!(
        issuer.issued() > pushed,
        "the pull did not go through the token server"
    );
    let output = sandbox
        .command(sandbox.bin().join("kubectl-hello"))
        .arg("token")
        .output()
        .unwrap();
    assert_eq!(stdout(&output), hello_output(&["token"]));
}
