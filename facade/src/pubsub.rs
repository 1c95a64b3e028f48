//! Publishers, subscribers, samples and the ports that link them.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use dndm_core::sync::atomic::{AtomicBool, Ordering};
use dndm_core::{
    Config, Deadline, Inlet, Policy, Receiver, RecvTimeoutError as CoreRecvTimeout, Sender,
    TryRecvError as CoreTryRecv, WeakSender,
};
use dndm_router::{
    Intent, IntentId, IntentPort, Interest, InterestId, InterestPort, LinkEvent, LinkInfo,
    PortError, Route, Selector,
};
use parking_lot::Mutex;
use smallvec::SmallVec;

use dndm_codec::Message;

use crate::error::{RecvError, RecvTimeoutError, SendError, TryRecvError};

/// Identifies a publisher within its node: the id of its intent in the
/// node's linker, so it compares with the [`IntentId`] of a [`LinkEvent`]
/// directly (`publisher.id() == intent`) and converts both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublisherId(u64);

/// Identifies a subscriber within its node: the id of its interest in the
/// node's linker, so it compares with the [`InterestId`] of a
/// [`LinkEvent`] directly (`subscriber.id() == interest`) and converts both
/// ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriberId(u64);

/// Conversions and comparisons between a handle id and its linker id.
macro_rules! linker_id {
    ($handle:ident, $linker:ident) => {
        impl $handle {
            /// The id as a number: the number of its linker id.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl From<$linker> for $handle {
            fn from(id: $linker) -> Self {
                Self(id.get())
            }
        }

        impl From<$handle> for $linker {
            fn from(id: $handle) -> Self {
                Self::from_raw(id.0)
            }
        }

        impl PartialEq<$linker> for $handle {
            fn eq(&self, other: &$linker) -> bool {
                self.0 == other.get()
            }
        }

        impl PartialEq<$handle> for $linker {
            fn eq(&self, other: &$handle) -> bool {
                self.get() == other.0
            }
        }
    };
}

linker_id!(PublisherId, IntentId);
linker_id!(SubscriberId, InterestId);

/// Nanoseconds on the host's monotonic clock, the same clock in every process
/// on the host. Sample timestamps use it, so `now_ns() - sample.stamp_ns()` is
/// the latency, also for a sample published by another process. See
/// [`dndm_core::clock`] for how it is read.
pub fn now_ns() -> u64 {
    dndm_core::clock::now_ns()
}

/// What travels through the core channels.
#[derive(Clone)]
pub(crate) struct Envelope<T> {
    pub(crate) seq: u64,
    pub(crate) stamp_ns: u64,
    pub(crate) publisher: u64,
    pub(crate) msg: Payload<T>,
}

/// A message in an envelope: owned when one receiver gets it, shared when a
/// send reaches several (subscribers, a history ring), so that a fan-out
/// copies a pointer, not the value.
///
/// The publisher picks the form from the receiver count it sees; a receiver
/// that attaches in between only costs a copy (`Owned` clones its value),
/// never correctness.
pub(crate) enum Payload<T> {
    Owned(T),
    Shared(Arc<T>),
}

impl<T> Payload<T> {
    #[inline]
    pub(crate) fn get(&self) -> &T {
        match self {
            Self::Owned(v) => v,
            Self::Shared(v) => v,
        }
    }

    /// The value: moved out when no one else holds it, cloned otherwise.
    #[inline]
    fn into_inner(self) -> T
    where
        T: Clone,
    {
        match self {
            Self::Owned(v) => v,
            Self::Shared(v) => Arc::try_unwrap(v).unwrap_or_else(|v| (*v).clone()),
        }
    }

    /// The value behind a shared pointer, never copied.
    fn into_arc(self) -> Arc<T> {
        match self {
            Self::Owned(v) => Arc::new(v),
            Self::Shared(v) => v,
        }
    }

    fn is_shared(&self) -> bool {
        matches!(self, Self::Shared(_))
    }
}

impl<T: Clone> Clone for Payload<T> {
    #[inline]
    fn clone(&self) -> Self {
        match self {
            Self::Owned(v) => Self::Owned(v.clone()),
            Self::Shared(v) => Self::Shared(Arc::clone(v)),
        }
    }
}

#[derive(Clone)]
pub(crate) enum Item<T> {
    Msg(Envelope<T>),
    /// Sent by a linker thread so that a blocked subscriber looks at its
    /// replay buffer (history of a publisher that just linked).
    Wake,
}

// ---------------------------------------------------------------------------
// Options

/// Per-subscription options: queue capacity (per publisher) and the
/// backpressure policy (see [`dndm_core::Policy`]).
///
/// The defaults fail safe: capacity 64 per publisher and
/// [`Policy::DropOldest`], so a subscriber that stops reading keeps the
/// newest 64 messages of each publisher and never slows a publisher or the
/// other subscribers of its route. Publishers count what it lost
/// ([`Publisher::dropped`]); the subscriber sees gaps in
/// [`Sample::seq`] and [`Subscriber::stats`].
///
/// Lossless delivery is an explicit choice: [`Policy::BLOCK`] makes every
/// publisher wait for room in this subscriber, so one that never reads stops
/// them all; `Policy::Block { timeout: Some(t) }` bounds that to one wait of
/// `t` per stall (see [`Policy::Block`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscribeOptions {
    pub(crate) capacity: usize,
    pub(crate) policy: Policy,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self {
            capacity: 64,
            policy: Policy::DropOldest,
        }
    }
}

