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

use dndm_core::{
    Config, Policy, PollReceiver, Receiver, RecvError, SendError, Sender, TryRecvError, bounded,
    channel,
};

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

/// Polls `fut` once with a waker nobody looks at.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    let (_count, waker) = waker();
    Pin::new(fut).poll(&mut Context::from_waker(&waker))
}

/// A `Block` receiver whose policy timeout ran out once is stalled for that
/// sender: `ready` does not wait for it. A send that gave up because of the
/// caller's own (shorter) deadline does not stall it.
#[test]
fn only_the_policy_timeout_stalls_a_receiver() {
    let policy = Policy::Block {
        timeout: Some(std::time::Duration::from_secs(3600)),
    };
    let (mut tx, rx) = channel::<u32>(Config::new(1).policy(policy)).unwrap();
    tx.send(0).unwrap();
    // The caller's deadline (now) is earlier than the policy's (an hour).
    assert!(matches!(
        tx.send_timeout(1, std::time::Duration::ZERO),
        Err(SendError::Full { msg: 1, missed: 1 })
    ));
    assert_eq!(poll_once(&mut tx.ready()), Poll::Pending, "not stalled");
    assert_eq!(rx.try_recv(), Ok(0));
    assert_eq!(poll_once(&mut tx.ready()), Poll::Ready(()));
}

#[test]
fn a_stalled_receiver_stays_stalled_until_it_has_room() {
    let policy = Policy::Block {
        timeout: Some(std::time::Duration::from_millis(1)),
    };
    let (mut tx, rx) = channel::<u32>(Config::new(1).policy(policy)).unwrap();
    tx.send(0).unwrap();
    assert_eq!(poll_once(&mut tx.ready()), Poll::Pending);
    // This send waits out the policy timeout: the receiver is now stalled.
    assert!(matches!(tx.send(1), Err(SendError::Full { msg: 1, .. })));
    assert_eq!(poll_once(&mut tx.ready()), Poll::Ready(()), "stalled");
    // A stalled receiver fails a send at once, without waiting (a wait
    // cut short by the caller's own deadline would end the stall).
    assert!(matches!(
        tx.send_timeout(2, std::time::Duration::ZERO),
        Err(SendError::Full { msg: 2, .. })
    ));
    assert_eq!(poll_once(&mut tx.ready()), Poll::Ready(()), "still stalled");
    assert!(matches!(tx.send(3), Err(SendError::Full { msg: 3, .. })));
    assert_eq!(poll_once(&mut tx.ready()), Poll::Ready(()), "still stalled");
    // Room again: the next send succeeds and clears the stall.
    assert_eq!(rx.try_recv(), Ok(0));
    tx.send(4).unwrap();
    assert_eq!(
        poll_once(&mut tx.ready()),
        Poll::Pending,
        "waited for again"
    );
    assert_eq!(rx.try_recv(), Ok(4));
}

/// `ready` follows the sender's receivers: a full receiver detached since
/// the last send is not waited for.
#[test]
fn ready_forgets_a_detached_full_receiver() {
    let (mut tx, rx) = bounded::<u32>(1).unwrap();
    tx.send(0).unwrap();
    assert_eq!(poll_once(&mut tx.ready()), Poll::Pending);
    let inlet = rx.inlet();
    assert!(tx.detach(&inlet));
    assert_eq!(poll_once(&mut tx.ready()), Poll::Ready(()));
    assert_eq!(rx.try_recv(), Ok(0));
}

#[test]
fn batches_never_take_more_than_asked() {
    let (tx, rx) = bounded::<u32>(8).unwrap();
    tx.send_iter(0..6).unwrap();
    let mut buf = Vec::new();
    assert_eq!(rx.recv_batch(&mut buf, 3), Ok(3));
    assert_eq!(buf, [0, 1, 2]);
    buf.clear();
    assert_eq!(rx.try_recv_batch(&mut buf, 2), Ok(2));
    assert_eq!(buf, [3, 4]);
    buf.clear();
    assert_eq!(rx.recv_batch(&mut buf, 0), Ok(0));
    assert_eq!(rx.try_recv_batch(&mut buf, 0), Ok(0));
    assert_eq!(rx.recv_batch(&mut buf, 1), Ok(1));
    assert_eq!(buf, [5]);
    assert_eq!(rx.stats().received, 6);
}

/// A batch takes from every lane, including lanes of senders attached
/// after the previous batch, and moves on to another lane first each time.
#[test]
fn batches_take_from_every_lane() {
    let rx = Receiver::<u32>::new(Config::new(8)).unwrap();
    let inlet = rx.inlet();
    let a = Sender::new();
    a.attach(&inlet).unwrap();
    a.send_iter([1, 2]).unwrap();
    let mut buf = Vec::new();
    assert_eq!(rx.try_recv_batch(&mut buf, 8), Ok(2));
    // A second sender comes; both queue.
    let b = Sender::new();
    b.attach(&inlet).unwrap();
    a.send_iter([3, 4]).unwrap();
    b.send_iter([10, 11, 12]).unwrap();
    buf.clear();
    assert_eq!(rx.try_recv_batch(&mut buf, 8), Ok(5));
    buf.sort_unstable();
    assert_eq!(buf, [3, 4, 10, 11, 12]);
    // Two messages a batch, four times: each batch starts at another lane,
    // so both senders are served.
    a.send_iter([5, 6, 7, 8]).unwrap();
    b.send_iter([13, 14, 15, 16]).unwrap();
    let mut firsts = Vec::new();
    for _ in 0..4 {
        buf.clear();
        assert_eq!(rx.try_recv_batch(&mut buf, 2), Ok(2));
        firsts.push(buf[0]);
    }
    firsts.sort_unstable();
    assert_eq!(firsts, [5, 7, 13, 15]);
    assert_eq!(rx.stats().received, 15);
}

