//! Loom models of the buffer pool shared by an I/O thread and user threads.
//!
//! Run with
//! `RUSTFLAGS="--cfg dndm_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom -p dndm-codec`.
#![cfg(dndm_loom)]
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use dndm_codec::{BufferPool, FrameHeader, frames};
use loom::thread;

/// A user thread encodes into a pooled buffer and hands it to the I/O
/// thread, which "writes" it and drops it back into the pool while another
/// user takes a buffer concurrently.
#[test]
fn take_encode_return_across_threads() {
    loom::model(|| {
        let pool = BufferPool::new(1, 64);
        let (tx, rx) = loom::sync::mpsc::channel();
        let user_pool = pool.clone();
        let user = thread::spawn(move || {
            let mut buf = user_pool.take();
            buf.push_raw(&FrameHeader::control(), b"hi").unwrap();
            tx.send(buf).unwrap();
        });
        let io = thread::spawn(move || {
            let buf = rx.recv().unwrap();
            let frame = frames(buf.as_bytes()).next().unwrap().unwrap();
            assert_eq!(frame.payload(), b"hi");
            drop(buf);
        });
        let other = pool.take();
        assert!(other.is_empty(), "a taken buffer is always clear");
        drop(other);
        user.join().unwrap();
        io.join().unwrap();
        assert!(pool.idle() <= pool.max_idle());
        assert!(pool.idle() >= 1);
    });
}

/// Two threads return buffers at once into a pool with room for one:
/// exactly one is kept, none is lost twice or duplicated.
#[test]
fn concurrent_returns_respect_capacity() {
    loom::model(|| {
        let pool = BufferPool::new(1, 16);
        let a = pool.take();
        let b = pool.take();
        let t = thread::spawn(move || drop(a));
        drop(b);
        t.join().unwrap();
        assert_eq!(pool.idle(), 1);
        let again = pool.take();
        assert_eq!(pool.idle(), 0);
        drop(again);
        assert_eq!(pool.idle(), 1);
    });
}