impl SubscribeOptions {
    /// Capacity 64 per publisher, [`Policy::DropOldest`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Messages queued per publisher before the policy applies. A
    /// subscriber takes one message off its lanes per receive, so nothing
    /// waits outside them: `DropOldest` keeps exactly the latest `capacity`.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// What a publisher does when this subscriber is full.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }
}

/// Per-publisher options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishOptions {
    pub(crate) history: usize,
}

impl PublishOptions {
    /// No history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep the last `depth` messages; a subscriber that links later first
    /// receives the newest of them that fit its capacity, oldest first
    /// (transient-local durability). At most
    /// [`MAX_CAPACITY`](dndm_core::MAX_CAPACITY); the ring of `depth`
    /// messages is allocated at the first send.
    pub fn history(mut self, depth: usize) -> Self {
        self.history = depth;
        self
    }
}

// ---------------------------------------------------------------------------
// Ports

struct History<T> {
    depth: usize,
    ring: Mutex<VecDeque<Kept<T>>>,
}

/// A message in a history ring: an envelope whose value is shared with the
/// lanes it was sent to (a pointer, not an inline value).
struct Kept<T> {
    seq: u64,
    stamp_ns: u64,
    publisher: u64,
    msg: Arc<T>,
}

impl<T> Kept<T> {
    fn envelope(&self) -> Envelope<T> {
        Envelope {
            seq: self.seq,
            stamp_ns: self.stamp_ns,
            publisher: self.publisher,
            msg: Payload::Shared(Arc::clone(&self.msg)),
        }
    }
}

impl<T> History<T> {
    /// Appends `env`, evicting the oldest at `depth`. The ring is allocated
    /// whole (`depth` entries) at the first message, so a publisher that
    /// never sends costs nothing and one that does never holds more (growing
    /// in steps would hold two buffers at once while it copies).
    fn push(&self, env: Kept<T>) {
        let mut ring = self.ring.lock();
        if ring.len() == self.depth {
            ring.pop_front();
        } else if ring.capacity() == 0 {
            ring.reserve_exact(self.depth);
        }
        ring.push_back(env);
    }
}

pub(crate) struct PubPort<T> {
    pub(crate) weak: WeakSender<Item<T>>,
    history: Option<Arc<History<T>>>,
}

/// Replays waiting for the subscriber: `(publisher, last seq in its
/// history, messages)`.
type Replays<T> = Vec<(u64, u64, VecDeque<Envelope<T>>)>;

pub(crate) struct SubShared<T> {
    /// Publisher id → route, written before the publisher attaches.
    routes: Mutex<Vec<(u64, Route)>>,
    replay: Mutex<Replays<T>>,
    has_replay: AtomicBool,
    /// The most history messages one publisher replays here: the
    /// subscriber's capacity.
    replay_limit: usize,
}

pub(crate) struct SubPort<T> {
    inlet: Inlet<Item<T>>,
    shared: Arc<SubShared<T>>,
    /// The face peer intents link to (see `remote::ports`).
    erased: crate::remote::ErasedSubscriber,
    /// Sends the `Wake` that makes a blocked subscriber look at a new
    /// replay: one lane for every replay, opened at the first.
    waker: Mutex<Option<Sender<Item<T>>>>,
}

impl<T: Clone> SubPort<T> {
    /// Makes a subscriber blocked in `recv` look at its replay buffer.
    fn wake(&self) {
        let mut waker = self.waker.lock();
        let tx = waker.get_or_insert_with(|| {
            let tx = Sender::new();
            let _ = tx.attach(&self.inlet);
            tx
        });
        // Never waits; a full lane already holds a wake.
        let _ = tx.try_send(Item::Wake);
    }
}

impl<T> SubShared<T> {
    /// Records the route of publisher `id` (before it attaches).
    pub(crate) fn add_route(&self, id: u64, route: &Route) {
        let mut routes = self.routes.lock();
        if !routes.iter().any(|(p, _)| *p == id) {
            routes.push((id, route.clone()));
        }
    }
}

impl<T: Message + Clone + Send + 'static> PubPort<T> {
    /// Links to a peer's interest: the messages go to the peer's outlet of
    /// this publisher, after the history.
    fn connect_peer(
        &self,
        peer: &crate::remote::PeerInterest,
        link: &LinkInfo<'_>,
    ) -> Result<(), PortError> {
        peer.link(link, |queue| {
            // Under the ring lock, as for local subscribers: a message in the
            // ring is replayed, a later one comes by lane (duplicates are
            // skipped by sequence number).
            let ring = self.history.as_ref().map(|h| h.ring.lock());
            let replay = ring
                .as_ref()
                .map(|r| r.iter().map(Kept::envelope).collect());
            crate::remote::TypedOutlet::open(&self.weak, queue, replay)
        })
    }
}

