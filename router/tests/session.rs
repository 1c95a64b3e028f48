//! Two peer sessions driven against each other with plain byte vectors and
//! virtual time: a tiny pump moves `poll_transmit` output through a
//! `StreamDecoder` into the other side's `handle_frame`.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::collections::BTreeMap;
use std::time::Duration;

use dndm_codec::{FrameBuffer, FrameHeader, FrameKind, StreamDecoder};
use dndm_router::session::{
    Archive, ArchiveFormat, CloseReason, DeclareError, Event, Inbound, LimitKind, Limits,
    LocalAlias, NodeId, Origin, PathFilter, SendError, Session, SessionConfig, SessionError,
    SessionErrorKind, Space, Withdrawn,
};
use dndm_router::{Path, Route, Selector};
use proptest::prelude::*;

const FP: u64 = 0xfeed;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn cfg(name: &str, id: u8) -> SessionConfig {
    SessionConfig::new(NodeId::from_bytes([id; 16]), name)
}

fn route(s: &str) -> Route {
    s.parse().unwrap()
}

fn sel(s: &str) -> Selector {
    s.parse().unwrap()
}

/// One side of the pair: its session, the decoder of what reaches it, and
/// everything it reported.
struct Side {
    s: Session,
    dec: StreamDecoder,
    events: Vec<Event>,
    inbound: Vec<(Inbound, Vec<u8>)>,
    errors: Vec<SessionError>,
    /// The side's clock is the shared virtual clock plus this skew.
    skew: Duration,
}

impl Side {
    fn new(config: SessionConfig, now: Duration, skew: Duration) -> Self {
        Self {
            s: Session::new(config, now + skew),
            dec: StreamDecoder::default(),
            events: Vec::new(),
            inbound: Vec::new(),
            errors: Vec::new(),
            skew,
        }
    }

    /// Feeds `bytes` and handles every complete frame at `now`.
    fn receive(&mut self, now: Duration, bytes: &[u8]) {
        self.dec.feed(bytes);
        let now = now + self.skew;
        while let Some(frame) = self.dec.next_frame().unwrap() {
            match self.s.handle_frame(now, frame.header(), frame.payload()) {
                Ok(Some(inb)) => self.inbound.push((inb, frame.payload().to_vec())),
                Ok(None) => {}
                Err(e) => self.errors.push(e),
            }
        }
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(e) = self.s.poll_event() {
            self.events.push(e);
        }
    }

    fn take_events(&mut self) -> Vec<Event> {
        self.drain();
        std::mem::take(&mut self.events)
    }

    fn closed_reason(&self) -> Option<&CloseReason> {
        self.events.iter().find_map(|e| match e {
            Event::Closed(r) => Some(r),
            _ => None,
        })
    }
}

struct Pair {
    now: Duration,
    a: Side,
    b: Side,
}

impl Pair {
    fn new(a: SessionConfig, b: SessionConfig) -> Self {
        Self::with_skew(a, b, Duration::ZERO)
    }

    /// `b`'s clock runs `skew` ahead of `a`'s.
    fn with_skew(a: SessionConfig, b: SessionConfig, skew: Duration) -> Self {
        let now = ms(1000);
        Self {
            now,
            a: Side::new(a, now, Duration::ZERO),
            b: Side::new(b, now, skew),
        }
    }

    /// Moves bytes both ways until nothing moves.
    fn pump(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            let mut buf = FrameBuffer::new();
            if self.a.s.poll_transmit(self.now, &mut buf) {
                self.b.receive(self.now, buf.as_bytes());
                moved = true;
            }
            let mut buf = FrameBuffer::new();
            if self.b.s.poll_transmit(self.now + self.b.skew, &mut buf) {
                self.a.receive(self.now, buf.as_bytes());
                moved = true;
            }
            if !moved {
                self.a.drain();
                self.b.drain();
                return;
            }
        }
        panic!("the sessions never went quiet");
    }

    /// Advances virtual time to `t`, running both sides' timers on the way
    /// (at every deadline they ask for) and pumping. Bounded: a session that
    /// keeps asking for a deadline it does not act on fails the test instead
    /// of hanging it.
    fn advance_to(&mut self, t: Duration) {
        for _ in 0..100_000 {
            let next = [self.a.s.poll_timeout(), self.b.s.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(n) if n <= t => {
                    self.now = self.now.max(n);
                    let now = self.now;
                    self.a.s.handle_timeout(now);
                    self.b.s.handle_timeout(now + self.b.skew);
                    self.pump();
                }
                _ => {
                    self.now = t;
                    self.pump();
                    return;
                }
            }
        }
        panic!("the timers never settled before {t:?}");
    }

    fn connected() -> Self {
        let mut p = Self::new(cfg("alpha", 1), cfg("beta", 2));
        p.pump();
        p
    }
}

fn remote_intents(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::RemoteIntent(i) => Some(i.route.to_string()),
            _ => None,
        })
        .collect()
}

fn remote_interests(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::RemoteInterest(i) => Some(i.selector.to_string()),
            _ => None,
        })
        .collect()
}

fn withdrawn(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Withdrawn(Withdrawn::Intent(i)) => Some(i.route.to_string()),
            Event::Withdrawn(Withdrawn::Interest(i)) => Some(i.selector.to_string()),
            _ => None,
        })
        .collect()
}

/// A hand-written hello, byte by byte as PROTOCOL.md describes it.
fn hello_bytes(version: u16, endian: u8, pointer_width: u8, name: &str) -> Vec<u8> {
    let mut v = vec![1u8];
    v.extend_from_slice(&version.to_le_bytes());
    v.extend_from_slice(&[endian, pointer_width, 1, 0]);
    v.extend_from_slice(&[9; 16]);
    v.extend_from_slice(&0u64.to_le_bytes()); // capabilities
    v.extend_from_slice(&(1u32 << 20).to_le_bytes()); // max frame
    v.extend_from_slice(&100u32.to_le_bytes()); // max declarations
    v.extend_from_slice(&[8, 2]); // pattern segments, wildcards
    v.extend_from_slice(&128u16.to_le_bytes()); // max name length
    v.extend_from_slice(&16u32.to_le_bytes()); // max pending requests
    v.extend_from_slice(&5000u32.to_le_bytes()); // idle timeout ms
    v.extend_from_slice(&(name.len() as u16).to_le_bytes());
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(&0u16.to_le_bytes()); // no path
    v
}

/// One update entry declaring `text`.
fn declare_entry(op: u8, id: u32, generation: u32, text: &str) -> Vec<u8> {
    let mut v = vec![op];
    v.extend_from_slice(&id.to_le_bytes());
    v.extend_from_slice(&generation.to_le_bytes());
    v.extend_from_slice(&FP.to_le_bytes());
    v.extend_from_slice(&(text.len() as u16).to_le_bytes());
    v.extend_from_slice(text.as_bytes());
    v
}

fn update(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![2u8];
    v.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for e in entries {
        v.extend_from_slice(e);
    }
    v
}

/// A session that has completed its handshake with a hand-written peer.
fn handshaken(config: SessionConfig) -> Session {
    let mut s = Session::new(config, ms(0));
    s.handle_frame(ms(1), &FrameHeader::control(), &hello_bytes(1, 1, 4, "raw"))
        .unwrap();
    s
}

fn error_kind(r: Result<Option<Inbound>, SessionError>) -> SessionErrorKind {
    r.unwrap_err().kind
}

