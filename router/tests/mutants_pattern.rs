//! Pattern behaviour that `cargo xtask mutants router` found no test observing.

use dndm_router::{MAX_PATH_LEN, MAX_SEGMENTS, PatternLimits};

fn read(l: PatternLimits) -> (usize, usize, usize) {
    (l.max_segments(), l.max_any(), l.max_len())
}

/// A node passing its limits on (to a linker, to a peer session) reads back
/// exactly what was configured, and the documented defaults.
#[test]
fn pattern_limits_read_back_what_they_were_built_with() {
    assert_eq!(
        read(PatternLimits::new()),
        (MAX_SEGMENTS, PatternLimits::DEFAULT_MAX_ANY, MAX_PATH_LEN)
    );
    assert_eq!(read(PatternLimits::default()), read(PatternLimits::new()));
    assert_eq!(
        read(PatternLimits::unlimited()),
        (MAX_SEGMENTS, MAX_SEGMENTS, MAX_PATH_LEN)
    );
    let custom = PatternLimits::new()
        .with_max_segments(3)
        .with_max_any(2)
        .with_max_len(40);
    assert_eq!(read(custom), (3, 2, 40));
}