impl<T: Message + Clone + Send + 'static> IntentPort for PubPort<T> {
    fn connect(&self, interest: &dyn InterestPort, link: LinkInfo<'_>) -> Result<(), PortError> {
        let any = interest.as_any();
        if let Some(peer) = any.downcast_ref::<crate::remote::PeerInterest>() {
            return self.connect_peer(peer, &link);
        }
        let sub = any
            .downcast_ref::<SubPort<T>>()
            .ok_or(PortError::Incompatible)?;
        sub.shared.add_route(link.intent.get(), link.route);
        let Some(history) = &self.history else {
            return self
                .weak
                .attach(&sub.inlet)
                .map(|_| ())
                .map_err(|_| PortError::Closed);
        };
        // Replay first, attach second, both under the ring lock: a message
        // pushed to the ring later is sent after the attach (so it reaches
        // this subscriber through its lane), and one already in the ring is
        // replayed (and dropped as a duplicate if it also comes by lane).
        //
        // The replay is the newest `capacity` messages of the ring, whatever
        // the subscriber's policy: what a subscriber of that capacity keeps,
        // and contiguous with the live messages that follow, so the
        // subscriber sees no gap. Older history is not copied.
        let ring = history.ring.lock();
        if let Some(last) = ring.back() {
            let n = ring.len().min(sub.shared.replay_limit);
            let msgs: VecDeque<_> = ring.range(ring.len() - n..).map(Kept::envelope).collect();
            let mut replay = sub.shared.replay.lock();
            replay.retain(|(p, _, _)| *p != link.intent.get());
            replay.push((link.intent.get(), last.seq, msgs));
            sub.shared.has_replay.store(true, Ordering::Release);
        }
        let attached = self.weak.attach(&sub.inlet).map_err(|_| PortError::Closed);
        let replayed = !ring.is_empty();
        drop(ring);
        if replayed {
            sub.wake();
        }
        attached.map(|_| ())
    }

    fn disconnect(&self, interest: &dyn InterestPort, link: LinkInfo<'_>) {
        let any = interest.as_any();
        if let Some(sub) = any.downcast_ref::<SubPort<T>>() {
            self.weak.detach(&sub.inlet);
        } else if let Some(peer) = any.downcast_ref::<crate::remote::PeerInterest>() {
            peer.unlink(&link);
        }
    }
}

/// Makes a subscriber blocked in `recv` return (stops callback threads).
fn wake<T: Clone>(inlet: &Inlet<Item<T>>) {
    let tx = Sender::new();
    if tx.attach(inlet).is_ok() {
        let _ = tx.try_send(Item::Wake);
    }
}

impl<T: Send + Sync + 'static> InterestPort for SubPort<T> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn erased(&self) -> Option<&dyn Any> {
        Some(&self.erased)
    }
}

// ---------------------------------------------------------------------------
// Publisher

/// Publishes `T` on one route. Created by [`Node::publish`](crate::Node::publish).
///
/// `Send` but not `Sync`: create one publisher per thread (several
/// publishers may share a route; subscribers get the union). Dropping it
/// unlinks every subscriber before `drop` returns.
pub struct Publisher<T> {
    intent: Intent,
    tx: Sender<Item<T>>,
    history: Option<Arc<History<T>>>,
    seq: std::cell::Cell<u64>,
    /// Deliveries that did not happen: subscribers missed by a send.
    missed: std::cell::Cell<u64>,
    id: u64,
}

