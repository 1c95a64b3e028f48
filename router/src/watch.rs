//! The registration watch: what a peer session must advertise.
//!
//! A [`RegistrationWatch`] learns every intent and interest of a
//! [`Linker`](crate::Linker) as it is registered and unregistered, with its
//! [`Origin`]: first every registration present when the watch was made,
//! then each change. Pending changes coalesce per registration (one that came
//! and went before [`poll`](RegistrationWatch::poll) is never reported), so
//! the queue holds at most one entry per registration the watcher has not
//! yet seen settle: it never grows with churn.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Weak};
use std::task::Waker;

use dndm_core::sync::{Mutex, MutexGuard};

use crate::linker::{IntentId, InterestId};
use crate::pattern::Selector;
use crate::route::Route;
use crate::session::Origin;

/// One registration, as a watch reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Registration {
    /// An intent.
    Intent {
        /// Its id in the linker.
        id: IntentId,
        /// Its route.
        route: Route,
        /// Its schema fingerprint.
        fingerprint: u64,
        /// Where it was made.
        origin: Origin,
    },
    /// An interest.
    Interest {
        /// Its id in the linker.
        id: InterestId,
        /// Its selector.
        selector: Selector,
        /// Its schema fingerprint.
        fingerprint: u64,
        /// Where it was made.
        origin: Origin,
    },
}

impl Registration {
    /// Where it was made.
    pub fn origin(&self) -> Origin {
        match self {
            Self::Intent { origin, .. } | Self::Interest { origin, .. } => *origin,
        }
    }

    /// The linker id (intents and interests share one id space).
    fn key(&self) -> u64 {
        match self {
            Self::Intent { id, .. } => id.get(),
            Self::Interest { id, .. } => id.get(),
        }
    }
}

/// A change a watch reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationChange {
    /// Registered (or present when the watch was made).
    Declared(Registration),
    /// Unregistered; it was reported declared before.
    Withdrawn(Registration),
}

#[derive(Default)]
struct Pending {
    /// Per registration id: the change not yet polled.
    changes: BTreeMap<u64, RegistrationChange>,
    waker: Option<Waker>,
    closed: bool,
}

pub(crate) struct WatchShared {
    pending: Mutex<Pending>,
}

fn lock(m: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl WatchShared {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            pending: Mutex::new(Pending::default()),
        })
    }

    /// Records a registration (called under the linker's lock).
    pub(crate) fn declared(&self, r: &Registration) {
        let mut p = lock(&self.pending);
        p.changes
            .insert(r.key(), RegistrationChange::Declared(r.clone()));
        wake(&mut p);
    }

    /// Records an unregistration (called under the linker's lock).
    pub(crate) fn withdrawn(&self, r: &Registration) {
        let mut p = lock(&self.pending);
        match p.changes.remove(&r.key()) {
            // Came and went unseen: nothing to report.
            Some(RegistrationChange::Declared(_)) => {}
            _ => {
                p.changes
                    .insert(r.key(), RegistrationChange::Withdrawn(r.clone()));
            }
        }
        wake(&mut p);
    }

    pub(crate) fn close(&self) {
        let mut p = lock(&self.pending);
        p.closed = true;
        wake(&mut p);
    }
}

fn wake(p: &mut Pending) {
    if let Some(w) = &p.waker {
        w.wake_by_ref();
    }
}

/// Watches a linker's registrations; see the module docs. Made by
/// [`Linker::watch`](crate::Linker::watch); dropping it stops the watch.
pub struct RegistrationWatch {
    pub(crate) shared: Arc<WatchShared>,
    pub(crate) linker: Weak<dyn WatchOwner>,
}

/// What a watch needs of its linker when it is dropped.
pub(crate) trait WatchOwner: Send + Sync {
    fn unwatch(&self, shared: &Arc<WatchShared>);
}

impl RegistrationWatch {
    /// Moves every pending change into `out` (appending), declarations and
    /// withdrawals in registration-id order. Returns how many.
    pub fn poll(&self, out: &mut Vec<RegistrationChange>) -> usize {
        let mut p = lock(&self.shared.pending);
        let n = p.changes.len();
        out.extend(std::mem::take(&mut p.changes).into_values());
        n
    }

    /// Changes waiting for [`poll`](Self::poll).
    pub fn pending(&self) -> usize {
        lock(&self.shared.pending).changes.len()
    }

    /// Wakes `waker` (from the registering thread) at every later change,
    /// and at once if changes are pending already. `None` stops it.
    pub fn set_waker(&self, waker: Option<Waker>) {
        let mut p = lock(&self.shared.pending);
        p.waker = waker;
        if !p.changes.is_empty() || p.closed {
            wake(&mut p);
        }
    }

    /// True once the linker closed (its withdrawals are pending or polled).
    pub fn is_closed(&self) -> bool {
        lock(&self.shared.pending).closed
    }
}

impl Drop for RegistrationWatch {
    fn drop(&mut self) {
        if let Some(owner) = self.linker.upgrade() {
            owner.unwatch(&self.shared);
        }
    }
}

impl fmt::Debug for RegistrationWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrationWatch")
            .field("pending", &self.pending())
            .finish()
    }
}
