//! The linker: joins intents (publishers) with interests (subscribers).
//!
//! Registration, removal and every link change happen synchronously, under
//! one mutex, before the call returns; the publish hot path never touches
//! that mutex (the ports attach core channel inlets to senders, and a core
//! sender sees a new receiver through one generation counter).

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use dndm_core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use dndm_core::sync::{Condvar, Mutex, MutexGuard};
use dndm_core::{Deadline, Inlet, WeakSender};

use crate::index::{RouteIndex, SelectorIndex};
use crate::pattern::{PatternError, PatternLimits, Selector};
use crate::route::Route;
use crate::session::Origin;
use crate::watch::{Registration, RegistrationWatch, WatchOwner, WatchShared};

/// Identifies an intent inside one [`Linker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntentId(u64);

/// Identifies an interest inside one [`Linker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterestId(u64);

/// The number behind a linker id, both ways.
macro_rules! raw_id {
    ($id:ident) => {
        impl $id {
            /// The id as a number: unique within its linker, never reused.
            pub const fn get(self) -> u64 {
                self.0
            }

            /// The id whose number is `raw` (as [`get`](Self::get) returned
            /// it), for ids kept or sent as numbers.
            pub const fn from_raw(raw: u64) -> Self {
                Self(raw)
            }
        }
    };
}

raw_id!(IntentId);
raw_id!(InterestId);

/// What a port learns about the link it is asked to make or break.
#[derive(Debug, Clone, Copy)]
pub struct LinkInfo<'a> {
    /// The intent.
    pub intent: IntentId,
    /// The interest.
    pub interest: InterestId,
    /// The intent's route.
    pub route: &'a Route,
    /// The interest's selector.
    pub selector: &'a Selector,
}

/// The publishing side of a link, as the linker sees it.
///
/// The linker knows nothing about what flows: a port attaches whatever
/// carries messages (a core channel inlet, a network forwarder) when asked.
///
/// Contract: [`connect`](Self::connect) and [`disconnect`](Self::disconnect)
/// are called with the linker's lock held, so they must be quick, must not
/// block on user code and must not call back into the linker.
/// `disconnect` is called exactly once for each successful `connect`.
pub trait IntentPort: Send + Sync + 'static {
    /// Starts delivering to `interest`. An `Err` means no link is made (the
    /// failure is reported to both sides as [`LinkEvent::Failed`]).
    fn connect(&self, interest: &dyn InterestPort, link: LinkInfo<'_>) -> Result<(), PortError>;
    /// Stops delivering to `interest`.
    fn disconnect(&self, interest: &dyn InterestPort, link: LinkInfo<'_>);
}

/// The receiving side of a link, as the linker sees it. The intent's port
/// downcasts it (through [`as_any`](Self::as_any)) to the kind it can feed.
pub trait InterestPort: Send + Sync + 'static {
    /// The concrete port, for downcasting.
    fn as_any(&self) -> &dyn Any;

    /// The port's type-erased data contract, for an intent port that cannot
    /// name this port's Rust type: a network proxy that knows only the
    /// route's type name and schema fingerprint (the linker has checked
    /// both). The proxy downcasts it to the contract it speaks. `None` (the
    /// default): only intents of the same Rust type can feed this port.
    fn erased(&self) -> Option<&dyn Any> {
        None
    }
}

/// Decides whether a registration may link with another, before the link
/// is made; given to [`Linker::add_intent_guarded`] or
/// [`Linker::add_interest_guarded`]. A scope's guard puts a peer's
/// declaration to the scope's policies, so that a denied operation never
/// links, locally or from a remote peer.
///
/// Contract: [`admit`](Self::admit) is called with the linker's lock held
/// (like a port's `connect`), so it must be quick, must not block on user
/// code and must not call back into the linker. A refused pair is not
/// retried while both registrations stay.
pub trait LinkGuard: Send + Sync + 'static {
    /// May the guarded registration link with one from `other`, as
    /// described by `link`? `Err(reason)` refuses: both sides receive
    /// [`LinkEvent::Failed`] with [`PortError::Refused`].
    fn admit(&self, other: Origin, link: LinkInfo<'_>) -> Result<(), String>;
}

