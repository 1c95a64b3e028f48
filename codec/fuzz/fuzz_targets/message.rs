//! Fuzzes bytecheck validation of archived messages: any payload either
//! validates (and then deserialises without panicking) or is rejected.
#![no_main]

use dndm_codec::{Message, access, deserialize};
use libfuzzer_sys::fuzz_target;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message)]
#[message(name = "fuzz.Odometry")]
struct Odometry {
    stamp_ns: u64,
    frame_id: String,
    pose: [f64; 7],
    covariance: Vec<f64>,
    labels: Vec<String>,
    status: Status,
    image: Option<Vec<u8>>,
}

#[derive(Archive, Serialize, Deserialize, dndm_codec::Schema)]
enum Status {
    Ok,
    Degraded(String),
    Fault { code: u32, path: Vec<(i32, i32)> },
}

fn check<T: Message>(payload: &[u8]) {
    if let Ok(archived) = access::<T>(payload) {
        let _ = deserialize::<T>(archived);
    }
}

fuzz_target!(|data: &[u8]| {
    // Copy into an aligned buffer so validation, not alignment, is tested.
    let mut buf = AlignedVec::<16>::new();
    buf.extend_from_slice(data);
    check::<Odometry>(&buf);
    check::<Odometry>(buf.get(1..).unwrap_or_default());
});
