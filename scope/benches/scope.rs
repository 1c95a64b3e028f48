//! Scopes beside what they are built on, measured in the same run
//! (`cargo xtask bench scope`):
//!
//! * `scope_publish_64B`: a publisher made by a scope of depth 32 vs one of
//!   depth 1 (both publish on their scope's own path, the deepest a route
//!   can reach), each sending to one subscriber and draining it;
//! * `scope_state_read`: a [`Reader`](dndm_scope::Reader) of one key vs a
//!   read of a `parking_lot::RwLock<HashMap>`, uncontended;
//! * `scope_state_read_2r1w`: the same with two reading threads and one
//!   writing thread (reads per second of the two readers);
//! * `scope_state_write`: one write (with one observer) vs an insert into
//!   the `RwLock<HashMap>`;
//! * `scope_observer_pingpong`: a write seen by an observer on another
//!   thread, which answers through another key, vs a crossbeam-channel
//!   ping-pong;
//! * `scope_create_drop`: a scope with a child, a publisher and a
//!   subscriber created and closed, vs the same two handles made and
//!   dropped on the node directly.
//!
//! The pairs reported are listed in `xtask/src/bench/pairs.rs`.
#![allow(
    clippy::disallowed_types,
    reason = "bench harness code uses std sync types like users do"
)]
#![allow(clippy::unwrap_used, reason = "a bench fails loudly")]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dndm::prelude::*;
use parking_lot::RwLock;
use rkyv::{Archive, Deserialize, Serialize};

/// A 64-byte message.
#[derive(Archive, Serialize, Deserialize, Message, Clone, Copy)]
#[message(name = "bench.Msg64")]
struct Msg64 {
    data: [u64; 8],
}

/// A state value.
#[derive(Archive, Serialize, Deserialize, Message, Clone, Copy)]
#[message(name = "bench.Value")]
struct Value {
    v: u64,
}

const BATCH: u64 = 1024;

/// A scope chain of `depth` levels (`s.s.s…`) and a publisher on the
/// deepest scope's own path, linked to one subscriber.
fn chain(
    node: &Node,
    depth: usize,
) -> (
    Vec<dndm::Scope>,
    dndm::ScopedPublisher<Msg64>,
    Subscriber<Msg64>,
) {
    let mut scopes = vec![node.scope("s").unwrap()];
    while scopes.len() < depth {
        let next = scopes.last().unwrap().child("s").unwrap();
        scopes.push(next);
    }
    let leaf = scopes.last().unwrap();
    let own = format!("/{}", leaf.path());
    let publ = leaf.publish::<Msg64>(&own).unwrap();
    let sub = node
        .subscribe_with::<Msg64>(
            leaf.path(),
            SubscribeOptions::new()
                .capacity(BATCH as usize)
                .policy(Policy::BLOCK),
        )
        .unwrap();
    assert_eq!(publ.interest_count(), 1);
    (scopes, publ, sub)
}

fn publish(c: &mut Criterion) {
    let mut g = c.benchmark_group("scope_publish_64B");
    g.throughput(Throughput::Elements(BATCH));
    for (name, depth) in [("dndm_depth32", 32), ("depth1", 1)] {
        let node = Node::new("bench");
        let (scopes, publ, sub) = chain(&node, depth);
        assert_eq!(scopes.last().unwrap().depth(), depth);
        g.bench_function(name, |b| {
            b.iter(|| {
                for i in 0..BATCH {
                    publ.send(Msg64 { data: [i; 8] }).unwrap();
                }
                for _ in 0..BATCH {
                    black_box(sub.try_recv().unwrap().data[0]);
                }
            })
        });
    }
    g.finish();
}

fn state_read(c: &mut Criterion) {
    let mut g = c.benchmark_group("scope_state_read");
    let node = Node::new("bench");
    let scope = node.scope("s").unwrap();
    let key = scope.state().key("speed", Value { v: 7 }).unwrap();
    let reader = key.reader();
    g.bench_function("dndm_reader", |b| {
        b.iter(|| black_box(reader.get().unwrap().v))
    });
    let map = RwLock::new(HashMap::from([("speed".to_string(), 7u64)]));
    g.bench_function("rwlock_hashmap", |b| {
        b.iter(|| black_box(*map.read().get(black_box("speed")).unwrap()))
    });
    g.finish();
}

const READS: u64 = 200_000;

