//! The host's HTTP client to the API server: kube-rs's configuration and
//! authentication layers over a hyper client whose request body is the
//! guest's own body, so request bodies stream out as the guest writes them
//! (kube-rs's `Client` takes whole bodies only).

use base64::Engine as _;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt as _;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt as _};
use wasmtime_wasi_http::WasiBody;

/// Sends a guest's request (path relative to the server) with the user's
/// credentials; the response body streams.
pub(crate) type Transport = BoxCloneSyncService<Request<WasiBody>, Response<Incoming>, BoxError>;

/// Builds the transport for `config`: TLS (CA, client certificate, insecure
/// skip, tls-server-name) and proxy from the kubeconfig, then kube-rs's base
/// URI, authentication (token, token file, exec plugins with refresh, basic)
/// and extra-header (impersonation) layers.
pub(crate) fn build(config: &kube::Config) -> Result<Transport, String> {
    // kube-rs builds its TLS configuration with the process's provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    // Like client-go: otherwise a request written right after the TLS
    // Finished message waits for its ACK (up to the server's delayed ACK).
    http.set_nodelay(true);
    http.set_connect_timeout(config.connect_timeout);
    match config.proxy_url.as_ref() {
        None => stack(config, http),
        Some(proxy) if proxy.scheme_str() == Some("http") => stack(
            config,
            with_proxy_auth(proxy, Tunnel::new(proxy.clone(), http)),
        ),
        Some(proxy) if proxy.scheme_str() == Some("https") => {
            let tls_to_proxy = config
                .rustls_https_connector_with_connector(http)
                .map_err(|e| format!("TLS to the proxy {proxy}: {e}"))?;
            stack(
                config,
                with_proxy_auth(proxy, Tunnel::new(proxy.clone(), tls_to_proxy)),
            )
        }
        Some(proxy) => Err(format!(
            "proxy-url {proxy} is not supported: krew-wasm supports http:// and https:// proxies"
        )),
    }
}

fn stack<C>(config: &kube::Config, connector: C) -> Result<Transport, String>
where
    C: tower::Service<http::Uri> + Clone + Send + Sync + 'static,
    C::Response: hyper::rt::Read
        + hyper::rt::Write
        + hyper_util::client::legacy::connect::Connection
        + Send
        + Unpin
        + 'static,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    let https = config
        .rustls_https_connector_with_connector(connector)
        .map_err(|e| format!("setting up TLS: {e}"))?;
    let client: HyperClient<_, WasiBody> = HyperClient::builder(TokioExecutor::new()).build(https);
    let auth = config
        .auth_layer()
        .map_err(|e| format!("setting up authentication: {e}"))?;
    let headers = config
        .extra_headers_layer()
        .map_err(|e| format!("setting up headers: {e}"))?;
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(auth)
        .layer(headers)
        .service(client.map_err(BoxError::from));
    Ok(BoxCloneSyncService::new(service.map_err(Into::into)))
}

/// `http://user:password@proxy` → a `Proxy-Authorization: Basic` header, as
/// kubectl sends it.
fn with_proxy_auth<C>(proxy: &http::Uri, tunnel: Tunnel<C>) -> Tunnel<C> {
    let userinfo = proxy
        .authority()
        .and_then(|a| a.as_str().rsplit_once('@'))
        .map(|(userinfo, _)| userinfo);
    let Some(userinfo) = userinfo else {
        return tunnel;
    };
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(userinfo).collect();
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(decoded)
    );
    match http::HeaderValue::from_str(&value) {
        Ok(header) => tunnel.with_auth(header),
        Err(_) => tunnel,
    }
}
