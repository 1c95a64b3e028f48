//! One small error type per operation, and the umbrella [`Error`].

use std::sync::Arc;
use std::time::Duration;

use dndm_router::{LinkError, PatternError, RouteError};

/// [`Node::publish`](crate::Node::publish) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The route is malformed.
    #[error("cannot publish: {0}")]
    Route(#[from] RouteError),
    /// The node is closed.
    #[error("cannot publish: {0}")]
    Link(#[from] LinkError),
    /// The history depth is above the limit.
    #[error("cannot publish on {route}: history depth {depth} is above the limit of {max}")]
    HistoryTooDeep {
        /// The route.
        route: String,
        /// The depth asked for.
        depth: usize,
        /// The limit ([`MAX_CAPACITY`](dndm_core::MAX_CAPACITY)).
        max: usize,
    },
}

/// [`Node::subscribe`](crate::Node::subscribe) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The pattern is malformed.
    #[error("cannot subscribe: {0}")]
    Pattern(#[from] PatternError),
    /// The route (of a hashed subscription) is malformed.
    #[error("cannot subscribe: {0}")]
    Route(#[from] RouteError),
    /// The capacity is zero or too large.
    #[error("cannot subscribe to {pattern}: {source}")]
    Config {
        /// The pattern.
        pattern: String,
        /// Why.
        source: dndm_core::ConfigError,
    },
    /// The node is closed.
    #[error("cannot subscribe: {0}")]
    Link(#[from] LinkError),
    /// The callback thread could not be spawned.
    #[error("cannot subscribe to {pattern}: spawning the callback thread failed: {reason}")]
    Spawn {
        /// The pattern.
        pattern: String,
        /// The OS error.
        reason: String,
    },
}

/// [`Publisher::send`](crate::Publisher::send) did not reach every
/// interested subscriber. The message is handed back.
#[derive(PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError<T> {
    /// `missed` subscribers had no room (policy `Reject`, a `Block` timeout,
    /// or `try_send` to a full `Block` subscriber); the others got it.
    #[error("send on {route} failed: {missed} subscriber(s) had no room")]
    Full {
        /// The message (a copy when others received it).
        msg: T,
        /// How many subscribers missed it.
        missed: usize,
        /// The publisher's route.
        route: String,
    },
}

impl<T> SendError<T> {
    /// The message that was not fully delivered.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full { msg, .. } => msg,
        }
    }
}

impl<T> std::fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full { missed, route, .. } => f
                .debug_struct("Full")
                .field("missed", missed)
                .field("route", route)
                .finish_non_exhaustive(),
        }
    }
}

/// [`Subscriber::recv`](crate::Subscriber::recv) or
/// [`recv_async`](crate::Subscriber::recv_async) failed: no publisher can
/// reach this subscriber any more (the node closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("receive on {pattern} failed: the subscription is closed")]
pub struct RecvError {
    /// The subscription's pattern.
    pub pattern: Arc<str>,
}

/// [`Subscriber::try_recv`](crate::Subscriber::try_recv) found nothing.
/// Making one allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TryRecvError {
    /// Nothing is queued now.
    #[error("receive on {pattern} found nothing")]
    Empty {
        /// The subscription's pattern.
        pattern: Arc<str>,
    },
    /// The subscription is closed and its queue drained.
    #[error("receive on {pattern} failed: the subscription is closed")]
    Closed {
        /// The subscription's pattern.
        pattern: Arc<str>,
    },
}

/// [`Subscriber::recv_timeout`](crate::Subscriber::recv_timeout) returned
/// no sample.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvTimeoutError {
    /// Nothing arrived in time.
    #[error("receive on {pattern} found nothing within {timeout:?}")]
    Timeout {
        /// The subscription's pattern.
        pattern: Arc<str>,
        /// How long it waited.
        timeout: Duration,
    },
    /// The subscription is closed and its queue drained.
    #[error("receive on {pattern} failed: the subscription is closed")]
    Closed {
        /// The subscription's pattern.
        pattern: Arc<str>,
    },
}

