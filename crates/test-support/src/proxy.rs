//! A TCP proxy that stops forwarding mid-response, to interrupt downloads.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Forwards connections to an upstream host, but after `stall_after` bytes
/// have gone back to clients it holds every connection open and sends nothing
/// more: a download through it hangs part-way, like on a dying network.
pub struct StallingProxy {
    host: String,
    stalled: Arc<AtomicBool>,
    shutdown: Arc<AtomicBool>,
}

impl StallingProxy {
    pub fn start(upstream: &str, stall_after: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let host = format!(
            "127.0.0.1:{}",
            listener.local_addr().expect("proxy address").port()
        );
        let stalled = Arc::new(AtomicBool::new(false));
        let shutdown = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(AtomicU64::new(0));
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let upstream = upstream.to_string();
        let (stalled_flag, shutdown_flag) = (stalled.clone(), shutdown.clone());
        std::thread::spawn(move || {
            while !shutdown_flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let upstream = upstream.clone();
                        let (stalled, shutdown, forwarded) = (
                            stalled_flag.clone(),
                            shutdown_flag.clone(),
                            forwarded.clone(),
                        );
                        std::thread::spawn(move || {
                            relay(
                                client,
                                &upstream,
                                stall_after,
                                &forwarded,
                                &stalled,
                                &shutdown,
                            );
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            host,
            stalled,
            shutdown,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Waits until the proxy has stopped forwarding; panics after `timeout`.
    pub fn wait_until_stalled(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.stalled.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "the download never reached the stall point"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }
}

fn relay(
    client: TcpStream,
    upstream: &str,
    stall_after: u64,
    forwarded: &AtomicU64,
    stalled: &AtomicBool,
    shutdown: &AtomicBool,
) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let (Ok(mut client_reader), Ok(mut server_writer)) = (client.try_clone(), server.try_clone())
    else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_reader, &mut server_writer);
        let _ = server_writer.shutdown(Shutdown::Write);
    });
    let (mut server, mut client) = (server, client);
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match server.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let before = forwarded.fetch_add(n as u64, Ordering::SeqCst);
        let allowed = stall_after.saturating_sub(before).min(n as u64) as usize;
        if client.write_all(&buffer[..allowed]).is_err() {
            break;
        }
        if allowed < n {
            stalled.store(true, Ordering::SeqCst);
            while !shutdown.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            break;
        }
    }
}
