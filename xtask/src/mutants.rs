//! `cargo xtask mutants [--timeout SECS] [--file GLOB]… [CRATE…] [-- ARGS…]`:
//! mutation testing with cargo-mutants, one crate at a time.
//!
//! A mutant is a small change to the code (a body replaced by a default
//! value, `>` turned into `>=`, a `!` deleted). A test suite that still
//! passes on a mutant has a blind spot: it is *missed*. Each crate is tested
//! on its own (`--package`), so a crate's mutants are judged by that crate's
//! tests only, which is what users of that crate rely on.
//!
//! The run is slow (one build and one test run per mutant), so it is not
//! part of `cargo xtask ci`. It runs one job at a time (`-j 1`), with a
//! per-mutant timeout, in its own target directory so that it never evicts
//! normal builds. Shared settings live in `.cargo/mutants.toml`: the test
//! arguments (unit and integration tests, no doctests) and the mutants that
//! no test can observe (each with a written reason).
//!
//! Results land in `<target>/mutants/<folder>/mutants.out/` (`missed.txt`
//! lists the survivors); the command prints, per crate, how many mutants
//! were tested, caught, missed, unviable and timed out, and how many
//! `exclude_re` left out, and fails when any mutant was missed or timed out.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::{Result, cargo, layers, target_dir, workspace_root};

/// Crates mutated when none is named: the ones whose tests are held to it.
const DEFAULT_CRATES: &[&str] = &["core", "codec", "router"];

/// Seconds one mutant's test run may take when `--timeout` is not given:
/// generous, because a loaded machine slows the counting-allocator and
/// stress tests several-fold, and only a mutant that hangs waits this long.
const DEFAULT_TIMEOUT_SECS: u64 = 180;

/// The outcome files cargo-mutants writes, one mutant per line.
const OUTCOMES: [&str; 4] = ["caught", "missed", "unviable", "timeout"];

pub(crate) fn run(args: &[String]) -> Result {
    let mut timeout = DEFAULT_TIMEOUT_SECS;
    let mut files = Vec::new();
    let mut wanted = Vec::new();
    let mut passthrough = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--timeout" => {
                let v = it.next().ok_or("--timeout needs a number of seconds")?;
                timeout = v
                    .parse()
                    .map_err(|_| format!("--timeout takes whole seconds, got `{v}`"))?;
            }
            "--file" | "-f" => {
                files.push(it.next().ok_or("--file needs a path or glob")?.clone());
            }
            "--" => {
                passthrough.extend(it.by_ref().cloned());
            }
            name => wanted.push(name.to_string()),
        }
    }
    if wanted.is_empty() {
        wanted = DEFAULT_CRATES.iter().map(|c| (*c).to_string()).collect();
    }

    let root = workspace_root();
    let members = layers::members(&root)?;
    let mut selected = Vec::new();
    for w in &wanted {
        let member = members
            .iter()
            .find(|m| m.name == *w || m.folder == *w)
            .ok_or_else(|| {
                let known: Vec<&str> = members.iter().map(|m| m.folder.as_str()).collect();
                format!("unknown crate `{w}` (known folders: {})", known.join(", "))
            })?;
        selected.push((member.name.clone(), member.folder.clone()));
    }

    ensure_installed()?;

    let home = target_dir().join("mutants");
    let mut rows = Vec::new();
    for (package, folder) in &selected {
        let out = home.join(folder.replace('/', "-"));
        fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        let mut cmd = cargo();
        cmd.args(["mutants", "--package", package, "--jobs", "1"])
            .args(["--timeout", &timeout.to_string()])
            .arg("--output")
            .arg(&out);
        for f in &files {
            cmd.args(["--file", f]);
        }
        cmd.args(&passthrough)
            // One build directory, kept between runs: dependencies compile once.
            .env("CARGO_TARGET_DIR", home.join("build"));
        eprintln!("$ {cmd:?}");
        let status = cmd
            .status()
            .map_err(|e| format!("could not start cargo mutants: {e}"))?;
        // 0: all caught; 2: some missed; 3: some timed out. Anything else
        // (usage error, baseline tests failing) means there are no results.
        if !matches!(status.code(), Some(0 | 2 | 3)) {
            return Err(format!("cargo mutants on {package} exited with {status}"));
        }
        let excluded = excluded(package, &files, &passthrough)?;
        rows.push((package.clone(), counts(&out.join("mutants.out"))?, excluded));
    }

    let mut table = format!(
        "\n{:<16} {:>7} {:>7} {:>7} {:>9} {:>8} {:>9}\n",
        "crate", "tested", OUTCOMES[0], OUTCOMES[1], OUTCOMES[2], OUTCOMES[3], "excluded"
    );
    for (package, c, excluded) in &rows {
        let [caught, missed, unviable, timeout] = c;
        let tested: usize = c.iter().sum();
        let _ = writeln!(
            table,
            "{package:<16} {tested:>7} {caught:>7} {missed:>7} {unviable:>9} {timeout:>8} {excluded:>9}"
        );
    }
    let _ = writeln!(
        table,
        "(survivors: {}/<crate>/mutants.out/missed.txt)",
        home.display()
    );
    print!("{table}");

    let failed: Vec<&str> = rows
        .iter()
        .filter(|(_, c, _)| c[1] > 0 || c[3] > 0)
        .map(|(p, _, _)| p.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "missed or timed-out mutants in {}",
            failed.join(", ")
        ))
    }
}

/// Installs cargo-mutants when `cargo mutants` is not available.
fn ensure_installed() -> Result {
    let have = cargo()
        .args(["mutants", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if have {
        return Ok(());
    }
    crate::run(cargo().args(["install", "cargo-mutants", "--locked"]))
}

/// How many of the selected mutants `exclude_re` in `.cargo/mutants.toml`
/// leaves out: the listing without the config minus the listing with it.
fn excluded(package: &str, files: &[String], passthrough: &[String]) -> Result<usize> {
    let list = |no_config: bool| -> Result<usize> {
        let mut cmd = cargo();
        cmd.args(["mutants", "--list", "--package", package]);
        if no_config {
            cmd.arg("--no-config");
        }
        for f in files {
            cmd.args(["--file", f]);
        }
        let out = cmd
            .args(passthrough)
            .output()
            .map_err(|e| format!("could not start cargo mutants --list: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo mutants --list on {package} exited with {}",
                out.status
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count())
    };
    Ok(list(true)?.saturating_sub(list(false)?))
}

/// Mutants per outcome, in [`OUTCOMES`] order, from one run's output folder.
fn counts(dir: &Path) -> Result<[usize; 4]> {
    let mut out = [0; 4];
    for (n, name) in out.iter_mut().zip(OUTCOMES) {
        let path = dir.join(format!("{name}.txt"));
        *n = match fs::read_to_string(&path) {
            Ok(text) => text.lines().filter(|l| !l.trim().is_empty()).count(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
    }
    Ok(out)
}
