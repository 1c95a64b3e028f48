//! The peer session: the sans-IO state machine of one connection to one
//! peer.
//!
//! A [`Session`] knows no socket and no clock. The driver feeds it decoded
//! frames ([`Session::handle_frame`]) and the time ([`Session::handle_timeout`]
//! when [`Session::poll_timeout`] says so), tells it about local declarations
//! ([`Session::declare_intent`], [`Session::declare_interest`], withdrawals),
//! and drains what it produced: bytes to write ([`Session::poll_transmit`])
//! and events ([`Session::poll_event`]). Data, request and reply frames are
//! answered directly by `handle_frame` ([`Inbound`]), so their payloads stay
//! in the driver's receive buffer and are never copied.
//!
//! The life of a session:
//!
//! 1. **Handshake.** Both sides send a hello as soon as the session exists
//!    (protocol version, node id, name, path, capabilities, limits, archive
//!    format). A peer's hello completes the handshake; any other frame before
//!    it ends the session. Version or archive-format mismatches end it with a
//!    [`SessionError`] naming the peer.
//! 2. **Declarations.** On connect every current local declaration that the
//!    export filter lets through is sent, batched into few update frames;
//!    later ones follow incrementally. Declarations from other peers are
//!    never sent (no echo, no relay). Each side computes links from the
//!    other's declarations with its own linker: the wire carries
//!    declarations, not link notifications.
//! 3. **Data.** Frames carry the sender's numeric alias of the intent and the
//!    alias generation; frames for unknown, withdrawn or stale aliases are
//!    dropped and counted, a flood of them ends the session.
//! 4. **Close.** [`Session::close`] sends a goodbye; a goodbye, an error or a
//!    timeout from the peer closes too. Either way every remote declaration
//!    is reported withdrawn exactly once, then [`Event::Closed`].
//!
//! `PROTOCOL.md` in this directory is the byte-level reference.
//!
//! # Example
//!
//! Two sessions wired back to back in memory, with virtual time:
//!
//! ```
//! use std::time::Duration;
//! use dndm_codec::{FrameBuffer, StreamDecoder};
//! use dndm_router::Route;
//! use dndm_router::session::{Event, Inbound, NodeId, Origin, Session, SessionConfig};
//!
//! let now = Duration::from_secs(1);
//! let mut a = Session::new(SessionConfig::new(NodeId::from_bytes([1; 16]), "alpha"), now);
//! let mut b = Session::new(SessionConfig::new(NodeId::from_bytes([2; 16]), "beta"), now);
//! let route: Route = "robot.Imu@robot.arm.imu".parse()?;
//! let alias = a.declare_intent(&route, 0xfeed, Origin::Local)?.expect("exported");
//!
//! // The driver's loop, reduced to two moves of bytes.
//! let mut decoder = StreamDecoder::default();
//! let mut wire = FrameBuffer::new();
//! let mut pump = |from: &mut Session, to: &mut Session, decoder: &mut StreamDecoder| {
//!     wire.clear();
//!     from.poll_transmit(now, &mut wire);
//!     decoder.feed(wire.as_bytes());
//!     let mut got = Vec::new();
//!     while let Some(frame) = decoder.next_frame().expect("well formed") {
//!         if let Some(inbound) = to.handle_frame(now, frame.header(), frame.payload())? {
//!             got.push((inbound, frame.payload().to_vec()));
//!         }
//!     }
//!     Ok::<_, dndm_router::session::SessionError>(got)
//! };
//! let mut back = StreamDecoder::default();
//! pump(&mut a, &mut b, &mut decoder)?; // a's hello
//! pump(&mut b, &mut a, &mut back)?; // b's hello: a is connected
//! pump(&mut a, &mut b, &mut decoder)?; // a's declarations, batched
//! assert!(matches!(b.poll_event(), Some(Event::Connected(_))));
//! let Some(Event::RemoteIntent(intent)) = b.poll_event() else { panic!() };
//! assert_eq!(intent.route, route);
//!
//! a.send_data(now, alias, &b"sample"[..])?;
//! let got = pump(&mut a, &mut b, &mut decoder)?;
//! assert!(matches!(got[0].0, Inbound::Data { intent: id, .. } if id == intent.id));
//! assert_eq!(got[0].1, b"sample");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod alias;
mod config;
mod error;
mod event;
mod input;
mod payload;
mod wire;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::time::Duration;

