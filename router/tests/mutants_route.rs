//! Route behaviour that `cargo xtask mutants router` found no test observing.

use dndm_router::{
    HASH_LEN, MAX_PATH_LEN, MAX_SEGMENT_LEN, MAX_TYPE_NAME_LEN, Path, Route, RouteError, RouteHash,
    RouteKey, TypeName,
};

/// Every type name longer than the limit is refused, not only the one just
/// past it.
#[test]
fn type_names_of_any_length_above_the_limit_are_refused() {
    assert!(TypeName::new(&"T".repeat(MAX_TYPE_NAME_LEN)).is_ok());
    for len in [
        MAX_TYPE_NAME_LEN + 1,
        MAX_TYPE_NAME_LEN + 2,
        4 * MAX_TYPE_NAME_LEN,
    ] {
        assert!(
            matches!(
                TypeName::new(&"T".repeat(len)),
                Err(RouteError::TypeNameTooLong { .. })
            ),
            "{len} bytes"
        );
    }
}

/// The separators, the wildcard, whitespace and control characters are each
/// refused in a type name on their own.
#[test]
fn each_forbidden_type_name_character_is_refused() {
    // '\u{1}' is a control character that is not whitespace; '\u{a0}' (no-break
    // space) is whitespace that is not a control character.
    for ch in ['@', '#', '*', ' ', '\t', '\u{1}', '\u{a0}'] {
        let name = format!("Temp{ch}C");
        assert!(
            matches!(
                TypeName::new(&name),
                Err(RouteError::TypeNameChar { ch: c, .. }) if c == ch
            ),
            "{ch:?}"
        );
    }
    assert!(TypeName::new("dndm.Temp_C-2<u8>").is_ok());
}

/// A path may be exactly `MAX_PATH_LEN` bytes; any longer path is refused.
#[test]
fn paths_up_to_the_length_limit_are_accepted_and_no_longer() {
    let seg = "s".repeat(63);
    let longest = [seg.as_str(); 4].join(".");
    assert_eq!(longest.len(), MAX_PATH_LEN);
    assert!(Path::new(&longest).is_ok());
    for extra in [1, 2, 64] {
        let path = format!("{}{longest}", "t".repeat(extra));
        assert!(path.len() > MAX_PATH_LEN);
        assert!(
            matches!(Path::new(&path), Err(RouteError::PathTooLong { .. })),
            "{} bytes",
            path.len()
        );
    }
}

/// A segment may be exactly `MAX_SEGMENT_LEN` bytes; any longer segment is
/// refused, with its index.
#[test]
fn segments_up_to_the_length_limit_are_accepted_and_no_longer() {
    assert!(Path::new(&format!("a.{}", "s".repeat(MAX_SEGMENT_LEN))).is_ok());
    for len in [
        MAX_SEGMENT_LEN + 1,
        MAX_SEGMENT_LEN + 2,
        3 * MAX_SEGMENT_LEN,
    ] {
        let path = format!("a.{}", "s".repeat(len));
        assert!(
            matches!(
                Path::new(&path),
                Err(RouteError::SegmentTooLong { index: 1, .. })
            ),
            "{len} bytes"
        );
    }
}

/// Path segments admit letters, digits, `_` and `-`, and nothing else.
#[test]
fn path_segments_admit_underscores_and_dashes_only_besides_alphanumerics() {
    for ok in ["robot_1.arm-left", "_", "-", "a_-_b"] {
        assert!(Path::new(ok).is_ok(), "{ok}");
    }
    for ch in ['/', ' ', '@', '*', 'é', '+'] {
        let path = format!("robot.arm{ch}");
        assert!(
            matches!(
                Path::new(&path),
                Err(RouteError::SegmentChar { index: 1, ch: c, .. }) if c == ch
            ),
            "{path}"
        );
    }
}

/// Type names and paths debug-print as quoted strings, like the `&str`
/// they were made from.
#[test]
fn type_names_and_paths_debug_print_as_strings() {
    assert_eq!(format!("{:?}", TypeName::new("Temp").unwrap()), "\"Temp\"");
    assert_eq!(
        format!("{:?}", Path::new("lab.room1").unwrap()),
        "\"lab.room1\""
    );
}

/// A route key never prints its secret bytes.
#[test]
fn route_keys_debug_print_without_their_secret() {
    let key = RouteKey::from_bytes([0xab; 32]);
    assert_eq!(format!("{key:?}"), "RouteKey(..)");
}

/// A hashed route's raw hash bytes are the ones its text spells in hex, and
/// they are the keyed hash of its type name and path.
#[test]
fn hash_bytes_are_the_ones_the_route_text_spells() {
    let key = RouteKey::derive(b"key");
    let route = Route::hashed(&key, "Temp", "lab", "lab.room1").unwrap();
    let hash = route.hash().expect("a hashed route has a hash");
    let hex: String = hash.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(route.to_string(), format!("lab#{hex}"));
    let expected = RouteHash::compute(
        &key,
        &TypeName::new("Temp").unwrap(),
        &Path::new("lab.room1").unwrap(),
    );
    assert_eq!(hash.as_bytes(), expected.as_bytes());
    assert_eq!(hash.as_bytes().len(), HASH_LEN);
    assert_eq!(format!("{hash:?}"), format!("RouteHash({hex})"));
    assert_eq!(format!("{route:?}"), format!("Route(lab#{hex})"));
    assert_eq!(
        format!("{:?}", Route::new("Temp", "lab.room1").unwrap()),
        "Route(Temp@lab.room1)"
    );
}
