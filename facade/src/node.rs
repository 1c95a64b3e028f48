//! The node: the entry point that owns a linker and creates handles.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use dndm_codec::Message;
use dndm_codec::schema::SchemaHasher;
use dndm_core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use dndm_router::{Linker, Pattern, Route, RouteKey, Selector};
use parking_lot::Mutex;

use crate::error::{
    BuildError, CallError, ConnectError, ListenError, PublishError, ServeError, SubscribeError,
};
use crate::pubsub::{PublishOptions, Publisher, Sample, Step, SubscribeOptions, Subscriber, waker};
use crate::remote::{Net, NetConfig, PeerEvent, PeerId, PeerInfo};
use crate::service::{Client, Server, ServerEnv, panic_message};
use dndm_transport::{Address, Transport};

/// Counters shared by a node's handles and threads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) handler_panics: AtomicU64,
    pub(crate) callback_panics: AtomicU64,
    pub(crate) late_replies: AtomicU64,
    pub(crate) abandoned_requests: AtomicU64,
}

/// A snapshot of a node's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Service handlers that panicked (each caller got an error reply).
    pub handler_panics: u64,
    /// Subscriber callbacks that panicked (the callback keeps running).
    pub callback_panics: u64,
    /// Replies that arrived after their caller gave up.
    pub late_replies: u64,
    /// Requests a server skipped because their caller had already given up
    /// (timed out) when the server reached them: their handler never ran.
    pub abandoned_requests: u64,
    /// Publishers and clients registered now.
    pub intents: usize,
    /// Subscribers and servers registered now.
    pub interests: usize,
    /// Links now.
    pub links: usize,
}

/// Makes a client's link guard (called only when the client is not cached).
pub(crate) type MakeGuard<'a> = dyn Fn() -> Arc<dyn dndm_router::LinkGuard> + 'a;

/// Request and reply types, path, and the guarding scope's identity (0:
/// the node's own, unguarded client).
type ClientKey = (TypeId, TypeId, String, usize);

/// The clients [`Node::call`] made, the least recently used evicted first:
/// calling many paths once each never keeps one intent per path forever.
struct ClientCache {
    entries: HashMap<ClientKey, (Arc<dyn Any + Send + Sync>, u64)>,
    tick: u64,
    capacity: usize,
}

impl ClientCache {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            tick: 0,
            capacity,
        }
    }

    fn get(&mut self, key: &ClientKey) -> Option<Arc<dyn Any + Send + Sync>> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|(c, used)| {
            *used = tick;
            Arc::clone(c)
        })
    }

    /// Inserts `client`; returns the evicted one, to be dropped outside the
    /// node's lock (dropping a client unregisters it from the linker).
    fn insert(
        &mut self,
        key: ClientKey,
        client: Arc<dyn Any + Send + Sync>,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        self.tick += 1;
        let mut evicted = None;
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            evicted = oldest.and_then(|k| self.entries.remove(&k)).map(|(c, _)| c);
        }
        if self.capacity > 0 {
            self.entries.insert(key, (client, self.tick));
        }
        evicted
    }
}

struct NodeInner {
    name: String,
    id: PeerId,
    /// Declared before the linkers so that it stops first (see `Drop`).
    net: Net,
    topics: Linker,
    services: Linker,
    counters: Arc<Counters>,
    next_call: Arc<AtomicU64>,
    clients: Mutex<ClientCache>,
    defaults: SubscribeOptions,
    server_capacity: usize,
}

impl Drop for NodeInner {
    fn drop(&mut self) {
        // Peers first: they are told goodbye while the linker still holds
        // their proxies, then the driver thread is joined.
        self.net.shutdown();
        self.clients.get_mut().entries.clear();
        self.topics.close();
        self.services.close();
    }
}

/// A participant in the data fabric: creates publishers, subscribers,
/// servers and clients, all linked by one in-process linker.
///
/// Cloning gives another handle to the same node. When the last handle is
/// dropped the node closes: every link is removed before `drop` returns,
/// publishers see no interest, and subscribers drain and then report
/// closure.
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

