//! Errors of the peer session: one type per operation.

use std::fmt;
use std::time::Duration;

use dndm_codec::FrameKind;

use super::wire::Malformed;
use super::{ArchiveFormat, LocalAlias};

/// A per-peer limit, as named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitKind {
    /// Bytes in one frame, header and padding included.
    FrameLength,
    /// Remote declarations (intents and interests) held at once.
    Declarations,
    /// Bytes in a route, selector or node name.
    NameLength,
    /// Segments in an interest's pattern.
    PatternSegments,
    /// `**` segments in an interest's pattern.
    PatternWildcards,
    /// Requests awaiting a reply.
    PendingRequests,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::FrameLength => "frame length",
            Self::Declarations => "declaration count",
            Self::NameLength => "name length",
            Self::PatternSegments => "pattern segment count",
            Self::PatternWildcards => "pattern `**` count",
            Self::PendingRequests => "pending request count",
        })
    }
}

/// Why a session ended with an error: what the peer did wrong, or what
/// went wrong with it. The session is closed once this is reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session with peer {peer}: {kind}")]
pub struct SessionError {
    /// The peer: its name and node id once the handshake told them, its
    /// label from [`SessionConfig`](super::SessionConfig) before.
    pub peer: String,
    /// What was wrong.
    pub kind: SessionErrorKind,
}

/// What ended a session, see [`SessionError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionErrorKind {
    /// The peer speaks another version of the session protocol.
    #[error("session protocol version mismatch: ours {ours}, the peer's {theirs}")]
    VersionMismatch {
        /// Our version.
        ours: u16,
        /// The peer's version.
        theirs: u16,
    },
    /// The peer archives payloads in another format (endianness, pointer
    /// width or alignment), which schema fingerprints do not cover.
    #[error("archive format mismatch: ours {ours}, the peer's {theirs}")]
    ArchiveFormat {
        /// Our format.
        ours: ArchiveFormat,
        /// The peer's format.
        theirs: ArchiveFormat,
    },
    /// A frame other than the hello arrived before the handshake completed.
    #[error("{kind} frame before the handshake completed")]
    BeforeHandshake {
        /// The frame's kind.
        kind: FrameKind,
    },
    /// A second hello after the handshake.
    #[error("a second hello after the handshake")]
    DuplicateHello,
    /// A control payload could not be decoded.
    #[error("{0}")]
    Malformed(Malformed),
    /// A control message type this version does not know.
    #[error("unknown control message type {0}")]
    UnknownMessage(u8),
    /// A frame kind this version does not know.
    #[error("unexpected frame kind {0}")]
    UnexpectedKind(FrameKind),
    /// A declared route or selector does not parse.
    #[error("invalid declaration {text:?}: {reason}")]
    InvalidDeclaration {
        /// The declared text.
        text: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The peer exceeded one of our limits.
    #[error("{what} {value} exceeds the limit of {limit}")]
    Limit {
        /// Which limit.
        what: LimitKind,
        /// What the peer sent or held.
        value: u64,
        /// Our limit.
        limit: u64,
    },
    /// Our own declarations exceed a limit the peer announced.
    #[error("our {what} {value} exceeds the peer's limit of {limit}")]
    PeerLimit {
        /// Which limit.
        what: LimitKind,
        /// Our value.
        value: u64,
        /// The peer's limit.
        limit: u64,
    },
    /// The peer declared an id that is already declared.
    #[error("{what} id {id} declared twice")]
    DuplicateDeclaration {
        /// `intent` or `interest`.
        what: &'static str,
        /// The id.
        id: u32,
    },
    /// The peer withdrew something it had not declared (or an old
    /// generation of it).
    #[error("withdraw of undeclared {what} id {id} generation {generation}")]
    UnknownWithdraw {
        /// `intent` or `interest`.
        what: &'static str,
        /// The id.
        id: u32,
        /// The generation.
        generation: u32,
    },
    /// Too many frames for unknown, withdrawn or stale aliases.
    #[error("{count} frames for unknown or stale aliases within {window:?}")]
    UnknownAliasFlood {
        /// Frames counted in the window.
        count: u32,
        /// The window.
        window: Duration,
    },
    /// The peer reused the correlation id of a request still pending.
    #[error("request correlation id {0} reused while pending")]
    DuplicateRequest(u64),
    /// A request without a correlation id.
    #[error("request without a correlation id")]
    MissingCorrelation,
    /// No hello within the handshake timeout.
    #[error("no hello within {0:?}")]
    HandshakeTimeout(Duration),
    /// No frame from the peer within the idle timeout.
    #[error("no frame from the peer for {0:?}: presumed dead")]
    DeadPeer(Duration),
}

/// Why a local declaration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeclareError {
    /// The session is closed.
    #[error("session closed: cannot declare {0:?}")]
    Closed(String),
    /// The declaration exceeds a limit the peer announced.
    #[error("declaration {text:?}: {what} {value} exceeds the peer's limit of {limit}")]
    PeerLimit {
        /// The route or selector.
        text: String,
        /// Which limit.
        what: LimitKind,
        /// Our value.
        value: u64,
        /// The peer's limit.
        limit: u64,
    },
    /// Every alias is in use.
    #[error("declaration {0:?}: no alias left")]
    NoAlias(String),
}

/// Why a data, request or reply frame could not be queued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session is closed.
    #[error("session closed")]
    Closed,
    /// The handshake has not completed yet.
    #[error("the handshake has not completed")]
    NotConnected,
    /// The alias is not a live local intent of this session.
    #[error("alias {} generation {} is not a declared intent", .0.alias, .0.generation)]
    UnknownAlias(LocalAlias),
    /// Data on a client's intent, or a request on a publisher's.
    #[error("alias {} is a {space:?} intent: it cannot carry a {kind:?} frame", .alias.alias)]
    WrongSpace {
        /// The alias.
        alias: LocalAlias,
        /// What the intent was declared as.
        space: super::Space,
        /// The frame that was refused.
        kind: dndm_codec::FrameKind,
    },
    /// The frame would exceed the negotiated maximum frame length.
    #[error("frame of {len} bytes exceeds the negotiated limit of {limit} bytes")]
    FrameTooLarge {
        /// The frame length.
        len: usize,
        /// The negotiated limit.
        limit: usize,
    },
    /// As many requests are pending as the smaller of both limits allows.
    #[error("{limit} requests already pending")]
    TooManyPending {
        /// The limit.
        limit: usize,
    },
    /// A reply to a request that is not pending from this peer.
    #[error("no pending request with correlation id {0}")]
    UnknownRequest(u64),
    /// The payload could not be encoded.
    #[error("encoding the payload failed: {0}")]
    Encode(#[from] dndm_codec::EncodeError),
}

pub(crate) fn limit(what: LimitKind, value: usize, limit: usize) -> SessionErrorKind {
    SessionErrorKind::Limit {
        what,
        value: value as u64,
        limit: limit as u64,
    }
}
