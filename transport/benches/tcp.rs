//! Throughput and latency of the mio transport against raw std sockets.
//!
//! Report convention: functions whose id starts with `dndm` are ours; the
//! pairing table `xtask/src/bench/pairs.rs` names the baseline each one is
//! compared with, measured in the same run (`cargo xtask bench transport`).
//!
//! Buffering is comparable, not identical: both sides use the kernel's
//! default socket buffers and a 1 MiB receive buffer; dndm's sender may
//! also queue up to `QUEUE` (256 KiB) in user space when the kernel refuses
//! bytes, while the raw writer hands the kernel up to 1 MiB per blocking
//! call, so it never waits for bytes to be ready either.
//!
//! * `{tcp,unix}_oneway_{64B,1KiB,64KiB}`: frames with a payload of that
//!   size, pre-packed into batches of about 64 KiB (one `try_send` per
//!   batch), received and counted frame by frame. Baseline `raw_*stream`
//!   moves the same bytes through a plain blocking std stream, written and
//!   read up to 1 MiB per call, without parsing them. Throughput in frames
//!   (elements) per second.
//! * `{tcp,unix}_pingpong_64B`: one 64 B-payload frame there and back;
//!   baseline a blocking std echo of the same bytes. Time per round trip.
#![allow(clippy::unwrap_used, reason = "benchmark setup panics on failure")]
#![allow(missing_docs, reason = "criterion generates the entry point")]

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dndm_codec::{FrameBuffer, FrameHeader, frame_len};
use dndm_transport::{
    Address, Config, Connection, Listener, MioConnection, MioTransport, SendError, Transport,
};

const BATCH_BYTES: usize = 64 << 10;
/// The sender's queue limit: beyond the kernel's buffer, a deep user-space
/// queue only adds copies, so keep it small for throughput.
const QUEUE: usize = 256 << 10;

struct Pair {
    _server_t: MioTransport,
    _client_t: MioTransport,
    client: MioConnection,
    server: MioConnection,
}

fn pair(addr: &Address) -> Pair {
    // The same 1 MiB receive buffer as the raw baseline.
    let server_t = MioTransport::new(Config::default().with_recv_buffer(1 << 20)).unwrap();
    let client_t = MioTransport::new(Config::default().with_max_queued_bytes(QUEUE)).unwrap();
    let mut listener = server_t.listen(addr).unwrap();
    let client = client_t.connect(listener.local_addr()).unwrap();
    let server = loop {
        if let Some(c) = listener.try_accept().unwrap() {
            break c;
        }
        listener.wait_acceptable(Duration::from_millis(10));
    };
    Pair {
        _server_t: server_t,
        _client_t: client_t,
        client,
        server,
    }
}

/// A pair of plain blocking std streams.
trait RawStream: Read + Write + Send + Sized {
    fn pair(tag: &str) -> (Self, Self);
}

impl RawStream for std::net::TcpStream {
    fn pair(_: &str) -> (Self, Self) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        a.set_nodelay(true).unwrap();
        b.set_nodelay(true).unwrap();
        (a, b)
    }
}

impl RawStream for std::os::unix::net::UnixStream {
    fn pair(_: &str) -> (Self, Self) {
        std::os::unix::net::UnixStream::pair().unwrap()
    }
}

fn batch(payload: usize) -> (FrameBuffer, usize) {
    let per = (BATCH_BYTES / frame_len(payload)).max(1);
    let mut fb = FrameBuffer::with_capacity(per * frame_len(payload));
    let body = vec![0xabu8; payload];
    for seq in 0..per {
        fb.push_raw(&FrameHeader::data(1).with_seq(seq as u64), &body)
            .unwrap();
    }
    (fb, per)
}

fn dndm_oneway(p: &mut Pair, payload: usize, iters: u64) -> Duration {
    let per = batch(payload).1;
    let total = per as u64 * iters;
    let Pair { client, server, .. } = p;
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            // `FrameBuffer` is not `Sync`: pack it on the sending thread.
            let (fb, _) = batch(payload);
            for _ in 0..iters {
                loop {
                    match client.try_send(&fb) {
                        Ok(()) => break,
                        Err(SendError::Full { .. }) => {
                            client.wait_writable(Duration::from_millis(5))
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        });
        let mut got = 0u64;
        while got < total {
            // Wait, then receive: `wait_readable` returns at once while
            // bytes may be pending and blocks only once the socket is empty.
            server.wait_readable(Duration::from_millis(5));
            got += server
                .try_recv(usize::MAX, |f| {
                    black_box(f.payload().len());
                })
                .unwrap() as u64;
        }
    });
    start.elapsed()
}

