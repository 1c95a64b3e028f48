//! The streaming frame decoder.

use std::fmt;

use rkyv::util::AlignedVec;

use crate::frame::{
    Frame, HEADER_LEN, PAYLOAD_ALIGN, check_prefix, frame_len, pad_to_align, parse_header,
};

/// Why the byte stream is not a valid sequence of frames.
///
/// Every variant names the stream offset (bytes since the decoder was
/// created or reset) of the offending byte or field. After an error the
/// decoder keeps returning it until [`StreamDecoder::reset`]; the transport
/// should close the one connection the bytes came from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A magic byte did not match [`MAGIC`](crate::MAGIC).
    BadMagic {
        /// Offset of the mismatching byte.
        offset: u64,
        /// The byte found.
        found: u8,
        /// The byte expected.
        expected: u8,
    },
    /// The protocol version is not [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION).
    UnsupportedVersion {
        /// Offset of the version byte.
        offset: u64,
        /// The version found.
        version: u8,
    },
    /// The header checksum does not match the header bytes.
    BadChecksum {
        /// Offset of the checksum field.
        offset: u64,
        /// The checksum stored in the header.
        stored: u32,
        /// The checksum computed over the header.
        computed: u32,
    },
    /// The frame kind byte is unknown.
    UnknownKind {
        /// Offset of the kind byte.
        offset: u64,
        /// The kind byte found.
        kind: u8,
    },
    /// Reserved flag bits or the reserved header field are not zero.
    ReservedBits {
        /// Offset of the field.
        offset: u64,
        /// The non-zero reserved bits.
        value: u32,
    },
    /// The length field announces a frame above the configured limit.
    FrameTooLarge {
        /// Offset of the length field.
        offset: u64,
        /// The announced total frame length (header, payload, padding).
        len: u64,
        /// The configured maximum frame length.
        limit: u64,
    },
    /// The input ended inside a frame (only for complete buffers, see
    /// [`frames`](crate::frames); the stream decoder waits for more bytes).
    Truncated {
        /// Offset of the frame start.
        offset: u64,
        /// Bytes the frame needs.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic {
                offset,
                found,
                expected,
            } => write!(
                f,
                "bad magic byte {found:#04x} at offset {offset} (expected {expected:#04x})"
            ),
            Self::UnsupportedVersion { offset, version } => {
                write!(
                    f,
                    "unsupported protocol version {version} at offset {offset}"
                )
            }
            Self::BadChecksum {
                offset,
                stored,
                computed,
            } => write!(
                f,
                "header checksum mismatch at offset {offset}: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Self::UnknownKind { offset, kind } => {
                write!(f, "unknown frame kind {kind} at offset {offset}")
            }
            Self::ReservedBits { offset, value } => {
                write!(f, "reserved bits {value:#x} set at offset {offset}")
            }
            Self::FrameTooLarge { offset, len, limit } => write!(
                f,
                "frame length {len} at offset {offset} exceeds the limit of {limit} bytes"
            ),
            Self::Truncated {
                offset,
                needed,
                available,
            } => write!(
                f,
                "truncated frame at offset {offset}: needs {needed} bytes, {available} available"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Copies `src` into `dst` (same length) in pieces of [`COPY_PIECE`] bytes.
///
/// Large `memcpy` calls switch to `rep movsb`, which runs up to 20x slower
/// when the destination sits just above the source modulo 4 KiB (4K
/// aliasing), as happens between two page-aligned heap buffers. Pieces below
/// the `rep movsb` threshold stay on the vector copy loop, which tolerates
/// that alignment; the per-call overhead is negligible at this size.
fn copy_in_pieces(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.chunks_mut(COPY_PIECE).zip(src.chunks(COPY_PIECE)) {
        d.copy_from_slice(s);
    }
}

/// See [`copy_in_pieces`].
const COPY_PIECE: usize = 2048;

/// Configuration of a [`StreamDecoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecoderConfig {
    /// The largest accepted frame (header + payload + padding), in bytes.
    /// The receive buffer never grows beyond this (rounded up to 16).
    pub max_frame_len: usize,
    /// The initial receive buffer size in bytes.
    pub initial_capacity: usize,
}

impl DecoderConfig {
    /// The default maximum frame length: 16 MiB.
    pub const DEFAULT_MAX_FRAME_LEN: usize = 16 << 20;
    /// The default initial receive buffer: 64 KiB.
    pub const DEFAULT_INITIAL_CAPACITY: usize = 64 << 10;

    /// Sets the maximum frame length (at least [`HEADER_LEN`]).
    #[must_use]
    pub fn with_max_frame_len(mut self, max_frame_len: usize) -> Self {
        self.max_frame_len = max_frame_len.max(HEADER_LEN);
        self
    }

    /// Sets the initial receive buffer size.
    #[must_use]
    pub fn with_initial_capacity(mut self, initial_capacity: usize) -> Self {
        self.initial_capacity = initial_capacity;
        self
    }
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            max_frame_len: Self::DEFAULT_MAX_FRAME_LEN,
            initial_capacity: Self::DEFAULT_INITIAL_CAPACITY,
        }
    }
}

