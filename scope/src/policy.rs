//! Access policies: allow and deny rules on route patterns, per operation.
//!
//! A [`Policy`] is a list of rules. An operation on a target (the route of a
//! publisher or server, the selector of a subscriber, the route a client
//! calls) passes one policy when no `deny` rule for that operation could
//! touch the target and, if the policy has `allow` rules for the operation,
//! one of them covers the whole target. For a pattern that means: a deny
//! rule applies as soon as one route could match both, an allow rule only
//! if every route the pattern matches is inside it.
//!
//! A scope checks the policies of all its ancestors and its own, root
//! first; an operation must pass each. A child can therefore only narrow
//! what its parent allows. [`Policy::check`] is the whole decision for one
//! policy, so a layer that receives remote declarations can ask the same
//! question of the same rules.

use std::fmt;
use std::sync::Arc;

use dndm_router::{Pattern, Route, Segment, Selector, TypeName};

/// An operation a policy rules on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Creating a publisher.
    Publish,
    /// Creating a subscriber.
    Subscribe,
    /// Serving requests.
    Serve,
    /// Calling a service.
    Call,
}

impl Op {
    /// Every operation.
    pub const ALL: &'static [Op] = &[Op::Publish, Op::Subscribe, Op::Serve, Op::Call];

    fn bit(self) -> u8 {
        match self {
            Op::Publish => 1,
            Op::Subscribe => 2,
            Op::Serve => 4,
            Op::Call => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Op::Publish => "publish",
            Op::Subscribe => "subscribe",
            Op::Serve => "serve",
            Op::Call => "call",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a rule allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effect {
    /// The operation may touch what the rule covers.
    Allow,
    /// The operation may not touch anything the rule matches.
    Deny,
}

/// What an operation is about to touch.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Target<'a> {
    /// A route (publish, serve, call).
    Route(&'a Route),
    /// A selector (subscribe).
    Selector(&'a Selector),
}

impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Route(r) => write!(f, "{r}"),
            Target::Selector(s) => write!(f, "{s}"),
        }
    }
}

/// A rule could not be built from its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The pattern is malformed.
    #[error("invalid rule pattern {input:?}: {reason}")]
    Pattern {
        /// The rule's pattern text.
        input: String,
        /// Why.
        reason: String,
    },
    /// The rule names no operation.
    #[error("rule on {input:?} names no operation")]
    NoOp {
        /// The rule's pattern text.
        input: String,
    },
}

/// An operation was refused by a policy. Names the rule that refused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op} on {target} is denied by {rule} of scope {scope}")]
#[non_exhaustive]
pub struct Denied {
    /// The operation.
    pub op: Op,
    /// The route or selector, as text.
    pub target: String,
    /// The scope whose policy refused it (empty for a bare policy).
    pub scope: String,
    /// The rule, as text (`rule \`deny publish robot.secret.**\``, or
    /// `its allow list` when no allow rule covers the target).
    pub rule: String,
}

/// One allow or deny rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    effect: Effect,
    ops: u8,
    type_name: Option<TypeName>,
    /// True if the pattern is resolved against the scope it is set on.
    relative: bool,
    segments: Vec<Segment>,
}

impl Rule {
    fn parse(effect: Effect, ops: &[Op], text: &str) -> Result<Self, RuleError> {
        let bits = ops.iter().fold(0, |b, op| b | op.bit());
        if bits == 0 {
            return Err(RuleError::NoOp { input: text.into() });
        }
        let err = |reason: String| RuleError::Pattern {
            input: text.into(),
            reason,
        };
        let (type_name, path) = match text.split_once('@') {
            Some((ty, path)) => (
                Some(TypeName::new(ty).map_err(|e| err(e.to_string()))?),
                path,
            ),
            None => (None, text),
        };
        let (relative, path) = match path.strip_prefix('/') {
            Some(p) => (false, p),
            None => (true, path),
        };
        let pattern = Pattern::new("rule", path).map_err(|e| err(e.to_string()))?;
        Ok(Self {
            effect,
            ops: bits,
            type_name,
            relative,
            segments: pattern.segments().to_vec(),
        })
    }

    /// Allow or deny.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// True if the rule rules on `op`.
    pub fn covers_op(&self, op: Op) -> bool {
        self.ops & op.bit() != 0
    }

