//! The Node API between processes, each case beside the raw std stream
//! figure measured in the same run (`cargo xtask bench dndm`), and the
//! in-process fan-out of a large message.
//!
//! The subscribers really are other processes: the bench executable starts
//! itself again with `DNDM_BENCH_CHILD` set (see [`child`]); a child exits
//! when its stdin closes, that is when the fixture is dropped or the bench
//! process ends.
//!
//! * `remote_{tcp,unix}_{8B,64B,1KiB,64KiB}`: one publisher → one
//!   subscriber in a child process, `Blob` messages whose `data` holds that
//!   many bytes. Lossless on both hops: the subscriber and the node's
//!   per-peer queue use `Policy::Block` (1024 messages each), the child
//!   checks that sequence numbers arrive in order without gaps and every
//!   iteration batch ends with an acknowledgement from the child (one round
//!   trip per `iter_custom` call, amortised over all its messages).
//!   Baseline `raw_{tcp,unix}stream`: the same payloads, each behind a 4-byte
//!   length prefix, written through a 64 KiB `BufWriter` to a plain blocking
//!   std stream and parsed frame by frame by a child process (64 KiB
//!   `BufReader`, `read_exact` into a buffer, sequence checked), with the
//!   same acknowledgement at the end. Messages/s; bytes/s for 64 KiB.
//!   The publishing node's transport may queue 8 MiB instead of 4 MiB (see
//!   `Remote::start`).
//! * `remote_fanout3_tcp_64B`: one publisher → three subscriber processes;
//!   baseline: each frame written to three raw streams, one per child.
//! * `remote_rpc_tcp_64B`: request/reply round trip to a server in a child
//!   process (a 64-byte `Blob` each way), one call at a time; baseline
//!   `raw_tcpstream_echo`: the same 64 bytes behind a 4-byte length prefix
//!   written to a blocking std `TcpStream` (no delay) and echoed back by a
//!   child process. Nanoseconds per round trip.
//! * `fanout_64KiB`: in process, one 64 KiB message (a `Vec<u8>`) to four
//!   subscribers (`dndm_4subs`) beside the same Node with one subscriber
//!   (`single_subscriber`) and a crossbeam-channel fan-out of four
//!   `Vec<u8>` clones (`crossbeam_4clones`); capacities equal (`CAP`).
#![allow(
    clippy::disallowed_types,
    reason = "bench harness code uses std sync types like users do"
)]
#![allow(clippy::unwrap_used, reason = "benchmark setup panics on failure")]
#![allow(missing_docs, reason = "a bench executable")]

use std::hint::black_box;
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use dndm::prelude::*;
use rkyv::{Archive, Deserialize, Serialize};

/// The payload of every remote case.
#[derive(Archive, Serialize, Deserialize, Message, Clone)]
#[message(name = "bench.Blob")]
struct Blob {
    seq: u64,
    /// The last message of a batch: the child acknowledges it.
    flush: bool,
    data: Vec<u8>,
}

/// A child's acknowledgement: messages seen so far and sequence errors.
#[derive(Archive, Serialize, Deserialize, Message, Clone)]
#[message(name = "bench.Ack")]
struct Ack {
    got: u64,
    errors: u64,
}

const CAP: usize = 1024;
/// Bound on every wait: far above a stall on a loaded machine.
const BOUND: Duration = Duration::from_secs(30);
const ROLE: &str = "DNDM_BENCH_CHILD";
const ADDR: &str = "DNDM_BENCH_ADDR";
const ID: &str = "DNDM_BENCH_ID";

fn lossless() -> Policy {
    Policy::Block {
        timeout: Some(BOUND),
    }
}

/// Messages per iteration: about 64 KiB to 1 MiB of payload.
fn per_iter(size: usize) -> u64 {
    match size {
        s if s >= 64 << 10 => 16,
        s if s >= 1024 => 1000,
        _ => 5000,
    }
}

