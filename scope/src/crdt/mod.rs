//! Replicated state: a scope's keys shared with the same scope on other
//! nodes, converging without a coordinator.
//!
//! * [`Hlc`] / [`HlcClock`]: hybrid logical clocks (physical nanoseconds,
//!   a logical counter, the replica id as tiebreak) that order writes.
//! * [`LwwRegister`], [`PnCounter`], [`OrSet`]: the pure replicated types,
//!   each a join semilattice ([`Crdt::merge`] is commutative, associative
//!   and idempotent), whose writes return deltas.
//! * [`Delta`]: the message replicas exchange, a write's delta or a key's
//!   full state, on the reserved type [`DELTA_TYPE`].
//! * [`Replicas`]: a scope's replicated keys, sans-IO. Writes go through
//!   typed handles ([`Register`], [`Counter`], [`ReplicatedSet`]) and send
//!   deltas to an [`Outbox`]; [`Replicas::apply`] validates a peer's delta
//!   (untrusted) before it merges it; [`Replicas::full_state`] is what
//!   anti-entropy sends, so replicas that missed deltas (a partition, a
//!   late start) converge at the next exchange.
//!
//! The facade (`dndm::Scope::replicated_register` and friends) carries
//! deltas over ordinary pub/sub, on `dndm.scope.ReplicaDelta@<scope>._state`.

mod hlc;
mod replicas;
mod types;
mod wire;

pub use hlc::{Hlc, HlcClock};
pub use replicas::{
    ApplyError, Counter, DeclareError, MAX_KEY_ENTRIES, MAX_KEY_LEN, Outbox, Register,
    ReplicaError, ReplicaKind, ReplicaStats, Replicas, ReplicatedSet,
};
pub use types::{Crdt, LwwRegister, OrSet, PnCounter};
pub use wire::{Body, CounterEntry, DELTA_TYPE, Delta, SetEntry, Stamp};
