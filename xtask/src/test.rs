//! `cargo xtask test [--repeat N] [--seed S]`: the workspace tests, once or
//! N times in a row to hunt for flaky tests.
//!
//! Every run has a seed. It goes to proptest (`PROPTEST_RNG_SEED`) and to any
//! test that reads `DNDM_TEST_SEED`, so a failing run can be replayed exactly.
//! A single run (what CI does) uses [`DEFAULT_SEED`] unless one is given, so
//! CI is deterministic; `--repeat` picks a fresh seed per run to explore, and
//! stops at the first failure, printing the failing tests, the seed and the
//! command that replays it.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::{Result, cargo, target_dir};

/// The seed of a single run when none is given.
pub(crate) const DEFAULT_SEED: u64 = 0x0dd5_eed5;

/// What `cargo xtask test` was asked to do.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    repeat: u32,
    seed: Option<u64>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut opts = Options {
        repeat: 1,
        seed: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a number"))
                .cloned()
        };
        match a.as_str() {
            "--repeat" => {
                let v = value("--repeat")?;
                opts.repeat =
                    v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("--repeat takes a whole number above 0, got `{v}`")
                    })?;
            }
            "--seed" => {
                let v = value("--seed")?;
                opts.seed = Some(
                    v.parse()
                        .map_err(|_| format!("--seed takes a 64-bit number, got `{v}`"))?,
                );
            }
            other => return Err(format!("unknown option `{other}` for `test`")),
        }
    }
    Ok(opts)
}

/// Entry point of `cargo xtask test`.
pub(crate) fn run(args: &[String]) -> Result {
    let opts = parse(args)?;
    if opts.repeat == 1 {
        return run_once(opts.seed.unwrap_or(DEFAULT_SEED), None);
    }
    // Build once so that every run measures the same binaries.
    crate::run(cargo().args(["test", "--workspace", "--locked", "--no-run"]))?;
    let mut seed = opts.seed.unwrap_or_else(fresh_seed);
    let log_dir = target_dir().join("test-repeat");
    std::fs::create_dir_all(&log_dir)
        .map_err(|e| format!("cannot create {}: {e}", log_dir.display()))?;
    let started = Instant::now();
    for i in 1..=opts.repeat {
        eprintln!("\n==> run {i}/{} (seed {seed})", opts.repeat);
        let log = log_dir.join(format!("run-{i}.log"));
        run_once(seed, Some(&log)).map_err(|e| format!("run {i}/{}: {e}", opts.repeat))?;
        seed = next_seed(seed);
    }
    eprintln!(
        "\n{n} of {n} runs passed in {:.0}s",
        started.elapsed().as_secs_f64(),
        n = opts.repeat
    );
    Ok(())
}

/// One `cargo test --workspace` with `seed`; with a log path the output goes
/// there (and the failing tests are named on error), otherwise to the terminal.
fn run_once(seed: u64, log: Option<&std::path::Path>) -> Result {
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--locked"])
        .env("PROPTEST_RNG_SEED", seed.to_string())
        .env("DNDM_TEST_SEED", seed.to_string());
    let Some(log) = log else {
        eprintln!("(seed {seed}: PROPTEST_RNG_SEED / DNDM_TEST_SEED)");
        return crate::run(&mut cmd);
    };
    let mut file =
        std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start cargo test: {e}"))?;
    // Both streams go to the log; stderr is read on a helper thread so that
    // neither pipe can fill up and stall the tests.
    let stderr = child.stderr.take();
    let err_lines = std::thread::spawn(move || {
        stderr
            .map(|s| BufReader::new(s).lines().map_while(|l| l.ok()).collect())
            .unwrap_or_else(Vec::new)
    });
    let mut summary = Summary::default();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
            summary.read(&line);
            let _ = writeln!(file, "{line}");
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("cargo test did not finish: {e}"))?;
    let err_lines: Vec<String> = err_lines.join().unwrap_or_default();
    for line in &err_lines {
        summary.read(line);
        let _ = writeln!(file, "{line}");
    }
    eprintln!(
        "    {} passed, {} failed",
        summary.passed,
        summary.failed.len()
    );
    if status.success() {
        return Ok(());
    }
    let named = if summary.failed.is_empty() {
        "no test named as failed (a build or harness error); see the log".to_string()
    } else {
        summary.failed.join(", ")
    };
    Err(format!(
        "failed: {named}\n  seed: {seed}\n  log: {}\n  replay: PROPTEST_RNG_SEED={seed} DNDM_TEST_SEED={seed} cargo test --workspace",
        log.display()
    ))
}

/// What the libtest output of one run said.
#[derive(Debug, Default)]
struct Summary {
    passed: u64,
    failed: Vec<String>,
}

impl Summary {
    /// Reads one line of `cargo test` output.
    fn read(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("test ") {
            if let Some(name) = rest.strip_suffix(" ... FAILED") {
                self.failed.push(name.to_string());
            } else if rest.ends_with(" ... ok") {
                self.passed += 1;
            }
        }
    }
}

fn fresh_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    next_seed((nanos as u64) ^ u64::from(std::process::id()))
}

/// splitmix64: a well-spread next seed.
fn next_seed(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn options_parse() {
        assert_eq!(
            parse(&[]).unwrap(),
            Options {
                repeat: 1,
                seed: None
            }
        );
        assert_eq!(
            parse(&args(&["--repeat", "20", "--seed", "7"])).unwrap(),
            Options {
                repeat: 20,
                seed: Some(7)
            }
        );
        assert!(parse(&args(&["--repeat", "0"])).is_err());
        assert!(parse(&args(&["--repeat"])).is_err());
        assert!(parse(&args(&["--seed", "x"])).is_err());
        assert!(parse(&args(&["--fast"])).is_err());
    }

    #[test]
    fn summary_names_the_failing_tests() {
        let mut s = Summary::default();
        for line in [
            "running 3 tests",
            "test a::b ... ok",
            "test c ... FAILED",
            "test d ... ignored",
            "test result: FAILED. 1 passed; 1 failed",
        ] {
            s.read(line);
        }
        assert_eq!(s.passed, 1);
        assert_eq!(s.failed, ["c"]);
    }

    #[test]
    fn seeds_differ_run_to_run() {
        let a = next_seed(1);
        let b = next_seed(a);
        assert_ne!(a, b);
        assert_ne!(a, 1);
    }
}
