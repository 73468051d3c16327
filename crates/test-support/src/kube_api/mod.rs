//! A test Kubernetes API server, in process.
//!
//! No kube-apiserver can be installed where krew-wasm's tests run, so
//! [`KubeApiServer`] stands in for one. It speaks the real wire protocol for
//! what the tests use, and its own tests (`tests/kube_api.rs`) hold it to
//! the real `kubectl`.
//!
//! # What it implements
//!
//! - **TLS only**, on `127.0.0.1:<random port>`, HTTP/1.1 (ALPN `http/1.1`),
//!   with its own CA. The serving certificate names `localhost`,
//!   `kube.krew-wasm.test` and 127.0.0.1.
//! - **Authentication** as kube-apiserver does it: a client certificate from
//!   the server's client CA (user = CN, groups = O), else a bearer token,
//!   else HTTP basic auth (kube-apiserver dropped basic auth in 1.19, but
//!   kubectl still sends it from a kubeconfig's `username`/`password`).
//!   Anything else: `401 Unauthorized`. Every request is recorded
//!   ([`KubeApiServer::requests`]), authenticated or not.
//! - **Authorization**: everyone may do everything, except users given to
//!   [`KubeApiServer::forbid`]: 403 on every resource request, with RBAC's
//!   message (`secrets "x" is forbidden: User "bob" cannot get resource
//!   "secrets" in API group "" in the namespace "default"`). Discovery stays
//!   allowed, as RBAC's `system:discovery` role does.
//! - **Resources** (core `v1`): `configmaps`, `events`, `pods` (plus
//!   `pods/log`), `secrets` in namespaces, and `namespaces`. Verbs: get,
//!   list (per namespace and across all), watch, create, update (PUT), patch,
//!   delete, deletecollection; `dryRun=All`. Objects get `uid`,
//!   `creationTimestamp`, `namespace` and a `resourceVersion` from one global
//!   counter; PUT with a stale resourceVersion is a 409 Conflict. Secrets get
//!   `type: Opaque` and `stringData` folded into `data`; namespaces their
//!   `kubernetes.io/metadata.name` label and phase `Active`; pods phase
//!   `Pending`. Creating in a missing namespace is a 404, like the real one.
//!   `default`, `kube-system`, `kube-public` and `kube-node-lease` exist.
//! - **Selectors**: `labelSelector` (`a=b`, `a==b`, `a!=b`, `a`, `!a`,
//!   `a in (x,y)`, `a notin (x)`) and `fieldSelector` (`=`, `==`, `!=` on
//!   any dotted path, e.g. `metadata.name`, `metadata.namespace`,
//!   `status.phase`).
//! - **Watches**: `?watch=true|1` (or `/api/v1/watch/…`), a chunked body
//!   with one JSON event per line. Without `resourceVersion` (or `0`) the
//!   current objects come first as ADDED; with `resourceVersion=N` only
//!   changes after N, from a bounded history (1000 changes; see
//!   [`KubeApiServer::set_watch_history`] and [`KubeApiServer::compact`]).
//!   An N older than the history gets kube-apiserver's answer: HTTP 200 and
//!   one `ERROR` event holding a `410 Expired` Status. `allowWatchBookmarks`
//!   sends a BOOKMARK every second; `timeoutSeconds` ends the watch;
//!   `sendInitialEvents=true` ends the initial events with the
//!   `k8s.io/initial-events-end` bookmark. Selectors apply to watches, with
//!   objects entering/leaving the selection sent as ADDED/DELETED.
//! - **Tables**: `kubectl get` asks for `Accept: application/json;as=Table;
//!   v=v1;g=meta.k8s.io`, and gets `meta.k8s.io/v1` Tables with
//!   kube-apiserver's columns (NAME/TYPE/DATA/AGE for secrets,
//!   NAME/READY/STATUS/RESTARTS/AGE for pods, …), so its output looks like
//!   a real cluster's; also in watches. `includeObject` is honoured.
//! - **Discovery**: `/version` (v1.32), `/api`, `/api/v1`, `/apis` (no
//!   groups), and a skeletal `/openapi/v3` (below), always plain
//!   `application/json`: kubectl asks for aggregated discovery first and
//!   falls back to these documents.
//! - **Protobuf request bodies** for ConfigMap, Secret and Namespace: kubectl
//!   1.32's typed clients (`kubectl create configmap|secret|namespace`) send
//!   `application/vnd.kubernetes.protobuf` and never fall back to JSON.
//!   Responses are always JSON, which clients accept.
//! - **Errors** are `Status` objects shaped like kube-apiserver's
//!   (`secrets "nope" not found`, `namespaces "nope" not found`, …).
//!   Malformed JSON is a 400, never a panic.
//!
//! # What it deliberately does not do
//!
//! - `limit`/`continue`: lists return everything with no continue token.
//!   Lists ignore `resourceVersion` (always the current state).
//! - Strategic merge patch is treated as a JSON merge patch (lists are
//!   replaced, not merged by key); server-side apply is a merge patch that
//!   can create, without field ownership or `managedFields`. JSON patch
//!   (RFC 6902) is implemented.
//! - OpenAPI: `/openapi/v3` and `/openapi/v3/api/v1` exist only so that
//!   `kubectl apply`/`create -f` find the `fieldValidation` parameter and
//!   leave validation to the server (which does none); no schemas, and no
//!   `/openapi/v2`.
//! - No validation beyond names and types, no admission, no graceful
//!   deletion or finalizers (deletes are immediate; deleting a namespace
//!   deletes its objects at once), no status subresources, no protobuf
//!   responses (always JSON) nor protobuf bodies of other kinds, no HTTP/2,
//!   no exec/attach/port-forward. `pods/log` ignores `container`,
//!   `tailLines` and friends.

