//! One Node-level suite, run for two handles of one in-process node and for
//! two nodes joined by the simulated network (`mem://`), TCP and Unix
//! sockets: the same user code must behave the same way across all four.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
#![allow(
    clippy::disallowed_types,
    reason = "tests use std sync types like users do"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dndm::prelude::*;
use dndm::{LinkEvent, PeerEventKind};
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "conf.Imu")]
struct Imu {
    seq: u64,
    accel: [f32; 3],
}

/// Same name as `Imu`, another shape: a schema mismatch.
mod other {
    use super::*;
    #[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
    #[message(name = "conf.Imu")]
    pub struct Imu {
        pub seq: u32,
        pub label: String,
    }
}

/// Far above any stall on a loaded machine; waits end as soon as the
/// condition holds.
const BOUND: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug)]
enum Kind {
    InProcess,
    Mem,
    Tcp,
    Unix,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn lossless() -> SubscribeOptions {
    SubscribeOptions::new().capacity(256).policy(Policy::Block {
        timeout: Some(BOUND),
    })
}

/// Two nodes (or two handles of one node) that reach each other.
fn pair(kind: Kind) -> (Node, Node) {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let queue = |b: dndm::NodeBuilder| {
        b.peer_queue(
            1024,
            Policy::Block {
                timeout: Some(BOUND),
            },
            BOUND,
        )
    };
    let uri = match kind {
        Kind::InProcess => {
            let a = Node::new("a");
            return (a.clone(), a);
        }
        Kind::Mem => format!("mem://conf-{}-{n}", std::process::id()),
        Kind::Tcp => "tcp://127.0.0.1:0".to_owned(),
        Kind::Unix => format!(
            "unix://{}/dndm-conf-{}-{n}.sock",
            std::env::temp_dir().display(),
            std::process::id()
        ),
    };
    let a = queue(Node::builder("alpha")).build().unwrap();
    let addr = a.listen(&uri).unwrap();
    let b = queue(Node::builder("beta"))
        .connect(&addr.to_string())
        .unwrap()
        .build()
        .unwrap();
    assert!(
        a.wait_for_peers(1, Some(BOUND)),
        "{kind:?}: alpha saw no peer"
    );
    assert!(
        b.wait_for_peers(1, Some(BOUND)),
        "{kind:?}: beta saw no peer"
    );
    (a, b)
}

/// Polls `cond` until it holds (true) or `BOUND` passes (false).
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + BOUND;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn imu(seq: u64) -> Imu {
    Imu {
        seq,
        accel: [0.0, 0.0, seq as f32],
    }
}

fn pubsub_in_order(kind: Kind) {
    let (a, b) = pair(kind);
    let sub = b.subscribe_with::<Imu>("robot.*.imu", lossless()).unwrap();
    let publisher = a.publish::<Imu>("robot.arm.imu").unwrap();
    assert!(
        publisher.wait_for_interest(Some(BOUND)),
        "{kind:?}: no interest"
    );
    assert!(
        sub.wait_for_publisher(Some(BOUND)),
        "{kind:?}: no publisher"
    );
    // Many times every queue on the way: the reader runs beside the
    // writer, and `Block` makes the path lossless.
    const N: u64 = 20_000;
    let reader = std::thread::spawn(move || {
        for i in 1..=N {
            let s = sub.recv_timeout(BOUND).unwrap();
            assert_eq!(s.seq, i, "{kind:?}: out of order");
            assert_eq!(s.seq(), i);
            assert_eq!(s.route().to_string(), "conf.Imu@robot.arm.imu");
        }
    });
    for i in 1..=N {
        publisher.send(imu(i)).unwrap();
    }
    reader.join().unwrap();
    assert_eq!(publisher.dropped(), 0);
}

fn interest_follows_subscribers(kind: Kind) {
    let (a, b) = pair(kind);
    let publisher = a.publish::<Imu>("robot.leg.imu").unwrap();
    assert_eq!(publisher.interest_count(), 0);
    let s1 = b.subscribe::<Imu>("robot.leg.imu").unwrap();
    let s2 = b.subscribe::<Imu>("robot.**").unwrap();
    assert!(
        publisher.wait_for_interest(Some(BOUND)),
        "{kind:?}: no interest"
    );
    let linked = |n: usize| {
        let deadline = std::time::Instant::now() + BOUND;
        while publisher.interest_count() != n {
            assert!(
                std::time::Instant::now() < deadline,
                "{kind:?}: interest stayed {} (want {n})",
                publisher.interest_count()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    linked(2);
    drop(s1);
    linked(1);
    drop(s2);
    linked(0);
    // A non-matching pattern never links.
    let _other = b.subscribe::<Imu>("robot.arm.*").unwrap();
    let _sync = b.subscribe::<Imu>("robot.leg.imu").unwrap();
    linked(1);
}

fn history_for_late_joiners(kind: Kind) {
    let (a, b) = pair(kind);
    let publisher = a
        .publish_with::<Imu>("robot.head.imu", PublishOptions::new().history(5))
        .unwrap();
    for i in 1..=20 {
        publisher.send(imu(i)).unwrap();
    }
    let sub = b
        .subscribe_with::<Imu>("robot.head.imu", lossless())
        .unwrap();
    let got: Vec<u64> = (0..5)
        .map(|_| match sub.recv_timeout(BOUND) {
            Ok(s) => s.seq,
            Err(e) => panic!(
                "{e:?} interest={} pubs={} a={:?} b={:?}",
                publisher.interest_count(),
                sub.publisher_count(),
                a.peers(),
                b.peers()
            ),
        })
        .collect();
    assert_eq!(got, [16, 17, 18, 19, 20], "{kind:?}");
    publisher.send(imu(21)).unwrap();
    assert_eq!(sub.recv_timeout(BOUND).unwrap().seq, 21, "{kind:?}");
}

fn schema_mismatch_on_both_sides(kind: Kind) {
    let (a, b) = pair(kind);
    let publisher = a.publish::<Imu>("robot.tail.imu").unwrap();
    let sub = b.subscribe::<other::Imu>("robot.tail.imu").unwrap();
    let mismatch = |e: Option<LinkEvent>| matches!(e, Some(LinkEvent::SchemaMismatch(_)));
    assert!(
        mismatch(publisher.next_event(Some(BOUND))),
        "{kind:?}: the publisher was not told"
    );
    let deadline = std::time::Instant::now() + BOUND;
    let mut seen = false;
    while !seen && std::time::Instant::now() < deadline {
        seen = mismatch(sub.try_event());
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(seen, "{kind:?}: the subscriber was not told");
    assert_eq!(publisher.interest_count(), 0);
    assert_eq!(sub.publisher_count(), 0);
}

fn publisher_gone_is_seen(kind: Kind) {
    let (a, b) = pair(kind);
    let sub = b
        .subscribe_with::<Imu>("robot.eye.imu", lossless())
        .unwrap();
    let publisher = a.publish::<Imu>("robot.eye.imu").unwrap();
    assert!(publisher.wait_for_interest(Some(BOUND)));
    for i in 1..=10 {
        publisher.send(imu(i)).unwrap();
    }
    drop(publisher);
    // Everything sent before the drop arrives, then the link goes.
    for i in 1..=10 {
        assert_eq!(sub.recv_timeout(BOUND).unwrap().seq, i, "{kind:?}");
    }
    let deadline = std::time::Instant::now() + BOUND;
    while sub.publisher_count() != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{kind:?}: link stayed"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn short_lived_publishers(kind: Kind) {
    let (a, b) = pair(kind);
    let sub = b
        .subscribe_with::<Imu>("robot.blink.*", lossless())
        .unwrap();
    // Publishers that come and go between two turns of the driver: what
    // they sent still arrives, in order.
    for k in 0..50u64 {
        let publisher = a.publish::<Imu>(&format!("robot.blink.n{k}")).unwrap();
        assert!(publisher.wait_for_interest(Some(BOUND)), "{kind:?}");
        for i in 1..=3 {
            publisher.send(imu(k * 10 + i)).unwrap();
        }
    }
    let mut got: Vec<u64> = (0..150)
        .map(|_| sub.recv_timeout(BOUND).unwrap().seq)
        .collect();
    got.sort_unstable();
    let want: Vec<u64> = (0..50u64)
        .flat_map(|k| (1..=3).map(move |i| k * 10 + i))
        .collect();
    assert_eq!(got, want, "{kind:?}");
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "conf.Ask")]
struct Ask {
    n: u64,
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "conf.Answer")]
struct Answer {
    n: u64,
    by: String,
}

/// Another reply type on the same request type: a service schema mismatch.
#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "conf.Answer")]
struct OtherAnswer {
    n: u32,
}

/// The request every test server panics on.
const UNLUCKY: u64 = 1_000_013;

fn doubler(by: &'static str) -> impl Fn(Ask) -> Answer + Send + Sync + 'static {
    move |a: Ask| {
        assert!(a.n != UNLUCKY, "unlucky {}", a.n);
        Answer {
            n: a.n * 2,
            by: by.to_owned(),
        }
    }
}

fn request_reply(kind: Kind) {
    let (a, b) = pair(kind);
    let _server = a.serve("math.double", doubler("alpha")).unwrap();
    // The server's declaration may still be on its way: the first call
    // waits for it within its timeout.
    for n in 1..=500u64 {
        let got: Answer = b.call("math.double", Ask { n }, BOUND).unwrap();
        assert_eq!(got.n, n * 2, "{kind:?}");
        assert_eq!(got.by, "alpha");
    }
    // Many callers at once, each getting its own reply.
    let callers: Vec<_> = (0..4u64)
        .map(|t| {
            let b = b.clone();
            std::thread::spawn(move || {
                for i in 0..100u64 {
                    let n = t * 1000 + i;
                    let got: Answer = b.call("math.double", Ask { n }, BOUND).unwrap();
                    assert_eq!(got.n, n * 2);
                }
            })
        })
        .collect();
    for c in callers {
        c.join().unwrap();
    }
}

fn handler_panics_reach_the_caller(kind: Kind) {
    let (a, b) = pair(kind);
    let _server = a.serve("math.unlucky", doubler("alpha")).unwrap();
    let e = b
        .call::<Ask, Answer>("math.unlucky", Ask { n: UNLUCKY }, BOUND)
        .unwrap_err();
    match e {
        dndm::CallError::HandlerPanicked { message, route } => {
            assert!(message.contains("unlucky 1000013"), "{kind:?}: {message}");
            assert_eq!(route, "conf.Ask@math.unlucky");
        }
        other => panic!("{kind:?}: {other}"),
    }
    // The server keeps serving.
    let ok: Answer = b.call("math.unlucky", Ask { n: 2 }, BOUND).unwrap();
    assert_eq!(ok.n, 4);
}

fn calls_balance_over_local_and_remote_servers(kind: Kind) {
    let (a, b) = pair(kind);
    let _far = a.serve("math.lb", doubler("alpha")).unwrap();
    let _near = b.serve("math.lb", doubler("beta")).unwrap();
    let client = b.client::<Ask, Answer>("math.lb").unwrap();
    assert!(
        eventually(|| client.server_count() == 2),
        "{kind:?}: {} servers",
        client.server_count()
    );
    let mut by: Vec<String> = (0..10)
        .map(|n| client.call(Ask { n }, BOUND).unwrap().by)
        .collect();
    by.sort();
    by.dedup();
    assert_eq!(by.len(), 2, "{kind:?}: {by:?}");
    // call_all reaches both.
    let all = client.call_all(Ask { n: 5 }, BOUND).unwrap();
    let mut from: Vec<String> = all.into_iter().map(|r| r.unwrap().by).collect();
    from.sort();
    assert_eq!(from, ["alpha", "beta"], "{kind:?}");
}

fn service_schema_mismatch(kind: Kind) {
    let (a, b) = pair(kind);
    let _server = a.serve("math.typed", doubler("alpha")).unwrap();
    let e = b
        .call::<Ask, OtherAnswer>("math.typed", Ask { n: 1 }, BOUND)
        .unwrap_err();
    assert!(
        matches!(e, dndm::CallError::SchemaMismatch { .. }),
        "{kind:?}: {e}"
    );
}

fn call_times_out_and_the_server_lives_on(kind: Kind) {
    let (a, b) = pair(kind);
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = std::sync::Mutex::new(gate);
    let _server = a
        .serve("math.slow", move |q: Ask| {
            if q.n == 0 {
                // Held until the test releases it (bounded).
                let _ = gate.lock().unwrap().recv_timeout(BOUND);
            }
            Answer {
                n: q.n,
                by: "alpha".to_owned(),
            }
        })
        .unwrap();
    let client = b.client::<Ask, Answer>("math.slow").unwrap();
    assert!(client.wait_for_server(Some(BOUND)), "{kind:?}");
    let e = client
        .call(Ask { n: 0 }, Duration::from_millis(50))
        .unwrap_err();
    assert!(
        matches!(e, dndm::CallError::Timeout { .. }),
        "{kind:?}: {e}"
    );
    release.send(()).unwrap();
    assert_eq!(client.call(Ask { n: 7 }, BOUND).unwrap().n, 7);
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod in_process {
            $(#[test] fn $name() { super::$name(super::Kind::InProcess) })*
        }
        mod mem {
            $(#[test] fn $name() { super::$name(super::Kind::Mem) })*
        }
        mod tcp {
            $(#[test] fn $name() { super::$name(super::Kind::Tcp) })*
        }
        #[cfg(unix)]
        mod unix {
            $(#[test] fn $name() { super::$name(super::Kind::Unix) })*
        }
    };
}

suite!(
    pubsub_in_order,
    interest_follows_subscribers,
    history_for_late_joiners,
    schema_mismatch_on_both_sides,
    publisher_gone_is_seen,
    short_lived_publishers,
    request_reply,
    handler_panics_reach_the_caller,
    calls_balance_over_local_and_remote_servers,
    service_schema_mismatch,
    call_times_out_and_the_server_lives_on,
);

/// A call in flight when the serving peer leaves ends at once with the
/// reason, not at its timeout.
fn peer_leaving_mid_call(kind: Kind) {
    let (a, b) = pair(kind);
    let (started_tx, started) = std::sync::mpsc::channel::<()>();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let (started_tx, gate) = (
        std::sync::Mutex::new(started_tx),
        std::sync::Mutex::new(gate),
    );
    let server = a
        .serve("math.stuck", move |q: Ask| {
            let _ = started_tx.lock().unwrap().send(());
            let _ = gate.lock().unwrap().recv_timeout(BOUND);
            Answer {
                n: q.n,
                by: "alpha".to_owned(),
            }
        })
        .unwrap();
    let caller = {
        let b = b.clone();
        std::thread::spawn(move || b.call::<Ask, Answer>("math.stuck", Ask { n: 1 }, BOUND))
    };
    started.recv_timeout(BOUND).unwrap();
    drop(a);
    let e = caller.join().unwrap().unwrap_err();
    assert!(
        matches!(e, dndm::CallError::PeerGone { ref peer, .. } if peer == "alpha"),
        "{kind:?}: {e}"
    );
    release.send(()).unwrap();
    drop(server);
}

#[test]
fn peer_leaving_mid_call_mem() {
    peer_leaving_mid_call(Kind::Mem);
}

#[test]
fn peer_leaving_mid_call_tcp() {
    peer_leaving_mid_call(Kind::Tcp);
}

fn peers_see_each_other(kind: Kind) {
    let (a, b) = pair(kind);
    let pa = a.peers();
    let pb = b.peers();
    assert_eq!(pa.len(), 1);
    assert_eq!(pb.len(), 1);
    assert_eq!(pa[0].name, "beta");
    assert_eq!(pb[0].name, "alpha");
    assert_eq!(pa[0].id, b.id());
    assert_eq!(pb[0].id, a.id());
    let ev = a.next_peer_event(Some(BOUND)).unwrap();
    assert_eq!(ev.kind, PeerEventKind::Connected);
    assert_eq!(ev.name(), "beta");
    drop(b);
    let ev = a.next_peer_event(Some(BOUND)).unwrap();
    assert!(
        matches!(ev.kind, PeerEventKind::Disconnected { .. }),
        "{kind:?}: {ev:?}"
    );
    assert!(
        eventually(|| a.peers().is_empty()),
        "{kind:?}: the peer stayed listed"
    );
}

#[test]
fn peers_mem() {
    peers_see_each_other(Kind::Mem);
}

#[test]
fn peers_tcp() {
    peers_see_each_other(Kind::Tcp);
}

#[cfg(unix)]
#[test]
fn peers_unix() {
    peers_see_each_other(Kind::Unix);
}

/// A node's namespace limits what it offers and accepts, by whole segments.
#[test]
fn export_and_import_filters_work_by_whole_segments() {
    let path = |p: &str| p.parse::<dndm::router::Path>().unwrap();
    let a = Node::builder("alpha")
        .export_under([path("robot.arm")])
        .build()
        .unwrap();
    let addr = a.listen("tcp://127.0.0.1:0").unwrap();
    let b = Node::builder("beta")
        .import_under([path("robot")])
        .connect(&addr.to_string())
        .unwrap()
        .build()
        .unwrap();
    assert!(b.wait_for_peers(1, Some(BOUND)));
    let sub = b.subscribe::<Imu>("**").unwrap();
    let arm = a.publish::<Imu>("robot.arm.imu").unwrap();
    let army = a.publish::<Imu>("robot.army.imu").unwrap();
    assert!(arm.wait_for_interest(Some(BOUND)));
    assert!(eventually(|| sub.publisher_count() == 1));
    // `robot.army` is not under `robot.arm`: never offered, never linked,
    // and its publisher is told why.
    assert_eq!(army.interest_count(), 0);
    assert!(matches!(
        army.next_event(Some(BOUND)),
        Some(LinkEvent::Failed {
            error: dndm::router::PortError::NotExported,
            ..
        })
    ));
    let only: Vec<String> = sub
        .publishers()
        .iter()
        .map(|(_, r)| r.to_string())
        .collect();
    assert_eq!(only, ["conf.Imu@robot.arm.imu"]);
    // And beta's import filter keeps a's `other.*` routes out, even if
    // alpha exported them.
    let c = Node::builder("gamma").build().unwrap();
    let addr_c = c.listen("tcp://127.0.0.1:0").unwrap();
    b.connect(&addr_c.to_string()).unwrap();
    assert!(b.wait_for_peers(2, Some(BOUND)));
    let outside = c.publish::<Imu>("other.imu").unwrap();
    let inside = c.publish::<Imu>("robot.leg.imu").unwrap();
    assert!(inside.wait_for_interest(Some(BOUND)));
    assert!(eventually(|| sub.publisher_count() == 2));
    // beta's interest reaches gamma (it is beta's to export), but gamma's
    // `other.imu` never passes beta's import filter: no link, no sample.
    outside.send(imu(1)).unwrap();
    inside.send(imu(2)).unwrap();
    let s = sub.recv_timeout(BOUND).unwrap();
    assert_eq!(s.route().to_string(), "conf.Imu@robot.leg.imu");
    assert_eq!(sub.publisher_count(), 2);
    assert!(
        sub.publishers()
            .iter()
            .all(|(_, r)| !r.to_string().contains("other"))
    );
}
