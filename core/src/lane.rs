//! A lane: the bounded ring between one sender handle and one receiver.
//!
//! A lane has exactly one producer (a [`Sender`](crate::Sender) handle) and
//! one consumer (a [`Receiver`](crate::Receiver)). "Exactly one" includes
//! re-entrancy: a producer operation may run user code between slot writes
//! (the iterator of a batch, `T::clone`), so the sender holds its lane cache
//! exclusively for a whole send and a nested send on the same handle panics
//! before it reaches a lane. The consumer runs no user code while it holds a
//! slot. Two ring flavours serve the receiver's policy:
//!
//! * [`Fifo`] (policies `Block` and `Reject`): a Lamport ring. Each side
//!   owns its index on its own cache line and keeps a cached copy of the
//!   other side's index, so it reads the other line only when its cached
//!   view says the ring is full (producer) or empty (consumer). A consumer
//!   that lags behind takes many messages per look at `tail`.
//! * [`Stamped`] (policy `DropOldest`): every slot carries a stamp that says
//!   whose turn it is, so that the producer can evict the oldest message
//!   while the consumer may be taking it; both claim the head slot with a
//!   compare-and-swap and the winner owns the value.

use std::mem::MaybeUninit;

use crossbeam_utils::Backoff;

use crate::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::sync::{CachePadded, UnsafeCell, spin_step};
use crate::wait::WaitSlot;

pub(crate) struct Lane<T> {
    ring: Ring<T>,
    /// The producer handle's tag (0: none), reported when the lane retires.
    tag: u64,
    /// Producer-side state, on its own line: read by the consumer after every
    /// pop, written only when the producer goes to sleep or goes away.
    producer: CachePadded<ProducerSide>,
    /// Messages this lane evicted (DropOldest) or refused (Reject); the
    /// producer is the only writer.
    dropped: CachePadded<AtomicU64>,
    rejected: AtomicU64,
}

enum Ring<T> {
    Fifo(Fifo<T>),
    Stamped(Stamped<T>),
}

pub(crate) struct ProducerSide {
    /// The producer handle is gone: once empty, the lane can be retired.
    pub(crate) gone: AtomicBool,
    /// Where a producer blocked on a full lane waits.
    pub(crate) wait: WaitSlot,
}

impl<T> Lane<T> {
    pub(crate) fn new(cap: usize, overwrite: bool, tag: u64) -> Self {
        debug_assert!(cap > 0);
        Self {
            tag,
            ring: if overwrite {
                Ring::Stamped(Stamped::new(cap))
            } else {
                Ring::Fifo(Fifo::new(cap))
            },
            producer: CachePadded::new(ProducerSide {
                gone: AtomicBool::new(false),
                wait: WaitSlot::new(),
            }),
            dropped: CachePadded::new(AtomicU64::new(0)),
            rejected: AtomicU64::new(0),
        }
    }

    pub(crate) fn producer(&self) -> &ProducerSide {
        &self.producer
    }

    pub(crate) fn tag(&self) -> u64 {
        self.tag
    }

    /// Producer only. Appends `value`, or hands it back when the lane is full.
    #[inline(always)]
    pub(crate) fn try_push(&self, value: T) -> Result<(), T> {
        match &self.ring {
            Ring::Fifo(r) => r.try_push(value),
            Ring::Stamped(r) => r.try_push(value),
        }
    }

