//! The synchronisation shim: the only module in dndm that names `std::sync`
//! atomics, `Arc`, `Mutex`, `UnsafeCell` and thread parking.
//!
//! Built normally it re-exports std; built with `RUSTFLAGS="--cfg dndm_loom"`
//! it re-exports [loom](https://docs.rs/loom)'s model-checked types instead,
//! so every crate that goes through this module is model-checked by the same
//! switch. Other dndm crates use it as `dndm_core::sync`.
//!
//! It also provides the asymmetric fence pair ([`light_fence`] and
//! [`heavy_fence`]) on which the channel's wake-up protocol rests.
#![allow(
    clippy::disallowed_types,
    reason = "this module is the one place allowed to name std's sync types"
)]

#[cfg(not(dndm_loom))]
use std::sync as imp;

#[cfg(dndm_loom)]
use loom::sync as imp;

#[cfg(not(dndm_loom))]
pub use std::sync::{Arc, Condvar, LockResult, MutexGuard};
#[cfg(not(dndm_loom))]
pub use std::thread;

#[cfg(dndm_loom)]
pub use loom::sync::{Arc, Condvar, LockResult, MutexGuard};
#[cfg(dndm_loom)]
pub use loom::thread;

/// Atomics: newtypes over std's (or loom's) so that `clippy.toml` can forbid
/// the std types everywhere else. They deref to the wrapped atomic, so every
/// method of the std type is available.
pub mod atomic {
    #![allow(
        clippy::disallowed_types,
        reason = "the shim wraps the std types it forbids elsewhere"
    )]
    #[cfg(not(dndm_loom))]
    pub use std::sync::atomic::{Ordering, compiler_fence, fence};

    #[cfg(dndm_loom)]
    pub use loom::sync::atomic::{Ordering, fence};

    macro_rules! atomic {
        ($(#[$doc:meta])* $name:ident, $int:ty) => {
            $(#[$doc])*
            #[derive(Debug, Default)]
            #[repr(transparent)]
            pub struct $name(super::imp::atomic::$name);

            impl $name {
                /// A new atomic holding `v`.
                #[cfg(not(dndm_loom))]
                pub const fn new(v: $int) -> Self {
                    Self(super::imp::atomic::$name::new(v))
                }

                /// A new atomic holding `v`.
                #[cfg(dndm_loom)]
                pub fn new(v: $int) -> Self {
                    Self(super::imp::atomic::$name::new(v))
                }
            }

            impl core::ops::Deref for $name {
                type Target = super::imp::atomic::$name;

                #[inline(always)]
                fn deref(&self) -> &Self::Target {
                    &self.0
                }
            }
        };
    }

    atomic!(
        /// `AtomicBool` from std, or from loom under `--cfg dndm_loom`.
        AtomicBool,
        bool
    );
    atomic!(
        /// `AtomicUsize` from std, or from loom under `--cfg dndm_loom`.
        AtomicUsize,
        usize
    );
    atomic!(
        /// `AtomicU32` from std, or from loom under `--cfg dndm_loom`.
        AtomicU32,
        u32
    );
    atomic!(
        /// `AtomicU64` from std, or from loom under `--cfg dndm_loom`.
        AtomicU64,
        u64
    );
}

/// `Mutex` from std, or from loom under `--cfg dndm_loom`.
#[derive(Debug, Default)]
pub struct Mutex<T>(imp::Mutex<T>);

impl<T> Mutex<T> {
    /// A new unlocked mutex holding `value`.
    pub fn new(value: T) -> Self {
        Self(imp::Mutex::new(value))
    }

    /// Locks the mutex (see `std::sync::Mutex::lock`).
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.0.lock()
    }
}

pub use crossbeam_utils::CachePadded;

/// An `UnsafeCell` whose accesses loom can track.
///
/// Accesses go through closures so that, under loom, each read or write is
/// checked against concurrent accesses.
#[derive(Debug)]
pub struct UnsafeCell<T>(
    #[cfg(not(dndm_loom))] std::cell::UnsafeCell<T>,
    #[cfg(dndm_loom)] loom::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    #[cfg(not(dndm_loom))]
    pub const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Wraps `value`.
    #[cfg(dndm_loom)]
    pub fn new(value: T) -> Self {
        Self(loom::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared raw pointer to the contents.
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(not(dndm_loom))]
        return f(self.0.get());
        #[cfg(dndm_loom)]
        return self.0.with(f);
    }

    /// Runs `f` with a mutable raw pointer to the contents.
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(not(dndm_loom))]
        return f(self.0.get());
        #[cfg(dndm_loom)]
        return self.0.with_mut(f);
    }
}

