//! Streaming decoder: chunking, limits, malformed input, regression corpus,
//! and property tests.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use dndm_codec::{
    DecodeError, DecoderConfig, FrameBuffer, FrameHeader, FrameKind, HEADER_LEN, Message,
    StreamDecoder, frame_len, frames,
};
use proptest::prelude::*;
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Debug, PartialEq, Clone)]
#[message(name = "test.Scan", version = 1)]
struct Scan {
    stamp_ns: u64,
    frame_id: String,
    ranges: Vec<f32>,
    intensities: Option<Vec<u8>>,
}

#[derive(Archive, Serialize, Deserialize, Message, Debug, PartialEq, Clone)]
enum Command {
    Stop,
    Move { x: f32, y: f32 },
    Say(String),
    Path(Vec<(i32, i32)>),
}

/// Feeds everything in chunks of `chunk` bytes; returns frames or the first error.
fn run(
    bytes: &[u8],
    chunk: usize,
    config: DecoderConfig,
) -> Result<Vec<(FrameHeader, Vec<u8>)>, DecodeError> {
    let mut decoder = StreamDecoder::new(config);
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        let mut input = piece;
        while !input.is_empty() {
            let n = decoder.feed(input);
            // Every frame was drained before this feed, and no frame is larger
            // than the buffer may grow: it always has room.
            assert!(n > 0, "feed took nothing from {} bytes", input.len());
            input = &input[n..];
            while let Some(frame) = decoder.next_frame()? {
                assert_eq!(frame.payload().as_ptr() as usize % 16, 0);
                out.push((*frame.header(), frame.payload().to_vec()));
                // Every frame takes at least a header's worth of input: more
                // frames than that means one was handed out twice.
                assert!(
                    out.len() <= bytes.len() / dndm_codec::HEADER_LEN,
                    "more frames than the input holds"
                );
            }
        }
    }
    assert!(decoder.capacity() <= config.max_frame_len.next_multiple_of(16));
    Ok(out)
}

fn one_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = FrameBuffer::new();
    out.push_raw(&FrameHeader::data(9).with_seq(1), payload)
        .unwrap();
    out.as_bytes().to_vec()
}

/// Recomputes the checksum after a header edit by re-encoding through the
/// public encoder is impossible for invalid fields, so corrupt and compare
/// error kinds instead.
fn corrupt(mut frame: Vec<u8>, at: usize, value: u8) -> Vec<u8> {
    frame[at] = value;
    frame
}

#[test]
fn one_byte_at_a_time() {
    let mut out = FrameBuffer::new();
    for i in 0..10u8 {
        out.push_raw(
            &FrameHeader::data(u32::from(i)),
            &vec![i; usize::from(i) * 7],
        )
        .unwrap();
    }
    let frames = run(out.as_bytes(), 1, DecoderConfig::default()).unwrap();
    assert_eq!(frames.len(), 10);
    for (i, (h, p)) in frames.iter().enumerate() {
        assert_eq!(h.route, i as u32);
        assert_eq!(p.len(), i * 7);
    }
}

#[test]
fn bad_magic_reported_at_first_byte() {
    let err = run(b"X", 1, DecoderConfig::default()).unwrap_err();
    assert_eq!(
        err,
        DecodeError::BadMagic {
            offset: 0,
            found: b'X',
            expected: b'D'
        }
    );
    assert!(err.to_string().contains("offset 0"), "{err}");
}

#[test]
fn bad_magic_in_second_frame_has_stream_offset() {
    let mut bytes = one_frame(b"abc");
    let first = bytes.len();
    bytes.extend_from_slice(&corrupt(one_frame(b"abc"), 2, b'?'));
    let err = run(&bytes, 5, DecoderConfig::default()).unwrap_err();
    assert_eq!(
        err,
        DecodeError::BadMagic {
            offset: first as u64 + 2,
            found: b'?',
            expected: b'D'
        }
    );
}

#[test]
fn unknown_version() {
    let err = run(&corrupt(one_frame(b""), 4, 9), 64, DecoderConfig::default()).unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnsupportedVersion {
            offset: 4,
            version: 9
        }
    );
}

