//! A TCP proxy in front of a test server that forwards what clients send until a byte
//! budget is spent, then holds back everything after it: a process talking through it is
//! stuck in the middle of a request, at a point the test chose, and stays stuck until it
//! is killed. The test waits for that condition instead of sleeping and hoping the process
//! is still at work. Answers from the server are always forwarded.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// What the connections of one proxy share.
#[derive(Default)]
struct Meter {
    /// Bytes forwarded from clients to the server.
    sent: u64,
    /// Whether bytes were held back (a client is stuck).
    stalled: bool,
}

/// A running proxy; it stops accepting connections when dropped.
pub struct StallProxy {
    addr: SocketAddr,
    meter: Arc<(Mutex<Meter>, Condvar)>,
    closed: Arc<AtomicBool>,
}

impl StallProxy {
    /// A proxy to `upstream` (`host:port`) that forwards at most `budget` bytes from its
    /// clients (all connections together), or everything with `None`.
    pub fn start(upstream: &str, budget: Option<u64>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let meter = Arc::new((Mutex::new(Meter::default()), Condvar::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let (upstream, shared, done) =
            (upstream.to_owned(), Arc::clone(&meter), Arc::clone(&closed));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                let (Ok(client_rx), Ok(server_rx)) = (client.try_clone(), server.try_clone())
                else {
                    continue;
                };
                let meter = Arc::clone(&shared);
                std::thread::spawn(move || forward_metered(client_rx, server, budget, &meter));
                std::thread::spawn(move || forward(server_rx, client));
            }
        });
        Self { addr, meter, closed }
    }

    /// `http://127.0.0.1:<port>`, to give the client as the server's address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Bytes forwarded from clients to the server so far.
    pub fn bytes_sent(&self) -> u64 {
        self.meter.0.lock().unwrap_or_else(PoisonError::into_inner).sent
    }

    /// Waits until bytes are held back (true) or `child` exits first (false): whichever
    /// happens, never a guess at how long either takes.
    pub fn wait_stalled(&self, child: &mut std::process::Child) -> bool {
        let (lock, changed) = &*self.meter;
        let mut meter = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if meter.stalled {
                return true;
            }
            if child.try_wait().ok().flatten().is_some() {
                // It may have been stuck just before it ended (it cannot have been, with a
                // request held back, but say so if it was).
                return meter.stalled;
            }
            // The timeout only bounds how late an exit of the child is noticed.
            meter = changed
                .wait_timeout(meter, Duration::from_millis(20))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees `closed`.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies the server's answers to the client until either side closes.
fn forward(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

/// Copies what the client sends to the server within the shared budget; past it, reads
/// and drops the rest until the client goes away, then closes the server's side (so the
/// server sees a request cut short, as when a process dies mid-upload).
fn forward_metered(
    mut from: TcpStream,
    mut to: TcpStream,
    budget: Option<u64>,
    meter: &(Mutex<Meter>, Condvar),
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let take = {
            let mut m = meter.0.lock().unwrap_or_else(PoisonError::into_inner);
            let room = budget.map_or(u64::MAX, |b| b.saturating_sub(m.sent));
            let take = if m.stalled { 0 } else { usize::try_from(room).unwrap_or(n).min(n) };
            m.sent += take as u64;
            if take < n {
                m.stalled = true;
                meter.1.notify_all();
            }
            take
        };
        if take > 0 && to.write_all(&buf[..take]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}
