//! Nothing grows without bound: live heap bytes return to where they
//! started after a million attach/detach cycles with traffic.
//!
//! This binary installs a counting global allocator, so it holds one test.
#![allow(
    clippy::disallowed_types,
    reason = "tests observe the channel from outside with std types"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use dndm_core::{Config, Policy, Receiver, Sender};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_million_attach_detach_cycles_leak_nothing() {
    let policies = [Policy::BLOCK, Policy::DropOldest, Policy::Reject];
    // Warm up lazily initialised runtime state before taking the baseline.
    cycles(&policies, 1_000);
    let before = LIVE.load(Ordering::Relaxed);
    cycles(&policies, 1_000_000);
    let after = LIVE.load(Ordering::Relaxed);
    assert_eq!(after, before, "live heap grew by {} bytes", after - before);
}

fn cycles(policies: &[Policy; 3], n: usize) {
    let tx = Sender::<Box<u64>>::new();
    let keep = Receiver::<Box<u64>>::new(Config::new(8)).expect("valid config");
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
