//! Hostile and unlucky conditions: stuck subscribers, slow handlers, late
//! joiners with small queues. Every wait here is a generous watchdog on
//! progress, never a measurement of time.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
#![allow(
    clippy::disallowed_types,
    reason = "tests use std sync types like users do"
)]

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use dndm::prelude::*;
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "test.Num")]
struct Num {
    v: u64,
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
}

/// How long a test waits for progress before it calls the code stuck.
const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `f` on its own thread and waits at most [`WATCHDOG`] for it.
fn within_watchdog<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(f());
    });
    match finished.recv_timeout(WATCHDOG) {
        Ok(r) => r,
        Err(_) => panic!("{what}: no progress within {WATCHDOG:?}"),
    }
}

#[test]
fn a_subscriber_that_never_reads_does_not_stop_its_publisher() {
    let out = within_watchdog("10,000 sends past a stuck subscriber", || {
        let node = Node::new("stuck");
        let stuck = node.subscribe::<Num>("s").unwrap();
        let healthy = node.subscribe::<Num>("s").unwrap();
        let p = node.publish::<Num>("s").unwrap();
        let mut got = Vec::with_capacity(10_000);
        for v in 1..=10_000u64 {
            p.send(Num { v }).unwrap();
            if v % 32 == 0 {
                while let Ok(s) = healthy.try_recv() {
                    got.push(s.v);
                }
            }
        }
        while let Ok(s) = healthy.try_recv() {
            got.push(s.v);
        }
        let kept: Vec<u64> = std::iter::from_fn(|| stuck.try_recv().ok().map(|s| s.v)).collect();
        (got, kept, p.sent(), p.dropped(), stuck.stats().dropped)
    });
    let (got, kept, sent, dropped, stuck_dropped) = out;
    assert_eq!(sent, 10_000);
    // The publisher sees what the stuck subscriber lost, and so does it.
    assert_eq!(dropped, 10_000 - 64);
    assert_eq!(stuck_dropped, 10_000 - 64);
    assert_eq!(
        got,
        (1..=10_000).collect::<Vec<_>>(),
        "the healthy one got all"
    );
    // The stuck one keeps the newest messages its queue holds.
    assert_eq!(kept, (10_000 - 63..=10_000).collect::<Vec<_>>());
}

#[test]
fn a_block_timeout_does_not_stall_every_send() {
    let out = within_watchdog("1,000 sends past a stuck Block subscriber", || {
        let node = Node::new("stall");
        let stuck = node
            .subscribe_with::<Num>(
                "s",
                SubscribeOptions::new().capacity(4).policy(Policy::Block {
                    timeout: Some(Duration::from_millis(100)),
                }),
            )
            .unwrap();
        let p = node.publish::<Num>("s").unwrap();
        let mut missed = 0;
        for v in 1..=1_000u64 {
            if p.send(Num { v }).is_err() {
                missed += 1;
            }
        }
        // Once it reads, it is lossless again.
        let first: Vec<u64> = std::iter::from_fn(|| stuck.try_recv().ok().map(|s| s.v)).collect();
        for v in 1_001..=1_004u64 {
            p.send(Num { v }).unwrap();
        }
        let then: Vec<u64> = std::iter::from_fn(|| stuck.try_recv().ok().map(|s| s.v)).collect();
        (missed, first, then, p.dropped())
    });
    let (missed, first, then, dropped) = out;
    assert_eq!(missed, 996);
    assert_eq!(dropped, 996);
    assert_eq!(first, [1, 2, 3, 4]);
    assert_eq!(then, [1_001, 1_002, 1_003, 1_004]);
}

