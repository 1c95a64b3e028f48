//! `cargo xtask …`: the one entry point for dndm's automation.
//!
//! Every command shells out to `cargo` with the same flags CI uses, so that
//! `cargo xtask ci` on a laptop is exactly what gates a merge.
#![forbid(unsafe_code)]

mod bench;
mod layers;
mod mutants;
mod test;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci                      everything CI runs: fmt, clippy, layers, docs, tests, loom,
                          sanitizer (ASan on core, codec), fuzz (60 s a target), bench smoke
  sanitize                the core and codec tests under AddressSanitizer
  test [--repeat N] [--seed S]
                          the workspace tests; --repeat runs them N times with fresh
                          seeds and stops at the first failure, naming test and seed
  loom                    the loom models (RUSTFLAGS=--cfg dndm_loom, preemption bound 2)
  layers                  fail when a crate depends on one it must not (see ARCHITECTURE.md)
  bench [--quick] [--repeats R] [CRATE…]
                          criterion benches, R interleaved repeats (default 5, --quick 3),
                          then a table and target/bench-report.tsv; CRATE is a folder
                          or package name (core or dndm-core, facade or dndm, …)
  demo                    the robot pipeline as six processes on loopback, then rates,
                          latencies and drops per route (DNDM_DEMO_SECS, default 3)
  fuzz [--time SECS] [TARGET…]  the fuzz targets of codec and router (installs cargo-fuzz
                          when missing)
  mutants [--timeout SECS] [--file GLOB]… [CRATE…] [-- ARGS…]
                          mutation testing per crate (default core codec router; slow,
                          not in ci; installs cargo-mutants when missing)
";

