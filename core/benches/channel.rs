//! Channel core throughput and latency, each case beside its baselines
//! measured in the same run (`cargo xtask bench core`).
//!
//! Every iteration moves `N` messages through fresh threads so that both
//! ends run concurrently, as they do in real pipelines; the cost of spawning
//! is measured once per `N` messages and is the same for every contender.
//!
//! Fairness rules, checked by `cargo xtask bench` through its pairing table
//! (`xtask/src/bench/pairs.rs`):
//!
//! * per-message cases (`dndm`) meet per-message baselines; batch cases
//!   (`dndm_batch64`: `send_iter` of 64, `recv_batch` of up to 256) meet
//!   batch baselines that move the same runs (`*_try_iter`, `rtrb_chunk`);
//! * every contender gets the same total queue capacity in a case.
//!
//! `rtrb` is a purpose-built wait-free SPSC ring without blocking calls: its
//! ends yield the core when the ring is full or empty, as a busy-polling
//! pipeline stage does.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dndm_core::{Config, Receiver, Sender, bounded};

/// A 64-byte message.
#[derive(Clone, Copy)]
#[allow(
    dead_code,
    reason = "the payload is moved, never inspected, as in a pipeline stage"
)]
struct Msg([u64; 8]);

impl Msg {
    fn new(i: u64) -> Self {
        Msg([i; 8])
    }
}

const N: u64 = 200_000;
const CAP: usize = 1024;

type Job = Box<dyn FnOnce() + Send>;

/// Starts every job on its own thread behind one barrier and returns the
/// time from the barrier until the last job ends.
fn run_jobs(jobs: Vec<Job>) -> Duration {
    let barrier = Arc::new(Barrier::new(jobs.len() + 1));
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            let b = Arc::clone(&barrier);
            thread::spawn(move || {
                b.wait();
                job();
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().expect("bench thread panicked");
    }
    start.elapsed()
}

/// One producer and several consumers, each on its own thread.
fn run_fanout(producer: impl FnOnce() + Send + 'static, mut consumers: Vec<Job>) -> Duration {
    consumers.push(Box::new(producer));
    run_jobs(consumers)
}

/// Runs `producers` and `consumer` (built fresh by `setup`) `iters` times.
fn timed<C>(iters: u64, setup: impl Fn() -> (Vec<Job>, C)) -> Duration
where
    C: FnOnce() + Send + 'static,
{
    (0..iters)
        .map(|_| {
            let (mut jobs, consumer) = setup();
            jobs.push(Box::new(consumer));
            run_jobs(jobs)
        })
        .sum()
}

/// Gives the core away while the other end of a non-blocking ring catches up.
fn backoff() {
    thread::yield_now();
}

/// Pushes one message into an rtrb ring, waiting for room.
fn rtrb_push<T>(tx: &mut rtrb::Producer<T>, mut m: T) {
    loop {
        match tx.push(m) {
            Ok(()) => return,
            Err(rtrb::PushError::Full(back)) => {
                m = back;
                backoff();
            }
        }
    }
}

/// Writes a batch of `len` messages into an rtrb ring in chunks, waiting
/// for room.
fn rtrb_push_all<T>(tx: &mut rtrb::Producer<T>, len: usize, mut batch: impl Iterator<Item = T>) {
    let mut left = len;
    while left > 0 {
        let k = tx.slots().min(left);
        if k == 0 {
            backoff();
            continue;
        }
        let chunk = tx.write_chunk_uninit(k).expect("k slots are free");
        left -= chunk.fill_from_iter(&mut batch);
    }
}

/// Moves up to `max` queued messages of an rtrb ring into `buf` in one
/// chunk, waiting for at least one; returns how many.
fn rtrb_pop_batch<T>(rx: &mut rtrb::Consumer<T>, buf: &mut Vec<T>, max: usize) -> usize {
    loop {
        let k = rx.slots().min(max);
        if k > 0 {
            buf.extend(rx.read_chunk(k).expect("k slots are queued"));
            return k;
        }
        backoff();
    }
}

/// `iters` rounds of fan-out through four crossbeam queues of `CAP`: one
/// producer sends `n` shared messages to each (crossbeam has no batch send),
/// each consumer receives with `consume`.
fn crossbeam_fanout(
    iters: u64,
    n: u64,
    consume: fn(crossbeam_channel::Receiver<Arc<Msg>>, u64),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..FANOUT)
            .map(|_| crossbeam_channel::bounded::<Arc<Msg>>(CAP))
            .unzip();
        total += run_fanout(
            move || {
                for i in 0..n {
                    let m = Arc::new(Msg::new(i));
                    for tx in &txs {
                        let _ = tx.send(Arc::clone(&m));
                    }
                }
            },
            rxs.into_iter()
                .map(|rx| Box::new(move || consume(rx, n)) as Job)
                .collect(),
        );
    }
    total
}

