//! Scopes on a node: namespaces that own their handles, check policies
//! and hold state.
//!
//! `dndm-scope` keeps the tree, names, policies, ownership and state; this
//! module composes it with a [`Node`]. Every handle a [`Scope`] creates is
//! registered with the node as usual and adopted by the scope, which can
//! withdraw it from the node's linker by id when it closes (so the other
//! side of each link is told, whoever holds the handle). The publish hot
//! path adds one atomic load to a plain publisher's: whether the scope
//! closed. Paths are resolved and policies checked when a handle is made,
//! so the depth of a scope never reaches the hot path.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use dndm_codec::Message;
use dndm_core::sync::atomic::{AtomicBool, Ordering};
use dndm_router::session::Origin;
use dndm_router::{IntentId, InterestId, LinkGuard, LinkInfo, Linker, Selector};
use dndm_scope::{Checker, ClosedError, GrantError, HandleInfo, HandleKind, Membership, Owned};
use parking_lot::Mutex;

/// Scopes without a node: tree, policies, state types, introspection.
pub use dndm_scope as scopes;
/// The access policy of a scope (not the queue [`Policy`](crate::Policy)).
pub use dndm_scope::Policy as ScopePolicy;
pub use dndm_scope::{
    Access, Denied, Op, PathError, ScopeError, ScopeInfo, State, StateAccessError, Target,
};

use crate::error::{CallError, PublishError, SendError, ServeError, SubscribeError};
use crate::node::Node;
use crate::pubsub::{PublishOptions, Publisher, SubscribeOptions, Subscriber};
use crate::service::Server;

macro_rules! scope_error {
    ($(#[$doc:meta])* $name:ident, $msg:literal, $inner:ident, $inner_doc:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[non_exhaustive]
        pub enum $name {
            /// The path or pattern does not resolve inside the scope.
            #[error($msg)]
            Path(#[from] PathError),
            /// A policy of the scope or an ancestor refused it; nothing was
            /// registered.
            #[error($msg)]
            Denied(#[from] Denied),
            /// The scope is closed.
            #[error($msg)]
            Closed(#[from] ClosedError),
            #[doc = $inner_doc]
            #[error(transparent)]
            Node(#[from] $inner),
        }
    };
}

scope_error!(
    /// [`Scope::publish`] failed.
    ScopePublishError,
    "cannot publish: {0}",
    PublishError,
    "The node refused it (see [`PublishError`])."
);
scope_error!(
    /// [`Scope::subscribe`] failed.
    ScopeSubscribeError,
    "cannot subscribe: {0}",
    SubscribeError,
    "The node refused it (see [`SubscribeError`])."
);
scope_error!(
    /// [`Scope::serve`] failed.
    ScopeServeError,
    "cannot serve: {0}",
    ServeError,
    "The node refused it (see [`ServeError`])."
);
scope_error!(
    /// [`Scope::call`] failed.
    ScopeCallError,
    "cannot call: {0}",
    CallError,
    "The call failed (see [`CallError`])."
);

/// [`ScopedPublisher::send`] failed. The message is handed back.
#[derive(PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeSendError<T> {
    /// The publisher's scope closed: it is withdrawn and reaches nobody.
    #[error("send on {route} failed: scope {scope} is closed")]
    Closed {
        /// The message.
        msg: T,
        /// The publisher's route.
        route: String,
        /// The scope's path.
        scope: String,
    },
    /// Some subscribers had no room (see [`SendError`]).
    #[error(transparent)]
    Send(SendError<T>),
}

impl<T> ScopeSendError<T> {
    /// The message that was not fully delivered.
    pub fn into_inner(self) -> T {
        match self {
            Self::Closed { msg, .. } => msg,
            Self::Send(e) => e.into_inner(),
        }
    }
}

impl<T> fmt::Debug for ScopeSendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed { route, scope, .. } => f
                .debug_struct("Closed")
                .field("route", route)
                .field("scope", scope)
                .finish_non_exhaustive(),
            Self::Send(e) => f.debug_tuple("Send").field(e).finish(),
        }
    }
}

/// A scope on a node: a namespace (`robot.arm`) whose paths are relative,
/// which owns every handle it creates, checks its policies (and its
/// ancestors') before creating one, and holds isolated state.
///
/// Cloning gives another handle to the same scope. Dropping the last one,
/// or [`close`](Self::close), closes its children and then every handle it
/// owns before returning: publishers stop (their sends fail with
/// [`ScopeSendError::Closed`]), subscribers drain and then report closure,
/// servers stop; the other side of each link is told.
///
/// ```
/// use dndm::prelude::*;
/// use dndm::{Op, ScopePolicy as Policy};
/// use rkyv::{Archive, Deserialize, Serialize};
///
/// #[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
/// #[message(name = "robot.Pose")]
/// struct Pose {
///     x: f32,
/// }
///
/// let node = Node::new("robot");
/// let arm = node.scope("robot.arm")?;
/// let gripper = arm.child("gripper")?;
///
/// let poses = arm.subscribe::<Pose>("**")?; // robot.arm.**
/// let pose = gripper.publish::<Pose>("pose")?; // robot.arm.gripper.pose
/// pose.send(Pose { x: 1.0 })?;
/// assert_eq!(poses.recv()?.route().to_string(), "robot.Pose@robot.arm.gripper.pose");
///
/// arm.set_policy(Policy::new().deny(&[Op::Publish], "secret.**")?);
/// assert!(gripper.publish::<Pose>("/robot.arm.secret.key").is_err());
/// assert!(gripper.publish::<Pose>("../base").is_err());
///
/// arm.close(); // closes the gripper scope and its publisher first
/// assert!(pose.send(Pose { x: 2.0 }).is_err());
/// assert!(poses.recv().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Scope {
    node: Node,
    scope: dndm_scope::Scope,
}

