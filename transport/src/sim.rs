//! A deterministic simulated network for `mem://` addresses.
//!
//! Sans-IO and driven by virtual time: nothing happens until the test moves
//! the clock with [`SimNet::advance`] / [`SimNet::set_now`], and bytes sent
//! at virtual time `t` become readable at `t + latency + jitter` (later under
//! a bandwidth cap or a partition). All randomness comes from one seeded
//! PRNG (SplitMix64, written here so the stream is stable across
//! dependency updates), so the same seed and the same calls give the same
//! [`TraceEvent`] sequence, exactly.
//!
//! Faults ([`Faults`]): latency and jitter, loss and reordering for
//! datagrams, a bandwidth cap per direction, partitions and heals between
//! named hosts, and abrupt disconnects. Streams stay reliable and ordered
//! (like TCP): a partition holds their bytes until it heals.
//!
//! Wakers (`set_waker`, see the crate docs, "Readiness") are woken when
//! bytes become readable for a connection (at the send when they are due
//! at once, else by the [`SimNet::advance`] / [`SimNet::set_now`] /
//! [`SimNet::heal`] that makes them due), when its peer closes, aborts or
//! is cut by [`SimNet::disconnect`], when the peer's receive frees room in
//! its send queue, and, for a listener, when a connection is pending.
//! Wakers run on the thread that made the change, outside the network's
//! lock.
//!
//! ```
//! use std::time::Duration;
//! use dndm_codec::{FrameBuffer, FrameHeader};
//! use dndm_transport::sim::{Faults, SimNet};
//! use dndm_transport::{Config, Connection, Listener, Transport};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let net = SimNet::new(7, Faults::default().with_latency(Duration::from_millis(2)));
//! let (a, b) = (net.host("a", Config::default()), net.host("b", Config::default()));
//! let mut listener = b.listen(&"mem://b".parse()?)?;
//! let client = a.connect(&"mem://b".parse()?)?;
//! let mut server = listener.try_accept()?.ok_or("no connection")?;
//!
//! let mut batch = FrameBuffer::new();
//! batch.push_raw(&FrameHeader::data(1), b"hi")?;
//! client.try_send(&batch)?;
//! assert_eq!(server.try_recv(8, |_| {})?, 0); // still in flight
//! net.advance(Duration::from_millis(2));
//! assert_eq!(server.try_recv(8, |f| assert_eq!(f.payload(), b"hi"))?, 1);
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::PoisonError;
use std::task::Waker;
use std::time::Duration;

use dndm_codec::{Frame, FrameBuffer, StreamDecoder};
use dndm_core::sync::atomic::Ordering;
use dndm_core::sync::{Arc, Mutex};

use crate::config::Counters;
use crate::{
    AcceptError, Address, CloseReason, Config, ConnectError, Connection, ConnectionStats,
    ListenError, Listener, RecvError, SendError, Transport, TransportStats,
};

/// Fault injection settings; change them mid-run with [`SimNet::set_faults`].
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Faults {
    /// One-way latency.
    pub latency: Duration,
    /// Extra uniform random delay in `[0, jitter]` per send.
    pub jitter: Duration,
    /// Bytes per second per direction; `None` is unlimited.
    pub bandwidth: Option<u64>,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram is held back by an extra
    /// `2 × latency + jitter`, so later ones overtake it.
    pub reorder: f64,
}

impl Faults {
    /// Sets [`latency`](Self::latency).
    #[must_use]
    pub fn with_latency(mut self, v: Duration) -> Self {
        self.latency = v;
        self
    }
    /// Sets [`jitter`](Self::jitter).
    #[must_use]
    pub fn with_jitter(mut self, v: Duration) -> Self {
        self.jitter = v;
        self
    }
    /// Sets [`bandwidth`](Self::bandwidth).
    #[must_use]
    pub fn with_bandwidth(mut self, v: Option<u64>) -> Self {
        self.bandwidth = v;
        self
    }
    /// Sets [`loss`](Self::loss).
    #[must_use]
    pub fn with_loss(mut self, v: f64) -> Self {
        self.loss = v;
        self
    }
    /// Sets [`reorder`](Self::reorder).
    #[must_use]
    pub fn with_reorder(mut self, v: f64) -> Self {
        self.reorder = v;
        self
    }
}