/// Two readers doing `READS` reads each while a writer writes; returns the
/// readers' time.
fn contended<R, W>(read: R, write: W) -> Duration
where
    R: Fn() -> Box<dyn FnMut() + Send> + Send + Sync + 'static,
    W: FnMut() + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(3));
    let writer = {
        let stop = Arc::clone(&stop);
        let mut write = write;
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                write();
                thread::yield_now();
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut one = read();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..READS {
                    one();
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for r in readers {
        r.join().unwrap();
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    elapsed
}

fn state_read_contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("scope_state_read_2r1w");
    g.throughput(Throughput::Elements(2 * READS));
    let node = Node::new("bench");
    let scope = node.scope("s").unwrap();
    let key = scope.state().key("speed", Value { v: 0 }).unwrap();
    g.bench_function("dndm_reader", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let k = key.clone();
                    let w = key.clone();
                    let mut n = 0;
                    contended(
                        move || {
                            let r = k.reader();
                            Box::new(move || {
                                black_box(r.get().unwrap().v);
                            })
                        },
                        move || {
                            n += 1;
                            w.set(Value { v: n }).unwrap();
                        },
                    )
                })
                .sum()
        })
    });
    let map = Arc::new(RwLock::new(HashMap::from([("speed".to_string(), 0u64)])));
    g.bench_function("rwlock_hashmap", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let m = Arc::clone(&map);
                    let w = Arc::clone(&map);
                    let mut n = 0;
                    contended(
                        move || {
                            let m = Arc::clone(&m);
                            Box::new(move || {
                                black_box(*m.read().get(black_box("speed")).unwrap());
                            })
                        },
                        move || {
                            n += 1;
                            w.write().insert("speed".to_string(), n);
                        },
                    )
                })
                .sum()
        })
    });
    g.finish();
}

fn state_write(c: &mut Criterion) {
    let mut g = c.benchmark_group("scope_state_write");
    let node = Node::new("bench");
    let scope = node.scope("s").unwrap();
    let key = scope.state().key("speed", Value { v: 0 }).unwrap();
    let obs = key.observe().unwrap();
    let mut n = 0;
    g.bench_function("dndm", |b| {
        b.iter(|| {
            n += 1;
            key.set(Value { v: n }).unwrap();
            black_box(obs.try_recv().unwrap().value.v);
        })
    });
    let map = RwLock::new(HashMap::from([("speed".to_string(), 0u64)]));
    g.bench_function("rwlock_hashmap", |b| {
        b.iter(|| {
            n += 1;
            map.write().insert(black_box("speed").to_string(), n);
        })
    });
    g.finish();
}

fn observer_pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("scope_observer_pingpong");
    let node = Node::new("bench");
    let scope = node.scope("s").unwrap();
    let state = scope.state();
    let ping = state.key("ping", Value { v: 0 }).unwrap();
    let pong = state.key("pong", Value { v: 0 }).unwrap();
    let pongs = pong.observe().unwrap();
    let pings = ping.observe().unwrap();
    let answer = pong.clone();
    let echo = thread::spawn(move || {
        while let Ok(c) = pings.recv_timeout(Duration::from_secs(3600)) {
            if answer.set(c.value).is_err() {
                return;
            }
        }
    });
    let mut n = 0;
    g.bench_function("dndm", |b| {
        b.iter(|| {
            n += 1;
            ping.set(Value { v: n }).unwrap();
            black_box(pongs.recv_timeout(Duration::from_secs(60)).unwrap().value.v);
        })
    });
    drop(scope);
    echo.join().unwrap();
    let (to_tx, to_rx) = crossbeam_channel::bounded::<u64>(1);
    let (back_tx, back_rx) = crossbeam_channel::bounded::<u64>(1);
    let echo = thread::spawn(move || {
        while let Ok(v) = to_rx.recv() {
            if back_tx.send(v).is_err() {
                return;
            }
        }
    });
    g.bench_function("crossbeam_pair", |b| {
        b.iter(|| {
            n += 1;
            to_tx.send(n).unwrap();
            black_box(back_rx.recv().unwrap());
        })
    });
    drop(to_tx);
    echo.join().unwrap();
    g.finish();
}

fn create_drop(c: &mut Criterion) {
    let mut g = c.benchmark_group("scope_create_drop");
    let node = Node::new("bench");
    g.bench_function("dndm_scope", |b| {
        b.iter(|| {
            let scope = node.scope("s").unwrap();
            let child = scope.child("c").unwrap();
            let p = child.publish::<Msg64>("x").unwrap();
            let s = scope.subscribe::<Msg64>("**").unwrap();
            black_box((p.interest_count(), s.publisher_count()));
            drop(child);
            drop(scope);
            drop((p, s));
        })
    });
    g.bench_function("node_handles", |b| {
        b.iter(|| {
            let p = node.publish::<Msg64>("s.c.x").unwrap();
            let s = node.subscribe::<Msg64>("s.**").unwrap();
            black_box((p.interest_count(), s.publisher_count()));
            drop((p, s));
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = publish, state_read, state_read_contended, state_write, observer_pingpong, create_drop
}
criterion_main!(benches);
