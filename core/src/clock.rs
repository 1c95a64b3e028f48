//! The timestamp clock: nanoseconds on the host's monotonic clock.
//!
//! Every published sample carries a source timestamp, and a subscriber in
//! another process on the same host subtracts it from its own [`now_ns`] to
//! get a latency. That only works when both processes read the *same* clock,
//! so [`now_ns`] is the operating system's monotonic clock itself
//! (`CLOCK_MONOTONIC` on Unix: nanoseconds since an unspecified point, usually
//! boot, shared by every process on the host). It is exact by construction:
//! there is no private calibration that can drift from the OS clock.
//!
//! Why not a calibrated CPU counter? An earlier version scaled the x86
//! time-stamp counter with a factor measured once over 0.5 ms at start-up. On
//! virtual machines that factor came out a few percent wrong, so timestamps
//! were wrong by the same amount and a test comparing them with the OS clock
//! failed at random. The kernel already does this job well: when the host's
//! clocksource is the TSC, `clock_gettime` reads the counter in user space
//! (vDSO) and scales it with a factor the kernel keeps refining against its
//! reference, and when the kernel stops trusting the counter (unstable TSC,
//! migration between hosts) it switches clocksource by itself. The price is a
//! few tens of nanoseconds more per read than a raw counter read; the clock
//! is read once per publish.
//!
//! On platforms without `clock_gettime` the clock falls back to
//! [`std::time::Instant`] measured from a process-wide origin; values are then
//! comparable only within one process ([`is_system_wide`] says which).

/// Nanoseconds on the host's monotonic clock.
///
/// Never decreases within a process. On Unix it is `CLOCK_MONOTONIC`, so
/// values taken by different processes on the same host are comparable:
/// `now_ns() - sample_stamp` is a latency even when the sample came from
/// another process. It is not wall-clock time, and means nothing on another
/// host.
#[inline]
pub fn now_ns() -> u64 {
    imp::now_ns()
}

/// True when [`now_ns`] values are comparable across processes on this host.
pub fn is_system_wide() -> bool {
    imp::SYSTEM_WIDE
}

/// Whole nanoseconds in a `timespec`-like pair, saturating instead of
/// overflowing or going negative.
#[cfg_attr(not(unix), allow(dead_code, reason = "used by the Unix clock"))]
fn timespec_ns(secs: i64, nanos: i64) -> u64 {
    let secs = u64::try_from(secs).unwrap_or(0);
    let nanos = u64::try_from(nanos).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

#[cfg(unix)]
mod imp {
    pub(super) const SYSTEM_WIDE: bool = true;

    #[inline]
    pub(super) fn now_ns() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable `timespec` for the duration of the
        // call, and CLOCK_MONOTONIC is supported by every Unix dndm builds on.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        // clock_gettime can only fail for an invalid clock id or pointer,
        // neither of which can happen here; 0 keeps the function total.
        if rc != 0 {
            return 0;
        }
        #[allow(
            clippy::useless_conversion,
            reason = "time_t and c_long are i32 on some targets"
        )]
        super::timespec_ns(i64::from(ts.tv_sec), i64::from(ts.tv_nsec))
    }
}

#[cfg(not(unix))]
mod imp {
    use std::sync::OnceLock;
    use std::time::Instant;

    pub(super) const SYSTEM_WIDE: bool = false;

    pub(super) fn now_ns() -> u64 {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let origin = ORIGIN.get_or_init(Instant::now);
        u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespec_conversion_is_exact_and_saturates() {
        assert_eq!(timespec_ns(0, 0), 0);
        assert_eq!(timespec_ns(1, 5), 1_000_000_005);
        assert_eq!(timespec_ns(12_345, 999_999_999), 12_345_999_999_999);
        assert_eq!(timespec_ns(-1, 7), 7, "negative seconds clamp to zero");
        assert_eq!(timespec_ns(3, -1), 3_000_000_000);
        assert_eq!(timespec_ns(i64::MAX, 999_999_999), u64::MAX);
    }

    #[test]
    fn never_goes_backwards() {
        let mut last = now_ns();
        for _ in 0..100_000 {
            let t = now_ns();
            assert!(t >= last, "clock went backwards: {t} < {last}");
            last = t;
        }
    }
}
