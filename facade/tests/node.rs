//! The Node API: pub/sub, history, schemas, request/reply, cleanup.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
#![allow(
    clippy::disallowed_types,
    reason = "tests use std sync types like users do"
)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use dndm::prelude::*;
use dndm::{LinkEvent, PublishError, SubscribeError};
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "test.Num")]
struct Num {
    v: u64,
}

/// Same name as `Num`, another shape: a schema mismatch.
mod other {
    use super::*;
    #[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
    #[message(name = "test.Num")]
    pub struct Num {
        pub v: u32,
        pub w: u32,
    }
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "test.Req")]
struct Req {
    v: u64,
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "test.Resp")]
struct Resp {
    v: u64,
    server: u32,
}

const T: Duration = Duration::from_secs(5);

#[test]
fn publish_subscribe_with_patterns() {
    let node = Node::new("t");
    let all = node.subscribe::<Num>("robot.**").unwrap();
    let arms = node.subscribe::<Num>("robot.*.pos").unwrap();
    let a = node.publish::<Num>("robot.arm.pos").unwrap();
    let b = node.publish::<Num>("robot.leg.pos").unwrap();
    let c = node.publish::<Num>("robot.status").unwrap();
    assert_eq!((a.interest_count(), c.interest_count()), (2, 1));
    assert_eq!(all.publisher_count(), 3);
    a.send(Num { v: 1 }).unwrap();
    b.send(Num { v: 2 }).unwrap();
    c.send(Num { v: 3 }).unwrap();
    let mut got: Vec<(String, u64, u64)> = (0..3)
        .map(|_| {
            let s = all.recv_timeout(T).unwrap();
            (s.route().to_string(), s.v, s.seq())
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("test.Num@robot.arm.pos".to_string(), 1, 1),
            ("test.Num@robot.leg.pos".to_string(), 2, 1),
            ("test.Num@robot.status".to_string(), 3, 1),
        ]
    );
    let s = arms.recv_timeout(T).unwrap();
    assert!(s.publisher() == a.id() || s.publisher() == b.id());
    assert!(s.stamp_ns() <= dndm::now_ns());
    assert_eq!(arms.recv_timeout(T).unwrap().seq(), 1);
    assert!(arms.try_recv().is_err());
}

#[test]
fn send_without_interest_is_ok() {
    let node = Node::new("t");
    let p = node.publish::<Num>("x").unwrap();
    for i in 0..1000 {
        p.send(Num { v: i }).unwrap();
    }
    assert_eq!(p.interest_count(), 0);
}

#[test]
fn late_joiner_gets_exactly_the_last_n_in_order() {
    let node = Node::new("t");
    let p = node
        .publish_with::<Num>("h", PublishOptions::new().history(5))
        .unwrap();
    for v in 1..=20 {
        p.send(Num { v }).unwrap();
    }
    let s = node.subscribe::<Num>("h").unwrap();
    let got: Vec<u64> = (0..5).map(|_| s.recv_timeout(T).unwrap().v).collect();
    assert_eq!(got, [16, 17, 18, 19, 20]);
    assert!(s.try_recv().is_err(), "exactly N");
    p.send(Num { v: 21 }).unwrap();
    let n = s.recv_timeout(T).unwrap();
    assert_eq!((n.v, n.seq()), (21, 21));
}

#[test]
fn history_wakes_a_blocked_subscriber() {
    let node = Node::new("t");
    let s = node.subscribe::<Num>("h").unwrap();
    let n2 = node.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        // The subscriber exists first; history matters only for late joiners,
        // so here the live message arrives.
        let p = n2
            .publish_with::<Num>("h", PublishOptions::new().history(3))
            .unwrap();
        p.send(Num { v: 9 }).unwrap();
        p
    });
    assert_eq!(s.recv_timeout(T).unwrap().v, 9);
    let _p = t.join().unwrap();

    // A blocked late joiner wakes for history that arrives with a publisher.
    let node = Node::new("t2");
    let holder = node
        .publish_with::<Num>("g", PublishOptions::new().history(2))
        .unwrap();
    holder.send(Num { v: 1 }).unwrap();
    holder.send(Num { v: 2 }).unwrap();
    let s = node.subscribe::<Num>("g").unwrap();
    assert_eq!(s.recv().unwrap().v, 1);
    assert_eq!(s.recv().unwrap().v, 2);
}

