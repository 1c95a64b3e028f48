//! Batched sends and receives against a `VecDeque` model, through many laps
//! of small rings of every capacity: what arrives, in which order, and what
//! the counters say, for the lossless (`Reject`) and the evicting
//! (`DropOldest`) lane.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::collections::VecDeque;

use dndm_core::{Config, Policy, SendError, TryRecvError, channel};

/// A fixed pseudo-random sequence (a linear congruential generator), so
/// every run checks the same steps.
struct Steps(u64);

impl Steps {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn run(policy: Policy, capacity: usize, seed: u64) {
    let (tx, rx) = channel::<u64>(Config::new(capacity).policy(policy)).unwrap();
    let mut model = VecDeque::new();
    let (mut next, mut dropped, mut rejected, mut received) = (0u64, 0u64, 0u64, 0u64);
    let mut steps = Steps(seed);
    let mut buf = Vec::new();
    for step in 0..400 {
        let ctx = format!("{policy:?} capacity {capacity} seed {seed} step {step}");
        match steps.below(4) {
            // A batch send of up to twice the capacity.
            0 => {
                let k = steps.below(2 * capacity as u64 + 1);
                let mut items = next..next + k;
                let result = tx.send_iter(items.by_ref());
                let mut sent = 0;
                for v in next..next + k {
                    if policy == Policy::DropOldest || model.len() < capacity {
                        if model.len() == capacity {
                            model.pop_front();
                            dropped += 1;
                        }
                        model.push_back(v);
                        sent += 1;
                    } else {
                        // Refused: handed back, the rest stays in the iterator.
                        rejected += 1;
                        match result {
                            Err(SendError::Full { msg, missed: 1 }) => assert_eq!(msg, v, "{ctx}"),
                            ref other => panic!("{ctx}: expected Full({v}), got {other:?}"),
                        }
                        assert_eq!(
                            items.next(),
                            if v + 1 < next + k { Some(v + 1) } else { None }
                        );
                        break;
                    }
                }
                if sent == k {
                    assert_eq!(result, Ok(k as usize), "{ctx}");
                }
                next += k;
            }
            // One send.
            1 => {
                let result = tx.try_send(next);
                if policy == Policy::DropOldest || model.len() < capacity {
                    if model.len() == capacity {
                        model.pop_front();
                        dropped += 1;
                    }
                    model.push_back(next);
                    assert_eq!(result, Ok(()), "{ctx}");
                } else {
                    rejected += 1;
                    assert!(matches!(result, Err(SendError::Full { .. })), "{ctx}");
                }
                next += 1;
            }
            // A batch receive of up to the capacity plus one.
            2 => {
                let max = steps.below(capacity as u64 + 2) as usize;
                buf.clear();
                let got = rx.try_recv_batch(&mut buf, max);
                let want: Vec<u64> = (0..max.min(model.len()))
                    .map(|_| model.pop_front().unwrap())
                    .collect();
                match got {
                    Ok(n) => assert_eq!(n, want.len(), "{ctx}"),
                    Err(TryRecvError::Empty) => assert!(want.is_empty() && max > 0, "{ctx}"),
                    Err(e) => panic!("{ctx}: {e:?}"),
                }
                assert_eq!(buf, want, "{ctx}");
                received += want.len() as u64;
            }
            // One receive.
            _ => {
                let want = model.pop_front();
                assert_eq!(rx.try_recv().ok(), want, "{ctx}");
                received += u64::from(want.is_some());
            }
        }
        let s = rx.stats();
        assert_eq!(
            (s.queued, s.dropped, s.rejected, s.received),
            (model.len(), dropped, rejected, received),
            "{ctx}"
        );
    }
    // What is left arrives in order, then the end.
    drop(tx);
    let rest: Vec<u64> = rx.drain().collect();
    assert_eq!(rest, model.into_iter().collect::<Vec<_>>());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn lossless_lane_matches_a_queue() {
    for capacity in 1..=9 {
        for seed in 0..4 {
            run(Policy::Reject, capacity, seed);
        }
    }
}

#[test]
fn evicting_lane_matches_a_queue_that_drops_its_oldest() {
    for capacity in 1..=9 {
        for seed in 0..4 {
            run(Policy::DropOldest, capacity, seed);
        }
    }
}
