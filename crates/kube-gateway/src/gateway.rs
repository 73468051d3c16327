//! The `wasi:http` hook that stands between a plugin and the API server.

use std::future::Future;
use std::sync::Arc;

use http::header::{AUTHORIZATION, COOKIE, HOST, HeaderName, PROXY_AUTHORIZATION};
use http_body_util::BodyExt as _;
use kube::config::KubeConfigOptions;
use tower::ServiceExt as _;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::origin::Origin;
use crate::selection::{Selection, SelectionError};
use crate::transport::{self, Transport};

/// What `send_request` hands back to wasmtime: the response and a future for
/// errors that happen after it (none here: errors travel in the body).
type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
);

/// The `wasi:http` hooks of one plugin run. Allows requests to the selected
/// cluster's API server, refuses credentials set by the guest, and forwards
/// what it allows through a host-side kube-rs client that holds the user's
/// credentials. The transport is built on the first request.
///
/// Origins the user granted the plugin ([`ApiGateway::with_granted_hosts`])
/// are reached directly, as the plugin wrote the request: the host adds
/// nothing to them, least of all a credential.
#[derive(Clone)]
pub struct ApiGateway {
    shared: Arc<Shared>,
    granted: Arc<[Origin]>,
}

/// Where an admitted request goes.
enum Destination {
    /// The API server, at this path and query (relative to the server URL).
    Cluster(String),
    /// A granted origin, unchanged.
    Granted,
}

struct Shared {
    plugin: String,
    target: Result<Selection, SelectionError>,
    transport: tokio::sync::OnceCell<Result<Transport, String>>,
}

impl ApiGateway {
    /// A gateway for plugin `plugin` (named in messages) to the selected
    /// cluster, or to nothing when no cluster could be selected.
    pub fn new(plugin: impl Into<String>, target: Result<Selection, SelectionError>) -> Self {
        Self {
            shared: Arc::new(Shared {
                plugin: plugin.into(),
                target,
                transport: tokio::sync::OnceCell::new(),
            }),
            granted: Arc::new([]),
        }
    }

    /// Also lets the plugin reach these origins (its `host:` grants).
    pub fn with_granted_hosts(mut self, origins: impl IntoIterator<Item = Origin>) -> Self {
        self.granted = origins.into_iter().collect();
        self
    }

    /// Decides where a request may go, if anywhere.
    fn admit(&self, request: &http::Request<WasiBody>) -> Result<Destination, Refusal> {
        let requested = Origin::of(request.uri());
        let to_cluster = match (&self.shared.target, &requested) {
            (Ok(selection), Some(requested)) => selection.origin().same_origin(requested),
            _ => false,
        };
        if !to_cluster
            && let Some(requested) = &requested
            && self.granted.iter().any(|g| g.same_origin(requested))
        {
            return Ok(Destination::Granted);
        }
        let selection = self
            .shared
            .target
            .as_ref()
            .map_err(|e| Refusal::NoCluster {
                requested: request.uri().to_string(),
                reason: e.clone(),
            })?;
        let server = selection.origin();
        if !to_cluster {
            return Err(Refusal::OtherHost {
                requested: requested.map_or_else(|| request.uri().to_string(), |r| r.to_string()),
                server: server.to_string(),
            });
        }
        if let Some(header) = request.headers().keys().find(|h| is_credential(h)) {
            return Err(Refusal::Credential(header.to_string()));
        }
        if has_user_info(request.uri()) {
            return Err(Refusal::UserInfo);
        }
        let path = request.uri().path();
        // Requests written against the server URL carry its path prefix;
        // the client adds it back.
        let path = match path.strip_prefix(server.path_prefix()) {
            Some(rest) if rest.starts_with('/') => rest,
            _ => path,
        };
        if has_dot_segment(path) {
            return Err(Refusal::DotSegment(path.to_string()));
        }
        if let Some(action) = upgrade_action(path) {
            return Err(Refusal::Upgrade(action));
        }
        Ok(Destination::Cluster(match request.uri().query() {
            Some(query) => format!("{path}?{query}"),
            None => path.to_string(),
        }))
    }
}