#[test]
fn late_joiners_racing_a_publisher_see_no_gap_and_no_duplicate() {
    for round in 0..20 {
        let node = Node::new("race");
        let p = node
            .publish_with::<Num>("r", PublishOptions::new().history(8))
            .unwrap();
        let n2 = node.clone();
        let joiner = thread::spawn(move || {
            // Lossless: the publisher waits for this subscriber.
            let s = n2
                .subscribe_with::<Num>("r", SubscribeOptions::new().policy(Policy::BLOCK))
                .unwrap();
            let mut seqs = Vec::new();
            // The loop ends at the last message; the timeout only bounds a
            // broken run, so it is far longer than any scheduling stall.
            while let Ok(x) = s.recv_timeout(T) {
                seqs.push(x.seq());
                if x.v == 2000 {
                    break;
                }
            }
            seqs
        });
        for v in 1..=2000 {
            p.send(Num { v }).unwrap();
            if v % 500 == 0 {
                thread::yield_now();
            }
        }
        let seqs = joiner.join().unwrap();
        assert!(!seqs.is_empty(), "round {round}");
        for w in seqs.windows(2) {
            assert_eq!(
                w[1],
                w[0] + 1,
                "round {round}: gap or duplicate in {seqs:?}"
            );
        }
        assert_eq!(*seqs.last().unwrap(), 2000, "round {round}");
    }
}

#[test]
fn schema_mismatch_is_reported_and_nothing_links() {
    let node = Node::new("t");
    let s = node.subscribe::<Num>("m").unwrap();
    let p = node.publish::<other::Num>("m").unwrap();
    assert_eq!(p.interest_count(), 0);
    match p.try_event() {
        Some(LinkEvent::SchemaMismatch(m)) => assert!(m.to_string().contains("test.Num@m")),
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert!(matches!(s.try_event(), Some(LinkEvent::SchemaMismatch(_))));
    p.send(other::Num { v: 1, w: 2 }).unwrap();
    assert!(s.try_recv().is_err());
}

#[test]
fn bad_routes_and_patterns_are_typed_errors() {
    let node = Node::new("t");
    let e = node.publish::<Num>("a..b").unwrap_err();
    assert!(matches!(e, PublishError::Route(_)));
    assert!(e.to_string().contains("test.Num@a..b"), "{e}");
    let e = node.subscribe::<Num>("a.b*").unwrap_err();
    assert!(matches!(e, SubscribeError::Pattern(_)));
    assert!(e.to_string().contains("test.Num@a.b*"), "{e}");
    let e = node
        .subscribe_with::<Num>("a", SubscribeOptions::new().capacity(0))
        .unwrap_err();
    assert!(e.to_string().contains("test.Num@a"), "{e}");
    // A call waits for a server within its timeout, then says none came.
    let e = node
        .call::<Req, Resp>("svc", Req { v: 1 }, Duration::from_millis(1))
        .unwrap_err();
    assert!(matches!(e, CallError::NoServer { .. }));
    assert!(e.to_string().contains("test.Req@svc"), "{e}");
    assert!(node.call::<Req, Resp>("bad path", Req { v: 1 }, T).is_err());
}

#[test]
fn backpressure_policies_per_subscription() {
    let node = Node::new("t");
    let latest = node
        .subscribe_with::<Num>(
            "p",
            SubscribeOptions::new()
                .capacity(4)
                .policy(Policy::DropOldest),
        )
        .unwrap();
    let strict = node
        .subscribe_with::<Num>(
            "p",
            SubscribeOptions::new().capacity(4).policy(Policy::Reject),
        )
        .unwrap();
    let p = node.publish::<Num>("p").unwrap();
    let mut rejected = 0;
    for v in 0..10 {
        if let Err(e) = p.send(Num { v }) {
            assert!(e.to_string().contains("test.Num@p"));
            rejected += 1;
        }
    }
    assert_eq!(rejected, 6);
    let got: Vec<u64> = std::iter::from_fn(|| latest.try_recv().ok().map(|s| s.v)).collect();
    assert_eq!(got, [6, 7, 8, 9]);
    assert_eq!(latest.stats().dropped, 6);
    let got: Vec<u64> = std::iter::from_fn(|| strict.try_recv().ok().map(|s| s.v)).collect();
    assert_eq!(got, [0, 1, 2, 3]);
}

#[test]
fn async_recv_works_on_any_executor() {
    let node = Node::new("t");
    let s = node.subscribe::<Num>("a").unwrap();
    let p = node.publish::<Num>("a").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        p.send(Num { v: 3 }).unwrap();
        assert_eq!(s.recv_async().await.unwrap().v, 3);
    });
}

