//! Plugins talk to the Kubernetes API through krew-wasm: the decoder, a
//! watch, and containment, all through the real kubectl against the test API
//! server in test-support.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use sha2::Digest as _;
use test_support::{KubeApiServer, KubeconfigUser, Registry, require_tool};

use crate::{Sandbox, push_fixture, stderr, stdout};

/// A user with krew-wasm plugins installed from a registry, a cluster, and
/// kubectl.
struct World {
    sandbox: Sandbox,
    server: KubeApiServer,
    _registry: Registry,
}

impl World {
    fn with_plugins(plugins: &[&str]) -> Self {
        require_tool("kubectl");
        let registry = Registry::start();
        let sandbox = Sandbox::new();
        for plugin in plugins {
            let (reference, _) = push_fixture(&registry, plugin, &format!("plugins/{plugin}:v1"));
            sandbox.ok(&["pull", &reference]);
        }
        Self {
            sandbox,
            server: KubeApiServer::start(),
            _registry: registry,
        }
    }

    /// Writes `text` as ~/.kube/config (what KUBECONFIG points at).
    fn write_kubeconfig(&self, text: &str) {
        let path = self.sandbox.home().join(".kube/config");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("~/.kube");
        std::fs::write(path, text).expect("kubeconfig");
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        self.sandbox
            .command(require_tool("kubectl"))
            .args(args)
            .output()
            .expect("running kubectl")
    }

    #[track_caller]
    fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(
            output.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            output.status,
            stdout(&output),
            stderr(&output)
        );
        stdout(&output)
    }
}

/// A kubeconfig for `server` whose user entry is `user_yaml` (indented
/// under `user:`).
fn kubeconfig_with_user(server: &KubeApiServer, context: &str, user_yaml: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(server.ca_pem());
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: {context}\nclusters:\n- name: {context}\n  cluster:\n    \
         server: {}\n    certificate-authority-data: {ca}\ncontexts:\n- name: {context}\n  context:\n    \
         cluster: {context}\n    user: {context}\nusers:\n- name: {context}\n  user:\n{user_yaml}",
        server.url()
    )
}

/// An exec credential plugin: a script printing an ExecCredential.
fn exec_credential_script(dir: &Path, api_version: &str, token: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(format!(
        "get-token-{}",
        api_version.replace(['.', '/'], "-")
    ));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nprintf '%s' '{{\"apiVersion\":\"client.authentication.k8s.io/{api_version}\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{token}\"}}}}'\n"
        ),
    )
    .expect("exec plugin");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// PEM blocks → DER, for fingerprints.
fn pem_certificates_der(pem: &str) -> Vec<Vec<u8>> {
    pem.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .filter_map(|block| block.split("-----END CERTIFICATE-----").next())
        .map(|b64| {
            let b64: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("PEM base64")
        })
        .collect()
}

