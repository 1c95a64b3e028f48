//! `dndm-scope`: hierarchical scopes that own handles, with access
//! policies and isolated, observable state.
//!
//! A [`Scope`] is a named node of a tree (`robot.arm`, its child
//! `robot.arm.gripper`). Paths given inside a scope are relative to it;
//! the absolute form (`/robot.arm.imu`) is explicit and must stay inside.
//! A child inherits its ancestors' settings ([`Scope::set`] /
//! [`Scope::get`]) and must pass their policies as well as its own, so it
//! can only narrow them. Handles adopted by a scope ([`Scope::reserve`],
//! [`Reservation::adopt`]) are closed when it closes, children first, all
//! before `close` (or the drop of the last handle) returns.
//!
//! Each scope holds typed state ([`State`]): keys of any message type,
//! observers, validators, computed keys, batches, and snapshots through
//! the codec. Other scopes reach it only if it granted them access.
//!
//! The facade (`dndm::Scope`) composes this crate with a node's linker.
//!
//! A scope's state can also be *replicated*: keys declared as replicated
//! ([`crdt::Replicas`]: a last-writer-wins register ordered by hybrid
//! logical clocks, a PN counter, an observed-remove set) are shared with
//! the same scope on other nodes and converge without a coordinator,
//! whatever order deltas arrive in and however often. The facade carries
//! the deltas (`dndm::Scope::replicated_register` and friends); here two
//! replicas are wired by hand:
//!
//! ```
//! use std::sync::Arc;
//! use dndm_codec::Message;
//! use dndm_scope::crdt::{Delta, Outbox, Replicas};
//! use rkyv::{Archive, Deserialize, Serialize};
//!
//! #[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
//! #[message(name = "robot.Goal")]
//! struct Goal {
//!     x: i32,
//! }
//!
//! /// Collects what a replica sends (the facade publishes it instead).
//! #[derive(Default)]
//! struct Wire(dndm_core::sync::Mutex<Vec<Delta>>);
//! impl Outbox for Wire {
//!     fn send(&self, d: Delta) {
//!         self.0.lock().unwrap().push(d);
//!     }
//! }
//!
//! let (a, b) = (
//!     Arc::new(Replicas::new("robot", 1, dndm_core::clock::now_ns)),
//!     Arc::new(Replicas::new("robot", 2, dndm_core::clock::now_ns)),
//! );
//! let wire = Arc::new(Wire::default());
//! a.attach(wire.clone());
//!
//! let goal = a.register::<Goal>("goal")?;
//! let visits = a.counter("visits")?;
//! goal.set(Goal { x: 3 })?;
//! visits.add(2)?;
//!
//! // `b` declares the same keys, then merges whatever reaches it: deltas
//! // in any order, twice, or a full state (what anti-entropy sends).
//! let (goal_b, visits_b) = (b.register::<Goal>("goal")?, b.counter("visits")?);
//! let sent = wire.0.lock().unwrap().clone();
//! for d in sent.iter().rev().chain(&sent).chain(&a.full_state()) {
//!     b.apply(d)?;
//! }
//! assert_eq!(goal_b.get()?, Some(Goal { x: 3 }));
//! assert_eq!(visits_b.value(), 2);
//!
//! // Data from a peer is untrusted: a malformed delta is refused and
//! // counted, and changes nothing.
//! let mut bad = sent[0].clone();
//! bad.value_type = "robot.Other".into();
//! assert!(b.apply(&bad).is_err());
//! assert_eq!(b.stats().dropped, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ```
//! use dndm_codec::Message;
//! use dndm_scope::{Access, Op, Policy, Scope, Target};
//! use rkyv::{Archive, Deserialize, Serialize};
//!
//! #[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
//! #[message(name = "robot.Mode")]
//! struct Mode {
//!     speed: u32,
//! }
//!
//! let robot = Scope::root("robot")?;
//! let arm = robot.child("arm")?;
//! assert_eq!(arm.resolve_path("imu")?.as_str(), "robot.arm.imu");
//! assert!(arm.resolve_path("../base").is_err());
//!
//! // The parent denies publishing secrets; the child cannot widen that.
//! robot.set_policy(Policy::new().deny(&[Op::Publish], "secret.**")?);
//! arm.set_policy(Policy::new().allow(Op::ALL, "/robot.**")?);
//! let secret = "robot.Mode@robot.secret.key".parse()?;
//! let denied = arm.check(Op::Publish, Target::Route(&secret)).unwrap_err();
//! assert!(denied.to_string().contains("deny publish"));
//!
//! // State: the arm may read the robot's state once granted.
//! let mode = robot.state().key("mode", Mode { speed: 1 })?;
//! robot.grant(&arm, Access::Read)?;
//! let seen = arm.state_of("robot")?.key("mode", Mode { speed: 0 })?;
//! let changes = seen.observe()?;
//! mode.set(Mode { speed: 2 })?;
//! assert_eq!(changes.try_recv()?.value, Mode { speed: 2 });
//! assert!(seen.set(Mode { speed: 3 }).is_err()); // read-only
//!
//! let bytes = robot.state().snapshot()?;
//! mode.set(Mode { speed: 9 })?;
//! robot.state().restore(&bytes)?;
//! assert_eq!(mode.get()?, Mode { speed: 2 });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod crdt;
mod info;
mod path;
mod policy;
mod state;
mod tree;

pub use info::{HandleInfo, HandleKind, KeyInfo, ScopeCounters, ScopeInfo};
pub use path::PathError;
pub use policy::{Denied, Effect, Op, Policy, Rule, RuleError, Target};
pub use state::{
    Access, AnyKey, Batch, Change, Inputs, Key, KeyError, OBSERVER_CAPACITY, ObserveError,
    Observer, ReadError, Reader, RestoreError, SnapshotError, State, StateValue, WriteError,
};
pub use tree::{
    Checker, ClosedError, GrantError, Membership, Owned, Reservation, Scope, ScopeError,
    StateAccessError,
};
