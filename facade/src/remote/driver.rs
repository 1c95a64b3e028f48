//! The driver: one thread per node that moves frames between every peer
//! session and its connection.
//!
//! It parks on one wake-up source, woken by the transports (bytes arrived,
//! a queue drained, a connection is pending), by publishers (a message for
//! a peer's outlet), by the linker (a registration to advertise) and by the
//! node (a command). Each turn it accepts connections, reads and handles
//! frames, advertises registrations, encodes queued messages into each
//! session, writes what the sessions produced (one batch per peer) and runs
//! the sessions' timers. No thread or poller per connection.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::thread::Thread;
use std::time::Duration;

use dndm_codec::{FrameBuffer, FrameHeader};
use dndm_core::sync::atomic::{AtomicBool, Ordering};
use dndm_router::session::SendError as SessionSendError;
use dndm_router::session::{
    CloseReason, Event, Inbound, NodeId, Origin, RemoteIntentId, RemoteInterestId, Session,
    SessionConfig, Space, Withdrawn,
};
use dndm_router::{Intent, Interest, Linker, Registration, RegistrationChange, RegistrationWatch};
use dndm_transport::{RecvError, SendError};
use parking_lot::Mutex;

use super::conn::{DynConnection, DynListener};
use super::ports::{PeerCounters, PeerIntent, PeerInterest, PeerShared, Pumped};
use super::rpc::{
    Answer, CallFailure, Completion, OutCall, PeerClient, PeerServer, RemoteReply, RemoteServer,
    ReplyCode, RpcQueues,
};
use super::{NetShared, PeerEvent, PeerEventKind};

/// Frames read from one connection per call.
const READ_BATCH: usize = 64;
/// Read calls per connection per turn, so one busy peer cannot starve the
/// others.
const READ_ROUNDS: usize = 16;
/// Connections accepted per listener per turn.
const ACCEPT_BATCH: usize = 16;
/// Messages one outlet encodes before the driver looks at the batch size.
const PUMP_BUDGET: usize = 64;
/// A peer's batch is written once it holds this many bytes.
pub(crate) const WRITE_BATCH: usize = 256 * 1024;
/// The longest park: timers are re-read at least this often.
const MAX_PARK: Duration = Duration::from_millis(100);
/// How often stalled deliveries (a full `Block` subscriber) are retried.
const STALL_RETRY: Duration = Duration::from_millis(1);

/// The driver's one wake-up source.
pub(crate) struct DriverWake {
    pending: AtomicBool,
    thread: std::sync::OnceLock<Thread>,
}

impl DriverWake {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            pending: AtomicBool::new(false),
            thread: std::sync::OnceLock::new(),
        })
    }

    fn park(&self, timeout: Duration) {
        if !self.pending.swap(false, Ordering::AcqRel) {
            std::thread::park_timeout(timeout);
            self.pending.store(false, Ordering::Release);
        }
    }
}

impl Wake for DriverWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.pending.swap(true, Ordering::AcqRel)
            && let Some(t) = self.thread.get()
        {
            t.unpark();
        }
    }
}

/// What the node asks of its driver.
pub(crate) enum Command {
    Listen(Box<dyn DynListener>),
    Connect(Box<dyn DynConnection>),
}

/// The time every session sees: the host's monotonic clock, the one sample
/// timestamps use, so clock offsets between peers on one host are zero.
fn now() -> Duration {
    Duration::from_nanos(dndm_core::clock::now_ns())
}

struct PeerState {
    session: Session,
    shared: Arc<PeerShared>,
    peer_id: Option<NodeId>,
    intents: IntentMap,
    interests: HashMap<RemoteInterestId, Interest>,
    /// The node's services linker: the peer's clients and servers are
    /// registered there.
    services: Linker,
    clients: HashMap<RemoteIntentId, (Arc<PeerClient>, Intent)>,
    servers: HashMap<RemoteInterestId, Interest>,
    /// Our calls awaiting the peer's reply, by correlation id, with the
    /// caller's deadline.
    calls: HashMap<u64, (Completion, Option<Duration>)>,
    /// Calls taken from the callers' queue before this turn's
    /// registrations were advertised (see [`Driver::run`]), sent by `rpc`.
    outgoing: VecDeque<OutCall>,
    /// Bytes produced but not yet taken by the transport.
    out: FrameBuffer,
    /// Since when the transport has refused our bytes.
    blocked_since: Option<Duration>,
    /// Proxies with a lane holding a sample a `Block` subscriber had no
    /// room for: reading this peer waits until they delivered it.
    stalled: Vec<Arc<PeerIntent>>,
    /// Frames read after a stall, in order (at most one read batch).
    backlog: VecDeque<(FrameHeader, Vec<u8>)>,
    closed: Option<String>,
}