fn colon_hex_sha256(der: &[u8]) -> String {
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn decoder_decodes_a_secret_with_every_kind_of_credential() {
    let world = World::with_plugins(&["decoder"]);
    let server = &world.server;
    // A bundle of two certificates: a leaf and the CA that issued it.
    let (leaf_pem, _key) = server.client_certificate("web.team.example", &["web-tier"]);
    let bundle = format!("{leaf_pem}{}", server.ca_pem());
    server.apply(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "web-tls", "namespace": "team", "labels": {"app": "web"}},
        "type": "kubernetes.io/tls",
        "data": {
            "username": b64(b"admin"),
            "password": b64(b"s3cr3t-value"),
            "tls.crt": b64(bundle.as_bytes()),
            "blob": b64(&[0xff, 0x00, 0xfe, 0x01]),
        }
    }));

    let scripts = tempfile::tempdir().expect("dir");
    server.add_token("exec-v1-token", "exec-v1-user");
    server.add_token("exec-v1beta1-token", "exec-v1beta1-user");
    server.add_basic_user("basic-user", "basic-password");
    let (cert_pem, key_pem) = server.client_certificate("cert-user", &["devs"]);
    let exec_user = |version: &str, token: &str| {
        let script = exec_credential_script(scripts.path(), version, token);
        format!(
            "    exec:\n      apiVersion: client.authentication.k8s.io/{version}\n      command: {}\n      interactiveMode: Never\n",
            script.display()
        )
    };
    let cases = [
        ("token", server.kubeconfig_with_token("ctx"), "alice"),
        (
            "client certificate",
            server.kubeconfig(
                "ctx",
                &KubeconfigUser::ClientCertificate { cert_pem, key_pem },
            ),
            "cert-user",
        ),
        (
            "basic auth",
            server.kubeconfig(
                "ctx",
                &KubeconfigUser::Basic {
                    username: "basic-user".into(),
                    password: "basic-password".into(),
                },
            ),
            "basic-user",
        ),
        (
            "exec v1",
            kubeconfig_with_user(server, "ctx", &exec_user("v1", "exec-v1-token")),
            "exec-v1-user",
        ),
        (
            "exec v1beta1",
            kubeconfig_with_user(server, "ctx", &exec_user("v1beta1", "exec-v1beta1-token")),
            "exec-v1beta1-user",
        ),
    ];
    let fingerprints: Vec<String> = pem_certificates_der(&bundle)
        .iter()
        .map(|d| colon_hex_sha256(d))
        .collect();
    assert_eq!(fingerprints.len(), 2);

    for (auth, kubeconfig, user) in cases {
        world.write_kubeconfig(&kubeconfig);
        server.clear_requests();
        let out = world.kubectl_ok(&["decoder", "secret", "web-tls", "-n", "team"]);
        for expected in [
            "web-tls",
            "team",
            "kubernetes.io/tls",
            "app=web",
            "admin",
            "s3cr3t-value",
            "<binary, 4 bytes>",
            "Certificate 1 of 2",
            "Certificate 2 of 2",
            "CN=web.team.example",
            "expires in",
            &fingerprints[0],
            &fingerprints[1],
        ] {
            assert!(
                out.contains(expected),
                "{auth}: {expected:?} missing from:\n{out}"
            );
        }
        let users: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("/secrets/"))
            .map(|r| r.user)
            .collect();
        assert_eq!(
            users,
            [Some(user.to_string())],
            "{auth}: the host authenticated as the kubeconfig's user"
        );
    }

    // -o json gives the decoded secret to scripts.
    world.write_kubeconfig(&server.kubeconfig_with_token("ctx"));
    let out = world.kubectl_ok(&["decoder", "secret", "web-tls", "-n", "team", "-o", "json"]);
    let decoded: serde_json::Value =
        serde_json::from_str(&out).expect("decoder -o json prints JSON");
    assert_eq!(decoded["stringData"]["password"], "s3cr3t-value", "{out}");
}

