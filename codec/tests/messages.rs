//! Typed messages: derive, fingerprints, encode/decode round trips, access paths.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use dndm_codec::{
    AccessError, BufferPool, DecoderConfig, FrameBuffer, FrameHeader, FrameKind, Message, Schema,
    StreamDecoder, access, access_trusted, deserialize, frames,
};
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Debug, PartialEq, Clone)]
#[message(name = "robot.Imu", version = 2)]
struct Imu {
    stamp_ns: u64,
    accel: [f32; 3],
    gyro: [f32; 3],
}

#[derive(Archive, Serialize, Deserialize, Schema, Debug, PartialEq, Clone)]
struct Vec3 {
    x: f64,
    y: f64,
    z: f64,
}

#[derive(Archive, Serialize, Deserialize, Schema, Debug, PartialEq, Clone)]
enum Status {
    Ok,
    Degraded(String),
    Fault { code: u32, detail: Option<String> },
}

#[derive(Archive, Serialize, Deserialize, Message, Debug, PartialEq, Clone)]
#[message(name = "robot.Odometry")]
struct Odometry {
    frame_id: String,
    child_frame_id: String,
    position: Vec3,
    velocity: Vec3,
    covariance: Vec<f64>,
    status: Status,
    tags: Vec<String>,
}

#[derive(Archive, Serialize, Deserialize, Message, Debug, PartialEq, Clone)]
struct Wrapper<T> {
    inner: T,
    count: u16,
}

#[derive(Archive, Serialize, Deserialize, Message, Debug, PartialEq, Clone)]
struct Tuple(u8, String);

#[derive(Archive, Serialize, Deserialize, Message, Debug, PartialEq, Clone)]
struct Unit;

mod shapes {
    //! Variations of one message to check which changes alter the fingerprint.
    use dndm_codec::Message;
    use rkyv::{Archive, Deserialize, Serialize};

    #[derive(Archive, Serialize, Deserialize, Message)]
    #[message(name = "robot.Imu", version = 2)]
    pub(crate) struct Same {
        pub(crate) stamp_ns: u64,
        pub(crate) accel: [f32; 3],
        pub(crate) gyro: [f32; 3],
    }

    #[derive(Archive, Serialize, Deserialize, Message)]
    #[message(name = "robot.Imu", version = 3)]
    pub(crate) struct Bumped {
        stamp_ns: u64,
        accel: [f32; 3],
        gyro: [f32; 3],
    }

    #[derive(Archive, Serialize, Deserialize, Message)]
    #[message(name = "robot.Imu", version = 2)]
    pub(crate) struct Renamed {
        stamp: u64,
        accel: [f32; 3],
        gyro: [f32; 3],
    }

    #[derive(Archive, Serialize, Deserialize, Message)]
    #[message(name = "robot.Imu", version = 2)]
    pub(crate) struct Retyped {
        stamp_ns: u32,
        accel: [f32; 3],
        gyro: [f32; 3],
    }

    #[derive(Archive, Serialize, Deserialize, Message)]
    #[message(name = "robot.Imu", version = 2)]
    pub(crate) struct Reordered {
        accel: [f32; 3],
        stamp_ns: u64,
        gyro: [f32; 3],
    }

    #[derive(Archive, Serialize, Deserialize, Message)]
    #[message(name = "robot.Imu", version = 2)]
    pub(crate) struct Resized {
        stamp_ns: u64,
        accel: [f32; 4],
        gyro: [f32; 3],
    }

    #[derive(Archive, Serialize, Deserialize, Message)]
    #[message(name = "robot.Imu2", version = 2)]
    pub(crate) struct OtherName {
        stamp_ns: u64,
        accel: [f32; 3],
        gyro: [f32; 3],
    }

    #[derive(Archive, Serialize, Deserialize, Message)]
    #[message(name = "robot.Imu", version = 2)]
    pub(crate) struct Imu {
        // Same name as the outer type but in another module: identical.
        stamp_ns: u64,
        accel: [f32; 3],
        gyro: [f32; 3],
    }
}

fn imu() -> Imu {
    Imu {
        stamp_ns: 123_456_789,
        accel: [0.1, -0.2, 9.81],
        gyro: [0.01, 0.02, -0.03],
    }
}

fn odometry() -> Odometry {
    Odometry {
        frame_id: "odom".into(),
        child_frame_id: "base_link".into(),
        position: Vec3 {
            x: 1.0,
            y: 2.0,
            z: 3.0,
        },
        velocity: Vec3 {
            x: 0.5,
            y: 0.0,
            z: -0.5,
        },
        covariance: (0..36).map(f64::from).collect(),
        status: Status::Fault {
            code: 7,
            detail: Some("wheel slip".into()),
        },
        tags: vec!["a".into(), "bb".into()],
    }
}

#[test]
fn names_and_versions() {
    assert_eq!(Imu::TYPE_NAME, "robot.Imu");
    assert_eq!(Imu::VERSION, 2);
    assert_eq!(Odometry::TYPE_NAME, "robot.Odometry");
    assert_eq!(Odometry::VERSION, 1);
    assert_eq!(Tuple::TYPE_NAME, "Tuple");
    assert_eq!(dndm_codec::fingerprint::<Imu>(), Imu::FINGERPRINT);
}

