//! The timestamp clock is one clock for every process on the host: a stamp
//! taken in another process falls between two reads taken around it here.

use std::process::Command;

use dndm_core::clock::{is_system_wide, now_ns};

const CHILD_ENV: &str = "DNDM_CLOCK_CHILD";

/// Run as a child process by `stamps_from_another_process_are_comparable`;
/// prints one stamp. Does nothing when run as an ordinary test.
#[test]
fn child_prints_a_stamp() {
    if std::env::var_os(CHILD_ENV).is_some() {
        // On a line of its own: libtest may have printed the test name before.
        println!("\nstamp={}", now_ns());
    }
}

#[test]
fn stamps_from_another_process_are_comparable() {
    if !is_system_wide() {
        return;
    }
    let exe = std::env::current_exe().expect("the test binary knows its path");
    for _ in 0..3 {
        let before = now_ns();
        let out = Command::new(&exe)
            .args([
                "--exact",
                "child_prints_a_stamp",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .output()
            .expect("the test binary runs as a child");
        let after = now_ns();
        assert!(out.status.success(), "child failed: {out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stamp: u64 = stdout
            .lines()
            .find_map(|l| l.split_once("stamp=").map(|(_, v)| v))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no stamp in the child's output: {stdout}"));
        assert!(
            before <= stamp && stamp <= after,
            "the child's stamp {stamp} is outside [{before}, {after}]"
        );
    }
}

/// On Linux std's `Instant` is `CLOCK_MONOTONIC` too.
#[cfg(target_os = "linux")]
#[test]
fn matches_the_os_monotonic_clock_exactly() {
    // std's Instant reads the same OS clock; an Instant taken between two of
    // our reads must be bracketed by them. Instant is opaque, so compare
    // differences: the elapsed time seen by both clocks over the same span
    // differs by at most the span of the bracketing reads.
    let a0 = now_ns();
    let i0 = std::time::Instant::now();
    let a1 = now_ns();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let b0 = now_ns();
    let i1 = std::time::Instant::now();
    let b1 = now_ns();
    let os = u64::try_from(i1.duration_since(i0).as_nanos()).unwrap_or(u64::MAX);
    // Ours, measured as widely and as narrowly as the brackets allow.
    let widest = b1 - a0;
    let narrowest = b0.saturating_sub(a1);
    assert!(
        narrowest <= os && os <= widest,
        "os {os} ns not within ours [{narrowest}, {widest}] ns"
    );
}
