//! `dndm-transport` will move frames between processes and machines.
//!
//! Its role in the workspace: one `Transport` trait with a written contract
//! and a conformance suite, implemented by mio TCP and Unix sockets, UDP for
//! discovery, and a deterministic in-memory network for tests. It moves
//! frames from `dndm-codec` and knows nothing about routes.
//!
//! Status: not implemented yet; this crate exports nothing so far, so nothing
//! here can be mistaken for a working transport.
#![forbid(unsafe_code)]
