//! The scope tree: names, inherited settings, policies, ownership, close.
//!
//! A [`Scope`] is a handle on one node of a tree. A node keeps a strong
//! reference to its parent (settings and policies are inherited from it)
//! and its parent keeps its open children; a child that closes leaves its
//! parent's list, so nothing cycles and nothing outlives its use.
//!
//! Ownership: a handle is created in two steps. [`Scope::reserve`] takes a
//! ticket while the scope is open; the caller registers its handle, then
//! [`Reservation::adopt`] hands the scope an [`Owned`] that can close it.
//! Closing a scope marks it closed, waits until no ticket is out, then
//! closes its children and every owned handle, all before it returns. A
//! handle adopted after close began is closed by `adopt` itself, so no
//! handle of a closed scope stays registered.
//!
//! Inherited values (settings, the chain of policies) are cached per node
//! and stamped with the tree's generation, which every change anywhere in
//! the tree bumps: a lookup is one comparison when nothing changed, and a
//! change to an ancestor is seen at the next lookup.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use dndm_core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use dndm_core::sync::{Condvar, Mutex, MutexGuard};
use dndm_router::{Path, Pattern, Route, RouteError};

use crate::crdt::Replicas;
use crate::info::{HandleInfo, ScopeCounters, ScopeInfo};
use crate::path::{self, PathError};
use crate::policy::{Denied, Op, Policy, Target};
use crate::state::{Access, State, Store};

/// A scope could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// The name breaks the path rules (segments of `[A-Za-z0-9_-]`
    /// separated by dots, no wildcard, length and depth limits).
    #[error("invalid scope name {name:?} under {parent:?}: {source}")]
    Name {
        /// The parent's path (empty for a root).
        parent: String,
        /// The name given.
        name: String,
        /// Why.
        source: RouteError,
    },
    /// The parent is closed.
    #[error("cannot create scope {name:?}: scope {parent} is closed")]
    Closed {
        /// The parent's path.
        parent: String,
        /// The name given.
        name: String,
    },
}

/// The scope was closed: nothing new can be created in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope {scope} is closed")]
#[non_exhaustive]
pub struct ClosedError {
    /// The scope's path.
    pub scope: String,
}

/// A child could not be granted access to a scope's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// The grantee is not a strict descendant of the granting scope.
    #[error("scope {grantee} is not a descendant of scope {scope}")]
    NotDescendant {
        /// The granting scope.
        scope: String,
        /// The grantee.
        grantee: String,
    },
}

/// A scope's state could not be reached from another scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateAccessError {
    /// No ancestor of the scope has this path.
    #[error("scope {scope} has no ancestor {ancestor}")]
    NotAncestor {
        /// The asking scope.
        scope: String,
        /// The path asked for.
        ancestor: String,
    },
    /// The ancestor granted nothing to the scope or its ancestors below it.
    #[error("scope {ancestor} grants no access to its state to scope {scope}")]
    NotGranted {
        /// The asking scope.
        scope: String,
        /// The ancestor.
        ancestor: String,
    },
}

/// Something a scope owns and closes when it closes: a publisher's, a
/// subscriber's, a server's registration.
///
/// Contract: [`close`](Self::close) withdraws the registration (so the
/// other side of every link is told) before it returns, may be called more
/// than once, and never calls back into the scope.
pub trait Owned: Send + Sync + 'static {
    /// Withdraws the handle.
    fn close(&self);
    /// What the handle is, for introspection.
    fn info(&self) -> HandleInfo;
}

#[derive(Debug, Default)]
struct Counters {
    created: AtomicU64,
    closed: AtomicU64,
    denied: AtomicU64,
    children: AtomicU64,
}

type AnySetting = Arc<dyn Any + Send + Sync>;
/// The policies a scope must pass, root first, each with its scope's path.
type PolicyChain = Arc<[(String, Arc<Policy>)]>;

struct Cache {
    generation: u64,
    policies: Option<PolicyChain>,
    settings: HashMap<TypeId, Option<AnySetting>>,
}

struct Inner {
    closing: bool,
    done: bool,
    pending: usize,
    next: u64,
    children: BTreeMap<u64, Arc<Node>>,
    owned: BTreeMap<u64, Arc<dyn Owned>>,
    policy: Option<Arc<Policy>>,
    settings: HashMap<TypeId, AnySetting>,
    grants: Vec<(u64, Access)>,
    cache: Cache,
    /// The replicated keys, made at first use.
    replicas: Option<Arc<Replicas>>,
}

