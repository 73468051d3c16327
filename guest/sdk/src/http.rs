//! Blocking HTTP to the API server, with no async runtime: for plugins that make a
//! request or two and want to stay small (build the SDK with `default-features = false`).
//!
//! ```no_run
//! use std::io::Read;
//!
//! # fn main() -> krew_wasm_sdk::Result<()> {
//! // A path is resolved against the view's server URL.
//! let mut response = krew_wasm_sdk::http::get("/version")?.error_for_status()?;
//! println!("{}", response.status());
//! let mut text = String::new();
//! response.body_mut().read_to_string(&mut text)?; // streams: reads as bytes arrive
//! # Ok(())
//! # }
//! ```
//!
//! The host authenticates the request and does TLS; the plugin sends plain requests.
//! A non-2xx answer is still an `Ok(Response)`: [`Response::error_for_status`] turns
//! the API server's `Status` into [`Error::Api`].

use std::io::Read;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

pub use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};

/// `GET path` (e.g. `/api/v1/namespaces/default/pods`) on the cluster's API server.
pub fn get(path: &str) -> Result<Response> {
    let request = Request::get(path)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| Error::other(format!("invalid request path {path:?}: {e}")))?;
    send(request)
}

/// `GET path`, fails on a non-2xx answer, decodes the JSON body as `T`.
pub fn get_json<T: DeserializeOwned>(path: &str) -> Result<T> {
    get(path)?.error_for_status()?.json()
}

/// Sends `request` and waits for the response head; the body streams as it is read.
///
/// The request's URI is either a path, resolved against the view's server URL, or an
/// absolute URL sent as given (the host refuses any other host with [`Error::Denied`]).
pub fn send(request: Request<Vec<u8>>) -> Result<Response> {
    imp::send(request)
}

/// A response whose body has not been read yet.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
}

impl Response {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body, to read from as it arrives.
    pub fn body_mut(&mut self) -> &mut Body {
        &mut self.body
    }

    /// The body, leaving the head behind.
    pub fn into_body(self) -> Body {
        self.body
    }

    /// Reads the whole body.
    pub fn bytes(mut self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.body.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Reads the whole body as UTF-8 text.
    pub fn text(self) -> Result<String> {
        String::from_utf8(self.bytes()?)
            .map_err(|_| Error::Decode("the body is not UTF-8".to_string()))
    }

    /// Reads the whole body as JSON.
    pub fn json<T: DeserializeOwned>(self) -> Result<T> {
        Ok(serde_json::from_slice(&self.bytes()?)?)
    }

    /// `Ok(self)` for a 2xx answer; otherwise reads the body and returns the API
    /// server's `Status` as [`Error::Api`].
    pub fn error_for_status(self) -> Result<Self> {
        if self.status.is_success() {
            return Ok(self);
        }
        let code = self.status.as_u16();
        let body = self.bytes()?;
        Err(Error::from_status(code, &body))
    }
}

/// A response body that streams: each `read` returns what has arrived, waiting only
/// when nothing has.
#[derive(Debug)]
pub struct Body {
    inner: imp::Body,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

#[cfg(all(target_os = "wasi", target_env = "p2"))]
mod imp {
    use std::io::Write;

    use wasip2::http::types::{IncomingBody, IncomingResponse, OutgoingBody};
    use wasip2::io::streams::{InputStream, StreamError};

    use super::{Request, Response};
    use crate::error::{Error, Result};
    use crate::target::Target;
    use crate::wasi;

