//! `dndm`: Decentralized Named Data Messaging.
//!
//! Modules say *what* data they want, not *where* it lives. A [`Node`]
//! publishes typed messages on routes (`TypeName@path`) and subscribes with
//! patterns (`*` = one segment, `**` = any number); the linker joins them
//! as soon as both exist, checking the schema fingerprint of the type on
//! both sides. Request/reply ([`Node::serve`], [`Node::call`]) runs on the
//! same machinery.
//!
//! ```
//! use dndm::prelude::*;
//! use rkyv::{Archive, Deserialize, Serialize};
//!
//! #[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
//! #[message(name = "robot.Imu")]
//! struct Imu {
//!     accel: [f32; 3],
//! }
//!
//! let node = Node::new("robot");
//! // Everything under `robot.*.imu`, keeping the latest 16 per publisher.
//! let sub = node.subscribe_with::<Imu>(
//!     "robot.*.imu",
//!     SubscribeOptions::new().capacity(16).policy(Policy::DropOldest),
//! )?;
//! let imu = node.publish::<Imu>("robot.arm.imu")?;
//! assert_eq!(imu.interest_count(), 1); // linked before `publish` returned
//!
//! imu.send(Imu { accel: [0.0, 0.0, 9.81] })?;
//! let sample = sub.recv()?;
//! assert_eq!(sample.route().to_string(), "robot.Imu@robot.arm.imu");
//! assert_eq!(sample.seq(), 1);
//! assert_eq!(sample.accel[2], 9.81);
//! # Ok::<(), dndm::Error>(())
//! ```
//!
//! The in-process channel core stays available as [`core`], the route and
//! linker layer as [`router`] and the message codec as [`codec`].
#![forbid(unsafe_code)]

mod error;
mod node;
mod pubsub;
mod scope;
mod service;

pub use dndm_codec as codec;
pub use dndm_core as core;
pub use dndm_router as router;

pub use dndm_codec::Message;
pub use dndm_core::Policy;
pub use dndm_router::{LinkEvent, Route, RouteKey, SchemaMismatch};
pub use error::{
    CallError, Error, PublishError, RecvError, SendError, ServeError, SubscribeError, TryRecvError,
};
pub use node::{Callback, Node, NodeBuilder, NodeStats};
pub use pubsub::{
    Iter, PublishOptions, Publisher, PublisherId, Sample, SubscribeOptions, Subscriber, now_ns,
};
pub use scope::*;
pub use service::{Client, Server};

/// The names most programs need.
pub mod prelude {
    pub use crate::{
        CallError, Message, Node, Policy, PublishOptions, Publisher, Sample, SubscribeOptions,
        Subscriber,
    };
    pub use dndm_core::{Config, Receiver, Sender, channel};
}

/// Compiles and runs the README's example as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Compiles and runs the workspace README's examples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct WorkspaceReadmeDoctests;
