//! `dndm`: Decentralized Named Data Messaging.
//!
//! Modules say *what* data they want, not *where* it lives. This is the crate
//! users depend on; it composes the workspace's layers. Today it exposes the
//! in-process channel core ([`core`]); the typed `Node`, `Publisher` and
//! `Subscriber` API arrives with the router.
//!
//! ```
//! use dndm::core::{Config, Policy, channel};
//!
//! let (tx, rx) = channel::<u32>(Config::new(8).policy(Policy::DropOldest))?;
//! for i in 0..20 {
//!     tx.send(i)?;
//! }
//! // Only the latest 8 samples are kept.
//! assert_eq!(rx.drain().collect::<Vec<_>>(), (12..20).collect::<Vec<_>>());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub use dndm_core as core;

/// The names most programs need.
pub mod prelude {
    pub use dndm_core::{Config, Policy, Receiver, Sender, channel};
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
