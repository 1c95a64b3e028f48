//! From criterion measurements to report rows: the pairing check, the
//! min / median / max over repeats, and the table and TSV renderings.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use super::pairs::{Pair, Unit};
use crate::Result;

/// What criterion recorded for one function in one repeat.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Measurement {
    /// Median nanoseconds per iteration.
    pub(crate) median_ns: f64,
    /// Elements or bytes per iteration, if the group declared a throughput.
    pub(crate) throughput: Option<(Kind, f64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Elements,
    Bytes,
}

/// One repeat of a crate's benches: criterion full id → measurement.
pub(crate) type Repeat = HashMap<String, Measurement>;

/// Minimum, median and maximum of a few values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Spread {
    pub(crate) min: f64,
    pub(crate) median: f64,
    pub(crate) max: f64,
}

impl Spread {
    /// `None` for no values; the median of an even count is the mean of the
    /// middle two.
    pub(crate) fn of(values: &[f64]) -> Option<Spread> {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => v[n / 2],
            _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        };
        Some(Spread {
            min: v[0],
            median,
            max: v[n - 1],
        })
    }
}

/// One line of the report.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) krate: String,
    pub(crate) case: String,
    pub(crate) unit: Unit,
    pub(crate) dndm: Spread,
    pub(crate) baseline: Spread,
    pub(crate) baseline_name: String,
    /// Above 1 means dndm is better; computed per repeat, then spread.
    pub(crate) ratio: Spread,
    pub(crate) repeats: usize,
}

/// The function id part of a criterion full id (`group/function`).
fn function_of(id: &str) -> &str {
    id.split_once('/').map_or("", |(_, f)| f)
}

