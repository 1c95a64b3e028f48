//! The two matcher indexes as containers: how many entries they hold, when
//! they are empty, what a removal reports, and that hashed and pattern
//! entries are counted and matched alike.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use dndm_router::{Pattern, Route, RouteIndex, RouteKey, Selector, SelectorIndex};

fn route(s: &str) -> Route {
    Route::parse(s).unwrap()
}

fn pattern(s: &str) -> Selector {
    Selector::Pattern(Pattern::parse(s).unwrap())
}

fn hashed(path: &str) -> Route {
    let key = RouteKey::derive(b"index tests");
    Route::hashed(&key, "T", "", path).unwrap()
}

#[test]
fn selector_index_counts_entries() {
    let mut index = SelectorIndex::new();
    assert_eq!(index.len(), 0);
    assert!(index.is_empty());

    let selectors = [
        pattern("T@a.b"),
        pattern("T@a.*"),
        pattern("T@**"),
        pattern("U@a.b"),
        Selector::Hashed(hashed("a.b")),
    ];
    for (i, s) in selectors.iter().enumerate() {
        index.insert(s, i);
        assert_eq!(index.len(), i + 1);
        assert!(!index.is_empty());
    }
    // Duplicates are kept and counted.
    index.insert(&selectors[0], 0);
    index.insert(&selectors[4], 4);
    assert_eq!(index.len(), 7);

    // A miss changes nothing.
    assert!(!index.remove(&pattern("T@a.c"), &0));
    assert!(!index.remove(&selectors[0], &99));
    assert!(!index.remove(&Selector::Hashed(hashed("x")), &4));
    assert_eq!(index.len(), 7);

    let mut left = 7;
    for (i, s) in selectors.iter().enumerate().rev() {
        while index.remove(s, &i) {
            left -= 1;
            assert_eq!(index.len(), left);
        }
        assert!(!index.is_empty() || left == 0);
    }
    assert_eq!(left, 0);
    assert_eq!(index.len(), 0);
    assert!(index.is_empty());
}

#[test]
fn route_index_counts_entries() {
    let mut index = RouteIndex::new();
    assert_eq!(index.len(), 0);
    assert!(index.is_empty());

    let routes = [
        route("T@a.b"),
        route("T@a.c.d"),
        route("U@a.b"),
        hashed("a.b"),
    ];
    for (i, r) in routes.iter().enumerate() {
        index.insert(r, i);
        assert_eq!(index.len(), i + 1);
        assert!(!index.is_empty());
    }
    index.insert(&routes[1], 1);
    index.insert(&routes[3], 3);
    assert_eq!(index.len(), 6);

    assert!(!index.remove(&route("T@a.x"), &0));
    assert!(!index.remove(&routes[0], &7));
    assert!(!index.remove(&hashed("zz"), &3));
    assert_eq!(index.len(), 6);

    let mut left = 6;
    for (i, r) in routes.iter().enumerate() {
        while index.remove(r, &i) {
            left -= 1;
            assert_eq!(index.len(), left);
        }
    }
    assert_eq!(left, 0);
    assert!(index.is_empty());
}

#[test]
fn matching_is_sorted_and_without_duplicates() {
    let mut index = SelectorIndex::new();
    // Values arrive out of order and twice, through different selectors.
    index.insert(&pattern("T@a.**"), 5);
    index.insert(&pattern("T@a.b"), 3);
    index.insert(&pattern("T@*.b"), 5);
    index.insert(&pattern("T@**"), 1);
    index.insert(&pattern("T@a.b"), 3);
    index.insert(&pattern("T@c"), 9);
    let r = route("T@a.b");
    assert_eq!(index.matching(&r), [1, 3, 5]);
    let mut out = vec![42];
    index.matching_into(&r, &mut out);
    assert_eq!(out, [1, 3, 5], "the buffer is cleared first");
    index.matching_into(&route("T@c"), &mut out);
    assert_eq!(out, [1, 9]);
    index.matching_into(&route("V@a.b"), &mut out);
    assert!(out.is_empty());

    let h = hashed("a.b");
    index.insert(&Selector::Hashed(h.clone()), 8);
    index.insert(&Selector::Hashed(h.clone()), 2);
    index.insert(&Selector::Hashed(h.clone()), 8);
    assert_eq!(index.matching(&h), [2, 8]);
    assert_eq!(index.matching(&hashed("a.c")), Vec::<i32>::new());

    let mut routes = RouteIndex::new();
    routes.insert(&route("T@a.b"), 7);
    routes.insert(&route("T@a.c"), 4);
    routes.insert(&route("T@a.b"), 7);
    routes.insert(&route("T@x.b"), 6);
    routes.insert(&h, 3);
    routes.insert(&h, 3);
    assert_eq!(routes.matching(&pattern("T@*.b")), [6, 7]);
    assert_eq!(routes.matching(&pattern("T@a.**")), [4, 7]);
    assert_eq!(routes.matching(&Selector::Hashed(h)), [3]);
}
