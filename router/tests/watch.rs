//! The registration watch: every declaration and withdrawal with its
//! origin, coalesced, with a waker that fires on change.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
#![allow(
    clippy::disallowed_types,
    reason = "tests use std sync types like users do"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Waker;

use dndm_router::session::{NodeId, Origin};
use dndm_router::{Linker, Registration, RegistrationChange};

mod ports;
use ports::{Count, Port};

fn poll(w: &dndm_router::RegistrationWatch) -> Vec<RegistrationChange> {
    let mut out = Vec::new();
    w.poll(&mut out);
    out
}

#[test]
fn reports_present_and_later_registrations_with_origin() {
    let linker = Linker::new();
    let early = linker
        .add_intent("t.A@a.b".parse().unwrap(), 7, Arc::new(Port))
        .unwrap();
    let watch = linker.watch();
    let peer = NodeId::from_bytes([9; 16]);
    let remote = linker
        .add_interest_from(
            "t.A@a.*".parse().unwrap(),
            7,
            Arc::new(Port),
            Origin::Peer(peer),
        )
        .unwrap();
    let got = poll(&watch);
    assert_eq!(got.len(), 2);
    assert!(matches!(
        &got[0],
        RegistrationChange::Declared(Registration::Intent { id, origin: Origin::Local, fingerprint: 7, .. })
            if *id == early.id()
    ));
    assert!(matches!(
        &got[1],
        RegistrationChange::Declared(Registration::Interest { id, origin: Origin::Peer(p), .. })
            if *id == remote.id() && *p == peer
    ));
    assert!(poll(&watch).is_empty());
    // Linked before the watch heard of it.
    assert_eq!(early.interest_count(), 1);

    drop(early);
    let got = poll(&watch);
    assert!(matches!(
        &got[..],
        [RegistrationChange::Withdrawn(Registration::Intent { .. })]
    ));
}

#[test]
fn came_and_went_unseen_is_not_reported_and_the_queue_stays_small() {
    let linker = Linker::new();
    let watch = linker.watch();
    for i in 0..10_000 {
        let r = linker
            .add_intent(format!("t.A@a.n{i}").parse().unwrap(), 1, Arc::new(Port))
            .unwrap();
        drop(r);
        assert_eq!(watch.pending(), 0, "churn must not grow the queue");
    }
    let kept = linker
        .add_intent("t.A@kept".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    assert_eq!(poll(&watch).len(), 1);
    drop(kept);
    assert_eq!(watch.pending(), 1);
}

#[test]
fn waker_fires_on_change_and_not_after_the_watch_is_dropped() {
    let linker = Linker::new();
    let watch = linker.watch();
    let count = Arc::new(Count(AtomicUsize::new(0)));
    watch.set_waker(Some(Waker::from(Arc::clone(&count))));
    assert_eq!(count.0.load(Ordering::SeqCst), 0, "nothing pending yet");
    let a = linker
        .add_intent("t.A@x".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    assert!(count.0.load(Ordering::SeqCst) >= 1);
    drop(watch);
    let before = count.0.load(Ordering::SeqCst);
    drop(a);
    let _b = linker
        .add_intent("t.A@y".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    assert_eq!(count.0.load(Ordering::SeqCst), before);
}

#[test]
fn close_withdraws_everything_and_marks_the_watch() {
    let linker = Linker::new();
    let _a = linker
        .add_intent("t.A@x".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    let watch = linker.watch();
    assert_eq!(poll(&watch).len(), 1);
    linker.close();
    assert!(watch.is_closed());
    assert!(matches!(
        &poll(&watch)[..],
        [RegistrationChange::Withdrawn(_)]
    ));
}
