//! Every API that takes a `Duration`, at `Duration::ZERO` and at
//! `Duration::MAX`. A timeout too large to add to the clock means "no
//! limit"; it must never panic. Where such a call would block, another thread
//! makes it succeed after a short pause (no test asserts timing).
#![allow(
    clippy::disallowed_types,
    reason = "tests observe the channel from outside with std types"
)]

use std::thread;
use std::time::Duration;

use dndm_core::{
    Config, Deadline, Policy, Receiver, RecvTimeoutError, SendError, Sender, bounded, channel,
};

const PAUSE: Duration = Duration::from_millis(20);

/// Runs `f` on another thread after a short pause.
fn later<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> thread::JoinHandle<R> {
    thread::spawn(move || {
        thread::sleep(PAUSE);
        f()
    })
}

#[test]
fn recv_timeout_zero_and_max() {
    let (tx, rx) = bounded::<u32>(4).unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Timeout)
    );
    tx.send(1).unwrap();
    assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(1));
    tx.send(2).unwrap();
    assert_eq!(rx.recv_timeout(Duration::MAX), Ok(2));
    let h = later(move || tx.send(3));
    assert_eq!(rx.recv_timeout(Duration::MAX), Ok(3));
    h.join().unwrap().unwrap();
    // Every sender gone: MAX still returns.
    assert_eq!(
        rx.recv_timeout(Duration::MAX),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn recv_deadline_never() {
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let h = later(move || tx.send(5));
    assert_eq!(rx.recv_deadline(Deadline::NEVER), Ok(5));
    h.join().unwrap().unwrap();
    assert_eq!(
        rx.recv_deadline(Deadline::after(Duration::MAX)),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn send_timeout_zero_and_max() {
    let (tx, rx) = bounded::<u32>(1).unwrap();
    tx.send_timeout(1, Duration::ZERO).unwrap();
    assert_eq!(
        tx.send_timeout(2, Duration::ZERO),
        Err(SendError::Full { msg: 2, missed: 1 })
    );
    assert_eq!(rx.recv(), Ok(1));
    tx.send_timeout(3, Duration::MAX).unwrap();
    // The lane is full: a receiver frees it after a pause.
    let h = later(move || {
        let first = rx.recv();
        (first, rx)
    });
    tx.send_timeout(4, Duration::MAX).unwrap();
    let (first, rx) = h.join().unwrap();
    assert_eq!(first, Ok(3));
    assert_eq!(rx.recv(), Ok(4));
}

#[test]
fn send_deadline_passed_and_never() {
    let (tx, rx) = bounded::<u32>(1).unwrap();
    let passed = Deadline::after(Duration::ZERO);
    tx.send_deadline(1, passed).unwrap();
    assert_eq!(
        tx.send_deadline(2, passed),
        Err(SendError::Full { msg: 2, missed: 1 }),
        "a passed deadline never waits for room"
    );
    // The lane is full: a receiver frees it after a pause; NEVER waits.
    let h = later(move || {
        let first = rx.recv();
        (first, rx)
    });
    tx.send_deadline(3, Deadline::NEVER).unwrap();
    let (first, rx) = h.join().unwrap();
    assert_eq!(first, Ok(1));
    assert_eq!(rx.recv(), Ok(3));
    drop(rx);
    assert!(
        tx.send_deadline(4, Deadline::NEVER).is_err(),
        "no receiver: NEVER returns at once"
    );
}

#[test]
fn block_policy_timeout_zero_and_max() {
    let (tx, rx) = channel::<u32>(Config::new(1).policy(Policy::Block {
        timeout: Some(Duration::ZERO),
    }))
    .unwrap();
    tx.send(1).unwrap();
    assert_eq!(tx.send(2), Err(SendError::Full { msg: 2, missed: 1 }));
    assert_eq!(rx.recv(), Ok(1));

    let (tx, rx) = channel::<u32>(Config::new(1).policy(Policy::Block {
        timeout: Some(Duration::MAX),
    }))
    .unwrap();
    tx.send(1).unwrap();
    // The sender's first full lane: it waits (no limit) until the receiver
    // takes a message.
    let h = later(move || {
        let first = rx.recv();
        (first, rx)
    });
    tx.send(2).unwrap();
    tx.try_send(9).unwrap_err();
    tx.send_timeout(10, Duration::ZERO).unwrap_err();
    let (first, rx) = h.join().unwrap();
    assert_eq!(first, Ok(1));
    assert_eq!(rx.recv(), Ok(2));
    // send_iter goes through the same policy.
    let h = later(move || rx.iter().take(3).collect::<Vec<_>>());
    assert_eq!(tx.send_iter([3, 4, 5]), Ok(3));
    assert_eq!(h.join().unwrap(), [3, 4, 5]);
}

#[test]
fn wait_receivers_zero_and_max() {
    let tx = Sender::<u32>::new();
    let weak = tx.downgrade();
    assert_eq!(tx.wait_receivers(|n| n > 0, Some(Duration::ZERO)), Err(0));
    assert_eq!(weak.wait_receivers(|n| n > 0, Some(Duration::ZERO)), Err(0));
    let rx = Receiver::<u32>::new(Config::new(1)).unwrap();
    let inlet = rx.inlet();
    tx.attach(&inlet).unwrap();
    assert_eq!(tx.wait_receivers(|n| n > 0, Some(Duration::ZERO)), Ok(1));
    assert_eq!(tx.wait_receivers(|n| n > 0, Some(Duration::MAX)), Ok(1));
    assert_eq!(weak.wait_receivers(|n| n > 0, Some(Duration::MAX)), Ok(1));
    // Wait (no limit) for the receiver to go.
    let h = later(move || drop((rx, inlet)));
    assert_eq!(tx.wait_receivers(|n| n == 0, Some(Duration::MAX)), Ok(0));
    h.join().unwrap();
    let rx = Receiver::<u32>::new(Config::new(1)).unwrap();
    let inlet = rx.inlet();
    let attach = weak.clone();
    let h = later(move || attach.attach(&inlet).map(|_| (rx, inlet)));
    assert_eq!(weak.wait_receivers(|n| n > 0, Some(Duration::MAX)), Ok(1));
    drop(h.join().unwrap().unwrap());
}
