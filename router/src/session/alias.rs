//! Alias tables: numeric handles for declarations, with generations.
//!
//! A local declaration gets a slot; its alias is the slot index plus one (0
//! means "no alias" on the wire) and its generation counts how often that
//! slot has been used. A freed slot goes to the back of a FIFO free list, so
//! an alias is reused as late as possible, and always with the next
//! generation: a frame stamped with an old `(alias, generation)` can never be
//! taken for the new declaration.

use std::collections::{HashMap, VecDeque};

/// The alias and generation of a local intent, as announced to the peer.
///
/// Data, request and reply frames for the intent carry `alias` in the frame
/// header's route field and the low 8 bits of `generation` in flag bits
/// 8–15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalAlias {
    /// The alias (never 0).
    pub alias: u32,
    /// The generation of the alias (never 0).
    pub generation: u32,
}

/// Identifies a remote intent for as long as it is declared: the alias the
/// peer chose and its generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemoteIntentId {
    /// The peer's alias for the intent.
    pub alias: u32,
    /// The generation of the alias.
    pub generation: u32,
}

/// Identifies a remote interest for as long as it is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemoteInterestId {
    /// The peer's id for the interest.
    pub id: u32,
    /// The generation of the id.
    pub generation: u32,
}

/// The flag bits that carry an alias generation in a frame header.
pub(crate) fn generation_flags(generation: u32) -> u16 {
    u16::from(generation.to_le_bytes()[0]) << 8
}

/// The alias generation carried in frame header flags.
pub(crate) fn flags_generation(flags: u16) -> u8 {
    flags.to_be_bytes()[0]
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// A slot table handing out `(alias, generation)` pairs.
pub(crate) struct Slots<T> {
    slots: Vec<Slot<T>>,
    free: VecDeque<usize>,
    live: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: VecDeque::new(),
            live: 0,
        }
    }
}

impl<T> Slots<T> {
    /// Stores `value`; `None` when all `u32::MAX` aliases are live.
    pub(crate) fn insert(&mut self, value: T) -> Option<LocalAlias> {
        let index = match self.free.pop_front() {
            Some(i) => i,
            None => {
                if self.slots.len() >= u32::MAX as usize {
                    return None;
                }
                self.slots.push(Slot {
                    generation: 0,
                    value: None,
                });
                self.slots.len() - 1
            }
        };
        let slot = self.slots.get_mut(index)?;
        slot.generation = match slot.generation.wrapping_add(1) {
            0 => 1,
            g => g,
        };
        slot.value = Some(value);
        self.live += 1;
        Some(LocalAlias {
            alias: u32::try_from(index + 1).ok()?,
            generation: slot.generation,
        })
    }

    fn slot(&self, alias: u32) -> Option<&Slot<T>> {
        self.slots.get(usize::try_from(alias).ok()?.checked_sub(1)?)
    }

    fn slot_mut(&mut self, alias: u32) -> Option<&mut Slot<T>> {
        self.slots
            .get_mut(usize::try_from(alias).ok()?.checked_sub(1)?)
    }

    /// The value under a live `(alias, generation)`.
    pub(crate) fn get(&self, a: LocalAlias) -> Option<&T> {
        self.slot(a.alias)
            .filter(|s| s.generation == a.generation)?
            .value
            .as_ref()
    }

    /// The value under a live `(alias, generation)`, mutably.
    pub(crate) fn get_mut(&mut self, a: LocalAlias) -> Option<&mut T> {
        self.slot_mut(a.alias)
            .filter(|s| s.generation == a.generation)?
            .value
            .as_mut()
    }

    /// Frees a live `(alias, generation)`.
    pub(crate) fn remove(&mut self, a: LocalAlias) -> Option<T> {
        let slot = self.slot_mut(a.alias)?;
        if slot.generation != a.generation {
            return None;
        }
        let value = slot.value.take()?;
        self.live -= 1;
        self.free.push_back((a.alias - 1) as usize);
        Some(value)
    }

    /// Live entries, in alias order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (LocalAlias, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let v = s.value.as_ref()?;
            Some((
                LocalAlias {
                    alias: u32::try_from(i + 1).ok()?,
                    generation: s.generation,
                },
                v,
            ))
        })
    }

    /// The number of live entries.
    pub(crate) fn len(&self) -> usize {
        self.live
    }
}

