//! The replicated keys of one scope, sans-IO: local writes produce
//! [`Delta`]s for an [`Outbox`]; deltas from peers go through
//! [`Replicas::apply`], which validates before it merges; anti-entropy
//! sends [`Replicas::full_state`]. The facade moves deltas over pub/sub.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use dndm_core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use dndm_core::sync::{Mutex, MutexGuard};

use super::hlc::{Hlc, HlcClock};
use super::types::{Crdt, LwwRegister, OrSet, PnCounter};
use super::wire::{self, Body, CounterEntry, Delta, SetEntry, Stamp};
use crate::state::StateValue;

/// The longest key name, in bytes.
pub const MAX_KEY_LEN: usize = 256;

/// The most entries (counter replicas, set tags and tombstones) one key
/// holds; a delta that would grow a key beyond it is dropped.
pub const MAX_KEY_ENTRIES: usize = 1 << 20;

/// Where a scope's replicas send their deltas (the facade publishes them).
///
/// Contract: [`send`](Self::send) is called without any lock of the
/// replicas held and must not block for long.
pub trait Outbox: Send + Sync + 'static {
    /// Sends `delta` to the other replicas.
    fn send(&self, delta: Delta);
}

/// The three replicated kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicaKind {
    /// [`Register`].
    Register,
    /// [`Counter`].
    Counter,
    /// [`ReplicatedSet`].
    Set,
}

impl fmt::Display for ReplicaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Register => "register",
            Self::Counter => "counter",
            Self::Set => "set",
        })
    }
}

/// A replicated key could not be declared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeclareError {
    /// The key name is empty, too long or not printable ASCII.
    #[error("invalid replicated key {key:?} in scope {scope}: {reason}")]
    InvalidKey {
        /// The scope.
        scope: String,
        /// The name given.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// The key is already declared as another kind or value type.
    #[error("replicated key {key} in scope {scope} is a {declared}, not a {asked}")]
    Conflict {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
        /// What it is (`register of robot.Mode`).
        declared: String,
        /// What was asked.
        asked: String,
    },
}

/// A replicated value could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// The value could not be encoded.
    #[error("cannot encode the value of replicated key {key} in scope {scope}: {reason}")]
    Encode {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A stored value could not be decoded.
    #[error("cannot decode the value of replicated key {key} in scope {scope}: {reason}")]
    Decode {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The scope closed: its replicated keys can be read, not written.
    #[error("cannot write replicated key {key}: scope {scope} is closed")]
    Closed {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
    },
    /// The key would exceed [`MAX_KEY_ENTRIES`].
    #[error("replicated key {key} in scope {scope} is full ({MAX_KEY_ENTRIES} entries)")]
    Full {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
    },
}

/// A delta from a peer was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// It names another scope.
    #[error("delta from replica {sender:#x} names scope {found}, not {scope}")]
    WrongScope {
        /// This scope.
        scope: String,
        /// The scope it names.
        found: String,
        /// The sender.
        sender: u64,
    },
    /// The key is not declared here (a later full state brings it once it
    /// is).
    #[error("delta from replica {sender:#x} for undeclared key {key:?} in scope {scope}")]
    UnknownKey {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
        /// The sender.
        sender: u64,
    },
    /// Kind, value type, fingerprint, a size or a value's archive is wrong.
    #[error("malformed delta from replica {sender:#x} for key {key} in scope {scope}: {reason}")]
    Malformed {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
        /// The sender.
        sender: u64,
        /// Why.
        reason: String,
    },
}

/// Counters of a scope's replication.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaStats {
    /// Deltas merged (whether or not they changed anything).
    pub applied: u64,
    /// Deltas that changed a key.
    pub changed: u64,
    /// Malformed deltas dropped.
    pub dropped: u64,
    /// Deltas for keys not declared here.
    pub unknown: u64,
    /// Deltas sent (writes and full states).
    pub sent: u64,
}

enum Value {
    Register(LwwRegister<Vec<u8>>),
    Counter(PnCounter),
    Set(OrSet<Vec<u8>>),
}

