//! Scoped state: typed keys, observers, validation, computed keys,
//! batches, and snapshots through the codec.
//!
//! Every change (a write, a batch, a restore) happens under the store's
//! commit lock: validators run first and a failure changes nothing; then
//! the values are stored, computed keys whose inputs changed are recomputed
//! (in declaration order, so one may read another declared before it), and
//! each observer of a changed key is handed the new value, all before the
//! lock is released. So observers see changes in commit order and miss
//! none (a full observer queue drops its oldest entry and counts it, never
//! the newest), a snapshot taken under the same lock never mixes two
//! commits, and a computed value is always a function of one consistent
//! set of inputs. An observer leaves its key's list under the key's lock
//! when dropped, so nothing is delivered to it afterwards.
//!
//! Reads do not take the commit lock. A [`Reader`] keeps the last value it
//! saw with its version; a read compares one atomic version number and
//! only locks the key when it moved.

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use dndm_codec::schema::SchemaHasher;
use dndm_codec::{Frame, FrameBuffer, FrameHeader, FrameKind, Message, RecvBuffer};
use dndm_core::Deadline;
use dndm_core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use dndm_core::sync::{Condvar, Mutex, MutexGuard};
use rkyv::{Archive, Deserialize, Serialize};

use crate::info::KeyInfo;

/// How many changes an observer queues before it drops the oldest.
pub const OBSERVER_CAPACITY: usize = 1024;

/// What a state handle may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Access {
    /// Read and observe.
    Read,
    /// Read, observe and write.
    ReadWrite,
}

/// A value that scoped state can hold: any message type (so snapshots can
/// archive it) that is cheap enough to clone on read.
pub trait StateValue: Message + Clone + Send + Sync + 'static {}
impl<T: Message + Clone + Send + Sync + 'static> StateValue for T {}

/// A key could not be declared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The name is empty or longer than 128 bytes, or holds control
    /// characters.
    #[error("invalid state key name {name:?} in scope {scope}")]
    Name {
        /// The scope.
        scope: String,
        /// The name.
        name: String,
    },
    /// The key exists with another type (or is computed, or is not).
    #[error("state key {name:?} in scope {scope} holds {existing}, not {requested}")]
    Type {
        /// The scope.
        scope: String,
        /// The name.
        name: String,
        /// The type it holds.
        existing: &'static str,
        /// The type asked for.
        requested: &'static str,
    },
    /// An input of a computed key belongs to another scope's state.
    #[error("computed key {name:?} in scope {scope}: input {input:?} belongs to another scope")]
    ForeignInput {
        /// The scope.
        scope: String,
        /// The computed key.
        name: String,
        /// The input.
        input: String,
    },
    /// Declaring needs write access.
    #[error("cannot declare state key {name:?} in scope {scope}: read-only access")]
    ReadOnly {
        /// The scope.
        scope: String,
        /// The name.
        name: String,
    },
    /// The scope is closed.
    #[error("cannot declare state key {name:?}: scope {scope} is closed")]
    Closed {
        /// The scope.
        scope: String,
        /// The name.
        name: String,
    },
}

/// A write (or batch) was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The key's validator refused the value.
    #[error("write to state key {key:?} in scope {scope} refused: {reason}")]
    Invalid {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
        /// What the validator said.
        reason: String,
    },
    /// A computed key cannot be written.
    #[error("state key {key:?} in scope {scope} is computed and cannot be written")]
    Computed {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
    },
    /// The handle may only read.
    #[error("write to state key {key:?} in scope {scope} refused: read-only access")]
    ReadOnly {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
    },
    /// A batch got a key of another scope's state.
    #[error("batch on scope {scope} got state key {key:?} of another scope")]
    ForeignKey {
        /// The batch's scope.
        scope: String,
        /// The key.
        key: String,
    },
    /// The scope is closed.
    #[error("write to state key {key:?} refused: scope {scope} is closed")]
    Closed {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
    },
}

/// A read through a closed scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read state key {key:?}: scope {scope} is closed")]
#[non_exhaustive]
pub struct ReadError {
    /// The scope.
    pub scope: String,
    /// The key.
    pub key: String,
}

