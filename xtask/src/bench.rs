//! `cargo xtask bench [--quick] [--repeats R] [CRATE…]`: run the criterion
//! benches and report every dndm measurement beside its baseline, measured
//! in the same run.
//!
//! What is compared with what is written down once, in the pairing table
//! (`bench/pairs.rs`); a bench function the table does not know, or a table
//! row whose functions a crate did not measure, fails the command before
//! anything is measured.
//!
//! How a crate is measured:
//!
//! 1. its bench executables are built once (`cargo bench --no-run`) and
//!    asked for their functions (`--list`), which are checked against the
//!    table;
//! 2. every function then runs alone, in its own process (`--exact`), `R`
//!    times, interleaved: repeat by repeat, each group's functions run back
//!    to back, in reverse order every other repeat, so that dndm and its
//!    baselines share the machine's slow and fast moments;
//! 3. each row reports the median over repeats of criterion's median, with
//!    the min and the max, and the ratio computed per repeat (dndm beside the
//!    baseline of the same repeat), also as min / median / max.

mod pairs;
mod report;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use self::pairs::PAIRS;
use self::report::{Kind, Measurement, Repeat};
use crate::{Result, cargo, target_dir};

/// Crates with benches, as (folder, package), in report order. Either name
/// selects a crate on the command line.
const CRATES: &[(&str, &str)] = &[
    ("core", "dndm-core"),
    ("codec", "dndm-codec"),
    ("transport", "dndm-transport"),
    ("router", "dndm-router"),
    ("scope", "dndm-scope"),
    ("facade", "dndm"),
];

/// Criterion settings per run: `--quick` is a smoke run, the default trades
/// one long run for several shorter interleaved ones.
const QUICK: [&str; 6] = [
    "--warm-up-time",
    "0.5",
    "--measurement-time",
    "1.5",
    "--sample-size",
    "10",
];
const FULL: [&str; 4] = ["--warm-up-time", "1", "--measurement-time", "3"];
const QUICK_REPEATS: usize = 3;
const FULL_REPEATS: usize = 5;

/// The command line, parsed.
#[derive(Debug, PartialEq)]
struct Args {
    quick: bool,
    repeats: usize,
    /// Folders, in report order; empty means every crate with benches.
    folders: Vec<&'static str>,
}

