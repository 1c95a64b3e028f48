//! Encoding frames into a reusable, aligned write buffer.

use std::fmt;

use rkyv::rancor;
use rkyv::ser::allocator::Arena;
use rkyv::util::AlignedVec;

use crate::frame::{
    FrameHeader, HEADER_LEN, MAX_PAYLOAD_LEN, PAYLOAD_ALIGN, RESERVED_FLAGS, frame_len,
};
use crate::message::Message;

/// Why a frame could not be encoded. The buffer is left as it was before
/// the failed call.
#[derive(Debug)]
#[non_exhaustive]
pub enum EncodeError {
    /// The rkyv serialiser failed.
    Serialize {
        /// The message type name.
        type_name: &'static str,
        /// What the serialiser reported.
        source: rancor::Error,
    },
    /// The payload does not fit the 32-bit length field.
    PayloadTooLarge {
        /// The payload length.
        len: usize,
        /// The largest payload a frame can carry.
        limit: usize,
    },
    /// The header sets flag bits reserved for the codec.
    ReservedFlags {
        /// The offending flags.
        flags: u16,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Serialize { type_name, source } => {
                write!(f, "serialising a {type_name} failed: {source}")
            }
            Self::PayloadTooLarge { len, limit } => {
                write!(
                    f,
                    "payload of {len} bytes exceeds the limit of {limit} bytes"
                )
            }
            Self::ReservedFlags { flags } => write!(
                f,
                "flags {flags:#06x} set bits reserved for the codec ({RESERVED_FLAGS:#06x})"
            ),
        }
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Serialize { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An aligned write buffer that frames are appended to, back to back.
///
/// The buffer starts at a 16-byte aligned address and every frame length is
/// a multiple of 16, so all payloads are aligned. After [`clear`](Self::clear)
/// the capacity and the serialiser's scratch arena are kept, so encoding in a
/// steady-state loop allocates nothing.
///
/// Append many small frames and write [`as_bytes`](Self::as_bytes) in one
/// syscall (batching).
#[derive(Default)]
pub struct FrameBuffer {
    buf: AlignedVec<PAYLOAD_ALIGN>,
    arena: Option<Arena>,
    frames: usize,
}

impl fmt::Debug for FrameBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameBuffer")
            .field("len", &self.buf.len())
            .field("capacity", &self.buf.capacity())
            .field("frames", &self.frames)
            .finish()
    }
}

impl FrameBuffer {
    /// An empty buffer; allocates nothing until the first frame.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty buffer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: AlignedVec::with_capacity(capacity),
            arena: None,
            frames: 0,
        }
    }

    /// The encoded frames.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_slice()
    }

    /// The number of encoded bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether no frame has been appended since the last clear.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The number of frames appended since the last clear.
    pub fn frame_count(&self) -> usize {
        self.frames
    }

    /// The allocated capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Forgets all frames, keeping the allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.frames = 0;
    }

    /// Appends a frame whose payload is `message` archived with rkyv.
    ///
    /// Returns the frame's total length in bytes.
    ///
    /// # Errors
    ///
    /// [`EncodeError`]; the buffer is unchanged on error.
    pub fn push_message<T: Message>(
        &mut self,
        header: &FrameHeader,
        message: &T,
    ) -> Result<usize, EncodeError> {
        check_flags(header)?;
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0u8; HEADER_LEN]);
        let arena = self.arena.get_or_insert_with(Arena::new);
        if let Err(source) = message.__dndm_encode(&mut self.buf, arena) {
            self.buf.resize(start, 0);
            return Err(EncodeError::Serialize {
                type_name: T::TYPE_NAME,
                source,
            });
        }
        let payload_len = self.buf.len() - start - HEADER_LEN;
        self.finish_frame(header, start, payload_len)
    }

    /// Appends a frame with an opaque payload (e.g. a control message).
    ///
    /// Returns the frame's total length in bytes.
    ///
    /// # Errors
    ///
    /// [`EncodeError`]; the buffer is unchanged on error.
    pub fn push_raw(&mut self, header: &FrameHeader, payload: &[u8]) -> Result<usize, EncodeError> {
        check_flags(header)?;
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(EncodeError::PayloadTooLarge {
                len: payload.len(),
                limit: MAX_PAYLOAD_LEN,
            });
        }
        let start = self.buf.len();
        self.buf.reserve(frame_len(payload.len()));
        self.buf.extend_from_slice(&[0u8; HEADER_LEN]);
        self.buf.extend_from_slice(payload);
        self.finish_frame(header, start, payload.len())
    }

    fn finish_frame(
        &mut self,
        header: &FrameHeader,
        start: usize,
        payload_len: usize,
    ) -> Result<usize, EncodeError> {
        let Ok(len32) = u32::try_from(payload_len) else {
            self.buf.resize(start, 0);
            return Err(EncodeError::PayloadTooLarge {
                len: payload_len,
                limit: MAX_PAYLOAD_LEN,
            });
        };
        if payload_len > MAX_PAYLOAD_LEN {
            self.buf.resize(start, 0);
            return Err(EncodeError::PayloadTooLarge {
                len: payload_len,
                limit: MAX_PAYLOAD_LEN,
            });
        }
        let total = frame_len(payload_len);
        self.buf.resize(start + total, 0);
        let mut head = [0u8; HEADER_LEN];
        header.write(len32, &mut head);
        if let Some(slot) = self.buf.as_mut_slice().get_mut(start..start + HEADER_LEN) {
            slot.copy_from_slice(&head);
        }
        self.frames += 1;
        Ok(total)
    }
}

fn check_flags(header: &FrameHeader) -> Result<(), EncodeError> {
    if header.flags & RESERVED_FLAGS != 0 {
        return Err(EncodeError::ReservedFlags {
            flags: header.flags,
        });
    }
    Ok(())
}
