//! The peer session driven by hand, byte by byte: a raw peer writes hellos,
//! updates, pings, pongs, goodbyes, data, requests and replies as
//! `PROTOCOL.md` lays them out, and the tests check the typed errors (with
//! their fields), the events, the counters and what the session sends back.
//! Time is virtual: every `now` is passed in.
//!
//! Written against mutants of `router/src/session/*.rs` that the other
//! tests let through (see `docs/mutants.md`).
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::time::Duration;

use dndm_codec::{FrameBuffer, FrameHeader, FrameKind, HEADER_LEN, frame_len};
use dndm_router::session::{
    ArchiveFormat, CloseReason, Event, Inbound, LimitKind, Malformed, NodeId, Origin, PathFilter,
    RemoteIntentId, Session, SessionConfig, SessionError, SessionErrorKind, Space, Withdrawn,
};
use dndm_router::{Path, Route, Selector};

const FP: u64 = 0xfeed;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn cfg() -> SessionConfig {
    SessionConfig::new(NodeId::from_bytes([2; 16]), "beta")
}

fn route(s: &str) -> Route {
    s.parse().unwrap()
}

fn sel(s: &str) -> Selector {
    s.parse().unwrap()
}

/// A hello as a raw peer writes it; every field can be changed.
#[derive(Clone)]
struct Hello {
    version: u16,
    endian: u8,
    pointer_width: u8,
    align: u8,
    max_frame_len: u32,
    max_declarations: u32,
    max_segments: u8,
    max_wildcards: u8,
    max_name_len: u16,
    max_pending: u32,
    idle_ms: u32,
    name: String,
    path: String,
}

impl Default for Hello {
    fn default() -> Self {
        Self {
            version: 1,
            endian: 1,
            pointer_width: 4,
            align: 1,
            max_frame_len: 1 << 20,
            max_declarations: 100,
            max_segments: 8,
            max_wildcards: 2,
            max_name_len: 512,
            max_pending: 16,
            idle_ms: 5000,
            name: "raw".into(),
            path: String::new(),
        }
    }
}

impl Hello {
    fn bytes(&self) -> Vec<u8> {
        let mut v = vec![1u8];
        v.extend_from_slice(&self.version.to_le_bytes());
        v.extend_from_slice(&[self.endian, self.pointer_width, self.align, 0]);
        v.extend_from_slice(&[9; 16]);
        v.extend_from_slice(&0u64.to_le_bytes());
        v.extend_from_slice(&self.max_frame_len.to_le_bytes());
        v.extend_from_slice(&self.max_declarations.to_le_bytes());
        v.extend_from_slice(&[self.max_segments, self.max_wildcards]);
        v.extend_from_slice(&self.max_name_len.to_le_bytes());
        v.extend_from_slice(&self.max_pending.to_le_bytes());
        v.extend_from_slice(&self.idle_ms.to_le_bytes());
        push_str(&mut v, &self.name);
        push_str(&mut v, &self.path);
        v
    }
}

fn push_str(v: &mut Vec<u8>, s: &str) {
    v.extend_from_slice(&(s.len() as u16).to_le_bytes());
    v.extend_from_slice(s.as_bytes());
}

/// The result of handing `s` one control frame.
fn control(s: &mut Session, now: Duration, payload: &[u8]) -> Result<(), SessionError> {
    s.handle_frame(now, &FrameHeader::control(), payload)
        .map(|inbound| assert_eq!(inbound, None))
}

fn kind_of(r: Result<(), SessionError>) -> SessionErrorKind {
    r.unwrap_err().kind
}

fn malformed(r: Result<(), SessionError>) -> Malformed {
    match kind_of(r) {
        SessionErrorKind::Malformed(m) => m,
        other => panic!("not malformed: {other}"),
    }
}

/// A session created at 0 ms whose handshake with a raw peer (`hello`)
/// completed at 1 ms; what it sent so far is discarded.
fn connected_with(config: SessionConfig, hello: &Hello) -> Session {
    let mut s = Session::new(config, ms(0));
    control(&mut s, ms(1), &hello.bytes()).unwrap();
    sent(&mut s, ms(1));
    while s.poll_event().is_some() {}
    s
}

/// A connected session that accepts peer declarations under `robot` only.
fn connected_importing_robot() -> Session {
    let mut c = cfg();
    c.import = PathFilter::under([Path::new("robot").unwrap()]);
    connected(c)
}

fn connected(config: SessionConfig) -> Session {
    connected_with(config, &Hello::default())
}

/// Every frame the session queued, in order.
fn sent(s: &mut Session, now: Duration) -> Vec<(FrameHeader, Vec<u8>)> {
    let mut out = FrameBuffer::new();
    s.poll_transmit(now, &mut out);
    dndm_codec::frames(out.as_bytes())
        .map(|f| {
            let f = f.unwrap();
            (*f.header(), f.payload().to_vec())
        })
        .collect()
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).take(10_000).collect()
}

/// One update entry declaring `text` (ops 1, 2, 5, 6).
fn declare(op: u8, id: u32, generation: u32, text: &str) -> Vec<u8> {
    let mut v = vec![op];
    v.extend_from_slice(&id.to_le_bytes());
    v.extend_from_slice(&generation.to_le_bytes());
    v.extend_from_slice(&FP.to_le_bytes());
    push_str(&mut v, text);
    v
}

