//! Every facade API that takes a `Duration`, at `Duration::ZERO` and at
//! `Duration::MAX`. A timeout too large to add to the clock means "no
//! limit"; it must never panic. Where such a call would block, another thread
//! makes it succeed after a short pause (no test asserts timing).
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::thread;
use std::time::Duration;

use dndm::prelude::*;
use dndm::{LinkEvent, SubscribeOptions};
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "deadline.Num")]
struct Num {
    v: u64,
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "deadline.Req")]
struct Req {
    v: u64,
}

const PAUSE: Duration = Duration::from_millis(20);

fn opts(capacity: usize, policy: Policy) -> SubscribeOptions {
    SubscribeOptions::new().capacity(capacity).policy(policy)
}

#[test]
fn subscriber_timeouts_zero_and_max() {
    let node = Node::new("t");
    let s = node
        .subscribe_with::<Num>("a", opts(4, Policy::BLOCK))
        .unwrap();
    assert!(!s.wait_for_publisher(Some(Duration::ZERO)));
    assert!(s.recv_timeout(Duration::ZERO).is_err());
    let p = node.publish::<Num>("a").unwrap();
    assert!(s.wait_for_publisher(Some(Duration::ZERO)));
    assert!(s.wait_for_publisher(Some(Duration::MAX)));
    p.send(Num { v: 1 }).unwrap();
    assert_eq!(s.recv_timeout(Duration::ZERO).unwrap().v, 1);
    p.send(Num { v: 2 }).unwrap();
    assert_eq!(s.recv_timeout(Duration::MAX).unwrap().v, 2);
    let h = thread::spawn(move || {
        thread::sleep(PAUSE);
        p.send(Num { v: 3 }).unwrap();
    });
    assert_eq!(s.recv_timeout(Duration::MAX).unwrap().v, 3);
    h.join().unwrap();
    // A publisher that links later, waited for without limit.
    let other = node.clone();
    let h = thread::spawn(move || {
        thread::sleep(PAUSE);
        other.publish::<Num>("a").unwrap()
    });
    assert!(s.wait_for_publisher(Some(Duration::MAX)));
    drop(h.join().unwrap());
}

#[test]
fn publisher_timeouts_zero_and_max() {
    let node = Node::new("t");
    let p = node.publish::<Num>("a").unwrap();
    assert!(!p.wait_for_interest(Some(Duration::ZERO)));
    assert!(p.next_event(Some(Duration::ZERO)).is_none());
    // Nobody listens: a send with any timeout returns at once.
    p.send_timeout(Num { v: 0 }, Duration::MAX).unwrap();
    let s = node
        .subscribe_with::<Num>("a", opts(1, Policy::BLOCK))
        .unwrap();
    assert!(p.wait_for_interest(Some(Duration::ZERO)));
    assert!(p.wait_for_interest(Some(Duration::MAX)));
    assert!(matches!(
        p.next_event(Some(Duration::MAX)),
        Some(LinkEvent::Linked { .. })
    ));
    p.send_timeout(Num { v: 1 }, Duration::ZERO).unwrap();
    assert!(p.send_timeout(Num { v: 2 }, Duration::ZERO).is_err());
    // The lane is full: the subscriber frees it after a pause.
    let h = thread::spawn(move || {
        thread::sleep(PAUSE);
        let first = s.recv().unwrap().v;
        (first, s)
    });
    p.send_timeout(Num { v: 3 }, Duration::MAX).unwrap();
    let (first, s) = h.join().unwrap();
    assert_eq!(first, 1);
    assert_eq!(s.recv_timeout(Duration::MAX).unwrap().v, 3);
    // An event waited for without limit.
    let h = thread::spawn(move || {
        thread::sleep(PAUSE);
        drop(s);
    });
    assert!(matches!(
        p.next_event(Some(Duration::MAX)),
        Some(LinkEvent::Unlinked { .. })
    ));
    h.join().unwrap();
}

#[test]
fn block_policy_timeout_zero_and_max() {
    let node = Node::new("t");
    let p = node.publish::<Num>("a").unwrap();
    let zero = node
        .subscribe_with::<Num>(
            "a",
            opts(
                1,
                Policy::Block {
                    timeout: Some(Duration::ZERO),
                },
            ),
        )
        .unwrap();
    p.send(Num { v: 1 }).unwrap();
    assert!(p.send(Num { v: 2 }).is_err());
    assert_eq!(zero.recv().unwrap().v, 1);
    drop(zero);

    let max = node
        .subscribe_with::<Num>(
            "a",
            opts(
                1,
                Policy::Block {
                    timeout: Some(Duration::MAX),
                },
            ),
        )
        .unwrap();
    p.send(Num { v: 3 }).unwrap();
    // The publisher's first full lane: it waits (no limit) for room.
    let h = thread::spawn(move || {
        thread::sleep(PAUSE);
        let first = max.recv().unwrap().v;
        (first, max)
    });
    p.send(Num { v: 4 }).unwrap();
    let (first, max) = h.join().unwrap();
    assert_eq!(first, 3);
    assert_eq!(max.recv_timeout(Duration::MAX).unwrap().v, 4);
}

#[test]
fn call_timeouts_zero_and_max() {
    let node = Node::new("t");
    let client = node.client::<Req, Req>("echo").unwrap();
    assert!(!client.wait_for_server(Some(Duration::ZERO)));
    // No server and no time to wait for one: at once.
    assert!(matches!(
        node.call::<Req, Req>("echo", Req { v: 1 }, Duration::ZERO),
        Err(CallError::NoServer { .. })
    ));
    let _server = node
        .serve::<Req, Req, _>("echo", |r| Req { v: r.v + 1 })
        .unwrap();
    assert!(client.wait_for_server(Some(Duration::ZERO)));
    assert!(client.wait_for_server(Some(Duration::MAX)));
    assert_eq!(
        node.call::<Req, Req>("echo", Req { v: 1 }, Duration::MAX)
            .unwrap()
            .v,
        2
    );
    assert_eq!(client.call(Req { v: 2 }, Duration::MAX).unwrap().v, 3);
    let all = node
        .call_all::<Req, Req>("echo", Req { v: 3 }, Duration::MAX)
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].as_ref().unwrap().v, 4);
    let all = client.call_all(Req { v: 4 }, Duration::MAX).unwrap();
    assert_eq!(all[0].as_ref().unwrap().v, 5);
    // A zero timeout never panics; the reply may or may not be there yet.
    match node.call::<Req, Req>("echo", Req { v: 5 }, Duration::ZERO) {
        Ok(r) => assert_eq!(r.v, 6),
        Err(e) => assert!(matches!(e, CallError::Timeout { .. }), "{e}"),
    }
    let all = client.call_all(Req { v: 6 }, Duration::ZERO).unwrap();
    assert_eq!(all.len(), 1);
    // A server that appears later, waited for without limit.
    let other = node.clone();
    let h = thread::spawn(move || {
        thread::sleep(PAUSE);
        other
            .serve::<Req, Req, _>("late", |r| Req { v: r.v * 10 })
            .unwrap()
    });
    let late = node.client::<Req, Req>("late").unwrap();
    assert!(late.wait_for_server(Some(Duration::MAX)));
    assert_eq!(late.call(Req { v: 7 }, Duration::MAX).unwrap().v, 70);
    drop(h.join().unwrap());
}