impl Value {
    fn kind(&self) -> ReplicaKind {
        match self {
            Self::Register(_) => ReplicaKind::Register,
            Self::Counter(_) => ReplicaKind::Counter,
            Self::Set(_) => ReplicaKind::Set,
        }
    }

    fn entries(&self) -> usize {
        match self {
            Self::Register(_) => 1,
            Self::Counter(c) => c.entries().count(),
            Self::Set(s) => s.tagged().map(|(_, t)| t.len()).sum::<usize>() + s.tombstones().len(),
        }
    }
}

type Check = fn(&[u8]) -> Result<(), String>;

struct Entry {
    value_type: &'static str,
    fingerprint: u64,
    check: Check,
    value: Value,
}

impl Entry {
    fn describe(&self) -> String {
        describe(self.value.kind(), self.value_type)
    }
}

fn describe(kind: ReplicaKind, value_type: &str) -> String {
    if value_type.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} of {value_type}")
    }
}

struct Inner {
    clock: HlcClock,
    keys: BTreeMap<String, Entry>,
}

/// The replicated keys of one scope (see the module docs). Shared: the
/// typed handles and the facade's replication thread hold it.
pub struct Replicas {
    scope: String,
    replica: u64,
    now: fn() -> u64,
    inner: Mutex<Inner>,
    outbox: Mutex<Option<Arc<dyn Outbox>>>,
    closed: AtomicBool,
    version: AtomicU64,
    applied: AtomicU64,
    changed: AtomicU64,
    dropped: AtomicU64,
    unknown: AtomicU64,
    sent: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn check_value<T: StateValue>(bytes: &[u8]) -> Result<(), String> {
    wire::decode::<T>(bytes).map(drop)
}

fn no_value(_: &[u8]) -> Result<(), String> {
    Ok(())
}

impl fmt::Debug for Replicas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replicas")
            .field("scope", &self.scope)
            .field("replica", &format_args!("{:#x}", self.replica))
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Replicas {
    /// The replicated keys of scope `scope` as replica `replica` (unique
    /// among the scope's replicas), stamping writes with `now` (physical
    /// nanoseconds; the facade passes `dndm_core::clock::now_ns`).
    pub fn new(scope: &str, replica: u64, now: fn() -> u64) -> Self {
        Self {
            scope: scope.to_string(),
            replica,
            now,
            inner: Mutex::new(Inner {
                clock: HlcClock::new(replica),
                keys: BTreeMap::new(),
            }),
            outbox: Mutex::new(None),
            closed: AtomicBool::new(false),
            version: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            changed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        }
    }

    /// The scope's path.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// This replica's id.
    pub fn replica(&self) -> u64 {
        self.replica
    }

    /// Sets where writes send their deltas; true if none was set before
    /// (the first caller starts replication, later ones find it running)
    /// and the replicas are not closed.
    pub fn attach(&self, outbox: Arc<dyn Outbox>) -> bool {
        let mut o = lock(&self.outbox);
        if o.is_some() || self.is_closed() {
            return false;
        }
        *o = Some(outbox);
        true
    }

    /// True while an outbox is attached.
    pub fn is_attached(&self) -> bool {
        lock(&self.outbox).is_some()
    }

    /// Stops sending deltas; a later [`attach`](Self::attach) may start
    /// again.
    pub fn detach(&self) {
        lock(&self.outbox).take();
    }

    /// The scope closed: detaches, and every later write fails with
    /// [`ReplicaError::Closed`] (reads still see the last state).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.detach();
    }

