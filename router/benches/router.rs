//! Matcher lookup, the worst pattern for match enumeration and link
//! formation, each beside a baseline measured in the same run
//! (`cargo xtask bench router`).

use std::any::Any;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use dndm_router::{
    IntentPort, InterestPort, LinkInfo, Linker, Pattern, PortError, Route, RouteIndex, Selector,
    SelectorIndex,
};

const PATTERNS: usize = 10_000;

/// 10,000 patterns: 60 % exact, 25 % with `*`, 15 % with `**`.
fn patterns() -> Vec<Pattern> {
    (0..PATTERNS)
        .map(|i| {
            let (a, b, c) = (i % 50, (i / 50) % 20, i / 1000);
            let text = match i % 20 {
                0..=11 => format!("fleet{a}.robot{b}.sensor{c}"),
                12..=16 => format!("fleet{a}.*.sensor{c}"),
                _ => format!("fleet{a}.**.sensor{c}"),
            };
            Pattern::new("robot.Imu", &text).expect("valid pattern")
        })
        .collect()
}

fn routes() -> Vec<Route> {
    (0..256)
        .map(|i| {
            let text = format!("fleet{}.robot{}.sensor{}", i % 50, (i * 7) % 20, i % 10);
            Route::new("robot.Imu", &text).expect("valid route")
        })
        .collect()
}

fn lookup(c: &mut Criterion) {
    let pats = patterns();
    let routes = routes();
    let mut index = SelectorIndex::new();
    for (i, p) in pats.iter().enumerate() {
        index.insert(&Selector::Pattern(p.clone()), i);
    }
    let mut g = c.benchmark_group("match_10k_patterns");
    let mut out = Vec::new();
    let mut k = 0;
    g.bench_function("dndm_index", |b| {
        b.iter(|| {
            k = (k + 1) % routes.len();
            index.matching_into(black_box(&routes[k]), &mut out);
            black_box(out.len())
        })
    });
    let mut k = 0;
    g.bench_function("naive_scan", |b| {
        b.iter(|| {
            k = (k + 1) % routes.len();
            let r = black_box(&routes[k]);
            black_box(pats.iter().filter(|p| p.matches(r)).count())
        })
    });
    g.finish();
}

/// The worst pattern for a matcher that enumerates match paths:
/// `T@**.*.**.*…`, 32 segments (16 `**`).
fn worst_pattern() -> Pattern {
    Pattern::new("robot.Imu", &["**.*"; 16].join(".")).expect("valid pattern")
}

/// `robot.Imu@a.a.a…` with `n` segments.
fn a_route(n: usize) -> Route {
    Route::new("robot.Imu", &vec!["a"; n].join(".")).expect("valid route")
}

