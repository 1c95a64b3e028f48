//! `dndm-transport`: moves dndm frames between threads, processes and
//! machines. It knows frames (from `dndm-codec`), never routes.
//!
//! * [`Transport`], [`Listener`] and [`Connection`] are the contract every
//!   implementation meets (static dispatch; pick one type at compile time).
//! * [`MioTransport`] (features `tcp`, `unix`) serves `tcp://` and
//!   `unix://` addresses with std sockets driven by one mio I/O thread.
//! * [`udp`] (feature `udp`) sends frames as datagrams, unicast or
//!   multicast, for discovery beacons and best-effort data.
//! * [`sim`] (feature `mem`) is a deterministic simulated network for
//!   `mem://` addresses, driven by virtual time, with fault injection.
//! * [`Address`] is the one URI syntax: `tcp://127.0.0.1:7447`,
//!   `unix:///run/dndm.sock`, `udp://239.255.0.1:7446`, `mem://name`.
//!
//! # Contract
//!
//! * Frames arrive whole, in the order they were sent on that connection,
//!   each exactly once, until the connection closes; then
//!   [`Connection::try_recv`] returns [`RecvError::Closed`] with a typed
//!   [`CloseReason`] after every complete frame before the close was
//!   delivered.
//! * [`Connection::try_send`] takes a whole [`FrameBuffer`] (one batch, one
//!   write when the socket has room) all-or-nothing and never blocks: when
//!   the per-connection queue would exceed [`Config::max_queued_bytes`] it
//!   returns [`SendError::Full`] (backpressure), and memory stays bounded.
//! * Malformed input (bad frames, oversized frames, slow-loris trickling,
//!   idle half-open peers) closes only that connection with a typed reason
//!   and bumps a [`TransportStats`] counter; nothing panics. Frame and idle
//!   timeouts ([`Config::frame_timeout`], [`Config::idle_timeout`]) are
//!   enforced by the transport itself, whether or not the user is calling
//!   [`Connection::try_recv`]; frames not yet read when a timeout closes a
//!   connection are dropped, and the next call returns the reason.
//! * Received frames are handed out in place: payloads sit 16-byte aligned
//!   in the connection's receive buffer and are read without copying.
//!
//! # Readiness: one thread, many connections
//!
//! A driver that serves many connections (of any implementations) from one
//! thread gives each [`Connection`] and [`Listener`] a [`Waker`] with
//! `set_waker` and parks on a single wake-up source; it needs no thread
//! and no poller per connection. Once set, the waker is woken, from any
//! thread and possibly spuriously, whenever a call that found nothing may
//! now make progress:
//!
//! * frames arrived for [`Connection::try_recv`], or the connection closed
//!   or failed (so `try_recv` returns [`RecvError::Closed`]);
//! * queued bytes were written after [`SendError::Full`], that is
//!   [`Connection::queued_bytes`] fell;
//! * a connection is pending for [`Listener::try_accept`].
//!
//! No wake-up is lost: whatever becomes available after the last
//! `try_recv` / `try_accept` call began is followed by a wake. A call that
//! returned fewer than `max_frames` frames (or `Ok(None)`) either took
//! everything available or woke the waker itself for the rest. A call that
//! returned exactly `max_frames` may have left bytes unread and does not
//! wake: **keep calling `try_recv` while it returns `max_frames`**.
//! `set_waker(Some(..))` wakes the new waker once at once (an event that
//! fired before it was set is then seen by the next call); `None` stops
//! the wakes. Wakers are woken outside the transport's locks.
//!
//! The pattern: note the wake-up source's state, call `try_recv` on every
//! woken connection until it returns fewer than `max_frames`, then park
//! until a wake that came after the noted state.
//!
//! # Threading model (mio)
//!
//! Each [`MioTransport`] starts one I/O thread that owns a `mio::Poll`.
//! Sockets are non-blocking std sockets registered with it for
//! writability and readability (arrivals feed the timeout clocks; the I/O
//! thread never reads, and on a busy stream it stops listening for
//! readability between its 50 ms sweeps, or until the user empties the
//! socket when a waker is set, instead of waking per arrival). The fast paths run on the caller's thread: `try_send`
//! writes inline when nothing is queued (no hand-off, no wake-up), and
//! `try_recv` reads straight into the decoder's aligned buffer. Only bytes
//! the kernel could not take are queued; the I/O thread flushes them when
//! the socket becomes writable (coalesced: everything queued goes out in
//! one write), finishes graceful closes, enforces the linger time and, every
//! 50 ms, the frame and idle timeouts. The
//! user ↔ I/O thread hand-off is a sans-IO outbox (`src/handoff.rs`), checked
//! with loom. The I/O thread also wakes the wakers given to `set_waker`:
//! on every readable event of a connection, on the closes and timeouts it
//! enforces, when it wrote queued bytes, and on readable events of
//! listeners that have a waker (a listener is registered with the I/O
//! thread by its first `set_waker(Some(..))`). [`Connection::wait_readable`]
//! blocks the caller on a private per-connection poll, created on the first
//! wait, so a receiver wakes directly from the kernel; a connection served
//! only through its waker owns no poller and no extra descriptor.
//! The I/O thread stops and is joined when the transport and every
//! listener and connection made from it are dropped.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use dndm_codec::{FrameBuffer, FrameHeader};
//! use dndm_transport::{Address, Config, Connection, Listener, MioTransport, Transport};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let transport = MioTransport::new(Config::default())?;
//! let mut listener = transport.listen(&"tcp://127.0.0.1:0".parse()?)?;
//! let mut client = transport.connect(listener.local_addr())?;
//!
//! let mut server = loop {
//!     if let Some(conn) = listener.try_accept()? {
//!         break conn;
//!     }
//!     listener.wait_acceptable(Duration::from_millis(100));
//! };
//!
//! let mut batch = FrameBuffer::new();
//! batch.push_raw(&FrameHeader::data(1).with_seq(1), b"hello")?;
//! batch.push_raw(&FrameHeader::data(1).with_seq(2), b"world")?;
//! client.try_send(&batch)?; // one write for both frames
//!
//! let mut got = Vec::new();
//! for _ in 0..100 {
//!     server.try_recv(16, |frame| got.push(frame.payload().to_vec()))?;
//!     if got.len() == 2 {
//!         break;
//!     }
//!     server.wait_readable(Duration::from_millis(100));
//! }
//! assert_eq!(got, [b"hello".to_vec(), b"world".to_vec()]);
//! let _: Address = "mem://peer".parse()?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod address;
mod config;
mod error;
#[cfg(any(feature = "tcp", feature = "unix", feature = "mem"))]
mod frames;
// The hand-off is the transport's own business; only the loom models
// (`tests/loom.rs`, built with `--cfg dndm_loom`) reach it from outside.
#[cfg(dndm_loom)]
pub mod handoff;
#[cfg(not(dndm_loom))]
mod handoff;
#[cfg(any(feature = "tcp", feature = "unix"))]
mod net;
#[cfg(feature = "mem")]
pub mod sim;
#[cfg(feature = "udp")]
pub mod udp;
#[cfg(any(feature = "tcp", feature = "unix"))]
mod wake;

