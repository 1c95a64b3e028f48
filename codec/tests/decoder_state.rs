//! The stream decoder's observable state: how many bytes it holds, the
//! stream offset it reports, the size of its receive buffer and the error
//! that stopped it, before, between and after frames.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use dndm_codec::{DecodeError, DecoderConfig, FrameBuffer, FrameHeader, HEADER_LEN, StreamDecoder};

/// Frames with payloads of the given lengths, back to back, and each
/// frame's encoded length.
fn frames(payload_lens: &[usize]) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Vec::new();
    let mut lens = Vec::new();
    for (i, &n) in payload_lens.iter().enumerate() {
        let mut buf = FrameBuffer::new();
        buf.push_raw(
            &FrameHeader::data(i as u32).with_seq(i as u64),
            &vec![i as u8; n],
        )
        .unwrap();
        lens.push(buf.as_bytes().len());
        bytes.extend_from_slice(buf.as_bytes());
    }
    (bytes, lens)
}

#[test]
fn buffered_and_offset_account_for_each_frame_handed_out() {
    let (bytes, lens) = frames(&[100, 3, 40]);
    let mut decoder = StreamDecoder::default();
    assert_eq!((decoder.buffered(), decoder.offset()), (0, 0));
    assert_eq!(decoder.feed(&bytes), bytes.len());
    assert_eq!(decoder.buffered(), bytes.len());
    assert_eq!(decoder.offset(), 0);

    let mut consumed = 0;
    for (i, len) in lens.iter().enumerate() {
        let frame = decoder.next_frame().unwrap().unwrap();
        assert_eq!(frame.header().route, i as u32);
        // The frame handed out no longer counts as buffered, and the next
        // byte to decode is the one after it.
        consumed += len;
        assert_eq!(
            decoder.buffered(),
            bytes.len() - consumed,
            "after frame {i}"
        );
        assert_eq!(decoder.offset(), consumed as u64, "after frame {i}");
    }
    assert!(decoder.next_frame().unwrap().is_none());
    assert_eq!(decoder.buffered(), 0);
    assert_eq!(decoder.offset(), bytes.len() as u64);
}

#[test]
fn offset_counts_the_whole_stream_across_partial_feeds() {
    let (bytes, lens) = frames(&[17, 64, 0, 5]);
    let mut decoder = StreamDecoder::default();
    let (first, second) = bytes.split_at(lens[0] + 20);
    decoder.feed(first);
    assert!(decoder.next_frame().unwrap().is_some());
    assert_eq!(decoder.offset(), lens[0] as u64);
    assert_eq!(decoder.buffered(), 20);
    assert!(
        decoder.next_frame().unwrap().is_none(),
        "second frame incomplete"
    );
    assert_eq!(decoder.offset(), lens[0] as u64);
    assert_eq!(decoder.buffered(), 20);

    decoder.feed(second);
    assert_eq!(decoder.buffered(), bytes.len() - lens[0]);
    let mut n = 1;
    while decoder.next_frame().unwrap().is_some() {
        n += 1;
        let expected: usize = lens[..n].iter().sum();
        assert_eq!(decoder.offset(), expected as u64);
    }
    assert_eq!(n, lens.len());
    assert_eq!(decoder.offset(), bytes.len() as u64);
}

#[test]
fn read_buf_and_commit_count_like_feed() {
    let (bytes, lens) = frames(&[30, 30]);
    let mut decoder = StreamDecoder::default();
    let space = decoder.read_buf();
    assert!(space.len() >= bytes.len());
    space[..bytes.len()].copy_from_slice(&bytes);
    decoder.commit(bytes.len());
    assert_eq!(decoder.buffered(), bytes.len());
    assert!(decoder.next_frame().unwrap().is_some());
    assert_eq!(decoder.buffered(), lens[1]);
    assert_eq!(decoder.offset(), lens[0] as u64);
}

#[test]
fn capacity_starts_empty_then_follows_the_config() {
    let config = DecoderConfig::default()
        .with_max_frame_len(4096)
        .with_initial_capacity(256);
    assert_eq!(config.initial_capacity, 256);
    assert_eq!(
        config.max_frame_len, 4096,
        "setting one field keeps the other"
    );
    let mut decoder = StreamDecoder::new(config);
    assert_eq!(decoder.config(), config);
    assert_eq!(
        decoder.capacity(),
        0,
        "nothing allocated before bytes arrive"
    );

    decoder.feed(b"D");
    assert_eq!(decoder.capacity(), 256);

    // A frame larger than the buffer: it doubles, up to the frame limit.
    let (bytes, _) = frames(&[900]);
    decoder.reset();
    assert_eq!(decoder.feed(&bytes), bytes.len());
    assert_eq!(decoder.capacity(), 1024);
    assert!(decoder.next_frame().unwrap().is_some());

    let (big, _) = frames(&[3000]);
    assert_eq!(decoder.feed(&big), big.len());
    assert_eq!(
        decoder.capacity(),
        4096,
        "capped at the maximum frame length"
    );
}

#[test]
fn initial_capacity_is_the_first_allocation() {
    for initial in [64, 128, 1000, 8192] {
        let config = DecoderConfig::default().with_initial_capacity(initial);
        assert_eq!(config.initial_capacity, initial);
        assert_eq!(
            config.max_frame_len,
            DecoderConfig::DEFAULT_MAX_FRAME_LEN,
            "setting the initial capacity keeps the frame limit"
        );
        let mut decoder = StreamDecoder::new(config);
        decoder.feed(b"D");
        assert_eq!(decoder.capacity(), initial.next_multiple_of(16));
    }
    // Never below one header.
    let mut decoder = StreamDecoder::new(DecoderConfig::default().with_initial_capacity(1));
    decoder.feed(b"D");
    assert_eq!(decoder.capacity(), HEADER_LEN);
}

#[test]
fn error_is_reported_until_reset() {
    let (good, lens) = frames(&[8]);
    let mut decoder = StreamDecoder::default();
    assert_eq!(decoder.error(), None);
    decoder.feed(&good);
    assert!(decoder.next_frame().unwrap().is_some());
    assert_eq!(decoder.error(), None, "a valid frame is no error");

    decoder.feed(b"XYZ");
    let err = decoder.next_frame().unwrap_err();
    let expected = DecodeError::BadMagic {
        offset: lens[0] as u64,
        found: b'X',
        expected: b'D',
    };
    assert_eq!(err, expected);
    assert_eq!(decoder.error(), Some(&expected));
    // Sticky: the same error again, even with valid bytes behind it.
    decoder.feed(&good);
    assert_eq!(decoder.next_frame().unwrap_err(), expected);
    assert_eq!(decoder.error(), Some(&expected));

    decoder.reset();
    assert_eq!(decoder.error(), None);
    assert_eq!((decoder.buffered(), decoder.offset()), (0, 0));
    decoder.feed(&good);
    assert!(decoder.next_frame().unwrap().is_some());
}
