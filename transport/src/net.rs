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

use crate::config::Counters;
use crate::handoff::{Flushed, Handoff, Rejected};
use crate::{
    AcceptError, Address, CloseReason, Config, ConnectError, Connection, ConnectionStats,
    ListenError, Listener, RecvError, SendError, Transport, TransportStats,
};

const WAKE: Token = Token(usize::MAX);
const TICK: Duration = Duration::from_millis(50);
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
}

/// What the I/O thread and the user handle share per connection.
#[derive(Debug)]
struct ConnShared {
    sock: Sock,
    peer: Address,
    handoff: Handoff,
    linger_deadline: Mutex<Option<Instant>>,
    counters: Arc<Counters>,
}

impl Drop for ConnShared {
    fn drop(&mut self) {
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// State shared by the I/O thread and every handle of one transport.
#[derive(Debug)]
struct Driver {
    registry: Registry,
    waker: Waker,
    conns: Mutex<HashMap<usize, Arc<ConnShared>>>,
    next_token: AtomicUsize,
    shutdown: AtomicBool,
    counters: Arc<Counters>,
    config: Config,
}

impl Driver {
    /// Flushes, finishes closes, enforces linger. Runs on the I/O thread.
    fn service(&self, id: usize, conn: &ConnShared, now: Instant) {
        conn.handoff.take_attention();
        let remove = conn.handoff.with(|ob| {
            if ob.closed().is_some() {
                return true;
            }
            match ob.flush(|b| conn.sock.write(b)) {
                Flushed::Drained if ob.is_closing() => {
                    conn.sock.shutdown(Shutdown::Write);
                    ob.fail(CloseReason::Local);
                    true
                }
                Flushed::Drained => false,
                Flushed::Blocked if ob.is_closing() => {
                    let late = lock(&conn.linger_deadline).is_some_and(|d| now >= d);
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
                // A hard cap in case an entry somehow has no deadline.
                let started = *shutdown_at.get_or_insert(now);
                if now.duration_since(started) > self.config.linger + TICK {
                    break;
                }
            }
            for event in events.iter() {
                let id = event.token().0;
                if event.token() == WAKE {
                    continue;
                }
                let conn = lock(&self.conns).get(&id).cloned();
                if let Some(conn) = conn {
                    self.service(id, &conn, now);
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
                self.service(id, &conn, now);
            }
        }
        lock(&self.conns).clear();
    }

    fn register(&self, sock: Sock, peer: Address) -> io::Result<(usize, Arc<ConnShared>)> {
        let id = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.counters.open.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(ConnShared {
            sock,
            peer,
            handoff: Handoff::new(self.config.max_queued_bytes),
            linger_deadline: Mutex::new(None),
            counters: Arc::clone(&self.counters),
        });
        lock(&self.conns).insert(id, Arc::clone(&shared));
        let fd = shared.sock.fd();
        if let Err(e) = self
            .registry
            .register(&mut SourceFd(&fd), Token(id), Interest::WRITABLE)
        {
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
            next_token: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            counters: Arc::new(Counters::default()),
            config,
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

    fn at_limit(&self) -> bool {
        self.handle.driver.counters.open.load(Ordering::Relaxed) >= self.config().max_connections
    }

    fn wrap(&self, sock: Sock, peer: Address) -> io::Result<MioConnection> {
        let (id, shared) = self.handle.driver.register(sock, peer)?;
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
        })
    }

    fn connect(&self, addr: &Address) -> Result<MioConnection, ConnectError> {
        if self.at_limit() {
            return Err(ConnectError::TooManyConnections {
                addr: addr.clone(),
                limit: self.config().max_connections,
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
                let s = std::net::TcpStream::connect_timeout(sa, self.config().connect_timeout)
                    .map_err(map)?;
                s.set_nodelay(true).map_err(map)?;
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
        self.wrap(sock, addr.clone()).map_err(map)
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
    poll: Option<Poll>,
}

impl Drop for MioListener {
    #[allow(
        irrefutable_let_patterns,
        reason = "with only the `unix` feature every listener is a Unix one"
    )]
    fn drop(&mut self) {
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
        for _ in 0..MAX_REJECTS_PER_CALL {
            let (sock, peer) = match self.accept_one() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(err(e)),
            };
            let counters = &self.transport.handle.driver.counters;
            if self.transport.at_limit() {
                counters.rejected.fetch_add(1, Ordering::Relaxed);
                sock.shutdown(Shutdown::Both);
                continue;
            }
            counters.accepted.fetch_add(1, Ordering::Relaxed);
            return self.transport.wrap(sock, peer).map(Some).map_err(err);
        }
        Ok(None)
    }

    fn wait_acceptable(&mut self, timeout: Duration) {
        let fd = self.fd();
        wait_fd(&mut self.poll, fd, timeout);
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
    last_rx: Instant,
    last_boundary: Instant,
    bytes_received: AtomicU64,
    frames_received: u64,
    poll: Option<Poll>,
    write_poll: Option<Poll>,
    handle: Arc<DriverHandle>,
}

impl MioConnection {
    fn new(id: usize, shared: Arc<ConnShared>, handle: Arc<DriverHandle>) -> Self {
        let now = Instant::now();
        Self {
            id,
            shared,
            decoder: handle.driver.config.decoder(),
            recv_closed: None,
            maybe_readable: true,
            sock_drained: false,
            last_rx: now,
            last_boundary: now,
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

    fn check_timeouts(&mut self) {
        let now = Instant::now();
        if self.decoder.buffered() > 0 {
            if let Some(t) = self.config().frame_timeout
                && now.duration_since(self.last_boundary) > t
            {
                self.fail(CloseReason::TimedOut {
                    what: "partial frame",
                });
            }
        } else if let Some(t) = self.config().idle_timeout
            && now.duration_since(self.last_rx) > t
        {
            self.fail(CloseReason::TimedOut { what: "idle" });
        }
    }

    /// The earliest timeout deadline, to bound a wait.
    fn next_deadline(&self) -> Option<Instant> {
        if self.decoder.buffered() > 0 {
            self.config().frame_timeout.map(|t| self.last_boundary + t)
        } else {
            self.config().idle_timeout.map(|t| self.last_rx + t)
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
        self.shared
            .handoff
            .with(|ob| ob.send(frames.as_bytes(), frames.frame_count(), |b| sock.write(b)))
            .map(|_| ())
            .map_err(|r| {
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
            if self.decoder.buffered() == 0 {
                self.last_boundary = Instant::now();
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
                self.check_timeouts();
                if self.recv_closed.is_none() || delivered > 0 {
                    return Ok(delivered);
                }
                continue;
            }
            let buf = self.decoder.read_buf();
            if buf.is_empty() {
                self.maybe_readable = true;
                return Ok(delivered);
            }
            reads += 1;
            let buf_len = buf.len();
            match self.shared.sock.read(buf) {
                Ok(0) => {
                    let buffered = self.decoder.buffered();
                    self.recv_closed = Some(if buffered > 0 {
                        CloseReason::Truncated { buffered }
                    } else {
                        CloseReason::ClosedByPeer
                    });
                }
                Ok(n) => {
                    let short = n < buf_len;
                    self.decoder.commit(n);
                    self.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                    self.last_rx = Instant::now();
                    // A short read of a stream socket emptied its receive
                    // queue: later bytes raise a new edge, so skip the read
                    // that would only say `WouldBlock`.
                    if short {
                        drained = true;
                    }
                    self.sock_drained = short;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.sock_drained = true;
                    self.maybe_readable = false;
                    self.check_timeouts();
                    if self.recv_closed.is_none() || delivered > 0 {
                        return Ok(delivered);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.recv_closed = Some(CloseReason::from_io(&e)),
            }
        }
    }

    fn wait_readable(&mut self, timeout: Duration) {
        if self.maybe_readable || self.recv_closed.is_some() {
            return;
        }
        let timeout = match self.next_deadline() {
            Some(d) => timeout.min(d.saturating_duration_since(Instant::now())),
            None => timeout,
        };
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
            shared.handoff.with(|ob| {
                if ob.closed().is_some() {
                    Flushed::Drained
                } else {
                    ob.flush(|b| sock.write(b))
                }
            })
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
            lock(&self.shared.linger_deadline).get_or_insert_with(|| Instant::now() + linger);
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
