//! Request/reply on top of the linker: servers register interests, clients
//! register intents, and each request goes to exactly one server.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use dndm_core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use dndm_core::{Config, Deadline, Inlet, Receiver, Sender};
use dndm_router::{
    Intent, IntentPort, Interest, InterestId, InterestPort, LinkEvent, LinkInfo, PortError, Route,
};
use parking_lot::{Condvar, Mutex};

use crate::error::CallError;
use crate::node::Counters;
use crate::remote::{
    Answer, CallFailure, Completion, ErasedServer, OutCall, RemoteReply, RemoteServer, ReplyCode,
    RequestSink, decode_archive, encode_archive, split_reply,
};
use dndm_codec::Message;

enum Outcome<Resp> {
    Reply(Resp),
    Panicked(String),
    Gone,
    /// Ended by the way to a remote server (peer left, refused, busy).
    Failed(CallError),
}

enum State<Resp> {
    /// The caller waits.
    Waiting,
    Done(Outcome<Resp>),
    /// The caller timed out: the request must not run.
    Abandoned,
}

/// Where one call's outcome meets its caller.
///
/// An in-process server usually answers within a microsecond, far sooner
/// than a sleeping thread can be woken (a futex wake-up and a context switch
/// on both sides, tens of microseconds on a busy machine). So the caller
/// first watches `done` for a few microseconds and sleeps on the condition
/// variable only if the reply is slow; the server notifies in both cases.
struct Slot<Resp> {
    /// Set once `value` holds an outcome (release, after the store under
    /// the lock): the caller's spin reads it without taking the lock.
    done: AtomicBool,
    /// Set once `value` is `Abandoned`: the server's check before running
    /// a request reads it without taking the lock (the lock's cache line
    /// is the one the caller is watching).
    gone: AtomicBool,
    value: Mutex<State<Resp>>,
    ready: Condvar,
}

/// How long a caller watches for its reply before it sleeps: `REPLY_SPINS`
/// pause instructions (a few microseconds; a pause takes 10 to 140 cycles
/// depending on the CPU), then a few yields of the core.
///
/// `done` is read after every pause. Doubling the pauses between reads, as
/// a contention backoff does, would make the caller notice a reply up to
/// half of the time spent so far after it arrived: with 34 ns pauses, a
/// reply at 1.1 µs is seen at 2.1 µs.
const REPLY_SPINS: u32 = 128;
const REPLY_YIELDS: u32 = 8;

impl<Resp> Slot<Resp> {
    fn new() -> Self {
        Self {
            done: AtomicBool::new(false),
            gone: AtomicBool::new(false),
            value: Mutex::new(State::Waiting),
            ready: Condvar::new(),
        }
    }

    /// Watches `done` for a short while; true once the outcome is there.
    fn spin_for_outcome(&self, deadline: Deadline) -> bool {
        for _ in 0..REPLY_SPINS {
            if self.done.load(Ordering::Acquire) {
                return true;
            }
            std::hint::spin_loop();
        }
        for _ in 0..REPLY_YIELDS {
            if self.done.load(Ordering::Acquire) {
                return true;
            }
            if deadline.remaining().is_some_and(|left| left.is_zero()) {
                return false;
            }
            std::thread::yield_now();
        }
        self.done.load(Ordering::Acquire)
    }

    /// Stores the outcome unless one is there; false if the caller already
    /// gave up.
    fn fill(self: &Arc<Self>, outcome: Outcome<Resp>) -> bool {
        if self.done.load(Ordering::Acquire) {
            // Answered already (the second fill is `ReplyTo`'s drop).
            return true;
        }
        let mut v = self.value.lock();
        match *v {
            State::Waiting => {}
            State::Done(_) => return true,
            State::Abandoned => return false,
        }
        *v = State::Done(outcome);
        self.done.store(true, Ordering::Release);
        drop(v);
        self.ready.notify_one();
        Arc::strong_count(self) > 1
    }