    /// True once [`close`](Self::close)d.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Bumped by every change, local or merged.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The counters.
    pub fn stats(&self) -> ReplicaStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ReplicaStats {
            applied: l(&self.applied),
            changed: l(&self.changed),
            dropped: l(&self.dropped),
            unknown: l(&self.unknown),
            sent: l(&self.sent),
        }
    }

    /// The declared keys with what they are (`counter`, `set of T`).
    pub fn keys(&self) -> Vec<(String, String)> {
        lock(&self.inner)
            .keys
            .iter()
            .map(|(k, e)| (k.clone(), e.describe()))
            .collect()
    }

    fn declare(
        self: &Arc<Self>,
        key: &str,
        kind: ReplicaKind,
        value_type: &'static str,
        fingerprint: u64,
        check: Check,
    ) -> Result<(), DeclareError> {
        let invalid = |reason| DeclareError::InvalidKey {
            scope: self.scope.clone(),
            key: key.to_string(),
            reason,
        };
        if key.is_empty() {
            return Err(invalid("empty"));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(invalid("longer than 256 bytes"));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("not printable ASCII"));
        }
        let mut inner = lock(&self.inner);
        if let Some(e) = inner.keys.get(key) {
            if e.value.kind() != kind || e.value_type != value_type || e.fingerprint != fingerprint
            {
                return Err(DeclareError::Conflict {
                    scope: self.scope.clone(),
                    key: key.to_string(),
                    declared: e.describe(),
                    asked: describe(kind, value_type),
                });
            }
            return Ok(());
        }
        let value = match kind {
            ReplicaKind::Register => Value::Register(LwwRegister::new()),
            ReplicaKind::Counter => Value::Counter(PnCounter::new()),
            ReplicaKind::Set => Value::Set(OrSet::new()),
        };
        inner.keys.insert(
            key.to_string(),
            Entry {
                value_type,
                fingerprint,
                check,
                value,
            },
        );
        Ok(())
    }

    /// Declares (or finds) the last-writer-wins register `key` of `T`.
    pub fn register<T: StateValue>(
        self: &Arc<Self>,
        key: &str,
    ) -> Result<Register<T>, DeclareError> {
        self.declare(
            key,
            ReplicaKind::Register,
            T::TYPE_NAME,
            T::FINGERPRINT,
            check_value::<T>,
        )?;
        Ok(Register {
            handle: Handle::new(self, key),
            _t: PhantomData,
        })
    }

    /// Declares (or finds) the PN counter `key`.
    pub fn counter(self: &Arc<Self>, key: &str) -> Result<Counter, DeclareError> {
        self.declare(key, ReplicaKind::Counter, "", 0, no_value)?;
        Ok(Counter {
            handle: Handle::new(self, key),
        })
    }

    /// Declares (or finds) the observed-remove set `key` of `T`.
    pub fn set<T: StateValue>(
        self: &Arc<Self>,
        key: &str,
    ) -> Result<ReplicatedSet<T>, DeclareError> {
        self.declare(
            key,
            ReplicaKind::Set,
            T::TYPE_NAME,
            T::FINGERPRINT,
            check_value::<T>,
        )?;
        Ok(ReplicatedSet {
            handle: Handle::new(self, key),
            _t: PhantomData,
        })
    }

    /// Every key's full state, one delta per key (anti-entropy: a peer
    /// that missed deltas, or joined late, converges by merging them).
    pub fn full_state(&self) -> Vec<Delta> {
        let inner = lock(&self.inner);
        inner
            .keys
            .iter()
            .filter_map(|(k, e)| body_of(&e.value).map(|b| self.delta(k, e, true, b)))
            .collect()
    }

    fn delta(&self, key: &str, e: &Entry, full: bool, body: Body) -> Delta {
        Delta {
            scope: self.scope.clone(),
            key: key.to_string(),
            sender: self.replica,
            full,
            value_type: e.value_type.to_string(),
            fingerprint: e.fingerprint,
            body,
        }
    }

    /// Sends the deltas through the outbox (if attached).
    pub fn send(&self, deltas: impl IntoIterator<Item = Delta>) {
        let outbox = lock(&self.outbox).clone();
        if let Some(o) = outbox {
            for d in deltas {
                self.sent.fetch_add(1, Ordering::Relaxed);
                o.send(d);
            }
        }
    }

    /// Validates a delta from a peer and merges it. `Ok(true)` if it
    /// changed something; `Ok(false)` for one of our own or one that adds
    /// nothing. On error nothing changed and the delta is counted.
    pub fn apply(&self, d: &Delta) -> Result<bool, ApplyError> {
        let r = self.apply_inner(d);
        let counter = match &r {
            Ok(_) => &self.applied,
            Err(ApplyError::UnknownKey { .. }) => &self.unknown,
            Err(_) => &self.dropped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Ok(true) = r {
            self.changed.fetch_add(1, Ordering::Relaxed);
            self.version.fetch_add(1, Ordering::AcqRel);
        }
        r
    }

    fn apply_inner(&self, d: &Delta) -> Result<bool, ApplyError> {
        if d.scope != self.scope {
            return Err(ApplyError::WrongScope {
                scope: self.scope.clone(),
                found: d.scope.clone(),
                sender: d.sender,
            });
        }
        if d.sender == self.replica {
            return Ok(false);
        }
        let bad = |reason: String| ApplyError::Malformed {
            scope: self.scope.clone(),
            key: d.key.clone(),
            sender: d.sender,
            reason,
        };
        let mut inner = lock(&self.inner);
        let inner = &mut *inner;
        let Some(e) = inner.keys.get_mut(&d.key) else {
            return Err(ApplyError::UnknownKey {
                scope: self.scope.clone(),
                key: d.key.clone(),
                sender: d.sender,
            });
        };
        if d.value_type != e.value_type || d.fingerprint != e.fingerprint {
            return Err(bad(format!(
                "values are {} ({:#018x}), the key holds {} ({:#018x})",
                d.value_type, d.fingerprint, e.value_type, e.fingerprint
            )));
        }
        let incoming = match &d.body {
            Body::Register { .. } => 1,
            Body::Counter { entries } => entries.len(),
            Body::Set { live, removed } => {
                live.iter().map(|s| s.tags.len()).sum::<usize>() + removed.len()
            }
        };
        if e.value.entries().saturating_add(incoming) > MAX_KEY_ENTRIES {
            return Err(bad(format!(
                "{incoming} entries would grow the key past {MAX_KEY_ENTRIES}"
            )));
        }
        // Validate everything first: a refused delta changes nothing.
        let mut newest: Option<Hlc> = None;
        let mut seen = |s: &Stamp| {
            let h = Hlc::from(*s);
            newest = newest.max(Some(h));
            h
        };
        let changed = match (&mut e.value, &d.body) {
            (Value::Register(reg), Body::Register { stamp, value }) => {
                (e.check)(value).map_err(|r| bad(format!("value: {r}")))?;
                let stamp = seen(stamp);
                reg.merge(&LwwRegister::with(stamp, value.clone()))
            }
            (Value::Counter(c), Body::Counter { entries }) => {
                let mut delta = PnCounter::new();
                for x in entries {
                    delta.join_entry(x.replica, x.inc, x.dec);
                }
                c.merge(&delta)
            }
            (Value::Set(set), Body::Set { live, removed }) => {
                let mut delta = OrSet::new();
                for s in live {
                    (e.check)(&s.value).map_err(|r| bad(format!("element: {r}")))?;
                    if s.tags.is_empty() {
                        return Err(bad("an element without tags".into()));
                    }
                    for t in &s.tags {
                        let t = seen(t);
                        delta.join_tag(s.value.clone(), t);
                    }
                }
                for t in removed {
                    let t = seen(t);
                    delta.join_tombstone(t);
                }
                set.merge(&delta)
            }
            (v, _) => {
                return Err(bad(format!(
                    "a {} delta for a {}",
                    body_kind(&d.body),
                    v.kind()
                )));
            }
        };
        if let Some(h) = newest {
            inner.clock.observe(h);
        }
        Ok(changed)
    }

    /// Runs a local write on key `key` under the lock, then sends its delta.
    fn write(
        &self,
        key: &str,
        f: impl FnOnce(&mut Value, &mut HlcClock, u64) -> Option<Body>,
    ) -> Result<bool, ReplicaError> {
        let delta = {
            let mut inner = lock(&self.inner);
            let inner = &mut *inner;
            if self.is_closed() {
                return Err(ReplicaError::Closed {
                    scope: self.scope.clone(),
                    key: key.to_string(),
                });
            }
            let Some(e) = inner.keys.get_mut(key) else {
                // A handle exists only for a declared key, and keys are
                // never undeclared.
                return Ok(false);
            };
            if e.value.entries() >= MAX_KEY_ENTRIES {
                return Err(ReplicaError::Full {
                    scope: self.scope.clone(),
                    key: key.to_string(),
                });
            }
            match f(&mut e.value, &mut inner.clock, (self.now)()) {
                Some(b) => self.delta(key, e, false, b),
                None => return Ok(false),
            }
        };
        self.version.fetch_add(1, Ordering::AcqRel);
        self.send([delta]);
        Ok(true)
    }

    fn read<R>(&self, key: &str, f: impl FnOnce(&Value) -> R) -> Option<R> {
        lock(&self.inner).keys.get(key).map(|e| f(&e.value))
    }
}