impl WasiHttpHooks for ApiGateway {
    /// kube-rs's client sets `Host` for the real server; a guest-set one
    /// would be refused anyway (it is on wasmtime's forbidden list).
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Result<Sent, HttpError>> + Send> {
        match self.admit(&request) {
            Ok(Destination::Cluster(path_and_query)) => {
                let shared = self.shared.clone();
                Box::new(async move { shared.forward(request, path_and_query).await })
            }
            Ok(Destination::Granted) => Box::new(send_to_granted_host(request, options)),
            Err(refusal) => {
                eprintln!("krew-wasm: plugin `{}`: {refusal}", self.shared.plugin);
                Box::new(async { Err(HttpError::HttpRequestDenied) })
            }
        }
    }
}

impl Shared {
    async fn forward(
        &self,
        request: http::Request<WasiBody>,
        path_and_query: String,
    ) -> Result<Sent, HttpError> {
        let transport = self.transport().await?;
        let (parts, body) = request.into_parts();
        let mut forwarded = http::Request::builder()
            .method(parts.method)
            .uri(path_and_query);
        for (name, value) in &parts.headers {
            if name != HOST {
                forwarded = forwarded.header(name, value);
            }
        }
        // The guest's body goes out as the guest writes it.
        let forwarded = forwarded
            .body(body)
            .map_err(|e| HttpError::InternalError(Some(e.to_string())))?;
        let response = transport.oneshot(forwarded).await.map_err(|e| {
            eprintln!(
                "krew-wasm: plugin `{}`: request to the API server failed: {}",
                self.plugin,
                error_chain(&*e)
            );
            transport_error(&*e)
        })?;
        let response = response.map(|body| body.map_err(HttpError::from).boxed_unsync());
        Ok((response, Box::new(async { Ok(()) })))
    }

    /// The host's authenticated transport, built on first use.
    async fn transport(&self) -> Result<Transport, HttpError> {
        let built = self
            .transport
            .get_or_init(|| async {
                let selection = self.target.as_ref().map_err(|e| e.to_string())?;
                build_transport(selection).await
            })
            .await;
        built.clone().map_err(|message| {
            eprintln!(
                "krew-wasm: plugin `{}`: cannot reach the cluster: {message}",
                self.plugin
            );
            HttpError::ConfigurationError
        })
    }
}

/// Sends a request to an origin the user granted, as the plugin wrote it,
/// over wasmtime-wasi-http's own client (TLS verified against the webpki
/// roots). `set_host_header` is off for the API server's sake: add it here.
async fn send_to_granted_host(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<Sent, HttpError> {
    if let Some(authority) = request.uri().authority()
        && let Ok(value) = http::HeaderValue::from_str(authority.as_str())
    {
        request.headers_mut().insert(HOST, value);
    }
    let (response, errors) = wasmtime_wasi_http::default_send_request(request, options).await?;
    let response = response.map(|body| body.boxed_unsync());
    Ok((response, Box::new(errors)))
}

async fn build_transport(selection: &Selection) -> Result<Transport, String> {
    let options = KubeConfigOptions {
        context: Some(selection.context_name().to_string()),
        cluster: selection.flags.cluster.clone(),
        user: selection.flags.user.clone(),
    };
    let config = kube::Config::from_custom_kubeconfig(selection.kubeconfig.clone(), &options)
        .await
        .map_err(|e| e.to_string())?;
    transport::build(&config)
}

/// Headers that carry or change identity. Credentials are the host's alone.
fn is_credential(name: &HeaderName) -> bool {
    *name == AUTHORIZATION
        || *name == PROXY_AUTHORIZATION
        || *name == COOKIE
        || name.as_str().starts_with("impersonate-")
}

/// Whether the URL carries `user:password@` (or a token) before the host:
/// a credential of the plugin's, refused like a credential header.
fn has_user_info(uri: &http::Uri) -> bool {
    uri.authority().is_some_and(|a| a.as_str().contains('@'))
}

/// Whether `path` has a `.` or `..` segment (also percent-encoded). Behind a
/// path prefix (Rancher's `/k8s/clusters/c-1`), `..` would carry the user's
/// credentials to the proxy's own API instead of the cluster's.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

/// `exec`, `attach` or `portforward` when `path` is such a pod subresource.
fn upgrade_action(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [.., "pods", _, action @ ("exec" | "attach" | "portforward")] => Some(action.to_string()),
        _ => None,
    }
}

