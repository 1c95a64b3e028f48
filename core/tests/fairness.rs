//! A receiver serves its lanes round-robin: with several sender handles
//! backed up, each receive takes from the next one in turn, so one busy
//! sender cannot make another wait behind its whole queue.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use dndm_core::{Config, Policy, Receiver, Sender};

/// A message: (sender index, sequence number).
type Msg = (usize, u32);

/// `senders` sender handles with `each` messages queued in one receiver.
fn backed_up(senders: usize, each: u32) -> (Vec<Sender<Msg>>, Receiver<Msg>) {
    let rx = Receiver::new(Config::new(64).policy(Policy::Reject)).unwrap();
    let inlet = rx.inlet();
    let txs: Vec<Sender<Msg>> = (0..senders).map(|_| Sender::new()).collect();
    for tx in &txs {
        tx.attach(&inlet).unwrap();
    }
    for seq in 0..each {
        for (s, tx) in txs.iter().enumerate() {
            tx.try_send((s, seq)).unwrap();
        }
    }
    (txs, rx)
}

#[test]
fn each_receive_moves_on_to_the_next_sender() {
    for senders in 2..=4 {
        let (_txs, rx) = backed_up(senders, 5);
        let got: Vec<Msg> = rx.drain().collect();
        assert_eq!(got.len(), senders * 5);
        // Every window of `senders` consecutive receives holds one message of
        // each sender, and each sender's messages arrive in order.
        for (round, window) in got.chunks(senders).enumerate() {
            let mut from: Vec<usize> = window.iter().map(|(s, _)| *s).collect();
            from.sort_unstable();
            assert_eq!(
                from,
                (0..senders).collect::<Vec<_>>(),
                "round {round}: {got:?}"
            );
            assert!(
                window.iter().all(|(_, seq)| *seq == round as u32),
                "{got:?}"
            );
        }
        assert_eq!(rx.stats().received, (senders * 5) as u64);
    }
}

#[test]
fn try_recv_alternates_between_two_busy_senders() {
    let (_txs, rx) = backed_up(2, 4);
    let mut last = None;
    for _ in 0..8 {
        let (s, _) = rx.try_recv().unwrap();
        assert_ne!(Some(s), last, "the same sender served twice in a row");
        last = Some(s);
    }
}

#[test]
fn received_counts_every_message_taken() {
    let (txs, rx) = backed_up(3, 2);
    assert_eq!(rx.stats().received, 0);
    for n in 1..=6u64 {
        rx.try_recv().unwrap();
        assert_eq!(rx.stats().received, n);
        assert_eq!(rx.stats().queued, 6 - n as usize);
    }
    drop(txs);
    assert!(rx.try_recv().is_err());
    assert_eq!(rx.stats().received, 6);
}

/// When the lane next in turn is empty, a receive still finds what another
/// sender queued: uneven senders drain completely without a spurious empty.
#[test]
fn a_receive_looks_past_empty_lanes() {
    for senders in 2..=4 {
        let rx = Receiver::new(Config::new(16)).unwrap();
        let inlet = rx.inlet();
        let txs: Vec<Sender<Msg>> = (0..senders).map(|_| Sender::new()).collect();
        for tx in &txs {
            tx.attach(&inlet).unwrap();
        }
        // Sender s queues s + 1 messages: the first lanes run dry first.
        let mut queued = 0;
        for (s, tx) in txs.iter().enumerate() {
            for seq in 0..=s as u32 {
                tx.try_send((s, seq)).unwrap();
                queued += 1;
            }
        }
        let mut next = vec![0u32; senders];
        for n in 0..queued {
            let (s, seq) = rx
                .try_recv()
                .unwrap_or_else(|e| panic!("{senders} senders, receive {n}: {e:?}"));
            assert_eq!(seq, next[s], "per-sender order");
            next[s] += 1;
        }
        assert_eq!(next, (1..=senders as u32).collect::<Vec<_>>());
        assert!(rx.try_recv().is_err());
        let mut buf = Vec::new();
        // The same with a batch after each single receive.
        for (s, tx) in txs.iter().enumerate() {
            tx.try_send((s, 0)).unwrap();
        }
        assert_eq!(rx.try_recv_batch(&mut buf, senders), Ok(senders));
    }
}
