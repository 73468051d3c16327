//! TLS and authentication: the server's own CA and serving certificate, a
//! client CA whose certificates authenticate as their CN (user) and O
//! (groups) like kube-apiserver's `--client-ca-file`, bearer tokens, basic
//! auth users and an RBAC-like deny list.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) user: String,
    pub(crate) groups: Vec<String>,
}

impl Identity {
    fn new(user: &str, groups: &[&str]) -> Self {
        let mut all: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        all.push("system:authenticated".to_string());
        Self {
            user: user.to_string(),
            groups: all,
        }
    }
}

/// The DNS name in the serving certificate besides `localhost`.
pub(crate) const SERVER_NAME: &str = "kube.krew-wasm.test";

fn ca(common_name: &str) -> (Issuer<'static, KeyPair>, String, CertificateDer<'static>) {
    let key = KeyPair::generate().expect("generating a CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).expect("self-signing a CA");
    let pem = cert.pem();
    let der = cert.der().clone();
    (Issuer::new(params, key), pem, der)
}

pub(crate) struct Auth {
    pub(crate) ca_pem: String,
    client_ca: Issuer<'static, KeyPair>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    tokens: HashMap<String, Identity>,
    basic: HashMap<String, (String, Identity)>,
    forbidden: HashSet<String>,
}

/// Why a request carries no usable identity.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AuthError {
    Unauthorized,
}

impl Auth {
    /// The auth state and the TLS configuration that goes with it.
    pub(crate) fn new() -> (Self, Arc<ServerConfig>) {
        let (server_ca, ca_pem, _) = ca("krew-wasm test kube-apiserver CA");
        let (client_ca, _, client_ca_der) = ca("krew-wasm test kube client CA");

        let key = KeyPair::generate().expect("generating the serving key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), SERVER_NAME.to_string()])
                .expect("serving cert params");
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &server_ca)
            .expect("signing the serving cert");

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(client_ca_der).expect("trusting the client CA");
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .expect("client certificate verifier");
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("serving certificate");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];

        let auth = Self {
            ca_pem,
            client_ca,
            state: Mutex::new(State::default()),
        };
        (auth, Arc::new(config))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn add_token(&self, token: &str, user: &str, groups: &[&str]) {
        self.state()
            .tokens
            .insert(token.to_string(), Identity::new(user, groups));
    }

    pub(crate) fn add_basic_user(&self, user: &str, password: &str) {
        self.state().basic.insert(
            user.to_string(),
            (password.to_string(), Identity::new(user, &[])),
        );
    }

    pub(crate) fn forbid(&self, user: &str) {
        self.state().forbidden.insert(user.to_string());
    }

    pub(crate) fn is_forbidden(&self, identity: &Identity) -> bool {
        self.state().forbidden.contains(&identity.user)
    }

    /// A client certificate (PEM) and key (PEM, PKCS#8) for `user` in `groups`.
    ///
    /// rcgen keeps one value per attribute type, so at most two groups can
    /// be written (as two `O` attributes).
    pub(crate) fn client_certificate(&self, user: &str, groups: &[&str]) -> (String, String) {
        assert!(
            groups.len() <= 2,
            "the test API server can write at most two groups (O attributes) into a client certificate"
        );
        let key = KeyPair::generate().expect("generating a client key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client cert params");
        params.distinguished_name.push(DnType::CommonName, user);
        if let Some(first) = groups.first() {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *first);
        }
        if let Some(second) = groups.get(1) {
            params
                .distinguished_name
                .push(DnType::CustomDnType(vec![2, 5, 4, 10]), *second);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = params
            .signed_by(&key, &self.client_ca)
            .expect("signing the client cert");
        (cert.pem(), key.serialize_pem())
    }

    /// The identity of a request: the verified client certificate first,
    /// then the `Authorization` header (Bearer or Basic), as kube-apiserver
    /// tries its authenticators. No credentials, or wrong ones: 401.
    pub(crate) fn authenticate(
        &self,
        certificate: Option<&Identity>,
        authorization: Option<&str>,
    ) -> Result<Identity, AuthError> {
        if let Some(identity) = certificate {
            return Ok(identity.clone());
        }
        let header = authorization.ok_or(AuthError::Unauthorized)?;
        let (scheme, credentials) = header.split_once(' ').ok_or(AuthError::Unauthorized)?;
        let state = self.state();
        if scheme.eq_ignore_ascii_case("bearer") {
            return state
                .tokens
                .get(credentials.trim())
                .cloned()
                .ok_or(AuthError::Unauthorized);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(credentials.trim())
                .map_err(|_| AuthError::Unauthorized)?;
            let decoded = String::from_utf8(decoded).map_err(|_| AuthError::Unauthorized)?;
            let (user, password) = decoded.split_once(':').ok_or(AuthError::Unauthorized)?;
            return match state.basic.get(user) {
                Some((expected, identity)) if expected == password => Ok(identity.clone()),
                _ => Err(AuthError::Unauthorized),
            };
        }
        Err(AuthError::Unauthorized)
    }
}

/// The identity in a client certificate the TLS layer has verified: user
/// from the subject's CN, groups from its O attributes (as Kubernetes reads them).
pub(crate) fn identity_of_certificate(der: &CertificateDer<'_>) -> Option<Identity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let subject = cert.subject();
    let user = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let groups: Vec<&str> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .collect();
    Some(Identity::new(&user, &groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificates_carry_user_and_groups() {
        let (auth, _) = Auth::new();
        let (cert_pem, _) = auth.client_certificate("carol", &["devs", "ops"]);
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map(|c: CertificateDer<'static>| c)
            .expect("a PEM certificate");
        let identity = identity_of_certificate(&der).expect("identity");
        assert_eq!(identity.user, "carol");
        assert_eq!(identity.groups, ["devs", "ops", "system:authenticated"]);
    }

    #[test]
    fn tokens_and_basic_auth() {
        let (auth, _) = Auth::new();
        auth.add_token("t1", "alice", &[]);
        auth.add_basic_user("bob", "pw");
        let user = |h: &str| auth.authenticate(None, Some(h)).map(|i| i.user);
        assert_eq!(user("Bearer t1"), Ok("alice".to_string()));
        assert_eq!(user("Bearer t2"), Err(AuthError::Unauthorized));
        assert_eq!(user("Basic Ym9iOnB3"), Ok("bob".to_string()));
        assert_eq!(user("Basic Ym9iOnd4"), Err(AuthError::Unauthorized));
        assert_eq!(user("Basic !!"), Err(AuthError::Unauthorized));
        assert_eq!(auth.authenticate(None, None), Err(AuthError::Unauthorized));
    }
}
