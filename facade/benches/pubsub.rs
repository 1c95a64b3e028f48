//! The Node API beside the raw layers it is built on, measured in the same
//! run (`cargo xtask bench dndm`):
//!
//! * `pubsub_64B`: publisher → subscriber throughput vs a raw dndm-core
//!   channel, both ends on their own threads;
//! * `publish_no_interest`: the cost of `send` when nobody listens, vs a
//!   core sender with no receiver;
//! * `request_reply`: one in-process call round trip vs a crossbeam-channel
//!   request/response pair served by a thread.
//!
//! Capacities are equal on both sides: the subscriber's one lane and the
//! core channel hold `CAP` messages each; the server's request queue (the
//! `Node` default, 1024) and the baseline's request channel hold `CAP` too,
//! and a call has one request in flight, so neither queue ever fills.
//! The pairs reported are listed in `xtask/src/bench/pairs.rs`.
#![allow(
    clippy::disallowed_types,
    reason = "bench harness code uses std sync types like users do"
)]

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dndm::chan::{Sender, bounded};
use dndm::prelude::*;
use rkyv::{Archive, Deserialize, Serialize};

/// A 64-byte message.
#[derive(Archive, Serialize, Deserialize, Message, Clone, Copy)]
#[message(name = "bench.Msg64")]
struct Msg64 {
    data: [u64; 8],
}

impl Msg64 {
    fn new(i: u64) -> Self {
        Self { data: [i; 8] }
    }
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Copy)]
#[message(name = "bench.Ping")]
struct Ping {
    v: u64,
}

const N: u64 = 200_000;
const CAP: usize = 1024;

/// Runs `producer` and `consumer` on fresh threads and returns the time
/// from the start barrier to the end of both.
fn timed(
    producer: impl FnOnce() + Send + 'static,
    consumer: impl FnOnce() + Send + 'static,
) -> Duration {
    let barrier = Arc::new(Barrier::new(3));
    let (b1, b2) = (Arc::clone(&barrier), Arc::clone(&barrier));
    let p = thread::spawn(move || {
        b1.wait();
        producer();
    });
    let c = thread::spawn(move || {
        b2.wait();
        consumer();
    });
    barrier.wait();
    let start = Instant::now();
    p.join().expect("producer panicked");
    c.join().expect("consumer panicked");
    start.elapsed()
}

fn pubsub(c: &mut Criterion) {
    let mut g = c.benchmark_group("pubsub_64B");
    g.throughput(Throughput::Elements(N));
    g.bench_function("dndm", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let node = Node::new("bench");
                // Lossless, like the core channel it is compared with.
                let sub = node
                    .subscribe_with::<Msg64>(
                        "bench.imu",
                        SubscribeOptions::new().capacity(CAP).policy(Policy::BLOCK),
                    )
                    .expect("subscribe");
                let publ = node.publish::<Msg64>("bench.imu").expect("publish");
                total += timed(
                    move || {
                        for i in 0..N {
                            let _ = publ.send(Msg64::new(i));
                        }
                    },
                    move || {
                        for _ in 0..N {
                            black_box(sub.recv().expect("recv").data[0]);
                        }
                    },
                );
                drop(node);
            }
            total
        })
    });
    g.bench_function("core_channel", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (tx, rx) = bounded::<Msg64>(CAP).expect("capacity");
                total += timed(
                    move || {
                        for i in 0..N {
                            let _ = tx.send(Msg64::new(i));
                        }
                    },
                    move || {
                        for _ in 0..N {
                            black_box(rx.recv().expect("recv").data[0]);
                        }
                    },
                );
            }
            total
        })
    });
    g.finish();
}

fn no_interest(c: &mut Criterion) {
    let mut g = c.benchmark_group("publish_no_interest");
    let node = Node::new("bench");
    let publ = node.publish::<Msg64>("bench.void").expect("publish");
    let mut i = 0u64;
    g.bench_function("dndm", |b| {
        b.iter(|| {
            i += 1;
            black_box(publ.send(black_box(Msg64::new(i))).is_ok())
        })
    });
    let tx = Sender::<Msg64>::new();
    g.bench_function("core_channel", |b| {
        b.iter(|| {
            i += 1;
            black_box(tx.send(black_box(Msg64::new(i))).is_err())
        })
    });
    g.finish();
}

fn request_reply(c: &mut Criterion) {
    let mut g = c.benchmark_group("request_reply");
    let node = Node::new("bench");
    let _server = node
        .serve::<Ping, Ping, _>("bench.echo", |p| Ping { v: p.v + 1 })
        .expect("serve");
    let client = node.client::<Ping, Ping>("bench.echo").expect("client");
    let mut v = 0;
    g.bench_function("dndm", |b| {
        b.iter(|| {
            v = client
                .call(Ping { v }, Duration::from_secs(5))
                .expect("call")
                .v;
        })
    });
    // The baseline: a server thread reading requests from one
    // crossbeam-channel and answering on the caller's reply channel.
    type Job = (u64, crossbeam_channel::Sender<u64>);
    let (req_tx, req_rx) = crossbeam_channel::bounded::<Job>(CAP);
    let server = thread::spawn(move || {
        for (v, reply) in req_rx {
            let _ = reply.send(v + 1);
        }
    });
    let (resp_tx, resp_rx) = crossbeam_channel::bounded::<u64>(1);
    let mut v = 0;
    g.bench_function("crossbeam_pair", |b| {
        b.iter(|| {
            req_tx.send((v, resp_tx.clone())).expect("send");
            v = resp_rx.recv().expect("recv");
        })
    });
    drop(req_tx);
    server.join().expect("server panicked");
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = pubsub, no_interest, request_reply
}
criterion_main!(benches);
