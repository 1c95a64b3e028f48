//! Replicated scope state across nodes.
//!
//! `dndm-scope` holds the replicated types and a scope's [`Replicas`]
//! (sans-IO: writes make deltas, peers' deltas are validated and merged);
//! this module carries the deltas. The first `replicated_*` call on a scope
//! starts its replication: a publisher and a subscriber of
//! [`Delta`] on `<scope>._state`, owned by the scope (so its policies
//! apply and its close stops them), and one thread that merges what
//! arrives and sends every key's full state (anti-entropy) when a new
//! replica links and every [`ReplicationOptions::anti_entropy`] interval.
//! A write sends its delta at once from the writing thread. Deltas lost to
//! a partition or a full queue are repaired by the next full state, so
//! replicas converge once they can talk again, without a coordinator.

use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dndm_core::sync::atomic::{AtomicBool, Ordering};
use dndm_scope::crdt::{
    Counter, DeclareError, Delta, Outbox, Register, ReplicaStats, Replicas, ReplicatedSet,
};
use dndm_scope::{ClosedError, HandleInfo, HandleKind, Membership, Owned, StateValue};
use parking_lot::Mutex;

use crate::RecvTimeoutError;
use crate::pubsub::{PublishOptions, SubscribeOptions};
use crate::scope::{
    Scope, ScopePublishError, ScopeSubscribeError, ScopedPublisher, ScopedSubscriber,
};

/// The path, under a scope, where its replicas exchange deltas.
pub const STATE_PATH: &str = "_state";

/// How a scope replicates its state (a setting: descendants inherit it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicationOptions {
    /// How often every key's full state is sent, so that a replica that
    /// missed deltas converges. Default 500 ms.
    pub anti_entropy: Duration,
    /// The replication subscriber's queue (per peer lane); deltas beyond
    /// it are dropped oldest first and repaired by anti-entropy. Default 256.
    pub capacity: usize,
}

impl Default for ReplicationOptions {
    fn default() -> Self {
        Self {
            anti_entropy: Duration::from_millis(500),
            capacity: 256,
        }
    }
}

impl ReplicationOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`anti_entropy`](Self::anti_entropy) (at least 1 ms).
    #[must_use]
    pub fn anti_entropy(mut self, every: Duration) -> Self {
        self.anti_entropy = every.max(Duration::from_millis(1));
        self
    }

    /// Sets [`capacity`](Self::capacity) (at least 1).
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }
}

