//! Where blocked parties (threads or async tasks) wait to be woken.
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
//!
//! Several parties may wait at once (two `recv_async` futures polled by
//! different tasks, or a future and a blocked thread): each registration has
//! a key, and a wake-up wakes every registered party, which then re-checks
//! its condition. A party that stops waiting removes only its own key, and
//! `armed` stays set while any registration is left. User code (`Waker`
//! clone, drop and wake) never runs under the slot's lock.

use std::task::Waker;

use smallvec::SmallVec;

use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{Mutex, heavy_fence, thread};

enum Sleeper {
    Thread(thread::Thread),
    Task(Waker),
}

impl Sleeper {
    fn wake(self) {
        match self {
            Sleeper::Thread(t) => t.unpark(),
            Sleeper::Task(w) => w.wake(),
        }
    }
}

/// One registration in a [`WaitSlot`]; the waiter keeps it to re-arm (a
/// future polled again) and to disarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaitKey(u64);

#[derive(Default)]
struct Sleepers {
    next_key: u64,
    list: SmallVec<[(WaitKey, Sleeper); 1]>,
}

pub(crate) struct WaitSlot {
    /// Set while `sleepers` may hold a registration; read on the hot path.
    armed: AtomicBool,
    sleepers: Mutex<Sleepers>,
}

impl WaitSlot {
    pub(crate) fn new() -> Self {
        Self {
            armed: AtomicBool::new(false),
            sleepers: Mutex::new(Sleepers::default()),
        }
    }

    /// Registers `sleeper` under `key` (a new key if `None`), replacing what
    /// that key held, then publishes `armed`.
    fn arm(&self, key: Option<WaitKey>, sleeper: Sleeper) -> WaitKey {
        let (key, replaced) = {
            let mut sleepers = lock(&self.sleepers);
            let key = key.unwrap_or_else(|| {
                let k = WaitKey(sleepers.next_key);
                sleepers.next_key += 1;
                k
            });
            let replaced = match sleepers.list.iter_mut().find(|(k, _)| *k == key) {
                Some((_, old)) => Some(std::mem::replace(old, sleeper)),
                None => {
                    sleepers.list.push((key, sleeper));
                    None
                }
            };
            (key, replaced)
        };
        // Release: a waker that reads this store also sees the registration.
        self.armed.store(true, Ordering::Release);
        heavy_fence();
        drop(replaced);
        key
    }

    /// Registers the current thread; the caller re-checks its condition,
    /// parks, and then [`disarm`s](Self::disarm) the key.
    pub(crate) fn arm_thread(&self) -> WaitKey {
        self.arm(None, Sleeper::Thread(thread::current()))
    }

    /// Registers `waker` under `*key` (a new key the first time); the caller
    /// re-checks its condition and then returns `Poll::Pending`. A future
    /// keeps its key across polls and disarms it when it completes or is
    /// dropped.
    pub(crate) fn arm_task(&self, key: &mut Option<WaitKey>, waker: &Waker) {
        if let Some(k) = *key {
            let sleepers = lock(&self.sleepers);
            let current = sleepers
                .list
                .iter()
                .any(|(kk, s)| *kk == k && matches!(s, Sleeper::Task(w) if w.will_wake(waker)));
            drop(sleepers);
            if current {
                // Still registered with an equivalent waker: only the
                // handshake is needed.
                self.armed.store(true, Ordering::Release);
                heavy_fence();
                return;
            }
        }
        *key = Some(self.arm(*key, Sleeper::Task(waker.clone())));
    }

    /// The waiter with `key` stops waiting (its condition is met, it timed
    /// out, or it was woken). Other registrations stay armed.
    pub(crate) fn disarm(&self, key: WaitKey) {
        let removed = {
            let mut sleepers = lock(&self.sleepers);
            let removed = sleepers
                .list
                .iter()
                .position(|(k, _)| *k == key)
                .map(|i| sleepers.list.swap_remove(i));
            // Under the lock: an `arm` that follows stores `true` after this.
            self.armed
                .store(!sleepers.list.is_empty(), Ordering::Relaxed);
            removed
        };
        drop(removed);
    }

    /// True when someone may be sleeping here. Call after `light_fence`.
    #[inline(always)]
    pub(crate) fn is_armed(&self) -> bool {
        self.armed.load(Ordering::Relaxed)
    }

    /// Wakes every sleeper, if one is armed. Call after `light_fence`.
    #[inline]
    pub(crate) fn wake(&self) {
        if self.is_armed() {
            self.wake_slow();
        }
    }

    #[cold]
    fn wake_slow(&self) {
        if self.armed.swap(false, Ordering::AcqRel) {
            let sleepers = std::mem::take(&mut lock(&self.sleepers).list);
            for (_, sleeper) in sleepers {
                sleeper.wake();
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
