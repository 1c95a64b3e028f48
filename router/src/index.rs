//! Matcher indexes: which selectors match a route, which routes match a
//! selector. Both are segment tries, one per type name, plus an exact map for
//! hashed routes. Results are sorted and free of duplicates, so callers are
//! deterministic.
//!
//! # Bounded work
//!
//! A pattern is a small automaton (a `**` loops on any segment), and a trie
//! walk that tried every way a pattern can match (`**.*.**.*…` against
//! `a.a.a…`) would be exponential in the number of `**`. Both lookups are
//! instead simulations of that automaton in which each state is expanded
//! once:
//!
//! * [`SelectorIndex`] walks the route's segments left to right and keeps
//!   the set of pattern-trie nodes reachable after each prefix. A node
//!   reached through a literal or `*` edge has one parent, so it appears at
//!   most once per position; a `**` node, once entered, stays active for the
//!   rest of the route, and a bit set over the index's `**` nodes makes
//!   sure it is entered once. A node whose patterns need more segments
//!   than the route has left is dropped (each node keeps a lower bound).
//!   Work: O(trie nodes reached × (route segments + 1)).
//! * [`RouteIndex`] walks the route trie depth first and carries, as a bit
//!   set, the pattern positions alive after each path prefix (at most
//!   [`MAX_SEGMENTS`] + 1 of them, so one `u64`). A trie is a tree, so each
//!   node is visited at most once, and a subtree is skipped as soon as no
//!   position is alive or its routes are too short for what the pattern
//!   still needs. Work: O(trie nodes visited), each step O(distinct literals
//!   of the pattern).
//!
//! Neither bound depends on how the pattern is written.
//! [`PatternLimits`](crate::PatternLimits) additionally caps how large a
//! pattern the linker accepts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use smallvec::SmallVec;

use crate::pattern::{Pattern, Segment, Selector};
use crate::route::{MAX_SEGMENTS, Route, TypeName};

// Pattern positions 0..=MAX_SEGMENTS fit in the `u64` bit sets below.
const _: () = assert!(MAX_SEGMENTS < 64);

/// Numbers for `**` nodes, so that a lookup can mark the ones it entered in
/// a bit set sized by how many `**` nodes exist (freed numbers are reused).
#[derive(Debug, Default)]
struct LoopIds {
    next: u32,
    free: Vec<u32>,
}

impl LoopIds {
    fn take(&mut self) -> u32 {
        self.free.pop().unwrap_or_else(|| {
            let id = self.next;
            self.next += 1;
            id
        })
    }

    fn words(&self) -> usize {
        (self.next as usize).div_ceil(64)
    }
}

type Segs<'a> = SmallVec<[&'a str; 8]>;

fn route_parts(route: &Route) -> Option<(&TypeName, Segs<'_>)> {
    if route.is_hashed() {
        return None;
    }
    Some((route.type_name()?, route.path()?.segments().collect()))
}

fn remove_value<V: PartialEq>(values: &mut Vec<V>, v: &V) -> bool {
    match values.iter().position(|x| x == v) {
        Some(i) => {
            values.swap_remove(i);
            true
        }
        None => false,
    }
}

// ---------------------------------------------------------------------------
// Selectors, queried by route

#[derive(Debug)]
struct PNode<V> {
    literal: HashMap<Arc<str>, PNode<V>>,
    one: Option<Box<PNode<V>>>,
    any: Option<Box<PNode<V>>>,
    values: Vec<V>,
    /// For a `**` node (the `any` child of its parent): its [`LoopIds`] number.
    loop_id: u32,
    /// A lower bound on the route segments still needed to reach a value
    /// below this node (exact after inserts; removals may leave it lower
    /// than the truth, which only weakens pruning).
    min_len: usize,
}

impl<V> Default for PNode<V> {
    fn default() -> Self {
        Self {
            literal: HashMap::new(),
            one: None,
            any: None,
            values: Vec::new(),
            loop_id: 0,
            min_len: usize::MAX,
        }
    }
}

impl<V> PNode<V> {
    fn is_empty(&self) -> bool {
        self.values.is_empty()
            && self.literal.is_empty()
            && self.one.is_none()
            && self.any.is_none()
    }
}