#[test]
fn checksum_catches_every_header_byte_flip() {
    let frame = one_frame(b"payload");
    for at in 5..HEADER_LEN {
        let bad = corrupt(frame.clone(), at, frame[at] ^ 0x10);
        let err = run(&bad, 7, DecoderConfig::default()).unwrap_err();
        assert!(
            matches!(err, DecodeError::BadChecksum { offset: 12, .. }),
            "byte {at}: {err}"
        );
    }
}

#[test]
fn too_large_rejected_from_header_before_payload() {
    let frame = one_frame(&[0u8; 4000]);
    let config = DecoderConfig::default().with_max_frame_len(1024);
    // Only the header is fed: the error must come without the payload.
    let mut decoder = StreamDecoder::new(config);
    assert_eq!(decoder.feed(&frame[..HEADER_LEN]), HEADER_LEN);
    let err = decoder.next_frame().unwrap_err();
    assert_eq!(
        err,
        DecodeError::FrameTooLarge {
            offset: 8,
            len: frame_len(4000) as u64,
            limit: 1024
        }
    );
    assert!(decoder.capacity() <= 1024);
    // Sticky until reset, then the decoder is usable again.
    assert_eq!(decoder.next_frame().unwrap_err(), err);
    decoder.reset();
    let small = one_frame(b"ok");
    decoder.feed(&small);
    let frame = decoder.next_frame().unwrap().unwrap();
    assert_eq!(frame.payload(), b"ok");
    assert_eq!(frame.offset(), 0);
}

#[test]
fn truncated_buffer_in_frames_iterator() {
    let frame = one_frame(b"abcdef");
    let err = frames(&frame[..frame.len() - 1])
        .next()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, DecodeError::Truncated { offset: 0, .. }));
    let err = frames(&frame[..10]).next().unwrap().unwrap_err();
    assert!(matches!(err, DecodeError::Truncated { needed: 48, .. }));
    let err = frames(&frame)
        .max_frame_len(32)
        .next()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, DecodeError::FrameTooLarge { .. }));
}

#[test]
fn partial_frames_are_kept() {
    let frame = one_frame(&[5u8; 100]);
    let mut decoder = StreamDecoder::default();
    decoder.feed(&frame[..60]);
    assert!(decoder.next_frame().unwrap().is_none());
    assert_eq!(decoder.buffered(), 60);
    decoder.feed(&frame[60..]);
    let got = decoder.next_frame().unwrap().unwrap();
    assert_eq!(got.payload(), &[5u8; 100][..]);
    assert!(decoder.next_frame().unwrap().is_none());
    assert_eq!(decoder.offset(), frame.len() as u64);
}

/// Malformed frames checked in as files plus inline cases; each must give
/// an error (never a panic) and, where named, the given error.
#[test]
fn regression_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "bin") {
            let bytes = std::fs::read(&path).unwrap();
            for chunk in [1, 7, 64, 4096] {
                let config = DecoderConfig::default().with_max_frame_len(1 << 16);
                let result = run(&bytes, chunk, config);
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name == "ok_two_frames.bin" {
                    // Written by an independent implementation of the format.
                    let got = result.unwrap();
                    assert_eq!(got.len(), 2);
                    assert_eq!(got[0].1, b"hello");
                    assert_eq!(got[1].0.kind, FrameKind::Control);
                } else if name.starts_with("ok_") {
                    assert!(result.is_ok(), "{name}: {result:?}");
                } else {
                    assert!(result.is_err(), "{name} must be rejected");
                }
                // The iterator ends after an error: at most one item per header, plus one.
                for frame in frames(&bytes).take(bytes.len() / HEADER_LEN + 1).flatten() {
                    let _ = frame.access::<Scan>();
                    let _ = frame.access::<Command>();
                }
            }
            count += 1;
        }
    }
    assert!(count >= 8, "corpus has {count} files");
}

fn arb_kind() -> impl Strategy<Value = FrameKind> {
    prop_oneof![
        Just(FrameKind::Data),
        Just(FrameKind::Control),
        Just(FrameKind::Request),
        Just(FrameKind::Reply)
    ]
}

