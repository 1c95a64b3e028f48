//! loom models of every atomic protocol in the channel core.
//!
//! Run with `cargo xtask loom` (it sets `RUSTFLAGS="--cfg dndm_loom"` and a
//! preemption bound of 2). Each model is small: two or three threads and a
//! handful of operations, which loom explores exhaustively up to the bound.
#![cfg(dndm_loom)]

use dndm_core::sync::Arc;
use dndm_core::sync::atomic::{AtomicUsize, Ordering};
use dndm_core::{Config, Policy, Receiver, Sender, TryRecvError, bounded, channel};
use loom::thread;

/// A message is either received or still queued; order holds; the blocked
/// receiver is woken (no lost wake-up between publish and sleep).
#[test]
fn send_recv_race() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(2).unwrap();
        let h = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        h.join().unwrap();
    });
}

/// A full lane blocks the sender until the receiver frees a slot: the
/// wake-up from consumer to producer is not lost either.
#[test]
fn blocked_sender_is_woken_by_recv() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(1).unwrap();
        let h = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        h.join().unwrap();
    });
}

/// Closing races with the last send: the receiver drains, then ends.
#[test]
fn close_vs_send() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(4).unwrap();
        let h = thread::spawn(move || {
            tx.send(7).unwrap();
            drop(tx);
        });
        assert_eq!(rx.recv(), Ok(7));
        assert!(rx.recv().is_err());
        h.join().unwrap();
    });
}

/// The receiver goes away while a sender is blocked on its full lane: the
/// sender returns, and the queued message is freed exactly once.
#[test]
fn receiver_dropped_during_send() {
    loom::model(|| {
        let live = Arc::new(AtomicUsize::new(0));
        struct Tracked(Arc<AtomicUsize>);
        impl Clone for Tracked {
            fn clone(&self) -> Self {
                self.0.fetch_add(1, Ordering::SeqCst);
                Tracked(self.0.clone())
            }
        }
        impl Drop for Tracked {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let (tx, rx) = bounded::<Tracked>(1).unwrap();
        let l = live.clone();
        let h = thread::spawn(move || {
            for _ in 0..2 {
                l.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send(Tracked(l.clone()));
            }
            tx
        });
        drop(rx);
        let tx = h.join().unwrap();
        assert_eq!(tx.receiver_count(), 0);
        drop(tx);
        assert_eq!(
            live.load(Ordering::SeqCst),
            0,
            "a message leaked or was freed twice"
        );
    });
}

/// Polls `fut` on this loom thread, parking between polls.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

/// An async receiver registers its waker while the sender publishes.
#[test]
fn waker_registration_vs_wake() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(1).unwrap();
        let h = thread::spawn(move || {
            tx.send(3).unwrap();
        });
        let got = block_on(rx.recv_async());
        assert_eq!(got, Ok(3));
        assert!(block_on(rx.recv_async()).is_err());
        h.join().unwrap();
    });
}

/// Polls two futures on this loom thread, each with its own waker (two
/// tasks), parking while neither was woken; returns both outputs.
fn block_on_two<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    use std::task::{Context, Poll, Wake, Waker};
    struct Flag {
        woken: loom::sync::atomic::AtomicBool,
        thread: thread::Thread,
    }
    impl Wake for Flag {
        fn wake(self: std::sync::Arc<Self>) {
            // A read-modify-write, like the poller's `swap`: loom orders the
            // two totally, so a wake-up is never read as stale.
            self.woken.swap(true, Ordering::SeqCst);
            self.thread.unpark();
        }
    }
    let flag = || {
        std::sync::Arc::new(Flag {
            woken: loom::sync::atomic::AtomicBool::new(true),
            thread: thread::current(),
        })
    };
    let (fa, fb) = (flag(), flag());
    let (wa, wb) = (Waker::from(fa.clone()), Waker::from(fb.clone()));
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    let (mut ra, mut rb) = (None, None);
    loop {
        if ra.is_none() && fa.woken.swap(false, Ordering::SeqCst) {
            if let Poll::Ready(v) = a.as_mut().poll(&mut Context::from_waker(&wa)) {
                ra = Some(v);
            }
        }
        if rb.is_none() && fb.woken.swap(false, Ordering::SeqCst) {
            if let Poll::Ready(v) = b.as_mut().poll(&mut Context::from_waker(&wb)) {
                rb = Some(v);
            }
        }
        if let (Some(_), Some(_)) = (&ra, &rb) {
            break;
        }
        let pending_woken = (ra.is_none() && fa.woken.load(Ordering::SeqCst))
            || (rb.is_none() && fb.woken.load(Ordering::SeqCst));
        if !pending_woken {
            // A lost wake-up leaves this thread parked for good: loom reports
            // the deadlock.
            thread::park();
        }
    }
    (ra.unwrap(), rb.unwrap())
}