fn body_kind(b: &Body) -> ReplicaKind {
    match b {
        Body::Register { .. } => ReplicaKind::Register,
        Body::Counter { .. } => ReplicaKind::Counter,
        Body::Set { .. } => ReplicaKind::Set,
    }
}

/// A key's full state; `None` for a register nobody wrote.
fn body_of(v: &Value) -> Option<Body> {
    Some(match v {
        Value::Register(r) => Body::Register {
            stamp: r.stamp()?.into(),
            value: r.get()?.clone(),
        },
        Value::Counter(c) => Body::Counter {
            entries: c
                .entries()
                .map(|(replica, inc, dec)| CounterEntry { replica, inc, dec })
                .collect(),
        },
        Value::Set(s) => set_body(s),
    })
}

fn set_body(s: &OrSet<Vec<u8>>) -> Body {
    Body::Set {
        live: s
            .tagged()
            .map(|(v, tags)| SetEntry {
                value: v.clone(),
                tags: tags.iter().map(|t| Stamp::from(*t)).collect(),
            })
            .collect(),
        removed: s.tombstones().iter().map(|t| Stamp::from(*t)).collect(),
    }
}

struct Handle {
    replicas: Arc<Replicas>,
    key: String,
}

impl Handle {
    fn new(replicas: &Arc<Replicas>, key: &str) -> Self {
        Self {
            replicas: Arc::clone(replicas),
            key: key.to_string(),
        }
    }