impl<V: Clone + PartialEq> PNode<V> {
    /// Appends the values of every pattern in this trie that matches `segs`
    /// (with duplicates when a value was inserted twice; never because a
    /// pattern matches in several ways). See the module docs for the bound.
    fn collect(&self, segs: &[&str], entered: &mut [u64], out: &mut Vec<V>) {
        // Nodes alive at the current position (each at most once), the
        // nodes alive at the next one, and every `**` node entered so far
        // (entered at position i, it is alive at every position >= i;
        // `entered` has its bit set).
        let mut nodes: Vec<&PNode<V>> = vec![self];
        let mut next: Vec<&PNode<V>> = Vec::new();
        let mut loops: Vec<&PNode<V>> = Vec::new();
        let len = segs.len();
        for i in 0..=len {
            // A node whose patterns need more segments than are left is
            // dropped (the bound only grows shorter as `i` grows).
            let left = len - i;
            nodes.retain(|n| n.min_len <= left);
            let mut k = 0;
            while let Some(&node) = nodes.get(k) {
                k += 1;
                if let Some(any) = node.any.as_deref()
                    && let Some(word) = entered.get_mut(any.loop_id as usize / 64)
                    && *word & (1 << (any.loop_id % 64)) == 0
                {
                    *word |= 1 << (any.loop_id % 64);
                    // `**` matching zero segments: its node is alive here.
                    if any.min_len <= left {
                        loops.push(any);
                        nodes.push(any);
                    }
                }
                let Some(seg) = segs.get(i) else {
                    out.extend(node.values.iter().cloned());
                    continue;
                };
                if let Some(child) = node.literal.get(*seg) {
                    next.push(child);
                }
                if let Some(child) = node.one.as_deref() {
                    next.push(child);
                }
            }
            // Every `**` entered so far swallows segs[i] and stays alive.
            // Literal and `*` children never coincide with `**` nodes, and
            // `**` nodes are listed once, so `next` has no duplicates.
            if left > 0 {
                loops.retain(|n| n.min_len < left);
            }
            next.extend(loops.iter().copied());
            std::mem::swap(&mut nodes, &mut next);
            next.clear();
        }
    }

    fn remove(&mut self, segs: &[Segment], v: &V, ids: &mut LoopIds) -> bool {
        let Some((first, rest)) = segs.split_first() else {
            return remove_value(&mut self.values, v);
        };
        match first {
            Segment::Literal(l) => {
                let Some(child) = self.literal.get_mut(&**l) else {
                    return false;
                };
                let removed = child.remove(rest, v, ids);
                if child.is_empty() {
                    self.literal.remove(&**l);
                }
                removed
            }
            Segment::One | Segment::Any => {
                let slot = if *first == Segment::One {
                    &mut self.one
                } else {
                    &mut self.any
                };
                let Some(child) = slot else {
                    return false;
                };
                let removed = child.remove(rest, v, ids);
                if child.is_empty() {
                    if *first == Segment::Any {
                        ids.free.push(child.loop_id);
                    }
                    *slot = None;
                }
                removed
            }
        }
    }
}

/// Selectors (patterns and hashed routes) with a value each, queried by
/// route: "which interests want this route?".
#[derive(Debug)]
pub struct SelectorIndex<V> {
    by_type: HashMap<TypeName, PNode<V>>,
    hashed: BTreeMap<Route, Vec<V>>,
    len: usize,
    loop_ids: LoopIds,
}

impl<V> Default for SelectorIndex<V> {
    fn default() -> Self {
        Self {
            by_type: HashMap::new(),
            hashed: BTreeMap::new(),
            len: 0,
            loop_ids: LoopIds::default(),
        }
    }
}

