//! The sans-IO hand-off between user threads and the I/O thread.
//!
//! A connection's outgoing side is an [`Outbox`]: a bounded byte queue plus
//! the close state, driven through a `write` closure so that it never names a
//! socket. User threads call [`Outbox::send`] (write inline when nothing is
//! queued, queue the rest); the I/O thread calls [`Outbox::flush`] when the
//! socket becomes writable. [`Handoff`] puts an `Outbox` behind the
//! `dndm_core::sync` mutex with an attention flag, which is what
//! `tests/loom.rs` model-checks.

#![cfg_attr(
    not(dndm_loom),
    allow(
        unreachable_pub,
        reason = "public to the loom models (`--cfg dndm_loom`), crate-private otherwise"
    )
)]

use std::io;

use dndm_core::sync::Mutex;
use dndm_core::sync::atomic::{AtomicBool, Ordering};

use crate::CloseReason;

/// The largest batch [`Outbox::send`] copies into a non-empty queue to
/// write it together with the queued bytes; larger ones wait for the queue
/// to drain and go out from the caller's buffer.
pub const COPY_MAX: usize = 4 << 10;

/// Why [`Outbox::send`] refused bytes (the caller adds the peer address).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejected {
    /// The queue would exceed its limit.
    Full {
        /// Bytes queued.
        queued: usize,
        /// Bytes offered.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The batch alone exceeds the limit.
    TooLarge {
        /// Bytes offered.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The outbox is closing or closed.
    Closed(CloseReason),
}

/// What [`Outbox::flush`] achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flushed {
    /// Nothing is queued any more.
    Drained,
    /// The writer would block with bytes still queued.
    Blocked,
    /// The writer failed; the outbox is now closed with this reason.
    Failed(CloseReason),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Open,
    Closing,
    Closed(CloseReason),
}

/// A bounded outgoing byte queue with its close state (sans-IO).
#[derive(Debug)]
pub struct Outbox {
    buf: Vec<u8>,
    head: usize,
    limit: usize,
    state: State,
    peak: usize,
    written: u64,
    frames: u64,
    full: u64,
    /// A send was refused as full since [`take_room_wanted`](Outbox::take_room_wanted).
    room_wanted: bool,
}

