//! A crate shaped like a user's: it depends on `dndm` and rkyv only, and
//! derives a message. If the derive named a crate the user does not depend
//! on, this crate would not compile.
#![forbid(unsafe_code)]

use dndm::prelude::*;

/// A temperature reading, derived exactly as a user would.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "check.Temperature", version = 2)]
pub struct Temperature {
    /// Degrees Celsius.
    pub celsius: f32,
    /// Where it was measured.
    pub room: String,
}
