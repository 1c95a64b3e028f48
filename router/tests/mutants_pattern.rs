//! Pattern behaviour that `cargo xtask mutants router` found no test observing.

use dndm_router::{MAX_PATH_LEN, MAX_SEGMENTS, Pattern, PatternLimits, Route, RouteKey, Selector};

fn read(l: PatternLimits) -> (usize, usize, usize) {
    (l.max_segments(), l.max_any(), l.max_len())
}

/// A node passing its limits on (to a linker, to a peer session) reads back
/// exactly what was configured, and the documented defaults.
#[test]
fn pattern_limits_read_back_what_they_were_built_with() {
    assert_eq!(
        read(PatternLimits::new()),
        (MAX_SEGMENTS, PatternLimits::DEFAULT_MAX_ANY, MAX_PATH_LEN)
    );
    assert_eq!(read(PatternLimits::default()), read(PatternLimits::new()));
    assert_eq!(
        read(PatternLimits::unlimited()),
        (MAX_SEGMENTS, MAX_SEGMENTS, MAX_PATH_LEN)
    );
    let custom = PatternLimits::new()
        .with_max_segments(3)
        .with_max_any(2)
        .with_max_len(40);
    assert_eq!(read(custom), (3, 2, 40));
}

/// The exact pattern of a plain route is the pattern a user would write for
/// it: it matches that route and no other; a hashed route has none.
#[test]
fn the_exact_pattern_of_a_route_matches_that_route_only() {
    let route = Route::new("Temp", "lab.room1").unwrap();
    let exact = Pattern::exact(&route).expect("a plain route has an exact pattern");
    assert_eq!(exact, Pattern::new("Temp", "lab.room1").unwrap());
    assert!(exact.is_exact());
    assert!(exact.matches(&route));
    assert!(!exact.matches(&Route::new("Temp", "lab.room2").unwrap()));
    assert!(!exact.matches(&Route::new("Humidity", "lab.room1").unwrap()));
    let hashed = Route::hashed(&RouteKey::derive(b"key"), "Temp", "lab", "lab.room1").unwrap();
    assert_eq!(Pattern::exact(&hashed), None);
}

/// A pattern is exact only when no segment is a wildcard.
#[test]
fn a_wildcard_anywhere_makes_a_pattern_inexact() {
    assert!(Pattern::parse("Temp@lab.room1").unwrap().is_exact());
    for wild in ["Temp@lab.*", "Temp@**", "Temp@*.room1", "Temp@lab.**.x"] {
        assert!(!Pattern::parse(wild).unwrap().is_exact(), "{wild}");
    }
}

/// Segments print as they are written, so a failed assertion on a pattern's
/// segments reads like the pattern.
#[test]
fn segments_debug_print_as_written() {
    let pattern = Pattern::parse("Temp@lab.*.**").unwrap();
    assert_eq!(format!("{:?}", pattern.segments()), "[lab, *, **]");
}

/// A pattern selector picks the plain routes its pattern matches; a hashed
/// selector picks exactly its own hashed route, never another hashed route
/// nor the plain route of the same name and path.
#[test]
fn selectors_pick_what_they_name() {
    let key = RouteKey::derive(b"key");
    let plain = Route::new("Temp", "lab.room1").unwrap();
    let hashed = Route::hashed(&key, "Temp", "lab", "lab.room1").unwrap();
    let other_hashed = Route::hashed(&key, "Temp", "lab", "lab.room2").unwrap();

    let by_pattern = Selector::from(Pattern::parse("Temp@lab.*").unwrap());
    assert!(by_pattern.matches(&plain));
    assert!(!by_pattern.matches(&Route::new("Temp", "yard.room1").unwrap()));
    assert!(!by_pattern.matches(&hashed));

    let by_hash = Selector::Hashed(hashed.clone());
    assert!(by_hash.matches(&hashed));
    assert!(!by_hash.matches(&other_hashed));
    assert!(!by_hash.matches(&plain));
}

/// Patterns and selectors debug-print as the text that parses back to them.
#[test]
fn patterns_and_selectors_debug_print_their_text() {
    let pattern = Pattern::parse("Temp@lab.*.**").unwrap();
    assert_eq!(format!("{pattern:?}"), "Pattern(Temp@lab.*.**)");
    assert_eq!(
        format!("{:?}", Selector::from(pattern)),
        "Selector(Temp@lab.*.**)"
    );
}
