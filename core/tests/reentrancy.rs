//! User code run inside a send (the iterator of `send_iter`, `T::clone`
//! during fan-out, `T::drop` of an evicted message) can never corrupt a lane:
//! re-entering the same sender handle panics with a clear message, and a
//! panic in user code leaves every lane consistent.
#![allow(
    clippy::disallowed_types,
    reason = "tests observe the channel from outside with std types"
)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use dndm_core::{Config, Policy, Receiver, Sender, TryRecvError, bounded, channel};

thread_local! {
    /// Per value: how many instances were made and how many dropped, on this
    /// test's thread. Plain integers only: a value dropped twice by a corrupt
    /// lane must not corrupt the heap before the test can report it.
    static COUNTS: RefCell<BTreeMap<u32, (u32, u32)>> = const { RefCell::new(BTreeMap::new()) };
}

fn count(k: u32, made: u32, dropped: u32) {
    COUNTS.with(|c| {
        let mut c = c.borrow_mut();
        let e = c.entry(k).or_default();
        e.0 += made;
        e.1 += dropped;
    });
}

/// No instance was dropped more often than it was made.
fn none_twice() -> bool {
    COUNTS.with(|c| c.borrow().values().all(|&(made, dropped)| dropped <= made))
}

/// Every instance made was dropped exactly once.
fn balanced() -> bool {
    COUNTS.with(|c| c.borrow().values().all(|&(made, dropped)| dropped == made))
}

fn all_drops() -> BTreeMap<u32, (u32, u32)> {
    COUNTS.with(|c| c.borrow().clone())
}

struct Tracked {
    k: u32,
    /// `clone` panics when this is set.
    bad_clone: bool,
}

impl Tracked {
    fn new(k: u32) -> Self {
        count(k, 1, 0);
        Self {
            k,
            bad_clone: false,
        }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        assert!(!self.bad_clone, "clone of {} refused", self.k);
        Self::new(self.k)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        count(self.k, 0, 1);
    }
}

fn ks(rx: &Receiver<Tracked>) -> Vec<u32> {
    rx.drain().map(|t| t.k).collect()
}

/// The reported case: a `send` on the same handle from inside the iterator
/// of `send_iter`, with the receiver taking messages in between. Before the
/// fix the lane's tail moved behind its head: value 2 was dropped three
/// times, value 100 twice, and dropping the receiver looped ~2^64 times.
#[test]
fn send_from_inside_send_iter_panics_and_corrupts_nothing() {
    let (tx, rx) = channel::<Tracked>(Config::new(2)).unwrap();
    let mut seen = Vec::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut step = 0;
        let items = std::iter::from_fn(|| {
            step += 1;
            if step > 1 {
                return None;
            }
            for k in 0..3 {
                let _ = tx.send(Tracked::new(k));
                if let Ok(t) = rx.try_recv() {
                    seen.push(t.k);
                }
            }
            Some(Tracked::new(100))
        });
        tx.send_iter(items)
    }));
    for _ in 0..4 {
        if let Ok(t) = rx.try_recv() {
            seen.push(t.k);
        }
    }
    if !none_twice() {
        // The lane is corrupt: dropping either end would touch freed slots
        // again (or loop for ever), so leak both and report.
        std::mem::forget(rx);
        std::mem::forget(tx);
        panic!("values dropped more than once: {:?}", all_drops());
    }
    let payload = result.expect_err("re-entrant send must panic");
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(message.contains("re-entrant"), "{message}");
    // Nothing was queued by the aborted calls, and the handle still works.
    assert!(seen.is_empty(), "{seen:?}");
    tx.send(Tracked::new(7)).unwrap();
    assert_eq!(ks(&rx), [7]);
    drop((tx, rx));
    assert!(balanced(), "{:?}", all_drops());
}

/// `T::clone` during fan-out sends on the same handle.
#[test]
fn send_from_inside_clone_panics() {
    thread_local! {
        static TX: RefCell<Option<Sender<Reenter>>> = const { RefCell::new(None) };
    }
    struct Reenter(u32);
    impl Clone for Reenter {
        fn clone(&self) -> Self {
            TX.with(|tx| {
                if let Some(tx) = &*tx.borrow()
                    && self.0 < 100
                {
                    let _ = tx.try_send(Reenter(self.0 + 100));
                }
            });
            Reenter(self.0)
        }
    }
    let (tx, a) = bounded::<Reenter>(4).unwrap();
    let b = tx.subscribe(Config::new(4)).unwrap();
    TX.with(|t| *t.borrow_mut() = Some(tx));
    let send = |f: &dyn Fn(&Sender<Reenter>)| {
        catch_unwind(AssertUnwindSafe(|| {
            TX.with(|t| f(t.borrow().as_ref().unwrap()));
        }))
    };
    assert!(send(&|tx| drop(tx.send(Reenter(1)))).is_err());
    assert!(send(&|tx| drop(tx.try_send(Reenter(2)))).is_err());
    assert!(send(&|tx| drop(tx.send_timeout(Reenter(3), std::time::Duration::ZERO))).is_err());
    assert!(send(&|tx| drop(tx.send_iter([Reenter(4), Reenter(5)]))).is_err());
    let tx = TX.with(|t| t.borrow_mut().take()).unwrap();
    // Each lane holds whole messages only: the re-entrant ones never landed.
    for rx in [&a, &b] {
        assert!(rx.drain().all(|m| m.0 < 100));
    }
    tx.send(Reenter(9)).ok();
    // `clone` no longer finds the sender, so the last send went through.
    assert_eq!(a.drain().map(|m| m.0).collect::<Vec<_>>(), [9]);
    assert_eq!(b.drain().map(|m| m.0).collect::<Vec<_>>(), [9]);
}