#[test]
fn fingerprint_rules() {
    let base = Imu::FINGERPRINT;
    assert_eq!(shapes::Same::FINGERPRINT, base);
    assert_eq!(shapes::Imu::FINGERPRINT, base, "rust path does not matter");
    for (what, other) in [
        ("version", shapes::Bumped::FINGERPRINT),
        ("field name", shapes::Renamed::FINGERPRINT),
        ("field type", shapes::Retyped::FINGERPRINT),
        ("field order", shapes::Reordered::FINGERPRINT),
        ("array length", shapes::Resized::FINGERPRINT),
        ("type name", shapes::OtherName::FINGERPRINT),
    ] {
        assert_ne!(other, base, "{what} must change the fingerprint");
    }
    // Nesting is recursive: generic instantiations differ.
    assert_ne!(<Wrapper<u32>>::FINGERPRINT, <Wrapper<u64>>::FINGERPRINT);
    assert_ne!(<Wrapper<Vec3>>::FINGERPRINT, <Wrapper<u64>>::FINGERPRINT);
    // Fingerprints are compile-time constants.
    const FP: u64 = Odometry::FINGERPRINT;
    assert_eq!(FP, Odometry::FINGERPRINT);
}

fn decode_all(bytes: &[u8]) -> Vec<(FrameHeader, Vec<u8>)> {
    let mut decoder = StreamDecoder::default();
    let mut out = Vec::new();
    let mut input = bytes;
    while !input.is_empty() {
        let n = decoder.feed(input);
        assert!(n > 0, "feed took nothing after every frame was drained");
        input = &input[n..];
        while let Some(frame) = decoder.next_frame().expect("valid stream") {
            assert_eq!(frame.payload().as_ptr() as usize % 16, 0);
            out.push((*frame.header(), frame.payload().to_vec()));
            // A frame takes at least a header of input: more means one was
            // handed out twice.
            assert!(out.len() <= bytes.len() / dndm_codec::HEADER_LEN);
        }
    }
    out
}

#[test]
fn round_trip_shapes() {
    let mut buf = FrameBuffer::new();
    let header = FrameHeader::data(42)
        .with_seq(9)
        .with_timestamp_ns(1_000)
        .with_flags(0x0100);
    buf.push_message(&header, &imu()).unwrap();
    buf.push_message(&header, &odometry()).unwrap();
    let wrapper = Wrapper {
        inner: Status::Degraded("hot".into()),
        count: 3,
    };
    buf.push_message(&header, &wrapper).unwrap();
    buf.push_message(&header, &Tuple(5, "x".into())).unwrap();
    buf.push_message(&header, &Unit).unwrap();
    assert_eq!(buf.frame_count(), 5);
    assert_eq!(buf.len() % 16, 0);

    let mut it = frames(buf.as_bytes());
    let f = it.next().unwrap().unwrap();
    assert_eq!(*f.header(), header);
    let s = f.sample::<Imu>().unwrap();
    assert_eq!(s.stamp_ns, 123_456_789);
    assert_eq!(s.deserialize().unwrap(), imu());
    let f = it.next().unwrap().unwrap();
    let a = f.access::<Odometry>().unwrap();
    assert_eq!(a.child_frame_id, "base_link");
    assert_eq!(deserialize::<Odometry>(a).unwrap(), odometry());
    let f = it.next().unwrap().unwrap();
    assert_eq!(
        deserialize::<Wrapper<Status>>(f.access::<Wrapper<Status>>().unwrap()).unwrap(),
        wrapper
    );
    let f = it.next().unwrap().unwrap();
    assert_eq!(
        f.sample::<Tuple>().unwrap().deserialize().unwrap(),
        Tuple(5, "x".into())
    );
    let f = it.next().unwrap().unwrap();
    assert_eq!(f.sample::<Unit>().unwrap().deserialize().unwrap(), Unit);
    assert!(it.next().is_none());

    // The streaming decoder sees the same frames.
    assert_eq!(decode_all(buf.as_bytes()).len(), 5);
}

#[test]
fn trusted_access_reads_own_frames() {
    let mut buf = FrameBuffer::new();
    buf.push_message(&FrameHeader::data(1), &odometry())
        .unwrap();
    let frame = frames(buf.as_bytes()).next().unwrap().unwrap();
    // SAFETY: the payload was encoded by this process just above.
    let archived = unsafe { frame.access_trusted::<Odometry>() }.unwrap();
    assert_eq!(archived.frame_id, "odom");
    assert_eq!(archived.covariance.len(), 36);
    // SAFETY: as above.
    let archived = unsafe { access_trusted::<Odometry>(frame.payload()) }.unwrap();
    assert_eq!(archived.tags[1], "bb");
}

