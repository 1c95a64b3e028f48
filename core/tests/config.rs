//! What a [`Config`] says is what a receiver does: the capacity and policy
//! read back as configured, and a lane holds exactly `capacity` messages.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use dndm_core::{Config, MAX_CAPACITY, Policy, Receiver, SendError, Sender, channel};

#[test]
fn config_reads_back_what_was_set() {
    for capacity in [1, 2, 3, 8, 1000, MAX_CAPACITY] {
        let config = Config::new(capacity);
        assert_eq!(config.capacity(), capacity);
        assert_eq!(config.get_policy(), Policy::BLOCK);
        assert_eq!(config.policy(Policy::Reject).capacity(), capacity);
    }
    assert_eq!(
        Config::new(5).policy(Policy::DropOldest).get_policy(),
        Policy::DropOldest
    );
}

#[test]
fn a_receiver_reports_its_config() {
    let config = Config::new(7).policy(Policy::Reject);
    let rx = Receiver::<u8>::new(config).unwrap();
    assert_eq!(rx.config(), config);
    assert_eq!(rx.config().capacity(), 7);
    assert_eq!(rx.inlet().config().capacity(), 7);
}

/// Every capacity from 1 to 40 (powers of two and their neighbours
/// included): exactly `capacity` messages fit, the next is refused.
#[test]
fn a_lane_holds_exactly_its_capacity() {
    for capacity in 1..=40 {
        let (tx, rx) = channel::<usize>(Config::new(capacity).policy(Policy::Reject)).unwrap();
        // Twice, so the second lap runs over reused slots.
        for lap in 0..2 {
            for i in 0..capacity {
                tx.try_send(i).unwrap();
            }
            assert_eq!(rx.stats().queued, capacity, "capacity {capacity} lap {lap}");
            match tx.try_send(capacity) {
                Err(SendError::Full { msg, missed: 1 }) => assert_eq!(msg, capacity),
                other => panic!("capacity {capacity}: expected Full, got {other:?}"),
            }
            let got: Vec<usize> = rx.drain().collect();
            assert_eq!(got, (0..capacity).collect::<Vec<_>>());
        }
        assert_eq!(rx.stats().rejected, 2);
    }
}

/// Under `DropOldest` the receiver keeps the latest `capacity` messages.
#[test]
fn drop_oldest_keeps_exactly_the_latest_capacity_messages() {
    for capacity in 1..=20 {
        let (tx, rx) = channel::<usize>(Config::new(capacity).policy(Policy::DropOldest)).unwrap();
        let sent = 3 * capacity + 1;
        for i in 0..sent {
            tx.try_send(i).unwrap();
        }
        let got: Vec<usize> = rx.drain().collect();
        assert_eq!(got, (sent - capacity..sent).collect::<Vec<_>>());
        assert_eq!(rx.stats().dropped, (sent - capacity) as u64);
    }
}

/// A sender's lane into a receiver opened after the sender existed has the
/// receiver's capacity too.
#[test]
fn a_late_attached_lane_uses_the_receivers_capacity() {
    let tx = Sender::<u32>::new();
    let rx = Receiver::new(Config::new(2).policy(Policy::Reject)).unwrap();
    tx.attach(&rx.inlet()).unwrap();
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert!(matches!(tx.try_send(3), Err(SendError::Full { .. })));
    let clone = tx.clone();
    clone.try_send(10).unwrap();
    clone.try_send(11).unwrap();
    assert!(matches!(clone.try_send(12), Err(SendError::Full { .. })));
    assert_eq!(rx.stats().lanes, 2);
    assert_eq!(rx.stats().queued, 4);
}