/// One update entry withdrawing an id (ops 3, 4).
fn withdraw(op: u8, id: u32, generation: u32) -> Vec<u8> {
    let mut v = vec![op];
    v.extend_from_slice(&id.to_le_bytes());
    v.extend_from_slice(&generation.to_le_bytes());
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

fn ping(t1: u64) -> Vec<u8> {
    let mut v = vec![3u8];
    v.extend_from_slice(&t1.to_le_bytes());
    v
}

fn pong(t1: u64, t2: u64, t3: u64) -> Vec<u8> {
    let mut v = vec![4u8];
    for t in [t1, t2, t3] {
        v.extend_from_slice(&t.to_le_bytes());
    }
    v
}

fn goodbye(code: u16, reason: &str) -> Vec<u8> {
    let mut v = vec![5u8];
    v.extend_from_slice(&code.to_le_bytes());
    push_str(&mut v, reason);
    v
}

/// The frame header of a data, request or reply frame on the peer's alias.
fn on(kind: FrameKind, alias: u32, generation: u32) -> FrameHeader {
    FrameHeader::new(kind, alias).with_flags(((generation & 0xff) as u16) << 8)
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap()
}

/// The `t1` of the single ping among `frames`.
fn ping_t1(frames: &[(FrameHeader, Vec<u8>)]) -> u64 {
    let pings: Vec<u64> = frames
        .iter()
        .filter(|(h, p)| h.kind == FrameKind::Control && p.first() == Some(&3))
        .map(|(_, p)| u64::from_le_bytes(p[1..9].try_into().unwrap()))
        .collect();
    assert_eq!(pings.len(), 1, "one ping");
    pings[0]
}

// ----- input.rs: handle_frame -----

#[test]
fn frames_after_the_close_are_counted_and_ignored() {
    let mut s = connected(cfg());
    s.close(ms(2), "bye");
    let before = s.stats().frames_in;
    for _ in 0..2 {
        assert_eq!(s.handle_frame(ms(3), &FrameHeader::data(1), b"x"), Ok(None));
    }
    assert_eq!(s.stats().dropped_after_close, 2);
    assert_eq!(s.stats().frames_in, before);
}

#[test]
fn a_frame_of_exactly_the_negotiated_length_is_accepted() {
    let mut c = cfg();
    c.limits.max_frame_len = 8192;
    let mut s = connected(c);
    assert_eq!(s.max_frame_len(), 8192);
    let fits = 8192 - HEADER_LEN;
    assert_eq!(frame_len(fits), 8192);
    // An unknown alias: dropped and counted, not an error.
    assert_eq!(
        s.handle_frame(ms(2), &FrameHeader::data(7), &vec![0; fits]),
        Ok(None)
    );
    assert_eq!(s.stats().dropped_unknown_alias, 1);
    let k = s
        .handle_frame(ms(2), &FrameHeader::data(7), &vec![0; fits + 1])
        .unwrap_err()
        .kind;
    assert_eq!(
        k,
        SessionErrorKind::Limit {
            what: LimitKind::FrameLength,
            value: 8192 + 16,
            limit: 8192
        }
    );
}

// ----- input.rs: handle_hello -----

#[test]
fn a_hello_with_an_invalid_endianness_byte_is_refused() {
    // Our format is big-endian, which a peer's byte 2 announces; 3 means
    // nothing, even though it is "not little-endian" too.
    let mut c = cfg();
    c.archive_format = ArchiveFormat {
        little_endian: false,
        pointer_width: 4,
        aligned: true,
    };
    let ok = Hello {
        endian: 2,
        ..Hello::default()
    };
    let mut s = Session::new(c.clone(), ms(0));
    control(&mut s, ms(1), &ok.bytes()).unwrap();
    assert!(s.is_connected());
    for endian in [0, 3] {
        let mut s = Session::new(c.clone(), ms(0));
        let bad = Hello {
            endian,
            ..Hello::default()
        };
        let k = kind_of(control(&mut s, ms(1), &bad.bytes()));
        assert!(
            matches!(k, SessionErrorKind::ArchiveFormat { theirs, .. } if !theirs.little_endian),
            "endian {endian}: {k}"
        );
        assert!(s.is_closed());
    }
}

#[test]
fn a_hello_with_an_invalid_alignment_byte_is_refused() {
    let mut c = cfg();
    c.archive_format = ArchiveFormat {
        little_endian: true,
        pointer_width: 4,
        aligned: false,
    };
    // 0 is "unaligned": accepted.
    let mut s = Session::new(c.clone(), ms(0));
    let unaligned = Hello {
        align: 0,
        ..Hello::default()
    };
    control(&mut s, ms(1), &unaligned.bytes()).unwrap();
    assert!(s.is_connected());
    // 2 means nothing, even though it is "not aligned" too.
    let mut s = Session::new(c.clone(), ms(0));
    let bad = Hello {
        align: 2,
        ..Hello::default()
    };
    let k = kind_of(control(&mut s, ms(1), &bad.bytes()));
    assert_eq!(
        k,
        SessionErrorKind::ArchiveFormat {
            ours: c.archive_format,
            theirs: c.archive_format
        }
    );
}

#[test]
fn a_peer_frame_limit_below_the_protocol_minimum_is_malformed() {
    let mut s = Session::new(cfg(), ms(0));
    let small = Hello {
        max_frame_len: 8191,
        ..Hello::default()
    };
    let m = malformed(control(&mut s, ms(1), &small.bytes()));
    assert_eq!(
        (m.message, m.field, m.problem),
        (
            "hello",
            "max frame length",
            "below the protocol minimum of 8192"
        )
    );
    assert!(s.is_closed());
    // Exactly the minimum is fine, and becomes the negotiated limit.
    let mut s = Session::new(cfg(), ms(0));
    let min = Hello {
        max_frame_len: 8192,
        ..Hello::default()
    };
    control(&mut s, ms(1), &min.bytes()).unwrap();
    assert!(s.is_connected());
    assert_eq!(s.max_frame_len(), 8192);
    assert_eq!(s.peer().unwrap().max_frame_len, 8192);
}

#[test]
fn a_peer_name_of_exactly_the_name_limit_is_accepted() {
    let mut c = cfg();
    c.limits.max_name_len = 16;
    let mut s = Session::new(c.clone(), ms(0));
    let hello = Hello {
        name: "n".repeat(16),
        ..Hello::default()
    };
    control(&mut s, ms(1), &hello.bytes()).unwrap();
    assert_eq!(s.peer().unwrap().name, "n".repeat(16));
    let mut s = Session::new(c, ms(0));
    let hello = Hello {
        name: "n".repeat(17),
        ..Hello::default()
    };
    assert_eq!(
        kind_of(control(&mut s, ms(1), &hello.bytes())),
        SessionErrorKind::Limit {
            what: LimitKind::NameLength,
            value: 17,
            limit: 16
        }
    );
}

#[test]
fn the_peer_idle_timeout_sets_the_keepalive_interval() {
    // Our keep-alive interval is 1 s; the hello went out at 0 ms, so the
    // first ping is due one interval later.
    let due = |idle_ms: u32| {
        let hello = Hello {
            idle_ms,
            ..Hello::default()
        };
        connected_with(cfg(), &hello).poll_timeout().unwrap()
    };
    // A third of the peer's idle timeout when that is shorter.
    assert_eq!(due(300), ms(100));
    assert_eq!(due(2400), ms(800));
    // Never above our own interval.
    assert_eq!(due(30_000), ms(1000));
    // Never below 10 ms.
    assert_eq!(due(15), ms(10));
    // 0: the peer has no idle timeout, ours stays.
    assert_eq!(due(0), ms(1000));
    // And the ping does go out then.
    let mut s = connected_with(
        cfg(),
        &Hello {
            idle_ms: 300,
            ..Hello::default()
        },
    );
    s.handle_timeout(ms(99));
    assert!(sent(&mut s, ms(99)).is_empty());
    s.handle_timeout(ms(100));
    assert_eq!(ping_t1(&sent(&mut s, ms(100))), ns(ms(100)));
}

// ----- input.rs: control messages -----

#[test]
fn a_ping_is_answered_with_a_pong_echoing_its_time() {
    let mut s = connected(cfg());
    control(&mut s, ms(7), &ping(123_456)).unwrap();
    let out = sent(&mut s, ms(7));
    assert_eq!(out.len(), 1);
    let now = ns(ms(7));
    assert_eq!(out[0].1, pong(123_456, now, now));
}

#[test]
fn a_pong_gives_rtt_and_clock_offset_from_all_four_times() {
    let mut s = connected(cfg());
    s.ping(ms(10));
    let t1 = ping_t1(&sent(&mut s, ms(10)));
    assert_eq!(t1, ns(ms(10)));
    // The peer got it at 50 ms on its clock and answered at 53 ms; the
    // pong is back at 30 ms on ours.
    control(&mut s, ms(30), &pong(t1, ns(ms(50)), ns(ms(53)))).unwrap();
    let st = s.stats().clone();
    assert_eq!(st.pongs, 1);
    // (30 - 10) - (53 - 50)
    assert_eq!(st.rtt, Some(ms(17)));
    assert_eq!(st.min_rtt, Some(ms(17)));
    assert_eq!(st.smoothed_rtt, Some(ms(17)));
    // ((50 - 10) + (53 - 30)) / 2
    assert_eq!(st.clock_offset_ns, Some(31_500_000));

    // A second exchange: 25 ms round trip, no time at the peer.
    s.ping(ms(100));
    let t1 = ping_t1(&sent(&mut s, ms(100)));
    control(&mut s, ms(125), &pong(t1, ns(ms(200)), ns(ms(200)))).unwrap();
    let st = s.stats().clone();
    assert_eq!(st.pongs, 2);
    assert_eq!(st.rtt, Some(ms(25)));
    assert_eq!(st.min_rtt, Some(ms(17)));
    // (17 * 7 + 25) / 8
    assert_eq!(st.smoothed_rtt, Some(ms(18)));
    // ((200 - 100) + (200 - 125)) / 2
    assert_eq!(st.clock_offset_ns, Some(87_500_000));

    // A pong for no ping we sent changes nothing.
    control(&mut s, ms(130), &pong(1, 2, 3)).unwrap();
    let now = s.stats();
    assert_eq!(
        (now.pongs, now.rtt, now.smoothed_rtt, now.clock_offset_ns),
        (st.pongs, st.rtt, st.smoothed_rtt, st.clock_offset_ns)
    );
}

#[test]
fn a_pong_answers_its_own_ping_among_several() {
    let mut s = connected(cfg());
    s.ping(ms(10));
    s.ping(ms(20));
    s.ping(ms(30));
    sent(&mut s, ms(30));
    // The answer to the second ping; the first is given up with it.
    control(&mut s, ms(40), &pong(ns(ms(20)), 0, 0)).unwrap();
    assert_eq!(s.stats().rtt, Some(ms(20)));
    control(&mut s, ms(41), &pong(ns(ms(10)), 0, 0)).unwrap();
    assert_eq!(s.stats().pongs, 1, "the older ping was forgotten");
    control(&mut s, ms(45), &pong(ns(ms(30)), 0, 0)).unwrap();
    assert_eq!(s.stats().pongs, 2);
    assert_eq!(s.stats().rtt, Some(ms(15)));
}

#[test]
fn clock_offsets_beyond_64_bits_saturate() {
    // We ping at the end of time; the peer's clock reads 0.
    let mut s = connected(cfg());
    let late = Duration::from_nanos(u64::MAX - 10);
    s.ping(late);
    let t1 = ping_t1(&sent(&mut s, late));
    control(&mut s, late, &pong(t1, 0, 0)).unwrap();
    assert_eq!(s.stats().clock_offset_ns, Some(i64::MIN));
    assert_eq!(s.stats().rtt, Some(Duration::ZERO));
    // We ping at 10 ms; the peer's clock reads the end of time.
    let mut s = connected(cfg());
    s.ping(ms(10));
    let t1 = ping_t1(&sent(&mut s, ms(10)));
    control(&mut s, ms(10), &pong(t1, u64::MAX, u64::MAX)).unwrap();
    assert_eq!(s.stats().clock_offset_ns, Some(i64::MAX));
}

#[test]
fn a_goodbye_reason_may_take_256_bytes_and_no_more() {
    let mut s = connected(cfg());
    let reason = "r".repeat(256);
    control(&mut s, ms(2), &goodbye(3, &reason)).unwrap();
    assert!(s.is_closed());
    assert_eq!(
        events(&mut s).last(),
        Some(&Event::Closed(CloseReason::Peer { code: 3, reason }))
    );

    let mut s = connected(cfg());
    let m = malformed(control(&mut s, ms(2), &goodbye(3, &"r".repeat(257))));
    assert_eq!(
        (m.message, m.field, m.offset, m.problem),
        (
            "goodbye",
            "reason",
            5,
            "longer than the negotiated name limit"
        )
    );
}

#[test]
fn malformed_messages_name_the_message_and_the_field() {
    let cases: Vec<(Vec<u8>, &str, &str, usize, &str)> = vec![
        (vec![3, 1, 2, 3], "ping", "t1", 1, "truncated"),
        (
            ping(1).into_iter().chain([0]).collect(),
            "ping",
            "end",
            9,
            "trailing bytes",
        ),
        (pong(1, 2, 3)[..20].to_vec(), "pong", "t3", 17, "truncated"),
        (pong(1, 2, 3)[..10].to_vec(), "pong", "t2", 9, "truncated"),
        (
            pong(1, 2, 3).into_iter().chain([0]).collect(),
            "pong",
            "end",
            25,
            "trailing bytes",
        ),
        (vec![5, 0], "goodbye", "code", 1, "truncated"),
        (
            goodbye(0, "x").into_iter().chain([0]).collect(),
            "goodbye",
            "end",
            6,
            "trailing bytes",
        ),
        (vec![2, 1], "update", "count", 1, "truncated"),
        (
            update(&[declare(1, 1, 1, "T@a")])
                .into_iter()
                .chain([0])
                .collect(),
            "update",
            "end",
            3 + 19 + 3,
            "trailing bytes",
        ),
        (
            update(&[withdraw(3, 1, 0)]),
            "update",
            "id",
            3 + 9,
            "id and generation must not be 0",
        ),
        (
            update(&[withdraw(7, 1, 1)]),
            "update",
            "op",
            3 + 9,
            "unknown update operation",
        ),
        (
            update(&[vec![1, 1, 0, 0, 0, 1, 0, 0, 0, 1, 2]]),
            "update",
            "fingerprint",
            3 + 9,
            "truncated",
        ),
        (
            update(&[{
                let mut e = declare(1, 1, 1, "T@a");
                let n = e.len();
                e[n - 1] = 0xff;
                e
            }]),
            "update",
            "name",
            3 + 19 + 3,
            "not utf-8",
        ),
    ];
    for (payload, message, field, offset, problem) in cases {
        let mut s = connected(cfg());
        let m = malformed(control(&mut s, ms(2), &payload));
        assert_eq!(
            (m.message, m.field, m.offset, m.problem),
            (message, field, offset, problem),
            "{payload:?}"
        );
        assert_eq!(
            m.to_string(),
            format!("malformed {message} message: field {field} at byte {offset}: {problem}")
        );
    }
    // Hello fields, before the handshake.
    let mut h = Hello::default().bytes();
    h.truncate(h.len() - 1);
    let mut s = Session::new(cfg(), ms(0));
    let m = malformed(control(&mut s, ms(1), &h));
    assert_eq!((m.message, m.field), ("hello", "path"));
    let mut h = Hello::default().bytes();
    h.push(0);
    let mut s = Session::new(cfg(), ms(0));
    let m = malformed(control(&mut s, ms(1), &h));
    assert_eq!(
        (m.message, m.field, m.problem),
        ("hello", "end", "trailing bytes")
    );
}

// ----- input.rs: update entries -----

#[test]
fn generation_zero_is_malformed_in_a_declaration() {
    let mut s = connected(cfg());
    let m = malformed(control(&mut s, ms(2), &update(&[declare(1, 1, 0, "T@a")])));
    assert_eq!(
        (m.field, m.problem),
        ("id", "id and generation must not be 0")
    );
    let mut s = connected(cfg());
    let m = malformed(control(&mut s, ms(2), &update(&[declare(2, 0, 1, "T@*")])));
    assert_eq!(m.field, "id");
}

#[test]
fn a_declared_name_of_exactly_the_name_limit_is_accepted() {
    let mut c = cfg();
    c.limits.max_name_len = 16;
    let mut s = connected(c.clone());
    let text = format!("T@{}", "a".repeat(14));
    assert_eq!(text.len(), 16);
    control(&mut s, ms(2), &update(&[declare(1, 1, 1, &text)])).unwrap();
    assert_eq!(s.remote_declaration_count(), 1);
    let mut s = connected(c);
    let text = format!("T@{}", "a".repeat(15));
    assert_eq!(
        kind_of(control(&mut s, ms(2), &update(&[declare(2, 1, 1, &text)]))),
        SessionErrorKind::Limit {
            what: LimitKind::NameLength,
            value: 17,
            limit: 16
        }
    );
}

#[test]
fn every_declaration_op_reports_its_space() {
    let mut s = connected(cfg());
    let entries = [
        declare(1, 1, 1, "T@a"),
        declare(5, 2, 1, "Q@a"),
        declare(2, 1, 1, "T@*"),
        declare(6, 2, 1, "Q@*"),
    ];
    control(&mut s, ms(2), &update(&entries)).unwrap();
    let got: Vec<(String, Space, u64)> = events(&mut s)
        .into_iter()
        .map(|e| match e {
            Event::RemoteIntent(i) => (i.route.to_string(), i.space, i.fingerprint),
            Event::RemoteInterest(i) => (i.selector.to_string(), i.space, i.fingerprint),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            ("T@a".to_string(), Space::Topic, FP),
            ("Q@a".to_string(), Space::Service, FP),
            ("T@*".to_string(), Space::Topic, FP),
            ("Q@*".to_string(), Space::Service, FP),
        ]
    );
    assert_eq!(s.remote_declaration_count(), 4);
}

#[test]
fn filtered_declarations_are_counted_and_withdrawn_silently() {
    let mut s = connected_importing_robot();
    control(
        &mut s,
        ms(2),
        &update(&[
            declare(1, 1, 1, "T@other.x"),
            declare(2, 1, 1, "T@other.**"),
            declare(2, 2, 1, "T@elsewhere.*"),
            declare(1, 2, 1, "T@robot.x"),
        ]),
    )
    .unwrap();
    assert_eq!(s.stats().declarations_filtered, 3);
    assert_eq!(s.remote_declaration_count(), 4);
    let ev = events(&mut s);
    assert!(matches!(&ev[..], [Event::RemoteIntent(i)] if i.route == route("T@robot.x")));
    control(
        &mut s,
        ms(3),
        &update(&[withdraw(3, 1, 1), withdraw(4, 1, 1), withdraw(4, 2, 1)]),
    )
    .unwrap();
    assert!(
        events(&mut s).is_empty(),
        "nothing was reported, nothing is withdrawn"
    );
    assert_eq!(s.remote_declaration_count(), 1);
    // Nor at the close.
    s.close(ms(4), "bye");
    let ev = events(&mut s);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(
        matches!(&ev[0], Event::Withdrawn(Withdrawn::Intent(i)) if i.route == route("T@robot.x"))
    );
}

#[test]
fn a_withdraw_must_name_the_declared_generation() {
    for (op, declare_op, what) in [(3u8, 1u8, "intent"), (4, 2, "interest")] {
        let text = if declare_op == 1 { "T@a" } else { "T@*" };
        let mut s = connected(cfg());
        control(&mut s, ms(2), &update(&[declare(declare_op, 5, 2, text)])).unwrap();
        let k = kind_of(control(&mut s, ms(3), &update(&[withdraw(op, 5, 1)])));
        assert_eq!(
            k,
            SessionErrorKind::UnknownWithdraw {
                what,
                id: 5,
                generation: 1
            }
        );
        // An id never declared.
        let mut s = connected(cfg());
        let k = kind_of(control(&mut s, ms(3), &update(&[withdraw(op, 6, 1)])));
        assert_eq!(
            k,
            SessionErrorKind::UnknownWithdraw {
                what,
                id: 6,
                generation: 1
            }
        );
        // The right generation withdraws it, reported once.
        let mut s = connected(cfg());
        control(&mut s, ms(2), &update(&[declare(declare_op, 5, 2, text)])).unwrap();
        events(&mut s);
        control(&mut s, ms(3), &update(&[withdraw(op, 5, 2)])).unwrap();
        let ev = events(&mut s);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(matches!(ev[0], Event::Withdrawn(_)));
        assert_eq!(s.remote_declaration_count(), 0);
    }
}

#[test]
fn an_interest_id_declared_twice_is_an_error() {
    let mut s = connected(cfg());
    let twice = update(&[declare(2, 3, 1, "T@*"), declare(2, 3, 2, "U@*")]);
    assert_eq!(
        kind_of(control(&mut s, ms(2), &twice)),
        SessionErrorKind::DuplicateDeclaration {
            what: "interest",
            id: 3
        }
    );
    // Intents and interests are numbered apart.
    let mut s = connected(cfg());
    control(
        &mut s,
        ms(2),
        &update(&[declare(1, 3, 1, "T@a"), declare(2, 3, 1, "T@*")]),
    )
    .unwrap();
    assert_eq!(s.remote_declaration_count(), 2);
}

// ----- input.rs: the flood window -----

#[test]
fn the_flood_window_restarts_exactly_when_it_ends() {
    let mut c = cfg();
    c.unknown_alias_limit = 2;
    c.unknown_alias_window = ms(1000);
    // The window starts when the session is created (0 ms).
    let mut s = connected(c);
    let junk = FrameHeader::data(40);
    assert_eq!(s.handle_frame(ms(2), &junk, b""), Ok(None));
    assert_eq!(s.handle_frame(ms(999), &junk, b""), Ok(None));
    // 1000 ms: a new window, counting from 1.
    assert_eq!(s.handle_frame(ms(1000), &junk, b""), Ok(None));
    assert_eq!(s.handle_frame(ms(1999), &junk, b""), Ok(None));
    let k = s.handle_frame(ms(1999), &junk, b"").unwrap_err().kind;
    assert_eq!(
        k,
        SessionErrorKind::UnknownAliasFlood {
            count: 3,
            window: ms(1000)
        }
    );
}

// ----- input.rs: requests and replies -----

/// A session holding the peer's client intent `Q@svc` (alias 1, generation
/// 3) and its publisher `T@a` (alias 2, generation 1).
fn with_peer_intents(config: SessionConfig) -> Session {
    let mut s = connected(config);
    control(
        &mut s,
        ms(2),
        &update(&[declare(5, 1, 3, "Q@svc"), declare(1, 2, 1, "T@a")]),
    )
    .unwrap();
    events(&mut s);
    s
}

#[test]
fn requests_need_a_fresh_correlation_and_room() {
    let mut c = cfg();
    c.limits.max_pending_requests = 2;
    let mut s = with_peer_intents(c);
    let req = |c: u64| on(FrameKind::Request, 1, 3).with_correlation(c);
    assert_eq!(
        s.handle_frame(ms(3), &on(FrameKind::Request, 1, 3), b"")
            .unwrap_err()
            .kind,
        SessionErrorKind::MissingCorrelation
    );

    let mut s = with_peer_intents({
        let mut c = cfg();
        c.limits.max_pending_requests = 2;
        c
    });
    let got = s.handle_frame(ms(3), &req(10), b"q").unwrap();
    assert_eq!(
        got,
        Some(Inbound::Request {
            intent: RemoteIntentId {
                alias: 1,
                generation: 3
            },
            header: req(10)
        })
    );
    assert_eq!(
        s.handle_frame(ms(3), &req(10), b"q").unwrap_err().kind,
        SessionErrorKind::DuplicateRequest(10)
    );

    let mut s = with_peer_intents({
        let mut c = cfg();
        c.limits.max_pending_requests = 2;
        c
    });
    s.handle_frame(ms(3), &req(10), b"").unwrap().unwrap();
    s.handle_frame(ms(3), &req(11), b"").unwrap().unwrap();
    assert_eq!(
        s.handle_frame(ms(3), &req(12), b"").unwrap_err().kind,
        SessionErrorKind::Limit {
            what: LimitKind::PendingRequests,
            value: 3,
            limit: 2
        }
    );
}

#[test]
fn a_request_on_a_stale_or_unknown_alias_is_dropped_before_its_correlation_is_checked() {
    let mut s = with_peer_intents(cfg());
    let stale = on(FrameKind::Request, 1, 4).with_correlation(10);
    assert_eq!(s.handle_frame(ms(3), &stale, b""), Ok(None));
    assert_eq!(s.stats().dropped_stale_generation, 1);
    // Nothing was recorded: the same correlation on the live alias is new.
    let live = on(FrameKind::Request, 1, 3).with_correlation(10);
    assert!(s.handle_frame(ms(3), &live, b"").unwrap().is_some());
}

/// A session that sent the peer one request (correlation 1) on its client
/// intent, and holds the peer's intents of [`with_peer_intents`].
fn asked(config: SessionConfig) -> (Session, u64) {
    let mut s = with_peer_intents(config);
    let mine = s
        .declare_intent_in(Space::Service, &route("Ask@svc"), FP, Origin::Local)
        .unwrap()
        .unwrap();
    let c = s.send_request(ms(3), mine, &b"q"[..]).unwrap();
    sent(&mut s, ms(3));
    (s, c)
}

#[test]
fn a_reply_names_its_intent_only_when_live_and_imported() {
    // On the peer's live alias.
    let (mut s, c) = asked(cfg());
    let h = on(FrameKind::Reply, 2, 1).with_correlation(c);
    let Some(Inbound::Reply { intent, header }) = s.handle_frame(ms(4), &h, b"r").unwrap() else {
        panic!()
    };
    assert_eq!(header, h);
    assert_eq!(
        s.remote_intent(intent.unwrap()).unwrap().route,
        route("T@a")
    );
    // On a stale generation of it: the reply comes, without an intent.
    let (mut s, c) = asked(cfg());
    let h = on(FrameKind::Reply, 2, 2).with_correlation(c);
    assert_eq!(
        s.handle_frame(ms(4), &h, b"r").unwrap(),
        Some(Inbound::Reply {
            intent: None,
            header: h
        })
    );
    // On an intent the import filter refused.
    let mut c = cfg();
    c.import = PathFilter::under([Path::new("svc").unwrap()]);
    let (mut s, corr) = asked(c);
    assert_eq!(s.stats().declarations_filtered, 1);
    let h = on(FrameKind::Reply, 2, 1).with_correlation(corr);
    assert_eq!(
        s.handle_frame(ms(4), &h, b"r").unwrap(),
        Some(Inbound::Reply {
            intent: None,
            header: h
        })
    );
    // A second reply to the same request is dropped.
    assert_eq!(s.handle_frame(ms(4), &h, b"r"), Ok(None));
    assert_eq!(s.stats().dropped_replies, 1);
}

// ----- wire.rs -----

/// `n` routes of exactly `len` bytes each (at most 512: a 256-byte type
/// name, `@`, a 255-byte path), all different.
fn routes_of(prefix: &str, n: usize, len: usize) -> Vec<Route> {
    assert!((8..=512).contains(&len));
    (0..n)
        .map(|i| {
            let path_len = (len - 2).min(255);
            let type_len = len - 1 - path_len;
            let mut path = format!("{prefix}{i}");
            assert!(path.len() <= path_len);
            // Segments of at most 64 bytes.
            while path.len() < path_len {
                if path.len() % 64 == 63 && path_len - path.len() > 1 {
                    path.push('.');
                } else {
                    path.push('a');
                }
            }
            let r = route(&format!("{}@{path}", "T".repeat(type_len)));
            assert_eq!(r.to_string().len(), len);
            r
        })
        .collect()
}

/// The update frames a session sends on connect for `routes`, declared
/// before the handshake, with a negotiated frame limit of 8192.
fn update_counts(routes: &[Route]) -> Vec<u16> {
    let mut c = cfg();
    c.limits.max_frame_len = 8192;
    let mut s = Session::new(c, ms(0));
    for r in routes {
        s.declare_intent(r, FP, Origin::Local).unwrap().unwrap();
    }
    sent(&mut s, ms(0));
    control(&mut s, ms(1), &Hello::default().bytes()).unwrap();
    sent(&mut s, ms(1))
        .into_iter()
        .map(|(h, p)| {
            assert_eq!(h.kind, FrameKind::Control);
            assert_eq!(p[0], 2, "an update");
            assert!(frame_len(p.len()) <= 8192);
            u16::from_le_bytes([p[1], p[2]])
        })
        .collect()
}

#[test]
fn update_batches_fill_the_frame_budget_to_the_byte() {
    // The budget for an update payload: the frame limit less the header and
    // 16 bytes of slack. An update is a type byte, a u16 count, then
    // entries of 19 bytes plus the route.
    let budget = 8192 - HEADER_LEN - 16;
    let entry = |len: usize| 19 + len;
    // 15 entries of 531 bytes, then one that exactly fills the budget.
    let mut routes = routes_of("n", 15, 512);
    let rest = budget - 3 - 15 * entry(512);
    routes.extend(routes_of("z", 1, rest - 19));
    assert_eq!(update_counts(&routes), [16]);
    // One byte more does not fit: the last entry goes into a second frame.
    let mut routes = routes_of("n", 15, 512);
    routes.extend(routes_of("z", 1, rest - 19 + 1));
    assert_eq!(update_counts(&routes), [15, 1]);
}

#[test]
fn a_long_goodbye_reason_is_cut_on_a_character_boundary() {
    let mut s = connected(cfg());
    // 255 ASCII bytes, then a 2-byte character across the 256-byte mark.
    let reason = format!("{}é and more", "r".repeat(255));
    s.close(ms(2), &reason);
    let out = sent(&mut s, ms(2));
    let (_, bye) = out.last().unwrap();
    assert_eq!(bye[0], 5);
    let mut peer = connected(cfg());
    control(&mut peer, ms(3), bye).unwrap();
    assert_eq!(
        events(&mut peer).last(),
        Some(&Event::Closed(CloseReason::Peer {
            code: 0,
            reason: "r".repeat(255)
        }))
    );
    // A reason of exactly 256 bytes goes out whole.
    let mut s = connected(cfg());
    s.close(ms(2), &"r".repeat(256));
    let out = sent(&mut s, ms(2));
    assert_eq!(out.last().unwrap().1, goodbye(0, &"r".repeat(256)));
}

#[test]
fn interests_reach_the_wire_in_their_space() {
    let mut s = connected(cfg());
    s.declare_interest(&sel("T@a.*"), FP, Origin::Local)
        .unwrap();
    s.declare_interest_in(Space::Service, &sel("Q@svc"), FP, Origin::Local)
        .unwrap();
    let out = sent(&mut s, ms(2));
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].1,
        update(&[declare(2, 1, 1, "T@a.*"), declare(6, 2, 1, "Q@svc")])
    );
}