#[test]
fn handshake_exchanges_identity_and_negotiates_limits() {
    let mut a = cfg("alpha", 1);
    a.path = Some(Path::new("robot.arm").unwrap());
    a.capabilities = 0b101;
    a.limits = {
        let mut l = Limits::default();
        l.max_frame_len = 64 << 10;
        l
    };
    let mut p = Pair::new(a, cfg("beta", 2));
    assert!(!p.a.s.is_connected());
    p.pump();
    assert!(p.a.s.is_connected() && p.b.s.is_connected());
    let ev = p.b.take_events();
    let Event::Connected(info) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(info.name, "alpha");
    assert_eq!(info.node_id, NodeId::from_bytes([1; 16]));
    assert_eq!(info.path.as_ref().unwrap().as_str(), "robot.arm");
    assert_eq!(info.capabilities, 0b101);
    assert_eq!(info.max_frame_len, 64 << 10);
    let Event::Connected(info) = &p.a.take_events()[0] else {
        panic!()
    };
    assert_eq!(info.name, "beta");
    assert_eq!(info.max_frame_len, 64 << 10, "negotiated to the minimum");
}

#[test]
fn declarations_before_and_after_connect_are_advertised_batched() {
    let mut p = Pair::new(cfg("alpha", 1), cfg("beta", 2));
    // D12: declared before the peer connected.
    for i in 0..100 {
        let r = route(&format!("robot.Imu@robot.arm{i}.imu"));
        assert!(
            p.a.s
                .declare_intent(&r, FP, Origin::Local)
                .unwrap()
                .is_some()
        );
    }
    assert!(
        p.a.s
            .declare_interest(&sel("robot.Cmd@robot.**"), FP, Origin::Local)
            .unwrap()
    );
    p.pump();
    let ev = p.b.take_events();
    assert_eq!(remote_intents(&ev).len(), 100);
    assert_eq!(remote_interests(&ev), ["robot.Cmd@robot.**"]);
    // One hello and one batched update frame.
    assert_eq!(p.b.s.stats().frames_in, 2);

    // After connect: incremental.
    p.a.s
        .declare_intent(&route("robot.Pose@robot.base"), FP, Origin::Local)
        .unwrap();
    p.pump();
    assert_eq!(
        remote_intents(&p.b.take_events()),
        ["robot.Pose@robot.base"]
    );
}

#[test]
fn peer_declarations_are_never_echoed() {
    let mut p = Pair::connected();
    let r = route("T@a.b");
    let got =
        p.a.s
            .declare_intent(&r, FP, Origin::Peer(NodeId::from_bytes([2; 16])));
    assert_eq!(got, Ok(None));
    assert_eq!(
        p.a.s
            .declare_interest(&sel("T@a.*"), FP, Origin::Peer(NodeId::from_bytes([3; 16]))),
        Ok(false)
    );
    p.pump();
    assert!(remote_intents(&p.b.take_events()).is_empty());
    assert!(!p.a.s.withdraw_intent(&r, FP));
}

#[test]
fn withdraw_is_reference_counted_and_reported() {
    let mut p = Pair::connected();
    let r = route("T@a.b");
    let a1 = p.a.s.declare_intent(&r, FP, Origin::Local).unwrap();
    let a2 = p.a.s.declare_intent(&r, FP, Origin::Local).unwrap();
    assert_eq!(a1, a2);
    p.a.s
        .declare_interest(&sel("U@x.**"), FP, Origin::Local)
        .unwrap();
    p.pump();
    p.b.take_events();
    assert!(p.a.s.withdraw_intent(&r, FP));
    p.pump();
    assert!(
        withdrawn(&p.b.take_events()).is_empty(),
        "one reference left"
    );
    assert!(p.a.s.withdraw_intent(&r, FP));
    assert!(p.a.s.withdraw_interest(&sel("U@x.**"), FP));
    assert!(!p.a.s.withdraw_intent(&r, FP));
    p.pump();
    assert_eq!(withdrawn(&p.b.take_events()), ["T@a.b", "U@x.**"]);
    assert_eq!(p.b.s.remote_declaration_count(), 0);
}

#[test]
fn data_flows_by_alias_and_a_redeclared_alias_gets_a_new_generation() {
    let mut p = Pair::connected();
    let r = route("T@a.b");
    let old =
        p.a.s
            .declare_intent(&r, FP, Origin::Local)
            .unwrap()
            .unwrap();
    p.pump();
    let h = p.a.s.send_data(p.now, old, &b"one"[..]).unwrap();
    assert_eq!(h.route, old.alias);
    p.pump();
    let (Inbound::Data { intent, header }, payload) = &p.b.inbound[0] else {
        panic!()
    };
    assert_eq!(payload, b"one");
    assert_eq!(header.seq, 1);
    assert_eq!(p.b.s.remote_intent(*intent).unwrap().route, r);

    p.a.s.withdraw_intent(&r, FP);
    let new =
        p.a.s
            .declare_intent(&r, FP, Origin::Local)
            .unwrap()
            .unwrap();
    assert_eq!(new.alias, old.alias);
    assert_eq!(new.generation, old.generation + 1);
    assert!(matches!(
        p.a.s.send_data(p.now, old, &b"x"[..]),
        Err(SendError::UnknownAlias(_))
    ));
    p.a.s.send_data(p.now, new, &b"two"[..]).unwrap();
    p.pump();
    let (Inbound::Data { intent, .. }, payload) = &p.b.inbound[1] else {
        panic!()
    };
    assert_eq!(payload, b"two");
    assert_eq!(intent.generation, new.generation);

    // A frame stamped with the old generation is dropped, not delivered.
    let stale = FrameHeader::data(old.alias).with_flags((old.generation as u16 & 0xff) << 8);
    assert_eq!(p.b.s.handle_frame(p.now, &stale, b"late"), Ok(None));
    assert_eq!(p.b.s.stats().dropped_stale_generation, 1);
}

#[test]
fn typed_messages_travel_as_archives() {
    #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, dndm_codec::Message)]
    #[message(name = "test.Ping")]
    struct Ping {
        n: u64,
    }
    let mut p = Pair::connected();
    let a =
        p.a.s
            .declare_intent(&route("test.Ping@p"), FP, Origin::Local)
            .unwrap()
            .unwrap();
    p.pump();
    p.a.s
        .send_data(p.now, a, &Archive(&Ping { n: 42 }))
        .unwrap();
    p.pump();
    let (_, payload) = &p.b.inbound[0];
    let mut aligned = rkyv::util::AlignedVec::<16>::new();
    aligned.extend_from_slice(payload);
    let ping = dndm_codec::access::<Ping>(&aligned).unwrap();
    assert_eq!(ping.n, 42);
}