fn raw_oneway<S: RawStream>(a: &mut S, b: &mut S, bytes: &[u8], iters: u64) -> Duration {
    let total = bytes.len() as u64 * iters;
    // Large buffers: the same bytes, written up to 1 MiB per call.
    let big = bytes.repeat(((1 << 20) / bytes.len()).max(1));
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut left = total as usize;
            while left > 0 {
                let n = left.min(big.len());
                a.write_all(&big[..n]).unwrap();
                left -= n;
            }
        });
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        while got < total {
            got += b.read(&mut buf).unwrap() as u64;
        }
    });
    start.elapsed()
}

fn oneway<S: RawStream>(c: &mut Criterion, scheme: &str, addr: &Address, raw_name: &str) {
    for (label, payload) in [("64B", 64), ("1KiB", 1024), ("64KiB", 64 << 10)] {
        let (fb, per) = batch(payload);
        let mut g = c.benchmark_group(format!("{scheme}_oneway_{label}"));
        g.throughput(Throughput::Elements(per as u64));
        let mut p = pair(addr);
        g.bench_function("dndm", |b| {
            b.iter_custom(|iters| dndm_oneway(&mut p, payload, iters))
        });
        drop(p);
        let (mut x, mut y) = S::pair(scheme);
        g.bench_function(raw_name, |b| {
            b.iter_custom(|iters| raw_oneway(&mut x, &mut y, fb.as_bytes(), iters))
        });
        g.finish();
    }
}

fn pingpong<S: RawStream>(c: &mut Criterion, scheme: &str, addr: &Address, raw_name: &str) {
    let (fb, _) = batch(64);
    let mut one = FrameBuffer::new();
    one.push_raw(&FrameHeader::data(1), &[0xab; 64]).unwrap();
    let _ = fb;
    let mut g = c.benchmark_group(format!("{scheme}_pingpong_64B"));
    let mut p = pair(addr);
    g.bench_function("dndm", |b| {
        b.iter_custom(|iters| {
            let Pair { client, server, .. } = &mut p;
            let start = Instant::now();
            std::thread::scope(|s| {
                s.spawn(|| {
                    let mut echo = FrameBuffer::new();
                    let mut done = 0;
                    while done < iters {
                        // Wait first: a reply-driven loop knows bytes are due,
                        // so it skips the read that would say `WouldBlock`.
                        server.wait_readable(Duration::from_millis(5));
                        echo.clear();
                        let n = server
                            .try_recv(usize::MAX, |f| {
                                echo.push_raw(f.header(), f.payload()).unwrap();
                            })
                            .unwrap();
                        if n > 0 {
                            server.try_send(&echo).unwrap();
                            done += n as u64;
                        }
                    }
                });
                for _ in 0..iters {
                    client.try_send(&one).unwrap();
                    loop {
                        client.wait_readable(Duration::from_millis(5));
                        let n = client.try_recv(1, |f| {
                            black_box(f.payload());
                        });
                        if n.unwrap() == 1 {
                            break;
                        }
                    }
                }
            });
            start.elapsed()
        })
    });
    drop(p);
    let (mut x, mut y) = S::pair(scheme);
    let len = one.len();
    g.bench_function(raw_name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                let y = &mut y;
                s.spawn(move || {
                    let mut buf = vec![0u8; len];
                    for _ in 0..iters {
                        y.read_exact(&mut buf).unwrap();
                        y.write_all(&buf).unwrap();
                    }
                });
                let mut buf = vec![0u8; len];
                for _ in 0..iters {
                    x.write_all(one.as_bytes()).unwrap();
                    x.read_exact(&mut buf).unwrap();
                }
            });
            start.elapsed()
        })
    });
    g.finish();
}

fn tcp(c: &mut Criterion) {
    let addr: Address = "tcp://127.0.0.1:0".parse().unwrap();
    oneway::<std::net::TcpStream>(c, "tcp", &addr, "raw_tcpstream");
    pingpong::<std::net::TcpStream>(c, "tcp", &addr, "raw_tcpstream");
}

fn unix(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("dndm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, f) in [
        oneway::<std::os::unix::net::UnixStream>,
        pingpong::<std::os::unix::net::UnixStream>,
    ]
    .into_iter()
    .enumerate()
    {
        let addr = Address::Unix(dir.join(format!("b{i}.sock")));
        f(c, "unix", &addr, "raw_unixstream");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, tcp, unix);
criterion_main!(benches);