/// Configures a [`Node`].
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    name: String,
    defaults: SubscribeOptions,
    server_capacity: usize,
    client_cache: usize,
    net: NetConfig,
    listen: Vec<Address>,
    connect: Vec<Address>,
}

fn parse_listen(uri: &str) -> Result<Address, ListenError> {
    uri.parse().map_err(|source| ListenError::Address {
        input: uri.to_owned(),
        source,
    })
}

fn parse_connect(uri: &str) -> Result<Address, ConnectError> {
    uri.parse().map_err(|source| ConnectError::Address {
        input: uri.to_owned(),
        source,
    })
}

impl NodeBuilder {
    /// Default options of [`Node::subscribe`].
    pub fn subscribe_defaults(mut self, opts: SubscribeOptions) -> Self {
        self.defaults = opts;
        self
    }

    /// Requests a server queues per client sender handle before callers
    /// wait (default 1024). A client has one handle per caller that sends to
    /// the server at the same time, so a server queues at most
    /// `capacity × concurrent callers` requests (see `docs/memory.md`).
    pub fn server_capacity(mut self, capacity: usize) -> Self {
        self.server_capacity = capacity;
        self
    }

    /// How many clients [`Node::call`] and [`Node::client`] keep for reuse
    /// (default 64), the least recently used dropped first. A dropped
    /// client's intent is withdrawn; a client the caller still holds stays
    /// valid. 0 keeps none: each `call` then registers a client anew.
    pub fn client_cache(mut self, capacity: usize) -> Self {
        self.client_cache = capacity;
        self
    }

    /// Listens for peers on `uri` when the node is built: `tcp://`
    /// (`tcp://127.0.0.1:0` picks a free port, see [`Node::listen`]),
    /// `unix://`, or `mem://` (the process's simulated network).
    ///
    /// # Errors
    ///
    /// [`ListenError::Address`] if `uri` is not an address.
    pub fn listen(mut self, uri: &str) -> Result<Self, ListenError> {
        self.listen.push(parse_listen(uri)?);
        Ok(self)
    }

    /// Connects to the peer listening on `uri` when the node is built.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Address`] if `uri` is not an address.
    pub fn connect(mut self, uri: &str) -> Result<Self, ConnectError> {
        self.connect.push(parse_connect(uri)?);
        Ok(self)
    }

    /// The queue between each local publisher and each peer interested in
    /// it: `capacity` messages, and what a publisher does when the peer is
    /// slower than it ([`Policy::DropOldest`](dndm_core::Policy::DropOldest)
    /// by default: a slow or unreachable peer never slows a publisher; use
    /// `Policy::Block { timeout: Some(t) }` for lossless delivery, each stall
    /// bounded by `t`, counted in [`Publisher::dropped`](crate::Publisher::dropped)).
    /// A peer that takes no bytes for `stall_timeout` is disconnected (default 10 s).
    pub fn peer_queue(
        mut self,
        capacity: usize,
        policy: dndm_core::Policy,
        stall_timeout: Duration,
    ) -> Self {
        self.net.peer_queue.capacity = capacity;
        self.net.peer_queue.policy = policy;
        self.net.peer_queue.stall_timeout = stall_timeout;
        self
    }

    /// The node's namespace, told to peers in the handshake.
    pub fn path(mut self, path: dndm_router::Path) -> Self {
        self.net.path = Some(path);
        self
    }

    /// Only routes under these paths are offered to peers (whole segments:
    /// `robot.arm` covers `robot.arm.imu`, not `robot.army`). Default: all.
    pub fn export_under(mut self, paths: impl IntoIterator<Item = dndm_router::Path>) -> Self {
        self.net.export = dndm_router::session::PathFilter::under(paths);
        self
    }

    /// Only peers' routes under these paths are accepted. Default: all.
    pub fn import_under(mut self, paths: impl IntoIterator<Item = dndm_router::Path>) -> Self {
        self.net.import = dndm_router::session::PathFilter::under(paths);
        self
    }