#[test]
fn unknown_aliases_are_dropped_and_counted_then_a_flood_is_fatal() {
    let mut b = cfg("beta", 2);
    b.unknown_alias_limit = 10;
    let mut p = Pair::new(cfg("alpha", 1), b);
    p.pump();
    for _ in 0..10 {
        assert_eq!(
            p.b.s.handle_frame(p.now, &FrameHeader::data(77), b"?"),
            Ok(None)
        );
    }
    assert_eq!(p.b.s.stats().dropped_unknown_alias, 10);
    assert!(p.b.s.is_connected(), "dropping is not fatal (D5)");
    // A new window forgives.
    p.now += ms(1500);
    for _ in 0..10 {
        assert_eq!(
            p.b.s.handle_frame(p.now, &FrameHeader::data(77), b"?"),
            Ok(None)
        );
    }
    let e =
        p.b.s
            .handle_frame(p.now, &FrameHeader::data(77), b"?")
            .unwrap_err();
    assert!(
        matches!(
            e.kind,
            SessionErrorKind::UnknownAliasFlood { count: 11, .. }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("alpha"), "{e}");
    assert!(p.b.s.is_closed());
    p.pump();
    let Some(CloseReason::Peer { code: 2, reason }) = p.a.closed_reason() else {
        panic!("{:?}", p.a.events)
    };
    assert!(reason.contains("unknown or stale aliases"), "{reason}");
}

#[test]
fn version_mismatch_names_the_peer_and_the_versions() {
    let mut s = Session::new(cfg("beta", 2), ms(0));
    let e = s
        .handle_frame(ms(1), &FrameHeader::control(), &hello_bytes(7, 1, 4, "raw"))
        .unwrap_err();
    assert_eq!(
        e.kind,
        SessionErrorKind::VersionMismatch { ours: 1, theirs: 7 }
    );
    let msg = e.to_string();
    assert!(
        msg.contains("version mismatch") && msg.contains('7'),
        "{msg}"
    );
    assert!(s.is_closed());
    let mut out = FrameBuffer::new();
    assert!(
        s.poll_transmit(ms(1), &mut out),
        "hello and goodbye are queued"
    );
}

#[test]
fn archive_format_mismatch_ends_the_session() {
    let mut b = cfg("beta", 2);
    b.archive_format = ArchiveFormat {
        little_endian: false,
        pointer_width: 4,
        aligned: true,
    };
    let mut p = Pair::new(cfg("alpha", 1), b);
    p.pump();
    assert!(matches!(
        &p.a.errors[0].kind,
        SessionErrorKind::ArchiveFormat { theirs, .. } if !theirs.little_endian
    ));
    assert!(p.a.errors[0].to_string().contains("big-endian"));
    assert!(p.a.s.is_closed() && p.b.s.is_closed());
    assert!(matches!(
        p.b.closed_reason(),
        Some(CloseReason::Error(_)) | Some(CloseReason::Peer { code: 4, .. })
    ));
}

#[test]
fn nothing_but_a_hello_before_the_handshake() {
    let mut s = Session::new(cfg("beta", 2), ms(0));
    let k = error_kind(s.handle_frame(ms(1), &FrameHeader::data(1), b"x"));
    assert_eq!(
        k,
        SessionErrorKind::BeforeHandshake {
            kind: FrameKind::Data
        }
    );
    let mut s = Session::new(cfg("beta", 2), ms(0));
    let ping = [3u8, 0, 0, 0, 0, 0, 0, 0, 0];
    let k = error_kind(s.handle_frame(ms(1), &FrameHeader::control(), &ping));
    assert!(matches!(k, SessionErrorKind::BeforeHandshake { .. }), "{k}");
    // And a second hello after it is an error too.
    let mut s = handshaken(cfg("beta", 2));
    let k =
        error_kind(s.handle_frame(ms(2), &FrameHeader::control(), &hello_bytes(1, 1, 4, "raw")));
    assert_eq!(k, SessionErrorKind::DuplicateHello);
}

#[test]
fn keepalive_keeps_an_idle_link_up_and_measures_rtt_and_clock_offset() {
    let mut p = Pair::with_skew(cfg("alpha", 1), cfg("beta", 2), Duration::from_secs(3));
    p.pump();
    p.advance_to(ms(60_000));
    assert!(p.a.s.is_connected() && p.b.s.is_connected());
    assert!(p.a.s.stats().pongs > 10, "{:?}", p.a.s.stats());
    assert_eq!(p.a.s.stats().rtt, Some(Duration::ZERO));
    assert_eq!(p.a.s.stats().clock_offset_ns, Some(3_000_000_000));
    assert_eq!(p.b.s.stats().clock_offset_ns, Some(-3_000_000_000));

    // With latency: 4 ms out, 6 ms back.
    p.a.s.ping(p.now);
    let mut buf = FrameBuffer::new();
    p.a.s.poll_transmit(p.now, &mut buf);
    p.b.receive(p.now + ms(4), buf.as_bytes());
    let mut buf = FrameBuffer::new();
    p.b.s.poll_transmit(p.now, &mut buf);
    p.a.receive(p.now + ms(10), buf.as_bytes());
    assert_eq!(p.a.s.stats().rtt, Some(ms(10)));
    // Asymmetric paths bias the offset by half the difference (NTP).
    assert_eq!(
        p.a.s.stats().clock_offset_ns,
        Some(3_000_000_000 - 1_000_000)
    );
}

#[test]
fn a_silent_peer_is_declared_dead() {
    let mut p = Pair::connected();
    let start = p.now;
    // From now on nothing reaches `a`. Bounded by turns too: a deadline that
    // is asked for but not acted on would repeat forever.
    for turn in 0.. {
        assert!(turn < 10_000, "the deadline at {:?} repeats", p.now);
        let t = p.a.s.poll_timeout().unwrap();
        p.now = t;
        p.a.s.handle_timeout(t);
        let mut sink = FrameBuffer::new();
        p.a.s.poll_transmit(t, &mut sink);
        if p.a.s.is_closed() {
            break;
        }
        assert!(t < start + ms(10_000), "never timed out");
    }
    assert_eq!(p.now - start, ms(5000));
    p.a.drain();
    let Some(CloseReason::Error(e)) = p.a.closed_reason() else {
        panic!()
    };
    assert_eq!(e.kind, SessionErrorKind::DeadPeer(ms(5000)));
    assert!(e.to_string().contains("beta"));
}

#[test]
fn a_missing_hello_times_out() {
    let mut s = Session::new(cfg("beta", 2), ms(0));
    assert_eq!(s.poll_timeout(), Some(ms(5000)));
    s.handle_timeout(ms(4999));
    assert!(!s.is_closed());
    s.handle_timeout(ms(5000));
    assert!(s.is_closed());
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn goodbye_reports_every_remote_declaration_withdrawn_once() {
    let mut p = Pair::connected();
    p.a.s
        .declare_intent(&route("T@a.b"), FP, Origin::Local)
        .unwrap();
    p.a.s
        .declare_interest(&sel("U@**"), FP, Origin::Local)
        .unwrap();
    p.b.s
        .declare_intent(&route("V@c"), FP, Origin::Local)
        .unwrap();
    p.pump();
    p.a.take_events();
    p.b.take_events();
    p.a.s.close(p.now, "shutting down");
    p.pump();
    let ev_b = p.b.take_events();
    assert_eq!(withdrawn(&ev_b), ["T@a.b", "U@**"]);
    assert_eq!(
        ev_b.last(),
        Some(&Event::Closed(CloseReason::Peer {
            code: 0,
            reason: "shutting down".into()
        }))
    );
    let ev_a = p.a.take_events();
    assert_eq!(withdrawn(&ev_a), ["V@c"]);
    assert_eq!(
        ev_a.last(),
        Some(&Event::Closed(CloseReason::Local("shutting down".into())))
    );
    // Closing again or more frames change nothing.
    p.a.s.close(p.now, "again");
    assert!(p.a.take_events().is_empty());
    assert!(matches!(
        p.a.s.declare_intent(&route("T@x"), FP, Origin::Local),
        Err(DeclareError::Closed(_))
    ));
    assert!(matches!(
        p.a.s.send_data(
            p.now,
            LocalAlias {
                alias: 1,
                generation: 1
            },
            &b""[..]
        ),
        Err(SendError::Closed)
    ));
}

#[test]
fn a_declaration_flood_is_a_limit_error() {
    let mut c = cfg("beta", 2);
    c.limits.max_declarations = 10;
    let mut s = handshaken(c);
    let entries: Vec<_> = (1..=11)
        .map(|i| declare_entry(1, i, 1, &format!("T@a.n{i}")))
        .collect();
    let k = error_kind(s.handle_frame(ms(2), &FrameHeader::control(), &update(&entries)));
    assert_eq!(
        k,
        SessionErrorKind::Limit {
            what: LimitKind::Declarations,
            value: 11,
            limit: 10
        }
    );
}

#[test]
fn our_declarations_respect_the_peer_limits() {
    let mut b = cfg("beta", 2);
    b.limits.max_declarations = 2;
    b.limits.max_pattern_wildcards = 1;
    let mut p = Pair::new(cfg("alpha", 1), b);
    p.pump();
    p.a.s
        .declare_intent(&route("T@a"), FP, Origin::Local)
        .unwrap();
    let e =
        p.a.s
            .declare_interest(&sel("T@**.a.**"), FP, Origin::Local)
            .unwrap_err();
    assert!(matches!(
        e,
        DeclareError::PeerLimit {
            what: LimitKind::PatternWildcards,
            ..
        }
    ));
    p.a.s
        .declare_intent(&route("T@b"), FP, Origin::Local)
        .unwrap();
    let e =
        p.a.s
            .declare_intent(&route("T@c"), FP, Origin::Local)
            .unwrap_err();
    assert!(e.to_string().contains("T@c"), "{e}");
    p.pump();
    assert!(p.b.s.is_connected());
    assert_eq!(p.b.s.remote_declaration_count(), 2);
}

#[test]
fn oversized_names_are_a_limit_error() {
    let mut c = cfg("beta", 2);
    c.limits.max_name_len = 64;
    let mut s = handshaken(c);
    let long = format!("T@{}", "a".repeat(62) + ".b");
    let k = error_kind(s.handle_frame(
        ms(2),
        &FrameHeader::control(),
        &update(&[declare_entry(1, 1, 1, &long)]),
    ));
    assert!(
        matches!(
            k,
            SessionErrorKind::Limit {
                what: LimitKind::NameLength,
                value: 66,
                limit: 64
            }
        ),
        "{k}"
    );
    // The peer's name in its hello is held to the same limit.
    let mut c = cfg("beta", 2);
    c.limits.max_name_len = 4;
    let mut s = Session::new(c, ms(0));
    let k = error_kind(s.handle_frame(
        ms(1),
        &FrameHeader::control(),
        &hello_bytes(1, 1, 4, "too long"),
    ));
    assert!(matches!(
        k,
        SessionErrorKind::Limit {
            what: LimitKind::NameLength,
            ..
        }
    ));
}

#[test]
fn too_complex_patterns_are_a_limit_error() {
    let mut c = cfg("beta", 2);
    c.limits.max_pattern_wildcards = 4;
    let mut s = handshaken(c);
    let k = error_kind(s.handle_frame(
        ms(2),
        &FrameHeader::control(),
        &update(&[declare_entry(2, 1, 1, "T@**.a.**.b.**.c.**.d.**")]),
    ));
    assert_eq!(
        k,
        SessionErrorKind::Limit {
            what: LimitKind::PatternWildcards,
            value: 5,
            limit: 4
        }
    );
    let mut c = cfg("beta", 2);
    c.limits.max_pattern_segments = 3;
    let mut s = handshaken(c);
    let k = error_kind(s.handle_frame(
        ms(2),
        &FrameHeader::control(),
        &update(&[declare_entry(2, 1, 1, "T@a.b.c.*")]),
    ));
    assert!(matches!(
        k,
        SessionErrorKind::Limit {
            what: LimitKind::PatternSegments,
            value: 4,
            limit: 3
        }
    ));
}

#[test]
fn malformed_control_payloads_are_typed_errors() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "type"),
        // Count says two entries, one follows.
        (
            update(&[declare_entry(1, 1, 1, "T@a")])[..]
                .iter()
                .copied()
                .enumerate()
                .map(|(i, b)| if i == 1 { 2 } else { b })
                .collect(),
            "op",
        ),
        // The string length lies.
        (
            {
                let mut e = declare_entry(1, 1, 1, "T@a");
                let n = e.len();
                e[n - 5] = 200;
                update(&[e])
            },
            "name",
        ),
        (vec![3, 1, 2, 3], "t1"),
        (vec![3, 0, 0, 0, 0, 0, 0, 0, 0, 9], "end"),
        (update(&[vec![9, 1, 0, 0, 0, 1, 0, 0, 0]]), "op"),
        (update(&[vec![3, 0, 0, 0, 0, 1, 0, 0, 0]]), "id"),
    ];
    for (payload, field) in cases {
        let mut s = handshaken(cfg("beta", 2));
        let k = error_kind(s.handle_frame(ms(2), &FrameHeader::control(), &payload));
        match k {
            SessionErrorKind::Malformed(m) => assert_eq!(m.field, field, "{payload:?}: {m}"),
            other => panic!("{payload:?}: {other}"),
        }
    }
    let mut s = handshaken(cfg("beta", 2));
    let k = error_kind(s.handle_frame(ms(2), &FrameHeader::control(), &[42]));
    assert_eq!(k, SessionErrorKind::UnknownMessage(42));
    let mut s = handshaken(cfg("beta", 2));
    let k = error_kind(s.handle_frame(
        ms(2),
        &FrameHeader::control(),
        &update(&[declare_entry(1, 1, 1, "not a route")]),
    ));
    assert!(
        matches!(k, SessionErrorKind::InvalidDeclaration { .. }),
        "{k}"
    );
    let mut s = handshaken(cfg("beta", 2));
    let k = error_kind(s.handle_frame(
        ms(2),
        &FrameHeader::control(),
        &update(&[vec![3, 5, 0, 0, 0, 1, 0, 0, 0]]),
    ));
    assert!(
        matches!(k, SessionErrorKind::UnknownWithdraw { id: 5, .. }),
        "{k}"
    );
    let mut s = handshaken(cfg("beta", 2));
    let twice = update(&[declare_entry(1, 1, 1, "T@a"), declare_entry(1, 1, 2, "T@b")]);
    let k = error_kind(s.handle_frame(ms(2), &FrameHeader::control(), &twice));
    assert!(
        matches!(k, SessionErrorKind::DuplicateDeclaration { id: 1, .. }),
        "{k}"
    );
}

