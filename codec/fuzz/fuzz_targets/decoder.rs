//! Fuzzes the streaming decoder with arbitrary bytes and chunkings; the check
//! itself is in `checks/decoder.rs`, shared with the corpus replay test.
#![no_main]

#[path = "../checks/decoder.rs"]
mod decoder;

libfuzzer_sys::fuzz_target!(|data: &[u8]| decoder::check(data));
