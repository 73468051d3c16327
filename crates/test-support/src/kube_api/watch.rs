//! Streaming responses: watches (one JSON event per line over a chunked
//! HTTP/1.1 body) and `pods/log?follow=true`.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::select::Selectors;
use super::store::{ApiError, Change, ChangeType, LogChunk, Resource, WatchStart, name_of};
use super::table::{IncludeObject, table};

/// A response body fed by a task through a channel; ends when the task
/// drops its sender. When the client goes away hyper drops the body, and
/// the task sees its sender closed.
pub(crate) struct ChannelBody(pub(crate) mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// How often bookmarks are sent with `allowWatchBookmarks=true`
/// (kube-apiserver: about once a minute; here often enough for tests).
pub(crate) const BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);

/// A watch request, parsed.
pub(crate) struct WatchRequest {
    pub(crate) resource: &'static Resource,
    pub(crate) namespace: Option<String>,
    pub(crate) selectors: Selectors,
    pub(crate) timeout: Option<Duration>,
    pub(crate) bookmarks: bool,
    /// `sendInitialEvents=true`: a bookmark annotated
    /// `k8s.io/initial-events-end` follows the initial ADDED events.
    pub(crate) initial_events_end: bool,
    /// Send each object as a one-row Table (`Accept: …;as=Table`).
    pub(crate) table: Option<IncludeObject>,
}

fn line(kind: &str, object: Value) -> Bytes {
    let mut bytes =
        serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// The single line a watch from a compacted resourceVersion gets, before
/// the server closes it (HTTP 200, as kube-apiserver does).
pub(crate) fn error_line(error: &ApiError) -> Bytes {
    line("ERROR", error.status())
}

fn bookmark(resource: &Resource, resource_version: u64, initial_events_end: bool) -> Bytes {
    let mut metadata =
        json!({"resourceVersion": resource_version.to_string(), "creationTimestamp": null});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        json!({"kind": resource.kind, "apiVersion": "v1", "metadata": metadata}),
    )
}

/// What a watcher with `selectors` sees of `change`: an object entering the
/// selection is ADDED, one leaving it DELETED (as kube-apiserver does).
fn visible(change: &Change, selectors: &Selectors) -> Option<ChangeType> {
    let now = selectors.matches(&change.object);
    match change.kind {
        ChangeType::Added | ChangeType::Deleted => now.then_some(change.kind),
        ChangeType::Modified => {
            let before = change
                .previous
                .as_ref()
                .is_some_and(|p| selectors.matches(p));
            match (before, now) {
                (true, true) => Some(ChangeType::Modified),
                (false, true) => Some(ChangeType::Added),
                (true, false) => Some(ChangeType::Deleted),
                (false, false) => None,
            }
        }
    }
}

fn event_line(request: &WatchRequest, kind: ChangeType, change: &Change) -> Bytes {
    let object = match request.table {
        Some(include) => table(
            request.resource,
            std::slice::from_ref(&change.object),
            Some(change.resource_version),
            include,
        ),
        None => change.object.clone(),
    };
    line(kind.as_str(), object)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Starts the task that writes the watch; returns the body it writes to.
pub(crate) fn spawn_watch(request: WatchRequest, start: WatchStart) -> ChannelBody {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let WatchStart {
            backlog,
            resource_version,
            mut live,
        } = start;
        for change in &backlog {
            if let Some(kind) = visible(change, &request.selectors)
                && tx.send(event_line(&request, kind, change)).await.is_err()
            {
                return;
            }
        }
        if request.initial_events_end
            && tx
                .send(bookmark(request.resource, resource_version, true))
                .await
                .is_err()
        {
            return;
        }
        let mut last_seen = resource_version;
        let deadline = request.timeout.map(|t| Instant::now() + t);
        let mut ticker =
            tokio::time::interval_at(Instant::now() + BOOKMARK_INTERVAL, BOOKMARK_INTERVAL);
        loop {
            let out = tokio::select! {
                _ = tx.closed() => return,
                _ = sleep_until(deadline) => return,
                _ = ticker.tick(), if request.bookmarks => bookmark(request.resource, last_seen, false),
                received = live.recv() => match received {
                    Ok(change) => {
                        last_seen = change.resource_version;
                        let in_scope = change.resource == request.resource
                            && request.namespace.as_deref().is_none_or(|n| n == change.namespace());
                        match visible(&change, &request.selectors) {
                            Some(kind) if in_scope => event_line(&request, kind, &change),
                            _ => continue,
                        }
                    }
                    // Too slow to keep up: like kube-apiserver, end the watch
                    // with 410 so the client lists again.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx.send(error_line(&ApiError::expired(last_seen, last_seen))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if tx.send(out).await.is_err() {
                return;
            }
        }
    });
    ChannelBody(rx)
}

/// A body with these chunks, then the end.
pub(crate) fn fixed_stream(chunks: Vec<Bytes>) -> ChannelBody {
    let (tx, rx) = mpsc::channel(chunks.len().max(1));
    for chunk in chunks {
        // The channel has room for every chunk.
        let _ = tx.try_send(chunk);
    }
    ChannelBody(rx)
}

/// `pods/NAME/log?follow=true`: the log so far, then what is appended,
/// until the pod is deleted or the client goes away.
pub(crate) fn spawn_log_follow(
    namespace: String,
    pod: String,
    so_far: String,
    mut chunks: broadcast::Receiver<LogChunk>,
    mut changes: broadcast::Receiver<Arc<Change>>,
) -> ChannelBody {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        if !so_far.is_empty() && tx.send(Bytes::from(so_far)).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                chunk = chunks.recv() => match chunk {
                    Ok(chunk) if chunk.namespace == namespace && chunk.pod == pod => {
                        if tx.send(Bytes::from(chunk.text)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                change = changes.recv() => match change {
                    Ok(change) if change.kind == ChangeType::Deleted
                        && change.resource.plural == "pods"
                        && change.namespace() == namespace
                        && name_of(&change.object) == pod => return,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    ChannelBody(rx)
}