impl<T: Message + Clone + Send + 'static> Publisher<T> {
    pub(crate) fn register(
        linker: &dndm_router::Linker,
        route: Route,
        fingerprint: u64,
        opts: PublishOptions,
    ) -> Result<Self, crate::PublishError> {
        Self::register_guarded(linker, route, fingerprint, opts, None)
    }

    /// [`register`](Self::register) with a guard every link must pass (a
    /// scope's policies against peers).
    pub(crate) fn register_guarded(
        linker: &dndm_router::Linker,
        route: Route,
        fingerprint: u64,
        opts: PublishOptions,
        guard: Option<Arc<dyn dndm_router::LinkGuard>>,
    ) -> Result<Self, crate::PublishError> {
        if opts.history > dndm_core::MAX_CAPACITY {
            return Err(crate::PublishError::HistoryTooDeep {
                route: route.to_string(),
                depth: opts.history,
                max: dndm_core::MAX_CAPACITY,
            });
        }
        let tx = Sender::new();
        let history = (opts.history > 0).then(|| {
            Arc::new(History {
                depth: opts.history,
                ring: Mutex::new(VecDeque::new()),
            })
        });
        let port = Arc::new(PubPort {
            weak: tx.downgrade(),
            history: history.clone(),
        });
        let intent = match guard {
            Some(g) => linker.add_intent_guarded(route, fingerprint, port, g)?,
            None => linker.add_intent(route, fingerprint, port)?,
        };
        // Lanes open at the first send, so every lane carries the id: a
        // subscriber learns from it when this publisher is finished there.
        tx.set_tag(intent.id().get());
        Ok(Self {
            id: intent.id().get(),
            intent,
            tx,
            history,
            seq: std::cell::Cell::new(0),
            missed: std::cell::Cell::new(0),
        })
    }

    /// A send with nobody to deliver to: counted (its sequence number is
    /// used), not an error.
    #[inline]
    fn void(&self) -> Result<(), SendError<T>> {
        self.seq.set(self.seq.get() + 1);
        Ok(())
    }

    /// Publishes `msg` to every linked subscriber, waiting for room in
    /// `Block` subscribers (at most their timeout).
    ///
    /// With nobody interested (and no history) this is a single atomic load
    /// and returns `Ok`: publishing into the void is not an error (it is
    /// counted in [`sent`](Self::sent)).
    #[inline]
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        if self.history.is_none() && self.tx.receiver_count() == 0 {
            return self.void();
        }
        self.deliver(msg, |tx, item| tx.send(item))
    }

    /// Like [`send`](Self::send) but never waits: a full `Block` subscriber
    /// counts as missed.
    pub fn try_send(&self, msg: T) -> Result<(), SendError<T>> {
        if self.history.is_none() && self.tx.receiver_count() == 0 {
            return self.void();
        }
        self.deliver(msg, |tx, item| tx.try_send(item))
    }

    /// Like [`send`](Self::send), waiting at most `timeout` in total (a
    /// timeout too large to add to the clock leaves only the subscribers'
    /// own timeouts).
    pub fn send_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendError<T>> {
        if self.history.is_none() && self.tx.receiver_count() == 0 {
            return self.void();
        }
        self.deliver(msg, |tx, item| tx.send_timeout(item, timeout))
    }

    #[inline]
    fn deliver(
        &self,
        msg: T,
        op: impl FnOnce(&Sender<Item<T>>, Item<T>) -> Result<(), dndm_core::SendError<Item<T>>>,
    ) -> Result<(), SendError<T>> {
        let seq = self.seq.get() + 1;
        self.seq.set(seq);
        let stamp_ns = now_ns();
        let msg = if let Some(h) = &self.history {
            // Shared with the ring. The count is read after the push, which
            // a subscriber attaching meanwhile waits for (it replays the
            // ring under the same lock).
            let msg = Arc::new(msg);
            h.push(Kept {
                seq,
                stamp_ns,
                publisher: self.id,
                msg: Arc::clone(&msg),
            });
            if self.tx.receiver_count() == 0 {
                return Ok(());
            }
            Payload::Shared(msg)
        } else if self.tx.receiver_count() > 1 {
            // Shared when it goes to several subscribers (the count may
            // change before the send: see `Payload`).
            Payload::Shared(Arc::new(msg))
        } else {
            Payload::Owned(msg)
        };
        let env = Envelope {
            seq,
            stamp_ns,
            publisher: self.id,
            msg,
        };
        match op(&self.tx, Item::Msg(env)) {
            Ok(()) => Ok(()),
            // The last subscriber left between the check and the send.
            Err(dndm_core::SendError::Disconnected(_)) => Ok(()),
            // `Full`, or a failure this version does not know (the enum is
            // non-exhaustive): never a success, and the message comes back.
            Err(e) => {
                let missed = match &e {
                    dndm_core::SendError::Full { missed, .. } => *missed,
                    _ => 1,
                };
                self.missed.set(self.missed.get() + missed as u64);
                match e.into_inner() {
                    Item::Msg(env) => Err(SendError::Full {
                        msg: env.msg.into_inner(),
                        missed,
                        route: self.route().to_string(),
                    }),
                    // Only `Msg` items are sent here.
                    Item::Wake => Ok(()),
                }
            }
        }
    }
}

impl<T> Publisher<T> {
    /// The route it publishes on.
    pub fn route(&self) -> &Route {
        self.intent.route()
    }

    /// This publisher's id (carried by every sample).
    pub fn id(&self) -> PublisherId {
        PublisherId(self.id)
    }

    /// How many subscribers are linked now.
    pub fn interest_count(&self) -> usize {
        self.intent.interest_count()
    }

    /// Blocks until at least one subscriber is linked, at most `timeout`
    /// (`None`, or a timeout too large to add to the clock: no limit). True
    /// if one is.
    pub fn wait_for_interest(&self, timeout: Option<Duration>) -> bool {
        self.intent.wait_for_interest(timeout)
    }

    /// The next link event (a subscriber linked, left, or has another
    /// schema), if one is queued.
    pub fn try_event(&self) -> Option<LinkEvent> {
        self.intent.try_event()
    }

    /// Waits at most `timeout` for the next link event.
    pub fn next_event(&self, timeout: Option<Duration>) -> Option<LinkEvent> {
        self.intent.next_event(timeout)
    }

    /// Messages sent so far, also those nobody was listening to (the last
    /// sequence number).
    pub fn sent(&self) -> u64 {
        self.seq.get()
    }

    /// Deliveries of this publisher's messages that were lost, counted per
    /// subscriber: messages a [`Policy::DropOldest`] subscriber evicted
    /// unread (the default policy), plus subscribers a send missed
    /// ([`Policy::Reject`] refusals, `Block` timeouts, `try_send` to a full
    /// `Block` subscriber; those sends also returned [`SendError::Full`]).
    pub fn dropped(&self) -> u64 {
        self.missed.get() + self.tx.dropped()
    }

    /// The counters of every subscriber linked now, as they see them (what
    /// they took, dropped, refused and hold from all their publishers).
    pub fn subscriber_stats(&self) -> Vec<dndm_core::Stats> {
        self.tx.receiver_stats()
    }
}

impl<T> fmt::Debug for Publisher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("route", self.route())
            .field("id", &self.id)
            .field("interest", &self.interest_count())
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Sample

/// A received message with its metadata. Dereferences to the message
/// ([`get`](Self::get)).
///
/// A message sent to one subscriber travels by value. One that reaches
/// several subscribers (or a publisher's history) is shared: each sample
/// points at the same value, and no subscriber's copy costs a copy of the
/// message. [`into_inner`](Self::into_inner) moves the value out when this
/// sample is its only holder and clones it otherwise;
/// [`into_arc`](Self::into_arc) never copies it.
///
/// Cloning a sample clones a shared pointer, or the value of an unshared one.
#[derive(Clone)]
pub struct Sample<T> {
    msg: Payload<T>,
    route: Arc<Route>,
    seq: u64,
    stamp_ns: u64,
    publisher: PublisherId,
}

