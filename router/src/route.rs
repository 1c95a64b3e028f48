//! Routes: `TypeName@path` and hashed (capability) routes `prefix#hash`.

use std::fmt;
use std::str::FromStr;

use std::sync::Arc;

/// The longest type name accepted, in bytes.
pub const MAX_TYPE_NAME_LEN: usize = 256;
/// The longest path segment accepted, in bytes.
pub const MAX_SEGMENT_LEN: usize = 64;
/// The most segments a path (or pattern) may have.
pub const MAX_SEGMENTS: usize = 32;
/// The longest path (or pattern) accepted, in bytes, separators included.
pub const MAX_PATH_LEN: usize = 255;
/// Length of the hash of a hashed route, in bytes (printed as twice as many
/// lower-case hex digits).
pub const HASH_LEN: usize = 16;

/// Why a route, path, type name or key could not be built or parsed.
///
/// The message names the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The type name is empty.
    #[error("invalid route {input:?}: the type name is empty")]
    EmptyTypeName {
        /// The rejected input.
        input: String,
    },
    /// The type name is longer than [`MAX_TYPE_NAME_LEN`].
    #[error("invalid route {input:?}: the type name is longer than {MAX_TYPE_NAME_LEN} bytes")]
    TypeNameTooLong {
        /// The rejected input.
        input: String,
    },
    /// The type name holds `@`, `#`, `*`, whitespace or a control character.
    #[error("invalid route {input:?}: the type name holds the reserved character {ch:?}")]
    TypeNameChar {
        /// The rejected input.
        input: String,
        /// The first offending character.
        ch: char,
    },
    /// The path has no segment at all.
    #[error("invalid route {input:?}: the path is empty")]
    EmptyPath {
        /// The rejected input.
        input: String,
    },
    /// Two dots in a row, or a leading or trailing dot.
    #[error("invalid route {input:?}: segment {index} is empty")]
    EmptySegment {
        /// The rejected input.
        input: String,
        /// Index of the empty segment.
        index: usize,
    },
    /// A path segment holds a character outside `[A-Za-z0-9_-]`.
    #[error("invalid route {input:?}: segment {index} holds the reserved character {ch:?}")]
    SegmentChar {
        /// The rejected input.
        input: String,
        /// Index of the segment.
        index: usize,
        /// The first offending character.
        ch: char,
    },
    /// A segment is longer than [`MAX_SEGMENT_LEN`].
    #[error("invalid route {input:?}: segment {index} is longer than {MAX_SEGMENT_LEN} bytes")]
    SegmentTooLong {
        /// The rejected input.
        input: String,
        /// Index of the segment.
        index: usize,
    },
    /// More than [`MAX_SEGMENTS`] segments.
    #[error("invalid route {input:?}: more than {MAX_SEGMENTS} segments")]
    TooManySegments {
        /// The rejected input.
        input: String,
    },
    /// The path is longer than [`MAX_PATH_LEN`] bytes.
    #[error("invalid route {input:?}: the path is longer than {MAX_PATH_LEN} bytes")]
    PathTooLong {
        /// The rejected input.
        input: String,
    },
    /// Neither `@` (plain route) nor `#` (hashed route) separates the parts.
    #[error("invalid route {input:?}: expected `TypeName@path` or `prefix#hash`")]
    MissingSeparator {
        /// The rejected input.
        input: String,
    },
    /// The hash of a hashed route is not 32 lower-case hex digits.
    #[error("invalid route {input:?}: the hash must be {} lower-case hex digits", HASH_LEN * 2)]
    BadHash {
        /// The rejected input.
        input: String,
    },
    /// The prefix of a hashed route is not a leading run of segments of its
    /// path.
    #[error("invalid route {input:?}: the prefix {prefix:?} is not a segment prefix of the path")]
    PrefixMismatch {
        /// The rejected input (the path).
        input: String,
        /// The prefix.
        prefix: String,
    },
}

fn type_name_error(input: &str, name: &str) -> Option<RouteError> {
    if name.is_empty() {
        return Some(RouteError::EmptyTypeName {
            input: input.into(),
        });
    }
    if name.len() > MAX_TYPE_NAME_LEN {
        return Some(RouteError::TypeNameTooLong {
            input: input.into(),
        });
    }
    name.chars()
        .find(|&c| matches!(c, '@' | '#' | '*') || c.is_whitespace() || c.is_control())
        .map(|ch| RouteError::TypeNameChar {
            input: input.into(),
            ch,
        })
}