// ---------------------------------------------------------------------------
// Child processes

fn spawn_child(role: &str, addr: &str, id: usize) -> (Child, ChildStdin) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, role)
        .env(ADDR, addr)
        .env(ID, id.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

/// The children of one fixture; closing their stdin ends them.
struct Children(Vec<(Child, Option<ChildStdin>)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (_, stdin) in &mut self.0 {
            drop(stdin.take());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (child, _) in &mut self.0 {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The child side: `dndm_sub` or `raw_sub`, until stdin closes.
fn child(role: &str) {
    thread::spawn(|| {
        let mut buf = [0u8; 16];
        while matches!(std::io::stdin().read(&mut buf), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let addr = std::env::var(ADDR).unwrap();
    let id: usize = std::env::var(ID).unwrap().parse().unwrap();
    match role {
        "dndm_sub" => dndm_sub(&addr, id),
        "raw_sub" => raw_sub(&addr),
        "dndm_echo" => dndm_echo(&addr),
        "raw_echo" => raw_echo(&addr),
        other => panic!("unknown bench child role `{other}`"),
    }
}

fn dndm_sub(addr: &str, id: usize) {
    let node = Node::builder(&format!("bench-sub-{id}"))
        .peer_queue(CAP, lossless(), BOUND)
        .connect(addr)
        .unwrap()
        .build()
        .unwrap();
    let ack = node.publish::<Ack>(&format!("bench.ack.{id}")).unwrap();
    let sub = node
        .subscribe_with::<Blob>(
            "bench.data",
            SubscribeOptions::new().capacity(CAP).policy(lossless()),
        )
        .unwrap();
    let (mut next, mut errors) = (0u64, 0u64);
    while let Ok(m) = sub.recv() {
        if m.seq != next {
            errors += 1;
        }
        next = m.seq + 1;
        black_box(m.data.len());
        if m.flush {
            let _ = ack.send(Ack { got: next, errors });
        }
    }
}

fn raw_sub(addr: &str) {
    let stream: Box<dyn ReadWrite> = match addr.strip_prefix("unix://") {
        Some(path) => Box::new(UnixStream::connect(path).unwrap()),
        None => {
            let s = TcpStream::connect(addr.trim_start_matches("tcp://")).unwrap();
            s.set_nodelay(true).unwrap();
            Box::new(s)
        }
    };
    let mut r = BufReader::with_capacity(64 << 10, stream);
    let mut buf = vec![0u8; 64 << 10];
    let (mut next, mut errors) = (0u64, 0u64);
    loop {
        let mut len = [0u8; 4];
        if r.read_exact(&mut len).is_err() {
            return;
        }
        let len = u32::from_le_bytes(len) as usize;
        if len == 0 {
            // The end of a batch: acknowledge with the sequence errors seen.
            let reply = if errors == 0 { 1u8 } else { 2 };
            r.get_mut().write_all(&[reply]).unwrap();
            continue;
        }
        if buf.len() < len {
            buf.resize(len, 0);
        }
        r.read_exact(&mut buf[..len]).unwrap();
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&buf[..8]);
        if u64::from_le_bytes(seq) != next {
            errors += 1;
        }
        next += 1;
    }
}

/// Serves `bench.echo` until stdin closes: each request comes back as is.
fn dndm_echo(addr: &str) {
    let node = Node::builder("bench-echo")
        .connect(addr)
        .unwrap()
        .build()
        .unwrap();
    let _server = node.serve("bench.echo", |b: Blob| b).unwrap();
    loop {
        thread::park();
    }
}

/// Echoes length-prefixed frames on a raw TCP stream until it closes.
fn raw_echo(addr: &str) {
    let mut s = TcpStream::connect(addr.trim_start_matches("tcp://")).unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return;
        }
        let n = u32::from_le_bytes(len) as usize;
        if buf.len() < n {
            buf.resize(n, 0);
        }
        if s.read_exact(&mut buf[..n]).is_err() {
            return;
        }
        // One write per reply, as one frame would be.
        let mut out = Vec::with_capacity(4 + n);
        out.extend_from_slice(&len);
        out.extend_from_slice(&buf[..n]);
        if s.write_all(&out).is_err() {
            return;
        }
    }
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

// ---------------------------------------------------------------------------
// The dndm side

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dndm-remote-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A publishing node and `subs` subscriber processes linked to it.
struct Remote {
    publ: Publisher<Blob>,
    acks: Subscriber<Ack>,
    subs: usize,
    seq: u64,
    _children: Children,
    node: Node,
}

impl Remote {
    fn start(scheme: &str, subs: usize) -> Self {
        // The driver encodes up to 64 queued messages into one transport
        // batch, and a batch above the transport's send queue limit (4 MiB
        // by default) ends the connection: 64 frames of 64 KiB are 4.2 MiB.
        // 8 MiB keeps the 64 KiB cases connected.
        let node = Node::builder("bench-pub")
            .transport_config(dndm::transport::Config::default().with_max_queued_bytes(8 << 20))
            .peer_queue(CAP, lossless(), BOUND)
            .build()
            .unwrap();
        let addr = match scheme {
            "unix" => {
                let path = scratch_dir().join(format!("dndm-{subs}.sock"));
                let _ = std::fs::remove_file(&path);
                node.listen(&format!("unix://{}", path.display())).unwrap()
            }
            _ => node.listen("tcp://127.0.0.1:0").unwrap(),
        };
        let publ = node.publish::<Blob>("bench.data").unwrap();
        let acks = node
            .subscribe_with::<Ack>("bench.ack.*", SubscribeOptions::new().capacity(CAP))
            .unwrap();
        let children = Children(
            (0..subs)
                .map(|i| {
                    let (c, s) = spawn_child("dndm_sub", &addr.to_string(), i);
                    (c, Some(s))
                })
                .collect(),
        );
        let deadline = Instant::now() + BOUND;
        while publ.interest_count() < subs || acks.publisher_count() < subs {
            assert!(
                Instant::now() < deadline,
                "subscriber processes did not link"
            );
            thread::sleep(Duration::from_millis(2));
        }
        Self {
            publ,
            acks,
            subs,
            seq: 0,
            _children: children,
            node,
        }
    }

    /// Sends `n` messages of `payload`, the last one flagged, and waits for
    /// every child's acknowledgement.
    fn run(&mut self, payload: &[u8], n: u64) -> Duration {
        let start = Instant::now();
        for i in 0..n {
            let m = Blob {
                seq: self.seq,
                flush: i + 1 == n,
                data: payload.to_vec(),
            };
            self.seq += 1;
            if self.publ.send(m).is_err() {
                panic!("the subscriber processes are gone");
            }
        }
        for _ in 0..self.subs {
            let Ok(a) = self.acks.recv_timeout(BOUND) else {
                panic!(
                    "no acknowledgement after {} messages, {} dropped; peers: {:?}; events: {:?}",
                    self.seq,
                    self.publ.dropped(),
                    self.node.peers(),
                    std::iter::from_fn(|| self.node.next_peer_event(Some(Duration::ZERO)))
                        .collect::<Vec<_>>()
                );
            };
            assert_eq!(a.errors, 0, "a subscriber saw a gap or reordering");
            assert_eq!(a.got, self.seq, "a subscriber missed messages");
        }
        let elapsed = start.elapsed();
        assert_eq!(self.publ.dropped(), 0, "Block timed out: not lossless");
        elapsed
    }
}

// ---------------------------------------------------------------------------
// The raw side

/// Raw streams to `subs` child processes that parse length-prefixed frames.
struct Raw {
    streams: Vec<BufWriter<Box<dyn ReadWrite>>>,
    seq: u64,
    _children: Children,
}

impl Raw {
    fn start(scheme: &str, subs: usize) -> Self {
        let mut children = Vec::new();
        let mut streams: Vec<BufWriter<Box<dyn ReadWrite>>> = Vec::new();
        if scheme == "unix" {
            let path = scratch_dir().join(format!("raw-{subs}.sock"));
            let _ = std::fs::remove_file(&path);
            let l = UnixListener::bind(&path).unwrap();
            for i in 0..subs {
                let (c, s) = spawn_child("raw_sub", &format!("unix://{}", path.display()), i);
                children.push((c, Some(s)));
                let (s, _) = l.accept().unwrap();
                streams.push(BufWriter::with_capacity(64 << 10, Box::new(s)));
            }
        } else {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = format!("tcp://{}", l.local_addr().unwrap());
            for i in 0..subs {
                let (c, s) = spawn_child("raw_sub", &addr, i);
                children.push((c, Some(s)));
                let (s, _) = l.accept().unwrap();
                s.set_nodelay(true).unwrap();
                streams.push(BufWriter::with_capacity(64 << 10, Box::new(s)));
            }
        }
        Self {
            streams,
            seq: 0,
            _children: Children(children),
        }
    }

    fn run(&mut self, payload: &[u8], n: u64) -> Duration {
        let len = (payload.len() as u32).to_le_bytes();
        let start = Instant::now();
        for _ in 0..n {
            let seq = self.seq.to_le_bytes();
            self.seq += 1;
            for w in &mut self.streams {
                w.write_all(&len).unwrap();
                w.write_all(&seq).unwrap();
                w.write_all(&payload[8..]).unwrap();
            }
        }
        for w in &mut self.streams {
            w.write_all(&0u32.to_le_bytes()).unwrap();
            w.flush().unwrap();
        }
        for w in &mut self.streams {
            let mut reply = [0u8];
            w.get_mut().read_exact(&mut reply).unwrap();
            assert_eq!(reply[0], 1, "the raw reader saw a gap");
        }
        start.elapsed()
    }
}

// ---------------------------------------------------------------------------
// The cases

fn remote_case(c: &mut Criterion, scheme: &str, label: &str, size: usize, subs: usize) {
    let n = per_iter(size);
    let payload = vec![0xabu8; size.max(8)];
    let name = if subs == 1 {
        format!("remote_{scheme}_{label}")
    } else {
        format!("remote_fanout{subs}_{scheme}_{label}")
    };
    let mut g = c.benchmark_group(name);
    g.throughput(if size >= 64 << 10 {
        Throughput::Bytes(n * size as u64)
    } else {
        Throughput::Elements(n)
    });
    // Fixtures start lazily: listing or filtering the benches starts no
    // process.
    let mut remote: Option<Remote> = None;
    g.bench_function("dndm", |b| {
        let r = remote.get_or_insert_with(|| Remote::start(scheme, subs));
        b.iter_custom(|iters| r.run(&payload, iters * n));
    });
    drop(remote);
    let mut raw: Option<Raw> = None;
    g.bench_function(format!("raw_{scheme}stream"), |b| {
        let r = raw.get_or_insert_with(|| Raw::start(scheme, subs));
        b.iter_custom(|iters| r.run(&payload, iters * n));
    });
    drop(raw);
    g.finish();
}

/// Round trips to a server process: through dndm, and through a raw
/// stream echo.
fn remote_rpc(c: &mut Criterion) {
    let mut g = c.benchmark_group("remote_rpc_tcp_64B");
    let blob = Blob {
        seq: 0,
        flush: false,
        data: vec![0xab; 64 - 16],
    };
    let mut fixture: Option<(Node, Children)> = None;
    g.bench_function("dndm", |b| {
        let (node, _) = fixture.get_or_insert_with(|| {
            let node = Node::builder("bench-caller").build().unwrap();
            let addr = node.listen("tcp://127.0.0.1:0").unwrap();
            let (child, stdin) = spawn_child("dndm_echo", &addr.to_string(), 0);
            let client = node.client::<Blob, Blob>("bench.echo").unwrap();
            assert!(client.wait_for_server(Some(BOUND)), "no echo server");
            (node, Children(vec![(child, Some(stdin))]))
        });
        let client = node.client::<Blob, Blob>("bench.echo").unwrap();
        b.iter(|| black_box(client.call(blob.clone(), BOUND).unwrap()));
    });
    drop(fixture);
    let mut raw: Option<(TcpStream, Children)> = None;
    g.bench_function("raw_tcpstream_echo", |b| {
        let (s, _) = raw.get_or_insert_with(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = format!("tcp://{}", l.local_addr().unwrap());
            let (child, stdin) = spawn_child("raw_echo", &addr, 0);
            let (s, _) = l.accept().unwrap();
            s.set_nodelay(true).unwrap();
            (s, Children(vec![(child, Some(stdin))]))
        });
        let mut frame = Vec::with_capacity(4 + 64);
        frame.extend_from_slice(&64u32.to_le_bytes());
        frame.extend_from_slice(&[0xab; 64]);
        let mut back = [0u8; 4 + 64];
        b.iter(|| {
            s.write_all(&frame).unwrap();
            s.read_exact(&mut back).unwrap();
            black_box(back[4]);
        });
    });
    drop(raw);
    g.finish();
}

fn remote(c: &mut Criterion) {
    for scheme in ["tcp", "unix"] {
        for (label, size) in [("8B", 8), ("64B", 64), ("1KiB", 1024), ("64KiB", 64 << 10)] {
            remote_case(c, scheme, label, size, 1);
        }
    }
    remote_case(c, "tcp", "64B", 64, 3);
    let _ = std::fs::remove_dir_all(scratch_dir());
}

/// Messages per `fanout_64KiB` iteration.
const FANOUT_N: u64 = 2000;

fn fanout_node(subs: usize, iters: u64) -> Duration {
    let node = Node::new("bench");
    let readers: Vec<_> = (0..subs)
        .map(|_| {
            node.subscribe_with::<Blob>(
                "bench.big",
                SubscribeOptions::new().capacity(CAP).policy(Policy::BLOCK),
            )
            .unwrap()
        })
        .collect();
    let publ = node.publish::<Blob>("bench.big").unwrap();
    let payload = vec![0xabu8; 64 << 10];
    let total = iters * FANOUT_N;
    let start = Instant::now();
    thread::scope(|s| {
        for r in readers {
            s.spawn(move || {
                for _ in 0..total {
                    black_box(r.recv().unwrap().data.len());
                }
            });
        }
        for i in 0..total {
            let _ = publ.send(Blob {
                seq: i,
                flush: false,
                data: payload.clone(),
            });
        }
    });
    start.elapsed()
}

fn fanout_crossbeam(subs: usize, iters: u64) -> Duration {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..subs)
        .map(|_| crossbeam_channel::bounded::<Vec<u8>>(CAP))
        .unzip();
    let payload = vec![0xabu8; 64 << 10];
    let total = iters * FANOUT_N;
    let start = Instant::now();
    thread::scope(|s| {
        for rx in rxs {
            s.spawn(move || {
                for _ in 0..total {
                    black_box(rx.recv().unwrap().len());
                }
            });
        }
        for _ in 0..total {
            for tx in &txs {
                tx.send(payload.clone()).unwrap();
            }
        }
    });
    start.elapsed()
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout_64KiB");
    g.throughput(Throughput::Elements(FANOUT_N));
    g.bench_function("dndm_4subs", |b| b.iter_custom(|i| fanout_node(4, i)));
    g.bench_function("single_subscriber", |b| {
        b.iter_custom(|i| fanout_node(1, i))
    });
    g.bench_function("crossbeam_4clones", |b| {
        b.iter_custom(|i| fanout_crossbeam(4, i))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = remote, remote_rpc, fanout
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        child(&role);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
