//! Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TestCa;

/// How to configure a test registry.
#[derive(Default)]
pub struct RegistryConfig<'a> {
    /// Serve TLS with a certificate from this CA.
    pub tls: Option<&'a TestCa>,
    /// Require htpasswd basic auth with this user and password.
    pub basic_auth: Option<(&'a str, &'a str)>,
    /// Require bearer tokens from this issuer (docker's token auth).
    pub token_auth: Option<&'a crate::TokenServer>,
}

/// A running registry, stopped when dropped.
pub struct Registry {
    child: Child,
    host: String,
    storage: PathBuf,
    ca_pem: Option<String>,
    credentials: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// A plain-HTTP registry without auth.
    pub fn start() -> Self {
        Self::start_with(RegistryConfig::default())
    }

    pub fn start_with(config: RegistryConfig<'_>) -> Self {
        let binary = crate::require_tool("docker-registry");
        let dir = tempfile::tempdir().expect("registry temp dir");
        let storage = dir.path().join("storage");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:0\n",
            storage.display()
        );
        if let Some(ca) = config.tls {
            let (cert, key) = ca.server_cert();
            std::fs::write(dir.path().join("server.crt"), cert).expect("writing server.crt");
            std::fs::write(dir.path().join("server.key"), key).expect("writing server.key");
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("server.crt").display(),
                dir.path().join("server.key").display()
            ));
        }
        if let Some((user, password)) = config.basic_auth {
            let hash = bcrypt::hash(password, 5).expect("bcrypt");
            std::fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n"))
                .expect("writing htpasswd");
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: krew-wasm-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        if let Some(issuer) = config.token_auth {
            yaml.push_str(&issuer.registry_auth_yaml(dir.path()));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, yaml).expect("writing the registry config");
        let log_path = dir.path().join("registry.log");
        let log = std::fs::File::create(&log_path).expect("creating the registry log");
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let mut registry = Registry {
            child,
            host: String::new(),
            storage,
            ca_pem: config.tls.map(|ca| ca.ca_pem().to_string()),
            credentials: config
                .basic_auth
                .or(config.token_auth.map(crate::TokenServer::credentials))
                .map(|(u, p)| (u.to_string(), p.to_string())),
            _dir: dir,
        };
        registry.host = wait_for_listen_address(&log_path, &mut registry.child);
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn is_tls(&self) -> bool {
        self.ca_pem.is_some()
    }

    /// Writes the CA that signed this registry's certificate to `dir/ca.crt`
    /// (the layout of skopeo's `--dest-cert-dir`) and returns that path.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let pem = self
            .ca_pem
            .as_deref()
            .expect("this registry does not use TLS");
        std::fs::create_dir_all(dir).expect("creating the CA dir");
        let path = dir.join("ca.crt");
        std::fs::write(&path, pem).expect("writing ca.crt");
        path
    }

    /// The user and password a client needs, if the registry wants any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// Where the registry keeps the bytes of a blob, so a test can make it
    /// serve something else.
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_listen_address(log_path: &Path, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(log_path).unwrap_or_default();
        if let Some(addr) = log
            .lines()
            .find_map(|line| line.split("listening on ").nth(1))
            .map(|rest| {
                rest.split(|c: char| c.is_whitespace() || c == '"' || c == ',')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
        {
            let port = addr.rsplit(':').next().unwrap_or_default();
            return format!("127.0.0.1:{port}");
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("docker-registry exited with {status} before listening:\n{log}");
        }
        assert!(
            Instant::now() < deadline,
            "docker-registry did not start listening within 20 s:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
