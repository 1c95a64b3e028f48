//! Peers are untrusted: a peer that sends garbage, dies mid-frame, floods
//! declarations or never reads ends only its own session, with a reason;
//! the node's other peers and local subscribers lose nothing.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use dndm::codec::Schema;
use dndm::prelude::*;
use dndm::router::Selector;
use dndm::router::session::{Event, NodeId, Origin, Session, SessionConfig};
use dndm::{PeerEventKind, codec};
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "hostile.Tick")]
struct Tick {
    seq: u64,
}

const BOUND: Duration = Duration::from_secs(20);

fn lossless() -> SubscribeOptions {
    SubscribeOptions::new()
        .capacity(1024)
        .policy(Policy::Block {
            timeout: Some(BOUND),
        })
}

/// A node listening on loopback, a well-behaved peer subscribed to its
/// ticks, and the publisher.
struct World {
    node: Node,
    addr: String,
    good: Node,
    sub: Subscriber<Tick>,
    publisher: Publisher<Tick>,
    next: u64,
}

impl World {
    fn new(stall: Duration) -> Self {
        let node = Node::builder("victim")
            .peer_queue(1024, Policy::DropOldest, stall)
            .build()
            .unwrap();
        let addr = node.listen("tcp://127.0.0.1:0").unwrap().to_string();
        let good = Node::builder("good")
            .connect(&addr)
            .unwrap()
            .build()
            .unwrap();
        let sub = good
            .subscribe_with::<Tick>("hostile.**", lossless())
            .unwrap();
        let publisher = node.publish::<Tick>("hostile.tick").unwrap();
        assert!(publisher.wait_for_interest(Some(BOUND)));
        Self {
            node,
            addr,
            good,
            sub,
            publisher,
            next: 0,
        }
    }

    /// Sends `n` ticks and checks the good peer gets every one, in order.
    fn traffic_flows(&mut self, n: u64) {
        for _ in 0..n {
            self.next += 1;
            self.publisher.send(Tick { seq: self.next }).unwrap();
        }
        for want in self.next - n + 1..=self.next {
            assert_eq!(self.sub.recv_timeout(BOUND).unwrap().seq, want);
        }
    }

    fn tcp_addr(&self) -> std::net::SocketAddr {
        self.addr.trim_start_matches("tcp://").parse().unwrap()
    }
}

