//! The decoder fuzz check, shared by the fuzz target (`fuzz_targets/decoder.rs`)
//! and the corpus replay test (`codec/tests/fuzz_corpus.rs`).
//!
//! Invariants: no panic, no progress stall, memory within the frame limit,
//! and frames that come out have aligned payloads within the limit. When the
//! first byte's high bit is set the stream is "repaired" (magic, version and
//! checksums fixed up at frame boundaries) so the fuzzer also explores what
//! lies behind the checksum: kinds, reserved bits, lengths and payloads.

use dndm_codec::{
    DecoderConfig, FrameBuffer, FrameHeader, HEADER_LEN, MAGIC, Message, PROTOCOL_VERSION,
    StreamDecoder, frame_len, frames,
};
use rkyv::{Archive, Deserialize, Serialize};

const MAX: usize = 1 << 14;

/// The payload type frames are checked against.
#[derive(Archive, Serialize, Deserialize, Message)]
#[message(name = "fuzz.Scan")]
pub struct Scan {
    stamp_ns: u64,
    frame_id: String,
    ranges: Vec<f32>,
    tags: Option<Vec<String>>,
}

fn repair(stream: &mut [u8]) {
    let mut pos = 0;
    while let Some(head) = stream.get_mut(pos..pos + HEADER_LEN) {
        head[..4].copy_from_slice(&MAGIC);
        head[4] = PROTOCOL_VERSION;
        head[12..16].fill(0);
        let Ok(fixed): Result<&mut [u8; HEADER_LEN], _> = head.try_into() else {
            return;
        };
        let sum = dndm_codec::__private::header_checksum(fixed);
        fixed[12..16].copy_from_slice(&sum.to_le_bytes());
        let len = u32::from_le_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]) as usize;
        pos += frame_len(len.min(MAX));
    }
}

/// One fuzz input: the first byte picks the chunk size and whether to
/// repair headers, the rest is the byte stream.
pub fn check(data: &[u8]) {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(control & 0x7f) + 1;
    let mut stream = stream.to_vec();
    if control & 0x80 != 0 {
        repair(&mut stream);
    }
    let mut decoder = StreamDecoder::new(
        DecoderConfig::default()
            .with_max_frame_len(MAX)
            .with_initial_capacity(64),
    );
    'outer: for piece in stream.chunks(chunk) {
        let mut input = piece;
        while !input.is_empty() {
            let n = decoder.feed(input);
            input = &input[n..];
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => {
                        assert_eq!(frame.payload().as_ptr() as usize % 16, 0);
                        assert!(frame.payload().len() <= MAX);
                        if let Ok(scan) = frame.access::<Scan>() {
                            let _ = dndm_codec::deserialize::<Scan>(scan);
                        }
                    }
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
            assert!(decoder.capacity() <= MAX);
            assert!(
                n > 0 || decoder.error().is_some(),
                "decoder made no progress"
            );
        }
    }
    // The whole-buffer iterator must not panic either, and ends after an
    // error: it yields at most one item per header's worth of input, plus one.
    for frame in frames(&stream)
        .take(stream.len() / HEADER_LEN + 1)
        .flatten()
    {
        let _ = frame.payload();
    }
}

/// Valid inputs the fuzzer starts from and the replay test always runs: a
/// stream of a data frame and a control frame, fed whole and byte by byte.
#[allow(dead_code, reason = "the fuzz target does not use it")]
pub fn seeds() -> Vec<Vec<u8>> {
    let scan = Scan {
        stamp_ns: 1,
        frame_id: "lidar".into(),
        ranges: vec![1.5, 2.5, 3.5],
        tags: Some(vec!["front".into()]),
    };
    let mut frames = FrameBuffer::new();
    if frames
        .push_message(&FrameHeader::data(1).with_seq(1), &scan)
        .and_then(|_| frames.push_raw(&FrameHeader::control(), b"ping"))
        .is_err()
    {
        return Vec::new();
    }
    [0x7f_u8, 0x00, 0x80 | 0x0f]
        .iter()
        .map(|&control| {
            let mut input = vec![control];
            input.extend_from_slice(frames.as_bytes());
            input
        })
        .collect()
}
