//! The memory bounds of `docs/memory.md`, one test per bound: each drives
//! the worst case and checks the peak of live heap bytes during the run
//! against the formula.
//!
//! This binary installs a counting global allocator that records the peak
//! at every allocation. Tests take one lock, so only one runs at a time.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
#![allow(
    clippy::disallowed_types,
    reason = "the allocator counts with std atomics; tests use std sync types like users do"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::mem::{align_of, size_of};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::Duration;

use dndm::prelude::*;
use rkyv::{Archive, Deserialize, Serialize};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live =
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as the system does it: both blocks may be live at once.
        let live = LIVE.fetch_add(new_size as isize, Ordering::Relaxed) + new_size as isize;
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            LIVE.fetch_sub(new_size as isize, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Taken first by every test, held to its end: nothing else allocates
/// while a test measures.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// Measures the peak above the live bytes at `start`.
struct Meter {
    base: isize,
}

impl Meter {
    fn start() -> Self {
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        Self { base }
    }

    /// Peak live bytes above the start so far.
    fn peak(&self) -> usize {
        (PEAK.load(Ordering::Relaxed) - self.base).max(0) as usize
    }

    fn check(&self, what: &str, bound: usize) {
        let peak = self.peak();
        println!("{what}: peak {peak} bytes, bound {bound} bytes");
        assert!(
            peak <= bound,
            "{what}: peak {peak} bytes above the bound {bound}"
        );
    }
}

// Fixed overheads of docs/memory.md (64-bit targets).
const NODE_FIXED: usize = 8 * 1024;
const HANDLE_FIXED: usize = 4 * 1024;
const LINK_FIXED: usize = 1024;
const LANE_FIXED: usize = 2 * 1024;
const CALL_FIXED: usize = 512;
const THREAD_FIXED: usize = 2 * 1024;

fn round_up(n: usize, a: usize) -> usize {
    n.div_ceil(a) * a
}

/// Bytes of one replay entry of `T` (an envelope: the value or a pointer
/// to it, with a tag, and the metadata).
fn envelope<T>() -> usize {
    let a = align_of::<T>().max(8);
    round_up(size_of::<T>().max(8) + 1, a) + round_up(24, a)
}

/// Bytes of one history entry holding `T`: sequence, timestamp, publisher
/// id and a pointer, plus the shared value (two counters and `T`).
fn kept<T>() -> usize {
    32 + round_up(16 + size_of::<T>(), align_of::<T>().max(8))
}

/// Bytes of one lane slot carrying `T` (an envelope, its tag and a stamp).
fn slot<T>() -> usize {
    let a = align_of::<T>().max(8);
    envelope::<T>() + 2 * a
}

/// Bytes of one lane of `capacity` slots of `bytes` each.
fn lane(capacity: usize, bytes: usize) -> usize {
    LANE_FIXED + capacity.next_power_of_two() * bytes
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug)]
#[message(name = "mem.Blob")]
struct Blob {
    bytes: [u8; 1000],
}

const BLOB: Blob = Blob { bytes: [7; 1000] };

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug)]
#[message(name = "mem.Req")]
struct Req {
    bytes: [u8; 500],
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug)]
#[message(name = "mem.Resp")]
struct Resp {
    bytes: [u8; 200],
}

#[test]
fn a_node_costs_fixed_bytes_plus_its_handles_and_links() {
    let _one = one_at_a_time();
    const PUBS: usize = 16;
    const SUBS: usize = 16;
    let m = Meter::start();
    let node = Node::new("mem");
    m.check("empty node", NODE_FIXED);
    let pubs: Vec<_> = (0..PUBS)
        .map(|i| node.publish::<Blob>(&format!("n.p{i}")).unwrap())
        .collect();
    let subs: Vec<_> = (0..SUBS)
        .map(|_| node.subscribe::<Blob>("n.*").unwrap())
        .collect();
    assert_eq!(node.stats().links, PUBS * SUBS);
    m.check(
        "node with 16 publishers, 16 subscribers, 256 links",
        // Each default (DropOldest) subscriber takes one message at a time.
        NODE_FIXED
            + (PUBS + SUBS) * HANDLE_FIXED
            + PUBS * SUBS * LINK_FIXED
            + SUBS * slot::<Blob>(),
    );
    drop((pubs, subs, node));
}