    /// True when nobody waits for the outcome any more: the caller timed
    /// out, or let go of the slot without waiting.
    fn abandoned(self: &Arc<Self>) -> bool {
        self.gone.load(Ordering::Acquire) || Arc::strong_count(self) == 1
    }

    /// Waits for the outcome until `deadline`; on timeout marks the request
    /// abandoned, so a server that has not started it skips it.
    fn wait(&self, deadline: Deadline) -> Option<Outcome<Resp>> {
        self.spin_for_outcome(deadline);
        let mut v = self.value.lock();
        loop {
            if let State::Done(_) = *v {
                break;
            }
            match deadline.instant() {
                None => self.ready.wait(&mut v),
                Some(at) => {
                    if self.ready.wait_until(&mut v, at).timed_out() {
                        break;
                    }
                }
            }
        }
        let outcome = std::mem::replace(&mut *v, State::Abandoned);
        self.gone.store(true, Ordering::Release);
        match outcome {
            State::Done(o) => Some(o),
            State::Waiting | State::Abandoned => None,
        }
    }
}

/// Where a server sends its reply: a caller in this process, or a peer's
/// caller through the driver. If dropped unanswered (the server went away),
/// the caller is told at once.
enum ReplyTo<Resp> {
    Local(Arc<Slot<Resp>>),
    Remote {
        /// Taken by the one answer.
        reply: Mutex<Option<RemoteReply>>,
        encode: fn(&Resp) -> Result<Vec<u8>, String>,
    },
}

impl<Resp> ReplyTo<Resp> {
    /// True when nobody waits for the outcome any more.
    fn abandoned(&self) -> bool {
        match self {
            Self::Local(slot) => slot.abandoned(),
            Self::Remote { reply, .. } => reply.lock().as_ref().is_none_or(|r| r.abandoned()),
        }
    }

    /// Answers; false if the caller had already given up (or left).
    fn fill(&self, outcome: Outcome<Resp>) -> bool {
        match self {
            Self::Local(slot) => slot.fill(outcome),
            Self::Remote { reply, encode } => {
                let Some(reply) = reply.lock().take() else {
                    return false;
                };
                match outcome {
                    Outcome::Reply(resp) => match encode(&resp) {
                        Ok(bytes) => reply.send(ReplyCode::Reply, bytes),
                        Err(e) => reply.fail(
                            ReplyCode::Invalid,
                            &format!("the server could not encode its reply: {e}"),
                        ),
                    },
                    Outcome::Panicked(message) => reply.fail(ReplyCode::Panicked, &message),
                    Outcome::Gone | Outcome::Failed(_) => {
                        reply.fail(ReplyCode::NoServer, "the server went away")
                    }
                }
            }
        }
    }

    /// Hands the request back to its caller as refused because the server
    /// queue is full.
    fn refuse_busy(&self) {
        if let Self::Remote { reply, .. } = self
            && let Some(reply) = reply.lock().take()
        {
            reply.fail(ReplyCode::Busy, "the server queue is full");
        }
    }
}

impl<Resp> Drop for ReplyTo<Resp> {
    fn drop(&mut self) {
        if let Self::Local(slot) = self {
            let _ = slot.fill(Outcome::Gone);
        }
        // A remote reply answers "no server" from its own drop.
    }
}

/// One request in flight. `Clone` is required by the channel (fan-out);
/// a request always has exactly one server, so it is never cloned.
pub(crate) struct Request<Req, Resp> {
    /// Correlation id, unique per node.
    id: u64,
    req: Req,
    reply: Arc<ReplyTo<Resp>>,
}

impl<Req: Clone, Resp> Clone for Request<Req, Resp> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            req: self.req.clone(),
            reply: Arc::clone(&self.reply),
        }
    }
}

pub(crate) struct ServerPort<Req, Resp> {
    inlet: Inlet<Request<Req, Resp>>,
    /// The face peers' clients link to.
    erased: ErasedServer,
}

impl<Req: Send + 'static, Resp: Send + 'static> InterestPort for ServerPort<Req, Resp> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn erased(&self) -> Option<&dyn Any> {
        Some(&self.erased)
    }
}