/// What a failed step reports: which command, and why.
type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let started = Instant::now();
    let outcome = match cmd.as_str() {
        "ci" => ci(),
        "test" => test::run(rest),
        "loom" => loom(),
        "sanitize" => sanitize(),
        "layers" => layers::check(&workspace_root()),
        "bench" => bench::run(rest),
        "demo" => demo(),
        "fuzz" => fuzz(rest),
        "mutants" => mutants::run(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match outcome {
        Ok(()) => {
            eprintln!("xtask {cmd}: ok in {:.1}s", started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask {cmd}: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask lives one level below it.
pub(crate) fn workspace_root() -> PathBuf {
    let manifest = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("xtask"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where cargo puts build output for this workspace.
pub(crate) fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// A `cargo` command run from the workspace root.
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// Runs `cmd`, echoing it first; a non-zero exit is an error naming the command.
pub(crate) fn run(cmd: &mut Command) -> Result {
    let shown = format!("{cmd:?}");
    eprintln!("$ {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("could not start {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} exited with {status}"))
    }
}

fn step(name: &str, f: impl FnOnce() -> Result) -> Result {
    eprintln!("\n==> {name}");
    let t = Instant::now();
    f().map_err(|e| format!("{name}: {e}"))?;
    eprintln!("<== {name}: ok in {:.1}s", t.elapsed().as_secs_f64());
    Ok(())
}

fn ci() -> Result {
    step("fmt", || {
        run(cargo().args(["fmt", "--all", "--", "--check"]))
    })?;
    step("clippy", || {
        run(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    step("layers", || layers::check(&workspace_root()))?;
    step("docs", || {
        run(cargo()
            .args(["doc", "--workspace", "--no-deps", "--locked"])
            .env("RUSTDOCFLAGS", "-D warnings"))
    })?;
    step("test", || test::run(&[]))?;
    step("loom", loom)?;
    step("sanitizer", sanitize)?;
    step("fuzz", || fuzz(&["--time".into(), "60".into()]))?;
    step("bench smoke", || {
        // Criterion runs every benchmark once when not invoked by `cargo bench`.
        run(cargo().args(["test", "--workspace", "--benches", "--locked"]))
    })?;
    Ok(())
}

/// Crates with a `tests/loom.rs`, as (package name, folder).
fn loom_crates() -> Vec<(String, String)> {
    layers::members(&workspace_root())
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.dir.join("tests/loom.rs").is_file())
        .map(|m| (m.name, m.folder))
        .collect()
}

fn loom() -> Result {
    let crates = loom_crates();
    if crates.is_empty() {
        return Err("no crate has tests/loom.rs".into());
    }
    let mut cmd = cargo();
    cmd.args(["test", "--release", "--locked", "--test", "loom"]);
    for (name, _) in &crates {
        cmd.args(["-p", name]);
    }
    // A separate target dir: loom's cfg rebuilds everything, and must not evict normal builds.
    cmd.env("CARGO_TARGET_DIR", target_dir().join("loom"))
        .env("RUSTFLAGS", "--cfg dndm_loom")
        .env(
            "LOOM_MAX_PREEMPTIONS",
            env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "2".into()),
        );
    run(&mut cmd)
}

/// The crates with `unsafe` code (core, codec) tested under AddressSanitizer.
///
/// `-Zsanitizer` is unstable; `RUSTC_BOOTSTRAP=1` lets the stable toolchain
/// accept it. `--target` keeps build scripts and proc-macros uninstrumented,
/// and a target dir of its own keeps instrumented builds apart.
fn sanitize() -> Result {
    const TARGET: &str = "x86_64-unknown-linux-gnu";
    if !(cfg!(target_os = "linux") && cfg!(target_arch = "x86_64")) {
        eprintln!("sanitizer: skipped (AddressSanitizer runs on x86-64 Linux only)");
        return Ok(());
    }
    run(cargo()
        .args(["test", "--locked", "--target", TARGET, "--lib", "--tests"])
        .args(["-p", "dndm-core", "-p", "dndm-codec"])
        .env("CARGO_TARGET_DIR", target_dir().join("asan"))
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTFLAGS", "-Zsanitizer=address")
        .env("RUSTDOCFLAGS", "-Zsanitizer=address")
        .env("ASAN_OPTIONS", "detect_leaks=1")
        // The same deterministic seed as the plain test run.
        .env("PROPTEST_RNG_SEED", test::DEFAULT_SEED.to_string()))
}

/// The multi-process demo, in release mode: the example starts its own
/// children and reaps them (`facade/examples/demo.rs`).
fn demo() -> Result {
    run(cargo().args(["run", "--release", "--package", "dndm", "--example", "demo"]))
}

/// The cargo-fuzz crates: each has `fuzz_targets/<target>.rs`, shared checks
/// in `checks/`, and `regressions/<target>/` replayed by a test of its crate.
const FUZZ_DIRS: [&str; 2] = ["codec/fuzz", "router/fuzz"];

fn fuzz(args: &[String]) -> Result {
    let mut secs: u64 = 60;
    let mut wanted = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--time" => {
                let v = it.next().ok_or("--time needs a number of seconds")?;
                secs = v
                    .parse()
                    .map_err(|_| format!("--time takes whole seconds, got `{v}`"))?;
            }
            t => wanted.push(t.to_string()),
        }
    }
    // Every target, as (fuzz crate folder, target name).
    let mut all = Vec::new();
    for folder in FUZZ_DIRS {
        let dir = workspace_root().join(folder).join("fuzz_targets");
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| format!("cannot list fuzz targets in {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if let (Some("rs"), Some(stem)) =
                (path.extension().and_then(|e| e.to_str()), path.file_stem())
            {
                all.push((
                    workspace_root().join(folder),
                    stem.to_string_lossy().into_owned(),
                ));
            }
        }
    }
    all.sort();
    if let Some(unknown) = wanted.iter().find(|w| !all.iter().any(|(_, t)| t == *w)) {
        let names: Vec<&str> = all.iter().map(|(_, t)| t.as_str()).collect();
        return Err(format!(
            "no fuzz target `{unknown}` (targets: {})",
            names.join(", ")
        ));
    }
    let targets: Vec<_> = all
        .into_iter()
        .filter(|(_, t)| wanted.is_empty() || wanted.contains(t))
        .collect();
    let have_fuzz = cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_fuzz {
        run(cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    for (fuzz_dir, target) in &targets {
        // New inputs go to corpus/ (ignored by git); the checked-in
        // regressions (seeds and past finds) are read as a second corpus.
        let corpus = fuzz_dir.join("corpus").join(target);
        let regressions = fuzz_dir.join("regressions").join(target);
        for dir in [&corpus, &regressions] {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        run(cargo()
            .args(["fuzz", "run", "--fuzz-dir"])
            .arg(fuzz_dir)
            .arg(target)
            .arg(&corpus)
            .arg(&regressions)
            .args([
                "--",
                &format!("-max_total_time={secs}"),
                "-print_final_stats=1",
            ])
            // cargo-fuzz needs nightly-only flags; the stable toolchain accepts them this way.
            .env("RUSTC_BOOTSTRAP", "1"))
        .map_err(|e| {
            format!(
                "{e}\n  a crashing input is in {}; copy it into {} so that \
                 the crate's `fuzz_corpus` test replays it",
                fuzz_dir.join("artifacts").join(target).display(),
                regressions.display()
            )
        })?;
    }
    Ok(())
}