/// The worst pattern at 32 segments against 10,000 entries in each index,
/// beside the same lookup with a plain exact route or pattern (issue 10,
/// finding 2: the bar is 10 µs per match).
fn worst_case(c: &mut Criterion) {
    // Route index: 9,968 fleet routes plus `a`, `a.a`, … up to 32 segments
    // (the worst pattern matches the 17 with 16 or more).
    let mut routes = RouteIndex::new();
    let mut n = 0;
    for (r, _) in link_routes().iter().take(LINKS - 32) {
        routes.insert(r, n);
        n += 1;
    }
    for len in 1..=32 {
        routes.insert(&a_route(len), n);
        n += 1;
    }
    assert_eq!(routes.len(), 10_000);
    let worst = Selector::Pattern(worst_pattern());
    let exact = Selector::Pattern(Pattern::exact(&a_route(32)).expect("plain route"));
    assert_eq!(routes.matching(&worst).len(), 17);
    assert_eq!(routes.matching(&exact).len(), 1);
    let mut g = c.benchmark_group("worst_pattern_32_route_index_10k");
    g.bench_function("dndm_worst_pattern", |b| {
        b.iter(|| black_box(routes.matching(black_box(&worst)).len()))
    });
    g.bench_function("exact_pattern", |b| {
        b.iter(|| black_box(routes.matching(black_box(&exact)).len()))
    });
    g.finish();

    // Selector index: 9,999 fleet patterns (exact, `*`, `**`) plus the
    // worst pattern, queried with a 32-segment route it matches.
    let mut selectors = SelectorIndex::new();
    for (i, p) in patterns().into_iter().take(PATTERNS - 1).enumerate() {
        selectors.insert(&Selector::Pattern(p), i);
    }
    selectors.insert(&worst, PATTERNS - 1);
    assert_eq!(selectors.len(), 10_000);
    let long = a_route(32);
    let plain = Route::new("robot.Imu", "fleet3.robot3.sensor3").expect("valid route");
    let mut out = Vec::new();
    selectors.matching_into(&long, &mut out);
    assert_eq!(out, [PATTERNS - 1]);
    selectors.matching_into(&plain, &mut out);
    assert!(!out.is_empty());
    let mut g = c.benchmark_group("worst_pattern_32_selector_index_10k");
    g.bench_function("dndm_worst_pattern", |b| {
        b.iter(|| {
            selectors.matching_into(black_box(&long), &mut out);
            black_box(out.len())
        })
    });
    g.bench_function("exact_route", |b| {
        b.iter(|| {
            selectors.matching_into(black_box(&plain), &mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

/// A port that links instantly: measures the linker, not a channel.
struct Nop;

impl IntentPort for Nop {
    fn connect(&self, _: &dyn InterestPort, _: LinkInfo<'_>) -> Result<(), PortError> {
        Ok(())
    }
    fn disconnect(&self, _: &dyn InterestPort, _: LinkInfo<'_>) {}
}

impl InterestPort for Nop {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

const LINKS: usize = 10_000;

fn link_routes() -> Vec<(Route, Selector)> {
    (0..LINKS)
        .map(|i| {
            let path = format!("site{}.robot{}.topic{}", i % 10, (i / 10) % 100, i / 1000);
            let r = Route::new("robot.Imu", &path).expect("valid route");
            let s = Selector::Pattern(Pattern::exact(&r).expect("plain route"));
            (r, s)
        })
        .collect()
}

fn links(c: &mut Criterion) {
    let pairs = link_routes();
    let mut g = c.benchmark_group("link_10k_x_10k");
    // One link per (intent, interest) pair: report the time per link.
    g.bench_function("dndm_linker", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let linker = Linker::new();
                let port = Arc::new(Nop);
                let start = Instant::now();
                let intents: Vec<_> = pairs
                    .iter()
                    .map(|(r, _)| linker.add_intent(r.clone(), 1, port.clone()).expect("open"))
                    .collect();
                let interests: Vec<_> = pairs
                    .iter()
                    .map(|(_, s)| {
                        linker
                            .add_interest(s.clone(), 1, port.clone())
                            .expect("open")
                    })
                    .collect();
                total += start.elapsed() / LINKS as u32;
                assert_eq!(linker.link_count(), LINKS);
                drop((intents, interests));
            }
            total
        })
    });
    // The naive linker: every interest compares its text with every
    // intent's (no index), then links the equal pairs.
    let texts: Vec<(String, String)> = pairs
        .iter()
        .map(|(r, s)| (r.to_string(), s.to_string()))
        .collect();
    g.bench_function("naive_pairwise", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let mut linked: Vec<(usize, usize)> = Vec::new();
                for (j, (_, s)) in texts.iter().enumerate() {
                    for (i, (r, _)) in texts.iter().enumerate() {
                        if black_box(s) == r {
                            linked.push((i, j));
                        }
                    }
                }
                total += start.elapsed() / LINKS as u32;
                assert_eq!(linked.len(), LINKS);
            }
            total
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = lookup, worst_case, links
}
criterion_main!(benches);
