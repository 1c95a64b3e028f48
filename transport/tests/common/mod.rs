//! The conformance suite: written once against the `Transport` contract,
//! instantiated for every implementation by `conformance!`.
#![allow(dead_code, reason = "each test binary uses a subset")]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use dndm_codec::{FrameBuffer, FrameHeader, HEADER_LEN, PAYLOAD_ALIGN};
use dndm_core::sync::{Condvar, Mutex};
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

/// A waker that counts its wake-ups; tests wait for the count to pass a
/// value they noted, within [`DEADLINE`].
#[derive(Default)]
pub(crate) struct Counter {
    count: Mutex<u64>,
    changed: Condvar,
}

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        *self.count.lock().unwrap() += 1;
        self.changed.notify_all();
    }
}

impl Counter {
    pub(crate) fn new() -> (Arc<Self>, Waker) {
        let c = Arc::new(Self::default());
        let w = Waker::from(Arc::clone(&c));
        (c, w)
    }

    /// Wake-ups so far.
    pub(crate) fn count(&self) -> u64 {
        *self.count.lock().unwrap()
    }

    /// Lets time pass until a wake-up after `seen` (the count noted before
    /// the calls that found nothing); panics after [`DEADLINE`].
    pub(crate) fn wait_past<F: Fixture>(&self, f: &F, seen: u64) {
        let start = Instant::now();
        loop {
            if self.count() > seen {
                return;
            }
            f.settle();
            let guard = self.count.lock().unwrap();
            if *guard > seen {
                return;
            }
            assert!(start.elapsed() < DEADLINE, "no wake-up");
            let _ = self
                .changed
                .wait_timeout(guard, Duration::from_millis(5))
                .unwrap();
        }
    }
}

/// Receives on `conn` until it delivered `n` frames or reported closed,
/// waiting only on `counter` (the connection's waker): never on
/// `wait_readable`. Returns the frames' sequence numbers and the close.
fn recv_by_waker<F: Fixture>(
    f: &F,
    conn: &mut Conn<F>,
    counter: &Counter,
    n: usize,
) -> (Vec<u64>, Option<CloseReason>) {
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < n {
        assert!(start.elapsed() < DEADLINE, "recv timed out");
        let seen = counter.count();
        // Keep calling while a call fills its quota (it may leave bytes).
        loop {
            match conn.try_recv(1, |fr| got.push(fr.header().seq)) {
                Ok(1) => {}
                Ok(_) => break,
                Err(RecvError::Closed { reason, .. }) => return (got, Some(reason)),
                Err(e) => panic!("{e}"),
            }
        }
        if got.len() < n {
            counter.wait_past(f, seen);
        }
    }
    (got, None)
}

fn one_frame(seq: u64, len: usize) -> FrameBuffer {
    let mut batch = FrameBuffer::new();
    batch
        .push_raw(&FrameHeader::data(1).with_seq(seq), &payload(seq, len))
        .unwrap();
    batch
}

/// A connection's waker is woken at once when set, after the peer sends,
/// and after the peer closes; frames and the close are then delivered.
pub(crate) fn waker_recv_and_close<F: Fixture>() {
    let f = F::new(Config::default());
    let (mut client, mut server, _l) = pair(&f);
    let (counter, waker) = Counter::new();
    server.set_waker(Some(waker));
    assert!(counter.count() >= 1, "a new waker is woken at once");
    assert_eq!(server.try_recv(16, |_| {}).unwrap(), 0);
    let seen = counter.count();
    client.try_send(&one_frame(1, 100)).unwrap();
    counter.wait_past(&f, seen);
    assert_eq!(recv_by_waker(&f, &mut server, &counter, 1), (vec![1], None));
    // Several sends, one receive loop.
    for seq in 2..=50 {
        client.try_send(&one_frame(seq, seq as usize * 40)).unwrap();
    }
    let (got, closed) = recv_by_waker(&f, &mut server, &counter, 49);
    assert_eq!(got, (2..=50).collect::<Vec<_>>());
    assert_eq!(closed, None);
    // The peer's close wakes too, and is then reported.
    assert_eq!(server.try_recv(16, |_| {}).unwrap(), 0);
    let seen = counter.count();
    client.close();
    counter.wait_past(&f, seen);
    let (got, closed) = recv_by_waker(&f, &mut server, &counter, usize::MAX);
    assert!(got.is_empty());
    assert_eq!(closed, Some(CloseReason::ClosedByPeer));
    // Cleared: no more wake-ups from this connection's events.
    server.set_waker(None);
}

