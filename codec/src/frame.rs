//! The frame format: a 48-byte header followed by a 16-byte aligned payload.
//!
//! See the crate README for the byte layout table.

use std::fmt;

use crate::decode::DecodeError;
use crate::message::{AccessError, Message, Sample};

/// The four magic bytes at the start of every frame.
pub const MAGIC: [u8; 4] = *b"DNDM";
/// The protocol version this crate writes and reads.
pub const PROTOCOL_VERSION: u8 = 1;
/// The size of the fixed frame header in bytes (a multiple of [`PAYLOAD_ALIGN`]).
pub const HEADER_LEN: usize = 48;
/// Payloads start at this alignment relative to the frame start, and every
/// frame's total length is a multiple of it, so frames batched back to back
/// in an aligned buffer all have aligned payloads.
pub const PAYLOAD_ALIGN: usize = 16;
/// Flag bits reserved for the codec; they must be zero in protocol version 1.
pub const RESERVED_FLAGS: u16 = 0x00ff;
/// The largest payload a frame can describe.
pub const MAX_PAYLOAD_LEN: usize = u32::MAX as usize - PAYLOAD_ALIGN;

// Field offsets inside the header.
pub(crate) const OFF_VERSION: usize = 4;
pub(crate) const OFF_KIND: usize = 5;
pub(crate) const OFF_FLAGS: usize = 6;
pub(crate) const OFF_LEN: usize = 8;
pub(crate) const OFF_CHECKSUM: usize = 12;
pub(crate) const OFF_ROUTE: usize = 16;
pub(crate) const OFF_RESERVED: usize = 20;
pub(crate) const OFF_SEQ: usize = 24;
pub(crate) const OFF_TIMESTAMP: usize = 32;
pub(crate) const OFF_CORRELATION: usize = 40;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum FrameKind {
    /// A published sample of a typed route.
    Data = 1,
    /// A control message of the peer protocol (intent/interest announcements,
    /// link, unlink, ping); the payload is opaque to the codec.
    Control = 2,
    /// A request; `correlation` identifies it.
    Request = 3,
    /// A reply to the request with the same `correlation`.
    Reply = 4,
}

impl FrameKind {
    /// Decodes a kind byte.
    pub const fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Data),
            2 => Some(Self::Control),
            3 => Some(Self::Request),
            4 => Some(Self::Reply),
            _ => None,
        }
    }

    /// The kind byte on the wire.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Data => "data",
            Self::Control => "control",
            Self::Request => "request",
            Self::Reply => "reply",
        };
        f.write_str(name)
    }
}

/// The fixed fields of a frame header (everything except magic, version,
/// lengths and checksum, which the codec manages).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// What the frame carries.
    pub kind: FrameKind,
    /// Flags; bits in [`RESERVED_FLAGS`] belong to the codec and must be
    /// zero, the high byte is free for upper layers.
    pub flags: u16,
    /// The route alias agreed between the peers (0 when unused).
    pub route: u32,
    /// Sequence number, per route or per connection as the sender chooses.
    pub seq: u64,
    /// Source timestamp in nanoseconds (clock chosen by the sender).
    pub timestamp_ns: u64,
    /// Correlation id matching replies to requests (0 when unused).
    pub correlation: u64,
}

impl FrameHeader {
    /// A header of the given kind and route with every other field zero.
    pub const fn new(kind: FrameKind, route: u32) -> Self {
        Self {
            kind,
            flags: 0,
            route,
            seq: 0,
            timestamp_ns: 0,
            correlation: 0,
        }
    }

    /// A [`FrameKind::Data`] header for `route`.
    pub const fn data(route: u32) -> Self {
        Self::new(FrameKind::Data, route)
    }

    /// A [`FrameKind::Control`] header.
    pub const fn control() -> Self {
        Self::new(FrameKind::Control, 0)
    }

    /// Sets the sequence number.
    #[must_use]
    pub const fn with_seq(mut self, seq: u64) -> Self {
        self.seq = seq;
        self
    }

    /// Sets the source timestamp.
    #[must_use]
    pub const fn with_timestamp_ns(mut self, timestamp_ns: u64) -> Self {
        self.timestamp_ns = timestamp_ns;
        self
    }

    /// Sets the correlation id.
    #[must_use]
    pub const fn with_correlation(mut self, correlation: u64) -> Self {
        self.correlation = correlation;
        self
    }

    /// Sets the flags.
    #[must_use]
    pub const fn with_flags(mut self, flags: u16) -> Self {
        self.flags = flags;
        self
    }

