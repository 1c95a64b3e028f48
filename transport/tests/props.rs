//! Property tests: address parsing against its own display. (The outbox's
//! model test lives beside it, in `src/handoff.rs`: the hand-off is not
//! public.)
#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]

use dndm_transport::Address;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

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
