//! The typed side of the erased contract: a publisher's outlet toward a
//! peer (encode) and a subscriber's lanes from peers (validate, decode).

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use dndm_codec::{FrameHeader, Message};
use dndm_core::sync::atomic::{AtomicBool, Ordering};
use dndm_core::{Config, Inlet, Policy, PollReceiver, Receiver, Sender, TryRecvError, WeakSender};
use dndm_router::session::{Archive, LocalAlias, Session};
use dndm_router::{LinkInfo, PortError};

use super::ports::{Delivery, Lane, Outlet, PeerQueue, Pump, Pumped, SinkFactory};
use crate::pubsub::{Envelope, Item, Payload, SubShared};

/// A publisher's messages toward one peer: a core receiver attached to the
/// publisher's sender (so the peer queue has the publisher's backpressure
/// semantics), drained and encoded by the driver.
pub(crate) struct TypedOutlet<T> {
    rx: PollReceiver<Item<T>>,
    inlet: Option<Inlet<Item<T>>>,
    weak: WeakSender<Item<T>>,
    /// History replayed to the peer first.
    replay: VecDeque<Envelope<T>>,
    /// Lane messages up to this sequence number were replayed already.
    replayed_to: u64,
    /// Messages taken from the lane in one batch and not yet encoded (at
    /// most one pump budget): one lane operation per batch, not per message.
    taken: VecDeque<Envelope<T>>,
    /// Where a batch lands first (kept for its allocation).
    scratch: Vec<Item<T>>,
    /// The waker this outlet registers with its lane (see [`OutletWake`]).
    wake: Option<(Arc<OutletWake>, Waker)>,
    /// The last poll found the lane empty and left `wake` registered.
    parked: bool,
}

/// The waker an outlet registers with its lane: notes that the lane woke
/// it, then wakes the driver.
///
/// An idle outlet is pumped every driver turn (the driver has one waker for
/// everything). Polling an empty lane re-arms its registration, a heavy
/// fence each time (`membarrier` with Linux's default fence mode). While
/// the registration from the last empty poll is still armed, nothing reached
/// the lane: any message, disconnection or detach wakes the registration
/// and with it this flag. So an outlet that parked and was not woken skips
/// the poll.
struct OutletWake {
    woken: AtomicBool,
    driver: Waker,
}

impl Wake for OutletWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.driver.wake_by_ref();
    }
}

impl<T: Message + Clone + Send + 'static> TypedOutlet<T> {
    /// Opens the outlet and attaches `weak` to it; `history` (oldest first)
    /// is replayed ahead of live messages.
    pub(crate) fn open(
        weak: &WeakSender<Item<T>>,
        queue: &PeerQueue,
        history: Option<VecDeque<Envelope<T>>>,
    ) -> Result<Box<dyn Outlet>, PortError> {
        let rx = Receiver::new(Config::new(queue.capacity).policy(queue.policy))
            .map_err(|_| PortError::Incompatible)?;
        let inlet = rx.inlet();
        weak.attach(&inlet).map_err(|_| PortError::Closed)?;
        let replay = history.unwrap_or_default();
        let replayed_to = replay.back().map_or(0, |e| e.seq);
        Ok(Box::new(Self {
            rx: PollReceiver::new(rx),
            inlet: Some(inlet),
            weak: weak.clone(),
            replay,
            replayed_to,
            taken: VecDeque::new(),
            scratch: Vec::new(),
            wake: None,
            parked: false,
        }))
    }

    /// Moves up to `max` queued lane messages into `taken`, dropping wake
    /// markers and what the history replay already covered. `Err` once the
    /// lane is empty (`Empty`) or every sender is gone (`Disconnected`).
    fn refill(&mut self, max: usize) -> Result<(), TryRecvError> {
        self.rx
            .get_ref()
            .try_recv_batch(&mut self.scratch, max.max(1))?;
        for item in self.scratch.drain(..) {
            if let Item::Msg(e) = item
                && e.seq > self.replayed_to
            {
                self.taken.push_back(e);
            }
        }
        Ok(())
    }
}

