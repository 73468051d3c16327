//! The test API server against the real kubectl (and curl for raw watches).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use test_support::{KubeApiServer, KubeconfigUser, require_tool};

/// kubectl with a temporary HOME and kubeconfig, and nothing else from our environment.
struct Kubectl {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(kubeconfig: &str) -> Self {
        let bin = require_tool("kubectl");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("kubeconfig"), kubeconfig).expect("writing the kubeconfig");
        Self { bin, dir }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .arg("--kubeconfig")
            .arg(self.dir.path().join("kubeconfig"))
            .args(["--request-timeout", "20s"])
            .args(args)
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running kubectl")
    }

    /// Runs kubectl, asserts success and returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs kubectl, asserts failure and returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "kubectl {args:?} should fail, printed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

/// Lines of a child's stdout, read on a thread.
struct Lines {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (at most 20 s) for a line for which `wanted` holds.
    fn wait_for(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {what} arrived; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Every remaining line, once the child has ended by itself (at most 20 s).
    fn rest(&mut self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut rest = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => rest.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return rest,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("the stream did not end; got {rest:?}")
                }
            }
        }
    }

    fn still_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn secret(ns: &str, name: &str, key: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns}, "data": {key: b64(value)}})
}

fn pod(ns: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    })
}

fn running(mut pod: Value) -> Value {
    pod["status"] = json!({
        "phase": "Running",
        "podIP": "10.0.0.7",
        "containerStatuses": [{"name": "main", "ready": true, "restartCount": 2, "image": "busybox", "imageID": "", "state": {"running": {}}}],
    });
    pod
}

/// The words of the table row for `name` in kubectl's output.
fn row<'a>(output: &'a str, name: &str) -> Vec<&'a str> {
    output
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|words| words.contains(&name))
        .unwrap_or_else(|| panic!("no row for {name} in:\n{output}"))
}

