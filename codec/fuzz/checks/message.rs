//! The message fuzz check, shared by the fuzz target (`fuzz_targets/message.rs`)
//! and the corpus replay test (`codec/tests/fuzz_corpus.rs`): any payload
//! either validates (and then deserialises without panicking) or is rejected.

use dndm_codec::{Message, access, deserialize};
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

/// A message with every shape validation must handle: strings, vectors,
/// arrays, enums with data, options.
#[derive(Archive, Serialize, Deserialize, Message)]
#[message(name = "fuzz.Odometry")]
pub struct Odometry {
    stamp_ns: u64,
    frame_id: String,
    pose: [f64; 7],
    covariance: Vec<f64>,
    labels: Vec<String>,
    status: Status,
    image: Option<Vec<u8>>,
}

/// The enum inside [`Odometry`].
#[derive(Archive, Serialize, Deserialize, dndm_codec::Schema)]
pub enum Status {
    Ok,
    Degraded(String),
    Fault { code: u32, path: Vec<(i32, i32)> },
}

fn check_one<T: Message>(payload: &[u8]) {
    if let Ok(archived) = access::<T>(payload) {
        let _ = deserialize::<T>(archived);
    }
}

/// One fuzz input: the bytes of an archived `Odometry`, at an aligned and at
/// a misaligned offset.
pub fn check(data: &[u8]) {
    // Copy into an aligned buffer so validation, not alignment, is tested.
    let mut buf = AlignedVec::<16>::new();
    buf.extend_from_slice(data);
    check_one::<Odometry>(&buf);
    check_one::<Odometry>(buf.get(1..).unwrap_or_default());
}

/// Valid inputs the fuzzer starts from and the replay test always runs.
#[allow(dead_code, reason = "the fuzz target does not use it")]
pub fn seeds() -> Vec<Vec<u8>> {
    let odometry = Odometry {
        stamp_ns: 42,
        frame_id: "base_link".into(),
        pose: [1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 1.0],
        covariance: vec![0.5; 6],
        labels: vec!["a".into(), "bb".into()],
        status: Status::Fault {
            code: 7,
            path: vec![(1, -1), (2, -2)],
        },
        image: Some(vec![1, 2, 3]),
    };
    let mut out = Vec::new();
    if let Ok(bytes) = rkyv::to_bytes::<rkyv::rancor::Error>(&odometry) {
        out.push(bytes.to_vec());
    }
    out
}