impl<T: Message + Clone + Send + 'static> Outlet for TypedOutlet<T> {
    fn pump(
        &mut self,
        cx: &mut Context<'_>,
        session: &mut Session,
        now: Duration,
        alias: LocalAlias,
        budget: usize,
        max_bytes: usize,
    ) -> Pump {
        let mut done = Pump {
            state: Pumped::More,
            sent: 0,
            failed: 0,
        };
        let own = match &self.wake {
            Some((w, waker)) if w.driver.will_wake(cx.waker()) => {
                // Cleared before the lane is looked at: a wake from now on
                // sets it again.
                let woken = w.woken.swap(false, Ordering::AcqRel);
                if self.parked && !woken && self.inlet.is_some() {
                    done.state = Pumped::Idle;
                    return done;
                }
                waker.clone()
            }
            _ => {
                let w = Arc::new(OutletWake {
                    woken: AtomicBool::new(false),
                    driver: cx.waker().clone(),
                });
                let waker = Waker::from(Arc::clone(&w));
                self.wake = Some((w, waker.clone()));
                waker
            }
        };
        self.parked = false;
        let mut own_cx = Context::from_waker(&own);
        for _ in 0..budget {
            if session.pending_bytes() >= max_bytes {
                break;
            }
            let next = self.replay.pop_front().or_else(|| self.taken.pop_front());
            let env = match next {
                Some(e) => e,
                None if self.refill(budget).is_ok() => continue,
                None => match self.rx.poll_recv(&mut own_cx) {
                    Poll::Ready(Ok(Item::Msg(e))) => {
                        if e.seq <= self.replayed_to {
                            continue;
                        }
                        e
                    }
                    Poll::Ready(Ok(Item::Wake)) => continue,
                    Poll::Ready(Err(_)) => {
                        done.state = Pumped::Finished;
                        return done;
                    }
                    Poll::Pending => {
                        self.parked = true;
                        // A retired outlet gets nothing new: empty is done.
                        done.state = if self.inlet.is_none() {
                            Pumped::Finished
                        } else {
                            Pumped::Idle
                        };
                        return done;
                    }
                },
            };
            match session.send_sample(now, alias, env.seq, env.stamp_ns, &Archive(env.msg.get())) {
                Ok(_) => done.sent += 1,
                Err(_) => done.failed += 1,
            }
        }
        done
    }

    fn retire(&mut self) {
        if let Some(inlet) = self.inlet.take() {
            self.weak.detach(&inlet);
        }
    }
}

/// A subscriber's erased face: opens typed lanes for peer intents.
pub(crate) struct TypedSink<T> {
    pub(crate) inlet: Inlet<Item<T>>,
    pub(crate) shared: Arc<SubShared<T>>,
    pub(crate) policy: Policy,
}

impl<T: Message + Clone + Send + 'static> SinkFactory for TypedSink<T> {
    fn open(&self, link: &LinkInfo<'_>) -> Result<Box<dyn Lane>, PortError> {
        self.shared.add_route(link.intent.get(), link.route);
        let tx = Sender::new();
        tx.set_tag(link.intent.get());
        tx.attach(&self.inlet).map_err(|_| PortError::Closed)?;
        Ok(Box::new(TypedLane {
            tx,
            stalled: None,
            block: matches!(self.policy, Policy::Block { .. }),
            publisher: link.intent.get(),
        }))
    }
}

/// One peer intent → one local subscriber.
struct TypedLane<T> {
    tx: Sender<Item<T>>,
    stalled: Option<Item<T>>,
    block: bool,
    publisher: u64,
}

impl<T: Clone + Send> TypedLane<T> {
    fn offer(&mut self, item: Item<T>) -> Delivery {
        match self.tx.try_send(item) {
            Ok(()) | Err(dndm_core::SendError::Disconnected(_)) => Delivery::Delivered,
            Err(dndm_core::SendError::Full { msg, .. }) if self.block => {
                self.stalled = Some(msg);
                Delivery::Stalled
            }
            Err(_) => Delivery::Dropped,
        }
    }
}

impl<T: Message + Clone + Send + 'static> Lane for TypedLane<T> {
    fn deliver(&mut self, header: &FrameHeader, payload: &[u8]) -> Delivery {
        // Validated before any access, whatever fingerprint the peer claims.
        let Ok(archived) = dndm_codec::access::<T>(payload) else {
            return Delivery::Invalid;
        };
        let Ok(msg) = dndm_codec::deserialize::<T>(archived) else {
            return Delivery::Invalid;
        };
        self.offer(Item::Msg(Envelope {
            seq: header.seq,
            stamp_ns: header.timestamp_ns,
            publisher: self.publisher,
            msg: Payload::Owned(msg),
        }))
    }

    fn retry(&mut self) -> Delivery {
        match self.stalled.take() {
            Some(item) => self.offer(item),
            None => Delivery::Delivered,
        }
    }
}