// ----- mod.rs: inspection -----

#[test]
fn debug_names_the_peer_the_state_and_the_counts() {
    let mut s = connected(cfg());
    s.declare_intent(&route("T@a"), FP, Origin::Local).unwrap();
    control(
        &mut s,
        ms(2),
        &update(&[declare(2, 1, 1, "T@*"), declare(2, 2, 1, "U@*")]),
    )
    .unwrap();
    let text = format!("{s:?}");
    assert_eq!(
        text,
        format!(
            "Session {{ peer: \"\\\"raw\\\" ({})\", state: Established, local_intents: 1, \
             local_interests: 0, remote_intents: 0, remote_interests: 2, .. }}",
            NodeId::from_bytes([9; 16])
        )
    );
}

#[test]
fn node_ids_print_as_hex() {
    let id = NodeId::from_bytes([0xab, 1, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff]);
    assert_eq!(id.to_string(), "ab0100100000000000000000000000ff");
    assert_eq!(format!("{id:?}"), format!("NodeId({id})"));
}

#[test]
fn the_remote_declaration_count_adds_intents_and_interests() {
    let mut s = connected(cfg());
    control(
        &mut s,
        ms(2),
        &update(&[
            declare(1, 1, 1, "T@a"),
            declare(2, 1, 1, "T@*"),
            declare(2, 2, 1, "U@*"),
        ]),
    )
    .unwrap();
    assert_eq!(s.remote_declaration_count(), 3);
}