#[test]
fn decoder_explains_missing_and_forbidden_secrets() {
    let world = World::with_plugins(&["decoder"]);
    let server = &world.server;
    server.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}));
    world.write_kubeconfig(&server.kubeconfig_with_token("ctx"));

    let output = world.kubectl(&["decoder", "secret", "nope", "-n", "team"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("secrets \"nope\" not found"),
        "{}",
        stderr(&output)
    );

    let output = world.kubectl(&["decoder", "secret", "nope", "-n", "no-such-ns"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("namespaces \"no-such-ns\" not found"),
        "{}",
        stderr(&output)
    );

    server.forbid("bob");
    server.add_token("bob-token", "bob");
    world.write_kubeconfig(&server.kubeconfig("ctx", &KubeconfigUser::Token("bob-token".into())));
    let output = world.kubectl(&["decoder", "secret", "web", "-n", "team"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("secrets \"web\" is forbidden: User \"bob\" cannot get resource"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn merged_kubeconfigs_and_the_context_flag_pick_the_cluster() {
    let world = World::with_plugins(&["decoder", "hello"]);
    let server = &world.server;
    server.apply(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": "prod"},
        "data": {"url": b64(b"postgres://db")}
    }));
    // The first file's current context points at a port nobody listens on;
    // the second file holds the real cluster under the context `real`.
    let dead = "apiVersion: v1\nkind: Config\ncurrent-context: dead\nclusters:\n- name: dead\n  cluster:\n    server: https://127.0.0.1:9\ncontexts:\n- name: dead\n  context: {cluster: dead, user: dead}\nusers:\n- name: dead\n  user: {token: dead-token}\n";
    let home = world.sandbox.home();
    std::fs::write(home.join("first"), dead).expect("first");
    std::fs::write(home.join("second"), server.kubeconfig_with_token("real")).expect("second");
    let kubectl = |args: &[&str]| {
        world
            .sandbox
            .command(require_tool("kubectl"))
            .env(
                "KUBECONFIG",
                format!(
                    "{}:{}",
                    home.join("first").display(),
                    home.join("second").display()
                ),
            )
            .args(args)
            .output()
            .expect("kubectl")
    };

    let output = kubectl(&["decoder", "secret", "db", "-n", "prod", "--context", "real"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("postgres://db"),
        "{}",
        stdout(&output)
    );

    // Without --context, the first file's current context wins, and the
    // failure names the problem.
    let output = kubectl(&["decoder", "secret", "db", "-n", "prod"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("127.0.0.1:9"),
        "{}",
        stderr(&output)
    );

    // A plugin that never calls the API runs with no kubeconfig at all…
    let output = world
        .sandbox
        .command(require_tool("kubectl"))
        .env_remove("KUBECONFIG")
        .args(["hello", "x"])
        .output()
        .expect("kubectl");
    assert!(output.status.success(), "{}", stderr(&output));
    // …and one that does is told what is missing.
    let output = world
        .sandbox
        .command(require_tool("kubectl"))
        .env_remove("KUBECONFIG")
        .args(["decoder", "secret", "db"])
        .output()
        .expect("kubectl");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("KUBECONFIG"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn podwatch_streams_changes_while_it_runs_and_stops_on_ctrl_c() {
    let world = World::with_plugins(&["podwatch"]);
    let server = &world.server;
    let pod = |name: &str, phase: &str| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "team"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": phase}
        })
    };
    server.apply(pod("before", "Running"));
    world.write_kubeconfig(&server.kubeconfig_with_token("ctx"));

    let mut child = world
        .sandbox
        .command(require_tool("kubectl"))
        .args(["podwatch", "-n", "team"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl podwatch");
    let (lines, received) = mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let err = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(err), &mut text);
        text
    });
    let pid = child.id().to_string();
    let errors = std::cell::RefCell::new(Some(errors));
    let wait_for = |needle: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match received.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status();
        let stderr = errors
            .borrow_mut()
            .take()
            .map(|e| e.join().unwrap_or_default())
            .unwrap_or_default();
        let requests: Vec<String> = server
            .requests()
            .iter()
            .map(|r| format!("{} {} {:?}", r.method, r.path, r.user))
            .collect();
        panic!(
            "podwatch never printed a line with {needle:?}; its stderr:\n{stderr}\nrequests: {requests:#?}"
        );
    };
    wait_for(" before ");

    // Created after the plugin started: must show up while it runs.
    server.apply(pod("after", "Pending"));
    let line = wait_for(" after ");
    assert!(line.contains("Pending"), "{line}");
    server.apply(pod("after", "Running"));
    let line = wait_for(" after ");
    assert!(line.contains("Running"), "{line}");
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "podwatch is still running"
    );

    // Ctrl-C (SIGINT to the process kubectl exec'd into) ends it promptly.
    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "podwatch did not stop within 3 s of Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn plugins_never_see_credentials_and_reach_only_the_api_server() {
    let world = World::with_plugins(&["api-probe"]);
    let server = &world.server;
    let (cert_pem, key_pem) = server.client_certificate("probe-user", &[]);
    // A listener on another local port the probe will try.
    let other = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let other_port = other.local_addr().expect("addr").port().to_string();
    let scripts = tempfile::tempdir().expect("dir");
    server.add_token("exec-secret-token", "exec-user");
    let exec_script = exec_credential_script(scripts.path(), "v1", "exec-secret-token");
    let kubeconfig_path = world.sandbox.home().join(".kube/config");

    let kinds = [
        (
            "token",
            server.kubeconfig_with_token("ctx"),
            vec![server.token().to_string()],
        ),
        (
            "client certificate",
            server.kubeconfig(
                "ctx",
                &KubeconfigUser::ClientCertificate {
                    cert_pem: cert_pem.clone(),
                    key_pem: key_pem.clone(),
                },
            ),
            vec![b64(key_pem.as_bytes()), "PRIVATE KEY".to_string()],
        ),
        (
            "exec plugin",
            kubeconfig_with_user(
                server,
                "ctx",
                &format!(
                    "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never\n",
                    exec_script.display()
                ),
            ),
            vec![
                "exec-secret-token".to_string(),
                exec_script.display().to_string(),
            ],
        ),
    ];
    for (kind, kubeconfig, secrets) in kinds {
        world.write_kubeconfig(&kubeconfig);
        server.clear_requests();
        server.delete("configmaps", "default", "probe-upload");
        let output = world
            .sandbox
            .command(require_tool("kubectl"))
            .env("AWS_SECRET_ACCESS_KEY", "aws-secret-on-the-host")
            .args([
                "api-probe",
                "--port",
                &other_port,
                "--path",
                &kubeconfig_path.display().to_string(),
            ])
            .args(["--path", &world.sandbox.root().display().to_string()])
            .output()
            .expect("kubectl api-probe");
        let (out, err) = (stdout(&output), stderr(&output));
        assert!(output.status.success(), "{kind}: {err}");
        let everything = format!("{out}{err}");
        for secret in secrets
            .iter()
            .map(String::as_str)
            .chain(["aws-secret-on-the-host", "AWS_SECRET_ACCESS_KEY"])
        {
            assert!(
                !everything.contains(secret),
                "{kind}: the plugin saw {secret:?}:\n{out}"
            );
        }
        let line = |prefix: &str| {
            out.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{kind}: no line {prefix:?} in:\n{out}"))
                .to_string()
        };
        // The view is there, with the real server and no user secrets.
        assert!(
            out.contains(&format!("VIEW     server: {}", server.url()))
                || out.contains(&server.url()),
            "{out}"
        );
        assert!(line("ENV KUBECONFIG=").ends_with("/krew-wasm/kubeconfig"));
        // Files: only the view's directory, read-only.
        assert!(line(&format!("OPEN {}:", kubeconfig_path.display())).contains("denied"));
        assert!(line(&format!("OPEN {}:", world.sandbox.root().display())).contains("denied"));
        assert!(line("OPEN /etc/passwd:").contains("denied"));
        // HTTP: the API server works, everything else is refused.
        assert_eq!(line("HTTP server:"), "HTTP server: status 200", "{kind}");
        for refused in [
            "stolen-token",
            "impersonate",
            "metadata",
            &format!("port-{other_port}"),
            "other-scheme",
        ] {
            assert!(
                line(&format!("HTTP {refused}:")).contains("refused"),
                "{kind}: {refused} was not refused:\n{out}"
            );
        }
        // The host says why, naming what was refused.
        for reason in [
            "refused a request to http://169.254.169.254:80",
            &format!("refused a request to https://127.0.0.1:{other_port}"),
            "set the `authorization` header",
            "set the `impersonate-user` header",
            "refused `exec`",
        ] {
            assert!(
                err.contains(reason),
                "{kind}: stderr lacks {reason:?}:\n{err}"
            );
        }
        // Nothing the guest tried to add reached the server.
        for request in server.requests() {
            assert_ne!(
                request.header("authorization"),
                Some("Bearer stolen"),
                "{kind}"
            );
            assert_eq!(request.header("impersonate-user"), None, "{kind}");
        }
        assert!(
            server
                .requests()
                .iter()
                .any(|r| r.path.starts_with("/api/v1/namespaces/default/secrets")),
            "{kind}: the allowed request reached the server"
        );
    }
    drop(other);
}

#[test]
fn the_kubeconfig_tls_settings_apply() {
    let world = World::with_plugins(&["decoder"]);
    let server = &world.server;
    server.apply(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"},
        "data": {"k": b64(b"tls-ok")}
    }));
    let kube_dir = world.sandbox.home().join(".kube");
    std::fs::create_dir_all(&kube_dir).expect("~/.kube");
    std::fs::write(kube_dir.join("ca.crt"), server.ca_pem()).expect("ca file");
    let token = server.token();
    let kubeconfig = |cluster: &str| {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n{cluster}contexts:\n- name: c\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user: {{token: {token}}}\n"
        )
    };
    let port = server.port();
    let cases = [
        (
            "a CA file relative to the kubeconfig, and tls-server-name",
            format!(
                "    server: https://127.0.0.1:{port}\n    certificate-authority: ca.crt\n    tls-server-name: {}\n",
                server.server_name()
            ),
            true,
        ),
        (
            "insecure-skip-tls-verify",
            format!("    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\n"),
            true,
        ),
        (
            "an unknown CA",
            format!("    server: https://127.0.0.1:{port}\n"),
            false,
        ),
    ];
    for (case, cluster, works) in cases {
        world.write_kubeconfig(&kubeconfig(&cluster));
        let output = world.kubectl(&["decoder", "secret", "s"]);
        if works {
            assert!(output.status.success(), "{case}: {}", stderr(&output));
            assert!(
                stdout(&output).contains("tls-ok"),
                "{case}: {}",
                stdout(&output)
            );
        } else {
            assert!(!output.status.success(), "{case} must fail");
            assert!(
                stderr(&output).to_lowercase().contains("certificate"),
                "{case}: the error names the certificate problem: {}",
                stderr(&output)
            );
        }
    }
}

