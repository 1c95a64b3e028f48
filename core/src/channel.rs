//! Senders, receivers and the shared state that links them.
//!
//! * A **source** is what all clones of one [`Sender`] share: the set of
//!   receivers it fans out to, and how many sender handles are alive.
//! * An **inbox** is a [`Receiver`]'s shared state: its lanes (one per
//!   attached sender handle), counters, and the slot where it sleeps.
//! * A **lane** joins one sender handle to one inbox (see `lane.rs`).
//!
//! The hot paths read one generation counter to learn whether the set of
//! lanes changed; all set changes happen under mutexes on cold paths.
//!
//! Lock order: `source.targets` before `inbox.lanes`; `inbox.sources` is
//! never held while another lock is taken.

use std::cell::{Cell, RefCell, RefMut};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crossbeam_utils::Backoff;
use smallvec::SmallVec;

use crate::deadline::Deadline;
use crate::error::{
    AttachError, ConfigError, RecvError, RecvTimeoutError, SendError, TryRecvError,
};
use crate::lane::Lane;
use crate::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::sync::{Arc, CachePadded, Condvar, Mutex, UnsafeCell, light_fence, spin_step, thread};
use crate::wait::{WaitKey, WaitSlot, lock};

/// The largest capacity a receiver may ask for (per sender lane).
pub const MAX_CAPACITY: usize = 1 << 24;

/// What a sender does when a receiver's lane is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Policy {
    /// The sender waits for room, at most `timeout` if one is set; a receiver
    /// it gave up on counts as missed in [`SendError::Full`].
    ///
    /// With a timeout, a receiver that let one send wait out the whole
    /// timeout is *stalled* for that sender handle: later sends do not wait
    /// for it (they count it as missed at once) until its lane has room
    /// again. A receiver that stops reading therefore costs each sender one
    /// timeout per stall, not one per message. Without a timeout the sender
    /// waits as long as it takes (lossless, and a receiver that never reads
    /// stops the sender).
    Block {
        /// How long one send may wait for this receiver (a timeout too large
        /// to add to the clock, such as `Duration::MAX`, waits without limit).
        timeout: Option<Duration>,
    },
    /// The oldest queued message is dropped to make room: the receiver keeps
    /// the latest `capacity` messages of each sender (sensor streams). The
    /// sender never waits; drops are counted in [`Stats::dropped`].
    DropOldest,
    /// The new message is refused and the sender gets [`SendError::Full`];
    /// refusals are counted in [`Stats::rejected`].
    Reject,
}

impl Policy {
    /// [`Policy::Block`] without a timeout.
    pub const BLOCK: Policy = Policy::Block { timeout: None };
}

/// How a receiver queues messages.
///
/// Capacity is per attached sender handle: each sender handle has its own
/// lane of `capacity` slots into this receiver, so one fast sender cannot
/// starve another, and per-sender FIFO order holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    capacity: usize,
    policy: Policy,
}

impl Config {
    /// A config with `capacity` slots per sender and [`Policy::BLOCK`].
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            policy: Policy::BLOCK,
        }
    }

    /// Sets the backpressure policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The capacity per sender lane.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The backpressure policy.
    pub fn get_policy(&self) -> Policy {
        self.policy
    }

    fn validate(self) -> Result<Self, ConfigError> {
        match self.capacity {
            0 => Err(ConfigError::ZeroCapacity),
            c if c > MAX_CAPACITY => Err(ConfigError::CapacityTooLarge {
                requested: c,
                max: MAX_CAPACITY,
            }),
            _ => Ok(self),
        }
    }
}

/// Counters of one receiver, readable from both ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Messages the receiver took.
    pub received: u64,
    /// Messages evicted under [`Policy::DropOldest`].
    pub dropped: u64,
    /// Messages refused under [`Policy::Reject`].
    pub rejected: u64,
    /// Messages queued now.
    pub queued: usize,
    /// Sources attached now.
    pub sources: usize,
    /// Lanes (one per attached sender handle) held now.
    pub lanes: usize,
}

/// Creates a sender and a receiver attached to each other.
///
/// ```
/// let (tx, rx) = dndm_core::channel::<u64>(dndm_core::Config::new(64))?;
/// tx.send(7)?;
/// assert_eq!(rx.recv()?, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn channel<T>(config: Config) -> Result<(Sender<T>, Receiver<T>), ConfigError> {
    let rx = Receiver::new(config)?;
    let tx = Sender::new();
    // A fresh source and a fresh inbox always attach.
    let _ = Source::attach(&tx.source, &rx.inbox);
    Ok((tx, rx))
}

/// [`channel`] with [`Policy::BLOCK`] and `capacity` slots.
pub fn bounded<T>(capacity: usize) -> Result<(Sender<T>, Receiver<T>), ConfigError> {
    channel(Config::new(capacity))
}

// ---------------------------------------------------------------------------
// Shared state

struct Source<T> {
    targets: Mutex<Vec<Arc<Inbox<T>>>>,
    /// Bumped (under `targets`) whenever the target set changes.
    generation: AtomicUsize,
    receivers: AtomicUsize,
    senders: AtomicUsize,
    /// Signalled (under `targets`) when `receivers` changes.
    changed: Condvar,
}

struct Inbox<T> {
    config: Config,
    lanes: Mutex<Vec<Arc<Lane<T>>>>,
    /// Bumped (under `lanes`) whenever a lane is added.
    generation: AtomicUsize,
    /// Attached sources plus live [`Inlet`]s: while non-zero, more messages
    /// may come.
    feeders: AtomicUsize,
    sources: Mutex<Vec<Arc<Source<T>>>>,
    closed: AtomicBool,
    received: CachePadded<AtomicU64>,
    /// Tags of retired lanes not yet taken by the receiver.
    retired_tags: Mutex<Vec<u64>>,
    has_retired_tags: AtomicBool,
    /// Counters of lanes already retired.
    retired_dropped: AtomicU64,
    retired_rejected: AtomicU64,
    wait: WaitSlot,
}

impl<T> Source<T> {
    fn new() -> Self {
        Self {
            targets: Mutex::new(Vec::new()),
            generation: AtomicUsize::new(0),
            receivers: AtomicUsize::new(0),
            senders: AtomicUsize::new(1),
            changed: Condvar::new(),
        }
    }

    fn set_changed(&self, targets: &[Arc<Inbox<T>>]) {
        self.generation.fetch_add(1, Ordering::Release);
        self.receivers.store(targets.len(), Ordering::Release);
        self.changed.notify_all();
    }

    /// Returns `Ok(false)` when already attached.
    fn attach(this: &Arc<Self>, inbox: &Arc<Inbox<T>>) -> Result<bool, AttachError> {
        let mut targets = lock(&this.targets);
        if this.senders.load(Ordering::Acquire) == 0 {
            return Err(AttachError::SenderClosed);
        }
        if targets.iter().any(|t| Arc::ptr_eq(t, inbox)) {
            return Ok(false);
        }
        {
            let mut sources = lock(&inbox.sources);
            if inbox.closed.load(Ordering::Acquire) {
                return Err(AttachError::ReceiverClosed);
            }
            sources.push(Arc::clone(this));
        }
        inbox.feeders.fetch_add(1, Ordering::AcqRel);
        targets.push(Arc::clone(inbox));
        this.set_changed(&targets);
        Ok(true)
    }

