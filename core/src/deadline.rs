//! Deadlines that cannot overflow.
//!
//! `Instant::now() + timeout` panics when `timeout` is too large for the
//! platform's clock (`Duration::MAX` always is). Every dndm API that takes a
//! timeout turns it into a [`Deadline`] instead: a timeout too large to
//! represent means "never", the same as no timeout at all.

use std::time::{Duration, Instant};

/// A point in time after which a wait gives up, or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Deadline {
    /// `None`: never.
    at: Option<Instant>,
}

impl Deadline {
    /// A deadline that never passes.
    pub const NEVER: Deadline = Deadline { at: None };

    /// `timeout` from now; [`NEVER`](Self::NEVER) when that instant cannot be
    /// represented (for example `Duration::MAX`).
    pub fn after(timeout: Duration) -> Self {
        Self {
            at: Instant::now().checked_add(timeout),
        }
    }

    /// [`after`](Self::after) for `Some(timeout)`, [`NEVER`](Self::NEVER)
    /// for `None` (the convention of dndm's `Option<Duration>` arguments).
    pub fn from_timeout(timeout: Option<Duration>) -> Self {
        timeout.map_or(Self::NEVER, Self::after)
    }

    /// A deadline at `instant`.
    pub fn at(instant: Instant) -> Self {
        Self { at: Some(instant) }
    }

    /// The instant, or `None` for a deadline that never passes.
    pub fn instant(self) -> Option<Instant> {
        self.at
    }

    /// True for [`NEVER`](Self::NEVER).
    pub fn is_never(self) -> bool {
        self.at.is_none()
    }

    /// How long until the deadline: `None` if it never passes,
    /// `Some(Duration::ZERO)` once it passed.
    pub fn remaining(self) -> Option<Duration> {
        self.at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// True once the deadline passed (never for [`NEVER`](Self::NEVER)).
    pub fn has_passed(self) -> bool {
        self.at.is_some_and(|at| Instant::now() >= at)
    }

    /// The earlier of two deadlines.
    pub fn min(self, other: Deadline) -> Deadline {
        match (self.at, other.at) {
            (Some(a), Some(b)) => Self::at(a.min(b)),
            (a, b) => Self { at: a.or(b) },
        }
    }
}

impl From<Instant> for Deadline {
    fn from(instant: Instant) -> Self {
        Self::at(instant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_timeouts_never_pass() {
        assert!(Deadline::after(Duration::MAX).is_never());
        assert!(!Deadline::after(Duration::MAX).has_passed());
        assert_eq!(Deadline::after(Duration::MAX).remaining(), None);
        assert_eq!(Deadline::from_timeout(None), Deadline::NEVER);
    }

    #[test]
    fn zero_has_passed_at_once() {
        let d = Deadline::after(Duration::ZERO);
        assert!(d.has_passed());
        assert_eq!(d.remaining(), Some(Duration::ZERO));
    }

    #[test]
    fn min_prefers_the_earlier_and_ignores_never() {
        let now = Instant::now();
        let soon = Deadline::at(now);
        let later = Deadline::at(now + Duration::from_secs(1));
        assert_eq!(soon.min(later), soon);
        assert_eq!(later.min(soon), soon);
        assert_eq!(Deadline::NEVER.min(later), later);
        assert_eq!(later.min(Deadline::NEVER), later);
        assert_eq!(Deadline::NEVER.min(Deadline::NEVER), Deadline::NEVER);
    }
}
