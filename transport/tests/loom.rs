//! Loom models of the user-thread ↔ I/O-thread hand-off ([`Handoff`]):
//! sends, flushes and closes racing, against a fake socket.
//!
//! Run: `RUSTFLAGS="--cfg dndm_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom -p dndm-transport`
#![cfg(dndm_loom)]
#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]

use std::io;

use dndm_core::sync::{Arc, Mutex};
use dndm_transport::CloseReason;
use dndm_transport::handoff::{Flushed, Handoff};
use loom::thread;

/// A socket with room for `room` bytes at a time.
struct Sock {
    out: Mutex<(Vec<u8>, usize)>,
}

impl Sock {
    fn new(room: usize) -> Self {
        Self {
            out: Mutex::new((Vec::new(), room)),
        }
    }
    fn write(&self, b: &[u8]) -> io::Result<usize> {
        let mut g = self.out.lock().unwrap();
        if g.1 == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = b.len().min(g.1);
        g.1 -= n;
        g.0.extend_from_slice(&b[..n]);
        Ok(n)
    }
    fn grow(&self, room: usize) {
        self.out.lock().unwrap().1 += room;
    }
    fn bytes(&self) -> Vec<u8> {
        self.out.lock().unwrap().0.clone()
    }
}

#[test]
fn sends_and_flushes_keep_order_and_lose_nothing() {
    loom::model(|| {
        let h = Arc::new(Handoff::new(16));
        let sock = Arc::new(Sock::new(2));
        let (h2, s2) = (Arc::clone(&h), Arc::clone(&sock));
        let io = thread::spawn(move || {
            s2.grow(8);
            h2.with(|ob| ob.flush(|b| s2.write(b)))
        });
        h.with(|ob| ob.send(b"abc", 1, |b| sock.write(b))).unwrap();
        h.with(|ob| ob.send(b"de", 1, |b| sock.write(b))).unwrap();
        let _ = io.join().unwrap();
        sock.grow(16);
        assert_eq!(h.with(|ob| ob.flush(|b| sock.write(b))), Flushed::Drained);
        assert_eq!(sock.bytes(), b"abcde");
        assert_eq!(h.with(|ob| ob.written()), 5);
    });
}

#[test]
fn close_with_queued_bytes_drains_then_closes() {
    loom::model(|| {
        let h = Arc::new(Handoff::new(16));
        let sock = Arc::new(Sock::new(1));
        h.with(|ob| ob.send(b"xyz", 1, |b| sock.write(b))).unwrap();
        let (h2, s2) = (Arc::clone(&h), Arc::clone(&sock));
        // The user closes and raises attention; the I/O thread services.
        let user = thread::spawn(move || {
            h2.with(|ob| ob.close());
            h2.request_attention()
        });
        s2.grow(8);
        let attended = h.take_attention();
        let flushed = h.with(|ob| {
            let f = ob.flush(|b| sock.write(b));
            if f == Flushed::Drained && ob.is_closing() {
                ob.fail(CloseReason::Local);
            }
            f
        });
        let raised = user.join().unwrap();
        assert_eq!(flushed, Flushed::Drained);
        assert_eq!(sock.bytes(), b"xyz");
        // Attention is never lost: either the I/O thread took it, or it is
        // still raised for its next round.
        if raised && !attended {
            assert!(h.take_attention());
        }
        // Sends after close always fail.
        assert!(h.with(|ob| ob.send(b"q", 1, |b| sock.write(b))).is_err());
    });
}

#[test]
fn concurrent_senders_never_interleave_batches() {
    loom::model(|| {
        let h = Arc::new(Handoff::new(16));
        let sock = Arc::new(Sock::new(1));
        let spawn_sender = |batch: &'static [u8]| {
            let (h, s) = (Arc::clone(&h), Arc::clone(&sock));
            thread::spawn(move || h.with(|ob| ob.send(batch, 1, |b| s.write(b))).unwrap())
        };
        let a = spawn_sender(b"ab");
        let b = spawn_sender(b"cd");
        sock.grow(2);
        let _ = h.with(|ob| ob.flush(|b| sock.write(b)));
        a.join().unwrap();
        b.join().unwrap();
        sock.grow(16);
        assert_eq!(h.with(|ob| ob.flush(|b| sock.write(b))), Flushed::Drained);
        let wire = sock.bytes();
        assert!(wire == b"abcd" || wire == b"cdab", "{wire:?}");
        assert_eq!(h.with(|ob| ob.frames()), 2);
    });
}
