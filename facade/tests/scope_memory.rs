//! No growth: 100,000 cycles of creating a scope with a child, handles,
//! traffic, state and an observer, then closing it. Live heap bytes are
//! sampled during the run; after a warm-up they stay flat.
//!
//! This binary installs a counting global allocator and holds one test, so
//! nothing else allocates while it measures.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
#![allow(
    clippy::disallowed_types,
    reason = "the allocator counts with std atomics"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use dndm::prelude::*;
use dndm::{Access, Op, ScopePolicy};
use rkyv::{Archive, Deserialize, Serialize};

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
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug)]
#[message(name = "mem.Pose")]
struct Pose {
    x: [u64; 4],
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug)]
#[message(name = "mem.Count")]
struct Count {
    n: u64,
}

/// `DNDM_SCOPE_CYCLES` shortens the run while debugging.
fn cycles() -> u64 {
    std::env::var("DNDM_SCOPE_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}
const WARM_UP: u64 = 1_000;
const SAMPLE_EVERY: u64 = 1_000;
/// Slack for allocator-independent noise (a few handles' worth).
const SLACK: isize = 64 * 1024;

fn cycle(node: &Node, outside: &Subscriber<Pose>, i: u64) {
    let robot = node.scope("robot").unwrap();
    robot.set_policy(
        ScopePolicy::new()
            .deny(&[Op::Publish], "secret.**")
            .unwrap(),
    );
    let arm = robot.child("arm").unwrap();
    let grip = arm.child("grip").unwrap();
    let p = grip.publish::<Pose>("pose").unwrap();
    let s = arm.subscribe::<Pose>("**").unwrap();
    assert!(arm.publish::<Pose>("/robot.secret.key").is_err());
    p.send(Pose { x: [i; 4] }).unwrap();
    assert_eq!(s.try_recv().unwrap().x[0], i);

    let state = robot.state();
    let k = state.key("n", Count { n: 0 }).unwrap();
    let obs = k.observe().unwrap();
    robot.grant(&arm, Access::Read).unwrap();
    let seen = grip
        .state_of("robot")
        .unwrap()
        .key("n", Count { n: 0 })
        .unwrap();
    k.set(Count { n: i }).unwrap();
    assert_eq!(obs.try_recv().unwrap().value.n, i);
    assert_eq!(seen.get().unwrap().n, i);
    if i.is_multiple_of(100) {
        let bytes = state.snapshot().unwrap();
        state.restore(&bytes).unwrap();
    }
    // Handles outlive the scope here: closing withdraws them; their drop
    // later frees them.
    drop(robot);
    drop((arm, grip));
    assert!(p.send(Pose { x: [0; 4] }).is_err());
    drop((p, s, k, obs, seen));
    // The node-level subscriber takes the sample and sees the publisher
    // finished (a subscriber frees a finished publisher's lane and route
    // when it next looks at it).
    assert_eq!(outside.try_recv().unwrap().x[0], i);
    assert!(outside.try_recv().is_err());
}

#[test]
fn scopes_created_and_closed_100_000_times_do_not_grow() {
    let node = Node::new("mem");
    let outside = node
        .subscribe_with::<Pose>("robot.**", SubscribeOptions::new().capacity(4))
        .unwrap();
    let mut base = 0;
    let mut peak_after_warm_up = 0;
    let cycles = cycles();
    for i in 0..cycles {
        cycle(&node, &outside, i);
        if i == WARM_UP {
            base = LIVE.load(Ordering::Relaxed);
        }
        if i > WARM_UP && i.is_multiple_of(SAMPLE_EVERY) {
            peak_after_warm_up = peak_after_warm_up.max(LIVE.load(Ordering::Relaxed));
        }
    }
    let end = LIVE.load(Ordering::Relaxed);
    println!("live after warm-up {base} bytes, highest sample {peak_after_warm_up}, end {end}");
    assert!(
        peak_after_warm_up <= base + SLACK,
        "live bytes grew from {base} to {peak_after_warm_up} over {cycles} cycles"
    );
    assert!(end <= base + SLACK, "live bytes grew from {base} to {end}");
    assert_eq!(node.stats().intents, 0);
    assert_eq!(node.stats().interests, 1);
}