/// One thing that happened on the simulated network, at virtual time `at`
/// (nanoseconds).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TraceEvent {
    /// A stream connection was set up.
    Connect {
        /// Virtual time.
        at: u64,
        /// Connecting host.
        from: String,
        /// Listener name.
        to: String,
        /// Link id of the client → server direction.
        link: u64,
    },
    /// A stream send was accepted.
    Send {
        /// Virtual time.
        at: u64,
        /// Link id.
        link: u64,
        /// Bytes.
        len: usize,
        /// When it becomes readable.
        due: u64,
    },
    /// Stream bytes moved into a receiver.
    Deliver {
        /// Virtual time.
        at: u64,
        /// Link id.
        link: u64,
        /// Bytes.
        len: usize,
    },
    /// A datagram was sent.
    DatagramSent {
        /// Virtual time.
        at: u64,
        /// Sender name.
        from: String,
        /// Destination name.
        to: String,
        /// Bytes.
        len: usize,
        /// When it becomes readable, `None` if lost.
        due: Option<u64>,
    },
    /// A datagram was received.
    DatagramDelivered {
        /// Virtual time.
        at: u64,
        /// Sender name.
        from: String,
        /// Receiver name.
        to: String,
        /// Bytes.
        len: usize,
    },
    /// Two hosts were partitioned.
    Partition {
        /// Virtual time.
        at: u64,
        /// One host.
        a: String,
        /// The other host.
        b: String,
    },
    /// A partition healed.
    Heal {
        /// Virtual time.
        at: u64,
        /// One host.
        a: String,
        /// The other host.
        b: String,
    },
    /// Every connection between two hosts was cut.
    Disconnect {
        /// Virtual time.
        at: u64,
        /// One host.
        a: String,
        /// The other host.
        b: String,
    },
    /// One side closed a link.
    Close {
        /// Virtual time.
        at: u64,
        /// Link id.
        link: u64,
        /// Graceful (`false`: abort).
        graceful: bool,
    },
}

/// SplitMix64: a tiny, well-distributed, seedable generator.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[0, max]`.
    fn upto(&mut self, max: u64) -> u64 {
        if max == 0 {
            0
        } else {
            self.next_u64() % (max + 1)
        }
    }
}

#[derive(Debug)]
struct Segment {
    due: u64,
    bytes: Vec<u8>,
    taken: usize,
}

#[derive(Debug)]
struct Link {
    from: String,
    to: String,
    segments: VecDeque<Segment>,
    in_flight: usize,
    busy_until: u64,
    last_due: u64,
    /// The sender closed gracefully after the queued segments.
    fin: bool,
    /// Cut: in-flight bytes are gone.
    reset: bool,
    receiver_gone: bool,
    sender_gone: bool,
    sent_bytes: u64,
    sent_frames: u64,
    peak: usize,
    full: u64,
    /// The receiving connection's waker (bytes due, close).
    reader: Option<Waker>,
    /// The sending connection's waker (room freed, reset).
    writer: Option<Waker>,
}

impl Link {
    /// Whether a segment becomes due in `(after, upto]`.
    fn due_in(&self, after: u64, upto: u64) -> bool {
        self.segments
            .iter()
            .take_while(|s| s.due <= upto)
            .any(|s| s.due > after)
    }
}

#[derive(Debug)]
struct ListenerState {
    host: String,
    backlog: VecDeque<(u64, u64, String)>,
    waker: Option<Waker>,
}

/// Wakes every waker in `wakers` (called with the network unlocked).
fn wake_all(wakers: Vec<Waker>) {
    for w in wakers {
        w.wake();
    }
}