impl<V: Clone + Ord> SelectorIndex<V> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many (selector, value) entries are stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `value` under `selector` (duplicates are kept).
    pub fn insert(&mut self, selector: &Selector, value: V) {
        self.len += 1;
        match selector {
            Selector::Hashed(r) => self.hashed.entry(r.clone()).or_default().push(value),
            Selector::Pattern(p) => {
                let segs = p.segments();
                let mut need = segs.iter().filter(|s| **s != Segment::Any).count();
                let mut node = self.by_type.entry(p.type_name().clone()).or_default();
                for seg in segs {
                    node.min_len = node.min_len.min(need);
                    if *seg != Segment::Any {
                        need -= 1;
                    }
                    node = match seg {
                        Segment::Literal(l) => node.literal.entry(Arc::clone(l)).or_default(),
                        Segment::One => node.one.get_or_insert_with(Box::default),
                        Segment::Any => node.any.get_or_insert_with(|| {
                            Box::new(PNode {
                                loop_id: self.loop_ids.take(),
                                ..PNode::default()
                            })
                        }),
                    };
                }
                node.min_len = 0;
                node.values.push(value);
            }
        }
    }

    /// Removes one `value` stored under `selector`; true if found.
    pub fn remove(&mut self, selector: &Selector, value: &V) -> bool {
        let removed = match selector {
            Selector::Hashed(r) => match self.hashed.get_mut(r) {
                Some(values) => {
                    let removed = remove_value(values, value);
                    if values.is_empty() {
                        self.hashed.remove(r);
                    }
                    removed
                }
                None => false,
            },
            Selector::Pattern(p) => match self.by_type.get_mut(p.type_name()) {
                Some(root) => {
                    let removed = root.remove(p.segments(), value, &mut self.loop_ids);
                    if root.is_empty() {
                        self.by_type.remove(p.type_name());
                    }
                    removed
                }
                None => false,
            },
        };
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// The values of every selector that matches `route`, sorted, without
    /// duplicates.
    pub fn matching(&self, route: &Route) -> Vec<V> {
        let mut out = Vec::new();
        self.matching_into(route, &mut out);
        out
    }

    /// [`matching`](Self::matching) into a reused buffer (cleared first).
    pub fn matching_into(&self, route: &Route, out: &mut Vec<V>) {
        out.clear();
        if route.is_hashed() {
            if let Some(values) = self.hashed.get(route) {
                out.extend(values.iter().cloned());
            }
        } else if let Some((ty, segs)) = route_parts(route)
            && let Some(root) = self.by_type.get(ty)
        {
            let mut entered: SmallVec<[u64; 8]> = SmallVec::from_elem(0, self.loop_ids.words());
            root.collect(&segs, &mut entered, out);
        }
        if out.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
    }
}

// ---------------------------------------------------------------------------
// Routes, queried by selector

#[derive(Debug)]
struct RNode<V> {
    children: HashMap<Arc<str>, RNode<V>>,
    values: Vec<V>,
    /// The largest number of segments below this node, over every stored
    /// route through it: a subtree whose routes are all too short for what a
    /// pattern still needs is skipped without being walked.
    height: usize,
}

impl<V> Default for RNode<V> {
    fn default() -> Self {
        Self {
            children: HashMap::new(),
            values: Vec::new(),
            height: 0,
        }
    }
}