/// A peer's intents, looked up once per data frame: keyed with a
/// multiply-rotate hash instead of SipHash. The keys are ids the session
/// accepted, as many as the declaration limit allows, so a peer that picks
/// colliding aliases only slows its own lookups.
type IntentMap = HashMap<RemoteIntentId, (Arc<PeerIntent>, Intent), BuildHasherDefault<IdHasher>>;

/// The hasher of [`IntentMap`]: the two `u32` halves of an id, mixed.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u8(*b);
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(29) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }
}

struct Peer {
    conn: Box<dyn DynConnection>,
    st: PeerState,
}

pub(crate) struct Driver {
    shared: Arc<NetShared>,
    topics: Linker,
    services: Linker,
    watch: RegistrationWatch,
    service_watch: RegistrationWatch,
    /// Local registrations advertised to every peer, by space and linker id.
    declared: BTreeMap<(u8, u64), (Space, Registration)>,
    listeners: Vec<Box<dyn DynListener>>,
    peers: Vec<Peer>,
    waker: Waker,
    changes: Vec<RegistrationChange>,
}

impl Driver {
    pub(crate) fn new(shared: Arc<NetShared>, topics: Linker, services: Linker) -> Self {
        let waker = Waker::from(Arc::clone(&shared.wake));
        let watch = topics.watch();
        watch.set_waker(Some(waker.clone()));
        let service_watch = services.watch();
        service_watch.set_waker(Some(waker.clone()));
        Self {
            shared,
            topics,
            services,
            watch,
            service_watch,
            declared: BTreeMap::new(),
            listeners: Vec::new(),
            peers: Vec::new(),
            waker,
            changes: Vec::new(),
        }
    }

    /// Runs until the node stops it.
    pub(crate) fn run(mut self) {
        let _ = self.shared.wake.thread.set(std::thread::current());
        loop {
            if self.shared.stop.load(Ordering::Acquire) {
                self.shutdown();
                return;
            }
            let now = now();
            self.take_commands(now);
            self.accept(now);
            self.advertise(now);
            for p in &mut self.peers {
                p.read(now, &self.topics, &self.shared);
            }
            // Calls are taken before the last advertise: a caller's client
            // intent is registered (and seen by the watch) before its call
            // is queued, so every call taken here finds its route declared
            // to the peer by the time `rpc` sends it.
            for p in &mut self.peers {
                if p.st.closed.is_none() && p.st.session.is_connected() {
                    p.st.outgoing.extend(p.st.shared.rpc.take_calls());
                }
            }
            // Registrations made while reading (a peer's declarations can
            // link our publishers) are advertised in the same turn.
            self.advertise(now);
            let mut cx = Context::from_waker(&self.waker);
            for p in &mut self.peers {
                p.st.rpc(now);
                p.st.pump(&mut cx, now, false);
                p.flush(now);
                p.st.run_timers(now, &self.shared);
                p.flush(now);
            }
            self.reap();
            let park = self.park_time(now);
            self.shared.wake.park(park);
        }
    }

    fn take_commands(&mut self, now: Duration) {
        let commands = std::mem::take(&mut *self.shared.commands.lock());
        for c in commands {
            match c {
                Command::Listen(mut l) => {
                    l.set_waker(Some(self.waker.clone()));
                    self.listeners.push(l);
                }
                Command::Connect(conn) => self.add_peer(conn, now),
            }
        }
    }

    fn accept(&mut self, now: Duration) {
        let mut accepted = Vec::new();
        for l in &mut self.listeners {
            // Bounded: a flood of connections waits for the next turn.
            let mut n = 0;
            loop {
                if n == ACCEPT_BATCH {
                    self.shared.wake.pending.store(true, Ordering::Release);
                    break;
                }
                match l.try_accept_dyn() {
                    Ok(Some(c)) => accepted.push(c),
                    Ok(None) | Err(_) => break,
                }
                n += 1;
            }
        }
        for c in accepted {
            self.add_peer(c, now);
        }
    }

