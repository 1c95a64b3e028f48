//! mio TCP and Unix domain socket transport.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use dndm_codec::{Frame, FrameBuffer, StreamDecoder};
use dndm_core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use dndm_core::sync::{Arc, Mutex};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use crate::config::{Counters, enforced};
use crate::handoff::{Flushed, Handoff, Rejected};
use crate::wake::WakerSlot;
use crate::{
    AcceptError, Address, CloseReason, Config, ConnectError, Connection, ConnectionStats,
    ListenError, Listener, RecvError, SendError, Transport, TransportStats,
};

const WAKE: Token = Token(usize::MAX);
/// How often the I/O thread checks timeouts and linger deadlines.
const TICK: Duration = Duration::from_millis(50);
/// "No timestamp" in the nanosecond clocks of [`ConnShared`].
const NEVER: u64 = u64::MAX;
/// Connect timeouts at least this long are left to the operating system,
/// which gives up sooner anyway.
#[cfg(feature = "tcp")]
const OS_CONNECT_TIMEOUT: Duration = Duration::from_secs(3600);
/// Reads per `try_recv` call before returning, for fairness between connections.
const MAX_READS_PER_CALL: usize = 16;
/// Accepts per `try_accept` call while dropping connections over the limit.
const MAX_REJECTS_PER_CALL: usize = 64;

fn lock<T>(m: &Mutex<T>) -> dndm_core::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connected socket.
#[derive(Debug)]
enum Sock {
    #[cfg(feature = "tcp")]
    Tcp(std::net::TcpStream),
    #[cfg(feature = "unix")]
    Unix(std::os::unix::net::UnixStream),
}

impl Sock {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            #[cfg(feature = "tcp")]
            Self::Tcp(s) => (&*s).read(buf),
            #[cfg(feature = "unix")]
            Self::Unix(s) => (&*s).read(buf),
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            #[cfg(feature = "tcp")]
            Self::Tcp(s) => (&*s).write(buf),
            #[cfg(feature = "unix")]
            Self::Unix(s) => (&*s).write(buf),
        }
    }

    fn shutdown(&self, how: Shutdown) {
        // Errors here mean the socket is already gone, which is the goal.
        let _ = match self {
            #[cfg(feature = "tcp")]
            Self::Tcp(s) => s.shutdown(how),
            #[cfg(feature = "unix")]
            Self::Unix(s) => s.shutdown(how),
        };
    }

    fn fd(&self) -> RawFd {
        match self {
            #[cfg(feature = "tcp")]
            Self::Tcp(s) => s.as_raw_fd(),
            #[cfg(feature = "unix")]
            Self::Unix(s) => s.as_raw_fd(),
        }
    }

    /// Whether the kernel holds bytes nobody has read yet (a peek of one
    /// byte; an error other than "would block" counts as unread, so that the
    /// user's next read meets it).
    fn has_unread(&self) -> bool {
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
        let peeked = match self {
            #[cfg(feature = "tcp")]
            Self::Tcp(s) => socket2::SockRef::from(s).peek(&mut byte),
            #[cfg(feature = "unix")]
            Self::Unix(s) => socket2::SockRef::from(s).peek(&mut byte),
        };
        match peeked {
            Ok(n) => n > 0,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        }
    }
}

/// Turns TCP keepalive on for `s` when configured (see [`Config::keepalive`]).
#[cfg(feature = "tcp")]
fn set_keepalive(s: &std::net::TcpStream, keepalive: Option<Duration>) -> io::Result<()> {
    let Some(idle) = keepalive.filter(|d| !d.is_zero()) else {
        return Ok(());
    };
    // The kernel counts in whole seconds (and caps them); at least 1 s.
    let idle = Duration::from_secs(idle.as_secs().clamp(1, 32_767));
    let interval = (idle / 3).max(Duration::from_secs(1));
    socket2::SockRef::from(s).set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(interval),
    )
}

/// When a closing connection's queued bytes are dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Linger {
    /// The connection is not closing.
    Open,
    /// Closing without a deadline (`linger` too long to add to a clock).
    Never,
    /// Closing; dropped at this instant.
    Until(Instant),
}

/// What the I/O thread and the user handle share per connection.
///
/// The user's thread reads the socket (into its decoder); the I/O thread
/// watches it: it is registered for readability too, so every arrival
/// updates `last_rx` and starts the frame clock when none runs, and a
/// periodic sweep closes connections whose frame or idle timeout expired,
/// whether or not the user calls `try_recv`. Clocks are nanoseconds since
/// the driver's epoch ([`NEVER`] = none), so no deadline is ever computed
/// by adding a configured duration to an instant.
#[derive(Debug)]
struct ConnShared {
    sock: Sock,
    peer: Address,
    handoff: Handoff,
    linger: Mutex<Linger>,
    counters: Arc<Counters>,
    /// Dialled by this transport (counted against the outbound limit).
    outbound: bool,
    /// When bytes last arrived (an I/O thread readable event or a read).
    last_rx: AtomicU64,
    /// When the first byte of the current incomplete frame arrived.
    frame_start: AtomicU64,
    /// Readable events seen by the I/O thread (to catch one that races
    /// with the user clearing `frame_start`).
    edges: AtomicU64,
    /// The user's decoder held bytes after its last `try_recv`.
    partial: AtomicBool,
    /// The I/O thread closed the connection; the reason is in `handoff`.
    io_closed: AtomicBool,
    /// The user's waker: woken on arrivals, closes and freed queue room.
    waker: WakerSlot,
    /// Whether the I/O thread listens for arrivals (see [`Watch`]).
    watch: Mutex<Watch>,
}