/// An observer has nothing to hand out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObserveError {
    /// No change is queued (or none came before the timeout).
    #[error("no change of state key {key:?} in scope {scope}")]
    Empty {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
    },
    /// The scope closed and every queued change was taken.
    #[error("observer of state key {key:?}: scope {scope} is closed")]
    Closed {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
    },
}

/// A snapshot could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The codec refused a value.
    #[error("snapshot of scope {scope}: key {key:?}: {reason}")]
    Encode {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// A snapshot could not be restored; the state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The snapshot was taken of a state with other keys or types.
    #[error(
        "cannot restore scope {scope}: the snapshot's schema {found:#018x} is not this state's {expected:#018x}"
    )]
    Schema {
        /// The scope.
        scope: String,
        /// This state's schema.
        expected: u64,
        /// The snapshot's.
        found: u64,
    },
    /// The bytes are not a whole, valid snapshot.
    #[error("cannot restore scope {scope}: corrupt snapshot: {reason}")]
    Corrupt {
        /// The scope.
        scope: String,
        /// What is wrong.
        reason: String,
    },
    /// A key's validator refused the restored value.
    #[error("cannot restore scope {scope}: key {key:?}: {reason}")]
    Invalid {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
        /// What the validator said.
        reason: String,
    },
    /// Restoring needs write access.
    #[error("cannot restore scope {scope}: read-only access")]
    ReadOnly {
        /// The scope.
        scope: String,
    },
    /// The scope is closed.
    #[error("cannot restore: scope {scope} is closed")]
    Closed {
        /// The scope.
        scope: String,
    },
}

/// The first frame of a snapshot.
#[derive(Archive, Serialize, Deserialize, dndm_codec::Message)]
#[message(name = "dndm.scope.SnapshotHead")]
struct SnapshotHead {
    schema: u64,
    keys: Vec<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------
// Slots

type Validator<T> = Arc<dyn Fn(&T) -> Result<(), String> + Send + Sync>;

struct ObsQueue<T> {
    items: VecDeque<Change<T>>,
    missed: u64,
    closed: bool,
    /// Threads sleeping in `recv_timeout`: a change wakes them only if
    /// there are any (a condvar signal is a system call).
    waiting: usize,
}

struct ObsShared<T> {
    queue: Mutex<ObsQueue<T>>,
    ready: Condvar,
}

struct Observers<T> {
    next: u64,
    list: Vec<(u64, Arc<ObsShared<T>>)>,
}

struct Slot<T> {
    id: usize,
    name: String,
    computed: bool,
    version: AtomicU64,
    value: Mutex<(u64, Arc<T>)>,
    observers: Mutex<Observers<T>>,
    validator: Mutex<Option<Validator<T>>>,
}

impl<T: StateValue> Slot<T> {
    fn current(&self) -> (u64, Arc<T>) {
        let v = lock(&self.value);
        (v.0, Arc::clone(&v.1))
    }

    fn check(&self, value: &T) -> Result<(), String> {
        let validator = lock(&self.validator).clone();
        match validator {
            Some(f) => f(value),
            None => Ok(()),
        }
    }

