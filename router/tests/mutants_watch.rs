//! The registration watch as a peer session uses it: what `poll` returns,
//! when `set_waker` wakes at once, each registration's origin, watches that
//! outlive one another, and the Debug text.
//!
//! Written against mutants of `router/src/watch.rs` and the watch half of
//! `router/src/linker.rs` (see `docs/mutants.md`).
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
#![allow(
    clippy::disallowed_types,
    reason = "tests use std sync types like users do"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Waker;

use dndm_router::session::{NodeId, Origin};
use dndm_router::{Linker, Registration, RegistrationChange, RegistrationWatch};

mod ports;
use ports::{Count, Port};

fn counter() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&count));
    (count, waker)
}

fn wakes(c: &Count) -> usize {
    c.0.load(Ordering::SeqCst)
}

fn poll(w: &RegistrationWatch) -> Vec<RegistrationChange> {
    let mut out = Vec::new();
    let n = w.poll(&mut out);
    assert_eq!(n, out.len(), "poll returns how many it appended");
    out
}

#[test]
fn poll_appends_and_counts() {
    let linker = Linker::new();
    let watch = linker.watch();
    let _a = linker
        .add_intent("T@a".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    let _b = linker
        .add_intent("T@b".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    let _c = linker
        .add_interest("T@*".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    assert_eq!(watch.pending(), 3);
    let mut out = vec![RegistrationChange::Withdrawn(Registration::Intent {
        id: dndm_router::IntentId::from_raw(0),
        route: "T@z".parse().unwrap(),
        fingerprint: 0,
        origin: Origin::Local,
    })];
    assert_eq!(watch.poll(&mut out), 3);
    assert_eq!(out.len(), 4, "appends after what was there");
    assert_eq!(watch.poll(&mut out), 0);
    assert_eq!(watch.pending(), 0);
}

#[test]
fn each_registration_keeps_its_origin() {
    let linker = Linker::new();
    let watch = linker.watch();
    let peer = Origin::Peer(NodeId::from_bytes([3; 16]));
    let _local = linker
        .add_intent("T@a".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    let _remote = linker
        .add_interest_from("T@*".parse().unwrap(), 1, Arc::new(Port), peer)
        .unwrap();
    let origins: Vec<Origin> = poll(&watch)
        .into_iter()
        .map(|c| match c {
            RegistrationChange::Declared(r) => r.origin(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(origins, [Origin::Local, peer]);
}

/// `set_waker` wakes at once when there is something to see: pending
/// changes or a closed linker; otherwise only at the next change.
#[test]
fn set_waker_wakes_at_once_only_when_there_is_news() {
    let linker = Linker::new();
    let watch = linker.watch();
    let (count, waker) = counter();
    watch.set_waker(Some(waker.clone()));
    assert_eq!(wakes(&count), 0, "nothing pending, not closed");

    let _a = linker
        .add_intent("T@a".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    assert_eq!(wakes(&count), 1);
    watch.set_waker(Some(waker.clone()));
    assert_eq!(wakes(&count), 2, "a change is pending");

    poll(&watch);
    watch.set_waker(Some(waker.clone()));
    assert_eq!(wakes(&count), 2, "everything was polled");

    let closing = Linker::new();
    let closed_watch = closing.watch();
    assert!(!closed_watch.is_closed(), "open until the linker closes");
    closing.close();
    assert!(closed_watch.is_closed());
    assert!(poll(&closed_watch).is_empty());
    let (count, waker) = counter();
    closed_watch.set_waker(Some(waker));
    assert_eq!(wakes(&count), 1, "closed, nothing pending");
}

/// Dropping one watch leaves the others watching.
#[test]
fn dropping_a_watch_leaves_the_others() {
    let linker = Linker::new();
    let first = linker.watch();
    let second = linker.watch();
    let third = linker.watch();
    drop(second);
    let _a = linker
        .add_intent("T@a".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    assert_eq!(poll(&first).len(), 1);
    assert_eq!(poll(&third).len(), 1);
    drop(first);
    let _b = linker
        .add_intent("T@b".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    assert_eq!(poll(&third).len(), 1);
}

#[test]
fn debug_text_shows_pending() {
    let linker = Linker::new();
    let watch = linker.watch();
    let _a = linker
        .add_intent("T@a".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    let text = format!("{watch:?}");
    assert!(text.starts_with("RegistrationWatch"), "{text}");
    assert!(text.contains("pending: 1"), "{text}");
}

/// Dropping an intent or an interest the watch already reported is a withdrawal.
#[test]
fn dropping_a_reported_registration_is_a_withdrawal() {
    let linker = Linker::new();
    let watch = linker.watch();
    let intent = linker
        .add_intent("T@a".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    let interest = linker
        .add_interest("T@*".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    assert_eq!(poll(&watch).len(), 2);
    drop(intent);
    let got = poll(&watch);
    assert!(
        matches!(
            &got[..],
            [RegistrationChange::Withdrawn(Registration::Intent { .. })]
        ),
        "{got:?}"
    );
    drop(interest);
    let got = poll(&watch);
    assert!(
        matches!(
            &got[..],
            [RegistrationChange::Withdrawn(Registration::Interest { .. })]
        ),
        "{got:?}"
    );
}