#[test]
fn kubectl_gets_secrets_with_a_token() {
    let server = KubeApiServer::start();
    server.apply(secret("ns", "s", "password", "hunter2"));
    server.apply(secret("ns", "other", "a", "b"));
    let kubectl = Kubectl::new(&server.kubeconfig_with_token("test"));

    let table = kubectl.ok(&["get", "secrets", "-n", "ns"]);
    let header: Vec<_> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "TYPE", "DATA", "AGE"], "{table}");
    assert_eq!(&row(&table, "s")[..3], ["s", "Opaque", "1"], "{table}");
    assert_eq!(row(&table, "other")[0], "other");

    let json: Value =
        serde_json::from_str(&kubectl.ok(&["get", "secret", "s", "-n", "ns", "-o", "json"]))
            .expect("kubectl -o json prints JSON");
    assert_eq!(json["kind"], "Secret");
    assert_eq!(json["data"]["password"], b64("hunter2"));
    assert_eq!(json["metadata"]["namespace"], "ns");
    assert!(
        json["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );

    let requests = server.requests();
    let get = requests
        .iter()
        .find(|r| r.path.starts_with("/api/v1/namespaces/ns/secrets/s"))
        .expect("the GET reached the server");
    assert_eq!(get.method, "GET");
    assert_eq!(get.user.as_deref(), Some("alice"));
    assert_eq!(
        get.header("authorization"),
        Some(format!("Bearer {}", server.token()).as_str())
    );
}

#[test]
fn kubectl_authenticates_and_is_refused_like_on_a_real_cluster() {
    let server = KubeApiServer::start();
    server.apply(secret("default", "x", "k", "v"));

    // A client certificate: CN is the user.
    let carol = Kubectl::new(&server.kubeconfig_with_client_cert("cert", "carol", &["devs"]));
    let out = carol.ok(&["get", "secret", "x", "-o", "jsonpath={.metadata.name}"]);
    assert_eq!(out, "x");
    let requests = server.requests();
    let by_carol = requests
        .iter()
        .find(|r| r.user.as_deref() == Some("carol"))
        .expect("carol's requests were authenticated by her certificate");
    assert_eq!(by_carol.header("authorization"), None);
    assert_eq!(
        by_carol.groups,
        ["devs", "system:authenticated"],
        "groups = O"
    );

    // Basic auth from the kubeconfig's username/password.
    server.add_basic_user("dave", "s3cret");
    let dave = Kubectl::new(&server.kubeconfig(
        "basic",
        &KubeconfigUser::Basic {
            username: "dave".into(),
            password: "s3cret".into(),
        },
    ));
    assert_eq!(
        dave.ok(&["get", "secret", "x", "-o", "name"]).trim(),
        "secret/x"
    );

    // No credentials: kubectl itself asks for a username before sending
    // anything (and with stdin closed fails with EOF), as against any cluster…
    let nobody = Kubectl::new(&server.kubeconfig("anon", &KubeconfigUser::None));
    let before = server.requests().len();
    let err = nobody.fails(&["get", "secrets"]);
    assert!(err.contains("EOF"), "{err}");
    // (This machine's kubectl is a "dispatcher" build that first asks
    // /version, without credentials, which kubectl version to run.)
    let sent: Vec<_> = server
        .requests()
        .into_iter()
        .skip(before)
        .filter(|r| !r.path.starts_with("/version"))
        .map(|r| (r.method, r.path, r.headers))
        .collect();
    assert!(sent.is_empty(), "kubectl sent nothing: {sent:?}");
    // …so the server's 401 for no credentials is checked with curl
    // (malformed_requests_get_status_objects); kubectl sees it with wrong ones.
    let wrong = Kubectl::new(&server.kubeconfig("wrong", &KubeconfigUser::Token("nope".into())));
    // (With a cold discovery cache kubectl words the 401 as "the server has
    // asked for the client to provide credentials", else "Unauthorized".)
    let err = wrong.fails(&["get", "secrets"]);
    assert!(
        err.contains("error: You must be logged in to the server ("),
        "{err}"
    );
    let bad_password = Kubectl::new(&server.kubeconfig(
        "bad-password",
        &KubeconfigUser::Basic {
            username: "dave".into(),
            password: "wrong".into(),
        },
    ));
    let err = bad_password.fails(&["get", "secrets"]);
    assert!(
        err.contains("error: You must be logged in to the server ("),
        "{err}"
    );
    let refused = server.requests();
    let refused = refused.last().expect("the refused request was recorded");
    assert_eq!(refused.user, None);
    assert!(
        refused
            .header("authorization")
            .is_some_and(|h| h.starts_with("Basic "))
    );

    // A forbidden user.
    server.add_token("bob-token", "bob");
    server.forbid("bob");
    let bob = Kubectl::new(&server.kubeconfig("bob", &KubeconfigUser::Token("bob-token".into())));
    let err = bob.fails(&["get", "secret", "x"]);
    assert!(
        err.contains(
            r#"Error from server (Forbidden): secrets "x" is forbidden: User "bob" cannot get resource "secrets" in API group "" in the namespace "default""#
        ),
        "{err}"
    );
    let err = bob.fails(&["get", "pods", "-A"]);
    assert!(
        err.contains(r#"pods is forbidden: User "bob" cannot list resource "pods" in API group "" at the cluster scope"#),
        "{err}"
    );

    // A missing object.
    let alice = Kubectl::new(&server.kubeconfig_with_token("alice"));
    let err = alice.fails(&["get", "secret", "nope"]);
    assert!(
        err.contains(r#"Error from server (NotFound): secrets "nope" not found"#),
        "{err}"
    );
    let err = alice.fails(&["get", "namespace", "nope"]);
    assert!(
        err.contains(r#"Error from server (NotFound): namespaces "nope" not found"#),
        "{err}"
    );
}

#[test]
fn kubectl_watch_sees_changes_made_while_it_runs() {
    let server = KubeApiServer::start();
    server.apply(pod("ns", "early", json!({"app": "web"})));
    let kubectl = Kubectl::new(&server.kubeconfig_with_token("test"));
    let mut watch = Lines::spawn(kubectl.command(&["get", "pods", "-n", "ns", "-w"]));

    let header = watch.wait_for("the header", |l| l.starts_with("NAME"));
    let columns: Vec<_> = header.split_whitespace().collect();
    assert_eq!(columns, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    let early = watch.wait_for("the existing pod", |l| l.starts_with("early"));
    assert_eq!(
        &early.split_whitespace().collect::<Vec<_>>()[..4],
        ["early", "0/1", "Pending", "0"]
    );

    // Wait until kubectl's watch request is open, then change things.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server
        .requests()
        .iter()
        .any(|r| r.path.contains("watch=true"))
    {
        assert!(Instant::now() < deadline, "kubectl never started watching");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.apply(pod("ns", "late", json!({})));
    watch.wait_for("the pod added after the watch started", |l| {
        l.starts_with("late ") && l.contains("Pending")
    });
    server.apply(running(pod("ns", "late", json!({}))));
    let line = watch.wait_for("the pod's new status", |l| {
        l.starts_with("late ") && l.contains("Running")
    });
    assert_eq!(
        &line.split_whitespace().collect::<Vec<_>>()[..4],
        ["late", "1/1", "Running", "2"]
    );
    server.apply(pod("other", "elsewhere", json!({})));
    server.delete("pods", "ns", "early");
    // kubectl prints the deleted object's row once more.
    watch.wait_for("the deleted pod", |l| l.starts_with("early"));
    assert!(watch.still_running(), "kubectl -w is still watching");
    assert!(
        !watch.seen.iter().any(|l| l.contains("elsewhere")),
        "a pod in another namespace showed up: {:?}",
        watch.seen
    );
}

#[test]
fn kubectl_lists_creates_and_deletes() {
    let server = KubeApiServer::start();
    server.apply(running(pod("ns", "web-1", json!({"app": "web"}))));
    server.apply(pod("ns", "db-1", json!({"app": "db"})));
    server.apply(pod("team-b", "job-1", json!({})));
    let kubectl = Kubectl::new(&server.kubeconfig_with_token("test"));

    let namespaces = kubectl.ok(&["get", "namespaces"]);
    let header: Vec<_> = namespaces
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "STATUS", "AGE"]);
    for ns in ["default", "kube-system", "ns", "team-b"] {
        assert_eq!(&row(&namespaces, ns)[..2], [ns, "Active"], "{namespaces}");
    }

    let all = kubectl.ok(&["get", "pods", "-A"]);
    let header: Vec<_> = all
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    assert_eq!(&row(&all, "job-1")[..2], ["team-b", "job-1"]);
    assert_eq!(
        &row(&all, "web-1")[..5],
        ["ns", "web-1", "1/1", "Running", "2"]
    );

    let web = kubectl.ok(&["get", "pods", "-n", "ns", "-l", "app=web", "-o", "name"]);
    assert_eq!(web.trim(), "pod/web-1");
    let not_web = kubectl.ok(&["get", "pods", "-n", "ns", "-l", "app!=web", "-o", "name"]);
    assert_eq!(not_web.trim(), "pod/db-1");
    let by_name = kubectl.ok(&[
        "get",
        "pods",
        "-A",
        "--field-selector",
        "metadata.name=job-1",
        "-o",
        "name",
    ]);
    assert_eq!(by_name.trim(), "pod/job-1");
    let wide = kubectl.ok(&["get", "pods", "-n", "ns", "-o", "wide"]);
    assert!(wide.lines().next().unwrap_or("").contains("IP"), "{wide}");
    assert!(row(&wide, "web-1").contains(&"10.0.0.7"), "{wide}");

    let created = kubectl.ok(&["create", "configmap", "x", "--from-literal=a=b", "-n", "ns"]);
    assert_eq!(created.trim(), "configmap/x created");
    assert_eq!(
        server.get("cm", "ns", "x").expect("stored")["data"]["a"],
        "b"
    );
    let back: Value =
        serde_json::from_str(&kubectl.ok(&["get", "configmap", "x", "-n", "ns", "-o", "json"]))
            .expect("JSON");
    assert_eq!(back["data"], json!({"a": "b"}));
    let table = kubectl.ok(&["get", "cm", "-n", "ns"]);
    assert_eq!(&row(&table, "x")[..2], ["x", "1"], "{table}");
    let err = kubectl.fails(&["create", "configmap", "x", "--from-literal=a=c", "-n", "ns"]);
    // (kubectl's typed `create configmap` words it so, on any cluster.)
    assert!(
        err.contains(r#"error: failed to create configmap: configmaps "x" already exists"#),
        "{err}"
    );
    let err = kubectl.fails(&["create", "configmap", "y", "-n", "nope"]);
    assert!(err.contains(r#"namespaces "nope" not found"#), "{err}");

    let deleted = kubectl.ok(&["delete", "configmap", "x", "-n", "ns"]);
    assert_eq!(deleted.trim(), r#"configmap "x" deleted"#);
    assert!(server.get("configmaps", "ns", "x").is_none());
    let err = kubectl.fails(&["get", "configmap", "x", "-n", "ns"]);
    assert!(err.contains(r#"configmaps "x" not found"#), "{err}");

    let created = kubectl.ok(&[
        "create",
        "secret",
        "generic",
        "pw",
        "--from-literal=password=hunter2",
        "-n",
        "ns",
    ]);
    assert_eq!(created.trim(), "secret/pw created");
    let value = kubectl.ok(&[
        "get",
        "secret",
        "pw",
        "-n",
        "ns",
        "-o",
        "jsonpath={.data.password}",
    ]);
    assert_eq!(value, b64("hunter2"));
    assert_eq!(
        kubectl.ok(&["create", "namespace", "fresh"]).trim(),
        "namespace/fresh created"
    );
    assert_eq!(
        kubectl.ok(&["delete", "namespace", "fresh"]).trim(),
        r#"namespace "fresh" deleted"#
    );
}

#[test]
fn kubectl_applies_patches_labels_and_reads_logs() {
    let server = KubeApiServer::start();
    let kubectl = Kubectl::new(&server.kubeconfig_with_token("test"));
    let manifest = kubectl.dir.path().join("cm.yaml");
    let write = |value: &str| {
        let yaml = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ap\n  namespace: ns\ndata:\n  a: {value}\n"
        );
        std::fs::write(&manifest, yaml).expect("writing cm.yaml");
    };
    let file = manifest.to_str().expect("a UTF-8 path");
    server.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}));

    // Client-side apply: GET, POST, then strategic merge PATCHes.
    write("b");
    assert_eq!(
        kubectl.ok(&["apply", "-f", file]).trim(),
        "configmap/ap created"
    );
    assert_eq!(
        kubectl.ok(&["apply", "-f", file]).trim(),
        "configmap/ap unchanged"
    );
    write("c");
    assert_eq!(
        kubectl.ok(&["apply", "-f", file]).trim(),
        "configmap/ap configured"
    );
    let stored = server.get("configmaps", "ns", "ap").expect("applied");
    assert_eq!(stored["data"], json!({"a": "c"}));
    assert!(
        stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
    assert_eq!(
        kubectl.ok(&["apply", "--server-side", "-f", file]).trim(),
        "configmap/ap serverside-applied"
    );

    assert_eq!(
        kubectl
            .ok(&["label", "cm", "ap", "-n", "ns", "tier=web"])
            .trim(),
        "configmap/ap labeled"
    );
    assert_eq!(
        kubectl
            .ok(&["get", "cm", "-n", "ns", "-l", "tier", "-o", "name"])
            .trim(),
        "configmap/ap"
    );
    kubectl.ok(&[
        "patch",
        "cm",
        "ap",
        "-n",
        "ns",
        "--type=merge",
        "-p",
        r#"{"data":{"m":"1"}}"#,
    ]);
    kubectl.ok(&[
        "patch",
        "cm",
        "ap",
        "-n",
        "ns",
        "-p",
        r#"{"data":{"s":"2"}}"#,
    ]);
    kubectl.ok(&[
        "patch",
        "cm",
        "ap",
        "-n",
        "ns",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/data/a"}]"#,
    ]);
    assert_eq!(
        server.get("cm", "ns", "ap").expect("patched")["data"],
        json!({"m": "1", "s": "2"})
    );
    assert_eq!(
        kubectl.ok(&["delete", "-f", file]).trim(),
        r#"configmap "ap" deleted"#
    );

    // Logs, and a followed log that grows while kubectl runs.
    server.apply(running(pod("ns", "p", json!({}))));
    server.append_log("ns", "p", "line one\n");
    assert_eq!(kubectl.ok(&["logs", "p", "-n", "ns"]), "line one\n");
    let mut follow = Lines::spawn(kubectl.command(&["logs", "-f", "p", "-n", "ns"]));
    follow.wait_for("the log so far", |l| l == "line one");
    server.append_log("ns", "p", "line two\n");
    follow.wait_for("the appended line", |l| l == "line two");
    server.delete("pods", "ns", "p");
    assert!(
        follow.rest().is_empty(),
        "kubectl logs -f ends with the pod"
    );

    // Events print like kube-apiserver's.
    server.apply(json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "p.1", "namespace": "ns"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns"},
        "reason": "Pulled", "type": "Normal", "message": "Container image pulled",
        "lastTimestamp": "2020-01-01T00:00:00Z", "firstTimestamp": "2020-01-01T00:00:00Z", "count": 1,
    }));
    let events = kubectl.ok(&["get", "events", "-n", "ns"]);
    let header: Vec<_> = events
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{events}"
    );
    assert_eq!(
        &row(&events, "pod/p")[1..],
        ["Normal", "Pulled", "pod/p", "Container", "image", "pulled"],
        "{events}"
    );
}

/// curl with the server's CA and alice's token, streaming (`-N`).
fn curl(server: &KubeApiServer, dir: &std::path::Path, path: &str) -> Command {
    curl_as(server, dir, path, Some(server.token()))
}

fn curl_as(
    server: &KubeApiServer,
    dir: &std::path::Path,
    path: &str,
    token: Option<&str>,
) -> Command {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, server.ca_pem()).expect("writing ca.pem");
    let mut command = Command::new(require_tool("curl"));
    command
        .env_clear()
        .args(["-sS", "-N", "--max-time", "30", "--cacert"])
        .arg(&ca);
    if let Some(token) = token {
        command
            .arg("-H")
            .arg(format!("Authorization: Bearer {token}"));
    }
    command.arg(format!("{}{path}", server.url()));
    command
}

fn event(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON watch event ({e}): {line}"))
}

/// The names in a raw JSON list, with its resourceVersion.
fn listed(server: &KubeApiServer, dir: &std::path::Path, path: &str) -> (Vec<String>, String) {
    let output = curl(server, dir, path).output().expect("running curl");
    assert!(output.status.success(), "curl {path}: {output:?}");
    let list: Value = serde_json::from_slice(&output.stdout).expect("a JSON list");
    let names = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["metadata"]["name"].as_str().unwrap_or("?").to_string())
        .collect();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    (names, rv)
}

#[test]
fn repeated_lists_show_every_change_in_between() {
    // The server keeps the last list body it rendered (a benchmark lists
    // 1,000 pods over and over): no change may be hidden by it.
    let server = KubeApiServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let pods = "/api/v1/namespaces/ns/pods";
    server.apply(pod("ns", "a", json!({})));
    let (names, rv) = listed(&server, dir.path(), pods);
    assert_eq!(names, ["a"]);
    assert_eq!(listed(&server, dir.path(), pods), (names, rv.clone()));

    server.apply(pod("ns", "b", json!({"app": "web"})));
    let (names, rv_b) = listed(&server, dir.path(), pods);
    assert_eq!(names, ["a", "b"]);
    assert_ne!(rv_b, rv);
    server.apply(running(pod("ns", "b", json!({"app": "web"}))));
    let output = curl(&server, dir.path(), pods)
        .output()
        .expect("running curl");
    let list: Value = serde_json::from_slice(&output.stdout).expect("a JSON list");
    assert_eq!(list["items"][1]["status"]["phase"], "Running", "{list}");

    // Other namespaces, all namespaces and selectors are lists of their own.
    server.apply(pod("other", "c", json!({})));
    assert_eq!(
        listed(&server, dir.path(), "/api/v1/namespaces/other/pods").0,
        ["c"]
    );
    assert_eq!(
        listed(&server, dir.path(), "/api/v1/pods").0,
        ["a", "b", "c"]
    );
    assert_eq!(listed(&server, dir.path(), pods).0, ["a", "b"]);
    assert_eq!(
        listed(
            &server,
            dir.path(),
            &format!("{pods}?labelSelector=app%3Dweb")
        )
        .0,
        ["b"]
    );

    server.delete("pod", "ns", "a");
    assert_eq!(listed(&server, dir.path(), pods).0, ["b"]);
}

#[test]
fn raw_watches_stream_expire_and_bookmark() {
    let server = KubeApiServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let start = server.resource_version();
    server.apply(pod("ns", "a", json!({})));
    let path = format!("/api/v1/namespaces/ns/pods?watch=1&resourceVersion={start}");
    let mut watch = Lines::spawn(curl(&server, dir.path(), &path));
    // The change after `start` is replayed (the namespace's creation is not a pod event)…
    let first = event(&watch.wait_for("the replayed ADDED", |_| true));
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["metadata"]["name"], "a");
    assert_eq!(first["object"]["kind"], "Pod");
    // …and later changes arrive one by one while the response is open.
    server.apply(pod("ns", "b", json!({})));
    let second = event(&watch.wait_for("a live ADDED", |_| true));
    assert_eq!(
        (
            second["type"].as_str(),
            second["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("b"))
    );
    assert!(watch.still_running(), "the watch is still open");
    server.apply(running(pod("ns", "b", json!({}))));
    let third = event(&watch.wait_for("a live MODIFIED", |_| true));
    assert_eq!(third["type"], "MODIFIED");
    let rv_b: u64 = third["object"]["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .expect("a numeric resourceVersion");
    assert_eq!(rv_b, server.resource_version());
    server.delete("pod", "ns", "a");
    let fourth = event(&watch.wait_for("a live DELETED", |_| true));
    assert_eq!(
        (
            fourth["type"].as_str(),
            fourth["object"]["metadata"]["name"].as_str()
        ),
        (Some("DELETED"), Some("a"))
    );
    drop(watch);

    // Label selectors apply to watches; no resourceVersion starts with the current objects.
    server.apply(pod("ns", "c", json!({"app": "web"})));
    let mut selected = Lines::spawn(curl(
        &server,
        dir.path(),
        "/api/v1/pods?watch=true&labelSelector=app%3Dweb&timeoutSeconds=2",
    ));
    let initial = event(&selected.wait_for("the synthetic ADDED", |_| true));
    assert_eq!(
        (
            initial["type"].as_str(),
            initial["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("c"))
    );
    assert!(
        selected.rest().is_empty(),
        "timeoutSeconds ends the watch and nothing else matched"
    );

    // A resourceVersion older than the history: 410 Expired, in the stream.
    server.compact();
    let mut expired = Lines::spawn(curl(&server, dir.path(), &path));
    let lines = expired.rest();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let error = event(&lines[0]);
    assert_eq!(error["type"], "ERROR");
    assert_eq!(error["object"]["kind"], "Status");
    assert_eq!(error["object"]["code"], 410);
    assert_eq!(error["object"]["reason"], "Expired");
    assert!(
        error["object"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("too old resource version")
    );

    // Bookmarks carry the current resourceVersion.
    let now = server.resource_version();
    let mut bookmarks = Lines::spawn(curl(
        &server,
        dir.path(),
        &format!(
            "/api/v1/namespaces/ns/pods?watch=1&resourceVersion={now}&allowWatchBookmarks=true&timeoutSeconds=3"
        ),
    ));
    let lines = bookmarks.rest();
    assert!(lines.len() >= 2, "a bookmark about every second: {lines:?}");
    for line in &lines {
        let bookmark = event(line);
        assert_eq!(bookmark["type"], "BOOKMARK");
        assert_eq!(bookmark["object"]["kind"], "Pod");
        assert_eq!(
            bookmark["object"]["metadata"]["resourceVersion"],
            now.to_string()
        );
    }
}

#[test]
fn malformed_requests_get_status_objects() {
    let server = KubeApiServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |mut command: Command| {
        let output = command.output().expect("running curl");
        serde_json::from_slice::<Value>(&output.stdout).expect("a JSON Status")
    };
    let mut post = curl(&server, dir.path(), "/api/v1/namespaces/default/configmaps");
    post.args([
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data",
        "{not json",
    ]);
    let status = run(post);
    assert_eq!(
        (status["kind"].as_str(), status["code"].as_i64()),
        (Some("Status"), Some(400))
    );
    assert_eq!(status["reason"], "BadRequest");

    let mut unnamed = curl(&server, dir.path(), "/api/v1/namespaces/default/configmaps");
    unnamed.args([
        "-X",
        "POST",
        "--data",
        r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{}}"#,
    ]);
    assert_eq!(run(unnamed)["code"], 422);

    let status = run(curl(&server, dir.path(), "/api/v1/services"));
    assert_eq!(
        (status["code"].as_i64(), status["reason"].as_str()),
        (Some(404), Some("NotFound"))
    );

    let status = run(curl(
        &server,
        dir.path(),
        "/api/v1/pods?labelSelector=a%20in%20b",
    ));
    assert_eq!(status["code"], 400);

    let anonymous = curl_as(&server, dir.path(), "/api/v1/pods", None);
    let status = run(anonymous);
    assert_eq!(
        (status["code"].as_i64(), status["reason"].as_str()),
        (Some(401), Some("Unauthorized"))
    );
    assert_eq!(server.requests().last().and_then(|r| r.user.clone()), None);

    // The serving certificate also names localhost and kube.krew-wasm.test.
    for host in ["localhost", server.server_name()] {
        let mut by_name = curl(&server, dir.path(), "/version");
        let url = format!("https://{host}:{}/version", server.port());
        let resolve = format!("{host}:{}:127.0.0.1", server.port());
        let args: Vec<_> = by_name.get_args().map(|a| a.to_owned()).collect();
        by_name = Command::new(require_tool("curl"));
        by_name
            .args(&args[..args.len() - 1])
            .args(["--resolve", &resolve])
            .arg(url);
        assert_eq!(
            run(by_name)["gitVersion"],
            "v1.32.0-krew-wasm-test",
            "TLS as {host}"
        );
    }
}
