//! Nothing grows without bound: live heap bytes stay within what the
//! configured capacities explain while a million attach/detach cycles with
//! traffic run, and return to where they started afterwards.
//!
//! This binary installs a counting global allocator, so it holds one test.
#![allow(
    clippy::disallowed_types,
    reason = "tests observe the channel from outside with std types"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use dndm_core::{Config, Policy, Receiver, Sender};

struct Counting;

thread_local! {
    /// Heap bytes this thread allocated and not yet freed (the test's work
    /// stays on its thread; the harness's threads allocate on their own).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The highest `LIVE` since the last [`reset_peak`].
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as the new block arriving before the old one leaves,
        // which is the most a reallocation can hold at once.
        grow(new_size);
        shrink(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn grow(bytes: usize) {
    let _ = LIVE.try_with(|l| {
        l.set(l.get() + bytes as isize);
        let _ = PEAK.try_with(|p| p.set(p.get().max(l.get())));
    });
}

fn shrink(bytes: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get() - bytes as isize));
}

fn peak() -> isize {
    PEAK.with(Cell::get)
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

fn reset_peak() {
    PEAK.with(|p| p.set(live()));
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The receivers and lanes alive at once in [`cycles`]: the kept receiver
/// with one lane per sender handle (the sender and, now and then, a clone),
/// and one short-lived receiver with the sender's lane.
const RECEIVERS: usize = 2;
const LANES: usize = 3;
/// The largest capacity [`cycles`] configures.
const MAX_CAPACITY: usize = 8;
/// Fixed bookkeeping of one receiver or one lane (shared state, counters,
/// wait slots, cache-line padding), generously: measured well below this.
const OVERHEAD: usize = 4096;

/// The most the channel may hold at once in [`cycles`]: per lane a ring of
/// at most twice its capacity (rounded up to a power of two) of slots with a
/// stamp beside each message, plus one boxed message per slot.
fn bound() -> usize {
    let slot = size_of::<Box<u64>>() + 2 * size_of::<usize>();
    let per_lane = 2 * MAX_CAPACITY * (slot + size_of::<u64>());
    (RECEIVERS + LANES) * OVERHEAD + LANES * per_lane
}

#[test]
fn a_million_attach_detach_cycles_leak_nothing() {
    let policies = [Policy::BLOCK, Policy::DropOldest, Policy::Reject];
    // Warm up lazily initialised runtime state before taking the baseline.
    cycles(&policies, 1_000);
    let before = live();
    reset_peak();
    cycles(&policies, 1_000_000);
    let peak = peak() - before;
    let after = live();
    // During the run: a leak that is only freed when the channel goes away
    // would grow with the cycles, far beyond what the capacities explain.
    assert!(
        peak <= bound() as isize,
        "live heap peaked {peak} bytes above the start; capacities explain {}",
        bound()
    );
    // After the run: everything was given back.
    assert_eq!(after, before, "live heap grew by {} bytes", after - before);
}

fn cycles(policies: &[Policy; 3], n: usize) {
    let tx = Sender::<Box<u64>>::new();
    let keep = Receiver::<Box<u64>>::new(Config::new(MAX_CAPACITY)).expect("valid config");
    let keep_inlet = keep.inlet();
    tx.attach(&keep_inlet).expect("both ends alive");
    for i in 0..n {
        let rx =
            Receiver::new(Config::new(1 + i % 4).policy(policies[i % 3])).expect("valid config");
        let inlet = rx.inlet();
        tx.attach(&inlet).expect("both ends alive");
        let _ = tx.try_send(Box::new(i as u64));
        let _ = tx.try_send(Box::new(i as u64));
        if i % 2 == 0 {
            let _ = rx.try_recv();
            tx.detach(&inlet);
        }
        // Odd cycles: the receiver goes away while still attached.
        drop(rx);
        drop(inlet);
        while keep.try_recv().is_ok() {}
        if i % 1000 == 0 {
            // A sender clone that comes and goes opens and retires lanes.
            let extra = tx.clone();
            let _ = extra.try_send(Box::new(0));
        }
    }
    while keep.try_recv().is_ok() {}
    drop(tx);
    drop(keep_inlet);
    drop(keep);
}
