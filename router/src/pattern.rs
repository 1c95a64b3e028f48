//! Patterns over paths (`*`, `**`) and selectors (what an interest wants).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::route::{Route, RouteError, TypeName, check_path};

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
}