struct Tree {
    generation: AtomicU64,
    next_id: AtomicU64,
}

pub(crate) struct Node {
    id: u64,
    path: String,
    name: String,
    depth: usize,
    parent: Option<Arc<Node>>,
    tree: Arc<Tree>,
    closed: AtomicBool,
    inner: Mutex<Inner>,
    idle: Condvar,
    counters: Counters,
    store: Arc<Store>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Node {
    fn new(name: &str, path: String, parent: Option<Arc<Node>>, tree: Arc<Tree>) -> Self {
        let id = tree.next_id.fetch_add(1, Ordering::Relaxed);
        let depth = parent.as_ref().map_or(1, |p| p.depth + 1);
        Self {
            id,
            store: Arc::new(Store::new(path.clone())),
            path,
            name: name.to_string(),
            depth,
            parent,
            tree,
            closed: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                closing: false,
                done: false,
                pending: 0,
                next: 0,
                children: BTreeMap::new(),
                owned: BTreeMap::new(),
                policy: None,
                settings: HashMap::new(),
                grants: Vec::new(),
                replicas: None,
                cache: Cache {
                    generation: u64::MAX,
                    policies: None,
                    settings: HashMap::new(),
                },
            }),
            idle: Condvar::new(),
            counters: Counters::default(),
        }
    }

    fn close(&self) {
        let mut inner = lock(&self.inner);
        if inner.closing {
            while !inner.done {
                inner = self.idle.wait(inner).unwrap_or_else(|p| p.into_inner());
            }
            return;
        }
        inner.closing = true;
        self.closed.store(true, Ordering::Release);
        while inner.pending > 0 {
            inner = self.idle.wait(inner).unwrap_or_else(|p| p.into_inner());
        }
        let children = std::mem::take(&mut inner.children);
        let owned = std::mem::take(&mut inner.owned);
        drop(inner);
        for child in children.values() {
            child.close();
        }
        for o in owned.values() {
            o.close();
        }
        self.counters
            .closed
            .fetch_add(owned.len() as u64, Ordering::Relaxed);
        drop(owned);
        self.store.close();
        if let Some(r) = lock(&self.inner).replicas.take() {
            r.close();
        }
        if let Some(parent) = &self.parent {
            let mut p = lock(&parent.inner);
            p.children.remove(&self.id);
            p.grants.retain(|(id, _)| *id != self.id);
            drop(p);
            // Grants further up name this node too.
            let mut up = parent.parent.as_ref();
            while let Some(a) = up {
                lock(&a.inner).grants.retain(|(id, _)| *id != self.id);
                up = a.parent.as_ref();
            }
        }
        let mut inner = lock(&self.inner);
        inner.settings.clear();
        inner.cache.settings.clear();
        inner.cache.policies = None;
        inner.done = true;
        drop(inner);
        self.idle.notify_all();
    }

    fn check(&self, op: Op, target: Target<'_>) -> Result<(), Denied> {
        for (scope, policy) in self.policies().iter() {
            if let Err(e) = policy.check_in(scope, op, target) {
                self.counters.denied.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    }

    fn bump(&self) {
        self.tree.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn ancestors(&self) -> impl Iterator<Item = &Node> {
        std::iter::successors(Some(self), |n| n.parent.as_deref())
    }

    fn policies(&self) -> PolicyChain {
        let generation = self.tree.generation.load(Ordering::Acquire);
        {
            let mut inner = lock(&self.inner);
            if inner.cache.generation != generation {
                inner.cache.generation = generation;
                inner.cache.policies = None;
                inner.cache.settings.clear();
            }
            if let Some(p) = &inner.cache.policies {
                return Arc::clone(p);
            }
        }
        let mut chain: Vec<(String, Arc<Policy>)> = self
            .ancestors()
            .filter_map(|n| {
                lock(&n.inner)
                    .policy
                    .as_ref()
                    .map(|p| (n.path.clone(), Arc::clone(p)))
            })
            .collect();
        chain.reverse();
        let chain: PolicyChain = chain.into();
        let mut inner = lock(&self.inner);
        if inner.cache.generation == generation {
            inner.cache.policies = Some(Arc::clone(&chain));
        }
        chain
    }

    fn setting(&self, ty: TypeId) -> Option<AnySetting> {
        let generation = self.tree.generation.load(Ordering::Acquire);
        {
            let mut inner = lock(&self.inner);
            if inner.cache.generation != generation {
                inner.cache.generation = generation;
                inner.cache.policies = None;
                inner.cache.settings.clear();
            }
            if let Some(v) = inner.cache.settings.get(&ty) {
                return v.clone();
            }
        }
        let found = self
            .ancestors()
            .find_map(|n| lock(&n.inner).settings.get(&ty).cloned());
        let mut inner = lock(&self.inner);
        if inner.cache.generation == generation && !inner.closing {
            inner.cache.settings.insert(ty, found.clone());
        }
        found
    }
}

/// A scope: a named node of a tree that owns handles, children, a policy,
/// settings its children inherit, and isolated state.
///
/// Cloning gives another handle to the same scope. Dropping the last
/// handle, or calling [`close`](Self::close), closes the scope: its
/// children, then every handle it owns, are closed before that returns.
#[derive(Clone)]
pub struct Scope {
    node: Arc<Node>,
    _owner: Arc<Owner>,
}

struct Owner(Arc<Node>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl Scope {
    /// A root scope named `name` (one or more dotted segments).
    pub fn root(name: &str) -> Result<Self, ScopeError> {
        path::check_name(name).map_err(|source| ScopeError::Name {
            parent: String::new(),
            name: name.to_string(),
            source,
        })?;
        let tree = Arc::new(Tree {
            generation: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
        });
        let node = Arc::new(Node::new(name, name.to_string(), None, tree));
        Ok(Self::from_node(node))
    }

    fn from_node(node: Arc<Node>) -> Self {
        Self {
            _owner: Arc::new(Owner(Arc::clone(&node))),
            node,
        }
    }

    /// A child scope `name` (relative, one or more dotted segments). It
    /// inherits this scope's settings and policies; closing this scope
    /// closes it.
    pub fn child(&self, name: &str) -> Result<Self, ScopeError> {
        let parent = &self.node;
        let bad = |source| ScopeError::Name {
            parent: parent.path.clone(),
            name: name.to_string(),
            source,
        };
        path::check_name(name).map_err(bad)?;
        let full = format!("{}.{name}", parent.path);
        Path::new(&full).map_err(bad)?;
        let mut inner = lock(&parent.inner);
        if inner.closing {
            return Err(ScopeError::Closed {
                parent: parent.path.clone(),
                name: name.to_string(),
            });
        }
        let node = Arc::new(Node::new(
            name,
            full,
            Some(Arc::clone(parent)),
            Arc::clone(&parent.tree),
        ));
        inner.children.insert(node.id, Arc::clone(&node));
        drop(inner);
        parent.counters.children.fetch_add(1, Ordering::Relaxed);
        Ok(Self::from_node(node))
    }

    /// The name this scope was created with.
    pub fn name(&self) -> &str {
        &self.node.name
    }

    /// The absolute path of the scope (`robot.arm.gripper`).
    pub fn path(&self) -> &str {
        &self.node.path
    }

    /// 1 for a root, one more per level below.
    pub fn depth(&self) -> usize {
        self.node.depth
    }

    /// True once the scope is closed (or closing).
    pub fn is_closed(&self) -> bool {
        self.node.closed.load(Ordering::Acquire)
    }

    /// Closes the scope: children first, then every handle it owns; each
    /// withdraws its registrations before this returns. Idempotent; a
    /// second caller waits until the first finished.
    pub fn close(&self) {
        self.node.close();
    }

    /// Resolves `input` (relative, or absolute with a leading `/`) to a
    /// path inside this scope.
    pub fn resolve_path(&self, input: &str) -> Result<Path, PathError> {
        path::resolve_path(&self.node.path, input)
    }

    /// Resolves `input` to the route `type_name@path` inside this scope.
    pub fn resolve_route(&self, type_name: &str, input: &str) -> Result<Route, PathError> {
        path::resolve_route(&self.node.path, type_name, input)
    }

    /// Resolves a pattern inside this scope (wildcards stay inside it).
    pub fn resolve_pattern(&self, type_name: &str, input: &str) -> Result<Pattern, PathError> {
        path::resolve_pattern(&self.node.path, type_name, input)
    }

    /// Sets this scope's own policy (relative patterns resolved under this
    /// scope). Ancestors' policies still apply: an operation must pass each.
    pub fn set_policy(&self, policy: Policy) {
        let rebased = policy.rebased(&self.node.path);
        lock(&self.node.inner).policy = (!rebased.is_empty()).then(|| Arc::new(rebased));
        self.node.bump();
    }

    /// This scope's own policy, patterns resolved.
    pub fn policy(&self) -> Option<Policy> {
        lock(&self.node.inner).policy.as_deref().cloned()
    }

    /// Checks `op` on `target` against every policy from the root down to
    /// this scope. A denial is counted and names the rule.
    pub fn check(&self, op: Op, target: Target<'_>) -> Result<(), Denied> {
        self.node.check(op, target)
    }

    /// A [`Checker`] of this scope's policies that does not keep the scope
    /// open (for a link guard the networking layer keeps beside a handle).
    pub fn checker(&self) -> Checker {
        Checker {
            node: Arc::clone(&self.node),
        }
    }

    /// Sets a value of type `S` that this scope and its descendants inherit
    /// unless they set their own (QoS defaults, options).
    pub fn set<S: Any + Send + Sync>(&self, value: S) {
        lock(&self.node.inner)
            .settings
            .insert(TypeId::of::<S>(), Arc::new(value));
        self.node.bump();
    }

    /// Removes this scope's own value of type `S` (it inherits again).
    pub fn unset<S: Any + Send + Sync>(&self) {
        lock(&self.node.inner).settings.remove(&TypeId::of::<S>());
        self.node.bump();
    }

    /// The value of type `S` this scope sees: its own, else the nearest
    /// ancestor's. Cached; a change anywhere in the tree is seen next call.
    pub fn get<S: Any + Send + Sync>(&self) -> Option<Arc<S>> {
        self.node
            .setting(TypeId::of::<S>())
            .and_then(|v| v.downcast::<S>().ok())
    }

    /// Takes a ticket to create a handle in this scope (see the module
    /// docs). Fails once the scope is closing.
    pub fn reserve(&self) -> Result<Reservation<'_>, ClosedError> {
        let mut inner = lock(&self.node.inner);
        if inner.closing {
            return Err(self.closed_error());
        }
        inner.pending += 1;
        Ok(Reservation {
            node: &self.node,
            live: true,
        })
    }

    fn closed_error(&self) -> ClosedError {
        ClosedError {
            scope: self.node.path.clone(),
        }
    }

    /// This scope's state, readable and writable.
    pub fn state(&self) -> State {
        State::new(Arc::clone(&self.node.store), Access::ReadWrite)
    }

    /// This scope's replicated keys (see [`crdt`](crate::crdt)), made at
    /// the first call with a fresh random replica id and the host's clock.
    /// The networking layer attaches an [`Outbox`](crate::crdt::Outbox)
    /// that carries deltas to the same scope on other nodes; closing the
    /// scope detaches it.
    pub fn replicas(&self) -> Result<Arc<Replicas>, ClosedError> {
        let mut inner = lock(&self.node.inner);
        if inner.closing {
            return Err(self.closed_error());
        }
        let path = &self.node.path;
        Ok(Arc::clone(inner.replicas.get_or_insert_with(|| {
            Arc::new(Replicas::new(
                path,
                random_replica_id(),
                dndm_core::clock::now_ns,
            ))
        })))
    }

    /// Lets `descendant` (and everything below it) reach this scope's state
    /// through [`state_of`](Self::state_of) with `access`.
    pub fn grant(&self, descendant: &Scope, access: Access) -> Result<(), GrantError> {
        let is_below = descendant
            .node
            .parent
            .as_deref()
            .is_some_and(|p| p.ancestors().any(|a| a.id == self.node.id));
        if !is_below {
            return Err(GrantError::NotDescendant {
                scope: self.node.path.clone(),
                grantee: descendant.node.path.clone(),
            });
        }
        let mut inner = lock(&self.node.inner);
        inner.grants.retain(|(id, _)| *id != descendant.node.id);
        inner.grants.push((descendant.node.id, access));
        Ok(())
    }

    /// The state of the ancestor at `ancestor` (its absolute path), with
    /// the widest access it granted to this scope or an ancestor of it below
    /// the owner.
    pub fn state_of(&self, ancestor: &str) -> Result<State, StateAccessError> {
        let Some(owner) = self.node.ancestors().skip(1).find(|a| a.path == ancestor) else {
            return Err(StateAccessError::NotAncestor {
                scope: self.node.path.clone(),
                ancestor: ancestor.to_string(),
            });
        };
        let grants = lock(&owner.inner).grants.clone();
        let access = self
            .node
            .ancestors()
            .take_while(|n| n.id != owner.id)
            .filter_map(|n| grants.iter().find(|(id, _)| *id == n.id).map(|g| g.1))
            .max();
        match access {
            Some(access) => Ok(State::new(Arc::clone(&owner.store), access)),
            None => Err(StateAccessError::NotGranted {
                scope: self.node.path.clone(),
                ancestor: ancestor.to_string(),
            }),
        }
    }

    /// The scope, its handles, counters, policy, state keys and children
    /// as data (its `Display` is a readable tree).
    pub fn info(&self) -> ScopeInfo {
        info_of(&self.node)
    }
}

/// A replica id no other replica is likely to have: std's random hash
/// keys (fresh for every `RandomState`), fed the process and the time.
fn random_replica_id() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one((std::process::id(), dndm_core::clock::now_ns()))
}

fn info_of(node: &Node) -> ScopeInfo {
    let (owned, children, policy, replicas) = {
        let inner = lock(&node.inner);
        (
            inner.owned.values().cloned().collect::<Vec<_>>(),
            inner.children.values().cloned().collect::<Vec<_>>(),
            inner.policy.as_ref().map(|p| p.to_string()),
            inner.replicas.clone(),
        )
    };
    let c = &node.counters;
    ScopeInfo {
        name: node.name.clone(),
        path: node.path.clone(),
        depth: node.depth,
        closed: node.closed.load(Ordering::Acquire),
        handles: owned.iter().map(|o| o.info()).collect(),
        counters: ScopeCounters {
            handles_created: c.created.load(Ordering::Relaxed),
            handles_closed_by_scope: c.closed.load(Ordering::Relaxed),
            denied: c.denied.load(Ordering::Relaxed),
            children_created: c.children.load(Ordering::Relaxed),
        },
        policy,
        state: node.store.keys(),
        replicated: replicas.map(|r| r.keys()).unwrap_or_default(),
        children: children.iter().map(|c| info_of(c)).collect(),
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("path", &self.node.path)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// Checks operations against a scope's policies, root first, exactly as
/// [`Scope::check`] (denials are counted in the scope's counters), without
/// keeping the scope open. Taking no lock other than the scope tree's own,
/// it may be called under the linker's lock.
#[derive(Clone)]
pub struct Checker {
    node: Arc<Node>,
}

impl Checker {
    /// See [`Scope::check`].
    pub fn check(&self, op: Op, target: Target<'_>) -> Result<(), Denied> {
        self.node.check(op, target)
    }

    /// The scope's path.
    pub fn scope(&self) -> &str {
        &self.node.path
    }

    /// A number that tells this checker's scope from every other scope
    /// (two roots of one path too) for as long as this checker lives; a
    /// later scope may reuse it once every checker of this one is gone.
    pub fn identity(&self) -> usize {
        Arc::as_ptr(&self.node) as usize
    }
}

impl fmt::Debug for Checker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checker")
            .field("scope", &self.node.path)
            .finish()
    }
}

/// A ticket to add one handle to a scope (see [`Scope::reserve`]). Dropping
/// it unused gives the ticket back.
pub struct Reservation<'a> {
    node: &'a Arc<Node>,
    live: bool,
}

