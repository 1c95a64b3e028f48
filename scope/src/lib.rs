//! `dndm-scope` will hold hierarchical scopes: a tree of named scopes that
//! own intents, interests and state, with access policies, where dropping a
//! scope withdraws everything it owns before returning.
//!
//! Status: not implemented yet; this crate exports nothing so far.
#![forbid(unsafe_code)]