/// One step of a bounded spin: a CPU hint outside loom, a scheduler yield
/// inside it (loom must see every spin iteration as a yield point).
#[inline]
pub fn spin_step(backoff: &crossbeam_utils::Backoff) {
    #[cfg(not(dndm_loom))]
    backoff.snooze();
    #[cfg(dndm_loom)]
    {
        let _ = backoff;
        loom::thread::yield_now();
    }
}

/// How the wake-up handshake between a publisher and a party about to sleep
/// orders memory: the choice behind [`light_fence`] and [`heavy_fence`].
///
/// Fixed once per process, before or at the first channel operation that
/// needs it: see [`set_fence_mode`]. Both halves of the handshake must use
/// the same mode, so it cannot change while channels are in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FenceMode {
    /// A thread or task about to sleep calls
    /// `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, an inter-processor
    /// interrupt to every CPU running a thread of this process; every send
    /// and receive then pays only a compiler fence. Cheapest for publishers;
    /// every other thread of the process (a control loop, a network poller)
    /// is interrupted each time a receiver or blocked sender goes to sleep.
    /// The default where available. Linux only: elsewhere, or if the kernel
    /// refuses, [`Symmetric`](Self::Symmetric) is used instead.
    Asymmetric,
    /// Both sides pay a full `SeqCst` fence (one locked instruction on x86):
    /// a few nanoseconds on every send and receive (more when the fence
    /// waits for stores to reach another core), and no thread is ever
    /// interrupted by another's sleep. For processes whose other threads
    /// must never see an interrupt they did not ask for.
    Symmetric,
}

/// Sets the process-wide [`FenceMode`]. Call it once, early (in `main`,
/// before any channel is used); the mode is fixed the first time a channel
/// needs it, and a later call cannot change it.
///
/// Returns the mode now in force: `Ok` if it was set by this call (which may
/// be [`FenceMode::Symmetric`] when [`FenceMode::Asymmetric`] is unavailable
/// here), `Err` with the mode already fixed otherwise.
///
/// Without a call, the mode is [`FenceMode::Asymmetric`] where available,
/// or what the environment variable `DNDM_FENCE` says (`asymmetric` or
/// `symmetric`).
///
/// How the default was chosen (`cargo xtask bench core`, `fence_*` rows):
/// a sleep costs about 0.7 µs more under `Asymmetric` (the system call),
/// a thread beside a party that goes to sleep every 10 µs saw no slowdown
/// beyond the noise, and streaming 64-byte messages between two threads ran
/// about 1.5 times faster without the per-message fences.
///
/// ```
/// use dndm_core::sync::{FenceMode, fence_mode, set_fence_mode};
/// let _ = set_fence_mode(FenceMode::Symmetric);
/// assert_eq!(fence_mode(), FenceMode::Symmetric);
/// assert!(set_fence_mode(FenceMode::Symmetric).is_err()); // fixed now
/// ```
pub fn set_fence_mode(mode: FenceMode) -> Result<FenceMode, FenceMode> {
    #[cfg(not(dndm_loom))]
    return mode::set(mode);
    #[cfg(dndm_loom)]
    {
        let _ = mode;
        Err(FenceMode::Symmetric)
    }
}

/// The process-wide [`FenceMode`], fixing the default if none was set.
pub fn fence_mode() -> FenceMode {
    #[cfg(not(dndm_loom))]
    return mode::current();
    #[cfg(dndm_loom)]
    FenceMode::Symmetric
}

/// The cheap half of an asymmetric store→load fence, for the hot path.
///
/// Pattern: one side does `store(A); light_fence(); load(B)`, the other does
/// `store(B); heavy_fence(); load(A)`. Then at least one of the two loads
/// sees the other side's store. Under [`FenceMode::Asymmetric`]
/// `heavy_fence` asks the kernel to run a full barrier on every running
/// thread of the process, so `light_fence` only has to stop the compiler
/// from reordering; under [`FenceMode::Symmetric`] both halves are full
/// `SeqCst` fences.
#[inline(always)]
pub fn light_fence() {
    #[cfg(not(dndm_loom))]
    {
        if mode::is_asymmetric() {
            atomic::compiler_fence(atomic::Ordering::SeqCst);
            return;
        }
    }
    atomic::fence(atomic::Ordering::SeqCst);
}