impl Node {
    /// A root scope `name` (dotted segments, `robot.arm`) on this node.
    ///
    /// Each call makes a new tree: two roots with one path are independent
    /// (each owns its handles and checks only its own policies). Build a
    /// hierarchy with [`Scope::child`].
    pub fn scope(&self, name: &str) -> Result<Scope, ScopeError> {
        Ok(Scope {
            node: self.clone(),
            scope: dndm_scope::Scope::root(name)?,
        })
    }
}

impl Scope {
    /// A child scope `name`, inheriting this scope's settings and policies.
    pub fn child(&self, name: &str) -> Result<Scope, ScopeError> {
        Ok(Scope {
            node: self.node.clone(),
            scope: self.scope.child(name)?,
        })
    }

    /// The scope's absolute path.
    pub fn path(&self) -> &str {
        self.scope.path()
    }

    /// 1 for a root scope, one more per level.
    pub fn depth(&self) -> usize {
        self.scope.depth()
    }

    /// The node it lives on.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The scope without the node: settings, policies, grants, ownership.
    pub fn tree(&self) -> &dndm_scope::Scope {
        &self.scope
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.scope.is_closed()
    }

    /// Closes children, then every handle; all are withdrawn before this
    /// returns.
    pub fn close(&self) {
        self.scope.close();
    }

    /// Sets this scope's policy (relative patterns resolve under it). An
    /// operation must pass every ancestor's policy and this one.
    pub fn set_policy(&self, policy: ScopePolicy) {
        self.scope.set_policy(policy);
    }

    /// Options for [`subscribe`](Self::subscribe) here and in descendants
    /// that set none (otherwise the node's defaults).
    pub fn set_subscribe_defaults(&self, opts: SubscribeOptions) {
        self.scope.set(opts);
    }

    /// Options for [`publish`](Self::publish) here and in descendants that
    /// set none.
    pub fn set_publish_defaults(&self, opts: PublishOptions) {
        self.scope.set(opts);
    }

    /// This scope's state (read and write).
    pub fn state(&self) -> State {
        self.scope.state()
    }

    /// Lets `descendant` reach this scope's state with `access`.
    pub fn grant(&self, descendant: &Scope, access: Access) -> Result<(), GrantError> {
        self.scope.grant(&descendant.scope, access)
    }

    /// The state of the ancestor at absolute path `ancestor`, if it granted
    /// access to this scope (or an ancestor of it below the owner).
    pub fn state_of(&self, ancestor: &str) -> Result<State, StateAccessError> {
        self.scope.state_of(ancestor)
    }