/// Why a port could not connect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// The interest's port is not a kind this intent's port can feed (for
    /// example two Rust types share a name and a schema in one process).
    #[error("the interest's port cannot receive what this intent sends")]
    Incompatible,
    /// One side's channel is already gone.
    #[error("a channel of the link is already closed")]
    Closed,
    /// The interest is a peer's, and the node does not offer this route to
    /// that peer (its export filter).
    #[error("the route is not exported to the interest's peer")]
    NotExported,
    /// A [`LinkGuard`] of one side refused the link (a scope's policy
    /// denied a peer's declaration).
    #[error("the link was refused: {reason}")]
    Refused {
        /// The guard's reason (the rule that denied it).
        reason: String,
    },
}

/// Why a registration failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The linker was closed.
    #[error("cannot register {what}: the linker is closed")]
    Closed {
        /// The route or selector being registered.
        what: String,
    },
    /// The selector's pattern breaks the linker's [`PatternLimits`].
    #[error("cannot register interest: {0}")]
    Pattern(#[from] PatternError),
}

/// Type name equal, schema fingerprint different: the two sides would not
/// understand each other, so no link is made. Both sides receive it as
/// [`LinkEvent::SchemaMismatch`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "schema mismatch on route {route} (selector {selector}): intent fingerprint {intent_fingerprint:#018x}, interest fingerprint {interest_fingerprint:#018x}"
)]
pub struct SchemaMismatch {
    /// The intent.
    pub intent: IntentId,
    /// The interest.
    pub interest: InterestId,
    /// The intent's route.
    pub route: Route,
    /// The interest's selector.
    pub selector: Selector,
    /// The intent's schema fingerprint.
    pub intent_fingerprint: u64,
    /// The interest's schema fingerprint.
    pub interest_fingerprint: u64,
}

/// A change seen by one intent or interest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkEvent {
    /// A link formed.
    Linked {
        /// The intent.
        intent: IntentId,
        /// The interest.
        interest: InterestId,
        /// The intent's route.
        route: Route,
    },
    /// A link was removed (one side left or the linker closed).
    Unlinked {
        /// The intent.
        intent: IntentId,
        /// The interest.
        interest: InterestId,
        /// The intent's route.
        route: Route,
    },
    /// The route matched but the schemas differ; no link.
    SchemaMismatch(SchemaMismatch),
    /// The route and schema matched but the ports could not connect.
    Failed {
        /// The intent.
        intent: IntentId,
        /// The interest.
        interest: InterestId,
        /// The intent's route.
        route: Route,
        /// Why.
        error: PortError,
    },
}

/// How many events a handle keeps before it drops the oldest (and counts
/// them in `events_missed`). Link counts never depend on the queue.
pub const EVENT_QUEUE_CAPACITY: usize = 1024;

// ---------------------------------------------------------------------------
// Per-handle shared state

struct Events {
    queue: VecDeque<LinkEvent>,
    missed: u64,
}

struct Shared {
    /// Links now: interests of an intent, intents of an interest.
    count: AtomicUsize,
    closed: AtomicBool,
    events: Mutex<Events>,
    changed: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn new() -> Self {
        Self {
            count: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            events: Mutex::new(Events {
                queue: VecDeque::new(),
                missed: 0,
            }),
            changed: Condvar::new(),
        }
    }

    /// Records `event` and the new count, and wakes waiters.
    fn push(&self, event: LinkEvent, count_delta: isize) {
        let mut ev = lock(&self.events);
        if count_delta > 0 {
            self.count
                .fetch_add(count_delta.unsigned_abs(), Ordering::AcqRel);
        } else if count_delta < 0 {
            self.count
                .fetch_sub(count_delta.unsigned_abs(), Ordering::AcqRel);
        }
        if ev.queue.len() >= EVENT_QUEUE_CAPACITY {
            ev.queue.pop_front();
            ev.missed += 1;
        }
        ev.queue.push_back(event);
        drop(ev);
        self.changed.notify_all();
    }