impl Outbox {
    /// An empty outbox that queues at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            head: 0,
            limit,
            state: State::Open,
            peak: 0,
            written: 0,
            frames: 0,
            full: 0,
            room_wanted: false,
        }
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.buf.len() - self.head
    }

    /// The most bytes ever queued at once.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// Bytes handed to the writer so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Frames accepted by [`send`](Self::send) so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// How many sends were refused as [`Rejected::Full`].
    pub fn full_rejections(&self) -> u64 {
        self.full
    }

    /// Whether a send was refused as [`Rejected::Full`] since the last
    /// call (clears the flag): a thread that frees queue room wakes the
    /// refused sender when this says so.
    pub fn take_room_wanted(&mut self) -> bool {
        std::mem::take(&mut self.room_wanted)
    }

    /// Whether [`close`](Self::close) was called and the queue still drains.
    pub fn is_closing(&self) -> bool {
        self.state == State::Closing
    }

    /// The close reason, once closed.
    pub fn closed(&self) -> Option<&CloseReason> {
        match &self.state {
            State::Closed(reason) => Some(reason),
            _ => None,
        }
    }

    /// Writes `bytes` (`frames` frames) all-or-nothing: inline through
    /// `write` when nothing is queued, the rest into the queue. A batch
    /// larger than [`COPY_MAX`] behind queued bytes first flushes the queue
    /// and goes inline if that drained it; a smaller one is appended and
    /// flushed with the queue in one write. Returns the bytes written now
    /// (queued ones included).
    ///
    /// # Errors
    ///
    /// [`Rejected`] when the outbox is not open or the limit would be
    /// exceeded; none of `bytes` was written or queued then (queued bytes
    /// may have been flushed).
    pub fn send(
        &mut self,
        bytes: &[u8],
        frames: usize,
        mut write: impl FnMut(&[u8]) -> io::Result<usize>,
    ) -> Result<usize, Rejected> {
        match &self.state {
            State::Open => {}
            State::Closing => return Err(Rejected::Closed(CloseReason::Local)),
            State::Closed(reason) => return Err(Rejected::Closed(reason.clone())),
        }
        if bytes.len() > self.limit {
            return Err(Rejected::TooLarge {
                len: bytes.len(),
                limit: self.limit,
            });
        }
        let before = self.written;
        // A large batch behind queued bytes: flush the queue first, so that
        // the batch goes out inline, uncopied, when the kernel takes the
        // queue (and the limit is checked against what is left).
        if self.queued() > 0
            && bytes.len() > COPY_MAX
            && let Flushed::Failed(reason) = self.flush(&mut write)
        {
            return Err(Rejected::Closed(reason));
        }
        let queued = self.queued();
        if queued + bytes.len() > self.limit {
            self.full += 1;
            self.room_wanted = true;
            return Err(Rejected::Full {
                queued,
                len: bytes.len(),
                limit: self.limit,
            });
        }
        self.frames += frames as u64;
        if queued > 0 {
            self.push(bytes);
            self.peak = self.peak.max(self.queued());
            // A small batch joins the queue and both go out in one write (a
            // large one found the kernel full a moment ago). A failure
            // closes the outbox; the bytes were accepted, so the caller
            // learns about it on its next call.
            if bytes.len() <= COPY_MAX {
                let _ = self.flush(write);
            }
            return Ok((self.written - before) as usize);
        }
        let n = match write_nonblocking(bytes, &mut write) {
            Ok(n) => n,
            Err(reason) => {
                self.fail(reason.clone());
                return Err(Rejected::Closed(reason));
            }
        };
        self.written += n as u64;
        if let Some(rest) = bytes.get(n..).filter(|r| !r.is_empty()) {
            self.buf.clear();
            self.head = 0;
            self.push(rest);
            self.peak = self.peak.max(self.queued());
        }
        Ok((self.written - before) as usize)
    }

    /// Appends to the queue (whose bytes plus `bytes` fit in the limit)
    /// without letting the buffer's capacity grow past the limit: written
    /// bytes are compacted away first when they would push it over, and
    /// growth doubles only up to the limit. So one outbox never holds more
    /// than `limit` bytes of buffer, whatever the send pattern.
    fn push(&mut self, bytes: &[u8]) {
        let need = self.buf.len() + bytes.len();
        if need > self.limit && self.head > 0 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        let need = self.buf.len() + bytes.len();
        if need > self.buf.capacity() {
            let want = self
                .buf
                .capacity()
                .saturating_mul(2)
                .clamp(need, self.limit.max(need));
            self.buf.reserve_exact(want - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
    }

    #[cfg(test)]
    /// The bytes of buffer this outbox holds (at most its limit).
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Writes queued bytes through `write` until it would block or the
    /// queue is empty.
    pub fn flush(&mut self, mut write: impl FnMut(&[u8]) -> io::Result<usize>) -> Flushed {
        if let State::Closed(reason) = &self.state {
            return if self.queued() == 0 {
                Flushed::Drained
            } else {
                Flushed::Failed(reason.clone())
            };
        }
        if self.queued() == 0 {
            return Flushed::Drained;
        }
        let pending = self.buf.get(self.head..).unwrap_or_default();
        match write_nonblocking(pending, &mut write) {
            Ok(n) => {
                self.head += n;
                self.written += n as u64;
                if self.head == self.buf.len() {
                    self.buf.clear();
                    self.head = 0;
                    Flushed::Drained
                } else {
                    if self.head > self.buf.len() / 2 {
                        self.buf.drain(..self.head);
                        self.head = 0;
                    }
                    Flushed::Blocked
                }
            }
            Err(reason) => {
                self.fail(reason.clone());
                Flushed::Failed(reason)
            }
        }
    }

    /// Starts a graceful close: no more sends; queued bytes still drain.
    pub fn close(&mut self) {
        if self.state == State::Open {
            self.state = State::Closing;
        }
    }

    /// Ends the outbox with `reason`, dropping queued bytes (keeps the
    /// first reason).
    pub fn fail(&mut self, reason: CloseReason) {
        if !matches!(self.state, State::Closed(_)) {
            self.state = State::Closed(reason);
        }
        self.buf = Vec::new();
        self.head = 0;
    }
}

/// Writes until done or `WouldBlock`; returns the bytes written.
fn write_nonblocking(
    bytes: &[u8],
    write: &mut impl FnMut(&[u8]) -> io::Result<usize>,
) -> Result<usize, CloseReason> {
    let mut done = 0;
    while let Some(rest) = bytes.get(done..).filter(|r| !r.is_empty()) {
        match write(rest) {
            Ok(0) => return Err(CloseReason::Reset),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CloseReason::from_io(&e)),
        }
    }
    Ok(done)
}