#[test]
fn access_rejects_misaligned_and_short_payloads() {
    let mut buf = FrameBuffer::new();
    buf.push_message(&FrameHeader::data(1), &imu()).unwrap();
    let frame = frames(buf.as_bytes()).next().unwrap().unwrap();
    let payload = frame.payload();
    // Shift by one byte into a misaligned copy.
    let mut storage = rkyv::util::AlignedVec::<16>::new();
    storage.extend_from_slice(&[0]);
    storage.extend_from_slice(payload);
    let shifted = &storage[1..];
    assert!(matches!(
        access::<Imu>(shifted),
        Err(AccessError::Misaligned { .. })
    ));
    // SAFETY: layout checks fail before any unchecked read.
    let trusted = unsafe { access_trusted::<Imu>(shifted) };
    assert!(matches!(trusted, Err(AccessError::Misaligned { .. })));
    let short = &payload[..4];
    assert!(matches!(
        access::<Imu>(short),
        Err(AccessError::TooShort { needed, .. }) if needed == payload.len()
    ));
    // SAFETY: layout checks fail before any unchecked read.
    let trusted = unsafe { access_trusted::<Imu>(short) };
    assert!(matches!(trusted, Err(AccessError::TooShort { .. })));
}

#[test]
fn validation_catches_corrupt_payload() {
    let mut buf = FrameBuffer::new();
    buf.push_message(&FrameHeader::data(1), &odometry())
        .unwrap();
    let frame = frames(buf.as_bytes()).next().unwrap().unwrap();
    let mut storage = rkyv::util::AlignedVec::<16>::new();
    storage.extend_from_slice(frame.payload());
    let len = storage.len();
    // Point the last relative pointer field far out of bounds.
    for b in &mut storage[len - 8..] {
        *b = 0x7f;
    }
    let Err(err) = access::<Odometry>(&storage) else {
        panic!("corrupt payload validated");
    };
    assert!(matches!(err, AccessError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("failed validation"));
}

#[test]
fn read_buf_commit_path_and_growth() {
    let mut out = FrameBuffer::new();
    let big = Wrapper {
        inner: vec![7u8; 200_000],
        count: 1,
    };
    out.push_message(&FrameHeader::data(3), &big).unwrap();
    out.push_message(&FrameHeader::data(4), &imu()).unwrap();
    let mut decoder = StreamDecoder::new(
        DecoderConfig::default()
            .with_initial_capacity(1024)
            .with_max_frame_len(1 << 20),
    );
    let mut src = out.as_bytes();
    let mut got = Vec::new();
    while !src.is_empty() {
        let dst = decoder.read_buf();
        let n = dst.len().min(src.len()).min(3000);
        assert!(n > 0, "no room to read into after every frame was drained");
        dst[..n].copy_from_slice(&src[..n]);
        decoder.commit(n);
        src = &src[n..];
        while let Some(frame) = decoder.next_frame().unwrap() {
            got.push(frame.header().route);
            assert!(got.len() <= 16, "more frames than were sent");
            if frame.header().route == 3 {
                let a = frame.access::<Wrapper<Vec<u8>>>().unwrap();
                assert_eq!(a.inner.len(), 200_000);
            }
        }
    }
    assert_eq!(got, vec![3, 4]);
    assert!(decoder.capacity() <= 1 << 20);
    assert_eq!(decoder.buffered(), 0);
}

#[test]
fn control_request_reply_frames() {
    let mut out = FrameBuffer::new();
    out.push_raw(&FrameHeader::control(), b"link robot.Imu@/arm")
        .unwrap();
    let req = FrameHeader::new(FrameKind::Request, 5).with_correlation(77);
    out.push_message(&req, &imu()).unwrap();
    let rep = FrameHeader::new(FrameKind::Reply, 5).with_correlation(77);
    out.push_raw(&rep, &[]).unwrap();
    let decoded = decode_all(out.as_bytes());
    assert_eq!(decoded.len(), 3);
    assert_eq!(decoded[0].0.kind, FrameKind::Control);
    assert_eq!(decoded[0].1, b"link robot.Imu@/arm");
    assert_eq!(decoded[1].0.correlation, 77);
    assert_eq!(decoded[2].0.kind, FrameKind::Reply);
    assert!(decoded[2].1.is_empty());
}

#[test]
fn reserved_flags_rejected_on_encode() {
    let mut out = FrameBuffer::new();
    let err = out
        .push_raw(&FrameHeader::control().with_flags(0x0001), b"x")
        .unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
    assert!(out.is_empty());
}

#[test]
fn pool_reuses_buffers() {
    let pool = BufferPool::new(2, 4096);
    let mut a = pool.take();
    a.push_message(&FrameHeader::data(1), &imu()).unwrap();
    let cap = a.capacity();
    drop(a);
    assert_eq!(pool.idle(), 1);
    let b = pool.take();
    assert!(b.is_empty(), "returned buffers are cleared");
    assert_eq!(b.capacity(), cap);
    let c = pool.take();
    let d = pool.take();
    drop((b, c, d));
    assert_eq!(pool.idle(), 2, "at most max_idle are kept");
    let kept = pool.take().detach();
    assert_eq!(pool.idle(), 1);
    drop(kept);
    assert_eq!(pool.idle(), 1);
}
