//! A bounded multi-thread stress test: senders, receivers and topology
//! changes at once, for a fixed number of rounds and a wall-clock cap.
#![allow(
    clippy::disallowed_types,
    reason = "tests observe the channel from outside with std types"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use dndm_core::{Config, Policy, Receiver, Sender};

#[test]
fn senders_receivers_and_relinking_at_once() {
    const SENDERS: usize = 3;
    const PER_SENDER: u64 = 200_000;
    let deadline = Instant::now() + Duration::from_secs(60);

    let main_rx = Receiver::<Arc<u64>>::new(Config::new(256)).unwrap();
    let inlet = main_rx.inlet();
    let tx = Sender::<Arc<u64>>::new();
    tx.attach(&inlet).unwrap();
    let weak = tx.downgrade();
    let stop = Arc::new(AtomicBool::new(false));

    // Churn: short-lived receivers of every policy attach and detach.
    let churned = Arc::new(AtomicU64::new(0));
    let churn = {
        let (weak, stop, churned) = (weak.clone(), Arc::clone(&stop), Arc::clone(&churned));
        thread::spawn(move || {
            let policies = [Policy::BLOCK, Policy::DropOldest, Policy::Reject];
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let cfg = Config::new(1 + i % 7).policy(policies[i % 3]);
                let rx = Receiver::<Arc<u64>>::new(cfg).unwrap();
                let inlet = rx.inlet();
                if weak.attach(&inlet).is_err() {
                    break;
                }
                for _ in 0..(i % 5) {
                    let _ = rx.recv_timeout(Duration::from_micros(50));
                }
                if i % 2 == 0 {
                    weak.detach(&inlet);
                }
                drop(rx); // a blocked sender must be released by this
                i += 1;
            }
            churned.store(i as u64, Ordering::Relaxed);
        })
    };

    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..PER_SENDER {
                    if Instant::now() > deadline {
                        panic!("sender {s} did not finish in time");
                    }
                    // Other receivers may miss messages by policy; the main
                    // receiver is Block and must get every one.
                    let _ = tx.send(Arc::new((s as u64) << 32 | i));
                }
            })
        })
        .collect();
    drop(tx);

    let mut next = [0u64; SENDERS];
    let mut total = 0;
    while total < SENDERS as u64 * PER_SENDER {
        let v = main_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("main receiver starved");
        let (s, i) = ((*v >> 32) as usize, *v & 0xffff_ffff);
        assert_eq!(i, next[s], "sender {s} out of order");
        next[s] += 1;
        total += 1;
    }
    for h in senders {
        h.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    assert!(
        churned.load(Ordering::Relaxed) > 0,
        "churn thread never ran"
    );
    drop(inlet);
    assert!(main_rx.recv_timeout(Duration::from_secs(5)).is_err());
    assert_eq!(main_rx.stats().received, SENDERS as u64 * PER_SENDER);
}
