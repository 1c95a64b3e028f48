//! Property tests against reference models: the outbox against a plain
//! byte vector, and address parsing against its own display.
#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]

use std::io;

use dndm_transport::Address;
use dndm_transport::handoff::{Outbox, Rejected};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Offer this many bytes.
    Send(usize),
    /// The socket gains this much room, then the I/O thread flushes.
    Flush(usize),
    /// The socket gains this much room; nobody flushes yet.
    Room(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..300).prop_map(Op::Send),
        // Batches above `handoff::COPY_MAX`, which flush the queue first.
        (4000usize..9000).prop_map(Op::Send),
        (0usize..400).prop_map(Op::Flush),
        (0usize..12_000).prop_map(Op::Flush),
        (0usize..12_000).prop_map(Op::Room),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the interleaving of sends and partial writes, the socket
    /// sees exactly the accepted bytes in order, the queue never exceeds its
    /// limit, and a refusal changes nothing.
    #[test]
    fn outbox_matches_reference(limit in prop_oneof![1usize..1024, 8000usize..30_000], ops in prop::collection::vec(op(), 1..60)) {
        let mut ob = Outbox::new(limit);
        let mut wire: Vec<u8> = Vec::new();
        let mut room = 0usize;
        let mut accepted: Vec<u8> = Vec::new();
        let mut next = 0u8;
        let write = |room: &mut usize, wire: &mut Vec<u8>, b: &[u8]| -> io::Result<usize> {
            if *room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = b.len().min(*room);
            *room -= n;
            wire.extend_from_slice(&b[..n]);
            Ok(n)
        };
        for op in ops {
            match op {
                Op::Send(len) => {
                    let bytes: Vec<u8> = (0..len).map(|i| next.wrapping_add(i as u8)).collect();
                    let queued = ob.queued();
                    match ob.send(&bytes, 1, |b| write(&mut room, &mut wire, b)) {
                        Ok(_) => {
                            next = next.wrapping_add(len as u8);
                            accepted.extend_from_slice(&bytes);
                        }
                        Err(Rejected::Full { .. }) => {
                            // Queued bytes may have been flushed first.
                            prop_assert!(ob.queued() + len > limit);
                            prop_assert!(ob.queued() <= queued);
                        }
                        Err(Rejected::TooLarge { .. }) => prop_assert!(len > limit),
                        Err(e) => prop_assert!(false, "unexpected {:?}", e),
                    }
                }
                Op::Flush(more) => {
                    room += more;
                    let _ = ob.flush(|b| write(&mut room, &mut wire, b));
                }
                Op::Room(more) => room += more,
            }
            prop_assert!(ob.queued() <= limit);
            prop_assert_eq!(wire.len() + ob.queued(), accepted.len());
            prop_assert_eq!(&accepted[..wire.len()], &wire[..]);
        }
        room = usize::MAX;
        let _ = ob.flush(|b| write(&mut room, &mut wire, b));
        prop_assert_eq!(wire, accepted);
        prop_assert!(ob.peak() <= limit);
    }

    /// Every valid address displays as text that parses back to itself.
    #[test]
    fn address_round_trips(
        ip in any::<[u8; 4]>(),
        port in any::<u16>(),
        name in "[A-Za-z0-9._-]{1,20}",
        path in "/[a-z0-9/._-]{1,30}",
    ) {
        let [a, b, c, d] = ip;
        for text in [
            format!("tcp://{a}.{b}.{c}.{d}:{port}"),
            format!("udp://{a}.{b}.{c}.{d}:{port}"),
            format!("mem://{name}"),
            format!("unix://{path}"),
        ] {
            let addr: Address = text.parse().unwrap();
            prop_assert_eq!(addr.to_string(), text);
        }
    }

    /// Arbitrary strings never panic the parser.
    #[test]
    fn address_parse_never_panics(s in ".{0,40}") {
        let _ = s.parse::<Address>();
    }
}
