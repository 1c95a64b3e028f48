//! The codec's private sync shim: the only module naming `Arc` and `Mutex`.
//!
//! Under `--cfg dndm_loom` the types come from loom so the buffer pool is
//! model-checked. dndm-codec may not depend on dndm-core (layering), so it
//! keeps this small shim of its own.

#[cfg(not(dndm_loom))]
#[allow(
    clippy::disallowed_types,
    reason = "the sync shim is the one place allowed to name std sync types"
)]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

#[cfg(dndm_loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};

/// Locks `mutex`, recovering from poisoning: the pool's state (a list of
/// idle buffers) stays consistent even if a holder panicked.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
