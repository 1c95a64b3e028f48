//! The examples that run as several processes: the demo (`examples/demo.rs`)
//! ends cleanly (exit 0, every child PID it printed gone, and a dashboard
//! killed mid-run takes its children with it), and `examples/lossless.rs`
//! delivers 200,000 messages between two processes with none lost and in
//! order. Each builds its example with cargo first (a no-op when fresh).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Far above a run on a loaded machine; waits end as soon as they can.
const BOUND: Duration = Duration::from_secs(60);

/// Builds `example` (a no-op when it is fresh: `cargo test` alone builds
/// examples only when it builds every target) and returns its path.
fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().unwrap().parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--package", "dndm", "--example", name]);
    if profile.ends_with("release") {
        cmd.arg("--release");
    }
    assert!(cmd.status().unwrap().success(), "cannot build {name}");
    profile.join("examples").join(name)
}

fn demo_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| example("demo")).clone()
}

fn start(secs: u64) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(demo_binary())
        .env("DNDM_DEMO_SECS", secs.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// The PID of a `started <role> pid <pid>` line.
fn child_pid(line: &str) -> Option<u32> {
    let rest = line.strip_prefix("started ")?;
    rest.split_whitespace().last()?.parse().ok()
}

/// Still running: present in /proc and not a zombie (a zombie has exited;
/// an orphan's is reaped by whoever adopted it).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
    }
}

fn wait_gone(pids: &[u32]) {
    let deadline = Instant::now() + BOUND;
    while pids.iter().any(|&p| running(p)) {
        assert!(Instant::now() < deadline, "children left behind: {pids:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn demo_exits_zero_and_reaps_every_child() {
    let (mut child, lines) = start(1);
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the demo did not end within {BOUND:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let out: Vec<String> = lines.iter().collect();
    let pids: Vec<u32> = out.iter().filter_map(|l| child_pid(l)).collect();
    assert!(
        status.success(),
        "demo failed: {status}\n{}",
        out.join("\n")
    );
    assert_eq!(pids.len(), 5, "{}", out.join("\n"));
    assert!(
        out.iter().any(|l| l.contains("robot.Cmd@robot.plan.cmd")),
        "no table: {}",
        out.join("\n")
    );
    assert!(out.iter().any(|l| l.contains("all 5 children reaped")));
    for p in pids {
        assert!(!running(p), "child {p} still running after the demo exited");
    }
}

#[test]
fn children_exit_when_the_dashboard_is_killed() {
    let (mut child, lines) = start(60);
    let mut pids = Vec::new();
    let deadline = Instant::now() + BOUND;
    while pids.len() < 5 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = lines.recv_timeout(left) else {
            let _ = child.kill();
            panic!("the demo did not start its children");
        };
        pids.extend(child_pid(&line));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    wait_gone(&pids);
}

#[test]
fn two_hundred_thousand_messages_between_processes_none_lost_in_order() {
    let mut child = Command::new(example("lossless"))
        .arg("200000")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("200,000 messages took more than {BOUND:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "{status}: {out}");
    assert!(
        out.contains("200000 received, 0 lost, 0 out of order"),
        "{out}"
    );
}
