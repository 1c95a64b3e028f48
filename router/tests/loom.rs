//! Model-checked races of the linker (run with `--cfg dndm_loom`, see
//! STYLE.md). Each model checks the invariants the Go original broke: a link
//! exists as soon as `add_*` returns, a second publisher is never left
//! without its notification, and removal never leaks a link.
#![cfg(dndm_loom)]
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::sync::Arc;

use dndm_core::sync::thread;
use dndm_core::{Config, Receiver, Sender};
use dndm_router::{ChannelIntent, ChannelInterest, Linker, Route, Selector};

fn route() -> Route {
    "T@a.b".parse().unwrap()
}

fn selector() -> Selector {
    "T@a.*".parse().unwrap()
}

#[test]
fn concurrent_add_links_exactly_once() {
    loom::model(|| {
        let linker = Linker::new();
        let l2 = linker.clone();
        let t = thread::spawn(move || {
            let tx = Sender::<u8>::new();
            let p = l2
                .add_intent(route(), 1, Arc::new(ChannelIntent::new(tx.downgrade())))
                .unwrap();
            (tx, p)
        });
        let rx = Receiver::<u8>::new(Config::new(2)).unwrap();
        let s = linker
            .add_interest(selector(), 1, Arc::new(ChannelInterest::new(rx.inlet())))
            .unwrap();
        let (tx, p) = t.join().unwrap();
        // Whichever came second linked synchronously: both see the link.
        assert_eq!(p.interest_count(), 1);
        assert_eq!(s.intent_count(), 1);
        assert_eq!(tx.receiver_count(), 1);
        assert_eq!(linker.link_count(), 1);
    });
}

#[test]
fn second_publisher_is_notified() {
    loom::model(|| {
        let linker = Linker::new();
        let rx = Receiver::<u8>::new(Config::new(2)).unwrap();
        let _s = linker
            .add_interest(selector(), 1, Arc::new(ChannelInterest::new(rx.inlet())))
            .unwrap();
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let l = linker.clone();
                thread::spawn(move || {
                    let tx = Sender::<u8>::new();
                    let p = l
                        .add_intent(route(), 1, Arc::new(ChannelIntent::new(tx.downgrade())))
                        .unwrap();
                    // No lost notification: the waiter returns at once.
                    assert!(p.wait_for_interest(None));
                    assert!(p.try_event().is_some());
                    (tx, p)
                })
            })
            .collect();
        for h in handles {
            let (tx, p) = h.join().unwrap();
            assert_eq!(p.interest_count(), 1);
            assert_eq!(tx.receiver_count(), 1);
        }
    });
}

#[test]
fn concurrent_removal_leaks_no_link() {
    loom::model(|| {
        let linker = Linker::new();
        let rx = Receiver::<u8>::new(Config::new(2)).unwrap();
        let s = linker
            .add_interest(selector(), 1, Arc::new(ChannelInterest::new(rx.inlet())))
            .unwrap();
        let tx = Sender::<u8>::new();
        let weak = tx.downgrade();
        let p = linker
            .add_intent(route(), 1, Arc::new(ChannelIntent::new(tx.downgrade())))
            .unwrap();
        let t = thread::spawn(move || drop(s));
        drop(p);
        t.join().unwrap();
        assert_eq!(linker.link_count(), 0);
        assert_eq!(weak.receiver_count(), 0);
        drop(tx);
        drop(rx);
    });
}

#[test]
fn add_racing_close_leaves_nothing_behind() {
    loom::model(|| {
        let linker = Linker::new();
        let l2 = linker.clone();
        let t = thread::spawn(move || {
            let tx = Sender::<u8>::new();
            let r = l2.add_intent(route(), 1, Arc::new(ChannelIntent::new(tx.downgrade())));
            (tx, r.ok())
        });
        let rx = Receiver::<u8>::new(Config::new(2)).unwrap();
        let s = linker.add_interest(selector(), 1, Arc::new(ChannelInterest::new(rx.inlet())));
        linker.close();
        let (tx, p) = t.join().unwrap();
        assert_eq!(linker.link_count(), 0);
        assert_eq!(tx.receiver_count(), 0);
        if let Some(p) = &p {
            assert!(p.is_closed());
        }
        drop((p, s));
    });
}