    /// Limits every peer must respect (declarations, pattern complexity,
    /// pending requests, frame length, name length).
    pub fn peer_limits(mut self, limits: dndm_router::session::Limits) -> Self {
        self.net.limits = limits;
        self
    }

    /// The settings of the transports the node makes for `tcp://`,
    /// `unix://` and `mem://` addresses (frame and queue limits, timeouts,
    /// connection limits).
    ///
    /// The send queue is raised to at least the largest frame plus one
    /// write batch (256 KiB), the least a peer connection works with.
    pub fn transport_config(mut self, mut config: dndm_transport::Config) -> Self {
        self.net.limits.max_frame_len = u32::try_from(config.max_frame_len).unwrap_or(u32::MAX);
        config.max_queued_bytes = crate::remote::queue_room(&config);
        self.net.transport = config;
        self
    }

    /// Builds the node, listening and connecting where the builder was told.
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming the address that failed; nothing is left
    /// running.
    pub fn build(self) -> Result<Node, BuildError> {
        let listen = self.listen.clone();
        let connect = self.connect.clone();
        let node = self.build_local();
        for addr in &listen {
            node.inner.net.listen(addr)?;
        }
        for addr in &connect {
            node.inner.net.connect(addr)?;
        }
        Ok(node)
    }

    fn build_local(self) -> Node {
        let id = PeerId::random();
        let topics = Linker::new();
        let services = Linker::new();
        Node {
            inner: Arc::new(NodeInner {
                net: Net::new(id, &self.name, self.net, topics.clone(), services.clone()),
                id,
                name: self.name,
                topics,
                services,
                counters: Arc::new(Counters::default()),
                next_call: Arc::new(AtomicU64::new(1)),
                clients: Mutex::new(ClientCache::new(self.client_cache)),
                defaults: self.defaults,
                server_capacity: self.server_capacity,
            }),
        }
    }
}

fn service_fingerprint<Req: Message, Resp: Message>() -> u64 {
    SchemaHasher::new()
        .str("dndm.service")
        .u64(Req::FINGERPRINT)
        .u64(Resp::FINGERPRINT)
        .finish()
}

impl Node {
    /// A node with default options, reachable only from its own process
    /// until it [`listen`](Self::listen)s or [`connect`](Self::connect)s.
    pub fn new(name: &str) -> Self {
        Self::builder(name).build_local()
    }

    /// A builder for a node with options.
    pub fn builder(name: &str) -> NodeBuilder {
        NodeBuilder {
            name: name.to_string(),
            defaults: SubscribeOptions::default(),
            server_capacity: 1024,
            client_cache: 64,
            net: NetConfig::default(),
            listen: Vec::new(),
            connect: Vec::new(),
        }
    }

    /// The node's id: 128 random bits drawn when it was built, which peers
    /// see in [`PeerInfo::id`].
    pub fn id(&self) -> PeerId {
        self.inner.id
    }

    /// Listens for peers on `uri` (`tcp://127.0.0.1:7447`, `unix:///run/x.sock`,
    /// `mem://name`) and returns the address it listens on (with the real
    /// port when `:0` asked for any). Listen on loopback unless peers on
    /// other hosts must reach this node.
    ///
    /// # Errors
    ///
    /// [`ListenError`] naming the address.
    pub fn listen(&self, uri: &str) -> Result<Address, ListenError> {
        self.inner.net.listen(&parse_listen(uri)?)
    }

    /// Connects to the peer listening on `uri`. Returns once the connection
    /// is open; the handshake completes on the node's driver thread (see
    /// [`wait_for_peers`](Self::wait_for_peers), [`next_peer_event`](Self::next_peer_event)).
    ///
    /// # Errors
    ///
    /// [`ConnectError`] naming the address.
    pub fn connect(&self, uri: &str) -> Result<(), ConnectError> {
        self.inner.net.connect(&parse_connect(uri)?)
    }