    /// Removes `inbox` from the targets; `true` if it was attached.
    fn detach(this: &Arc<Self>, inbox: &Arc<Inbox<T>>) -> bool {
        let removed = {
            let mut targets = lock(&this.targets);
            let Some(i) = targets.iter().position(|t| Arc::ptr_eq(t, inbox)) else {
                return false;
            };
            targets.swap_remove(i);
            this.set_changed(&targets);
            true
        };
        lock(&inbox.sources).retain(|s| !Arc::ptr_eq(s, this));
        inbox.lose_feeder();
        removed
    }

    /// The last sender handle is gone: detach from every inbox.
    fn close(this: &Arc<Self>) {
        let targets = {
            let mut targets = lock(&this.targets);
            let taken = std::mem::take(&mut *targets);
            this.set_changed(&targets);
            taken
        };
        for inbox in targets {
            lock(&inbox.sources).retain(|s| !Arc::ptr_eq(s, this));
            inbox.lose_feeder();
        }
    }

    fn wait_receivers(
        &self,
        mut done: impl FnMut(usize) -> bool,
        timeout: Option<Duration>,
    ) -> Result<usize, usize> {
        let deadline = Deadline::from_timeout(timeout);
        let mut targets = lock(&self.targets);
        loop {
            let n = targets.len();
            if done(n) {
                return Ok(n);
            }
            match deadline.remaining() {
                None => {
                    targets = match self.changed.wait(targets) {
                        Ok(g) => g,
                        Err(p) => p.into_inner(),
                    }
                }
                Some(left) if left.is_zero() => return Err(n),
                Some(left) => {
                    targets = match self.changed.wait_timeout(targets, left) {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    }
                }
            }
        }
    }
}

impl<T> Inbox<T> {
    fn new(config: Config) -> Self {
        Self {
            config,
            lanes: Mutex::new(Vec::new()),
            generation: AtomicUsize::new(0),
            feeders: AtomicUsize::new(0),
            sources: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            received: CachePadded::new(AtomicU64::new(0)),
            retired_tags: Mutex::new(Vec::new()),
            has_retired_tags: AtomicBool::new(false),
            retired_dropped: AtomicU64::new(0),
            retired_rejected: AtomicU64::new(0),
            wait: WaitSlot::new(),
        }
    }

    fn lose_feeder(&self) {
        self.feeders.fetch_sub(1, Ordering::AcqRel);
        light_fence();
        self.wait.wake();
    }

    /// A new lane for a sender handle, or `None` if the receiver is gone.
    fn open_lane(&self, tag: u64) -> Option<Arc<Lane<T>>> {
        let lane = Arc::new(Lane::new(
            self.config.capacity,
            self.config.policy == Policy::DropOldest,
            tag,
        ));
        let mut lanes = lock(&self.lanes);
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        lanes.push(Arc::clone(&lane));
        self.generation.fetch_add(1, Ordering::Release);
        Some(lane)
    }

    fn stats(&self) -> Stats {
        let lanes = lock(&self.lanes);
        let mut s = Stats {
            received: self.received.load(Ordering::Relaxed),
            dropped: self.retired_dropped.load(Ordering::Relaxed),
            rejected: self.retired_rejected.load(Ordering::Relaxed),
            queued: 0,
            sources: lock(&self.sources).len(),
            lanes: lanes.len(),
        };
        for lane in lanes.iter() {
            s.dropped += lane.dropped();
            s.rejected += lane.rejected();
            s.queued += lane.len();
        }
        s
    }
}

// ---------------------------------------------------------------------------
// Sender

/// One sender lane: the receiver it reaches and the ring it writes.
struct Target<T> {
    inbox: Arc<Inbox<T>>,
    lane: Arc<Lane<T>>,
    /// A `Block` timeout ran out on this lane and it has had no room since
    /// (see [`Policy::Block`]). Private to the sender handle.
    stalled: Cell<bool>,
}

impl<T> Target<T> {
    /// True when a blocking send to this receiver always queues the message.
    fn never_refuses(&self) -> bool {
        matches!(
            self.inbox.config.policy,
            Policy::Block { timeout: None } | Policy::DropOldest
        )
    }
}

struct SenderCache<T> {
    generation: usize,
    /// Inline for the common single receiver: read on every send, it stays
    /// on this handle's own cache line rather than in a heap block that may
    /// neighbour data another thread writes.
    targets: SmallVec<[Target<T>; 1]>,
    tag: u64,
    /// Evictions counted by lanes this handle no longer writes.
    retired_dropped: u64,
}

/// The sending half: delivers each message to every attached receiver.
///
/// A `Sender` is `Send` but not `Sync`: each handle owns its lanes, which is
/// what keeps the hot path free of read-modify-write operations. Clone it to
/// send from another thread; clones share the set of attached receivers and
/// each gets its own lanes (so per-handle FIFO order holds). Async code uses
/// [`send_async`](Self::send_async), whose future borrows the handle
/// mutably and is therefore `Send`.
///
/// Fan-out clones the message once per extra receiver, so use a cheaply
/// clonable `T` (for example `Arc<U>`) to share one payload without copying.
///
/// # Re-entrancy
///
/// A send runs user code: `T::clone` (fan-out), the iterator of
/// [`send_iter`](Self::send_iter), `T::drop` of a message a `DropOldest`
/// receiver evicts or of one left in a lane whose receiver is gone. Using
/// this same handle from that code to send, or to [`set_tag`](Self::set_tag),
/// is a programming error, like borrowing a `RefCell` twice: it panics with
/// a message naming the handle and touches no lane. A clone of the handle
/// has lanes of its own and may send from there. If user code panics in
/// the middle of a send, every lane stays consistent: the messages already
/// queued stay queued (in order), the rest are dropped once, and the handle
/// can be used again.
pub struct Sender<T> {
    source: Arc<Source<T>>,
    /// Written (the borrow flag) on every send: on a cache line of its own,
    /// so that no other thread's data shares it (a sender and a receiver
    /// created together are often neighbours on the heap).
    cache: CachePadded<RefCell<SenderCache<T>>>,
}

/// How a delivery may wait for room in a `Block` lane.
#[derive(Clone, Copy)]
enum Wait {
    Never,
    Until(Deadline),
}

impl<T> Sender<T> {
    /// A sender with no receiver attached yet (see [`Sender::attach`]).
    pub fn new() -> Self {
        Self::with_source(Arc::new(Source::new()))
    }

