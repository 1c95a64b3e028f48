//! The conformance suite: written once against the `Transport` contract,
//! instantiated for every implementation by `conformance!`.
#![allow(dead_code, reason = "each test binary uses a subset")]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::time::{Duration, Instant};

use dndm_codec::{FrameBuffer, FrameHeader, HEADER_LEN, PAYLOAD_ALIGN};
use dndm_transport::{
    Address, CloseReason, Config, Connection, Listener, RecvError, SendError, Transport,
};

/// What a conformance run needs from an implementation.
pub(crate) trait Fixture {
    /// The transport under test.
    type T: Transport;
    /// A fixture whose transports use `config`.
    fn new(config: Config) -> Self;
    /// The side that listens.
    fn server(&self) -> &Self::T;
    /// The side that connects.
    fn client(&self) -> &Self::T;
    /// A fresh address to listen on.
    fn addr(&self) -> Address;
    /// Lets (real or virtual) time pass.
    fn settle(&self);
}

/// The limit every test loop respects.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);
pub(crate) const MAX_SPINS: usize = 200_000;

pub(crate) type Conn<F> = <<F as Fixture>::T as Transport>::Connection;

/// Listens, connects and accepts.
pub(crate) fn pair<F: Fixture>(f: &F) -> (Conn<F>, Conn<F>, <F::T as Transport>::Listener) {
    let mut listener = f.server().listen(&f.addr()).expect("listen");
    let client = f.client().connect(listener.local_addr()).expect("connect");
    let start = Instant::now();
    for _ in 0..MAX_SPINS {
        if let Some(server) = listener.try_accept().expect("accept") {
            return (client, server, listener);
        }
        assert!(start.elapsed() < DEADLINE, "accept timed out");
        listener.wait_acceptable(Duration::from_millis(5));
        f.settle();
    }
    panic!("no connection accepted");
}

/// Receives until `n` frames arrived; returns (seq, payload) pairs.
pub(crate) fn recv_n<F: Fixture>(f: &F, conn: &mut Conn<F>, n: usize) -> Vec<(u64, Vec<u8>)> {
    let mut got = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..MAX_SPINS {
        if got.len() >= n {
            break;
        }
        let got_now = conn
            .try_recv(n - got.len(), |frame| {
                assert_eq!(
                    frame.payload().as_ptr() as usize % PAYLOAD_ALIGN,
                    0,
                    "payload not aligned"
                );
                got.push((frame.header().seq, frame.payload().to_vec()));
            })
            .expect("recv");
        if got_now == 0 {
            assert!(start.elapsed() < DEADLINE, "recv timed out");
            conn.wait_readable(Duration::from_millis(5));
            f.settle();
        }
    }
    assert_eq!(got.len(), n);
    got
}

/// Receives until the connection reports closed; returns the frames seen and the reason.
pub(crate) fn recv_until_closed<F: Fixture>(f: &F, conn: &mut Conn<F>) -> (usize, CloseReason) {
    let mut frames = 0;
    let start = Instant::now();
    for _ in 0..MAX_SPINS {
        match conn.try_recv(usize::MAX, |_| frames += 1) {
            Ok(0) => {
                assert!(start.elapsed() < DEADLINE, "close not seen");
                conn.wait_readable(Duration::from_millis(5));
                f.settle();
            }
            Ok(_) => {}
            Err(RecvError::Closed { reason, .. }) => return (frames, reason),
            Err(e) => panic!("{e}"),
        }
    }
    panic!("close not seen");
}

fn payload(seq: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq as usize * 31 + i) as u8).collect()
}

/// Frames arrive whole, in order, exactly once, both ways, across batches of
/// varying sizes.
pub(crate) fn ordering<F: Fixture>() {
    let f = F::new(Config::default());
    let (client, mut server, _l) = pair(&f);
    let mut seq = 0u64;
    let mut batch = FrameBuffer::new();
    for size in 1..=40 {
        batch.clear();
        for _ in 0..size {
            seq += 1;
            batch
                .push_raw(
                    &FrameHeader::data(3).with_seq(seq),
                    &payload(seq, (seq % 97) as usize),
                )
                .unwrap();
        }
        client.try_send(&batch).unwrap();
    }
    let got = recv_n(&f, &mut server, seq as usize);
    for (i, (s, p)) in got.iter().enumerate() {
        assert_eq!(*s, i as u64 + 1);
        assert_eq!(*p, payload(*s, (*s % 97) as usize));
    }
    // And back.
    batch.clear();
    batch
        .push_raw(&FrameHeader::data(1).with_seq(7), b"pong")
        .unwrap();
    server.try_send(&batch).unwrap();
    let mut client = client;
    assert_eq!(recv_n(&f, &mut client, 1), vec![(7, b"pong".to_vec())]);
    let cs = client.stats();
    assert_eq!(cs.frames_sent, seq);
    assert_eq!(cs.frames_received, 1);
    assert_eq!(server.stats().frames_received, seq);
}