fn names() -> String {
    CRATES
        .iter()
        .map(|(f, p)| {
            if f == p {
                f.to_string()
            } else {
                format!("{f} ({p})")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse(args: &[String]) -> Result<Args> {
    let mut quick = false;
    let mut repeats = None;
    let mut wanted = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--repeats" => {
                let v = it.next().ok_or("--repeats needs a number")?;
                let r: usize = v
                    .parse()
                    .map_err(|_| format!("--repeats takes a whole number, got `{v}`"))?;
                if r == 0 {
                    return Err("--repeats must be at least 1".into());
                }
                repeats = Some(r);
            }
            name => {
                let Some((folder, _)) = CRATES.iter().find(|(f, p)| *f == name || *p == name)
                else {
                    return Err(format!(
                        "unknown crate `{name}`; a folder or package name: {}",
                        names()
                    ));
                };
                wanted.push(*folder);
            }
        }
    }
    let folders = CRATES
        .iter()
        .map(|(f, _)| *f)
        .filter(|f| wanted.contains(f))
        .collect();
    Ok(Args {
        quick,
        repeats: repeats.unwrap_or(if quick { QUICK_REPEATS } else { FULL_REPEATS }),
        folders,
    })
}

pub(crate) fn run(args: &[String]) -> Result {
    let args = parse(args)?;
    let root = crate::workspace_root();
    let has_benches = |f: &str| root.join(f).join("benches").is_dir();
    if let Some(f) = args.folders.iter().find(|f| !has_benches(f)) {
        let with: Vec<&str> = CRATES
            .iter()
            .map(|(f, _)| *f)
            .filter(|f| has_benches(f))
            .collect();
        return Err(format!(
            "crate `{f}` has no benches (crates with benches: {})",
            with.join(", ")
        ));
    }
    let selected: Vec<(&str, &str)> = CRATES
        .iter()
        .copied()
        .filter(|(f, _)| args.folders.is_empty() || args.folders.contains(f))
        .filter(|(f, _)| has_benches(f))
        .collect();
    if selected.is_empty() {
        return Err("no selected crate has benches".into());
    }
    let settings: &[&str] = if args.quick { &QUICK } else { &FULL };

    let criterion_root = target_dir().join("criterion");
    let mut rows = Vec::new();
    for (folder, package) in &selected {
        let exes = build(package)?;
        let mut functions = Vec::new();
        for exe in &exes {
            for id in list(exe, &root.join(folder))? {
                functions.push((id, exe.clone()));
            }
        }
        let ids: Vec<String> = functions.iter().map(|(id, _)| id.clone()).collect();
        report::check_pairing(folder, &ids, PAIRS)?;

        let home = criterion_root.join(folder);
        // Stale results from an earlier run must never reach this report.
        let _ = fs::remove_dir_all(&home);
        let groups = run_order(folder);
        let mut repeats = Vec::new();
        for r in 0..args.repeats {
            eprintln!("\n==> bench {folder}: repeat {} of {}", r + 1, args.repeats);
            let repeat_home = home.join(format!("repeat-{}", r + 1));
            for group in &groups {
                let mut order = group.clone();
                if r % 2 == 1 {
                    order.reverse();
                }
                for id in &order {
                    let (_, exe) = functions
                        .iter()
                        .find(|(f, _)| f == id)
                        .ok_or_else(|| format!("`{id}` was listed by no bench executable"))?;
                    let mut cmd = std::process::Command::new(exe);
                    cmd.current_dir(root.join(folder))
                        .args(["--bench", "--exact", id])
                        .args(settings)
                        .env("CRITERION_HOME", &repeat_home);
                    crate::run(&mut cmd)?;
                }
            }
            repeats.push(collect(&repeat_home)?);
        }
        rows.extend(report::compare(folder, PAIRS, &repeats)?);
    }

    let path = target_dir().join("bench-report.tsv");
    fs::create_dir_all(target_dir()).map_err(|e| format!("{}: {e}", target_dir().display()))?;
    fs::write(&path, report::render_tsv(&rows)).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("\n{}", report::render_table(&rows));
    println!(
        "medians over {} interleaved repeats, (min..max) over the same repeats; ratio > 1: dndm is better",
        args.repeats
    );
    println!("written to {}", path.display());
    Ok(())
}

/// The functions of each table group of `folder`, ours first, then the
/// baselines in table order; each function once.
fn run_order(folder: &str) -> Vec<Vec<String>> {
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for p in PAIRS.iter().filter(|p| p.krate == folder) {
        let i = match groups.iter().position(|(g, _)| *g == p.group) {
            Some(i) => i,
            None => {
                groups.push((p.group, Vec::new()));
                groups.len() - 1
            }
        };
        let fns = &mut groups[i].1;
        for id in [p.dndm_id(), p.baseline_id()] {
            if !fns.contains(&id) {
                fns.push(id);
            }
        }
        // Ours first: they then sit between their baselines when reversed.
        fns.sort_by_key(|id| {
            !id.split_once('/')
                .is_some_and(|(_, f)| f.starts_with("dndm"))
        });
    }
    groups.into_iter().map(|(_, fns)| fns).collect()
}

/// Builds `package`'s bench executables and returns their paths.
fn build(package: &str) -> Result<Vec<PathBuf>> {
    let mut cmd = cargo();
    cmd.args([
        "bench",
        "--locked",
        "--package",
        package,
        "--benches",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    eprintln!("$ {cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| format!("could not start cargo bench: {e}"))?;
    if !out.status.success() {
        return Err(format!("building the benches of {package} failed"));
    }
    let mut exes = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let is_bench = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "bench"));
        if msg["reason"] == "compiler-artifact"
            && is_bench
            && let Some(exe) = msg["executable"].as_str()
        {
            exes.push(PathBuf::from(exe));
        }
    }
    if exes.is_empty() {
        return Err(format!("{package} built no bench executable"));
    }
    Ok(exes)
}

/// The full ids (`group/function`) of the benchmarks in `exe`.
fn list(exe: &Path, dir: &Path) -> Result<Vec<String>> {
    let out = std::process::Command::new(exe)
        .current_dir(dir)
        .args(["--bench", "--list"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not start {}: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} --list exited with {}",
            exe.display(),
            out.status
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": benchmark"))
        .map(str::to_string)
        .collect())
}

