//! One small error type per operation.

use std::fmt;

/// Why a channel could not be created: [`Config`](crate::Config) is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A capacity of zero cannot hold a message.
    ZeroCapacity,
    /// The capacity is above [`MAX_CAPACITY`](crate::MAX_CAPACITY).
    CapacityTooLarge {
        /// What was asked for.
        requested: usize,
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroCapacity => f.write_str("channel capacity must be at least 1"),
            Self::CapacityTooLarge { requested, max } => {
                write!(
                    f,
                    "channel capacity {requested} is above the limit of {max}"
                )
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why a send did not reach every attached receiver. The message is handed
/// back, so nothing is lost silently.
///
/// Returned by [`Sender::send`](crate::Sender::send),
/// [`try_send`](crate::Sender::try_send),
/// [`send_timeout`](crate::Sender::send_timeout) and
/// [`send_iter`](crate::Sender::send_iter).
#[derive(PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError<T> {
    /// No receiver is attached: nobody got the message.
    Disconnected(T),
    /// `missed` receivers had no room (policy `Reject`, a `Block` deadline
    /// that passed, or a `try_send` to a full `Block` receiver). The other
    /// attached receivers got the message; `msg` is a copy for a retry.
    Full {
        /// The message (or a clone of it, when others received it).
        msg: T,
        /// How many receivers did not get it.
        missed: usize,
    },
}

impl<T> SendError<T> {
    /// The message that was not (fully) delivered.
    pub fn into_inner(self) -> T {
        match self {
            Self::Disconnected(m) | Self::Full { msg: m, .. } => m,
        }
    }

    /// True for [`SendError::Disconnected`].
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected(_))
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disconnected(_) => f.write_str("Disconnected(..)"),
            Self::Full { missed, .. } => write!(f, "Full {{ missed: {missed}, .. }}"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disconnected(_) => f.write_str("send failed: no receiver is attached"),
            Self::Full { missed, .. } => {
                write!(f, "send failed: {missed} receiver(s) had no room")
            }
        }
    }
}

impl<T> std::error::Error for SendError<T> {}

/// [`Receiver::recv`](crate::Receiver::recv) failed: every sender is gone
/// and the queue is drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError;

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receive failed: every sender is gone and the queue is empty")
    }
}

impl std::error::Error for RecvError {}

/// [`Receiver::try_recv`](crate::Receiver::try_recv) found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TryRecvError {
    /// Nothing is queued right now.
    Empty,
    /// Every sender is gone and the queue is drained.
    Disconnected,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("receive failed: the queue is empty"),
            Self::Disconnected => RecvError.fmt(f),
        }
    }
}

impl std::error::Error for TryRecvError {}

/// [`Receiver::recv_timeout`](crate::Receiver::recv_timeout) found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvTimeoutError {
    /// Nothing arrived before the deadline.
    Timeout,
    /// Every sender is gone and the queue is drained.
    Disconnected,
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("receive timed out"),
            Self::Disconnected => RecvError.fmt(f),
        }
    }
}

impl std::error::Error for RecvTimeoutError {}

/// [`Sender::attach`](crate::Sender::attach) could not connect the two ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttachError {
    /// Every sender handle of this source is gone.
    SenderClosed,
    /// The receiver was dropped.
    ReceiverClosed,
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SenderClosed => f.write_str("attach failed: every sender handle is gone"),
            Self::ReceiverClosed => f.write_str("attach failed: the receiver was dropped"),
        }
    }
}

impl std::error::Error for AttachError {}
