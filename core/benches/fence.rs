//! What the process-wide [`FenceMode`] costs and saves, each mode measured
//! in its own process (`cargo xtask bench core` runs every function alone;
//! in a run of several functions in one process the first fixes the mode
//! for the rest, and the others say so on stderr).
//!
//! * `fence_stream_64B`: what a publisher and its receiver pay per message
//!   (one `light_fence` each), streaming 64-byte messages between two
//!   threads as `spsc_64B` does.
//! * `fence_sleep`: what a party pays each time it goes to sleep (one
//!   `heavy_fence`: a `SeqCst` fence, or `membarrier`, an interrupt to
//!   every CPU running a thread of this process).
//! * `fence_bystander`: what that costs *another* thread: a latency-bound
//!   loop (a fixed amount of work) timed while a second thread of the same
//!   process goes to sleep every 10 microseconds, the worst a busy receiver
//!   can do.
//!
//! `dndm` is the default mode ([`FenceMode::Asymmetric`]); `symmetric` is
//! the other one, the baseline each row compares with.
#![allow(
    clippy::disallowed_types,
    reason = "bench harness code uses std sync types like users do"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dndm_core::sync::heavy_fence;
use dndm_core::{FenceMode, bounded, set_fence_mode};

/// A 64-byte message.
#[derive(Clone, Copy)]
#[allow(dead_code, reason = "the payload is moved, never inspected")]
struct Msg([u64; 8]);

const N: u64 = 200_000;
const CAP: usize = 1024;

/// Fixes `mode` for this process, or says on stderr that another mode was
/// fixed first (several functions in one process).
fn with_mode(mode: FenceMode) {
    if let Err(fixed) = set_fence_mode(mode)
        && fixed != mode
    {
        eprintln!("fence bench: {fixed:?} already fixed in this process; run with --exact");
    }
}

const MODES: [(&str, FenceMode); 2] = [
    ("dndm", FenceMode::Asymmetric),
    ("symmetric", FenceMode::Symmetric),
];

fn stream(c: &mut Criterion) {
    let mut g = c.benchmark_group("fence_stream_64B");
    g.throughput(Throughput::Elements(N));
    for (name, mode) in MODES {
        g.bench_function(name, |b| {
            with_mode(mode);
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (tx, rx) = bounded::<Msg>(CAP).expect("capacity");
                    let start = Instant::now();
                    let p = thread::spawn(move || {
                        for i in 0..N {
                            let _ = tx.send(Msg([i; 8]));
                        }
                    });
                    for _ in 0..N {
                        black_box(rx.recv().expect("recv"));
                    }
                    p.join().expect("producer panicked");
                    total += start.elapsed();
                }
                total
            })
        });
    }
    g.finish();
}

fn sleep(c: &mut Criterion) {
    let mut g = c.benchmark_group("fence_sleep");
    for (name, mode) in MODES {
        g.bench_function(name, |b| {
            with_mode(mode);
            b.iter(heavy_fence)
        });
    }
    g.finish();
}

/// A fixed amount of dependent work, about a few microseconds.
fn work() -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..2_000 {
        x = black_box(x.rotate_left(7) ^ x.wrapping_mul(0x2545_f491_4f6c_dd1d));
    }
    x
}

fn bystander(c: &mut Criterion) {
    let mut g = c.benchmark_group("fence_bystander");
    for (name, mode) in MODES {
        g.bench_function(name, |b| {
            with_mode(mode);
            let stop = Arc::new(AtomicBool::new(false));
            let sleeper = {
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        heavy_fence();
                        let until = Instant::now() + Duration::from_micros(10);
                        while Instant::now() < until {
                            std::hint::spin_loop();
                        }
                    }
                })
            };
            b.iter(work);
            stop.store(true, Ordering::Relaxed);
            sleeper.join().expect("sleeper panicked");
        });
    }
    g.finish();
}

criterion_group!(benches, stream, sleep, bystander);
criterion_main!(benches);
