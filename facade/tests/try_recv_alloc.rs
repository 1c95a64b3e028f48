//! `Subscriber::try_recv` allocates nothing when nothing is queued: a poll
//! loop costs no heap traffic. This binary installs a global allocator that
//! counts the allocations of the calling thread.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use dndm::prelude::*;
use rkyv::{Archive, Deserialize, Serialize};

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: forwards to the system allocator and only counts calls (in a
// const-initialised thread local, which never allocates).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "test.Num")]
struct Num {
    v: u64,
}

#[test]
fn an_empty_try_recv_allocates_nothing() {
    // The counter sees this thread's allocations.
    let before = allocations();
    drop(std::hint::black_box(String::from("counted")));
    assert!(allocations() > before);

    let node = Node::new("t");
    let sub = node.subscribe::<Num>("a").unwrap();
    // Nobody linked yet.
    let before = allocations();
    for _ in 0..1000 {
        assert!(matches!(
            sub.try_recv(),
            Err(dndm::TryRecvError::Empty { .. })
        ));
    }
    assert_eq!(allocations(), before, "empty polls with no publisher");

    let publ = node.publish::<Num>("a").unwrap();
    publ.send(Num { v: 1 }).unwrap();
    assert_eq!(sub.try_recv().unwrap().v, 1);
    // Linked, lane open, drained.
    let before = allocations();
    for _ in 0..1000 {
        let err = sub.try_recv().unwrap_err();
        assert!(matches!(err, dndm::TryRecvError::Empty { .. }));
    }
    assert_eq!(allocations(), before, "empty polls of a drained lane");
    drop(publ);
}