/// A server's queue as peers' requests reach it: validated and decoded on
/// the driver thread, queued without waiting.
struct ServerSink<Req, Resp> {
    inlet: Inlet<Request<Req, Resp>>,
    /// Attached at the first request from a peer (a lane into the server).
    tx: Mutex<Option<Sender<Request<Req, Resp>>>>,
    next_id: Arc<AtomicU64>,
    decode: fn(&[u8]) -> Result<Req, String>,
    encode: fn(&Resp) -> Result<Vec<u8>, String>,
}

impl<Req: Clone + Send + 'static, Resp: Send + 'static> RequestSink for ServerSink<Req, Resp> {
    fn submit(&self, payload: &[u8], reply: RemoteReply) {
        let req = match (self.decode)(payload) {
            Ok(req) => req,
            Err(e) => {
                reply.fail(
                    ReplyCode::Invalid,
                    &format!("the request is not a valid archive of its type: {e}"),
                );
                return;
            }
        };
        let request = Request {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            req,
            reply: Arc::new(ReplyTo::Remote {
                reply: Mutex::new(Some(reply)),
                encode: self.encode,
            }),
        };
        let mut tx = self.tx.lock();
        if tx.is_none() {
            let sender = Sender::new();
            if sender.attach(&self.inlet).is_err() {
                // The server is closing: the reply answers "no server".
                return;
            }
            *tx = Some(sender);
        }
        let Some(sender) = tx.as_ref() else {
            return;
        };
        if let Err(dndm_core::SendError::Full { msg, .. }) = sender.try_send(request) {
            msg.reply.refuse_busy();
        }
    }
}

/// A client's way to one server.
///
/// Sending to a full server queue may wait, and no lock may be held while
/// waiting (the linker takes the client's server list under its own lock).
/// A core `Sender` is not `Sync`, so each caller borrows a sender handle of
/// its own from `idle` (or clones a new one from `origin`), sends with no
/// lock held, and puts it back. There are at most as many handles, and so
/// lanes into the server, as callers ever sent to this server at once.
struct LocalServer<Req, Resp> {
    /// Never sends: only cloned (under the lock, which never waits).
    origin: Mutex<Sender<Request<Req, Resp>>>,
    idle: Mutex<Vec<Sender<Request<Req, Resp>>>>,
}

/// One server a client can reach: in this process, or a peer's.
struct ServerLink<Req, Resp> {
    id: InterestId,
    to: ServerAt<Req, Resp>,
}

enum ServerAt<Req, Resp> {
    Local(Box<LocalServer<Req, Resp>>),
    Remote(RemoteServer),
}

impl<Req, Resp> LocalServer<Req, Resp> {
    fn take(&self) -> Sender<Request<Req, Resp>> {
        let idle = self.idle.lock().pop();
        idle.unwrap_or_else(|| self.origin.lock().clone())
    }

    fn put_back(&self, tx: Sender<Request<Req, Resp>>) {
        self.idle.lock().push(tx);
    }
}

/// The servers a client can reach.
type ServerLinks<Req, Resp> = Vec<Arc<ServerLink<Req, Resp>>>;

pub(crate) struct ClientPort<Req, Resp> {
    /// Held only to read or change the list, never while sending.
    servers: Mutex<ServerLinks<Req, Resp>>,
    /// How requests and replies cross the wire to a peer's server.
    encode: fn(&Req) -> Result<Vec<u8>, String>,
    decode: fn(&[u8]) -> Result<Resp, String>,
}