    fn close(&self) {
        let ev = lock(&self.events);
        self.closed.store(true, Ordering::Release);
        self.count.store(0, Ordering::Release);
        drop(ev);
        self.changed.notify_all();
    }

    fn wait_count(&self, done: &mut dyn FnMut(usize) -> bool, timeout: Option<Duration>) -> bool {
        let deadline = Deadline::from_timeout(timeout);
        let mut ev = lock(&self.events);
        loop {
            if done(self.count.load(Ordering::Acquire)) {
                return true;
            }
            if self.closed.load(Ordering::Acquire) {
                return false;
            }
            ev = match wait(&self.changed, ev, deadline) {
                Some(g) => g,
                None => return done(self.count.load(Ordering::Acquire)),
            };
        }
    }

    fn next_event(&self, timeout: Option<Duration>) -> Option<LinkEvent> {
        let deadline = Deadline::from_timeout(timeout);
        let mut ev = lock(&self.events);
        loop {
            if let Some(e) = ev.queue.pop_front() {
                return Some(e);
            }
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            ev = wait(&self.changed, ev, deadline)?;
        }
    }

    fn try_event(&self) -> Option<LinkEvent> {
        lock(&self.events).queue.pop_front()
    }

    fn missed(&self) -> u64 {
        lock(&self.events).missed
    }
}

/// Waits on `cv` until `deadline`; `None` once it passed.
fn wait<'a>(
    cv: &Condvar,
    guard: MutexGuard<'a, Events>,
    deadline: Deadline,
) -> Option<MutexGuard<'a, Events>> {
    match deadline.remaining() {
        None => Some(cv.wait(guard).unwrap_or_else(|p| p.into_inner())),
        Some(left) if left.is_zero() => None,
        Some(left) => Some(wait_timeout(cv, guard, left)),
    }
}

#[cfg(not(dndm_loom))]
fn wait_timeout<'a>(
    cv: &Condvar,
    guard: MutexGuard<'a, Events>,
    d: Duration,
) -> MutexGuard<'a, Events> {
    match cv.wait_timeout(guard, d) {
        Ok((g, _)) => g,
        Err(p) => p.into_inner().0,
    }
}

#[cfg(dndm_loom)]
fn wait_timeout<'a>(
    cv: &Condvar,
    guard: MutexGuard<'a, Events>,
    _d: Duration,
) -> MutexGuard<'a, Events> {
    // loom has no clock: a timed wait is modelled as an untimed one.
    cv.wait(guard).unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------
// Linker state

struct IntentEntry {
    route: Route,
    fingerprint: u64,
    origin: Origin,
    port: Arc<dyn IntentPort>,
    guard: Option<Arc<dyn LinkGuard>>,
    shared: Arc<Shared>,
    links: Vec<InterestId>,
}

struct InterestEntry {
    selector: Selector,
    fingerprint: u64,
    origin: Origin,
    port: Arc<dyn InterestPort>,
    guard: Option<Arc<dyn LinkGuard>>,
    shared: Arc<Shared>,
    links: Vec<IntentId>,
}

struct State {
    closed: bool,
    next_id: u64,
    intents: BTreeMap<IntentId, IntentEntry>,
    interests: BTreeMap<InterestId, InterestEntry>,
    routes: RouteIndex<IntentId>,
    selectors: SelectorIndex<InterestId>,
    links: usize,
    watches: Vec<Arc<WatchShared>>,
}

struct Inner {
    state: Mutex<State>,
    limits: PatternLimits,
}

/// Joins intents with interests whose selector matches the intent's route
/// and whose schema fingerprint agrees. See the crate docs for an example.
///
/// Cheap to clone (a shared handle). Sans-IO and deterministic: no threads,
/// no clock; identical call sequences give identical links and events.
#[derive(Clone)]
pub struct Linker {
    inner: Arc<Inner>,
}

impl Default for Linker {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Linker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = lock(&self.inner.state);
        f.debug_struct("Linker")
            .field("intents", &s.intents.len())
            .field("interests", &s.interests.len())
            .field("links", &s.links)
            .field("closed", &s.closed)
            .finish()
    }
}