    /// The scope tree below (and including) this scope as data.
    pub fn info(&self) -> ScopeInfo {
        self.scope.info()
    }

    /// Publishes `T` on `path` inside this scope, with the inherited
    /// [`PublishOptions`].
    pub fn publish<T>(&self, path: &str) -> Result<ScopedPublisher<T>, ScopePublishError>
    where
        T: Message + Clone + Send + 'static,
    {
        let opts = self
            .scope
            .get::<PublishOptions>()
            .map(|o| *o)
            .unwrap_or_default();
        self.publish_with(path, opts)
    }

    /// [`publish`](Self::publish) with options.
    pub fn publish_with<T>(
        &self,
        path: &str,
        opts: PublishOptions,
    ) -> Result<ScopedPublisher<T>, ScopePublishError>
    where
        T: Message + Clone + Send + 'static,
    {
        let route = self.scope.resolve_route(T::TYPE_NAME, path)?;
        self.scope.check(Op::Publish, Target::Route(&route))?;
        let ticket = self.scope.reserve()?;
        // A peer's subscriber links only if it may subscribe to the route.
        let guard = PeerGuard::for_scope(&self.scope, Op::Subscribe);
        let inner = Publisher::register_guarded(
            self.node.topics(),
            route.clone(),
            T::FINGERPRINT,
            opts,
            Some(guard),
        )?;
        let (linker, id) = inner.registration();
        let closed = Arc::new(AtomicBool::new(false));
        let owned = Arc::new(IntentHandle {
            linker,
            id,
            route: route.to_string(),
            closed: Arc::clone(&closed),
        });
        let membership = ticket.adopt(owned)?;
        Ok(ScopedPublisher {
            inner,
            closed,
            membership,
        })
    }

    /// Subscribes to `T` on `pattern` inside this scope (`**`: everything
    /// below it), with the inherited [`SubscribeOptions`] (else the node's).
    pub fn subscribe<T>(&self, pattern: &str) -> Result<ScopedSubscriber<T>, ScopeSubscribeError>
    where
        T: Message + Clone + Send + 'static,
    {
        let opts = self.scope.get::<SubscribeOptions>().map(|o| *o);
        self.subscribe_opts(pattern, opts)
    }

    /// [`subscribe`](Self::subscribe) with options.
    pub fn subscribe_with<T>(
        &self,
        pattern: &str,
        opts: SubscribeOptions,
    ) -> Result<ScopedSubscriber<T>, ScopeSubscribeError>
    where
        T: Message + Clone + Send + 'static,
    {
        self.subscribe_opts(pattern, Some(opts))
    }

    fn subscribe_opts<T>(
        &self,
        pattern: &str,
        opts: Option<SubscribeOptions>,
    ) -> Result<ScopedSubscriber<T>, ScopeSubscribeError>
    where
        T: Message + Clone + Send + 'static,
    {
        let pattern = self.scope.resolve_pattern(T::TYPE_NAME, pattern)?;
        let selector = Selector::Pattern(pattern);
        self.scope
            .check(Op::Subscribe, Target::Selector(&selector))?;
        let ticket = self.scope.reserve()?;
        let opts = opts.unwrap_or_else(|| self.node.subscribe_defaults());
        // A peer's publisher links only if it may publish on its route.
        let guard = PeerGuard::for_scope(&self.scope, Op::Publish);
        let inner = Subscriber::register_guarded(
            self.node.topics(),
            selector.clone(),
            T::FINGERPRINT,
            opts,
            Some(guard),
        )?;
        let (linker, id) = inner.registration();
        let owned = Arc::new(InterestHandle {
            linker,
            id,
            selector: selector.to_string(),
        });
        let membership = ticket.adopt(owned)?;
        Ok(ScopedSubscriber { inner, membership })
    }

