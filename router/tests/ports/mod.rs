//! Test doubles shared by the router's integration tests: a port that links
//! with anything and carries nothing, and a waker that counts its wakes.
#![allow(dead_code, reason = "each test binary uses the part it needs")]
#![allow(
    clippy::disallowed_types,
    reason = "test doubles use std sync types like users do"
)]

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Wake;

use dndm_router::{IntentPort, InterestPort, LinkInfo, PortError};

/// Both sides of a link, connecting to anything and carrying nothing.
pub(crate) struct Port;

impl IntentPort for Port {
    fn connect(&self, _: &dyn InterestPort, _: LinkInfo<'_>) -> Result<(), PortError> {
        Ok(())
    }
    fn disconnect(&self, _: &dyn InterestPort, _: LinkInfo<'_>) {}
}

impl InterestPort for Port {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A waker that counts how often it was woken.
pub(crate) struct Count(pub AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