/// The I/O thread's interest in a connection's arrivals.
///
/// Registered for readability, the I/O thread wakes for every arrival: on
/// a busy stream that is a thread switch per write of the peer, on the
/// cores the sender and the receiver need. So it listens only until it
/// has seen one:
///
/// * Without a waker, the first readable event notes the arrival (frame
///   clock, idle clock) and the I/O thread stops listening (one
///   `epoll_ctl`); the user's reads keep both clocks meanwhile, and the
///   periodic sweep listens again (every [`TICK`]; `epoll_ctl` reports at
///   once bytes that wait), so bytes left unread still count as arriving,
///   at most one tick late, which is the sweep's granularity anyway.
/// * With a waker, every arrival after the user's last `try_recv` must
///   wake it: the I/O thread stops only on a second arrival with no drain
///   by the user in between while bytes still wait in the socket, decides
///   that before it wakes the waker, and the user's next read that empties
///   the socket listens again (bytes that came meanwhile are reported at
///   once). The user reads on until the socket is empty, or wakes itself
///   when it stops early, so no wake-up is lost.
#[derive(Debug)]
struct Watch {
    /// Registered for readability.
    readable: bool,
    /// Readable events since the user last emptied the socket.
    arrivals: u32,
}

impl Drop for ConnShared {
    fn drop(&mut self) {
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
        if self.outbound {
            self.counters.open_outbound.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// State shared by the I/O thread and every handle of one transport.
#[derive(Debug)]
struct Driver {
    registry: Registry,
    waker: Waker,
    conns: Mutex<HashMap<usize, Arc<ConnShared>>>,
    /// Listeners with a waker, registered for readability by token.
    listeners: Mutex<HashMap<usize, Arc<ListenSlot>>>,
    next_token: AtomicUsize,
    shutdown: AtomicBool,
    counters: Arc<Counters>,
    config: Config,
    /// The zero of the per-connection nanosecond clocks.
    epoch: Instant,
}

impl Driver {
    /// `t` in nanoseconds since the epoch (saturating; never [`NEVER`]).
    fn stamp(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(NEVER - 1)
            .min(NEVER - 1)
    }

    /// Bytes (or the end of the stream) arrived: runs on the I/O thread.
    fn note_arrival(&self, conn: &ConnShared, now: u64) {
        conn.last_rx.store(now, Ordering::SeqCst);
        conn.edges.fetch_add(1, Ordering::SeqCst);
        // The first byte of a frame starts its clock; later bytes do not.
        let _ = conn
            .frame_start
            .compare_exchange(NEVER, now, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// After a readable event: stops listening for `conn`'s arrivals when
    /// a stream is flowing (see [`Watch`]). Runs on the I/O thread.
    fn quiet_arrivals(&self, id: usize, conn: &ConnShared) {
        let mut watch = lock(&conn.watch);
        watch.arrivals = watch.arrivals.saturating_add(1);
        if watch.readable
            && (!conn.waker.is_set() || (watch.arrivals >= 2 && conn.sock.has_unread()))
            && self
                .registry
                .reregister(
                    &mut SourceFd(&conn.sock.fd()),
                    Token(id),
                    Interest::WRITABLE,
                )
                .is_ok()
        {
            watch.readable = false;
        }
    }

    /// The user emptied `conn`'s socket: listens for arrivals again if the
    /// I/O thread stopped and a waker is set (see [`Watch`]).
    fn drained(&self, id: usize, conn: &ConnShared) {
        let mut watch = lock(&conn.watch);
        watch.arrivals = 0;
        if conn.waker.is_set() {
            self.listen_again(id, conn, &mut watch);
        }
    }

    /// Registers `conn` for readability again if the I/O thread stopped.
    fn listen_again(&self, id: usize, conn: &ConnShared, watch: &mut Watch) {
        if !watch.readable
            && self
                .registry
                .reregister(
                    &mut SourceFd(&conn.sock.fd()),
                    Token(id),
                    Interest::WRITABLE | Interest::READABLE,
                )
                .is_ok()
        {
            watch.readable = true;
        }
    }

    /// Which timeout, if any, has expired for `conn`.
    fn expired(&self, conn: &ConnShared, now: u64) -> Option<&'static str> {
        if let Some(limit) = enforced(self.config.frame_timeout) {
            let start = conn.frame_start.load(Ordering::SeqCst);
            if start != NEVER && now.saturating_sub(start) > limit {
                if conn.partial.load(Ordering::SeqCst) || conn.sock.has_unread() {
                    return Some("partial frame");
                }
                // The clock outlived its bytes (the user read them while an
                // arrival raced with its reset): nothing is pending.
                let _ = conn.frame_start.compare_exchange(
                    start,
                    NEVER,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
            }
        }
        if let Some(limit) = enforced(self.config.idle_timeout) {
            let last = conn.last_rx.load(Ordering::SeqCst);
            if now.saturating_sub(last) > limit {
                return Some("idle");
            }
        }
        None
    }

    /// Closes an open connection for a timeout: the peer's socket is shut
    /// down, the user's next call returns the reason. Runs on the I/O thread.
    fn time_out(&self, id: usize, conn: &ConnShared, what: &'static str) {
        let reason = CloseReason::TimedOut { what };
        let closed = conn.handoff.with(|ob| {
            if ob.closed().is_some() || ob.is_closing() {
                return false;
            }
            ob.fail(reason.clone());
            true
        });
        if closed {
            self.counters.count_close(&reason);
            conn.io_closed.store(true, Ordering::Release);
            conn.sock.shutdown(Shutdown::Both);
            lock(&self.conns).remove(&id);
            conn.waker.wake();
        }
    }

    /// Flushes, finishes closes, enforces linger. Runs on the I/O thread.
    /// Wakes the user's waker when bytes left the queue or the connection
    /// ended here.
    fn service(&self, id: usize, conn: &ConnShared, now: Instant) {
        conn.handoff.take_attention();
        let mut progressed = false;
        let remove = conn.handoff.with(|ob| {
            if ob.closed().is_some() {
                return true;
            }
            let before = (ob.written(), ob.queued());
            let flushed = ob.flush(|b| conn.sock.write(b));
            progressed = ob.written() != before.0 && before.1 > 0;
            if progressed {
                ob.take_room_wanted();
            }
            match flushed {
                Flushed::Drained if ob.is_closing() => {
                    conn.sock.shutdown(Shutdown::Write);
                    ob.fail(CloseReason::Local);
                    true
                }
                Flushed::Drained => false,
                Flushed::Blocked if ob.is_closing() => {
                    let late = match *lock(&conn.linger) {
                        Linger::Until(d) => now >= d,
                        Linger::Open | Linger::Never => false,
                    };
                    if late {
                        let reason = CloseReason::TimedOut { what: "linger" };
                        self.counters.count_close(&reason);
                        ob.fail(reason);
                        conn.sock.shutdown(Shutdown::Both);
                    }
                    late
                }
                Flushed::Blocked => false,
                Flushed::Failed(_) => true,
            }
        });
        if remove {
            lock(&self.conns).remove(&id);
        }
        if progressed || remove {
            conn.waker.wake();
        }
    }

    fn run(&self, mut poll: Poll) {
        let mut events = Events::with_capacity(256);
        let mut last_sweep = Instant::now();
        let mut shutdown_at: Option<Instant> = None;
        // After shutdown, keep flushing gracefully closed connections until
        // they drain or their linger time runs out (every remaining entry
        // has a deadline: no user handle is left).
        while !(self.shutdown.load(Ordering::Acquire) && lock(&self.conns).is_empty()) {
            if let Err(e) = poll.poll(&mut events, Some(TICK))
                && e.kind() != io::ErrorKind::Interrupted
            {
                break;
            }
            let now = Instant::now();
            if self.shutdown.load(Ordering::Acquire) {
                // A hard cap in case an entry somehow has no deadline
                // (none when `linger` is too long to count: then lingering
                // connections end when drained or failed).
                let started = *shutdown_at.get_or_insert(now);
                if let Some(cap) = self.config.linger.checked_add(TICK)
                    && now.duration_since(started) > cap
                {
                    break;
                }
            }
            let now_ns = self.stamp(now);
            for event in events.iter() {
                let id = event.token().0;
                if event.token() == WAKE {
                    continue;
                }
                let conn = lock(&self.conns).get(&id).cloned();
                if let Some(conn) = conn {
                    if event.is_readable() || event.is_read_closed() {
                        self.note_arrival(&conn, now_ns);
                        if !event.is_read_closed() {
                            self.quiet_arrivals(id, &conn);
                        }
                        conn.waker.wake();
                    }
                    if event.is_writable() || event.is_write_closed() || event.is_error() {
                        self.service(id, &conn, now);
                    }
                    if event.is_error() {
                        conn.waker.wake();
                    }
                } else {
                    let listener = lock(&self.listeners).get(&id).cloned();
                    if let Some(l) = listener {
                        l.arrived.store(true, Ordering::SeqCst);
                        l.slot.wake();
                    }
                }
            }
            // Connections that asked for attention, and a periodic sweep for
            // linger deadlines (a peer that never reads sends no events).
            let sweep = now.duration_since(last_sweep) >= TICK;
            if sweep {
                last_sweep = now;
            }
            let todo: Vec<(usize, Arc<ConnShared>)> = lock(&self.conns)
                .iter()
                .filter(|(_, c)| sweep || c.handoff.take_attention())
                .map(|(id, c)| (*id, Arc::clone(c)))
                .collect();
            for (id, conn) in todo {
                // Waker-served connections listen again when the user
                // empties the socket (see `Watch`).
                if sweep && !conn.waker.is_set() {
                    self.listen_again(id, &conn, &mut lock(&conn.watch));
                }
                self.service(id, &conn, now);
                if sweep && let Some(what) = self.expired(&conn, now_ns) {
                    self.time_out(id, &conn, what);
                }
            }
        }
        lock(&self.conns).clear();
        lock(&self.listeners).clear();
    }

    fn register(
        &self,
        sock: Sock,
        peer: Address,
        outbound: bool,
    ) -> io::Result<(usize, Arc<ConnShared>)> {
        let id = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.counters.open.fetch_add(1, Ordering::Relaxed);
        if outbound {
            self.counters.open_outbound.fetch_add(1, Ordering::Relaxed);
        }
        let shared = Arc::new(ConnShared {
            sock,
            peer,
            handoff: Handoff::new(self.config.max_queued_bytes),
            linger: Mutex::new(Linger::Open),
            counters: Arc::clone(&self.counters),
            outbound,
            last_rx: AtomicU64::new(self.stamp(Instant::now())),
            frame_start: AtomicU64::new(NEVER),
            edges: AtomicU64::new(0),
            partial: AtomicBool::new(false),
            io_closed: AtomicBool::new(false),
            waker: WakerSlot::default(),
            watch: Mutex::new(Watch {
                readable: true,
                arrivals: 0,
            }),
        });
        lock(&self.conns).insert(id, Arc::clone(&shared));
        let fd = shared.sock.fd();
        if let Err(e) = self.registry.register(
            &mut SourceFd(&fd),
            Token(id),
            Interest::WRITABLE | Interest::READABLE,
        ) {
            lock(&self.conns).remove(&id);
            return Err(e);
        }
        Ok((id, shared))
    }
}

/// Owns the I/O thread; dropped when the last transport, listener or
/// connection handle goes, which stops and joins the thread.
#[derive(Debug)]
struct DriverHandle {
    driver: Arc<Driver>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for DriverHandle {
    fn drop(&mut self) {
        self.driver.shutdown.store(true, Ordering::Release);
        let _ = self.driver.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// TCP (`tcp://`) and Unix domain socket (`unix://`) transport on one mio
/// I/O thread. Cloning shares the thread.
#[derive(Clone, Debug)]
pub struct MioTransport {
    handle: Arc<DriverHandle>,
}

impl MioTransport {
    /// Starts the I/O thread.
    ///
    /// # Errors
    ///
    /// The OS error if the poller or the thread cannot be created.
    pub fn new(config: Config) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        let registry = poll.registry().try_clone()?;
        let driver = Arc::new(Driver {
            registry,
            waker,
            conns: Mutex::new(HashMap::new()),
            listeners: Mutex::new(HashMap::new()),
            next_token: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            counters: Arc::new(Counters::default()),
            config,
            epoch: Instant::now(),
        });
        let d = Arc::clone(&driver);
        let thread = std::thread::Builder::new()
            .name("dndm-io".into())
            .spawn(move || d.run(poll))?;
        Ok(Self {
            handle: Arc::new(DriverHandle {
                driver,
                thread: Some(thread),
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.handle.driver.config
    }

    fn open_counts(&self) -> (usize, usize) {
        let c = &self.handle.driver.counters;
        let open = c.open.load(Ordering::Relaxed);
        let outbound = c.open_outbound.load(Ordering::Relaxed).min(open);
        (open - outbound, outbound)
    }

    fn inbound_full(&self) -> bool {
        self.open_counts().0 >= self.config().max_inbound_connections
    }

    fn outbound_full(&self) -> bool {
        self.open_counts().1 >= self.config().max_outbound_connections
    }

    fn wrap(&self, sock: Sock, peer: Address, outbound: bool) -> io::Result<MioConnection> {
        let (id, shared) = self.handle.driver.register(sock, peer, outbound)?;
        Ok(MioConnection::new(id, shared, Arc::clone(&self.handle)))
    }
}

impl Transport for MioTransport {
    type Connection = MioConnection;
    type Listener = MioListener;

    fn listen(&self, addr: &Address) -> Result<MioListener, ListenError> {
        let io_err = |source: io::Error| {
            if source.kind() == io::ErrorKind::AddrInUse {
                ListenError::InUse { addr: addr.clone() }
            } else {
                ListenError::Io {
                    addr: addr.clone(),
                    source,
                }
            }
        };
        let (sock, local) = match addr {
            #[cfg(feature = "tcp")]
            Address::Tcp(sa) => {
                let l = std::net::TcpListener::bind(sa).map_err(io_err)?;
                l.set_nonblocking(true).map_err(io_err)?;
                let local = Address::Tcp(l.local_addr().map_err(io_err)?);
                (ListenSock::Tcp(l), local)
            }
            #[cfg(feature = "unix")]
            Address::Unix(path) => {
                let l = std::os::unix::net::UnixListener::bind(path).map_err(io_err)?;
                l.set_nonblocking(true).map_err(io_err)?;
                (ListenSock::Unix(l, path.clone()), addr.clone())
            }
            _ => return Err(ListenError::Unsupported { addr: addr.clone() }),
        };
        Ok(MioListener {
            sock,
            local,
            transport: self.clone(),
            poll: None,
            wake: None,
        })
    }

    fn connect(&self, addr: &Address) -> Result<MioConnection, ConnectError> {
        if self.outbound_full() {
            return Err(ConnectError::TooManyConnections {
                addr: addr.clone(),
                limit: self.config().max_outbound_connections,
            });
        }
        let map = |source: io::Error| match source.kind() {
            io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => {
                ConnectError::Refused { addr: addr.clone() }
            }
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                ConnectError::TimedOut { addr: addr.clone() }
            }
            _ => ConnectError::Io {
                addr: addr.clone(),
                source,
            },
        };
        let sock = match addr {
            #[cfg(feature = "tcp")]
            Address::Tcp(sa) => {
                let timeout = self.config().connect_timeout;
                let s = if timeout.is_zero() || timeout >= OS_CONNECT_TIMEOUT {
                    std::net::TcpStream::connect(sa)
                } else {
                    std::net::TcpStream::connect_timeout(sa, timeout)
                }
                .map_err(map)?;
                s.set_nodelay(true).map_err(map)?;
                set_keepalive(&s, self.config().keepalive).map_err(map)?;
                s.set_nonblocking(true).map_err(map)?;
                Sock::Tcp(s)
            }
            #[cfg(feature = "unix")]
            Address::Unix(path) => {
                let s = std::os::unix::net::UnixStream::connect(path).map_err(map)?;
                s.set_nonblocking(true).map_err(map)?;
                Sock::Unix(s)
            }
            _ => return Err(ConnectError::Unsupported { addr: addr.clone() }),
        };
        self.wrap(sock, addr.clone(), true).map_err(map)
    }

    fn stats(&self) -> TransportStats {
        self.handle.driver.counters.snapshot()
    }
}

#[derive(Debug)]
enum ListenSock {
    #[cfg(feature = "tcp")]
    Tcp(std::net::TcpListener),
    #[cfg(feature = "unix")]
    Unix(std::os::unix::net::UnixListener, std::path::PathBuf),
}

/// A listening TCP or Unix socket. A Unix listener removes its socket file
/// when dropped.
#[derive(Debug)]
pub struct MioListener {
    sock: ListenSock,
    local: Address,
    transport: MioTransport,
    /// Created on the first `wait_acceptable`.
    poll: Option<Poll>,
    /// Set by the first `set_waker(Some(..))`.
    wake: Option<ListenWake>,
}

/// A listener's waker and its registration with the I/O thread.
#[derive(Debug)]
struct ListenWake {
    token: usize,
    slot: Arc<ListenSlot>,
    /// Registered with the I/O thread (which wakes `slot` on readiness).
    watched: bool,
}

/// What a watched listener shares with the I/O thread.
///
/// `arrived` spares an event loop that calls `try_accept` every turn one
/// failing `accept` syscall per turn (which costs a file allocation in the
/// kernel): the I/O thread sets it on every readiness edge before it wakes
/// the slot, and `try_accept` clears it *before* it calls `accept`, so an
/// arrival after the clear raises a new edge and sets it again. After a
/// successful accept it is set again, since more connections may be queued
/// with no new edge to announce them.
#[derive(Debug)]
struct ListenSlot {
    arrived: AtomicBool,
    slot: WakerSlot,
}

impl Drop for MioListener {
    #[allow(
        irrefutable_let_patterns,
        reason = "with only the `unix` feature every listener is a Unix one"
    )]
    fn drop(&mut self) {
        if let Some(w) = self.wake.take().filter(|w| w.watched) {
            let driver = &self.transport.handle.driver;
            let _ = driver.registry.deregister(&mut SourceFd(&self.fd()));
            lock(&driver.listeners).remove(&w.token);
        }
        #[cfg(feature = "unix")]
        if let ListenSock::Unix(_, path) = &self.sock {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl MioListener {
    fn accept_one(&self) -> io::Result<(Sock, Address)> {
        match &self.sock {
            #[cfg(feature = "tcp")]
            ListenSock::Tcp(l) => {
                let (s, peer) = l.accept()?;
                s.set_nodelay(true)?;
                set_keepalive(&s, self.transport.config().keepalive)?;
                s.set_nonblocking(true)?;
                Ok((Sock::Tcp(s), Address::Tcp(peer)))
            }
            #[cfg(feature = "unix")]
            ListenSock::Unix(l, path) => {
                let (s, _) = l.accept()?;
                s.set_nonblocking(true)?;
                Ok((Sock::Unix(s), Address::Unix(path.clone())))
            }
        }
    }

    fn fd(&self) -> RawFd {
        match &self.sock {
            #[cfg(feature = "tcp")]
            ListenSock::Tcp(l) => l.as_raw_fd(),
            #[cfg(feature = "unix")]
            ListenSock::Unix(l, _) => l.as_raw_fd(),
        }
    }
}

impl Listener for MioListener {
    type Connection = MioConnection;

    fn local_addr(&self) -> &Address {
        &self.local
    }

    fn try_accept(&mut self) -> Result<Option<MioConnection>, AcceptError> {
        let err = |source| AcceptError::Io {
            addr: self.local.clone(),
            source,
        };
        let watched = self.wake.as_ref().filter(|w| w.watched).map(|w| &w.slot);
        if let Some(l) = watched
            && !l.arrived.swap(false, Ordering::SeqCst)
        {
            // No readiness edge since `accept` last said `WouldBlock`.
            return Ok(None);
        }
        // Whatever happens below except `WouldBlock`, come back: more may
        // be queued with no new edge to announce them.
        let again = || {
            if let Some(l) = watched {
                l.arrived.store(true, Ordering::SeqCst);
            }
        };
        for _ in 0..MAX_REJECTS_PER_CALL {
            let (sock, peer) = match self.accept_one() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(w) = self.wake.as_ref().filter(|w| !w.watched) {
                        w.slot.slot.wake();
                    }
                    return Ok(None);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue;
                }
                Err(e) => {
                    again();
                    return Err(err(e));
                }
            };
            again();
            let counters = &self.transport.handle.driver.counters;
            if self.transport.inbound_full() {
                counters.rejected.fetch_add(1, Ordering::Relaxed);
                sock.shutdown(Shutdown::Both);
                continue;
            }
            counters.accepted.fetch_add(1, Ordering::Relaxed);
            return self
                .transport
                .wrap(sock, peer, false)
                .map(Some)
                .map_err(err);
        }
        // Connections may still be pending and no new edge will announce
        // them: the caller is told to come back.
        if let Some(w) = &self.wake {
            w.slot.slot.wake();
        }
        Ok(None)
    }

    fn wait_acceptable(&mut self, timeout: Duration) {
        let fd = self.fd();
        wait_fd(&mut self.poll, fd, timeout);
    }

    fn set_waker(&mut self, waker: Option<std::task::Waker>) {
        if self.wake.is_none() {
            if waker.is_none() {
                return;
            }
            let driver = &self.transport.handle.driver;
            let token = driver.next_token.fetch_add(1, Ordering::Relaxed);
            // Connections may have queued before the registration.
            let slot = Arc::new(ListenSlot {
                arrived: AtomicBool::new(true),
                slot: WakerSlot::default(),
            });
            lock(&driver.listeners).insert(token, Arc::clone(&slot));
            let watched = driver
                .registry
                .register(&mut SourceFd(&self.fd()), Token(token), Interest::READABLE)
                .is_ok();
            if !watched {
                // Unwatched, the slot would never be woken: every empty
                // `try_accept` wakes it instead (a spin, never a hang).
                lock(&driver.listeners).remove(&token);
            }
            self.wake = Some(ListenWake {
                token,
                slot,
                watched,
            });
        }
        if let Some(w) = &self.wake {
            w.slot.slot.set(waker);
        }
    }
}

/// Blocks on a private poll for readability of `fd` (edge-triggered: the
/// caller has drained the socket to `WouldBlock` first).
fn wait_fd(poll: &mut Option<Poll>, fd: RawFd, timeout: Duration) {
    wait_fd_for(poll, fd, timeout, Interest::READABLE);
}

fn wait_fd_for(poll: &mut Option<Poll>, fd: RawFd, timeout: Duration, interest: Interest) {
    if poll.is_none() {
        let Ok(p) = Poll::new() else {
            std::thread::sleep(timeout.min(Duration::from_millis(1)));
            return;
        };
        if p.registry()
            .register(&mut SourceFd(&fd), Token(0), interest)
            .is_err()
        {
            std::thread::sleep(timeout.min(Duration::from_millis(1)));
            return;
        }
        *poll = Some(p);
    }
    if let Some(p) = poll {
        let mut events = Events::with_capacity(4);
        let _ = p.poll(&mut events, Some(timeout));
    }
}

/// One TCP or Unix connection.
#[derive(Debug)]
pub struct MioConnection {
    id: usize,
    shared: Arc<ConnShared>,
    decoder: StreamDecoder,
    recv_closed: Option<CloseReason>,
    /// The last `try_recv` stopped before `WouldBlock`.
    maybe_readable: bool,
    /// The last read emptied the socket (short read or `WouldBlock`) and no
    /// poll has reported an edge since.
    sock_drained: bool,
    /// `shared.edges` before the last read that emptied the socket.
    edges_at_drain: u64,
    bytes_received: AtomicU64,
    frames_received: u64,
    poll: Option<Poll>,
    write_poll: Option<Poll>,
    handle: Arc<DriverHandle>,
}

impl MioConnection {
    fn new(id: usize, shared: Arc<ConnShared>, handle: Arc<DriverHandle>) -> Self {
        Self {
            id,
            shared,
            decoder: handle.driver.config.decoder(),
            recv_closed: None,
            maybe_readable: true,
            sock_drained: false,
            edges_at_drain: 0,
            bytes_received: AtomicU64::new(0),
            frames_received: 0,
            poll: None,
            write_poll: None,
            handle,
        }
    }

    fn config(&self) -> &Config {
        &self.handle.driver.config
    }

    fn unregister(&self) {
        lock(&self.handle.driver.conns).remove(&self.id);
    }

    /// Closes the whole connection after a receive-side failure.
    fn fail(&mut self, reason: CloseReason) {
        self.handle.driver.counters.count_close(&reason);
        if matches!(
            reason,
            CloseReason::Protocol(_) | CloseReason::TimedOut { .. }
        ) {
            self.shared.sock.shutdown(Shutdown::Both);
            self.shared.handoff.with(|ob| ob.fail(reason.clone()));
            self.unregister();
        }
        self.recv_closed = Some(reason);
    }

    /// Takes over the reason when the I/O thread closed the connection.
    fn take_io_close(&mut self) {
        if self.shared.io_closed.load(Ordering::Acquire)
            && !matches!(
                self.recv_closed,
                Some(CloseReason::TimedOut { .. } | CloseReason::Protocol(_))
            )
            && let Some(reason) = self.shared.handoff.with(|ob| ob.closed().cloned())
        {
            self.recv_closed = Some(reason);
        }
    }

    /// Keeps the frame clock after a `try_recv`: it restarts when frames
    /// were delivered (progress), stops when the decoder and the socket are
    /// both empty, and otherwise keeps running from the first byte.
    fn track_frame_clock(&mut self, delivered: usize) {
        let shared = &self.shared;
        let buffered = self.decoder.buffered() > 0;
        shared.partial.store(buffered, Ordering::SeqCst);
        let now = self.handle.driver.stamp(Instant::now());
        if !buffered && self.sock_drained {
            shared.frame_start.store(NEVER, Ordering::SeqCst);
            // An arrival the I/O thread saw after our last read found the
            // clock still running and left it: start it for those bytes.
            if shared.edges.load(Ordering::SeqCst) != self.edges_at_drain {
                let _ = shared.frame_start.compare_exchange(
                    NEVER,
                    now,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
            }
        } else if delivered > 0 {
            shared.frame_start.store(now, Ordering::SeqCst);
        } else if buffered {
            let _ =
                shared
                    .frame_start
                    .compare_exchange(NEVER, now, Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    fn recv_inner<F: FnMut(Frame<'_>)>(
        &mut self,
        max_frames: usize,
        mut on_frame: F,
    ) -> Result<usize, RecvError> {
        let mut delivered = 0;
        let mut reads = 0;
        let mut drained = false;
        loop {
            if let Some(e) = crate::frames::drain(
                &mut self.decoder,
                max_frames,
                &mut delivered,
                &mut self.frames_received,
                &mut on_frame,
            ) && (self.recv_closed.is_none()
                || self.recv_closed == Some(CloseReason::ClosedByPeer))
            {
                self.recv_closed = None;
                self.fail(CloseReason::Protocol(e));
            }
            if delivered >= max_frames || reads >= MAX_READS_PER_CALL {
                // More may be waiting in the decoder or in the socket.
                self.maybe_readable = self.decoder.buffered() > 0 || !self.sock_drained;
                return Ok(delivered);
            }
            if let Some(reason) = &self.recv_closed {
                if delivered > 0 {
                    return Ok(delivered);
                }
                return Err(self.closed_err(reason.clone()));
            }
            if drained {
                self.maybe_readable = false;
                return Ok(delivered);
            }
            let buf = self.decoder.read_buf();
            if buf.is_empty() {
                self.maybe_readable = true;
                return Ok(delivered);
            }
            reads += 1;
            let buf_len = buf.len();
            let edges = self.shared.edges.load(Ordering::SeqCst);
            match self.shared.sock.read(buf) {
                Ok(0) => {
                    let buffered = self.decoder.buffered();
                    self.recv_closed = Some(if buffered > 0 {
                        CloseReason::Truncated { buffered }
                    } else {
                        CloseReason::ClosedByPeer
                    });
                    // The I/O thread's shutdown reads as an end of stream.
                    self.take_io_close();
                }
                Ok(n) => {
                    let short = n < buf_len;
                    self.decoder.commit(n);
                    self.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                    let now = self.handle.driver.stamp(Instant::now());
                    self.shared.last_rx.store(now, Ordering::SeqCst);
                    // A short read of a stream socket emptied its receive
                    // queue: later bytes raise a new edge, so skip the read
                    // that would only say `WouldBlock`.
                    if short {
                        drained = true;
                        self.edges_at_drain = edges;
                        self.handle.driver.drained(self.id, &self.shared);
                    }
                    self.sock_drained = short;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.sock_drained = true;
                    self.edges_at_drain = edges;
                    self.handle.driver.drained(self.id, &self.shared);
                    self.maybe_readable = false;
                    return Ok(delivered);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.recv_closed = Some(CloseReason::from_io(&e));
                    self.take_io_close();
                }
            }
        }
    }

    fn closed_err(&self, reason: CloseReason) -> RecvError {
        RecvError::Closed {
            peer: self.shared.peer.clone(),
            reason,
        }
    }
}

impl Connection for MioConnection {
    fn peer_addr(&self) -> &Address {
        &self.shared.peer
    }

    fn try_send(&self, frames: &FrameBuffer) -> Result<(), SendError> {
        let sock = &self.shared.sock;
        let (sent, room_freed) = self.shared.handoff.with(|ob| {
            let (queued, written) = (ob.queued(), ob.written());
            let sent = ob.send(frames.as_bytes(), frames.frame_count(), |b| sock.write(b));
            // Queued bytes went out during this call: a sender refused as
            // full (another thread, maybe) may retry.
            let freed = queued > 0 && ob.written() != written && ob.take_room_wanted();
            (sent, freed)
        });
        if room_freed {
            self.shared.waker.wake();
        }
        sent.map(|_| ()).map_err(|r| {
            let peer = self.shared.peer.clone();
            match r {
                Rejected::Full { queued, len, limit } => SendError::Full {
                    peer,
                    queued,
                    len,
                    limit,
                },
                Rejected::TooLarge { len, limit } => SendError::TooLarge { peer, len, limit },
                Rejected::Closed(reason) => SendError::Closed { peer, reason },
            }
        })
    }

    fn try_recv<F: FnMut(Frame<'_>)>(
        &mut self,
        max_frames: usize,
        on_frame: F,
    ) -> Result<usize, RecvError> {
        self.take_io_close();
        let result = self.recv_inner(max_frames, on_frame);
        if self.recv_closed.is_none() {
            self.track_frame_clock(*result.as_ref().unwrap_or(&0));
        }
        // A short return that left bytes unread (the per-call read cap) or
        // a close undelivered gets no new edge from the kernel: wake the
        // caller's waker so that it comes back.
        if let Ok(n) = result
            && n < max_frames
            && (self.maybe_readable || self.recv_closed.is_some())
        {
            self.shared.waker.wake();
        }
        result
    }

    fn set_waker(&mut self, waker: Option<std::task::Waker>) {
        self.shared.waker.set(waker);
        // Arrivals must wake it from now on.
        let driver = &self.handle.driver;
        driver.listen_again(self.id, &self.shared, &mut lock(&self.shared.watch));
    }

    fn wait_readable(&mut self, timeout: Duration) {
        if self.maybe_readable || self.recv_closed.is_some() {
            return;
        }
        // The I/O thread enforces timeouts; when it closes the connection
        // the shutdown wakes this wait.
        let fd = self.shared.sock.fd();
        wait_fd(&mut self.poll, fd, timeout);
        self.maybe_readable = true;
        self.sock_drained = false;
    }

    fn wait_writable(&mut self, timeout: Duration) {
        // Flush on this thread first: `Blocked` means the kernel just said
        // `WouldBlock`, so a writable edge will follow.
        let flush = |shared: &ConnShared| {
            let sock = &shared.sock;
            let (flushed, room_freed) = shared.handoff.with(|ob| {
                if ob.closed().is_some() {
                    return (Flushed::Drained, false);
                }
                let written = ob.written();
                let flushed = ob.flush(|b| sock.write(b));
                (flushed, ob.written() != written && ob.take_room_wanted())
            });
            if room_freed {
                shared.waker.wake();
            }
            flushed
        };
        if flush(&self.shared) != Flushed::Blocked {
            return;
        }
        let fd = self.shared.sock.fd();
        wait_fd_for(&mut self.write_poll, fd, timeout, Interest::WRITABLE);
        let _ = flush(&self.shared);
    }

    fn queued_bytes(&self) -> usize {
        self.shared.handoff.with(|ob| ob.queued())
    }

    fn stats(&self) -> ConnectionStats {
        let (bytes_sent, frames_sent, queued_bytes, peak_queued_bytes, full_rejections) =
            self.shared.handoff.with(|ob| {
                (
                    ob.written(),
                    ob.frames(),
                    ob.queued(),
                    ob.peak(),
                    ob.full_rejections(),
                )
            });
        ConnectionStats {
            bytes_sent,
            frames_sent,
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            frames_received: self.frames_received,
            queued_bytes,
            peak_queued_bytes,
            full_rejections,
        }
    }

    fn close(&mut self) {
        let drained = self.shared.handoff.with(|ob| {
            ob.close();
            if ob.queued() == 0 && ob.is_closing() {
                self.shared.sock.shutdown(Shutdown::Write);
                ob.fail(CloseReason::Local);
                true
            } else {
                ob.closed().is_some()
            }
        });
        if drained {
            self.unregister();
        } else {
            let linger = self.config().linger;
            let mut deadline = lock(&self.shared.linger);
            if *deadline == Linger::Open {
                *deadline = match Instant::now().checked_add(linger) {
                    Some(at) => Linger::Until(at),
                    None => Linger::Never,
                };
            }
            drop(deadline);
            if self.shared.handoff.request_attention() {
                let _ = self.handle.driver.waker.wake();
            }
        }
        if self.recv_closed.is_none() {
            self.recv_closed = Some(CloseReason::Local);
        }
    }

    fn abort(&mut self) {
        self.shared.handoff.with(|ob| ob.fail(CloseReason::Local));
        self.shared.sock.shutdown(Shutdown::Both);
        self.unregister();
        if self.recv_closed.is_none() {
            self.recv_closed = Some(CloseReason::Local);
        }
    }
}

impl Drop for MioConnection {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(all(test, feature = "tcp"))]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]

    use super::*;

    #[test]
    fn keepalive_is_set_as_configured() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let sock = socket2::SockRef::from(&s);
        set_keepalive(&s, None).unwrap();
        assert!(!sock.keepalive().unwrap());
        set_keepalive(&s, Some(Duration::ZERO)).unwrap();
        assert!(!sock.keepalive().unwrap());
        // The idle time and interval are write-only through socket2 without
        // its `all` feature; these calls must succeed at every extreme.
        for d in [
            Duration::from_millis(10),
            Duration::from_secs(30),
            Duration::MAX,
        ] {
            set_keepalive(&s, Some(d)).unwrap();
            assert!(sock.keepalive().unwrap());
        }
    }

    #[test]
    fn dialled_and_accepted_sockets_get_keepalive() {
        let t = MioTransport::new(Config::default()).unwrap();
        let mut listener = t.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
        let client = t.connect(listener.local_addr()).unwrap();
        let start = Instant::now();
        let server = loop {
            if let Some(c) = listener.try_accept().unwrap() {
                break c;
            }
            assert!(start.elapsed() < Duration::from_secs(10));
            listener.wait_acceptable(Duration::from_millis(10));
        };
        for conn in [&client, &server] {
            let Sock::Tcp(s) = &conn.shared.sock else {
                panic!("not a TCP socket");
            };
            let sock = socket2::SockRef::from(s);
            assert!(sock.keepalive().unwrap());
        }
    }
}