    fn with_source(source: Arc<Source<T>>) -> Self {
        Self {
            source,
            cache: CachePadded::new(RefCell::new(SenderCache {
                generation: usize::MAX,
                targets: SmallVec::new(),
                tag: 0,
                retired_dropped: 0,
            })),
        }
    }

    /// Attaches the receiver behind `inlet`; `Ok(false)` if already attached.
    pub fn attach(&self, inlet: &Inlet<T>) -> Result<bool, AttachError> {
        Source::attach(&self.source, &inlet.inbox)
    }

    /// Detaches the receiver behind `inlet`; `true` if it was attached.
    pub fn detach(&self, inlet: &Inlet<T>) -> bool {
        Source::detach(&self.source, &inlet.inbox)
    }

    /// Tags the lanes this handle opens from now on with `tag` (0 means no
    /// tag). When the handle is gone and a receiver has drained its lane, the
    /// receiver reports the tag once through [`Receiver::take_retired_tags`]:
    /// no message from this handle can arrive there any more. Clones start
    /// untagged.
    ///
    /// # Panics
    ///
    /// When called from user code that runs inside a send on this same handle
    /// (see [re-entrancy](Self#re-entrancy)).
    pub fn set_tag(&self, tag: u64) {
        self.exclusive().tag = tag;
    }

    /// A new receiver attached to this sender (fan-out).
    pub fn subscribe(&self, config: Config) -> Result<Receiver<T>, ConfigError> {
        let rx = Receiver::new(config)?;
        // This handle is alive and the receiver is new, so attach succeeds.
        let _ = Source::attach(&self.source, &rx.inbox);
        Ok(rx)
    }

    /// How many receivers are attached now.
    pub fn receiver_count(&self) -> usize {
        self.source.receivers.load(Ordering::Acquire)
    }

    /// The counters of every attached receiver, as the receivers see them:
    /// what they took, what their policy dropped or refused, what is queued.
    pub fn receiver_stats(&self) -> Vec<Stats> {
        let targets: Vec<Arc<Inbox<T>>> = lock(&self.source.targets).clone();
        targets.iter().map(|inbox| inbox.stats()).collect()
    }

    /// Messages of this handle that [`Policy::DropOldest`] receivers evicted
    /// to make room, summed over every lane it wrote (one message evicted
    /// from two receivers counts twice).
    ///
    /// # Panics
    ///
    /// When called from `T::clone` or `T::drop` during a send on this same
    /// handle (see [re-entrancy](Self#re-entrancy)).
    pub fn dropped(&self) -> u64 {
        let cache = self.exclusive();
        cache.retired_dropped + cache.targets.iter().map(|t| t.lane.dropped()).sum::<u64>()
    }

    /// Blocks until `done(receiver_count)` holds, for at most `timeout`
    /// (`None`, or a timeout too large to add to the clock: no limit).
    /// Returns the count that satisfied it, or the last count on timeout.
    ///
    /// Use it to learn when someone starts or stops listening:
    /// `tx.wait_receivers(|n| n > 0, Some(timeout))`.
    pub fn wait_receivers(
        &self,
        done: impl FnMut(usize) -> bool,
        timeout: Option<Duration>,
    ) -> Result<usize, usize> {
        self.source.wait_receivers(done, timeout)
    }

    /// A handle that can attach and detach receivers without keeping this
    /// source alive as a sender.
    pub fn downgrade(&self) -> WeakSender<T> {
        WeakSender {
            source: Arc::clone(&self.source),
        }
    }

    /// This handle's lane cache, held exclusively for a whole operation: no
    /// user code run during a send (`T::clone`, the iterator of `send_iter`,
    /// `T::drop`) can reach a lane of this handle while it is held, which is
    /// what keeps every lane single-producer.
    #[inline(always)]
    fn exclusive(&self) -> RefMut<'_, SenderCache<T>> {
        match self.cache.try_borrow_mut() {
            Ok(cache) => cache,
            Err(_) => reentrant_send(),
        }
    }

    /// The lane cache, brought in line with the source's target set first:
    /// one generation load and one exclusive borrow on the hot path.
    #[inline(always)]
    fn targets(&self) -> RefMut<'_, SenderCache<T>> {
        let generation = self.source.generation.load(Ordering::Acquire);
        let mut cache = self.exclusive();
        if cache.generation != generation {
            refresh(&self.source, &mut cache);
        }
        cache
    }

    /// Completes when a [`send`](Self::send) on this handle would not wait:
    /// every `Block` receiver's lane has room (or gave up on by its policy
    /// timeout, or gone). It waits without blocking the thread, so an async
    /// task can call `ready().await` and then `send` (which is what
    /// [`send_async`](Self::send_async) does).
    ///
    /// Room stays: only this handle fills its lanes, and a receiver attached
    /// in between starts with an empty lane.
    pub fn ready(&mut self) -> Ready<'_, T> {
        Ready {
            tx: self,
            lane: None,
            key: None,
            deadline: None,
        }
    }

    /// [`send`](Self::send) for async code: waits for room in full `Block`
    /// receivers without blocking the thread (any executor), then sends.
    ///
    /// A `Block` policy timeout is checked each time the future is polled;
    /// the future is woken by room or by the receiver going away, not by the
    /// clock, so for a hard bound wrap it in your runtime's timeout. The
    /// future is `Send` when `T` is, and holds this handle for its lifetime
    /// (a `Sender` is one producer: clone it to send from several tasks).
    pub async fn send_async(&mut self, msg: T) -> Result<(), SendError<T>>
    where
        T: Clone,
    {
        self.ready().await;
        self.send(msg)
    }
}

/// Brings a handle's lane cache in line with its source's target set.
#[cold]
fn refresh<T>(source: &Source<T>, cache: &mut SenderCache<T>) {
    let targets = lock(&source.targets);
    let generation = source.generation.load(Ordering::Acquire);
    let old = std::mem::take(&mut cache.targets);
    let mut next = SmallVec::with_capacity(targets.len());
    let mut old: Vec<Option<Target<T>>> = old.into_iter().map(Some).collect();
    for inbox in targets.iter() {
        let kept = old
            .iter_mut()
            .find(|t| t.as_ref().is_some_and(|t| Arc::ptr_eq(&t.inbox, inbox)))
            .and_then(Option::take);
        match kept {
            Some(t) => next.push(t),
            None => {
                if let Some(lane) = inbox.open_lane(cache.tag) {
                    next.push(Target {
                        inbox: Arc::clone(inbox),
                        lane,
                        stalled: Cell::new(false),
                    });
                }
            }
        }
    }
    drop(targets);
    // The cache is whole again before any user code runs: dropping a
    // stale lane may drop messages its receiver never took (`T::drop`).
    let old: Vec<Target<T>> = old.into_iter().flatten().collect();
    cache.retired_dropped += old.iter().map(|t| t.lane.dropped()).sum::<u64>();
    cache.targets = next;
    cache.generation = generation;
    for t in &old {
        retire(t);
    }
    drop(old);
}