use dndm_codec::{FrameBuffer, FrameHeader, FrameKind, HEADER_LEN, frame_len};

pub use alias::{LocalAlias, RemoteIntentId, RemoteInterestId};
pub use config::{ArchiveFormat, Limits, NodeId, Origin, PathFilter, SessionConfig, Space};
pub use error::{DeclareError, LimitKind, SendError, SessionError, SessionErrorKind};
pub use event::{
    CloseReason, Event, Inbound, PeerInfo, RemoteIntent, RemoteInterest, SessionStats, Withdrawn,
};
pub use payload::{Archive, Payload};
pub use wire::Malformed;

use crate::pattern::Selector;
use crate::route::{Path, Route};
use alias::{AliasTable, Slots, generation_flags};
use config::check_interest_limits;
use wire::Writer;

/// The version of the session protocol this crate speaks.
pub const SESSION_PROTOCOL_VERSION: u16 = 1;

/// The smallest maximum frame length a peer may announce. Every control
/// message with names within [`MAX_NAME_LEN`] fits in a frame this long.
pub const MIN_FRAME_LEN: u32 = 8192;

/// The largest name limit a session accepts in its configuration.
pub const MAX_NAME_LEN: u16 = 4096;

/// How many pings may await their pong at once; older ones are forgotten.
const MAX_OUTSTANDING_PINGS: usize = 8;

/// The shortest keep-alive interval, whatever the configuration or the
/// peer's idle timeout say.
const MIN_KEEPALIVE: Duration = Duration::from_millis(10);

/// Goodbye codes.
const BYE_NORMAL: u16 = 0;
const BYE_PROTOCOL: u16 = 1;
const BYE_LIMIT: u16 = 2;
const BYE_VERSION: u16 = 3;
const BYE_ARCHIVE: u16 = 4;
const BYE_TIMEOUT: u16 = 5;

/// The longest goodbye reason sent, in bytes.
const MAX_REASON_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshake,
    Established,
    Closed,
}

struct LocalIntent {
    space: Space,
    route: Route,
    fingerprint: u64,
    refs: u32,
    seq: u64,
}

struct LocalInterest {
    space: Space,
    selector: Selector,
    fingerprint: u64,
    refs: u32,
}

struct RemoteEntry<T> {
    generation: u32,
    accepted: bool,
    value: T,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Update {
    DeclareIntent(LocalAlias),
    DeclareInterest(LocalAlias),
    WithdrawIntent(LocalAlias),
    WithdrawInterest(LocalAlias),
}

/// The peer session state machine. See the module docs.
pub struct Session {
    config: SessionConfig,
    state: State,
    peer: Option<PeerInfo>,
    peer_label: String,
    max_frame_len: usize,
    keepalive: Duration,
    tx: FrameBuffer,
    control_seq: u64,
    scratch: Vec<u8>,
    updates: Vec<Update>,
    intents: Slots<LocalIntent>,
    intent_keys: HashMap<(Space, Route, u64), LocalAlias>,
    interests: Slots<LocalInterest>,
    interest_keys: HashMap<(Space, Selector, u64), LocalAlias>,
    remote_intents: AliasTable<RemoteEntry<RemoteIntent>>,
    remote_interests: AliasTable<RemoteEntry<RemoteInterest>>,
    out_requests: HashMap<u64, Option<Duration>>,
    next_correlation: u64,
    in_requests: HashSet<u64>,
    events: VecDeque<Event>,
    created: Duration,
    last_rx: Duration,
    last_tx: Duration,
    pings: VecDeque<u64>,
    stats: SessionStats,
    junk_window_start: Duration,
    junk_count: u32,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer_label)
            .field("state", &self.state)
            .field("local_intents", &self.intents.len())
            .field("local_interests", &self.interests.len())
            .field("remote_intents", &self.remote_intents.len())
            .field("remote_interests", &self.remote_interests.len())
            .finish_non_exhaustive()
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

impl Session {
    /// A session at time `now`; its hello is queued at once.
    ///
    /// Out-of-range limits are clamped: the name limit to at most
    /// [`MAX_NAME_LEN`], the frame limit to at least [`MIN_FRAME_LEN`]; a
    /// name longer than the name limit is cut.
    pub fn new(mut config: SessionConfig, now: Duration) -> Self {
        config.limits.max_name_len = config.limits.max_name_len.min(MAX_NAME_LEN);
        config.limits.max_frame_len = config.limits.max_frame_len.max(MIN_FRAME_LEN);
        let cut = wire::truncate_str(&config.name, usize::from(config.limits.max_name_len));
        config.name = cut.to_owned();
        let mut s = Self {
            peer_label: config.peer_label.clone(),
            max_frame_len: config.limits.max_frame_len as usize,
            keepalive: config.keepalive_interval.max(MIN_KEEPALIVE),
            config,
            state: State::Handshake,
            peer: None,
            tx: FrameBuffer::new(),
            control_seq: 0,
            scratch: Vec::new(),
            updates: Vec::new(),
            intents: Slots::default(),
            intent_keys: HashMap::new(),
            interests: Slots::default(),
            interest_keys: HashMap::new(),
            remote_intents: AliasTable::default(),
            remote_interests: AliasTable::default(),
            out_requests: HashMap::new(),
            next_correlation: 1,
            in_requests: HashSet::new(),
            events: VecDeque::new(),
            created: now,
            last_rx: now,
            last_tx: now,
            pings: VecDeque::new(),
            stats: SessionStats::default(),
            junk_window_start: now,
            junk_count: 0,
        };
        s.send_hello(now);
        s
    }

