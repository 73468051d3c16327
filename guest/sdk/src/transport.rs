//! The kube-rs transport: a `tower::service_fn` that sends each request over
//! wasi:http and returns a response whose body streams.
//!
//! Why the `wasip2` crate's raw bindings and not `wstd`: kube-rs requires a `Send`
//! service, future and body (its `Buffer` moves requests to a spawned task), and
//! wasi resources from `wasip2` are `Send`, while `wstd`'s HTTP types are tied to
//! wstd's own single-threaded executor. Waiting happens in the SDK's reactor
//! ([`crate::reactor`]), which tokio drives from its idle hook.
//!
//! Only the WASI builds send through it; a native build's `kube::Client` is kube-rs's
//! own (`native.rs`), and [`ResponseBody`] merely exists there, never built.
//!
//! Streaming: the request body is written frame by frame as kube-rs yields it; the
//! response head is returned as soon as the host has it, and every body poll hands
//! out whatever bytes have arrived, so a watch delivers each event as it comes.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use crate::error::{Error, Result};
#[cfg(target_os = "wasi")]
use http::{Request, Response};

/// The kube-rs service: resolves each request against `server` and sends it.
/// WASI only: a native build's client has kube-rs's own hyper stack.
#[cfg(target_os = "wasi")]
pub(crate) fn service(
    server: http::Uri,
) -> impl tower::Service<
    Request<kube::client::Body>,
    Response = Response<ResponseBody>,
    Error = Error,
    Future = impl Future<Output = Result<Response<ResponseBody>>> + Send + 'static,
> + Send
+ 'static {
    tower::service_fn(move |request| imp::send(request, server.clone()))
}

/// A response body read from wasi:http as it arrives.
pub struct ResponseBody {
    inner: imp::Body,
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>>>> {
        self.inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Drives a request body to its end, yielding each data frame.
#[cfg(target_os = "wasi")]
async fn next_data(body: &mut kube::client::Body) -> Option<Result<Bytes>> {
    use http_body::Body as _;
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
        match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => return Some(Ok(data)),
                Err(_trailers) => continue,
            },
            Err(err) => return Some(Err(Error::other(format!("request body: {err}")))),
        }
    }
}

#[cfg(all(target_os = "wasi", target_env = "p2"))]
mod imp {
    use std::pin::Pin;
    use std::task::{Context, Poll, ready};

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body::Frame;
    use wasip2::http::types::{IncomingBody, IncomingResponse, OutgoingBody};
    use wasip2::io::streams::{InputStream, OutputStream, StreamError};

    use super::{ResponseBody, next_data};
    use crate::error::{Error, Result};
    use crate::reactor::Wait;
    use crate::target::Target;
    use crate::wasi;

    pub(super) async fn send(
        request: Request<kube::client::Body>,
        server: http::Uri,
    ) -> Result<Response<ResponseBody>> {
        let (parts, mut body) = request.into_parts();
        let target = Target::resolve(Some(&server), &parts.uri)?;
        let url = target.url();
        let outgoing = wasi::outgoing_request(&parts.method, &target, &parts.headers)?;
        let outgoing_body = match http_body::Body::is_end_stream(&body) {
            true => None,
            false => Some(
                outgoing
                    .body()
                    .map_err(|()| Error::other("the request body was already taken"))?,
            ),
        };
        // Send first, then write: the host streams the body out as it is written.
        let future = wasi::send(outgoing, &url)?;
        let written = match outgoing_body {
            Some(outgoing_body) => write_body(outgoing_body, &mut body, &url).await,
            None => Ok(()),
        };
        let response = loop {
            if let Some(response) = wasi::take_response(&future, &url) {
                break response;
            }
            Wait::new(future.subscribe()).await;
        };
        drop(future);
        // The host's verdict on the request explains more than a broken body pipe.
        let response = response?;
        written?;
        let (status, headers) = wasi::response_head(&response);
        let body = Body::open(response, url)?;
        let mut response = Response::new(ResponseBody { inner: body });
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }

