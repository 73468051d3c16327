//! `kube-api-serve --kubeconfig PATH [--pods N]`: the test Kubernetes API
//! server ([`test_support::KubeApiServer`]) as a process, for benchmarks
//! (`bench/run`) and manual experiments with real `kubectl`.
//!
//! It loads the fixtures (namespace `bench`; Secret `bench/web-tls` holding
//! a two-certificate PEM bundle, its key and two plain values; with
//! `--pods N`, N pods in `bench`), writes a kubeconfig with a bearer token
//! for the server to PATH (mode 0600), prints `ready` on stdout and serves
//! until its stdin closes. SIGTERM keeps its default action and ends the
//! process at once: the server holds nothing that needs saving.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine as _;
use serde_json::{Value, json};
use test_support::KubeApiServer;

const USAGE: &str = "usage: kube-api-serve --kubeconfig PATH [--pods N]";

struct Options {
    kubeconfig: PathBuf,
    pods: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut kubeconfig = None;
    let mut pods = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value()?)),
            "--pods" => {
                let n = value()?;
                pods = n
                    .parse()
                    .map_err(|_| format!("--pods: not a number: {n:?}"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let kubeconfig = kubeconfig.ok_or("--kubeconfig PATH is required")?;
    Ok(Options { kubeconfig, pods })
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("kube-api-serve: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let server = KubeApiServer::start();
    load_fixtures(&server, options.pods);
    write_private(&options.kubeconfig, &server.kubeconfig_with_token("bench"))
        .unwrap_or_else(|e| panic!("writing {}: {e}", options.kubeconfig.display()));
    eprintln!(
        "kube-api-serve: {} (kubeconfig {}, {} pods); serving until stdin closes",
        server.url(),
        options.kubeconfig.display(),
        options.pods
    );
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready").expect("writing `ready` on stdout");
    stdout.flush().expect("flushing stdout");
    drop(stdout);

    // Whatever arrives on stdin is ignored; its end is the signal to stop.
    let mut sink = [0u8; 4096];
    let mut stdin = std::io::stdin().lock();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    drop(server);
    ExitCode::SUCCESS
}

fn b64(bytes: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn load_fixtures(server: &KubeApiServer, pods: usize) {
    server.apply(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "bench"},
    }));

    // A leaf and a CA in one bundle: the decoder describes both.
    let (leaf, key) = server.client_certificate("web.bench.test", &["bench"]);
    let bundle = format!("{leaf}{}", server.ca_pem());
    server.apply(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "web-tls", "namespace": "bench", "labels": {"app": "web"}},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": b64(&bundle),
            "tls.key": b64(&key),
            "username": b64("admin"),
            "password": b64("correct horse battery staple"),
        },
    }));

    for i in 0..pods {
        server.apply(pod(i));
    }
}

/// A running pod such as a Deployment leaves behind, for list benchmarks.
fn pod(i: usize) -> Value {
    let name = format!("web-{i:05}");
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "bench",
            "labels": {"app": "web", "tier": if i.is_multiple_of(2) { "frontend" } else { "backend" }},
        },
        "spec": {
            "nodeName": format!("node-{}", i % 3),
            "containers": [{
                "name": "web", "image": "registry.example/web:1.4.2",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            }],
        },
        "status": {
            "phase": "Running",
            "podIP": format!("10.0.{}.{}", i / 250, i % 250 + 1),
            "containerStatuses": [{
                "name": "web", "ready": true, "restartCount": 0,
                "image": "registry.example/web:1.4.2", "imageID": "",
                "state": {"running": {}},
            }],
        },
    })
}

/// Writes `contents` to `path`, readable by its owner only (it holds a token).
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}