/// True once the node closed the socket (EOF or reset) within the bound.
fn closed_by_node(mut s: TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + BOUND;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn garbage_ends_only_that_connection() {
    let mut w = World::new(BOUND);
    w.traffic_flows(100);
    let mut bad = TcpStream::connect(w.tcp_addr()).unwrap();
    bad.write_all(&[0xAB; 4096]).unwrap();
    assert!(
        closed_by_node(bad),
        "the node kept a peer that sent garbage"
    );
    w.traffic_flows(1000);
    assert_eq!(w.node.peers().len(), 1);
    assert_eq!(w.publisher.dropped(), 0);
}

#[test]
fn a_peer_killed_mid_frame_ends_only_its_connection() {
    let mut w = World::new(BOUND);
    // A real session's hello, cut in the middle, then the socket dies.
    let mut s = Session::new(
        SessionConfig::new(NodeId::from_bytes([3; 16]), "dies"),
        Duration::ZERO,
    );
    let mut out = codec::FrameBuffer::new();
    s.poll_transmit(Duration::ZERO, &mut out);
    let bytes = out.as_bytes();
    let mut bad = TcpStream::connect(w.tcp_addr()).unwrap();
    bad.write_all(&bytes[..bytes.len() / 2]).unwrap();
    drop(bad);
    w.traffic_flows(1000);
    let deadline = Instant::now() + BOUND;
    while w.node.peers().len() != 1 {
        assert!(
            Instant::now() < deadline,
            "the half-sent peer stayed: {:?}",
            w.node.peers()
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// Runs a hand-driven session over `stream` until it is connected and has
/// declared `selector`; returns it (the caller decides whether it reads on).
fn handshake(stream: &mut TcpStream, selector: &str, fingerprint: u64) -> Session {
    let start = Instant::now();
    let now = || start.elapsed();
    let mut s = Session::new(
        SessionConfig::new(NodeId::from_bytes([5; 16]), "stuck"),
        now(),
    );
    let selector: Selector = selector.parse().unwrap();
    s.declare_interest(&selector, fingerprint, Origin::Local)
        .unwrap();
    let mut decoder = codec::StreamDecoder::default();
    let mut out = codec::FrameBuffer::new();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    while !s.is_connected() {
        assert!(start.elapsed() < BOUND, "no handshake");
        out.clear();
        s.poll_transmit(now(), &mut out);
        stream.write_all(out.as_bytes()).unwrap();
        if let Ok(n) = stream.read(&mut buf) {
            decoder.feed(&buf[..n]);
            while let Some(f) = decoder.next_frame().unwrap() {
                s.handle_frame(now(), f.header(), f.payload()).unwrap();
            }
        }
    }
    out.clear();
    s.poll_transmit(now(), &mut out);
    stream.write_all(out.as_bytes()).unwrap();
    while s
        .poll_event()
        .is_some_and(|e| !matches!(e, Event::Closed(_)))
    {}
    s
}

#[test]
fn a_peer_that_never_reads_is_disconnected_and_costs_nobody() {
    let stall = Duration::from_secs(1);
    let mut w = World::new(stall);
    let mut stuck = TcpStream::connect(w.tcp_addr()).unwrap();
    let _session = handshake(&mut stuck, "hostile.Blob@hostile.**", Blob::FINGERPRINT);
    assert!(w.node.wait_for_peers(2, Some(BOUND)));
    // Let the publisher link to the stuck peer, then flood it with bytes it
    // never reads: large ticks fill the socket and the transport's queue.
    let big = w.node.publish::<Blob>("hostile.big").unwrap();
    let deadline = Instant::now() + BOUND;
    while big.interest_count() < 1 {
        assert!(Instant::now() < deadline, "the stuck peer never linked");
        thread::sleep(Duration::from_millis(1));
    }
    let reason = loop {
        assert!(
            Instant::now() < deadline,
            "the stuck peer was never dropped"
        );
        // The publisher never waits for the stuck peer (its queue drops the
        // oldest), and the good peer keeps up.
        big.send(Blob {
            bytes: vec![1; 256 * 1024],
        })
        .unwrap();
        w.traffic_flows(10);
        if let Some(ev) = w.node.next_peer_event(Some(Duration::from_millis(1)))
            && ev.name() == "stuck"
            && let PeerEventKind::Disconnected { reason } = ev.kind
        {
            break reason;
        }
    };
    assert!(reason.contains("read nothing"), "{reason}");
    w.traffic_flows(1000);
    assert_eq!(w.node.peers().len(), 1);
    assert_eq!(w.good.peers().len(), 1);
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "hostile.Blob")]
struct Blob {
    bytes: Vec<u8>,
}

#[test]
fn a_declaration_flood_ends_that_session_with_a_limit_error() {
    let mut w = World::new(BOUND);
    let mut flood = TcpStream::connect(w.tcp_addr()).unwrap();
    // A real hello, then raw UPDATE frames (PROTOCOL.md §2.2) declaring far
    // more interests than the node's limit: a hostile peer does not run a
    // session that respects it.
    let limit = dndm::router::session::Limits::default().max_declarations;
    let mut s = Session::new(
        SessionConfig::new(NodeId::from_bytes([6; 16]), "flood"),
        Duration::ZERO,
    );
    let mut hello = codec::FrameBuffer::new();
    s.poll_transmit(Duration::ZERO, &mut hello);
    flood.write_all(hello.as_bytes()).unwrap();
    let mut raw = codec::FrameBuffer::new();
    let mut id = 0u32;
    for frame in 0..(limit / 256 + 2) {
        let mut msg = vec![2u8];
        msg.extend_from_slice(&256u16.to_le_bytes());
        for _ in 0..256 {
            id += 1;
            let text = format!("hostile.Tick@flood.n{id}");
            msg.push(2);
            msg.extend_from_slice(&id.to_le_bytes());
            msg.extend_from_slice(&1u32.to_le_bytes());
            msg.extend_from_slice(&Tick::FINGERPRINT.to_le_bytes());
            msg.extend_from_slice(&u16::try_from(text.len()).unwrap().to_le_bytes());
            msg.extend_from_slice(text.as_bytes());
        }
        let header = codec::FrameHeader::control().with_seq(u64::from(frame) + 2);
        raw.push_raw(&header, &msg).unwrap();
    }
    let _ = flood.write_all(raw.as_bytes());
    let mut decoder = codec::StreamDecoder::default();
    flood
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + BOUND;
    let closed = loop {
        assert!(Instant::now() < deadline, "the node kept a flooding peer");
        match flood.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => {
                decoder.feed(&buf[..n]);
                while let Ok(Some(f)) = decoder.next_frame() {
                    let _ = s.handle_frame(Duration::ZERO, f.header(), f.payload());
                }
                if s.is_closed() {
                    break true;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break true,
        }
    };
    assert!(closed);
    // The node named the limit in its goodbye.
    let mut said = String::new();
    while let Some(ev) = s.poll_event() {
        if let Event::Closed(reason) = ev {
            said = format!("{reason:?}");
        }
    }
    assert!(said.contains("limit"), "{said}");
    w.traffic_flows(1000);
    let deadline = Instant::now() + BOUND;
    while w.node.peers().len() != 1 {
        assert!(
            Instant::now() < deadline,
            "the flooding peer stayed: {:?}; its session said {said}",
            w.node.peers()
        );
        thread::sleep(Duration::from_millis(1));
    }
}