    fn put(&self, value: T) {
        let mut v = lock(&self.value);
        v.0 += 1;
        v.1 = Arc::new(value);
        self.version.store(v.0, Ordering::Release);
    }
}

/// A slot without its type: what commits, snapshots and introspection need.
trait ErasedSlot: Send + Sync {
    fn id(&self) -> usize;
    fn name(&self) -> &str;
    fn type_name(&self) -> &'static str;
    fn fingerprint(&self) -> u64;
    fn computed(&self) -> bool;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    fn check_any(&self, value: &(dyn Any + Send)) -> Result<(), String>;
    fn put_any(&self, value: Box<dyn Any + Send>);
    fn notify(&self);
    fn close(&self);
    fn encode(&self, buf: &mut FrameBuffer, index: u32) -> Result<(), String>;
    fn decode(&self, frame: &Frame<'_>) -> Result<Box<dyn Any + Send>, String>;
    fn info(&self) -> KeyInfo;
}

impl<T: StateValue> ErasedSlot for Slot<T> {
    fn id(&self) -> usize {
        self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn type_name(&self) -> &'static str {
        T::TYPE_NAME
    }
    fn fingerprint(&self) -> u64 {
        T::FINGERPRINT
    }
    fn computed(&self) -> bool {
        self.computed
    }
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
    fn check_any(&self, value: &(dyn Any + Send)) -> Result<(), String> {
        match value.downcast_ref::<T>() {
            Some(v) => self.check(v),
            None => Err(format!("a value of another type than {}", T::TYPE_NAME)),
        }
    }
    fn put_any(&self, value: Box<dyn Any + Send>) {
        if let Ok(v) = value.downcast::<T>() {
            self.put(*v);
        }
    }
    fn notify(&self) {
        let (version, value) = self.current();
        let observers = lock(&self.observers);
        for (_, o) in &observers.list {
            let mut q = lock(&o.queue);
            if q.items.len() >= OBSERVER_CAPACITY {
                q.items.pop_front();
                q.missed += 1;
            }
            q.items.push_back(Change {
                version,
                value: T::clone(&value),
            });
            let wake = q.waiting > 0;
            drop(q);
            if wake {
                o.ready.notify_all();
            }
        }
    }
    fn close(&self) {
        let observers = lock(&self.observers);
        for (_, o) in &observers.list {
            lock(&o.queue).closed = true;
            o.ready.notify_all();
        }
    }
    fn encode(&self, buf: &mut FrameBuffer, index: u32) -> Result<(), String> {
        let (_, value) = self.current();
        buf.push_message(&FrameHeader::data(index), &*value)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    fn decode(&self, frame: &Frame<'_>) -> Result<Box<dyn Any + Send>, String> {
        let archived = frame.access::<T>().map_err(|e| e.to_string())?;
        let value = dndm_codec::deserialize::<T>(archived).map_err(|e| e.to_string())?;
        Ok(Box::new(value))
    }
    fn info(&self) -> KeyInfo {
        KeyInfo {
            name: self.name.clone(),
            type_name: T::TYPE_NAME,
            version: self.version.load(Ordering::Acquire),
            computed: self.computed,
            observers: lock(&self.observers).list.len(),
        }
    }
}

type Compute = Box<dyn Fn(&Inputs) -> Box<dyn Any + Send> + Send + Sync>;

struct ComputedEntry {
    inputs: Vec<usize>,
    output: Arc<dyn ErasedSlot>,
    f: Compute,
}

struct Commit {
    slots: BTreeMap<String, Arc<dyn ErasedSlot>>,
    computed: Vec<ComputedEntry>,
    next_slot: usize,
}

/// The state of one scope.
pub(crate) struct Store {
    scope: String,
    closed: AtomicBool,
    commit: Mutex<Commit>,
    recomputes: AtomicU64,
}

impl Store {
    pub(crate) fn new(scope: String) -> Self {
        Self {
            scope,
            closed: AtomicBool::new(false),
            commit: Mutex::new(Commit {
                slots: BTreeMap::new(),
                computed: Vec::new(),
                next_slot: 0,
            }),
            recomputes: AtomicU64::new(0),
        }
    }

