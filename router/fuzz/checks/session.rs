//! The peer session fuzz check, shared by the fuzz target
//! (`fuzz_targets/session.rs`) and the corpus replay test
//! (`router/tests/fuzz_corpus.rs`).
//!
//! The input is read as a sequence of frames (kind, alias, flags,
//! correlation, payload length, payload) handed straight to
//! `Session::handle_frame`, bypassing the codec's checksums so the fuzzer
//! reaches the control payload parser, the alias tables and the limits. When
//! the first byte is odd, a valid hello goes first, so post-handshake states
//! are explored too; timers run between frames.
//!
//! Invariants: no panic; once a frame is refused with an error the session
//! is closed and never errs again; `Closed` is the last event.

use std::time::Duration;

use dndm_codec::{FrameBuffer, FrameHeader, FrameKind};
use dndm_router::session::{Event, NodeId, Session, SessionConfig};

fn hello() -> Vec<u8> {
    let mut v = vec![1u8];
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&[1, 4, 1, 0]);
    v.extend_from_slice(&[9; 16]);
    v.extend_from_slice(&0u64.to_le_bytes());
    v.extend_from_slice(&(1u32 << 20).to_le_bytes());
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&[8, 2]);
    v.extend_from_slice(&128u16.to_le_bytes());
    v.extend_from_slice(&4u32.to_le_bytes());
    v.extend_from_slice(&5000u32.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(b"fuzz");
    v.extend_from_slice(&0u16.to_le_bytes());
    v
}

/// One fuzz input: see the module documentation for its layout.
pub fn check(data: &[u8]) {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let mut config = SessionConfig::new(NodeId::from_bytes([2; 16]), "target");
    config.limits.max_declarations = 8;
    config.unknown_alias_limit = 4;
    let mut s = Session::new(config, Duration::ZERO);
    if first & 1 == 1 {
        assert!(
            s.handle_frame(Duration::from_millis(1), &FrameHeader::control(), &hello())
                .is_ok()
        );
    }
    let mut failed = false;
    let mut t = 2u64;
    while rest.len() >= 9 {
        let kind = FrameKind::from_u8(rest[0] % 4 + 1).unwrap_or(FrameKind::Control);
        let route = u32::from(rest[1] % 4);
        let flags = u16::from(rest[2]) << 8;
        let correlation = u64::from(rest[3] % 4);
        let dt = u64::from(rest[4]) * 50;
        let len = usize::from(u16::from_le_bytes([rest[5], rest[6]]) % 512);
        let body = &rest[7..];
        let payload = &body[..len.min(body.len())];
        rest = &body[payload.len()..];
        t += dt;
        let now = Duration::from_millis(t);
        let header = FrameHeader::new(kind, route)
            .with_flags(flags)
            .with_correlation(correlation);
        if s.handle_frame(now, &header, payload).is_err() {
            assert!(!failed, "a closed session failed again");
            failed = true;
        }
        s.handle_timeout(now);
        let mut out = FrameBuffer::new();
        s.poll_transmit(now, &mut out);
    }
    assert!(!failed || s.is_closed());
    let mut closed = false;
    while let Some(e) = s.poll_event() {
        assert!(!closed, "an event after Closed");
        closed = matches!(e, Event::Closed(_));
    }
}

/// Inputs the fuzzer starts from and the replay test always runs: after the
/// hello, a declaration-shaped control frame, a data frame on alias 1, a
/// request, and a long pause for the timers.
#[allow(dead_code, reason = "the fuzz target does not use it")]
pub fn seeds() -> Vec<Vec<u8>> {
    let frame = |kind: u8, route: u8, dt: u8, payload: &[u8]| {
        let mut v = vec![kind, route, 0, 1, dt];
        v.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        v.extend_from_slice(payload);
        v
    };
    let mut after_hello = vec![1u8];
    after_hello.extend(frame(1, 0, 1, &[2, 1, 0, 0, 0, 0, 0, 0, 0]));
    after_hello.extend(frame(0, 1, 1, &[0u8; 16]));
    after_hello.extend(frame(2, 1, 1, b"request"));
    after_hello.extend(frame(1, 0, 255, &[]));
    let mut before_hello = vec![0u8];
    before_hello.extend(frame(1, 0, 0, &hello()));
    vec![after_hello, before_hello]
}