impl<T> Sender<T> {
    /// Sends `msg` to every attached receiver, waiting for room in `Block`
    /// receivers (at most their policy timeout).
    ///
    /// # Panics
    ///
    /// If `T::clone` or `T::drop` uses this same handle (see
    /// [re-entrancy](Self#re-entrancy)); no lane is touched by that use.
    pub fn send(&self, msg: T) -> Result<(), SendError<T>>
    where
        T: Clone,
    {
        self.deliver(msg, Wait::Until(Deadline::NEVER))
    }

    /// Like [`send`](Self::send) but never waits: a full `Block` receiver
    /// counts as missed.
    ///
    /// # Panics
    ///
    /// As [`send`](Self::send), on re-entrant use of this handle.
    pub fn try_send(&self, msg: T) -> Result<(), SendError<T>>
    where
        T: Clone,
    {
        self.deliver(msg, Wait::Never)
    }

    /// Like [`send`](Self::send), waiting at most `timeout` in total. A
    /// timeout too large to add to the clock (such as `Duration::MAX`) only
    /// leaves the receivers' own policy timeouts.
    ///
    /// # Panics
    ///
    /// As [`send`](Self::send), on re-entrant use of this handle.
    pub fn send_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendError<T>>
    where
        T: Clone,
    {
        self.deliver(msg, Wait::Until(Deadline::after(timeout)))
    }

    /// Like [`send`](Self::send), waiting at most until `deadline`
    /// ([`Deadline::NEVER`]: only the receivers' own policy timeouts). For a
    /// caller that already holds a deadline, it saves a clock read.
    ///
    /// # Panics
    ///
    /// As [`send`](Self::send), on re-entrant use of this handle.
    pub fn send_deadline(&self, msg: T, deadline: Deadline) -> Result<(), SendError<T>>
    where
        T: Clone,
    {
        self.deliver(msg, Wait::Until(deadline))
    }

    /// Sends every item of `msgs` as [`send`](Self::send) would, checking for
    /// sleeping receivers once per batch instead of once per message.
    ///
    /// Stops at the first item that fails and returns it in the error; items
    /// before it were delivered. Pass `iter.by_ref()` to keep the rest.
    /// Returns how many items were sent.
    ///
    /// # Panics
    ///
    /// If the iterator, `T::clone` or `T::drop` uses this same handle (see
    /// [re-entrancy](Self#re-entrancy)); no lane is touched by that use. If
    /// the iterator or `T::clone` panics, the items queued before the panic
    /// stay queued.
    pub fn send_iter<I>(&self, msgs: I) -> Result<usize, SendError<T>>
    where
        T: Clone,
        I: IntoIterator<Item = T>,
    {
        let cache = self.targets();
        if let [target] = cache.targets.as_slice() {
            return send_batch_to(target, msgs.into_iter());
        }
        if cache.targets.iter().all(|t| t.never_refuses()) {
            return Ok(send_chunks_to(&cache.targets, msgs.into_iter()));
        }
        let mut sent = 0;
        let mut outcome = Ok(());
        for msg in msgs {
            if let Err(e) =
                self.deliver_to(&cache.targets, msg, Wait::Until(Deadline::NEVER), false)
            {
                outcome = Err(e);
                break;
            }
            sent += 1;
        }
        for t in &cache.targets {
            wake_receiver(t);
        }
        outcome.map(|()| sent)
    }

    #[inline(always)]
    fn deliver(&self, msg: T, wait: Wait) -> Result<(), SendError<T>>
    where
        T: Clone,
    {
        let cache = self.targets();
        if let [t] = cache.targets.as_slice() {
            // One receiver: no clone and no fan-out bookkeeping.
            return push(t, msg, wait, true).map_err(|msg| SendError::Full { msg, missed: 1 });
        }
        self.deliver_to(&cache.targets, msg, wait, true)
    }

    #[inline]
    fn deliver_to(
        &self,
        targets: &[Target<T>],
        msg: T,
        wait: Wait,
        wake: bool,
    ) -> Result<(), SendError<T>>
    where
        T: Clone,
    {
        let Some((last, rest)) = targets.split_last() else {
            return Err(SendError::Disconnected(msg));
        };
        let mut missed = 0;
        let mut handed_back = None;
        for t in rest {
            if let Err(m) = push(t, msg.clone(), wait, wake) {
                missed += 1;
                handed_back.get_or_insert(m);
            }
        }
        if let Err(m) = push(last, msg, wait, wake) {
            missed += 1;
            handed_back = Some(m);
        }
        match handed_back {
            None => Ok(()),
            Some(msg) => Err(SendError::Full { msg, missed }),
        }
    }
}

/// A send on a handle whose lanes are in use by a send further up the stack.
#[cold]
#[inline(never)]
fn reentrant_send() -> ! {
    panic!(
        "re-entrant use of a dndm_core::Sender: a send on this handle is in progress \
         (called from T::clone, T::drop or the iterator of send_iter)"
    )
}

/// `send_iter` to a single receiver: fills free slots in batches, publishing
/// each batch at once, and falls back to [`push`] when the lane is full.
fn send_batch_to<T>(
    t: &Target<T>,
    mut items: impl Iterator<Item = T>,
) -> Result<usize, SendError<T>> {
    let mut sent = 0;
    let outcome = loop {
        sent += t.lane.push_batch(&mut items);
        let Some(msg) = items.next() else {
            break Ok(sent);
        };
        // The lane is full: let the receiver see the batch, then wait or
        // refuse as the policy says.
        wake_receiver(t);
        match push(t, msg, Wait::Until(Deadline::NEVER), false) {
            Ok(()) => sent += 1,
            Err(msg) => break Err(SendError::Full { msg, missed: 1 }),
        }
    };
    wake_receiver(t);
    outcome
}

/// How many messages `send_iter` moves per lane at once when fanning out.
const FAN_OUT_CHUNK: usize = 32;

/// `send_iter` to several receivers none of which can refuse: moves the items
/// in chunks, so each lane publishes (and checks for a sleeper) once per
/// chunk instead of once per message.
fn send_chunks_to<T: Clone>(targets: &[Target<T>], mut items: impl Iterator<Item = T>) -> usize {
    let Some((last, rest)) = targets.split_last() else {
        return 0;
    };
    let mut chunk: SmallVec<[T; FAN_OUT_CHUNK]> = SmallVec::new();
    let mut sent = 0;
    loop {
        chunk.extend(items.by_ref().take(FAN_OUT_CHUNK));
        if chunk.is_empty() {
            break;
        }
        sent += chunk.len();
        for t in rest {
            push_all(t, chunk.iter().cloned());
        }
        push_all(last, chunk.drain(..));
    }
    for t in targets {
        wake_receiver(t);
    }
    sent
}

/// Queues every item in one lane whose policy never refuses.
fn push_all<T>(t: &Target<T>, mut items: impl Iterator<Item = T>) {
    loop {
        t.lane.push_batch(&mut items);
        let Some(msg) = items.next() else { return };
        wake_receiver(t);
        // Block without a timeout waits for room (or for the receiver to go);
        // DropOldest evicts: neither hands the message back.
        let _ = push(t, msg, Wait::Until(Deadline::NEVER), false);
    }
}