/// Checks a path: 1..=[`MAX_SEGMENTS`] segments separated by `.`, each
/// 1..=[`MAX_SEGMENT_LEN`] bytes of `[A-Za-z0-9_-]`, at most
/// [`MAX_PATH_LEN`] bytes in all. `allow_wild` also admits the segments `*`
/// and `**` (patterns). `input` is what error messages quote.
pub(crate) fn check_path(input: &str, path: &str, allow_wild: bool) -> Result<(), RouteError> {
    if path.is_empty() {
        return Err(RouteError::EmptyPath {
            input: input.into(),
        });
    }
    if path.len() > MAX_PATH_LEN {
        return Err(RouteError::PathTooLong {
            input: input.into(),
        });
    }
    for (index, seg) in path.split('.').enumerate() {
        if index >= MAX_SEGMENTS {
            return Err(RouteError::TooManySegments {
                input: input.into(),
            });
        }
        if seg.is_empty() {
            return Err(RouteError::EmptySegment {
                input: input.into(),
                index,
            });
        }
        if allow_wild && (seg == "*" || seg == "**") {
            continue;
        }
        if seg.len() > MAX_SEGMENT_LEN {
            return Err(RouteError::SegmentTooLong {
                input: input.into(),
                index,
            });
        }
        if let Some(ch) = seg
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        {
            return Err(RouteError::SegmentChar {
                input: input.into(),
                index,
                ch,
            });
        }
    }
    Ok(())
}

/// A validated message type name, shared cheaply.
///
/// Rules: 1..=[`MAX_TYPE_NAME_LEN`] bytes; no `@`, `#`, `*`, whitespace or
/// control characters (the codec's `#[message(name = ...)]` rule, plus the
/// two route separators and the wildcard).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeName(Arc<str>);