fn arb_header() -> impl Strategy<Value = FrameHeader> {
    (
        arb_kind(),
        any::<u8>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(kind, hi, route, seq, ts, corr)| {
            FrameHeader::new(kind, route)
                .with_flags(u16::from(hi) << 8)
                .with_seq(seq)
                .with_timestamp_ns(ts)
                .with_correlation(corr)
        })
}

fn arb_scan() -> impl Strategy<Value = Scan> {
    (
        any::<u64>(),
        ".{0,20}",
        proptest::collection::vec(any::<f32>().prop_filter("nan", |f| !f.is_nan()), 0..64),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
    )
        .prop_map(|(stamp_ns, frame_id, ranges, intensities)| Scan {
            stamp_ns,
            frame_id,
            ranges,
            intensities,
        })
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Stop),
        (any::<f32>(), any::<f32>())
            .prop_filter("nan", |(x, y)| !x.is_nan() && !y.is_nan())
            .prop_map(|(x, y)| Command::Move { x, y }),
        ".{0,40}".prop_map(Command::Say),
        proptest::collection::vec(any::<(i32, i32)>(), 0..20).prop_map(Command::Path),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn raw_frames_round_trip(
        items in proptest::collection::vec(
            (arb_header(), proptest::collection::vec(any::<u8>(), 0..200)), 0..12),
        chunk in 1usize..300,
    ) {
        let mut out = FrameBuffer::new();
        for (h, p) in &items {
            out.push_raw(h, p).unwrap();
        }
        let got = run(out.as_bytes(), chunk, DecoderConfig::default()).unwrap();
        prop_assert_eq!(got.len(), items.len());
        for ((h, p), (gh, gp)) in items.iter().zip(&got) {
            prop_assert_eq!(h, gh);
            prop_assert_eq!(p, gp);
        }
    }

    #[test]
    fn messages_round_trip(
        scans in proptest::collection::vec(arb_scan(), 0..6),
        commands in proptest::collection::vec(arb_command(), 0..6),
        chunk in 1usize..500,
    ) {
        let mut out = FrameBuffer::new();
        for s in &scans {
            out.push_message(&FrameHeader::data(1), s).unwrap();
        }
        for c in &commands {
            out.push_message(&FrameHeader::data(2), c).unwrap();
        }
        let mut decoder = StreamDecoder::default();
        let (mut si, mut ci) = (0, 0);
        for piece in out.as_bytes().chunks(chunk) {
            let mut input = piece;
            while !input.is_empty() {
                let n = decoder.feed(input);
                prop_assert!(n > 0, "feed took nothing after every frame was drained");
                input = &input[n..];
                while let Some(frame) = decoder.next_frame().unwrap() {
                    if frame.header().route == 1 {
                        let s = frame.sample::<Scan>().unwrap();
                        prop_assert_eq!(&s.deserialize().unwrap(), &scans[si]);
                        si += 1;
                    } else {
                        let c = frame.sample::<Command>().unwrap();
                        prop_assert_eq!(&c.deserialize().unwrap(), &commands[ci]);
                        ci += 1;
                    }
                }
            }
        }
        prop_assert_eq!((si, ci), (scans.len(), commands.len()));
    }

    #[test]
    fn garbage_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        chunk in 1usize..64,
    ) {
        let config = DecoderConfig::default().with_max_frame_len(4096);
        let _ = run(&bytes, chunk, config);
        for frame in frames(&bytes).take(bytes.len() / HEADER_LEN + 1).flatten() {
            let _ = frame.access::<Scan>();
        }
    }

    #[test]
    fn bit_flips_are_errors_or_valid(
        scan in arb_scan(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut out = FrameBuffer::new();
        out.push_message(&FrameHeader::data(1), &scan).unwrap();
        let mut bytes = rkyv::util::AlignedVec::<16>::new();
        bytes.extend_from_slice(out.as_bytes());
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let result = run(&bytes, 13, DecoderConfig::default());
        if i < HEADER_LEN {
            prop_assert!(result.is_err());
        } else if let Some(Ok(frame)) = frames(&bytes).next() {
            // The payload either validates or reports an error; no panic.
            if let Ok(a) = frame.access::<Scan>() {
                let _ = dndm_codec::deserialize::<Scan>(a);
            }
        }
    }
}