#[test]
fn requests_and_replies_are_correlated_per_peer() {
    let mut a = cfg("alpha", 1);
    a.request_timeout = Some(ms(100));
    let mut p = Pair::new(a, cfg("beta", 2));
    p.pump();
    let req =
        p.a.s
            .declare_intent_in(Space::Service, &route("Req@svc"), FP, Origin::Local)
            .unwrap()
            .unwrap();
    let rep =
        p.b.s
            .declare_intent(&route("Rep@svc"), FP, Origin::Local)
            .unwrap()
            .unwrap();
    p.pump();
    let c1 = p.a.s.send_request(p.now, req, &b"q1"[..]).unwrap();
    let c2 = p.a.s.send_request(p.now, req, &b"q2"[..]).unwrap();
    assert_ne!(c1, c2);
    p.pump();
    let (Inbound::Request { header, .. }, payload) = p.b.inbound[0].clone() else {
        panic!()
    };
    assert_eq!((header.correlation, payload.as_slice()), (c1, &b"q1"[..]));
    p.b.s.send_reply(p.now, c1, Some(rep), &b"r1"[..]).unwrap();
    assert!(matches!(
        p.b.s.send_reply(p.now, c1, None, &b"again"[..]),
        Err(SendError::UnknownRequest(_))
    ));
    assert!(p.b.s.discard_request(c2));
    p.pump();
    let (Inbound::Reply { intent, header }, payload) = p.a.inbound[0].clone() else {
        panic!()
    };
    assert_eq!((header.correlation, payload.as_slice()), (c1, &b"r1"[..]));
    assert_eq!(
        p.a.s.remote_intent(intent.unwrap()).unwrap().route,
        route("Rep@svc")
    );

    // A reply to nothing we asked is dropped and counted.
    let stray = FrameHeader::new(FrameKind::Reply, 0).with_correlation(999);
    assert_eq!(p.a.s.handle_frame(p.now, &stray, b""), Ok(None));
    assert_eq!(p.a.s.stats().dropped_replies, 1);

    // c2 was never answered: it times out, and a late reply is dropped.
    p.advance_to(p.now + ms(100));
    assert!(
        p.a.take_events()
            .contains(&Event::RequestTimedOut { correlation: c2 })
    );
    let late = FrameHeader::new(FrameKind::Reply, 0).with_correlation(c2);
    assert_eq!(p.a.s.handle_frame(p.now, &late, b""), Ok(None));
}

