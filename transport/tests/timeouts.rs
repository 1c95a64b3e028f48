//! Timeouts enforced by the I/O thread, connection limits per direction and
//! extreme durations (issue 10, findings 8 and 4). Stalled peers are raw
//! `std::net::TcpStream`s; every wait is bounded and generous, and no test
//! asserts how long something took.
#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dndm_transport::{
    CloseReason, Config, ConnectError, Connection, Listener, MioConnection, MioTransport,
    RecvError, Transport,
};

mod loopback;
use loopback::{DEADLINE, accept, one_frame, tcp_addr};

/// Waits (bounded) until `cond` holds.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `f` on a helper thread and fails if it neither returns nor panics
/// within `limit` (a hang becomes a failure, not a stuck test run).
fn bounded<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The closure panicked: re-raise its panic here.
            match worker.join() {
                Err(p) => std::panic::resume_unwind(p),
                Ok(()) => panic!("{what}: worker ended without a result"),
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: still running after {limit:?}"),
    }
}

fn expect_timed_out(conn: &mut MioConnection, what: &'static str) {
    let peer = conn.peer_addr().clone();
    match conn.try_recv(usize::MAX, |_| {}) {
        Err(RecvError::Closed { peer: p, reason }) => {
            assert_eq!(p, peer);
            assert_eq!(reason, CloseReason::TimedOut { what });
            let msg = RecvError::Closed { peer: p, reason }.to_string();
            assert!(
                msg.contains(&peer.to_string()) && msg.contains(what),
                "{msg}"
            );
        }
        other => panic!("expected a {what} timeout, got {other:?}"),
    }
}

#[test]
fn stalled_partial_frames_time_out_without_receive_calls() {
    // Eight peers each send the start of a frame and stall. The user
    // accepts them and never calls `try_recv`: the I/O thread still closes
    // every one of them.
    let cfg = Config::default().with_frame_timeout(Some(Duration::from_millis(100)));
    let t = MioTransport::new(cfg).unwrap();
    let mut listener = t.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    let frame = one_frame(1, &[7u8; 64]);
    let mut raws = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..8 {
        let mut raw = TcpStream::connect(tcp_addr(&listener)).unwrap();
        raw.write_all(&frame.as_bytes()[..10]).unwrap();
        raws.push(raw);
        servers.push(accept(&mut listener));
    }
    wait_until("8 frame timeouts", || t.stats().timeouts == 8);
    for server in &mut servers {
        expect_timed_out(server, "partial frame");
    }
    // A closed connection holds its slot (and its buffers) until the user
    // drops the handle.
    assert_eq!(t.stats().open_connections, 8);
    drop(servers);
    assert_eq!(t.stats().open_connections, 0);
}

#[test]
fn idle_peer_times_out_without_receive_calls() {
    let cfg = Config::default().with_idle_timeout(Some(Duration::from_millis(100)));
    let t = MioTransport::new(cfg).unwrap();
    let mut listener = t.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    let _raw = TcpStream::connect(tcp_addr(&listener)).unwrap();
    let mut server = accept(&mut listener);
    wait_until("an idle timeout", || t.stats().timeouts == 1);
    expect_timed_out(&mut server, "idle");
}

/// A peer streams frames that the user reads (so the I/O thread stops
/// listening for each arrival), then stalls: mid-frame, or silent. The
/// timeouts still fire with no receive call after the stream.
#[test]
fn timeouts_fire_after_a_stream_the_user_read() {
    for (what, cfg) in [
        (
            "partial frame",
            Config::default().with_frame_timeout(Some(Duration::from_millis(150))),
        ),
        (
            "idle",
            Config::default().with_idle_timeout(Some(Duration::from_millis(150))),
        ),
    ] {
        let t = MioTransport::new(cfg).unwrap();
        let mut listener = t.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
        let mut raw = TcpStream::connect(tcp_addr(&listener)).unwrap();
        raw.set_nodelay(true).unwrap();
        let mut server = accept(&mut listener);
        let frame = one_frame(1, &[9u8; 1000]);
        for _ in 0..200 {
            raw.write_all(frame.as_bytes()).unwrap();
        }
        assert_eq!(
            loopback::drain(&mut server, 200),
            (vec![vec![9u8; 1000]; 200], None)
        );
        if what == "partial frame" {
            raw.write_all(&frame.as_bytes()[..100]).unwrap();
        }
        wait_until(what, || t.stats().timeouts == 1);
        expect_timed_out(&mut server, what);
    }
}