/// A pattern compiled for a [`RouteIndex`] walk: positions `0..=len` as bits.
struct Nfa<'p> {
    /// Positions holding `*`.
    one: u64,
    /// Positions holding `**`.
    any: u64,
    /// Each distinct literal with the positions that hold it.
    literals: SmallVec<[(&'p str, u64); 8]>,
    /// The position reached when the whole pattern has matched.
    accept: u64,
    /// `need[p]`: segments the pattern still needs from position `p` on.
    need: [u8; MAX_SEGMENTS + 1],
}

impl<'p> Nfa<'p> {
    fn new(pat: &'p [Segment]) -> Option<Self> {
        if pat.len() > MAX_SEGMENTS {
            return None;
        }
        let mut nfa = Nfa {
            one: 0,
            any: 0,
            literals: SmallVec::new(),
            accept: 1 << pat.len(),
            need: [0; MAX_SEGMENTS + 1],
        };
        for (p, seg) in pat.iter().enumerate() {
            let bit = 1u64 << p;
            match seg {
                Segment::One => nfa.one |= bit,
                Segment::Any => nfa.any |= bit,
                Segment::Literal(l) => match nfa.literals.iter_mut().find(|(s, _)| *s == &**l) {
                    Some((_, mask)) => *mask |= bit,
                    None => nfa.literals.push((l, bit)),
                },
            }
        }
        for p in (0..pat.len()).rev() {
            nfa.need[p] = nfa.need[p + 1] + u8::from(pat[p] != Segment::Any);
        }
        Some(nfa)
    }

    /// Adds the positions reachable without consuming a segment (past `**`).
    fn close(&self, mut set: u64) -> u64 {
        loop {
            let wider = set | ((set & self.any) << 1);
            if wider == set {
                return set;
            }
            set = wider;
        }
    }

    /// The positions alive after consuming `seg` from `set`.
    fn step(&self, set: u64, seg: &str) -> u64 {
        let lit = self
            .literals
            .iter()
            .find(|(s, _)| *s == seg)
            .map_or(0, |(_, mask)| *mask);
        self.close(((set & (self.one | lit)) << 1) | (set & self.any))
    }

    /// The fewest segments any alive position still needs (`need` shrinks
    /// as the position grows, so the highest alive position decides).
    fn need(&self, set: u64) -> usize {
        let top = 63 - set.leading_zeros() as usize;
        usize::from(self.need[top])
    }
}

impl<V: Clone + PartialEq> RNode<V> {
    /// Appends the values of every route below this node that `nfa`
    /// accepts; `set` (non-empty) holds the positions alive here. Each node
    /// is visited at most once per query.
    fn collect(&self, nfa: &Nfa<'_>, set: u64, out: &mut Vec<V>) {
        if set & nfa.accept != 0 {
            out.extend(self.values.iter().cloned());
        }
        // Walk on only if a position short of the end is alive and some
        // route below is long enough for what the pattern still needs.
        if set & !nfa.accept == 0 || self.height < nfa.need(set).max(1) {
            return;
        }
        if set & (nfa.one | nfa.any) == 0 {
            // Only literals are alive: look the children up instead of
            // walking them all.
            for (lit, mask) in &nfa.literals {
                if set & mask != 0
                    && let Some(child) = self.children.get(*lit)
                {
                    child.collect(nfa, nfa.step(set, lit), out);
                }
            }
            return;
        }
        for (seg, child) in &self.children {
            let next = nfa.step(set, seg);
            if next != 0 {
                child.collect(nfa, next, out);
            }
        }
    }

    fn insert(&mut self, segs: &[&str], v: V) {
        self.height = self.height.max(segs.len());
        match segs.split_first() {
            None => self.values.push(v),
            Some((first, rest)) => self
                .children
                .entry(Arc::from(*first))
                .or_default()
                .insert(rest, v),
        }
    }

    fn remove(&mut self, segs: &[&str], v: &V) -> bool {
        let Some((first, rest)) = segs.split_first() else {
            return remove_value(&mut self.values, v);
        };
        let Some(child) = self.children.get_mut(*first) else {
            return false;
        };
        let removed = child.remove(rest, v);
        if child.values.is_empty() && child.children.is_empty() {
            self.children.remove(*first);
        }
        if removed && segs.len() == self.height {
            // The removed route may have been the deepest one.
            self.height = self
                .children
                .values()
                .map(|c| c.height + 1)
                .max()
                .unwrap_or(0);
        }
        removed
    }
}

/// Routes with a value each, queried by selector: "which intents does this
/// interest want?".
#[derive(Debug)]
pub struct RouteIndex<V> {
    by_type: HashMap<TypeName, RNode<V>>,
    hashed: BTreeMap<Route, Vec<V>>,
    len: usize,
}

impl<V> Default for RouteIndex<V> {
    fn default() -> Self {
        Self {
            by_type: HashMap::new(),
            hashed: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<V: Clone + Ord> RouteIndex<V> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many (route, value) entries are stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `value` under `route` (duplicates are kept).
    pub fn insert(&mut self, route: &Route, value: V) {
        self.len += 1;
        match route_parts(route) {
            None => self.hashed.entry(route.clone()).or_default().push(value),
            Some((ty, segs)) => self
                .by_type
                .entry(ty.clone())
                .or_default()
                .insert(&segs, value),
        }
    }

    /// Removes one `value` stored under `route`; true if found.
    pub fn remove(&mut self, route: &Route, value: &V) -> bool {
        let removed = match route_parts(route) {
            None => match self.hashed.get_mut(route) {
                Some(values) => {
                    let removed = remove_value(values, value);
                    if values.is_empty() {
                        self.hashed.remove(route);
                    }
                    removed
                }
                None => false,
            },
            Some((ty, segs)) => match self.by_type.get_mut(ty) {
                Some(root) => {
                    let removed = root.remove(&segs, value);
                    if root.values.is_empty() && root.children.is_empty() {
                        self.by_type.remove(ty);
                    }
                    removed
                }
                None => false,
            },
        };
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// The values of every route `selector` matches, sorted, without
    /// duplicates.
    pub fn matching(&self, selector: &Selector) -> Vec<V> {
        let mut out = Vec::new();
        match selector {
            Selector::Hashed(r) => {
                if let Some(values) = self.hashed.get(r) {
                    out.extend(values.iter().cloned());
                }
            }
            Selector::Pattern(p) => self.collect_pattern(p, &mut out),
        }
        if out.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
        out
    }

    fn collect_pattern(&self, p: &Pattern, out: &mut Vec<V>) {
        if let Some(root) = self.by_type.get(p.type_name())
            && let Some(nfa) = Nfa::new(p.segments())
        {
            root.collect(&nfa, nfa.close(1), out);
        }
    }
}