impl IntentEntry {
    fn registration(&self, id: IntentId) -> Registration {
        Registration::Intent {
            id,
            route: self.route.clone(),
            fingerprint: self.fingerprint,
            origin: self.origin,
        }
    }
}

impl InterestEntry {
    fn registration(&self, id: InterestId) -> Registration {
        Registration::Interest {
            id,
            selector: self.selector.clone(),
            fingerprint: self.fingerprint,
            origin: self.origin,
        }
    }
}

impl WatchOwner for Inner {
    fn unwatch(&self, shared: &Arc<WatchShared>) {
        lock(&self.state)
            .watches
            .retain(|w| !Arc::ptr_eq(w, shared));
    }
}

impl State {
    /// Tries to link `i` and `j`; the caller checked that the selector
    /// matches the route.
    fn link(&mut self, i: IntentId, j: InterestId) {
        let (Some(intent), Some(interest)) = (self.intents.get(&i), self.interests.get(&j)) else {
            return;
        };
        if intent.fingerprint != interest.fingerprint {
            let m = SchemaMismatch {
                intent: i,
                interest: j,
                route: intent.route.clone(),
                selector: interest.selector.clone(),
                intent_fingerprint: intent.fingerprint,
                interest_fingerprint: interest.fingerprint,
            };
            // Usually two builds disagreeing on a type: worth a line in the
            // log even if nobody reads the handles' events.
            tracing::warn!(
                route = %m.route,
                selector = %m.selector,
                "no link: {m}"
            );
            intent.shared.push(LinkEvent::SchemaMismatch(m.clone()), 0);
            interest.shared.push(LinkEvent::SchemaMismatch(m), 0);
            return;
        }
        let info = LinkInfo {
            intent: i,
            interest: j,
            route: &intent.route,
            selector: &interest.selector,
        };
        let refused = |guard: &Option<Arc<dyn LinkGuard>>, other: Origin| {
            guard.as_ref().and_then(|g| g.admit(other, info).err())
        };
        let refusal = refused(&intent.guard, interest.origin)
            .or_else(|| refused(&interest.guard, intent.origin));
        let connected = match refusal {
            Some(reason) => Err(PortError::Refused { reason }),
            None => intent.port.connect(&*interest.port, info),
        };
        if let Err(error) = connected {
            let ev = LinkEvent::Failed {
                intent: i,
                interest: j,
                route: intent.route.clone(),
                error,
            };
            intent.shared.push(ev.clone(), 0);
            interest.shared.push(ev, 0);
            return;
        }
        let ev = LinkEvent::Linked {
            intent: i,
            interest: j,
            route: intent.route.clone(),
        };
        intent.shared.push(ev.clone(), 1);
        interest.shared.push(ev, 1);
        self.links += 1;
        if let Some(e) = self.intents.get_mut(&i) {
            e.links.push(j);
        }
        if let Some(e) = self.interests.get_mut(&j) {
            e.links.push(i);
        }
    }

    /// Breaks the link; `notify_intent`/`notify_interest` say which side
    /// still listens.
    fn unlink(&mut self, i: IntentId, j: InterestId, notify_intent: bool, notify_interest: bool) {
        let (Some(intent), Some(interest)) = (self.intents.get(&i), self.interests.get(&j)) else {
            return;
        };
        let info = LinkInfo {
            intent: i,
            interest: j,
            route: &intent.route,
            selector: &interest.selector,
        };
        intent.port.disconnect(&*interest.port, info);
        let ev = LinkEvent::Unlinked {
            intent: i,
            interest: j,
            route: intent.route.clone(),
        };
        if notify_intent {
            intent.shared.push(ev.clone(), -1);
        }
        if notify_interest {
            interest.shared.push(ev, -1);
        }
        self.links -= 1;
    }

