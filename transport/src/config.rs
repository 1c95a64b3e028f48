//! Limits and counters.

use std::time::Duration;

/// Limits and timeouts shared by every implementation. Every bound is
/// explicit; see each field for its default.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest accepted incoming frame (header + payload + padding); a
    /// larger one closes that connection with a protocol error.
    /// Default 16 MiB.
    pub max_frame_len: usize,
    /// Most bytes queued for sending per connection; beyond it
    /// `try_send` returns [`SendError::Full`](crate::SendError::Full).
    /// Default 16 MiB.
    pub max_queued_bytes: usize,
    /// Most open connections per transport (accepted + connected); extra
    /// incoming connections are closed at once and counted. Default 1024.
    pub max_connections: usize,
    /// Initial receive buffer per connection (grows up to
    /// `max_frame_len`). Default 256 KiB.
    pub recv_buffer: usize,
    /// Connect timeout. Default 5 s.
    pub connect_timeout: Duration,
    /// A partial frame that does not complete within this time closes the
    /// connection (slow-loris). Default 30 s.
    pub frame_timeout: Option<Duration>,
    /// A connection that receives nothing for this long is closed
    /// (half-open peers). Default none.
    pub idle_timeout: Option<Duration>,
    /// How long a gracefully closed connection may keep flushing queued
    /// bytes to a slow peer before it is dropped. Default 5 s.
    pub linger: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_len: 16 << 20,
            max_queued_bytes: 16 << 20,
            max_connections: 1024,
            recv_buffer: 256 << 10,
            connect_timeout: Duration::from_secs(5),
            frame_timeout: Some(Duration::from_secs(30)),
            idle_timeout: None,
            linger: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Sets [`max_frame_len`](Self::max_frame_len).
    #[must_use]
    pub fn with_max_frame_len(mut self, v: usize) -> Self {
        self.max_frame_len = v;
        self
    }

    /// Sets [`max_queued_bytes`](Self::max_queued_bytes).
    #[must_use]
    pub fn with_max_queued_bytes(mut self, v: usize) -> Self {
        self.max_queued_bytes = v;
        self
    }

    /// Sets [`max_connections`](Self::max_connections).
    #[must_use]
    pub fn with_max_connections(mut self, v: usize) -> Self {
        self.max_connections = v;
        self
    }

    /// Sets [`recv_buffer`](Self::recv_buffer).
    #[must_use]
    pub fn with_recv_buffer(mut self, v: usize) -> Self {
        self.recv_buffer = v;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    #[must_use]
    pub fn with_connect_timeout(mut self, v: Duration) -> Self {
        self.connect_timeout = v;
        self
    }

    /// Sets [`frame_timeout`](Self::frame_timeout).
    #[must_use]
    pub fn with_frame_timeout(mut self, v: Option<Duration>) -> Self {
        self.frame_timeout = v;
        self
    }

    /// Sets [`idle_timeout`](Self::idle_timeout).
    #[must_use]
    pub fn with_idle_timeout(mut self, v: Option<Duration>) -> Self {
        self.idle_timeout = v;
        self
    }

    /// Sets [`linger`](Self::linger).
    #[must_use]
    pub fn with_linger(mut self, v: Duration) -> Self {
        self.linger = v;
        self
    }

    #[cfg_attr(
        not(any(feature = "tcp", feature = "unix", feature = "mem")),
        allow(dead_code, reason = "only stream transports decode")
    )]
    pub(crate) fn decoder(&self) -> dndm_codec::StreamDecoder {
        dndm_codec::StreamDecoder::new(
            dndm_codec::DecoderConfig::default()
                .with_max_frame_len(self.max_frame_len)
                .with_initial_capacity(self.recv_buffer.min(self.max_frame_len.max(64))),
        )
    }
}

/// Per-connection counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Bytes handed to the network.
    pub bytes_sent: u64,
    /// Frames accepted by `try_send`.
    pub frames_sent: u64,
    /// Bytes received from the network.
    pub bytes_received: u64,
    /// Frames delivered by `try_recv`.
    pub frames_received: u64,
    /// Bytes queued for sending now.
    pub queued_bytes: usize,
    /// The most bytes ever queued at once.
    pub peak_queued_bytes: usize,
    /// Sends refused because the queue was full.
    pub full_rejections: u64,
}

/// Per-transport counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// Connections open now.
    pub open_connections: usize,
    /// Connections accepted so far.
    pub accepted: u64,
    /// Incoming connections closed at once because `max_connections` were open.
    pub rejected: u64,
    /// Connections closed for malformed frames.
    pub protocol_errors: u64,
    /// Connections closed by a timeout.
    pub timeouts: u64,
}

/// Transport-wide counters shared by connections.
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(feature = "tcp", feature = "unix", feature = "mem")),
    allow(dead_code, reason = "only stream transports count connections")
)]
pub(crate) struct Counters {
    pub(crate) open: dndm_core::sync::atomic::AtomicUsize,
    pub(crate) accepted: dndm_core::sync::atomic::AtomicU64,
    pub(crate) rejected: dndm_core::sync::atomic::AtomicU64,
    pub(crate) protocol_errors: dndm_core::sync::atomic::AtomicU64,
    pub(crate) timeouts: dndm_core::sync::atomic::AtomicU64,
}

#[cfg_attr(
    not(any(feature = "tcp", feature = "unix", feature = "mem")),
    allow(dead_code, reason = "only stream transports count connections")
)]
impl Counters {
    pub(crate) fn snapshot(&self) -> TransportStats {
        use dndm_core::sync::atomic::Ordering::Relaxed;
        TransportStats {
            open_connections: self.open.load(Relaxed),
            accepted: self.accepted.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            protocol_errors: self.protocol_errors.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
        }
    }

    /// Counts a close reason that the transport tracks.
    pub(crate) fn count_close(&self, reason: &crate::CloseReason) {
        use dndm_core::sync::atomic::Ordering::Relaxed;
        match reason {
            crate::CloseReason::Protocol(_) => {
                self.protocol_errors.fetch_add(1, Relaxed);
            }
            crate::CloseReason::TimedOut { .. } => {
                self.timeouts.fetch_add(1, Relaxed);
            }
            _ => {}
        }
    }
}
