//! Request/reply across peers under pressure: a hostile caller gets typed
//! refusals while the server keeps serving others, pending calls are bounded
//! per peer, and `Node::call` keeps a bounded client cache.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
#![allow(
    clippy::disallowed_types,
    reason = "test harness code uses std sync types like users do"
)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use dndm::codec::schema::SchemaHasher;
use dndm::codec::{self, FrameHeader, FrameKind, Schema};
use dndm::prelude::*;
use dndm::router::session::{Inbound, Limits, NodeId, Origin, Session, SessionConfig, Space};
use dndm::{CallError, Route};
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "svc.Ask")]
struct Ask {
    n: u64,
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "svc.Reply")]
struct Reply {
    n: u64,
}

const BOUND: Duration = Duration::from_secs(20);

/// The fingerprint a node declares a service with (request and response
/// schemas together), as a foreign implementation would compute it.
fn service_fingerprint() -> u64 {
    SchemaHasher::new()
        .str("dndm.service")
        .u64(Ask::FINGERPRINT)
        .u64(Reply::FINGERPRINT)
        .finish()
}

/// A hand-driven peer on a raw TCP stream.
struct RawPeer {
    stream: TcpStream,
    session: Session,
    decoder: codec::StreamDecoder,
    start: Instant,
    /// Inbound replies: (correlation, payload).
    replies: Vec<(u64, Vec<u8>)>,
}