    fn add_peer(&mut self, mut conn: Box<dyn DynConnection>, now: Duration) {
        let addr = conn.peer_addr().to_string();
        let net = &self.shared.config;
        let mut config = SessionConfig::new(self.shared.node_id, self.shared.name.clone());
        config.peer_label = addr.clone();
        config.limits = net.limits;
        config.path = net.path.clone();
        config.export = net.export.clone();
        config.import = net.import.clone();
        let mut session = Session::new(config, now);
        for (space, r) in self.declared.values() {
            declare(&mut session, *space, r);
        }
        let shared = Arc::new(PeerShared {
            export: net.export.clone(),
            label: addr,
            queue: net.peer_queue,
            outlets: Mutex::new(HashMap::new()),
            retiring: Mutex::new(Vec::new()),
            waker: self.waker.clone(),
            counters: PeerCounters::default(),
            info: Mutex::new(None),
            clock_offset: Mutex::new(None),
            rpc: RpcQueues::new(net.limits.max_pending_requests as usize),
        });
        conn.set_waker(Some(self.waker.clone()));
        self.shared.peers.lock().push(Arc::clone(&shared));
        self.peers.push(Peer {
            conn,
            st: PeerState {
                session,
                shared,
                peer_id: None,
                intents: IntentMap::default(),
                interests: HashMap::new(),
                services: self.services.clone(),
                clients: HashMap::new(),
                servers: HashMap::new(),
                calls: HashMap::new(),
                outgoing: VecDeque::new(),
                out: FrameBuffer::new(),
                blocked_since: None,
                stalled: Vec::new(),
                backlog: VecDeque::new(),
                closed: None,
            },
        });
        self.shared.wake.pending.store(true, Ordering::Release);
    }

    /// Tells every session about local registrations that changed.
    fn advertise(&mut self, now: Duration) {
        self.changes.clear();
        if self.service_watch.poll(&mut self.changes) > 0 {
            let changes = std::mem::take(&mut self.changes);
            self.apply(Space::Service, changes);
        }
        if self.watch.poll(&mut self.changes) == 0 {
            return;
        }
        let withdraws_intent = self.changes.iter().any(|c| {
            matches!(
                c,
                RegistrationChange::Withdrawn(r @ Registration::Intent { .. })
                    if r.origin() == Origin::Local
            )
        });
        if withdraws_intent {
            // What a departed publisher queued goes out before its alias
            // is withdrawn.
            let mut cx = Context::from_waker(&self.waker);
            for p in &mut self.peers {
                p.st.pump(&mut cx, now, true);
            }
        }
        let changes = std::mem::take(&mut self.changes);
        self.apply(Space::Topic, changes);
    }

    /// Declares and withdraws local registrations of `space` on every
    /// session; hands the (emptied) buffer back for reuse.
    fn apply(&mut self, space: Space, mut changes: Vec<RegistrationChange>) {
        for change in changes.drain(..) {
            match change {
                RegistrationChange::Declared(r) if r.origin() == Origin::Local => {
                    for p in &mut self.peers {
                        declare(&mut p.st.session, space, &r);
                    }
                    self.declared.insert((space as u8, key(&r)), (space, r));
                }
                RegistrationChange::Withdrawn(r) if r.origin() == Origin::Local => {
                    for p in &mut self.peers {
                        withdraw(&mut p.st.session, space, &r);
                    }
                    self.declared.remove(&(space as u8, key(&r)));
                }
                _ => {}
            }
        }
        self.changes = changes;
    }

    /// Removes peers whose session ended.
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.peers.len() {
            if self.peers[i].st.closed.is_some() {
                let mut p = self.peers.swap_remove(i);
                let reason = p.st.closed.take().unwrap_or_default();
                p.finish(&self.shared, reason);
            } else {
                i += 1;
            }
        }
    }

    fn park_time(&self, now: Duration) -> Duration {
        let mut park = MAX_PARK;
        for p in &self.peers {
            if !p.st.stalled.is_empty() {
                park = park.min(STALL_RETRY);
            }
            if let Some(t) = p.st.session.poll_timeout() {
                park = park.min(t.saturating_sub(now));
            }
        }
        park
    }

    fn shutdown(&mut self) {
        let now = now();
        for p in &mut self.peers {
            p.st.session.close(now, "node closed");
            p.st.drain_events(&self.topics, &self.shared);
            p.flush(now);
        }
        for mut p in std::mem::take(&mut self.peers) {
            p.finish(&self.shared, "node closed".to_owned());
        }
        self.listeners.clear();
        self.watch.set_waker(None);
        self.service_watch.set_waker(None);
    }
}