    pub(crate) fn close(&self) {
        let mut c = lock(&self.commit);
        self.closed.store(true, Ordering::Release);
        for s in c.slots.values() {
            s.close();
        }
        // Computed keys hold keys of this store: dropping them here breaks
        // the cycle (nothing is recomputed after close anyway).
        c.computed.clear();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn keys(&self) -> Vec<KeyInfo> {
        lock(&self.commit)
            .slots
            .values()
            .map(|s| s.info())
            .collect()
    }

    /// Stores `writes`, recomputes, notifies. The commit lock is held.
    fn apply(&self, c: &Commit, writes: Vec<(Arc<dyn ErasedSlot>, Box<dyn Any + Send>)>) {
        let mut changed: Vec<usize> = Vec::with_capacity(writes.len());
        let mut touched: Vec<Arc<dyn ErasedSlot>> = Vec::with_capacity(writes.len());
        for (slot, value) in writes {
            slot.put_any(value);
            if !changed.contains(&slot.id()) {
                changed.push(slot.id());
                touched.push(slot);
            }
        }
        for e in &c.computed {
            if e.inputs.iter().any(|i| changed.contains(i)) {
                let v = (e.f)(&Inputs { _private: () });
                e.output.put_any(v);
                self.recomputes.fetch_add(1, Ordering::Relaxed);
                if !changed.contains(&e.output.id()) {
                    changed.push(e.output.id());
                    touched.push(Arc::clone(&e.output));
                }
            }
        }
        for s in touched {
            s.notify();
        }
    }

    fn schema(c: &Commit) -> (u64, Vec<Arc<dyn ErasedSlot>>) {
        let stored: Vec<Arc<dyn ErasedSlot>> = c
            .slots
            .values()
            .filter(|s| !s.computed())
            .cloned()
            .collect();
        let mut h = SchemaHasher::new().str("dndm.scope.state");
        for s in &stored {
            h = h.str(s.name()).u64(s.fingerprint());
        }
        (h.finish(), stored)
    }
}

/// Read access to values while a computed key is recomputed.
pub struct Inputs {
    _private: (),
}

impl Inputs {
    /// The current value of `key` (an input declared for this computed key,
    /// or any key of the same state).
    pub fn get<T: StateValue>(&self, key: &Key<T>) -> T {
        T::clone(&key.slot.current().1)
    }
}

/// A change an observer receives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change<T> {
    /// The key's version after the change (1 for the first write).
    pub version: u64,
    /// The new value.
    pub value: T,
}

/// A handle on one scope's state, with the access it was given.
#[derive(Clone)]
pub struct State {
    store: Arc<Store>,
    access: Access,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("scope", &self.store.scope)
            .field("access", &self.access)
            .finish()
    }
}

fn check_key_name(scope: &str, name: &str) -> Result<(), KeyError> {
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(KeyError::Name {
            scope: scope.to_string(),
            name: name.to_string(),
        });
    }
    Ok(())
}

impl State {
    pub(crate) fn new(store: Arc<Store>, access: Access) -> Self {
        Self { store, access }
    }

    /// The owning scope's path.
    pub fn scope(&self) -> &str {
        &self.store.scope
    }

    /// What this handle may do.
    pub fn access(&self) -> Access {
        self.access
    }

    /// How many times computed keys were recomputed.
    pub fn recomputes(&self) -> u64 {
        self.store.recomputes.load(Ordering::Relaxed)
    }

    fn existing<T: StateValue>(
        &self,
        c: &Commit,
        name: &str,
        computed: bool,
    ) -> Result<Option<Key<T>>, KeyError> {
        let Some(slot) = c.slots.get(name) else {
            return Ok(None);
        };
        match downcast_slot::<T>(Arc::clone(slot)) {
            Some(typed) if typed.computed == computed => Ok(Some(Key {
                store: Arc::clone(&self.store),
                slot: typed,
                access: self.access,
            })),
            _ => Err(self.type_error::<T>(slot)),
        }
    }

    fn type_error<T: StateValue>(&self, slot: &Arc<dyn ErasedSlot>) -> KeyError {
        KeyError::Type {
            scope: self.store.scope.clone(),
            name: slot.name().to_string(),
            existing: slot.type_name(),
            requested: T::TYPE_NAME,
        }
    }

    fn new_slot<T: StateValue>(
        c: &mut Commit,
        name: &str,
        value: T,
        computed: bool,
    ) -> Arc<Slot<T>> {
        let id = c.next_slot;
        c.next_slot += 1;
        Arc::new(Slot {
            id,
            name: name.to_string(),
            computed,
            version: AtomicU64::new(0),
            value: Mutex::new((0, Arc::new(value))),
            observers: Mutex::new(Observers {
                next: 0,
                list: Vec::new(),
            }),
            validator: Mutex::new(None),
        })
    }

    fn check_declare(&self, name: &str) -> Result<(), KeyError> {
        check_key_name(&self.store.scope, name)?;
        if self.access != Access::ReadWrite {
            return Err(KeyError::ReadOnly {
                scope: self.store.scope.clone(),
                name: name.to_string(),
            });
        }
        if self.store.is_closed() {
            return Err(KeyError::Closed {
                scope: self.store.scope.clone(),
                name: name.to_string(),
            });
        }
        Ok(())
    }