    async fn write_body(
        outgoing_body: OutgoingBody,
        body: &mut kube::client::Body,
        url: &str,
    ) -> Result<()> {
        let stream = outgoing_body
            .write()
            .map_err(|()| Error::other("the request body stream was already taken"))?;
        let written: Result<()> = async {
            while let Some(data) = next_data(body).await {
                write_all(&stream, &data?, url).await?;
            }
            stream.flush().map_err(|e| write_error(e, url))?;
            Wait::new(stream.subscribe()).await;
            stream.check_write().map_err(|e| write_error(e, url))?;
            Ok(())
        }
        .await;
        drop(stream);
        written?;
        OutgoingBody::finish(outgoing_body, None).map_err(|code| wasi::error_code(url, code))
    }

    async fn write_all(stream: &OutputStream, mut data: &[u8], url: &str) -> Result<()> {
        while !data.is_empty() {
            let room = stream.check_write().map_err(|e| write_error(e, url))?;
            if room == 0 {
                Wait::new(stream.subscribe()).await;
                continue;
            }
            let n = usize::try_from(room).unwrap_or(usize::MAX).min(data.len());
            stream.write(&data[..n]).map_err(|e| write_error(e, url))?;
            data = &data[n..];
        }
        Ok(())
    }

    fn write_error(err: StreamError, url: &str) -> Error {
        match err {
            StreamError::Closed => Error::other(format!("the request body to {url} was closed")),
            StreamError::LastOperationFailed(err) => wasi::stream_error(url, &err),
        }
    }

    /// The open parts of a response body, child first (see the drop-order note in
    /// `wasi`): the pending wait, the stream, the body, the response.
    pub(super) struct Body {
        wait: Option<Wait>,
        stream: Option<InputStream>,
        body: Option<IncomingBody>,
        _response: Option<IncomingResponse>,
        url: String,
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
                wait: None,
                stream: Some(stream),
                body: Some(body),
                _response: Some(response),
                url,
            })
        }

        pub(super) fn poll_frame(
            &mut self,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>>>> {
            loop {
                if let Some(wait) = &mut self.wait {
                    ready!(Pin::new(wait).poll(cx));
                    self.wait = None;
                }
                let Some(stream) = &self.stream else {
                    return Poll::Ready(None);
                };
                match wasi::read_chunk(stream, &self.url) {
                    Ok(Some(bytes)) if !bytes.is_empty() => {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(bytes)))));
                    }
                    Ok(Some(_)) => self.wait = Some(Wait::new(stream.subscribe())),
                    Ok(None) => {
                        self.finish();
                        return Poll::Ready(None);
                    }
                    Err(err) => {
                        self.finish();
                        return Poll::Ready(Some(Err(err)));
                    }
                }
            }
        }

        pub(super) fn is_end_stream(&self) -> bool {
            self.stream.is_none()
        }

        fn finish(&mut self) {
            self.wait = None;
            self.stream = None;
            if let Some(body) = self.body.take() {
                drop(IncomingBody::finish(body));
            }
        }
    }
}

#[cfg(not(all(target_os = "wasi", target_env = "p2")))]
mod imp {
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use http_body::Frame;

    use crate::error::Result;

    #[cfg(target_os = "wasi")]
    pub(super) async fn send(
        _request: http::Request<kube::client::Body>,
        _server: http::Uri,
    ) -> Result<http::Response<super::ResponseBody>> {
        // Keeps `next_data` used on wasip1 (no wasi:http there).
        let _ = super::next_data;
        Err(crate::error::Error::Unsupported)
    }

    /// Without wasi:http no body is ever opened.
    pub(super) struct Body;

    impl Body {
        pub(super) fn poll_frame(
            &mut self,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>>>> {
            Poll::Ready(None)
        }

        pub(super) fn is_end_stream(&self) -> bool {
            true
        }
    }
}