/// A replicated key could not be declared, or replication not started.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicateError {
    /// The scope is closed.
    #[error("cannot replicate: {0}")]
    Closed(#[from] ClosedError),
    /// The key is invalid or already declared as something else.
    #[error(transparent)]
    Declare(#[from] DeclareError),
    /// The scope refused the publisher of its deltas (a policy, say).
    #[error("cannot replicate scope state: {0}")]
    Publish(#[from] ScopePublishError),
    /// The scope refused the subscriber of its peers' deltas.
    #[error("cannot replicate scope state: {0}")]
    Subscribe(#[from] ScopeSubscribeError),
    /// The replication thread could not start.
    #[error("cannot start the replication thread of scope {scope}: {reason}")]
    Thread {
        /// The scope.
        scope: String,
        /// Why.
        reason: String,
    },
}

struct PubOutbox {
    publisher: Mutex<ScopedPublisher<Delta>>,
}

impl Outbox for PubOutbox {
    fn send(&self, delta: Delta) {
        let p = self.publisher.lock();
        if let Err(e) = p.send(delta) {
            // Anti-entropy repairs what a full queue or a closing scope
            // lost.
            tracing::debug!(route = %p.route(), error = %e, "replica delta not delivered");
        }
    }
}

impl PubOutbox {
    fn links(&self) -> usize {
        self.publisher.lock().interest_count()
    }
}

/// The replication thread, owned by the scope: its close stops and joins
/// the thread.
struct Replication {
    path: String,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    replicas: Arc<Replicas>,
    /// Its place in the scope; dropped with it when the scope closes.
    membership: Mutex<Option<Membership>>,
}

impl Owned for Replication {
    fn close(&self) {
        self.stop.store(true, Ordering::Release);
        self.replicas.close();
        let thread = self.thread.lock().take();
        if let Some(t) = thread {
            if t.thread().id() == std::thread::current().id() {
                return;
            }
            if t.join().is_err() {
                tracing::warn!(scope = %self.path, "the replication thread panicked");
            }
        }
    }

    fn info(&self) -> HandleInfo {
        let keys = self.replicas.keys().len();
        HandleInfo::new(
            HandleKind::Replication,
            format!("{}.{STATE_PATH} ({keys} keys)", self.path),
            0,
        )
    }
}

fn run(
    sub: ScopedSubscriber<Delta>,
    outbox: Arc<PubOutbox>,
    replicas: Arc<Replicas>,
    every: Duration,
    stop: Arc<AtomicBool>,
) {
    let mut next_full = Instant::now();
    let mut links = 0;
    // Ends when the scope closes: `stop` is set, and the subscriber reports
    // closure once drained.
    while !stop.load(Ordering::Acquire) {
        let now = Instant::now();
        let n = outbox.links();
        if now >= next_full || n > links {
            // A new replica linked, or it is time: everyone gets everything.
            replicas.send(replicas.full_state());
            next_full = now + every;
        }
        links = n;
        let wait = next_full.saturating_duration_since(Instant::now());
        match sub.recv_timeout(wait.max(Duration::from_millis(1))) {
            Ok(sample) => {
                if let Err(e) = replicas.apply(&sample) {
                    tracing::debug!(error = %e, "replica delta refused");
                }
            }
            Err(RecvTimeoutError::Timeout { .. }) => {}
            Err(_) => break,
        }
    }
}

impl Scope {
    /// Sets how this scope and its descendants replicate state (read when
    /// a scope's replication starts).
    pub fn set_replication(&self, opts: ReplicationOptions) {
        self.tree().set(opts);
    }

    /// Starts replication (once) and returns the scope's replicas.
    fn replicas(&self) -> Result<Arc<Replicas>, ReplicateError> {
        let replicas = self.tree().replicas()?;
        if replicas.is_attached() {
            return Ok(replicas);
        }
        let opts = self
            .tree()
            .get::<ReplicationOptions>()
            .map(|o| *o)
            .unwrap_or_default();
        let publisher = self.publish_with::<Delta>(STATE_PATH, PublishOptions::default())?;
        let sub = self.subscribe_with::<Delta>(
            STATE_PATH,
            SubscribeOptions::new()
                .capacity(opts.capacity)
                .policy(dndm_core::Policy::DropOldest),
        )?;
        let outbox = Arc::new(PubOutbox {
            publisher: Mutex::new(publisher),
        });
        if !replicas.attach(Arc::clone(&outbox) as Arc<dyn Outbox>) {
            // Another caller started it meanwhile; ours are withdrawn here.
            return Ok(replicas);
        }
        let ticket = self.tree().reserve()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (replicas, stop) = (Arc::clone(&replicas), Arc::clone(&stop));
            std::thread::Builder::new()
                .name(format!("dndm-replica {}", self.path()))
                .spawn(move || run(sub, outbox, replicas, opts.anti_entropy, stop))
        };
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                replicas.detach();
                return Err(ReplicateError::Thread {
                    scope: self.path().to_string(),
                    reason: e.to_string(),
                });
            }
        };
        let owned = Arc::new(Replication {
            path: self.path().to_string(),
            stop,
            thread: Mutex::new(Some(thread)),
            replicas: Arc::clone(&replicas),
            membership: Mutex::new(None),
        });
        // Owned by the scope until it closes (its close joins the thread);
        // the scope's list and the membership point at each other until
        // then, and the close drops both.
        let membership = ticket.adopt(Arc::clone(&owned) as Arc<dyn Owned>)?;
        *owned.membership.lock() = Some(membership);
        Ok(replicas)
    }

    /// The last-writer-wins register `key` of `T`, shared with the same
    /// scope on every node it reaches: the write with the greatest hybrid
    /// logical clock stamp wins everywhere. The handle does not keep the
    /// scope open; once the scope closed, writes fail and reads see the
    /// last state. Declaring it again (any node,
    /// any clone of the scope) gives another handle to the same key.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use dndm::prelude::*;
    /// use rkyv::{Archive, Deserialize, Serialize};
    ///
    /// #[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
    /// #[message(name = "fleet.Mode")]
    /// struct Mode {
    ///     speed: u32,
    /// }
    ///
    /// let a = Node::builder("a").listen("mem://doc-replicated-register")?.build()?;
    /// let b = Node::builder("b").connect("mem://doc-replicated-register")?.build()?;
    /// // Replication lives as long as the scope: keep it.
    /// let fleet_a = a.scope("fleet")?;
    /// let mode_a = fleet_a.replicated_register::<Mode>("mode")?;
    /// let hits_a = fleet_a.replicated_counter("hits")?;
    /// let fleet_b = b.scope("fleet")?;
    /// let (mode_b, hits_b) = (
    ///     fleet_b.replicated_register::<Mode>("mode")?,
    ///     fleet_b.replicated_counter("hits")?,
    /// );
    /// mode_a.set(Mode { speed: 3 })?;
    /// hits_a.add(1)?;
    /// hits_b.add(1)?;
    ///
    /// // Replicas converge as soon as deltas (or a full state) arrive.
    /// let deadline = Instant::now() + Duration::from_secs(20);
    /// while (mode_b.get()?.is_none() || hits_a.value() != 2 || hits_b.value() != 2)
    ///     && Instant::now() < deadline
    /// {
    ///     std::thread::sleep(Duration::from_millis(1));
    /// }
    /// assert_eq!(mode_b.get()?, Some(Mode { speed: 3 }));
    /// assert_eq!((hits_a.value(), hits_b.value()), (2, 2));
    ///
    /// // Once the scope closes, its keys can be read but not written.
    /// fleet_b.close();
    /// assert!(hits_b.add(1).is_err());
    /// assert_eq!(hits_b.value(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replicated_register<T: StateValue>(
        &self,
        key: &str,
    ) -> Result<Register<T>, ReplicateError> {
        Ok(self.replicas()?.register::<T>(key)?)
    }

    /// The PN counter `key`, shared with the same scope on other nodes.
    pub fn replicated_counter(&self, key: &str) -> Result<Counter, ReplicateError> {
        Ok(self.replicas()?.counter(key)?)
    }

    /// The observed-remove set `key` of `T`, shared with the same scope on
    /// other nodes (an insert concurrent with a remove wins).
    pub fn replicated_set<T: StateValue>(
        &self,
        key: &str,
    ) -> Result<ReplicatedSet<T>, ReplicateError> {
        Ok(self.replicas()?.set::<T>(key)?)
    }

    /// The replication counters (deltas merged, changed, dropped as
    /// malformed, for undeclared keys, sent); `None` before replication
    /// started.
    pub fn replication_stats(&self) -> Option<ReplicaStats> {
        let r = self.tree().replicas().ok()?;
        r.is_attached().then(|| r.stats())
    }
}

impl fmt::Debug for Replication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replication")
            .field("scope", &self.path)
            .finish_non_exhaustive()
    }
}