mod auth;
mod http;
mod protobuf;
mod select;
mod store;
mod table;
mod watch;

use std::net::TcpListener as StdTcpListener;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use auth::{Auth, identity_of_certificate};
use http::Shared;
use store::Store;

/// One request as it reached the server.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path and query, as sent (`/api/v1/namespaces/ns/pods?watch=1`).
    pub path: String,
    /// The authenticated user; `None` when the request was refused with 401.
    pub user: Option<String>,
    /// The user's groups (from a client certificate's O attributes), plus
    /// `system:authenticated`; empty when refused.
    pub groups: Vec<String>,
    /// Every header, names lower-case, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The credentials a kubeconfig written by [`KubeApiServer::kubeconfig`] holds.
#[derive(Debug, Clone)]
pub enum KubeconfigUser {
    Token(String),
    ClientCertificate {
        cert_pem: String,
        key_pem: String,
    },
    Basic {
        username: String,
        password: String,
    },
    /// No credentials at all (the server answers 401).
    None,
}

/// A running test API server; stopped when dropped. See the module docs.
pub struct KubeApiServer {
    shared: Arc<Shared>,
    port: u16,
    token: String,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl KubeApiServer {
    /// Starts a server on 127.0.0.1 (a random port) on its own thread and
    /// tokio runtime, with a bearer token for user `alice` ([`Self::token`]).
    pub fn start() -> Self {
        let (auth, tls) = Auth::new();
        let token = format!(
            "alice-{:016x}{:016x}",
            store::random_u64(),
            store::random_u64()
        );
        auth.add_token(&token, "alice", &[]);
        let listener = StdTcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("making the listener non-blocking");
        let port = listener.local_addr().expect("listener address").port();
        let shared = Arc::new(Shared {
            store: Store::new(),
            auth,
            requests: Mutex::new(Vec::new()),
            port,
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kube-api-test")
            .enable_all()
            .build()
            .expect("the test API server's tokio runtime");
        let (shutdown, stop) = oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("kube-api-test".to_string())
            .spawn(move || {
                runtime.block_on(serve(listener, TlsAcceptor::from(tls), serving, stop));
                // Cancels open watches and connections.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("starting the test API server's thread");
        Self {
            shared,
            port,
            token,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA that signed the serving certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.shared.auth.ca_pem
    }

    /// The DNS name in the serving certificate besides `localhost`
    /// (for `tls-server-name` tests).
    pub fn server_name(&self) -> &'static str {
        auth::SERVER_NAME
    }

    /// A bearer token for user `alice`.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Accepts `token` as a bearer token for `user`.
    pub fn add_token(&self, token: &str, user: &str) {
        self.shared.auth.add_token(token, user, &[]);
    }

    /// Accepts HTTP basic auth for `user` with `password`.
    pub fn add_basic_user(&self, user: &str, password: &str) {
        self.shared.auth.add_basic_user(user, password);
    }

    /// A client certificate and key (PEM) for `user` in `groups` (at most
    /// two), issued by the client CA the server trusts.
    pub fn client_certificate(&self, user: &str, groups: &[&str]) -> (String, String) {
        self.shared.auth.client_certificate(user, groups)
    }

    /// From now on `user` gets 403 Forbidden on every resource request.
    pub fn forbid(&self, user: &str) {
        self.shared.auth.forbid(user);
    }

    /// A kubeconfig (YAML) with one cluster (this server, its CA inline),
    /// one user and one context, all named `context`, which is current.
    pub fn kubeconfig(&self, context: &str, user: &KubeconfigUser) -> String {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let user = match user {
            KubeconfigUser::Token(token) => format!("    token: {}\n", q(token)),
            KubeconfigUser::ClientCertificate { cert_pem, key_pem } => format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                b64(cert_pem),
                b64(key_pem)
            ),
            KubeconfigUser::Basic { username, password } => {
                format!(
                    "    username: {}\n    password: {}\n",
                    q(username),
                    q(password)
                )
            }
            KubeconfigUser::None => String::new(),
        };
        let user = if user.is_empty() {
            "  user: {}\n".to_string()
        } else {
            format!("  user:\n{user}")
        };
        let name = q(context);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {}\n    \
             certificate-authority-data: {}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    \
             user: {name}\ncurrent-context: {name}\nusers:\n- name: {name}\n{user}",
            q(&self.url()),
            b64(self.ca_pem()),
        )
    }

    /// [`Self::kubeconfig`] with alice's bearer token.
    pub fn kubeconfig_with_token(&self, context: &str) -> String {
        self.kubeconfig(context, &KubeconfigUser::Token(self.token.clone()))
    }

    /// [`Self::kubeconfig`] with a new client certificate for `user` in `groups`.
    pub fn kubeconfig_with_client_cert(
        &self,
        context: &str,
        user: &str,
        groups: &[&str],
    ) -> String {
        let (cert_pem, key_pem) = self.client_certificate(user, groups);
        self.kubeconfig(
            context,
            &KubeconfigUser::ClientCertificate { cert_pem, key_pem },
        )
    }

    fn resource(name: &str) -> &'static store::Resource {
        store::resource(name).unwrap_or_else(|| {
            panic!("the test API server has no resource {name:?}: it serves configmaps, events, namespaces, pods and secrets")
        })
    }

    /// Creates or replaces an object (watches see ADDED or MODIFIED), and
    /// returns it as stored. The type comes from `kind`; a namespaced object
    /// without `metadata.namespace` goes to `default`, and a missing
    /// namespace is created. Replacing keeps `uid` and `creationTimestamp`
    /// and ignores any `resourceVersion` in `object`.
    pub fn apply(&self, mut object: Value) -> Value {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let resource = Self::resource(&kind);
        let name = store::name_of(&object).to_string();
        assert!(
            !name.is_empty(),
            "apply: the object has no metadata.name: {object}"
        );
        let namespace = match store::namespace_of(&object) {
            _ if !resource.namespaced => String::new(),
            "" => "default".to_string(),
            ns => ns.to_string(),
        };
        let store = &self.shared.store;
        if resource.namespaced && store.get(store::namespaces(), "", &namespace).is_none() {
            let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
            // A concurrent creation is fine too.
            let _ = store.create(store::namespaces(), "", ns, false);
        }
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("resourceVersion");
        }
        let result = match store.get(resource, &namespace, &name) {
            Some(_) => store.update(resource, &namespace, &name, object, false),
            None => store.create(resource, &namespace, object, false),
        };
        result.unwrap_or_else(|e| panic!("apply: {}", e.message))
    }

    /// The stored object, if any. `resource`: plural, singular, short name
    /// or kind (`pods`, `pod`, `po`, `Pod`); `namespace` "" for namespaces.
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        self.shared
            .store
            .get(Self::resource(resource), namespace, name)
    }