#[test]
fn frame_clock_starts_at_the_first_byte_of_a_frame() {
    // The connection stays quiet for longer than the frame timeout before a
    // frame begins; the frame then arrives in two pieces well within it.
    // The clock must start at the frame's first byte, not at the
    // connection's start or at the last empty poll.
    let cfg = Config::default().with_frame_timeout(Some(Duration::from_secs(2)));
    let t = MioTransport::new(cfg).unwrap();
    let mut listener = t.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    let mut raw = TcpStream::connect(tcp_addr(&listener)).unwrap();
    raw.set_nodelay(true).unwrap();
    let mut server = accept(&mut listener);
    assert_eq!(server.try_recv(usize::MAX, |_| {}).unwrap(), 0);
    std::thread::sleep(Duration::from_secs(3));
    let frame = one_frame(1, &[5u8; 64]);
    raw.write_all(&frame.as_bytes()[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    raw.write_all(&frame.as_bytes()[10..]).unwrap();
    let mut got = Vec::new();
    let start = Instant::now();
    while got.is_empty() {
        match server.try_recv(usize::MAX, |f| got.push(f.payload().to_vec())) {
            Ok(_) => server.wait_readable(Duration::from_millis(10)),
            Err(e) => panic!("{e}"),
        }
        assert!(start.elapsed() < DEADLINE, "frame not received");
    }
    assert_eq!(got, vec![vec![5u8; 64]]);
    assert_eq!(t.stats().timeouts, 0);
}

#[test]
fn outbound_limit_is_separate_from_inbound() {
    let t = MioTransport::new(
        Config::default()
            .with_max_inbound_connections(2)
            .with_max_outbound_connections(1),
    )
    .unwrap();
    let mut listener = t.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    let other = MioTransport::new(Config::default()).unwrap();
    let mut other_listener = other.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    // Inbound flood: two accepted, the rest rejected.
    let _raws: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(tcp_addr(&listener)).unwrap())
        .collect();
    let mut accepted = Vec::new();
    wait_until("the flood handled", || {
        if let Some(c) = listener.try_accept().unwrap() {
            accepted.push(c);
        }
        t.stats().accepted + t.stats().rejected == 5
    });
    assert_eq!(accepted.len(), 2);
    // Dialling out still works, up to the outbound limit.
    let out = t.connect(other_listener.local_addr()).unwrap();
    let _peer = accept(&mut other_listener);
    let stats = t.stats();
    assert_eq!((stats.open_inbound, stats.open_outbound), (2, 1));
    match t.connect(other_listener.local_addr()) {
        Err(ConnectError::TooManyConnections { limit, addr }) => {
            assert_eq!(limit, 1);
            assert_eq!(&addr, other_listener.local_addr());
        }
        other => panic!("expected the outbound limit, got {other:?}"),
    }
    drop(out);
    wait_until("the outbound slot freed", || t.stats().open_outbound == 0);
}

#[test]
fn default_memory_bound_per_connection_is_documented() {
    // docs/memory.md (Connection): buffers per connection = receive buffer at its
    // largest (max_frame_len rounded up to 16) + send queue limit.
    let c = Config::default();
    assert_eq!(c.max_frame_len, 4 << 20);
    assert_eq!(c.max_queued_bytes, 4 << 20);
    assert_eq!(c.max_connection_buffer_bytes(), (8 << 20) + 15);
    let connections = c.max_inbound_connections + c.max_outbound_connections;
    assert_eq!(connections, 128);
    // 128 x 8 MiB: at most ~1 GiB of buffers per transport by default.
    assert!(connections * c.max_connection_buffer_bytes() <= (1 << 30) + 128 * 15);
}

#[test]
fn send_queue_never_exceeds_its_limit_with_a_stalled_peer() {
    // A peer that never reads: the queue fills to its limit and stops.
    let limit = 256 << 10;
    let t = MioTransport::new(Config::default().with_max_queued_bytes(limit)).unwrap();
    let listener = t.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    let client = t.connect(listener.local_addr()).unwrap();
    let batch = one_frame(1, &[1u8; 4000]);
    let start = Instant::now();
    let mut full = 0;
    while full < 10 {
        if client.try_send(&batch).is_err() {
            full += 1;
        }
        assert!(client.queued_bytes() <= limit);
        assert!(start.elapsed() < DEADLINE, "the queue never filled");
    }
    assert!(client.stats().peak_queued_bytes <= limit);
    drop(listener);
}

/// One round trip and a close under `cfg`, then the transport is dropped
/// (which joins its I/O thread); bounded so a hang fails.
fn round_trip_and_shutdown(name: &'static str, cfg: Config) {
    bounded(name, Duration::from_secs(30), move || {
        let t = MioTransport::new(cfg).unwrap();
        let mut listener = t.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
        let mut client = t.connect(listener.local_addr()).unwrap();
        let mut server = accept(&mut listener);
        client.try_send(&one_frame(1, b"ping")).unwrap();
        let mut got = 0;
        let start = Instant::now();
        while got == 0 {
            got = server.try_recv(usize::MAX, |_| {}).unwrap();
            server.wait_readable(Duration::from_millis(10));
            assert!(start.elapsed() < DEADLINE, "{name}: frame not received");
        }
        // A partial frame from the client, then silence: with the timeouts
        // at zero or MAX (disabled) nothing closes the connection.
        client.try_send(&one_frame(2, b"pong")).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        assert!(server.try_recv(usize::MAX, |_| {}).is_ok(), "{name}");
        client.wait_writable(Duration::from_millis(10));
        client.close();
        server.close();
        drop((client, server, listener));
        let stats = t.stats();
        drop(t);
        stats.timeouts
    });
}

#[test]
fn zero_and_max_durations_neither_panic_nor_spin() {
    for (name, d) in [("zero", Duration::ZERO), ("max", Duration::MAX)] {
        let _ = name;
        round_trip_and_shutdown("idle_timeout", Config::default().with_idle_timeout(Some(d)));
        round_trip_and_shutdown(
            "frame_timeout",
            Config::default().with_frame_timeout(Some(d)),
        );
        round_trip_and_shutdown("linger", Config::default().with_linger(d));
        round_trip_and_shutdown("connect_timeout", Config::default().with_connect_timeout(d));
        round_trip_and_shutdown("keepalive", Config::default().with_keepalive(Some(d)));
    }
}

#[test]
fn zero_frame_timeout_is_disabled_not_immediate() {
    let cfg = Config::default().with_frame_timeout(Some(Duration::ZERO));
    let t = MioTransport::new(cfg).unwrap();
    let mut listener = t.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    let mut raw = TcpStream::connect(tcp_addr(&listener)).unwrap();
    let mut server = accept(&mut listener);
    let frame = one_frame(1, &[3u8; 64]);
    raw.write_all(&frame.as_bytes()[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    raw.write_all(&frame.as_bytes()[10..]).unwrap();
    let mut got = 0;
    let start = Instant::now();
    while got == 0 {
        got = server.try_recv(usize::MAX, |_| {}).unwrap();
        server.wait_readable(Duration::from_millis(10));
        assert!(start.elapsed() < DEADLINE, "frame not received");
    }
    assert_eq!(t.stats().timeouts, 0);
}

#[test]
fn max_linger_with_a_reading_peer_shuts_down() {
    // Queued bytes at close with `linger = MAX`: no deadline is computed
    // (that used to panic on the I/O thread); the peer reads everything and
    // dropping the transport returns.
    bounded("linger MAX", Duration::from_secs(30), || {
        let t = MioTransport::new(
            Config::default()
                .with_linger(Duration::MAX)
                .with_max_queued_bytes(16 << 20),
        )
        .unwrap();
        let peer_t = MioTransport::new(Config::default().with_max_frame_len(1 << 20)).unwrap();
        let mut listener = peer_t
            .listen(&"tcp://127.0.0.1:0".parse().unwrap())
            .unwrap();
        let mut client = t.connect(listener.local_addr()).unwrap();
        let mut server = accept(&mut listener);
        let big = one_frame(1, &vec![9u8; 512 << 10]);
        let mut sent = 0;
        while sent < 8 {
            if client.try_send(&big).is_ok() {
                sent += 1;
            } else {
                client.wait_writable(Duration::from_millis(10));
            }
        }
        client.close();
        drop(client);
        let mut got = 0;
        let start = Instant::now();
        while got < 8 {
            match server.try_recv(usize::MAX, |_| {}) {
                Ok(n) => got += n,
                Err(e) => panic!("{e}"),
            }
            server.wait_readable(Duration::from_millis(10));
            assert!(start.elapsed() < DEADLINE, "frames not received");
        }
        drop(t);
    });
}
