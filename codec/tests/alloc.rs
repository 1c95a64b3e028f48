//! Steady-state encoding and trusted/validated decoding allocate nothing,
//! the live heap never holds more than the configured buffers explain, and
//! all of it is given back when the pool and the decoder go.
//!
//! This binary installs a counting global allocator, so it holds one test
//! only (tests in one binary would count each other's allocations).
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use dndm_codec::{BufferPool, DecoderConfig, FrameHeader, Message, StreamDecoder};
use rkyv::{Archive, Deserialize, Serialize};

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    /// Heap bytes this thread allocated and freed (the test's work stays on
    /// its thread; the harness's threads allocate on their own).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The highest `LIVE` since the last [`reset_peak`].
    static PEAK: Cell<isize> = const { Cell::new(0) };
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

fn live() -> isize {
    LIVE.with(Cell::get)
}

fn peak() -> isize {
    PEAK.with(Cell::get)
}

fn reset_peak() {
    PEAK.with(|p| p.set(live()));
}

struct Counting;

// SAFETY: forwards every call to the system allocator unchanged; only a
// thread-local counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        grow(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // Counted as the new block arriving before the old one leaves, the
        // most a reallocation can hold at once.
        grow(new_size);
        shrink(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(Cell::get)
}

#[derive(Archive, Serialize, Deserialize, Message)]
struct Pose {
    frame_id: String,
    stamp_ns: u64,
    position: [f64; 3],
    orientation: [f64; 4],
    covariance: Vec<f64>,
    labels: Vec<String>,
    image: Vec<u8>,
}

/// Idle buffers the pool keeps, and the room each starts with.
const POOL_IDLE: usize = 4;
const POOL_INITIAL: usize = 64 << 10;
/// The rkyv serialiser's scratch arena, kept by each buffer: it holds one
/// message's out-of-line fields at a time (a few KiB here), generously.
const ARENA: usize = 64 << 10;

#[test]
fn steady_state_allocates_nothing() {
    let pose = Pose {
        frame_id: "map".into(),
        stamp_ns: 1,
        position: [1.0, 2.0, 3.0],
        orientation: [0.0, 0.0, 0.0, 1.0],
        covariance: vec![0.5; 36],
        labels: vec!["left".into(), "right-wheel-encoder".into(), "x".into()],
        image: vec![3; 4096],
    };
    let start = live();
    reset_peak();
    let pool = BufferPool::new(POOL_IDLE, POOL_INITIAL);
    let config = DecoderConfig::default();
    let mut decoder = StreamDecoder::new(config);

    // One round: 17 frames encoded into one pooled buffer, then decoded and
    // read; returns the encoded length.
    let mut round = |seq: u64| {
        let mut buf = pool.take();
        for i in 0..16 {
            let header = FrameHeader::data(1).with_seq(seq * 16 + i);
            buf.push_message(&header, &pose).unwrap();
        }
        buf.push_raw(&FrameHeader::control(), b"ping").unwrap();
        let mut input = buf.as_bytes();
        let mut seen = 0;
        while !input.is_empty() {
            let n = decoder.feed(input);
            assert!(n > 0, "feed took nothing after every frame was drained");
            input = &input[n..];
            while let Some(frame) = decoder.next_frame().unwrap() {
                if frame.header().kind == dndm_codec::FrameKind::Data {
                    // SAFETY: encoded by this test just above.
                    let trusted = unsafe { frame.access_trusted::<Pose>() }.unwrap();
                    assert_eq!(trusted.image.len(), 4096);
                    let checked = frame.access::<Pose>().unwrap();
                    assert_eq!(checked.labels.len(), 3);
                }
                seen += 1;
                // A frame takes at least a header of input: more means one
                // was handed out twice.
                assert!(seen <= buf.as_bytes().len() / dndm_codec::HEADER_LEN);
            }
        }
        assert_eq!(seen, 17);
        buf.len()
    };

    // Warm up: buffers, arenas and the decoder's receive buffer grow.
    let mut round_len = 0;
    for seq in 0..4 {
        round_len = round_len.max(round(seq));
    }
    let before = allocations();
    let live_before = live();
    for seq in 4..104 {
        round_len = round_len.max(round(seq));
    }
    let after = allocations();
    assert_eq!(
        after - before,
        0,
        "steady state allocated {} times",
        after - before
    );
    assert_eq!(live(), live_before, "steady state changed the live heap");

    // The most the configured buffers explain: every idle buffer grown by
    // doubling to at most twice a round (plus the old block while it moves)
    // with its arena, and the decoder's receive buffer likewise, capped at
    // the frame limit.
    let buffer = POOL_INITIAL.max(round_len) * 3 + ARENA;
    let receive = (config.initial_capacity.max(round_len) * 3)
        .min(config.max_frame_len.next_multiple_of(16) * 2);
    let bound = POOL_IDLE * buffer + receive;
    let peak = peak() - start;
    assert!(
        peak <= bound as isize,
        "live heap peaked {peak} bytes above the start; the configured buffers explain {bound}"
    );

    // Everything is given back with the pool and the decoder.
    drop(decoder);
    drop(pool);
    assert_eq!(
        live(),
        start,
        "{} bytes outlived the pool and the decoder",
        live() - start
    );
}
