//! Codec benchmarks on robotics-shaped messages, each beside its baselines.
//!
//! Groups are named by case and size; function ids starting with `dndm` are
//! ours, the others baselines (postcard, bincode, memcpy); the pairing table
//! `xtask/src/bench/pairs.rs` says which baseline each one meets. Run with
//! `cargo xtask bench codec` (or `--quick`).
#![allow(clippy::unwrap_used, reason = "benchmark setup: a panic is a failure")]

use std::hint::black_box;

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use dndm_codec::{
    Archived, FrameBuffer, FrameHeader, Message, Schema, StreamDecoder, access, access_trusted,
    deserialize,
};

/// A 64-byte IMU sample.
#[derive(
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
    serde::Serialize,
    serde::Deserialize,
    Message,
    Clone,
)]
#[message(name = "bench.Imu")]
struct Imu {
    stamp_ns: u64,
    orientation: [f32; 4],
    gyro: [f32; 3],
    accel: [f32; 3],
    temperature: f32,
    seq: u32,
    status: u32,
}

#[derive(
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
    serde::Serialize,
    serde::Deserialize,
    Schema,
    Clone,
)]
struct Pose {
    position: [f64; 3],
    orientation: [f64; 4],
}

/// A ~1 KiB odometry message with strings and vectors.
#[derive(
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
    serde::Serialize,
    serde::Deserialize,
    Message,
    Clone,
)]
#[message(name = "bench.Odometry")]
struct Odometry {
    stamp_ns: u64,
    frame_id: String,
    child_frame_id: String,
    pose: Pose,
    twist: [f64; 6],
    pose_covariance: Vec<f64>,
    twist_covariance: Vec<f64>,
    path: Vec<[f32; 2]>,
    labels: Vec<String>,
}

/// A 64 KiB camera image.
#[derive(
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
    serde::Serialize,
    serde::Deserialize,
    Message,
    Clone,
)]
#[message(name = "bench.Image")]
struct Image {
    stamp_ns: u64,
    frame_id: String,
    width: u32,
    height: u32,
    encoding: String,
    step: u32,
    data: Vec<u8>,
}

fn imu() -> Imu {
    Imu {
        stamp_ns: 1_700_000_000_000,
        orientation: [0.0, 0.0, 0.0, 1.0],
        gyro: [0.01, -0.02, 0.03],
        accel: [0.1, 0.2, 9.81],
        temperature: 36.6,
        seq: 42,
        status: 0,
    }
}

fn odometry() -> Odometry {
    Odometry {
        stamp_ns: 1_700_000_000_000,
        frame_id: "odom".into(),
        child_frame_id: "base_link".into(),
        pose: Pose {
            position: [1.0, 2.0, 0.0],
            orientation: [0.0, 0.0, 0.383, 0.924],
        },
        twist: [0.5, 0.0, 0.0, 0.0, 0.0, 0.1],
        pose_covariance: (0..36).map(|i| f64::from(i) * 0.01).collect(),
        twist_covariance: (0..36).map(|i| f64::from(i) * 0.02).collect(),
        path: (0..24).map(|i| [i as f32, (i * 2) as f32]).collect(),
        labels: vec!["wheel_odom".into(), "fused".into(), "ekf-v2".into()],
    }
}

fn image() -> Image {
    Image {
        stamp_ns: 1_700_000_000_000,
        frame_id: "camera_front".into(),
        width: 256,
        height: 256,
        encoding: "mono8".into(),
        step: 256,
        data: (0..65536u32).map(|i| (i % 251) as u8).collect(),
    }
}

/// One message type's benchmarks across the cases.
struct Case<T: Message> {
    label: &'static str,
    msg: T,
    /// Reads one field from the archived form.
    field_archived: fn(&Archived<T>) -> u64,
    /// Reads the same field from the owned form.
    field_owned: fn(&T) -> u64,
}

fn set_elements<M: criterion::measurement::Measurement>(group: &mut BenchmarkGroup<'_, M>) {
    group.throughput(Throughput::Elements(1));
}

