//! `cargo xtask demo`: the robot pipeline as six processes on loopback TCP.
//!
//! The binary started without arguments is the **dashboard**: it listens on
//! `tcp://127.0.0.1:0` and starts itself again once per role, with
//! `--role NAME --connect URI...`. Every child listens on a port of its own
//! and connects to the dashboard and to every child started before it, so the
//! nodes form a full mesh (a node forwards only its own declarations).
//!
//! * `sensors`: two IMUs publish `robot.imu.left` / `robot.imu.right`, about
//!   20 kHz each, in bursts of 20 per millisecond;
//! * `fusion`: subscribes to `robot.imu.*` (fan-in), publishes a pose per
//!   10 samples on `robot.fusion.pose`;
//! * `planner`: turns poses into commands on `robot.plan.cmd`, and asks the
//!   map about every 100th pose;
//! * `actuator`: receives the commands;
//! * `map`: the map service, served with request/reply on
//!   `robot.MapQuery@robot.map` (`Node::serve`); the planner calls it across
//!   processes (`Client::call`) with a 100 ms timeout and counts a miss
//!   otherwise;
//! * the dashboard itself keeps only the latest poses of `robot.**`
//!   (`DropOldest`, capacity 4, so it shows drops).
//!
//! After `DNDM_DEMO_SECS` seconds (default 3) the dashboard publishes
//! `demo.Control@demo.control`; each child stops, publishes what it measured
//! (`demo.RouteStats@demo.stats.<role>`) and waits for its stdin to close.
//! The dashboard prints, per route, messages/s, p50/p99 latency from publish
//! to receive (`now_ns() - stamp_ns()`, one host-wide clock) and drops,
//! closes the children's stdin, waits for them (bounded), kills by PID any
//! that remain and reaps them all.
//!
//! A child exits on its own when its stdin reaches end of file (at most 2 s
//! later, even in the middle of setting up) or the dashboard disconnects,
//! so a dashboard killed or interrupted (Ctrl-C reaches the whole
//! foreground process group) leaves no process behind; a watchdog ends any
//! child `DNDM_DEMO_SECS + 30` seconds after it started.
#![allow(
    clippy::disallowed_types,
    reason = "the sync-shim rule is for dndm library code; examples use std like users do"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use dndm::prelude::*;
use dndm::{PeerEventKind, now_ns};
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
    id: u64,
    x: f32,
    y: f32,
    /// When the planner asked (`now_ns`), for the map's one-way latency.
    sent_ns: u64,
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug)]
#[message(name = "robot.MapCell")]
struct MapCell {
    id: u64,
    occupied: bool,
}

/// The dashboard's order to stop and report.
#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug)]
#[message(name = "demo.Control")]
struct Control {
    stop: bool,
}

/// What one role measured on one route.
#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug)]
#[message(name = "demo.RouteStats")]
struct RouteStats {
    role: String,
    route: String,
    count: u64,
    elapsed_ns: u64,
    p50_ns: u64,
    p99_ns: u64,
    drops: u64,
    /// How many rows this role sends in all.
    of: u32,
}

/// The children, in start order: consumers before producers.
const ROLES: [&str; 5] = ["actuator", "map", "planner", "fusion", "sensors"];
/// The dashboard's node name; children watch for its disconnection.
const DASHBOARD: &str = "dashboard";
/// Bound on every setup and shutdown wait.
const BOUND: Duration = Duration::from_secs(10);

type Result<T = (), E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

