//! Patterns over paths (`*`, `**`) and selectors (what an interest wants).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::route::{MAX_PATH_LEN, MAX_SEGMENTS, Route, RouteError, TypeName, check_path};

/// Why a pattern or selector could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// The type name or a literal segment breaks the route rules.
    #[error("invalid pattern: {0}")]
    Route(#[from] RouteError),
    /// A segment mixes a wildcard with other characters (`a*`, `***`).
    #[error("invalid pattern {input:?}: segment {index} mixes `*` with other characters")]
    PartialWildcard {
        /// The rejected input.
        input: String,
        /// Index of the segment.
        index: usize,
    },
    /// `TypeName@` is missing.
    #[error("invalid pattern {input:?}: expected `TypeName@pattern`")]
    MissingType {
        /// The rejected input.
        input: String,
    },
    /// The pattern is valid but larger than the [`PatternLimits`] in force.
    #[error("pattern {input:?} is too complex: {actual} {what}, at most {max} allowed")]
    TooComplex {
        /// The rejected pattern.
        input: String,
        /// Which limit it breaks.
        what: Complexity,
        /// What the pattern has.
        actual: usize,
        /// What the limit allows.
        max: usize,
    },
}

/// Which [`PatternLimits`] bound a pattern broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Complexity {
    /// Segments of the path pattern.
    Segments,
    /// `**` segments (after folding consecutive ones).
    AnySegments,
    /// Bytes of the path pattern (as displayed, `.` separators included).
    Length,
}

impl fmt::Display for Complexity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Segments => "segments",
            Self::AnySegments => "`**` segments",
            Self::Length => "bytes",
        })
    }
}

/// Caps on pattern complexity, checked where patterns are accepted
/// ([`Linker::with_pattern_limits`](crate::Linker::with_pattern_limits),
/// [`Pattern::parse_with_limits`]).
///
/// Matching does bounded work whatever the pattern (see
/// [`SelectorIndex`](crate::SelectorIndex)): O(trie nodes × segments), and a
/// pattern's own segment count is at most [`MAX_SEGMENTS`]. These limits let
/// a node that accepts patterns from less trusted code refuse large ones
/// before they reach an index. The default allows [`MAX_SEGMENTS`] segments,
/// [`MAX_PATH_LEN`] bytes and [`DEFAULT_MAX_ANY`](Self::DEFAULT_MAX_ANY) `**`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PatternLimits {
    max_segments: usize,
    max_any: usize,
    max_len: usize,
}

impl Default for PatternLimits {
    fn default() -> Self {
        Self::new()
    }
}

impl PatternLimits {
    /// The default number of `**` segments a pattern may hold.
    pub const DEFAULT_MAX_ANY: usize = 8;

    /// The default limits.
    pub const fn new() -> Self {
        Self {
            max_segments: MAX_SEGMENTS,
            max_any: Self::DEFAULT_MAX_ANY,
            max_len: MAX_PATH_LEN,
        }
    }

    /// No limit beyond the path rules every pattern obeys.
    pub const fn unlimited() -> Self {
        Self {
            max_segments: MAX_SEGMENTS,
            max_any: MAX_SEGMENTS,
            max_len: MAX_PATH_LEN,
        }
    }

    /// At most `n` segments (values above [`MAX_SEGMENTS`] change nothing).
    pub const fn with_max_segments(mut self, n: usize) -> Self {
        self.max_segments = n;
        self
    }

    /// At most `n` `**` segments.
    pub const fn with_max_any(mut self, n: usize) -> Self {
        self.max_any = n;
        self
    }

    /// At most `n` bytes of path pattern (values above [`MAX_PATH_LEN`]
    /// change nothing).
    pub const fn with_max_len(mut self, n: usize) -> Self {
        self.max_len = n;
        self
    }

    /// The segment limit.
    pub const fn max_segments(&self) -> usize {
        self.max_segments
    }

    /// The `**` limit.
    pub const fn max_any(&self) -> usize {
        self.max_any
    }

    /// The length limit in bytes.
    pub const fn max_len(&self) -> usize {
        self.max_len
    }

    /// Checks `pattern` against these limits.
    ///
    /// # Errors
    ///
    /// [`PatternError::TooComplex`] naming the pattern and the broken limit.
    pub fn check(&self, pattern: &Pattern) -> Result<(), PatternError> {
        let segs = pattern.segments();
        let len = segs.len().saturating_sub(1)
            + segs
                .iter()
                .map(|s| match s {
                    Segment::Literal(l) => l.len(),
                    Segment::One => 1,
                    Segment::Any => 2,
                })
                .sum::<usize>();
        let any = segs.iter().filter(|s| **s == Segment::Any).count();
        for (what, actual, max) in [
            (Complexity::Segments, segs.len(), self.max_segments),
            (Complexity::AnySegments, any, self.max_any),
            (Complexity::Length, len, self.max_len),
        ] {
            if actual > max {
                return Err(PatternError::TooComplex {
                    input: pattern.to_string(),
                    what,
                    actual,
                    max,
                });
            }
        }
        Ok(())
    }

