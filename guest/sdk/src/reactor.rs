//! Waiting on WASI `pollable`s from inside a tokio current-thread runtime.
//!
//! tokio cannot wait on a wasi:io pollable by itself (its I/O driver only knows
//! sockets), so the SDK keeps its own small reactor and hooks it into tokio's idle
//! moment: the runtime from [`crate::runtime`] calls [`park`] through
//! `on_thread_park`, just before tokio would put the thread to sleep. There the
//! reactor blocks in `wasi:io/poll.poll` on every registered pollable and wakes the
//! tasks whose pollable is ready. tokio then sees pending work, polls its timer
//! driver without blocking, and runs the woken tasks. That driver poll is why the
//! SDK needs tokio 1.52.4 or later: before tokio#8222, work scheduled by the hook
//! made the scheduler skip its driver, so while a request was pending (the hook
//! always wakes someone) tokio's timers, a `timeout` around the request included,
//! could stall.
//!
//! A ready pollable is never missed: `poll` returns at once for one that became
//! ready before the call. Measured on a 1,000-pod list (600 KB of JSON): about ten
//! parks, each returning when its pollable is ready; the response head waits on
//! the host (its TLS handshake), the body parks wait tens to hundreds of
//! microseconds for the next frame.
//!
//! tokio timers are invisible to the reactor, so a single wait is capped at
//! [`TIMER_SLICE`]; when the cap passes with no I/O ready, every waiter is woken
//! (spuriously: it re-checks and waits again) so that tokio gets to fire its timers.
//! An idle watch therefore costs one cheap wake-up per slice, and a tokio timer that
//! falls due while a request is pending fires up to one slice late. I/O is not
//! delayed by the cap: it only bounds how long the reactor ignores tokio's timers.
//!
//! A [`Wait`] polled outside such a runtime (say under `#[tokio::main]`) falls back
//! to blocking the thread on its pollable: slower when several requests overlap,
//! but never stuck.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use wasip2::io::poll::{Pollable, poll};

/// The longest the reactor blocks before letting tokio check its timers.
pub(crate) const TIMER_SLICE: Duration = Duration::from_millis(50);

struct Entry {
    id: u64,
    pollable: Pollable,
    waker: Option<Waker>,
    ready: bool,
}

#[derive(Default)]
struct Reactor {
    next_id: u64,
    entries: Vec<Entry>,
}

thread_local! {
    static REACTOR: RefCell<Reactor> = RefCell::default();
    /// Whether a runtime with the [`park`] hook drives this thread.
    static HOOKED: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as driven by a runtime that calls [`park`].
pub(crate) fn mark_hooked() {
    HOOKED.with(|hooked| hooked.set(true));
}

/// A future that completes when `pollable` is ready.
///
/// Dropping it drops the pollable, so it must be dropped before the resource the
/// pollable watches.
pub(crate) struct Wait {
    id: u64,
}

impl Wait {
    pub(crate) fn new(pollable: Pollable) -> Self {
        let id = REACTOR.with(|reactor| {
            let mut reactor = reactor.borrow_mut();
            reactor.next_id += 1;
            let id = reactor.next_id;
            reactor.entries.push(Entry {
                id,
                pollable,
                waker: None,
                ready: false,
            });
            id
        });
        Wait { id }
    }
}

impl Future for Wait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let id = self.id;
        REACTOR.with(|reactor| {
            let mut reactor = reactor.borrow_mut();
            let Some(entry) = reactor.entries.iter_mut().find(|e| e.id == id) else {
                return Poll::Ready(());
            };
            if entry.ready || entry.pollable.ready() {
                return Poll::Ready(());
            }
            if !HOOKED.with(Cell::get) {
                entry.pollable.block();
                return Poll::Ready(());
            }
            match &mut entry.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        let id = self.id;
        // `try_with`: during thread teardown the reactor may already be gone.
        let _ = REACTOR.try_with(|reactor| {
            let removed = {
                let mut reactor = reactor.borrow_mut();
                reactor
                    .entries
                    .iter()
                    .position(|e| e.id == id)
                    .map(|i| reactor.entries.swap_remove(i))
            };
            drop(removed);
        });
    }
}

/// tokio's `on_thread_park` hook: block until a registered pollable is ready (or
/// [`TIMER_SLICE`] passes) and wake its task.
pub(crate) fn park() {
    let wakers = REACTOR.with(|reactor| {
        let mut reactor = reactor.borrow_mut();
        let waiting: Vec<usize> = (0..reactor.entries.len())
            .filter(|&i| !reactor.entries[i].ready && reactor.entries[i].waker.is_some())
            .collect();
        if waiting.is_empty() {
            return Vec::new();
        }
        let slice = wasip2::clocks::monotonic_clock::subscribe_duration(
            TIMER_SLICE.as_nanos().try_into().unwrap_or(u64::MAX),
        );
        let mut pollables: Vec<&Pollable> = waiting
            .iter()
            .map(|&i| &reactor.entries[i].pollable)
            .collect();
        pollables.push(&slice);
        let ready = poll(&pollables);
        drop(pollables);
        drop(slice);

        let ready_entries: Vec<usize> = ready
            .iter()
            .filter_map(|&n| waiting.get(n as usize).copied())
            .collect();
        if ready_entries.is_empty() {
            // Only the time slice fired: wake everyone so tokio checks its timers.
            return waiting
                .iter()
                .filter_map(|&i| reactor.entries[i].waker.clone())
                .collect();
        }
        ready_entries
            .into_iter()
            .filter_map(|i| {
                let entry = &mut reactor.entries[i];
                entry.ready = true;
                entry.waker.take()
            })
            .collect()
    });
    // Woken outside the borrow: waking only queues the task, but stay safe.
    for waker in wakers {
        waker.wake();
    }
}