#[derive(Debug)]
struct Datagram {
    due: u64,
    seq: u64,
    from: String,
    bytes: Vec<u8>,
}

#[derive(Debug)]
struct SocketState {
    host: String,
    inbox: Vec<Datagram>,
}

#[derive(Debug)]
struct Net {
    now: u64,
    rng: Rng,
    faults: Faults,
    partitions: BTreeSet<(String, String)>,
    listeners: BTreeMap<String, ListenerState>,
    sockets: BTreeMap<String, SocketState>,
    links: BTreeMap<u64, Link>,
    next_id: u64,
    trace: Vec<TraceEvent>,
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Net {
    fn partitioned(&self, a: &str, b: &str) -> bool {
        a != b && self.partitions.contains(&pair(a, b))
    }

    fn delay(&mut self) -> u64 {
        let jitter = self.rng.upto(nanos(self.faults.jitter));
        nanos(self.faults.latency).saturating_add(jitter)
    }

    fn new_link(&mut self, from: &str, to: &str) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.links.insert(
            id,
            Link {
                from: from.to_owned(),
                to: to.to_owned(),
                segments: VecDeque::new(),
                in_flight: 0,
                busy_until: 0,
                last_due: 0,
                fin: false,
                reset: false,
                receiver_gone: false,
                sender_gone: false,
                sent_bytes: 0,
                sent_frames: 0,
                peak: 0,
                full: 0,
                reader: None,
                writer: None,
            },
        );
        id
    }

    /// The readers to wake after time moved from `before` to `self.now`:
    /// links where a segment became due and no partition holds it.
    fn due_readers(&self, before: u64) -> Vec<Waker> {
        self.links
            .values()
            .filter(|l| !l.reset && !self.partitioned(&l.from, &l.to))
            .filter(|l| l.due_in(before, self.now))
            .filter_map(|l| l.reader.clone())
            .collect()
    }

    fn gc(&mut self, id: u64) {
        if self
            .links
            .get(&id)
            .is_some_and(|l| l.sender_gone && l.receiver_gone)
        {
            self.links.remove(&id);
        }
    }
}

