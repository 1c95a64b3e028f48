//! A scope's policies hold against remote peers: a peer's publisher whose
//! route the scope denies for publishing never links to the scope's
//! subscribers, and a peer's subscriber denied subscribing never links to
//! the scope's publishers (two nodes over `mem://`). Waits are bounded hang
//! guards; nothing asserts timing.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
#![allow(
    clippy::disallowed_types,
    reason = "tests use std sync types like users do"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dndm::prelude::*;
use dndm::{Op, ScopeCallError, ScopePolicy};
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "pol.Reading")]
struct Reading {
    value: u32,
}

const BOUND: Duration = Duration::from_secs(20);

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn pair() -> (Node, Node) {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let a = Node::builder("alpha").build().unwrap();
    let addr = a
        .listen(&format!("mem://scope-pol-{}-{n}", std::process::id()))
        .unwrap();
    let b = Node::builder("beta")
        .connect(&addr.to_string())
        .unwrap()
        .build()
        .unwrap();
    assert!(a.wait_for_peers(1, Some(BOUND)));
    assert!(b.wait_for_peers(1, Some(BOUND)));
    (a, b)
}

fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + BOUND;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_peer_publisher_denied_publish_never_links_to_scope_subscribers() {
    let (a, b) = pair();
    let robot = a.scope("robot").unwrap();
    robot.set_policy(
        ScopePolicy::new()
            .deny(&[Op::Publish], "secret.**")
            .unwrap(),
    );
    // Subscribing to everything is allowed: only publishing is denied.
    let all = robot.subscribe::<Reading>("**").unwrap();

    let secret = b.publish::<Reading>("robot.secret.key").unwrap();
    let public = b.publish::<Reading>("robot.public").unwrap();
    // Both of beta's publishers reach alpha's linker as peer intents: the
    // public one links, the secret one is refused (and counted).
    assert!(eventually(
        || all.publisher_count() == 1 && robot.info().counters.denied >= 1
    ));
    let routes: Vec<String> = all
        .publishers()
        .iter()
        .map(|(_, r)| r.to_string())
        .collect();
    assert_eq!(routes, ["pol.Reading@robot.public"]);

    // Alpha's linker saw beta's publisher; beta's must also have seen
    // alpha's subscriber, or the sample goes to nobody (the declarations
    // cross the link in both directions independently).
    assert!(public.wait_for_interest(Some(BOUND)));
    for value in 0..10 {
        let _ = secret.send(Reading { value });
    }
    public.send(Reading { value: 100 }).unwrap();
    let got = all.recv_timeout(BOUND).unwrap();
    assert_eq!(got.value, 100);
    assert_eq!(got.route().to_string(), "pol.Reading@robot.public");
    assert!(all.try_recv().is_err(), "a secret sample arrived");
    assert_eq!(all.publisher_count(), 1);
}

#[test]
fn a_peer_subscriber_denied_subscribe_never_links_to_scope_publishers() {
    let (a, b) = pair();
    let robot = a.scope("robot").unwrap();
    robot.set_policy(
        ScopePolicy::new()
            .deny(&[Op::Subscribe], "secret.**")
            .unwrap(),
    );
    // Publishing on the secret route is allowed: only subscribing is denied.
    let secret = robot.publish::<Reading>("secret.key").unwrap();
    let public = robot.publish::<Reading>("public").unwrap();

    let everything = b.subscribe::<Reading>("robot.**").unwrap();
    let exact = b.subscribe::<Reading>("robot.secret.key").unwrap();
    // Beta's interests reach alpha's linker: the pattern links to the public
    // publisher only; the exact secret interest links to nothing. Both are
    // registered under one lock with all their links, so once the public
    // link is there, the refusals are made.
    assert!(public.wait_for_interest(Some(BOUND)));
    assert!(eventually(|| robot.info().counters.denied >= 2));
    assert_eq!(secret.interest_count(), 0);
    assert_eq!(public.interest_count(), 1);

    secret.send(Reading { value: 1 }).unwrap();
    public.send(Reading { value: 2 }).unwrap();
    let got = everything.recv_timeout(BOUND).unwrap();
    assert_eq!(got.value, 2);
    assert!(everything.try_recv().is_err());
    assert!(exact.try_recv().is_err());
    // Beta still hears of alpha's secret publisher (its declaration is
    // advertised), but on alpha's side nothing links to beta's interests,
    // so no sample of it ever leaves alpha.
    assert_eq!(secret.interest_count(), 0);
}