    fn decode_error(&self, reason: String) -> ReplicaError {
        ReplicaError::Decode {
            scope: self.replicas.scope.clone(),
            key: self.key.clone(),
            reason,
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replicated")
            .field("scope", &self.replicas.scope)
            .field("key", &self.key)
            .finish()
    }
}

/// A replicated last-writer-wins register of `T` (see
/// [`Replicas::register`]): the write with the greatest hybrid logical
/// clock stamp wins on every replica.
#[derive(Debug)]
pub struct Register<T> {
    handle: Handle,
    _t: PhantomData<fn() -> T>,
}

impl<T: StateValue> Register<T> {
    /// Writes `value` here and sends it to the other replicas.
    pub fn set(&self, value: T) -> Result<(), ReplicaError> {
        let bytes = wire::encode(&value).map_err(|reason| ReplicaError::Encode {
            scope: self.handle.replicas.scope.clone(),
            key: self.handle.key.clone(),
            reason,
        })?;
        self.handle
            .replicas
            .write(&self.handle.key, |v, clock, now| {
                let Value::Register(r) = v else {
                    return None;
                };
                let stamp = clock.tick(now);
                r.set(stamp, bytes.clone());
                Some(Body::Register {
                    stamp: stamp.into(),
                    value: bytes,
                })
            })?;
        Ok(())
    }