use std::task::Waker;
use std::time::Duration;

pub use address::{Address, AddressParseError};
pub use config::{Config, ConnectionStats, TransportStats};
use dndm_codec::{Frame, FrameBuffer};
pub use error::{AcceptError, CloseReason, ConnectError, ListenError, RecvError, SendError};
#[cfg(any(feature = "tcp", feature = "unix"))]
pub use net::{MioConnection, MioListener, MioTransport};

/// A way to reach peers: listen on an [`Address`], connect to one.
pub trait Transport {
    /// One connection.
    type Connection: Connection;
    /// A listening endpoint.
    type Listener: Listener<Connection = Self::Connection>;

    /// Listens on `addr`.
    ///
    /// # Errors
    ///
    /// [`ListenError`] naming the address.
    fn listen(&self, addr: &Address) -> Result<Self::Listener, ListenError>;

    /// Connects to `addr` (within [`Config::connect_timeout`] for real networks).
    ///
    /// # Errors
    ///
    /// [`ConnectError`] naming the address: refused, timed out, too many
    /// connections, I/O.
    fn connect(&self, addr: &Address) -> Result<Self::Connection, ConnectError>;

    /// Transport-wide counters.
    fn stats(&self) -> TransportStats;
}

/// A listening endpoint.
pub trait Listener {
    /// The connections it yields.
    type Connection: Connection;

