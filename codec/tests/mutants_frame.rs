//! The frame format as a peer sees it: the exact bytes of a header, each
//! header check with the field and stream offset it names, the payload
//! length limit at its bound, and the `frames` iterator's positions.
//!
//! Written against mutants of `codec/src/frame.rs` that the other tests
//! let through (see `docs/mutants.md`).
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use dndm_codec::{
    DecodeError, DecoderConfig, FrameBuffer, FrameHeader, FrameKind, HEADER_LEN, MAX_PAYLOAD_LEN,
    PAYLOAD_ALIGN, RecvBuffer, StreamDecoder, frame_len, frames,
};

/// A reply frame written by the independent Python writer of
/// `tests/corpus/gen_corpus.py` (`frame(kind=4, flags=0x0a00,
/// payload=b'golden!', route=0x01020304, seq=0x1112131415161718,
/// ts=0x2122232425262728, corr=0x3132333435363738)`).
const GOLDEN: [u8; 64] = [
    0x44, 0x4e, 0x44, 0x4d, 0x01, 0x04, 0x00, 0x0a, 0x07, 0x00, 0x00, 0x00, 0xf6, 0xe6, 0xe2, 0x07,
    0x04, 0x03, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,
    0x28, 0x27, 0x26, 0x25, 0x24, 0x23, 0x22, 0x21, 0x38, 0x37, 0x36, 0x35, 0x34, 0x33, 0x32, 0x31,
    0x67, 0x6f, 0x6c, 0x64, 0x65, 0x6e, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

fn golden_header() -> FrameHeader {
    FrameHeader::new(FrameKind::Reply, 0x0102_0304)
        .with_flags(0x0a00)
        .with_seq(0x1112_1314_1516_1718)
        .with_timestamp_ns(0x2122_2324_2526_2728)
        .with_correlation(0x3132_3334_3536_3738)
}

/// `bytes` in a 16-byte aligned buffer, so payload views are aligned.
fn aligned(bytes: &[u8]) -> RecvBuffer {
    let mut buf = RecvBuffer::new();
    buf.extend_from_slice(bytes);
    buf
}

/// A data frame with `payload`, encoded by the crate.
fn data_frame(payload: &[u8]) -> Vec<u8> {
    let mut buf = FrameBuffer::new();
    buf.push_raw(&FrameHeader::data(7).with_seq(1), payload)
        .unwrap();
    buf.as_bytes().to_vec()
}

/// Sets the header byte `at` of the frame starting at `start` and, when
/// `fix`, rewrites its checksum so that only the edited field is wrong.
fn edit(bytes: &mut [u8], start: usize, at: usize, value: u8, fix: bool) {
    bytes[start + at] = value;
    if fix {
        refix(bytes, start);
    }
}

fn refix(bytes: &mut [u8], start: usize) {
    let head: &mut [u8; HEADER_LEN] = (&mut bytes[start..start + HEADER_LEN]).try_into().unwrap();
    head[12..16].fill(0);
    let sum = dndm_codec::__private::header_checksum(head);
    head[12..16].copy_from_slice(&sum.to_le_bytes());
}

/// The first error of the stream decoder fed `bytes` at once.
fn stream_error(bytes: &[u8], max_frame_len: usize) -> DecodeError {
    let mut decoder =
        StreamDecoder::new(DecoderConfig::default().with_max_frame_len(max_frame_len));
    let mut fed = 0;
    // Each round either takes bytes or drains a frame; the input bounds both.
    for _ in 0..2 * bytes.len() + 2 {
        fed += decoder.feed(&bytes[fed..]);
        match decoder.next_frame() {
            Ok(Some(_)) => {}
            Ok(None) if fed == bytes.len() => panic!("no error in {} bytes", bytes.len()),
            Ok(None) => {}
            Err(e) => return e,
        }
    }
    panic!("the decoder neither failed nor finished");
}

/// The first error of the `frames` iterator over `bytes`.
fn iter_error(bytes: &[u8], max_frame_len: usize) -> DecodeError {
    let buf = aligned(bytes);
    frames(&buf)
        .max_frame_len(max_frame_len)
        .take(bytes.len() / HEADER_LEN + 1)
        .find_map(Result::err)
        .unwrap()
}

#[test]
fn the_encoder_writes_what_an_independent_writer_writes() {
    let mut buf = FrameBuffer::new();
    let len = buf.push_raw(&golden_header(), b"golden!").unwrap();
    assert_eq!(len, GOLDEN.len());
    assert_eq!(buf.as_bytes(), &GOLDEN[..]);
}

#[test]
fn both_decoders_read_every_field_an_independent_writer_wrote() {
    let bytes = aligned(&GOLDEN);
    let got: Vec<_> = frames(&bytes).take(2).collect();
    assert_eq!(got.len(), 1);
    let frame = got[0].as_ref().unwrap();
    assert_eq!(*frame.header(), golden_header());
    assert_eq!(frame.kind(), FrameKind::Reply);
    assert_eq!(frame.payload(), b"golden!");

    let mut decoder = StreamDecoder::default();
    assert_eq!(decoder.feed(&GOLDEN), GOLDEN.len());
    let frame = decoder.next_frame().unwrap().unwrap();
    assert_eq!(*frame.header(), golden_header());
    assert_eq!(frame.payload(), b"golden!");
}

#[test]
fn kind_bytes_and_names() {
    let kinds = [
        (1, FrameKind::Data, "data"),
        (2, FrameKind::Control, "control"),
        (3, FrameKind::Request, "request"),
        (4, FrameKind::Reply, "reply"),
    ];
    for (byte, kind, name) in kinds {
        assert_eq!(FrameKind::from_u8(byte), Some(kind));
        assert_eq!(kind.as_u8(), byte);
        assert_eq!(kind.to_string(), name);
    }
    for byte in (0..=255u8).filter(|b| !(1..=4).contains(b)) {
        assert_eq!(FrameKind::from_u8(byte), None, "kind byte {byte}");
    }
}

#[test]
fn header_builders_set_one_field_each() {
    let h = FrameHeader::data(5);
    assert_eq!((h.kind, h.route, h.flags), (FrameKind::Data, 5, 0));
    assert_eq!((h.seq, h.timestamp_ns, h.correlation), (0, 0, 0));
    let c = FrameHeader::control();
    assert_eq!((c.kind, c.route), (FrameKind::Control, 0));
    let h = h
        .with_seq(1)
        .with_timestamp_ns(2)
        .with_correlation(3)
        .with_flags(0x100);
    assert_eq!(
        (
            h.kind,
            h.route,
            h.seq,
            h.timestamp_ns,
            h.correlation,
            h.flags
        ),
        (FrameKind::Data, 5, 1, 2, 3, 0x100)
    );
}

#[test]
fn frame_lengths_are_padded_to_the_payload_alignment() {
    assert_eq!(PAYLOAD_ALIGN, 16);
    for (payload, total) in [(0, 48), (1, 64), (15, 64), (16, 64), (17, 80), (100, 160)] {
        assert_eq!(frame_len(payload), total, "payload of {payload} bytes");
        assert_eq!(data_frame(&vec![3; payload]).len(), total);
    }
    // Saturates instead of overflowing.
    assert_eq!(frame_len(usize::MAX), usize::MAX);
}

/// Every header check names its field at its stream offset, here in the
/// second frame of a stream (offset 64), through both decoders.
#[test]
fn header_errors_name_the_field_at_its_stream_offset() {
    let first = data_frame(b"hello");
    assert_eq!(first.len(), 64);
    let second = data_frame(b"abc");
    let base: Vec<u8> = [first, second].concat();
    let limit = 1 << 16;

    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        {
            let mut b = base.clone();
            edit(&mut b, 64, 1, b'X', false);
            let e = DecodeError::BadMagic {
                offset: 65,
                found: b'X',
                expected: b'N',
            };
            (b, e)
        },
        {
            let mut b = base.clone();
            edit(&mut b, 64, 4, 2, false);
            (
                b,
                DecodeError::UnsupportedVersion {
                    offset: 68,
                    version: 2,
                },
            )
        },
        {
            let mut b = base.clone();
            let stored = u32::from_le_bytes(b[64 + 12..64 + 16].try_into().unwrap());
            edit(&mut b, 64, 24, 9, false);
            let mut head: [u8; HEADER_LEN] = b[64..64 + HEADER_LEN].try_into().unwrap();
            head[12..16].fill(0);
            let computed = dndm_codec::__private::header_checksum(&head);
            assert_ne!(stored, computed);
            (
                b,
                DecodeError::BadChecksum {
                    offset: 76,
                    stored,
                    computed,
                },
            )
        },
        {
            let mut b = base.clone();
            edit(&mut b, 64, 6, 0x01, true);
            edit(&mut b, 64, 7, 0x01, true);
            (
                b,
                DecodeError::ReservedBits {
                    offset: 70,
                    value: 1,
                },
            )
        },
        {
            let mut b = base.clone();
            edit(&mut b, 64, 5, 9, true);
            (
                b,
                DecodeError::UnknownKind {
                    offset: 69,
                    kind: 9,
                },
            )
        },
        {
            let mut b = base.clone();
            edit(&mut b, 64, 20, 5, true);
            (
                b,
                DecodeError::ReservedBits {
                    offset: 84,
                    value: 5,
                },
            )
        },
        {
            let mut b = base.clone();
            // Payload length 0x0100_0003 (the high byte set): above 64 KiB.
            edit(&mut b, 64, 11, 1, true);
            (
                b,
                DecodeError::FrameTooLarge {
                    offset: 72,
                    len: frame_len(0x0100_0003) as u64,
                    limit: limit as u64,
                },
            )
        },
    ];
    for (bytes, want) in cases {
        assert_eq!(stream_error(&bytes, limit), want);
        assert_eq!(iter_error(&bytes, limit), want);
    }
}

