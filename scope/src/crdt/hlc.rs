//! Hybrid logical clocks: a physical time in nanoseconds, a logical
//! counter for events within one tick (or while a peer's clock is ahead),
//! and the replica id as the final tiebreak, so that stamps are totally
//! ordered and no two replicas ever make the same one.
//!
//! A clock never goes backwards: [`HlcClock::tick`] returns a stamp greater
//! than every stamp it made or [`observed`](HlcClock::observe), whatever
//! the physical time says. The physical time is passed in (sans-IO); the
//! facade passes `dndm_core::clock::now_ns`.
//!
//! Not bounded yet: a peer's stamp is observed however far ahead of the
//! local physical time it is, so a peer with a fast (or lying) clock wins
//! every last-writer-wins race until real time catches up, and drags this
//! clock ahead with it. A drift limit (refuse stamps too far ahead) is the
//! planned fix.

/// A hybrid logical clock stamp. Ordered by `wall`, then `logical`, then
/// `replica`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc {
    /// Physical time, nanoseconds.
    pub wall: u64,
    /// Events within one physical tick.
    pub logical: u32,
    /// The replica that made the stamp.
    pub replica: u64,
}

/// The clock of one replica.
#[derive(Debug, Clone)]
pub struct HlcClock {
    replica: u64,
    wall: u64,
    logical: u32,
}

impl HlcClock {
    /// A clock for `replica`, which never made a stamp.
    pub fn new(replica: u64) -> Self {
        Self {
            replica,
            wall: 0,
            logical: 0,
        }
    }

    /// The replica id.
    pub fn replica(&self) -> u64 {
        self.replica
    }

    /// A fresh stamp at physical time `now_ns`: greater than every stamp
    /// this clock made or observed. Saturates at the end of time (a stamp
    /// of `u64::MAX` ns with the largest counter is then reused).
    pub fn tick(&mut self, now_ns: u64) -> Hlc {
        if now_ns > self.wall {
            self.wall = now_ns;
            self.logical = 0;
        } else if let Some(l) = self.logical.checked_add(1) {
            self.logical = l;
        } else if let Some(w) = self.wall.checked_add(1) {
            self.wall = w;
            self.logical = 0;
        }
        Hlc {
            wall: self.wall,
            logical: self.logical,
            replica: self.replica,
        }
    }

    /// Takes a stamp from another replica into account: the next
    /// [`tick`](Self::tick) is greater than it.
    pub fn observe(&mut self, stamp: Hlc) {
        if (stamp.wall, stamp.logical) > (self.wall, self.logical) {
            self.wall = stamp.wall;
            self.logical = stamp.logical;
        }
    }
}