impl<T> Sample<T> {
    /// The route it was published on.
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// The publisher's sequence number (1 for its first message; gaps mean
    /// drops).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// When it was published, in [`now_ns`] time.
    pub fn stamp_ns(&self) -> u64 {
        self.stamp_ns
    }

    /// Who published it.
    pub fn publisher(&self) -> PublisherId {
        self.publisher
    }

    /// The message.
    #[inline]
    pub fn get(&self) -> &T {
        self.msg.get()
    }

    /// The message, by value: moved out when this sample is its only holder
    /// (always the case for a message that went to one subscriber), cloned
    /// when other samples or the publisher's history still share it.
    pub fn into_inner(self) -> T
    where
        T: Clone,
    {
        self.msg.into_inner()
    }

    /// The message behind a shared pointer, never copied: the pointer other
    /// subscribers hold too, or a new one around a value this sample owned.
    pub fn into_arc(self) -> Arc<T> {
        self.msg.into_arc()
    }

    /// True when the message travelled shared (see the [type docs](Self));
    /// [`into_inner`](Self::into_inner) then clones it unless every other
    /// holder is gone.
    pub fn is_shared(&self) -> bool {
        self.msg.is_shared()
    }
}

impl<T> Deref for Sample<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        self.msg.get()
    }
}

impl<T: fmt::Debug> fmt::Debug for Sample<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sample")
            .field("route", &*self.route)
            .field("seq", &self.seq)
            .field("publisher", &self.publisher.0)
            .field("msg", self.msg.get())
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Subscriber

struct Local<T> {
    /// Replayed history (and live messages queued behind it).
    pending: VecDeque<Envelope<T>>,
    /// Replayed histories, served before `pending`: each stays the buffer
    /// the publisher's port filled (at most `capacity` envelopes), so taking
    /// it in copies nothing.
    replays: VecDeque<VecDeque<Envelope<T>>>,
    /// Publishers whose replay ended at a sequence number: their lane
    /// messages up to it are duplicates.
    dedup: SmallVec<[(u64, u64); 4]>,
    /// Publisher id → route, filled from the shared table on a miss.
    routes: SmallVec<[(u64, Arc<Route>); 4]>,
    last: usize,
    /// Publishers finished here (gone, lane drained) whose route entries wait
    /// until nothing of theirs can still be buffered.
    finished: Vec<u64>,
}

impl<T> Local<T> {
    /// The next queued envelope: replays first, then live messages held
    /// behind them.
    fn next_queued(&mut self) -> Option<Envelope<T>> {
        while let Some(front) = self.replays.front_mut() {
            if let Some(e) = front.pop_front() {
                return Some(e);
            }
            self.replays.pop_front();
        }
        self.pending.pop_front()
    }
}

/// What one step of the receive loop produced.
pub(crate) enum Step<T> {
    Sample(Sample<T>),
    Woken,
    Empty,
    Closed,
}

/// Receives `T` from every publisher whose route matches a pattern. Created
/// by [`Node::subscribe`](crate::Node::subscribe).
///
/// Messages of one publisher arrive in order; publishers are served
/// round-robin. `recv` blocks, [`recv_timeout`](Self::recv_timeout) bounds
/// the wait, [`recv_async`](Self::recv_async) is an executor-agnostic
/// future, and `for sample in &subscriber` iterates until the node closes.
/// Dropping it unlinks it from every publisher before `drop` returns.
pub struct Subscriber<T> {
    interest: Interest,
    rx: Receiver<Item<T>>,
    shared: Arc<SubShared<T>>,
    /// What this subscriber holds beside its lanes; every receive takes it
    /// once (uncontended unless several threads receive at once).
    local: Mutex<Local<T>>,
    pattern: Arc<str>,
}

impl<T: Message + Clone + Send + 'static> Subscriber<T> {
    pub(crate) fn register(
        linker: &dndm_router::Linker,
        selector: Selector,
        fingerprint: u64,
        opts: SubscribeOptions,
    ) -> Result<Self, crate::SubscribeError> {
        Self::register_guarded(linker, selector, fingerprint, opts, None)
    }

    /// [`register`](Self::register) with a guard every link must pass.
    pub(crate) fn register_guarded(
        linker: &dndm_router::Linker,
        selector: Selector,
        fingerprint: u64,
        opts: SubscribeOptions,
        guard: Option<Arc<dyn dndm_router::LinkGuard>>,
    ) -> Result<Self, crate::SubscribeError> {
        let pattern = selector.to_string();
        let rx =
            Receiver::new(Config::new(opts.capacity).policy(opts.policy)).map_err(|source| {
                crate::SubscribeError::Config {
                    pattern: pattern.clone(),
                    source,
                }
            })?;
        let shared = Arc::new(SubShared {
            routes: Mutex::new(Vec::new()),
            replay: Mutex::new(Vec::new()),
            has_replay: AtomicBool::new(false),
            replay_limit: opts.capacity,
        });
        let sink = crate::remote::TypedSink {
            inlet: rx.inlet(),
            shared: Arc::clone(&shared),
            policy: opts.policy,
        };
        let port = Arc::new(SubPort {
            inlet: rx.inlet(),
            shared: Arc::clone(&shared),
            erased: crate::remote::ErasedSubscriber(Arc::new(sink)),
            waker: Mutex::new(None),
        });
        let interest = match guard {
            Some(g) => linker.add_interest_guarded(selector, fingerprint, port, g)?,
            None => linker.add_interest(selector, fingerprint, port)?,
        };
        Ok(Self {
            interest,
            rx,
            shared,
            local: Mutex::new(Local {
                pending: VecDeque::new(),
                replays: VecDeque::new(),
                dedup: SmallVec::new(),
                routes: SmallVec::new(),
                last: 0,
                finished: Vec::new(),
            }),
            pattern: pattern.into(),
        })
    }
}

