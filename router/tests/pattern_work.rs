//! Matching work is bounded whatever the pattern (issue 10, finding 2).
//!
//! `**.*.**.*…` against `a.a.a…` can match in exponentially many ways; a
//! matcher that enumerates them took seconds and gigabytes at 30 segments.
//! Each lookup here runs on a helper thread under a generous watchdog, so a
//! regression fails the test instead of hanging it.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use dndm_core::{Config, Receiver, Sender};
use dndm_router::{
    ChannelIntent, ChannelInterest, Complexity, LinkError, Linker, Pattern, PatternError,
    PatternLimits, Route, RouteIndex, Selector, SelectorIndex,
};

/// Far beyond what a bounded matcher needs (microseconds), far below what
/// the exponential one took (minutes at 32 segments).
const WATCHDOG: Duration = Duration::from_secs(30);

/// `T@**.*.**.*…` with `pairs` pairs.
fn worst(pairs: usize) -> Pattern {
    Pattern::new("T", &vec!["**.*"; pairs].join(".")).unwrap()
}

fn a_route(segments: usize) -> Route {
    Route::new("T", &vec!["a"; segments].join(".")).unwrap()
}

/// Runs `f` on a helper thread; fails if it does not finish within the
/// watchdog (the thread is left behind; the test process ends anyway).
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(v) => v,
        Err(_) => panic!("{what}: no answer within {WATCHDOG:?}; matching work is unbounded"),
    }
}

#[test]
fn worst_pattern_at_32_segments_against_both_indexes() {
    let pattern = worst(16);
    assert_eq!(pattern.segments().len(), 32);

    let found = bounded("SelectorIndex::matching", {
        let pattern = pattern.clone();
        move || {
            let mut index = SelectorIndex::new();
            index.insert(&Selector::Pattern(pattern), 1u32);
            index.insert(&Selector::Pattern(worst(15)), 2);
            (
                index.matching(&a_route(32)),
                index.matching(&a_route(16)),
                index.matching(&a_route(15)),
            )
        }
    });
    assert_eq!(found, (vec![1, 2], vec![1, 2], vec![2]));

    let found = bounded("RouteIndex::matching", move || {
        let mut index = RouteIndex::new();
        for n in 1..=32 {
            index.insert(&a_route(n), n);
        }
        index.matching(&Selector::Pattern(pattern))
    });
    assert_eq!(found, (16..=32).collect::<Vec<_>>());
}

#[test]
fn linker_links_the_worst_pattern_when_limits_allow_it() {
    let linked = bounded("Linker::add_interest", || {
        let linker = Linker::with_pattern_limits(PatternLimits::unlimited());
        let tx = Sender::<u8>::new();
        let intent = linker
            .add_intent(a_route(32), 1, Arc::new(ChannelIntent::new(tx.downgrade())))
            .unwrap();
        let rx = Receiver::<u8>::new(Config::new(4)).unwrap();
        let interest = linker
            .add_interest(
                Selector::Pattern(worst(16)),
                1,
                Arc::new(ChannelInterest::new(rx.inlet())),
            )
            .unwrap();
        (intent.interest_count(), interest.intent_count())
    });
    assert_eq!(linked, (1, 1));
}

#[test]
fn default_limits_refuse_the_worst_pattern_with_a_typed_error() {
    let linker = Linker::new();
    let rx = Receiver::<u8>::new(Config::new(4)).unwrap();
    let err = linker
        .add_interest(
            Selector::Pattern(worst(16)),
            1,
            Arc::new(ChannelInterest::new(rx.inlet())),
        )
        .unwrap_err();
    let LinkError::Pattern(PatternError::TooComplex {
        input,
        what,
        actual,
        max,
    }) = &err
    else {
        panic!("expected a pattern complexity error, got {err}");
    };
    assert_eq!(input, &worst(16).to_string());
    assert_eq!(*what, Complexity::AnySegments);
    assert_eq!(*actual, 16);
    assert_eq!(*max, PatternLimits::DEFAULT_MAX_ANY);
    assert!(err.to_string().contains(&worst(16).to_string()), "{err}");
    assert_eq!(linker.interest_count(), 0);
}