    /// The key `name` holding `T`, declared with `initial` if it does not
    /// exist yet (an existing key keeps its value). A read-only handle can
    /// only get keys that exist.
    pub fn key<T: StateValue>(&self, name: &str, initial: T) -> Result<Key<T>, KeyError> {
        check_key_name(&self.store.scope, name)?;
        let mut c = lock(&self.store.commit);
        if let Some(k) = self.existing::<T>(&c, name, false)? {
            return Ok(k);
        }
        self.check_declare(name)?;
        let slot = Self::new_slot(&mut c, name, initial, false);
        c.slots
            .insert(name.to_string(), Arc::clone(&slot) as Arc<dyn ErasedSlot>);
        Ok(Key {
            store: Arc::clone(&self.store),
            slot,
            access: self.access,
        })
    }

    /// A computed key: `f` over other keys of this state, recomputed (under
    /// the commit lock) only when one of `inputs` changes, never written
    /// directly. Returns the existing key if `name` is already computed.
    pub fn computed<T, F>(
        &self,
        name: &str,
        inputs: &[&dyn AnyKey],
        f: F,
    ) -> Result<Key<T>, KeyError>
    where
        T: StateValue,
        F: Fn(&Inputs) -> T + Send + Sync + 'static,
    {
        check_key_name(&self.store.scope, name)?;
        let mut c = lock(&self.store.commit);
        if let Some(k) = self.existing::<T>(&c, name, true)? {
            return Ok(k);
        }
        self.check_declare(name)?;
        let mut ids = Vec::with_capacity(inputs.len());
        for k in inputs {
            if k.store_id() != store_addr(&self.store) {
                return Err(KeyError::ForeignInput {
                    scope: self.store.scope.clone(),
                    name: name.to_string(),
                    input: k.key_name().to_string(),
                });
            }
            ids.push(k.slot_id());
        }
        let first = f(&Inputs { _private: () });
        let slot = Self::new_slot(&mut c, name, first, true);
        let erased = Arc::clone(&slot) as Arc<dyn ErasedSlot>;
        c.slots.insert(name.to_string(), Arc::clone(&erased));
        c.computed.push(ComputedEntry {
            inputs: ids,
            output: erased,
            f: Box::new(move |i| Box::new(f(i))),
        });
        Ok(Key {
            store: Arc::clone(&self.store),
            slot,
            access: self.access,
        })
    }

    /// A batch of writes applied together: validated together, stored
    /// together, seen together by snapshots.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            state: self,
            writes: Vec::new(),
            error: None,
        }
    }

    /// The whole state (every key that is not computed) as bytes: a codec
    /// frame holding the key list and schema, then one frame per key. Taken
    /// under the commit lock: never a mix of two commits.
    pub fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        let c = lock(&self.store.commit);
        let (schema, stored) = Store::schema(&c);
        let head = SnapshotHead {
            schema,
            keys: stored.iter().map(|s| s.name().to_string()).collect(),
        };
        let mut buf = FrameBuffer::new();
        buf.push_message(&FrameHeader::control(), &head)
            .map_err(|e| SnapshotError::Encode {
                scope: self.store.scope.clone(),
                key: String::new(),
                reason: e.to_string(),
            })?;
        for (i, s) in stored.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            s.encode(&mut buf, index)
                .map_err(|reason| SnapshotError::Encode {
                    scope: self.store.scope.clone(),
                    key: s.name().to_string(),
                    reason,
                })?;
        }
        Ok(buf.as_bytes().to_vec())
    }

    /// Replaces every stored key's value with the snapshot's, as one
    /// commit (validators run; computed keys follow; observers are told).
    /// On any error nothing changes.
    pub fn restore(&self, bytes: &[u8]) -> Result<(), RestoreError> {
        let scope = || self.store.scope.clone();
        if self.access != Access::ReadWrite {
            return Err(RestoreError::ReadOnly { scope: scope() });
        }
        let corrupt = |reason: String| RestoreError::Corrupt {
            scope: scope(),
            reason,
        };
        let mut aligned = RecvBuffer::new();
        aligned.extend_from_slice(bytes);
        let mut frames = dndm_codec::frames(&aligned).max_frame_len(bytes.len().max(1));
        let head_frame = match frames.next() {
            Some(Ok(f)) if f.kind() == FrameKind::Control => f,
            Some(Ok(f)) => {
                return Err(corrupt(format!("first frame is {}, not control", f.kind())));
            }
            Some(Err(e)) => return Err(corrupt(e.to_string())),
            None => return Err(corrupt("no frame".into())),
        };
        let head = head_frame
            .access::<SnapshotHead>()
            .map_err(|e| corrupt(format!("head: {e}")))?;
        let head: SnapshotHead = dndm_codec::deserialize::<SnapshotHead>(head)
            .map_err(|e| corrupt(format!("head: {e}")))?;
        let c = lock(&self.store.commit);
        if self.store.is_closed() {
            return Err(RestoreError::Closed { scope: scope() });
        }
        let (schema, stored) = Store::schema(&c);
        let names_match = head.keys.len() == stored.len()
            && head.keys.iter().zip(&stored).all(|(a, b)| a == b.name());
        if head.schema != schema || !names_match {
            return Err(RestoreError::Schema {
                scope: scope(),
                expected: schema,
                found: head.schema,
            });
        }
        let mut writes = Vec::with_capacity(stored.len());
        for (i, slot) in stored.iter().enumerate() {
            let frame = match frames.next() {
                Some(Ok(f)) => f,
                Some(Err(e)) => return Err(corrupt(e.to_string())),
                None => return Err(corrupt(format!("key {:?} is missing", slot.name()))),
            };
            if frame.kind() != FrameKind::Data || frame.header().route as usize != i {
                return Err(corrupt(format!(
                    "frame {} is not key {:?}",
                    i + 1,
                    slot.name()
                )));
            }
            let value = slot
                .decode(&frame)
                .map_err(|e| corrupt(format!("key {:?}: {e}", slot.name())))?;
            slot.check_any(&*value)
                .map_err(|reason| RestoreError::Invalid {
                    scope: scope(),
                    key: slot.name().to_string(),
                    reason,
                })?;
            writes.push((Arc::clone(slot), value));
        }
        if frames.next().is_some() {
            return Err(corrupt("trailing bytes after the last key".into()));
        }
        self.store.apply(&c, writes);
        Ok(())
    }
}