    /// [`listen`](Self::listen) through a transport the caller supplies
    /// (any [`Transport`] implementation).
    ///
    /// # Errors
    ///
    /// [`ListenError`] naming the address.
    pub fn listen_with<T>(&self, transport: &T, addr: &Address) -> Result<Address, ListenError>
    where
        T: Transport,
        T::Listener: Send + 'static,
        T::Connection: Send + 'static,
    {
        self.inner.net.listen_with(transport, addr)
    }

    /// [`connect`](Self::connect) through a transport the caller supplies.
    ///
    /// # Errors
    ///
    /// [`ConnectError`] naming the address.
    pub fn connect_with<T>(&self, transport: &T, addr: &Address) -> Result<(), ConnectError>
    where
        T: Transport,
        T::Connection: Send + 'static,
    {
        self.inner.net.connect_with(transport, addr)
    }

    /// The peers connected now, with their traffic.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.inner.net.peers()
    }

    /// Waits at most `timeout` (`None`: no limit) until at least `n` peers
    /// are connected. True if they are.
    pub fn wait_for_peers(&self, n: usize, timeout: Option<Duration>) -> bool {
        self.inner.net.wait_peers(|k| k >= n, timeout)
    }

    /// Waits at most `timeout` for the next peer event (connected, left);
    /// the node keeps the latest [`PEER_EVENT_CAPACITY`](crate::PEER_EVENT_CAPACITY).
    pub fn next_peer_event(&self, timeout: Option<Duration>) -> Option<PeerEvent> {
        self.inner.net.next_event(timeout)
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The node's counters.
    pub fn stats(&self) -> NodeStats {
        let c = &self.inner.counters;
        NodeStats {
            handler_panics: c.handler_panics.load(Ordering::Relaxed),
            callback_panics: c.callback_panics.load(Ordering::Relaxed),
            late_replies: c.late_replies.load(Ordering::Relaxed),
            abandoned_requests: c.abandoned_requests.load(Ordering::Relaxed),
            intents: self.inner.topics.intent_count() + self.inner.services.intent_count(),
            interests: self.inner.topics.interest_count() + self.inner.services.interest_count(),
            links: self.inner.topics.link_count() + self.inner.services.link_count(),
        }
    }

    /// Publishes `T` on `T::TYPE_NAME@path`. Linked to every matching
    /// subscriber before it returns.
    pub fn publish<T>(&self, path: &str) -> Result<Publisher<T>, PublishError>
    where
        T: Message + Clone + Send + 'static,
    {
        self.publish_with(path, PublishOptions::default())
    }

    /// [`publish`](Self::publish) with options (history depth).
    pub fn publish_with<T>(
        &self,
        path: &str,
        opts: PublishOptions,
    ) -> Result<Publisher<T>, PublishError>
    where
        T: Message + Clone + Send + 'static,
    {
        let route = Route::new(T::TYPE_NAME, path)?;
        Publisher::register(&self.inner.topics, route, T::FINGERPRINT, opts)
    }

    /// Publishes `T` on a hashed (capability) route: only subscribers that
    /// hold `key` and name the same type and path can link.
    pub fn publish_hashed<T>(
        &self,
        key: &RouteKey,
        prefix: &str,
        path: &str,
        opts: PublishOptions,
    ) -> Result<Publisher<T>, PublishError>
    where
        T: Message + Clone + Send + 'static,
    {
        let route = Route::hashed(key, T::TYPE_NAME, prefix, path)?;
        Publisher::register(&self.inner.topics, route, T::FINGERPRINT, opts)
    }

    /// Subscribes to `T` on every route `T::TYPE_NAME@pattern` matches
    /// (`*`: one segment, `**`: any number), with the node's default options.
    pub fn subscribe<T>(&self, pattern: &str) -> Result<Subscriber<T>, SubscribeError>
    where
        T: Message + Clone + Send + 'static,
    {
        self.subscribe_with(pattern, self.inner.defaults)
    }

    /// [`subscribe`](Self::subscribe) with options (capacity, policy).
    pub fn subscribe_with<T>(
        &self,
        pattern: &str,
        opts: SubscribeOptions,
    ) -> Result<Subscriber<T>, SubscribeError>
    where
        T: Message + Clone + Send + 'static,
    {
        let selector = Selector::Pattern(Pattern::new(T::TYPE_NAME, pattern)?);
        Subscriber::register(&self.inner.topics, selector, T::FINGERPRINT, opts)
    }

    /// Subscribes to a hashed route (see [`publish_hashed`](Self::publish_hashed)).
    pub fn subscribe_hashed<T>(
        &self,
        key: &RouteKey,
        prefix: &str,
        path: &str,
        opts: SubscribeOptions,
    ) -> Result<Subscriber<T>, SubscribeError>
    where
        T: Message + Clone + Send + 'static,
    {
        let route = Route::hashed(key, T::TYPE_NAME, prefix, path)?;
        Subscriber::register(
            &self.inner.topics,
            Selector::Hashed(route),
            T::FINGERPRINT,
            opts,
        )
    }

    /// Subscribes and runs `callback` for every sample on a dedicated
    /// thread. A panic in the callback is caught, counted
    /// ([`NodeStats::callback_panics`]) and logged to stderr; the callback
    /// keeps receiving. Dropping the returned handle stops and joins the
    /// thread.
    pub fn subscribe_fn<T, F>(
        &self,
        pattern: &str,
        opts: SubscribeOptions,
        callback: F,
    ) -> Result<Callback, SubscribeError>
    where
        T: Message + Clone + Send + 'static,
        F: FnMut(Sample<T>) + Send + 'static,
    {
        let sub = self.subscribe_with::<T>(pattern, opts)?;
        let stop = Arc::new(AtomicBool::new(false));
        let wake = Box::new(waker(&sub));
        let counters = Arc::clone(&self.inner.counters);
        let flag = Arc::clone(&stop);
        let name = sub.pattern().to_string();
        let thread = std::thread::Builder::new()
            .name(format!("dndm-sub {name}"))
            .spawn(move || callback_loop(sub, callback, &flag, &counters))
            .map_err(|e| SubscribeError::Spawn {
                pattern: name,
                reason: e.to_string(),
            })?;
        Ok(Callback {
            stop,
            wake,
            thread: Some(thread),
        })
    }

    /// Serves `Req@path` with `handler` on one worker thread. Several
    /// servers on one route share the requests: each request is handled by
    /// exactly one of them (round-robin per client). A panicking handler
    /// answers the caller with [`CallError::HandlerPanicked`] and keeps
    /// serving.
    pub fn serve<Req, Resp, F>(&self, path: &str, handler: F) -> Result<Server, ServeError>
    where
        Req: Message + Clone + Send + 'static,
        Resp: Message + Send + 'static,
        F: Fn(Req) -> Resp + Send + Sync + 'static,
    {
        self.serve_guarded(path, handler, None)
    }

    /// [`serve`](Self::serve) whose server links only with the clients
    /// `guard` admits (a scope's policy against peers' clients).
    pub(crate) fn serve_guarded<Req, Resp, F>(
        &self,
        path: &str,
        handler: F,
        guard: Option<Arc<dyn dndm_router::LinkGuard>>,
    ) -> Result<Server, ServeError>
    where
        Req: Message + Clone + Send + 'static,
        Resp: Message + Send + 'static,
        F: Fn(Req) -> Resp + Send + Sync + 'static,
    {
        let route = Route::new(Req::TYPE_NAME, path)?;
        let env = ServerEnv {
            linker: &self.inner.services,
            capacity: self.inner.server_capacity,
            counters: Arc::clone(&self.inner.counters),
            next_id: Arc::clone(&self.inner.next_call),
            guard,
        };
        Server::start(
            env,
            route,
            service_fingerprint::<Req, Resp>(),
            Arc::new(handler),
        )
    }

    /// A client for `Req@path`; keep it to call many times cheaply.
    pub fn client<Req, Resp>(&self, path: &str) -> Result<Arc<Client<Req, Resp>>, CallError>
    where
        Req: Message + Clone + Send + 'static,
        Resp: Message + Send + 'static,
    {
        self.client_guarded(path, None)
    }

    /// [`client`](Self::client) whose client links only with the servers
    /// `guard` admits; cached apart for each guarding scope (`identity`,
    /// never 0: see `dndm_scope::Checker::identity`, alive as long as the
    /// cached guard is).
    pub(crate) fn client_guarded<Req, Resp>(
        &self,
        path: &str,
        guard: Option<(usize, &MakeGuard<'_>)>,
    ) -> Result<Arc<Client<Req, Resp>>, CallError>
    where
        Req: Message + Clone + Send + 'static,
        Resp: Message + Send + 'static,
    {
        let identity = guard.as_ref().map_or(0, |(id, _)| *id);
        let key = (
            TypeId::of::<Req>(),
            TypeId::of::<Resp>(),
            path.to_string(),
            identity,
        );
        let cached = self.inner.clients.lock().get(&key);
        if let Some(c) = cached
            && let Ok(c) = c.downcast::<Client<Req, Resp>>()
        {
            return Ok(c);
        }
        let route = Route::new(Req::TYPE_NAME, path)?;
        let client = Arc::new(Client::register(
            &self.inner.services,
            route,
            service_fingerprint::<Req, Resp>(),
            Arc::clone(&self.inner.next_call),
            guard.map(|(_, make)| make()),
        )?);
        let evicted = self
            .inner
            .clients
            .lock()
            .insert(key, Arc::clone(&client) as Arc<dyn Any + Send + Sync>);
        // Unregistered here, outside the cache's lock.
        drop(evicted);
        Ok(client)
    }

    /// Calls the service on `Req@path` and waits at most `timeout` for the
    /// reply, from a server in this process or on a peer. Waits for a server
    /// to appear within the same timeout. Errors: no server, timeout,
    /// handler panic, schema mismatch, the serving peer gone.
    pub fn call<Req, Resp>(
        &self,
        path: &str,
        req: Req,
        timeout: Duration,
    ) -> Result<Resp, CallError>
    where
        Req: Message + Clone + Send + 'static,
        Resp: Message + Send + 'static,
    {
        self.client::<Req, Resp>(path)?.call(req, timeout)
    }

    /// Calls every server on `Req@path` (broadcast) and collects the replies.
    pub fn call_all<Req, Resp>(
        &self,
        path: &str,
        req: Req,
        timeout: Duration,
    ) -> Result<Vec<Result<Resp, CallError>>, CallError>
    where
        Req: Message + Clone + Send + 'static,
        Resp: Message + Send + 'static,
    {
        self.client::<Req, Resp>(path)?.call_all(req, timeout)
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.inner.name)
            .field("stats", &self.stats())
            .finish()
    }
}