fn bench_case<T>(c: &mut Criterion, case: &Case<T>)
where
    T: Message + serde::Serialize + serde::de::DeserializeOwned,
{
    let label = case.label;
    let msg = &case.msg;
    let header = FrameHeader::data(1).with_seq(1);

    // Encoded forms, made once.
    let mut frame = FrameBuffer::new();
    frame.push_message(&header, msg).unwrap();
    let payload_range = dndm_codec::HEADER_LEN..dndm_codec::HEADER_LEN + {
        let f = dndm_codec::frames(frame.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        f.payload().len()
    };
    let payload = &frame.as_bytes()[payload_range];
    let post = postcard::to_allocvec(msg).unwrap();
    let bin = bincode::serialize(msg).unwrap();

    // Encode.
    {
        let mut group = c.benchmark_group(format!("encode_{label}"));
        set_elements(&mut group);
        let mut out = FrameBuffer::with_capacity(payload.len() * 2 + 256);
        group.bench_function("dndm", |b| {
            b.iter(|| {
                out.clear();
                out.push_message(&header, black_box(msg)).unwrap();
                black_box(out.len())
            });
        });
        let mut pbuf = vec![0u8; post.len() * 2 + 64];
        group.bench_function("postcard", |b| {
            b.iter(|| black_box(postcard::to_slice(black_box(msg), &mut pbuf).unwrap().len()));
        });
        let mut bbuf: Vec<u8> = Vec::with_capacity(bin.len() * 2);
        group.bench_function("bincode", |b| {
            b.iter(|| {
                bbuf.clear();
                bincode::serialize_into(&mut bbuf, black_box(msg)).unwrap();
                black_box(bbuf.len())
            });
        });
        let mut copy = vec![0u8; frame.len()];
        group.bench_function("memcpy", |b| {
            b.iter(|| {
                copy.copy_from_slice(black_box(frame.as_bytes()));
                black_box(copy.len())
            });
        });
        group.finish();
    }

    // Access one field.
    {
        let mut group = c.benchmark_group(format!("access_{label}"));
        set_elements(&mut group);
        group.bench_function("dndm_validated", |b| {
            b.iter(|| (case.field_archived)(access::<T>(black_box(payload)).unwrap()));
        });
        group.bench_function("dndm_trusted", |b| {
            b.iter(|| {
                // SAFETY: the payload was encoded by this process above.
                let archived = unsafe { access_trusted::<T>(black_box(payload)) }.unwrap();
                (case.field_archived)(archived)
            });
        });
        group.bench_function("postcard_decode", |b| {
            b.iter(|| (case.field_owned)(&postcard::from_bytes::<T>(black_box(&post)).unwrap()));
        });
        group.bench_function("bincode_decode", |b| {
            b.iter(|| (case.field_owned)(&bincode::deserialize::<T>(black_box(&bin)).unwrap()));
        });
        let mut copy = vec![0u8; payload.len()];
        group.bench_function("memcpy", |b| {
            b.iter(|| {
                copy.copy_from_slice(black_box(payload));
                black_box(copy.len())
            });
        });
        group.finish();
    }

    // Full deserialisation to an owned value.
    {
        let mut group = c.benchmark_group(format!("deserialize_{label}"));
        set_elements(&mut group);
        group.bench_function("dndm", |b| {
            b.iter(|| {
                let archived = access::<T>(black_box(payload)).unwrap();
                (case.field_owned)(&deserialize::<T>(archived).unwrap())
            });
        });
        group.bench_function("postcard", |b| {
            b.iter(|| (case.field_owned)(&postcard::from_bytes::<T>(black_box(&post)).unwrap()));
        });
        group.bench_function("bincode", |b| {
            b.iter(|| (case.field_owned)(&bincode::deserialize::<T>(black_box(&bin)).unwrap()));
        });
        group.finish();
    }
}

fn messages(c: &mut Criterion) {
    bench_case(
        c,
        &Case {
            label: "64B",
            msg: imu(),
            field_archived: |a| u64::from(a.seq.to_native()),
            field_owned: |m| u64::from(m.seq),
        },
    );
    bench_case(
        c,
        &Case {
            label: "1KiB",
            msg: odometry(),
            field_archived: |a| a.twist_covariance.len() as u64 + a.child_frame_id.len() as u64,
            field_owned: |m| m.twist_covariance.len() as u64 + m.child_frame_id.len() as u64,
        },
    );
    bench_case(
        c,
        &Case {
            label: "64KiB",
            msg: image(),
            field_archived: |a| u64::from(a.data[a.data.len() - 1]),
            field_owned: |m| u64::from(m.data[m.data.len() - 1]),
        },
    );
}

/// Streaming decode of a buffer of ~1 KiB frames vs memcpy of the same bytes.
fn stream(c: &mut Criterion) {
    let mut out = FrameBuffer::new();
    let msg = odometry();
    for seq in 0..256 {
        out.push_message(&FrameHeader::data(1).with_seq(seq), &msg)
            .unwrap();
    }
    let bytes = out.as_bytes();
    let mut group = c.benchmark_group("stream_decode_1KiB");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    let mut decoder = StreamDecoder::default();
    group.bench_function("dndm", |b| {
        b.iter(|| {
            let mut input = black_box(bytes);
            let mut seqs = 0u64;
            while !input.is_empty() {
                let n = decoder.feed(input);
                input = &input[n..];
                while let Some(frame) = decoder.next_frame().unwrap() {
                    seqs = seqs.wrapping_add(frame.header().seq);
                }
            }
            black_box(seqs)
        });
    });
    let mut copy = vec![0u8; bytes.len()];
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            copy.copy_from_slice(black_box(bytes));
            black_box(copy.len())
        });
    });
    group.finish();
}

criterion_group!(benches, messages, stream);
criterion_main!(benches);