    /// Writes the full 48-byte wire header for a payload of `payload_len` bytes.
    pub(crate) fn write(&self, payload_len: u32, out: &mut [u8; HEADER_LEN]) {
        out[0..4].copy_from_slice(&MAGIC);
        out[OFF_VERSION] = PROTOCOL_VERSION;
        out[OFF_KIND] = self.kind.as_u8();
        out[OFF_FLAGS..OFF_FLAGS + 2].copy_from_slice(&self.flags.to_le_bytes());
        out[OFF_LEN..OFF_LEN + 4].copy_from_slice(&payload_len.to_le_bytes());
        out[OFF_CHECKSUM..OFF_CHECKSUM + 4].copy_from_slice(&[0; 4]);
        out[OFF_ROUTE..OFF_ROUTE + 4].copy_from_slice(&self.route.to_le_bytes());
        out[OFF_RESERVED..OFF_RESERVED + 4].copy_from_slice(&[0; 4]);
        out[OFF_SEQ..OFF_SEQ + 8].copy_from_slice(&self.seq.to_le_bytes());
        out[OFF_TIMESTAMP..OFF_TIMESTAMP + 8].copy_from_slice(&self.timestamp_ns.to_le_bytes());
        out[OFF_CORRELATION..OFF_CORRELATION + 8].copy_from_slice(&self.correlation.to_le_bytes());
        let sum = header_checksum(out);
        out[OFF_CHECKSUM..OFF_CHECKSUM + 4].copy_from_slice(&sum.to_le_bytes());
    }
}

/// Rounds `len` up to the next multiple of [`PAYLOAD_ALIGN`].
/// Saturates instead of overflowing.
pub(crate) const fn pad_to_align(len: usize) -> usize {
    len.saturating_add(PAYLOAD_ALIGN - 1) & !(PAYLOAD_ALIGN - 1)
}

/// The total encoded length of a frame with a payload of `payload_len` bytes.
pub const fn frame_len(payload_len: usize) -> usize {
    pad_to_align(payload_len).saturating_add(HEADER_LEN)
}

fn word(bytes: &[u8; HEADER_LEN], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The header checksum: a multiply-rotate mix over the header with the
/// checksum field (bytes 12..16) treated as zero, folded to 32 bits.
pub(crate) fn header_checksum(bytes: &[u8; HEADER_LEN]) -> u32 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    // Bytes 8..12 (payload length) form a word with the checksum masked out.
    let len_word = word(bytes, 8) & 0x0000_0000_ffff_ffff;
    let words = [
        word(bytes, 0),
        len_word,
        word(bytes, 16),
        word(bytes, 24),
        word(bytes, 32),
        word(bytes, 40),
    ];
    let mut h: u64 = 0x6a09_e667_f3bc_c908;
    for w in words {
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    h = (h ^ (h >> 31)).wrapping_mul(K);
    (h ^ (h >> 32)) as u32
}

fn read_u16(b: &[u8; HEADER_LEN], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn read_u32(b: &[u8; HEADER_LEN], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Checks the prefix of a header (magic and version) that is available so far.
///
/// `offset` is the stream offset of `prefix[0]`.
pub(crate) fn check_prefix(prefix: &[u8], offset: u64) -> Result<(), DecodeError> {
    for (i, (&got, &want)) in prefix.iter().zip(MAGIC.iter()).enumerate() {
        if got != want {
            return Err(DecodeError::BadMagic {
                offset: offset + i as u64,
                found: got,
                expected: want,
            });
        }
    }
    if let Some(&version) = prefix.get(OFF_VERSION)
        && version != PROTOCOL_VERSION
    {
        return Err(DecodeError::UnsupportedVersion {
            offset: offset + OFF_VERSION as u64,
            version,
        });
    }
    Ok(())
}

/// Parses and checks a complete header; returns the header and payload length.
///
/// `offset` is the stream offset of the header's first byte. Checks, in
/// order: magic, version, checksum, reserved flags, kind, reserved field,
/// and the frame length against `max_frame_len`.
pub(crate) fn parse_header(
    bytes: &[u8; HEADER_LEN],
    offset: u64,
    max_frame_len: usize,
) -> Result<(FrameHeader, usize), DecodeError> {
    check_prefix(bytes, offset)?;
    let stored = read_u32(bytes, OFF_CHECKSUM);
    let computed = header_checksum(bytes);
    if stored != computed {
        return Err(DecodeError::BadChecksum {
            offset: offset + OFF_CHECKSUM as u64,
            stored,
            computed,
        });
    }
    let flags = read_u16(bytes, OFF_FLAGS);
    if flags & RESERVED_FLAGS != 0 {
        return Err(DecodeError::ReservedBits {
            offset: offset + OFF_FLAGS as u64,
            value: u32::from(flags & RESERVED_FLAGS),
        });
    }
    let kind_byte = bytes[OFF_KIND];
    let kind = FrameKind::from_u8(kind_byte).ok_or(DecodeError::UnknownKind {
        offset: offset + OFF_KIND as u64,
        kind: kind_byte,
    })?;
    let reserved = read_u32(bytes, OFF_RESERVED);
    if reserved != 0 {
        return Err(DecodeError::ReservedBits {
            offset: offset + OFF_RESERVED as u64,
            value: reserved,
        });
    }
    let payload_len = read_u32(bytes, OFF_LEN) as usize;
    let total = frame_len(payload_len);
    if payload_len > MAX_PAYLOAD_LEN || total > max_frame_len {
        return Err(DecodeError::FrameTooLarge {
            offset: offset + OFF_LEN as u64,
            len: total as u64,
            limit: max_frame_len as u64,
        });
    }
    let header = FrameHeader {
        kind,
        flags,
        route: read_u32(bytes, OFF_ROUTE),
        seq: word(bytes, OFF_SEQ),
        timestamp_ns: word(bytes, OFF_TIMESTAMP),
        correlation: word(bytes, OFF_CORRELATION),
    };
    Ok((header, payload_len))
}

/// A decoded frame: its header and a borrowed view of its payload.
///
/// Payload slices handed out by [`StreamDecoder`](crate::StreamDecoder) and
/// by [`frames`] over an aligned buffer start at a [`PAYLOAD_ALIGN`]-aligned
/// address, so archived messages can be read in place.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    header: FrameHeader,
    payload: &'a [u8],
    offset: u64,
}

impl<'a> Frame<'a> {
    pub(crate) fn new(header: FrameHeader, payload: &'a [u8], offset: u64) -> Self {
        Self {
            header,
            payload,
            offset,
        }
    }

    /// The header fields.
    pub fn header(&self) -> &FrameHeader {
        &self.header
    }

    /// The frame kind.
    pub fn kind(&self) -> FrameKind {
        self.header.kind
    }

    /// The payload bytes (without padding).
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The stream offset of the frame's first byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The stream offset of the payload's first byte.
    pub fn payload_offset(&self) -> u64 {
        self.offset + HEADER_LEN as u64
    }

    /// Validates the payload as an archived `T` and returns a reference to it.
    pub fn access<T: Message>(&self) -> Result<&'a T::Archived, AccessError> {
        crate::message::access_at::<T>(self.payload, self.payload_offset())
    }

    /// Returns the payload as an archived `T` without validating it.
    ///
    /// Alignment and the minimum length are still checked.
    ///
    /// # Safety
    ///
    /// The payload must be a valid archive of `T` produced by a trusted
    /// encoder (for example this process or a trusted peer on the same host);
    /// see [`access_trusted`](crate::access_trusted).
    pub unsafe fn access_trusted<T: Message>(&self) -> Result<&'a T::Archived, AccessError> {
        // SAFETY: forwarded from this function's contract.
        unsafe { crate::message::access_trusted_at::<T>(self.payload, self.payload_offset()) }
    }

    /// Validates the payload and returns a [`Sample`] carrying the header too.
    pub fn sample<T: Message>(&self) -> Result<Sample<'a, T>, AccessError> {
        Ok(Sample::new(self.header, self.access::<T>()?))
    }
}

