//! Nodes across processes: listening, connecting, and the driver that joins
//! peer sessions to the node's linker.
//!
//! A peer's declarations become proxies in the node's linker (see
//! [`ports`]), so local publishers and subscribers link to remote ones by the
//! same rules as to local ones: route, type name and schema fingerprint.
//! Only routes a peer is interested in cross the wire.

mod conn;
mod driver;
mod ports;
mod rpc;
mod typed;

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use dndm_core::Deadline;
use dndm_core::sync::atomic::{AtomicBool, Ordering};
use dndm_router::Linker;
use dndm_router::Path;
use dndm_router::session::{Limits, NodeId, PathFilter};
use dndm_transport::{Address, Transport};
use parking_lot::{Condvar, Mutex};

use crate::error::{ConnectError, ListenError};
pub(crate) use conn::{DynConnection, DynListener};
use driver::{Command, Driver, DriverWake};
use ports::PeerShared;
pub(crate) use ports::{ErasedSubscriber, PeerInterest, PeerQueue};
pub(crate) use rpc::{
    Answer, CallFailure, Completion, ErasedServer, OutCall, RemoteReply, RemoteServer, ReplyCode,
    RequestSink, decode_archive, encode_archive, split_reply,
};
pub(crate) use typed::{TypedOutlet, TypedSink};

/// How many peer events a node keeps unread before dropping the oldest.
pub const PEER_EVENT_CAPACITY: usize = 1024;

/// A node's identity: 128 random bits, drawn when the node is built.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub(crate) NodeId);

impl PeerId {
    /// The 16 bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_bytes()
    }

    /// A fresh random id (from the operating system's hash seed and the clock).
    pub(crate) fn random() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut out = [0u8; 16];
        for (i, chunk) in out.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(dndm_core::clock::now_ns());
            h.write_u32(std::process::id());
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
        Self(NodeId::from_bytes(out))
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.0)
    }
}

/// Who a peer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerDetails {
    pub(crate) id: PeerId,
    pub(crate) name: String,
    pub(crate) address: String,
}

/// A connected peer and its traffic, see [`Node::peers`](crate::Node::peers).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerInfo {
    /// Its node id.
    pub id: PeerId,
    /// Its node name.
    pub name: String,
    /// The address of the connection (as this node sees it).
    pub address: String,
    /// The latest round-trip time measured by ping, once one was.
    pub rtt: Option<Duration>,
    /// The estimated offset of the peer's clock from ours, in nanoseconds
    /// (from ping timestamps; about zero for a peer on this host, whose
    /// clock is the same). Add it to a remote sample's `stamp_ns` to compare
    /// it with [`now_ns`](crate::now_ns) here.
    pub clock_offset_ns: Option<i64>,
    /// Bytes received from it (frames, headers included).
    pub bytes_in: u64,
    /// Bytes sent to it.
    pub bytes_out: u64,
    /// Samples received from it.
    pub messages_in: u64,
    /// Samples sent to it.
    pub messages_out: u64,
    /// Samples from it that local subscribers' policies refused or that were
    /// not valid archives of their type.
    pub dropped_in: u64,
    /// Messages for it that could not be encoded (larger than the
    /// negotiated frame limit).
    pub dropped_out: u64,
}

/// A peer connected or left, see [`Node::next_peer_event`](crate::Node::next_peer_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerEvent {
    /// What happened.
    pub kind: PeerEventKind,
    pub(crate) peer: PeerDetails,
}

impl PeerEvent {
    /// The peer's node id.
    pub fn id(&self) -> PeerId {
        self.peer.id
    }

    /// The peer's node name.
    pub fn name(&self) -> &str {
        &self.peer.name
    }

    /// The connection's address.
    pub fn address(&self) -> &str {
        &self.peer.address
    }
}

