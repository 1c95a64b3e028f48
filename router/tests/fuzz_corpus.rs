//! The session fuzz target's check, replayed as an ordinary test over its
//! seeds, the checked-in regressions (`router/fuzz/regressions/session/`) and
//! whatever a local `cargo xtask fuzz session` run left in
//! `router/fuzz/corpus/session/`. Copy a crashing input from
//! `router/fuzz/artifacts/session/` into the regressions folder to keep it.
//!
//! `DNDM_WRITE_FUZZ_SEEDS=1 cargo test -p dndm-router --test fuzz_corpus`
//! writes the seeds into the regressions folder, where the fuzzer starts.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]
#![allow(
    unreachable_pub,
    reason = "the check module is shared with the fuzz crate"
)]

use std::path::Path;

#[path = "../fuzz/checks/session.rs"]
mod session;

#[test]
fn session_check_replays_its_corpus() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = session::seeds();
    assert!(!seeds.is_empty());
    if std::env::var_os("DNDM_WRITE_FUZZ_SEEDS").is_some() {
        let dir = fuzz.join("regressions/session");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), seed).unwrap();
        }
    }
    for seed in &seeds {
        session::check(seed);
        // Every truncation too: the session never panics on a cut stream.
        for cut in 0..seed.len() {
            session::check(&seed[..cut]);
        }
    }
    for folder in ["regressions/session", "corpus/session"] {
        for entry in std::fs::read_dir(fuzz.join(folder))
            .into_iter()
            .flatten()
            .flatten()
        {
            eprintln!("replaying {}", entry.path().display());
            session::check(&std::fs::read(entry.path()).unwrap());
        }
    }
}
