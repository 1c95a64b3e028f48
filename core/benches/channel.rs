//! Channel core throughput and latency, each case beside its baselines
//! measured in the same run (`cargo xtask bench core`).
//!
//! Every iteration moves `N` messages through fresh threads so that both
//! ends run concurrently, as they do in real pipelines; the cost of spawning
//! is measured once per `N` messages and is the same for every contender.

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
                        let n = (N - i).min(64);
                        let _ = tx.send_iter((i..i + n).map(Msg::new));
                        i += n;
                    }
                });
                (vec![p], move || {
                    let mut buf = Vec::with_capacity(256);
                    let mut got = 0;
                    while got < N {
                        got += rx.recv_batch(&mut buf, 256).expect("recv") as u64;
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
    g.finish();
}

const PRODUCERS: u64 = 4;

fn mpsc(c: &mut Criterion) {
    let per = N / PRODUCERS;
    let mut g = c.benchmark_group("mpsc_4to1_64B");
    g.throughput(Throughput::Elements(per * PRODUCERS));
    g.bench_function("dndm", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                let (tx, rx) = bounded::<Msg>(CAP).expect("capacity");
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
                            let k = (n - i).min(64);
                            let _ = tx.send_iter((i..i + k).map(|j| Arc::new(Msg::new(j))));
                            i += k;
                        }
                    },
                    rxs.into_iter()
                        .map(|rx| {
                            Box::new(move || {
                                let mut buf = Vec::with_capacity(256);
                                let mut got = 0;
                                while got < n {
                                    got += rx.recv_batch(&mut buf, 256).expect("recv") as u64;
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