impl Reservation<'_> {
    /// Hands `owned` to the scope. If the scope began closing meanwhile,
    /// `owned` is closed here and the error returned.
    pub fn adopt(mut self, owned: Arc<dyn Owned>) -> Result<Membership, ClosedError> {
        self.live = false;
        let mut inner = lock(&self.node.inner);
        inner.pending -= 1;
        if inner.closing {
            let wake = inner.pending == 0;
            drop(inner);
            if wake {
                self.node.idle.notify_all();
            }
            owned.close();
            return Err(ClosedError {
                scope: self.node.path.clone(),
            });
        }
        let id = inner.next;
        inner.next += 1;
        inner.owned.insert(id, owned);
        drop(inner);
        self.node.counters.created.fetch_add(1, Ordering::Relaxed);
        Ok(Membership {
            node: Arc::clone(self.node),
            id,
        })
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.live {
            let mut inner = lock(&self.node.inner);
            inner.pending -= 1;
            let wake = inner.closing && inner.pending == 0;
            drop(inner);
            if wake {
                self.node.idle.notify_all();
            }
        }
    }
}

/// A handle's place in its scope. Dropping it (with the handle) removes the
/// handle from the scope without closing anything.
pub struct Membership {
    node: Arc<Node>,
    id: u64,
}

impl Membership {
    /// The path of the owning scope.
    pub fn scope(&self) -> &str {
        &self.node.path
    }

    /// True once the owning scope is closed (or closing).
    pub fn is_closed(&self) -> bool {
        self.node.closed.load(Ordering::Acquire)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        lock(&self.node.inner).owned.remove(&self.id);
    }
}

impl fmt::Debug for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Membership")
            .field("scope", &self.node.path)
            .field("id", &self.id)
            .finish()
    }
}