    /// The address it listens on (with the real port when asked for port 0).
    fn local_addr(&self) -> &Address;

    /// Takes one pending incoming connection, `Ok(None)` if there is none.
    ///
    /// # Errors
    ///
    /// [`AcceptError`] for a failing listening socket.
    fn try_accept(&mut self) -> Result<Option<Self::Connection>, AcceptError>;

    /// Blocks until a connection may be pending or `timeout` passes (the
    /// simulated network, whose time is virtual, returns at once).
    fn wait_acceptable(&mut self, timeout: Duration);

    /// Sets (`Some`) or clears (`None`) the waker woken when a connection
    /// may be pending for [`try_accept`](Self::try_accept); a new waker is
    /// woken once at once. See the crate docs, "Readiness".
    fn set_waker(&mut self, waker: Option<Waker>);
}

/// One bidirectional frame connection.
pub trait Connection {
    /// The peer's address.
    fn peer_addr(&self) -> &Address;

    /// Sends every frame in `frames`, all or nothing, without blocking.
    ///
    /// # Errors
    ///
    /// [`SendError::Full`] when the queue limit would be exceeded (retry
    /// later), [`SendError::TooLarge`], [`SendError::Closed`].
    fn try_send(&self, frames: &FrameBuffer) -> Result<(), SendError>;

    /// Delivers up to `max_frames` received frames to `on_frame`, in order,
    /// without blocking; returns how many. Frames borrow the receive buffer
    /// (payloads are 16-byte aligned and read in place).
    ///
    /// # Errors
    ///
    /// [`RecvError::Closed`] once the connection is closed and every frame
    /// received before the close was delivered.
    fn try_recv<F: FnMut(Frame<'_>)>(
        &mut self,
        max_frames: usize,
        on_frame: F,
    ) -> Result<usize, RecvError>;

    /// Sets (`Some`) or clears (`None`) the waker woken when
    /// [`try_recv`](Self::try_recv) may deliver frames or the close, and
    /// when queued bytes were written (after [`SendError::Full`]); a new
    /// waker is woken once at once. Keep calling `try_recv` while it
    /// returns `max_frames`: that return does not promise a wake for bytes
    /// it left unread. See the crate docs, "Readiness".
    fn set_waker(&mut self, waker: Option<Waker>);

    /// Blocks until bytes may have arrived or `timeout` passes (returns at
    /// once on the simulated network, and whenever the last `try_recv` may
    /// have left bytes unread). Call it after `try_recv` returned fewer
    /// frames than wanted; a request/reply loop may call it first (wait,
    /// then receive), which saves a read that would find nothing.
    fn wait_readable(&mut self, timeout: Duration);

    /// Blocks until queued bytes may have drained or `timeout` passes
    /// (returns at once when nothing is queued, and on the simulated
    /// network). Use it after [`SendError::Full`].
    fn wait_writable(&mut self, timeout: Duration);

    /// Bytes queued for sending (backpressure signal).
    fn queued_bytes(&self) -> usize;

    /// This connection's counters.
    fn stats(&self) -> ConnectionStats;

    /// Closes gracefully: no more sends; queued bytes still reach the peer
    /// (within [`Config::linger`]); then the peer sees
    /// [`CloseReason::ClosedByPeer`]. Dropping a connection does the same.
    fn close(&mut self);

    /// Closes at once, dropping queued bytes.
    fn abort(&mut self);
}

/// Compiles and runs the README's Rust example as a doctest.
#[cfg(all(doctest, feature = "mem"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