fn secs() -> u64 {
    std::env::var("DNDM_DEMO_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

fn main() -> Result {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut role = None;
    let mut connect = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--role" => role = it.next().cloned(),
            "--connect" => connect.push(it.next().ok_or("--connect needs a URI")?.clone()),
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    match role {
        Some(r) => child(&r, &connect),
        None => dashboard(),
    }
}

// ---------------------------------------------------------------------------
// The dashboard (parent)

struct Running {
    role: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
}

fn dashboard() -> Result {
    let secs = secs();
    let node = Node::builder(DASHBOARD).build()?;
    let addr = node.listen("tcp://127.0.0.1:0")?.to_string();
    let stats =
        node.subscribe_with::<RouteStats>("demo.stats.*", SubscribeOptions::new().capacity(256))?;
    let control = node.publish::<Control>("demo.control")?;
    let poses = node.subscribe_with::<Pose>(
        "robot.**",
        SubscribeOptions::new()
            .capacity(4)
            .policy(Policy::DropOldest),
    )?;
    println!("dndm demo: dashboard pid {} on {addr}", std::process::id());

    let mut children: Vec<Running> = Vec::new();
    let started = start_children(&addr, &mut children);
    let result = started.and_then(|()| run_dashboard(secs, &control, &stats, &poses, &children));
    stop_children(&mut children);
    result
}

/// Starts each role, waiting for its `ready <addr>` line before the next, so
/// that every child can connect to those before it.
fn start_children(dashboard: &str, children: &mut Vec<Running>) -> Result {
    let exe = std::env::current_exe()?;
    let mut addrs = vec![dashboard.to_string()];
    for role in ROLES {
        let mut cmd = Command::new(&exe);
        cmd.args(["--role", role]);
        for a in &addrs {
            cmd.args(["--connect", a]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        println!("started {role:<8} pid {}", child.id());
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        children.push(Running { role, child, stdin });
        let mut line = String::new();
        BufReader::new(stdout.ok_or("no stdout")?).read_line(&mut line)?;
        let addr = line
            .strip_prefix("ready ")
            .ok_or_else(|| format!("{role} did not start: `{}`", line.trim()))?;
        addrs.push(addr.trim().to_string());
    }
    Ok(())
}

fn run_dashboard(
    secs: u64,
    control: &Publisher<Control>,
    stats: &Subscriber<RouteStats>,
    poses: &Subscriber<Pose>,
    children: &[Running],
) -> Result {
    // Every child subscribes to the control route once its mesh is up.
    let deadline = Instant::now() + BOUND;
    while control.interest_count() < children.len() {
        if Instant::now() > deadline {
            return Err("children did not all subscribe to demo.control".into());
        }
        thread::sleep(Duration::from_millis(5));
    }
    println!("dndm demo: running the robot pipeline for {secs} s ...");
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut dash = Vec::new();
    while Instant::now() < end {
        // A slow consumer: looks every 5 ms.
        thread::sleep(Duration::from_millis(5));
        while let Ok(p) = poses.try_recv() {
            dash.push(now_ns().saturating_sub(p.stamp_ns()));
        }
    }
    let elapsed = start.elapsed().as_nanos() as u64;
    let mut rows = vec![row(
        DASHBOARD,
        "robot.Pose@robot.** (DropOldest 4)",
        dash,
        elapsed,
        poses.stats().dropped,
        1,
    )];
    control
        .send(Control { stop: true })
        .map_err(|_| "cannot send demo.Control")?;

    // Each role's rows, until every role has sent all of its own.
    let mut want: Vec<(String, u32, u32)> = Vec::new();
    let deadline = Instant::now() + BOUND;
    while want.len() < children.len() || want.iter().any(|(_, got, of)| got < of) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(s) = stats.recv_timeout(left.min(Duration::from_millis(100))) else {
            if left.is_zero() {
                eprintln!("dndm demo: some children did not report in time");
                break;
            }
            continue;
        };
        match want.iter_mut().find(|(r, _, _)| *r == s.role) {
            Some(w) => w.1 += 1,
            None => want.push((s.role.clone(), 1, s.of)),
        }
        rows.push(s.into_inner());
    }
    print_table(&mut rows);
    Ok(())
}

fn print_table(rows: &mut [RouteStats]) {
    let order = |r: &str| ROLES.iter().rev().position(|x| *x == r).unwrap_or(9);
    rows.sort_by_key(|r| order(&r.role));
    println!(
        "{:<9} {:<44} {:>10} {:>9} {:>9} {:>7}",
        "process", "route (as received there)", "msgs/s", "p50 µs", "p99 µs", "drops"
    );
    for r in rows.iter() {
        let us = |ns: u64| {
            if r.route.ends_with("(sent)") {
                "-".to_string()
            } else {
                format!("{:.1}", ns as f64 / 1e3)
            }
        };
        println!(
            "{:<9} {:<44} {:>10.0} {:>9} {:>9} {:>7}",
            r.role,
            r.route,
            r.count as f64 * 1e9 / r.elapsed_ns.max(1) as f64,
            us(r.p50_ns),
            us(r.p99_ns),
            r.drops
        );
    }
}

/// Closes every child's stdin (its signal to exit), waits for them within
/// `BOUND`, kills by PID those still running and reaps them all.
fn stop_children(children: &mut [Running]) {
    for c in children.iter_mut() {
        drop(c.stdin.take());
    }
    let deadline = Instant::now() + BOUND;
    for c in children.iter_mut() {
        loop {
            match c.child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        eprintln!("dndm demo: {} exited with {status}", c.role);
                    }
                    break;
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => {
                    eprintln!("dndm demo: killing {} (pid {})", c.role, c.child.id());
                    let _ = c.child.kill();
                    let _ = c.child.wait();
                    break;
                }
            }
        }
    }
    let pids: Vec<String> = children.iter().map(|c| c.child.id().to_string()).collect();
    println!(
        "dndm demo: all {} children reaped ({})",
        pids.len(),
        pids.join(" ")
    );
}

// ---------------------------------------------------------------------------
// The children

/// When a child stops working (`stop`) and when it exits (`exit`).
#[derive(Clone, Default)]
struct Flags {
    stop: Arc<AtomicBool>,
    exit: Arc<AtomicBool>,
}

impl Flags {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.exit.load(Ordering::Relaxed)
    }
}

