//! `dndm-router`: the named-data model of dndm, without any I/O.
//!
//! * [`Route`]: where data is published. Plain routes are `TypeName@path`;
//!   hashed (capability) routes are `prefix#hash`, see [`Route::hashed`].
//! * [`Pattern`] and [`Selector`]: what an interest wants: `*` matches one
//!   segment, `**` zero or more.
//! * [`SelectorIndex`] and [`RouteIndex`]: the matcher indexes, answering
//!   "which selectors match this route" and "which routes match this
//!   selector".
//! * [`Linker`]: joins intents (publishers) and interests (subscribers)
//!   whose route matches and whose schema fingerprints agree, and tells both
//!   sides. It is generic over [`IntentPort`] / [`InterestPort`], so it knows
//!   nothing about channels or sockets; [`ChannelIntent`] and
//!   [`ChannelInterest`] plug in dndm-core channels.
//! * [`session::Session`]: the sans-IO peer session, the protocol state
//!   machine of one connection to another node (handshake, declarations,
//!   numeric route aliases, keep-alive, request correlation, limits).
//!   Frames and `now` in, frames and events out; the wire protocol is in
//!   `router/src/session/PROTOCOL.md`.
//!
//! # Route rules
//!
//! * A **type name** has 1 to [`MAX_TYPE_NAME_LEN`] bytes and no `@`, `#`,
//!   `*`, whitespace or control character (`robot.Imu`, `my_crate::Pose`).
//! * A **path** has 1 to [`MAX_SEGMENTS`] segments separated by `.`, at most
//!   [`MAX_PATH_LEN`] bytes in all. A segment has 1 to [`MAX_SEGMENT_LEN`]
//!   bytes of `[A-Za-z0-9_-]`. Empty segments (`a..b`, `.a`, `a.`) and any
//!   other character (`@`, `#`, `*`, `/`, space, non-ASCII) are rejected
//!   with a [`RouteError`] that quotes the input.
//! * A **pattern** is a path whose segments may also be `*` or `**`
//!   (`a*` is an error). Where patterns are accepted, [`PatternLimits`] caps
//!   their segments, `**` count and length (by default 8 `**`); the linker
//!   refuses larger ones with [`PatternError::TooComplex`]. Matching does
//!   bounded work for any pattern: O(index trie nodes × segments).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use dndm_core::{Config, Receiver, Sender};
//! use dndm_router::{ChannelIntent, ChannelInterest, Linker, Route, Selector};
//!
//! let linker = Linker::new();
//!
//! // An interest in every IMU under `robot`, fed by a core channel.
//! let rx = Receiver::<u32>::new(Config::new(16))?;
//! let selector: Selector = "robot.Imu@robot.**.imu".parse()?;
//! let interest = linker.add_interest(selector, 42, Arc::new(ChannelInterest::new(rx.inlet())))?;
//!
//! // A publisher: linked before `add_intent` returns.
//! let tx = Sender::<u32>::new();
//! let route: Route = "robot.Imu@robot.arm.imu".parse()?;
//! let intent = linker.add_intent(route, 42, Arc::new(ChannelIntent::new(tx.downgrade())))?;
//! assert_eq!(intent.interest_count(), 1);
//! assert_eq!(interest.intent_count(), 1);
//!
//! tx.send(7)?;
//! assert_eq!(rx.recv()?, 7);
//!
//! drop(interest); // unlinks at once; the intent is told
//! assert_eq!(intent.interest_count(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod index;
mod linker;
mod pattern;
mod route;
pub mod session;
mod watch;

pub use index::{RouteIndex, SelectorIndex};
pub use linker::{
    ChannelIntent, ChannelInterest, EVENT_QUEUE_CAPACITY, Intent, IntentId, IntentPort, Interest,
    InterestId, InterestPort, LinkError, LinkEvent, LinkGuard, LinkInfo, Linker, PortError,
    SchemaMismatch,
};
pub use pattern::{Complexity, Pattern, PatternError, PatternLimits, Segment, Selector};
pub use route::{
    HASH_LEN, MAX_PATH_LEN, MAX_SEGMENT_LEN, MAX_SEGMENTS, MAX_TYPE_NAME_LEN, Path, Route,
    RouteError, RouteHash, RouteKey, TypeName,
};
pub use watch::{Registration, RegistrationChange, RegistrationWatch};