/// Pushes one message into one lane according to the receiver's policy.
/// `Err` hands the message back when it could not be queued.
#[inline(always)]
fn push<T>(t: &Target<T>, msg: T, wait: Wait, wake: bool) -> Result<(), T> {
    let result = match t.inbox.config.policy {
        Policy::DropOldest => t.lane.push_overwrite(msg),
        Policy::Reject => t
            .lane
            .try_push(msg)
            .inspect_err(|_| t.lane.count_rejected()),
        Policy::Block { timeout } => match t.lane.try_push(msg) {
            Ok(()) => {
                if t.stalled.get() {
                    t.stalled.set(false);
                }
                Ok(())
            }
            Err(msg) => match wait {
                Wait::Never => Err(msg),
                // It already made a send wait out its timeout and has had no
                // room since: do not wait for it again.
                Wait::Until(_) if t.stalled.get() => Err(msg),
                Wait::Until(deadline) => {
                    // A timeout too large for the clock means no timeout.
                    let by_policy = Deadline::from_timeout(timeout);
                    // Whether giving up would be the policy's doing, not
                    // the caller's own (earlier) deadline.
                    let policy_binds = match (deadline.instant(), by_policy.instant()) {
                        (_, None) => false,
                        (None, Some(_)) => true,
                        (Some(caller), Some(policy)) => policy <= caller,
                    };
                    let result = push_blocking(t, msg, deadline.min(by_policy));
                    t.stalled.set(result.is_err() && policy_binds);
                    result
                }
            },
        },
    };
    if wake && result.is_ok() {
        wake_receiver(t);
    }
    result
}

#[inline(always)]
fn wake_receiver<T>(t: &Target<T>) {
    light_fence();
    t.inbox.wait.wake();
}

#[cold]
fn push_blocking<T>(t: &Target<T>, mut msg: T, deadline: Deadline) -> Result<(), T> {
    let backoff = Backoff::new();
    // A sleeping receiver must see what is already queued before we wait.
    wake_receiver(t);
    // While spinning, resume only once the receiver has freed a run of
    // slots, not at the first one: a producer that takes each slot as it
    // frees reads the consumer's index after every message it takes, and
    // both ends then trade that cache line once per message. Waiting for a
    // run costs this (already waiting) sender nothing in throughput.
    let run = t.lane.refill_run();
    loop {
        if t.inbox.closed.load(Ordering::Acquire) {
            // The receiver is gone: the message has nowhere to go, and the
            // sender will drop this target at its next sync.
            return Ok(());
        }
        if t.lane.has_free(run) {
            msg = match t.lane.try_push(msg) {
                Ok(()) => return Ok(()),
                Err(m) => m,
            };
        }
        if !backoff.is_completed() {
            spin_step(&backoff);
            continue;
        }
        let waiter = &t.lane.producer().wait;
        let key = waiter.arm_thread();
        if t.inbox.closed.load(Ordering::Acquire) {
            waiter.disarm(key);
            return Ok(());
        }
        msg = match t.lane.try_push(msg) {
            Ok(()) => {
                waiter.disarm(key);
                return Ok(());
            }
            Err(m) => m,
        };
        match deadline.remaining() {
            None => thread::park(),
            Some(left) if left.is_zero() => {
                waiter.disarm(key);
                return Err(msg);
            }
            Some(left) => park_timeout(left),
        }
        waiter.disarm(key);
    }
}

#[cfg(not(dndm_loom))]
fn park_timeout(d: Duration) {
    thread::park_timeout(d);
}

#[cfg(dndm_loom)]
fn park_timeout(_: Duration) {
    // loom has no clock: a timed park is a yield, then the caller re-checks.
    thread::yield_now();
}

/// A sender handle is done with a lane: mark it and let the receiver know.
fn retire<T>(t: &Target<T>) {
    t.lane.producer().gone.store(true, Ordering::Release);
    wake_receiver(t);
}

impl<T> Default for Sender<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.source.senders.fetch_add(1, Ordering::AcqRel);
        Self::with_source(Arc::clone(&self.source))
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        for t in &self.cache.get_mut().targets {
            retire(t);
        }
        if self.source.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            Source::close(&self.source);
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("receivers", &self.receiver_count())
            .finish_non_exhaustive()
    }
}

/// The future of [`Sender::ready`]: completes when a send on the handle
/// would not wait.
///
/// `Send` when `T` is. Dropping it withdraws its registration.
#[must_use = "futures do nothing unless polled"]
pub struct Ready<'a, T> {
    tx: &'a mut Sender<T>,
    /// The lane whose producer slot holds this future's registration.
    lane: Option<Arc<Lane<T>>>,
    key: Option<WaitKey>,
    /// When a `Block` timeout (from the first time a full lane was seen)
    /// runs out.
    deadline: Option<Deadline>,
}

// Nothing in `Ready` is pinned: it holds a borrow, an `Arc` and plain data.
impl<T> Unpin for Ready<'_, T> {}

impl<T> Ready<'_, T> {
    fn unregister(&mut self) {
        if let (Some(lane), Some(key)) = (self.lane.take(), self.key.take()) {
            lane.producer().wait.disarm(key);
        }
    }
}

impl<T> Future for Ready<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let generation = this.tx.source.generation.load(Ordering::Acquire);
        let Sender { source, cache } = &mut *this.tx;
        let cache = cache.get_mut();
        if cache.generation != generation {
            refresh(source, cache);
        }
        for t in &cache.targets {
            let timeout = match t.inbox.config.policy {
                Policy::Block { timeout } => timeout,
                Policy::DropOldest | Policy::Reject => continue,
            };
            // A stalled receiver is not waited for (see `Policy::Block`); a
            // closed one takes nothing more.
            if t.stalled.get() || t.inbox.closed.load(Ordering::Acquire) || t.lane.has_room() {
                continue;
            }
            if let Some(d) = timeout {
                let deadline = *this.deadline.get_or_insert_with(|| Deadline::after(d));
                if deadline.remaining().is_some_and(|left| left.is_zero()) {
                    t.stalled.set(true);
                    continue;
                }
            }
            // A sleeping receiver must see what is already queued.
            wake_receiver(t);
            let slot = &t.lane.producer().wait;
            if !this.lane.as_ref().is_some_and(|l| Arc::ptr_eq(l, &t.lane)) {
                if let (Some(lane), Some(key)) = (this.lane.take(), this.key.take()) {
                    lane.producer().wait.disarm(key);
                }
                this.lane = Some(Arc::clone(&t.lane));
            }
            slot.arm_task(&mut this.key, cx.waker());
            // Armed: room made from now on wakes us; look once more.
            if t.inbox.closed.load(Ordering::Acquire) || t.lane.has_room() {
                continue;
            }
            return Poll::Pending;
        }
        this.unregister();
        Poll::Ready(())
    }
}

