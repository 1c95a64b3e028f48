//! The replicated data types, pure: no clock, no I/O, no lock.
//!
//! Each type is a join semilattice: [`Crdt::merge`] takes the least upper
//! bound of two states, so it is commutative, associative and idempotent,
//! and replicas that have merged the same set of states (in any order, any
//! number of times) are equal. A local write returns a *delta*: a small
//! state of the same type that, merged anywhere, has the write's effect.
//! A full state is also a delta, which is how anti-entropy repairs what a
//! partition lost.

use std::collections::{BTreeMap, BTreeSet};

use super::hlc::Hlc;

/// A state-based replicated type.
pub trait Crdt: Clone + PartialEq {
    /// Joins `other` into `self`; true if `self` changed.
    fn merge(&mut self, other: &Self) -> bool;
}

/// A last-writer-wins register: the value with the greatest
/// [`Hlc`] stamp wins (ties, which honest replicas never make, break on
/// the value so that merging stays commutative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LwwRegister<V> {
    entry: Option<(Hlc, V)>,
}

impl<V> Default for LwwRegister<V> {
    fn default() -> Self {
        Self { entry: None }
    }
}

impl<V: Ord + Clone> LwwRegister<V> {
    /// An empty register.
    pub fn new() -> Self {
        Self::default()
    }

    /// A register holding `value` written at `stamp` (also the delta of
    /// that write).
    pub fn with(stamp: Hlc, value: V) -> Self {
        Self {
            entry: Some((stamp, value)),
        }
    }

    /// Writes `value` at `stamp` and returns the delta to send.
    pub fn set(&mut self, stamp: Hlc, value: V) -> Self {
        let delta = Self::with(stamp, value);
        self.merge(&delta);
        delta
    }

    /// The current value.
    pub fn get(&self) -> Option<&V> {
        self.entry.as_ref().map(|(_, v)| v)
    }

    /// The stamp of the current value.
    pub fn stamp(&self) -> Option<Hlc> {
        self.entry.as_ref().map(|(s, _)| *s)
    }
}

impl<V: Ord + Clone> Crdt for LwwRegister<V> {
    fn merge(&mut self, other: &Self) -> bool {
        let Some((os, ov)) = &other.entry else {
            return false;
        };
        let newer = match &self.entry {
            None => true,
            Some((s, v)) => (os, ov) > (s, v),
        };
        if newer {
            self.entry = Some((*os, ov.clone()));
        }
        newer
    }
}

/// A counter that goes up and down: per replica, the total added and the
/// total subtracted; merge keeps the larger total of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PnCounter {
    inc: BTreeMap<u64, u64>,
    dec: BTreeMap<u64, u64>,
}

impl PnCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `by` (negative: subtracts) on behalf of `replica` and returns
    /// the delta to send (that replica's new totals). A replica's totals
    /// saturate at `u64::MAX`.
    pub fn add(&mut self, replica: u64, by: i64) -> Self {
        let mut delta = Self::new();
        if by == 0 {
            // Zero entries are never stored: equal values, equal states.
            return delta;
        }
        let (map, out) = if by > 0 {
            (&mut self.inc, &mut delta.inc)
        } else {
            (&mut self.dec, &mut delta.dec)
        };
        let total = map.entry(replica).or_insert(0);
        *total = total.saturating_add(by.unsigned_abs());
        out.insert(replica, *total);
        delta
    }

    /// The value: everything added minus everything subtracted, clamped to
    /// `i64`.
    pub fn value(&self) -> i64 {
        let sum = |m: &BTreeMap<u64, u64>| m.values().map(|v| i128::from(*v)).sum::<i128>();
        let v = sum(&self.inc) - sum(&self.dec);
        i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
    }

    /// Per replica: (added, subtracted).
    pub fn entries(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        let ids: BTreeSet<u64> = self.inc.keys().chain(self.dec.keys()).copied().collect();
        ids.into_iter().map(|id| {
            (
                id,
                self.inc.get(&id).copied().unwrap_or(0),
                self.dec.get(&id).copied().unwrap_or(0),
            )
        })
    }

    /// Sets `replica`'s totals to at least `inc` and `dec` (the join with
    /// one entry; how a received delta is applied).
    pub fn join_entry(&mut self, replica: u64, inc: u64, dec: u64) -> bool {
        let mut changed = false;
        for (map, v) in [(&mut self.inc, inc), (&mut self.dec, dec)] {
            if v == 0 {
                continue;
            }
            let e = map.entry(replica).or_insert(0);
            if v > *e {
                *e = v;
                changed = true;
            }
        }
        changed
    }
}