/// Identifies a store (while it lives) by its address.
fn store_addr(store: &Arc<Store>) -> usize {
    Arc::as_ptr(store).addr()
}

fn downcast_slot<T: StateValue>(erased: Arc<dyn ErasedSlot>) -> Option<Arc<Slot<T>>> {
    erased.into_any().downcast::<Slot<T>>().ok()
}

/// A key of any type, as a computed key names its inputs.
pub trait AnyKey {
    /// The key's name.
    fn key_name(&self) -> &str;
    #[doc(hidden)]
    fn slot_id(&self) -> usize;
    #[doc(hidden)]
    fn store_id(&self) -> usize;
}

/// A typed key of one scope's state, with the access of the handle it came
/// from. Cheap to clone; `Send + Sync`. For a hot read loop take a
/// [`Reader`].
pub struct Key<T> {
    store: Arc<Store>,
    slot: Arc<Slot<T>>,
    access: Access,
}

impl<T> Clone for Key<T> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            slot: Arc::clone(&self.slot),
            access: self.access,
        }
    }
}

impl<T: StateValue> AnyKey for Key<T> {
    fn key_name(&self) -> &str {
        &self.slot.name
    }
    fn slot_id(&self) -> usize {
        self.slot.id
    }
    fn store_id(&self) -> usize {
        store_addr(&self.store)
    }
}

impl<T> fmt::Debug for Key<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("scope", &self.store.scope)
            .field("name", &self.slot.name)
            .field("access", &self.access)
            .finish()
    }
}

impl<T: StateValue> Key<T> {
    fn read_error(&self) -> ReadError {
        ReadError {
            scope: self.store.scope.clone(),
            key: self.slot.name.clone(),
        }
    }

    fn write_error(&self, make: fn(String, String) -> WriteError) -> WriteError {
        make(self.store.scope.clone(), self.slot.name.clone())
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.slot.name
    }

    /// The current value.
    pub fn get(&self) -> Result<T, ReadError> {
        if self.store.is_closed() {
            return Err(self.read_error());
        }
        Ok(T::clone(&self.slot.current().1))
    }

    /// The current version (how many changes so far).
    pub fn version(&self) -> u64 {
        self.slot.version.load(Ordering::Acquire)
    }