/// Payload sizes around the alignment and the frame limit; a frame over the
/// receiver's limit closes only that connection with a protocol error.
pub(crate) fn framing<F: Fixture>() {
    let limit = 64 << 10;
    let f = F::new(Config::default().with_max_frame_len(limit));
    let (client, mut server, mut listener) = pair(&f);
    let max_payload = limit - HEADER_LEN;
    let sizes = [
        0,
        1,
        15,
        16,
        17,
        47,
        48,
        1000,
        4096,
        max_payload - 1,
        max_payload,
    ];
    let mut batch = FrameBuffer::new();
    for (i, len) in sizes.iter().enumerate() {
        batch.clear();
        batch
            .push_raw(
                &FrameHeader::data(1).with_seq(i as u64),
                &payload(i as u64, *len),
            )
            .unwrap();
        client.try_send(&batch).unwrap();
    }
    let got = recv_n(&f, &mut server, sizes.len());
    for (i, (s, p)) in got.iter().enumerate() {
        assert_eq!(*s, i as u64);
        assert_eq!(*p, payload(i as u64, sizes[i]));
    }
    // One byte over the limit (after padding).
    batch.clear();
    batch
        .push_raw(&FrameHeader::data(1), &vec![0u8; max_payload + 1])
        .unwrap();
    client.try_send(&batch).unwrap();
    let (frames, reason) = recv_until_closed(&f, &mut server);
    assert_eq!(frames, 0);
    assert!(matches!(reason, CloseReason::Protocol(_)), "{reason:?}");
    assert_eq!(f.server().stats().protocol_errors, 1);
    // Another connection on the same listener still works.
    let other = f.client().connect(listener.local_addr()).unwrap();
    let start = Instant::now();
    let mut other_server = loop {
        if let Some(c) = listener.try_accept().unwrap() {
            break c;
        }
        assert!(start.elapsed() < DEADLINE);
        listener.wait_acceptable(Duration::from_millis(5));
        f.settle();
    };
    batch.clear();
    batch
        .push_raw(&FrameHeader::data(1).with_seq(9), b"ok")
        .unwrap();
    other.try_send(&batch).unwrap();
    assert_eq!(recv_n(&f, &mut other_server, 1), vec![(9, b"ok".to_vec())]);
}

/// A graceful close delivers everything queued, then the peer sees
/// `ClosedByPeer`; sends after close fail; abort is seen by the peer.
pub(crate) fn close<F: Fixture>() {
    let f = F::new(Config::default());
    let (mut client, mut server, mut listener) = pair(&f);
    let mut batch = FrameBuffer::new();
    for seq in 0..100 {
        batch
            .push_raw(&FrameHeader::data(1).with_seq(seq), &[7u8; 100])
            .unwrap();
    }
    client.try_send(&batch).unwrap();
    client.close();
    assert!(matches!(
        client.try_send(&batch),
        Err(SendError::Closed { .. })
    ));
    assert!(matches!(
        client.try_recv(1, |_| {}),
        Err(RecvError::Closed {
            reason: CloseReason::Local,
            ..
        })
    ));
    let (frames, reason) = recv_until_closed(&f, &mut server);
    assert_eq!(frames, 100);
    assert_eq!(reason, CloseReason::ClosedByPeer);
    let err = server.try_recv(1, |_| {}).unwrap_err();
    assert!(
        err.to_string().contains(&server.peer_addr().to_string()),
        "{err}"
    );

    // Abort: the peer sees the connection end (reset or closed).
    let mut client2 = f.client().connect(listener.local_addr()).unwrap();
    let start = Instant::now();
    let mut server2 = loop {
        if let Some(c) = listener.try_accept().unwrap() {
            break c;
        }
        assert!(start.elapsed() < DEADLINE);
        listener.wait_acceptable(Duration::from_millis(5));
        f.settle();
    };
    client2.abort();
    let (_, reason) = recv_until_closed(&f, &mut server2);
    assert!(
        matches!(reason, CloseReason::Reset | CloseReason::ClosedByPeer),
        "{reason:?}"
    );
}

/// A peer that never reads: the sender gets `Full` with the queue capped at
/// its limit; once the peer drains, sending resumes and nothing is lost.
pub(crate) fn backpressure<F: Fixture>() {
    let limit = 64 << 10;
    let f = F::new(Config::default().with_max_queued_bytes(limit));
    let (client, mut server, _l) = pair(&f);
    let mut batch = FrameBuffer::new();
    for _ in 0..8 {
        batch.push_raw(&FrameHeader::data(1), &[1u8; 464]).unwrap();
    }
    let mut accepted = 0usize;
    let mut full = false;
    for _ in 0..100_000 {
        match client.try_send(&batch) {
            Ok(()) => accepted += 8,
            Err(SendError::Full {
                queued, limit: l, ..
            }) => {
                assert!(queued <= l);
                full = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
        assert!(client.queued_bytes() <= limit);
    }
    assert!(full, "never saw backpressure");
    let stats = client.stats();
    assert!(stats.peak_queued_bytes <= limit);
    assert_eq!(stats.full_rejections, 1);
    // Too large for the queue at all.
    let mut huge = FrameBuffer::new();
    huge.push_raw(&FrameHeader::data(1), &vec![0u8; limit])
        .unwrap();
    assert!(matches!(
        client.try_send(&huge),
        Err(SendError::TooLarge { .. })
    ));
    // Drain; sending works again.
    let _ = recv_n(&f, &mut server, accepted);
    let start = Instant::now();
    loop {
        match client.try_send(&batch) {
            Ok(()) => break,
            Err(SendError::Full { .. }) => {
                assert!(start.elapsed() < DEADLINE);
                f.settle();
            }
            Err(e) => panic!("{e}"),
        }
    }
    let _ = recv_n(&f, &mut server, 8);
}

/// Instantiates the suite for one fixture.
#[macro_export]
macro_rules! conformance {
    ($module:ident, $fixture:ty) => {
        mod $module {
            #[test]
            fn ordering() {
                $crate::common::ordering::<$fixture>();
            }
            #[test]
            fn framing() {
                $crate::common::framing::<$fixture>();
            }
            #[test]
            fn close() {
                $crate::common::close::<$fixture>();
            }
            #[test]
            fn backpressure() {
                $crate::common::backpressure::<$fixture>();
            }
        }
    };
}