fn child(role: &str, connect: &[String]) -> Result {
    let secs = secs();
    // The watchdog: never outlive the run by much, whatever happens.
    thread::spawn(move || {
        thread::sleep(Duration::from_secs(secs + 30));
        eprintln!("dndm demo: child watchdog fired");
        std::process::exit(2);
    });
    let flags = Flags::default();
    // Stdin reaching end of file: the dashboard closed it or is gone.
    let f = flags.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        f.exit.store(true, Ordering::Relaxed);
        // Still setting up (waiting for peers that may never come) or stuck:
        // do not wait for the bounded waits to run out.
        thread::sleep(Duration::from_secs(2));
        std::process::exit(0);
    });

    let mut builder = Node::builder(role);
    for c in connect {
        builder = builder.connect(c)?;
    }
    let node = builder.build()?;
    let addr = node.listen("tcp://127.0.0.1:0")?;
    if !node.wait_for_peers(connect.len(), Some(BOUND)) {
        return Err(format!("{role}: could not reach its peers").into());
    }
    let report = node.publish::<RouteStats>(&format!("demo.stats.{role}"))?;
    let control = node.subscribe::<Control>("demo.control")?;
    let watch = node.clone();
    let f = flags.clone();
    let events = thread::spawn(move || watch_peers(&watch, &control, &f));

    let work = start_role(role, &node, &flags)?;
    println!("ready {addr}");
    std::io::stdout().flush()?;

    while !flags.stopped() {
        thread::sleep(Duration::from_millis(5));
    }
    flags.stop.store(true, Ordering::Relaxed);
    let rows = work.join().map_err(|_| format!("{role} panicked"))?;
    let of = rows.len() as u32;
    for mut r in rows {
        r.role = role.into();
        r.of = of;
        let _ = report.send(r);
    }
    // Wait for the dashboard to let go (stdin closed or disconnected).
    let deadline = Instant::now() + BOUND;
    while !flags.exit.load(Ordering::Relaxed) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    flags.exit.store(true, Ordering::Relaxed);
    let _ = events.join();
    Ok(())
}

/// Sets `stop` on `demo.Control`, `exit` when the dashboard disconnects.
fn watch_peers(node: &Node, control: &Subscriber<Control>, flags: &Flags) {
    while !flags.exit.load(Ordering::Relaxed) {
        if control.try_recv().is_ok() {
            flags.stop.store(true, Ordering::Relaxed);
        }
        if let Some(ev) = node.next_peer_event(Some(Duration::from_millis(20)))
            && matches!(ev.kind, PeerEventKind::Disconnected { .. })
            && ev.name() == DASHBOARD
        {
            flags.exit.store(true, Ordering::Relaxed);
        }
    }
}

