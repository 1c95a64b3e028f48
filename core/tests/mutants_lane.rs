//! Tests written against mutants of `lane.rs` that the other suites let
//! survive (see docs/mutants.md). Lanes are private: every test drives them
//! through senders and receivers and checks what users see (deliveries,
//! counters, drops).
#![allow(
    clippy::disallowed_types,
    reason = "tests observe the channel from outside with std types"
)]

use std::cell::{Cell, RefCell};

use dndm_core::{Config, Policy, Receiver, Sender};

thread_local! {
    /// Instances of `Tracked` made and dropped on this test's thread.
    static MADE: Cell<usize> = const { Cell::new(0) };
    static DROPPED: Cell<usize> = const { Cell::new(0) };
    /// A receiver that the next `Tracked::clone` drops.
    static VICTIM: RefCell<Option<Receiver<Tracked>>> = const { RefCell::new(None) };
}

/// A message that counts its instances; cloning it drops the receiver in
/// `VICTIM`, if any.
#[derive(Debug)]
struct Tracked(u32);

impl Tracked {
    fn new(v: u32) -> Self {
        MADE.with(|m| m.set(m.get() + 1));
        Self(v)
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        drop(VICTIM.with(|v| v.borrow_mut().take()));
        Self::new(self.0)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        DROPPED.with(|d| d.set(d.get() + 1));
    }
}

fn live() -> usize {
    MADE.with(Cell::get) - DROPPED.with(Cell::get)
}

/// A receiver dropped while a fan-out send is under way (here from
/// `T::clone`) has already drained its lanes; the send may still queue the
/// message in its lane. Nobody will take it: the lane itself must drop it
/// when the sender lets the lane go.
#[test]
fn a_message_queued_after_its_receiver_left_is_dropped_with_the_lane() {
    for policy in [Policy::BLOCK, Policy::Reject, Policy::DropOldest] {
        let before = live();
        let tx = Sender::<Tracked>::new();
        let kept = tx.subscribe(Config::new(4).policy(policy)).unwrap();
        // The last receiver attached is the one a fan-out reaches last.
        let leaving = tx.subscribe(Config::new(4).policy(policy)).unwrap();
        VICTIM.with(|v| *v.borrow_mut() = Some(leaving));
        tx.send(Tracked::new(1)).unwrap();
        assert!(VICTIM.with(|v| v.borrow().is_none()), "clone ran");
        assert_eq!(kept.try_recv().map(|t| t.0), Ok(1));
        // One message in the left receiver's lane, held by the sender.
        assert_eq!(live(), before + 1, "{policy:?}");
        // The next send lets that lane go.
        tx.send(Tracked::new(2)).unwrap();
        assert_eq!(kept.try_recv().map(|t| t.0), Ok(2));
        assert_eq!(live(), before, "{policy:?}: the lane leaked its message");
        drop(tx);
        drop(kept);
        assert_eq!(live(), before);
    }
}

/// A lane is retired once its sender is gone and it is empty, not before:
/// its last messages still arrive, then it is counted out and its tag (only
/// a tag that was set) is reported.
#[test]
fn a_lane_retires_only_when_its_sender_is_gone_and_it_is_empty() {
    let rx = Receiver::<u32>::new(Config::new(8)).unwrap();
    let inlet = rx.inlet();
    let (tagged, plain) = (Sender::new(), Sender::new());
    tagged.set_tag(7);
    tagged.attach(&inlet).unwrap();
    plain.attach(&inlet).unwrap();
    tagged.send_iter([1, 2, 3, 4]).unwrap();
    plain.send(10).unwrap();
    drop(inlet);
    drop(tagged);
    drop(plain);
    assert_eq!(rx.stats().lanes, 2);
    let mut got: Vec<u32> = Vec::new();
    // Each receive looks past the empty, finished lane of `plain` once it
    // is drained, which retires it while `tagged`'s lane still holds
    // messages.
    while let Ok(v) = rx.try_recv() {
        got.push(v);
    }
    got.sort_unstable();
    assert_eq!(got, [1, 2, 3, 4, 10]);
    assert_eq!(rx.stats().lanes, 0, "both finished lanes retired");
    let mut tags = Vec::new();
    assert_eq!(rx.take_retired_tags(&mut tags), 1);
    assert_eq!(tags, [7]);
}
