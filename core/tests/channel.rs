//! Behaviour users rely on, one property per test.
#![allow(
    clippy::disallowed_types,
    reason = "tests observe the channel from outside with std types"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use dndm_core::{
    AttachError, Config, ConfigError, MAX_CAPACITY, Policy, Receiver, RecvTimeoutError, SendError,
    Sender, TryRecvError, bounded, channel,
};

const SHORT: Duration = Duration::from_millis(50);
const LONG: Duration = Duration::from_secs(10);

#[test]
fn bad_capacity_is_a_typed_error() {
    assert_eq!(bounded::<u8>(0).unwrap_err(), ConfigError::ZeroCapacity);
    assert_eq!(
        bounded::<u8>(MAX_CAPACITY + 1).unwrap_err(),
        ConfigError::CapacityTooLarge {
            requested: MAX_CAPACITY + 1,
            max: MAX_CAPACITY
        }
    );
    assert!(bounded::<u8>(MAX_CAPACITY).is_ok());
    assert!(
        bounded::<u8>(0)
            .unwrap_err()
            .to_string()
            .contains("at least 1")
    );
}

#[test]
fn fifo_and_capacity_is_exact() {
    let (tx, rx) = channel::<u32>(Config::new(3).policy(Policy::Reject)).unwrap();
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    match tx.send(3) {
        Err(SendError::Full { msg: 3, missed: 1 }) => {}
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(rx.stats().rejected, 1);
    assert_eq!(rx.stats().queued, 3);
    assert_eq!(rx.drain().collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn send_without_receiver_hands_the_message_back() {
    let tx = Sender::<String>::new();
    assert_eq!(
        tx.send("hello".into()),
        Err(SendError::Disconnected("hello".to_string()))
    );
    let (tx, rx) = bounded::<String>(4).unwrap();
    drop(rx);
    let err = tx.send("again".into()).unwrap_err();
    assert!(err.is_disconnected());
    assert_eq!(err.into_inner(), "again");
    assert_eq!(tx.receiver_count(), 0);
}

#[test]
fn receiver_drains_then_ends_when_senders_are_gone() {
    let (tx, rx) = bounded::<u32>(8).unwrap();
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    tx2.send(2).unwrap();
    drop(tx);
    drop(tx2);
    let mut got: Vec<u32> = rx.iter().collect();
    got.sort_unstable();
    assert_eq!(got, vec![1, 2]);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert!(rx.recv().is_err());
    assert_eq!(rx.recv_timeout(SHORT), Err(RecvTimeoutError::Disconnected));
}

#[test]
fn recv_timeout_times_out() {
    let (_tx, rx) = bounded::<u32>(8).unwrap();
    let t = Instant::now();
    assert_eq!(rx.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
    assert!(t.elapsed() >= SHORT);
}

#[test]
fn blocked_receiver_wakes_on_send_and_on_close() {
    let (tx, rx) = bounded::<u32>(8).unwrap();
    let h = thread::spawn(move || (rx.recv(), rx.recv()));
    thread::sleep(SHORT);
    tx.send(5).unwrap();
    thread::sleep(SHORT);
    drop(tx);
    let (a, b) = h.join().unwrap();
    assert_eq!(a, Ok(5));
    assert!(b.is_err());
}

#[test]
fn block_policy_waits_for_room() {
    let (tx, rx) = bounded::<u32>(2).unwrap();
    tx.send(0).unwrap();
    tx.send(1).unwrap();
    // Full: try_send refuses, send_timeout gives up, both hand the message back.
    assert_eq!(tx.try_send(2), Err(SendError::Full { msg: 2, missed: 1 }));
    assert_eq!(
        tx.send_timeout(2, SHORT),
        Err(SendError::Full { msg: 2, missed: 1 })
    );
    let h = thread::spawn(move || {
        tx.send(2).unwrap();
        tx.send(3).unwrap();
    });
    thread::sleep(SHORT);
    assert_eq!(rx.recv_timeout(LONG), Ok(0));
    assert_eq!(rx.recv_timeout(LONG), Ok(1));
    assert_eq!(rx.recv_timeout(LONG), Ok(2));
    assert_eq!(rx.recv_timeout(LONG), Ok(3));
    h.join().unwrap();
}

#[test]
fn block_policy_timeout_counts_as_missed() {
    let (tx, rx) = channel::<u32>(Config::new(1).policy(Policy::Block {
        timeout: Some(SHORT),
    }))
    .unwrap();
    tx.send(0).unwrap();
    let t = Instant::now();
    assert_eq!(tx.send(1), Err(SendError::Full { msg: 1, missed: 1 }));
    assert!(t.elapsed() >= SHORT);
    assert_eq!(rx.try_recv(), Ok(0));
}

#[test]
fn dropping_the_receiver_releases_a_blocked_sender() {
    // The sender must be blocked when the receiver goes; a loaded machine may
    // start the thread late, so a round where the receiver left first proves
    // nothing and is tried again with a longer head start.
    let mut released = 0;
    for round in 0..6 {
        let (tx, rx) = bounded::<u32>(1).unwrap();
        tx.send(0).unwrap();
        let (started, sending) = std::sync::mpsc::channel();
        let h = thread::spawn(move || {
            started.send(()).unwrap();
            // Blocks: the lane is full. Returns once the receiver is gone.
            let r = tx.send(1);
            (r, tx.receiver_count())
        });
        sending.recv_timeout(LONG).unwrap();
        thread::sleep(SHORT * (1 << round));
        drop(rx);
        let (r, receivers) = h.join().unwrap();
        assert_eq!(receivers, 0);
        match r {
            // The sender was blocked and the receiver's departure released it.
            Ok(()) => {
                released += 1;
                break;
            }
            // The receiver left before the send began: inconclusive.
            Err(SendError::Disconnected(1)) => continue,
            Err(e) => panic!("round {round}: unexpected {e:?}"),
        }
    }
    assert_eq!(released, 1, "no round had the sender blocked in time");
}

#[test]
fn drop_oldest_keeps_the_latest() {
    let (tx, rx) = channel::<u32>(Config::new(4).policy(Policy::DropOldest)).unwrap();
    for i in 0..10 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.stats().dropped, 6);
    // The sender reads the same counters.
    assert_eq!(tx.receiver_stats(), vec![rx.stats()]);
    assert_eq!(rx.drain().collect::<Vec<_>>(), vec![6, 7, 8, 9]);
    assert_eq!(rx.stats().received, 4);
}

#[test]
fn fan_out_shares_one_payload() {
    let (tx, a) = bounded::<Arc<Vec<u8>>>(4).unwrap();
    let b = tx.subscribe(Config::new(4)).unwrap();
    let c = tx
        .subscribe(Config::new(4).policy(Policy::DropOldest))
        .unwrap();
    assert_eq!(tx.receiver_count(), 3);
    let payload = Arc::new(vec![7u8; 1 << 16]);
    tx.send(Arc::clone(&payload)).unwrap();
    let (x, y, z) = (a.recv().unwrap(), b.recv().unwrap(), c.recv().unwrap());
    assert!(Arc::ptr_eq(&x, &payload) && Arc::ptr_eq(&y, &payload) && Arc::ptr_eq(&z, &payload));
    drop(b);
    assert_eq!(tx.receiver_count(), 2);
}

#[test]
fn fan_out_reports_the_receivers_it_missed() {
    let (tx, a) = channel::<u32>(Config::new(1).policy(Policy::Reject)).unwrap();
    let b = tx.subscribe(Config::new(8)).unwrap();
    tx.send(0).unwrap();
    assert_eq!(tx.send(1), Err(SendError::Full { msg: 1, missed: 1 }));
    assert_eq!(a.drain().collect::<Vec<_>>(), vec![0]);
    assert_eq!(b.drain().collect::<Vec<_>>(), vec![0, 1]);
}

#[test]
fn fan_in_keeps_per_sender_order() {
    let (tx, rx) = bounded::<(usize, u32)>(16).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..10_000 {
                    tx.send((p, i)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut next = [0u32; 4];
    loop {
        match rx.recv_timeout(LONG) {
            Ok((p, i)) => {
                assert_eq!(i, next[p], "sender {p} out of order");
                next[p] += 1;
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("{e} within {LONG:?}, after {next:?}, senders still attached"),
        }
    }
    assert_eq!(next, [10_000; 4]);
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn attach_detach_and_inlets() {
    let rx = Receiver::<u32>::new(Config::new(4)).unwrap();
    // No sender and no inlet: nothing can ever arrive.
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));

    let inlet = rx.inlet();
    assert_eq!(
        rx.try_recv(),
        Err(TryRecvError::Empty),
        "an inlet keeps it open"
    );
    let tx = Sender::new();
    assert_eq!(tx.attach(&inlet), Ok(true));
    assert_eq!(tx.attach(&inlet), Ok(false), "attaching twice is a no-op");
    assert_eq!(tx.receiver_count(), 1);
    assert_eq!(rx.stats().sources, 1);
    tx.send(1).unwrap();
    assert!(tx.detach(&inlet));
    assert!(!tx.detach(&inlet));
    assert_eq!(tx.receiver_count(), 0);
    assert!(tx.send(2).unwrap_err().is_disconnected());
    assert_eq!(rx.recv_timeout(LONG), Ok(1));

    let weak = tx.downgrade();
    assert_eq!(weak.attach(&inlet), Ok(true));
    tx.send(3).unwrap();
    assert_eq!(rx.recv_timeout(LONG), Ok(3));
    drop(tx);
    assert_eq!(weak.sender_count(), 0);
    assert_eq!(weak.attach(&inlet), Err(AttachError::SenderClosed));
    drop(inlet);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));

    let tx = Sender::<u32>::new();
    let inlet = {
        let rx = Receiver::new(Config::new(1)).unwrap();
        rx.inlet()
    };
    assert!(inlet.is_closed());
    assert_eq!(tx.attach(&inlet), Err(AttachError::ReceiverClosed));
}

#[test]
fn sender_is_told_when_receivers_come_and_go() {
    let tx = Sender::<u32>::new();
    let watcher = tx.downgrade();
    let (saw_first, first_seen) = std::sync::mpsc::channel();
    let h = thread::spawn(move || {
        saw_first
            .send(watcher.wait_receivers(|n| n > 0, Some(LONG)))
            .unwrap();
        watcher.wait_receivers(|n| n == 0, Some(LONG))
    });
    // Whether the watcher starts waiting before or after the receiver comes,
    // it sees one; the receiver leaves only after that.
    thread::sleep(SHORT);
    let rx = tx.subscribe(Config::new(1)).unwrap();
    assert_eq!(first_seen.recv_timeout(LONG).unwrap(), Ok(1));
    drop(rx);
    assert_eq!(h.join().unwrap(), Ok(0));
    assert_eq!(tx.wait_receivers(|n| n > 0, Some(SHORT)), Err(0));
}

#[test]
fn send_iter_stops_at_the_first_failure() {
    let (tx, rx) = channel::<u32>(Config::new(3).policy(Policy::Reject)).unwrap();
    let mut items = 0..10;
    match tx.send_iter(items.by_ref()) {
        Err(SendError::Full { msg: 3, missed: 1 }) => {}
        other => panic!("expected Full(3), got {other:?}"),
    }
    assert_eq!(items.next(), Some(4), "the rest stays in the iterator");
    assert_eq!(rx.drain().collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(tx.send_iter(10..12), Ok(2));
    let mut buf = Vec::new();
    assert_eq!(rx.recv_batch(&mut buf, 8), Ok(2));
    assert_eq!(buf, vec![10, 11]);
}

#[test]
fn try_recv_batch_takes_runs_without_waiting() {
    let (tx, rx) = bounded::<u32>(8).unwrap();
    let tx2 = tx.clone();
    let mut buf = Vec::new();
    assert_eq!(rx.try_recv_batch(&mut buf, 4), Err(TryRecvError::Empty));
    tx.send_iter(0..5).unwrap();
    tx2.send_iter(100..102).unwrap();
    assert_eq!(rx.try_recv_batch(&mut buf, 4), Ok(4));
    assert_eq!(rx.try_recv_batch(&mut buf, 10), Ok(3));
    let (mut a, mut b): (Vec<u32>, Vec<u32>) = buf.iter().partition(|v| **v < 100);
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!((a, b), ((0..5).collect(), vec![100, 101]));
    // Per-sender order holds inside the batch.
    let firsts: Vec<u32> = buf.iter().copied().filter(|v| *v < 100).collect();
    assert_eq!(firsts, (0..5).collect::<Vec<_>>());
    drop((tx, tx2));
    assert_eq!(
        rx.try_recv_batch(&mut buf, 4),
        Err(TryRecvError::Disconnected)
    );
}

#[test]
fn send_iter_blocks_per_item_under_block_policy() {
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let h = thread::spawn(move || tx.send_iter(0..1000));
    let got: Vec<u32> = rx.iter().collect();
    assert_eq!(h.join().unwrap(), Ok(1000));
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
}

#[test]
fn send_iter_fans_out_in_order_to_every_receiver() {
    let (tx, a) = bounded::<Arc<u32>>(8).unwrap();
    let b = tx.subscribe(Config::new(3)).unwrap();
    let c = tx
        .subscribe(Config::new(2).policy(Policy::DropOldest))
        .unwrap();
    let (ha, hb) = (
        thread::spawn(move || a.iter().map(|v| *v).collect::<Vec<_>>()),
        thread::spawn(move || b.iter().map(|v| *v).collect::<Vec<_>>()),
    );
    assert_eq!(tx.send_iter((0..1000).map(Arc::new)), Ok(1000));
    drop(tx);
    let all: Vec<u32> = (0..1000).collect();
    assert_eq!(ha.join().unwrap(), all);
    assert_eq!(hb.join().unwrap(), all);
    let latest: Vec<u32> = c.drain().map(|v| *v).collect();
    assert_eq!(latest, vec![998, 999]);
    assert_eq!(c.stats().dropped, 998);
}

#[test]
fn churning_senders_do_not_pile_up_lanes_on_a_busy_receiver() {
    let (steady, rx) = bounded::<u32>(64).unwrap();
    // The receiver never finds every lane empty: the steady sender keeps
    // one message queued ahead of it the whole time.
    steady.send(0).unwrap();
    for i in 0..1000 {
        let tx = steady.clone();
        tx.send(i).unwrap();
        drop(tx);
        steady.send(i).unwrap();
        for _ in 0..2 {
            rx.recv_timeout(LONG)
                .unwrap_or_else(|e| panic!("round {i}: a queued message did not arrive: {e}"));
        }
        assert!(rx.stats().lanes <= 3, "lanes piled up: {:?}", rx.stats());
    }
}

#[test]
fn a_finished_tagged_sender_is_reported_once_after_its_lane_drains() {
    let rx = Receiver::<u32>::new(Config::new(4)).unwrap();
    let inlet = rx.inlet();
    let (a, b) = (Sender::new(), Sender::new());
    a.set_tag(7);
    b.set_tag(9);
    a.attach(&inlet).unwrap();
    b.attach(&inlet).unwrap();
    a.send(1).unwrap();
    b.send(2).unwrap();
    drop(a);
    let mut tags = Vec::new();
    assert_eq!(
        rx.take_retired_tags(&mut tags),
        0,
        "its message is still queued"
    );
    let mut got: Vec<u32> = rx.drain().collect();
    got.sort_unstable();
    assert_eq!(got, vec![1, 2]);
    assert_eq!(rx.take_retired_tags(&mut tags), 1);
    assert_eq!(tags, vec![7]);
    assert_eq!(rx.take_retired_tags(&mut tags), 0, "reported once");
    drop(b);
    assert!(rx.try_recv().is_err());
    assert_eq!(rx.take_retired_tags(&mut tags), 1);
    assert_eq!(tags, vec![7, 9]);
}

#[test]
fn dropping_a_receiver_frees_queued_messages_at_once() {
    let live = Arc::new(AtomicUsize::new(0));
    struct Tracked(Arc<AtomicUsize>);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let (tx, rx) = bounded::<Arc<Tracked>>(16).unwrap();
    for _ in 0..10 {
        live.fetch_add(1, Ordering::SeqCst);
        tx.send(Arc::new(Tracked(Arc::clone(&live)))).unwrap();
    }
    assert_eq!(live.load(Ordering::SeqCst), 10);
    drop(rx);
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "queued messages outlived the receiver"
    );
}

/// A minimal executor: enough to show `recv_async` needs no runtime.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    let deadline = Instant::now() + LONG;
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        assert!(Instant::now() < deadline, "future never completed");
        thread::park_timeout(Duration::from_millis(100));
    }
}

#[test]
fn async_recv_with_a_minimal_executor() {
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let h = thread::spawn(move || {
        for i in 0..100 {
            tx.send(i).unwrap();
            if i % 10 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let got = block_on(async {
        let mut v = Vec::new();
        while let Ok(x) = rx.recv_async().await {
            v.push(x);
        }
        v
    });
    h.join().unwrap();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

#[test]
fn async_recv_under_tokio() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let h = thread::spawn(move || {
        for i in 0..1000 {
            tx.send(i).unwrap();
        }
    });
    let sum = rt.block_on(async {
        tokio::time::timeout(LONG, async {
            let mut sum = 0u64;
            while let Ok(x) = rx.recv_async().await {
                sum += u64::from(x);
            }
            sum
        })
        .await
        .expect("timed out")
    });
    h.join().unwrap();
    assert_eq!(sum, (0..1000u64).sum::<u64>());
}

#[test]
fn errors_read_well() {
    let e: SendError<u8> = SendError::Full { msg: 1, missed: 2 };
    assert_eq!(e.to_string(), "send failed: 2 receiver(s) had no room");
    assert_eq!(RecvTimeoutError::Timeout.to_string(), "receive timed out");
    assert_eq!(
        AttachError::ReceiverClosed.to_string(),
        "attach failed: the receiver was dropped"
    );
}