/// Ids below this are looked up by index, the rest through a hash map. A
/// peer numbers from 1 and reuses freed ids first, so its ids stay below
/// its peak count of live declarations; the bound keeps what a hostile
/// peer can make us allocate small (one slot per id below it).
const DENSE_IDS: u32 = 1024;

/// The peer's declarations by id: the data path resolves an alias with an
/// index instead of a hash for every frame.
pub(crate) struct AliasTable<T> {
    dense: Vec<Option<T>>,
    sparse: HashMap<u32, T>,
    len: usize,
}

impl<T> Default for AliasTable<T> {
    fn default() -> Self {
        Self {
            dense: Vec::new(),
            sparse: HashMap::new(),
            len: 0,
        }
    }
}

impl<T> AliasTable<T> {
    pub(crate) fn get(&self, id: &u32) -> Option<&T> {
        if *id < DENSE_IDS {
            self.dense.get(*id as usize)?.as_ref()
        } else {
            self.sparse.get(id)
        }
    }

    pub(crate) fn contains_key(&self, id: &u32) -> bool {
        self.get(id).is_some()
    }

    /// Stores `value` under a free `id` (callers check `contains_key`).
    pub(crate) fn insert(&mut self, id: u32, value: T) {
        let old = if id < DENSE_IDS {
            let i = id as usize;
            if self.dense.len() <= i {
                self.dense.resize_with(i + 1, || None);
            }
            self.dense.get_mut(i).and_then(|slot| slot.replace(value))
        } else {
            self.sparse.insert(id, value)
        };
        if old.is_none() {
            self.len += 1;
        }
    }

    pub(crate) fn remove(&mut self, id: &u32) -> Option<T> {
        let out = if *id < DENSE_IDS {
            self.dense.get_mut(*id as usize)?.take()
        } else {
            self.sparse.remove(id)
        };
        if out.is_some() {
            self.len -= 1;
        }
        out
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Empties the table; entries in id order.
    pub(crate) fn drain(&mut self) -> Vec<(u32, T)> {
        let mut out: Vec<(u32, T)> = std::mem::take(&mut self.dense)
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| Some((u32::try_from(i).ok()?, v?)))
            .collect();
        let mut sparse: Vec<_> = self.sparse.drain().collect();
        sparse.sort_by_key(|(id, _)| *id);
        out.extend(sparse);
        self.len = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_bumps_the_generation() {
        let mut s = Slots::default();
        let a = s.insert("a").unwrap();
        let b = s.insert("b").unwrap();
        assert_eq!((a.alias, a.generation), (1, 1));
        assert_eq!((b.alias, b.generation), (2, 1));
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.remove(a), None);
        let c = s.insert("c").unwrap();
        assert_eq!((c.alias, c.generation), (1, 2));
        assert_eq!(s.get(a), None);
        assert_eq!(s.get(c), Some(&"c"));
        assert_eq!(s.len(), 2);
        assert_eq!(s.iter().count(), 2);
    }

    #[test]
    fn alias_table_spans_dense_and_sparse_ids() {
        let mut t = AliasTable::default();
        for id in [1u32, 5, DENSE_IDS - 1, DENSE_IDS, u32::MAX] {
            assert!(!t.contains_key(&id));
            t.insert(id, id);
            assert_eq!(t.get(&id), Some(&id));
        }
        assert_eq!(t.len(), 5);
        assert_eq!(t.remove(&5), Some(5));
        assert_eq!(t.remove(&5), None);
        assert_eq!(t.remove(&u32::MAX), Some(u32::MAX));
        assert_eq!(t.get(&0), None);
        assert_eq!(t.len(), 3);
        let ids: Vec<u32> = t.drain().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [1, DENSE_IDS - 1, DENSE_IDS]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn generation_round_trips_through_flags() {
        for g in [1u32, 2, 255, 256, 257, u32::MAX] {
            assert_eq!(flags_generation(generation_flags(g)), g as u8);
            assert_eq!(generation_flags(g) & 0x00ff, 0);
        }
    }
}