/// What happened to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerEventKind {
    /// The handshake completed.
    Connected,
    /// The session ended, with the reason (goodbye, error naming the peer,
    /// timeout, or this node closing).
    Disconnected {
        /// Why.
        reason: String,
    },
}

/// Networking settings of a node, set through [`NodeBuilder`](crate::NodeBuilder).
#[derive(Debug, Clone)]
pub(crate) struct NetConfig {
    pub(crate) limits: Limits,
    pub(crate) path: Option<Path>,
    pub(crate) export: PathFilter,
    pub(crate) import: PathFilter,
    pub(crate) peer_queue: PeerQueue,
    pub(crate) transport: dndm_transport::Config,
}

impl Default for NetConfig {
    fn default() -> Self {
        let mut transport = dndm_transport::Config::default();
        transport.max_queued_bytes = queue_room(&transport);
        let mut limits = Limits::default();
        limits.max_frame_len = u32::try_from(transport.max_frame_len).unwrap_or(u32::MAX);
        Self {
            limits,
            path: None,
            export: PathFilter::default(),
            import: PathFilter::default(),
            peer_queue: PeerQueue {
                capacity: 1024,
                policy: dndm_core::Policy::DropOldest,
                stall_timeout: Duration::from_secs(10),
            },
            transport,
        }
    }
}

/// The transport queue a peer connection needs: the driver writes batches
/// of up to [`driver::WRITE_BATCH`] bytes plus one frame of the largest size,
/// and a batch larger than the queue could never be written.
pub(crate) fn queue_room(config: &dndm_transport::Config) -> usize {
    config
        .max_queued_bytes
        .max(config.max_frame_len.saturating_add(driver::WRITE_BATCH))
}

/// What the node, its driver and the ports share.
pub(crate) struct NetShared {
    pub(crate) node_id: NodeId,
    pub(crate) name: String,
    pub(crate) config: NetConfig,
    pub(crate) wake: Arc<DriverWake>,
    pub(crate) commands: Mutex<Vec<Command>>,
    pub(crate) stop: AtomicBool,
    pub(crate) peers: Mutex<Vec<Arc<PeerShared>>>,
    events: Mutex<VecDeque<PeerEvent>>,
    events_changed: Condvar,
}

impl NetShared {
    pub(crate) fn push_event(&self, ev: PeerEvent) {
        let mut q = self.events.lock();
        if q.len() >= PEER_EVENT_CAPACITY {
            q.pop_front();
        }
        q.push_back(ev);
        drop(q);
        self.events_changed.notify_all();
    }
}

/// A node's networking: transports made on demand, and the driver thread,
/// started at the first `listen` or `connect`.
pub(crate) struct Net {
    shared: Arc<NetShared>,
    topics: Linker,
    services: Linker,
    driver: Mutex<Option<JoinHandle<()>>>,
    #[cfg(any(feature = "tcp", feature = "unix"))]
    mio: Mutex<Option<dndm_transport::MioTransport>>,
    #[cfg(feature = "mem")]
    sim: Mutex<Option<dndm_transport::sim::SimTransport>>,
}

impl Net {
    pub(crate) fn new(
        id: PeerId,
        name: &str,
        config: NetConfig,
        topics: Linker,
        services: Linker,
    ) -> Self {
        Self {
            shared: Arc::new(NetShared {
                node_id: id.0,
                name: name.to_owned(),
                config,
                wake: DriverWake::new(),
                commands: Mutex::new(Vec::new()),
                stop: AtomicBool::new(false),
                peers: Mutex::new(Vec::new()),
                events: Mutex::new(VecDeque::new()),
                events_changed: Condvar::new(),
            }),
            topics,
            services,
            driver: Mutex::new(None),
            #[cfg(any(feature = "tcp", feature = "unix"))]
            mio: Mutex::new(None),
            #[cfg(feature = "mem")]
            sim: Mutex::new(None),
        }
    }