    /// Serves `Req@path` inside this scope (see [`Node::serve`]). A peer's
    /// client links to the server only if the scope's policies allow
    /// calling the route; a refused peer's calls find no server.
    pub fn serve<Req, Resp, F>(
        &self,
        path: &str,
        handler: F,
    ) -> Result<ScopedServer, ScopeServeError>
    where
        Req: Message + Clone + Send + 'static,
        Resp: Message + Send + 'static,
        F: Fn(Req) -> Resp + Send + Sync + 'static,
    {
        let route = self.scope.resolve_route(Req::TYPE_NAME, path)?;
        self.scope.check(Op::Serve, Target::Route(&route))?;
        let ticket = self.scope.reserve()?;
        let abs = route.path().map(|p| p.as_str()).unwrap_or_default();
        // A peer's client must be allowed to call the route to link.
        let guard = PeerGuard::for_scope(&self.scope, Op::Call);
        let server = self
            .node
            .serve_guarded::<Req, Resp, F>(abs, handler, Some(guard))?;
        let owned = Arc::new(ServerHandle {
            server: Mutex::new(Some(server)),
            route: route.to_string(),
        });
        let membership = ticket.adopt(Arc::clone(&owned) as Arc<dyn Owned>)?;
        Ok(ScopedServer {
            handle: owned,
            membership,
        })
    }

    /// Calls `Req@path` inside this scope and waits at most `timeout` (see
    /// [`Node::call`]). The scope's client is cached by the node (shared by
    /// the scope's callers of the route, evicted least recently used) and
    /// links only with the peers' servers the scope's policies allow to
    /// serve the route; the node's own servers were checked when made.
    pub fn call<Req, Resp>(
        &self,
        path: &str,
        req: Req,
        timeout: Duration,
    ) -> Result<Resp, ScopeCallError>
    where
        Req: Message + Clone + Send + 'static,
        Resp: Message + Send + 'static,
    {
        let route = self.scope.resolve_route(Req::TYPE_NAME, path)?;
        self.scope.check(Op::Call, Target::Route(&route))?;
        // The call's client belongs to the node, so the scope holds no
        // ticket while it waits (its close never waits for a reply).
        drop(self.scope.reserve()?);
        let abs = route.path().map(|p| p.as_str()).unwrap_or_default();
        let checker = self.scope.checker();
        let make = || {
            Arc::new(PeerGuard {
                checker: checker.clone(),
                op: Op::Serve,
            }) as Arc<dyn LinkGuard>
        };
        let client = self
            .node
            .client_guarded::<Req, Resp>(abs, Some((checker.identity(), &make)))?;
        Ok(client.call(req, timeout)?)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("path", &self.path())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// The scope tree as a readable dump.
impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.info(), f)
    }
}

/// Puts a peer's declaration to a scope's policies before it links with a
/// handle of the scope: a peer's publisher must be allowed to publish on
/// its route, a peer's subscriber to subscribe to the route it would
/// receive, a peer's client to call the route a scoped server serves, a
/// peer's server to serve the route a scope's call is for.
/// Local handles were checked when they were made.
struct PeerGuard {
    checker: Checker,
    op: Op,
}

impl PeerGuard {
    fn for_scope(scope: &dndm_scope::Scope, op: Op) -> Arc<dyn LinkGuard> {
        Arc::new(Self {
            checker: scope.checker(),
            op,
        })
    }
}

impl LinkGuard for PeerGuard {
    fn admit(&self, other: Origin, link: LinkInfo<'_>) -> Result<(), String> {
        if other == Origin::Local {
            return Ok(());
        }
        self.checker
            .check(self.op, Target::Route(link.route))
            .map_err(|denied| format!("{denied} (a declaration of {other:?})"))
    }
}

struct IntentHandle {
    linker: Linker,
    id: IntentId,
    route: String,
    closed: Arc<AtomicBool>,
}

impl Owned for IntentHandle {
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.linker.withdraw_intent(self.id);
    }

    fn info(&self) -> HandleInfo {
        HandleInfo::new(
            HandleKind::Publisher,
            self.route.clone(),
            self.linker.intent_link_count(self.id),
        )
    }
}

struct InterestHandle {
    linker: Linker,
    id: InterestId,
    selector: String,
}

impl Owned for InterestHandle {
    fn close(&self) {
        self.linker.withdraw_interest(self.id);
    }

    fn info(&self) -> HandleInfo {
        HandleInfo::new(
            HandleKind::Subscriber,
            self.selector.clone(),
            self.linker.interest_link_count(self.id),
        )
    }
}

