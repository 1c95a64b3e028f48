//! Scope names and the resolution of paths and patterns given inside a scope.
//!
//! Inside a scope whose path is `robot.arm`, the relative path `imu` names
//! `robot.arm.imu`. The absolute form is explicit, a leading `/`
//! (`/robot.arm.imu`), and must still lie inside the scope. Nothing given to
//! a scope can name a path outside it: `..`, `.`, empty segments and a `/`
//! anywhere but at the start are refused before any validation of segments,
//! and an absolute path or pattern must start with the scope's own segments
//! (wildcards cannot stand in for them).

use dndm_router::{Path, Pattern, PatternError, Route, RouteError};

/// A path or pattern given inside a scope could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// `..`, `.`, an empty segment or a `/` inside the input: no path given
    /// to a scope can climb out of it.
    #[error("path {input:?} in scope {scope}: `..`, `.`, empty segments and inner `/` are refused")]
    Escape {
        /// The scope's path.
        scope: String,
        /// The input.
        input: String,
    },
    /// An absolute path or pattern that does not lie inside the scope.
    #[error("absolute path {input:?} lies outside scope {scope}")]
    Outside {
        /// The scope's path.
        scope: String,
        /// The input.
        input: String,
    },
    /// The resolved path breaks the route rules.
    #[error("path {input:?} in scope {scope}: {source}")]
    Route {
        /// The scope's path.
        scope: String,
        /// The input.
        input: String,
        /// Why.
        source: RouteError,
    },
    /// The resolved pattern breaks the pattern rules.
    #[error("pattern {input:?} in scope {scope}: {source}")]
    Pattern {
        /// The scope's path.
        scope: String,
        /// The input.
        input: String,
        /// Why.
        source: PatternError,
    },
}

/// Checks a scope name (one or more dotted segments, no wildcard).
pub(crate) fn check_name(name: &str) -> Result<(), RouteError> {
    Path::new(name).map(|_| ())
}

/// The absolute text of `input` resolved inside `scope` (not yet validated
/// as a path or pattern beyond the escape rules).
pub(crate) fn resolve_text(scope: &str, input: &str) -> Result<String, PathError> {
    let escape = || PathError::Escape {
        scope: scope.to_string(),
        input: input.to_string(),
    };
    let (absolute, rest) = match input.strip_prefix('/') {
        Some(rest) => (true, rest),
        None => (false, input),
    };
    if rest.contains('/') || rest.split('.').any(|s| s.is_empty() || s == "..") {
        return Err(escape());
    }
    if !absolute {
        return Ok(format!("{scope}.{rest}"));
    }
    let inside = rest == scope
        || rest
            .strip_prefix(scope)
            .is_some_and(|tail| tail.starts_with('.'));
    if inside {
        Ok(rest.to_string())
    } else {
        Err(PathError::Outside {
            scope: scope.to_string(),
            input: input.to_string(),
        })
    }
}

pub(crate) fn resolve_path(scope: &str, input: &str) -> Result<Path, PathError> {
    let text = resolve_text(scope, input)?;
    Path::new(&text).map_err(|source| PathError::Route {
        scope: scope.to_string(),
        input: input.to_string(),
        source,
    })
}

pub(crate) fn resolve_route(scope: &str, type_name: &str, input: &str) -> Result<Route, PathError> {
    let text = resolve_text(scope, input)?;
    Route::new(type_name, &text).map_err(|source| PathError::Route {
        scope: scope.to_string(),
        input: input.to_string(),
        source,
    })
}

pub(crate) fn resolve_pattern(
    scope: &str,
    type_name: &str,
    input: &str,
) -> Result<Pattern, PathError> {
    let text = resolve_text(scope, input)?;
    Pattern::new(type_name, &text).map_err(|source| PathError::Pattern {
        scope: scope.to_string(),
        input: input.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute() {
        assert_eq!(resolve_text("a.b", "c").unwrap(), "a.b.c");
        assert_eq!(resolve_text("a.b", "/a.b.c").unwrap(), "a.b.c");
        assert_eq!(resolve_text("a.b", "/a.b").unwrap(), "a.b");
        assert!(matches!(
            resolve_text("a.b", "/a.bc"),
            Err(PathError::Outside { .. })
        ));
        assert!(matches!(
            resolve_text("a.b", "/a.*.c"),
            Err(PathError::Outside { .. })
        ));
        assert!(matches!(
            resolve_text("a.b", "/**"),
            Err(PathError::Outside { .. })
        ));
        for bad in [
            "..", "..c", "c..", "../c", "c/../d", ".c", "c.", "", "/", "//a.b", "/a.b/..",
        ] {
            assert!(resolve_text("a.b", bad).is_err(), "{bad:?}");
        }
    }
}
