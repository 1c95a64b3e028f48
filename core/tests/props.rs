//! Property tests against a reference model (a `VecDeque` per receiver).

use std::collections::VecDeque;
use std::time::Duration;

use dndm_core::{Config, Policy, Receiver, RecvTimeoutError, SendError, channel};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[derive(Debug, Clone, Copy)]
enum Op {
    Send,
    Recv,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(prop_oneof![Just(Op::Send), Just(Op::Recv)], 0..300)
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![Just(Policy::Reject), Just(Policy::DropOldest)]
}

/// How long a receiver waits for the next message while senders are still
/// sending: far above any stall, so reaching it means a message was lost.
const PATIENCE: Duration = Duration::from_secs(10);

/// Every message until the channel reports that all senders are gone. A
/// channel that loses a live sender's lane would leave a plain `recv` (or
/// `for _ in &rx`) waiting forever; this fails the case instead.
fn receive_until_disconnected<T>(rx: &Receiver<T>) -> Result<Vec<T>, TestCaseError> {
    let mut got = Vec::new();
    loop {
        match rx.recv_timeout(PATIENCE) {
            Ok(v) => got.push(v),
            Err(RecvTimeoutError::Disconnected) => return Ok(got),
            Err(e) => {
                return Err(TestCaseError::fail(format!(
                    "{e} within {PATIENCE:?}, after {} messages, senders still attached",
                    got.len()
                )));
            }
        }
    }
}

proptest! {
    /// Single-threaded, any interleaving of sends and receives: the channel
    /// behaves exactly like a bounded `VecDeque` with the same policy, and
    /// its counters match the model's.
    #[test]
    fn matches_a_bounded_deque(cap in 1usize..8, policy in policy(), ops in ops()) {
        let (tx, rx) = channel::<u32>(Config::new(cap).policy(policy)).unwrap();
        let mut model = VecDeque::new();
        let (mut dropped, mut rejected, mut received, mut next) = (0u64, 0u64, 0u64, 0u32);
        for op in ops {
            match op {
                Op::Send => {
                    let r = tx.try_send(next);
                    if model.len() == cap {
                        match policy {
                            Policy::Reject => {
                                prop_assert_eq!(r, Err(SendError::Full { msg: next, missed: 1 }));
                                rejected += 1;
                            }
                            _ => {
                                prop_assert_eq!(r, Ok(()));
                                model.pop_front();
                                model.push_back(next);
                                dropped += 1;
                            }
                        }
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        model.push_back(next);
                    }
                    next += 1;
                }
                Op::Recv => {
                    let got = rx.try_recv().ok();
                    prop_assert_eq!(got, model.pop_front());
                    received += u64::from(got.is_some());
                }
            }
        }
        let s = rx.stats();
        prop_assert_eq!((s.received, s.dropped, s.rejected, s.queued), (received, dropped, rejected, model.len()));
    }

    /// Several senders into one receiver under `Block`: nothing is lost and
    /// each sender's messages arrive in the order it sent them.
    #[test]
    fn fan_in_loses_nothing_and_keeps_order(senders in 1usize..5, per in 1u32..2000, cap in 1usize..64) {
        let (tx, rx) = channel::<(usize, u32)>(Config::new(cap)).unwrap();
        let handles: Vec<_> = (0..senders).map(|s| {
            let tx = tx.clone();
            std::thread::spawn(move || for i in 0..per { tx.send((s, i)).unwrap(); })
        }).collect();
        drop(tx);
        let mut next = vec![0u32; senders];
        for (s, i) in receive_until_disconnected(&rx)? {
            prop_assert_eq!(i, next[s]);
            next[s] += 1;
        }
        for h in handles { h.join().unwrap(); }
        prop_assert!(next.iter().all(|&n| n == per));
    }

    /// Concurrent `DropOldest`: received + dropped == sent exactly, the
    /// received messages are increasing, and the last one always arrives.
    #[test]
    fn drop_oldest_counts_are_exact(cap in 1usize..16, n in 1u32..5000) {
        let (tx, rx) = channel::<u32>(Config::new(cap).policy(Policy::DropOldest)).unwrap();
        let h = std::thread::spawn(move || for i in 0..n { tx.send(i).unwrap(); });
        let got: Vec<u32> = receive_until_disconnected(&rx)?;
        h.join().unwrap();
        prop_assert!(got.windows(2).all(|w| w[0] < w[1]));
        prop_assert_eq!(got.last().copied(), Some(n - 1));
        prop_assert_eq!(got.len() as u64 + rx.stats().dropped, u64::from(n));
    }
}