    fn remove_intent(&mut self, i: IntentId) {
        let Some(links) = self.intents.get(&i).map(|e| e.links.clone()) else {
            return;
        };
        for j in links {
            self.unlink(i, j, false, true);
            if let Some(e) = self.interests.get_mut(&j) {
                e.links.retain(|x| *x != i);
            }
        }
        if let Some(e) = self.intents.remove(&i) {
            self.routes.remove(&e.route, &i);
            e.shared.close();
            if !self.watches.is_empty() {
                let r = e.registration(i);
                self.watches.iter().for_each(|w| w.withdrawn(&r));
            }
        }
    }

    fn remove_interest(&mut self, j: InterestId) {
        let Some(links) = self.interests.get(&j).map(|e| e.links.clone()) else {
            return;
        };
        for i in links {
            self.unlink(i, j, true, false);
            if let Some(e) = self.intents.get_mut(&i) {
                e.links.retain(|x| *x != j);
            }
        }
        if let Some(e) = self.interests.remove(&j) {
            self.selectors.remove(&e.selector, &j);
            e.shared.close();
            if !self.watches.is_empty() {
                let r = e.registration(j);
                self.watches.iter().for_each(|w| w.withdrawn(&r));
            }
        }
    }
}

impl Linker {
    /// An empty linker accepting patterns within the default
    /// [`PatternLimits`].
    pub fn new() -> Self {
        Self::with_pattern_limits(PatternLimits::new())
    }

    /// An empty linker that refuses interests whose pattern breaks `limits`
    /// ([`LinkError::Pattern`]).
    pub fn with_pattern_limits(limits: PatternLimits) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits,
                state: Mutex::new(State {
                    closed: false,
                    next_id: 1,
                    intents: BTreeMap::new(),
                    interests: BTreeMap::new(),
                    routes: RouteIndex::new(),
                    selectors: SelectorIndex::new(),
                    links: 0,
                    watches: Vec::new(),
                }),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    /// Registers an intent to publish on `route` with schema `fingerprint`,
    /// and links it, before returning, to every matching interest. The
    /// returned handle unregisters (and unlinks) on drop.
    pub fn add_intent(
        &self,
        route: Route,
        fingerprint: u64,
        port: Arc<dyn IntentPort>,
    ) -> Result<Intent, LinkError> {
        self.add_intent_from(route, fingerprint, port, Origin::Local)
    }

    /// [`add_intent`](Self::add_intent) for a registration made on behalf of
    /// `origin` (a peer session registers its peer's declarations with
    /// [`Origin::Peer`], so that watches never advertise them back).
    pub fn add_intent_from(
        &self,
        route: Route,
        fingerprint: u64,
        port: Arc<dyn IntentPort>,
        origin: Origin,
    ) -> Result<Intent, LinkError> {
        self.register_intent(route, fingerprint, port, origin, None)
    }

    /// [`add_intent`](Self::add_intent) whose every link must first pass
    /// `guard` (see [`LinkGuard`]).
    pub fn add_intent_guarded(
        &self,
        route: Route,
        fingerprint: u64,
        port: Arc<dyn IntentPort>,
        guard: Arc<dyn LinkGuard>,
    ) -> Result<Intent, LinkError> {
        self.register_intent(route, fingerprint, port, Origin::Local, Some(guard))
    }

    fn register_intent(
        &self,
        route: Route,
        fingerprint: u64,
        port: Arc<dyn IntentPort>,
        origin: Origin,
        guard: Option<Arc<dyn LinkGuard>>,
    ) -> Result<Intent, LinkError> {
        let mut s = self.state();
        if s.closed {
            return Err(LinkError::Closed {
                what: route.to_string(),
            });
        }
        let id = IntentId(s.next_id);
        s.next_id += 1;
        let shared = Arc::new(Shared::new());
        s.routes.insert(&route, id);
        let matching = s.selectors.matching(&route);
        s.intents.insert(
            id,
            IntentEntry {
                route: route.clone(),
                fingerprint,
                origin,
                port,
                guard,
                shared: Arc::clone(&shared),
                links: Vec::new(),
            },
        );
        for j in matching {
            s.link(id, j);
        }
        // Watches hear of it only once it is linked: a peer told of it may
        // answer at once, and its answer must find the links in place.
        if !s.watches.is_empty() {
            let r = Registration::Intent {
                id,
                route: route.clone(),
                fingerprint,
                origin,
            };
            s.watches.iter().for_each(|w| w.declared(&r));
        }
        Ok(Intent {
            linker: self.clone(),
            id,
            route,
            shared,
        })
    }