#[test]
fn a_filtered_remote_intent_is_not_looked_up() {
    let mut s = connected_importing_robot();
    control(
        &mut s,
        ms(2),
        &update(&[declare(1, 1, 1, "T@other"), declare(1, 2, 1, "T@robot")]),
    )
    .unwrap();
    let id = |alias| RemoteIntentId {
        alias,
        generation: 1,
    };
    assert_eq!(s.remote_intent(id(1)), None);
    assert_eq!(s.remote_intent(id(2)).unwrap().route, route("T@robot"));
    assert_eq!(
        s.remote_intent(RemoteIntentId {
            alias: 2,
            generation: 2
        }),
        None
    );
}

#[test]
fn pending_bytes_count_what_poll_transmit_will_return() {
    let mut s = connected(cfg());
    assert_eq!(s.pending_bytes(), 0);
    let a = s
        .declare_intent(&route("T@a"), FP, Origin::Local)
        .unwrap()
        .unwrap();
    assert_eq!(s.pending_bytes(), 0, "declarations are batched later");
    s.send_data(ms(2), a, &[7u8; 100][..]).unwrap();
    let pending = s.pending_bytes();
    let mut out = FrameBuffer::new();
    assert!(s.poll_transmit(ms(2), &mut out));
    assert_eq!(pending, out.as_bytes().len());
    assert_eq!(s.pending_bytes(), 0);
}