    /// A reader for this key that caches the last value it saw.
    pub fn reader(&self) -> Reader<T> {
        let (version, value) = self.slot.current();
        Reader {
            key: self.clone(),
            cached: RefCell::new((version, value)),
        }
    }

    /// Writes `value` as one commit.
    pub fn set(&self, value: T) -> Result<(), WriteError> {
        self.precheck()?;
        let c = lock(&self.store.commit);
        if self.store.is_closed() {
            return Err(self.write_error(|scope, key| WriteError::Closed { scope, key }));
        }
        self.slot
            .check(&value)
            .map_err(|reason| WriteError::Invalid {
                scope: self.store.scope.clone(),
                key: self.slot.name.clone(),
                reason,
            })?;
        if c.computed.is_empty() {
            // Nothing depends on it: store and notify, no bookkeeping.
            self.slot.put(value);
            self.slot.notify();
        } else {
            let erased = Arc::clone(&self.slot) as Arc<dyn ErasedSlot>;
            self.store.apply(&c, vec![(erased, Box::new(value))]);
        }
        Ok(())
    }

    fn precheck(&self) -> Result<(), WriteError> {
        if self.access != Access::ReadWrite {
            return Err(self.write_error(|scope, key| WriteError::ReadOnly { scope, key }));
        }
        if self.slot.computed {
            return Err(self.write_error(|scope, key| WriteError::Computed { scope, key }));
        }
        if self.store.is_closed() {
            return Err(self.write_error(|scope, key| WriteError::Closed { scope, key }));
        }
        Ok(())
    }

    /// Sets the key's validator: every later write (and restore) of a
    /// value it refuses fails with its message and changes nothing.
    pub fn validate<F>(&self, f: F) -> Result<(), WriteError>
    where
        F: Fn(&T) -> Result<(), String> + Send + Sync + 'static,
    {
        self.precheck()?;
        *lock(&self.slot.validator) = Some(Arc::new(f));
        Ok(())
    }

    /// An observer of this key's changes from now on.
    pub fn observe(&self) -> Result<Observer<T>, ObserveError> {
        // Registered under the commit lock, so it starts between commits.
        let _c = lock(&self.store.commit);
        if self.store.is_closed() {
            return Err(ObserveError::Closed {
                scope: self.store.scope.clone(),
                key: self.slot.name.clone(),
            });
        }
        let shared = Arc::new(ObsShared {
            queue: Mutex::new(ObsQueue {
                items: VecDeque::new(),
                missed: 0,
                closed: false,
                waiting: 0,
            }),
            ready: Condvar::new(),
        });
        let mut obs = lock(&self.slot.observers);
        let id = obs.next;
        obs.next += 1;
        obs.list.push((id, Arc::clone(&shared)));
        drop(obs);
        Ok(Observer {
            key: self.clone(),
            shared,
            id,
        })
    }
}

/// Reads one key fast: keeps the last value it saw and its version, and
/// only locks the key when the version moved. `Send`, not `Sync`: one per
/// reading thread.
pub struct Reader<T> {
    key: Key<T>,
    cached: RefCell<(u64, Arc<T>)>,
}

impl<T: StateValue> Reader<T> {
    /// The current value.
    #[inline]
    pub fn get(&self) -> Result<T, ReadError> {
        self.with(T::clone)
    }

    /// Runs `f` on the current value without cloning it.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> Result<R, ReadError> {
        let key = &self.key;
        if key.store.is_closed() {
            return Err(key.read_error());
        }
        let version = key.slot.version.load(Ordering::Acquire);
        let mut cached = self.cached.borrow_mut();
        if cached.0 != version {
            *cached = key.slot.current();
        }
        Ok(f(&cached.1))
    }
}

impl<T> fmt::Debug for Reader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader").field("key", &self.key).finish()
    }
}

/// Receives every change of one key, in commit order. Dropping it stops
/// deliveries at once.
pub struct Observer<T> {
    key: Key<T>,
    shared: Arc<ObsShared<T>>,
    id: u64,
}

impl<T> Observer<T> {
    fn take(&self, q: &mut ObsQueue<T>) -> Option<Result<Change<T>, ObserveError>> {
        if let Some(c) = q.items.pop_front() {
            return Some(Ok(c));
        }
        q.closed.then(|| {
            Err(ObserveError::Closed {
                scope: self.key.store.scope.clone(),
                key: self.key.slot.name.clone(),
            })
        })
    }