fn lock(net: &Mutex<Net>) -> dndm_core::sync::MutexGuard<'_, Net> {
    net.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The simulated network: shared by every host made from it (cloning
/// shares it).
#[derive(Clone, Debug)]
pub struct SimNet {
    net: Arc<Mutex<Net>>,
}

impl SimNet {
    /// A network at virtual time 0 whose randomness derives from `seed`.
    pub fn new(seed: u64, faults: Faults) -> Self {
        Self {
            net: Arc::new(Mutex::new(Net {
                now: 0,
                rng: Rng(seed),
                faults,
                partitions: BTreeSet::new(),
                listeners: BTreeMap::new(),
                sockets: BTreeMap::new(),
                links: BTreeMap::new(),
                next_id: 1,
                trace: Vec::new(),
            })),
        }
    }

    /// A named host: the [`Transport`] that host uses.
    pub fn host(&self, name: &str, config: Config) -> SimTransport {
        SimTransport {
            net: self.clone(),
            host: name.to_owned(),
            config,
            counters: Arc::new(Counters::default()),
        }
    }

    /// The virtual time.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(lock(&self.net).now)
    }

    /// Moves virtual time forward by `by`.
    ///
    /// Wakes the wakers of connections whose bytes became readable.
    pub fn advance(&self, by: Duration) {
        let wakers = {
            let mut net = lock(&self.net);
            let before = net.now;
            net.now = net.now.saturating_add(nanos(by));
            net.due_readers(before)
        };
        wake_all(wakers);
    }

    /// Sets virtual time to `now` (never backwards).
    ///
    /// Wakes the wakers of connections whose bytes became readable.
    pub fn set_now(&self, now: Duration) {
        let wakers = {
            let mut net = lock(&self.net);
            let before = net.now;
            net.now = net.now.max(nanos(now));
            net.due_readers(before)
        };
        wake_all(wakers);
    }

    /// Replaces the fault settings.
    pub fn set_faults(&self, faults: Faults) {
        lock(&self.net).faults = faults;
    }

    /// Cuts traffic between hosts `a` and `b` until [`heal`](Self::heal).
    pub fn partition(&self, a: &str, b: &str) {
        let mut net = lock(&self.net);
        let at = net.now;
        net.partitions.insert(pair(a, b));
        net.trace.push(TraceEvent::Partition {
            at,
            a: a.to_owned(),
            b: b.to_owned(),
        });
    }

    /// Ends a partition.
    pub fn heal(&self, a: &str, b: &str) {
        let mut net = lock(&self.net);
        let at = net.now;
        net.partitions.remove(&pair(a, b));
        net.trace.push(TraceEvent::Heal {
            at,
            a: a.to_owned(),
            b: b.to_owned(),
        });
        // Bytes the partition held are readable now.
        let wakers: Vec<Waker> = net
            .links
            .values()
            .filter(|l| pair(&l.from, &l.to) == pair(a, b) && l.due_in(0, at))
            .filter_map(|l| l.reader.clone())
            .collect();
        drop(net);
        wake_all(wakers);
    }

    /// Abruptly cuts every connection between hosts `a` and `b`: both
    /// sides see [`CloseReason::Reset`].
    pub fn disconnect(&self, a: &str, b: &str) {
        let mut net = lock(&self.net);
        let at = net.now;
        let mut wakers = Vec::new();
        for link in net.links.values_mut() {
            if pair(&link.from, &link.to) == pair(a, b) {
                link.reset = true;
                link.segments.clear();
                link.in_flight = 0;
                wakers.extend(link.reader.iter().chain(&link.writer).cloned());
            }
        }
        net.trace.push(TraceEvent::Disconnect {
            at,
            a: a.to_owned(),
            b: b.to_owned(),
        });
        drop(net);
        wake_all(wakers);
    }

    /// Everything that happened so far.
    pub fn trace(&self) -> Vec<TraceEvent> {
        lock(&self.net).trace.clone()
    }

    /// Binds a datagram socket named `name` on `host`.
    ///
    /// # Errors
    ///
    /// [`ListenError::InUse`] if the name is taken.
    pub fn bind_datagram(&self, host: &str, name: &str) -> Result<SimSocket, ListenError> {
        let addr = Address::Mem(name.to_owned());
        let mut net = lock(&self.net);
        if net.sockets.contains_key(name) {
            return Err(ListenError::InUse { addr });
        }
        net.sockets.insert(
            name.to_owned(),
            SocketState {
                host: host.to_owned(),
                inbox: Vec::new(),
            },
        );
        Ok(SimSocket {
            net: self.clone(),
            name: name.to_owned(),
            addr,
            seq: 0,
        })
    }
}

/// One host of a [`SimNet`]; implements [`Transport`] for `mem://` names.
#[derive(Clone, Debug)]
pub struct SimTransport {
    net: SimNet,
    host: String,
    config: Config,
    counters: Arc<Counters>,
}

impl SimTransport {
    /// The host name.
    pub fn host_name(&self) -> &str {
        &self.host
    }

    fn conn(&self, tx: u64, rx: u64, peer: Address, outbound: bool) -> SimConnection {
        self.counters.open.fetch_add(1, Ordering::Relaxed);
        if outbound {
            self.counters.open_outbound.fetch_add(1, Ordering::Relaxed);
        }
        SimConnection {
            outbound,
            net: self.net.clone(),
            tx,
            rx,
            peer,
            decoder: self.config.decoder(),
            recv_closed: None,
            config: self.config.clone(),
            counters: Arc::clone(&self.counters),
            stats: ConnectionStats::default(),
        }
    }
}

impl Transport for SimTransport {
    type Connection = SimConnection;
    type Listener = SimListener;

