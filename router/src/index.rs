//! Matcher indexes: which selectors match a route, which routes match a
//! selector. Both are segment tries, one per type name, plus an exact map for
//! hashed routes. Results are sorted and free of duplicates, so callers are
//! deterministic.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use smallvec::SmallVec;

use crate::pattern::{Pattern, Segment, Selector};
use crate::route::{Route, TypeName};

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
}

impl<V> Default for PNode<V> {
    fn default() -> Self {
        Self {
            literal: HashMap::new(),
            one: None,
            any: None,
            values: Vec::new(),
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
    fn collect(&self, segs: &[&str], i: usize, out: &mut Vec<V>) {
        if let Some(any) = &self.any {
            for j in i..=segs.len() {
                any.collect(segs, j, out);
            }
        }
        if i == segs.len() {
            out.extend(self.values.iter().cloned());
            return;
        }
        if let Some(child) = self.literal.get(segs[i]) {
            child.collect(segs, i + 1, out);
        }
        if let Some(child) = &self.one {
            child.collect(segs, i + 1, out);
        }
    }

    fn remove(&mut self, segs: &[Segment], v: &V) -> bool {
        let Some((first, rest)) = segs.split_first() else {
            return remove_value(&mut self.values, v);
        };
        match first {
            Segment::Literal(l) => {
                let Some(child) = self.literal.get_mut(&**l) else {
                    return false;
                };
                let removed = child.remove(rest, v);
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
                let removed = child.remove(rest, v);
                if child.is_empty() {
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
}

impl<V> Default for SelectorIndex<V> {
    fn default() -> Self {
        Self {
            by_type: HashMap::new(),
            hashed: BTreeMap::new(),
            len: 0,
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
                let mut node = self.by_type.entry(p.type_name().clone()).or_default();
                for seg in p.segments() {
                    node = match seg {
                        Segment::Literal(l) => node.literal.entry(Arc::clone(l)).or_default(),
                        Segment::One => node.one.get_or_insert_with(Box::default),
                        Segment::Any => node.any.get_or_insert_with(Box::default),
                    };
                }
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
                    let removed = root.remove(p.segments(), value);
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
            root.collect(&segs, 0, out);
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
}

impl<V> Default for RNode<V> {
    fn default() -> Self {
        Self {
            children: HashMap::new(),
            values: Vec::new(),
        }
    }
}

impl<V: Clone + PartialEq> RNode<V> {
    fn collect(&self, pat: &[Segment], i: usize, out: &mut Vec<V>) {
        let Some(seg) = pat.get(i) else {
            out.extend(self.values.iter().cloned());
            return;
        };
        match seg {
            Segment::Literal(l) => {
                if let Some(child) = self.children.get(&**l) {
                    child.collect(pat, i + 1, out);
                }
            }
            Segment::One => {
                for child in self.children.values() {
                    child.collect(pat, i + 1, out);
                }
            }
            Segment::Any => {
                // Zero segments, or one more and still inside `**`.
                self.collect(pat, i + 1, out);
                for child in self.children.values() {
                    child.collect(pat, i, out);
                }
            }
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
            Some((ty, segs)) => {
                let mut node = self.by_type.entry(ty.clone()).or_default();
                for seg in segs {
                    node = node.children.entry(Arc::from(seg)).or_default();
                }
                node.values.push(value);
            }
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
        if let Some(root) = self.by_type.get(p.type_name()) {
            root.collect(p.segments(), 0, out);
        }
    }
}
