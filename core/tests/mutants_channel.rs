//! Tests written against mutants of `channel.rs` that the other suites let
//! survive (see docs/mutants.md): what the handles print, what they count,
//! what a dropped future leaves registered, and what a lane left behind by a
//! receiver dropped in the middle of a send holds.
#![allow(
    clippy::disallowed_types,
    reason = "tests observe the channel from outside with std types"
)]

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use dndm_core::{Config, Policy, PollReceiver, Receiver, RecvError, Sender, TryRecvError, bounded};

/// A waker that counts its wake-ups; `Arc::strong_count` of it tells how
/// many registrations still hold a clone.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn waker() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count::default());
    let waker = Waker::from(Arc::clone(&count));
    (count, waker)
}

#[test]
fn handles_print_what_they_are_connected_to() {
    let (tx, rx) = bounded::<u8>(4).unwrap();
    let _second = tx.subscribe(Config::new(2)).unwrap();
    assert_eq!(format!("{tx:?}"), "Sender { receivers: 2, .. }");
    let weak = tx.downgrade();
    let _clone = tx.clone();
    assert_eq!(
        format!("{weak:?}"),
        "WeakSender { senders: 2, receivers: 2 }"
    );
    assert_eq!(
        format!("{:?}", weak.clone()),
        "WeakSender { senders: 2, receivers: 2 }"
    );
    assert_eq!(
        format!("{rx:?}"),
        "Receiver { config: Config { capacity: 4, policy: Block { timeout: None } }, .. }"
    );
    let inlet = rx.inlet();
    assert_eq!(format!("{inlet:?}"), "Inlet { closed: false }");
    let mut tx = tx;
    assert_eq!(format!("{:?}", tx.ready()), "Ready { waiting: false, .. }");
    drop(rx);
    assert_eq!(format!("{inlet:?}"), "Inlet { closed: true }");
}

#[test]
fn counts_see_every_receiver_and_sender() {
    let tx = Sender::<u8>::new();
    let a = tx.subscribe(Config::new(1)).unwrap();
    let b = tx.subscribe(Config::new(3).policy(Policy::Reject)).unwrap();
    let weak = tx.downgrade();
    assert_eq!(tx.receiver_count(), 2);
    assert_eq!(weak.receiver_count(), 2);
    let clone = tx.clone();
    assert_eq!(weak.sender_count(), 2);
    drop(clone);
    assert_eq!(weak.sender_count(), 1);

    tx.send(7).unwrap();
    let stats = tx.receiver_stats();
    assert_eq!(stats.len(), 2);
    assert_eq!(stats, vec![a.stats(), b.stats()]);
    assert!(stats.iter().all(|s| s.queued == 1 && s.lanes == 1));

    drop(a);
    assert_eq!(tx.receiver_count(), 1);
    assert_eq!(weak.receiver_count(), 1);
    drop(b);
    assert_eq!(weak.receiver_count(), 0);
}

#[test]
fn an_inlet_reports_its_receiver() {
    let rx = Receiver::<u8>::new(Config::new(5).policy(Policy::DropOldest)).unwrap();
    let other = Receiver::<u8>::new(Config::new(5)).unwrap();
    let inlet = rx.inlet();
    assert_eq!(inlet.config(), rx.config());
    assert_eq!(inlet.config().capacity(), 5);
    assert_eq!(inlet.config().get_policy(), Policy::DropOldest);
    assert!(inlet.same_receiver(&inlet.clone()));
    assert!(inlet.same_receiver(&rx.inlet()));
    assert!(!inlet.same_receiver(&other.inlet()));

    let tx = Sender::new();
    tx.attach(&inlet).unwrap();
    for v in 0..7 {
        tx.send(v).unwrap();
    }
    let stats = inlet.stats();
    assert_eq!(stats, rx.stats());
    assert_eq!((stats.queued, stats.dropped, stats.sources), (5, 2, 1));
}

#[test]
fn a_poll_receiver_keeps_its_registration_between_polls() {
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let mut prx = PollReceiver::new(rx);
    assert_eq!(prx.get_ref().config().capacity(), 4);
    let (count, waker) = waker();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(prx.poll_recv(&mut cx), Poll::Pending);
    // The registration holds a clone of the waker past the poll.
    assert_eq!(Arc::strong_count(&count), 3);
    tx.send(1).unwrap();
    assert_eq!(count.0.load(Ordering::SeqCst), 1, "the send woke the loop");
    assert_eq!(prx.poll_recv(&mut cx), Poll::Ready(Ok(1)));
    tx.send(2).unwrap();
    assert_eq!(prx.get_ref().try_recv(), Ok(2));
    assert_eq!(prx.poll_recv(&mut cx), Poll::Pending);
    // Dropping the poll receiver withdraws its registration (the sender
    // keeps the receiver's shared state alive).
    drop(prx);
    assert_eq!(Arc::strong_count(&count), 2);
    drop(tx);
}

#[test]
fn a_poll_receiver_reports_disconnection() {
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let mut prx = PollReceiver::new(rx);
    let (_count, waker) = waker();
    let mut cx = Context::from_waker(&waker);
    tx.send(5).unwrap();
    drop(tx);
    assert_eq!(prx.poll_recv(&mut cx), Poll::Ready(Ok(5)));
    assert_eq!(prx.poll_recv(&mut cx), Poll::Ready(Err(RecvError)));
}

#[test]
fn a_dropped_recv_future_withdraws_its_waker() {
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let (count, waker) = waker();
    let mut cx = Context::from_waker(&waker);
    {
        let mut fut = pin!(rx.recv_async());
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(Arc::strong_count(&count), 3);
    }
    assert_eq!(
        Arc::strong_count(&count),
        2,
        "the dropped future left its waker"
    );
    // A future that completes withdraws it too.
    let mut fut = pin!(rx.recv_async());
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Pending);
    tx.send(3).unwrap();
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Ok(3)));
    assert_eq!(Arc::strong_count(&count), 2);
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
}

#[test]
fn a_dropped_ready_future_withdraws_its_waker() {
    let (mut tx, rx) = bounded::<u32>(1).unwrap();
    tx.send(0).unwrap();
    let (count, waker) = waker();
    let mut cx = Context::from_waker(&waker);
    {
        let mut ready = tx.ready();
        assert_eq!(Pin::new(&mut ready).poll(&mut cx), Poll::Pending);
        assert_eq!(format!("{ready:?}"), "Ready { waiting: true, .. }");
        assert_eq!(Arc::strong_count(&count), 3);
    }
    assert_eq!(
        Arc::strong_count(&count),
        2,
        "the dropped future left its waker"
    );
    // Room wakes a pending `ready`, which then completes and withdraws.
    let mut ready = tx.ready();
    assert_eq!(Pin::new(&mut ready).poll(&mut cx), Poll::Pending);
    assert_eq!(rx.try_recv(), Ok(0));
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert_eq!(Pin::new(&mut ready).poll(&mut cx), Poll::Ready(()));
    assert_eq!(Arc::strong_count(&count), 2);
    drop(ready);
    tx.send(1).unwrap();
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}
