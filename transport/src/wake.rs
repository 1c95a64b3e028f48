//! The slot where a connection or listener keeps its user's [`Waker`].
//!
//! The user sets or clears the waker with [`WakerSlot::set`]; the mio I/O
//! thread (or a user thread that freed queue room) calls
//! [`WakerSlot::wake`] after it made the change the waker announces
//! visible (bytes in the socket, a close recorded in the hand-off, queue
//! bytes written). `set` wakes the new waker once right away, so an event
//! that fired before the waker was in place is not lost: the user's next
//! call sees it. `wake` pays one load while no waker is set, and never runs
//! the waker under the slot's lock.

use std::task::Waker;

use dndm_core::sync::Mutex;
use dndm_core::sync::atomic::{AtomicBool, Ordering};

/// A [`Waker`] that other threads may wake.
#[derive(Debug, Default)]
pub(crate) struct WakerSlot {
    /// A waker is set (read first, so an unused slot costs one load).
    armed: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl WakerSlot {
    /// Replaces the waker; wakes a new one once at once.
    pub(crate) fn set(&self, waker: Option<Waker>) {
        let now = waker.clone();
        let old = {
            let mut slot = self
                .waker
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.armed.store(waker.is_some(), Ordering::SeqCst);
            std::mem::replace(&mut *slot, waker)
        };
        drop(old);
        if let Some(w) = now {
            w.wake();
        }
    }

    /// Whether a waker is set.
    pub(crate) fn is_set(&self) -> bool {
        self.armed.load(Ordering::SeqCst)
    }

    /// Wakes the waker, if one is set.
    pub(crate) fn wake(&self) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        let waker = self
            .waker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(w) = waker {
            w.wake();
        }
    }
}