impl<Req: Clone + Send + 'static, Resp: Send + 'static> IntentPort for ClientPort<Req, Resp> {
    fn connect(&self, interest: &dyn InterestPort, link: LinkInfo<'_>) -> Result<(), PortError> {
        let to = if let Some(server) = interest.as_any().downcast_ref::<ServerPort<Req, Resp>>() {
            let tx = Sender::new();
            tx.attach(&server.inlet).map_err(|_| PortError::Closed)?;
            ServerAt::Local(Box::new(LocalServer {
                origin: Mutex::new(tx),
                idle: Mutex::new(Vec::new()),
            }))
        } else {
            // A peer's server (the linker has checked route, type name and
            // fingerprint).
            let remote = interest
                .erased()
                .and_then(|e| e.downcast_ref::<RemoteServer>())
                .ok_or(PortError::Incompatible)?;
            if !remote.admits(link.route) {
                return Err(PortError::NotExported);
            }
            ServerAt::Remote(remote.clone())
        };
        self.servers.lock().push(Arc::new(ServerLink {
            id: link.interest,
            to,
        }));
        Ok(())
    }

    fn disconnect(&self, _: &dyn InterestPort, link: LinkInfo<'_>) {
        // Callers still sending through this link hold it until they are done.
        self.servers.lock().retain(|s| s.id != link.interest);
    }
}

/// A handle for calling one service route repeatedly (what
/// [`Node::call`](crate::Node::call) caches). Cheap to share across threads.
pub struct Client<Req, Resp> {
    intent: Intent,
    fingerprint: u64,
    port: Arc<ClientPort<Req, Resp>>,
    next_id: Arc<AtomicU64>,
    rr: AtomicUsize,
    mismatch: Mutex<Option<String>>,
}

impl<Req: Clone + Send + 'static, Resp: Send + 'static> Client<Req, Resp> {
    pub(crate) fn register(
        linker: &dndm_router::Linker,
        route: Route,
        fingerprint: u64,
        next_id: Arc<AtomicU64>,
        guard: Option<Arc<dyn dndm_router::LinkGuard>>,
    ) -> Result<Self, CallError>
    where
        Req: Message,
        Resp: Message,
    {
        let port = Arc::new(ClientPort {
            servers: Mutex::new(Vec::new()),
            encode: encode_archive::<Req>,
            decode: decode_archive::<Resp>,
        });
        let intent = match guard {
            Some(g) => linker.add_intent_guarded(route, fingerprint, Arc::clone(&port) as _, g)?,
            None => linker.add_intent(route, fingerprint, Arc::clone(&port) as _)?,
        };
        Ok(Self {
            intent,
            fingerprint,
            port,
            next_id,
            rr: AtomicUsize::new(0),
            mismatch: Mutex::new(None),
        })
    }

    /// Reads the client's link events; remembers a schema mismatch.
    fn note_mismatches(&self) {
        let mut mismatch = self.mismatch.lock();
        while let Some(ev) = self.intent.try_event() {
            if let LinkEvent::SchemaMismatch(m) = ev {
                *mismatch = Some(m.to_string());
            }
        }
    }

    fn no_server(&self) -> CallError {
        self.note_mismatches();
        let route = self.route().to_string();
        match &*self.mismatch.lock() {
            Some(detail) => CallError::SchemaMismatch {
                route,
                detail: detail.clone(),
            },
            None => CallError::NoServer { route },
        }
    }

    /// Waits until a server is linked, at most until `deadline`: a server
    /// may still be starting, or a peer's declarations still on their way.
    /// Returns early with the error when a server exists with another schema.
    fn await_server(&self, deadline: Deadline) -> Result<(), CallError> {
        /// How long one wait lasts before mismatches are looked at again:
        /// several callers may wait at once, and only one of them receives
        /// a link event, so waiting on events alone could miss one.
        const SLICE: Duration = Duration::from_millis(5);
        // Bounded by the deadline (or by a server appearing).
        loop {
            if !self.port.servers.lock().is_empty() {
                return Ok(());
            }
            self.note_mismatches();
            if self.mismatch.lock().is_some() {
                return Err(self.no_server());
            }
            let left = deadline.remaining();
            if left.is_some_and(|l| l.is_zero()) {
                return Err(self.no_server());
            }
            self.intent
                .wait_for_interest(Some(left.map_or(SLICE, |l| l.min(SLICE))));
        }
    }

