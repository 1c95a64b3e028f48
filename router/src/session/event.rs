//! What a session reports: events, inbound frames, statistics.

use std::time::Duration;

use dndm_codec::FrameHeader;

use super::{Limits, NodeId, RemoteIntentId, RemoteInterestId, SessionError, Space};
use crate::pattern::Selector;
use crate::route::{Path, Route};

/// What the peer told us in its hello.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerInfo {
    /// Its node id.
    pub node_id: NodeId,
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub path: Option<Path>,
    /// Its capability bits.
    pub capabilities: u64,
    /// The limits it enforces on us.
    pub limits: Limits,
    /// Its idle timeout.
    pub idle_timeout: Duration,
    /// The maximum frame length both sides use (the smaller of both).
    pub max_frame_len: u32,
}

/// A declared remote intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteIntent {
    /// Its id in this session.
    pub id: RemoteIntentId,
    /// The route it publishes on.
    pub route: Route,
    /// The schema fingerprint of its type.
    pub fingerprint: u64,
    /// A publisher ([`Space::Topic`]) or a client ([`Space::Service`]).
    pub space: Space,
}

/// A declared remote interest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteInterest {
    /// Its id in this session.
    pub id: RemoteInterestId,
    /// What it selects.
    pub selector: Selector,
    /// The schema fingerprint of its type.
    pub fingerprint: u64,
    /// A subscriber ([`Space::Topic`]) or a server ([`Space::Service`]).
    pub space: Space,
}

/// A remote declaration that went away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withdrawn {
    /// An intent.
    Intent(RemoteIntent),
    /// An interest.
    Interest(RemoteInterest),
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// We called [`Session::close`](super::Session::close).
    Local(String),
    /// The peer said goodbye.
    Peer {
        /// Its goodbye code (0 normal, 1 protocol error, 2 limit, 3 version,
        /// 4 archive format, 5 timeout).
        code: u16,
        /// Its reason.
        reason: String,
    },
    /// The session failed.
    Error(SessionError),
}

/// What happened, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed.
    Connected(PeerInfo),
    /// The peer declared an intent that passed the import filter.
    RemoteIntent(RemoteIntent),
    /// The peer declared an interest that passed the import filter.
    RemoteInterest(RemoteInterest),
    /// A remote declaration was withdrawn (or the session closed).
    Withdrawn(Withdrawn),
    /// One of our requests got no reply in time; a late reply is dropped.
    RequestTimedOut {
        /// Its correlation id.
        correlation: u64,
    },
    /// The session is closed; no event follows. Requests still awaiting a
    /// reply are abandoned with it.
    Closed(CloseReason),
}

/// A data, request or reply frame accepted by [`Session::handle_frame`](super::Session::handle_frame); the
/// payload is the slice the driver passed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inbound {
    /// A sample on a remote intent.
    Data {
        /// The intent ([`Session::remote_intent`](super::Session::remote_intent) gives its route).
        intent: RemoteIntentId,
        /// The frame header.
        header: FrameHeader,
    },
    /// A request on a remote intent; answer with [`Session::send_reply`](super::Session::send_reply)
    /// (`header.correlation`) or release it with
    /// [`Session::discard_request`](super::Session::discard_request).
    Request {
        /// The intent the request was published on.
        intent: RemoteIntentId,
        /// The frame header.
        header: FrameHeader,
    },
    /// The reply to one of our requests (`header.correlation`).
    Reply {
        /// The intent it came on, if the peer named one.
        intent: Option<RemoteIntentId>,
        /// The frame header.
        header: FrameHeader,
    },
}

/// Counters and clock estimates, see [`Session::stats`](super::Session::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// Frames handled.
    pub frames_in: u64,
    /// Frames queued for the peer.
    pub frames_out: u64,
    /// Data or request frames for an alias never declared or withdrawn.
    pub dropped_unknown_alias: u64,
    /// Data or request frames for an old generation of an alias.
    pub dropped_stale_generation: u64,
    /// Data or request frames for an intent outside the import filter.
    pub dropped_filtered: u64,
    /// Data frames on a client's alias, or requests on a publisher's.
    pub dropped_wrong_space: u64,
    /// Replies to no pending request.
    pub dropped_replies: u64,
    /// Frames handled after the session closed.
    pub dropped_after_close: u64,
    /// Remote declarations refused by the import filter.
    pub declarations_filtered: u64,
    /// Pongs received that matched a ping.
    pub pongs: u64,
    /// Round-trip time of the latest ping (remote processing excluded).
    pub rtt: Option<Duration>,
    /// Smallest round-trip time seen.
    pub min_rtt: Option<Duration>,
    /// Smoothed round-trip time (1/8 weight per sample).
    pub smoothed_rtt: Option<Duration>,
    /// Peer clock minus our clock, in nanoseconds, from the latest pong
    /// (NTP: `((t2 - t1) + (t3 - t4)) / 2`). Meaningful when both drivers
    /// pass the same kind of clock as `now` (for example Unix time).
    pub clock_offset_ns: Option<i64>,
}