/// An error and its causes, one line: hyper's own messages are terse.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let cause = e.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = e.source();
    }
    text
}

fn transport_error(error: &(dyn std::error::Error + 'static)) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return HttpError::ConnectionRefused;
        }
        source = e.source();
    }
    HttpError::InternalError(Some(error.to_string()))
}

/// Why a request was refused; printed on stderr, one line.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error(
        "refused a request to {requested}: it is not a host granted to the plugin, and no cluster's API server can be reached: {reason}"
    )]
    NoCluster {
        requested: String,
        reason: SelectionError,
    },
    #[error(
        "refused a request to {requested}: plugins may only reach the cluster's API server {server} and the hosts granted to them (`krew-wasm grant NAME host:URL`)"
    )]
    OtherHost { requested: String, server: String },
    #[error(
        "refused a request that set the `{0}` header: krew-wasm adds the user's credentials itself, and a plugin may not supply or change them"
    )]
    Credential(String),
    #[error(
        "refused a request with credentials in its URL (`user@host`): krew-wasm adds the user's credentials itself, and a plugin may not supply them"
    )]
    UserInfo,
    #[error(
        "refused a request for {0}: paths with `.` or `..` segments could leave the cluster's API"
    )]
    DotSegment(String),
    #[error(
        "refused `{0}`: exec, attach and port-forward need a connection upgrade (SPDY/WebSocket), which plugins cannot make"
    )]
    Upgrade(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_headers() {
        for name in [
            "authorization",
            "proxy-authorization",
            "cookie",
            "impersonate-user",
            "impersonate-group",
        ] {
            assert!(is_credential(&HeaderName::from_static(name)), "{name}");
        }
        for name in ["accept", "content-type", "user-agent"] {
            assert!(!is_credential(&HeaderName::from_static(name)), "{name}");
        }
    }

    #[test]
    fn user_info_in_urls() {
        for url in ["https://token@10.0.0.1:6443/api", "https://a:b@host/api"] {
            assert!(has_user_info(&url.parse().unwrap()), "{url}");
        }
        for url in ["https://10.0.0.1:6443/api?x=a@b", "/api/v1/pods"] {
            assert!(!has_user_info(&url.parse().unwrap()), "{url}");
        }
    }

    #[test]
    fn dot_segments() {
        for path in [
            "/k8s/clusters/c-1/../../v3/tokens",
            "/api/./v1",
            "/api/%2E%2E/x",
            "/api/.%2e/x",
        ] {
            assert!(has_dot_segment(path), "{path}");
        }
        for path in [
            "/api/v1/namespaces/a/configmaps/my.config",
            "/api/v1/pods..x",
            "/",
        ] {
            assert!(!has_dot_segment(path), "{path}");
        }
    }

    #[test]
    fn upgrade_subresources() {
        assert_eq!(
            upgrade_action("/api/v1/namespaces/a/pods/p/exec").as_deref(),
            Some("exec")
        );
        assert_eq!(
            upgrade_action("/api/v1/namespaces/a/pods/p/portforward").as_deref(),
            Some("portforward")
        );
        assert_eq!(upgrade_action("/api/v1/namespaces/a/pods/p/log"), None);
        assert_eq!(upgrade_action("/api/v1/namespaces/a/pods"), None);
    }
}
