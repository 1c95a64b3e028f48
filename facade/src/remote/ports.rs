//! The linker ports of a peer: proxies for its declarations, and the erased
//! data contract that joins them to typed publishers and subscribers.
//!
//! A peer's intent is registered in the node's linker as a [`PeerIntent`];
//! a local subscriber links to it like to any publisher and receives through
//! a [`Lane`] it opened itself ([`SinkFactory`], the subscriber's erased
//! face: validation and decoding happen on the typed side). A peer's
//! interest is registered as a [`PeerInterest`]; a local publisher that
//! links to it hands the peer an [`Outlet`] (its messages, encoded on the
//! driver thread). The linker has already checked route, type name and
//! schema fingerprint; the proxies never learn a Rust type.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use dndm_codec::FrameHeader;
use dndm_core::sync::atomic::{AtomicU64, Ordering};
use dndm_router::session::{LocalAlias, RemoteIntentId, RemoteInterestId, Session};
use dndm_router::{IntentId, IntentPort, InterestId, InterestPort, LinkInfo, PortError, Route};
use parking_lot::Mutex;

// ---------------------------------------------------------------------------
// The erased contract

/// What became of one inbound sample at one local subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Queued (or the subscriber is gone: nothing to do).
    Delivered,
    /// Refused or evicted by the subscriber's policy (counted there).
    Dropped,
    /// A `Block` subscriber is full: the lane holds the sample; retry later.
    Stalled,
    /// The payload is not a valid archive of the subscriber's type.
    Invalid,
}

/// One link from a peer's intent to a local subscriber, opened by the
/// subscriber's typed side.
pub(crate) trait Lane: Send {
    /// Validates, decodes and queues one sample.
    fn deliver(&mut self, header: &FrameHeader, payload: &[u8]) -> Delivery;
    /// Retries a stalled sample; `Delivered` when none is held.
    fn retry(&mut self) -> Delivery;
}

/// A subscriber's erased face: opens lanes for peer intents.
pub(crate) trait SinkFactory: Send + Sync {
    /// A lane for the link `link` (the intent is a [`PeerIntent`]).
    fn open(&self, link: &LinkInfo<'_>) -> Result<Box<dyn Lane>, PortError>;
}

/// What a subscriber port returns from [`InterestPort::erased`].
pub(crate) struct ErasedSubscriber(pub(crate) Arc<dyn SinkFactory>);

/// What [`Outlet::pump`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pumped {
    /// Nothing queued; the waker is registered.
    Idle,
    /// The budget ran out with messages left.
    More,
    /// Drained and the publisher is gone.
    Finished,
}

/// What one [`Outlet::pump`] did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pump {
    pub(crate) state: Pumped,
    /// Messages queued in the session.
    pub(crate) sent: u64,
    /// Messages that could not be encoded (too large, or a serialiser error).
    pub(crate) failed: u64,
}

/// A local publisher's messages on their way to one peer.
pub(crate) trait Outlet: Send {
    /// Encodes up to `budget` queued messages into `session` on `alias`,
    /// stopping early once the session holds `max_bytes` of frames.
    fn pump(
        &mut self,
        cx: &mut Context<'_>,
        session: &mut Session,
        now: Duration,
        alias: LocalAlias,
        budget: usize,
        max_bytes: usize,
    ) -> Pump;
    /// Stops taking new messages (the last link to the peer is gone);
    /// queued ones still drain.
    fn retire(&mut self);
}

// ---------------------------------------------------------------------------
// Per-peer shared state

/// One local publisher's outlet toward a peer.
pub(crate) struct OutletEntry {
    pub(crate) route: Route,
    pub(crate) fingerprint: u64,
    /// Remote interests of the peer linked to the publisher.
    pub(crate) refs: usize,
    pub(crate) outlet: Box<dyn Outlet>,
    /// The driver declared the intent itself to drain this retiring outlet
    /// (the publisher came and went between two turns, so the registration
    /// watch never reported it) and withdraws it when drained.
    pub(crate) declared_here: bool,
}

/// How a publisher's queue toward a peer is configured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerQueue {
    pub(crate) capacity: usize,
    pub(crate) policy: dndm_core::Policy,
    /// A peer that takes no bytes this long is disconnected.
    pub(crate) stall_timeout: Duration,
}

/// What the ports and the driver share about one peer.
pub(crate) struct PeerShared {
    /// The connection's address.
    pub(crate) label: String,
    /// What this node offers the peer.
    pub(crate) export: dndm_router::session::PathFilter,
    /// Who the peer is, once the handshake completed.
    pub(crate) info: Mutex<Option<super::PeerDetails>>,
    pub(crate) queue: PeerQueue,
    /// Local publisher → its outlet toward this peer.
    pub(crate) outlets: Mutex<HashMap<IntentId, OutletEntry>>,
    /// Outlets whose last link went away, draining.
    pub(crate) retiring: Mutex<Vec<OutletEntry>>,
    pub(crate) waker: Waker,
    pub(crate) counters: PeerCounters,
    /// The session's estimate of the peer's clock offset.
    pub(crate) clock_offset: Mutex<Option<i64>>,
    /// Calls to the peer's servers and replies to its clients.
    pub(crate) rpc: super::rpc::RpcQueues,
}