#[test]
fn topics_and_services_never_mix() {
    let mut p = Pair::new(cfg("alpha", 1), cfg("beta", 2));
    p.pump();
    let topic =
        p.a.s
            .declare_intent(&route("Req@svc"), FP, Origin::Local)
            .unwrap()
            .unwrap();
    let client =
        p.a.s
            .declare_intent_in(Space::Service, &route("Req@svc"), FP, Origin::Local)
            .unwrap()
            .unwrap();
    assert_ne!(topic, client, "one alias per space");
    let server = p.a.s.declare_interest_in(
        Space::Service,
        &"Req@svc".parse().unwrap(),
        FP,
        Origin::Local,
    );
    assert_eq!(server.ok(), Some(true));
    p.pump();
    let spaces: Vec<_> =
        p.b.take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::RemoteIntent(i) => Some(("intent", i.space)),
                Event::RemoteInterest(i) => Some(("interest", i.space)),
                _ => None,
            })
            .collect();
    assert_eq!(
        spaces,
        [
            ("intent", Space::Topic),
            ("intent", Space::Service),
            ("interest", Space::Service)
        ]
    );
    assert_eq!(
        p.a.s.local_alias_in(Space::Service, &route("Req@svc"), FP),
        Some(client)
    );
    assert_eq!(p.a.s.local_alias(&route("Req@svc"), FP), Some(topic));

    // The sender refuses to mix them.
    assert!(matches!(
        p.a.s.send_request(p.now, topic, &b"q"[..]),
        Err(SendError::WrongSpace {
            space: Space::Topic,
            ..
        })
    ));
    assert!(matches!(
        p.a.s.send_data(p.now, client, &b"d"[..]),
        Err(SendError::WrongSpace {
            space: Space::Service,
            ..
        })
    ));
    // A receiver drops frames that do (a peer that ignores the rule).
    let on = |kind, a: LocalAlias| {
        FrameHeader::new(kind, a.alias)
            .with_flags((a.generation as u16 & 0xff) << 8)
            .with_correlation(5)
    };
    assert_eq!(
        p.b.s
            .handle_frame(p.now, &on(FrameKind::Request, topic), b""),
        Ok(None)
    );
    assert_eq!(
        p.b.s.handle_frame(p.now, &on(FrameKind::Data, client), b""),
        Ok(None)
    );
    assert_eq!(p.b.s.stats().dropped_wrong_space, 2);
    // Withdrawing one space leaves the other.
    assert!(
        p.a.s
            .withdraw_intent_in(Space::Service, &route("Req@svc"), FP)
    );
    assert!(
        !p.a.s
            .withdraw_intent_in(Space::Service, &route("Req@svc"), FP)
    );
    assert_eq!(p.a.s.local_alias(&route("Req@svc"), FP), Some(topic));
}

#[test]
fn pending_requests_are_bounded_on_both_sides() {
    let mut b = cfg("beta", 2);
    b.limits.max_pending_requests = 2;
    let mut p = Pair::new(cfg("alpha", 1), b);
    p.pump();
    let req =
        p.a.s
            .declare_intent_in(Space::Service, &route("Req@svc"), FP, Origin::Local)
            .unwrap()
            .unwrap();
    p.pump();
    p.a.s.send_request(p.now, req, &b""[..]).unwrap();
    p.a.s.send_request(p.now, req, &b""[..]).unwrap();
    assert!(matches!(
        p.a.s.send_request(p.now, req, &b""[..]),
        Err(SendError::TooManyPending { limit: 2 })
    ));
    p.pump();
    // A peer that ignores the limit is cut off.
    let h = FrameHeader::new(FrameKind::Request, req.alias)
        .with_flags((req.generation as u16 & 0xff) << 8)
        .with_correlation(77);
    let e = p.b.s.handle_frame(p.now, &h, b"").unwrap_err();
    assert!(matches!(
        e.kind,
        SessionErrorKind::Limit {
            what: LimitKind::PendingRequests,
            ..
        }
    ));
}

#[test]
fn frames_above_the_negotiated_limit_are_refused() {
    let mut b = cfg("beta", 2);
    b.limits.max_frame_len = 8192;
    let mut p = Pair::new(cfg("alpha", 1), b);
    p.pump();
    let a =
        p.a.s
            .declare_intent(&route("T@a"), FP, Origin::Local)
            .unwrap()
            .unwrap();
    let e = p.a.s.send_data(p.now, a, &vec![0u8; 9000][..]).unwrap_err();
    assert!(
        matches!(e, SendError::FrameTooLarge { limit: 8192, .. }),
        "{e}"
    );
    p.a.s.send_data(p.now, a, &vec![0u8; 100][..]).unwrap();
    // An archived message that turns out too large is taken back out.
    #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, dndm_codec::Message)]
    struct Blob {
        bytes: Vec<u8>,
    }
    let e =
        p.a.s
            .send_data(
                p.now,
                a,
                &Archive(&Blob {
                    bytes: vec![1; 10_000],
                }),
            )
            .unwrap_err();
    assert!(matches!(e, SendError::FrameTooLarge { .. }), "{e}");
    p.pump();
    assert_eq!(p.b.inbound.len(), 1);
    assert!(p.b.s.is_connected());
    // The receiver enforces it too.
    let k = error_kind(p.b.s.handle_frame(p.now, &FrameHeader::data(1), &[0; 9000]));
    assert!(matches!(
        k,
        SessionErrorKind::Limit {
            what: LimitKind::FrameLength,
            ..
        }
    ));
}

#[test]
fn export_and_import_filters_work_on_whole_segments() {
    let mut a = cfg("alpha", 1);
    a.export = PathFilter::under([Path::new("robot").unwrap()]);
    let mut b = cfg("beta", 2);
    b.import = PathFilter::under([Path::new("robot.arm").unwrap()]);
    let mut p = Pair::new(a, b);
    let out =
        p.a.s
            .declare_intent(&route("T@robotic.x"), FP, Origin::Local)
            .unwrap();
    assert_eq!(out, None, "robot is not a segment prefix of robotic (D22)");
    let arm =
        p.a.s
            .declare_intent(&route("T@robot.arm.imu"), FP, Origin::Local)
            .unwrap()
            .unwrap();
    let leg =
        p.a.s
            .declare_intent(&route("T@robot.leg"), FP, Origin::Local)
            .unwrap()
            .unwrap();
    assert!(
        p.a.s
            .declare_interest(&sel("T@robot.**"), FP, Origin::Local)
            .unwrap()
    );
    assert!(
        !p.a.s
            .declare_interest(&sel("T@other.*"), FP, Origin::Local)
            .unwrap()
    );
    p.pump();
    let ev = p.b.take_events();
    assert_eq!(remote_intents(&ev), ["T@robot.arm.imu"]);
    assert_eq!(remote_interests(&ev), ["T@robot.**"]);
    assert_eq!(p.b.s.stats().declarations_filtered, 1);
    // Data for the filtered intent is dropped, not fatal, not a flood.
    p.a.s.send_data(p.now, leg, &b"x"[..]).unwrap();
    p.a.s.send_data(p.now, arm, &b"y"[..]).unwrap();
    p.pump();
    assert_eq!(p.b.inbound.len(), 1);
    assert_eq!(p.b.s.stats().dropped_filtered, 1);
    // Withdrawing a filtered declaration is silent.
    p.a.s.withdraw_intent(&route("T@robot.leg"), FP);
    p.pump();
    assert!(withdrawn(&p.b.take_events()).is_empty());
    assert!(p.b.s.is_connected());
}