struct ServerHandle {
    server: Mutex<Option<Server>>,
    route: String,
}

impl Owned for ServerHandle {
    fn close(&self) {
        // Dropping the server unregisters it and joins its worker.
        let server = self.server.lock().take();
        drop(server);
    }

    fn info(&self) -> HandleInfo {
        // A server's link count is not visible from outside its handle.
        HandleInfo::new(HandleKind::Server, self.route.clone(), 0)
    }
}

/// A publisher owned by a [`Scope`]: a [`Publisher`] whose sends fail once
/// its scope closed. Derefs to the publisher for everything else.
pub struct ScopedPublisher<T> {
    inner: Publisher<T>,
    closed: Arc<AtomicBool>,
    membership: Membership,
}

impl<T: dndm_codec::Message + Clone + Send + 'static> ScopedPublisher<T> {
    fn closed_error(&self, msg: T) -> ScopeSendError<T> {
        ScopeSendError::Closed {
            msg,
            route: self.inner.route().to_string(),
            scope: self.membership.scope().to_string(),
        }
    }

    /// Publishes `msg` (see [`Publisher::send`]).
    #[inline]
    pub fn send(&self, msg: T) -> Result<(), ScopeSendError<T>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(self.closed_error(msg));
        }
        self.inner.send(msg).map_err(ScopeSendError::Send)
    }

    /// Publishes without waiting (see [`Publisher::try_send`]).
    pub fn try_send(&self, msg: T) -> Result<(), ScopeSendError<T>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(self.closed_error(msg));
        }
        self.inner.try_send(msg).map_err(ScopeSendError::Send)
    }

    /// Publishes waiting at most `timeout` (see [`Publisher::send_timeout`]).
    pub fn send_timeout(&self, msg: T, timeout: Duration) -> Result<(), ScopeSendError<T>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(self.closed_error(msg));
        }
        self.inner
            .send_timeout(msg, timeout)
            .map_err(ScopeSendError::Send)
    }
}

impl<T> ScopedPublisher<T> {
    /// True once its scope closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The owning scope's path.
    pub fn scope(&self) -> &str {
        self.membership.scope()
    }
}

impl<T> Deref for ScopedPublisher<T> {
    type Target = Publisher<T>;

    fn deref(&self) -> &Publisher<T> {
        &self.inner
    }
}

impl<T> fmt::Debug for ScopedPublisher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedPublisher")
            .field("scope", &self.membership.scope())
            .field("publisher", &self.inner)
            .finish()
    }
}

/// A subscriber owned by a [`Scope`]. Once its scope closed it drains what
/// was queued, then every receive reports closure. Derefs to [`Subscriber`].
pub struct ScopedSubscriber<T> {
    inner: Subscriber<T>,
    membership: Membership,
}

impl<T> ScopedSubscriber<T> {
    /// True once its scope closed.
    pub fn is_closed(&self) -> bool {
        self.membership.is_closed()
    }

    /// The owning scope's path.
    pub fn scope(&self) -> &str {
        self.membership.scope()
    }
}

impl<T> Deref for ScopedSubscriber<T> {
    type Target = Subscriber<T>;

    fn deref(&self) -> &Subscriber<T> {
        &self.inner
    }
}

impl<T> fmt::Debug for ScopedSubscriber<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedSubscriber")
            .field("scope", &self.membership.scope())
            .field("subscriber", &self.inner)
            .finish()
    }
}

/// A server owned by a [`Scope`]: stopped (unregistered, worker joined)
/// when dropped or when its scope closes.
pub struct ScopedServer {
    handle: Arc<ServerHandle>,
    membership: Membership,
}

impl ScopedServer {
    /// The service route.
    pub fn route(&self) -> &str {
        &self.handle.route
    }

    /// True once stopped by its scope.
    pub fn is_closed(&self) -> bool {
        self.handle.server.lock().is_none()
    }
}

impl Drop for ScopedServer {
    fn drop(&mut self) {
        self.handle.close();
    }
}

impl fmt::Debug for ScopedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedServer")
            .field("scope", &self.membership.scope())
            .field("route", &self.handle.route)
            .finish()
    }
}
