//! The SDK's one error type, and how any error a plugin returns becomes the single
//! line a user reads on stderr.

use std::fmt;

/// Everything that can go wrong between a plugin and its cluster.
///
/// The `Display` text is written for the person running `kubectl`, not for the
/// plugin's author: it says what happened and, where there is one, what to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// There is no kubeconfig view: the host found no kubeconfig or no usable context.
    /// In a native build: no kubeconfig file was found.
    NoKubeconfig,
    /// The kubeconfig view exists but could not be read or understood.
    View {
        /// The file that was read.
        path: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A native build's kubeconfig could not be read, or does not define what it or
    /// the kubectl flags select (under krew-wasm the host reports this instead).
    #[cfg(not(target_os = "wasi"))]
    Kubeconfig {
        /// The file, or `the kubeconfig` for a merged `KUBECONFIG` list.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The host refused the request (`error-code.HTTP-request-denied`): the target was
    /// not the cluster's API server, or the request carried a credential header.
    Denied {
        /// The URL the plugin asked for.
        url: String,
    },
    /// A request header was refused before the request was sent (credential and
    /// impersonation headers belong to the host) or was not valid.
    Header {
        /// The header's name.
        name: String,
        /// `forbidden`, `invalid` or `immutable`.
        reason: String,
    },
    /// The request failed on the way (connection, TLS, protocol, …), as reported by wasi:http.
    Http {
        /// The URL the plugin asked for.
        url: String,
        /// The wasi:http error code, in words.
        code: String,
    },
    /// The API server answered with an error `Status`.
    Api {
        /// The HTTP status code (404, 403, …).
        code: u16,
        /// The Status `reason` (`NotFound`, `Forbidden`, …); may be empty.
        reason: String,
        /// The Status `message`: what the API server said, e.g. `secrets "x" not found`.
        message: String,
    },
    /// A response body could not be decoded.
    Decode(String),
    /// Reading or writing a body failed.
    Io(std::io::Error),
    /// Not available in this build: the blocking [`crate::http`] helper needs a WASI 0.2
    /// component (wasm32-wasip2); a native build reaches the cluster only through
    /// `client()`, and reads no kubeconfig without the `kube` feature.
    Unsupported,
    /// An error from kube-rs that is not one of the above.
    #[cfg(feature = "kube")]
    Kube(kube::Error),
    /// Anything else, in words.
    Other(String),
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with a free-form message.
    pub fn other(message: impl Into<String>) -> Self {
        Error::Other(message.into())
    }

    /// The API error for a non-2xx response: the `Status` in `body` if there is one,
    /// otherwise the status line and the start of the body.
    pub fn from_status(code: u16, body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Status {
            #[serde(default)]
            message: String,
            #[serde(default)]
            reason: String,
        }
        match serde_json::from_slice::<Status>(body) {
            Ok(status) if !status.message.is_empty() || !status.reason.is_empty() => Error::Api {
                code,
                reason: status.reason,
                message: status.message,
            },
            _ => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                let mut message: String = text.chars().take(200).collect();
                if message.len() < text.len() {
                    message.push('…');
                }
                if message.is_empty() {
                    message = format!("the server answered {code}");
                }
                Error::Api {
                    code,
                    reason: http::StatusCode::from_u16(code)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or_default()
                        .replace(' ', ""),
                    message,
                }
            }
        }
    }

    /// For an API error, the `Status` reason (`NotFound`, `Forbidden`, …).
    pub fn api_reason(&self) -> Option<&str> {
        match self {
            Error::Api { reason, .. } => Some(reason),
            #[cfg(feature = "kube")]
            Error::Kube(kube::Error::Api(status)) => Some(&status.reason),
            _ => None,
        }
    }

    /// For an API error, the HTTP status code.
    pub fn api_code(&self) -> Option<u16> {
        match self {
            Error::Api { code, .. } => Some(*code),
            #[cfg(feature = "kube")]
            Error::Kube(kube::Error::Api(status)) => Some(status.code),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(target_os = "wasi")]
            Error::NoKubeconfig => f.write_str(
                "no kubeconfig: krew-wasm found no kubeconfig with a usable context, so there is \
                 no cluster to talk to (set KUBECONFIG, or pass --kubeconfig FILE and --context NAME)",
            ),
            #[cfg(not(target_os = "wasi"))]
            Error::NoKubeconfig => f.write_str(
                "no kubeconfig: KUBECONFIG names no existing file and ~/.kube/config does not \
                 exist, so there is no cluster to talk to (set KUBECONFIG, or pass --kubeconfig FILE)",
            ),
            #[cfg(not(target_os = "wasi"))]
            Error::Kubeconfig { path, reason } => write!(f, "kubeconfig {path}: {reason}"),
            Error::View { path, reason } => {
                write!(f, "cannot read the kubeconfig view {path}: {reason}")
            }
            Error::Denied { url } => write!(
                f,
                "krew-wasm refused the request to {url}: a plugin may only talk to the cluster's \
                 API server, and may not send credential or impersonation headers"
            ),
            Error::Header { name, reason } if reason == "forbidden" => write!(
                f,
                "krew-wasm refused the header {name}: credentials and impersonation are the host's alone"
            ),
            Error::Header { name, reason } => write!(f, "header {name} was refused: {reason}"),
            Error::Http { url, code } => write!(f, "request to {url} failed: {code}"),
            Error::Api { message, .. } => f.write_str(message),
            Error::Decode(message) => write!(f, "cannot decode the response: {message}"),
            Error::Io(err) => write!(f, "{err}"),
            #[cfg(target_os = "wasi")]
            Error::Unsupported => f.write_str(
                "HTTP is only available to WASI 0.2 components (build the plugin for wasm32-wasip2)",
            ),
            #[cfg(not(target_os = "wasi"))]
            Error::Unsupported => f.write_str(
                "not available in a native build: krew_wasm_sdk::http works only inside krew-wasm \
                 (wasm32-wasip2); natively, use krew_wasm_sdk::client() with the SDK's `kube` feature",
            ),
            #[cfg(feature = "kube")]
            Error::Kube(err) => write!(f, "{err}"),
            Error::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(err) => Some(err),
            #[cfg(feature = "kube")]
            Error::Kube(err) => Some(err),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        // A body read that failed because of wasi:http carries our own error inside.
        if err.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            if let Some(inner) = err.into_inner()
                && let Ok(ours) = inner.downcast::<Error>()
            {
                return *ours;
            }
            return Error::other("I/O error");
        }
        Error::Io(err)
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Decode(err.to_string())
    }
}