// ----- mod.rs: control frames, counters -----

#[test]
fn control_frames_are_numbered_and_counted() {
    let mut s = Session::new(cfg(), ms(0));
    assert_eq!(s.stats().frames_out, 1, "the hello");
    control(&mut s, ms(1), &Hello::default().bytes()).unwrap();
    s.ping(ms(2));
    s.ping(ms(3));
    let seqs: Vec<u64> = sent(&mut s, ms(3)).iter().map(|(h, _)| h.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(s.stats().frames_out, 3);
    let a = s
        .declare_intent(&route("T@a"), FP, Origin::Local)
        .unwrap()
        .unwrap();
    s.send_data(ms(4), a, &b"x"[..]).unwrap();
    s.send_data(ms(4), a, &b"y"[..]).unwrap();
    // The update (control 4), then two data frames.
    assert_eq!(s.stats().frames_out, 6);
    let out = sent(&mut s, ms(4));
    assert_eq!(out[0].0.seq, 4);
    assert_eq!((out[1].0.seq, out[2].0.seq), (1, 2));
}

/// The goodbye code and reason of the last frame `s` queued.
fn goodbye_sent(s: &mut Session, now: Duration) -> (u16, String) {
    let out = sent(s, now);
    let (h, p) = out.last().unwrap();
    assert_eq!((h.kind, p[0]), (FrameKind::Control, 5));
    let code = u16::from_le_bytes([p[1], p[2]]);
    let len = usize::from(u16::from_le_bytes([p[3], p[4]]));
    (code, String::from_utf8(p[5..5 + len].to_vec()).unwrap())
}

#[test]
fn each_failure_sends_its_goodbye_code() {
    let mut s = Session::new(cfg(), ms(0));
    let v7 = Hello {
        version: 7,
        ..Hello::default()
    };
    let e = control(&mut s, ms(1), &v7.bytes()).unwrap_err();
    assert_eq!(goodbye_sent(&mut s, ms(1)), (3, e.kind.to_string()));

    let mut s = Session::new(cfg(), ms(0));
    let big = Hello {
        endian: 2,
        ..Hello::default()
    };
    let e = control(&mut s, ms(1), &big.bytes()).unwrap_err();
    assert_eq!(goodbye_sent(&mut s, ms(1)), (4, e.kind.to_string()));

    let mut c = cfg();
    c.limits.max_declarations = 1;
    let mut s = connected(c);
    let two = update(&[declare(1, 1, 1, "T@a"), declare(1, 2, 1, "T@b")]);
    let e = control(&mut s, ms(2), &two).unwrap_err();
    assert_eq!(goodbye_sent(&mut s, ms(2)), (2, e.kind.to_string()));

    let mut s = Session::new(cfg(), ms(0));
    s.handle_timeout(ms(5000));
    assert_eq!(
        goodbye_sent(&mut s, ms(5000)),
        (5, "no hello within 5s".to_string())
    );

    let mut s = connected(cfg());
    s.handle_timeout(ms(5001));
    assert_eq!(
        goodbye_sent(&mut s, ms(5001)),
        (
            5,
            "no frame from the peer for 5s: presumed dead".to_string()
        )
    );

    let mut s = connected(cfg());
    let e = control(&mut s, ms(2), &[42]).unwrap_err();
    assert_eq!(goodbye_sent(&mut s, ms(2)), (1, e.kind.to_string()));
    assert_eq!(e.kind.to_string(), "unknown control message type 42");
}

#[test]
fn limit_kinds_read_as_words() {
    let cases = [
        (LimitKind::FrameLength, "frame length"),
        (LimitKind::Declarations, "declaration count"),
        (LimitKind::NameLength, "name length"),
        (LimitKind::PatternSegments, "pattern segment count"),
        (LimitKind::PatternWildcards, "pattern `**` count"),
        (LimitKind::PendingRequests, "pending request count"),
    ];
    for (kind, text) in cases {
        assert_eq!(kind.to_string(), text);
    }
    let k = SessionErrorKind::Limit {
        what: LimitKind::Declarations,
        value: 11,
        limit: 10,
    };
    assert_eq!(
        k.to_string(),
        "declaration count 11 exceeds the limit of 10"
    );
}

// ----- mod.rs: keep-alive -----

#[test]
fn at_most_eight_pings_await_their_pong() {
    let mut s = connected(cfg());
    for i in 1..=9 {
        s.ping(ms(10 * i));
    }
    sent(&mut s, ms(90));
    // The first ping was forgotten when the ninth went out.
    control(&mut s, ms(100), &pong(ns(ms(10)), 0, 0)).unwrap();
    assert_eq!(s.stats().pongs, 0);
    control(&mut s, ms(100), &pong(ns(ms(20)), 0, 0)).unwrap();
    assert_eq!(s.stats().pongs, 1);
    assert_eq!(s.stats().rtt, Some(ms(80)));
}

// ----- mod.rs: local declarations -----

#[test]
fn our_declarations_respect_the_peer_name_and_count_limits() {
    let hello = Hello {
        max_name_len: 16,
        max_declarations: 2,
        ..Hello::default()
    };
    let mut s = connected_with(cfg(), &hello);
    let exact = format!("T@{}", "a".repeat(14));
    assert!(
        s.declare_intent(&route(&exact), FP, Origin::Local)
            .unwrap()
            .is_some()
    );
    let long = format!("T@{}", "a".repeat(15));
    assert_eq!(
        s.declare_intent(&route(&long), FP, Origin::Local),
        Err(dndm_router::session::DeclareError::PeerLimit {
            text: long.clone(),
            what: LimitKind::NameLength,
            value: 17,
            limit: 16
        })
    );
    // Intents and interests count together against the peer's limit.
    let mut s = connected_with(cfg(), &hello);
    assert!(s.declare_interest(&sel("T@*"), FP, Origin::Local).unwrap());
    assert!(s.declare_interest(&sel("U@*"), FP, Origin::Local).unwrap());
    assert_eq!(
        s.declare_intent(&route("T@a"), FP, Origin::Local),
        Err(dndm_router::session::DeclareError::PeerLimit {
            text: "T@a".into(),
            what: LimitKind::Declarations,
            value: 3,
            limit: 2
        })
    );
}

#[test]
fn interests_are_reference_counted() {
    let mut s = connected(cfg());
    let x = sel("U@x.**");
    assert!(!s.withdraw_interest(&x, FP), "never declared");
    assert!(!s.withdraw_interest_in(Space::Service, &x, FP));
    assert!(s.declare_interest(&x, FP, Origin::Local).unwrap());
    assert!(s.declare_interest(&x, FP, Origin::Local).unwrap());
    sent(&mut s, ms(2));
    assert!(s.withdraw_interest(&x, FP));
    assert!(sent(&mut s, ms(3)).is_empty(), "one reference left");
    assert!(s.withdraw_interest(&x, FP));
    assert_eq!(sent(&mut s, ms(4))[0].1, update(&[withdraw(4, 1, 1)]));
    assert!(!s.withdraw_interest(&x, FP));
}

#[test]
fn a_declaration_withdrawn_before_it_was_sent_never_reaches_the_wire() {
    let mut s = connected(cfg());
    s.declare_intent(&route("T@a"), FP, Origin::Local).unwrap();
    s.declare_interest(&sel("T@*"), FP, Origin::Local).unwrap();
    assert!(s.withdraw_intent(&route("T@a"), FP));
    assert!(s.withdraw_interest(&sel("T@*"), FP));
    assert!(sent(&mut s, ms(2)).is_empty());
    // One that was sent is withdrawn on the wire.
    s.declare_intent(&route("T@b"), FP, Origin::Local).unwrap();
    sent(&mut s, ms(3));
    s.declare_intent(&route("T@c"), FP, Origin::Local).unwrap();
    assert!(s.withdraw_intent(&route("T@b"), FP));
    let out = sent(&mut s, ms(4));
    assert_eq!(out.len(), 1);
    // T@b reused T@a's alias with the next generation; T@c got a new one.
    assert_eq!(
        out[0].1,
        update(&[declare(1, 2, 1, "T@c"), withdraw(3, 1, 2)])
    );
}

// ----- mod.rs: sending -----

#[test]
fn nothing_is_sent_before_the_handshake() {
    let mut s = Session::new(cfg(), ms(0));
    let a = s
        .declare_intent(&route("T@a"), FP, Origin::Local)
        .unwrap()
        .unwrap();
    assert!(matches!(
        s.send_data(ms(1), a, &b"x"[..]),
        Err(dndm_router::session::SendError::NotConnected)
    ));
    assert_eq!(sent(&mut s, ms(1)).len(), 1, "only the hello");
}

#[test]
fn a_payload_of_exactly_the_frame_limit_is_sent_and_a_refused_one_uses_no_sequence_number() {
    let mut c = cfg();
    c.limits.max_frame_len = 8192;
    let mut s = connected(c);
    let a = s
        .declare_intent(&route("T@a"), FP, Origin::Local)
        .unwrap()
        .unwrap();
    let fits = 8192 - HEADER_LEN;
    let e = s.send_data(ms(2), a, &vec![0u8; fits + 1][..]).unwrap_err();
    assert!(
        matches!(
            e,
            dndm_router::session::SendError::FrameTooLarge {
                len: 8208,
                limit: 8192
            }
        ),
        "{e}"
    );
    let h = s.send_data(ms(2), a, &vec![0u8; fits][..]).unwrap();
    assert_eq!(h.seq, 1, "the refused frame took no sequence number");
    let out = sent(&mut s, ms(2));
    let (h, p) = out.last().unwrap();
    assert_eq!((h.kind, h.seq, p.len()), (FrameKind::Data, 1, fits));
}

#[test]
fn an_archive_of_exactly_the_frame_limit_is_sent() {
    #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, dndm_codec::Message)]
    struct Blob {
        bytes: Vec<u8>,
    }
    // Find blobs whose frames are exactly the limit and one step above it.
    let len_of = |n: usize| {
        let mut b = FrameBuffer::new();
        b.push_message(&FrameHeader::data(1), &Blob { bytes: vec![1; n] })
            .unwrap()
    };
    let exact = (7000..8192).find(|&n| len_of(n) == 8192).unwrap();
    let over = (exact..8400).find(|&n| len_of(n) > 8192).unwrap();
    let mut c = cfg();
    c.limits.max_frame_len = 8192;
    let mut s = connected(c);
    let a = s
        .declare_intent(&route("T@a"), FP, Origin::Local)
        .unwrap()
        .unwrap();
    sent(&mut s, ms(2));
    let e = s
        .send_data(
            ms(2),
            a,
            &dndm_router::session::Archive(&Blob {
                bytes: vec![1; over],
            }),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            dndm_router::session::SendError::FrameTooLarge { limit: 8192, .. }
        ),
        "{e}"
    );
    assert_eq!(s.pending_bytes(), 0, "taken back out");
    s.send_data(
        ms(2),
        a,
        &dndm_router::session::Archive(&Blob {
            bytes: vec![1; exact],
        }),
    )
    .unwrap();
    assert_eq!(s.pending_bytes(), 8192);
}