    // ----- inspection -----

    /// The peer, once the handshake completed.
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.peer.as_ref()
    }

    /// True between the handshake and the close.
    pub fn is_connected(&self) -> bool {
        self.state == State::Established
    }

    /// True once closed (by either side or an error).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Counters and clock estimates.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// A live remote intent that passed the import filter.
    pub fn remote_intent(&self, id: RemoteIntentId) -> Option<&RemoteIntent> {
        self.remote_intents
            .get(&id.alias)
            .filter(|e| e.accepted && e.generation == id.generation)
            .map(|e| &e.value)
    }

    /// The number of remote declarations held (filtered ones included).
    pub fn remote_declaration_count(&self) -> usize {
        self.remote_intents.len() + self.remote_interests.len()
    }

    /// The largest frame either side may send: ours until the handshake,
    /// then the smaller of both limits. Configure the connection's
    /// `StreamDecoder` with it.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Bytes of frames queued for [`poll_transmit`](Self::poll_transmit)
    /// (declarations not yet batched excluded): lets a driver bound a batch.
    pub fn pending_bytes(&self) -> usize {
        self.tx.len()
    }

    /// The live alias of a local publisher's intent.
    pub fn local_alias(&self, route: &Route, fingerprint: u64) -> Option<LocalAlias> {
        self.local_alias_in(Space::Topic, route, fingerprint)
    }

    /// The live alias of a local intent in `space` (a client's, to send
    /// requests on).
    pub fn local_alias_in(
        &self,
        space: Space,
        route: &Route,
        fingerprint: u64,
    ) -> Option<LocalAlias> {
        self.intent_keys
            .get(&(space, route.clone(), fingerprint))
            .copied()
    }

    // ----- outputs -----

    /// Moves every queued frame into `out` (appending; when `out` is empty
    /// the buffers are swapped, so nothing is copied). Returns true if
    /// anything was moved. Write `out.as_bytes()` to the connection. `now`
    /// stamps update frames that are encoded only now (batched).
    pub fn poll_transmit(&mut self, now: Duration, out: &mut FrameBuffer) -> bool {
        self.flush_updates(now);
        if self.tx.is_empty() {
            return false;
        }
        if out.is_empty() {
            std::mem::swap(out, &mut self.tx);
        } else {
            for frame in dndm_codec::frames(self.tx.as_bytes()).flatten() {
                // Frames in `tx` were encoded by us; re-encoding cannot fail.
                let _ = out.push_raw(frame.header(), frame.payload());
            }
            self.tx.clear();
        }
        true
    }