impl RawPeer {
    fn connect(addr: &str) -> Self {
        let stream = TcpStream::connect(addr.trim_start_matches("tcp://")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let start = Instant::now();
        let session = Session::new(
            SessionConfig::new(NodeId::from_bytes([9; 16]), "raw"),
            Duration::ZERO,
        );
        let mut p = Self {
            stream,
            session,
            decoder: codec::StreamDecoder::default(),
            start,
            replies: Vec::new(),
        };
        while !p.session.is_connected() {
            assert!(p.start.elapsed() < BOUND, "no handshake");
            p.turn();
        }
        p
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Writes what the session queued and handles what arrived.
    fn turn(&mut self) {
        let mut out = codec::FrameBuffer::new();
        self.session.poll_transmit(self.now(), &mut out);
        self.stream.write_all(out.as_bytes()).unwrap();
        let mut buf = [0u8; 64 * 1024];
        if let Ok(n) = self.stream.read(&mut buf) {
            self.decoder.feed(&buf[..n]);
            while let Some(f) = self.decoder.next_frame().unwrap() {
                let now = self.start.elapsed();
                if let Ok(Some(Inbound::Reply { header, .. })) =
                    self.session.handle_frame(now, f.header(), f.payload())
                {
                    self.replies
                        .push((header.correlation, f.payload().to_vec()));
                }
            }
        }
        while self.session.poll_event().is_some() {}
    }

    /// Turns until the reply to `correlation` came; its payload.
    fn reply_to(&mut self, correlation: u64) -> Vec<u8> {
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(i) = self.replies.iter().position(|(c, _)| *c == correlation) {
                return self.replies.swap_remove(i).1;
            }
            assert!(Instant::now() < deadline, "no reply to {correlation}");
            self.turn();
        }
    }
}

/// A valid archive of `msg`, as a frame payload carries it.
fn archive<T: Message>(msg: &T) -> Vec<u8> {
    let mut b = codec::FrameBuffer::new();
    b.push_message(&FrameHeader::new(FrameKind::Data, 0), msg)
        .unwrap();
    codec::frames(b.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .payload()
        .to_vec()
}

#[test]
fn a_hostile_caller_gets_typed_refusals_and_others_are_served() {
    let node = Node::builder("server").build().unwrap();
    let addr = node.listen("tcp://127.0.0.1:0").unwrap().to_string();
    let _server = node
        .serve("svc.double", |a: Ask| Reply {
            n: a.n.wrapping_mul(2),
        })
        .unwrap();
    let good = Node::builder("good")
        .connect(&addr)
        .unwrap()
        .build()
        .unwrap();

    let mut raw = RawPeer::connect(&addr);
    let route = Route::new("svc.Ask", "svc.double").unwrap();
    let client = raw
        .session
        .declare_intent_in(Space::Service, &route, service_fingerprint(), Origin::Local)
        .unwrap()
        .unwrap();
    raw.turn();

    // Too short for any archive of `Ask`: refused with outcome 4 and a
    // reason (any 8 bytes would be a valid `u64`, so this is the garbage a
    // schema can tell).
    // (The first request may reach the node before the declaration is
    // linked; "no server" (2) is then the answer, so retry until linked.)
    let deadline = Instant::now() + BOUND;
    let refused = loop {
        let now = raw.now();
        let c = raw
            .session
            .send_request(now, client, &[0xEE; 3][..])
            .unwrap();
        let reply = raw.reply_to(c);
        if reply.last() != Some(&2) || Instant::now() > deadline {
            break reply;
        }
    };
    assert_eq!(refused.last(), Some(&4), "{refused:?}");
    let reason = String::from_utf8_lossy(&refused[..refused.len() - 1]).into_owned();
    assert!(reason.contains("not a valid archive"), "{reason}");

    // A valid request is answered with the archived reply, outcome 0.
    let now = raw.now();
    let c = raw
        .session
        .send_request(now, client, &archive(&Ask { n: 21 })[..])
        .unwrap();
    let reply = raw.reply_to(c);
    assert_eq!(reply.last(), Some(&0));
    let body = &reply[..reply.len() - 1];
    let mut aligned = codec::FrameBuffer::new();
    aligned
        .push_raw(&FrameHeader::new(FrameKind::Data, 0), body)
        .unwrap();
    let frame = codec::frames(aligned.as_bytes()).next().unwrap().unwrap();
    assert_eq!(frame.access::<Reply>().unwrap().n, 42);

    // Replies nobody asked for are dropped; the node goes on.
    let stray = FrameHeader::new(FrameKind::Reply, 0).with_correlation(4242);
    let mut out = codec::FrameBuffer::new();
    out.push_raw(&stray, &[0]).unwrap();
    raw.stream.write_all(out.as_bytes()).unwrap();
    raw.turn();

    // A well-behaved peer is served meanwhile and after.
    for n in 0..50 {
        let r: Reply = good.call("svc.double", Ask { n }, BOUND).unwrap();
        assert_eq!(r.n, n * 2);
    }
    assert_eq!(node.stats().handler_panics, 0);
    assert_eq!(node.peers().len(), 2);
}

#[test]
fn calls_beyond_the_peers_pending_limit_are_refused_as_busy() {
    let mut limits = Limits::default();
    limits.max_pending_requests = 1;
    let server_node = Node::builder("server").peer_limits(limits).build().unwrap();
    let addr = server_node.listen("tcp://127.0.0.1:0").unwrap().to_string();
    let (started_tx, started) = mpsc::channel::<()>();
    let (release, gate) = mpsc::channel::<()>();
    let (started_tx, gate) = (Mutex::new(started_tx), Mutex::new(gate));
    let _server = server_node
        .serve("svc.slow", move |a: Ask| {
            let _ = started_tx.lock().unwrap().send(());
            if a.n == 0 {
                let _ = gate.lock().unwrap().recv_timeout(BOUND);
            }
            Reply { n: a.n }
        })
        .unwrap();
    let caller = Node::builder("caller")
        .connect(&addr)
        .unwrap()
        .build()
        .unwrap();
    let client = caller.client::<Ask, Reply>("svc.slow").unwrap();
    assert!(client.wait_for_server(Some(BOUND)));

    let first = {
        let client = std::sync::Arc::clone(&client);
        std::thread::spawn(move || client.call(Ask { n: 0 }, BOUND))
    };
    started.recv_timeout(BOUND).unwrap();
    // One request is pending at the server, the limit it announced.
    let e = client.call(Ask { n: 1 }, BOUND).unwrap_err();
    assert!(matches!(e, CallError::Busy { .. }), "{e}");
    release.send(()).unwrap();
    assert_eq!(first.join().unwrap().unwrap().n, 0);
    // The slot is free again.
    assert_eq!(client.call(Ask { n: 2 }, BOUND).unwrap().n, 2);
}

#[test]
fn node_call_keeps_a_bounded_client_cache() {
    let node = Node::builder("c").client_cache(4).build().unwrap();
    let before = node.stats().intents;
    for i in 0..100 {
        let e = node
            .call::<Ask, Reply>(&format!("svc.none.n{i}"), Ask { n: i }, Duration::ZERO)
            .unwrap_err();
        assert!(matches!(e, CallError::NoServer { .. }), "{e}");
        assert!(node.stats().intents <= before + 4);
    }
    // A client the caller holds stays valid after it is evicted.
    let held = node.client::<Ask, Reply>("svc.held").unwrap();
    for i in 0..10 {
        let _ = node.call::<Ask, Reply>(&format!("svc.other{i}"), Ask { n: i }, Duration::ZERO);
    }
    let _server = node.serve("svc.held", |a: Ask| Reply { n: a.n }).unwrap();
    assert_eq!(held.call(Ask { n: 7 }, BOUND).unwrap().n, 7);
}

#[test]
fn callers_waiting_together_for_a_starting_server_all_get_through() {
    let server_node = Node::builder("late").build().unwrap();
    let addr = server_node.listen("tcp://127.0.0.1:0").unwrap().to_string();
    let caller = Node::builder("early")
        .connect(&addr)
        .unwrap()
        .build()
        .unwrap();
    assert!(caller.wait_for_peers(1, Some(BOUND)));
    // Several callers wait on one client at once; one link event reaches
    // only one of them, and every one must notice the server.
    let client = caller.client::<Ask, Reply>("svc.late").unwrap();
    let waiting: Vec<_> = (0..4)
        .map(|n| {
            let client = std::sync::Arc::clone(&client);
            std::thread::spawn(move || client.call(Ask { n }, BOUND))
        })
        .collect();
    let local = caller.client::<Ask, Reply>("svc.late").unwrap();
    let _server = server_node
        .serve("svc.late", |a: Ask| Reply { n: a.n + 100 })
        .unwrap();
    for (n, w) in waiting.into_iter().enumerate() {
        assert_eq!(w.join().unwrap().unwrap().n, n as u64 + 100);
    }
    assert_eq!(local.server_count(), 1);
}