impl PeerShared {
    /// The peer's node name once its hello came, its address before.
    pub(crate) fn name(&self) -> String {
        self.info
            .lock()
            .as_ref()
            .map_or_else(|| self.label.clone(), |i| i.name.clone())
    }
}

/// A peer's traffic counters.
#[derive(Default)]
pub(crate) struct PeerCounters {
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) msgs_in: AtomicU64,
    pub(crate) msgs_out: AtomicU64,
    /// Samples from the peer dropped here: invalid payloads, and samples
    /// refused by a local subscriber's policy.
    pub(crate) dropped_in: AtomicU64,
    /// Messages that could not be encoded for the peer.
    pub(crate) dropped_out: AtomicU64,
    pub(crate) invalid_in: AtomicU64,
    pub(crate) rtt_ns: AtomicU64,
}

impl PeerCounters {
    /// Adds `n`; adding zero (most drop counts, per frame) costs no
    /// atomic read-modify-write.
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        if n > 0 {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }
}

// ---------------------------------------------------------------------------
// Proxies

/// A peer's interest, registered in the node's linker.
pub(crate) struct PeerInterest {
    pub(crate) peer: Arc<PeerShared>,
    #[allow(dead_code)]
    pub(crate) remote: RemoteInterestId,
    /// Its schema fingerprint (the linker links only intents with the same).
    pub(crate) fingerprint: u64,
}

impl PeerInterest {
    /// A local publisher linked to this interest: count the link, opening
    /// the publisher's outlet at its first link to the peer.
    pub(crate) fn link(
        &self,
        link: &LinkInfo<'_>,
        open: impl FnOnce(&PeerQueue) -> Result<Box<dyn Outlet>, PortError>,
    ) -> Result<(), PortError> {
        if !self.peer.export.allows_route(link.route) {
            return Err(PortError::NotExported);
        }
        let mut outlets = self.peer.outlets.lock();
        if let Some(e) = outlets.get_mut(&link.intent) {
            e.refs += 1;
            return Ok(());
        }
        let outlet = open(&self.peer.queue)?;
        outlets.insert(
            link.intent,
            OutletEntry {
                route: link.route.clone(),
                fingerprint: self.fingerprint,
                refs: 1,
                outlet,
                declared_here: false,
            },
        );
        drop(outlets);
        self.peer.waker.wake_by_ref();
        Ok(())
    }

    /// A local publisher unlinked: at its last link to the peer its outlet
    /// retires (what it queued still drains).
    pub(crate) fn unlink(&self, link: &LinkInfo<'_>) {
        let mut outlets = self.peer.outlets.lock();
        let Some(e) = outlets.get_mut(&link.intent) else {
            return;
        };
        e.refs -= 1;
        if e.refs > 0 {
            return;
        }
        if let Some(mut e) = outlets.remove(&link.intent) {
            drop(outlets);
            e.outlet.retire();
            self.peer.retiring.lock().push(e);
            self.peer.waker.wake_by_ref();
        }
    }
}

impl InterestPort for PeerInterest {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A peer's intent, registered in the node's linker: local subscribers
/// link to it and get samples through their lanes.
pub(crate) struct PeerIntent {
    #[allow(dead_code)]
    pub(crate) remote: RemoteIntentId,
    lanes: Mutex<Vec<(InterestId, Box<dyn Lane>)>>,
}

impl PeerIntent {
    pub(crate) fn new(remote: RemoteIntentId) -> Self {
        Self {
            remote,
            lanes: Mutex::new(Vec::new()),
        }
    }

    /// Delivers one sample to every linked subscriber. Returns
    /// `(stalled, dropped, invalid)` counts.
    pub(crate) fn deliver(&self, header: &FrameHeader, payload: &[u8]) -> (usize, u64, u64) {
        let mut lanes = self.lanes.lock();
        let (mut stalled, mut dropped, mut invalid) = (0, 0, 0);
        for (_, lane) in lanes.iter_mut() {
            match lane.deliver(header, payload) {
                Delivery::Delivered => {}
                Delivery::Dropped => dropped += 1,
                Delivery::Stalled => stalled += 1,
                Delivery::Invalid => invalid += 1,
            }
        }
        (stalled, dropped, invalid)
    }

    /// Retries stalled lanes; true once none holds a sample.
    pub(crate) fn retry(&self) -> bool {
        let mut lanes = self.lanes.lock();
        let mut stalled = 0;
        for (_, lane) in lanes.iter_mut() {
            if lane.retry() == Delivery::Stalled {
                stalled += 1;
            }
        }
        stalled == 0
    }
}

impl IntentPort for PeerIntent {
    fn connect(&self, interest: &dyn InterestPort, link: LinkInfo<'_>) -> Result<(), PortError> {
        let sink = interest
            .erased()
            .and_then(|e| e.downcast_ref::<ErasedSubscriber>())
            .ok_or(PortError::Incompatible)?;
        let lane = sink.0.open(&link)?;
        self.lanes.lock().push((link.interest, lane));
        Ok(())
    }

    fn disconnect(&self, _: &dyn InterestPort, link: LinkInfo<'_>) {
        let removed = {
            let mut lanes = self.lanes.lock();
            lanes
                .iter()
                .position(|(j, _)| *j == link.interest)
                .map(|i| lanes.swap_remove(i))
        };
        // The lane (and its sender) drops outside the lock.
        drop(removed);
    }
}