    /// Registers an interest in what `selector` selects with schema
    /// `fingerprint`, and links it, before returning, to every matching
    /// intent. The returned handle unregisters (and unlinks) on drop.
    ///
    /// # Errors
    ///
    /// [`LinkError::Pattern`] if the selector's pattern breaks the linker's
    /// [`PatternLimits`] (checked before the linker's lock is taken);
    /// [`LinkError::Closed`] after [`close`](Self::close).
    pub fn add_interest(
        &self,
        selector: Selector,
        fingerprint: u64,
        port: Arc<dyn InterestPort>,
    ) -> Result<Interest, LinkError> {
        self.add_interest_from(selector, fingerprint, port, Origin::Local)
    }

    /// [`add_interest`](Self::add_interest) on behalf of `origin` (see
    /// [`add_intent_from`](Self::add_intent_from)).
    ///
    /// # Errors
    ///
    /// As [`add_interest`](Self::add_interest).
    pub fn add_interest_from(
        &self,
        selector: Selector,
        fingerprint: u64,
        port: Arc<dyn InterestPort>,
        origin: Origin,
    ) -> Result<Interest, LinkError> {
        self.register_interest(selector, fingerprint, port, origin, None)
    }

    /// [`add_interest`](Self::add_interest) whose every link must first
    /// pass `guard` (see [`LinkGuard`]).
    ///
    /// # Errors
    ///
    /// As [`add_interest`](Self::add_interest).
    pub fn add_interest_guarded(
        &self,
        selector: Selector,
        fingerprint: u64,
        port: Arc<dyn InterestPort>,
        guard: Arc<dyn LinkGuard>,
    ) -> Result<Interest, LinkError> {
        self.register_interest(selector, fingerprint, port, Origin::Local, Some(guard))
    }

    fn register_interest(
        &self,
        selector: Selector,
        fingerprint: u64,
        port: Arc<dyn InterestPort>,
        origin: Origin,
        guard: Option<Arc<dyn LinkGuard>>,
    ) -> Result<Interest, LinkError> {
        self.inner.limits.check_selector(&selector)?;
        let mut s = self.state();
        if s.closed {
            return Err(LinkError::Closed {
                what: selector.to_string(),
            });
        }
        let id = InterestId(s.next_id);
        s.next_id += 1;
        let shared = Arc::new(Shared::new());
        s.selectors.insert(&selector, id);
        let matching = s.routes.matching(&selector);
        s.interests.insert(
            id,
            InterestEntry {
                selector: selector.clone(),
                fingerprint,
                origin,
                port,
                guard,
                shared: Arc::clone(&shared),
                links: Vec::new(),
            },
        );
        for i in matching {
            s.link(i, id);
        }
        // After linking, as for intents.
        if !s.watches.is_empty() {
            let r = Registration::Interest {
                id,
                selector: selector.clone(),
                fingerprint,
                origin,
            };
            s.watches.iter().for_each(|w| w.declared(&r));
        }
        Ok(Interest {
            linker: self.clone(),
            id,
            selector,
            shared,
        })
    }

    /// The pattern limits interests are checked against.
    pub fn pattern_limits(&self) -> PatternLimits {
        self.inner.limits
    }

    /// Unregisters everything and refuses new registrations. Every link is
    /// disconnected before this returns; handles report zero links.
    pub fn close(&self) {
        let mut s = self.state();
        s.closed = true;
        let intents: Vec<IntentId> = s.intents.keys().copied().collect();
        for i in intents {
            s.remove_intent(i);
        }
        let interests: Vec<InterestId> = s.interests.keys().copied().collect();
        for j in interests {
            s.remove_interest(j);
        }
        s.watches.iter().for_each(|w| w.close());
    }