impl<T> Subscriber<T> {
    /// Moves replayed history into the local queue.
    #[cold]
    fn absorb(&self, local: &mut Local<T>) {
        let replays = {
            let mut replay = self.shared.replay.lock();
            self.shared.has_replay.store(false, Ordering::Release);
            std::mem::take(&mut *replay)
        };
        for (publisher, last, mut msgs) in replays {
            local.dedup.retain(|(p, _)| *p != publisher);
            local.dedup.push((publisher, last));
            // Only per-publisher order matters. Usually nothing of this
            // publisher is queued locally (its lane opened after the replay
            // was recorded) and the replay queues as it is. Otherwise (it
            // linked again) its queued messages newer than the history go
            // behind the replay and older ones are dropped: one pass, no
            // inserts.
            let queued_here = |e: &Envelope<T>| e.publisher == publisher;
            if local.pending.iter().any(queued_here)
                || local.replays.iter().flatten().any(queued_here)
            {
                let mut newer = VecDeque::new();
                let mut split = |queue: &mut VecDeque<Envelope<T>>| {
                    for e in std::mem::take(queue) {
                        if e.publisher != publisher {
                            queue.push_back(e);
                        } else if e.seq > last {
                            newer.push_back(e);
                        }
                    }
                };
                local.replays.iter_mut().for_each(&mut split);
                split(&mut local.pending);
                msgs.append(&mut newer);
            }
            local.replays.push_back(msgs);
        }
    }

    /// Handles one item from the channel: `Sample`, or `Woken` when it gave
    /// nothing to return (a wake-up, or a message already replayed).
    #[inline]
    fn accept(&self, local: &mut Local<T>, item: Item<T>) -> Step<T> {
        let env = match item {
            Item::Wake => {
                if self.shared.has_replay.load(Ordering::Acquire) {
                    self.absorb(local);
                }
                return match local.next_queued() {
                    Some(e) => self.sample(local, e).map_or(Step::Woken, Step::Sample),
                    None => Step::Woken,
                };
            }
            Item::Msg(env) => env,
        };
        if self.shared.has_replay.load(Ordering::Acquire) {
            self.absorb(local);
        }
        if !local.dedup.is_empty()
            && let Some(i) = local.dedup.iter().position(|(p, _)| *p == env.publisher)
        {
            if env.seq <= local.dedup[i].1 {
                return Step::Woken; // already replayed
            }
            local.dedup.swap_remove(i);
        }
        let env = if local.pending.is_empty() && local.replays.is_empty() {
            env
        } else {
            local.pending.push_back(env);
            match local.next_queued() {
                Some(e) => e,
                None => return Step::Woken,
            }
        };
        self.sample(local, env).map_or(Step::Woken, Step::Sample)
    }

    /// `None` only for a publisher the linker never announced (impossible:
    /// ports record the route before attaching).
    #[inline]
    fn sample(&self, local: &mut Local<T>, env: Envelope<T>) -> Option<Sample<T>> {
        let route = match local.routes.get(local.last) {
            Some((id, r)) if *id == env.publisher => Arc::clone(r),
            _ => self.route_of(local, env.publisher)?,
        };
        Some(Sample {
            msg: env.msg,
            route,
            seq: env.seq,
            stamp_ns: env.stamp_ns,
            publisher: PublisherId(env.publisher),
        })
    }

    #[cold]
    fn route_of(&self, local: &mut Local<T>, publisher: u64) -> Option<Arc<Route>> {
        if let Some(i) = local.routes.iter().position(|(id, _)| *id == publisher) {
            local.last = i;
            return Some(Arc::clone(&local.routes[i].1));
        }
        let route = self
            .shared
            .routes
            .lock()
            .iter()
            .find(|(id, _)| *id == publisher)
            .map(|(_, r)| r.clone());
        // The port records the route before attaching, so it is there.
        let route = Arc::new(route?);
        local.routes.push((publisher, Arc::clone(&route)));
        local.last = local.routes.len() - 1;
        Some(route)
    }

    /// Forgets the routes of publishers that are finished here, so the table
    /// holds only publishers that may still deliver. A publisher is finished
    /// once its handle is gone and this subscriber drained its lane; its
    /// entry goes when no item of it can still wait in the replay queue or
    /// a replay not yet absorbed. One atomic load when nothing finished.
    #[inline]
    fn forget_finished(&self, local: &mut Local<T>) {
        self.rx.take_retired_tags(&mut local.finished);
        if !local.finished.is_empty() {
            self.forget(local);
        }
    }