fn key(r: &Registration) -> u64 {
    match r {
        Registration::Intent { id, .. } => id.get(),
        Registration::Interest { id, .. } => id.get(),
        _ => 0,
    }
}

fn declare(session: &mut Session, space: Space, r: &Registration) {
    // A declaration beyond the peer's limits is not advertised (the session
    // says why; the local registration itself stands).
    let _ = match r {
        Registration::Intent {
            route, fingerprint, ..
        } => session
            .declare_intent_in(space, route, *fingerprint, Origin::Local)
            .map(|_| ()),
        Registration::Interest {
            selector,
            fingerprint,
            ..
        } => session
            .declare_interest_in(space, selector, *fingerprint, Origin::Local)
            .map(|_| ()),
        _ => Ok(()),
    };
}

fn withdraw(session: &mut Session, space: Space, r: &Registration) {
    match r {
        Registration::Intent {
            route, fingerprint, ..
        } => {
            session.withdraw_intent_in(space, route, *fingerprint);
        }
        Registration::Interest {
            selector,
            fingerprint,
            ..
        } => {
            session.withdraw_interest_in(space, selector, *fingerprint);
        }
        _ => {}
    }
}

impl Peer {
    /// Reads and handles what the peer sent, unless a stalled delivery
    /// holds it back.
    fn read(&mut self, now: Duration, topics: &Linker, net: &NetShared) {
        let st = &mut self.st;
        if st.closed.is_some() {
            return;
        }
        if !st.stalled.is_empty() {
            st.stalled.retain(|p| !p.retry());
            if !st.stalled.is_empty() {
                return;
            }
        }
        while st.stalled.is_empty() {
            let Some((h, payload)) = st.backlog.pop_front() else {
                break;
            };
            st.on_frame(now, &h, &payload, topics, net);
        }
        if !st.stalled.is_empty() {
            return;
        }
        let mut rounds_left = READ_ROUNDS;
        loop {
            if rounds_left == 0 {
                // Bytes may be left unread, and the transport promises no
                // wake for them: come back next turn.
                st.shared.waker.wake_by_ref();
                break;
            }
            rounds_left -= 1;
            let mut bytes = 0u64;
            let r = self.conn.try_recv_dyn(READ_BATCH, &mut |frame| {
                bytes += frame.payload().len() as u64 + dndm_codec::HEADER_LEN as u64;
                if st.stalled.is_empty() && st.closed.is_none() {
                    st.on_frame(now, frame.header(), frame.payload(), topics, net);
                } else if st.closed.is_none() {
                    st.backlog
                        .push_back((*frame.header(), frame.payload().to_vec()));
                }
            });
            PeerCounters::add(&st.shared.counters.bytes_in, bytes);
            match r {
                Ok(n) if n == READ_BATCH && st.stalled.is_empty() && st.closed.is_none() => {}
                Ok(_) => break,
                Err(RecvError::Closed { reason, .. }) => {
                    if st.closed.is_none() {
                        st.session
                            .close(now, &format!("connection closed: {reason}"));
                        st.drain_events(topics, net);
                    }
                    break;
                }
                Err(e) => {
                    st.session.close(now, &format!("connection failed: {e}"));
                    st.drain_events(topics, net);
                    break;
                }
            }
        }
    }

