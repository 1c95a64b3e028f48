//! The linker's handles as their users see them: link counts, the bounded
//! event queue, waits that end when their condition holds (and only then),
//! withdrawal by id, pattern limits, channel ports that attach and detach,
//! and the Debug text.
//!
//! Written against mutants of `router/src/linker.rs` that the other tests
//! let through (see `docs/mutants.md`).
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
#![allow(
    clippy::disallowed_types,
    reason = "tests use std sync types like users do"
)]

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use dndm_core::{Config, Receiver, Sender};
use dndm_router::{
    ChannelIntent, ChannelInterest, EVENT_QUEUE_CAPACITY, IntentId, LinkError, LinkEvent, Linker,
    PatternLimits, Route,
};

mod ports;
use ports::Port;

/// Far beyond what any step here needs; a mutant that blocks fails instead of hanging.
const BOUND: Duration = Duration::from_secs(10);

fn route(s: &str) -> Route {
    s.parse().unwrap()
}

#[test]
fn counts_follow_links_and_unlinks() {
    let linker = Linker::new();
    let a = linker.add_intent(route("T@a"), 1, Arc::new(Port)).unwrap();
    let b = linker.add_intent(route("T@b"), 1, Arc::new(Port)).unwrap();
    assert_eq!((linker.intent_count(), linker.interest_count()), (2, 0));
    assert_eq!(a.link_count(), 0);

    let all = linker
        .add_interest("T@*".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    let only_a = linker
        .add_interest("T@a".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    assert_eq!((linker.intent_count(), linker.interest_count()), (2, 2));
    assert_eq!(linker.link_count(), 3);
    assert_eq!((a.interest_count(), b.interest_count()), (2, 1));
    assert_eq!((all.intent_count(), only_a.intent_count()), (2, 1));
    assert_eq!(linker.intent_link_count(a.id()), 2);
    assert_eq!(linker.interest_link_count(all.id()), 2);
    assert_eq!(linker.interest_link_count(only_a.id()), 1);
    assert_eq!(
        all.feeders(),
        vec![(a.id(), route("T@a")), (b.id(), route("T@b"))]
    );
    assert_eq!(linker.routes_of(only_a.id()), vec![(a.id(), route("T@a"))]);
    assert_ne!(a.id(), b.id());
    assert_ne!(all.id().get(), only_a.id().get());
    assert_eq!(a.route(), &route("T@a"));
    assert_eq!(
        all.selector(),
        &"T@*".parse::<dndm_router::Selector>().unwrap()
    );

    drop(a);
    assert_eq!(linker.link_count(), 1);
    assert_eq!((all.intent_count(), only_a.intent_count()), (1, 0));
    assert_eq!(all.feeders(), vec![(b.id(), route("T@b"))]);
    assert!(linker.routes_of(only_a.id()).is_empty());

    let b_id = b.id();
    drop(all);
    assert_eq!(b.interest_count(), 0);
    assert_eq!(linker.intent_link_count(b_id), 0);
    assert_eq!(linker.link_count(), 0);
    assert_eq!((linker.intent_count(), linker.interest_count()), (1, 1));
}

/// Withdrawal by id reports whether the registration existed, unlinks it
/// at once and leaves its handle closed.
#[test]
fn withdraw_by_id() {
    let linker = Linker::new();
    let intent = linker.add_intent(route("T@a"), 1, Arc::new(Port)).unwrap();
    let interest = linker
        .add_interest("T@a".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    assert_eq!(linker.link_count(), 1);

    assert!(linker.withdraw_intent(intent.id()));
    assert!(intent.is_closed());
    assert_eq!(intent.link_count(), 0);
    assert_eq!(interest.intent_count(), 0);
    assert!(!linker.withdraw_intent(intent.id()), "already withdrawn");
    assert!(!linker.withdraw_intent(IntentId::from_raw(999)));

    assert!(!interest.is_closed());
    assert!(linker.withdraw_interest(interest.id()));
    assert!(interest.is_closed());
    assert!(!linker.withdraw_interest(interest.id()));
    assert_eq!((linker.intent_count(), linker.interest_count()), (0, 0));
    assert_eq!(linker.link_count(), 0);
    assert!(!linker.is_closed());
    linker.close();
    assert!(linker.is_closed());
}

/// Each handle keeps the latest `EVENT_QUEUE_CAPACITY` events and counts
/// the ones it dropped.
#[test]
fn the_event_queue_keeps_the_latest_and_counts_the_dropped() {
    let linker = Linker::new();
    let interest = linker
        .add_interest("T@*".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    let mut intents = Vec::new();
    for i in 0..EVENT_QUEUE_CAPACITY {
        intents.push(
            linker
                .add_intent(route(&format!("T@x{i}")), 1, Arc::new(Port))
                .unwrap(),
        );
    }
    assert_eq!(
        interest.events_missed(),
        0,
        "a full queue drops nothing yet"
    );
    intents.push(
        linker
            .add_intent(route("T@last"), 1, Arc::new(Port))
            .unwrap(),
    );
    intents.push(
        linker
            .add_intent(route("T@more"), 1, Arc::new(Port))
            .unwrap(),
    );
    assert_eq!(interest.events_missed(), 2);
    assert_eq!(interest.intent_count(), EVENT_QUEUE_CAPACITY + 2);

    // The two oldest (x0, x1) are gone; x2 comes first, `more` last.
    let mut routes = Vec::new();
    while let Some(e) = interest.try_event() {
        match e {
            LinkEvent::Linked { route, .. } => routes.push(route.to_string()),
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            routes.len() <= EVENT_QUEUE_CAPACITY,
            "more than the queue holds"
        );
    }
    assert_eq!(routes.len(), EVENT_QUEUE_CAPACITY);
    assert_eq!(routes.first().map(String::as_str), Some("T@x2"));
    assert_eq!(routes.last().map(String::as_str), Some("T@more"));
    assert_eq!(
        interest.events_missed(),
        2,
        "reading does not reset the count"
    );
}

#[test]
fn next_event_returns_a_queued_event_and_none_once_closed() {
    let linker = Linker::new();
    let intent = linker.add_intent(route("T@a"), 1, Arc::new(Port)).unwrap();
    let interest = linker
        .add_interest("T@a".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    // Checked first so that a linker that stopped linking fails here instead of waiting.
    assert_eq!(intent.link_count(), 1);
    assert!(matches!(
        intent.next_event(None),
        Some(LinkEvent::Linked { .. })
    ));
    assert!(matches!(
        interest.next_event(Some(Duration::ZERO)),
        Some(LinkEvent::Linked { .. })
    ));
    assert!(intent.next_event(Some(Duration::ZERO)).is_none());
    linker.close();
    assert!(intent.next_event(None).is_none(), "closed: no wait");
    assert!(interest.is_closed());
}

/// A wait whose condition already holds returns true at once; one that
/// cannot hold returns false when its time is up, without a link.
#[test]
fn waits_end_on_their_condition_or_their_time() {
    let linker = Linker::new();
    let intent = linker.add_intent(route("T@a"), 1, Arc::new(Port)).unwrap();
    assert!(intent.wait_links(|n| n == 0, Some(Duration::ZERO)));
    assert!(!intent.wait_for_interest(Some(Duration::ZERO)));

    let (done_tx, done_rx) = mpsc::channel();
    let waiting = linker.add_intent(route("T@b"), 1, Arc::new(Port)).unwrap();
    let waiter = thread::spawn(move || {
        let got = (
            waiting.wait_links(|n| n >= 5, Some(Duration::from_millis(20))),
            waiting.wait_for_interest(Some(Duration::from_millis(20))),
        );
        done_tx.send(got).unwrap();
    });
    assert_eq!(
        done_rx
            .recv_timeout(BOUND)
            .expect("a timed wait never ended"),
        (false, false)
    );
    waiter.join().unwrap();

    let _interest = linker
        .add_interest("T@a".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    assert!(intent.wait_for_interest(Some(Duration::ZERO)));
    // Checked first so that a linker that stopped linking fails here instead of waiting.
    assert_eq!(intent.link_count(), 1);
    assert!(intent.wait_links(|n| n == 1, None));
}

/// A waiter blocked on a link wakes when the link is made: the link is
/// only made after the waiter checked its condition once (`done` runs
/// under the handle's lock, which the link needs).
#[test]
fn a_blocked_wait_wakes_on_the_link() {
    let linker = Linker::new();
    let intent = linker.add_intent(route("T@a"), 1, Arc::new(Port)).unwrap();
    let (checked_tx, checked_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let mut first = true;
        let linked = intent.wait_links(
            |n| {
                if first {
                    first = false;
                    checked_tx.send(()).unwrap();
                }
                n > 0
            },
            Some(BOUND * 6),
        );
        done_tx.send(linked).unwrap();
        intent
    });
    checked_rx.recv_timeout(BOUND).unwrap();
    let _interest = linker
        .add_interest("T@a".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    assert!(done_rx.recv_timeout(BOUND).expect("the waiter never woke"));
    let intent = waiter.join().unwrap();
    assert_eq!(intent.link_count(), 1);
}

#[test]
fn pattern_limits_are_the_linkers_own() {
    let limits = PatternLimits::new().with_max_segments(2);
    let linker = Linker::with_pattern_limits(limits);
    assert_eq!(linker.pattern_limits(), limits);
    assert_eq!(Linker::new().pattern_limits(), PatternLimits::new());
    let err = linker
        .add_interest("T@a.b.c".parse().unwrap(), 1, Arc::new(Port))
        .unwrap_err();
    assert!(matches!(err, LinkError::Pattern(_)), "{err:?}");
    linker
        .add_interest("T@a.b".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
}

/// A channel link attaches the sender to the receiver, and unlinking
/// detaches it: later sends reach nobody.
#[test]
fn channel_ports_attach_and_detach() {
    let linker = Linker::new();
    let rx = Receiver::<u32>::new(Config::new(8)).unwrap();
    let tx = Sender::<u32>::new();
    let port = Arc::new(ChannelInterest::new(rx.inlet()));
    let interest = linker
        .add_interest("T@a".parse().unwrap(), 1, port)
        .unwrap();
    let _intent = linker
        .add_intent(
            route("T@a"),
            1,
            Arc::new(ChannelIntent::new(tx.downgrade())),
        )
        .unwrap();
    tx.send(1).unwrap();
    assert_eq!(rx.drain().collect::<Vec<_>>(), [1]);

    drop(interest);
    let _ = tx.send(2);
    assert_eq!(rx.drain().count(), 0, "an unlinked sender still delivers");
}

#[test]
fn debug_text_shows_counts() {
    let linker = Linker::new();
    let intent = linker.add_intent(route("T@a"), 1, Arc::new(Port)).unwrap();
    let interest = linker
        .add_interest("T@*".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    let text = format!("{linker:?}");
    assert!(text.starts_with("Linker"), "{text}");
    assert!(text.contains("intents: 1"), "{text}");
    assert!(text.contains("links: 1"), "{text}");
    assert!(text.contains("closed: false"), "{text}");
    let text = format!("{intent:?}");
    assert!(text.starts_with("Intent"), "{text}");
    assert!(text.contains("T@a") && text.contains("links: 1"), "{text}");
    let text = format!("{interest:?}");
    assert!(text.starts_with("Interest"), "{text}");
    assert!(text.contains("links: 1"), "{text}");
}