#[test]
fn kube_rs_api_verbs_work_from_a_plugin() {
    let world = World::with_plugins(&["kube-crud"]);
    let server = &world.server;
    server.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "neighbour", "namespace": "team"}}));
    world.write_kubeconfig(&server.kubeconfig_with_token("ctx"));
    let out = world.kubectl_ok(&["kube-crud", "made-by-plugin", "-n", "team"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("CREATED made-by-plugin uid="), "{out}");
    assert_eq!(
        lines[1..],
        [
            "PATCHED step=patched extra=yes",
            "GOT step=patched",
            "LISTED made-by-plugin,neighbour",
            "DELETED made-by-plugin",
            "GONE made-by-plugin",
        ],
        "{out}"
    );
    // Each verb reached the server as the user, in the namespace from -n.
    let verbs: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v1/namespaces/team/configmaps"))
        .map(|r| format!("{} {}", r.method, r.user.unwrap_or_default()))
        .collect();
    assert_eq!(
        verbs,
        [
            "POST alice",
            "PATCH alice",
            "GET alice",
            "GET alice",
            "DELETE alice",
            "GET alice"
        ]
    );
    assert!(server.get("configmaps", "team", "made-by-plugin").is_none());
}

#[test]
fn multi_megabyte_responses_reach_the_plugin_whole() {
    let world = World::with_plugins(&["decoder"]);
    let server = &world.server;
    // 4 MiB of bytes that are not UTF-8: about 5.6 MB of JSON on the wire.
    let big: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8 | 0x80).collect();
    server.apply(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "big", "namespace": "default"},
        "data": {"blob": b64(&big), "note": b64(b"after the blob")}
    }));
    world.write_kubeconfig(&server.kubeconfig_with_token("ctx"));
    let out = world.kubectl_ok(&["decoder", "secret", "big"]);
    assert!(
        out.contains(&format!("<binary, {} bytes>", big.len())),
        "{out}"
    );
    assert!(out.contains("after the blob"), "{out}");
}
