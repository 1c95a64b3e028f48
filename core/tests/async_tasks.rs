//! The async paths on a multi-thread runtime: `recv_async` and
//! `send_async` futures are `Send`, so tasks holding them move between
//! worker threads, and a full `Block` lane makes a sending task wait without
//! blocking its worker.

use std::sync::Arc;
use std::time::Duration;

use dndm_core::{Config, Policy, Receiver, RecvError, Sender, bounded, channel};

/// Far above any stall; tests never measure time.
const LONG: Duration = Duration::from_secs(30);

fn assert_send<F: Send>(f: F) -> F {
    f
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime")
}

/// A receiving task on one worker, a sending task on another, a lane of
/// two slots: the sender waits for room thousands of times, in order.
#[test]
fn send_async_and_recv_async_across_workers() {
    const N: u32 = 5_000;
    let rt = runtime();
    let (mut tx, rx) = bounded::<u32>(2).unwrap();
    rt.block_on(async {
        let consumer = tokio::spawn(assert_send(async move {
            let mut next = 0;
            while let Ok(v) = rx.recv_async().await {
                assert_eq!(v, next, "per-sender order");
                next += 1;
            }
            next
        }));
        let producer = tokio::spawn(assert_send(async move {
            for i in 0..N {
                tx.send_async(i).await.expect("receiver is alive");
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

/// Both tasks on a runtime with a single worker: a `send_async` that waits
/// must yield the worker to the receiving task, or neither ever finishes.
#[test]
fn a_waiting_sender_does_not_block_its_worker() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .expect("runtime");
    let (mut tx, rx) = bounded::<u32>(1).unwrap();
    rt.block_on(async {
        let producer = tokio::spawn(async move {
            for i in 0..100 {
                tx.send_async(i).await.unwrap();
            }
        });
        let consumer = tokio::spawn(async move {
            let mut n = 0;
            while rx.recv_async().await.is_ok() {
                n += 1;
            }
            n
        });
        tokio::time::timeout(LONG, producer)
            .await
            .expect("producer stuck")
            .unwrap();
        let n = tokio::time::timeout(LONG, consumer)
            .await
            .expect("consumer stuck")
            .unwrap();
        assert_eq!(n, 100);
    });
}

/// One receiver shared by several tasks (`Receiver` is `Sync`): every
/// message is taken by exactly one of them.
#[test]
fn a_shared_receiver_serves_several_tasks() {
    const N: u64 = 4_000;
    let rt = runtime();
    let (tx, rx) = bounded::<u64>(8).unwrap();
    let rx: Arc<Receiver<u64>> = Arc::new(rx);
    rt.block_on(async {
        let takers: Vec<_> = (0..3)
            .map(|_| {
                let rx = Arc::clone(&rx);
                tokio::spawn(async move {
                    let mut sum = 0;
                    while let Ok(v) = rx.recv_async().await {
                        sum += v;
                    }
                    sum
                })
            })
            .collect();
        let sender = std::thread::spawn(move || {
            for i in 1..=N {
                tx.send(i).unwrap();
            }
        });
        let mut total = 0;
        for t in takers {
            total += tokio::time::timeout(LONG, t)
                .await
                .expect("taker stuck")
                .unwrap();
        }
        sender.join().unwrap();
        assert_eq!(total, N * (N + 1) / 2);
    });
}

/// The receiver goes away while `send_async` waits on its full lane: the
/// future completes.
#[test]
fn send_async_ends_when_the_receiver_goes() {
    let rt = runtime();
    let (mut tx, rx) = channel::<u32>(Config::new(1).policy(Policy::BLOCK)).unwrap();
    tx.send(0).unwrap();
    rt.block_on(async {
        let waiting = tokio::spawn(async move { tx.send_async(1).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(rx);
        // The message had nowhere to go: delivered to nobody, or refused as
        // disconnected, but never a hang.
        let _ = tokio::time::timeout(LONG, waiting)
            .await
            .expect("send_async stuck")
            .unwrap();
    });
}

/// `ready` completes at once with room, and for receivers that never wait
/// (`DropOldest`), however full.
#[test]
fn ready_completes_when_a_send_would_not_wait() {
    let rt = runtime();
    let mut tx = Sender::<u32>::new();
    let latest = tx
        .subscribe(Config::new(1).policy(Policy::DropOldest))
        .unwrap();
    rt.block_on(async {
        for i in 0..10 {
            tx.ready().await;
            tx.send(i).unwrap();
        }
    });
    assert_eq!(latest.try_recv(), Ok(9));
    assert_eq!(latest.try_recv().map_err(|_| RecvError), Err(RecvError));
}
