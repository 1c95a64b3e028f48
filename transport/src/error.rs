//! One small error type per operation.

use std::io;

use dndm_codec::DecodeError;

use crate::Address;

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// This side closed it ([`Connection::close`](crate::Connection::close)
    /// or [`abort`](crate::Connection::abort)).
    #[error("closed locally")]
    Local,
    /// The peer closed its side cleanly, at a frame boundary.
    #[error("closed by peer")]
    ClosedByPeer,
    /// The peer closed its side in the middle of a frame.
    #[error("peer vanished mid-frame with {buffered} bytes of a partial frame buffered")]
    Truncated {
        /// Bytes of the unfinished frame.
        buffered: usize,
    },
    /// The connection was reset (or the simulated link was cut).
    #[error("connection reset")]
    Reset,
    /// A configured timeout fired (idle peer or a partial frame that did not
    /// complete in time: slow-loris).
    #[error("timed out ({what})")]
    TimedOut {
        /// Which timeout.
        what: &'static str,
    },
    /// The peer sent bytes that are not valid frames.
    #[error("protocol error: {0}")]
    Protocol(DecodeError),
    /// Another I/O error.
    #[error("i/o error: {0:?}")]
    Io(io::ErrorKind),
}

impl CloseReason {
    pub(crate) fn from_io(e: &io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Self::Reset,
            io::ErrorKind::TimedOut => Self::TimedOut { what: "socket" },
            kind => Self::Io(kind),
        }
    }
}

/// Why [`Transport::listen`](crate::Transport::listen) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The address is not one this transport serves.
    #[error("cannot listen on {addr}: wrong scheme for this transport")]
    Unsupported {
        /// The address.
        addr: Address,
    },
    /// The address is taken.
    #[error("cannot listen on {addr}: address in use")]
    InUse {
        /// The address.
        addr: Address,
    },
    /// Another I/O error.
    #[error("cannot listen on {addr}: {source}")]
    Io {
        /// The address.
        addr: Address,
        /// The OS error.
        source: io::Error,
    },
}

/// Why [`Transport::connect`](crate::Transport::connect) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The address is not one this transport serves.
    #[error("cannot connect to {addr}: wrong scheme for this transport")]
    Unsupported {
        /// The address.
        addr: Address,
    },
    /// Nobody listens there.
    #[error("connection to {addr} refused")]
    Refused {
        /// The address.
        addr: Address,
    },
    /// The connect timeout elapsed (or the simulated hosts are partitioned).
    #[error("connection to {addr} timed out")]
    TimedOut {
        /// The address.
        addr: Address,
    },
    /// The configured maximum number of connections is open.
    #[error("cannot connect to {addr}: {limit} connections already open")]
    TooManyConnections {
        /// The address.
        addr: Address,
        /// The configured limit.
        limit: usize,
    },
    /// Another I/O error.
    #[error("cannot connect to {addr}: {source}")]
    Io {
        /// The address.
        addr: Address,
        /// The OS error.
        source: io::Error,
    },
}

/// Why [`Listener::try_accept`](crate::Listener::try_accept) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// An I/O error on the listening socket.
    #[error("accept on {addr} failed: {source}")]
    Io {
        /// The listening address.
        addr: Address,
        /// The OS error.
        source: io::Error,
    },
}

/// Why [`Connection::try_send`](crate::Connection::try_send) refused a batch.
///
/// Sends are all-or-nothing: on error no byte of the batch was queued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The outgoing queue would exceed its limit: the peer reads slower
    /// than we write. Retry after the queue drains.
    #[error("send to {peer} would block: {queued} bytes queued + {len} > limit {limit}")]
    Full {
        /// The peer.
        peer: Address,
        /// Bytes already queued.
        queued: usize,
        /// Bytes in the refused batch.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The batch alone exceeds the queue limit; it can never be sent.
    #[error("send to {peer}: batch of {len} bytes exceeds the queue limit {limit}")]
    TooLarge {
        /// The peer.
        peer: Address,
        /// Bytes in the batch.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The connection is closed.
    #[error("send to {peer} failed: {reason}")]
    Closed {
        /// The peer.
        peer: Address,
        /// Why it closed.
        reason: CloseReason,
    },
}

/// Why [`Connection::try_recv`](crate::Connection::try_recv) stopped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// The connection is closed; every complete frame before the close was
    /// delivered first.
    #[error("receive from {peer} failed: {reason}")]
    Closed {
        /// The peer.
        peer: Address,
        /// Why it closed.
        reason: CloseReason,
    },
}

impl RecvError {
    /// Why the connection closed.
    pub fn reason(&self) -> &CloseReason {
        match self {
            Self::Closed { reason, .. } => reason,
        }
    }
}
