//! In-process fan-out shares the message: a send to several subscribers (or
//! into a history) copies a pointer, and `Sample::into_inner` moves the value
//! out when nobody else holds it.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::cell::Cell;

use dndm::prelude::*;
use rkyv::{Archive, Deserialize, Serialize};

thread_local! {
    /// Clones of `Counted` made on this thread (each test sends and receives
    /// on its own thread).
    static CLONES: Cell<usize> = const { Cell::new(0) };
}

fn clones() -> usize {
    CLONES.with(Cell::get)
}

#[derive(Archive, Serialize, Deserialize, Message, Debug, PartialEq)]
#[message(name = "test.Counted")]
struct Counted {
    data: Vec<u8>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        CLONES.with(|c| c.set(c.get() + 1));
        Self {
            data: self.data.clone(),
        }
    }
}

fn msg(i: u8) -> Counted {
    Counted {
        data: vec![i; 1024],
    }
}

#[test]
fn a_fan_out_to_four_subscribers_shares_one_value() {
    let node = Node::new("t");
    let subs: Vec<_> = (0..4)
        .map(|_| node.subscribe::<Counted>("big").unwrap())
        .collect();
    let publ = node.publish::<Counted>("big").unwrap();
    for i in 0..10 {
        publ.send(msg(i)).unwrap();
    }
    assert_eq!(clones(), 0, "a send to four subscribers copies nothing");
    for i in 0..10 {
        let samples: Vec<_> = subs.iter().map(|s| s.try_recv().unwrap()).collect();
        let first: *const Counted = samples[0].get();
        for s in &samples {
            assert!(s.is_shared());
            assert_eq!(s.data[0], i);
            assert!(std::ptr::eq(first, &**s), "every subscriber sees one value");
        }
        // Shared: taking the value out clones it...
        let mut samples = samples.into_iter();
        let copy = samples.next().unwrap().into_inner();
        assert_eq!(copy, msg(i));
        assert_eq!(clones(), 1);
        // ...unless this sample is the last holder.
        drop(samples.next());
        drop(samples.next());
        let last = samples.next().unwrap().into_inner();
        assert_eq!(last.data[0], i);
        assert_eq!(clones(), 1, "the last holder moves the value out");
        CLONES.with(|c| c.set(0));
    }
}

#[test]
fn one_subscriber_gets_the_value_itself() {
    let node = Node::new("t");
    let sub = node.subscribe::<Counted>("one").unwrap();
    let publ = node.publish::<Counted>("one").unwrap();
    publ.send(msg(7)).unwrap();
    let s = sub.try_recv().unwrap();
    assert!(!s.is_shared());
    assert_eq!(s.into_inner(), msg(7));
    assert_eq!(clones(), 0);

    publ.send(msg(8)).unwrap();
    let arc = sub.try_recv().unwrap().into_arc();
    assert_eq!(*arc, msg(8));
    assert_eq!(clones(), 0, "into_arc never copies");
}

#[test]
fn history_and_its_replay_share_the_values() {
    let node = Node::new("t");
    let publ = node
        .publish_with::<Counted>("h", PublishOptions::new().history(4))
        .unwrap();
    for i in 0..6 {
        publ.send(msg(i)).unwrap();
    }
    let a = node.subscribe::<Counted>("h").unwrap();
    let b = node.subscribe::<Counted>("h").unwrap();
    for i in 2..6 {
        let (sa, sb) = (a.try_recv().unwrap(), b.try_recv().unwrap());
        assert_eq!(sa.data[0], i);
        assert!(
            std::ptr::eq(sa.get(), sb.get()),
            "replays share the ring's value"
        );
    }
    publ.send(msg(6)).unwrap();
    assert_eq!(a.try_recv().unwrap().data[0], 6);
    assert_eq!(b.try_recv().unwrap().data[0], 6);
    assert_eq!(clones(), 0, "history costs no copy of a message");
}