impl<T> Drop for Ready<'_, T> {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl<T> fmt::Debug for Ready<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ready")
            .field("waiting", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

/// Attaches and detaches receivers of a sender without counting as one.
///
/// The linker holds these: a source whose last [`Sender`] is gone refuses
/// new receivers and has already detached the old ones.
pub struct WeakSender<T> {
    source: Arc<Source<T>>,
}

impl<T> WeakSender<T> {
    /// See [`Sender::attach`].
    pub fn attach(&self, inlet: &Inlet<T>) -> Result<bool, AttachError> {
        Source::attach(&self.source, &inlet.inbox)
    }

    /// See [`Sender::detach`].
    pub fn detach(&self, inlet: &Inlet<T>) -> bool {
        Source::detach(&self.source, &inlet.inbox)
    }

    /// See [`Sender::receiver_count`].
    pub fn receiver_count(&self) -> usize {
        self.source.receivers.load(Ordering::Acquire)
    }

    /// How many [`Sender`] handles of this source are alive.
    pub fn sender_count(&self) -> usize {
        self.source.senders.load(Ordering::Acquire)
    }

    /// See [`Sender::wait_receivers`].
    pub fn wait_receivers(
        &self,
        done: impl FnMut(usize) -> bool,
        timeout: Option<Duration>,
    ) -> Result<usize, usize> {
        self.source.wait_receivers(done, timeout)
    }
}

impl<T> Clone for WeakSender<T> {
    fn clone(&self) -> Self {
        Self {
            source: Arc::clone(&self.source),
        }
    }
}

impl<T> fmt::Debug for WeakSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakSender")
            .field("senders", &self.sender_count())
            .field("receivers", &self.receiver_count())
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Receiver

/// Borrowed mutably only while no user code runs: the receive paths move
/// values out of lanes and never drop or clone a `T` while they hold it, so
/// `T::drop` of a received message may use the receiver again.
struct ReceiverCache<T> {
    generation: usize,
    /// Inline for up to two senders (see `SenderCache::targets`).
    lanes: SmallVec<[Arc<Lane<T>>; 2]>,
    cursor: usize,
}

/// The receiving half: takes messages from every attached sender.
///
/// `Send` and `Sync`: several threads or tasks may receive through one
/// `&Receiver` (so a [`recv_async`](Self::recv_async) future is `Send` and
/// runs on any worker of a multi-thread runtime); their operations take
/// turns, each message goes to exactly one of them. Messages of one sender
/// handle arrive in the order they were sent; lanes of different senders are
/// served round-robin.
///
/// When every sender is gone and no [`Inlet`] is alive, the receiver drains
/// what is queued and then reports disconnection. Dropping it detaches it
/// from every sender at once and drops what was queued.
pub struct Receiver<T> {
    inbox: Arc<Inbox<T>>,
    /// Written on every receive: on a cache line of its own (see
    /// `Sender::cache`).
    local: CachePadded<ReceiverLocal<T>>,
}

struct ReceiverLocal<T> {
    /// Set while one thread runs a receive operation on `cache` (lanes are
    /// single-consumer). Another thread that finds it set spins until it
    /// clears: it is held for a bounded number of steps, during which no
    /// user code runs and nothing waits.
    busy: AtomicBool,
    /// Under loom the exclusion is a mutex instead: loom cannot explore a
    /// spin that waits for another thread's progress, and what it checks
    /// here is the channel under concurrent (excluded) receive operations.
    #[cfg(dndm_loom)]
    turn: Mutex<()>,
    cache: UnsafeCell<ReceiverCache<T>>,
}

// SAFETY: `cache` is the only part not safe to share, and every access to it
// goes through `Receiver::with_cache`, which holds `busy` (acquire on taking
// it, release on leaving it), so one thread at a time touches it. Values of
// `T` only move out of lanes to the caller, hence `T: Send` suffices.
unsafe impl<T: Send> Sync for ReceiverLocal<T> {}

impl<T> Receiver<T> {
    /// A receiver with no sender yet; attach senders through
    /// [`inlet`](Self::inlet).
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let config = config.validate()?;
        Ok(Self {
            inbox: Arc::new(Inbox::new(config)),
            local: CachePadded::new(ReceiverLocal {
                busy: AtomicBool::new(false),
                #[cfg(dndm_loom)]
                turn: Mutex::new(()),
                cache: UnsafeCell::new(ReceiverCache {
                    generation: usize::MAX,
                    lanes: SmallVec::new(),
                    cursor: 0,
                }),
            }),
        })
    }

    /// A handle through which senders attach to this receiver. While any
    /// inlet is alive the receiver does not report disconnection.
    pub fn inlet(&self) -> Inlet<T> {
        Inlet::new(Arc::clone(&self.inbox))
    }

    /// This receiver's configuration.
    pub fn config(&self) -> Config {
        self.inbox.config
    }

    /// Counters: received, dropped, rejected, queued.
    pub fn stats(&self) -> Stats {
        self.inbox.stats()
    }

    /// Runs `f` with the lane cache, one thread at a time (see `busy`).
    #[inline(always)]
    fn with_cache<R>(&self, f: impl FnOnce(&mut ReceiverCache<T>) -> R) -> R {
        /// Clears `busy` when the operation ends, also by unwinding.
        struct Leave<'a>(&'a AtomicBool);
        impl Drop for Leave<'_> {
            #[inline(always)]
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let local = &*self.local;
        #[cfg(dndm_loom)]
        let _turn = lock(&local.turn);
        if local.busy.swap(true, Ordering::Acquire) {
            self.wait_turn();
        }
        let _leave = Leave(&local.busy);
        // SAFETY: this thread holds `busy`, so no other thread is inside
        // `with_cache`; and no caller nests `with_cache` (the receive paths
        // run no user code while they hold the cache).
        local.cache.with_mut(|c| f(unsafe { &mut *c }))
    }

    /// Another thread runs a receive operation: wait for it to end.
    #[cold]
    fn wait_turn(&self) {
        let backoff = Backoff::new();
        // A read-modify-write each time: it reads the latest value, so the
        // loop ends as soon as the holder leaves (loom relies on it too).
        while self.local.busy.swap(true, Ordering::Acquire) {
            spin_step(&backoff);
        }
    }

    /// Takes a message if one is queued.
    #[inline]
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.with_cache(
            #[inline(always)]
            |cache| match self.poll_lanes(cache) {
                Some(v) => Ok(v),
                None => self.idle(cache),
            },
        )
    }

    /// Takes one message from `lane`, if any, and tells a producer blocked
    /// on it that there is room.
    #[inline(always)]
    fn pop_from(&self, lane: &Lane<T>) -> Option<T> {
        let v = lane.try_pop()?;
        let received = &self.inbox.received;
        received.store(received.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        // A producer blocked on this full lane now has room.
        light_fence();
        lane.producer().wait.wake();
        Some(v)
    }

    #[inline(always)]
    fn poll_lanes(&self, cache: &mut ReceiverCache<T>) -> Option<T> {
        let generation = self.inbox.generation.load(Ordering::Acquire);
        if cache.generation != generation {
            self.refresh(cache);
        }
        if let [lane] = cache.lanes.as_slice() {
            // One sender handle: no round-robin to keep.
            if let Some(v) = self.pop_from(lane) {
                return Some(v);
            }
            if lane.producer().gone.load(Ordering::Relaxed) {
                self.retire_lanes(cache);
            }
            return None;
        }
        let n = cache.lanes.len();
        let mut i = cache.cursor;
        // A lane found empty whose sender is gone: retire it now rather than
        // only when every lane is empty, so churning senders cannot pile up
        // lanes while others keep this receiver busy.
        let mut finished = false;
        let mut taken = None;
        for _ in 0..n {
            if i >= n {
                i = 0;
            }
            let lane = &cache.lanes[i];
            if let Some(v) = self.pop_from(lane) {
                taken = Some(v);
                break;
            }
            finished |= lane.producer().gone.load(Ordering::Relaxed);
            i += 1;
        }
        if finished {
            self.retire_lanes(cache);
        }
        if taken.is_some() {
            cache.cursor = i + 1;
        }
        taken
    }

    /// Nothing was queued (and `poll_lanes` already retired finished lanes):
    /// decide between `Empty` and `Disconnected`.
    #[cold]
    fn idle(&self, cache: &mut ReceiverCache<T>) -> Result<T, TryRecvError> {
        // Feeders first: their release pairs with this acquire, so after it
        // every message sent before the last detach is visible in the lanes.
        let no_feeders = self.inbox.feeders.load(Ordering::Acquire) == 0;
        if no_feeders {
            if let Some(v) = self.poll_lanes(cache) {
                return Ok(v);
            }
            return Err(TryRecvError::Disconnected);
        }
        Err(TryRecvError::Empty)
    }

    #[cold]
    fn refresh(&self, cache: &mut ReceiverCache<T>) {
        let lanes = lock(&self.inbox.lanes);
        cache.generation = self.inbox.generation.load(Ordering::Acquire);
        cache.lanes.clear();
        cache.lanes.extend(lanes.iter().cloned());
    }

    #[cold]
    fn retire_lanes(&self, cache: &mut ReceiverCache<T>) {
        let mut lanes = lock(&self.inbox.lanes);
        lanes.retain(|l| {
            // `gone` first: no push can follow it, so empty stays empty.
            let done = l.producer().gone.load(Ordering::Acquire) && l.is_empty();
            if done {
                if l.tag() != 0 {
                    lock(&self.inbox.retired_tags).push(l.tag());
                    self.inbox.has_retired_tags.store(true, Ordering::Release);
                }
                self.inbox
                    .retired_dropped
                    .fetch_add(l.dropped(), Ordering::Relaxed);
                self.inbox
                    .retired_rejected
                    .fetch_add(l.rejected(), Ordering::Relaxed);
            }
            !done
        });
        cache.generation = self.inbox.generation.load(Ordering::Acquire);
        cache.lanes.clear();
        cache.lanes.extend(lanes.iter().cloned());
        cache.cursor = 0;
    }

    /// Moves the tags of sender handles that are finished here into `out`:
    /// each tagged handle (see [`Sender::set_tag`]) that is gone and whose
    /// lane this receiver drained is reported once. Returns how many.
    #[inline]
    pub fn take_retired_tags(&self, out: &mut Vec<u64>) -> usize {
        if !self.inbox.has_retired_tags.load(Ordering::Acquire) {
            return 0;
        }
        let mut tags = lock(&self.inbox.retired_tags);
        self.inbox.has_retired_tags.store(false, Ordering::Relaxed);
        let n = tags.len();
        out.append(&mut tags);
        n
    }

    /// Waits for a message; `Err` once every sender is gone and the queue is
    /// drained.
    #[inline]
    pub fn recv(&self) -> Result<T, RecvError> {
        // One look at the lanes inline (the value moves straight out);
        // everything else (retiring, disconnection, waiting) out of line.
        match self.with_cache(
            #[inline(always)]
            |cache| self.poll_lanes(cache),
        ) {
            Some(v) => Ok(v),
            None => self.recv_slow(),
        }
    }

    #[inline(never)]
    fn recv_slow(&self) -> Result<T, RecvError> {
        self.recv_deadline(Deadline::NEVER).map_err(|_| RecvError)
    }

    /// Waits at most `timeout` for a message. A timeout too large to add to
    /// the clock (such as `Duration::MAX`) waits without limit.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_deadline(Deadline::after(timeout))
    }

    /// Waits for a message until `deadline` ([`Deadline::NEVER`]: as
    /// [`recv`](Self::recv), but reports disconnection as
    /// [`RecvTimeoutError::Disconnected`]).
    pub fn recv_deadline(&self, deadline: Deadline) -> Result<T, RecvTimeoutError> {
        let backoff = Backoff::new();
        loop {
            match self.try_recv() {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            if !backoff.is_completed() {
                spin_step(&backoff);
                continue;
            }
            let key = self.inbox.wait.arm_thread();
            match self.try_recv() {
                Ok(v) => {
                    self.inbox.wait.disarm(key);
                    return Ok(v);
                }
                Err(TryRecvError::Disconnected) => {
                    self.inbox.wait.disarm(key);
                    return Err(RecvTimeoutError::Disconnected);
                }
                Err(TryRecvError::Empty) => {}
            }
            match deadline.remaining() {
                None => thread::park(),
                Some(left) if left.is_zero() => {
                    self.inbox.wait.disarm(key);
                    return Err(RecvTimeoutError::Timeout);
                }
                Some(left) => park_timeout(left),
            }
            self.inbox.wait.disarm(key);
        }
    }

    /// Waits for at least one message, then moves up to `max` queued
    /// messages into `buf`. Returns how many were moved.
    pub fn recv_batch(&self, buf: &mut Vec<T>, max: usize) -> Result<usize, RecvError> {
        if max == 0 {
            return Ok(0);
        }
        buf.push(self.recv()?);
        Ok(1 + self.take_batch(buf, max - 1))
    }

    /// Moves up to `max` messages that are queued now into `buf`, without
    /// waiting, taking whole runs from each lane. Returns how many were moved
    /// (at least one), [`TryRecvError::Empty`] if none was queued, or
    /// [`TryRecvError::Disconnected`] once every sender is gone and the queue
    /// is drained.
    pub fn try_recv_batch(&self, buf: &mut Vec<T>, max: usize) -> Result<usize, TryRecvError> {
        if max == 0 {
            return Ok(0);
        }
        let n = self.take_batch(buf, max);
        if n > 0 {
            return Ok(n);
        }
        // Nothing in the lanes: let `try_recv` retire lanes and tell empty
        // from disconnected.
        buf.push(self.try_recv()?);
        Ok(1 + self.take_batch(buf, max - 1))
    }

    /// Moves up to `max` queued messages into `buf` without waiting, taking
    /// whole runs from each lane and releasing their slots at once.
    fn take_batch(&self, buf: &mut Vec<T>, max: usize) -> usize {
        self.with_cache(|cache| self.take_batch_in(cache, buf, max))
    }

    fn take_batch_in(&self, cache: &mut ReceiverCache<T>, buf: &mut Vec<T>, max: usize) -> usize {
        let generation = self.inbox.generation.load(Ordering::Acquire);
        if cache.generation != generation {
            self.refresh(cache);
        }
        let lanes = cache.lanes.len();
        let mut taken = 0;
        for k in 0..lanes {
            if taken == max {
                break;
            }
            let lane = &cache.lanes[(cache.cursor + k) % lanes];
            let n = lane.pop_batch(buf, max - taken);
            if n > 0 {
                taken += n;
                light_fence();
                lane.producer().wait.wake();
            }
        }
        cache.cursor = cache.cursor.wrapping_add(1);
        let received = &self.inbox.received;
        received.store(
            received.load(Ordering::Relaxed) + taken as u64,
            Ordering::Relaxed,
        );
        taken
    }

    /// An iterator over the messages queued now; it never waits.
    pub fn drain(&self) -> Drain<'_, T> {
        Drain { rx: self }
    }

    /// A blocking iterator that ends when every sender is gone.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// Waits for a message without blocking the thread: an executor-agnostic
    /// future (any executor, or none: see the crate docs).
    pub fn recv_async(&self) -> RecvFuture<'_, T> {
        RecvFuture {
            rx: self,
            key: None,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let sources = {
            let mut sources = lock(&self.inbox.sources);
            self.inbox.closed.store(true, Ordering::Release);
            std::mem::take(&mut *sources)
        };
        for source in &sources {
            source.detach_closed(&self.inbox);
        }
        let lanes = std::mem::take(&mut *lock(&self.inbox.lanes));
        for lane in &lanes {
            // Free queued messages now, and release producers blocked on us.
            while lane.try_pop().is_some() {}
            light_fence();
            lane.producer().wait.wake();
        }
    }
}

