//! Limits and counters.

use std::time::Duration;

/// Limits and timeouts shared by every implementation. Every bound is
/// explicit; see each field for its default.
///
/// Durations: `Duration::MAX` always means "never" (no deadline is ever
/// computed by adding it to a clock reading), and `Duration::ZERO` has the
/// meaning documented on each field; none of them panics or spins.
///
/// Memory: one connection holds at most `max_frame_len` (receive buffer,
/// rounded up to 16) + `max_queued_bytes` (send queue) + a few KiB, so a
/// transport holds at most `(max_inbound_connections +
/// max_outbound_connections) × that`; 1 GiB with the defaults
/// (`docs/memory.md`, section Connection).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest accepted incoming frame (header + payload + padding); a
    /// larger one closes that connection with a protocol error. It also
    /// bounds the receive buffer of each connection. Default 4 MiB.
    pub max_frame_len: usize,
    /// Most bytes queued for sending per connection; beyond it
    /// `try_send` returns [`SendError::Full`](crate::SendError::Full).
    /// Default 4 MiB.
    pub max_queued_bytes: usize,
    /// Most open accepted connections per transport; extra incoming
    /// connections are closed at once and counted
    /// ([`TransportStats::rejected`]). Default 64.
    pub max_inbound_connections: usize,
    /// Most open connections this transport dialled; beyond it `connect`
    /// returns [`ConnectError::TooManyConnections`](crate::ConnectError::TooManyConnections).
    /// Counted apart from inbound ones, so a flood of peers cannot stop
    /// this node from dialling out. Default 64.
    pub max_outbound_connections: usize,
    /// Initial receive buffer per connection (grows up to
    /// `max_frame_len`). Default 256 KiB.
    pub recv_buffer: usize,
    /// Connect timeout. `Duration::ZERO` or `Duration::MAX`: no timeout of
    /// ours (the operating system's own connect timeout applies, about two
    /// minutes on Linux). Default 5 s.
    pub connect_timeout: Duration,
    /// Slow-loris guard: once the first byte of a frame has arrived, the
    /// whole frame must arrive within this time or the I/O thread closes the
    /// connection ([`CloseReason::TimedOut`](crate::CloseReason::TimedOut)
    /// `"partial frame"`), whether or not the user is receiving. Bytes the
    /// user leaves unread count as arriving frames, so set it above the
    /// longest pause between receives. `None`, `Some(Duration::ZERO)` or
    /// `Some(Duration::MAX)`: disabled. Default 30 s.
    pub frame_timeout: Option<Duration>,
    /// A connection that receives nothing for this long is closed by the
    /// I/O thread (`"idle"`), whether or not the user is receiving. `None`,
    /// `Some(Duration::ZERO)` or `Some(Duration::MAX)`: disabled. Default
    /// none (see [`keepalive`](Self::keepalive) for dead peers).
    pub idle_timeout: Option<Duration>,
    /// How long a gracefully closed connection may keep flushing queued
    /// bytes to a slow peer before it is dropped (`"linger"`).
    /// `Duration::ZERO`: queued bytes are dropped at close.
    /// `Duration::MAX`: never dropped for slowness; dropping the last handle
    /// of the transport then waits until the peer has read everything or the
    /// connection fails (keepalive detects dead peers). Default 5 s.
    pub linger: Duration,
    /// TCP keepalive: after this long without traffic the kernel probes the
    /// peer (every `keepalive / 3`, at least 1 s, the kernel's probe count)
    /// and fails a dead
    /// connection with [`CloseReason::TimedOut`](crate::CloseReason::TimedOut)
    /// `"socket"` or `Reset`. Whole seconds, at least 1 s. `None` or
    /// `Some(Duration::ZERO)`: off. Unix sockets ignore it. Default 60 s.
    pub keepalive: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_len: 4 << 20,
            max_queued_bytes: 4 << 20,
            max_inbound_connections: 64,
            max_outbound_connections: 64,
            recv_buffer: 256 << 10,
            connect_timeout: Duration::from_secs(5),
            frame_timeout: Some(Duration::from_secs(30)),
            idle_timeout: None,
            linger: Duration::from_secs(5),
            keepalive: Some(Duration::from_secs(60)),
        }
    }
}

#[cfg_attr(
    not(any(feature = "tcp", feature = "unix")),
    allow(dead_code, reason = "only the mio transport enforces timeouts")
)]
/// A timeout that is really enforced: `None`, zero and durations too long to
/// count in nanoseconds since start-up (`Duration::MAX`) mean "never".
pub(crate) fn enforced(t: Option<Duration>) -> Option<u64> {
    let t = t.filter(|t| !t.is_zero())?;
    u64::try_from(t.as_nanos())
        .ok()
        .filter(|n| *n < u64::MAX / 2)
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

    /// Sets both [`max_inbound_connections`](Self::max_inbound_connections)
    /// and [`max_outbound_connections`](Self::max_outbound_connections).
    #[must_use]
    pub fn with_max_connections(mut self, v: usize) -> Self {
        self.max_inbound_connections = v;
        self.max_outbound_connections = v;
        self
    }

    /// Sets [`max_inbound_connections`](Self::max_inbound_connections).
    #[must_use]
    pub fn with_max_inbound_connections(mut self, v: usize) -> Self {
        self.max_inbound_connections = v;
        self
    }

    /// Sets [`max_outbound_connections`](Self::max_outbound_connections).
    #[must_use]
    pub fn with_max_outbound_connections(mut self, v: usize) -> Self {
        self.max_outbound_connections = v;
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

    /// Sets [`keepalive`](Self::keepalive).
    #[must_use]
    pub fn with_keepalive(mut self, v: Option<Duration>) -> Self {
        self.keepalive = v;
        self
    }

    /// The most bytes one connection can hold in buffers: the receive
    /// buffer at its largest plus the send queue at its limit (a few KiB of
    /// fixed state come on top; see `docs/memory.md`, section Connection).
    pub fn max_connection_buffer_bytes(&self) -> usize {
        dndm_codec::DecoderConfig::default()
            .with_max_frame_len(self.max_frame_len)
            .max_frame_len
            .saturating_add(15)
            .saturating_add(self.max_queued_bytes)
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
    /// Connections open now (inbound + outbound).
    pub open_connections: usize,
    /// Accepted connections open now.
    pub open_inbound: usize,
    /// Dialled connections open now.
    pub open_outbound: usize,
    /// Connections accepted so far.
    pub accepted: u64,
    /// Incoming connections closed at once because
    /// `max_inbound_connections` were open.
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
    /// Of `open`, the connections this transport dialled.
    pub(crate) open_outbound: dndm_core::sync::atomic::AtomicUsize,
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
        let open = self.open.load(Relaxed);
        let outbound = self.open_outbound.load(Relaxed).min(open);
        TransportStats {
            open_connections: open,
            open_inbound: open - outbound,
            open_outbound: outbound,
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
