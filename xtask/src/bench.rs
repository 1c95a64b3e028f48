//! `cargo xtask bench [--quick] [CRATE…]`: run the criterion benches and
//! report every dndm measurement beside the baseline measured in the same run.
//!
//! Convention for bench authors: inside one criterion group, functions whose
//! id starts with `dndm` are ours and every other function is a baseline.
//! Each (dndm, baseline) pair becomes one row. Set `Throughput::Elements`
//! (messages or frames) or `Throughput::Bytes` on the group to report rates;
//! without a throughput the row reports the median time in ns.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Result, cargo, target_dir};

/// Folders whose benches `cargo xtask bench` knows, in report order.
const CRATES: &[(&str, &str)] = &[
    ("core", "dndm-core"),
    ("codec", "dndm-codec"),
    ("transport", "dndm-transport"),
    ("router", "dndm-router"),
    ("scope", "dndm-scope"),
    ("facade", "dndm"),
];

pub(crate) fn run(args: &[String]) -> Result {
    let mut quick = false;
    let mut wanted = Vec::new();
    for a in args {
        match a.as_str() {
            "--quick" => quick = true,
            folder => {
                if !CRATES.iter().any(|(f, _)| *f == folder) {
                    let known: Vec<&str> = CRATES.iter().map(|(f, _)| *f).collect();
                    return Err(format!(
                        "unknown crate folder `{folder}` (known: {})",
                        known.join(", ")
                    ));
                }
                wanted.push(folder.to_string());
            }
        }
    }
    let root = crate::workspace_root();
    let selected: Vec<(&str, &str)> = CRATES
        .iter()
        .copied()
        .filter(|(f, _)| wanted.is_empty() || wanted.iter().any(|w| w == f))
        .filter(|(f, _)| root.join(f).join("benches").is_dir())
        .collect();
    if selected.is_empty() {
        return Err("no selected crate has benches".into());
    }

    let criterion_root = target_dir().join("criterion");
    let mut rows = Vec::new();
    for (folder, package) in &selected {
        let home = criterion_root.join(folder);
        // Stale results from an earlier run must never reach this report.
        let _ = fs::remove_dir_all(&home);
        let mut cmd = cargo();
        cmd.args(["bench", "--locked", "--package", package, "--benches", "--"])
            .env("CRITERION_HOME", &home);
        if quick {
            cmd.args([
                "--warm-up-time",
                "0.5",
                "--measurement-time",
                "1.5",
                "--sample-size",
                "10",
            ]);
        }
        crate::run(&mut cmd)?;
        rows.extend(collect(folder, &home)?);
    }

    let report = render_tsv(&rows);
    let path = target_dir().join("bench-report.tsv");
    fs::create_dir_all(target_dir()).map_err(|e| format!("{}: {e}", target_dir().display()))?;
    fs::write(&path, &report).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("\n{}", render_table(&rows));
    println!("written to {}", path.display());
    Ok(())
}

/// One criterion measurement.
struct Measurement {
    group: String,
    function: String,
    value: String,
    /// Median nanoseconds per iteration.
    median_ns: f64,
    /// Elements or bytes per iteration, if the group declared a throughput.
    throughput: Option<(Kind, f64)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Elements,
    Bytes,
}

/// One line of the report.
struct Row {
    krate: String,
    case: String,
    unit: String,
    dndm: f64,
    baseline: f64,
    baseline_name: String,
    /// Above 1 means dndm is better.
    ratio: f64,
}

fn collect(folder: &str, home: &Path) -> Result<Vec<Row>> {
    let mut found = Vec::new();
    walk(home, &mut found);
    let mut measurements = Vec::new();
    for dir in found {
        measurements.push(read_measurement(&dir)?);
    }
    measurements
        .sort_by(|a, b| (&a.group, &a.value, &a.function).cmp(&(&b.group, &b.value, &b.function)));

    let mut rows = Vec::new();
    for ours in measurements
        .iter()
        .filter(|m| m.function.starts_with("dndm"))
    {
        for base in measurements.iter().filter(|m| {
            !m.function.starts_with("dndm") && m.group == ours.group && m.value == ours.value
        }) {
            let mut case = ours.group.clone();
            if !ours.value.is_empty() {
                let _ = write!(case, "/{}", ours.value);
            }
            if ours.function != "dndm" {
                let _ = write!(case, " [{}]", ours.function);
            }
            let (unit, dndm, baseline, ratio) = match (ours.throughput, base.throughput) {
                (Some((kind, n)), Some((bkind, bn))) if kind == bkind => {
                    let unit = match kind {
                        Kind::Bytes => "bytes/s".to_string(),
                        Kind::Elements if matches!(folder, "codec" | "transport") => {
                            "frames/s".to_string()
                        }
                        Kind::Elements => "msgs/s".to_string(),
                    };
                    let ours_rate = n / (ours.median_ns * 1e-9);
                    let base_rate = bn / (base.median_ns * 1e-9);
                    (unit, ours_rate, base_rate, ours_rate / base_rate)
                }
                _ => (
                    "ns".to_string(),
                    ours.median_ns,
                    base.median_ns,
                    base.median_ns / ours.median_ns,
                ),
            };
            rows.push(Row {
                krate: folder.to_string(),
                case,
                unit,
                dndm,
                baseline,
                baseline_name: base.function.clone(),
                ratio,
            });
        }
    }
    Ok(rows)
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

fn read_measurement(dir: &Path) -> Result<Measurement> {
    let bench = read_json(&dir.join("benchmark.json"))?;
    let estimates = read_json(&dir.join("estimates.json"))?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
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
    Ok(Measurement {
        group: text(&bench["group_id"]),
        function: text(&bench["function_id"]),
        value: text(&bench["value_str"]),
        median_ns,
        throughput,
    })
}

const HEADER: [&str; 7] = [
    "crate",
    "case",
    "unit",
    "dndm",
    "baseline",
    "baseline_name",
    "ratio",
];

fn cells(r: &Row) -> [String; 7] {
    [
        r.krate.clone(),
        r.case.clone(),
        r.unit.clone(),
        format!("{:.4e}", r.dndm),
        format!("{:.4e}", r.baseline),
        r.baseline_name.clone(),
        format!("{:.3}", r.ratio),
    ]
}

fn render_tsv(rows: &[Row]) -> String {
    let mut out = HEADER.join("\t");
    out.push('\n');
    for r in rows {
        out.push_str(&cells(r).join("\t"));
        out.push('\n');
    }
    out
}

fn render_table(rows: &[Row]) -> String {
    let body: Vec<[String; 7]> = rows.iter().map(cells).collect();
    let mut widths = HEADER.map(str::len);
    for line in &body {
        for (w, c) in widths.iter_mut().zip(line) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let mut line = |cols: &[&str]| {
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            // Text columns left-aligned, numbers right-aligned.
            if matches!(i, 3 | 4 | 6) {
                let _ = write!(out, "{c:>w$}  ");
            } else {
                let _ = write!(out, "{c:<w$}  ");
            }
        }
        out.push('\n');
    };
    line(&HEADER);
    for l in &body {
        let cols: Vec<&str> = l.iter().map(String::as_str).collect();
        line(&cols);
    }
    out
}