    pub(super) fn send(request: Request<Vec<u8>>) -> Result<Response> {
        let (parts, body) = request.into_parts();
        let server = match parts.uri.scheme() {
            Some(_) => None,
            None => Some(crate::view()?.server_uri()),
        };
        let target = Target::resolve(server, &parts.uri)?;
        let url = target.url();
        let outgoing = wasi::outgoing_request(&parts.method, &target, &parts.headers)?;
        let outgoing_body = match body.is_empty() {
            true => None,
            false => Some(
                outgoing
                    .body()
                    .map_err(|()| Error::other("the request body was already taken"))?,
            ),
        };
        let future = wasi::send(outgoing, &url)?;
        let written = match outgoing_body {
            Some(outgoing_body) => write_body(outgoing_body, &body, &url),
            None => Ok(()),
        };
        let response = loop {
            if let Some(response) = wasi::take_response(&future, &url) {
                break response;
            }
            future.subscribe().block();
        };
        drop(future);
        // The host's verdict on the request explains more than a broken body pipe.
        let response = response?;
        written?;
        let (status, headers) = wasi::response_head(&response);
        let body = Body::open(response, url)?;
        Ok(Response {
            status,
            headers,
            body: super::Body { inner: body },
        })
    }

    fn write_body(outgoing_body: OutgoingBody, bytes: &[u8], url: &str) -> Result<()> {
        let mut stream = outgoing_body
            .write()
            .map_err(|()| Error::other("the request body stream was already taken"))?;
        let written = stream.write_all(bytes).map_err(Error::from).and_then(|()| {
            match stream.blocking_flush() {
                Ok(()) => Ok(()),
                Err(StreamError::Closed) => Err(Error::other("the request body was closed")),
                Err(StreamError::LastOperationFailed(err)) => Err(wasi::stream_error(url, &err)),
            }
        });
        drop(stream);
        written?;
        OutgoingBody::finish(outgoing_body, None).map_err(|code| wasi::error_code(url, code))
    }

    /// The open parts of a response body, child first (see the drop-order note in `wasi`).
    pub(crate) struct Body {
        stream: Option<InputStream>,
        body: Option<IncomingBody>,
        _response: Option<IncomingResponse>,
        url: String,
    }

    impl std::fmt::Debug for Body {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Body")
                .field("url", &self.url)
                .field("open", &self.stream.is_some())
                .finish()
        }
    }

    impl Body {
        fn open(response: IncomingResponse, url: String) -> Result<Self> {
            let body = response
                .consume()
                .map_err(|()| Error::other("the response body was already taken"))?;
            let stream = body
                .stream()
                .map_err(|()| Error::other("the response body stream was already taken"))?;
            Ok(Body {
                stream: Some(stream),
                body: Some(body),
                _response: Some(response),
                url,
            })
        }

        pub(super) fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some(stream) = &self.stream else {
                return Ok(0);
            };
            if buf.is_empty() {
                return Ok(0);
            }
            let want = (buf.len() as u64).min(wasi::READ_CHUNK);
            match stream.blocking_read(want) {
                // `blocking-read` waits for at least one byte; an empty answer would
                // read as the end of the body, so it is not passed on.
                Ok(bytes) if bytes.is_empty() => self.read(buf),
                Ok(bytes) => {
                    let n = bytes.len().min(buf.len());
                    buf[..n].copy_from_slice(&bytes[..n]);
                    Ok(n)
                }
                Err(StreamError::Closed) => {
                    self.finish();
                    Ok(0)
                }
                Err(StreamError::LastOperationFailed(err)) => {
                    let err = wasi::stream_error(&self.url, &err);
                    self.finish();
                    Err(std::io::Error::other(err))
                }
            }
        }

        fn finish(&mut self) {
            self.stream = None;
            if let Some(body) = self.body.take() {
                drop(IncomingBody::finish(body));
            }
        }
    }
}

#[cfg(not(all(target_os = "wasi", target_env = "p2")))]
mod imp {
    use super::{Request, Response};
    use crate::error::{Error, Result};

    pub(super) fn send(_request: Request<Vec<u8>>) -> Result<Response> {
        Err(Error::Unsupported)
    }

    /// Without wasi:http no body is ever opened.
    #[derive(Debug)]
    pub(crate) struct Body;

    impl Body {
        pub(super) fn read(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
            Ok(0)
        }
    }
}