/// Moves up to `max` messages of a crossbeam channel into `buf`: one
/// blocking `recv`, then whatever `try_iter` finds queued.
fn crossbeam_recv_batch<T>(
    rx: &crossbeam_channel::Receiver<T>,
    buf: &mut Vec<T>,
    max: usize,
) -> usize {
    let before = buf.len();
    buf.push(rx.recv().expect("recv"));
    buf.extend(rx.try_iter().take(max - 1));
    buf.len() - before
}

/// Batch sizes of the batch cases, the same for every contender.
const SEND_BATCH: u64 = 64;
const RECV_BATCH: usize = 256;

fn spsc(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc_64B");
    g.throughput(Throughput::Elements(N));
    g.bench_function("dndm", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                let (tx, rx) = bounded::<Msg>(CAP).expect("capacity");
                let p: Job = Box::new(move || {
                    for i in 0..N {
                        let _ = tx.send(Msg::new(i));
                    }
                });
                (vec![p], move || {
                    for _ in 0..N {
                        black_box(rx.recv().expect("recv"));
                    }
                })
            })
        })
    });
    g.bench_function("dndm_batch64", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                let (tx, rx) = bounded::<Msg>(CAP).expect("capacity");
                let p: Job = Box::new(move || {
                    let mut i = 0;
                    while i < N {
                        let n = (N - i).min(SEND_BATCH);
                        let _ = tx.send_iter((i..i + n).map(Msg::new));
                        i += n;
                    }
                });
                (vec![p], move || {
                    let mut buf = Vec::with_capacity(RECV_BATCH);
                    let mut got = 0;
                    while got < N {
                        got += rx.recv_batch(&mut buf, RECV_BATCH).expect("recv") as u64;
                        black_box(&buf);
                        buf.clear();
                    }
                })
            })
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                let (tx, rx) = crossbeam_channel::bounded::<Msg>(CAP);
                let p: Job = Box::new(move || {
                    for i in 0..N {
                        let _ = tx.send(Msg::new(i));
                    }
                });
                (vec![p], move || {
                    for _ in 0..N {
                        black_box(rx.recv().expect("recv"));
                    }
                })
            })
        })
    });
    g.bench_function("std_mpsc", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(CAP);
                let p: Job = Box::new(move || {
                    for i in 0..N {
                        let _ = tx.send(Msg::new(i));
                    }
                });
                (vec![p], move || {
                    for _ in 0..N {
                        black_box(rx.recv().expect("recv"));
                    }
                })
            })
        })
    });
    g.bench_function("rtrb", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                let (mut tx, mut rx) = rtrb::RingBuffer::<Msg>::new(CAP);
                let p: Job = Box::new(move || {
                    for i in 0..N {
                        rtrb_push(&mut tx, Msg::new(i));
                    }
                });
                (vec![p], move || {
                    let mut got = 0;
                    while got < N {
                        match rx.pop() {
                            Ok(m) => {
                                black_box(m);
                                got += 1;
                            }
                            Err(_) => backoff(),
                        }
                    }
                })
            })
        })
    });
    // Batch baselines for `dndm_batch64`: the same runs of 64 in, up to 256 out.
    g.bench_function("crossbeam_try_iter", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                let (tx, rx) = crossbeam_channel::bounded::<Msg>(CAP);
                // crossbeam-channel has no batch send: the producer sends one by one.
                let p: Job = Box::new(move || {
                    for i in 0..N {
                        let _ = tx.send(Msg::new(i));
                    }
                });
                (vec![p], move || {
                    let mut buf = Vec::with_capacity(RECV_BATCH);
                    let mut got = 0;
                    while got < N {
                        got += crossbeam_recv_batch(&rx, &mut buf, RECV_BATCH) as u64;
                        black_box(&buf);
                        buf.clear();
                    }
                })
            })
        })
    });
    g.bench_function("rtrb_chunk", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                let (mut tx, mut rx) = rtrb::RingBuffer::<Msg>::new(CAP);
                let p: Job = Box::new(move || {
                    let mut i = 0;
                    while i < N {
                        let n = (N - i).min(SEND_BATCH);
                        rtrb_push_all(&mut tx, n as usize, (i..i + n).map(Msg::new));
                        i += n;
                    }
                });
                (vec![p], move || {
                    let mut buf = Vec::with_capacity(RECV_BATCH);
                    let mut got = 0;
                    while got < N {
                        got += rtrb_pop_batch(&mut rx, &mut buf, RECV_BATCH) as u64;
                        black_box(&buf);
                        buf.clear();
                    }
                })
            })
        })
    });
    g.finish();
}

