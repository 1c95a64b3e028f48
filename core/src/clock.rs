//! A cheap monotonic nanosecond clock for message timestamps.
//!
//! Every published sample carries a source timestamp, so reading the clock
//! sits on the publish hot path. On x86-64 machines whose time-stamp counter
//! is invariant (it ticks at a constant rate in every power state, as the
//! `constant_tsc`/`nonstop_tsc` CPU flags and CPUID say), [`now_ns`] reads
//! the counter directly and scales it with a factor calibrated once against
//! the OS monotonic clock (the first call spins for 0.5 ms to do so); elsewhere,
//! or with `DNDM_NO_TSC` set, it falls back to [`std::time::Instant`]. On the
//! virtual machines dndm is developed on, a counter read costs about half of
//! an OS clock read.
//!
//! The clock counts from an arbitrary process-wide origin. Values from the
//! same process are comparable (`now_ns() - sample_stamp` is a latency); they
//! are not wall-clock time and mean nothing in another process.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Nanoseconds since this process's clock origin (monotonic).
#[inline]
pub fn now_ns() -> u64 {
    let c = calibration();
    match c.tsc {
        Some(tsc) => tsc.now_ns(),
        None => saturating_ns(c.origin.elapsed()),
    }
}

/// True when [`now_ns`] reads the CPU's time-stamp counter.
pub fn uses_tsc() -> bool {
    calibration().tsc.is_some()
}

struct Calibration {
    origin: Instant,
    tsc: Option<TscScale>,
}

#[derive(Clone, Copy)]
struct TscScale {
    /// Counter value at the origin.
    base: u64,
    /// Nanoseconds per tick as a 32.32 fixed-point number.
    mult: u64,
}

impl TscScale {
    #[inline(always)]
    fn now_ns(self) -> u64 {
        let ticks = read_tsc().saturating_sub(self.base);
        let ns = (u128::from(ticks) * u128::from(self.mult)) >> 32;
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

fn calibration() -> &'static Calibration {
    static CALIBRATION: OnceLock<Calibration> = OnceLock::new();
    CALIBRATION.get_or_init(calibrate)
}

fn saturating_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// How long calibration watches both clocks: long enough that a clock read's
/// jitter (tens of ns) is a few parts in 10⁵, short enough to go unnoticed.
const CALIBRATION_WINDOW: Duration = Duration::from_micros(500);

fn calibrate() -> Calibration {
    if !invariant_tsc() || std::env::var_os("DNDM_NO_TSC").is_some() {
        return Calibration {
            origin: Instant::now(),
            tsc: None,
        };
    }
    // Both ends of the window read the two clocks as one pair, so nothing
    // slow (the CPUID query above, a preemption) counts on one clock only.
    let (origin, base) = clock_pair();
    let (mut end, mut ticks_end) = clock_pair();
    while end - origin < CALIBRATION_WINDOW {
        std::hint::spin_loop();
        (end, ticks_end) = clock_pair();
    }
    let ticks = ticks_end.saturating_sub(base);
    let ns = saturating_ns(end - origin);
    // Reject nonsense (a counter that did not move, or runs below 1 MHz or
    // above 100 GHz): fall back to the OS clock.
    let plausible = ticks > 0 && ticks / ns.max(1) < 100 && ns / ticks.max(1) < 1000;
    let tsc = plausible.then(|| TscScale {
        base,
        mult: u64::try_from((u128::from(ns) << 32) / u128::from(ticks)).unwrap_or(u64::MAX),
    });
    Calibration { origin, tsc }
}

/// An OS clock reading and a counter reading taken at the same moment: the
/// counter read between two OS clock reads, from the tightest of a few
/// tries, so a preemption between the reads is not mistaken for elapsed time
/// on one clock.
fn clock_pair() -> (Instant, u64) {
    let mut best: Option<(Duration, Instant, u64)> = None;
    for _ in 0..8 {
        let before = Instant::now();
        let tsc = read_tsc();
        let gap = before.elapsed();
        if best.is_none_or(|(g, _, _)| gap < g) {
            best = Some((gap, before + gap / 2, tsc));
        }
    }
    best.map_or_else(|| (Instant::now(), read_tsc()), |(_, at, tsc)| (at, tsc))
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn read_tsc() -> u64 {
    // SAFETY: RDTSC reads a counter and has no memory effects; every x86-64
    // CPU implements it, and it is only relied on after `invariant_tsc`.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn read_tsc() -> u64 {
    0
}

/// CPUID leaf 0x8000_0007, EDX bit 8: the TSC runs at a constant rate in all
/// ACPI P-, C- and T-states.
#[cfg(target_arch = "x86_64")]
fn invariant_tsc() -> bool {
    use core::arch::x86_64::__cpuid;
    // The extended leaf is queried only when the CPU reports it exists.
    if __cpuid(0x8000_0000).eax < 0x8000_0007 {
        return false;
    }
    __cpuid(0x8000_0007).edx & (1 << 8) != 0
}

#[cfg(not(target_arch = "x86_64"))]
fn invariant_tsc() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_monotonic_and_tracks_the_os_clock() {
        // Each reading of ours sits between two OS readings, so a preemption
        // between the reads widens the bracket instead of failing the test.
        let outer_start = Instant::now();
        let start_ns = now_ns();
        let inner_start = Instant::now();
        let mut last = start_ns;
        for _ in 0..100_000 {
            let t = now_ns();
            assert!(t >= last, "clock went backwards: {t} < {last}");
            last = t;
        }
        std::thread::sleep(Duration::from_millis(20));
        let inner_end = Instant::now();
        let ours = now_ns() - start_ns;
        let outer_end = Instant::now();
        let shortest = saturating_ns(inner_end.saturating_duration_since(inner_start));
        let longest = saturating_ns(outer_end - outer_start);
        // Calibration error: within 2% (plus 50 µs of read jitter).
        let slack = longest / 50 + 50_000;
        assert!(
            ours + slack >= shortest && ours <= longest + slack,
            "ours {ours} ns vs os between {shortest} and {longest} ns (tsc: {})",
            uses_tsc()
        );
    }
}