    /// Hands the transport what the session produced, as one batch.
    fn flush(&mut self, now: Duration) {
        let st = &mut self.st;
        // A batch the transport refused is retried whole before the session
        // adds to it, so a batch never outgrows one write's worth.
        if st.out.is_empty() {
            st.session.poll_transmit(now, &mut st.out);
        }
        if st.out.is_empty() {
            st.blocked_since = None;
            return;
        }
        match self.conn.try_send(&st.out) {
            Ok(()) => {
                PeerCounters::add(&st.shared.counters.bytes_out, st.out.len() as u64);
                st.out.clear();
                st.blocked_since = None;
            }
            Err(SendError::Full { .. }) => {
                let since = *st.blocked_since.get_or_insert(now);
                let limit = st.shared.queue.stall_timeout;
                if now.saturating_sub(since) > limit && st.closed.is_none() {
                    st.closed = Some(format!(
                        "peer {} read nothing for {limit:?}: disconnected",
                        st.shared.label
                    ));
                }
            }
            Err(e) => {
                st.out.clear();
                if st.closed.is_none() {
                    st.closed = Some(format!("send to {} failed: {e}", st.shared.label));
                }
            }
        }
    }

    /// Ends the peer: goodbye sent (if possible), proxies unregistered,
    /// outlets dropped, connection closed, event published.
    fn finish(&mut self, net: &NetShared, reason: String) {
        let st = &mut self.st;
        st.intents.clear();
        st.interests.clear();
        st.clients.clear();
        st.servers.clear();
        st.stalled.clear();
        // Every call still waiting for this peer ends now, with the reason.
        let gone = || Answer::Failed(CallFailure::PeerGone(reason.clone()));
        for c in st.shared.rpc.close() {
            c.complete.complete(gone());
        }
        for (_, (c, _)) in st.calls.drain() {
            c.complete(gone());
        }
        for c in st.outgoing.drain(..) {
            c.complete.complete(gone());
        }
        let outlets = std::mem::take(&mut *st.shared.outlets.lock());
        drop(outlets);
        st.shared.retiring.lock().clear();
        self.conn.set_waker(None);
        self.conn.close();
        net.peers.lock().retain(|p| !Arc::ptr_eq(p, &st.shared));
        let info = st.shared.info.lock().clone();
        tracing::info!(
            peer = info.as_ref().map_or("", |i| i.name.as_str()),
            address = %st.shared.label,
            %reason,
            "dndm: peer session ended"
        );
        if let Some(info) = info {
            net.push_event(PeerEvent {
                kind: PeerEventKind::Disconnected { reason },
                peer: info,
            });
        }
    }
}

impl PeerState {
    fn on_frame(
        &mut self,
        now: Duration,
        header: &FrameHeader,
        payload: &[u8],
        topics: &Linker,
        net: &NetShared,
    ) {
        match self.session.handle_frame(now, header, payload) {
            Ok(Some(Inbound::Data { intent, .. })) => {
                PeerCounters::add(&self.shared.counters.msgs_in, 1);
                if let Some((proxy, _)) = self.intents.get(&intent) {
                    let (stalled, dropped, invalid) = proxy.deliver(header, payload);
                    if stalled > 0 {
                        self.stalled.push(Arc::clone(proxy));
                    }
                    let c = &self.shared.counters;
                    PeerCounters::add(&c.dropped_in, dropped);
                    PeerCounters::add(&c.invalid_in, invalid);
                    if invalid > 0 {
                        tracing::warn!(
                            peer = %self.shared.label,
                            route = %self.session.remote_intent(intent).map_or_else(String::new, |r| r.route.to_string()),
                            "dndm: a sample from a peer is not a valid archive of its type; dropped"
                        );
                    }
                }
            }
            Ok(Some(Inbound::Request { intent, header })) => {
                let reply = RemoteReply::new(Arc::clone(&self.shared), header.correlation);
                match self.clients.get(&intent) {
                    Some((client, _)) => client.submit(payload, reply),
                    None => {
                        // The session accepted the frame, so the peer
                        // declared the client: only its proxy failed to
                        // register. The reply says no server.
                        drop(reply);
                    }
                }
            }
            Ok(Some(Inbound::Reply { header, .. })) => {
                if let Some((c, _)) = self.calls.remove(&header.correlation) {
                    c.complete(Answer::Reply(payload));
                }
            }
            Ok(_) => {}
            Err(_) => {}
        }
        self.drain_events(topics, net);
    }

