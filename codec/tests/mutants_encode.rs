//! The write buffer's observable state (length, frame count, capacity,
//! clearing), what each push returns, which flags it refuses, and the
//! encoder errors' text and sources.
//!
//! Written against mutants of `codec/src/encode.rs` that the other tests
//! let through (see `docs/mutants.md`).
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::error::Error as _;

use dndm_codec::{
    EncodeError, FrameBuffer, FrameHeader, HEADER_LEN, MAX_PAYLOAD_LEN, Message, frame_len, frames,
};
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Debug, PartialEq, Clone)]
#[message(name = "test.Note", version = 1)]
struct Note {
    id: u32,
    text: String,
}

#[test]
fn length_frame_count_and_clear() {
    let mut buf = FrameBuffer::new();
    assert!(buf.is_empty());
    assert_eq!((buf.len(), buf.frame_count()), (0, 0));

    let a = buf.push_raw(&FrameHeader::control(), b"ping").unwrap();
    assert_eq!(a, frame_len(4));
    assert!(!buf.is_empty());
    assert_eq!((buf.len(), buf.frame_count()), (a, 1));

    let note = Note {
        id: 7,
        text: "seven".into(),
    };
    let b = buf
        .push_message(&FrameHeader::data(3).with_seq(9), &note)
        .unwrap();
    assert!(b > HEADER_LEN, "a message frame carries a payload");
    assert_eq!(b % 16, 0);
    assert_eq!((buf.len(), buf.frame_count()), (a + b, 2));
    assert_eq!(buf.as_bytes().len(), a + b);

    // The returned lengths are where each frame ends.
    let got: Vec<_> = frames(buf.as_bytes()).take(3).map(Result::unwrap).collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].offset(), a as u64);
    assert_eq!(got[0].payload(), b"ping");
    let sample = got[1].sample::<Note>().unwrap();
    assert_eq!(sample.header().seq, 9);
    assert_eq!(sample.deserialize().unwrap(), note);

    let capacity = buf.capacity();
    assert!(capacity >= a + b);
    buf.clear();
    assert!(buf.is_empty());
    assert_eq!((buf.len(), buf.frame_count()), (0, 0));
    assert!(buf.as_bytes().is_empty());
    assert_eq!(buf.capacity(), capacity, "clear keeps the allocation");
}

#[test]
fn capacity_is_what_was_asked_for() {
    assert_eq!(FrameBuffer::new().capacity(), 0);
    let buf = FrameBuffer::with_capacity(4096);
    assert!(buf.capacity() >= 4096, "{}", buf.capacity());
    assert!(buf.is_empty());
}

#[test]
fn debug_shows_length_and_frame_count() {
    let mut buf = FrameBuffer::new();
    buf.push_raw(&FrameHeader::control(), b"x").unwrap();
    let text = format!("{buf:?}");
    assert!(text.starts_with("FrameBuffer"), "{text}");
    assert!(text.contains("len: 64"), "{text}");
    assert!(text.contains("frames: 1"), "{text}");
}

/// The low flag byte belongs to the codec; the high byte is the caller's.
#[test]
fn only_reserved_flag_bits_are_refused() {
    let mut buf = FrameBuffer::new();
    for bit in 8..16 {
        let flags = 1u16 << bit;
        buf.push_raw(&FrameHeader::control().with_flags(flags), b"")
            .unwrap();
    }
    assert_eq!(buf.frame_count(), 8);
    for bit in 0..8 {
        let flags = 0x0100 | 1u16 << bit;
        let header = FrameHeader::control().with_flags(flags);
        let err = buf.push_raw(&header, b"").unwrap_err();
        assert!(
            matches!(err, EncodeError::ReservedFlags { flags: f } if f == flags),
            "{err:?}"
        );
        let err = buf
            .push_message(
                &header,
                &Note {
                    id: 1,
                    text: String::new(),
                },
            )
            .unwrap_err();
        assert!(matches!(err, EncodeError::ReservedFlags { .. }), "{err:?}");
    }
    assert_eq!(
        buf.frame_count(),
        8,
        "refused frames leave the buffer as it was"
    );
    assert_eq!(buf.len(), 8 * HEADER_LEN);
}

#[test]
fn error_text_and_sources() {
    let too_large = EncodeError::PayloadTooLarge {
        len: 5_000_000_000,
        limit: MAX_PAYLOAD_LEN,
    };
    assert_eq!(
        too_large.to_string(),
        format!("payload of 5000000000 bytes exceeds the limit of {MAX_PAYLOAD_LEN} bytes")
    );
    assert!(too_large.source().is_none());

    let flags = EncodeError::ReservedFlags { flags: 0x0003 };
    assert_eq!(
        flags.to_string(),
        "flags 0x0003 set bits reserved for the codec (0x00ff)"
    );
    assert!(flags.source().is_none());

    let cause = <rkyv::rancor::Error as rkyv::rancor::Source>::new(std::fmt::Error);
    let cause_text = cause.to_string();
    let serialize = EncodeError::Serialize {
        type_name: "test.Note",
        source: cause,
    };
    assert_eq!(
        serialize.to_string(),
        format!("serialising a test.Note failed: {cause_text}")
    );
    assert_eq!(serialize.source().unwrap().to_string(), cause_text);
}
