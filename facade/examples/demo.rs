//! `cargo xtask demo`: an in-process robot pipeline on the Node API.
//!
//! Two IMUs publish on `robot.imu.left` / `robot.imu.right`; a fusion stage
//! subscribes to `robot.imu.*` (fan-in) and publishes a pose; a planner turns
//! poses into commands for an actuator; a dashboard keeps only the latest
//! poses (`DropOldest`, so it shows drops); a map service answers requests.
//! After a few seconds (`DNDM_DEMO_SECS`, default 3) it prints, per route,
//! messages/s, p50/p99 latency from publish to receive, and drops.
#![allow(
    clippy::disallowed_types,
    reason = "the sync-shim rule is for dndm library code; examples use std like users do"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use dndm::now_ns;
use dndm::prelude::*;
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug)]
#[message(name = "robot.Imu")]
struct Imu {
    sensor: u32,
    accel: [f32; 3],
    gyro: [f32; 3],
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug)]
#[message(name = "robot.Pose")]
struct Pose {
    x: f32,
    y: f32,
    theta: f32,
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug)]
#[message(name = "robot.Cmd")]
struct Cmd {
    v: f32,
    w: f32,
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug)]
#[message(name = "robot.MapQuery")]
struct MapQuery {
    x: f32,
    y: f32,
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug)]
#[message(name = "robot.MapCell")]
struct MapCell {
    occupied: bool,
}

/// Latencies and counts of one route, as seen by one consumer.
#[derive(Default)]
struct Record {
    route: String,
    latencies: Vec<u64>,
    drops: u64,
}

impl Record {
    fn new(route: &str) -> Self {
        Self {
            route: route.into(),
            ..Self::default()
        }
    }

    fn add<T>(&mut self, s: &Sample<T>) {
        self.latencies.push(now_ns().saturating_sub(s.stamp_ns()));
    }
}