impl<T> Source<T> {
    /// The inbox was closed and already forgot this source.
    fn detach_closed(&self, inbox: &Arc<Inbox<T>>) {
        let mut targets = lock(&self.targets);
        if let Some(i) = targets.iter().position(|t| Arc::ptr_eq(t, inbox)) {
            targets.swap_remove(i);
            inbox.feeders.fetch_sub(1, Ordering::AcqRel);
            self.set_changed(&targets);
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("config", &self.inbox.config)
            .finish_non_exhaustive()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// Blocking iterator: see [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Non-blocking iterator: see [`Receiver::drain`].
#[derive(Debug)]
pub struct Drain<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Drain<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// The future of [`Receiver::recv_async`].
///
/// Several of these may wait on one receiver at once (polled by different
/// tasks, or beside a blocked `recv`): each message wakes every waiting
/// party, and each takes what is queued when it is polled again.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct RecvFuture<'a, T> {
    rx: &'a Receiver<T>,
    /// This future's registration in the receiver's wait slot, once pending.
    key: Option<WaitKey>,
}

impl<T> RecvFuture<'_, T> {
    fn attempt(&self) -> Option<Result<T, RecvError>> {
        match self.rx.try_recv() {
            Ok(v) => Some(Ok(v)),
            Err(TryRecvError::Disconnected) => Some(Err(RecvError)),
            Err(TryRecvError::Empty) => None,
        }
    }

    fn unregister(&mut self) {
        if let Some(key) = self.key.take() {
            self.rx.inbox.wait.disarm(key);
        }
    }
}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(r) = this.attempt() {
            this.unregister();
            return Poll::Ready(r);
        }
        this.rx.inbox.wait.arm_task(&mut this.key, cx.waker());
        match this.attempt() {
            Some(r) => {
                this.unregister();
                Poll::Ready(r)
            }
            None => Poll::Pending,
        }
    }
}