const PRODUCERS: u64 = 4;

fn mpsc(c: &mut Criterion) {
    let per = N / PRODUCERS;
    let mut g = c.benchmark_group("mpsc_4to1_64B");
    g.throughput(Throughput::Elements(per * PRODUCERS));
    // Same total capacity for both: dndm gives each sender handle its own
    // lane, so 4 lanes of CAP / 4 slots match crossbeam's one queue of CAP.
    let lane = CAP / PRODUCERS as usize;
    g.bench_function("dndm", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                let (tx, rx) = bounded::<Msg>(lane).expect("capacity");
                let ps: Vec<Job> = (0..PRODUCERS)
                    .map(|_| {
                        let tx = tx.clone();
                        Box::new(move || {
                            for i in 0..per {
                                let _ = tx.send(Msg::new(i));
                            }
                        }) as Job
                    })
                    .collect();
                drop(tx);
                (ps, move || {
                    for _ in 0..per * PRODUCERS {
                        black_box(rx.recv().expect("recv"));
                    }
                })
            })
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                let (tx, rx) = crossbeam_channel::bounded::<Msg>(CAP);
                let ps: Vec<Job> = (0..PRODUCERS)
                    .map(|_| {
                        let tx = tx.clone();
                        Box::new(move || {
                            for i in 0..per {
                                let _ = tx.send(Msg::new(i));
                            }
                        }) as Job
                    })
                    .collect();
                (ps, move || {
                    for _ in 0..per * PRODUCERS {
                        black_box(rx.recv().expect("recv"));
                    }
                })
            })
        })
    });
    g.finish();
}

const FANOUT: usize = 4;

/// One sender attached to `FANOUT` receivers.
fn fan_out_set() -> (Sender<Arc<Msg>>, Vec<Receiver<Arc<Msg>>>) {
    let (tx, rx0) = bounded::<Arc<Msg>>(CAP).expect("capacity");
    let mut rxs = vec![rx0];
    for _ in 1..FANOUT {
        rxs.push(tx.subscribe(Config::new(CAP)).expect("capacity"));
    }
    (tx, rxs)
}

