//! Model-checked races of scopes (run with `--cfg dndm_loom`, see
//! STYLE.md): a scope closing while a handle or a child is being created
//! in it, and state writes racing observers and snapshots.
#![cfg(dndm_loom)]
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::sync::Arc;

use dndm_codec::Message;
use dndm_core::sync::atomic::{AtomicUsize, Ordering};
use dndm_core::sync::thread;
use dndm_scope::{HandleInfo, HandleKind, Owned, Scope};
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "loom.Count")]
struct Count {
    n: u64,
}

/// A handle that counts how often it was closed.
struct Handle {
    closes: AtomicUsize,
}

impl Owned for Handle {
    fn close(&self) {
        self.closes.fetch_add(1, Ordering::AcqRel);
    }

    fn info(&self) -> HandleInfo {
        HandleInfo::new(HandleKind::Publisher, "loom".into(), 0)
    }
}

#[test]
fn a_handle_created_during_close_is_closed_before_close_returns_or_refused() {
    loom::model(|| {
        let scope = Scope::root("s").unwrap();
        let creator = scope.clone();
        let t = thread::spawn(move || {
            let ticket = creator.reserve().ok()?;
            // Registration with a linker would happen here.
            let handle = Arc::new(Handle {
                closes: AtomicUsize::new(0),
            });
            let adopted = ticket.adopt(Arc::clone(&handle) as Arc<dyn Owned>);
            Some((handle, adopted))
        });
        scope.close();
        // Close returned: a handle adopted before it is closed already, one
        // adopted after it was closed by `adopt`; either way exactly once.
        if let Some((handle, adopted)) = t.join().unwrap() {
            assert_eq!(handle.closes.load(Ordering::Acquire), 1);
            drop(adopted);
        }
        assert!(scope.info().handles.is_empty());
    });
}

#[test]
fn a_child_created_during_close_is_closed_or_refused() {
    loom::model(|| {
        let scope = Scope::root("s").unwrap();
        let parent = scope.clone();
        let t = thread::spawn(move || parent.child("c").ok());
        scope.close();
        if let Some(child) = t.join().unwrap() {
            assert!(child.is_closed());
        }
        assert!(scope.info().children.is_empty());
    });
}

#[test]
fn observers_see_writes_in_order_and_snapshots_see_whole_batches() {
    loom::model(|| {
        let scope = Scope::root("s").unwrap();
        let state = scope.state();
        let a = state.key("a", Count { n: 0 }).unwrap();
        let b = state.key("b", Count { n: 0 }).unwrap();
        let obs = a.observe().unwrap();
        let writer = {
            let (state, a, b) = (state.clone(), a.clone(), b.clone());
            thread::spawn(move || {
                state
                    .batch()
                    .set(&a, Count { n: 1 })
                    .set(&b, Count { n: 1 })
                    .commit()
                    .unwrap();
                a.set(Count { n: 2 }).unwrap();
            })
        };
        let bytes = state.snapshot().unwrap();
        writer.join().unwrap();
        // The snapshot is one of the three states between commits.
        let probe = Scope::root("p").unwrap();
        let (pa, pb) = (
            probe.state().key("a", Count { n: 9 }).unwrap(),
            probe.state().key("b", Count { n: 9 }).unwrap(),
        );
        probe.state().restore(&bytes).unwrap();
        let seen = (pa.get().unwrap().n, pb.get().unwrap().n);
        assert!(matches!(seen, (0, 0) | (1, 1) | (2, 1)), "{seen:?}");
        // The observer got both changes of `a`, in order.
        assert_eq!(obs.try_recv().unwrap().value.n, 1);
        assert_eq!(obs.try_recv().unwrap().value.n, 2);
        assert!(obs.try_recv().is_err());
    });
}

#[test]
fn a_dropped_observer_gets_nothing_and_a_write_never_blocks_on_it() {
    loom::model(|| {
        let scope = Scope::root("s").unwrap();
        let a = scope.state().key("a", Count { n: 0 }).unwrap();
        let obs = a.observe().unwrap();
        let w = a.clone();
        let writer = thread::spawn(move || w.set(Count { n: 1 }).unwrap());
        drop(obs);
        writer.join().unwrap();
        assert_eq!(scope.info().state[0].observers, 0);
        let r = a.reader();
        assert_eq!(r.get().unwrap().n, 1);
        scope.close();
        assert!(r.get().is_err());
    });
}

#[test]
fn an_observer_waiting_for_a_change_is_woken_by_it() {
    loom::model(|| {
        let scope = Scope::root("s").unwrap();
        let a = scope.state().key("a", Count { n: 0 }).unwrap();
        let obs = a.observe().unwrap();
        let waiter = thread::spawn(move || {
            obs.recv_timeout(std::time::Duration::from_secs(3600))
                .unwrap()
                .value
                .n
        });
        a.set(Count { n: 1 }).unwrap();
        assert_eq!(waiter.join().unwrap(), 1);
    });
}