    #[cold]
    fn forget(&self, local: &mut Local<T>) {
        if !local.pending.is_empty()
            || !local.replays.is_empty()
            || self.shared.has_replay.load(Ordering::Acquire)
        {
            return;
        }
        let finished = std::mem::take(&mut local.finished);
        local.routes.retain(|(id, _)| !finished.contains(id));
        local.last = 0;
        local.dedup.retain(|(id, _)| !finished.contains(id));
        self.shared
            .routes
            .lock()
            .retain(|(id, _)| !finished.contains(id));
    }

    /// Entries in this subscriber's publisher → route table.
    #[cfg(test)]
    pub(crate) fn route_table_len(&self) -> usize {
        self.shared.routes.lock().len()
    }

    fn pop_pending(&self, local: &mut Local<T>) -> Option<Sample<T>> {
        while let Some(env) = local.next_queued() {
            if let Some(s) = self.sample(local, env) {
                return Some(s);
            }
        }
        None
    }

    /// One look without waiting: what this subscriber holds first, then the
    /// lanes. `Empty`: nothing queued; `Woken`: an item was taken that gave
    /// nothing to return (look again).
    #[inline]
    fn look(&self) -> Step<T> {
        let mut local = self.local.lock();
        self.forget_finished(&mut local);
        if (!local.replays.is_empty() || !local.pending.is_empty())
            && let Some(s) = self.pop_pending(&mut local)
        {
            return Step::Sample(s);
        }
        match self.rx.try_recv() {
            Ok(item) => self.accept(&mut local, item),
            Err(CoreTryRecv::Empty) => Step::Empty,
            Err(_) => self
                .pop_pending(&mut local)
                .map_or(Step::Closed, Step::Sample),
        }
    }

    /// One step of a blocking receive: a look, then a wait for the lanes
    /// until `deadline` (`Empty` when it passed).
    pub(crate) fn step(&self, deadline: Deadline) -> Step<T> {
        match self.look() {
            Step::Empty => {}
            step => return step,
        }
        // The wait holds no lock: other receives on this subscriber go on.
        let item = match self.rx.recv_deadline(deadline) {
            Ok(i) => i,
            Err(CoreRecvTimeout::Timeout) => return Step::Empty,
            Err(_) => return self.closed_step(),
        };
        self.accept(&mut self.local.lock(), item)
    }

    fn closed_step(&self) -> Step<T> {
        match self.pop_pending(&mut self.local.lock()) {
            Some(s) => Step::Sample(s),
            None => Step::Closed,
        }
    }

    /// Waits for the next sample; `Err` once the node closed and the queue
    /// is drained.
    pub fn recv(&self) -> Result<Sample<T>, RecvError> {
        loop {
            match self.step(Deadline::NEVER) {
                Step::Sample(s) => return Ok(s),
                Step::Closed => {
                    return Err(RecvError {
                        pattern: Arc::clone(&self.pattern),
                    });
                }
                Step::Woken | Step::Empty => {}
            }
        }
    }

    /// Waits at most `timeout` for the next sample. A timeout too large to
    /// add to the clock (such as `Duration::MAX`) waits without limit.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Sample<T>, RecvTimeoutError> {
        let deadline = Deadline::after(timeout);
        loop {
            match self.step(deadline) {
                Step::Sample(s) => return Ok(s),
                Step::Closed => {
                    return Err(RecvTimeoutError::Closed {
                        pattern: Arc::clone(&self.pattern),
                    });
                }
                Step::Woken | Step::Empty => {
                    if deadline.has_passed() {
                        return Err(RecvTimeoutError::Timeout {
                            pattern: Arc::clone(&self.pattern),
                            timeout,
                        });
                    }
                }
            }
        }
    }

    /// Takes a sample if one is queued. Allocates nothing when none is.
    pub fn try_recv(&self) -> Result<Sample<T>, TryRecvError> {
        // Every turn takes an item off the lanes: it ends with them.
        loop {
            match self.look() {
                Step::Sample(s) => return Ok(s),
                Step::Empty => {
                    return Err(TryRecvError::Empty {
                        pattern: Arc::clone(&self.pattern),
                    });
                }
                Step::Closed => {
                    return Err(TryRecvError::Closed {
                        pattern: Arc::clone(&self.pattern),
                    });
                }
                Step::Woken => {}
            }
        }
    }

    /// Waits for the next sample without blocking the thread (any executor).
    ///
    /// The future is `Send` (a `Subscriber` is `Sync`), so it may move
    /// between the workers of a multi-thread runtime. Several of these
    /// futures may wait on one subscriber at once: each looks at what the
    /// subscriber holds beside its lanes (replayed history) every time it
    /// is polled, before it waits for the lanes.
    pub async fn recv_async(&self) -> Result<Sample<T>, RecvError> {
        let mut wait = self.rx.recv_async();
        std::future::poll_fn(|cx| {
            // Every turn takes an item off the lanes, or returns.
            loop {
                match self.look() {
                    Step::Sample(s) => return Poll::Ready(Ok(s)),
                    Step::Closed => {
                        return Poll::Ready(Err(RecvError {
                            pattern: Arc::clone(&self.pattern),
                        }));
                    }
                    Step::Woken => continue,
                    Step::Empty => {}
                }
                let item = match Pin::new(&mut wait).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(i)) => i,
                    Poll::Ready(Err(_)) => {
                        return Poll::Ready(match self.closed_step() {
                            Step::Sample(s) => Ok(s),
                            _ => Err(RecvError {
                                pattern: Arc::clone(&self.pattern),
                            }),
                        });
                    }
                };
                if let Step::Sample(s) = self.accept(&mut self.local.lock(), item) {
                    return Poll::Ready(Ok(s));
                }
            }
        })
        .await
    }

    /// A blocking iterator that ends when the subscription closes.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { sub: self }
    }

    /// This subscriber's id (the interest id its link events carry).
    pub fn id(&self) -> SubscriberId {
        SubscriberId(self.interest.id().get())
    }

    /// The subscription's selector, as text.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// How many publishers feed it now.
    pub fn publisher_count(&self) -> usize {
        self.interest.intent_count()
    }

    /// The publishers feeding it now, with their routes.
    pub fn publishers(&self) -> Vec<(PublisherId, Route)> {
        self.interest
            .feeders()
            .into_iter()
            .map(|(id, r)| (PublisherId::from(id), r))
            .collect()
    }

    /// Blocks until at least one publisher is linked, at most `timeout`
    /// (`None`, or a timeout too large to add to the clock: no limit).
    pub fn wait_for_publisher(&self, timeout: Option<Duration>) -> bool {
        self.interest.wait_links(|n| n > 0, timeout)
    }

    /// The next link event, if one is queued.
    pub fn try_event(&self) -> Option<LinkEvent> {
        self.interest.try_event()
    }

    /// Waits at most `timeout` (`None`: no limit) for the next link event.
    pub fn next_event(&self, timeout: Option<Duration>) -> Option<LinkEvent> {
        self.interest.next_event(timeout)
    }

    /// Counters of the underlying queue: received, dropped, rejected, queued.
    pub fn stats(&self) -> dndm_core::Stats {
        self.rx.stats()
    }

    pub(crate) fn inlet(&self) -> Inlet<Item<T>> {
        self.rx.inlet()
    }
}