    /// A watch of every registration: those present now (reported as
    /// declared at the first [`poll`](RegistrationWatch::poll)) and every
    /// later one, with its origin, until the watch is dropped.
    pub fn watch(&self) -> RegistrationWatch {
        let shared = WatchShared::new();
        let mut s = self.state();
        for (id, e) in &s.intents {
            shared.declared(&e.registration(*id));
        }
        for (id, e) in &s.interests {
            shared.declared(&e.registration(*id));
        }
        if s.closed {
            shared.close();
        }
        s.watches.push(Arc::clone(&shared));
        drop(s);
        let owner: Arc<dyn WatchOwner> = Arc::clone(&self.inner) as Arc<dyn WatchOwner>;
        RegistrationWatch {
            shared,
            linker: Arc::downgrade(&owner),
        }
    }

    /// True once [`close`](Self::close) ran.
    pub fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// Registered intents.
    pub fn intent_count(&self) -> usize {
        self.state().intents.len()
    }

    /// Registered interests.
    pub fn interest_count(&self) -> usize {
        self.state().interests.len()
    }

    /// Links now.
    pub fn link_count(&self) -> usize {
        self.state().links
    }

    /// The routes of the intents linked to `interest`, in id order.
    pub fn routes_of(&self, interest: InterestId) -> Vec<(IntentId, Route)> {
        let s = self.state();
        let Some(e) = s.interests.get(&interest) else {
            return Vec::new();
        };
        let mut out: Vec<(IntentId, Route)> = e
            .links
            .iter()
            .filter_map(|i| s.intents.get(i).map(|x| (*i, x.route.clone())))
            .collect();
        out.sort();
        out
    }
}

/// A registered intent; dropping it unregisters and unlinks it, and every
/// linked interest receives [`LinkEvent::Unlinked`] before drop returns.
pub struct Intent {
    linker: Linker,
    id: IntentId,
    route: Route,
    shared: Arc<Shared>,
}

/// A registered interest; dropping it unregisters and unlinks it, and every
/// linked intent receives [`LinkEvent::Unlinked`] before drop returns.
pub struct Interest {
    linker: Linker,
    id: InterestId,
    selector: Selector,
    shared: Arc<Shared>,
}

macro_rules! handle_common {
    ($ty:ident, $id:ident, $what:literal) => {
        impl $ty {
            /// This registration's id.
            pub fn id(&self) -> $id {
                self.id
            }

            /// The linker it belongs to.
            pub fn linker(&self) -> &Linker {
                &self.linker
            }

            #[doc = concat!("How many ", $what, " are linked now.")]
            pub fn link_count(&self) -> usize {
                self.shared.count.load(Ordering::Acquire)
            }

            /// Blocks until `done(link_count)` holds, for at most `timeout`
            /// (`None`, or a timeout too large to add to the clock such as
            /// `Duration::MAX`: no limit). False on timeout or once
            /// unregistered.
            pub fn wait_links(
                &self,
                mut done: impl FnMut(usize) -> bool,
                timeout: Option<Duration>,
            ) -> bool {
                self.shared.wait_count(&mut done, timeout)
            }

            /// The next link event, if one is queued.
            pub fn try_event(&self) -> Option<LinkEvent> {
                self.shared.try_event()
            }

            /// Waits at most `timeout` (`None`, or a timeout too large to add
            /// to the clock: no limit) for the next event.
            pub fn next_event(&self, timeout: Option<Duration>) -> Option<LinkEvent> {
                self.shared.next_event(timeout)
            }

            /// Events dropped because the queue held
            /// [`EVENT_QUEUE_CAPACITY`] unread ones.
            pub fn events_missed(&self) -> u64 {
                self.shared.missed()
            }

            /// True once unregistered (the linker closed).
            pub fn is_closed(&self) -> bool {
                self.shared.closed.load(Ordering::Acquire)
            }
        }
    };
}

handle_common!(Intent, IntentId, "interests");
handle_common!(Interest, InterestId, "intents");

impl Intent {
    /// The route it publishes on.
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// How many interests are linked now.
    pub fn interest_count(&self) -> usize {
        self.link_count()
    }

