//! The wasi:http plumbing shared by the blocking helper ([`crate::http`]) and the
//! kube transport: building an `outgoing-request` from `http` types, reading a
//! response head, and turning wasi:http error codes into [`Error`]s a user can read.
//!
//! Only compiled for WASI 0.2 components.
//!
//! Resource order matters in WASI: a `pollable` must be dropped before the stream
//! or future it watches, a stream before its body, a body before its response.
//! The types that own several of them declare their fields child-first, because
//! Rust drops fields in declaration order.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, HeaderError, IncomingResponse, Method,
    OutgoingRequest, Scheme,
};
#[cfg(feature = "kube")]
use wasip2::io::streams::{InputStream, StreamError};

use crate::error::{Error, Result};
use crate::target::Target;

/// How much a single body read asks for.
pub(crate) const READ_CHUNK: u64 = 64 * 1024;

/// An `outgoing-request` for `method target`, carrying `headers`.
///
/// Headers are appended one at a time so a refused one is named in the error.
pub(crate) fn outgoing_request(
    method: &http::Method,
    target: &Target,
    headers: &http::HeaderMap,
) -> Result<OutgoingRequest> {
    let fields = Fields::new();
    for (name, value) in headers {
        fields
            .append(name.as_str(), value.as_bytes())
            .map_err(|err| header_error(name.as_str(), err))?;
    }
    let request = OutgoingRequest::new(fields);
    let invalid = |what: &str| Error::other(format!("invalid {what} for {}", target.url()));
    request
        .set_method(&wasi_method(method))
        .map_err(|()| invalid("method"))?;
    request
        .set_scheme(Some(&wasi_scheme(&target.scheme)))
        .map_err(|()| invalid("scheme"))?;
    request
        .set_authority(Some(&target.authority))
        .map_err(|()| invalid("host"))?;
    request
        .set_path_with_query(Some(&target.path_and_query))
        .map_err(|()| invalid("path"))?;
    Ok(request)
}

/// Hands `request` to the host.
pub(crate) fn send(request: OutgoingRequest, url: &str) -> Result<FutureIncomingResponse> {
    outgoing_handler::handle(request, None).map_err(|code| error_code(url, code))
}

/// The response, once the host has it, or `None` if it is not there yet.
pub(crate) fn take_response(
    future: &FutureIncomingResponse,
    url: &str,
) -> Option<Result<IncomingResponse>> {
    match future.get()? {
        Ok(Ok(response)) => Some(Ok(response)),
        Ok(Err(code)) => Some(Err(error_code(url, code))),
        Err(()) => Some(Err(Error::other(format!(
            "the response to {url} was already taken"
        )))),
    }
}

/// Status and headers of a response. Header lines that are not valid HTTP are skipped.
pub(crate) fn response_head(response: &IncomingResponse) -> (http::StatusCode, http::HeaderMap) {
    let status =
        http::StatusCode::from_u16(response.status()).unwrap_or(http::StatusCode::BAD_GATEWAY);
    let mut headers = http::HeaderMap::new();
    // `headers()` is a child of the response; this temporary is dropped right here.
    for (name, value) in response.headers().entries() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(&value),
        ) {
            headers.append(name, value);
        }
    }
    (status, headers)
}

/// One non-blocking read: `Ok(Some(bytes))` with data (possibly empty: nothing yet),
/// `Ok(None)` at the end of the body.
#[cfg(feature = "kube")]
pub(crate) fn read_chunk(stream: &InputStream, url: &str) -> Result<Option<Vec<u8>>> {
    match stream.read(READ_CHUNK) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(StreamError::Closed) => Ok(None),
        Err(StreamError::LastOperationFailed(err)) => Err(stream_error(url, &err)),
    }
}

/// The error behind a failed stream operation, as wasi:http reports it.
pub(crate) fn stream_error(url: &str, err: &wasip2::io::error::Error) -> Error {
    match wasip2::http::types::http_error_code(err) {
        Some(code) => error_code(url, code),
        None => Error::Http {
            url: url.to_string(),
            code: err.to_debug_string(),
        },
    }
}

/// A wasi:http error code, in words; `HTTP-request-denied` becomes [`Error::Denied`].
pub(crate) fn error_code(url: &str, code: ErrorCode) -> Error {
    let url = url.to_string();
    let code = match code {
        ErrorCode::HttpRequestDenied => return Error::Denied { url },
        ErrorCode::DnsTimeout => "DNS timeout".to_string(),
        ErrorCode::DnsError(payload) => format!(
            "DNS error{}",
            payload.rcode.map(|r| format!(" ({r})")).unwrap_or_default()
        ),
        ErrorCode::DestinationNotFound => "host not found".to_string(),
        ErrorCode::DestinationUnavailable => "host unavailable".to_string(),
        ErrorCode::DestinationIpProhibited => "address prohibited".to_string(),
        ErrorCode::DestinationIpUnroutable => "address unroutable".to_string(),
        ErrorCode::ConnectionRefused => "connection refused".to_string(),
        ErrorCode::ConnectionTerminated => "connection closed".to_string(),
        ErrorCode::ConnectionTimeout => "connection timed out".to_string(),
        ErrorCode::ConnectionReadTimeout => "read timed out".to_string(),
        ErrorCode::ConnectionWriteTimeout => "write timed out".to_string(),
        ErrorCode::TlsProtocolError => "TLS protocol error".to_string(),
        ErrorCode::TlsCertificateError => "TLS certificate not accepted".to_string(),
        ErrorCode::TlsAlertReceived(alert) => format!(
            "TLS alert{}",
            alert
                .alert_message
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
        ErrorCode::HttpResponseIncomplete => "response incomplete".to_string(),
        ErrorCode::HttpResponseTimeout => "response timed out".to_string(),
        ErrorCode::HttpUpgradeFailed => "connection upgrades are not supported".to_string(),
        ErrorCode::HttpProtocolError => "HTTP protocol error".to_string(),
        ErrorCode::InternalError(Some(message)) => message,
        other => format!("{other:?}"),
    };
    Error::Http { url, code }
}

fn header_error(name: &str, err: HeaderError) -> Error {
    let reason = match err {
        HeaderError::Forbidden => "forbidden",
        HeaderError::InvalidSyntax => "invalid",
        HeaderError::Immutable => "immutable",
    };
    Error::Header {
        name: name.to_string(),
        reason: reason.to_string(),
    }
}

fn wasi_method(method: &http::Method) -> Method {
    match *method {
        http::Method::GET => Method::Get,
        http::Method::HEAD => Method::Head,
        http::Method::POST => Method::Post,
        http::Method::PUT => Method::Put,
        http::Method::DELETE => Method::Delete,
        http::Method::CONNECT => Method::Connect,
        http::Method::OPTIONS => Method::Options,
        http::Method::TRACE => Method::Trace,
        http::Method::PATCH => Method::Patch,
        _ => Method::Other(method.as_str().to_string()),
    }
}

fn wasi_scheme(scheme: &str) -> Scheme {
    match scheme {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        other => Scheme::Other(other.to_string()),
    }
}
