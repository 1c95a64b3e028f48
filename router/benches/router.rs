//! Matcher lookup, the worst pattern for match enumeration, link formation
//! and the peer session's data path, each beside a baseline measured in the
//! same run (`cargo xtask bench router`).

use std::any::Any;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dndm_codec::{FrameBuffer, FrameHeader, frames};
use dndm_router::session::{NodeId, Origin, Session, SessionConfig};
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

const BATCH: usize = 1000;

fn pump(from: &mut Session, to: &mut Session, now: Duration) {
    let mut buf = FrameBuffer::new();
    from.poll_transmit(now, &mut buf);
    for f in frames(buf.as_bytes()) {
        let f = f.expect("well formed");
        to.handle_frame(now, f.header(), f.payload())
            .expect("accepted");
    }
}

/// Two sessions connected in memory, `a` with one intent declared.
fn session_pair() -> (Session, Session, dndm_router::session::LocalAlias) {
    let now = Duration::ZERO;
    let mut a = Session::new(SessionConfig::new(NodeId::from_bytes([1; 16]), "a"), now);
    let mut b = Session::new(SessionConfig::new(NodeId::from_bytes([2; 16]), "b"), now);
    let route = Route::new("robot.Imu", "robot.arm.imu").expect("valid route");
    let alias = a
        .declare_intent(&route, 1, Origin::Local)
        .expect("open")
        .expect("exported");
    for _ in 0..2 {
        pump(&mut a, &mut b, now);
        pump(&mut b, &mut a, now);
    }
    while b.poll_event().is_some() {}
    (a, b, alias)
}

/// 1000 data frames of 64 bytes: queued by one session, batched into one
/// buffer, resolved by the other; the baseline frames and parses the same
/// bytes with the codec alone (no alias tables, no checks).
fn session_data(c: &mut Criterion) {
    let (mut a, mut b, alias) = session_pair();
    let payload = [7u8; 64];
    let mut g = c.benchmark_group("session_data_64B");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut buf = FrameBuffer::new();
    let now = Duration::from_millis(1);
    g.bench_function("dndm_session", |bench| {
        bench.iter(|| {
            buf.clear();
            for _ in 0..BATCH {
                a.send_data(now, alias, &payload[..]).expect("open");
            }
            a.poll_transmit(now, &mut buf);
            let mut n = 0;
            for f in frames(buf.as_bytes()) {
                let f = f.expect("well formed");
                if let Ok(Some(_)) = b.handle_frame(now, f.header(), f.payload()) {
                    n += 1;
                }
            }
            assert_eq!(n, BATCH);
            black_box(n)
        })
    });
    let mut raw = FrameBuffer::new();
    g.bench_function("raw_frames", |bench| {
        bench.iter(|| {
            raw.clear();
            for i in 0..BATCH {
                let h = FrameHeader::data(1).with_seq(i as u64);
                raw.push_raw(&h, &payload[..]).expect("fits");
            }
            let n = frames(raw.as_bytes())
                .filter(|f| f.as_ref().is_ok_and(|f| f.header().route == 1))
                .count();
            assert_eq!(n, BATCH);
            black_box(n)
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
    targets = lookup, worst_case, links, session_data
}
criterion_main!(benches);