    fn listen(&self, addr: &Address) -> Result<SimListener, ListenError> {
        let Address::Mem(name) = addr else {
            return Err(ListenError::Unsupported { addr: addr.clone() });
        };
        let mut net = lock(&self.net.net);
        if net.listeners.contains_key(name) {
            return Err(ListenError::InUse { addr: addr.clone() });
        }
        net.listeners.insert(
            name.clone(),
            ListenerState {
                host: self.host.clone(),
                backlog: VecDeque::new(),
                waker: None,
            },
        );
        Ok(SimListener {
            transport: self.clone(),
            name: name.clone(),
            addr: addr.clone(),
        })
    }

    fn connect(&self, addr: &Address) -> Result<SimConnection, ConnectError> {
        let Address::Mem(name) = addr else {
            return Err(ConnectError::Unsupported { addr: addr.clone() });
        };
        if self.counters.open_outbound.load(Ordering::Relaxed)
            >= self.config.max_outbound_connections
        {
            return Err(ConnectError::TooManyConnections {
                addr: addr.clone(),
                limit: self.config.max_outbound_connections,
            });
        }
        let (tx, rx, waker) = {
            let mut net = lock(&self.net.net);
            let Some(server_host) = net.listeners.get(name).map(|l| l.host.clone()) else {
                return Err(ConnectError::Refused { addr: addr.clone() });
            };
            if net.partitioned(&self.host, &server_host) {
                return Err(ConnectError::TimedOut { addr: addr.clone() });
            }
            let tx = net.new_link(&self.host, &server_host);
            let rx = net.new_link(&server_host, &self.host);
            let at = net.now;
            net.trace.push(TraceEvent::Connect {
                at,
                from: self.host.clone(),
                to: name.clone(),
                link: tx,
            });
            let mut waker = None;
            if let Some(l) = net.listeners.get_mut(name) {
                l.backlog.push_back((rx, tx, self.host.clone()));
                waker = l.waker.clone();
            }
            (tx, rx, waker)
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(self.conn(tx, rx, addr.clone(), true))
    }

    fn stats(&self) -> TransportStats {
        self.counters.snapshot()
    }
}

/// A `mem://` listener. Dropping it refuses new connections and resets
/// ones not yet accepted.
#[derive(Debug)]
pub struct SimListener {
    transport: SimTransport,
    name: String,
    addr: Address,
}

impl Drop for SimListener {
    fn drop(&mut self) {
        let mut net = lock(&self.transport.net.net);
        let mut wakers = Vec::new();
        if let Some(l) = net.listeners.remove(&self.name) {
            for (tx, rx, _) in l.backlog {
                for id in [tx, rx] {
                    if let Some(link) = net.links.get_mut(&id) {
                        link.reset = true;
                        wakers.extend(link.reader.iter().chain(&link.writer).cloned());
                    }
                }
                if let Some(link) = net.links.get_mut(&tx) {
                    link.sender_gone = true;
                }
                if let Some(link) = net.links.get_mut(&rx) {
                    link.receiver_gone = true;
                }
                net.gc(tx);
                net.gc(rx);
            }
        }
        drop(net);
        wake_all(wakers);
    }
}

impl Listener for SimListener {
    type Connection = SimConnection;

    fn local_addr(&self) -> &Address {
        &self.addr
    }

    fn try_accept(&mut self) -> Result<Option<SimConnection>, AcceptError> {
        let next = lock(&self.transport.net.net)
            .listeners
            .get_mut(&self.name)
            .and_then(|l| l.backlog.pop_front());
        Ok(next.map(|(tx, rx, from)| {
            self.transport
                .counters
                .accepted
                .fetch_add(1, Ordering::Relaxed);
            self.transport.conn(tx, rx, Address::Mem(from), false)
        }))
    }

    fn wait_acceptable(&mut self, _timeout: Duration) {}

