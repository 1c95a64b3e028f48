//! Policy decisions against a naive model: every path over a small
//! alphabet, up to a length no witness needs to exceed.
//!
//! * a deny rule refuses a pattern exactly when some path matches both;
//! * an allow rule admits a pattern only if every path the pattern matches
//!   is inside the rule (sound), and admits an exact route exactly when it
//!   matches it (complete for routes).
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use dndm_router::{Pattern, Route, Selector};
use dndm_scope::{Op, Policy, Target};
use proptest::prelude::*;

const LETTERS: [&str; 2] = ["a", "b"];
/// Patterns have at most 3 segments: a common witness never needs more
/// than 6 segments.
const MAX_LEN: usize = 6;

fn segment() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("a"), Just("b"), Just("*"), Just("**")]
}

fn pattern() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..=3).prop_map(|s| s.join("."))
}

fn routes() -> Vec<Route> {
    let mut out = Vec::new();
    let mut layer: Vec<String> = LETTERS.iter().map(|s| s.to_string()).collect();
    for _ in 0..MAX_LEN {
        let mut next = Vec::new();
        for p in &layer {
            out.push(Route::new("T", p).unwrap());
            for l in LETTERS {
                next.push(format!("{p}.{l}"));
            }
        }
        layer = next;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn deny_refuses_a_pattern_iff_some_path_matches_both(rule in pattern(), target in pattern()) {
        let policy = Policy::new().deny(&[Op::Subscribe], &format!("T@/{rule}")).unwrap();
        let r = Pattern::new("T", &rule).unwrap();
        let t = Pattern::new("T", &target).unwrap();
        let model = routes().iter().any(|x| r.matches(x) && t.matches(x));
        let selector = Selector::Pattern(t);
        let denied = policy.check(Op::Subscribe, Target::Selector(&selector)).is_err();
        prop_assert_eq!(denied, model, "rule {} target {}", rule, target);
    }

    #[test]
    fn allow_admits_only_patterns_it_covers(rule in pattern(), target in pattern()) {
        let policy = Policy::new().allow(&[Op::Subscribe], &format!("/{rule}")).unwrap();
        let r = Pattern::new("T", &rule).unwrap();
        let t = Pattern::new("T", &target).unwrap();
        let selector = Selector::Pattern(t.clone());
        if policy.check(Op::Subscribe, Target::Selector(&selector)).is_ok() {
            for x in routes() {
                prop_assert!(!t.matches(&x) || r.matches(&x), "{} escapes {} at {}", target, rule, x);
            }
        }
    }

    #[test]
    fn allow_admits_a_route_iff_it_matches(rule in pattern(), path in prop::collection::vec(prop_oneof![Just("a"), Just("b")], 1..=4)) {
        let policy = Policy::new().allow(&[Op::Publish], &format!("/{rule}")).unwrap();
        let route = Route::new("T", &path.join(".")).unwrap();
        let r = Pattern::new("T", &rule).unwrap();
        let ok = policy.check(Op::Publish, Target::Route(&route)).is_ok();
        prop_assert_eq!(ok, r.matches(&route));
    }
}