#[cfg(feature = "kube")]
impl From<kube::Error> for Error {
    fn from(err: kube::Error) -> Self {
        // kube wraps whatever the transport returned; give ours back its own face.
        if let kube::Error::Service(inner) = &err
            && let Some(ours) = inner.downcast_ref::<Error>()
        {
            return ours.clone_shallow();
        }
        match err {
            kube::Error::Api(status) => Error::Api {
                code: status.code,
                reason: status.reason,
                message: status.message,
            },
            other => Error::Kube(other),
        }
    }
}

impl Error {
    /// A copy of the variants that hold only text (used to lift an error out of
    /// a shared reference); I/O and kube errors become their message.
    #[cfg(feature = "kube")]
    fn clone_shallow(&self) -> Error {
        match self {
            Error::NoKubeconfig => Error::NoKubeconfig,
            Error::View { path, reason } => Error::View {
                path: path.clone(),
                reason: reason.clone(),
            },
            Error::Denied { url } => Error::Denied { url: url.clone() },
            Error::Header { name, reason } => Error::Header {
                name: name.clone(),
                reason: reason.clone(),
            },
            Error::Http { url, code } => Error::Http {
                url: url.clone(),
                code: code.clone(),
            },
            Error::Api {
                code,
                reason,
                message,
            } => Error::Api {
                code: *code,
                reason: reason.clone(),
                message: message.clone(),
            },
            Error::Decode(m) => Error::Decode(m.clone()),
            Error::Unsupported => Error::Unsupported,
            other => Error::Other(other.to_string()),
        }
    }
}

