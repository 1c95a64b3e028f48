//! Where one blocked party (a thread or an async task) waits to be woken.
//!
//! The protocol is the store/fence/load handshake of [`crate::sync`]:
//!
//! * the waker publishes its change (a message, a free slot, a close), calls
//!   [`light_fence`](crate::sync::light_fence), then [`WaitSlot::wake`], which
//!   first reads `armed` with a plain load;
//! * the waiter [`arm`s](WaitSlot::arm_thread) the slot (which ends with a
//!   [`heavy_fence`](crate::sync::heavy_fence)), checks its condition once
//!   more, and only then sleeps.
//!
//! Either the waker sees `armed` or the waiter sees the change, so no wake-up
//! is lost, and the hot path pays one plain load when nobody sleeps.

use std::task::Waker;

use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{Mutex, heavy_fence, thread};

enum Sleeper {
    Thread(thread::Thread),
    Task(Waker),
}

pub(crate) struct WaitSlot {
    armed: AtomicBool,
    sleeper: Mutex<Option<Sleeper>>,
}

impl WaitSlot {
    pub(crate) fn new() -> Self {
        Self {
            armed: AtomicBool::new(false),
            sleeper: Mutex::new(None),
        }
    }

    fn arm(&self, sleeper: Sleeper) {
        {
            let mut slot = lock(&self.sleeper);
            match (&*slot, &sleeper) {
                (Some(Sleeper::Task(old)), Sleeper::Task(new)) if old.will_wake(new) => {}
                _ => *slot = Some(sleeper),
            }
        }
        self.armed.store(true, Ordering::Relaxed);
        heavy_fence();
    }

    /// Registers the current thread; the caller re-checks its condition and
    /// then parks.
    pub(crate) fn arm_thread(&self) {
        self.arm(Sleeper::Thread(thread::current()));
    }

    /// Registers `waker`; the caller re-checks its condition and then returns
    /// `Poll::Pending`.
    pub(crate) fn arm_task(&self, waker: &Waker) {
        self.arm(Sleeper::Task(waker.clone()));
    }

    /// The waiter found its condition met after arming.
    pub(crate) fn disarm(&self) {
        self.armed.store(false, Ordering::Relaxed);
    }

    /// True when someone may be sleeping here. Call after `light_fence`.
    #[inline(always)]
    pub(crate) fn is_armed(&self) -> bool {
        self.armed.load(Ordering::Relaxed)
    }

    /// Wakes the sleeper, if one is armed. Call after `light_fence`.
    #[inline]
    pub(crate) fn wake(&self) {
        if self.is_armed() {
            self.wake_slow();
        }
    }

    #[cold]
    fn wake_slow(&self) {
        if self.armed.swap(false, Ordering::AcqRel) {
            let sleeper = lock(&self.sleeper).take();
            match sleeper {
                Some(Sleeper::Thread(t)) => t.unpark(),
                Some(Sleeper::Task(w)) => w.wake(),
                None => {}
            }
        }
    }
}

/// Locks `m`, ignoring poisoning: the data behind every dndm mutex stays
/// consistent even if a holder panicked (no user code runs under these locks).
pub(crate) fn lock<T>(m: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
