//! Introspection: a scope tree as plain data, and as a readable dump.

use std::fmt;

/// What kind of handle a scope owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandleKind {
    /// A publisher.
    Publisher,
    /// A subscriber.
    Subscriber,
    /// A server.
    Server,
    /// A service client.
    Client,
    /// The replication of the scope's replicated keys.
    Replication,
}

impl fmt::Display for HandleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandleKind::Publisher => "publisher",
            HandleKind::Subscriber => "subscriber",
            HandleKind::Server => "server",
            HandleKind::Client => "client",
            HandleKind::Replication => "replication",
        })
    }
}

/// One handle a scope owns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandleInfo {
    /// What it is.
    pub kind: HandleKind,
    /// Its route or selector.
    pub target: String,
    /// Its links now.
    pub links: usize,
}

impl HandleInfo {
    /// A handle description.
    pub fn new(kind: HandleKind, target: String, links: usize) -> Self {
        Self {
            kind,
            target,
            links,
        }
    }
}

/// A scope's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScopeCounters {
    /// Handles adopted since the scope was created.
    pub handles_created: u64,
    /// Handles the scope closed when it closed (the others were dropped by
    /// their users first).
    pub handles_closed_by_scope: u64,
    /// Operations its policies (or its ancestors') refused.
    pub denied: u64,
    /// Child scopes created.
    pub children_created: u64,
}

/// One key of a scope's state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key's name.
    pub name: String,
    /// The value's message type name.
    pub type_name: &'static str,
    /// How many times it changed (0: never written since declared).
    pub version: u64,
    /// True for a computed key.
    pub computed: bool,
    /// Observers now.
    pub observers: usize,
}

/// A scope and everything below it, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScopeInfo {
    /// The name it was created with.
    pub name: String,
    /// Its absolute path.
    pub path: String,
    /// 1 for a root.
    pub depth: usize,
    /// True once closed.
    pub closed: bool,
    /// The handles it owns now.
    pub handles: Vec<HandleInfo>,
    /// Its counters.
    pub counters: ScopeCounters,
    /// Its own policy, as text (`None` without one).
    pub policy: Option<String>,
    /// Its state keys, by name.
    pub state: Vec<KeyInfo>,
    /// Its replicated keys, by name, with what each is (`counter`,
    /// `set of fleet.Tool`).
    pub replicated: Vec<(String, String)>,
    /// Its open children.
    pub children: Vec<ScopeInfo>,
}

impl ScopeInfo {
    fn write(&self, f: &mut fmt::Formatter<'_>, indent: usize) -> fmt::Result {
        let pad = "  ".repeat(indent);
        let c = &self.counters;
        writeln!(
            f,
            "{pad}scope {} (depth {}{}): {} handles, {} created, {} closed by scope, {} denied, {} children created",
            self.path,
            self.depth,
            if self.closed { ", closed" } else { "" },
            self.handles.len(),
            c.handles_created,
            c.handles_closed_by_scope,
            c.denied,
            c.children_created,
        )?;
        if let Some(p) = &self.policy {
            writeln!(f, "{pad}  policy: {p}")?;
        }
        for h in &self.handles {
            writeln!(f, "{pad}  {} {} ({} links)", h.kind, h.target, h.links)?;
        }
        for k in &self.state {
            writeln!(
                f,
                "{pad}  state {}: {} v{}{} ({} observers)",
                k.name,
                k.type_name,
                k.version,
                if k.computed { ", computed" } else { "" },
                k.observers
            )?;
        }
        for (key, what) in &self.replicated {
            writeln!(f, "{pad}  replicated {key}: {what}")?;
        }
        for child in &self.children {
            child.write(f, indent + 1)?;
        }
        Ok(())
    }
}

impl fmt::Display for ScopeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, 0)
    }
}