/// Checks that `measured` (the full ids one crate's benches ran) and the
/// table rows of that crate describe the same comparisons.
pub(crate) fn check_pairing(krate: &str, measured: &[String], pairs: &[Pair]) -> Result {
    let rows: Vec<&Pair> = pairs.iter().filter(|p| p.krate == krate).collect();
    let measured: BTreeSet<&str> = measured.iter().map(String::as_str).collect();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for p in &rows {
        if !p.dndm.starts_with("dndm") || p.baseline.starts_with("dndm") {
            problems.push(format!(
                "table row {}: {} vs {} must compare a `dndm*` function with a baseline",
                p.group, p.dndm, p.baseline
            ));
        }
        if !seen.insert((p.dndm_id(), p.baseline_id())) {
            problems.push(format!(
                "table row {}: {} vs {} appears twice",
                p.group, p.dndm, p.baseline
            ));
        }
        for id in [p.dndm_id(), p.baseline_id()] {
            if !measured.contains(id.as_str()) {
                problems.push(format!(
                    "table row {} vs {}: `{id}` was not measured",
                    p.dndm_id(),
                    p.baseline
                ));
            }
        }
    }
    for id in &measured {
        let ours = function_of(id).starts_with("dndm");
        let paired = rows.iter().any(|p| {
            if ours {
                p.dndm_id() == *id
            } else {
                p.baseline_id() == *id
            }
        });
        if !paired {
            let side = if ours { "dndm case" } else { "baseline" };
            problems.push(format!("{side} `{id}` is measured but in no table row"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    problems.dedup();
    Err(format!(
        "unpaired benchmarks in `{krate}` (the table is in xtask/src/bench/pairs.rs):\n  {}",
        problems.join("\n  ")
    ))
}

/// A measurement in `unit`: a rate from the declared throughput, or the
/// median time.
fn value(id: &str, m: &Measurement, unit: Unit) -> Result<f64> {
    let want = match unit {
        Unit::Nanos => return Ok(m.median_ns),
        Unit::Msgs | Unit::Frames => Kind::Elements,
        Unit::Bytes => Kind::Bytes,
    };
    match m.throughput {
        Some((kind, n)) if kind == want => Ok(n / (m.median_ns * 1e-9)),
        _ => Err(format!(
            "`{id}`: the table reads it in {} but its group declares no {want:?} throughput",
            unit.label()
        )),
    }
}

/// How much better dndm is: above 1 means better, whichever way the unit
/// points.
pub(crate) fn ratio(unit: Unit, dndm: f64, baseline: f64) -> f64 {
    if unit.is_rate() {
        dndm / baseline
    } else {
        baseline / dndm
    }
}

/// The report rows of `krate`, one per table row, each over every repeat.
pub(crate) fn compare(krate: &str, pairs: &[Pair], repeats: &[Repeat]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for p in pairs.iter().filter(|p| p.krate == krate) {
        let (ours_id, base_id) = (p.dndm_id(), p.baseline_id());
        let (mut ours, mut base, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for (r, repeat) in repeats.iter().enumerate() {
            let get = |id: &str| {
                repeat
                    .get(id)
                    .ok_or_else(|| format!("`{id}` has no result in repeat {}", r + 1))
            };
            let o = value(&ours_id, get(&ours_id)?, p.unit)?;
            let b = value(&base_id, get(&base_id)?, p.unit)?;
            ours.push(o);
            base.push(b);
            ratios.push(ratio(p.unit, o, b));
        }
        let spread = |v: &[f64]| Spread::of(v).ok_or_else(|| "no repeats".to_string());
        let mut case = p.group.to_string();
        if p.dndm != "dndm" {
            let _ = write!(case, " [{}]", p.dndm);
        }
        rows.push(Row {
            krate: krate.to_string(),
            case,
            unit: p.unit,
            dndm: spread(&ours)?,
            baseline: spread(&base)?,
            baseline_name: p.baseline.to_string(),
            ratio: spread(&ratios)?,
            repeats: repeats.len(),
        });
    }
    Ok(rows)
}

/// The TSV columns: the first seven are the long-standing report, the rest
/// the spread over repeats.
const TSV_HEADER: [&str; 14] = [
    "crate",
    "case",
    "unit",
    "dndm",
    "baseline",
    "baseline_name",
    "ratio",
    "ratio_min",
    "ratio_max",
    "dndm_min",
    "dndm_max",
    "baseline_min",
    "baseline_max",
    "repeats",
];

fn num(v: f64) -> String {
    format!("{v:.4e}")
}

fn rat(v: f64) -> String {
    format!("{v:.3}")
}

pub(crate) fn render_tsv(rows: &[Row]) -> String {
    let mut out = TSV_HEADER.join("\t");
    out.push('\n');
    for r in rows {
        let cells = [
            r.krate.clone(),
            r.case.clone(),
            r.unit.label().to_string(),
            num(r.dndm.median),
            num(r.baseline.median),
            r.baseline_name.clone(),
            rat(r.ratio.median),
            rat(r.ratio.min),
            rat(r.ratio.max),
            num(r.dndm.min),
            num(r.dndm.max),
            num(r.baseline.min),
            num(r.baseline.max),
            r.repeats.to_string(),
        ];
        out.push_str(&cells.join("\t"));
        out.push('\n');
    }
    out
}

/// The console table: medians, with each spread beside them.
pub(crate) fn render_table(rows: &[Row]) -> String {
    const HEADER: [&str; 10] = [
        "crate",
        "case",
        "unit",
        "dndm",
        "(min..max)",
        "baseline",
        "(min..max)",
        "baseline_name",
        "ratio",
        "(min..max)",
    ];
    let short = |v: f64| format!("{v:.2e}");
    let body: Vec<[String; 10]> = rows
        .iter()
        .map(|r| {
            [
                r.krate.clone(),
                r.case.clone(),
                r.unit.label().to_string(),
                num(r.dndm.median),
                format!("({}..{})", short(r.dndm.min), short(r.dndm.max)),
                num(r.baseline.median),
                format!("({}..{})", short(r.baseline.min), short(r.baseline.max)),
                r.baseline_name.clone(),
                rat(r.ratio.median),
                format!("({}..{})", rat(r.ratio.min), rat(r.ratio.max)),
            ]
        })
        .collect();
    let mut widths = HEADER.map(str::len);
    for line in &body {
        for (w, c) in widths.iter_mut().zip(line) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let mut line = |cols: &[&str]| {
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            // Numbers right-aligned, text left-aligned.
            if matches!(i, 3 | 5 | 8) {
                let _ = write!(out, "{c:>w$} ");
            } else {
                let _ = write!(out, "{c:<w$}  ");
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    };
    line(&HEADER);
    for l in &body {
        let cols: Vec<&str> = l.iter().map(String::as_str).collect();
        line(&cols);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::pairs::PAIRS;

    const TABLE: &[Pair] = &[
        Pair {
            krate: "core",
            group: "spsc",
            dndm: "dndm",
            baseline: "crossbeam",
            unit: Unit::Msgs,
        },
        Pair {
            krate: "core",
            group: "spsc",
            dndm: "dndm_batch64",
            baseline: "rtrb_chunk",
            unit: Unit::Msgs,
        },
        Pair {
            krate: "core",
            group: "pingpong",
            dndm: "dndm",
            baseline: "crossbeam",
            unit: Unit::Nanos,
        },
        Pair {
            krate: "codec",
            group: "encode",
            dndm: "dndm",
            baseline: "postcard",
            unit: Unit::Frames,
        },
    ];

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const CORE: [&str; 5] = [
        "spsc/dndm",
        "spsc/crossbeam",
        "spsc/dndm_batch64",
        "spsc/rtrb_chunk",
        "pingpong/dndm",
    ];

    fn core_measured() -> Vec<String> {
        let mut v = ids(&CORE);
        v.push("pingpong/crossbeam".into());
        v
    }

    #[test]
    fn a_fully_paired_crate_passes() {
        assert_eq!(check_pairing("core", &core_measured(), TABLE), Ok(()));
        // Rows of crates not benched now are not required.
        assert_eq!(check_pairing("router", &[], TABLE), Ok(()));
    }

    #[test]
    fn a_dndm_case_missing_from_the_table_fails() {
        let mut measured = core_measured();
        measured.push("spsc/dndm_new".into());
        let err = check_pairing("core", &measured, TABLE).unwrap_err();
        assert!(err.contains("dndm case `spsc/dndm_new`"), "{err}");
        assert!(err.contains("pairs.rs"), "{err}");
    }

    #[test]
    fn an_unused_baseline_fails() {
        let mut measured = core_measured();
        measured.push("spsc/std_mpsc".into());
        let err = check_pairing("core", &measured, TABLE).unwrap_err();
        assert!(err.contains("baseline `spsc/std_mpsc`"), "{err}");
    }

    #[test]
    fn a_table_row_that_was_not_measured_fails() {
        // The baseline of the pingpong row is gone.
        let err = check_pairing("core", &ids(&CORE), TABLE).unwrap_err();
        assert!(
            err.contains("`pingpong/crossbeam` was not measured"),
            "{err}"
        );
    }

    #[test]
    fn malformed_rows_fail() {
        let mut table = TABLE.to_vec();
        table.push(TABLE[0]);
        table.push(Pair {
            dndm: "crossbeam",
            baseline: "dndm",
            ..TABLE[0]
        });
        let err = check_pairing("core", &core_measured(), &table).unwrap_err();
        assert!(err.contains("appears twice"), "{err}");
        assert!(err.contains("must compare a `dndm*` function"), "{err}");
    }

    #[test]
    fn the_real_table_is_well_formed() {
        for p in PAIRS {
            assert!(p.dndm.starts_with("dndm"), "{p:?}");
            assert!(!p.baseline.starts_with("dndm"), "{p:?}");
        }
        let mut seen = BTreeSet::new();
        for p in PAIRS {
            assert!(seen.insert((p.krate, p.group, p.dndm, p.baseline)), "{p:?}");
        }
    }

    #[test]
    fn ratio_above_one_means_dndm_is_better() {
        // Rates: more is better.
        assert_eq!(ratio(Unit::Msgs, 200.0, 100.0), 2.0);
        assert_eq!(ratio(Unit::Bytes, 50.0, 100.0), 0.5);
        // Times: less is better.
        assert_eq!(ratio(Unit::Nanos, 50.0, 100.0), 2.0);
        assert_eq!(ratio(Unit::Nanos, 200.0, 100.0), 0.5);
    }

    #[test]
    fn spread_is_min_median_max() {
        assert_eq!(Spread::of(&[]), None);
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        let s = Spread::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 2.5, 4.0));
    }

    fn m(ns: f64, elements: Option<f64>) -> Measurement {
        Measurement {
            median_ns: ns,
            throughput: elements.map(|n| (Kind::Elements, n)),
        }
    }

    fn repeat(list: &[(&str, Measurement)]) -> Repeat {
        list.iter()
            .map(|(id, m)| (id.to_string(), m.clone()))
            .collect()
    }

    #[test]
    fn rows_spread_over_repeats_and_pair_each_repeat() {
        let table = &TABLE[..1];
        // 1000 messages per iteration.
        let repeats = [
            repeat(&[
                ("spsc/dndm", m(1e6, Some(1e3))),
                ("spsc/crossbeam", m(2e6, Some(1e3))),
            ]),
            repeat(&[
                ("spsc/dndm", m(4e6, Some(1e3))),
                ("spsc/crossbeam", m(2e6, Some(1e3))),
            ]),
            repeat(&[
                ("spsc/dndm", m(2e6, Some(1e3))),
                ("spsc/crossbeam", m(2e6, Some(1e3))),
            ]),
        ];
        let rows = compare("core", table, &repeats).unwrap();
        let [row] = rows.as_slice() else {
            panic!("one row expected: {rows:?}")
        };
        assert_eq!(row.case, "spsc");
        assert_eq!(row.unit, Unit::Msgs);
        // Rates: 1e6, 2.5e5, 5e5 msgs/s.
        assert_eq!(row.dndm.min, 2.5e5);
        assert_eq!(row.dndm.median, 5e5);
        assert_eq!(row.dndm.max, 1e6);
        assert_eq!(row.baseline.median, 5e5);
        // Ratios per repeat: 2, 0.5, 1.
        assert_eq!(
            (row.ratio.min, row.ratio.median, row.ratio.max),
            (0.5, 1.0, 2.0)
        );
        assert_eq!(row.repeats, 3);
        let tsv = render_tsv(&rows);
        let mut lines = tsv.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("crate\tcase\tunit\tdndm\tbaseline\tbaseline_name\tratio\tratio_min")
        );
        assert_eq!(
            lines.next().unwrap(),
            "core\tspsc\tmsgs/s\t5.0000e5\t5.0000e5\tcrossbeam\t1.000\t0.500\t2.000\t\
             2.5000e5\t1.0000e6\t5.0000e5\t5.0000e5\t3"
        );
    }

    #[test]
    fn times_use_the_median_and_batch_cases_are_named() {
        let table = &TABLE[1..3];
        let repeats = [repeat(&[
            ("spsc/dndm_batch64", m(1e6, Some(1e3))),
            ("spsc/rtrb_chunk", m(5e5, Some(1e3))),
            ("pingpong/dndm", m(100.0, None)),
            ("pingpong/crossbeam", m(150.0, None)),
        ])];
        let rows = compare("core", table, &repeats).unwrap();
        assert_eq!(rows[0].case, "spsc [dndm_batch64]");
        assert_eq!(rows[0].ratio.median, 0.5);
        assert_eq!(rows[1].unit, Unit::Nanos);
        assert_eq!(rows[1].dndm.median, 100.0);
        assert_eq!(rows[1].ratio.median, 1.5);
    }

    #[test]
    fn a_rate_without_throughput_or_a_missing_repeat_fails() {
        let table = &TABLE[..1];
        let no_tp = [repeat(&[
            ("spsc/dndm", m(1e6, None)),
            ("spsc/crossbeam", m(1e6, Some(1e3))),
        ])];
        let err = compare("core", table, &no_tp).unwrap_err();
        assert!(err.contains("no Elements throughput"), "{err}");
        let missing = [repeat(&[("spsc/dndm", m(1e6, Some(1e3)))])];
        let err = compare("core", table, &missing).unwrap_err();
        assert!(
            err.contains("`spsc/crossbeam` has no result in repeat 1"),
            "{err}"
        );
    }
}
