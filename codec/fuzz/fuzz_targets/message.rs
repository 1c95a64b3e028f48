//! Fuzzes bytecheck validation of archived messages; the check itself is in
//! `checks/message.rs`, shared with the corpus replay test.
#![no_main]

#[path = "../checks/message.rs"]
mod message;

libfuzzer_sys::fuzz_target!(|data: &[u8]| message::check(data));
