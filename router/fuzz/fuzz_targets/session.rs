//! Fuzzes the peer session's frame handling; the check itself is in
//! `checks/session.rs`, shared with the corpus replay test.
#![no_main]

#[path = "../checks/session.rs"]
mod session;

libfuzzer_sys::fuzz_target!(|data: &[u8]| session::check(data));