fn callback_loop<T, F>(sub: Subscriber<T>, mut callback: F, stop: &AtomicBool, counters: &Counters)
where
    F: FnMut(Sample<T>),
{
    while !stop.load(Ordering::Acquire) {
        match sub.step(dndm_core::Deadline::NEVER) {
            Step::Sample(s) => {
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| callback(s))) {
                    counters.callback_panics.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        pattern = sub.pattern(),
                        panic = %panic_message(&*payload),
                        "dndm: subscriber callback panicked; it keeps receiving"
                    );
                }
            }
            Step::Closed => break,
            Step::Woken | Step::Empty => {}
        }
    }
}

/// A running callback subscription (see [`Node::subscribe_fn`]). Dropping
/// it stops the thread (after the sample being handled) and joins it.
pub struct Callback {
    stop: Arc<AtomicBool>,
    wake: Box<dyn Fn() + Send + Sync>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Callback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        (self.wake)();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callback").finish_non_exhaustive()
    }
}

// The topics linker, for scopes that register handles with a link guard
// (`facade/src/scope.rs`).
impl Node {
    pub(crate) fn topics(&self) -> &Linker {
        &self.inner.topics
    }

    pub(crate) fn subscribe_defaults(&self) -> SubscribeOptions {
        self.inner.defaults
    }
}
