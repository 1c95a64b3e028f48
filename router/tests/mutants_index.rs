//! The matcher indexes at their bounds: patterns and routes of the largest
//! segment count, and `**` right after a literal or a `*`.
//!
//! Written against mutants of `router/src/index.rs` that the other tests
//! let through (see `docs/mutants.md`).
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use dndm_router::{MAX_SEGMENTS, Pattern, Route, RouteIndex, Selector, SelectorIndex};

fn route(s: &str) -> Route {
    Route::parse(s).unwrap()
}

fn pattern(s: &str) -> Selector {
    Selector::Pattern(Pattern::parse(s).unwrap())
}

/// Both indexes, holding `routes` and `patterns` (values are positions).
fn both(routes: &[&str], patterns: &[&str]) -> (RouteIndex<usize>, SelectorIndex<usize>) {
    let mut by_route = RouteIndex::new();
    for (i, r) in routes.iter().enumerate() {
        by_route.insert(&route(r), i);
    }
    let mut by_selector = SelectorIndex::new();
    for (i, p) in patterns.iter().enumerate() {
        by_selector.insert(&pattern(p), i);
    }
    (by_route, by_selector)
}

#[test]
fn patterns_and_routes_of_the_largest_segment_count_match() {
    let segs: Vec<String> = (0..MAX_SEGMENTS).map(|i| format!("s{i}")).collect();
    let full = format!("T@{}", segs.join("."));
    let mut one_star = segs.clone();
    one_star[MAX_SEGMENTS - 1] = "*".into();
    let starred = format!("T@{}", one_star.join("."));
    let shorter = format!("T@{}", segs[..MAX_SEGMENTS - 1].join("."));

    let (by_route, by_selector) = both(&[&full, &shorter], &[&full, &starred, "T@**"]);
    assert_eq!(by_route.matching(&pattern(&full)), [0]);
    assert_eq!(by_route.matching(&pattern(&starred)), [0]);
    assert_eq!(by_route.matching(&pattern("T@**")), [0, 1]);
    assert_eq!(by_selector.matching(&route(&full)), [0, 1, 2]);
    assert_eq!(by_selector.matching(&route(&shorter)), [2]);
}

/// A `**` straight after a literal or `*` that just matched: both the
/// position after the literal and the loop stay alive.
#[test]
fn any_after_a_literal_or_one() {
    let routes = ["T@a", "T@a.b", "T@a.b.c", "T@x.b", "T@b"];
    let patterns = ["T@a.**", "T@*.**.c", "T@a.**.b", "T@**.b.**"];
    let (by_route, by_selector) = both(&routes, &patterns);
    assert_eq!(by_route.matching(&pattern("T@a.**")), [0, 1, 2]);
    assert_eq!(by_route.matching(&pattern("T@*.**.c")), [2]);
    assert_eq!(by_route.matching(&pattern("T@a.**.b")), [1]);
    assert_eq!(by_route.matching(&pattern("T@**.b.**")), [1, 2, 3, 4]);
    assert_eq!(by_selector.matching(&route("T@a")), [0]);
    assert_eq!(by_selector.matching(&route("T@a.b")), [0, 2, 3]);
    assert_eq!(by_selector.matching(&route("T@a.b.c")), [0, 1, 3]);
    assert_eq!(by_selector.matching(&route("T@x.b")), [3]);
}

/// More `**` nodes than one 64-bit word of "entered" marks: each is still
/// entered in a lookup that reaches it.
#[test]
fn more_than_sixty_four_any_nodes() {
    let patterns: Vec<String> = (0..70).map(|i| format!("T@p{i}.**")).collect();
    let mut index = SelectorIndex::new();
    for (i, p) in patterns.iter().enumerate() {
        index.insert(&pattern(p), i);
    }
    index.insert(&pattern("T@**"), 70);
    for i in [0, 63, 64, 69] {
        assert_eq!(index.matching(&route(&format!("T@p{i}.x"))), [i, 70]);
    }
}

/// Removing a `*` node leaves the numbers of live `**` nodes alone: a `**`
/// added later does not share its mark with one already there.
#[test]
fn removing_a_one_node_frees_no_any_number() {
    let mut index = SelectorIndex::new();
    index.insert(&pattern("T@a.**"), 0);
    index.insert(&pattern("T@*.c"), 1);
    assert!(index.remove(&pattern("T@*.c"), &1));
    index.insert(&pattern("T@**"), 2);
    assert_eq!(index.matching(&route("T@a.q")), [0, 2]);
    assert_eq!(index.matching(&route("T@a")), [0, 2]);
    // And removing a `**` node does free its number for the next one.
    assert!(index.remove(&pattern("T@a.**"), &0));
    index.insert(&pattern("T@b.**"), 3);
    assert_eq!(index.matching(&route("T@b.q")), [2, 3]);
}
