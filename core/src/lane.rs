//! A lane: the bounded ring between one sender handle and one receiver.
//!
//! Every slot carries a stamp that says whose turn it is, so the producer and
//! the consumer never read an index the other one writes on the hot path: the
//! cache line that carries a message also carries its "ready" bit.
//!
//! Positions encode `(lap, index)` as `lap * one_lap + index`, with
//! `one_lap` the smallest power of two above the capacity, so the capacity
//! is exact and no division is needed.
//!
//! * A slot whose stamp equals the producer position is free for it.
//! * After a write the stamp is `position + 1`: full, ready for the consumer.
//! * After a read the stamp is `position + one_lap`: free for the next lap.
//!
//! A lossless lane has exactly one producer and one consumer, and only the
//! consumer moves `head`. An overwriting lane (the `DropOldest` policy) lets
//! the producer evict the oldest message: producer and consumer then claim
//! the head slot with a compare-and-swap, and the winner owns the value.

use std::mem::MaybeUninit;

use crossbeam_utils::Backoff;

use crate::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::sync::{CachePadded, UnsafeCell, spin_step};
use crate::wait::WaitSlot;

struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

pub(crate) struct Lane<T> {
    /// Consumer position (also claimed by an evicting producer).
    head: CachePadded<AtomicUsize>,
    /// Producer position; written only by the producer.
    tail: CachePadded<AtomicUsize>,
    slots: Box<[Slot<T>]>,
    cap: usize,
    one_lap: usize,
    overwrite: bool,
    /// Producer-side state, on its own line: read by the consumer after every
    /// pop, written only when the producer goes to sleep or goes away.
    producer: CachePadded<ProducerSide>,
    /// Messages this lane evicted (DropOldest) or refused (Reject); single writer.
    dropped: CachePadded<AtomicU64>,
    rejected: AtomicU64,
}

pub(crate) struct ProducerSide {
    /// The producer handle is gone: once empty, the lane can be retired.
    pub(crate) gone: AtomicBool,
    /// Where a producer blocked on a full lane waits.
    pub(crate) wait: WaitSlot,
}

// SAFETY: values of `T` are moved in by the producer and out by whoever wins
// the slot (see the stamp protocol above); no `&T` is ever shared between
// threads, so `T: Send` is enough.
unsafe impl<T: Send> Send for Lane<T> {}
// SAFETY: as above; all shared state is atomics or accessed under the
// stamp protocol.
unsafe impl<T: Send> Sync for Lane<T> {}

impl<T> Lane<T> {
    pub(crate) fn new(cap: usize, overwrite: bool) -> Self {
        debug_assert!(cap > 0);
        let one_lap = (cap + 1).next_power_of_two();
        let slots = (0..cap)
            .map(|i| Slot {
                stamp: AtomicUsize::new(i),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Self {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots,
            cap,
            one_lap,
            overwrite,
            producer: CachePadded::new(ProducerSide {
                gone: AtomicBool::new(false),
                wait: WaitSlot::new(),
            }),
            dropped: CachePadded::new(AtomicU64::new(0)),
            rejected: AtomicU64::new(0),
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

    pub(crate) fn producer(&self) -> &ProducerSide {
        &self.producer
    }

    /// Producer only. Appends `value`, or hands it back when the lane is full.
    #[inline]
    pub(crate) fn try_push(&self, value: T) -> Result<(), T> {
        let tail = self.tail.load(Ordering::Relaxed);
        let slot = self.slot(tail);
        if slot.stamp.load(Ordering::Acquire) != tail {
            return Err(value);
        }
        self.write(slot, tail, value);
        Ok(())
    }

    /// Producer only, overwriting lanes only. Appends `value`, evicting the
    /// oldest message when the lane is full; returns the evicted message.
    pub(crate) fn push_overwrite(&self, value: T) -> Option<T> {
        debug_assert!(self.overwrite);
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
                    .compare_exchange(oldest, self.next(oldest), Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                // SAFETY: winning the head CAS for `oldest` transfers ownership
                // of that slot's initialised value to us; the consumer can no
                // longer claim it and the stamp still marks it full.
                evicted = Some(slot.value.with(|p| unsafe { (*p).assume_init_read() }));
                slot.stamp.store(tail, Ordering::Release);
                self.dropped
                    .store(self.dropped.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
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
        self.tail.store(self.next(tail), Ordering::Relaxed);
    }

    /// Consumer only. Takes the oldest message, if any.
    #[inline]
    pub(crate) fn try_pop(&self) -> Option<T> {
        let backoff = Backoff::new();
        loop {
            let head = self.head.load(Ordering::Acquire);
            let slot = self.slot(head);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == head.wrapping_add(1) {
                if self.overwrite {
                    if self
                        .head
                        .compare_exchange(head, self.next(head), Ordering::AcqRel, Ordering::Relaxed)
                        .is_err()
                    {
                        // The producer evicted this message; look again.
                        continue;
                    }
                } else {
                    self.head.store(self.next(head), Ordering::Relaxed);
                }
                // SAFETY: the stamp says the slot holds the value written for
                // `head`, and we own it: in a lossless lane we are the only one
                // who moves `head`; in an overwriting lane we won the CAS.
                let value = slot.value.with(|p| unsafe { (*p).assume_init_read() });
                slot.stamp
                    .store(head.wrapping_add(self.one_lap), Ordering::Release);
                return Some(value);
            }
            if stamp == head {
                return None;
            }
            // Only in an overwriting lane: the producer moved `head` between
            // our two loads; read it again.
            spin_step(&backoff);
        }
    }

    /// Number of queued messages (a snapshot; exact when both ends are idle).
    pub(crate) fn len(&self) -> usize {
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

    pub(crate) fn is_empty(&self) -> bool {
        let head = self.head.load(Ordering::Acquire);
        self.slot(head).stamp.load(Ordering::Acquire) != head.wrapping_add(1)
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

impl<T> Drop for Lane<T> {
    fn drop(&mut self) {
        // Exclusive access: nobody else can push or pop any more.
        while self.try_pop().is_some() {}
    }
}