/// The line a user should read for `error`, found by walking its `source()` chain:
/// an API `Status` reads like kubectl's (`Error from server (NotFound): …`), an SDK
/// error is shown by itself (its text is already complete), anything else is the
/// chain's messages joined with `: `.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = Vec::new();
    let mut current = Some(error);
    while let Some(err) = current {
        if let Some(ours) = err.downcast_ref::<Error>() {
            return describe_ours(ours, &chain);
        }
        #[cfg(feature = "kube")]
        if let Some(kube_err) = err.downcast_ref::<kube::Error>() {
            match kube_err {
                kube::Error::Api(status) => {
                    return with_context(&chain, &api_line(&status.reason, &status.message));
                }
                kube::Error::Service(inner) => {
                    if let Some(ours) = inner.downcast_ref::<Error>() {
                        return describe_ours(ours, &chain);
                    }
                }
                _ => {}
            }
        }
        chain.push(err.to_string());
        current = err.source();
    }
    dedup_chain(chain).join(": ")
}

fn describe_ours(error: &Error, context: &[String]) -> String {
    let line = match error {
        Error::Api {
            reason, message, ..
        } => api_line(reason, message),
        #[cfg(feature = "kube")]
        Error::Kube(inner) => return describe(inner),
        other => other.to_string(),
    };
    with_context(context, &line)
}

/// kubectl's wording for an error `Status`.
fn api_line(reason: &str, message: &str) -> String {
    if reason.is_empty() {
        format!("Error from server: {message}")
    } else {
        format!("Error from server ({reason}): {message}")
    }
}

/// Keeps the plugin's own context (e.g. `reading secret x`) in front of the root
/// cause, but drops wrapper messages that only repeat the cause.
fn with_context(context: &[String], line: &str) -> String {
    let mut parts: Vec<String> = context
        .iter()
        .filter(|c| !line.contains(c.as_str()) && !c.contains(line))
        .filter(|c| !is_wrapper_noise(c))
        .cloned()
        .collect();
    parts.push(line.to_string());
    parts.join(": ")
}

/// kube-rs prefixes every wrapped error with its variant's name; a user has no use for it.
fn is_wrapper_noise(message: &str) -> bool {
    ["ServiceError", "HyperError", "ApiError"]
        .iter()
        .any(|noise| message == *noise || message.starts_with(&format!("{noise}: ")))
}

/// Error chains often repeat the cause at the end of each wrapper's message
/// (`reading x: not found`, then `not found`): keep each wrapper's own part once.
fn dedup_chain(chain: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, message) in chain.iter().enumerate() {
        let own = match chain.get(i + 1) {
            Some(next) => message
                .strip_suffix(next.as_str())
                .map(|head| head.trim_end_matches([':', ' ']))
                .unwrap_or(message),
            None => message,
        };
        if !own.is_empty() && !is_wrapper_noise(own) {
            out.push(own.to_string());
        }
    }
    if out.is_empty() {
        out.extend(chain.last().cloned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_body_becomes_its_message() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"secrets \"x\" not found","reason":"NotFound","code":404}"#;
        let err = Error::from_status(404, body);
        assert_eq!(err.to_string(), r#"secrets "x" not found"#);
        assert_eq!(err.api_reason(), Some("NotFound"));
        assert_eq!(
            describe(&err),
            r#"Error from server (NotFound): secrets "x" not found"#
        );
    }

    #[test]
    fn non_status_body_keeps_the_status_line() {
        let err = Error::from_status(502, b"");
        assert_eq!(err.to_string(), "the server answered 502");
        assert_eq!(err.api_reason(), Some("BadGateway"));
        let err = Error::from_status(500, b"  boom \n");
        assert_eq!(err.to_string(), "boom");
    }

    #[derive(Debug)]
    struct Wrapper(Error);
    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("reading secret web")
        }
    }
    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn context_is_kept_in_front_of_our_error() {
        let err = Wrapper(Error::Denied {
            url: "http://169.254.169.254/".into(),
        });
        let line = describe(&err);
        assert!(
            line.starts_with(
                "reading secret web: krew-wasm refused the request to http://169.254.169.254/"
            ),
            "{line}"
        );
    }

    #[test]
    fn io_errors_carrying_ours_are_unwrapped() {
        let io = std::io::Error::other(Error::Unsupported);
        assert!(matches!(Error::from(io), Error::Unsupported));
    }

    #[test]
    fn plain_chains_are_joined() {
        let io = std::io::Error::other("disk on fire");
        assert_eq!(describe(&io), "disk on fire");
    }
}
