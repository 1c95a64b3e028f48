//! The fuzz targets' checks, replayed as ordinary tests over their seeds,
//! the checked-in regressions (`codec/fuzz/regressions/<target>/`: inputs a
//! fuzz run found, plus the starting seeds), the malformed-frame corpus, and
//! whatever a local `cargo xtask fuzz` run left in `codec/fuzz/corpus/`.
//!
//! `DNDM_WRITE_FUZZ_SEEDS=1 cargo test -p dndm-codec --test fuzz_corpus`
//! writes the seeds into the regressions folders, where the fuzzer starts.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]
#![allow(
    unreachable_pub,
    reason = "the check modules are shared with the fuzz crate"
)]

use std::path::{Path, PathBuf};

#[path = "../fuzz/checks/decoder.rs"]
mod decoder;
#[path = "../fuzz/checks/message.rs"]
mod message;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Every file under the target's regression and local corpus folders.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for folder in ["regressions", "corpus"] {
        let dir = fuzz_dir().join(folder).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out
}

fn write_seeds(target: &str, seeds: &[Vec<u8>]) {
    if std::env::var_os("DNDM_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    let dir = fuzz_dir().join("regressions").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), seed).unwrap();
    }
}

#[test]
fn decoder_check_replays_its_corpus() {
    let seeds = decoder::seeds();
    assert!(!seeds.is_empty(), "the seed frames encode");
    write_seeds("decoder", &seeds);
    for seed in &seeds {
        decoder::check(seed);
    }
    // The malformed-frame corpus, plain and with repaired headers, in
    // several chunk sizes.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut replayed = 0;
    for entry in std::fs::read_dir(corpus).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "bin") {
            let bytes = std::fs::read(&path).unwrap();
            for control in [0x00_u8, 0x06, 0x3f, 0x80, 0x86] {
                let mut input = vec![control];
                input.extend_from_slice(&bytes);
                decoder::check(&input);
            }
            replayed += 1;
        }
    }
    assert!(replayed >= 8, "the malformed-frame corpus is there");
    for (path, bytes) in inputs("decoder") {
        eprintln!("replaying {}", path.display());
        decoder::check(&bytes);
    }
}

#[test]
fn message_check_replays_its_corpus() {
    let seeds = message::seeds();
    assert!(!seeds.is_empty(), "the seed message archives");
    write_seeds("message", &seeds);
    for seed in &seeds {
        // A valid archive must validate: the check then reaches the
        // deserialiser, not only the rejection path.
        let mut aligned = rkyv::util::AlignedVec::<16>::new();
        aligned.extend_from_slice(seed);
        assert!(dndm_codec::access::<message::Odometry>(&aligned).is_ok());
        message::check(seed);
        // Every truncation is rejected or read, never a panic.
        for cut in 0..seed.len() {
            message::check(&seed[..cut]);
        }
    }
    for (path, bytes) in inputs("message") {
        eprintln!("replaying {}", path.display());
        message::check(&bytes);
    }
}

/// The decoder fuzz check repairs headers with `__private::header_checksum`:
/// it must compute the checksum real frames carry, or the repaired half of
/// the fuzzing never gets past the checksum.
#[test]
fn the_repair_checksum_is_the_one_frames_carry() {
    use dndm_codec::{FrameBuffer, FrameHeader, HEADER_LEN};
    for (seq, payload) in [
        (1_u64, &b""[..]),
        (7, b"ping"),
        (u64::MAX, &[0xa5; 100][..]),
    ] {
        let mut frames = FrameBuffer::new();
        frames
            .push_raw(&FrameHeader::control().with_seq(seq), payload)
            .unwrap();
        let mut header: [u8; HEADER_LEN] = frames.as_bytes()[..HEADER_LEN].try_into().unwrap();
        let carried = u32::from_le_bytes(header[12..16].try_into().unwrap());
        header[12..16].fill(0);
        assert_eq!(dndm_codec::__private::header_checksum(&header), carried);
    }
}