    fn rebased(&self, base: &[Segment]) -> Self {
        let mut r = self.clone();
        if r.relative {
            let mut segs = base.to_vec();
            segs.extend(r.segments);
            r.segments = segs;
            r.relative = false;
        }
        r
    }

    fn type_overlaps(&self, ty: Option<&TypeName>) -> bool {
        match (&self.type_name, ty) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }

    fn type_covers(&self, ty: Option<&TypeName>) -> bool {
        match (&self.type_name, ty) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => false,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let effect = match self.effect {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        };
        write!(f, "{effect} ")?;
        let mut first = true;
        for op in Op::ALL {
            if self.covers_op(*op) {
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                f.write_str(op.name())?;
            }
        }
        f.write_str(" ")?;
        if let Some(t) = &self.type_name {
            write!(f, "{t}@")?;
        }
        if !self.relative {
            f.write_str("/")?;
        }
        for (i, s) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

/// Allow and deny rules for publish, subscribe, serve and call.
///
/// Patterns are `[TypeName@]path-pattern` (`*`: one segment, `**`: any
/// number). Set on a scope, a pattern is relative to the scope unless it
/// starts with `/`; a bare policy reads every pattern as absolute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    /// A policy without rules: everything passes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an allow rule for `ops` on `pattern`.
    pub fn allow(mut self, ops: &[Op], pattern: &str) -> Result<Self, RuleError> {
        self.rules.push(Rule::parse(Effect::Allow, ops, pattern)?);
        Ok(self)
    }

    /// Adds a deny rule for `ops` on `pattern`.
    pub fn deny(mut self, ops: &[Op], pattern: &str) -> Result<Self, RuleError> {
        self.rules.push(Rule::parse(Effect::Deny, ops, pattern)?);
        Ok(self)
    }

    /// The rules, in the order they were added.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// True if the policy has no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The same policy with relative patterns resolved under `base`.
    pub(crate) fn rebased(&self, base: &str) -> Self {
        let segs: Vec<Segment> = base
            .split('.')
            .map(|s| Segment::Literal(Arc::from(s)))
            .collect();
        Self {
            rules: self.rules.iter().map(|r| r.rebased(&segs)).collect(),
        }
    }

    /// Decides whether `op` may touch `target` under this policy.
    pub fn check(&self, op: Op, target: Target<'_>) -> Result<(), Denied> {
        self.check_in("", op, target)
    }

    pub(crate) fn check_in(&self, scope: &str, op: Op, target: Target<'_>) -> Result<(), Denied> {
        if self.rules.is_empty() {
            return Ok(());
        }
        let (ty, segs) = target_parts(target);
        let denied = |rule: String| Denied {
            op,
            target: target.to_string(),
            scope: scope.to_string(),
            rule,
        };
        let mut has_allow = false;
        let mut allowed = false;
        for rule in self.rules.iter().filter(|r| r.covers_op(op)) {
            match rule.effect {
                Effect::Deny => {
                    if rule.type_overlaps(ty) && overlaps(&rule.segments, &segs) {
                        return Err(denied(format!("rule `{rule}`")));
                    }
                }
                Effect::Allow => {
                    has_allow = true;
                    allowed = allowed || (rule.type_covers(ty) && covers(&rule.segments, &segs));
                }
            }
        }
        if has_allow && !allowed {
            return Err(denied("its allow list".into()));
        }
        Ok(())
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// The type and segments a target touches; a hashed route hides both, so it
/// reads as "any type, any path".
fn target_parts<'a>(target: Target<'a>) -> (Option<&'a TypeName>, Vec<Segment>) {
    match target {
        Target::Route(r) => match (r.type_name(), r.path()) {
            (Some(ty), Some(path)) if !r.is_hashed() => (
                Some(ty),
                path.segments()
                    .map(|s| Segment::Literal(Arc::from(s)))
                    .collect(),
            ),
            _ => (None, vec![Segment::Any]),
        },
        Target::Selector(Selector::Pattern(p)) => (Some(p.type_name()), p.segments().to_vec()),
        Target::Selector(Selector::Hashed(_)) => (None, vec![Segment::Any]),
        #[allow(unreachable_patterns, reason = "Selector may grow variants")]
        Target::Selector(_) => (None, vec![Segment::Any]),
    }
}

/// True if some path matches both patterns.
pub(crate) fn overlaps(a: &[Segment], b: &[Segment]) -> bool {
    let mut memo = vec![None; (a.len() + 1) * (b.len() + 1)];
    overlap_at(a, b, 0, 0, &mut memo)
}

fn overlap_at(a: &[Segment], b: &[Segment], i: usize, j: usize, memo: &mut [Option<bool>]) -> bool {
    let k = i * (b.len() + 1) + j;
    if let Some(v) = memo[k] {
        return v;
    }
    let v = match (a.get(i), b.get(j)) {
        (None, None) => true,
        (Some(Segment::Any), _) => {
            overlap_at(a, b, i + 1, j, memo) || (j < b.len() && overlap_at(a, b, i, j + 1, memo))
        }
        (_, Some(Segment::Any)) => {
            overlap_at(a, b, i, j + 1, memo) || (i < a.len() && overlap_at(a, b, i + 1, j, memo))
        }
        (Some(x), Some(y)) => {
            let compatible = match (x, y) {
                (Segment::Literal(p), Segment::Literal(q)) => p == q,
                _ => true,
            };
            compatible && overlap_at(a, b, i + 1, j + 1, memo)
        }
        _ => false,
    };
    memo[k] = Some(v);
    v
}

/// True if every path `inner` matches is matched by `outer` (sound: a
/// `true` is always right).
pub(crate) fn covers(outer: &[Segment], inner: &[Segment]) -> bool {
    let mut memo = vec![None; (outer.len() + 1) * (inner.len() + 1)];
    cover_at(outer, inner, 0, 0, &mut memo)
}

fn cover_at(o: &[Segment], n: &[Segment], i: usize, j: usize, memo: &mut [Option<bool>]) -> bool {
    let k = i * (n.len() + 1) + j;
    if let Some(v) = memo[k] {
        return v;
    }
    let v = match (o.get(i), n.get(j)) {
        (Some(Segment::Any), _) => {
            cover_at(o, n, i + 1, j, memo) || (j < n.len() && cover_at(o, n, i, j + 1, memo))
        }
        (None, None) => true,
        (Some(Segment::One), Some(Segment::One | Segment::Literal(_))) => {
            cover_at(o, n, i + 1, j + 1, memo)
        }
        (Some(Segment::Literal(p)), Some(Segment::Literal(q))) if p == q => {
            cover_at(o, n, i + 1, j + 1, memo)
        }
        _ => false,
    };
    memo[k] = Some(v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<Segment> {
        Pattern::new("t", p).unwrap().segments().to_vec()
    }

    #[test]
    fn overlap_and_cover() {
        assert!(overlaps(&segs("a.**"), &segs("**")));
        assert!(overlaps(&segs("a.*.c"), &segs("a.b.*")));
        assert!(!overlaps(&segs("a.b"), &segs("a.c")));
        assert!(overlaps(&segs("a.**"), &segs("a")));
        assert!(!overlaps(&segs("a.*"), &segs("a")));
        assert!(covers(&segs("a.**"), &segs("a.b.*")));
        assert!(covers(&segs("a.**"), &segs("a.**")));
        assert!(!covers(&segs("a.*"), &segs("a.**")));
        assert!(!covers(&segs("a.b"), &segs("a.*")));
        assert!(covers(&segs("**"), &segs("x.*.**")));
    }

    #[test]
    fn deny_wins_and_allow_list_closes() {
        let p = Policy::new()
            .allow(Op::ALL, "/robot.**")
            .unwrap()
            .deny(&[Op::Publish], "/robot.secret.**")
            .unwrap();
        let ok: Route = "T@robot.arm".parse().unwrap();
        let secret: Route = "T@robot.secret.key".parse().unwrap();
        let outside: Route = "T@base.x".parse().unwrap();
        assert!(p.check(Op::Publish, Target::Route(&ok)).is_ok());
        let e = p.check(Op::Publish, Target::Route(&secret)).unwrap_err();
        assert!(e.rule.contains("deny publish /robot.secret.**"), "{e}");
        assert!(p.check(Op::Subscribe, Target::Route(&secret)).is_ok());
        let e = p.check(Op::Publish, Target::Route(&outside)).unwrap_err();
        assert_eq!(e.rule, "its allow list");
        let wide: Selector = "T@**".parse().unwrap();
        assert!(p.check(Op::Subscribe, Target::Selector(&wide)).is_err());
    }
}