fn main() -> Result<(), dndm::Error> {
    let secs: u64 = std::env::var("DNDM_DEMO_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let node = Node::new("robot");
    let stop = Arc::new(AtomicBool::new(false));
    let mut stages = Vec::new();

    // Map service, two servers sharing the requests.
    let servers: Vec<_> = (0..2)
        .map(|_| {
            node.serve::<MapQuery, MapCell, _>("robot.map.query", |q| MapCell {
                occupied: (q.x * q.y) > 100.0,
            })
        })
        .collect::<Result<_, _>>()?;

    // Subscribers first, so nothing is published into the void.
    let fusion_in =
        node.subscribe_with::<Imu>("robot.imu.*", SubscribeOptions::new().capacity(1024))?;
    let planner_in = node.subscribe::<Pose>("robot.fusion.pose")?;
    let actuator_in = node.subscribe::<Cmd>("robot.plan.cmd")?;
    let dashboard = node.subscribe_with::<Pose>(
        "robot.**",
        SubscribeOptions::new()
            .capacity(4)
            .policy(Policy::DropOldest),
    )?;

    // Sensors: 2 IMUs at ~20 kHz each, in bursts of 20 per millisecond.
    for (i, side) in ["left", "right"].into_iter().enumerate() {
        let imu = node.publish::<Imu>(&format!("robot.imu.{side}"))?;
        let stop = Arc::clone(&stop);
        stages.push(thread::spawn(move || -> Record {
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..20 {
                    let m = Imu {
                        sensor: i as u32,
                        accel: [0.0, 0.0, 9.81],
                        gyro: [0.01, 0.0, 0.0],
                    };
                    let _ = imu.send(m);
                }
                next += Duration::from_millis(1);
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    thread::sleep(d);
                }
            }
            Record::new("")
        }));
    }

    // Fusion: fan-in of both IMUs, one pose per 10 IMU samples.
    let pose = node.publish::<Pose>("robot.fusion.pose")?;
    let s = Arc::clone(&stop);
    stages.push(thread::spawn(move || {
        let mut rec = Record::new("robot.Imu@robot.imu.*");
        let (mut theta, mut n) = (0.0f32, 0u64);
        while !s.load(Ordering::Relaxed) {
            let Ok(imu) = fusion_in.recv_timeout(Duration::from_millis(50)) else {
                continue;
            };
            rec.add(&imu);
            theta += imu.gyro[0] * 0.001;
            n += 1;
            if n.is_multiple_of(10) {
                let _ = pose.send(Pose {
                    x: n as f32 * 0.001,
                    y: 0.0,
                    theta,
                });
            }
        }
        rec.drops = fusion_in.stats().dropped;
        rec
    }));

    // Planner: pose → command, and a map query every 100 poses.
    let cmd = node.publish::<Cmd>("robot.plan.cmd")?;
    let map = node
        .client::<MapQuery, MapCell>("robot.map.query")
        .map_err(dndm::Error::from)?;
    let s = Arc::clone(&stop);
    let planner = thread::spawn(move || {
        let mut rec = Record::new("robot.Pose@robot.fusion.pose");
        let mut calls = Record::new("robot.MapQuery@robot.map.query (call)");
        let mut n = 0u64;
        while !s.load(Ordering::Relaxed) {
            let Ok(p) = planner_in.recv_timeout(Duration::from_millis(50)) else {
                continue;
            };
            rec.add(&p);
            n += 1;
            if n.is_multiple_of(100) {
                let t0 = now_ns();
                if map
                    .call(MapQuery { x: p.x, y: p.y }, Duration::from_millis(100))
                    .is_ok()
                {
                    calls.latencies.push(now_ns() - t0);
                } else {
                    calls.drops += 1;
                }
            }
            let _ = cmd.send(Cmd {
                v: 0.5,
                w: -p.theta,
            });
        }
        rec.drops = planner_in.stats().dropped;
        (rec, calls)
    });

    let s = Arc::clone(&stop);
    let actuator = thread::spawn(move || {
        let mut rec = Record::new("robot.Cmd@robot.plan.cmd");
        while !s.load(Ordering::Relaxed) {
            if let Ok(c) = actuator_in.recv_timeout(Duration::from_millis(50)) {
                rec.add(&c);
            }
        }
        rec.drops = actuator_in.stats().dropped;
        rec
    });

    let s = Arc::clone(&stop);
    let dash = thread::spawn(move || {
        let mut rec = Record::new("robot.Pose@robot.** (dashboard, DropOldest 4)");
        while !s.load(Ordering::Relaxed) {
            // A slow consumer: looks every 5 ms.
            thread::sleep(Duration::from_millis(5));
            while let Ok(p) = dashboard.try_recv() {
                rec.add(&p);
            }
        }
        rec.drops = dashboard.stats().dropped;
        rec
    });

    println!("dndm demo: running the robot pipeline for {secs} s ...");
    let start = Instant::now();
    thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();

    let mut rows = Vec::new();
    let fusion = stages.pop();
    for sensor in stages {
        let _ = sensor.join();
    }
    if let Some(f) = fusion.and_then(|h| h.join().ok()) {
        rows.push(f);
    }
    if let Ok((p, c)) = planner.join() {
        rows.push(p);
        rows.push(c);
    }
    rows.extend(actuator.join().ok());
    rows.extend(dash.join().ok());
    drop(servers);

    println!(
        "{:<48} {:>12} {:>10} {:>10} {:>8}",
        "route", "msgs/s", "p50 µs", "p99 µs", "drops"
    );
    for mut r in rows {
        r.latencies.sort_unstable();
        let pct = |q: f64| {
            r.latencies
                .get(((r.latencies.len() as f64 - 1.0) * q).round() as usize)
                .map_or(0.0, |&ns| ns as f64 / 1000.0)
        };
        println!(
            "{:<48} {:>12.0} {:>10.1} {:>10.1} {:>8}",
            r.route,
            r.latencies.len() as f64 / elapsed,
            pct(0.5),
            pct(0.99),
            r.drops
        );
    }
    let st = node.stats();
    println!(
        "node {}: {} handler panics, {} callback panics, {} links",
        node.name(),
        st.handler_panics,
        st.callback_panics,
        st.links
    );
    Ok(())
}