impl TypeName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, RouteError> {
        match type_name_error(name, name) {
            Some(e) => Err(e),
            None => Ok(Self(Arc::from(name))),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for TypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated path: segments separated by `.` (see the crate docs for the
/// rules).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path(Arc<str>);

impl Path {
    /// Validates `path`.
    pub fn new(path: &str) -> Result<Self, RouteError> {
        check_path(path, path, false)?;
        Ok(Self(Arc::from(path)))
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments, in order.
    pub fn segments(&self) -> std::str::Split<'_, char> {
        self.0.split('.')
    }

    /// True if `prefix`'s segments are the first segments of this path
    /// (segment-aware: `robot.sens` is not a prefix of `robot.sensors`).
    pub fn starts_with(&self, prefix: &Path) -> bool {
        let (p, s) = (prefix.as_str(), self.as_str());
        s == p || (s.starts_with(p) && s.as_bytes().get(p.len()) == Some(&b'.'))
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Path {
    type Err = RouteError;
    fn from_str(s: &str) -> Result<Self, RouteError> {
        Self::new(s)
    }
}

/// The secret that names hashed routes: only holders of the key can compute
/// (and therefore publish to or subscribe to) a hashed route.
#[derive(Clone, PartialEq, Eq)]
pub struct RouteKey([u8; 32]);

impl RouteKey {
    /// A key from 32 secret bytes (generate them with a CSPRNG).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Derives a key from a passphrase or context string with BLAKE3's key
    /// derivation mode (context `"dndm 2026 hashed route key"`). Only as
    /// secret as the passphrase.
    pub fn derive(passphrase: &[u8]) -> Self {
        Self(blake3::derive_key("dndm 2026 hashed route key", passphrase))
    }
}

impl fmt::Debug for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RouteKey(..)")
    }
}

/// The keyed hash of a hashed route.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteHash([u8; HASH_LEN]);

impl RouteHash {
    /// Computes `BLAKE3-keyed(key, len(type) || type || path)`, truncated to
    /// [`HASH_LEN`] bytes.
    pub fn compute(key: &RouteKey, type_name: &TypeName, path: &Path) -> Self {
        let mut h = blake3::Hasher::new_keyed(&key.0);
        h.update(&(type_name.as_str().len() as u64).to_le_bytes());
        h.update(type_name.as_str().as_bytes());
        h.update(path.as_str().as_bytes());
        let mut out = [0u8; HASH_LEN];
        out.copy_from_slice(&h.finalize().as_bytes()[..HASH_LEN]);
        Self(out)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    fn parse(s: &str) -> Option<Self> {
        if s.len() != HASH_LEN * 2 {
            return None;
        }
        let mut out = [0u8; HASH_LEN];
        let digits = s.as_bytes();
        for (i, byte) in out.iter_mut().enumerate() {
            let hex = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            *byte = hex(digits[2 * i])? << 4 | hex(digits[2 * i + 1])?;
        }
        Some(Self(out))
    }
}

impl fmt::Display for RouteHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for RouteHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RouteHash({self})")
    }
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Repr {
    Plain {
        type_name: TypeName,
        path: Path,
    },
    Hashed {
        prefix: Option<Path>,
        hash: RouteHash,
    },
}

/// A route: where an intent publishes and what an interest's pattern
/// matches.
///
/// * **Plain** `TypeName@path`, for example `robot.Imu@robot.arm.imu`.
/// * **Hashed** `prefix#hash`, for example
///   `robot#3f0c…` (32 hex digits). See [`Route::hashed`].
///
/// `Display` and `FromStr` round-trip. Routes are cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route(Repr);

impl Route {
    /// A plain route `type_name@path`.
    pub fn new(type_name: &str, path: &str) -> Result<Self, RouteError> {
        let input = || format!("{type_name}@{path}");
        if let Some(e) = type_name_error(&input(), type_name) {
            return Err(e);
        }
        check_path(&input(), path, false)?;
        Ok(Self(Repr::Plain {
            type_name: TypeName(Arc::from(type_name)),
            path: Path(Arc::from(path)),
        }))
    }

    /// A plain route from validated parts.
    pub fn from_parts(type_name: TypeName, path: Path) -> Self {
        Self(Repr::Plain { type_name, path })
    }

    /// A hashed (capability) route.
    ///
    /// The hash is a keyed BLAKE3 over the type name and the full path, so:
    /// * only holders of `key` can name the route: an intent and an interest
    ///   link only if both computed the same hash, i.e. share the key, the
    ///   type name and the path;
    /// * the type name and the path beyond `prefix` are not revealed by the
    ///   route (`prefix#hash`); the prefix stays readable so that namespaces
    ///   (peer paths) can still route it. `prefix` may be empty (`#hash`);
    ///   otherwise it must be a segment prefix of `path`;
    /// * hashed routes match only an identical hashed selector, never a
    ///   wildcard pattern, and two hashed routes are equal when prefix and
    ///   hash are equal.
    pub fn hashed(
        key: &RouteKey,
        type_name: &str,
        prefix: &str,
        path: &str,
    ) -> Result<Self, RouteError> {
        let input = format!("{type_name}@{path}");
        if let Some(e) = type_name_error(&input, type_name) {
            return Err(e);
        }
        check_path(&input, path, false)?;
        let type_name = TypeName(Arc::from(type_name));
        let path = Path(Arc::from(path));
        let prefix = if prefix.is_empty() {
            None
        } else {
            let p = Path::new(prefix)?;
            if !path.starts_with(&p) {
                return Err(RouteError::PrefixMismatch {
                    input: path.to_string(),
                    prefix: prefix.into(),
                });
            }
            Some(p)
        };
        Ok(Self(Repr::Hashed {
            prefix,
            hash: RouteHash::compute(key, &type_name, &path),
        }))
    }

    /// Parses `TypeName@path` or `prefix#hash`.
    pub fn parse(s: &str) -> Result<Self, RouteError> {
        if let Some((ty, path)) = s.split_once('@') {
            if let Some(e) = type_name_error(s, ty) {
                return Err(e);
            }
            check_path(s, path, false)?;
            return Ok(Self(Repr::Plain {
                type_name: TypeName(Arc::from(ty)),
                path: Path(Arc::from(path)),
            }));
        }
        if let Some((prefix, hash)) = s.split_once('#') {
            let prefix = if prefix.is_empty() {
                None
            } else {
                check_path(s, prefix, false)?;
                Some(Path(Arc::from(prefix)))
            };
            let hash =
                RouteHash::parse(hash).ok_or_else(|| RouteError::BadHash { input: s.into() })?;
            return Ok(Self(Repr::Hashed { prefix, hash }));
        }
        Err(RouteError::MissingSeparator { input: s.into() })
    }

    /// The type name of a plain route; `None` for a hashed route.
    pub fn type_name(&self) -> Option<&TypeName> {
        match &self.0 {
            Repr::Plain { type_name, .. } => Some(type_name),
            Repr::Hashed { .. } => None,
        }
    }

    /// The path of a plain route, or the (possibly absent) prefix of a
    /// hashed route.
    pub fn path(&self) -> Option<&Path> {
        match &self.0 {
            Repr::Plain { path, .. } => Some(path),
            Repr::Hashed { prefix, .. } => prefix.as_ref(),
        }
    }

    /// The hash of a hashed route.
    pub fn hash(&self) -> Option<&RouteHash> {
        match &self.0 {
            Repr::Plain { .. } => None,
            Repr::Hashed { hash, .. } => Some(hash),
        }
    }

    /// True for a hashed route.
    pub fn is_hashed(&self) -> bool {
        matches!(self.0, Repr::Hashed { .. })
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Plain { type_name, path } => write!(f, "{type_name}@{path}"),
            Repr::Hashed { prefix, hash } => match prefix {
                Some(p) => write!(f, "{p}#{hash}"),
                None => write!(f, "#{hash}"),
            },
        }
    }
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Route({self})")
    }
}

impl FromStr for Route {
    type Err = RouteError;
    fn from_str(s: &str) -> Result<Self, RouteError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_round_trip() {
        let r: Route = "robot.Imu@robot.arm.imu".parse().unwrap();
        assert_eq!(r.type_name().unwrap().as_str(), "robot.Imu");
        assert_eq!(r.path().unwrap().as_str(), "robot.arm.imu");
        assert_eq!(r.to_string(), "robot.Imu@robot.arm.imu");
    }

    #[test]
    fn hashed_round_trip() {
        let key = RouteKey::from_bytes([7; 32]);
        let r = Route::hashed(&key, "robot.Imu", "robot", "robot.arm.imu").unwrap();
        let s = r.to_string();
        assert!(s.starts_with("robot#"));
        assert_eq!(s.parse::<Route>().unwrap(), r);
        let other = Route::hashed(
            &RouteKey::from_bytes([8; 32]),
            "robot.Imu",
            "robot",
            "robot.arm.imu",
        )
        .unwrap();
        assert_ne!(other, r);
        assert!(Route::hashed(&key, "robot.Imu", "rob", "robot.arm").is_err());
    }
}