impl<T> Drop for RecvFuture<'_, T> {
    fn drop(&mut self) {
        self.unregister();
    }
}

// ---------------------------------------------------------------------------
// Inlet

/// Where senders attach to a receiver, held apart from the receiver itself
/// (the linker keeps one per interest). While an inlet is alive the receiver
/// expects more senders and does not report disconnection.
pub struct Inlet<T> {
    inbox: Arc<Inbox<T>>,
}

impl<T> Inlet<T> {
    fn new(inbox: Arc<Inbox<T>>) -> Self {
        inbox.feeders.fetch_add(1, Ordering::AcqRel);
        Self { inbox }
    }

    /// True once the receiver was dropped.
    pub fn is_closed(&self) -> bool {
        self.inbox.closed.load(Ordering::Acquire)
    }

    /// The receiver's counters.
    pub fn stats(&self) -> Stats {
        self.inbox.stats()
    }

    /// The receiver's configuration.
    pub fn config(&self) -> Config {
        self.inbox.config
    }

    /// True if both inlets lead to the same receiver.
    pub fn same_receiver(&self, other: &Inlet<T>) -> bool {
        Arc::ptr_eq(&self.inbox, &other.inbox)
    }
}

impl<T> Clone for Inlet<T> {
    fn clone(&self) -> Self {
        Self::new(Arc::clone(&self.inbox))
    }
}

impl<T> Drop for Inlet<T> {
    fn drop(&mut self) {
        self.inbox.lose_feeder();
    }
}

impl<T> fmt::Debug for Inlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inlet")
            .field("closed", &self.is_closed())
            .finish()
    }
}

// ---------------------------------------------------------------------------
// PollReceiver

/// A receiver for a hand-written event loop that serves many receivers from
/// one thread: [`poll_recv`](Self::poll_recv) keeps its waker registration
/// between polls (a [`RecvFuture`] would be made and dropped each time),
/// so the loop's waker fires at the next message after a `Pending`.
#[derive(Debug)]
pub struct PollReceiver<T> {
    rx: Receiver<T>,
    key: Option<WaitKey>,
}

impl<T> PollReceiver<T> {
    /// Wraps `rx`.
    pub fn new(rx: Receiver<T>) -> Self {
        Self { rx, key: None }
    }

    /// The receiver.
    pub fn get_ref(&self) -> &Receiver<T> {
        &self.rx
    }

    /// The next message, or `Pending` with `cx`'s waker registered to be
    /// woken when one may have arrived (or every sender left).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        let mut fut = RecvFuture {
            rx: &self.rx,
            key: self.key.take(),
        };
        let r = Pin::new(&mut fut).poll(cx);
        // Keep the registration past this poll: forget it in the future so
        // its drop leaves it armed.
        self.key = fut.key.take();
        r
    }
}

impl<T> Drop for PollReceiver<T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.rx.inbox.wait.disarm(key);
        }
    }
}
