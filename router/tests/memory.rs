//! The indexes give memory back: after every entry is removed, the live heap
//! is where it was before they were inserted, round after round with new
//! routes and patterns, and it never peaks above what one round holds.
//!
//! This binary installs a counting global allocator, so it holds one test.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use dndm_router::{Pattern, Route, RouteIndex, RouteKey, Selector, SelectorIndex};

struct Counting;

thread_local! {
    /// Heap bytes this thread allocated and not yet freed (the test's work
    /// stays on its thread; the harness's threads allocate on their own).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The highest `LIVE` since the last [`reset_peak`].
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // The new block arrives before the old one leaves.
        grow(new_size);
        shrink(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn grow(bytes: usize) {
    let _ = LIVE.try_with(|l| {
        l.set(l.get() + bytes as isize);
        let _ = PEAK.try_with(|p| p.set(p.get().max(l.get())));
    });
}

fn shrink(bytes: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get() - bytes as isize));
}

fn peak() -> isize {
    PEAK.with(Cell::get)
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

fn reset_peak() {
    PEAK.with(|p| p.set(live()));
}

/// The selectors of one round: every shape of pattern (literals, `*`, `**`,
/// mixed), on two types, plus hashed routes; literals differ per round.
fn selectors(round: usize, key: &RouteKey) -> Vec<Selector> {
    let mut out = Vec::new();
    for ty in ["T", "U"] {
        for p in [
            format!("a{round}.b"),
            format!("a{round}.*"),
            format!("a{round}.**"),
            format!("*.c{round}"),
            format!("**.c{round}.d"),
            format!("a{round}.*.x{round}.**"),
        ] {
            out.push(Selector::Pattern(Pattern::new(ty, &p).unwrap()));
        }
    }
    out.push(Selector::Hashed(hashed(round, key)));
    out
}

fn routes(round: usize, key: &RouteKey) -> Vec<Route> {
    let mut out = Vec::new();
    for ty in ["T", "U"] {
        for p in [
            format!("a{round}.b"),
            format!("a{round}.b.c{round}"),
            format!("x.a{round}"),
        ] {
            out.push(Route::new(ty, &p).unwrap());
        }
    }
    out.push(hashed(round, key));
    out
}

fn hashed(round: usize, key: &RouteKey) -> Route {
    Route::hashed(key, "T", "", &format!("h{round}")).unwrap()
}

const ROUNDS: usize = 300;

#[test]
fn indexes_return_to_their_empty_footprint() {
    let key = RouteKey::derive(b"memory test");
    let mut by_route = SelectorIndex::new();
    let mut by_pattern = RouteIndex::new();

    let mut round = |r: usize| {
        // Built before the baseline, dropped after the check.
        let (sels, rts) = (selectors(r, &key), routes(r, &key));
        let start = live();
        for (i, s) in sels.iter().enumerate() {
            by_route.insert(s, i);
        }
        for (i, rt) in rts.iter().enumerate() {
            by_pattern.insert(rt, i);
        }
        assert!(!by_route.matching(&rts[0]).is_empty());
        assert!(!by_pattern.matching(&sels[1]).is_empty());
        for (i, s) in sels.iter().enumerate() {
            assert!(by_route.remove(s, &i));
        }
        for (i, rt) in rts.iter().enumerate() {
            assert!(by_pattern.remove(rt, &i));
        }
        assert!(by_route.is_empty() && by_pattern.is_empty());
        live() - start
    };

    // Warm up: the per-type maps reach their size.
    round(0);
    round(1);
    let base = live();
    reset_peak();
    let kept = round(2);
    let one_round = peak() - base;
    assert_eq!(kept, 0, "{kept} bytes kept after removing everything");

    reset_peak();
    for r in 3..ROUNDS {
        let kept = round(r);
        assert_eq!(
            kept, 0,
            "round {r}: {kept} bytes kept after removing everything"
        );
    }
    // During the run: never more than one round's entries (with room for
    // longer literals in later rounds).
    let peak = peak() - base;
    assert!(
        peak <= one_round * 2,
        "live heap peaked {peak} bytes above the start; one round holds {one_round}"
    );
    assert_eq!(live(), base);
}