/// Latencies and drops of one route as one consumer saw it.
fn row(
    role: &str,
    route: &str,
    mut lat: Vec<u64>,
    elapsed_ns: u64,
    drops: u64,
    of: u32,
) -> RouteStats {
    lat.sort_unstable();
    let pct = |q: f64| {
        lat.get(((lat.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    RouteStats {
        role: role.into(),
        route: route.into(),
        count: lat.len() as u64,
        elapsed_ns,
        p50_ns: pct(0.5),
        p99_ns: pct(0.99),
        drops,
        of,
    }
}

/// One consumer's latencies, and the time since its first sample (so a
/// stage that waited for its producers to start still reports their rate).
#[derive(Default)]
struct Meter {
    lats: Vec<u64>,
    first: Option<Instant>,
}

impl Meter {
    fn add_ns(&mut self, ns: u64) {
        self.first.get_or_insert_with(Instant::now);
        self.lats.push(ns);
    }

    fn add<T>(&mut self, s: &Sample<T>) {
        self.add_ns(now_ns().saturating_sub(s.stamp_ns()));
    }

    fn row(self, route: &str, drops: u64) -> RouteStats {
        let elapsed = self.first.map_or(1, |t| t.elapsed().as_nanos() as u64);
        row("", route, self.lats, elapsed, drops, 0)
    }
}

type Work = thread::JoinHandle<Vec<RouteStats>>;

fn start_role(role: &str, node: &Node, flags: &Flags) -> Result<Work> {
    let f = flags.clone();
    Ok(match role {
        "sensors" => {
            let pubs =
                ["left", "right"].map(|side| node.publish::<Imu>(&format!("robot.imu.{side}")));
            let [l, r] = pubs;
            let pubs = [l?, r?];
            for p in &pubs {
                p.wait_for_interest(Some(BOUND));
            }
            let start = Instant::now();
            thread::spawn(move || {
                let mut next = Instant::now();
                while !f.stopped() {
                    for _ in 0..20 {
                        for (i, p) in pubs.iter().enumerate() {
                            let _ = p.send(Imu {
                                sensor: i as u32,
                                accel: [0.0, 0.0, 9.81],
                                gyro: [0.01, 0.0, 0.0],
                            });
                        }
                    }
                    next += Duration::from_millis(1);
                    if let Some(d) = next.checked_duration_since(Instant::now()) {
                        thread::sleep(d);
                    }
                }
                // Sent counts: the route as published, no latency.
                pubs.iter()
                    .map(|p| {
                        let mut r = row("", &format!("{} (sent)", p.route()), vec![], 1, 0, 0);
                        r.count = p.sent();
                        r.elapsed_ns = start.elapsed().as_nanos() as u64;
                        r.drops = p.dropped();
                        r
                    })
                    .collect()
            })
        }
        "fusion" => {
            let input =
                node.subscribe_with::<Imu>("robot.imu.*", SubscribeOptions::new().capacity(1024))?;
            let pose = node.publish::<Pose>("robot.fusion.pose")?;
            thread::spawn(move || {
                let (mut m, mut theta, mut n) = (Meter::default(), 0.0f32, 0u64);
                while !f.stopped() {
                    let Ok(imu) = input.recv_timeout(Duration::from_millis(20)) else {
                        continue;
                    };
                    m.add(&imu);
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
                let d = input.stats().dropped;
                vec![m.row("robot.Imu@robot.imu.*", d)]
            })
        }
        "planner" => {
            let input = node.subscribe_with::<Pose>(
                "robot.fusion.pose",
                SubscribeOptions::new().capacity(1024),
            )?;
            let cmd = node.publish::<Cmd>("robot.plan.cmd")?;
            let map = node.client::<MapQuery, MapCell>("robot.map")?;
            thread::spawn(move || {
                let (mut m, mut calls, mut misses, mut n) =
                    (Meter::default(), Meter::default(), 0, 0u64);
                while !f.stopped() {
                    let Ok(p) = input.recv_timeout(Duration::from_millis(20)) else {
                        continue;
                    };
                    m.add(&p);
                    n += 1;
                    if n.is_multiple_of(100) {
                        let t0 = now_ns();
                        let q = MapQuery {
                            id: n,
                            x: p.x,
                            y: p.y,
                            sent_ns: t0,
                        };
                        let answered = map
                            .call(q, Duration::from_millis(100))
                            .is_ok_and(|cell| cell.id == n);
                        if answered {
                            calls.add_ns(now_ns() - t0);
                        } else {
                            misses += 1;
                        }
                    }
                    let _ = cmd.send(Cmd {
                        v: 0.5,
                        w: -p.theta,
                    });
                }
                let d = input.stats().dropped;
                vec![
                    m.row("robot.Pose@robot.fusion.pose", d),
                    calls.row("robot.map call round trip (misses)", misses),
                ]
            })
        }
        "map" => {
            let meter = Arc::new(std::sync::Mutex::new(Meter::default()));
            let seen = Arc::clone(&meter);
            let server = node.serve("robot.map", move |q: MapQuery| {
                if let Ok(mut m) = seen.lock() {
                    m.add_ns(now_ns().saturating_sub(q.sent_ns));
                }
                MapCell {
                    id: q.id,
                    occupied: (q.x * q.y) > 100.0,
                }
            })?;
            thread::spawn(move || {
                while !f.stopped() {
                    thread::sleep(Duration::from_millis(20));
                }
                drop(server);
                let m = std::mem::take(&mut *meter.lock().unwrap_or_else(|e| e.into_inner()));
                vec![m.row("robot.MapQuery@robot.map (requests)", 0)]
            })
        }
        "actuator" => {
            let input = node
                .subscribe_with::<Cmd>("robot.plan.cmd", SubscribeOptions::new().capacity(1024))?;
            thread::spawn(move || {
                let mut m = Meter::default();
                while !f.stopped() {
                    if let Ok(c) = input.recv_timeout(Duration::from_millis(20)) {
                        m.add(&c);
                    }
                }
                let d = input.stats().dropped;
                vec![m.row("robot.Cmd@robot.plan.cmd", d)]
            })
        }
        other => return Err(format!("unknown role `{other}`").into()),
    })
}