/// Every measurement criterion wrote below `home`, by full id.
fn collect(home: &Path) -> Result<Repeat> {
    let mut found = Vec::new();
    walk(home, &mut found);
    let mut repeat = Repeat::new();
    for dir in found {
        let (id, m) = read_measurement(&dir)?;
        repeat.insert(id, m);
    }
    Ok(repeat)
}

/// Every `new/` folder holding a criterion `benchmark.json` below `dir`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") && path.join("benchmark.json").is_file() {
            out.push(path);
        } else if path
            .file_name()
            .is_some_and(|n| n != "report" && n != "base")
        {
            walk(&path, out);
        }
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_measurement(dir: &Path) -> Result<(String, Measurement)> {
    let bench = read_json(&dir.join("benchmark.json"))?;
    let estimates = read_json(&dir.join("estimates.json"))?;
    let id = bench["full_id"]
        .as_str()
        .ok_or_else(|| format!("{}: no full_id", dir.display()))?
        .to_string();
    let median_ns = estimates["median"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| format!("{}: no median estimate", dir.display()))?;
    let tp = &bench["throughput"];
    let throughput = [
        ("Elements", Kind::Elements),
        ("Bytes", Kind::Bytes),
        ("BytesDecimal", Kind::Bytes),
    ]
    .iter()
    .find_map(|(key, kind)| tp[*key].as_f64().map(|n| (*kind, n)));
    Ok((
        id,
        Measurement {
            median_ns,
            throughput,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args> {
        parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn crates_are_named_by_folder_or_package() {
        let a = args(&["dndm", "core", "dndm-codec"]).unwrap();
        assert_eq!(a.folders, ["core", "codec", "facade"]);
        assert!(!a.quick);
        assert_eq!(a.repeats, FULL_REPEATS);
        let a = args(&["--quick", "facade", "--repeats", "2"]).unwrap();
        assert_eq!(a.folders, ["facade"]);
        assert!(a.quick);
        assert_eq!(a.repeats, 2);
        assert_eq!(args(&["--quick"]).unwrap().repeats, QUICK_REPEATS);
    }

    #[test]
    fn an_unknown_crate_lists_the_valid_names() {
        let err = args(&["dndm-facade"]).unwrap_err();
        assert!(err.contains("unknown crate `dndm-facade`"), "{err}");
        assert!(err.contains("core (dndm-core)"), "{err}");
        assert!(err.contains("facade (dndm)"), "{err}");
        assert!(args(&["--repeats", "0"]).is_err());
        assert!(args(&["--repeats"]).is_err());
    }

    #[test]
    fn each_group_runs_ours_first_and_every_function_once() {
        let groups = run_order("core");
        let spsc = groups
            .iter()
            .find(|g| g[0].starts_with("spsc_64B/"))
            .unwrap();
        assert_eq!(
            spsc,
            &[
                "spsc_64B/dndm",
                "spsc_64B/dndm_batch64",
                "spsc_64B/crossbeam",
                "spsc_64B/std_mpsc",
                "spsc_64B/rtrb",
                "spsc_64B/crossbeam_try_iter",
                "spsc_64B/rtrb_chunk",
            ]
        );
        assert!(run_order("no-such-crate").is_empty());
    }
}