/// The expensive half of the fence pair: see [`light_fence`]. Used only on
/// slow paths (a thread about to sleep).
#[inline]
pub fn heavy_fence() {
    #[cfg(all(target_os = "linux", not(dndm_loom)))]
    {
        if mode::is_asymmetric() && membarrier::barrier() {
            return;
        }
    }
    atomic::fence(atomic::Ordering::SeqCst);
}

/// Whether [`light_fence`] is a compiler-only fence in this process
/// ([`FenceMode::Asymmetric`] in force).
pub fn asymmetric_fences() -> bool {
    fence_mode() == FenceMode::Asymmetric
}

#[cfg(not(dndm_loom))]
mod mode {
    //! The process-wide fence mode: unset, then fixed once.
    #![allow(
        clippy::disallowed_types,
        reason = "a process-wide, set-once flag: loom never runs this module"
    )]
    use std::sync::atomic::{AtomicU8, Ordering};

    use super::FenceMode;

    const UNSET: u8 = 0;
    const ASYMMETRIC: u8 = 1;
    const SYMMETRIC: u8 = 2;

    static MODE: AtomicU8 = AtomicU8::new(UNSET);

    /// The hot-path check: one relaxed load of a flag that never changes
    /// once set (every thread agrees on it: it is fixed by one
    /// compare-and-swap and never written again).
    #[inline(always)]
    pub(super) fn is_asymmetric() -> bool {
        match MODE.load(Ordering::Relaxed) {
            ASYMMETRIC => true,
            SYMMETRIC => false,
            _ => current() == FenceMode::Asymmetric,
        }
    }

    fn decode(v: u8) -> FenceMode {
        if v == ASYMMETRIC {
            FenceMode::Asymmetric
        } else {
            FenceMode::Symmetric
        }
    }

    /// What `mode` means on this machine: asymmetric needs a working
    /// `membarrier` (registered here, before anyone can rely on it).
    fn effective(mode: FenceMode) -> u8 {
        match mode {
            #[cfg(target_os = "linux")]
            FenceMode::Asymmetric if super::membarrier::register() => ASYMMETRIC,
            _ => SYMMETRIC,
        }
    }

    pub(super) fn set(mode: FenceMode) -> Result<FenceMode, FenceMode> {
        let current = MODE.load(Ordering::Acquire);
        if current != UNSET {
            return Err(decode(current));
        }
        let want = effective(mode);
        match MODE.compare_exchange(UNSET, want, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(decode(want)),
            Err(fixed) => Err(decode(fixed)),
        }
    }

    #[cold]
    pub(super) fn current() -> FenceMode {
        let v = MODE.load(Ordering::Acquire);
        if v != UNSET {
            return decode(v);
        }
        let default = match std::env::var("DNDM_FENCE").as_deref() {
            Ok("symmetric") => FenceMode::Symmetric,
            _ => FenceMode::Asymmetric,
        };
        match set(default) {
            Ok(m) | Err(m) => m,
        }
    }
}

#[cfg(all(target_os = "linux", not(dndm_loom)))]
mod membarrier {
    //! `membarrier(2)` with the private expedited command.

    const CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

    /// Registers the process; true when expedited barriers work.
    pub(super) fn register() -> bool {
        // SAFETY: membarrier takes two integer arguments and a CPU id, reads
        // no user memory and has no effect besides registering the process.
        let registered = unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                CMD_REGISTER_PRIVATE_EXPEDITED,
                0 as libc::c_uint,
                0 as libc::c_int,
            )
        } == 0;
        registered && barrier()
    }

    /// Runs a full memory barrier on every running thread of this process.
    pub(super) fn barrier() -> bool {
        // SAFETY: as above; the command only issues barriers on other CPUs.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                CMD_PRIVATE_EXPEDITED,
                0 as libc::c_uint,
                0 as libc::c_int,
            ) == 0
        }
    }
}