    fn set_waker(&mut self, waker: Option<Waker>) {
        let now = waker.clone();
        let old = lock(&self.transport.net.net)
            .listeners
            .get_mut(&self.name)
            .map(|l| std::mem::replace(&mut l.waker, waker));
        drop(old);
        if let Some(w) = now {
            w.wake();
        }
    }
}

/// One simulated stream connection.
#[derive(Debug)]
pub struct SimConnection {
    net: SimNet,
    tx: u64,
    rx: u64,
    peer: Address,
    decoder: StreamDecoder,
    recv_closed: Option<CloseReason>,
    config: Config,
    counters: Arc<Counters>,
    stats: ConnectionStats,
    /// Dialled by this host (counted against the outbound limit).
    outbound: bool,
}

impl SimConnection {
    /// Moves due bytes from the link into the decoder. Returns the bytes
    /// moved, or the close reason once the link is finished.
    fn pull(&mut self) -> Result<usize, CloseReason> {
        let mut room_freed = None;
        let pulled = self.pull_locked(&mut room_freed);
        if let Some(w) = room_freed {
            w.wake();
        }
        pulled
    }

    /// [`pull`](Self::pull) under the network's lock; sets `room_freed` to
    /// the sender's waker when bytes left its queue.
    fn pull_locked(&mut self, room_freed: &mut Option<Waker>) -> Result<usize, CloseReason> {
        let mut net = lock(&self.net.net);
        let now = net.now;
        let held = match net.links.get(&self.rx) {
            Some(l) if !l.reset => net.partitioned(&l.from, &l.to),
            _ => return Err(CloseReason::Reset),
        };
        let Some(link) = net.links.get_mut(&self.rx) else {
            return Err(CloseReason::Reset);
        };
        let mut moved = 0;
        while let Some(seg) = link.segments.front_mut().filter(|_| !held) {
            if seg.due > now {
                break;
            }
            let rest = seg.bytes.get(seg.taken..).unwrap_or_default();
            let n = self.decoder.feed(rest);
            seg.taken += n;
            moved += n;
            if seg.taken < seg.bytes.len() {
                break;
            }
            link.segments.pop_front();
        }
        link.in_flight -= moved;
        if moved > 0 {
            room_freed.clone_from(&link.writer);
        }
        let finished = link.fin && link.segments.is_empty();
        if moved > 0 {
            net.trace.push(TraceEvent::Deliver {
                at: now,
                link: self.rx,
                len: moved,
            });
        }
        if moved == 0 && finished {
            let buffered = self.decoder.buffered();
            return Err(if buffered > 0 {
                CloseReason::Truncated { buffered }
            } else {
                CloseReason::ClosedByPeer
            });
        }
        Ok(moved)
    }