    fn command(&self, c: Command) -> std::io::Result<()> {
        let mut driver = self.driver.lock();
        if driver.is_none() {
            let d = Driver::new(
                Arc::clone(&self.shared),
                self.topics.clone(),
                self.services.clone(),
            );
            let handle = std::thread::Builder::new()
                .name(format!("dndm-driver-{}", self.shared.name))
                .spawn(move || d.run())?;
            *driver = Some(handle);
        }
        self.shared.commands.lock().push(c);
        std::task::Wake::wake_by_ref(&self.shared.wake);
        Ok(())
    }

    /// Listens on `addr` with the transport its scheme names.
    pub(crate) fn listen(&self, addr: &Address) -> Result<Address, ListenError> {
        let fail = |source| ListenError::Transport {
            addr: addr.to_string(),
            source,
        };
        let listener: Box<dyn DynListener> = match addr {
            #[cfg(feature = "mem")]
            Address::Mem(_) => Box::new(self.sim().listen(addr).map_err(fail)?),
            #[cfg(any(feature = "tcp", feature = "unix"))]
            Address::Tcp(_) | Address::Unix(_) => Box::new(
                self.mio()
                    .map_err(|e| ListenError::Io {
                        addr: addr.to_string(),
                        source: e,
                    })?
                    .listen(addr)
                    .map_err(fail)?,
            ),
            _ => {
                return Err(ListenError::Unsupported {
                    addr: addr.to_string(),
                });
            }
        };
        self.add_listener(listener)
    }

    /// Listens through a transport the user supplies.
    pub(crate) fn listen_with<T>(
        &self,
        transport: &T,
        addr: &Address,
    ) -> Result<Address, ListenError>
    where
        T: Transport,
        T::Listener: Send + 'static,
        T::Connection: Send + 'static,
    {
        let l = transport
            .listen(addr)
            .map_err(|source| ListenError::Transport {
                addr: addr.to_string(),
                source,
            })?;
        self.add_listener(Box::new(l))
    }

    fn add_listener(&self, l: Box<dyn DynListener>) -> Result<Address, ListenError> {
        let local = l.local_addr().clone();
        self.command(Command::Listen(l))
            .map_err(|source| ListenError::Io {
                addr: local.to_string(),
                source,
            })?;
        Ok(local)
    }

    /// Connects to `addr` with the transport its scheme names.
    pub(crate) fn connect(&self, addr: &Address) -> Result<(), ConnectError> {
        let fail = |source| ConnectError::Transport {
            addr: addr.to_string(),
            source,
        };
        let conn: Box<dyn DynConnection> = match addr {
            #[cfg(feature = "mem")]
            Address::Mem(_) => Box::new(self.sim().connect(addr).map_err(fail)?),
            #[cfg(any(feature = "tcp", feature = "unix"))]
            Address::Tcp(_) | Address::Unix(_) => Box::new(
                self.mio()
                    .map_err(|e| ConnectError::Io {
                        addr: addr.to_string(),
                        source: e,
                    })?
                    .connect(addr)
                    .map_err(fail)?,
            ),
            _ => {
                return Err(ConnectError::Unsupported {
                    addr: addr.to_string(),
                });
            }
        };
        self.command(Command::Connect(conn))
            .map_err(|source| ConnectError::Io {
                addr: addr.to_string(),
                source,
            })
    }

    /// Connects through a transport the user supplies.
    pub(crate) fn connect_with<T>(&self, transport: &T, addr: &Address) -> Result<(), ConnectError>
    where
        T: Transport,
        T::Connection: Send + 'static,
    {
        let c = transport
            .connect(addr)
            .map_err(|source| ConnectError::Transport {
                addr: addr.to_string(),
                source,
            })?;
        self.command(Command::Connect(Box::new(c)))
            .map_err(|source| ConnectError::Io {
                addr: addr.to_string(),
                source,
            })
    }