    /// Checks `selector` (hashed routes have no pattern and always pass).
    ///
    /// # Errors
    ///
    /// [`PatternError::TooComplex`] naming the pattern and the broken limit.
    pub fn check_selector(&self, selector: &Selector) -> Result<(), PatternError> {
        match selector {
            Selector::Pattern(p) => self.check(p),
            Selector::Hashed(_) => Ok(()),
        }
    }
}

/// One segment of a pattern.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// Matches exactly this segment.
    Literal(Arc<str>),
    /// `*`: exactly one segment.
    One,
    /// `**`: zero or more segments.
    Any,
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Literal(s) => f.write_str(s),
            Self::One => f.write_str("*"),
            Self::Any => f.write_str("**"),
        }
    }
}

/// A typed path pattern `TypeName@a.*.c.**`.
///
/// * a literal segment matches itself;
/// * `*` matches exactly one segment;
/// * `**` matches zero or more segments (`a.**` matches `a`, `a.b`, `a.b.c`).
///
/// Literal segments follow the path rules; the whole pattern obeys the same
/// length and segment-count limits as a path. Consecutive `**` are folded
/// into one (they match the same routes). A pattern matches plain routes of
/// the same type name only; hashed routes are selected by
/// [`Selector::Hashed`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pattern {
    type_name: TypeName,
    segments: Vec<Segment>,
}

impl Pattern {
    /// Builds a pattern from a type name and a path pattern.
    pub fn new(type_name: &str, pattern: &str) -> Result<Self, PatternError> {
        let input = format!("{type_name}@{pattern}");
        let type_name = TypeName::new(type_name).map_err(|e| retarget(e, &input))?;
        Self::with_type(type_name, pattern).map_err(|e| match e {
            PatternError::Route(r) => PatternError::Route(retarget(r, &input)),
            PatternError::PartialWildcard { index, .. } => PatternError::PartialWildcard {
                input: input.clone(),
                index,
            },
            other => other,
        })
    }

    /// Builds a pattern for an already validated type name.
    pub fn with_type(type_name: TypeName, pattern: &str) -> Result<Self, PatternError> {
        for (index, seg) in pattern.split('.').enumerate() {
            if seg.contains('*') && seg != "*" && seg != "**" {
                return Err(PatternError::PartialWildcard {
                    input: pattern.into(),
                    index,
                });
            }
        }
        check_path(pattern, pattern, true)?;
        let mut segments: Vec<Segment> = Vec::new();
        for seg in pattern.split('.') {
            let s = match seg {
                "*" => Segment::One,
                "**" => {
                    if segments.last() == Some(&Segment::Any) {
                        continue;
                    }
                    Segment::Any
                }
                lit => Segment::Literal(Arc::from(lit)),
            };
            segments.push(s);
        }
        Ok(Self {
            type_name,
            segments,
        })
    }

    /// Parses `TypeName@pattern`.
    pub fn parse(s: &str) -> Result<Self, PatternError> {
        let (ty, pattern) = s
            .split_once('@')
            .ok_or_else(|| PatternError::MissingType { input: s.into() })?;
        Self::new(ty, pattern)
    }

    /// Parses `TypeName@pattern` and checks it against `limits`.
    ///
    /// # Errors
    ///
    /// Any parse error, or [`PatternError::TooComplex`].
    pub fn parse_with_limits(s: &str, limits: &PatternLimits) -> Result<Self, PatternError> {
        let pattern = Self::parse(s)?;
        limits.check(&pattern)?;
        Ok(pattern)
    }

    /// The pattern that matches exactly `route` (a plain route).
    pub fn exact(route: &Route) -> Option<Self> {
        let (ty, path) = (route.type_name()?, route.path()?);
        Some(Self {
            type_name: ty.clone(),
            segments: path
                .segments()
                .map(|s| Segment::Literal(Arc::from(s)))
                .collect(),
        })
    }