/// The largest payload a header can announce is `u32::MAX - 16` bytes:
/// that one is only incomplete, one byte more is too large.
#[test]
fn the_payload_length_limit_is_at_its_bound() {
    assert_eq!(MAX_PAYLOAD_LEN, u32::MAX as usize - 16);
    let with_len = |len: u32| {
        let mut b = data_frame(b"");
        b[8..12].copy_from_slice(&len.to_le_bytes());
        refix(&mut b, 0);
        b
    };
    let at = with_len(MAX_PAYLOAD_LEN as u32);
    assert_eq!(
        iter_error(&at, usize::MAX),
        DecodeError::Truncated {
            offset: 0,
            needed: frame_len(MAX_PAYLOAD_LEN) as u64,
            available: 48,
        }
    );
    let above = with_len(MAX_PAYLOAD_LEN as u32 + 1);
    assert_eq!(
        iter_error(&above, usize::MAX),
        DecodeError::FrameTooLarge {
            offset: 8,
            len: frame_len(MAX_PAYLOAD_LEN + 1) as u64,
            limit: usize::MAX as u64,
        }
    );
}

/// A frame of exactly the limit is accepted, one byte less of limit rejects it.
#[test]
fn a_frame_of_exactly_the_limit_is_accepted() {
    let bytes = data_frame(&[1; 16]);
    assert_eq!(bytes.len(), 64);
    let buf = aligned(&bytes);
    let got: Vec<_> = frames(&buf).max_frame_len(64).take(2).collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].as_ref().unwrap().payload(), &[1; 16]);
    assert_eq!(
        iter_error(&bytes, 63),
        DecodeError::FrameTooLarge {
            offset: 8,
            len: 64,
            limit: 63,
        }
    );

    let mut decoder = StreamDecoder::new(DecoderConfig::default().with_max_frame_len(64));
    assert_eq!(decoder.feed(&bytes), 64);
    assert_eq!(decoder.next_frame().unwrap().unwrap().payload(), &[1; 16]);
    assert!(decoder.next_frame().unwrap().is_none());
}