    fn finish(&mut self, graceful: bool) {
        if self.recv_closed.is_none() {
            self.recv_closed = Some(CloseReason::Local);
        }
        let mut net = lock(&self.net.net);
        let at = net.now;
        let mut changed = false;
        let mut wakers = Vec::new();
        if let Some(l) = net.links.get_mut(&self.tx)
            && !l.sender_gone
        {
            l.sender_gone = true;
            l.writer = None;
            wakers.extend(l.reader.clone());
            changed = true;
            if graceful {
                l.fin = true;
            } else {
                l.reset = true;
                l.segments.clear();
                l.in_flight = 0;
            }
        }
        if let Some(l) = net.links.get_mut(&self.rx)
            && !l.receiver_gone
        {
            l.receiver_gone = true;
            l.reader = None;
            // The peer's sends now fail.
            wakers.extend(l.writer.clone());
        }
        if changed {
            net.trace.push(TraceEvent::Close {
                at,
                link: self.tx,
                graceful,
            });
        }
        net.gc(self.tx);
        net.gc(self.rx);
        drop(net);
        wake_all(wakers);
    }
}

impl Drop for SimConnection {
    fn drop(&mut self) {
        self.finish(true);
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
        if self.outbound {
            self.counters.open_outbound.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Connection for SimConnection {
    fn peer_addr(&self) -> &Address {
        &self.peer
    }

    fn try_send(&self, frames: &FrameBuffer) -> Result<(), SendError> {
        let len = frames.len();
        let peer = self.peer.clone();
        let limit = self.config.max_queued_bytes;
        if len > limit {
            return Err(SendError::TooLarge { peer, len, limit });
        }
        let mut net = lock(&self.net.net);
        let now = net.now;
        let delay = net.delay();
        let bandwidth = net.faults.bandwidth;
        let Some(link) = net.links.get_mut(&self.tx) else {
            return Err(SendError::Closed {
                peer,
                reason: CloseReason::Reset,
            });
        };
        if link.sender_gone {
            return Err(SendError::Closed {
                peer,
                reason: CloseReason::Local,
            });
        }
        if link.reset || link.receiver_gone {
            return Err(SendError::Closed {
                peer,
                reason: CloseReason::Reset,
            });
        }
        if link.in_flight + len > limit {
            link.full += 1;
            return Err(SendError::Full {
                peer,
                queued: link.in_flight,
                len,
                limit,
            });
        }
        let start = link.busy_until.max(now);
        let wire = match bandwidth {
            Some(bps) if bps > 0 => {
                u64::try_from(len as u128 * 1_000_000_000 / u128::from(bps)).unwrap_or(u64::MAX)
            }
            _ => 0,
        };
        link.busy_until = start.saturating_add(wire);
        let due = link.busy_until.saturating_add(delay).max(link.last_due);
        link.last_due = due;
        link.in_flight += len;
        link.peak = link.peak.max(link.in_flight);
        link.sent_bytes += len as u64;
        link.sent_frames += frames.frame_count() as u64;
        link.segments.push_back(Segment {
            due,
            bytes: frames.as_bytes().to_vec(),
            taken: 0,
        });
        let reader = (due <= now).then(|| link.reader.clone()).flatten();
        net.trace.push(TraceEvent::Send {
            at: now,
            link: self.tx,
            len,
            due,
        });
        let held = net
            .links
            .get(&self.tx)
            .is_some_and(|l| net.partitioned(&l.from, &l.to));
        drop(net);
        if let Some(w) = reader.filter(|_| !held) {
            w.wake();
        }
        Ok(())
    }

    fn try_recv<F: FnMut(Frame<'_>)>(
        &mut self,
        max_frames: usize,
        mut on_frame: F,
    ) -> Result<usize, RecvError> {
        let mut delivered = 0;
        loop {
            if let Some(e) = crate::frames::drain(
                &mut self.decoder,
                max_frames,
                &mut delivered,
                &mut self.stats.frames_received,
                &mut on_frame,
            ) && !matches!(self.recv_closed, Some(CloseReason::Protocol(_)))
            {
                let reason = CloseReason::Protocol(e);
                self.counters.count_close(&reason);
                self.recv_closed = Some(reason);
                self.finish(false);
            }
            if delivered >= max_frames {
                return Ok(delivered);
            }
            if let Some(reason) = &self.recv_closed {
                if delivered > 0 {
                    return Ok(delivered);
                }
                return Err(RecvError::Closed {
                    peer: self.peer.clone(),
                    reason: reason.clone(),
                });
            }
            match self.pull() {
                Ok(0) => return Ok(delivered),
                Ok(n) => self.stats.bytes_received += n as u64,
                Err(reason) => self.recv_closed = Some(reason),
            }
        }
    }

    fn set_waker(&mut self, waker: Option<Waker>) {
        let now = waker.clone();
        let old = {
            let mut net = lock(&self.net.net);
            let reader = net
                .links
                .get_mut(&self.rx)
                .map(|l| std::mem::replace(&mut l.reader, waker.clone()));
            let writer = net
                .links
                .get_mut(&self.tx)
                .map(|l| std::mem::replace(&mut l.writer, waker));
            (reader, writer)
        };
        drop(old);
        if let Some(w) = now {
            w.wake();
        }
    }

    fn wait_readable(&mut self, _timeout: Duration) {}

    fn wait_writable(&mut self, _timeout: Duration) {}

    fn queued_bytes(&self) -> usize {
        lock(&self.net.net)
            .links
            .get(&self.tx)
            .map_or(0, |l| l.in_flight)
    }

    fn stats(&self) -> ConnectionStats {
        let net = lock(&self.net.net);
        let mut stats = self.stats;
        if let Some(l) = net.links.get(&self.tx) {
            stats.queued_bytes = l.in_flight;
            stats.peak_queued_bytes = l.peak;
            stats.bytes_sent = l.sent_bytes;
            stats.frames_sent = l.sent_frames;
            stats.full_rejections = l.full;
        }
        stats
    }

    fn close(&mut self) {
        self.finish(true);
    }

    fn abort(&mut self) {
        self.finish(false);
    }
}

/// A simulated datagram socket (see [`SimNet::bind_datagram`]): lossy,
/// possibly reordered, never duplicated.
#[derive(Debug)]
pub struct SimSocket {
    net: SimNet,
    name: String,
    addr: Address,
    seq: u64,
}

impl Drop for SimSocket {
    fn drop(&mut self) {
        lock(&self.net.net).sockets.remove(&self.name);
    }
}

impl SimSocket {
    /// This socket's address.
    pub fn local_addr(&self) -> &Address {
        &self.addr
    }

    /// Sends `bytes` as one datagram to the socket named `to`. Datagrams to
    /// unknown names or across a partition vanish, as on a real network.
    pub fn send_to(&mut self, bytes: &[u8], to: &str) {
        let mut net = lock(&self.net.net);
        let now = net.now;
        self.seq += 1;
        let lost = net.rng.unit() < net.faults.loss;
        let mut delay = net.delay();
        if net.rng.unit() < net.faults.reorder {
            let extra = nanos(net.faults.latency)
                .saturating_mul(2)
                .saturating_add(nanos(net.faults.jitter));
            delay = delay.saturating_add(extra);
        }
        let from_host = net.sockets.get(&self.name).map(|s| s.host.clone());
        let to_host = net.sockets.get(to).map(|s| s.host.clone());
        let blocked = match (&from_host, &to_host) {
            (Some(a), Some(b)) => net.partitioned(a, b),
            _ => true,
        };
        let due = (!lost && !blocked).then(|| now.saturating_add(delay));
        net.trace.push(TraceEvent::DatagramSent {
            at: now,
            from: self.name.clone(),
            to: to.to_owned(),
            len: bytes.len(),
            due,
        });
        if let (Some(due), Some(sock)) = (due, net.sockets.get_mut(to)) {
            sock.inbox.push(Datagram {
                due,
                seq: self.seq,
                from: self.name.clone(),
                bytes: bytes.to_vec(),
            });
        }
    }

    /// Delivers every datagram due by now, earliest first, to
    /// `on_datagram(from, bytes)`; returns how many.
    pub fn recv(&mut self, mut on_datagram: impl FnMut(&str, &[u8])) -> usize {
        let due: Vec<Datagram> = {
            let mut net = lock(&self.net.net);
            let now = net.now;
            let Some(sock) = net.sockets.get_mut(&self.name) else {
                return 0;
            };
            let (mut due, rest): (Vec<_>, Vec<_>) =
                sock.inbox.drain(..).partition(|d| d.due <= now);
            sock.inbox = rest;
            due.sort_by(|a, b| (a.due, &a.from, a.seq).cmp(&(b.due, &b.from, b.seq)));
            for d in &due {
                net.trace.push(TraceEvent::DatagramDelivered {
                    at: now,
                    from: d.from.clone(),
                    to: self.name.clone(),
                    len: d.bytes.len(),
                });
            }
            due
        };
        for d in &due {
            on_datagram(&d.from, &d.bytes);
        }
        due.len()
    }
}