/// Two tasks wait on one receiver while a sender publishes two messages:
/// every pending future is woken, so both complete.
#[test]
fn two_async_waiters_are_both_woken() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(2).unwrap();
        let h = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        let (a, b) = block_on_two(rx.recv_async(), rx.recv_async());
        let mut got = [a.unwrap(), b.unwrap()];
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        h.join().unwrap();
    });
}

/// A thread blocked in `recv` and a pending future on the same receiver:
/// neither registration replaces the other.
#[test]
fn thread_and_task_waiters_are_both_woken() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(2).unwrap();
        let h = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        let mut fut = std::pin::pin!(rx.recv_async());
        let waker = std::task::Waker::noop();
        let first = fut
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker));
        let got = match first {
            std::task::Poll::Ready(v) => [v.unwrap(), rx.recv().unwrap()],
            std::task::Poll::Pending => {
                // The future stays registered while this thread blocks.
                let v = rx.recv().unwrap();
                let w = block_on(fut);
                [v, w.unwrap()]
            }
        };
        assert_eq!(got, [1, 2]);
        h.join().unwrap();
    });
}

/// Fan-out while a receiver attaches and another detaches: no deadlock, the
/// count settles, and whoever was attached throughout gets every message.
#[test]
fn fan_out_while_receivers_come_and_go() {
    loom::model(|| {
        let (tx, stay) = bounded::<u32>(4).unwrap();
        let leave = tx.subscribe(Config::new(4)).unwrap();
        let inlet_rx = Receiver::<u32>::new(Config::new(4)).unwrap();
        let inlet = inlet_rx.inlet();
        let weak = tx.downgrade();
        let joiner = thread::spawn(move || {
            let _ = weak.attach(&inlet);
            drop(leave);
            inlet_rx
        });
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let joined = joiner.join().unwrap();
        assert_eq!(tx.receiver_count(), 2);
        drop(tx);
        assert_eq!(stay.iter().collect::<Vec<_>>(), vec![1, 2]);
        // The late receiver got a suffix of the stream, in order.
        let late: Vec<u32> = joined.drain().collect();
        assert!(late.is_empty() || late == [2] || late == [1, 2], "{late:?}");
    });
}

/// Eviction under DropOldest races with the consumer taking the same slot:
/// every message is either received or counted as dropped, never both.
#[test]
fn drop_oldest_eviction_vs_pop() {
    loom::model(|| {
        let (tx, rx) = channel::<u32>(Config::new(1).policy(Policy::DropOldest)).unwrap();
        let h = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        let mut got = Vec::new();
        while let Ok(v) = rx.recv() {
            got.push(v);
        }
        h.join().unwrap();
        let stats = rx.stats();
        assert_eq!(got.len() as u64 + stats.dropped, 2, "{got:?} {stats:?}");
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(got.last(), Some(&2), "the latest message always survives");
    });
}

/// Two senders feed one receiver while one of them goes away: per-sender
/// order holds and nothing is lost.
#[test]
fn fan_in_with_a_sender_leaving() {
    loom::model(|| {
        let (tx, rx) = bounded::<(u8, u8)>(2).unwrap();
        let tx2: Sender<(u8, u8)> = tx.clone();
        let h = thread::spawn(move || {
            tx2.send((2, 0)).unwrap();
        });
        tx.send((1, 0)).unwrap();
        tx.send((1, 1)).unwrap();
        drop(tx);
        let mut got = Vec::new();
        while let Ok(v) = rx.recv() {
            got.push(v);
        }
        h.join().unwrap();
        got.sort_unstable();
        assert_eq!(got, vec![(1, 0), (1, 1), (2, 0)]);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    });
}

/// A receiver shared by two threads (it is `Sync`): their receive
/// operations exclude each other, so each message is taken exactly once and
/// one sender's order holds for each taker.
#[test]
fn shared_receiver_takes_each_message_once() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(2).unwrap();
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        drop(tx);
        let rx = Arc::new(rx);
        let other = Arc::clone(&rx);
        let h = thread::spawn(move || other.try_recv().ok());
        let mine = rx.try_recv().ok();
        let theirs = h.join().unwrap();
        let rest = rx.try_recv().ok();
        let mut got: Vec<u32> = [mine, theirs, rest].into_iter().flatten().collect();
        got.sort_unstable();
        assert_eq!(got, vec![1, 2]);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    });
}

/// A task waits in `Sender::ready` for room in a full lane while the
/// receiver takes from it: the wake-up from consumer to task is not lost,
/// and the send that follows does not wait.
#[test]
fn ready_is_woken_by_recv() {
    loom::model(|| {
        let (mut tx, rx) = bounded::<u32>(1).unwrap();
        tx.send(1).unwrap();
        let h = thread::spawn(move || {
            block_on(tx.ready());
            tx.try_send(2).unwrap();
        });
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        h.join().unwrap();
    });
}