    /// Objects of `resource` in `namespace`, or in all namespaces (`None`).
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        self.shared
            .store
            .list(Self::resource(resource), namespace)
            .0
    }

    /// Deletes an object (watches see DELETED); returns it if it existed.
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        self.shared
            .store
            .delete(Self::resource(resource), namespace, name, false)
            .ok()
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.resource_version()
    }

    /// Forgets the watch history: watching from any earlier resourceVersion
    /// now gets the 410 `Expired` ERROR event.
    pub fn compact(&self) {
        self.shared.store.compact();
    }

    /// Keeps only the last `changes` changes for watches to replay (default 1000).
    pub fn set_watch_history(&self, changes: usize) {
        self.shared.store.set_history_limit(changes);
    }

    /// Appends `text` to a pod's log (`pods/NAME/log`; `follow=true` streams it).
    pub fn append_log(&self, namespace: &str, pod: &str, text: &str) {
        self.shared.store.append_log(namespace, pod, text);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn clear_requests(&self) {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl Drop for KubeApiServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: StdTcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("test API server: cannot listen: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    tokio::spawn(connection(tcp, acceptor.clone(), shared.clone()));
                }
                // E.g. out of file descriptors: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
        }
    }
}

async fn connection(tcp: tokio::net::TcpStream, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    // As the real API server (Go sets it on every connection). Without it,
    // the response head waits behind the unacknowledged TLS session ticket
    // until the client's delayed ACK: 40 ms added to every first request.
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        // A failed handshake (e.g. the client does not trust our CA) ends here.
        _ => return,
    };
    let certificate = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(identity_of_certificate);
    let service =
        service_fn(move |request| http::handle(shared.clone(), certificate.clone(), request));
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .await;
}