#[test]
fn a_slow_handler_does_not_block_the_linker() {
    let node = Node::builder("slow")
        .server_capacity(1)
        .build()
        .expect("local node");
    let (gate_tx, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let (entered_tx, entered) = mpsc::channel::<u64>();
    let entered_tx = Mutex::new(entered_tx);
    let _slow = node
        .serve::<Req, Resp, _>("slow", move |r| {
            let _ = entered_tx.lock().unwrap().send(r.v);
            // Held until the test lets it go.
            let _ = gate.lock().unwrap().recv();
            Resp { v: r.v }
        })
        .unwrap();
    let client = node.client::<Req, Resp>("slow").unwrap();
    let mut callers = Vec::new();
    for v in 1..=3u64 {
        let client = Arc::clone(&client);
        callers.push(thread::spawn(move || {
            client.call(Req { v }, Duration::from_secs(3600))
        }));
        if v == 1 {
            // The handler holds the first request.
            assert_eq!(entered.recv_timeout(WATCHDOG).unwrap(), 1);
        } else {
            // Lets the next caller reach its send (the queue holds one).
            thread::sleep(Duration::from_millis(100));
        }
    }
    // A second server on the busy route links while callers wait for room.
    let n2 = node.clone();
    let second = thread::spawn(move || {
        n2.serve::<Req, Resp, _>("slow", |r| Resp { v: r.v })
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    thread::sleep(Duration::from_millis(100));
    // Unrelated routes: serving, calling, subscribing all go ahead while the
    // handler is still held.
    let n3 = node.clone();
    let unrelated = within_watchdog("serve on an unrelated route", move || {
        let srv = n3
            .serve::<Req, Resp, _>("fast", |r| Resp { v: r.v + 1 })
            .unwrap();
        let r = n3
            .call::<Req, Resp>("fast", Req { v: 1 }, WATCHDOG)
            .unwrap();
        let sub = n3.subscribe::<Num>("topic").unwrap();
        drop((srv, sub));
        r.v
    });
    assert_eq!(unrelated, 2);
    drop(gate_tx); // releases the held handler
    within_watchdog("the second server", move || second.join().unwrap()).unwrap();
    for c in callers {
        let _ = c.join().unwrap();
    }
}

#[test]
fn a_request_whose_caller_gave_up_is_not_handled() {
    let node = Node::new("cancel");
    let (gate_tx, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let handled = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&handled);
    let (entered_tx, entered) = mpsc::channel::<u64>();
    let entered_tx = Mutex::new(entered_tx);
    let _srv = node
        .serve::<Req, Resp, _>("held", move |r| {
            seen.lock().unwrap().push(r.v);
            let _ = entered_tx.lock().unwrap().send(r.v);
            if r.v == 1 {
                let _ = gate.lock().unwrap().recv();
            }
            Resp { v: r.v }
        })
        .unwrap();
    let n2 = node.clone();
    let first = thread::spawn(move || n2.call::<Req, Resp>("held", Req { v: 1 }, WATCHDOG));
    assert_eq!(entered.recv_timeout(WATCHDOG).unwrap(), 1);
    // Queued behind the held request; its caller gives up.
    let e = node
        .call::<Req, Resp>("held", Req { v: 2 }, Duration::from_millis(20))
        .unwrap_err();
    assert!(matches!(e, CallError::Timeout { .. }), "{e}");
    drop(gate_tx);
    assert_eq!(first.join().unwrap().unwrap().v, 1);
    assert_eq!(
        node.call::<Req, Resp>("held", Req { v: 3 }, WATCHDOG)
            .unwrap()
            .v,
        3
    );
    assert_eq!(
        *handled.lock().unwrap(),
        [1, 3],
        "the abandoned request ran"
    );
    assert_eq!(node.stats().abandoned_requests, 1);
}

#[test]
fn a_late_joiner_gets_at_most_its_capacity_of_history() {
    let node = Node::new("late");
    let p = node
        .publish_with::<Num>("h", PublishOptions::new().history(100))
        .unwrap();
    for v in 1..=100 {
        p.send(Num { v }).unwrap();
    }
    let s = node
        .subscribe_with::<Num>("h", SubscribeOptions::new().capacity(4))
        .unwrap();
    let got: Vec<u64> = std::iter::from_fn(|| s.try_recv().ok().map(|x| x.v)).collect();
    assert_eq!(got, [97, 98, 99, 100], "the newest `capacity` messages");
    p.send(Num { v: 101 }).unwrap();
    assert_eq!(
        s.try_recv().unwrap().v,
        101,
        "and no gap into the live stream"
    );
}

#[test]
fn a_history_deeper_than_the_limit_is_a_typed_error() {
    let node = Node::new("deep");
    let e = node
        .publish_with::<Num>("h", PublishOptions::new().history(usize::MAX))
        .unwrap_err();
    assert!(
        matches!(e, dndm::PublishError::HistoryTooDeep { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("test.Num@h"), "{e}");
}

#[test]
fn lossless_block_stays_available() {
    let node = Node::new("lossless");
    let s = node
        .subscribe_with::<Num>(
            "b",
            SubscribeOptions::new().capacity(2).policy(Policy::BLOCK),
        )
        .unwrap();
    let p = node.publish::<Num>("b").unwrap();
    let reader = thread::spawn(move || {
        (0..1_000)
            .map(|_| s.recv_timeout(WATCHDOG).unwrap().v)
            .collect::<Vec<u64>>()
    });
    for v in 1..=1_000u64 {
        p.send(Num { v }).unwrap();
    }
    assert_eq!(reader.join().unwrap(), (1..=1_000).collect::<Vec<_>>());
    assert_eq!(p.dropped(), 0);
}