    /// The type name.
    pub fn type_name(&self) -> &TypeName {
        &self.type_name
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// True if the pattern has no wildcard.
    pub fn is_exact(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// True if this pattern matches `route`.
    pub fn matches(&self, route: &Route) -> bool {
        match (route.type_name(), route.path()) {
            (Some(ty), Some(path)) if !route.is_hashed() && *ty == self.type_name => {
                let segs: SmallVec<[&str; 8]> = path.segments().collect();
                match_segments(&self.segments, &segs)
            }
            _ => false,
        }
    }
}

/// Matches pattern segments against path segments (iterative, with
/// backtracking only to the last `**`).
pub(crate) fn match_segments(pat: &[Segment], path: &[&str]) -> bool {
    let (mut p, mut s) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while s < path.len() {
        match pat.get(p) {
            Some(Segment::Literal(l)) if **l == *path[s] => {
                p += 1;
                s += 1;
            }
            Some(Segment::One) => {
                p += 1;
                s += 1;
            }
            Some(Segment::Any) => {
                star = Some((p, s));
                p += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    p = sp + 1;
                    s = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|seg| *seg == Segment::Any)
}

fn retarget(e: RouteError, input: &str) -> RouteError {
    let input = input.to_string();
    match e {
        RouteError::EmptyTypeName { .. } => RouteError::EmptyTypeName { input },
        RouteError::TypeNameTooLong { .. } => RouteError::TypeNameTooLong { input },
        RouteError::TypeNameChar { ch, .. } => RouteError::TypeNameChar { input, ch },
        RouteError::EmptyPath { .. } => RouteError::EmptyPath { input },
        RouteError::EmptySegment { index, .. } => RouteError::EmptySegment { input, index },
        RouteError::SegmentChar { index, ch, .. } => RouteError::SegmentChar { input, index, ch },
        RouteError::SegmentTooLong { index, .. } => RouteError::SegmentTooLong { input, index },
        RouteError::TooManySegments { .. } => RouteError::TooManySegments { input },
        RouteError::PathTooLong { .. } => RouteError::PathTooLong { input },
        other => other,
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@", self.type_name)?;
        for (i, s) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({self})")
    }
}

impl FromStr for Pattern {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Self, PatternError> {
        Self::parse(s)
    }
}

/// What an interest selects: plain routes by pattern, or one hashed route.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Selector {
    /// Plain routes whose type name equals and whose path matches.
    Pattern(Pattern),
    /// Exactly this hashed route (a capability: only key holders know it).
    Hashed(Route),
}

impl Selector {
    /// True if `route` is selected.
    pub fn matches(&self, route: &Route) -> bool {
        match self {
            Self::Pattern(p) => p.matches(route),
            Self::Hashed(r) => r == route,
        }
    }

    /// Parses a pattern `TypeName@pattern` or a hashed route `prefix#hash`.
    pub fn parse(s: &str) -> Result<Self, PatternError> {
        if s.contains('@') {
            return Pattern::parse(s).map(Self::Pattern);
        }
        if s.contains('#') {
            return Ok(Self::Hashed(Route::parse(s)?));
        }
        Err(PatternError::MissingType { input: s.into() })
    }
}

impl From<Pattern> for Selector {
    fn from(p: Pattern) -> Self {
        Self::Pattern(p)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pattern(p) => fmt::Display::fmt(p, f),
            Self::Hashed(r) => fmt::Display::fmt(r, f),
        }
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Selector({self})")
    }
}

impl FromStr for Selector {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Self, PatternError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, r: &str) -> bool {
        Pattern::parse(p)
            .unwrap()
            .matches(&Route::parse(r).unwrap())
    }

    #[test]
    fn wildcards() {
        assert!(m("T@a.b", "T@a.b"));
        assert!(!m("U@a.b", "T@a.b"));
        assert!(m("T@a.*", "T@a.b"));
        assert!(!m("T@a.*", "T@a"));
        assert!(!m("T@a.*", "T@a.b.c"));
        assert!(m("T@a.**", "T@a"));
        assert!(m("T@a.**", "T@a.b.c"));
        assert!(m("T@**.c", "T@a.b.c"));
        assert!(m("T@**", "T@x"));
        assert!(m("T@a.**.c.*", "T@a.x.c.c.d"));
        assert!(!m("T@a.**.c.*", "T@a.x.c"));
        assert_eq!(
            Pattern::parse("T@a.**.**.b").unwrap().to_string(),
            "T@a.**.b"
        );
    }

    #[test]
    fn bad_patterns() {
        assert!(matches!(
            Pattern::parse("T@a.b*"),
            Err(PatternError::PartialWildcard { .. })
        ));
        assert!(Pattern::parse("T@a..b").is_err());
        assert!(Pattern::parse("a.b").is_err());
        let e = Pattern::parse("T@a.b$").unwrap_err().to_string();
        assert!(e.contains("T@a.b$"), "{e}");
    }

    #[test]
    fn limits() {
        let worst = "T@**.*.**.*.**.*.**.*.**.*.**.*.**.*.**.*.**.*";
        let p = Pattern::parse(worst).unwrap();
        assert!(PatternLimits::unlimited().check(&p).is_ok());
        let e = Pattern::parse_with_limits(worst, &PatternLimits::new()).unwrap_err();
        assert_eq!(
            e,
            PatternError::TooComplex {
                input: worst.into(),
                what: Complexity::AnySegments,
                actual: 9,
                max: PatternLimits::DEFAULT_MAX_ANY,
            }
        );
        let msg = e.to_string();
        assert!(msg.contains(worst) && msg.contains("`**`"), "{msg}");
        let short = PatternLimits::new().with_max_segments(2);
        assert!(matches!(
            short.check(&Pattern::parse("T@a.b.c").unwrap()),
            Err(PatternError::TooComplex {
                what: Complexity::Segments,
                actual: 3,
                max: 2,
                ..
            })
        ));
        let narrow = PatternLimits::new().with_max_len(4);
        assert!(narrow.check(&Pattern::parse("T@a.**").unwrap()).is_ok());
        assert!(matches!(
            narrow.check(&Pattern::parse("T@ab.**").unwrap()),
            Err(PatternError::TooComplex {
                what: Complexity::Length,
                actual: 5,
                ..
            })
        ));
    }
}