#[test]
fn local_declarations_beyond_the_peer_limit_at_connect_end_the_session() {
    let mut b = cfg("beta", 2);
    b.limits.max_declarations = 1;
    let mut p = Pair::new(cfg("alpha", 1), b);
    p.a.s
        .declare_intent(&route("T@a"), FP, Origin::Local)
        .unwrap();
    p.a.s
        .declare_intent(&route("T@b"), FP, Origin::Local)
        .unwrap();
    p.pump();
    assert!(matches!(
        p.a.errors[0].kind,
        SessionErrorKind::PeerLimit {
            what: LimitKind::Declarations,
            value: 2,
            limit: 1
        }
    ));
    assert!(p.b.s.is_closed(), "told by a goodbye");
    assert_eq!(p.b.s.remote_declaration_count(), 0);
}

#[test]
fn large_batches_are_split_to_fit_the_frame_limit() {
    let mut a = cfg("alpha", 1);
    a.limits.max_frame_len = 8192;
    let mut p = Pair::new(a, cfg("beta", 2));
    let long = "x".repeat(60);
    for i in 0..500 {
        p.a.s
            .declare_intent(&route(&format!("T@{long}.n{i}")), FP, Origin::Local)
            .unwrap();
    }
    p.pump();
    let ev = p.b.take_events();
    assert_eq!(remote_intents(&ev).len(), 500);
    let frames = p.b.s.stats().frames_in;
    // About 42 000 bytes of entries in frames of at most 8 KiB.
    assert!((6..=8).contains(&frames), "{frames} frames");
}

#[test]
fn stale_generations_count_towards_the_flood_limit() {
    let mut b = cfg("beta", 2);
    b.unknown_alias_limit = 2;
    let mut p = Pair::new(cfg("alpha", 1), b);
    p.pump();
    let a =
        p.a.s
            .declare_intent(&route("T@a"), FP, Origin::Local)
            .unwrap()
            .unwrap();
    p.pump();
    let stale = FrameHeader::data(a.alias).with_flags(((a.generation + 1) as u16 & 0xff) << 8);
    assert_eq!(p.b.s.handle_frame(p.now, &stale, b""), Ok(None));
    assert_eq!(
        p.b.s.handle_frame(p.now, &FrameHeader::data(9), b""),
        Ok(None)
    );
    let e = p.b.s.handle_frame(p.now, &stale, b"").unwrap_err();
    assert!(matches!(
        e.kind,
        SessionErrorKind::UnknownAliasFlood { count: 3, .. }
    ));
    assert_eq!(p.b.s.stats().dropped_stale_generation, 2);
    assert_eq!(p.b.s.stats().dropped_unknown_alias, 1);
}

#[test]
fn connected_comes_before_the_declarations() {
    let mut p = Pair::new(cfg("alpha", 1), cfg("beta", 2));
    p.a.s
        .declare_intent(&route("T@a"), FP, Origin::Local)
        .unwrap();
    p.pump();
    let ev = p.b.take_events();
    assert!(matches!(ev[0], Event::Connected(_)));
    assert!(matches!(ev[1], Event::RemoteIntent(_)));
    assert_eq!(ev.len(), 2);
}

#[test]
fn poll_transmit_appends_behind_frames_already_queued() {
    let mut p = Pair::connected();
    let a =
        p.a.s
            .declare_intent(&route("T@a"), FP, Origin::Local)
            .unwrap()
            .unwrap();
    p.a.s.send_data(p.now, a, &b"payload"[..]).unwrap();
    let mut out = FrameBuffer::new();
    out.push_raw(&FrameHeader::control(), &[3, 0, 0, 0, 0, 0, 0, 0, 0])
        .unwrap();
    assert!(p.a.s.poll_transmit(p.now, &mut out));
    assert!(!p.a.s.poll_transmit(p.now, &mut out), "nothing left");
    // The driver's ping, then the update, then the data, in order.
    let kinds: Vec<_> = dndm_codec::frames(out.as_bytes())
        .map(|f| f.unwrap().kind())
        .collect();
    assert_eq!(
        kinds,
        [FrameKind::Control, FrameKind::Control, FrameKind::Data]
    );
    p.b.receive(p.now, out.as_bytes());
    assert_eq!(p.b.inbound.len(), 1);
    assert_eq!(remote_intents(&p.b.take_events()), ["T@a"]);
    assert_eq!(p.a.s.max_frame_len(), 16 << 20);
}

/// The control payloads a session writes, byte for byte as PROTOCOL.md
/// describes them.
#[test]
fn control_payloads_match_the_protocol_document() {
    let mut c = cfg("alpha", 1);
    c.path = Some(Path::new("robot").unwrap());
    c.capabilities = 0x0102;
    let mut a = Session::new(c, ms(0));
    let mut out = FrameBuffer::new();
    a.poll_transmit(ms(0), &mut out);
    let hello = dndm_codec::frames(out.as_bytes()).next().unwrap().unwrap();
    let h = hello.payload();
    assert_eq!(hello.header().kind, FrameKind::Control);
    assert_eq!(hello.header().route, 0);
    assert_eq!(h[0], 1, "type");
    assert_eq!(&h[1..3], &1u16.to_le_bytes(), "version");
    assert_eq!(&h[3..7], &[1, 4, 1, 0], "archive format");
    assert_eq!(&h[7..23], &[1; 16], "node id");
    assert_eq!(&h[23..31], &0x0102u64.to_le_bytes(), "capabilities");
    assert_eq!(&h[31..35], &(16u32 << 20).to_le_bytes(), "max frame length");
    assert_eq!(&h[35..39], &4096u32.to_le_bytes(), "max declarations");
    assert_eq!(&h[39..41], &[32, 8], "pattern limits");
    assert_eq!(&h[41..43], &512u16.to_le_bytes(), "max name length");
    assert_eq!(&h[43..47], &1024u32.to_le_bytes(), "max pending requests");
    assert_eq!(&h[47..51], &5000u32.to_le_bytes(), "idle timeout");
    assert_eq!(&h[51..], b"\x05\x00alpha\x05\x00robot", "name, path");

    a.handle_frame(ms(1), &FrameHeader::control(), &hello_bytes(1, 1, 4, "raw"))
        .unwrap();
    a.declare_intent(&route("T@a"), FP, Origin::Local).unwrap();
    a.declare_interest(&sel("T@*"), FP, Origin::Local).unwrap();
    a.ping(ms(2));
    let mut out = FrameBuffer::new();
    a.poll_transmit(ms(2), &mut out);
    let payloads: Vec<Vec<u8>> = dndm_codec::frames(out.as_bytes())
        .map(|f| f.unwrap().payload().to_vec())
        .collect();
    assert_eq!(
        payloads[0],
        update(&[declare_entry(1, 1, 1, "T@a"), declare_entry(2, 1, 1, "T@*")])
    );
    let mut ping = vec![3u8];
    ping.extend_from_slice(&2_000_000u64.to_le_bytes());
    assert_eq!(payloads[1], ping);

    a.withdraw_intent(&route("T@a"), FP);
    a.close(ms(3), "bye");
    let mut out = FrameBuffer::new();
    a.poll_transmit(ms(3), &mut out);
    let payloads: Vec<Vec<u8>> = dndm_codec::frames(out.as_bytes())
        .map(|f| f.unwrap().payload().to_vec())
        .collect();
    // The withdrawal is dropped with the close; the goodbye goes out.
    assert_eq!(payloads, [vec![5, 0, 0, 3, 0, b'b', b'y', b'e']]);
}