/// Iterates over the complete frames in `bytes`, without copying.
///
/// Payload slices are aligned when `bytes` starts at a [`PAYLOAD_ALIGN`]-aligned
/// address (for example [`FrameBuffer::as_bytes`](crate::FrameBuffer::as_bytes)).
/// A trailing partial frame yields [`DecodeError::Truncated`]; after any error
/// the iterator ends.
pub fn frames(bytes: &[u8]) -> Frames<'_> {
    Frames {
        bytes,
        pos: 0,
        done: false,
        max_frame_len: usize::MAX,
    }
}

/// Iterator returned by [`frames`].
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    bytes: &'a [u8],
    pos: usize,
    done: bool,
    max_frame_len: usize,
}

impl Frames<'_> {
    /// Rejects frames longer than `max_frame_len` bytes in total.
    #[must_use]
    pub fn max_frame_len(mut self, max_frame_len: usize) -> Self {
        self.max_frame_len = max_frame_len;
        self
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.bytes.len() {
            return None;
        }
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let offset = self.pos as u64;
        let result = parse_complete(rest, offset, self.max_frame_len);
        match result {
            Ok((frame, total)) => {
                self.pos += total;
                Some(Ok(frame))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Parses one complete frame at the start of `bytes`.
fn parse_complete(
    bytes: &[u8],
    offset: u64,
    max_frame_len: usize,
) -> Result<(Frame<'_>, usize), DecodeError> {
    let Some(head) = bytes.first_chunk::<HEADER_LEN>() else {
        check_prefix(bytes, offset)?;
        return Err(DecodeError::Truncated {
            offset,
            needed: HEADER_LEN as u64,
            available: bytes.len() as u64,
        });
    };
    let (header, payload_len) = parse_header(head, offset, max_frame_len)?;
    let total = frame_len(payload_len);
    match bytes.get(HEADER_LEN..HEADER_LEN + payload_len) {
        Some(payload) if bytes.len() >= total => Ok((Frame::new(header, payload, offset), total)),
        _ => Err(DecodeError::Truncated {
            offset,
            needed: total as u64,
            available: bytes.len() as u64,
        }),
    }
}