/// A listener's waker is woken when a connection is pending.
pub(crate) fn waker_accept<F: Fixture>() {
    let f = F::new(Config::default());
    let mut listener = f.server().listen(&f.addr()).expect("listen");
    let (counter, waker) = Counter::new();
    listener.set_waker(Some(waker));
    assert!(counter.count() >= 1, "a new waker is woken at once");
    assert!(listener.try_accept().unwrap().is_none());
    let mut clients = Vec::new();
    for round in 0..3 {
        let seen = counter.count();
        clients.push(f.client().connect(listener.local_addr()).unwrap());
        counter.wait_past(&f, seen);
        let start = Instant::now();
        let _server = loop {
            let seen = counter.count();
            if let Some(c) = listener.try_accept().unwrap() {
                break c;
            }
            assert!(start.elapsed() < DEADLINE, "accept {round} timed out");
            counter.wait_past(&f, seen);
        };
    }
}

/// A sender refused as full is woken once the peer drained its queue.
pub(crate) fn waker_room<F: Fixture>() {
    let limit = 64 << 10;
    let f = F::new(Config::default().with_max_queued_bytes(limit));
    let (client, mut server, _l) = pair(&f);
    let mut client = client;
    let (counter, waker) = Counter::new();
    client.set_waker(Some(waker));
    let batch = one_frame(1, 4000);
    let mut sent = 0;
    let seen = loop {
        // Note the count before the send that may be refused.
        let seen = counter.count();
        match client.try_send(&batch) {
            Ok(()) => sent += 1,
            Err(SendError::Full { .. }) => break seen,
            Err(e) => panic!("{e}"),
        }
        assert!(sent < 100_000, "never saw backpressure");
    };
    let _ = recv_n(&f, &mut server, sent);
    counter.wait_past(&f, seen);
    let start = Instant::now();
    loop {
        let seen = counter.count();
        match client.try_send(&batch) {
            Ok(()) => break,
            Err(SendError::Full { .. }) => {
                assert!(start.elapsed() < DEADLINE, "room never came back");
                counter.wait_past(&f, seen);
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(recv_n(&f, &mut server, 1).len(), 1);
}

/// Connections served by one thread, what each delivered, which closed.
struct Served<'a, C> {
    conns: &'a mut [C],
    got: &'a mut [Vec<u64>],
    closed: &'a mut [bool],
}

impl<C: Connection> Served<'_, C> {
    /// The serving loop: note the waker's count, drain every connection
    /// (calling again while a call fills its quota), park until a wake-up;
    /// until `done`.
    fn serve<F: Fixture>(
        &mut self,
        f: &F,
        counter: &Counter,
        done: impl Fn(&[Vec<u64>], &[bool]) -> bool,
    ) {
        let start = Instant::now();
        loop {
            let seen = counter.count();
            for (i, conn) in self.conns.iter_mut().enumerate() {
                let got = &mut self.got[i];
                while !self.closed[i] {
                    match conn.try_recv(2, |fr| got.push(fr.header().seq)) {
                        Ok(2) => {}
                        Ok(_) => break,
                        Err(RecvError::Closed { reason, .. }) => {
                            assert_eq!(reason, CloseReason::ClosedByPeer);
                            self.closed[i] = true;
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            if done(self.got, self.closed) {
                return;
            }
            assert!(start.elapsed() < DEADLINE, "serving timed out");
            counter.wait_past(f, seen);
        }
    }
}

/// One thread serves several connections with one shared waker and no
/// `wait_readable`: rounds of frames on every connection, then closes.
pub(crate) fn one_thread_many_connections<F: Fixture>()
where
    Conn<F>: Send,
{
    const CONNS: usize = 4;
    const ROUNDS: u64 = 20;
    let f = F::new(Config::default());
    let mut listener = f.server().listen(&f.addr()).expect("listen");
    let (counter, waker) = Counter::new();
    listener.set_waker(Some(waker.clone()));
    let mut clients: Vec<Conn<F>> = (0..CONNS)
        .map(|_| f.client().connect(listener.local_addr()).unwrap())
        .collect();
    let mut servers: Vec<Conn<F>> = Vec::new();
    let start = Instant::now();
    while servers.len() < CONNS {
        let seen = counter.count();
        while let Some(mut c) = listener.try_accept().unwrap() {
            c.set_waker(Some(waker.clone()));
            servers.push(c);
        }
        if servers.len() < CONNS {
            assert!(start.elapsed() < DEADLINE, "accept timed out");
            counter.wait_past(&f, seen);
        }
    }
    let mut got: Vec<Vec<u64>> = vec![Vec::new(); CONNS];
    let mut closed = vec![false; CONNS];
    // The clients send from another thread, each round after the server
    // acknowledged the last one, so the server parks before most sends.
    let (ack, acks) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let pause = || std::thread::sleep(Duration::from_millis(1));
            for round in 1..=ROUNDS {
                if round > 1 {
                    acks.recv_timeout(DEADLINE).expect("no ack");
                }
                pause();
                for (i, c) in clients.iter().enumerate() {
                    // Uneven batches: connection i sends i + 1 frames per round.
                    for _ in 0..=i {
                        c.try_send(&one_frame(round, 64 + i * 500)).unwrap();
                    }
                }
            }
            acks.recv_timeout(DEADLINE).expect("no ack");
            pause();
            for c in &mut clients {
                c.close();
            }
        });
        for round in 1..=ROUNDS {
            let mut served = Served {
                conns: &mut servers,
                got: &mut got,
                closed: &mut closed,
            };
            served.serve(&f, &counter, |got, _| {
                got.iter()
                    .enumerate()
                    .all(|(i, g)| g.len() == round as usize * (i + 1))
            });
            ack.send(()).unwrap();
        }
        let mut served = Served {
            conns: &mut servers,
            got: &mut got,
            closed: &mut closed,
        };
        served.serve(&f, &counter, |_, closed| closed.iter().all(|c| *c));
    });
    for (i, g) in got.iter().enumerate() {
        let want: Vec<u64> = (1..=ROUNDS)
            .flat_map(|r| std::iter::repeat_n(r, i + 1))
            .collect();
        assert_eq!(*g, want);
    }
}

/// A waker-served receiver that falls behind a stream and catches up again
/// (it pauses now and then) loses no wake-up: every frame arrives.
pub(crate) fn waker_stream<F: Fixture>()
where
    Conn<F>: Send,
{
    const FRAMES: u64 = 3000;
    let f = F::new(Config::default());
    let (client, mut server, _l) = pair(&f);
    let (counter, waker) = Counter::new();
    server.set_waker(Some(waker));
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let start = Instant::now();
            for seq in 1..=FRAMES {
                let batch = one_frame(seq, (seq as usize * 97) % 9000);
                loop {
                    match client.try_send(&batch) {
                        Ok(()) => break,
                        Err(SendError::Full { .. }) => {
                            assert!(start.elapsed() < DEADLINE, "send timed out");
                            std::thread::sleep(Duration::from_micros(100));
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            client
        });
        let mut next = 1;
        let start = Instant::now();
        while next <= FRAMES {
            let seen = counter.count();
            loop {
                let n = server
                    .try_recv(3, |fr| {
                        assert_eq!(fr.header().seq, next);
                        next += 1;
                    })
                    .unwrap();
                if n < 3 || next > FRAMES {
                    break;
                }
                if next % 200 == 0 {
                    // Fall behind: bytes pile up in the socket.
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            if next <= FRAMES {
                assert!(start.elapsed() < DEADLINE, "stream stalled at {next}");
                counter.wait_past(&f, seen);
            }
        }
    });
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
            #[test]
            fn waker_recv_and_close() {
                $crate::common::waker_recv_and_close::<$fixture>();
            }
            #[test]
            fn waker_accept() {
                $crate::common::waker_accept::<$fixture>();
            }
            #[test]
            fn waker_room() {
                $crate::common::waker_room::<$fixture>();
            }
            #[test]
            fn waker_stream() {
                $crate::common::waker_stream::<$fixture>();
            }
            #[test]
            fn one_thread_many_connections() {
                $crate::common::one_thread_many_connections::<$fixture>();
            }
        }
    };
}
