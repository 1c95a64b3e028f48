//! Attach and detach bookkeeping seen from both ends: detaching one sender
//! leaves the others attached, and dropping the receiver afterwards
//! detaches exactly the ones still attached.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use dndm_core::{Config, Receiver, Sender, TryRecvError};

#[test]
fn detaching_one_sender_keeps_the_others() {
    let rx = Receiver::<u32>::new(Config::new(4)).unwrap();
    let inlet = rx.inlet();
    let senders: Vec<Sender<u32>> = (0..3).map(|_| Sender::new()).collect();
    for tx in &senders {
        assert_eq!(tx.attach(&inlet), Ok(true));
    }
    assert_eq!(rx.stats().sources, 3);

    assert!(senders[0].detach(&inlet));
    assert_eq!(rx.stats().sources, 2);
    assert_eq!(senders[0].receiver_count(), 0);
    assert_eq!(senders[1].receiver_count(), 1);
    assert_eq!(senders[2].receiver_count(), 1);

    // The others still deliver.
    senders[1].send(1).unwrap();
    senders[2].send(2).unwrap();
    let mut got: Vec<u32> = rx.drain().collect();
    got.sort_unstable();
    assert_eq!(got, [1, 2]);

    // Dropping the receiver detaches the senders still attached.
    drop(inlet);
    drop(rx);
    for tx in &senders {
        assert_eq!(tx.receiver_count(), 0);
        assert!(tx.send(3).unwrap_err().is_disconnected());
    }
}

#[test]
fn detaching_through_a_weak_sender_keeps_the_others() {
    let rx = Receiver::<u32>::new(Config::new(4)).unwrap();
    let inlet = rx.inlet();
    let (a, b) = (Sender::new(), Sender::new());
    let (wa, wb) = (a.downgrade(), b.downgrade());
    wa.attach(&inlet).unwrap();
    wb.attach(&inlet).unwrap();
    assert!(wb.detach(&inlet));
    assert_eq!(rx.stats().sources, 1);
    assert_eq!(wa.receiver_count(), 1);
    assert_eq!(wb.receiver_count(), 0);
    a.send(5).unwrap();
    assert_eq!(rx.try_recv(), Ok(5));

    // With every sender detached or gone and no inlet left, the receiver ends.
    drop(a);
    drop(b);
    drop(inlet);
    assert_eq!(rx.stats().sources, 0);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn a_receiver_dropped_after_a_detach_leaves_no_sender_attached() {
    let senders: Vec<Sender<u8>> = (0..4).map(|_| Sender::new()).collect();
    let rx = Receiver::<u8>::new(Config::new(1)).unwrap();
    let inlet = rx.inlet();
    for tx in &senders {
        tx.attach(&inlet).unwrap();
    }
    assert!(senders[2].detach(&inlet));
    drop(inlet);
    drop(rx);
    let counts: Vec<usize> = senders.iter().map(Sender::receiver_count).collect();
    assert_eq!(counts, [0, 0, 0, 0]);
}
