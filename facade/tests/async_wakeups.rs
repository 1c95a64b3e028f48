//! `Subscriber::recv_async` with several futures on one subscriber: none of
//! them sleeps while a message it could take was sent. Futures are polled by
//! hand with their own wakers, so the tests are deterministic.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
#![allow(
    clippy::disallowed_types,
    reason = "tests use std sync types like users do"
)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use dndm::prelude::*;
use dndm::{RecvError, SubscribeOptions};
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "wake.Num")]
struct Num {
    v: u64,
}

#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

type Fut<'a> = Pin<Box<dyn Future<Output = Result<Sample<Num>, RecvError>> + 'a>>;

/// Futures polled by hand. `shared` gives them one waker (one task that
/// awaits them all, as `join` does); otherwise each has its own (one task
/// each).
struct Exec<'a> {
    futs: Vec<(Fut<'a>, Arc<Flag>, Option<u64>)>,
}

impl<'a> Exec<'a> {
    fn new(futs: Vec<Fut<'a>>, shared: bool) -> Self {
        let one = Arc::new(Flag::default());
        Self {
            futs: futs
                .into_iter()
                .map(|f| {
                    let flag = if shared {
                        Arc::clone(&one)
                    } else {
                        Arc::new(Flag::default())
                    };
                    (f, flag, None)
                })
                .collect(),
        }
    }

    /// Polls every pending future whose waker fired (all of them on the
    /// first round); returns whether any was polled.
    fn round(&mut self, all: bool) -> bool {
        // A shared waker fires once for every future of its task.
        let fired: Vec<bool> = self
            .futs
            .iter()
            .map(|(_, flag, _)| all || flag.0.load(Ordering::SeqCst))
            .collect();
        for (_, flag, _) in &self.futs {
            flag.0.store(false, Ordering::SeqCst);
        }
        let mut any = false;
        for ((fut, flag, out), fired) in self.futs.iter_mut().zip(fired) {
            if out.is_some() || !fired {
                continue;
            }
            any = true;
            let waker = Waker::from(Arc::clone(flag));
            if let Poll::Ready(r) = fut.as_mut().poll(&mut Context::from_waker(&waker)) {
                *out = Some(r.unwrap().v);
            }
        }
        any
    }

    fn run_to_end(&mut self) -> Vec<u64> {
        for _ in 0..1000 {
            if self.futs.iter().all(|(_, _, out)| out.is_some()) {
                return self.futs.iter().map(|(_, _, out)| out.unwrap()).collect();
            }
            assert!(
                self.round(false),
                "lost wake-up: a future is pending and no waker was called"
            );
        }
        panic!("futures did not finish");
    }
}

fn block() -> SubscribeOptions {
    SubscribeOptions::new().capacity(8).policy(Policy::BLOCK)
}

/// Two tasks, one subscriber: each message wakes both.
#[test]
fn two_tasks_on_one_subscriber_are_both_woken() {
    let node = Node::new("t");
    let s = node.subscribe_with::<Num>("a", block()).unwrap();
    let p = node.publish::<Num>("a").unwrap();
    let mut exec = Exec::new(
        vec![Box::pin(s.recv_async()), Box::pin(s.recv_async())],
        false,
    );
    exec.round(true);
    p.send(Num { v: 1 }).unwrap();
    p.send(Num { v: 2 }).unwrap();
    let mut got = exec.run_to_end();
    got.sort_unstable();
    assert_eq!(got, [1, 2]);
}

/// One task awaits two futures: the first takes both messages off the lane
/// (the second into the subscriber's run buffer); the second must find it
/// there instead of waiting for the lane.
#[test]
fn second_future_of_one_task_finds_the_buffered_run() {
    let node = Node::new("t");
    let s = node.subscribe_with::<Num>("a", block()).unwrap();
    let p = node.publish::<Num>("a").unwrap();
    let mut exec = Exec::new(
        vec![Box::pin(s.recv_async()), Box::pin(s.recv_async())],
        true,
    );
    exec.round(true);
    p.send(Num { v: 1 }).unwrap();
    p.send(Num { v: 2 }).unwrap();
    assert_eq!(exec.run_to_end(), [1, 2]);
}

/// The same with two tasks: whichever runs second finds the run buffer.
#[test]
fn second_task_finds_the_buffered_run() {
    let node = Node::new("t");
    let s = node.subscribe_with::<Num>("a", block()).unwrap();
    let p = node.publish::<Num>("a").unwrap();
    let mut exec = Exec::new(
        vec![Box::pin(s.recv_async()), Box::pin(s.recv_async())],
        false,
    );
    exec.round(true);
    p.send(Num { v: 1 }).unwrap();
    p.send(Num { v: 2 }).unwrap();
    let mut got = exec.run_to_end();
    got.sort_unstable();
    assert_eq!(got, [1, 2]);
}
