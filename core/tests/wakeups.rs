//! Several futures waiting on one receiver: every one of them is woken when
//! a message arrives, so none sleeps while a message sits queued. Futures are
//! polled by hand, each with its own waker (one task each), so the tests are
//! deterministic.
#![allow(
    clippy::disallowed_types,
    reason = "tests observe the channel from outside with std types"
)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use dndm_core::{RecvError, bounded};

/// A waker that records that it was woken.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// One task: a future and its waker.
struct Task<'a, T> {
    fut: Pin<Box<dyn Future<Output = T> + 'a>>,
    flag: Arc<Flag>,
    out: Option<T>,
}

impl<'a, T> Task<'a, T> {
    fn new(fut: impl Future<Output = T> + 'a) -> Self {
        Self {
            fut: Box::pin(fut),
            flag: Arc::new(Flag::default()),
            out: None,
        }
    }

    fn poll(&mut self) {
        if self.out.is_some() {
            return;
        }
        self.flag.0.store(false, Ordering::SeqCst);
        let waker = Waker::from(Arc::clone(&self.flag));
        if let Poll::Ready(v) = self.fut.as_mut().poll(&mut Context::from_waker(&waker)) {
            self.out = Some(v);
        }
    }

    fn woken(&self) -> bool {
        self.out.is_none() && self.flag.0.load(Ordering::SeqCst)
    }
}

/// Polls woken tasks until every task is done; fails if a task is left
/// pending and nothing will wake it (a lost wake-up).
fn run_to_end<T>(tasks: &mut [Task<'_, T>]) {
    for _ in 0..1000 {
        if tasks.iter().all(|t| t.out.is_some()) {
            return;
        }
        let mut any = false;
        for t in tasks.iter_mut().filter(|t| t.woken()) {
            t.poll();
            any = true;
        }
        assert!(
            any,
            "lost wake-up: a future is pending and no waker was called"
        );
    }
    panic!("tasks did not finish");
}

#[test]
fn two_pending_futures_on_one_receiver_are_both_woken() {
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let mut tasks = [Task::new(rx.recv_async()), Task::new(rx.recv_async())];
    for t in &mut tasks {
        t.poll();
        assert!(t.out.is_none());
    }
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    run_to_end(&mut tasks);
    let mut got: Vec<u32> = tasks
        .iter_mut()
        .map(|t| t.out.take().unwrap().unwrap())
        .collect();
    got.sort_unstable();
    assert_eq!(got, [1, 2]);
}

#[test]
fn a_dropped_future_does_not_swallow_the_wake_up_of_another() {
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let mut first = Task::new(rx.recv_async());
    let mut second = Task::new(rx.recv_async());
    first.poll();
    second.poll();
    drop(second);
    tx.send(1).unwrap();
    let mut tasks = [first];
    run_to_end(&mut tasks);
    assert_eq!(tasks[0].out, Some(Ok(1)));
}

#[test]
fn a_future_that_completes_keeps_the_other_armed() {
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let mut tasks = [Task::new(rx.recv_async()), Task::new(rx.recv_async())];
    tasks[0].poll();
    tasks[1].poll();
    tx.send(1).unwrap();
    // Only one of them gets the first message; the other re-registers.
    tasks[1].poll();
    assert_eq!(tasks[1].out, Some(Ok(1)));
    tasks[0].poll();
    assert!(tasks[0].out.is_none());
    tx.send(2).unwrap();
    run_to_end(&mut tasks);
    assert_eq!(tasks[0].out, Some(Ok(2)));
}

#[test]
fn every_pending_future_sees_the_end() {
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let mut tasks: Vec<Task<'_, Result<u32, RecvError>>> =
        (0..3).map(|_| Task::new(rx.recv_async())).collect();
    for t in &mut tasks {
        t.poll();
    }
    drop(tx);
    run_to_end(&mut tasks);
    assert!(tasks.iter().all(|t| t.out == Some(Err(RecvError))));
}

/// Two tokio tasks on one thread await the same receiver; a sender on
/// another thread sends two messages. Both tasks finish (bounded wait).
#[test]
fn two_tokio_tasks_on_one_receiver() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let rx = std::rc::Rc::new(rx);
    let local = tokio::task::LocalSet::new();
    let got = local.block_on(&rt, async {
        let a = tokio::task::spawn_local({
            let rx = rx.clone();
            async move { rx.recv_async().await }
        });
        let b = tokio::task::spawn_local({
            let rx = rx.clone();
            async move { rx.recv_async().await }
        });
        // Let both tasks go to sleep on the receiver first.
        tokio::task::yield_now().await;
        let sender = std::thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
            tx
        });
        let both = tokio::time::timeout(Duration::from_secs(10), async {
            (a.await.unwrap(), b.await.unwrap())
        })
        .await
        .expect("a task was never woken");
        drop(sender.join().unwrap());
        both
    });
    let mut got = [got.0.unwrap(), got.1.unwrap()];
    got.sort_unstable();
    assert_eq!(got, [1, 2]);
}

/// `Receiver` is `Send` (not `Sync`), so its futures borrow a `!Sync`
/// receiver and stay on their thread; the receiver itself moves freely.
#[test]
fn receiver_stays_send() {
    fn is_send<T: Send>() {}
    is_send::<dndm_core::Receiver<u32>>();
    is_send::<dndm_core::Sender<u32>>();
}
