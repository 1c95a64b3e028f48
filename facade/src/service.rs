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

enum Outcome<Resp> {
    Reply(Resp),
    Panicked(String),
    Gone,
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
    value: Mutex<State<Resp>>,
    ready: Condvar,
}

/// How long a caller watches for its reply before it sleeps: doubling
/// spins (1 + 2 + … + 64 pause instructions), then a few yields of the core.
const REPLY_SPINS: u32 = 7;
const REPLY_YIELDS: u32 = 8;

impl<Resp> Slot<Resp> {
    fn new() -> Self {
        Self {
            done: AtomicBool::new(false),
            value: Mutex::new(State::Waiting),
            ready: Condvar::new(),
        }
    }

    /// Watches `done` for a short while; true once the outcome is there.
    fn spin_for_outcome(&self, deadline: Deadline) -> bool {
        for step in 0..REPLY_SPINS + REPLY_YIELDS {
            if self.done.load(Ordering::Acquire) {
                return true;
            }
            if step < REPLY_SPINS {
                for _ in 0..1u32 << step {
                    std::hint::spin_loop();
                }
            } else {
                if deadline.remaining().is_some_and(|left| left.is_zero()) {
                    return false;
                }
                std::thread::yield_now();
            }
        }
        self.done.load(Ordering::Acquire)
    }

    /// Stores the outcome unless one is there; false if the caller already
    /// gave up.
    fn fill(self: &Arc<Self>, outcome: Outcome<Resp>) -> bool {
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
        matches!(*self.value.lock(), State::Abandoned) || Arc::strong_count(self) == 1
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
        match std::mem::replace(&mut *v, State::Abandoned) {
            State::Done(o) => Some(o),
            State::Waiting | State::Abandoned => None,
        }
    }
}

/// Where a server sends its reply. If dropped unanswered (the server went
/// away), the caller is told at once.
struct ReplyTo<Resp> {
    slot: Arc<Slot<Resp>>,
}

impl<Resp> Drop for ReplyTo<Resp> {
    fn drop(&mut self) {
        let _ = self.slot.fill(Outcome::Gone);
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
}

impl<Req: Send + 'static, Resp: Send + 'static> InterestPort for ServerPort<Req, Resp> {
    fn as_any(&self) -> &dyn Any {
        self
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
struct ServerLink<Req, Resp> {
    id: InterestId,
    /// Never sends: only cloned (under the lock, which never waits).
    origin: Mutex<Sender<Request<Req, Resp>>>,
    idle: Mutex<Vec<Sender<Request<Req, Resp>>>>,
}

impl<Req, Resp> ServerLink<Req, Resp> {
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
}

impl<Req: Clone + Send + 'static, Resp: Send + 'static> IntentPort for ClientPort<Req, Resp> {
    fn connect(&self, interest: &dyn InterestPort, link: LinkInfo<'_>) -> Result<(), PortError> {
        let server = interest
            .as_any()
            .downcast_ref::<ServerPort<Req, Resp>>()
            .ok_or(PortError::Incompatible)?;
        let tx = Sender::new();
        tx.attach(&server.inlet).map_err(|_| PortError::Closed)?;
        self.servers.lock().push(Arc::new(ServerLink {
            id: link.interest,
            origin: Mutex::new(tx),
            idle: Mutex::new(Vec::new()),
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
    ) -> Result<Self, CallError> {
        let port = Arc::new(ClientPort {
            servers: Mutex::new(Vec::new()),
        });
        let intent = linker.add_intent(route, fingerprint, Arc::clone(&port) as _)?;
        Ok(Self {
            intent,
            port,
            next_id,
            rr: AtomicUsize::new(0),
            mismatch: Mutex::new(None),
        })
    }

    fn no_server(&self) -> CallError {
        let mut mismatch = self.mismatch.lock();
        while let Some(ev) = self.intent.try_event() {
            if let LinkEvent::SchemaMismatch(m) = ev {
                *mismatch = Some(m.to_string());
            }
        }
        let route = self.route().to_string();
        match &*mismatch {
            Some(detail) => CallError::SchemaMismatch {
                route,
                detail: detail.clone(),
            },
            None => CallError::NoServer { route },
        }
    }

    fn submit(
        &self,
        req: Req,
        pick: Option<usize>,
        timeout: Duration,
    ) -> Result<Arc<Slot<Resp>>, CallError> {
        let slot = Arc::new(Slot::new());
        let request = Request {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            req,
            reply: Arc::new(ReplyTo {
                slot: Arc::clone(&slot),
            }),
        };
        // Snapshot the server, release the list, then send: a send may wait
        // for room, and the linker needs the list to link or unlink.
        let server = {
            let servers = self.port.servers.lock();
            if servers.is_empty() {
                None
            } else {
                let i =
                    pick.unwrap_or_else(|| self.rr.fetch_add(1, Ordering::Relaxed)) % servers.len();
                Some(Arc::clone(&servers[i]))
            }
        };
        let Some(server) = server else {
            return Err(self.no_server());
        };
        let tx = server.take();
        let sent = tx.send_timeout(request, timeout);
        server.put_back(tx);
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

    fn finish(
        &self,
        slot: &Slot<Resp>,
        deadline: Deadline,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let route = || self.route().to_string();
        match slot.wait(deadline) {
            Some(Outcome::Reply(r)) => Ok(r),
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

    /// Sends `req` to one server (round-robin over the servers on the route)
    /// and waits at most `timeout` for its reply (a timeout too large to add
    /// to the clock, such as `Duration::MAX`, waits without limit).
    pub fn call(&self, req: Req, timeout: Duration) -> Result<Resp, CallError> {
        let deadline = Deadline::after(timeout);
        let slot = self.submit(req, None, timeout)?;
        self.finish(&slot, deadline, timeout)
    }

    /// Sends `req` to every server on the route and collects every reply
    /// (or error), in server registration order.
    pub fn call_all(
        &self,
        req: Req,
        timeout: Duration,
    ) -> Result<Vec<Result<Resp, CallError>>, CallError> {
        let deadline = Deadline::after(timeout);
        let n = self.port.servers.lock().len();
        if n == 0 {
            return Err(self.no_server());
        }
        let slots: Vec<_> = (0..n)
            .map(|i| self.submit(req.clone(), Some(i), timeout))
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

impl Server {
    pub(crate) fn start<Req, Resp, F>(
        linker: &dndm_router::Linker,
        route: Route,
        fingerprint: u64,
        capacity: usize,
        handler: Arc<F>,
        counters: Arc<Counters>,
    ) -> Result<Self, crate::ServeError>
    where
        Req: Clone + Send + 'static,
        Resp: Send + 'static,
        F: Fn(Req) -> Resp + Send + Sync + 'static,
    {
        let rx =
            Receiver::<Request<Req, Resp>>::new(Config::new(capacity.max(1))).map_err(|e| {
                crate::ServeError::Spawn {
                    route: route.to_string(),
                    reason: e.to_string(),
                }
            })?;
        let port = Arc::new(ServerPort { inlet: rx.inlet() });
        let selector = dndm_router::Pattern::exact(&route)
            .map(dndm_router::Selector::Pattern)
            .unwrap_or_else(|| dndm_router::Selector::Hashed(route.clone()));
        let interest = linker.add_interest(selector, fingerprint, port)?;
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
        if reply.slot.abandoned() {
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
        if !reply.slot.fill(outcome) {
            counters.late_replies.fetch_add(1, Ordering::Relaxed);
        }
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