    /// Blocks until at least one interest is linked, for at most `timeout`.
    pub fn wait_for_interest(&self, timeout: Option<Duration>) -> bool {
        self.wait_links(|n| n > 0, timeout)
    }
}

impl Interest {
    /// Its selector.
    pub fn selector(&self) -> &Selector {
        &self.selector
    }

    /// How many intents feed it now.
    pub fn intent_count(&self) -> usize {
        self.link_count()
    }

    /// The intents feeding it now, with their routes, in id order.
    pub fn feeders(&self) -> Vec<(IntentId, Route)> {
        self.linker.routes_of(self.id)
    }
}

impl Drop for Intent {
    fn drop(&mut self) {
        self.linker.state().remove_intent(self.id);
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        self.linker.state().remove_interest(self.id);
    }
}

impl fmt::Debug for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intent")
            .field("id", &self.id)
            .field("route", &self.route)
            .field("links", &self.link_count())
            .finish()
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interest")
            .field("id", &self.id)
            .field("selector", &self.selector)
            .field("links", &self.link_count())
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Core channel ports

/// An [`IntentPort`] for a core channel sender: links attach the sender to
/// the interest's [`ChannelInterest`] inlet.
pub struct ChannelIntent<T> {
    sender: WeakSender<T>,
}

impl<T> ChannelIntent<T> {
    /// Wraps a weak sender (see `dndm_core::Sender::downgrade`).
    pub fn new(sender: WeakSender<T>) -> Self {
        Self { sender }
    }
}

/// An [`InterestPort`] for a core channel receiver.
pub struct ChannelInterest<T> {
    inlet: Inlet<T>,
}

impl<T> ChannelInterest<T> {
    /// Wraps a receiver's inlet (see `dndm_core::Receiver::inlet`).
    pub fn new(inlet: Inlet<T>) -> Self {
        Self { inlet }
    }

    /// The inlet.
    pub fn inlet(&self) -> &Inlet<T> {
        &self.inlet
    }
}

impl<T: Send + 'static> IntentPort for ChannelIntent<T> {
    fn connect(&self, interest: &dyn InterestPort, _: LinkInfo<'_>) -> Result<(), PortError> {
        let interest = interest
            .as_any()
            .downcast_ref::<ChannelInterest<T>>()
            .ok_or(PortError::Incompatible)?;
        match self.sender.attach(&interest.inlet) {
            Ok(_) => Ok(()),
            Err(_) => Err(PortError::Closed),
        }
    }

    fn disconnect(&self, interest: &dyn InterestPort, _: LinkInfo<'_>) {
        if let Some(interest) = interest.as_any().downcast_ref::<ChannelInterest<T>>() {
            self.sender.detach(&interest.inlet);
        }
    }
}

impl<T: Send + 'static> InterestPort for ChannelInterest<T> {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

// Withdrawal by id, for owners that close registrations whose handles they
// do not hold (dndm-scope closes every handle of a scope when it closes).
impl Linker {
    /// Unregisters intent `id` now, as dropping its [`Intent`] would: every
    /// linked interest receives [`LinkEvent::Unlinked`] before this returns
    /// and the intent's handle reports itself closed. Dropping the handle
    /// later does nothing more. False if no such intent is registered.
    pub fn withdraw_intent(&self, id: IntentId) -> bool {
        let mut s = self.state();
        let known = s.intents.contains_key(&id);
        s.remove_intent(id);
        known
    }

    /// Unregisters interest `id` now, as dropping its [`Interest`] would
    /// (see [`withdraw_intent`](Self::withdraw_intent)).
    pub fn withdraw_interest(&self, id: InterestId) -> bool {
        let mut s = self.state();
        let known = s.interests.contains_key(&id);
        s.remove_interest(id);
        known
    }

    /// Links of intent `id` now (0 if it is not registered).
    pub fn intent_link_count(&self, id: IntentId) -> usize {
        self.state().intents.get(&id).map_or(0, |e| e.links.len())
    }

    /// Links of interest `id` now (0 if it is not registered).
    pub fn interest_link_count(&self, id: InterestId) -> usize {
        self.state().interests.get(&id).map_or(0, |e| e.links.len())
    }
}
