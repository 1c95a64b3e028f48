//! The stream decoder's configuration, what `feed` takes when its buffer is
//! full, and the text of each decode error.
//!
//! Written against mutants of `codec/src/decode.rs` that the other tests
//! let through (see `docs/mutants.md`).
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use dndm_codec::{DecodeError, DecoderConfig, FrameBuffer, FrameHeader, HEADER_LEN, StreamDecoder};

fn data_frames(count: usize, payload: usize) -> Vec<u8> {
    let mut buf = FrameBuffer::new();
    for i in 0..count {
        buf.push_raw(
            &FrameHeader::data(1).with_seq(i as u64),
            &vec![i as u8; payload],
        )
        .unwrap();
    }
    buf.as_bytes().to_vec()
}

#[test]
fn config_defaults_and_setters() {
    let d = DecoderConfig::default();
    assert_eq!(d.max_frame_len, 16 << 20);
    assert_eq!(d.initial_capacity, 64 << 10);
    assert_eq!(DecoderConfig::DEFAULT_MAX_FRAME_LEN, 16 << 20);
    assert_eq!(DecoderConfig::DEFAULT_INITIAL_CAPACITY, 64 << 10);

    let c = d.with_max_frame_len(4096).with_initial_capacity(100);
    assert_eq!((c.max_frame_len, c.initial_capacity), (4096, 100));
    // A frame limit below one header is raised to a header.
    assert_eq!(d.with_max_frame_len(10).max_frame_len, HEADER_LEN);
    assert_eq!(StreamDecoder::new(c).config(), c);
    assert_eq!(StreamDecoder::default().config(), d);
    // The decoder raises a limit set directly on the fields too.
    let mut raw = DecoderConfig::default();
    raw.max_frame_len = 1;
    assert_eq!(StreamDecoder::new(raw).config().max_frame_len, HEADER_LEN);
}

/// At its largest size and full of undrained frames, the buffer takes
/// nothing more; draining frees the room again, and nothing is lost.
#[test]
fn feed_takes_what_fits_and_the_rest_after_draining() {
    // Four 64-byte frames; the buffer may hold two.
    let bytes = data_frames(4, 16);
    assert_eq!(bytes.len(), 256);
    let config = DecoderConfig::default()
        .with_max_frame_len(128)
        .with_initial_capacity(128);
    let mut decoder = StreamDecoder::new(config);
    assert_eq!(decoder.feed(&bytes), 128);
    assert_eq!(decoder.capacity(), 128);
    assert_eq!(decoder.feed(&bytes[128..]), 0, "full of undrained frames");
    assert!(decoder.read_buf().is_empty());

    let mut seqs = Vec::new();
    let mut fed = 128;
    for _ in 0..8 {
        while let Some(frame) = decoder.next_frame().unwrap() {
            seqs.push(frame.header().seq);
            assert!(seqs.len() <= 4, "more frames than were sent");
        }
        fed += decoder.feed(&bytes[fed..]);
    }
    assert_eq!(fed, 256);
    assert_eq!(seqs, [0, 1, 2, 3]);
    assert_eq!(decoder.capacity(), 128, "never beyond the frame limit");
}

/// The buffer starts at the initial capacity (at least a header) and
/// doubles up to the frame limit rounded up to 16.
#[test]
fn the_buffer_doubles_up_to_the_rounded_limit() {
    let config = DecoderConfig::default()
        .with_max_frame_len(1000)
        .with_initial_capacity(100);
    let mut decoder = StreamDecoder::new(config);
    assert_eq!(decoder.capacity(), 0);
    let mut sizes = Vec::new();
    for _ in 0..6 {
        let n = decoder.read_buf().len();
        decoder.commit(n);
        sizes.push(decoder.capacity());
    }
    assert_eq!(sizes, [112, 224, 448, 896, 1008, 1008]);
    assert_eq!(decoder.buffered(), 1008);

    let mut small = StreamDecoder::new(DecoderConfig::default().with_initial_capacity(0));
    assert_eq!(small.read_buf().len(), HEADER_LEN);
}

#[test]
fn error_text_names_the_offset_and_values() {
    let cases = [
        (
            DecodeError::BadMagic {
                offset: 3,
                found: 0x41,
                expected: 0x4d,
            },
            "bad magic byte 0x41 at offset 3 (expected 0x4d)",
        ),
        (
            DecodeError::UnsupportedVersion {
                offset: 4,
                version: 9,
            },
            "unsupported protocol version 9 at offset 4",
        ),
        (
            DecodeError::BadChecksum {
                offset: 12,
                stored: 0xdead_beef,
                computed: 0x1,
            },
            "header checksum mismatch at offset 12: stored 0xdeadbeef, computed 0x00000001",
        ),
        (
            DecodeError::UnknownKind { offset: 5, kind: 7 },
            "unknown frame kind 7 at offset 5",
        ),
        (
            DecodeError::ReservedBits {
                offset: 6,
                value: 0x81,
            },
            "reserved bits 0x81 set at offset 6",
        ),
        (
            DecodeError::FrameTooLarge {
                offset: 8,
                len: 4096,
                limit: 1024,
            },
            "frame length 4096 at offset 8 exceeds the limit of 1024 bytes",
        ),
        (
            DecodeError::Truncated {
                offset: 64,
                needed: 80,
                available: 51,
            },
            "truncated frame at offset 64: needs 80 bytes, 51 available",
        ),
    ];
    for (error, text) in cases {
        assert_eq!(error.to_string(), text);
    }
}

/// At its largest size, a buffer whose front holds drained frames and whose
/// end holds part of the next one moves that part to the front to take the
/// rest of it.
#[test]
fn a_partial_frame_moves_to_the_front_to_make_room() {
    // Three 80-byte frames; the buffer holds 128 bytes.
    let bytes = data_frames(3, 32);
    assert_eq!(bytes.len(), 240);
    let config = DecoderConfig::default()
        .with_max_frame_len(128)
        .with_initial_capacity(128);
    let mut decoder = StreamDecoder::new(config);
    assert_eq!(decoder.feed(&bytes), 128);
    assert_eq!(decoder.next_frame().unwrap().unwrap().header().seq, 0);
    assert!(decoder.next_frame().unwrap().is_none());
    assert_eq!(decoder.buffered(), 48);
    // The first frame's 80 bytes are free again once the partial one moves.
    assert_eq!(decoder.feed(&bytes[128..]), 80);
    assert_eq!(decoder.capacity(), 128);
    assert_eq!(decoder.next_frame().unwrap().unwrap().header().seq, 1);
    assert_eq!(decoder.feed(&bytes[208..]), 32);
    assert_eq!(decoder.next_frame().unwrap().unwrap().header().seq, 2);
    assert!(decoder.next_frame().unwrap().is_none());
    assert_eq!(decoder.offset(), 240);
}