#[test]
fn a_child_scope_denies_peers_what_its_parent_denies() {
    let (a, b) = pair();
    let robot = a.scope("robot").unwrap();
    let arm = robot.child("arm").unwrap();
    robot.set_policy(ScopePolicy::new().deny(&[Op::Publish], "arm.cmd").unwrap());
    let cmds = arm.subscribe::<Reading>("*").unwrap();
    let _cmd = b.publish::<Reading>("robot.arm.cmd").unwrap();
    let pose = b.publish::<Reading>("robot.arm.pose").unwrap();
    assert!(eventually(
        || cmds.publisher_count() == 1 && arm.info().counters.denied >= 1
    ));
    assert!(pose.wait_for_interest(Some(BOUND)));
    pose.send(Reading { value: 7 }).unwrap();
    assert_eq!(cmds.recv_timeout(BOUND).unwrap().value, 7);
    let routes: Vec<String> = cmds
        .publishers()
        .iter()
        .map(|(_, r)| r.to_string())
        .collect();
    assert_eq!(routes, ["pol.Reading@robot.arm.pose"]);
}

#[test]
fn local_handles_outside_the_scope_are_not_its_business() {
    // The scope's policies bind what it creates and what peers declare into
    // it; a handle the node makes directly was never the scope's.
    let a = Node::new("solo");
    let robot = a.scope("robot").unwrap();
    robot.set_policy(
        ScopePolicy::new()
            .deny(&[Op::Publish], "secret.**")
            .unwrap(),
    );
    let all = robot.subscribe::<Reading>("**").unwrap();
    assert!(robot.publish::<Reading>("secret.key").is_err());
    let direct = a.publish::<Reading>("robot.secret.key").unwrap();
    assert_eq!(direct.interest_count(), 1);
    assert_eq!(all.publisher_count(), 1);
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "pol.Ask")]
struct Ask {
    n: u32,
}

/// A handler that answers `n + 1` and counts what it handled.
fn counting_handler() -> (
    Arc<AtomicUsize>,
    impl Fn(Ask) -> Ask + Send + Sync + 'static,
) {
    let handled = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&handled);
    let handler = move |q: Ask| {
        seen.fetch_add(1, Ordering::SeqCst);
        Ask { n: q.n + 1 }
    };
    (handled, handler)
}

fn double(q: Ask) -> Ask {
    Ask { n: q.n * 2 }
}

#[test]
fn a_peer_client_denied_call_never_reaches_a_scoped_server() {
    let (a, b) = pair();
    let robot = a.scope("robot").unwrap();
    robot.set_policy(ScopePolicy::new().deny(&[Op::Call], "secret").unwrap());
    let (handled, handler) = counting_handler();
    let _secret = robot.serve("secret", handler).unwrap();
    let _open = robot.serve("open", double).unwrap();

    // The allowed route answers across the link; once it does, beta knows
    // both of alpha's servers.
    let doubled: Ask = b.call("robot.open", Ask { n: 21 }, BOUND).unwrap();
    assert_eq!(doubled.n, 42);
    // Beta's client for the secret route links to alpha's server on beta's
    // side, but on alpha's side the scope refuses to link beta's client to
    // it: the call finds no server there (beta's caller hears that the
    // server it saw is gone) and the handler never runs.
    let refused = b.call::<Ask, Ask>("robot.secret", Ask { n: 1 }, BOUND);
    assert!(
        matches!(refused, Err(CallError::ServerGone { .. })),
        "{refused:?}"
    );
    assert!(robot.info().counters.denied >= 1);
    assert_eq!(handled.load(Ordering::SeqCst), 0);
    // Alpha's own callers outside the scope's policies still reach it.
    let local: Ask = a.call("robot.secret", Ask { n: 1 }, BOUND).unwrap();
    assert_eq!(local.n, 2);
    assert_eq!(handled.load(Ordering::SeqCst), 1);
}

#[test]
fn a_peer_server_denied_serve_never_answers_a_scope_call() {
    let (a, b) = pair();
    let robot = a.scope("robot").unwrap();
    robot.set_policy(ScopePolicy::new().deny(&[Op::Serve], "secret").unwrap());
    let (handled, handler) = counting_handler();
    let _secret = b.serve("robot.secret", handler).unwrap();
    let _open = b.serve("robot.open", double).unwrap();

    // The node's own client (no scope) reaches beta's secret server: alpha
    // knows it.
    let direct: Ask = a.call("robot.secret", Ask { n: 1 }, BOUND).unwrap();
    assert_eq!(direct.n, 2);
    assert_eq!(handled.load(Ordering::SeqCst), 1);
    // Through the scope, the allowed route is served by beta ...
    let doubled: Ask = robot.call("open", Ask { n: 21 }, BOUND).unwrap();
    assert_eq!(doubled.n, 42);
    // ... and the denied one finds no server: the scope's client never
    // links to beta's secret server. (A short timeout: the call waits that
    // long for a server that may still come.)
    let refused = robot.call::<Ask, Ask>("secret", Ask { n: 1 }, Duration::from_millis(100));
    assert!(
        matches!(
            refused,
            Err(ScopeCallError::Node(CallError::NoServer { .. }))
        ),
        "{refused:?}"
    );
    assert!(robot.info().counters.denied >= 1);
    assert_eq!(handled.load(Ordering::SeqCst), 1);
}
