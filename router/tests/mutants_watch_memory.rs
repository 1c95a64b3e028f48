//! A dropped registration watch lets go of everything it held: the linker
//! stops recording changes for it, so watching and unwatching in a loop
//! leaves the live heap where it was.
//!
//! Written against mutants of `router/src/watch.rs` and
//! `router/src/linker.rs` (a watch that stays registered after its drop);
//! see `docs/mutants.md`. This binary installs a counting global
//! allocator, so it holds one test.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use dndm_router::Linker;

mod ports;
use ports::Port;

struct Counting;

thread_local! {
    /// Heap bytes this thread allocated and not yet freed.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn add(bytes: isize) {
    let _ = LIVE.try_with(|l| l.set(l.get() + bytes));
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

#[test]
fn watching_and_unwatching_in_a_loop_keeps_the_heap_flat() {
    let linker = Linker::new();
    let _intent = linker
        .add_intent("T@a".parse().unwrap(), 1, Arc::new(Port))
        .unwrap();
    // Warm up: the linker's list of watches gets its allocation.
    drop(linker.watch());
    let before = live();
    for _ in 0..100 {
        let watch = linker.watch();
        assert_eq!(watch.pending(), 1);
        drop(watch);
    }
    assert_eq!(
        live() - before,
        0,
        "dropped watches are still held by the linker"
    );
}