    /// Applies the session's events: peers' declarations become proxies in
    /// the linker, withdrawals remove them.
    fn drain_events(&mut self, topics: &Linker, net: &NetShared) {
        while let Some(ev) = self.session.poll_event() {
            match ev {
                Event::Connected(info) => {
                    self.peer_id = Some(info.node_id);
                    let details = super::PeerDetails {
                        id: super::PeerId(info.node_id),
                        name: info.name.clone(),
                        address: self.shared.label.clone(),
                    };
                    tracing::info!(
                        peer = %info.name,
                        id = %info.node_id,
                        address = %self.shared.label,
                        "dndm: peer connected"
                    );
                    *self.shared.info.lock() = Some(details.clone());
                    net.push_event(PeerEvent {
                        kind: PeerEventKind::Connected,
                        peer: details,
                    });
                }
                Event::RemoteIntent(ri) if ri.space == Space::Service => {
                    let Some(id) = self.peer_id else { continue };
                    let port = Arc::new(PeerClient::default());
                    if let Ok(intent) = self.services.add_intent_from(
                        ri.route.clone(),
                        ri.fingerprint,
                        Arc::clone(&port) as Arc<dyn dndm_router::IntentPort>,
                        Origin::Peer(id),
                    ) {
                        self.clients.insert(ri.id, (port, intent));
                    }
                }
                Event::RemoteInterest(ri) if ri.space == Space::Service => {
                    let Some(id) = self.peer_id else { continue };
                    let port = Arc::new(PeerServer {
                        server: RemoteServer {
                            peer: Arc::clone(&self.shared),
                        },
                    });
                    if let Ok(interest) = self.services.add_interest_from(
                        ri.selector.clone(),
                        ri.fingerprint,
                        port,
                        Origin::Peer(id),
                    ) {
                        self.servers.insert(ri.id, interest);
                    }
                }
                Event::RemoteIntent(ri) => {
                    let Some(id) = self.peer_id else { continue };
                    let port = Arc::new(PeerIntent::new(ri.id));
                    let origin = Origin::Peer(id);
                    let registered = topics.add_intent_from(
                        ri.route.clone(),
                        ri.fingerprint,
                        Arc::clone(&port) as Arc<dyn dndm_router::IntentPort>,
                        origin,
                    );
                    if let Ok(intent) = registered {
                        self.intents.insert(ri.id, (port, intent));
                    }
                }
                Event::RemoteInterest(ri) => {
                    let Some(id) = self.peer_id else { continue };
                    let port = Arc::new(PeerInterest {
                        peer: Arc::clone(&self.shared),
                        remote: ri.id,
                        fingerprint: ri.fingerprint,
                    });
                    if let Ok(interest) = topics.add_interest_from(
                        ri.selector.clone(),
                        ri.fingerprint,
                        port,
                        Origin::Peer(id),
                    ) {
                        self.interests.insert(ri.id, interest);
                    }
                }
                Event::Withdrawn(Withdrawn::Intent(ri)) if ri.space == Space::Service => {
                    self.clients.remove(&ri.id);
                }
                Event::Withdrawn(Withdrawn::Interest(ri)) if ri.space == Space::Service => {
                    self.servers.remove(&ri.id);
                }
                Event::RequestTimedOut { correlation } => {
                    // Its caller has given up by now (the caller's own
                    // deadline); a late reply is dropped by the session.
                    if let Some((c, _)) = self.calls.remove(&correlation) {
                        c.cancel();
                    }
                }
                Event::Withdrawn(Withdrawn::Intent(ri)) => {
                    if let Some((proxy, intent)) = self.intents.remove(&ri.id) {
                        self.stalled.retain(|p| !Arc::ptr_eq(p, &proxy));
                        drop(intent);
                    }
                }
                Event::Withdrawn(Withdrawn::Interest(ri)) => {
                    self.interests.remove(&ri.id);
                }
                Event::Closed(reason) => {
                    let text = match reason {
                        CloseReason::Local(r) => r,
                        CloseReason::Peer { code, reason } => {
                            format!("peer said goodbye (code {code}): {reason}")
                        }
                        CloseReason::Error(e) => e.to_string(),
                        other => format!("{other:?}"),
                    };
                    self.closed.get_or_insert(text);
                }
                _ => {}
            }
        }
    }