/// [`Node::serve`](crate::Node::serve) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The route is malformed.
    #[error("cannot serve: {0}")]
    Route(#[from] RouteError),
    /// The pattern is malformed.
    #[error("cannot serve: {0}")]
    Pattern(#[from] PatternError),
    /// The node is closed.
    #[error("cannot serve: {0}")]
    Link(#[from] LinkError),
    /// A worker thread could not be spawned.
    #[error("cannot serve {route}: spawning a worker failed: {reason}")]
    Spawn {
        /// The route.
        route: String,
        /// The OS error.
        reason: String,
    },
}

/// [`Node::call`](crate::Node::call) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The route is malformed.
    #[error("call failed: {0}")]
    Route(#[from] RouteError),
    /// The node is closed.
    #[error("call failed: {0}")]
    Link(#[from] LinkError),
    /// No server is registered on the route.
    #[error("call to {route} failed: no server")]
    NoServer {
        /// The route.
        route: String,
    },
    /// A server exists with the same type names but another schema.
    #[error("call to {route} failed: {detail}")]
    SchemaMismatch {
        /// The route.
        route: String,
        /// The mismatch.
        detail: String,
    },
    /// No reply before the deadline.
    #[error("call to {route} timed out after {timeout:?}")]
    Timeout {
        /// The route.
        route: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The handler panicked; the server keeps running.
    #[error("call to {route} failed: the handler panicked: {message}")]
    HandlerPanicked {
        /// The route.
        route: String,
        /// The panic message.
        message: String,
    },
    /// The server went away before replying.
    #[error("call to {route} failed: the server went away")]
    ServerGone {
        /// The route.
        route: String,
    },
    /// The server's queue was full (it rejects instead of waiting), or as
    /// many calls to the server's peer are pending as its limits allow.
    #[error("call to {route} failed: the server queue is full")]
    Busy {
        /// The route.
        route: String,
    },
    /// The peer serving the call left (or its connection failed) before
    /// it replied.
    #[error("call to {route} failed: peer {peer} left before replying: {reason}")]
    PeerGone {
        /// The route.
        route: String,
        /// The peer's node name (its address before its hello).
        peer: String,
        /// Why the peer's session ended.
        reason: String,
    },
    /// The call could not cross to the peer or come back: the request or
    /// the reply could not be encoded or read, or the frame was refused.
    #[error("call to {route} via peer {peer} failed: {reason}")]
    Remote {
        /// The route.
        route: String,
        /// The peer's node name.
        peer: String,
        /// What went wrong.
        reason: String,
    },
}

/// [`Node::listen`](crate::Node::listen) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The address is not a URI dndm reads.
    #[error("cannot listen on `{input}`: {source}")]
    Address {
        /// What was given.
        input: String,
        /// Why it is not an address.
        source: dndm_transport::AddressParseError,
    },
    /// No transport in this build serves the address's scheme (see the
    /// crate features).
    #[error("cannot listen on {addr}: no transport for this scheme in this build")]
    Unsupported {
        /// The address.
        addr: String,
    },
    /// The transport refused (address in use, permissions, …).
    #[error("{source}")]
    Transport {
        /// The address.
        addr: String,
        /// The transport's error (it names the address).
        source: dndm_transport::ListenError,
    },
    /// Starting the transport or the node's driver thread failed.
    #[error("cannot listen on {addr}: {source}")]
    Io {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// [`Node::connect`](crate::Node::connect) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The address is not a URI dndm reads.
    #[error("cannot connect to `{input}`: {source}")]
    Address {
        /// What was given.
        input: String,
        /// Why it is not an address.
        source: dndm_transport::AddressParseError,
    },
    /// No transport in this build serves the address's scheme.
    #[error("cannot connect to {addr}: no transport for this scheme in this build")]
    Unsupported {
        /// The address.
        addr: String,
    },
    /// The transport failed (refused, timed out, too many connections, …).
    #[error("{source}")]
    Transport {
        /// The address.
        addr: String,
        /// The transport's error (it names the address).
        source: dndm_transport::ConnectError,
    },
    /// Starting the transport or the node's driver thread failed.
    #[error("cannot connect to {addr}: {source}")]
    Io {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// [`NodeBuilder::build`](crate::NodeBuilder::build) failed: an address
/// given to the builder could not be listened on or connected to.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// See [`ListenError`].
    #[error("cannot build the node: {0}")]
    Listen(#[from] ListenError),
    /// See [`ConnectError`].
    #[error("cannot build the node: {0}")]
    Connect(#[from] ConnectError),
}

/// Any dndm error, for callers that want one type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`PublishError`].
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// See [`SubscribeError`].
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
    /// See [`RecvError`].
    #[error(transparent)]
    Recv(#[from] RecvError),
    /// See [`TryRecvError`].
    #[error(transparent)]
    TryRecv(#[from] TryRecvError),
    /// See [`RecvTimeoutError`].
    #[error(transparent)]
    RecvTimeout(#[from] RecvTimeoutError),
    /// See [`ServeError`].
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// See [`CallError`].
    #[error(transparent)]
    Call(#[from] CallError),
    /// See [`ListenError`].
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// See [`ConnectError`].
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// See [`BuildError`].
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A send failed (the message is dropped).
    #[error("{0}")]
    Send(String),
}

impl<T> From<SendError<T>> for Error {
    fn from(e: SendError<T>) -> Self {
        Self::Send(e.to_string())
    }
}