// ----- property test: what the peer believes -----

#[derive(Debug, Clone)]
enum Op {
    DeclareIntent(usize),
    WithdrawIntent(usize),
    DeclareInterest(usize),
    WithdrawInterest(usize),
    Pump,
}

const ROUTES: [&str; 4] = ["T@a", "T@a.b", "U@a", "T@c.d"];
const SELECTORS: [&str; 3] = ["T@a.*", "T@**", "U@a"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..ROUTES.len()).prop_map(Op::DeclareIntent),
        (0..ROUTES.len()).prop_map(Op::WithdrawIntent),
        (0..SELECTORS.len()).prop_map(Op::DeclareInterest),
        (0..SELECTORS.len()).prop_map(Op::WithdrawInterest),
        Just(Op::Pump),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random declare/withdraw sequences on one side, pumped at random
    /// points, some before the handshake: the other side's view (built only
    /// from events) equals the set of live local declarations, and every
    /// data frame sent on a live alias lands on the right route.
    #[test]
    fn the_peer_believes_exactly_what_is_declared(ops in prop::collection::vec(op(), 0..60), connect_at in 0usize..10) {
        let mut p = Pair::new(cfg("alpha", 1), cfg("beta", 2));
        let mut intents: BTreeMap<usize, u32> = BTreeMap::new();
        let mut interests: BTreeMap<usize, u32> = BTreeMap::new();
        let mut seen_intents: BTreeMap<(u32, u32), String> = BTreeMap::new();
        let mut seen_interests: BTreeMap<(u32, u32), String> = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            if i == connect_at { p.pump(); }
            match *op {
                Op::DeclareIntent(r) => {
                    p.a.s.declare_intent(&route(ROUTES[r]), FP, Origin::Local).unwrap();
                    *intents.entry(r).or_default() += 1;
                }
                Op::WithdrawIntent(r) => {
                    let had = intents.get(&r).copied().unwrap_or(0) > 0;
                    prop_assert_eq!(p.a.s.withdraw_intent(&route(ROUTES[r]), FP), had);
                    if had {
                        let n = intents.entry(r).or_default();
                        *n -= 1;
                        if *n == 0 { intents.remove(&r); }
                    }
                }
                Op::DeclareInterest(s) => {
                    p.a.s.declare_interest(&sel(SELECTORS[s]), FP, Origin::Local).unwrap();
                    *interests.entry(s).or_default() += 1;
                }
                Op::WithdrawInterest(s) => {
                    let had = interests.get(&s).copied().unwrap_or(0) > 0;
                    prop_assert_eq!(p.a.s.withdraw_interest(&sel(SELECTORS[s]), FP), had);
                    if had {
                        let n = interests.entry(s).or_default();
                        *n -= 1;
                        if *n == 0 { interests.remove(&s); }
                    }
                }
                Op::Pump => p.pump(),
            }
            for e in p.b.take_events() {
                match e {
                    Event::RemoteIntent(i) => {
                        let prev = seen_intents.insert((i.id.alias, i.id.generation), i.route.to_string());
                        prop_assert!(prev.is_none());
                    }
                    Event::RemoteInterest(i) => {
                        let prev = seen_interests.insert((i.id.id, i.id.generation), i.selector.to_string());
                        prop_assert!(prev.is_none());
                    }
                    Event::Withdrawn(Withdrawn::Intent(i)) => {
                        prop_assert!(seen_intents.remove(&(i.id.alias, i.id.generation)).is_some());
                    }
                    Event::Withdrawn(Withdrawn::Interest(i)) => {
                        prop_assert!(seen_interests.remove(&(i.id.id, i.id.generation)).is_some());
                    }
                    Event::Connected(_) => {}
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
        }
        p.pump();
        for e in p.b.take_events() {
            match e {
                Event::RemoteIntent(i) => { seen_intents.insert((i.id.alias, i.id.generation), i.route.to_string()); }
                Event::RemoteInterest(i) => { seen_interests.insert((i.id.id, i.id.generation), i.selector.to_string()); }
                Event::Withdrawn(Withdrawn::Intent(i)) => { prop_assert!(seen_intents.remove(&(i.id.alias, i.id.generation)).is_some()); }
                Event::Withdrawn(Withdrawn::Interest(i)) => { prop_assert!(seen_interests.remove(&(i.id.id, i.id.generation)).is_some()); }
                _ => {}
            }
        }
        let mut want: Vec<String> = intents.keys().map(|&r| ROUTES[r].to_owned()).collect();
        let mut got: Vec<String> = seen_intents.values().cloned().collect();
        want.sort();
        got.sort();
        prop_assert_eq!(got, want);
        let mut want: Vec<String> = interests.keys().map(|&s| SELECTORS[s].to_owned()).collect();
        let mut got: Vec<String> = seen_interests.values().cloned().collect();
        want.sort();
        got.sort();
        prop_assert_eq!(got, want);

        // Data on every live alias reaches the route the peer believes in.
        for &r in intents.keys() {
            let a = p.a.s.local_alias(&route(ROUTES[r]), FP).unwrap();
            p.a.s.send_data(p.now, a, ROUTES[r].as_bytes()).unwrap();
        }
        p.pump();
        prop_assert_eq!(p.b.inbound.len(), intents.len());
        for (inb, payload) in &p.b.inbound {
            let Inbound::Data { intent, .. } = inb else { panic!() };
            let believed = &seen_intents[&(intent.alias, intent.generation)];
            prop_assert_eq!(believed.as_bytes(), payload.as_slice());
        }
        prop_assert_eq!(p.b.s.stats().dropped_unknown_alias + p.b.s.stats().dropped_stale_generation, 0);
        prop_assert!(p.a.s.is_connected() && p.b.s.is_connected());

        // Closing withdraws everything exactly once.
        p.a.s.close(p.now, "done");
        p.pump();
        let ev = p.b.take_events();
        prop_assert_eq!(withdrawn(&ev).len(), seen_intents.len() + seen_interests.len());
    }
}

// ----- hostile input -----