/// An [`Outbox`] shared between user threads and the I/O thread.
#[derive(Debug)]
pub struct Handoff {
    outbox: Mutex<Outbox>,
    attention: AtomicBool,
}

impl Handoff {
    /// A hand-off around an empty outbox of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            outbox: Mutex::new(Outbox::new(limit)),
            attention: AtomicBool::new(false),
        }
    }

    /// Runs `f` with the outbox locked.
    pub fn with<R>(&self, f: impl FnOnce(&mut Outbox) -> R) -> R {
        let mut guard = self
            .outbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// Asks the I/O thread to look at this connection (after a close with
    /// bytes still queued). Returns whether the flag was newly raised, i.e.
    /// whether the caller must wake the I/O thread.
    pub fn request_attention(&self) -> bool {
        !self.attention.swap(true, Ordering::AcqRel)
    }

    /// Takes the attention flag (I/O thread side).
    pub fn take_attention(&self) -> bool {
        self.attention.swap(false, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A fake socket that accepts at most `room` bytes.
    struct Fake {
        out: Vec<u8>,
        room: usize,
    }

    impl Fake {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = b.len().min(self.room);
            self.room -= n;
            self.out.extend_from_slice(&b[..n]);
            Ok(n)
        }
    }

    #[test]
    fn inline_then_queue_then_flush_in_order() {
        let mut fake = Fake {
            out: vec![],
            room: 3,
        };
        let mut ob = Outbox::new(8);
        assert_eq!(ob.send(b"abcde", 1, |b| fake.write(b)), Ok(3));
        assert_eq!(ob.queued(), 2);
        assert_eq!(ob.send(b"fgh", 1, |b| fake.write(b)), Ok(0));
        assert!(matches!(
            ob.send(b"ijkl", 1, |b| fake.write(b)),
            Err(Rejected::Full { queued: 5, .. })
        ));
        assert!(matches!(
            ob.send(b"123456789", 1, |b| fake.write(b)),
            Err(Rejected::TooLarge { .. })
        ));
        fake.room = 100;
        assert_eq!(ob.flush(|b| fake.write(b)), Flushed::Drained);
        assert_eq!(fake.out, b"abcdefgh");
        assert_eq!(ob.peak(), 5);
        assert_eq!(ob.frames(), 2);
        assert_eq!(ob.full_rejections(), 1);
        ob.close();
        assert!(matches!(
            ob.send(b"x", 1, |b| fake.write(b)),
            Err(Rejected::Closed(CloseReason::Local))
        ));
    }

    #[test]
    fn buffer_capacity_never_exceeds_the_limit() {
        // A slow writer that takes a few bytes at a time while sends of
        // varying sizes keep the queue near its limit.
        let limit = 1000;
        let mut ob = Outbox::new(limit);
        let mut fake = Fake {
            out: vec![],
            room: 0,
        };
        let mut seed = 7u64;
        for _ in 0..5000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = (seed >> 33) as usize % 300 + 1;
            fake.room = (seed >> 20) as usize % 50;
            let _ = ob.send(&vec![1u8; len], 1, |b| fake.write(b));
            fake.room = (seed >> 40) as usize % 120;
            let _ = ob.flush(|b| fake.write(b));
            assert!(ob.queued() <= limit);
            assert!(
                ob.buffer_capacity() <= limit,
                "capacity {} > limit {limit}",
                ob.buffer_capacity()
            );
        }
        assert!(ob.peak() > limit / 2, "the queue never filled up");
    }

    #[test]
    fn large_batch_behind_a_queue_goes_inline() {
        let mut fake = Fake {
            out: vec![],
            room: 10,
        };
        let mut ob = Outbox::new(100_000);
        let first = vec![1u8; 5000];
        assert_eq!(ob.send(&first, 1, |b| fake.write(b)), Ok(10));
        assert_eq!(ob.queued(), 4990);
        let capacity = ob.buffer_capacity();
        // Room for everything: the queue drains, then the batch is written
        // from the caller's buffer, never copied into the queue.
        fake.room = 100_000;
        let second = vec![2u8; 8000];
        assert_eq!(ob.send(&second, 1, |b| fake.write(b)), Ok(4990 + 8000));
        assert_eq!(ob.queued(), 0);
        assert_eq!(ob.buffer_capacity(), capacity);
        assert_eq!(fake.out, [first, second].concat());
        // The kernel is full: a large batch is queued after the queue.
        fake.room = 0;
        assert_eq!(ob.send(&[3u8; 6000], 1, |b| fake.write(b)), Ok(0));
        assert_eq!(ob.send(&[4u8; 6000], 1, |b| fake.write(b)), Ok(0));
        assert_eq!(ob.queued(), 12_000);
        // A full queue that drains enough takes the next batch.
        let mut ob = Outbox::new(10_000);
        fake.room = 0;
        assert_eq!(ob.send(&[5u8; 9000], 1, |b| fake.write(b)), Ok(0));
        fake.room = 9000;
        assert_eq!(ob.send(&[6u8; 9000], 1, |b| fake.write(b)), Ok(9000));
        assert_eq!(ob.queued(), 9000);
        assert_eq!(ob.full_rejections(), 0);
    }

    #[test]
    fn write_error_closes() {
        let mut ob = Outbox::new(8);
        let r = ob.send(b"abc", 1, |_| Err(io::ErrorKind::BrokenPipe.into()));
        assert_eq!(r, Err(Rejected::Closed(CloseReason::Reset)));
        assert_eq!(ob.closed(), Some(&CloseReason::Reset));
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Offer this many bytes.
        Send(usize),
        /// The socket gains this much room, then the I/O thread flushes.
        Flush(usize),
        /// The socket gains this much room; nobody flushes yet.
        Room(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0usize..300).prop_map(Op::Send),
            // Batches above `COPY_MAX`, which flush the queue first.
            (4000usize..9000).prop_map(Op::Send),
            (0usize..400).prop_map(Op::Flush),
            (0usize..12_000).prop_map(Op::Flush),
            (0usize..12_000).prop_map(Op::Room),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the interleaving of sends and partial writes, the socket
        /// sees exactly the accepted bytes in order, the queue never exceeds its
        /// limit, and a refusal changes nothing.
        #[test]
        fn outbox_matches_reference(limit in prop_oneof![1usize..1024, 8000usize..30_000], ops in prop::collection::vec(op(), 1..60)) {
            let mut ob = Outbox::new(limit);
            let mut wire: Vec<u8> = Vec::new();
            let mut room = 0usize;
            let mut accepted: Vec<u8> = Vec::new();
            let mut next = 0u8;
            let write = |room: &mut usize, wire: &mut Vec<u8>, b: &[u8]| -> io::Result<usize> {
                if *room == 0 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let n = b.len().min(*room);
                *room -= n;
                wire.extend_from_slice(&b[..n]);
                Ok(n)
            };
            for op in ops {
                match op {
                    Op::Send(len) => {
                        let bytes: Vec<u8> = (0..len).map(|i| next.wrapping_add(i as u8)).collect();
                        let queued = ob.queued();
                        match ob.send(&bytes, 1, |b| write(&mut room, &mut wire, b)) {
                            Ok(_) => {
                                next = next.wrapping_add(len as u8);
                                accepted.extend_from_slice(&bytes);
                            }
                            Err(Rejected::Full { .. }) => {
                                // Queued bytes may have been flushed first.
                                prop_assert!(ob.queued() + len > limit);
                                prop_assert!(ob.queued() <= queued);
                            }
                            Err(Rejected::TooLarge { .. }) => prop_assert!(len > limit),
                            Err(e) => prop_assert!(false, "unexpected {:?}", e),
                        }
                    }
                    Op::Flush(more) => {
                        room += more;
                        let _ = ob.flush(|b| write(&mut room, &mut wire, b));
                    }
                    Op::Room(more) => room += more,
                }
                prop_assert!(ob.queued() <= limit);
                prop_assert_eq!(wire.len() + ob.queued(), accepted.len());
                prop_assert_eq!(&accepted[..wire.len()], &wire[..]);
            }
            room = usize::MAX;
            let _ = ob.flush(|b| write(&mut room, &mut wire, b));
            prop_assert_eq!(wire, accepted);
            prop_assert!(ob.peak() <= limit);
        }
    }
}