#[test]
fn a_history_ring_holds_its_depth_from_the_first_send() {
    let _one = one_at_a_time();
    const DEPTH: usize = 512;
    let m = Meter::start();
    let node = Node::new("mem");
    let p = node
        .publish_with::<Blob>("h", PublishOptions::new().history(DEPTH))
        .unwrap();
    m.check("history 512 before any send", NODE_FIXED + HANDLE_FIXED);
    for _ in 0..4 * DEPTH {
        p.send(BLOB).unwrap();
    }
    m.check(
        "history 512 after 2,048 sends",
        NODE_FIXED + HANDLE_FIXED + DEPTH * kept::<Blob>(),
    );
    drop((p, node));
}

#[test]
fn a_publisher_without_history_costs_fixed_bytes() {
    let _one = one_at_a_time();
    let m = Meter::start();
    let node = Node::new("mem");
    let p = node.publish::<Blob>("x").unwrap();
    for _ in 0..10_000 {
        p.send(BLOB).unwrap();
    }
    m.check(
        "publisher, 10,000 sends, no subscriber",
        NODE_FIXED + HANDLE_FIXED,
    );
    drop((p, node));
}

/// The worst case of one subscriber: it joins late (a history replay from
/// every publisher), then every lane fills and overflows while it holds a
/// run of messages.
fn subscriber_worst_case(policy: Policy) {
    const PUBS: usize = 4;
    const CAP: usize = 16;
    const DEPTH: usize = 100;
    let node = Node::new("mem");
    let pubs: Vec<_> = (0..PUBS)
        .map(|i| {
            node.publish_with::<Blob>(&format!("s.p{i}"), PublishOptions::new().history(DEPTH))
                .unwrap()
        })
        .collect();
    for p in &pubs {
        for _ in 0..DEPTH {
            p.send(BLOB).unwrap();
        }
    }
    let m = Meter::start();
    let sub = node
        .subscribe_with::<Blob>("s.*", SubscribeOptions::new().capacity(CAP).policy(policy))
        .unwrap();
    for p in &pubs {
        for _ in 0..CAP {
            // Block would wait for room: try_send fills the lane and stops.
            let _ = p.try_send(BLOB);
        }
    }
    let mut n = 0;
    while sub.try_recv().is_ok() {
        n += 1;
    }
    assert_eq!(
        n,
        PUBS * 2 * CAP,
        "replay and lane, each `CAP` per publisher"
    );
    let bound = HANDLE_FIXED
        + lane(CAP, slot::<Blob>())
        + PUBS * (LINK_FIXED + lane(CAP, slot::<Blob>()) + CAP * envelope::<Blob>());
    m.check(
        &format!("subscriber {policy:?}, 4 publishers, capacity 16"),
        bound,
    );
    drop((sub, pubs, node));
}

#[test]
fn a_subscriber_costs_a_lane_and_a_replay_per_publisher() {
    let _one = one_at_a_time();
    subscriber_worst_case(Policy::DropOldest);
    subscriber_worst_case(Policy::BLOCK);
    subscriber_worst_case(Policy::Reject);
}

#[test]
fn request_reply_costs_a_lane_per_concurrent_caller() {
    let _one = one_at_a_time();
    const CAP: usize = 64;
    const CALLERS: usize = 4;
    let node = Node::builder("mem")
        .server_capacity(CAP)
        .build()
        .expect("local node");
    let m = Meter::start();
    let (gate_tx, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let (entered_tx, entered) = mpsc::channel::<()>();
    let entered_tx = Mutex::new(entered_tx);
    let server = node
        .serve::<Req, Resp, _>("r", move |_| {
            let _ = entered_tx.lock().unwrap().send(());
            let _ = gate.lock().unwrap().recv();
            Resp { bytes: [1; 200] }
        })
        .unwrap();
    let client = node.client::<Req, Resp>("r").unwrap();
    // Every caller is in flight at once: one in the handler, the rest queued.
    let start = Arc::new(std::sync::Barrier::new(CALLERS));
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let client = Arc::clone(&client);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                client
                    .call(Req { bytes: [2; 500] }, Duration::from_secs(60))
                    .is_ok()
            })
        })
        .collect();
    entered.recv_timeout(Duration::from_secs(60)).unwrap();
    drop(gate_tx);
    for c in callers {
        assert!(c.join().unwrap());
    }
    let request = round_up(size_of::<Req>(), 8) + 16;
    let bound = 2 * HANDLE_FIXED
        + LINK_FIXED
        + (CALLERS + 1) * THREAD_FIXED
        + CALLERS * (lane(CAP, request) + CALL_FIXED + size_of::<Resp>());
    m.check("request/reply, 4 concurrent callers, capacity 64", bound);
    drop((client, server, node));
}
