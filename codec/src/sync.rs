//! The codec's private sync shim: the only module naming std's `Mutex`.
//!
//! Under `--cfg dndm_loom` the types come from loom so the buffer pool is
//! model-checked. dndm-codec may not depend on dndm-core (layering), so it
//! keeps this small shim of its own.
#![allow(
    clippy::disallowed_types,
    reason = "the sync shim is the one place allowed to name std sync types"
)]

#[cfg(dndm_loom)]
use loom::sync as imp;
#[cfg(not(dndm_loom))]
use std::sync as imp;

pub(crate) use imp::{Arc, MutexGuard};

/// A mutex that recovers from poisoning: the pool's state (a list of idle
/// buffers) stays consistent even if a holder panicked.
#[derive(Debug)]
pub(crate) struct Mutex<T>(imp::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(imp::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