    /// The next event, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next;
    /// `None` once closed.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.state {
            State::Closed => None,
            State::Handshake => Some(self.created.saturating_add(self.config.handshake_timeout)),
            State::Established => {
                let mut t = self
                    .last_rx
                    .saturating_add(self.config.idle_timeout)
                    .min(self.last_tx.saturating_add(self.keepalive));
                for d in self.out_requests.values().flatten() {
                    t = t.min(*d);
                }
                Some(t)
            }
        }
    }

    // ----- time -----

    /// Runs timers: handshake and idle timeouts (ending the session),
    /// keep-alive pings, request timeouts. Calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Duration) {
        match self.state {
            State::Closed => {}
            State::Handshake => {
                if now >= self.created.saturating_add(self.config.handshake_timeout) {
                    let t = self.config.handshake_timeout;
                    self.fail(now, SessionErrorKind::HandshakeTimeout(t));
                }
            }
            State::Established => {
                let idle = now.saturating_sub(self.last_rx);
                if idle >= self.config.idle_timeout {
                    self.fail(now, SessionErrorKind::DeadPeer(idle));
                    return;
                }
                if now >= self.last_tx.saturating_add(self.keepalive) {
                    self.ping(now);
                }
                let mut expired: Vec<u64> = self
                    .out_requests
                    .iter()
                    .filter(|(_, d)| d.is_some_and(|d| now >= d))
                    .map(|(c, _)| *c)
                    .collect();
                expired.sort_unstable();
                for correlation in expired {
                    self.out_requests.remove(&correlation);
                    self.events
                        .push_back(Event::RequestTimedOut { correlation });
                }
            }
        }
    }

    /// Sends a ping now (also sent by the keep-alive timer); its pong
    /// updates the RTT and clock-offset estimates.
    pub fn ping(&mut self, now: Duration) {
        if self.state != State::Established {
            return;
        }
        self.flush_updates(now);
        let t1 = ns(now);
        if self.pings.len() == MAX_OUTSTANDING_PINGS {
            self.pings.pop_front();
        }
        self.pings.push_back(t1);
        self.control(now, |w| {
            w.u8(wire::MSG_PING).u64(t1);
        });
    }

    // ----- close -----

    /// Closes the session with a goodbye carrying `reason`. Every remote
    /// declaration is reported withdrawn, then [`Event::Closed`]. The driver
    /// writes what [`poll_transmit`](Self::poll_transmit) still returns (the
    /// goodbye last) and then closes the connection.
    pub fn close(&mut self, now: Duration, reason: &str) {
        if self.state == State::Closed {
            return;
        }
        self.goodbye(now, BYE_NORMAL, reason);
        self.finish(CloseReason::Local(reason.to_owned()));
    }

    fn goodbye(&mut self, now: Duration, code: u16, reason: &str) {
        let reason = wire::truncate_str(reason, MAX_REASON_LEN).to_owned();
        self.control(now, |w| {
            w.u8(wire::MSG_GOODBYE).u16(code).str(&reason);
        });
    }

    fn finish(&mut self, reason: CloseReason) {
        self.state = State::Closed;
        self.updates.clear();
        let intents = self.remote_intents.drain();
        for (_, e) in intents {
            if e.accepted {
                self.events
                    .push_back(Event::Withdrawn(Withdrawn::Intent(e.value)));
            }
        }
        let interests = self.remote_interests.drain();
        for (_, e) in interests {
            if e.accepted {
                self.events
                    .push_back(Event::Withdrawn(Withdrawn::Interest(e.value)));
            }
        }
        self.out_requests.clear();
        self.in_requests.clear();
        self.events.push_back(Event::Closed(reason));
    }

    fn error(&self, kind: SessionErrorKind) -> SessionError {
        SessionError {
            peer: self.peer_label.clone(),
            kind,
        }
    }

    /// Ends the session with an error: a goodbye tells the peer why.
    fn fail(&mut self, now: Duration, kind: SessionErrorKind) -> SessionError {
        let err = self.error(kind);
        let code = match &err.kind {
            SessionErrorKind::VersionMismatch { .. } => BYE_VERSION,
            SessionErrorKind::ArchiveFormat { .. } => BYE_ARCHIVE,
            SessionErrorKind::Limit { .. }
            | SessionErrorKind::PeerLimit { .. }
            | SessionErrorKind::UnknownAliasFlood { .. } => BYE_LIMIT,
            SessionErrorKind::HandshakeTimeout(_) | SessionErrorKind::DeadPeer(_) => BYE_TIMEOUT,
            _ => BYE_PROTOCOL,
        };
        if self.state != State::Closed {
            self.goodbye(now, code, &err.kind.to_string());
            self.finish(CloseReason::Error(err.clone()));
        }
        err
    }

    // ----- control frames -----

    fn control(&mut self, now: Duration, write: impl FnOnce(&mut Writer<'_>)) {
        self.scratch.clear();
        write(&mut Writer(&mut self.scratch));
        self.control_seq += 1;
        let header = FrameHeader::control()
            .with_seq(self.control_seq)
            .with_timestamp_ns(ns(now));
        // Control payloads are bounded by the name limits, far below the
        // codec's 4 GiB payload bound, and the flags are zero.
        if self.tx.push_raw(&header, &self.scratch).is_ok() {
            self.stats.frames_out += 1;
            self.last_tx = now;
        }
    }

    fn send_hello(&mut self, now: Duration) {
        let c = &self.config;
        let l = c.limits;
        let f = c.archive_format;
        let (name, path) = (
            c.name.clone(),
            c.path
                .as_ref()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
        );
        let (id, caps, idle) = (c.node_id.to_bytes(), c.capabilities, ms(c.idle_timeout));
        self.control(now, |w| {
            w.u8(wire::MSG_HELLO)
                .u16(SESSION_PROTOCOL_VERSION)
                .u8(if f.little_endian { 1 } else { 2 })
                .u8(f.pointer_width)
                .u8(u8::from(f.aligned))
                .u8(0)
                .bytes(&id)
                .u64(caps)
                .u32(l.max_frame_len)
                .u32(l.max_declarations)
                .u8(l.max_pattern_segments)
                .u8(l.max_pattern_wildcards)
                .u16(l.max_name_len)
                .u32(l.max_pending_requests)
                .u32(idle)
                .str(&name)
                .str(&path);
        });
    }

    /// Encodes queued declarations and withdrawals into as few update frames
    /// as the frame limit allows.
    fn flush_updates(&mut self, now: Duration) {
        if self.updates.is_empty() || self.state != State::Established {
            return;
        }
        let updates = std::mem::take(&mut self.updates);
        let budget = self.max_frame_len - HEADER_LEN - 16;
        let mut payload = Vec::new();
        let mut count: u16 = 0;
        for u in &updates {
            let mut entry = Vec::new();
            let mut w = Writer(&mut entry);
            match *u {
                Update::DeclareIntent(a) => {
                    let Some(i) = self.intents.get(a) else {
                        continue;
                    };
                    let op = match i.space {
                        Space::Topic => wire::OP_DECLARE_INTENT,
                        Space::Service => wire::OP_DECLARE_CLIENT,
                    };
                    w.u8(op)
                        .u32(a.alias)
                        .u32(a.generation)
                        .u64(i.fingerprint)
                        .str(&i.route.to_string());
                }
                Update::DeclareInterest(a) => {
                    let Some(i) = self.interests.get(a) else {
                        continue;
                    };
                    let op = match i.space {
                        Space::Topic => wire::OP_DECLARE_INTEREST,
                        Space::Service => wire::OP_DECLARE_SERVER,
                    };
                    w.u8(op)
                        .u32(a.alias)
                        .u32(a.generation)
                        .u64(i.fingerprint)
                        .str(&i.selector.to_string());
                }
                Update::WithdrawIntent(a) => {
                    w.u8(wire::OP_WITHDRAW_INTENT)
                        .u32(a.alias)
                        .u32(a.generation);
                }
                Update::WithdrawInterest(a) => {
                    w.u8(wire::OP_WITHDRAW_INTEREST)
                        .u32(a.alias)
                        .u32(a.generation);
                }
            }
            if count == u16::MAX || wire::UPDATE_HEADER_LEN + payload.len() + entry.len() > budget {
                self.push_update(now, count, &payload);
                payload.clear();
                count = 0;
            }
            payload.extend_from_slice(&entry);
            count += 1;
        }
        if count > 0 {
            self.push_update(now, count, &payload);
        }
    }

    fn push_update(&mut self, now: Duration, count: u16, entries: &[u8]) {
        self.control(now, |w| {
            w.u8(wire::MSG_UPDATE).u16(count).bytes(entries);
        });
    }

    // ----- declarations -----

    fn check_peer_limits(
        &self,
        text: &str,
        selector: Option<&Selector>,
        extra: usize,
    ) -> Result<(), (LimitKind, usize, usize)> {
        let Some(peer) = &self.peer else {
            return Ok(());
        };
        let l = &peer.limits;
        if text.len() > usize::from(l.max_name_len) {
            return Err((
                LimitKind::NameLength,
                text.len(),
                usize::from(l.max_name_len),
            ));
        }
        let count = self.intents.len() + self.interests.len() + extra;
        if count > l.max_declarations as usize {
            return Err((LimitKind::Declarations, count, l.max_declarations as usize));
        }
        if let Some(s) = selector {
            check_interest_limits(s, l)?;
        }
        Ok(())
    }

    /// Declares a local intent on `route` with the schema `fingerprint`.
    ///
    /// Returns its alias when it is advertised to the peer: `origin` is
    /// [`Origin::Local`] and the export filter lets the route through.
    /// Otherwise `Ok(None)` and nothing is recorded. Declaring the same
    /// route and fingerprint again returns the same alias (a reference
    /// count; withdraw as often). Before the handshake the declaration is
    /// recorded and sent on connect.
    pub fn declare_intent(
        &mut self,
        route: &Route,
        fingerprint: u64,
        origin: Origin,
    ) -> Result<Option<LocalAlias>, DeclareError> {
        self.declare_intent_in(Space::Topic, route, fingerprint, origin)
    }

    /// [`declare_intent`](Self::declare_intent) in `space`: a client's
    /// intent is declared in [`Space::Service`].
    pub fn declare_intent_in(
        &mut self,
        space: Space,
        route: &Route,
        fingerprint: u64,
        origin: Origin,
    ) -> Result<Option<LocalAlias>, DeclareError> {
        if self.state == State::Closed {
            return Err(DeclareError::Closed(route.to_string()));
        }
        if origin != Origin::Local || !self.config.export.allows_route(route) {
            return Ok(None);
        }
        let key = (space, route.clone(), fingerprint);
        if let Some(&a) = self.intent_keys.get(&key) {
            if let Some(i) = self.intents.get_mut(a) {
                i.refs = i.refs.saturating_add(1);
            }
            return Ok(Some(a));
        }
        let text = route.to_string();
        self.check_peer_limits(&text, None, 1)
            .map_err(|(what, value, limit)| DeclareError::PeerLimit {
                text: text.clone(),
                what,
                value: value as u64,
                limit: limit as u64,
            })?;
        let a = self
            .intents
            .insert(LocalIntent {
                space,
                route: route.clone(),
                fingerprint,
                refs: 1,
                seq: 0,
            })
            .ok_or(DeclareError::NoAlias(text))?;
        self.intent_keys.insert(key, a);
        if self.state == State::Established {
            self.updates.push(Update::DeclareIntent(a));
        }
        Ok(Some(a))
    }

    /// Drops one reference to a local intent; the peer is told when the last
    /// one goes. Returns false if it was not declared here.
    pub fn withdraw_intent(&mut self, route: &Route, fingerprint: u64) -> bool {
        self.withdraw_intent_in(Space::Topic, route, fingerprint)
    }

    /// [`withdraw_intent`](Self::withdraw_intent) in `space`.
    pub fn withdraw_intent_in(&mut self, space: Space, route: &Route, fingerprint: u64) -> bool {
        let key = (space, route.clone(), fingerprint);
        let Some(&a) = self.intent_keys.get(&key) else {
            return false;
        };
        if let Some(i) = self.intents.get_mut(a) {
            i.refs -= 1;
            if i.refs > 0 {
                return true;
            }
        }
        self.intents.remove(a);
        self.intent_keys.remove(&key);
        self.queue_withdraw(Update::DeclareIntent(a), Update::WithdrawIntent(a));
        true
    }

    /// Declares a local interest; like [`declare_intent`](Self::declare_intent),
    /// returns true when it is advertised to the peer.
    pub fn declare_interest(
        &mut self,
        selector: &Selector,
        fingerprint: u64,
        origin: Origin,
    ) -> Result<bool, DeclareError> {
        self.declare_interest_in(Space::Topic, selector, fingerprint, origin)
    }

    /// [`declare_interest`](Self::declare_interest) in `space`: a server's
    /// interest is declared in [`Space::Service`].
    pub fn declare_interest_in(
        &mut self,
        space: Space,
        selector: &Selector,
        fingerprint: u64,
        origin: Origin,
    ) -> Result<bool, DeclareError> {
        if self.state == State::Closed {
            return Err(DeclareError::Closed(selector.to_string()));
        }
        if origin != Origin::Local || !self.config.export.allows_selector(selector) {
            return Ok(false);
        }
        let key = (space, selector.clone(), fingerprint);
        if let Some(&a) = self.interest_keys.get(&key) {
            if let Some(i) = self.interests.get_mut(a) {
                i.refs = i.refs.saturating_add(1);
            }
            return Ok(true);
        }
        let text = selector.to_string();
        self.check_peer_limits(&text, Some(selector), 1)
            .map_err(|(what, value, limit)| DeclareError::PeerLimit {
                text: text.clone(),
                what,
                value: value as u64,
                limit: limit as u64,
            })?;
        let a = self
            .interests
            .insert(LocalInterest {
                space,
                selector: selector.clone(),
                fingerprint,
                refs: 1,
            })
            .ok_or(DeclareError::NoAlias(text))?;
        self.interest_keys.insert(key, a);
        if self.state == State::Established {
            self.updates.push(Update::DeclareInterest(a));
        }
        Ok(true)
    }

    /// Drops one reference to a local interest; the peer is told when the
    /// last one goes. Returns false if it was not declared here.
    pub fn withdraw_interest(&mut self, selector: &Selector, fingerprint: u64) -> bool {
        self.withdraw_interest_in(Space::Topic, selector, fingerprint)
    }

    /// [`withdraw_interest`](Self::withdraw_interest) in `space`.
    pub fn withdraw_interest_in(
        &mut self,
        space: Space,
        selector: &Selector,
        fingerprint: u64,
    ) -> bool {
        let key = (space, selector.clone(), fingerprint);
        let Some(&a) = self.interest_keys.get(&key) else {
            return false;
        };
        if let Some(i) = self.interests.get_mut(a) {
            i.refs -= 1;
            if i.refs > 0 {
                return true;
            }
        }
        self.interests.remove(a);
        self.interest_keys.remove(&key);
        self.queue_withdraw(Update::DeclareInterest(a), Update::WithdrawInterest(a));
        true
    }

    /// Queues a withdrawal, or cancels the declaration if it has not been
    /// sent yet (the peer must never see a withdraw of what it never saw).
    fn queue_withdraw(&mut self, declare: Update, withdraw: Update) {
        if self.state != State::Established {
            return;
        }
        if let Some(i) = self.updates.iter().position(|u| *u == declare) {
            self.updates.remove(i);
        } else {
            self.updates.push(withdraw);
        }
    }

    // ----- data, requests, replies -----

    fn check_send(&self) -> Result<(), SendError> {
        match self.state {
            State::Closed => Err(SendError::Closed),
            State::Handshake => Err(SendError::NotConnected),
            State::Established => Ok(()),
        }
    }

    fn next_header(
        &mut self,
        now: Duration,
        kind: FrameKind,
        a: LocalAlias,
    ) -> Result<FrameHeader, SendError> {
        let i = self.intents.get_mut(a).ok_or(SendError::UnknownAlias(a))?;
        let allowed = match kind {
            FrameKind::Data => i.space == Space::Topic,
            FrameKind::Request => i.space == Space::Service,
            _ => true,
        };
        if !allowed {
            return Err(SendError::WrongSpace {
                alias: a,
                space: i.space,
                kind,
            });
        }
        i.seq += 1;
        Ok(FrameHeader::new(kind, a.alias)
            .with_flags(generation_flags(a.generation))
            .with_seq(i.seq)
            .with_timestamp_ns(ns(now)))
    }

    /// Appends one frame, undoing it if it exceeds the negotiated limit.
    fn push<P: Payload + ?Sized>(
        &mut self,
        now: Duration,
        header: &FrameHeader,
        payload: &P,
    ) -> Result<(), SendError> {
        self.flush_updates(now);
        let start = self.tx.len();
        let len = payload.push(&mut self.tx, header)?;
        if len > self.max_frame_len {
            // Rebuild the buffer without the oversized frame (error path
            // only: the codec's buffer has no truncate).
            let mut kept = FrameBuffer::new();
            let bytes = self.tx.as_bytes().get(..start).unwrap_or_default();
            for f in dndm_codec::frames(bytes).flatten() {
                let _ = kept.push_raw(f.header(), f.payload());
            }
            self.tx = kept;
            return Err(SendError::FrameTooLarge {
                len,
                limit: self.max_frame_len,
            });
        }
        self.stats.frames_out += 1;
        self.last_tx = now;
        Ok(())
    }

    fn check_len(&self, len: Option<usize>) -> Result<(), SendError> {
        match len {
            Some(n) if frame_len(n) > self.max_frame_len => Err(SendError::FrameTooLarge {
                len: frame_len(n),
                limit: self.max_frame_len,
            }),
            _ => Ok(()),
        }
    }

    /// Queues a data frame on a local intent. `payload` is raw bytes
    /// (`&[u8]`) or a message ([`Archive`]). Returns the header used.
    pub fn send_data<P: Payload + ?Sized>(
        &mut self,
        now: Duration,
        alias: LocalAlias,
        payload: &P,
    ) -> Result<FrameHeader, SendError> {
        self.check_send()?;
        self.check_len(payload.len_hint())?;
        let header = self.next_header(now, FrameKind::Data, alias)?;
        self.push(now, &header, payload)?;
        Ok(header)
    }

    /// [`send_data`](Self::send_data) carrying the sample's own sequence
    /// number and source timestamp (its publisher's, which the receiving
    /// side reports) instead of the session's per-alias count and `now`.
    pub fn send_sample<P: Payload + ?Sized>(
        &mut self,
        now: Duration,
        alias: LocalAlias,
        seq: u64,
        stamp_ns: u64,
        payload: &P,
    ) -> Result<FrameHeader, SendError> {
        self.check_send()?;
        self.check_len(payload.len_hint())?;
        let header = self
            .next_header(now, FrameKind::Data, alias)?
            .with_seq(seq)
            .with_timestamp_ns(stamp_ns);
        self.push(now, &header, payload)?;
        Ok(header)
    }

    /// Queues a request on a local intent; returns its correlation id. At
    /// most the smaller of both sides' `max_pending_requests` may await a
    /// reply.
    pub fn send_request<P: Payload + ?Sized>(
        &mut self,
        now: Duration,
        alias: LocalAlias,
        payload: &P,
    ) -> Result<u64, SendError> {
        self.check_send()?;
        self.check_len(payload.len_hint())?;
        let peer_limit = self
            .peer
            .as_ref()
            .map_or(0, |p| p.limits.max_pending_requests);
        let limit = peer_limit.min(self.config.limits.max_pending_requests) as usize;
        if self.out_requests.len() >= limit {
            return Err(SendError::TooManyPending { limit });
        }
        let mut correlation = self.next_correlation;
        while correlation == 0 || self.out_requests.contains_key(&correlation) {
            correlation = correlation.wrapping_add(1);
        }
        self.next_correlation = correlation.wrapping_add(1);
        let header = self
            .next_header(now, FrameKind::Request, alias)?
            .with_correlation(correlation);
        self.push(now, &header, payload)?;
        let deadline = self.config.request_timeout.map(|t| now.saturating_add(t));
        self.out_requests.insert(correlation, deadline);
        Ok(correlation)
    }

    /// Cancels one of our pending requests; a late reply is dropped. Returns
    /// false if it was not pending.
    pub fn cancel_request(&mut self, correlation: u64) -> bool {
        self.out_requests.remove(&correlation).is_some()
    }

    /// Queues the reply to the peer's request `correlation`, optionally on
    /// one of our intents.
    pub fn send_reply<P: Payload + ?Sized>(
        &mut self,
        now: Duration,
        correlation: u64,
        alias: Option<LocalAlias>,
        payload: &P,
    ) -> Result<(), SendError> {
        self.check_send()?;
        self.check_len(payload.len_hint())?;
        if !self.in_requests.contains(&correlation) {
            return Err(SendError::UnknownRequest(correlation));
        }
        let header = match alias {
            Some(a) => self.next_header(now, FrameKind::Reply, a)?,
            None => FrameHeader::new(FrameKind::Reply, 0).with_timestamp_ns(ns(now)),
        }
        .with_correlation(correlation);
        self.push(now, &header, payload)?;
        self.in_requests.remove(&correlation);
        Ok(())
    }

    /// Releases a request from the peer without replying. Returns false if
    /// it was not pending.
    pub fn discard_request(&mut self, correlation: u64) -> bool {
        self.in_requests.remove(&correlation)
    }
}