#[test]
fn a_sample_keeps_its_own_sequence_number_and_stamp() {
    let mut s = connected(cfg());
    let a = s
        .declare_intent(&route("T@a"), FP, Origin::Local)
        .unwrap()
        .unwrap();
    let h = s.send_sample(ms(2), a, 41, 123_456, &b"s"[..]).unwrap();
    assert_eq!(
        (h.kind, h.route, h.seq, h.timestamp_ns),
        (FrameKind::Data, a.alias, 41, 123_456)
    );
    let out = sent(&mut s, ms(2));
    assert_eq!(out.last().unwrap(), &(h, b"s".to_vec()));
}

#[test]
fn cancelled_and_discarded_requests_are_forgotten() {
    let (mut s, c) = asked(cfg());
    assert!(s.cancel_request(c));
    assert!(!s.cancel_request(c));
    let h = on(FrameKind::Reply, 0, 0).with_correlation(c);
    assert_eq!(s.handle_frame(ms(4), &h, b"late"), Ok(None));
    assert_eq!(s.stats().dropped_replies, 1);

    let mut s = with_peer_intents(cfg());
    assert!(!s.discard_request(10), "never asked");
    let req = on(FrameKind::Request, 1, 3).with_correlation(10);
    s.handle_frame(ms(3), &req, b"").unwrap().unwrap();
    assert!(s.discard_request(10));
    assert!(!s.discard_request(10));
    assert!(matches!(
        s.send_reply(ms(3), 10, None, &b"r"[..]),
        Err(dndm_router::session::SendError::UnknownRequest(10))
    ));
}

// ----- alias.rs -----

#[test]
fn remote_ids_on_both_sides_of_the_dense_table_bound_are_withdrawn() {
    for id in [1023u32, 1024, 1025, u32::MAX] {
        for (declare_op, withdraw_op, text) in [(1u8, 3u8, "T@a"), (2, 4, "T@*")] {
            let mut s = connected(cfg());
            control(&mut s, ms(2), &update(&[declare(declare_op, id, 1, text)])).unwrap();
            assert_eq!(s.remote_declaration_count(), 1);
            events(&mut s);
            control(&mut s, ms(3), &update(&[withdraw(withdraw_op, id, 1)])).unwrap();
            let ev = events(&mut s);
            assert!(matches!(&ev[..], [Event::Withdrawn(_)]), "id {id}: {ev:?}");
            assert_eq!(s.remote_declaration_count(), 0, "id {id}");
        }
    }
}