    fn empty(&self) -> ObserveError {
        ObserveError::Empty {
            scope: self.key.store.scope.clone(),
            key: self.key.slot.name.clone(),
        }
    }

    /// The next change, if one is queued.
    pub fn try_recv(&self) -> Result<Change<T>, ObserveError> {
        let mut q = lock(&self.shared.queue);
        self.take(&mut q).unwrap_or_else(|| Err(self.empty()))
    }

    /// Waits at most `timeout` for the next change.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Change<T>, ObserveError> {
        let deadline = Deadline::after(timeout);
        let mut q = lock(&self.shared.queue);
        loop {
            if let Some(r) = self.take(&mut q) {
                return r;
            }
            let left = deadline.remaining();
            if left.is_some_and(|l| l.is_zero()) {
                return Err(self.empty());
            }
            q.waiting += 1;
            q = match left {
                None => self.shared.ready.wait(q).unwrap_or_else(|p| p.into_inner()),
                Some(left) => wait_timeout(&self.shared.ready, q, left),
            };
            q.waiting -= 1;
        }
    }

    /// Changes dropped because the queue was full (the newest is always
    /// kept).
    pub fn missed(&self) -> u64 {
        lock(&self.shared.queue).missed
    }
}

#[cfg(not(dndm_loom))]
fn wait_timeout<'a, Q>(cv: &Condvar, guard: MutexGuard<'a, Q>, d: Duration) -> MutexGuard<'a, Q> {
    match cv.wait_timeout(guard, d) {
        Ok((g, _)) => g,
        Err(p) => p.into_inner().0,
    }
}

#[cfg(dndm_loom)]
fn wait_timeout<'a, Q>(cv: &Condvar, guard: MutexGuard<'a, Q>, _d: Duration) -> MutexGuard<'a, Q> {
    // loom has no clock: a timed wait is modelled as an untimed one.
    cv.wait(guard).unwrap_or_else(|p| p.into_inner())
}

impl<T> Drop for Observer<T> {
    fn drop(&mut self) {
        lock(&self.key.slot.observers)
            .list
            .retain(|(id, _)| *id != self.id);
    }
}

impl<T> fmt::Debug for Observer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observer").field("key", &self.key).finish()
    }
}

/// Writes applied as one commit (see [`State::batch`]).
pub struct Batch<'a> {
    state: &'a State,
    writes: Vec<(Arc<dyn ErasedSlot>, Box<dyn Any + Send>)>,
    error: Option<WriteError>,
}

impl Batch<'_> {
    /// Adds a write of `value` to `key`.
    pub fn set<T: StateValue>(mut self, key: &Key<T>, value: T) -> Self {
        if self.error.is_some() {
            return self;
        }
        if !Arc::ptr_eq(&key.store, &self.state.store) {
            self.error = Some(WriteError::ForeignKey {
                scope: self.state.store.scope.clone(),
                key: key.slot.name.clone(),
            });
            return self;
        }
        if let Err(e) = key.precheck() {
            self.error = Some(e);
            return self;
        }
        self.writes.push((
            Arc::clone(&key.slot) as Arc<dyn ErasedSlot>,
            Box::new(value),
        ));
        self
    }

    /// Validates every write, then applies them all; on any error nothing
    /// changes.
    pub fn commit(self) -> Result<(), WriteError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let store = &self.state.store;
        let c = lock(&store.commit);
        if store.is_closed() {
            return Err(WriteError::Closed {
                scope: store.scope.clone(),
                key: self
                    .writes
                    .first()
                    .map(|w| w.0.name().to_string())
                    .unwrap_or_default(),
            });
        }
        for (slot, value) in &self.writes {
            slot.check_any(&**value)
                .map_err(|reason| WriteError::Invalid {
                    scope: store.scope.clone(),
                    key: slot.name().to_string(),
                    reason,
                })?;
        }
        store.apply(&c, self.writes);
        Ok(())
    }
}

impl fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("scope", &self.state.store.scope)
            .field("writes", &self.writes.len())
            .finish()
    }
}