#[test]
fn callbacks_contain_panics() {
    let node = Node::new("t");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let cb = node
        .subscribe_fn::<Num, _>("c", SubscribeOptions::new(), move |s| {
            if s.v == 2 {
                panic!("boom on purpose");
            }
            seen2.lock().unwrap().push(s.v);
        })
        .unwrap();
    let p = node.publish::<Num>("c").unwrap();
    for v in 1..=3 {
        p.send(Num { v }).unwrap();
    }
    // A bounded wait for the callback thread (far above any stall).
    for _ in 0..2_000 {
        if seen.lock().unwrap().len() == 2 {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(*seen.lock().unwrap(), [1, 3]);
    assert_eq!(node.stats().callback_panics, 1);
    drop(cb);
    assert_eq!(p.interest_count(), 0, "the callback's subscription is gone");
}

#[test]
fn request_reply_basics_and_errors() {
    let node = Node::new("t");
    // Request 99 is held until the caller has timed out, so the timeout
    // cannot race the reply however the threads are scheduled.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = Mutex::new(held);
    let _s = node
        .serve::<Req, Resp, _>("double", move |r| {
            if r.v == 13 {
                panic!("unlucky on purpose");
            }
            if r.v == 99 {
                let _ = held.lock().unwrap().recv_timeout(T);
            }
            Resp {
                v: r.v * 2,
                server: 0,
            }
        })
        .unwrap();
    assert_eq!(
        node.call::<Req, Resp>("double", Req { v: 21 }, T)
            .unwrap()
            .v,
        42
    );
    let e = node
        .call::<Req, Resp>("double", Req { v: 13 }, T)
        .unwrap_err();
    assert!(matches!(e, CallError::HandlerPanicked { .. }), "{e}");
    assert!(e.to_string().contains("test.Req@double"));
    assert_eq!(node.stats().handler_panics, 1);
    // The server survived.
    assert_eq!(
        node.call::<Req, Resp>("double", Req { v: 1 }, T).unwrap().v,
        2
    );
    let e = node
        .call::<Req, Resp>("double", Req { v: 99 }, Duration::from_millis(20))
        .unwrap_err();
    assert!(matches!(e, CallError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("test.Req@double"));
    release.send(()).unwrap();
    // Another response type on the same path: a schema mismatch, no link.
    let e = node
        .call::<Req, Req>("double", Req { v: 1 }, T)
        .unwrap_err();
    assert!(matches!(e, CallError::SchemaMismatch { .. }), "{e}");
}

#[test]
fn broadcast_reaches_every_server() {
    let node = Node::new("t");
    let servers: Vec<_> = (0..3)
        .map(|i| {
            node.serve::<Req, Resp, _>("b", move |r| Resp { v: r.v, server: i })
                .unwrap()
        })
        .collect();
    let replies = node.call_all::<Req, Resp>("b", Req { v: 5 }, T).unwrap();
    let mut ids: Vec<u32> = replies.into_iter().map(|r| r.unwrap().server).collect();
    ids.sort();
    assert_eq!(ids, [0, 1, 2]);
    drop(servers);
    assert!(matches!(
        node.call::<Req, Resp>("b", Req { v: 1 }, Duration::ZERO),
        Err(CallError::NoServer { .. })
    ));
}

#[test]
fn hundred_thousand_calls_from_four_threads_each_handled_once() {
    const THREADS: u64 = 4;
    const CALLS: u64 = 25_000;
    let node = Node::new("rr");
    let handled = Arc::new(Mutex::new(HashSet::new()));
    let per_server = Arc::new(Mutex::new([0u64; 2]));
    let servers: Vec<_> = (0..2u32)
        .map(|i| {
            let handled = Arc::clone(&handled);
            let per_server = Arc::clone(&per_server);
            node.serve::<Req, Resp, _>("load", move |r| {
                assert!(
                    handled.lock().unwrap().insert(r.v),
                    "handled twice: {}",
                    r.v
                );
                per_server.lock().unwrap()[i as usize] += 1;
                Resp {
                    v: r.v + 1,
                    server: i,
                }
            })
            .unwrap()
        })
        .collect();
    let start = std::time::Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let node = node.clone();
            thread::spawn(move || {
                let client = node.client::<Req, Resp>("load").unwrap();
                for i in 0..CALLS {
                    let v = t * CALLS + i;
                    let r = client.call(Req { v }, T).unwrap();
                    assert_eq!(r.v, v + 1);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        handled.lock().unwrap().len() as u64,
        THREADS * CALLS,
        "0 lost"
    );
    let split = *per_server.lock().unwrap();
    assert!(split[0] > 0 && split[1] > 0, "load shared: {split:?}");
    assert_eq!(node.stats().handler_panics, 0);
    assert!(start.elapsed() < Duration::from_secs(60));
    drop(servers);
}

#[test]
fn dropping_handles_releases_everything() {
    let node = Node::new("mem");
    let base = node.stats();
    assert_eq!((base.intents, base.interests, base.links), (0, 0, 0));
    let s = node.subscribe::<Num>("m.**").unwrap();
    let p = node
        .publish_with::<Num>("m.x", PublishOptions::new().history(4))
        .unwrap();
    for v in 0..10 {
        p.send(Num { v }).unwrap();
    }
    assert_eq!(node.stats().links, 1);
    drop(p);
    assert_eq!(s.publisher_count(), 0, "the subscriber is told");
    let st = node.stats();
    assert_eq!((st.intents, st.interests, st.links), (0, 1, 0));
    // What was queued is still delivered.
    assert_eq!(s.try_recv().unwrap().v, 0);
    let p = node.publish::<Num>("m.y").unwrap();
    drop(s);
    assert_eq!(p.interest_count(), 0, "the publisher is told");
    let _srv = node
        .serve::<Req, Resp, _>("svc", |r| Resp { v: r.v, server: 0 })
        .unwrap();
    assert_eq!(node.call::<Req, Resp>("svc", Req { v: 1 }, T).unwrap().v, 1);

    // Dropping the node closes it: the remaining handles are unlinked and a
    // subscriber reports the end.
    let s = node.subscribe::<Num>("m.y").unwrap();
    p.send(Num { v: 7 }).unwrap();
    drop(_srv);
    drop(node);
    assert_eq!(p.interest_count(), 0);
    assert_eq!(s.recv().unwrap().v, 7, "queued data drains first");
    drop(p);
    assert!(s.recv().is_err());
}

#[test]
fn hashed_routes_link_only_key_holders() {
    let node = Node::new("t");
    let key = dndm::RouteKey::derive(b"k");
    let s = node
        .subscribe_hashed::<Num>(&key, "secret", "secret.plan", SubscribeOptions::new())
        .unwrap();
    let spy = node.subscribe::<Num>("**").unwrap();
    let p = node
        .publish_hashed::<Num>(&key, "secret", "secret.plan", PublishOptions::new())
        .unwrap();
    assert_eq!((p.interest_count(), spy.publisher_count()), (1, 0));
    p.send(Num { v: 1 }).unwrap();
    let got = s.recv_timeout(T).unwrap();
    assert!(got.route().is_hashed());
    assert!(got.route().to_string().starts_with("secret#"));
}