    /// The current value (`None` until someone wrote one).
    pub fn get(&self) -> Result<Option<T>, ReplicaError> {
        let bytes = self.handle.replicas.read(&self.handle.key, |v| match v {
            Value::Register(r) => r.get().cloned(),
            _ => None,
        });
        match bytes.flatten() {
            Some(b) => wire::decode::<T>(&b)
                .map(Some)
                .map_err(|r| self.handle.decode_error(r)),
            None => Ok(None),
        }
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.handle.key
    }
}

/// A replicated PN counter (see [`Replicas::counter`]).
#[derive(Debug)]
pub struct Counter {
    handle: Handle,
}

impl Counter {
    /// Adds `by` (negative subtracts) and sends the delta.
    pub fn add(&self, by: i64) -> Result<(), ReplicaError> {
        let replica = self.handle.replicas.replica;
        self.handle.replicas.write(&self.handle.key, |v, _, _| {
            let Value::Counter(c) = v else {
                return None;
            };
            let d = c.add(replica, by);
            Some(Body::Counter {
                entries: d
                    .entries()
                    .map(|(replica, inc, dec)| CounterEntry { replica, inc, dec })
                    .collect(),
            })
        })?;
        Ok(())
    }

    /// The value (clamped to `i64`).
    pub fn value(&self) -> i64 {
        self.handle
            .replicas
            .read(&self.handle.key, |v| match v {
                Value::Counter(c) => c.value(),
                _ => 0,
            })
            .unwrap_or(0)
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.handle.key
    }
}

/// A replicated observed-remove set of `T` (see [`Replicas::set`]).
/// Elements are compared by their archive bytes.
#[derive(Debug)]
pub struct ReplicatedSet<T> {
    handle: Handle,
    _t: PhantomData<fn() -> T>,
}

impl<T: StateValue> ReplicatedSet<T> {
    fn encode(&self, value: &T) -> Result<Vec<u8>, ReplicaError> {
        wire::encode(value).map_err(|reason| ReplicaError::Encode {
            scope: self.handle.replicas.scope.clone(),
            key: self.handle.key.clone(),
            reason,
        })
    }

    /// Inserts `value` (a fresh tag: it survives concurrent removes).
    pub fn insert(&self, value: &T) -> Result<(), ReplicaError> {
        let bytes = self.encode(value)?;
        self.handle
            .replicas
            .write(&self.handle.key, |v, clock, now| {
                let Value::Set(s) = v else {
                    return None;
                };
                let d = s.insert(clock.tick(now), bytes);
                Some(set_body(&d))
            })?;
        Ok(())
    }

    /// Removes `value` as seen here; false if it was not in the set.
    pub fn remove(&self, value: &T) -> Result<bool, ReplicaError> {
        let bytes = self.encode(value)?;
        self.handle.replicas.write(&self.handle.key, |v, _, _| {
            let Value::Set(s) = v else {
                return None;
            };
            s.remove(&bytes).map(|d| set_body(&d))
        })
    }

    /// True if `value` is in the set.
    pub fn contains(&self, value: &T) -> Result<bool, ReplicaError> {
        let bytes = self.encode(value)?;
        Ok(self
            .handle
            .replicas
            .read(&self.handle.key, |v| match v {
                Value::Set(s) => s.contains(&bytes),
                _ => false,
            })
            .unwrap_or(false))
    }

    /// The elements, ordered by their archive bytes.
    pub fn values(&self) -> Result<Vec<T>, ReplicaError> {
        let all = self
            .handle
            .replicas
            .read(&self.handle.key, |v| match v {
                Value::Set(s) => s.iter().cloned().collect::<Vec<_>>(),
                _ => Vec::new(),
            })
            .unwrap_or_default();
        all.iter()
            .map(|b| wire::decode::<T>(b).map_err(|r| self.handle.decode_error(r)))
            .collect()
    }

    /// How many elements.
    pub fn len(&self) -> usize {
        self.handle
            .replicas
            .read(&self.handle.key, |v| match v {
                Value::Set(s) => s.len(),
                _ => 0,
            })
            .unwrap_or(0)
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.handle.key
    }
}