#[test]
fn frames_reports_each_frame_at_its_offset() {
    let payloads: [&[u8]; 3] = [b"hello", &[7; 40], b""];
    let bytes: Vec<u8> = payloads.iter().flat_map(|p| data_frame(p)).collect();
    let buf = aligned(&bytes);
    let got: Vec<_> = frames(&buf).take(4).map(Result::unwrap).collect();
    assert_eq!(got.len(), 3);
    let mut offset = 0;
    for (frame, payload) in got.iter().zip(payloads) {
        assert_eq!(frame.payload(), payload);
        assert_eq!(frame.offset(), offset as u64);
        assert_eq!(frame.payload_offset(), (offset + HEADER_LEN) as u64);
        offset += frame_len(payload.len());
    }
    assert_eq!(offset, bytes.len());
}

/// A frame whose payload arrived but not its padding is still incomplete,
/// and after an error the iterator ends.
#[test]
fn frames_needs_the_padding_and_stops_after_an_error() {
    let mut bytes = data_frame(b"hello");
    bytes.extend_from_slice(&data_frame(b"abc")[..HEADER_LEN + 3]);
    let buf = aligned(&bytes);
    let mut it = frames(&buf);
    assert_eq!(it.next().unwrap().unwrap().payload(), b"hello");
    assert_eq!(
        it.next().unwrap().unwrap_err(),
        DecodeError::Truncated {
            offset: 64,
            needed: 64,
            available: 51,
        }
    );
    assert!(it.next().is_none());
    assert!(it.next().is_none());
}
