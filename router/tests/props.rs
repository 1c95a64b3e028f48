//! The matcher indexes against a naive reference matcher, on random routes
//! and patterns.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use dndm_router::{Pattern, Route, RouteIndex, Selector, SelectorIndex};
use proptest::prelude::*;

/// The reference: plain recursion over segments.
fn naive(pat: &[&str], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|k| naive(rest, &path[k..])),
        Some((&"*", rest)) => !path.is_empty() && naive(rest, &path[1..]),
        Some((lit, rest)) => path.first() == Some(lit) && naive(rest, &path[1..]),
    }
}

fn seg() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("a"), Just("b"), Just("c")]
}

fn pseg() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("a"), Just("b"), Just("*"), Just("**")]
}

fn ty() -> impl Strategy<Value = &'static str> {
    prop_oneof![3 => Just("T"), 1 => Just("U")]
}

fn route() -> impl Strategy<Value = (&'static str, Vec<&'static str>)> {
    (ty(), prop::collection::vec(seg(), 1..5))
}

fn pattern() -> impl Strategy<Value = (&'static str, Vec<&'static str>)> {
    (ty(), prop::collection::vec(pseg(), 1..5))
}

fn mk_route((t, s): &(&str, Vec<&str>)) -> Route {
    Route::new(t, &s.join(".")).unwrap()
}

fn mk_pattern((t, s): &(&str, Vec<&str>)) -> Pattern {
    Pattern::new(t, &s.join(".")).unwrap()
}

fn naive_match(p: &(&str, Vec<&str>), r: &(&str, Vec<&str>)) -> bool {
    p.0 == r.0 && naive(&p.1, &r.1)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn pattern_matches_like_naive(p in pattern(), r in route()) {
        prop_assert_eq!(mk_pattern(&p).matches(&mk_route(&r)), naive_match(&p, &r));
    }

    #[test]
    fn selector_index_agrees(pats in prop::collection::vec(pattern(), 0..40), routes in prop::collection::vec(route(), 1..10), remove in prop::collection::vec(any::<bool>(), 40)) {
        let mut index = SelectorIndex::new();
        for (i, p) in pats.iter().enumerate() {
            index.insert(&Selector::Pattern(mk_pattern(p)), i);
        }
        // Remove some again, to exercise pruning.
        let mut live = vec![true; pats.len()];
        for (i, p) in pats.iter().enumerate() {
            if remove[i] {
                prop_assert!(index.remove(&Selector::Pattern(mk_pattern(p)), &i));
                live[i] = false;
            }
        }
        prop_assert_eq!(index.len(), live.iter().filter(|l| **l).count());
        for r in &routes {
            let want: Vec<usize> = (0..pats.len()).filter(|&i| live[i] && naive_match(&pats[i], r)).collect();
            prop_assert_eq!(index.matching(&mk_route(r)), want);
        }
    }

    #[test]
    fn route_index_agrees(routes in prop::collection::vec(route(), 0..40), pats in prop::collection::vec(pattern(), 1..10), remove in prop::collection::vec(any::<bool>(), 40)) {
        let mut index = RouteIndex::new();
        for (i, r) in routes.iter().enumerate() {
            index.insert(&mk_route(r), i);
        }
        let mut live = vec![true; routes.len()];
        for (i, r) in routes.iter().enumerate() {
            if remove[i] {
                prop_assert!(index.remove(&mk_route(r), &i));
                live[i] = false;
            }
        }
        for p in &pats {
            let want: Vec<usize> = (0..routes.len()).filter(|&i| live[i] && naive_match(p, &routes[i])).collect();
            prop_assert_eq!(index.matching(&Selector::Pattern(mk_pattern(p))), want);
        }
    }

    #[test]
    fn route_display_round_trips(r in route()) {
        let route = mk_route(&r);
        prop_assert_eq!(route.to_string().parse::<Route>().unwrap(), route);
    }

    #[test]
    fn pattern_display_round_trips(p in pattern()) {
        let pat = mk_pattern(&p);
        prop_assert_eq!(pat.to_string().parse::<Pattern>().unwrap(), pat);
    }

    #[test]
    fn parsing_never_panics(s in "[a-zA-Z0-9@#*. _$-]{0,40}") {
        let _ = s.parse::<Route>();
        let _ = s.parse::<Pattern>();
        let _ = s.parse::<Selector>();
    }
}

// ---------------------------------------------------------------------------
// Patterns mixing `*` and `**` (issue 10, finding 2): longer patterns biased
// towards wildcards, against routes over a two-letter alphabet so that `**`
// has many ways to match.

fn wild_seg() -> impl Strategy<Value = &'static str> {
    prop_oneof![2 => Just("*"), 2 => Just("**"), 1 => Just("a"), 1 => Just("b")]
}

fn wild_pattern() -> impl Strategy<Value = (&'static str, Vec<&'static str>)> {
    (Just("T"), prop::collection::vec(wild_seg(), 1..10))
}

fn long_route() -> impl Strategy<Value = (&'static str, Vec<&'static str>)> {
    (
        Just("T"),
        prop::collection::vec(prop_oneof![3 => Just("a"), 1 => Just("b")], 1..13),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn wild_pattern_matches_like_naive(p in wild_pattern(), r in long_route()) {
        prop_assert_eq!(mk_pattern(&p).matches(&mk_route(&r)), naive_match(&p, &r));
    }

    #[test]
    fn selector_index_agrees_on_wild_patterns(pats in prop::collection::vec(wild_pattern(), 1..30), routes in prop::collection::vec(long_route(), 1..8)) {
        let mut index = SelectorIndex::new();
        for (i, p) in pats.iter().enumerate() {
            index.insert(&Selector::Pattern(mk_pattern(p)), i);
        }
        for r in &routes {
            let want: Vec<usize> = (0..pats.len()).filter(|&i| naive_match(&pats[i], r)).collect();
            prop_assert_eq!(index.matching(&mk_route(r)), want);
        }
    }

    #[test]
    fn route_index_agrees_on_wild_patterns(routes in prop::collection::vec(long_route(), 1..30), pats in prop::collection::vec(wild_pattern(), 1..8), remove in prop::collection::vec(any::<bool>(), 30)) {
        let mut index = RouteIndex::new();
        for (i, r) in routes.iter().enumerate() {
            index.insert(&mk_route(r), i);
        }
        // Removing routes shrinks the subtree heights used for pruning.
        let mut live = vec![true; routes.len()];
        for (i, r) in routes.iter().enumerate() {
            if remove[i] {
                prop_assert!(index.remove(&mk_route(r), &i));
                live[i] = false;
            }
        }
        for p in &pats {
            let want: Vec<usize> = (0..routes.len()).filter(|&i| live[i] && naive_match(p, &routes[i])).collect();
            prop_assert_eq!(index.matching(&Selector::Pattern(mk_pattern(p))), want);
        }
    }
}
