//! `dndm-core`: the in-process delivery engine of dndm.
//!
//! Bounded, lock-free channels built for the named-data model: many senders
//! may feed one receiver (several intents → one interest), one send may
//! reach many receivers (fan-out) without serialising and without copying
//! the payload, and each receiver chooses what happens when it falls behind.
//!
//! ```
//! use std::sync::Arc;
//! use std::thread;
//! use dndm_core::{Config, Policy, channel};
//!
//! // A control loop that must never wait, and a logger that keeps only the
//! // latest 16 samples.
//! let (tx, control) = channel::<Arc<[f32; 6]>>(Config::new(64))?;
//! let logger = tx.subscribe(Config::new(16).policy(Policy::DropOldest))?;
//!
//! let producer = thread::spawn(move || -> Result<(), dndm_core::SendError<_>> {
//!     for i in 0..1000 {
//!         tx.send(Arc::new([i as f32; 6]))?; // one allocation, shared by both
//!     }
//!     Ok(())
//! });
//! let mut n = 0;
//! for sample in &control {
//!     assert_eq!(sample[0], n as f32); // per-sender FIFO
//!     n += 1;
//! }
//! producer.join().expect("producer panicked")?;
//! assert_eq!(n, 1000);
//! assert!(logger.drain().count() <= 16);
//! assert_eq!(logger.stats().dropped + logger.stats().received, 1000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Model
//!
//! * [`Sender`] handles share a *source*: the set of receivers they fan out
//!   to. Each handle has its own single-producer lane into each receiver, so
//!   the hot path has no read-modify-write operation and no lock.
//! * A [`Receiver`] serves its lanes round-robin. Its [`Config`] sets the
//!   capacity of each lane and the [`Policy`] for a full lane: `Block` (with
//!   an optional timeout), `DropOldest` or `Reject`. [`Stats`] counts what was
//!   received, dropped and rejected, and both ends can read it.
//! * Senders and receivers can be linked after creation: [`Receiver::inlet`]
//!   gives a handle a linker can keep, [`Sender::attach`] and
//!   [`Sender::detach`] join and part them, and [`Sender::receiver_count`] /
//!   [`Sender::wait_receivers`] tell a publisher whether anyone listens.
//!
//! # Blocking and waking
//!
//! Blocked threads park; async callers use [`Receiver::recv_async`], a plain
//! `Future` that works with any executor (no runtime dependency). A waiter
//! spins briefly, then registers itself and sleeps. The hand-off between a
//! sender that publishes and a receiver that goes to sleep uses a fence pair
//! (see [`sync::light_fence`]) whose cost is a process-wide choice,
//! [`FenceMode`]: on Linux by default a `membarrier` system call on the
//! sleeping side so that the sending side pays only a compiler fence, or a
//! full fence on both sides. Set it once with [`set_fence_mode`].
//!
//! # Closing
//!
//! When every sender handle is gone (and no [`Inlet`] is alive) a receiver
//! drains what is queued and then reports [`RecvError`]. Dropping a receiver
//! detaches it from every sender at once, drops its queued messages and
//! releases senders blocked on it; [`Sender::receiver_count`] drops with it.
//! Sending with no receiver attached hands the message back in
//! [`SendError::Disconnected`].
#![warn(missing_docs)]

mod channel;
pub mod clock;
mod deadline;
mod error;
mod lane;
pub mod sync;
mod wait;

pub use channel::{
    Config, Drain, Inlet, Iter, MAX_CAPACITY, Policy, PollReceiver, Ready, Receiver, RecvFuture,
    Sender, Stats, WeakSender, bounded, channel,
};
pub use deadline::Deadline;
pub use error::{AttachError, ConfigError, RecvError, RecvTimeoutError, SendError, TryRecvError};
pub use sync::{FenceMode, fence_mode, set_fence_mode};