    #[cfg(any(feature = "tcp", feature = "unix"))]
    fn mio(&self) -> std::io::Result<dndm_transport::MioTransport> {
        let mut mio = self.mio.lock();
        if let Some(t) = &*mio {
            return Ok(t.clone());
        }
        let t = dndm_transport::MioTransport::new(self.shared.config.transport.clone())?;
        *mio = Some(t.clone());
        Ok(t)
    }

    #[cfg(feature = "mem")]
    fn sim(&self) -> dndm_transport::sim::SimTransport {
        let mut sim = self.sim.lock();
        sim.get_or_insert_with(|| {
            let host = format!("{}-{}", self.shared.name, self.shared.node_id);
            mem_network().host(&host, self.shared.config.transport.clone())
        })
        .clone()
    }

    /// Connected peers.
    pub(crate) fn peers(&self) -> Vec<PeerInfo> {
        let peers = self.shared.peers.lock();
        peers
            .iter()
            .filter_map(|p| {
                let details = p.info.lock().clone()?;
                let c = &p.counters;
                let rtt = c.rtt_ns.load(Ordering::Relaxed);
                Some(PeerInfo {
                    id: details.id,
                    name: details.name,
                    address: details.address,
                    rtt: (rtt > 0).then(|| Duration::from_nanos(rtt)),
                    clock_offset_ns: *p.clock_offset.lock(),
                    bytes_in: c.bytes_in.load(Ordering::Relaxed),
                    bytes_out: c.bytes_out.load(Ordering::Relaxed),
                    messages_in: c.msgs_in.load(Ordering::Relaxed),
                    messages_out: c.msgs_out.load(Ordering::Relaxed),
                    dropped_in: c.dropped_in.load(Ordering::Relaxed)
                        + c.invalid_in.load(Ordering::Relaxed),
                    dropped_out: c.dropped_out.load(Ordering::Relaxed),
                })
            })
            .collect()
    }

    /// Waits at most `timeout` for the next peer event.
    pub(crate) fn next_event(&self, timeout: Option<Duration>) -> Option<PeerEvent> {
        let deadline = Deadline::from_timeout(timeout);
        let mut q = self.shared.events.lock();
        loop {
            if let Some(e) = q.pop_front() {
                return Some(e);
            }
            match deadline.remaining() {
                None => self.shared.events_changed.wait(&mut q),
                Some(left) if left.is_zero() => return None,
                Some(left) => {
                    self.shared.events_changed.wait_for(&mut q, left);
                }
            }
        }
    }

    /// Waits at most `timeout` until `done(connected peers)` holds.
    pub(crate) fn wait_peers(
        &self,
        mut done: impl FnMut(usize) -> bool,
        timeout: Option<Duration>,
    ) -> bool {
        let deadline = Deadline::from_timeout(timeout);
        loop {
            if done(self.peers().len()) {
                return true;
            }
            match deadline.remaining() {
                Some(left) if left.is_zero() => return false,
                // Peers change on the driver thread: look again soon.
                Some(left) => std::thread::sleep(left.min(Duration::from_millis(2))),
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    }
}

impl Net {
    /// Says goodbye to every peer, stops and joins the driver thread.
    /// Idempotent.
    pub(crate) fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Release);
        std::task::Wake::wake_by_ref(&self.shared.wake);
        if let Some(handle) = self.driver.lock().take() {
            // The driver never panics on peer input; a panic would be a
            // bug, reported by the thread itself.
            let _ = handle.join();
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The process's simulated network for `mem://` addresses: no latency, no
/// faults, so nodes of one process reach each other through the full wire
/// path (codec, session, driver) at once.
#[cfg(feature = "mem")]
fn mem_network() -> &'static dndm_transport::sim::SimNet {
    static NET: OnceLock<dndm_transport::sim::SimNet> = OnceLock::new();
    NET.get_or_init(|| dndm_transport::sim::SimNet::new(0, dndm_transport::sim::Faults::default()))
}
