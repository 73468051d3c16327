//! A token issuer for docker-registry's `token` auth: the bearer-token flow
//! that ghcr.io, Docker Hub and most hosted registries use. The registry is
//! the real one; this stands in for the authorization server and signs real
//! ES256 JWTs that the registry verifies against a certificate bundle.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rcgen::{CertificateParams, DnType, KeyPair};

/// Issues tokens to one user, for every scope it asks.
pub struct TokenServer {
    realm: String,
    credentials: (String, String),
    cert_pem: String,
    issued: Arc<AtomicUsize>,
    shutdown: Arc<AtomicBool>,
}

pub const TOKEN_SERVICE: &str = "krew-wasm-test-registry";
pub const TOKEN_ISSUER: &str = "krew-wasm-test-issuer";

impl TokenServer {
    pub fn start(user: &str, password: &str) -> Self {
        let key = KeyPair::generate().expect("token signing key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, TOKEN_ISSUER);
        let cert = params.self_signed(&key).expect("token signing certificate");
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());
        let encoding_key =
            jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("EC key");
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the token server");
        listener.set_nonblocking(true).expect("non-blocking");
        let realm = format!("http://{}/token", listener.local_addr().expect("address"));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let issued = Arc::new(AtomicUsize::new(0));
        let shutdown = Arc::new(AtomicBool::new(false));
        let (issued_count, stop) = (issued.clone(), shutdown.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        answer(stream, &expected, &encoding_key, &x5c, &issued_count);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            realm,
            credentials: (user.to_string(), password.to_string()),
            cert_pem: cert.pem(),
            issued,
            shutdown,
        }
    }

    /// The user and password it issues tokens to.
    pub fn credentials(&self) -> (&str, &str) {
        (&self.credentials.0, &self.credentials.1)
    }

    /// How many tokens were handed out.
    pub fn issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }

    /// The `auth:` section of a registry config trusting this issuer.
    pub fn registry_auth_yaml(&self, dir: &Path) -> String {
        let bundle = dir.join("token-issuer.pem");
        std::fs::write(&bundle, &self.cert_pem).expect("writing the token cert bundle");
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
            self.realm,
            bundle.display()
        )
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }
}

fn answer(
    stream: TcpStream,
    expected_auth: &str,
    key: &jsonwebtoken::EncodingKey,
    x5c: &str,
    issued: &AtomicUsize,
) {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut authorized = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorized = value.trim() == expected_auth;
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or_default();
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let access: Vec<serde_json::Value> = query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("scope="))
        .filter_map(|scope| {
            let scope = percent_encoding::percent_decode_str(scope).decode_utf8_lossy().into_owned();
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?.to_string(), parts.next()?.to_string(), parts.next()?.to_string());
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let (status, body) = if authorized {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER, "sub": "alice", "aud": TOKEN_SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": format!("{now}-{}", issued.fetch_add(1, Ordering::SeqCst)),
            "access": access,
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.x5c = Some(vec![x5c.to_string()]);
        let token = jsonwebtoken::encode(&header, &claims, key).expect("signing the token");
        (
            "200 OK",
            serde_json::json!({"token": token, "access_token": token, "expires_in": 300})
                .to_string(),
        )
    } else {
        (
            "401 Unauthorized",
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.to_string(),
        )
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
