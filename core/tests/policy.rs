//! What a sender sees of its receivers' policies: evictions it caused, and
//! `Block` timeouts that cost one wait per stall rather than one per message.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::time::Duration;

use dndm_core::{Config, Policy, Receiver, Sender};

#[test]
fn a_sender_counts_what_drop_oldest_receivers_evicted() {
    let tx = Sender::<u64>::new();
    let latest = Receiver::new(Config::new(4).policy(Policy::DropOldest)).unwrap();
    let inlet = latest.inlet();
    tx.attach(&inlet).unwrap();
    for v in 0..10 {
        tx.send(v).unwrap();
    }
    assert_eq!(tx.dropped(), 6);
    // A clone has lanes of its own, and counts only what it caused.
    let other = tx.clone();
    other.send(10).unwrap();
    assert_eq!(other.dropped(), 0);
    // Detached lanes keep their count.
    tx.detach(&inlet);
    tx.send(11).unwrap_err();
    assert_eq!(tx.dropped(), 6);
    // Lanes are served round-robin: sort to compare.
    let mut kept: Vec<u64> = latest.drain().collect();
    kept.sort_unstable();
    assert_eq!(kept, [6, 7, 8, 9, 10]);
}

#[test]
fn a_block_timeout_is_waited_out_once_per_stall() {
    let tx = Sender::<u64>::new();
    let stuck = Receiver::new(Config::new(2).policy(Policy::Block {
        timeout: Some(Duration::from_millis(50)),
    }))
    .unwrap();
    let fast = Receiver::new(Config::new(1024)).unwrap();
    let (a, b) = (stuck.inlet(), fast.inlet());
    tx.attach(&a).unwrap();
    tx.attach(&b).unwrap();
    let mut missed = 0;
    // With one wait per message this would take 50 s; the test only counts.
    for v in 0..1000 {
        if let Err(e) = tx.send(v) {
            assert!(!e.is_disconnected());
            missed += 1;
        }
    }
    assert_eq!(missed, 998);
    assert_eq!(fast.drain().count(), 1000, "the other receiver got all");
    // Room again: the next sends wait for it as before.
    assert_eq!(stuck.drain().collect::<Vec<_>>(), [0, 1]);
    tx.send(1000).unwrap();
    tx.send(1001).unwrap();
    assert_eq!(stuck.drain().collect::<Vec<_>>(), [1000, 1001]);
}
