//! `#[derive(Message)]` for `dndm-codec`.
//!
//! Status: not implemented yet; this crate exports nothing so far.