fn fanout(c: &mut Criterion) {
    let n = N / 4;
    let mut g = c.benchmark_group("fanout_1to4_64B");
    // Delivered messages: every receiver gets every message.
    g.throughput(Throughput::Elements(n * FANOUT as u64));
    g.bench_function("dndm", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (tx, rxs) = fan_out_set();
                total += run_fanout(
                    move || {
                        for i in 0..n {
                            let _ = tx.send(Arc::new(Msg::new(i)));
                        }
                    },
                    rxs.into_iter()
                        .map(|rx| {
                            Box::new(move || {
                                for _ in 0..n {
                                    black_box(rx.recv().expect("recv"));
                                }
                            }) as Job
                        })
                        .collect(),
                );
            }
            total
        })
    });
    g.bench_function("dndm_batch64", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (tx, rxs) = fan_out_set();
                total += run_fanout(
                    move || {
                        let mut i = 0;
                        while i < n {
                            let k = (n - i).min(SEND_BATCH);
                            let _ = tx.send_iter((i..i + k).map(|j| Arc::new(Msg::new(j))));
                            i += k;
                        }
                    },
                    rxs.into_iter()
                        .map(|rx| {
                            Box::new(move || {
                                let mut buf = Vec::with_capacity(RECV_BATCH);
                                let mut got = 0;
                                while got < n {
                                    got +=
                                        rx.recv_batch(&mut buf, RECV_BATCH).expect("recv") as u64;
                                    black_box(&buf);
                                    buf.clear();
                                }
                            }) as Job
                        })
                        .collect(),
                );
            }
            total
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| {
            crossbeam_fanout(iters, n, |rx, n| {
                for _ in 0..n {
                    black_box(rx.recv().expect("recv"));
                }
            })
        })
    });
    // Batch baselines for `dndm_batch64`: four queues of CAP, as dndm's four lanes.
    g.bench_function("crossbeam_try_iter", |b| {
        b.iter_custom(|iters| {
            crossbeam_fanout(iters, n, |rx, n| {
                let mut buf = Vec::with_capacity(RECV_BATCH);
                let mut got = 0;
                while got < n {
                    got += crossbeam_recv_batch(&rx, &mut buf, RECV_BATCH) as u64;
                    black_box(&buf);
                    buf.clear();
                }
            })
        })
    });
    g.bench_function("rtrb_chunk", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (mut txs, rxs): (Vec<_>, Vec<_>) = (0..FANOUT)
                    .map(|_| rtrb::RingBuffer::<Arc<Msg>>::new(CAP))
                    .unzip();
                total += run_fanout(
                    move || {
                        let mut batch = Vec::with_capacity(SEND_BATCH as usize);
                        let mut i = 0;
                        while i < n {
                            let k = (n - i).min(SEND_BATCH);
                            batch.extend((i..i + k).map(|j| Arc::new(Msg::new(j))));
                            for tx in &mut txs {
                                rtrb_push_all(tx, batch.len(), batch.iter().cloned());
                            }
                            batch.clear();
                            i += k;
                        }
                    },
                    rxs.into_iter()
                        .map(|mut rx| {
                            Box::new(move || {
                                let mut buf = Vec::with_capacity(RECV_BATCH);
                                let mut got = 0;
                                while got < n {
                                    got += rtrb_pop_batch(&mut rx, &mut buf, RECV_BATCH) as u64;
                                    black_box(&buf);
                                    buf.clear();
                                }
                            }) as Job
                        })
                        .collect(),
                );
            }
            total
        })
    });
    g.finish();
}

/// Median-friendly round trip: criterion reports time per round trip.
fn ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("pingpong_64B");
    g.bench_function("dndm", |b| {
        b.iter_custom(|iters| {
            let (ping_tx, ping_rx) = bounded::<Msg>(1).expect("capacity");
            let (pong_tx, pong_rx) = bounded::<Msg>(1).expect("capacity");
            let echo = thread::spawn(move || {
                while let Ok(m) = ping_rx.recv() {
                    if pong_tx.send(m).is_err() {
                        break;
                    }
                }
            });
            let start = Instant::now();
            for i in 0..iters {
                let _ = ping_tx.send(Msg::new(i));
                black_box(pong_rx.recv().expect("pong"));
            }
            let t = start.elapsed();
            drop(ping_tx);
            echo.join().expect("echo panicked");
            t
        })
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| {
            let (ping_tx, ping_rx) = crossbeam_channel::bounded::<Msg>(1);
            let (pong_tx, pong_rx) = crossbeam_channel::bounded::<Msg>(1);
            let echo = thread::spawn(move || {
                while let Ok(m) = ping_rx.recv() {
                    if pong_tx.send(m).is_err() {
                        break;
                    }
                }
            });
            let start = Instant::now();
            for i in 0..iters {
                let _ = ping_tx.send(Msg::new(i));
                black_box(pong_rx.recv().expect("pong"));
            }
            let t = start.elapsed();
            drop(ping_tx);
            echo.join().expect("echo panicked");
            t
        })
    });
    g.finish();
}

criterion_group!(benches, spsc, mpsc, fanout, ping_pong);
criterion_main!(benches);