impl Crdt for PnCounter {
    fn merge(&mut self, other: &Self) -> bool {
        let mut changed = false;
        for (id, inc, dec) in other.entries() {
            changed |= self.join_entry(id, inc, dec);
        }
        changed
    }
}

/// An observed-remove set: an insert tags the element with a fresh
/// [`Hlc`]; a remove tombstones the tags it has seen, so an insert
/// concurrent with a remove survives it (add wins). An insert also
/// tombstones the element's older tags, so each replica keeps at most one
/// live tag per element it inserted.
///
/// Tombstones are kept (they are what makes a late, duplicated or
/// reordered insert harmless): a set's metadata grows with the number of
/// inserts and removes made, not only with its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrSet<V: Ord> {
    live: BTreeMap<V, BTreeSet<Hlc>>,
    removed: BTreeSet<Hlc>,
}

impl<V: Ord> Default for OrSet<V> {
    fn default() -> Self {
        Self {
            live: BTreeMap::new(),
            removed: BTreeSet::new(),
        }
    }
}

impl<V: Ord + Clone> OrSet<V> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts `value` with the fresh tag `stamp`; returns the delta.
    pub fn insert(&mut self, stamp: Hlc, value: V) -> Self {
        let mut delta = Self::new();
        if let Some(old) = self.live.get(&value) {
            delta.removed.extend(old.iter().copied());
        }
        delta.live.entry(value).or_default().insert(stamp);
        self.merge(&delta);
        delta
    }

    /// Removes `value` (every tag of it seen here); returns the delta, or
    /// `None` if the value is not in the set.
    pub fn remove(&mut self, value: &V) -> Option<Self> {
        let tags = self.live.get(value)?;
        let mut delta = Self::new();
        delta.removed.extend(tags.iter().copied());
        self.merge(&delta);
        Some(delta)
    }

    /// True if `value` is in the set.
    pub fn contains(&self, value: &V) -> bool {
        self.live.contains_key(value)
    }

    /// The elements, in order.
    pub fn iter(&self) -> impl Iterator<Item = &V> {
        self.live.keys()
    }

    /// How many elements.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Live elements with their tags.
    pub fn tagged(&self) -> impl Iterator<Item = (&V, &BTreeSet<Hlc>)> {
        self.live.iter()
    }

    /// Tombstoned tags.
    pub fn tombstones(&self) -> &BTreeSet<Hlc> {
        &self.removed
    }

    /// Joins one tagged element (how a received delta is applied).
    pub fn join_tag(&mut self, value: V, tag: Hlc) -> bool {
        if self.removed.contains(&tag) {
            return false;
        }
        self.live.entry(value).or_default().insert(tag)
    }

    /// Joins one tombstone.
    pub fn join_tombstone(&mut self, tag: Hlc) -> bool {
        if !self.removed.insert(tag) {
            return false;
        }
        self.live.retain(|_, tags| {
            tags.remove(&tag);
            !tags.is_empty()
        });
        true
    }
}

impl<V: Ord + Clone> Crdt for OrSet<V> {
    fn merge(&mut self, other: &Self) -> bool {
        let mut changed = false;
        let fresh: Vec<Hlc> = other.removed.difference(&self.removed).copied().collect();
        if !fresh.is_empty() {
            self.removed.extend(fresh);
            let removed = &self.removed;
            self.live.retain(|_, tags| {
                tags.retain(|t| !removed.contains(t));
                !tags.is_empty()
            });
            changed = true;
        }
        for (v, tags) in &other.live {
            for t in tags {
                if !self.removed.contains(t) {
                    changed |= self.live.entry(v.clone()).or_default().insert(*t);
                }
            }
        }
        changed
    }
}
