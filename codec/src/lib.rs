//! `dndm-codec` will hold typed messages (`Message`, schema fingerprints),
//! the frame format, encoding into reusable buffers and the streaming
//! decoder.
//!
//! Status: not implemented yet; this crate exports nothing so far.