/// `send_iter` to several receivers, one of which may refuse: the count of
/// sent items, and the first refused item with how many receivers missed it.
#[test]
fn send_iter_fans_out_to_a_refusing_receiver() {
    let tx = Sender::<u32>::new();
    let all = tx.subscribe(Config::new(16)).unwrap();
    let few = tx.subscribe(Config::new(2).policy(Policy::Reject)).unwrap();
    assert_eq!(tx.send_iter(0..2), Ok(2));
    let mut rest = 2..6;
    assert_eq!(
        tx.send_iter(rest.by_ref()),
        Err(SendError::Full { msg: 2, missed: 1 })
    );
    assert_eq!(rest, 3..6, "the rest stays in the iterator");
    assert_eq!(all.drain().collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(few.drain().collect::<Vec<_>>(), [0, 1]);
    assert_eq!(few.stats().rejected, 1);
}

/// A fan-out send counts every receiver that had no room, the last one
/// reached included.
#[test]
fn fan_out_counts_every_receiver_it_missed() {
    let (tx, first) = bounded::<u32>(4).unwrap();
    let last = tx.subscribe(Config::new(1).policy(Policy::Reject)).unwrap();
    tx.send(0).unwrap();
    // Only the last receiver reached is full.
    assert_eq!(tx.send(1), Err(SendError::Full { msg: 1, missed: 1 }));
    assert_eq!(tx.try_send(2), Err(SendError::Full { msg: 2, missed: 1 }));
    assert_eq!(tx.try_send(3), Err(SendError::Full { msg: 3, missed: 1 }));
    // Now both are full.
    assert_eq!(tx.try_send(4), Err(SendError::Full { msg: 4, missed: 2 }));
    assert_eq!(first.drain().collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(last.drain().collect::<Vec<_>>(), [0]);
}

/// A receiver counts the sources attached to it: a detach and the last
/// sender going away each remove that one source, and only that one.
#[test]
fn a_receiver_counts_its_sources() {
    let rx = Receiver::<u32>::new(Config::new(4)).unwrap();
    let inlet = rx.inlet();
    let (a, b, c, d) = (Sender::new(), Sender::new(), Sender::new(), Sender::new());
    for tx in [&a, &b, &c, &d] {
        tx.attach(&inlet).unwrap();
    }
    assert_eq!(rx.stats().sources, 4);
    assert!(b.detach(&inlet));
    assert_eq!(rx.stats().sources, 3);
    drop(a);
    assert_eq!(rx.stats().sources, 2);
    c.send(9).unwrap();
    assert_eq!(rx.try_recv(), Ok(9));
    drop(c);
    assert_eq!(rx.stats().sources, 1);
    d.send(10).unwrap();
    assert_eq!(rx.try_recv(), Ok(10));
    drop(d);
    assert_eq!(rx.stats().sources, 0);
}

/// `send_iter` into one full `Block` lane counts the items it queued after
/// waiting for room, not only those that went in as a batch. The iterator
/// itself makes the room (it receives one message before yielding each
/// item from the third on), so the run is the same every time.
#[test]
fn send_iter_counts_items_queued_after_the_lane_filled() {
    let (tx, rx) = bounded::<u32>(2).unwrap();
    let mut taken = Vec::new();
    let items = (0..6).inspect(|&v| {
        if v >= 2 {
            taken.push(rx.try_recv().unwrap());
        }
    });
    assert_eq!(tx.send_iter(items), Ok(6));
    assert_eq!(taken, [0, 1, 2, 3]);
    assert_eq!(rx.drain().collect::<Vec<_>>(), [4, 5]);
}

/// The first batch of a receiver with two lanes: it starts at the first
/// lane and takes from the second only what the limit leaves.
#[test]
fn a_batch_takes_what_the_limit_leaves_from_the_next_lane() {
    let rx = Receiver::<u32>::new(Config::new(8)).unwrap();
    let inlet = rx.inlet();
    let (a, b) = (Sender::new(), Sender::new());
    a.attach(&inlet).unwrap();
    b.attach(&inlet).unwrap();
    a.send(1).unwrap();
    b.send_iter([10, 11, 12]).unwrap();
    let mut buf = Vec::new();
    assert_eq!(rx.try_recv_batch(&mut buf, 2), Ok(2));
    assert_eq!(buf, [1, 10]);
    buf.clear();
    assert_eq!(rx.try_recv_batch(&mut buf, 8), Ok(2));
    assert_eq!(buf, [11, 12]);
}
