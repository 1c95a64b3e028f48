//! `cargo xtask demo`: a sensor pipeline on dndm's channel core.
//!
//! Two IMU threads publish samples; a fusion stage (fan-in, `Block`) merges
//! them and republishes an estimate to a planner (`Block`) and to a
//! dashboard that keeps only the latest samples (`DropOldest`, fan-out).
//! Every second the demo prints live rates, and at the end a table of
//! messages/s, end-to-end latency percentiles and drops per stage.
#![allow(
    clippy::disallowed_types,
    reason = "the sync-shim rule is for dndm library code; examples use std like users do"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use dndm::core::{Config, Policy, Receiver, Sender, Stats, channel};

/// An IMU sample: 64 bytes on the wire of a real robot.
#[derive(Clone, Copy)]
struct Imu {
    sensor: u8,
    seq: u64,
    stamp: Instant,
    accel: [f32; 3],
    gyro: [f32; 3],
}

/// The fused estimate, shared by reference between its consumers.
struct Estimate {
    stamp: Instant,
    tilt: f32,
}

const RUN: Duration = Duration::from_secs(3);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stop = Arc::new(AtomicBool::new(false));
    let (imu_tx, fusion_rx) = channel::<Imu>(Config::new(1024))?;
    let (est_tx, planner_rx) = channel::<Arc<Estimate>>(Config::new(1024))?;
    let dashboard_rx = est_tx.subscribe(Config::new(8).policy(Policy::DropOldest))?;

    let sensors: Vec<_> = (0..2u8)
        .map(|id| {
            let tx = imu_tx.clone();
            let stop = Arc::clone(&stop);
            thread::spawn(move || sensor(id, &tx, &stop))
        })
        .collect();
    drop(imu_tx);
    let fusion = thread::spawn(move || fusion(&fusion_rx, &est_tx));
    let planner = thread::spawn(move || consume(&planner_rx, Duration::ZERO));
    // The dashboard is slow on purpose: it renders at most every 2 ms.
    let dashboard = thread::spawn(move || consume(&dashboard_rx, Duration::from_millis(2)));

    let started = Instant::now();
    while started.elapsed() < RUN {
        thread::sleep(Duration::from_secs(1));
        println!("t={:>4.1}s  running…", started.elapsed().as_secs_f64());
    }
    stop.store(true, Ordering::Relaxed);
    let mut sent = 0;
    for s in sensors {
        sent += s.join().map_err(|_| "sensor thread panicked")?;
    }
    let fusion_stats = fusion.join().map_err(|_| "fusion thread panicked")?;
    let planner = planner.join().map_err(|_| "planner thread panicked")?;
    let dashboard = dashboard.join().map_err(|_| "dashboard thread panicked")?;
    let secs = started.elapsed().as_secs_f64();

    println!();
    println!(
        "{:<22} {:>12} {:>10} {:>10} {:>10}",
        "stage", "msgs/s", "p50", "p99", "dropped"
    );
    println!(
        "{:<22} {:>12.0} {:>10} {:>10} {:>10}",
        "imu x2 -> fusion",
        sent as f64 / secs,
        "-",
        "-",
        fusion_stats.dropped
    );
    for (name, r) in [
        ("fusion -> planner", &planner),
        ("fusion -> dashboard", &dashboard),
    ] {
        println!(
            "{:<22} {:>12.0} {:>10} {:>10} {:>10}",
            name,
            r.received as f64 / secs,
            fmt_ns(r.p50),
            fmt_ns(r.p99),
            r.stats.dropped
        );
    }
    Ok(())
}

fn sensor(id: u8, tx: &Sender<Imu>, stop: &AtomicBool) -> u64 {
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        let sample = Imu {
            sensor: id,
            seq,
            stamp: Instant::now(),
            accel: [0.0, 0.0, 9.81],
            gyro: [0.01 * f32::from(id), 0.0, 0.0],
        };
        // A batch of 64 samples per wake-up check, as a driver reading a FIFO would.
        let batch = (0..64).map(|k| Imu {
            seq: seq + k,
            ..sample
        });
        match tx.send_iter(batch) {
            Ok(n) => seq += n as u64,
            Err(_) => break,
        }
    }
    seq
}

fn fusion(rx: &Receiver<Imu>, tx: &Sender<Arc<Estimate>>) -> Stats {
    let mut last_seq = [0u64; 2];
    let mut batch = Vec::with_capacity(256);
    while rx.recv_batch(&mut batch, 256).is_ok() {
        for s in batch.drain(..) {
            // Per-sender order is guaranteed: sequence numbers only grow.
            debug_assert!(s.seq >= last_seq[usize::from(s.sensor)]);
            last_seq[usize::from(s.sensor)] = s.seq;
            let tilt = (s.accel[0] + s.gyro[0]).atan2(s.accel[2]);
            if tx
                .send(Arc::new(Estimate {
                    stamp: s.stamp,
                    tilt,
                }))
                .is_err()
            {
                return rx.stats();
            }
        }
    }
    rx.stats()
}

struct Report {
    received: u64,
    p50: u64,
    p99: u64,
    stats: Stats,
}

fn consume(rx: &Receiver<Arc<Estimate>>, pause: Duration) -> Report {
    let mut lat = Vec::new();
    let mut received = 0u64;
    let mut sink = 0.0f32;
    while let Ok(e) = rx.recv() {
        received += 1;
        sink += e.tilt;
        // Keep a bounded sample of latencies: every 64th message.
        if received.is_multiple_of(64) && lat.len() < 1 << 20 {
            lat.push(e.stamp.elapsed().as_nanos() as u64);
        }
        if !pause.is_zero() {
            thread::sleep(pause);
        }
    }
    std::hint::black_box(sink);
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0)
    };
    Report {
        received,
        p50: pct(0.50),
        p99: pct(0.99),
        stats: rx.stats(),
    }
}

fn fmt_ns(ns: u64) -> String {
    match ns {
        0..=9_999 => format!("{ns}ns"),
        10_000..=9_999_999 => format!("{:.1}us", ns as f64 / 1e3),
        _ => format!("{:.1}ms", ns as f64 / 1e6),
    }
}