    /// One server, round-robin unless `pick` names it; `None` while none is
    /// linked. The list is held only to clone the entry: a send may wait for
    /// room, and the linker needs the list to link or unlink.
    fn pick(&self, pick: Option<usize>) -> Option<Arc<ServerLink<Req, Resp>>> {
        let servers = self.port.servers.lock();
        if servers.is_empty() {
            return None;
        }
        let i = pick.unwrap_or_else(|| self.rr.fetch_add(1, Ordering::Relaxed)) % servers.len();
        Some(Arc::clone(&servers[i]))
    }

    /// A server for a call: one linked now, or the first to link before
    /// `deadline`.
    fn server(&self, deadline: Deadline) -> Result<Arc<ServerLink<Req, Resp>>, CallError> {
        if let Some(server) = self.pick(None) {
            return Ok(server);
        }
        self.await_server(deadline)?;
        self.pick(None).ok_or_else(|| self.no_server())
    }

    fn submit(
        &self,
        req: Req,
        pick: Option<usize>,
        deadline: Deadline,
    ) -> Result<Arc<Slot<Resp>>, CallError> {
        match self.pick(pick) {
            Some(server) => self.submit_to(&server, req, deadline),
            None => Err(self.no_server()),
        }
    }

    fn submit_to(
        &self,
        server: &ServerLink<Req, Resp>,
        req: Req,
        deadline: Deadline,
    ) -> Result<Arc<Slot<Resp>>, CallError> {
        let slot = Arc::new(Slot::new());
        match &server.to {
            ServerAt::Local(local) => {
                let request = Request {
                    id: self.next_id.fetch_add(1, Ordering::Relaxed),
                    req,
                    reply: Arc::new(ReplyTo::Local(Arc::clone(&slot))),
                };
                let tx = local.take();
                let sent = tx.send_deadline(request, deadline);
                local.put_back(tx);
                match sent {
                    Ok(()) => Ok(slot),
                    Err(dndm_core::SendError::Full { .. }) => Err(CallError::Busy {
                        route: self.route().to_string(),
                    }),
                    Err(_) => Err(CallError::ServerGone {
                        route: self.route().to_string(),
                    }),
                }
            }
            ServerAt::Remote(remote) => self.submit_remote(req, remote, slot, deadline),
        }
    }

    /// Queues a call to a peer's server; the driver completes `slot`.
    fn submit_remote(
        &self,
        req: Req,
        remote: &RemoteServer,
        slot: Arc<Slot<Resp>>,
        deadline: Deadline,
    ) -> Result<Arc<Slot<Resp>>, CallError> {
        let route = self.route().to_string();
        let peer = remote.peer_name();
        let payload = (self.port.encode)(&req).map_err(|reason| CallError::Remote {
            route: route.clone(),
            peer: peer.clone(),
            reason: format!("the request could not be encoded: {reason}"),
        })?;
        let decode = self.port.decode;
        let done = Arc::clone(&slot);
        let (r, p) = (route.clone(), peer.clone());
        let complete = Completion::new(move |answer| {
            done.fill(remote_outcome(answer, decode, r, p));
        });
        let deadline = deadline
            .remaining()
            .and_then(|left| Duration::from_nanos(dndm_core::clock::now_ns()).checked_add(left));
        let call = OutCall {
            route: self.route().clone(),
            fingerprint: self.fingerprint,
            payload,
            deadline,
            complete,
        };
        match remote.call(call) {
            Ok(()) => Ok(slot),
            Err(failure) => Err(failure_error(failure, route, peer)),
        }
    }

    fn finish(
        &self,
        slot: &Slot<Resp>,
        deadline: Deadline,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let route = || self.route().to_string();
        match slot.wait(deadline) {
            Some(Outcome::Reply(r)) => Ok(r),
            Some(Outcome::Failed(e)) => Err(e),
            Some(Outcome::Panicked(message)) => Err(CallError::HandlerPanicked {
                route: route(),
                message,
            }),
            Some(Outcome::Gone) => Err(CallError::ServerGone { route: route() }),
            None => Err(CallError::Timeout {
                route: route(),
                timeout,
            }),
        }
    }

