//! dndm in a multi-thread async runtime: publishing tasks that wait for
//! room without blocking their worker, and core receive futures that move
//! between workers.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::time::Duration;

use dndm::prelude::*;
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "test.Num")]
struct Num {
    v: u64,
}

/// Far above any stall; tests never measure time.
const LONG: Duration = Duration::from_secs(30);

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .unwrap()
}

fn assert_send<F: Send>(f: F) -> F {
    f
}

/// A publishing task fills a lossless subscriber of two slots thousands of
/// times over; the subscriber reads with `recv_async`. Every sample
/// arrives, in order, and neither side blocks a worker.
#[test]
fn send_async_waits_for_a_lossless_subscriber_in_a_task() {
    const N: u64 = 3_000;
    let rt = runtime(2);
    let node = Node::new("t");
    let sub = node
        .subscribe_with::<Num>(
            "a",
            SubscribeOptions::new().capacity(2).policy(Policy::BLOCK),
        )
        .unwrap();
    let mut publ = node.publish::<Num>("a").unwrap();
    rt.block_on(async {
        let producer = tokio::spawn(assert_send(async move {
            for v in 0..N {
                publ.send_async(Num { v }).await.unwrap();
            }
        }));
        for v in 0..N {
            let s = tokio::time::timeout(LONG, sub.recv_async())
                .await
                .expect("stuck");
            assert_eq!(s.unwrap().v, v);
        }
        tokio::time::timeout(LONG, producer)
            .await
            .expect("producer stuck")
            .unwrap();
    });
}

/// On a runtime with one worker, a publisher task that waits for room must
/// give the worker to the task that makes room.
#[test]
fn a_waiting_publisher_yields_its_worker() {
    let rt = runtime(1);
    let node = Node::new("t");
    let sub = node
        .subscribe_with::<Num>(
            "a",
            SubscribeOptions::new().capacity(1).policy(Policy::BLOCK),
        )
        .unwrap();
    let mut publ = node.publish::<Num>("a").unwrap();
    rt.block_on(async {
        let producer = tokio::spawn(async move {
            for v in 0..50 {
                publ.send_async(Num { v }).await.unwrap();
            }
        });
        let mut got = Vec::new();
        while got.len() < 50 {
            let s = tokio::time::timeout(LONG, sub.recv_async())
                .await
                .expect("stuck");
            got.push(s.unwrap().v);
        }
        tokio::time::timeout(LONG, producer)
            .await
            .expect("producer stuck")
            .unwrap();
        assert_eq!(got, (0..50).collect::<Vec<_>>());
    });
}

/// Core receive futures (`dndm::chan`) are `Send`: receiving tasks spawned
/// on a multi-thread runtime take every message of a publishing task.
#[test]
fn core_recv_async_runs_in_spawned_tasks() {
    const N: u64 = 2_000;
    let rt = runtime(2);
    let (mut tx, rx) = dndm::chan::bounded::<u64>(4).unwrap();
    rt.block_on(async {
        let consumer = tokio::spawn(assert_send(async move {
            let mut sum = 0;
            while let Ok(v) = rx.recv_async().await {
                sum += v;
            }
            sum
        }));
        let producer = tokio::spawn(assert_send(async move {
            for v in 1..=N {
                tx.send_async(v).await.unwrap();
            }
        }));
        tokio::time::timeout(LONG, producer)
            .await
            .expect("producer stuck")
            .unwrap();
        let sum = tokio::time::timeout(LONG, consumer)
            .await
            .expect("consumer stuck")
            .unwrap();
        assert_eq!(sum, N * (N + 1) / 2);
    });
}

/// `Subscriber::recv_async` futures are `Send`: receiving tasks spawned on
/// a multi-thread runtime take every message, in order, from a publishing
/// task.
#[test]
fn subscriber_recv_async_runs_in_spawned_tasks() {
    const N: u64 = 2_000;
    let rt = runtime(2);
    let node = Node::new("t");
    let sub = node
        .subscribe_with::<Num>(
            "a",
            SubscribeOptions::new().capacity(4).policy(Policy::BLOCK),
        )
        .unwrap();
    let mut publ = node.publish::<Num>("a").unwrap();
    rt.block_on(async {
        let consumer = tokio::spawn(assert_send(async move {
            let mut next = 0;
            while next < N {
                let s = sub.recv_async().await.unwrap();
                assert_eq!(s.v, next);
                next += 1;
            }
            next
        }));
        let producer = tokio::spawn(assert_send(async move {
            for v in 0..N {
                publ.send_async(Num { v }).await.unwrap();
            }
        }));
        tokio::time::timeout(LONG, producer)
            .await
            .expect("producer stuck")
            .unwrap();
        let got = tokio::time::timeout(LONG, consumer)
            .await
            .expect("consumer stuck")
            .unwrap();
        assert_eq!(got, N);
    });
}
