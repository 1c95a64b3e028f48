//! The transport holds no more threads and descriptors than its transports
//! and connections explain while it runs, and every one is gone after
//! shutdown. Counts the process's threads and file descriptors, so it runs
//! alone in its own test binary (one test function).
#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]

use std::time::{Duration, Instant};

use dndm_codec::{FrameBuffer, FrameHeader};
use dndm_transport::{Address, Config, Connection, Listener, MioTransport, Transport};

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

fn threads() -> usize {
    count("/proc/self/task")
}

fn fds() -> usize {
    count("/proc/self/fd")
}

/// Connections [`exercise`] opens and holds at once.
const PAIRS: usize = 50;
/// Transports [`exercise`] runs at once: a server and a client.
const TRANSPORTS: usize = 2;
/// What one transport holds: its I/O thread, and its poll instance and
/// waker descriptors.
const THREADS_PER_TRANSPORT: usize = 1;
const FDS_PER_TRANSPORT: usize = 2;
/// What one connection end or listener holds: its socket, and the private
/// poll instance it creates the first time a caller waits on it (this test
/// waits on the listener and the server ends, never on the client ends).
const FDS_PER_SOCKET: usize = 1;
const FDS_PER_WAITED_SOCKET: usize = 2;

/// The most threads and descriptors seen above the starting counts.
#[derive(Default)]
struct Peak {
    threads: usize,
    fds: usize,
}

impl Peak {
    fn sample(&mut self, (t0, f0): (usize, usize)) {
        self.threads = self.threads.max(threads().saturating_sub(t0));
        self.fds = self.fds.max(fds().saturating_sub(f0));
    }

    /// What the configured transports and connections explain.
    fn check(&self) {
        let threads = TRANSPORTS * THREADS_PER_TRANSPORT;
        let fds = TRANSPORTS * FDS_PER_TRANSPORT
            + (1 + PAIRS) * FDS_PER_WAITED_SOCKET
            + PAIRS * FDS_PER_SOCKET;
        assert!(
            self.threads <= threads,
            "{} threads at once, {threads} explained",
            self.threads
        );
        assert!(
            self.fds <= fds,
            "{} descriptors at once, {fds} explained",
            self.fds
        );
    }
}

fn exercise(addr: &Address, base: (usize, usize), peak: &mut Peak) {
    let server_t =
        MioTransport::new(Config::default().with_linger(Duration::from_millis(100))).unwrap();
    let client_t = MioTransport::new(Config::default()).unwrap();
    let mut listener = server_t.listen(addr).unwrap();
    let mut pairs = Vec::new();
    for _ in 0..PAIRS {
        let c = client_t.connect(listener.local_addr()).unwrap();
        let start = Instant::now();
        let s = loop {
            if let Some(s) = listener.try_accept().unwrap() {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(10));
            listener.wait_acceptable(Duration::from_millis(10));
        };
        pairs.push((c, s));
        peak.sample(base);
    }
    let mut fb = FrameBuffer::new();
    fb.push_raw(&FrameHeader::data(1), &[1u8; 100]).unwrap();
    for (c, s) in &mut pairs {
        c.try_send(&fb).unwrap();
        let start = Instant::now();
        while s.try_recv(1, |_| {}).unwrap() == 0 {
            assert!(start.elapsed() < Duration::from_secs(10));
            s.wait_readable(Duration::from_millis(10));
        }
    }
    peak.sample(base);
    // A server-side connection closed with bytes queued to a peer that
    // never reads: the I/O thread lingers, then drops it.
    let (stuck_client, stuck_server) = pairs.pop().unwrap();
    let mut big = FrameBuffer::new();
    big.push_raw(&FrameHeader::data(1), &vec![0u8; 1 << 20])
        .unwrap();
    for _ in 0..64 {
        if stuck_server.try_send(&big).is_err() {
            break;
        }
    }
    assert!(stuck_server.queued_bytes() > 0);
    peak.sample(base);
    drop(stuck_server);
    // The linger is 100 ms; wait for it generously, without a deadline to meet.
    let start = Instant::now();
    while server_t.stats().timeouts == 0 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server_t.stats().timeouts, 1, "linger timeout not counted");
    peak.sample(base);
    drop(stuck_client);
    drop(pairs);
    drop(listener);
}

#[test]
fn no_thread_or_socket_left_behind() {
    let dir = std::env::temp_dir().join(format!("dndm-leaks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (t0, f0) = (threads(), fds());
    let mut peak = Peak::default();
    exercise(&"tcp://127.0.0.1:0".parse().unwrap(), (t0, f0), &mut peak);
    exercise(&Address::Unix(dir.join("leak.sock")), (t0, f0), &mut peak);
    peak.check();
    let start = Instant::now();
    while (threads(), fds()) != (t0, f0) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(threads(), t0, "threads left behind");
    assert_eq!(fds(), f0, "file descriptors left behind");
    assert!(!dir.join("leak.sock").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