/// A panic in the iterator mid-batch: what was taken before it is queued,
/// nothing is lost twice, and the handle keeps working.
#[test]
fn panic_in_send_iter_leaves_the_lane_consistent() {
    for policy in [Policy::BLOCK, Policy::Reject, Policy::DropOldest] {
        let (tx, rx) = channel::<Tracked>(Config::new(8).policy(policy)).unwrap();
        let mut k = 0;
        let items = std::iter::from_fn(|| {
            k += 1;
            assert!(k < 4, "iterator failed");
            Some(Tracked::new(k))
        });
        assert!(catch_unwind(AssertUnwindSafe(|| tx.send_iter(items))).is_err());
        assert_eq!(ks(&rx), [1, 2, 3], "{policy:?}");
        tx.send(Tracked::new(10)).unwrap();
        assert_eq!(ks(&rx), [10], "{policy:?}");
        assert_eq!(rx.try_recv().err(), Some(TryRecvError::Empty));
    }
    assert!(balanced(), "{:?}", all_drops());
}

/// A panic in `T::clone` while fanning out to several receivers, in both the
/// batched (`send_iter`) and the per-message path.
#[test]
fn panic_in_clone_during_fan_out_leaves_every_lane_consistent() {
    let (tx, a) = bounded::<Tracked>(64).unwrap();
    let b = tx.subscribe(Config::new(64)).unwrap();
    let mut bad = Tracked::new(3);
    bad.bad_clone = true;
    let batch = vec![Tracked::new(1), Tracked::new(2), bad];
    assert!(catch_unwind(AssertUnwindSafe(|| tx.send_iter(batch))).is_err());
    let mut bad = Tracked::new(4);
    bad.bad_clone = true;
    assert!(catch_unwind(AssertUnwindSafe(|| tx.send(bad))).is_err());
    // Whatever landed is whole and in order; the handle keeps working.
    for rx in [&a, &b] {
        let got = ks(rx);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    }
    tx.send(Tracked::new(20)).unwrap();
    assert_eq!(ks(&a), [20]);
    assert_eq!(ks(&b), [20]);
    drop((tx, a, b));
    assert!(balanced(), "{:?}", all_drops());
}

/// `T::drop` of a message the receiver hands out may use the receiver
/// again (nothing of the receiver is borrowed while user code runs).
#[test]
fn receiver_can_be_used_from_a_dropped_message() {
    thread_local! {
        static RX: RefCell<Option<Receiver<Nested>>> = const { RefCell::new(None) };
        static GOT: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    }
    #[derive(Clone)]
    struct Nested(u32);
    impl Drop for Nested {
        fn drop(&mut self) {
            RX.with(|rx| {
                if let Ok(rx) = rx.try_borrow()
                    && let Some(rx) = &*rx
                {
                    let mut buf = Vec::new();
                    if let Ok(m) = rx.try_recv() {
                        buf.push(m);
                    }
                    let _ = rx.try_recv_batch(&mut buf, 2);
                    GOT.with(|g| g.borrow_mut().extend(buf.iter().map(|m| m.0)));
                    // `buf` is dropped here: nested drops see the cell taken.
                }
            });
        }
    }
    let (tx, rx) = bounded::<Nested>(8).unwrap();
    for k in 0..6 {
        tx.send(Nested(k)).unwrap();
    }
    RX.with(|r| *r.borrow_mut() = Some(rx));
    let first = RX.with(|r| r.borrow().as_ref().unwrap().try_recv().unwrap());
    assert_eq!(first.0, 0);
    drop(first);
    let rx = RX.with(|r| r.borrow_mut().take()).unwrap();
    let mut got = GOT.with(|g| g.take());
    got.extend(rx.drain().map(|m| m.0));
    got.sort_unstable();
    assert_eq!(got, [1, 2, 3, 4, 5]);
}

/// A clone of the handle has lanes of its own: sending on it from
/// `T::clone` is fine, and both sends arrive whole.
#[test]
fn a_clone_of_the_sender_may_send_from_inside_clone() {
    thread_local! {
        static OTHER: RefCell<Option<Sender<Echo>>> = const { RefCell::new(None) };
    }
    struct Echo(u32);
    impl Clone for Echo {
        fn clone(&self) -> Self {
            OTHER.with(|o| {
                if let Some(tx) = &*o.borrow()
                    && self.0 < 100
                {
                    tx.send(Echo(self.0 + 100)).unwrap();
                }
            });
            Echo(self.0)
        }
    }
    let (tx, a) = bounded::<Echo>(8).unwrap();
    let b = tx.subscribe(Config::new(8)).unwrap();
    OTHER.with(|o| *o.borrow_mut() = Some(tx.clone()));
    tx.send(Echo(1)).unwrap();
    OTHER.with(|o| o.borrow_mut().take());
    for rx in [&a, &b] {
        let mut got: Vec<u32> = rx.drain().map(|m| m.0).collect();
        got.sort_unstable();
        assert_eq!(got, [1, 101]);
    }
}