    /// Encodes what local publishers queued for this peer. `all`: drain the
    /// retiring outlets whatever the batch size (their alias is about to be
    /// withdrawn).
    fn pump(&mut self, cx: &mut Context<'_>, now: Duration, all: bool) {
        if self.closed.is_some() || !self.session.is_connected() {
            return;
        }
        if self.blocked_since.is_some() && !all {
            return;
        }
        let c = &self.shared.counters;
        let mut outlets = self.shared.outlets.lock();
        for e in outlets.values_mut() {
            let Some(alias) = self.session.local_alias(&e.route, e.fingerprint) else {
                continue;
            };
            let max = if all { usize::MAX } else { WRITE_BATCH };
            loop {
                let p = e
                    .outlet
                    .pump(cx, &mut self.session, now, alias, PUMP_BUDGET, max);
                PeerCounters::add(&c.msgs_out, p.sent);
                PeerCounters::add(&c.dropped_out, p.failed);
                if p.state != Pumped::More {
                    break;
                }
                if self.session.pending_bytes() >= max {
                    // A batch is full: the rest waits for the next turn.
                    self.shared.waker.wake_by_ref();
                    break;
                }
            }
        }
        drop(outlets);
        let mut retiring = self.shared.retiring.lock();
        let session = &mut self.session;
        retiring.retain_mut(|e| {
            let alias = match session.local_alias(&e.route, e.fingerprint) {
                Some(a) => a,
                None => match session.declare_intent(&e.route, e.fingerprint, Origin::Local) {
                    Ok(Some(a)) => {
                        e.declared_here = true;
                        a
                    }
                    // Not exported to this peer (or beyond its limits).
                    _ => return false,
                },
            };
            loop {
                let p = e
                    .outlet
                    .pump(cx, session, now, alias, PUMP_BUDGET, usize::MAX);
                PeerCounters::add(&c.msgs_out, p.sent);
                PeerCounters::add(&c.dropped_out, p.failed);
                match p.state {
                    Pumped::More => continue,
                    Pumped::Idle => return true,
                    Pumped::Finished => {
                        if e.declared_here {
                            session.withdraw_intent(&e.route, e.fingerprint);
                        }
                        return false;
                    }
                }
            }
        });
    }

    /// Sends the replies local servers produced for the peer, the calls
    /// local clients made to it, and forgets calls whose caller gave up.
    fn rpc(&mut self, now: Duration) {
        if self.closed.is_some() || !self.session.is_connected() {
            return;
        }
        for (correlation, payload) in self.shared.rpc.take_replies() {
            // Refused only if the request is no longer pending (the session
            // closed meanwhile) or the reply is too large: then the peer's
            // caller is told no server could answer, so it does not wait.
            if self
                .session
                .send_reply(now, correlation, None, &payload[..])
                .is_err()
            {
                let _ = self.session.send_reply(
                    now,
                    correlation,
                    None,
                    &[ReplyCode::Invalid as u8][..],
                );
            }
        }
        while let Some(call) = self.outgoing.pop_front() {
            let alias = self
                .session
                .local_alias_in(Space::Service, &call.route, call.fingerprint);
            let Some(alias) = alias else {
                call.complete.complete(Answer::Failed(CallFailure::Rejected(
                    "the client's route is not offered to this peer".to_owned(),
                )));
                continue;
            };
            match self.session.send_request(now, alias, &call.payload[..]) {
                Ok(correlation) => {
                    self.calls
                        .insert(correlation, (call.complete, call.deadline));
                }
                Err(SessionSendError::TooManyPending { .. }) => {
                    call.complete.complete(Answer::Failed(CallFailure::Busy));
                }
                Err(e) => {
                    call.complete
                        .complete(Answer::Failed(CallFailure::Rejected(e.to_string())));
                }
            }
        }
        if !self.calls.is_empty() {
            let session = &mut self.session;
            self.calls.retain(|correlation, (_, deadline)| {
                let live = deadline.is_none_or(|d| d > now);
                if !live {
                    session.cancel_request(*correlation);
                }
                live
            });
        }
    }

    fn run_timers(&mut self, now: Duration, net: &NetShared) {
        if let Some(t) = self.session.poll_timeout()
            && t <= now
        {
            self.session.handle_timeout(now);
        }
        *self.shared.clock_offset.lock() = self.session.stats().clock_offset_ns;
        let rtt = self.session.stats().rtt;
        if let Some(rtt) = rtt {
            self.shared.counters.rtt_ns.store(
                u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
        let _ = net;
    }
}
