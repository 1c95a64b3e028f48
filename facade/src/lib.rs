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
//! # Across processes
//!
//! A node that [`listen`](Node::listen)s or [`connect`](Node::connect)s
//! reaches other nodes through the same calls; the transport is picked by
//! URI (`tcp://`, `unix://`, `mem://` for the process's simulated network).
//! Below, both nodes run in one process, but the path is the real one:
//! session, codec frames, loopback TCP.
//!
//! ```
//! # use dndm::prelude::*;
//! # use rkyv::{Archive, Deserialize, Serialize};
//! # use std::time::Duration;
//! # #[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
//! # #[message(name = "robot.Imu")]
//! # struct Imu { accel: [f32; 3] }
//! let robot = Node::builder("robot").build()?;
//! let addr = robot.listen("tcp://127.0.0.1:0")?; // any free port
//! let planner = Node::builder("planner").connect(&addr.to_string())?.build()?;
//!
//! let imu = robot.publish::<Imu>("robot.arm.imu")?;
//! let sub = planner.subscribe::<Imu>("robot.*.imu")?;
//! assert!(imu.wait_for_interest(Some(Duration::from_secs(10)))); // the remote subscriber
//! imu.send(Imu { accel: [0.0, 0.0, 9.81] })?;
//! let sample = sub.recv_timeout(Duration::from_secs(10))?;
//! assert_eq!(sample.accel[2], 9.81);
//! assert_eq!(planner.peers()[0].name, "robot");
//! # Ok::<(), dndm::Error>(())
//! ```
//!
//! The in-process channel core stays available as [`chan`] (dndm-core; not
//! named `core`, which would shadow `::core` under a glob import), the route and
//! linker layer as [`router`] and the message codec as [`codec`].
#![forbid(unsafe_code)]

mod error;
mod node;
mod pubsub;
mod remote;
mod replicate;
mod scope;
mod service;

pub use dndm_codec as codec;
pub use dndm_core as chan;
pub use dndm_router as router;
pub use dndm_transport as transport;

pub use dndm_codec::Message;
pub use dndm_core::Policy;
pub use dndm_router::{LinkEvent, Route, RouteKey, SchemaMismatch};
pub use error::{
    BuildError, CallError, ConnectError, Error, ListenError, PublishError, RecvError,
    RecvTimeoutError, SendError, ServeError, SubscribeError, TryRecvError,
};
pub use node::{Callback, Node, NodeBuilder, NodeStats};
pub use pubsub::{
    Iter, PublishOptions, Publisher, PublisherId, Sample, SubscribeOptions, Subscriber,
    SubscriberId, now_ns,
};
pub use remote::{PEER_EVENT_CAPACITY, PeerEvent, PeerEventKind, PeerId, PeerInfo};
pub use replicate::{ReplicateError, ReplicationOptions, STATE_PATH};
pub use scope::*;
pub use service::{Client, Server};

/// The names most programs need.
pub mod prelude {
    pub use crate::{
        CallError, LinkEvent, Message, Node, Policy, PublishOptions, Publisher, PublisherId,
        RecvTimeoutError, Sample, Server, SubscribeOptions, Subscriber, SubscriberId, TryRecvError,
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