    /// Sends `req` to one server (round-robin over the servers on the
    /// route, in this process and on peers) and waits at most `timeout` for
    /// its reply (a timeout too large to add to the clock, such as
    /// `Duration::MAX`, waits without limit).
    ///
    /// While no server is linked yet (one may be starting, or a peer's
    /// declarations may be on their way), the call waits for one within the
    /// same `timeout`; if none comes the error is
    /// [`CallError::NoServer`] (or [`CallError::SchemaMismatch`] when a
    /// server exists with another schema).
    pub fn call(&self, req: Req, timeout: Duration) -> Result<Resp, CallError> {
        let deadline = Deadline::after(timeout);
        let server = self.server(deadline)?;
        let slot = self.submit_to(&server, req, deadline)?;
        drop(server);
        self.finish(&slot, deadline, timeout)
    }

    /// Sends `req` to every server on the route and collects every reply
    /// (or error), in server registration order. Waits for a first server
    /// like [`call`](Self::call).
    pub fn call_all(
        &self,
        req: Req,
        timeout: Duration,
    ) -> Result<Vec<Result<Resp, CallError>>, CallError> {
        let deadline = Deadline::after(timeout);
        self.await_server(deadline)?;
        let n = self.port.servers.lock().len();
        if n == 0 {
            return Err(self.no_server());
        }
        let slots: Vec<_> = (0..n)
            .map(|i| self.submit(req.clone(), Some(i), deadline))
            .collect();
        Ok(slots
            .into_iter()
            .map(|s| s.and_then(|slot| self.finish(&slot, deadline, timeout)))
            .collect())
    }

    /// How many servers serve the route now.
    pub fn server_count(&self) -> usize {
        self.intent.interest_count()
    }

    /// Blocks until a server is there, at most `timeout`.
    pub fn wait_for_server(&self, timeout: Option<Duration>) -> bool {
        self.intent.wait_for_interest(timeout)
    }
}

impl<Req, Resp> Client<Req, Resp> {
    /// The service route (`Req@path`).
    pub fn route(&self) -> &Route {
        self.intent.route()
    }
}

impl<Req, Resp> fmt::Debug for Client<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("route", self.route())
            .field("servers", &self.intent.interest_count())
            .finish()
    }
}

/// A running server (one worker thread). Dropping it unregisters it, lets
/// the worker answer what is already queued, and joins the worker.
pub struct Server {
    interest: Option<Interest>,
    worker: Option<JoinHandle<()>>,
    route: Route,
}

/// What a node gives every server it starts.
pub(crate) struct ServerEnv<'a> {
    /// The node's services linker.
    pub(crate) linker: &'a dndm_router::Linker,
    /// Requests queued per server.
    pub(crate) capacity: usize,
    pub(crate) counters: Arc<Counters>,
    /// The node's request id counter.
    pub(crate) next_id: Arc<AtomicU64>,
    /// Which clients may link (a scope's policy against peers' clients).
    pub(crate) guard: Option<Arc<dyn dndm_router::LinkGuard>>,
}

