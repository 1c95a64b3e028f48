//! Steady-state encoding and trusted/validated decoding allocate nothing.
//!
//! This binary installs a counting global allocator, so it holds one test
//! only (tests in one binary would count each other's allocations).
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use dndm_codec::{BufferPool, FrameHeader, Message, StreamDecoder};
use rkyv::{Archive, Deserialize, Serialize};

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: forwards every call to the system allocator unchanged; only a
// thread-local counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
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
    let pool = BufferPool::new(4, 64 << 10);
    let mut decoder = StreamDecoder::default();

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
            }
        }
        assert_eq!(seen, 17);
    };

    // Warm up: buffers, arenas and the decoder's receive buffer grow.
    for seq in 0..4 {
        round(seq);
    }
    let before = allocations();
    for seq in 4..104 {
        round(seq);
    }
    let after = allocations();
    assert_eq!(
        after - before,
        0,
        "steady state allocated {} times",
        after - before
    );
}