impl<T> fmt::Debug for Subscriber<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("pattern", &self.pattern)
            .field("publishers", &self.publisher_count())
            .finish()
    }
}

/// Blocking iterator over a [`Subscriber`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    sub: &'a Subscriber<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = Sample<T>;
    fn next(&mut self) -> Option<Sample<T>> {
        self.sub.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Subscriber<T> {
    type Item = Sample<T>;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// Wakes a subscriber's receive loop (used to stop callback threads).
pub(crate) fn waker<T: Clone + Send + Sync + 'static>(
    sub: &Subscriber<T>,
) -> impl Fn() + Send + Sync + use<T> {
    let inlet = sub.inlet();
    move || wake(&inlet)
}

// The registration of a handle, for owners that withdraw it from outside
// (a `Scope` closing withdraws every handle it created).
impl<T> Publisher<T> {
    pub(crate) fn registration(&self) -> (dndm_router::Linker, dndm_router::IntentId) {
        (self.intent.linker().clone(), self.intent.id())
    }
}

impl<T> Subscriber<T> {
    pub(crate) fn registration(&self) -> (dndm_router::Linker, dndm_router::InterestId) {
        (self.interest.linker().clone(), self.interest.id())
    }
}

// Sending from async code. Kept in its own block: it only composes the core
// sender's `ready` with `send`.
impl<T: Message + Clone + Send + 'static> Publisher<T> {
    /// [`send`](Self::send) for async code: waits for room in full `Block`
    /// subscribers without blocking the thread (any executor), then sends.
    ///
    /// The future is `Send`, so it may run in a task of a multi-thread
    /// runtime; it holds the publisher mutably while it waits. A `Block`
    /// timeout is checked whenever the future is polled (see
    /// [`dndm_core::Sender::send_async`]): for a hard bound, wrap the future
    /// in your runtime's timeout.
    pub async fn send_async(&mut self, msg: T) -> Result<(), SendError<T>> {
        self.tx.ready().await;
        self.send(msg)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rkyv::{Archive, Deserialize, Serialize};

    use crate::{Node, SubscribeOptions};

    #[derive(Archive, Serialize, Deserialize, dndm_codec::Message, Clone, Debug, PartialEq)]
    #[message(name = "test.Num")]
    struct Num {
        v: u64,
    }

    #[test]
    fn churning_publishers_do_not_grow_a_subscribers_route_table() {
        let node = Node::new("churn");
        let sub = node
            .subscribe_with::<Num>("churn.*", SubscribeOptions::new().capacity(8))
            .unwrap();
        // A steady publisher keeps the subscriber busy the whole time.
        let steady = node.publish::<Num>("churn.steady").unwrap();
        for i in 0..2000u64 {
            let path = format!("churn.p{}", i % 50);
            let short = node.publish::<Num>(&path).unwrap();
            short.send(Num { v: i }).unwrap();
            drop(short);
            steady.send(Num { v: i }).unwrap();
            // Both messages arrive, each with the route it was published on.
            let mut routes = Vec::new();
            for _ in 0..2 {
                let s = sub.recv_timeout(Duration::from_secs(10)).unwrap();
                assert_eq!(s.v, i);
                routes.push(s.route().to_string());
            }
            routes.sort();
            let mut want = vec![
                format!("test.Num@{path}"),
                "test.Num@churn.steady".to_string(),
            ];
            want.sort();
            assert_eq!(routes, want);
            assert!(
                sub.route_table_len() <= 8,
                "route table grew to {} after {i} publishers",
                sub.route_table_len()
            );
        }
    }
}