    /// Producer only. Appends `value`, evicting the oldest message when the
    /// lane is full (a lane without overwriting hands `value` back instead).
    #[inline]
    pub(crate) fn push_overwrite(&self, value: T) -> Result<(), T> {
        match &self.ring {
            Ring::Fifo(r) => r.try_push(value),
            Ring::Stamped(r) => {
                if let Some(evicted) = r.push_overwrite(value) {
                    self.dropped
                        .store(self.dropped.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                    drop(evicted);
                }
                Ok(())
            }
        }
    }

    /// Producer only. True when a push would not find the lane full (a
    /// lane that evicts always has room).
    pub(crate) fn has_room(&self) -> bool {
        match &self.ring {
            Ring::Fifo(r) => r.free(r.producer.pos.load(Ordering::Relaxed)) > 0,
            Ring::Stamped(_) => true,
        }
    }

    /// Producer only. How many free slots a producer waiting for room
    /// waits for before it resumes (see `push_blocking`).
    pub(crate) fn refill_run(&self) -> usize {
        match &self.ring {
            Ring::Fifo(r) => (r.cap / 2).clamp(1, 64),
            Ring::Stamped(_) => 1,
        }
    }

    /// Producer only. True when at least `n` slots are free, reading the
    /// consumer's index afresh.
    pub(crate) fn has_free(&self, n: usize) -> bool {
        match &self.ring {
            Ring::Fifo(r) => {
                let tail = r.producer.pos.load(Ordering::Relaxed);
                let head = r.consumer.pos.load(Ordering::Acquire);
                // SAFETY: `cached` of the producer side is only touched by the producer.
                r.producer.cached.with_mut(|p| unsafe { *p = head });
                r.cap - tail.wrapping_sub(head) >= n
            }
            Ring::Stamped(_) => true,
        }
    }

    /// Consumer only. Takes the oldest message, if any.
    #[inline(always)]
    pub(crate) fn try_pop(&self) -> Option<T> {
        match &self.ring {
            Ring::Fifo(r) => r.try_pop(),
            Ring::Stamped(r) => r.try_pop(),
        }
    }

    /// Producer only. Moves items from `items` into free slots until the lane
    /// is full or `items` is exhausted, publishing them together. Lanes
    /// without batch support (the stamped ring) take one item at a time.
    /// Returns how many were queued.
    #[inline]
    pub(crate) fn push_batch(&self, items: &mut impl Iterator<Item = T>) -> usize {
        match &self.ring {
            Ring::Fifo(r) => r.push_batch(items),
            Ring::Stamped(r) => {
                let mut n = 0;
                for v in items.by_ref() {
                    if let Some(evicted) = r.push_overwrite(v) {
                        self.dropped
                            .store(self.dropped.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                        drop(evicted);
                    }
                    n += 1;
                }
                n
            }
        }
    }

    /// Consumer only. Moves up to `max` queued messages into `out`, releasing
    /// their slots together. Returns how many were moved.
    #[inline]
    pub(crate) fn pop_batch(&self, out: &mut Vec<T>, max: usize) -> usize {
        match &self.ring {
            Ring::Fifo(r) => r.pop_batch(out, max),
            Ring::Stamped(r) => {
                let mut n = 0;
                while n < max {
                    match r.try_pop() {
                        Some(v) => out.push(v),
                        None => break,
                    }
                    n += 1;
                }
                n
            }
        }
    }

    /// Number of queued messages (a snapshot; exact when both ends are idle).
    pub(crate) fn len(&self) -> usize {
        match &self.ring {
            Ring::Fifo(r) => r.len(),
            Ring::Stamped(r) => r.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Producer only.
    pub(crate) fn count_rejected(&self) {
        self.rejected
            .store(self.rejected.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------

/// One side's index and its cached view of the other side's index.
struct Side {
    /// This side's position; the only writer is this side.
    pos: AtomicUsize,
    /// This side's last look at the other side's position (private to it).
    cached: UnsafeCell<usize>,
}

/// A single-producer single-consumer Lamport ring with cached indices.
struct Fifo<T> {
    /// Consumer side: `pos` is the head.
    consumer: CachePadded<Side>,
    /// Producer side: `pos` is the tail.
    producer: CachePadded<Side>,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    cap: usize,
}

// SAFETY: values of `T` move in through the producer and out through the
// consumer; a slot is touched by one side at a time, handed over by the
// release/acquire pair on `pos`. `cached` is private to one side. No `&T`
// is shared, so `T: Send` suffices.
unsafe impl<T: Send> Send for Fifo<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Fifo<T> {}

impl<T> Fifo<T> {
    fn new(cap: usize) -> Self {
        let len = cap.next_power_of_two();
        let side = || {
            CachePadded::new(Side {
                pos: AtomicUsize::new(0),
                cached: UnsafeCell::new(0),
            })
        };
        Self {
            consumer: side(),
            producer: side(),
            slots: (0..len)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
            mask: len - 1,
            cap,
        }
    }

    #[inline(always)]
    fn try_push(&self, value: T) -> Result<(), T> {
        let tail = self.producer.pos.load(Ordering::Relaxed);
        // SAFETY: `cached` of the producer side is only touched by the producer.
        let cached_head = self.producer.cached.with(|p| unsafe { *p });
        if tail.wrapping_sub(cached_head) >= self.cap {
            let head = self.consumer.pos.load(Ordering::Acquire);
            // SAFETY: as above.
            self.producer.cached.with_mut(|p| unsafe { *p = head });
            if tail.wrapping_sub(head) >= self.cap {
                return Err(value);
            }
        }
        // SAFETY: `tail - head < cap`, so the slot is outside the consumer's
        // readable range and the consumer finished with it (acquire on head).
        self.slots[tail & self.mask].with_mut(|p| unsafe { (*p).write(value) });
        self.producer
            .pos
            .store(tail.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    #[inline(always)]
    fn try_pop(&self) -> Option<T> {
        let head = self.consumer.pos.load(Ordering::Relaxed);
        // SAFETY: `cached` of the consumer side is only touched by the consumer.
        let cached_tail = self.consumer.cached.with(|p| unsafe { *p });
        if head == cached_tail {
            let tail = self.producer.pos.load(Ordering::Acquire);
            // SAFETY: as above.
            self.consumer.cached.with_mut(|p| unsafe { *p = tail });
            if head == tail {
                return None;
            }
        }
        // SAFETY: `head < tail`: the producer wrote this slot before releasing
        // `tail`, which we acquired, and will not touch it until we release
        // `head + 1`.
        let value = self.slots[head & self.mask].with(|p| unsafe { (*p).assume_init_read() });
        self.consumer
            .pos
            .store(head.wrapping_add(1), Ordering::Release);
        Some(value)
    }

    /// Free slots from the producer's point of view, reading the consumer's
    /// index only when the cached view shows none.
    #[inline(always)]
    fn free(&self, tail: usize) -> usize {
        // SAFETY: `cached` of the producer side is only touched by the producer.
        let cached_head = self.producer.cached.with(|p| unsafe { *p });
        let free = self.cap - tail.wrapping_sub(cached_head);
        if free > 0 {
            return free;
        }
        let head = self.consumer.pos.load(Ordering::Acquire);
        // SAFETY: as above.
        self.producer.cached.with_mut(|p| unsafe { *p = head });
        self.cap - tail.wrapping_sub(head)
    }

    /// Fills free slots from `items` and publishes them with one store.
    ///
    /// `items.next()` is user code. It cannot push into this lane (the only
    /// producer holds its sender's lane cache exclusively for the whole
    /// operation, so a re-entrant send panics before it reaches a lane), and
    /// if it panics, the slots written so far are published on the way out,
    /// so no written value is lost or left behind the tail.
    fn push_batch(&self, items: &mut impl Iterator<Item = T>) -> usize {
        /// Publishes `n` written slots from `tail` when dropped.
        struct Publish<'a> {
            pos: &'a AtomicUsize,
            tail: usize,
            n: usize,
        }
        impl Drop for Publish<'_> {
            fn drop(&mut self) {
                if self.n > 0 {
                    self.pos
                        .store(self.tail.wrapping_add(self.n), Ordering::Release);
                }
            }
        }
        let tail = self.producer.pos.load(Ordering::Relaxed);
        let free = self.free(tail);
        let mut batch = Publish {
            pos: &self.producer.pos,
            tail,
            n: 0,
        };
        while batch.n < free {
            let Some(value) = items.next() else { break };
            // SAFETY: the slot is among the `free` ones the consumer released
            // (acquire on head inside `free`), and no other push on this lane
            // ran since `tail` was read: this is the lane's only producer and
            // user code cannot re-enter it (see above). The slot becomes
            // visible to the consumer only at the release in `Publish::drop`.
            self.slots[tail.wrapping_add(batch.n) & self.mask]
                .with_mut(|p| unsafe { (*p).write(value) });
            batch.n += 1;
        }
        batch.n
    }

    fn pop_batch(&self, out: &mut Vec<T>, max: usize) -> usize {
        let head = self.consumer.pos.load(Ordering::Relaxed);
        let tail = self.producer.pos.load(Ordering::Acquire);
        // SAFETY: `cached` of the consumer side is only touched by the consumer.
        self.consumer.cached.with_mut(|p| unsafe { *p = tail });
        let n = tail.wrapping_sub(head).min(max);
        out.reserve(n);
        for k in 0..n {
            // SAFETY: `head + k < tail`, which we acquired: the producer wrote
            // these slots and will not reuse them until we release `head + n`.
            let v = self.slots[head.wrapping_add(k) & self.mask]
                .with(|p| unsafe { (*p).assume_init_read() });
            out.push(v);
        }
        if n > 0 {
            self.consumer
                .pos
                .store(head.wrapping_add(n), Ordering::Release);
        }
        n
    }

    fn len(&self) -> usize {
        let head = self.consumer.pos.load(Ordering::Acquire);
        let tail = self.producer.pos.load(Ordering::Acquire);
        tail.wrapping_sub(head).min(self.cap)
    }
}

impl<T> Drop for Fifo<T> {
    fn drop(&mut self) {
        // Exclusive access: nobody else can push or pop any more.
        while self.try_pop().is_some() {}
    }
}

// ---------------------------------------------------------------------------

struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A ring of stamped slots whose producer may evict the oldest message.
///
/// Positions encode `(lap, index)` as `lap * one_lap + index`, with
/// `one_lap` the smallest power of two above the capacity, so the capacity
/// is exact. A slot whose stamp equals the producer position is free; after
/// a write the stamp is `position + 1` (full); after a read it is
/// `position + one_lap` (free for the next lap).
struct Stamped<T> {
    /// Consumer position, also claimed by an evicting producer.
    head: CachePadded<AtomicUsize>,
    /// Producer position; written only by the producer.
    tail: CachePadded<AtomicUsize>,
    slots: Box<[Slot<T>]>,
    cap: usize,
    one_lap: usize,
}

// SAFETY: a value is moved in by the producer and out by whoever wins the
// slot (stamp protocol above); no `&T` is shared, so `T: Send` suffices.
unsafe impl<T: Send> Send for Stamped<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Stamped<T> {}

impl<T> Stamped<T> {
    fn new(cap: usize) -> Self {
        Self {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots: (0..cap)
                .map(|i| Slot {
                    stamp: AtomicUsize::new(i),
                    value: UnsafeCell::new(MaybeUninit::uninit()),
                })
                .collect(),
            cap,
            one_lap: (cap + 1).next_power_of_two(),
        }
    }

    #[inline(always)]
    fn slot(&self, pos: usize) -> &Slot<T> {
        // The index part of a position is always below `cap`.
        &self.slots[pos & (self.one_lap - 1)]
    }

    #[inline(always)]
    fn next(&self, pos: usize) -> usize {
        let index = pos & (self.one_lap - 1);
        if index + 1 < self.cap {
            pos + 1
        } else {
            (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    fn try_push(&self, value: T) -> Result<(), T> {
        let tail = self.tail.load(Ordering::Relaxed);
        let slot = self.slot(tail);
        if slot.stamp.load(Ordering::Acquire) != tail {
            return Err(value);
        }
        self.write(slot, tail, value);
        Ok(())
    }

    /// Appends `value`, evicting and returning the oldest message if full.
    fn push_overwrite(&self, value: T) -> Option<T> {
        let tail = self.tail.load(Ordering::Relaxed);
        let slot = self.slot(tail);
        let backoff = Backoff::new();
        let mut evicted = None;
        loop {
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == tail {
                break;
            }
            // The slot still holds the message of the previous lap: the oldest.
            let oldest = tail.wrapping_sub(self.one_lap);
            if stamp == oldest.wrapping_add(1)
                && self
                    .head
                    .compare_exchange(
                        oldest,
                        self.next(oldest),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                // SAFETY: winning the head CAS for `oldest` transfers ownership
                // of that slot's initialised value to us; the consumer can no
                // longer claim it and the stamp still marks it full.
                evicted = Some(slot.value.with(|p| unsafe { (*p).assume_init_read() }));
                slot.stamp.store(tail, Ordering::Release);
                break;
            }
            // The consumer claimed the oldest message and is still moving it
            // out; it frees the slot in a bounded number of steps.
            spin_step(&backoff);
        }
        self.write(slot, tail, value);
        evicted
    }

    #[inline(always)]
    fn write(&self, slot: &Slot<T>, tail: usize, value: T) {
        // SAFETY: the stamp equals `tail`, so the slot is empty and this
        // producer (the only one) owns it until the stamp is published.
        slot.value.with_mut(|p| unsafe { (*p).write(value) });
        slot.stamp.store(tail.wrapping_add(1), Ordering::Release);
        self.tail.store(self.next(tail), Ordering::Release);
    }

    fn try_pop(&self) -> Option<T> {
        let backoff = Backoff::new();
        loop {
            let head = self.head.load(Ordering::Acquire);
            let slot = self.slot(head);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == head.wrapping_add(1) {
                if self
                    .head
                    .compare_exchange(head, self.next(head), Ordering::AcqRel, Ordering::Relaxed)
                    .is_err()
                {
                    // The producer evicted this message; look again.
                    continue;
                }
                // SAFETY: the stamp says the slot holds the value written for
                // `head`, and winning the CAS made it ours.
                let value = slot.value.with(|p| unsafe { (*p).assume_init_read() });
                slot.stamp
                    .store(head.wrapping_add(self.one_lap), Ordering::Release);
                return Some(value);
            }
            if stamp == head {
                return None;
            }
            // The producer moved `head` between our two loads; read it again.
            spin_step(&backoff);
        }
    }

    fn len(&self) -> usize {
        loop {
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            if self.tail.load(Ordering::SeqCst) == tail {
                let mask = self.one_lap - 1;
                let (hix, tix) = (head & mask, tail & mask);
                return if hix < tix {
                    tix - hix
                } else if hix > tix {
                    self.cap - hix + tix
                } else if tail == head {
                    0
                } else {
                    self.cap
                };
            }
        }
    }
}

impl<T> Drop for Stamped<T> {
    fn drop(&mut self) {
        // Exclusive access: nobody else can push or pop any more.
        while self.try_pop().is_some() {}
    }
}
