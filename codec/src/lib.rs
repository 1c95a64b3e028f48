//! `dndm-codec`: typed messages, schema fingerprints, the frame format,
//! zero-copy rkyv access and a streaming decoder.
//!
//! * [`Message`] binds a type to a stable [`TYPE_NAME`](Message::TYPE_NAME)
//!   (used in routes, `TypeName@path`), a user-bumped
//!   [`VERSION`](Message::VERSION) and a structural
//!   [`FINGERPRINT`](Schema::FINGERPRINT) computed at compile time, so peers
//!   that disagree on a type's shape are detected before data flows.
//!   Derive it with `#[derive(Message)]` next to rkyv's derives.
//! * [`FrameBuffer`] appends frames (48-byte header + 16-byte aligned rkyv
//!   payload) back to back into one reusable aligned buffer; a warm buffer
//!   encodes without allocating. [`BufferPool`] shares buffers between user
//!   threads and an I/O thread.
//! * [`StreamDecoder`] accepts arbitrary chunks, bounds memory by the maximum
//!   frame length, reports malformed input as a [`DecodeError`] with the byte
//!   offset, and hands out [`Frame`] views whose payloads are aligned.
//! * [`Frame::access`] / [`access`] validate untrusted payloads with
//!   bytecheck; [`access_trusted`] is the unchecked in-host path.
//!
//! The byte layout and the fingerprint rules are in the crate README.
//!
//! # Example
//!
//! ```
//! use dndm_codec::{FrameBuffer, FrameHeader, Message, Schema, StreamDecoder};
//! use rkyv::{Archive, Deserialize, Serialize};
//!
//! #[derive(Archive, Serialize, Deserialize, Message, Debug, PartialEq)]
//! #[message(name = "robot.Imu", version = 2)]
//! struct Imu {
//!     stamp_ns: u64,
//!     accel: [f32; 3],
//!     gyro: [f32; 3],
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! assert_eq!(Imu::TYPE_NAME, "robot.Imu");
//! assert_eq!(Imu::VERSION, 2);
//! let _fingerprint: u64 = Imu::FINGERPRINT;
//!
//! // Encode two frames into one write buffer.
//! let mut out = FrameBuffer::new();
//! let imu = Imu { stamp_ns: 7, accel: [0.0, 0.0, 9.81], gyro: [0.0; 3] };
//! out.push_message(&FrameHeader::data(1).with_seq(1), &imu)?;
//! out.push_raw(&FrameHeader::control(), b"ping")?;
//!
//! // Feed the bytes to a decoder one at a time, as a slow socket would.
//! let mut decoder = StreamDecoder::default();
//! let mut seen = 0;
//! for byte in out.as_bytes() {
//!     decoder.feed(std::slice::from_ref(byte));
//!     while let Some(frame) = decoder.next_frame()? {
//!         if seen == 0 {
//!             let sample = frame.sample::<Imu>()?; // validated, zero-copy
//!             assert_eq!(sample.accel[2], 9.81);
//!             assert_eq!(sample.deserialize()?, imu);
//!         } else {
//!             assert_eq!(frame.payload(), b"ping");
//!         }
//!         seen += 1;
//!     }
//! }
//! assert_eq!(seen, 2);
//! # Ok(())
//! # }
//! ```

// The derive names `::dndm_codec`; this lets the crate's own tests use it.
extern crate self as dndm_codec;

mod decode;
mod encode;
mod frame;
mod message;
mod pool;
pub mod schema;
mod sync;

pub use decode::{DecodeError, DecoderConfig, StreamDecoder};
pub use dndm_codec_derive::{Message, Schema};
pub use encode::{EncodeError, FrameBuffer};
pub use frame::{
    Frame, FrameHeader, FrameKind, Frames, HEADER_LEN, MAGIC, MAX_PAYLOAD_LEN, PAYLOAD_ALIGN,
    PROTOCOL_VERSION, RESERVED_FLAGS, frame_len, frames,
};
pub use message::{
    AccessError, DeserializeError, Message, Sample, access, access_trusted, deserialize,
    fingerprint,
};
pub use pool::{BufferPool, PooledBuffer};
pub use schema::Schema;

/// The rkyv version this crate archives with, for `#[rkyv(crate = ...)]`
/// and for naming archived types.
pub use rkyv;

/// A byte buffer whose start is [`PAYLOAD_ALIGN`]-aligned: the receive
/// buffer type to use with [`frames`] when frames arrive some other way than
/// through a [`StreamDecoder`] (which owns one), e.g. whole datagrams.
pub type RecvBuffer = rkyv::util::AlignedVec<PAYLOAD_ALIGN>;

/// The archived form of a message type.
pub type Archived<T> = <T as rkyv::Archive>::Archived;

/// Support code for `#[derive(Message)]`; not a stable API.
#[doc(hidden)]
pub mod __private {
    use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
    use rkyv::rancor::Error;
    use rkyv::ser::allocator::{Arena, ArenaHandle};
    use rkyv::util::AlignedVec;
    use rkyv::{Archive, Deserialize, Serialize};

    pub use crate::schema::SchemaHasher;

    /// Computes the header checksum of a 48-byte header (used by the fuzz
    /// targets to reach past the checksum check).
    pub fn header_checksum(header: &[u8; crate::HEADER_LEN]) -> u32 {
        crate::frame::header_checksum(header)
    }

    /// The serializer used to encode payloads.
    pub type Ser<'a, 'b> = HighSerializer<&'b mut AlignedVec<16>, ArenaHandle<'a>, Error>;
    /// The validator used for untrusted payloads.
    pub type Validator<'a> = HighValidator<'a, Error>;
    /// The deserializer used for owned copies.
    pub type Deser = HighDeserializer<Error>;

    /// Types that serialise with [`Ser`].
    pub trait Encodable: for<'a, 'b> Serialize<Ser<'a, 'b>> {}
    impl<T: ?Sized + for<'a, 'b> Serialize<Ser<'a, 'b>>> Encodable for T {}

    /// Serialises `value` at the end of `out`, reusing `arena` for scratch space.
    pub fn encode<T: Encodable>(
        value: &T,
        out: &mut AlignedVec<16>,
        arena: &mut Arena,
    ) -> Result<(), Error> {
        rkyv::api::high::to_bytes_in_with_alloc::<_, _, Error>(value, out, arena.acquire())
            .map(|_| ())
    }

    /// Validates `bytes` as an archived `T`.
    pub fn access<T>(bytes: &[u8]) -> Result<&T::Archived, Error>
    where
        T: Archive,
        T::Archived: for<'a> rkyv::bytecheck::CheckBytes<Validator<'a>>,
    {
        rkyv::access::<T::Archived, Error>(bytes)
    }

    /// Deserialises an archived `T`.
    pub fn deserialize<T>(archived: &T::Archived) -> Result<T, Error>
    where
        T: Archive,
        T::Archived: Deserialize<T, Deser>,
    {
        rkyv::deserialize::<T, Error>(archived)
    }
}

/// Compiles and runs the README's Rust example as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