/// A streaming frame decoder with its own aligned receive buffer.
///
/// Bytes go in either by copying ([`feed`](Self::feed), any chunk size, even
/// one byte at a time) or by reading straight into the buffer
/// ([`read_buf`](Self::read_buf) then [`commit`](Self::commit)).
/// [`next_frame`](Self::next_frame) hands out [`Frame`] views borrowing the
/// buffer; the frame is consumed on the next call. Payloads are always
/// 16-byte aligned in memory, so archived messages are read in place.
///
/// Memory is bounded: the buffer grows only up to the maximum frame length,
/// and a header announcing a larger frame is rejected before its payload is
/// buffered.
#[derive(Debug)]
pub struct StreamDecoder {
    /// Initialised storage; `buf.len()` is the usable capacity.
    buf: AlignedVec<PAYLOAD_ALIGN>,
    /// Start of unconsumed bytes (always a multiple of 16).
    start: usize,
    /// End of received bytes.
    end: usize,
    /// Length of the frame last handed out, consumed on the next call.
    pending: usize,
    /// Stream offset of `buf[start]`.
    offset: u64,
    /// The first error; sticky until reset.
    error: Option<DecodeError>,
    max_capacity: usize,
    config: DecoderConfig,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new(DecoderConfig::default())
    }
}

impl StreamDecoder {
    /// A decoder with the given configuration. Allocates nothing until bytes arrive.
    pub fn new(config: DecoderConfig) -> Self {
        let max_frame_len = config.max_frame_len.max(HEADER_LEN);
        let config = DecoderConfig {
            max_frame_len,
            ..config
        };
        Self {
            buf: AlignedVec::new(),
            start: 0,
            end: 0,
            pending: 0,
            offset: 0,
            error: None,
            max_capacity: pad_to_align(max_frame_len),
            config,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> DecoderConfig {
        self.config
    }

    /// Bytes received but not yet handed out as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start - self.pending
    }

    /// The current receive buffer size in bytes.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The stream offset of the next byte to be decoded.
    pub fn offset(&self) -> u64 {
        self.offset + self.pending as u64
    }

    /// The error that stopped the decoder, if any.
    pub fn error(&self) -> Option<&DecodeError> {
        self.error.as_ref()
    }

    /// Forgets all buffered bytes and any error, for a new connection.
    /// Keeps the allocation.
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
        self.pending = 0;
        self.offset = 0;
        self.error = None;
    }

    fn consume_pending(&mut self) {
        if self.pending > 0 {
            self.start += self.pending;
            self.offset += self.pending as u64;
            self.pending = 0;
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Makes room at the end of the buffer: compacts, then grows up to the limit.
    fn make_room(&mut self) {
        self.consume_pending();
        if self.end < self.buf.len() {
            return;
        }
        if self.start > 0 {
            let len = self.end - self.start;
            self.buf.as_mut_slice().copy_within(self.start..self.end, 0);
            self.start = 0;
            self.end = len;
            return;
        }
        if self.buf.len() < self.max_capacity {
            let grown = if self.buf.is_empty() {
                self.config.initial_capacity.max(HEADER_LEN)
            } else {
                self.buf.len().saturating_mul(2)
            };
            let grown = pad_to_align(grown).min(self.max_capacity);
            self.buf.resize(grown, 0);
        }
    }

    /// Space to read socket bytes into; call [`commit`](Self::commit) with
    /// the number of bytes written. Empty only while a stopped decoder holds
    /// complete frames (drain them with [`next_frame`](Self::next_frame)).
    pub fn read_buf(&mut self) -> &mut [u8] {
        self.make_room();
        let end = self.end;
        self.buf.as_mut_slice().get_mut(end..).unwrap_or_default()
    }

    /// Marks `n` bytes of [`read_buf`](Self::read_buf) as received.
    /// `n` is clamped to the space that `read_buf` returned.
    pub fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Copies as much of `input` as fits and returns how many bytes it took.
    ///
    /// The buffer grows (up to the maximum frame length) to take as much as
    /// possible; it takes fewer bytes than offered only when it is at that
    /// size and full of undrained frames: drain them with
    /// [`next_frame`](Self::next_frame), then feed the rest.
    pub fn feed(&mut self, input: &[u8]) -> usize {
        let mut taken = 0;
        while taken < input.len() {
            let space = self.read_buf();
            if space.is_empty() {
                break;
            }
            let rest = input.get(taken..).unwrap_or_default();
            let n = space.len().min(rest.len());
            if let (Some(dst), Some(src)) = (space.get_mut(..n), rest.get(..n)) {
                copy_in_pieces(dst, src);
            }
            self.commit(n);
            taken += n;
        }
        taken
    }

    /// Returns the next complete frame, `Ok(None)` if more bytes are needed.
    ///
    /// The previous frame's bytes are released on each call.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] for malformed input; the error is sticky until
    /// [`reset`](Self::reset).
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, DecodeError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        self.consume_pending();
        let bytes = self
            .buf
            .as_slice()
            .get(self.start..self.end)
            .unwrap_or_default();
        let Some(head) = bytes.first_chunk::<HEADER_LEN>() else {
            if let Err(error) = check_prefix(bytes, self.offset) {
                self.error = Some(error.clone());
                return Err(error);
            }
            return Ok(None);
        };
        let (header, payload_len) = match parse_header(head, self.offset, self.config.max_frame_len)
        {
            Ok(parsed) => parsed,
            Err(error) => {
                self.error = Some(error.clone());
                return Err(error);
            }
        };
        let total = frame_len(payload_len);
        let Some(payload) = bytes.get(HEADER_LEN..HEADER_LEN + payload_len) else {
            return Ok(None);
        };
        if bytes.len() < total {
            return Ok(None);
        }
        self.pending = total;
        Ok(Some(Frame::new(header, payload, self.offset)))
    }
}
