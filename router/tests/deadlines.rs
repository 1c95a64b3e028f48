//! The linker's waits at `Duration::ZERO` and at `Duration::MAX`: a timeout
//! too large to add to the clock means "no limit" and never panics. Where a
//! call would block, another thread makes it succeed after a short pause (no
//! test asserts timing).
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use dndm_core::{Config, Receiver, Sender};
use dndm_router::{ChannelIntent, ChannelInterest, Intent, Interest, LinkEvent, Linker};

const PAUSE: Duration = Duration::from_millis(20);

/// Far beyond what any wait here needs (milliseconds).
const BOUND: Duration = Duration::from_secs(20);

/// Closes `linker` once `BOUND` has passed: a wait without limit for a link
/// that never comes (a linker that stopped matching) then ends, and the test
/// fails on its result instead of hanging. Harmless after the test is done.
fn watchdog(linker: &Linker) {
    let linker = linker.clone();
    thread::spawn(move || {
        thread::sleep(BOUND);
        linker.close();
    });
}

fn sub(linker: &Linker, sel: &str) -> (Receiver<u32>, Interest) {
    let rx = Receiver::new(Config::new(4)).unwrap();
    let port = Arc::new(ChannelInterest::new(rx.inlet()));
    let i = linker.add_interest(sel.parse().unwrap(), 1, port).unwrap();
    (rx, i)
}

fn publ(linker: &Linker, route: &str) -> (Sender<u32>, Intent) {
    let tx = Sender::new();
    let port = Arc::new(ChannelIntent::new(tx.downgrade()));
    let i = linker.add_intent(route.parse().unwrap(), 1, port).unwrap();
    (tx, i)
}

#[test]
fn intent_waits_zero_and_max() {
    let linker = Linker::new();
    watchdog(&linker);
    let (_tx, p) = publ(&linker, "T@a");
    assert!(!p.wait_for_interest(Some(Duration::ZERO)));
    assert!(!p.wait_links(|n| n > 0, Some(Duration::ZERO)));
    assert!(p.next_event(Some(Duration::ZERO)).is_none());
    let (rx, s) = sub(&linker, "T@a");
    assert!(p.wait_for_interest(Some(Duration::ZERO)));
    assert!(p.wait_for_interest(Some(Duration::MAX)));
    assert!(p.wait_links(|n| n == 1, Some(Duration::MAX)));
    assert!(matches!(
        p.next_event(Some(Duration::MAX)),
        Some(LinkEvent::Linked { .. })
    ));
    // Blocking without limit until another thread changes the links.
    let other = linker.clone();
    let h = thread::spawn(move || {
        thread::sleep(PAUSE);
        let second = sub(&other, "T@*");
        drop((rx, s));
        second
    });
    assert!(matches!(
        p.next_event(Some(Duration::MAX)),
        Some(LinkEvent::Linked { .. })
    ));
    assert!(p.wait_links(|n| n == 1, Some(Duration::MAX)));
    drop(h.join().unwrap());
    assert!(p.wait_links(|n| n == 0, Some(Duration::MAX)));
}

#[test]
fn interest_waits_zero_and_max() {
    let linker = Linker::new();
    watchdog(&linker);
    let (_rx, s) = sub(&linker, "T@**");
    assert!(!s.wait_links(|n| n > 0, Some(Duration::ZERO)));
    assert!(s.next_event(Some(Duration::ZERO)).is_none());
    let other = linker.clone();
    let h = thread::spawn(move || {
        thread::sleep(PAUSE);
        publ(&other, "T@x.y")
    });
    assert!(s.wait_links(|n| n > 0, Some(Duration::MAX)));
    assert!(matches!(
        s.next_event(Some(Duration::MAX)),
        Some(LinkEvent::Linked { .. })
    ));
    let (_tx, _p) = h.join().unwrap();
    assert!(s.wait_links(|n| n > 0, Some(Duration::ZERO)));
    // A closed linker ends a wait without limit.
    let h = thread::spawn(move || {
        thread::sleep(PAUSE);
        linker.close();
    });
    assert!(!s.wait_links(|n| n > 1, Some(Duration::MAX)));
    h.join().unwrap();
    assert!(s.next_event(Some(Duration::MAX)).is_some() || s.is_closed());
}