impl Server {
    pub(crate) fn start<Req, Resp, F>(
        env: ServerEnv<'_>,
        route: Route,
        fingerprint: u64,
        handler: Arc<F>,
    ) -> Result<Self, crate::ServeError>
    where
        Req: Message + Clone + Send + 'static,
        Resp: Message + Send + 'static,
        F: Fn(Req) -> Resp + Send + Sync + 'static,
    {
        let ServerEnv {
            linker,
            capacity,
            counters,
            next_id,
            guard,
        } = env;
        let rx =
            Receiver::<Request<Req, Resp>>::new(Config::new(capacity.max(1))).map_err(|e| {
                crate::ServeError::Spawn {
                    route: route.to_string(),
                    reason: e.to_string(),
                }
            })?;
        let inlet = rx.inlet();
        let sink = ServerSink {
            inlet: inlet.clone(),
            tx: Mutex::new(None),
            next_id,
            decode: decode_archive::<Req>,
            encode: encode_archive::<Resp>,
        };
        let port = Arc::new(ServerPort {
            inlet,
            erased: ErasedServer(Arc::new(sink)),
        });
        let selector = dndm_router::Pattern::exact(&route)
            .map(dndm_router::Selector::Pattern)
            .unwrap_or_else(|| dndm_router::Selector::Hashed(route.clone()));
        let interest = match guard {
            Some(g) => linker.add_interest_guarded(selector, fingerprint, port, g)?,
            None => linker.add_interest(selector, fingerprint, port)?,
        };
        let name = route.to_string();
        let worker = std::thread::Builder::new()
            .name(format!("dndm-serve {name}"))
            .spawn(move || serve_loop(rx, &*handler, &name, &counters))
            .map_err(|e| crate::ServeError::Spawn {
                route: route.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            interest: Some(interest),
            worker: Some(worker),
            route,
        })
    }

    /// The service route (`Req@path`).
    pub fn route(&self) -> &Route {
        &self.route
    }
}

fn serve_loop<Req, Resp, F>(
    rx: Receiver<Request<Req, Resp>>,
    handler: &F,
    route: &str,
    counters: &Counters,
) where
    F: Fn(Req) -> Resp,
{
    while let Ok(request) = rx.recv() {
        let Request { id, req, reply } = request;
        if reply.abandoned() {
            // Its caller timed out while it waited in the queue.
            counters.abandoned_requests.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let outcome = match catch_unwind(AssertUnwindSafe(|| handler(req))) {
            Ok(resp) => Outcome::Reply(resp),
            Err(payload) => {
                let message = panic_message(&*payload);
                counters.handler_panics.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    route,
                    request = id,
                    panic = %message,
                    "dndm: service handler panicked; the caller gets HandlerPanicked"
                );
                Outcome::Panicked(message)
            }
        };
        if !reply.fill(outcome) {
            counters.late_replies.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What a peer's answer means for the caller.
fn remote_outcome<Resp>(
    answer: Answer<'_>,
    decode: fn(&[u8]) -> Result<Resp, String>,
    route: String,
    peer: String,
) -> Outcome<Resp> {
    let payload = match answer {
        Answer::Reply(payload) => payload,
        Answer::Failed(f) => return Outcome::Failed(failure_error(f, route, peer)),
    };
    let text = |body: &[u8]| String::from_utf8_lossy(body).into_owned();
    let remote = |reason: String| {
        Outcome::Failed(CallError::Remote {
            route: route.clone(),
            peer: peer.clone(),
            reason,
        })
    };
    match split_reply(payload) {
        Some((ReplyCode::Reply, body)) => match decode(body) {
            Ok(resp) => Outcome::Reply(resp),
            Err(e) => remote(format!("the reply is not a valid archive of its type: {e}")),
        },
        Some((ReplyCode::Panicked, body)) => Outcome::Panicked(text(body)),
        Some((ReplyCode::NoServer, _)) => Outcome::Gone,
        Some((ReplyCode::Busy, _)) => Outcome::Failed(CallError::Busy { route }),
        Some((ReplyCode::Invalid, body)) => remote(text(body)),
        None => remote("a malformed reply (no known outcome byte)".to_owned()),
    }
}

fn failure_error(failure: CallFailure, route: String, peer: String) -> CallError {
    match failure {
        CallFailure::Busy => CallError::Busy { route },
        CallFailure::PeerGone(reason) => CallError::PeerGone {
            route,
            peer,
            reason,
        },
        CallFailure::Rejected(reason) => CallError::Remote {
            route,
            peer,
            reason,
        },
    }
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Unlink first: clients stop sending and the inlet goes away, so the
        // worker drains its queue and sees the end.
        drop(self.interest.take());
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("route", &self.route)
            .finish()
    }
}