/// A frame as a hostile peer could send it: any kind, alias, flags and
/// correlation, and a payload that often starts with a real control type.
fn hostile_frame() -> impl Strategy<Value = (FrameHeader, Vec<u8>)> {
    (
        prop_oneof![
            4 => Just(FrameKind::Control),
            1 => Just(FrameKind::Data),
            1 => Just(FrameKind::Request),
            1 => Just(FrameKind::Reply)
        ],
        0u32..4,
        any::<u16>(),
        0u64..4,
        0u8..7,
        prop::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(kind, route, flags, correlation, ty, mut payload)| {
            payload.insert(0, ty);
            let header = FrameHeader::new(kind, route)
                .with_flags(flags & 0xff00)
                .with_correlation(correlation);
            (header, payload)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever a peer sends, before or after its hello, the session never
    /// panics: each frame is accepted, dropped or ends the session with a
    /// typed error, after which nothing is accepted.
    #[test]
    fn hostile_frames_never_panic(frames in prop::collection::vec(hostile_frame(), 0..24), hello in any::<bool>()) {
        let mut c = cfg("beta", 2);
        c.limits.max_declarations = 4;
        c.unknown_alias_limit = 3;
        let mut s = if hello { handshaken(c) } else { Session::new(c, ms(0)) };
        let mut failed = false;
        for (i, (header, payload)) in frames.iter().enumerate() {
            let now = ms(2 + i as u64);
            match s.handle_frame(now, header, payload) {
                Ok(_) => {}
                Err(e) => {
                    prop_assert!(!failed, "a closed session failed again");
                    prop_assert!(!e.to_string().is_empty());
                    failed = true;
                }
            }
            s.handle_timeout(now);
            let mut out = FrameBuffer::new();
            s.poll_transmit(now, &mut out);
        }
        if failed {
            prop_assert!(s.is_closed());
        }
        let mut closed = 0;
        while let Some(e) = s.poll_event() {
            prop_assert_eq!(closed, 0, "nothing after Closed");
            if matches!(e, Event::Closed(_)) {
                closed += 1;
            }
        }
    }
}

// ----- property test: both sides at once, bytes in random chunks -----

#[derive(Debug, Clone)]
enum Step {
    /// Side (false = a, true = b) declares route `ROUTES[i]`.
    Declare(bool, usize),
    /// Side withdraws route `ROUTES[i]` (if declared).
    Withdraw(bool, usize),
    /// Side sends a sample on route `ROUTES[i]` (if declared).
    Send(bool, usize),
    /// Move up to this many bytes each way.
    Move(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<bool>(), 0..ROUTES.len()).prop_map(|(s, i)| Step::Declare(s, i)),
        (any::<bool>(), 0..ROUTES.len()).prop_map(|(s, i)| Step::Withdraw(s, i)),
        (any::<bool>(), 0..ROUTES.len()).prop_map(|(s, i)| Step::Send(s, i)),
        (1usize..400).prop_map(Step::Move),
    ]
}

/// Bytes written by one side and not yet read by the other.
#[derive(Default)]
struct Wire(Vec<u8>);

impl Wire {
    fn fill(&mut self, from: &mut Session, now: Duration) {
        let mut buf = FrameBuffer::new();
        if from.poll_transmit(now, &mut buf) {
            self.0.extend_from_slice(buf.as_bytes());
        }
    }

    fn deliver(&mut self, n: usize, to: &mut Side, now: Duration) {
        let n = n.min(self.0.len());
        let chunk: Vec<u8> = self.0.drain(..n).collect();
        to.receive(now, &chunk);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Both sides declare, withdraw and send while bytes trickle through in
    /// random chunks; then one closes. Every sample is delivered on the
    /// route its sender meant (never on a re-declared alias), declarations
    /// end up mirrored, and on close each side sees every remote
    /// declaration withdrawn exactly once.
    #[test]
    fn both_sides_with_trickling_bytes(steps in prop::collection::vec(step(), 0..80), closer in any::<bool>()) {
        let mut p = Pair::new(cfg("alpha", 1), cfg("beta", 2));
        let (mut ab, mut ba) = (Wire::default(), Wire::default());
        let mut declared = [BTreeMap::<usize, LocalAlias>::new(), BTreeMap::new()];
        let mut sent = [0usize; 2];
        for st in steps {
            let now = p.now;
            match st {
                Step::Declare(side, i) => {
                    let s = if side { &mut p.b.s } else { &mut p.a.s };
                    if let std::collections::btree_map::Entry::Vacant(v) = declared[usize::from(side)].entry(i) {
                        v.insert(s.declare_intent(&route(ROUTES[i]), FP, Origin::Local).unwrap().unwrap());
                    }
                }
                Step::Withdraw(side, i) => {
                    let s = if side { &mut p.b.s } else { &mut p.a.s };
                    let had = declared[usize::from(side)].remove(&i).is_some();
                    prop_assert_eq!(s.withdraw_intent(&route(ROUTES[i]), FP), had);
                }
                Step::Send(side, i) => {
                    let s = if side { &mut p.b.s } else { &mut p.a.s };
                    if let Some(&a) = declared[usize::from(side)].get(&i)
                        && s.is_connected()
                    {
                        s.send_data(now, a, ROUTES[i].as_bytes()).unwrap();
                        sent[usize::from(side)] += 1;
                    }
                }
                Step::Move(n) => {
                    ab.fill(&mut p.a.s, now);
                    ba.fill(&mut p.b.s, now);
                    ab.deliver(n, &mut p.b, now);
                    ba.deliver(n, &mut p.a, now);
                }
            }
        }
        // Drain everything.
        for _ in 0..10 {
            ab.fill(&mut p.a.s, p.now);
            ba.fill(&mut p.b.s, p.now);
            ab.deliver(usize::MAX, &mut p.b, p.now);
            ba.deliver(usize::MAX, &mut p.a, p.now);
        }
        prop_assert!(p.a.errors.is_empty() && p.b.errors.is_empty(), "{:?} {:?}", p.a.errors, p.b.errors);
        // Every sample arrived, on the route it was sent on.
        for (side, rx) in [(0usize, &p.b), (1, &p.a)] {
            prop_assert_eq!(rx.inbound.len(), sent[side]);
        }
        let mut believed = [BTreeMap::<(u32, u32), String>::new(), BTreeMap::new()];
        for (k, rx) in [(0usize, &mut p.a), (1, &mut p.b)] {
            for e in rx.take_events() {
                match e {
                    Event::RemoteIntent(i) => { believed[k].insert((i.id.alias, i.id.generation), i.route.to_string()); }
                    Event::Withdrawn(Withdrawn::Intent(i)) => { prop_assert!(believed[k].remove(&(i.id.alias, i.id.generation)).is_some()); }
                    _ => {}
                }
            }
        }
        for (k, rx) in [(0usize, &p.a), (1, &p.b)] {
            for (inb, payload) in &rx.inbound {
                let Inbound::Data { intent, .. } = inb else { panic!() };
                // The route the receiver resolved the alias to at delivery
                // time is still in its view, or was withdrawn later: check
                // against the payload, which names the sender's route.
                if let Some(route) = believed[k].get(&(intent.alias, intent.generation)) {
                    prop_assert_eq!(route.as_bytes(), payload.as_slice());
                }
            }
        }
        let mut want_a: Vec<String> = declared[1].keys().map(|&i| ROUTES[i].to_owned()).collect();
        let mut got_a: Vec<String> = believed[0].values().cloned().collect();
        want_a.sort();
        got_a.sort();
        prop_assert_eq!(got_a, want_a);
        let mut want_b: Vec<String> = declared[0].keys().map(|&i| ROUTES[i].to_owned()).collect();
        let mut got_b: Vec<String> = believed[1].values().cloned().collect();
        want_b.sort();
        got_b.sort();
        prop_assert_eq!(got_b, want_b);

        // Close: each side withdraws exactly what it believed.
        if closer { p.b.s.close(p.now, "done") } else { p.a.s.close(p.now, "done") }
        p.pump();
        for (k, rx) in [(0usize, &mut p.a), (1, &mut p.b)] {
            let ev = rx.take_events();
            let mut gone: Vec<String> = withdrawn(&ev);
            let mut want: Vec<String> = believed[k].values().cloned().collect();
            gone.sort();
            want.sort();
            prop_assert_eq!(gone, want);
            prop_assert_eq!(ev.iter().filter(|e| matches!(e, Event::Closed(_))).count(), 1);
            prop_assert!(matches!(ev.last(), Some(Event::Closed(_))));
        }
    }
}
