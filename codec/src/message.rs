//! Typed messages, validated and trusted access, and deserialisation.

use std::fmt;
use std::ops::Deref;

use rkyv::Archive;
use rkyv::rancor;
use rkyv::ser::allocator::Arena;
use rkyv::util::AlignedVec;

use crate::frame::FrameHeader;
use crate::schema::Schema;

/// A type that can travel as the payload of a frame.
///
/// Binds a Rust type to a stable [`TYPE_NAME`](Message::TYPE_NAME) (used in
/// routes, `TypeName@path`), a user-bumped [`VERSION`](Message::VERSION) and,
/// through the [`Schema`] supertrait, a `FINGERPRINT` that mixes name, version
/// and the type's structure. Peers compare `(TYPE_NAME, FINGERPRINT)` before
/// any data flows.
///
/// Implement it with `#[derive(Message)]` next to rkyv's `Archive`,
/// `Serialize` and `Deserialize` derives; the hidden `__dndm_*` methods are
/// filled in by the derive and are not a stable API.
///
/// A message is `Sync`: in one process, a value sent to several
/// subscribers is shared between their threads, not copied.
pub trait Message: Schema + Archive + Sized + Sync {
    /// The stable name of the type, used in routes.
    const TYPE_NAME: &'static str;
    /// The version the user bumps when semantics change without a shape change.
    const VERSION: u32;

    /// Serialises `self` at the end of `out` (whose length is a multiple of 16).
    #[doc(hidden)]
    fn __dndm_encode(
        &self,
        out: &mut AlignedVec<16>,
        arena: &mut Arena,
    ) -> Result<(), rancor::Error>;

    /// Validates `bytes` as an archived `Self`.
    #[doc(hidden)]
    fn __dndm_access(bytes: &[u8]) -> Result<&Self::Archived, rancor::Error>;

    /// Deserialises an archived `Self`.
    #[doc(hidden)]
    fn __dndm_deserialize(archived: &Self::Archived) -> Result<Self, rancor::Error>;
}

/// Returns the schema fingerprint of a message type (same as `T::FINGERPRINT`).
pub const fn fingerprint<T: Message>() -> u64 {
    T::FINGERPRINT
}

/// Why a payload could not be read as an archived message.
#[derive(Debug)]
#[non_exhaustive]
pub enum AccessError {
    /// The payload does not start at the alignment the archived type needs
    /// (for [`access_trusted`], the alignment of the whole archive:
    /// [`PAYLOAD_ALIGN`](crate::PAYLOAD_ALIGN)).
    Misaligned {
        /// Stream offset of the payload (0 for a bare slice).
        offset: u64,
        /// The payload address modulo `align`.
        misalignment: usize,
        /// The required alignment.
        align: usize,
    },
    /// The payload is shorter than the archived root object.
    TooShort {
        /// Stream offset of the payload (0 for a bare slice).
        offset: u64,
        /// The payload length.
        len: usize,
        /// The size of the archived root.
        needed: usize,
    },
    /// bytecheck validation failed.
    Invalid {
        /// Stream offset of the payload (0 for a bare slice).
        offset: u64,
        /// The payload length.
        len: usize,
        /// What the validator reported.
        source: rancor::Error,
    },
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Misaligned {
                offset,
                misalignment,
                align,
            } => write!(
                f,
                "payload at offset {offset} is misaligned by {misalignment} bytes (needs {align})"
            ),
            Self::TooShort {
                offset,
                len,
                needed,
            } => write!(
                f,
                "payload at offset {offset} has {len} bytes, the archived root needs {needed}"
            ),
            Self::Invalid {
                offset,
                len,
                source,
            } => write!(
                f,
                "payload of {len} bytes at offset {offset} failed validation: {source}"
            ),
        }
    }
}

impl std::error::Error for AccessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why an archived message could not be turned into an owned value.
#[derive(Debug)]
#[non_exhaustive]
pub struct DeserializeError {
    /// What the deserialiser reported.
    pub source: rancor::Error,
}

impl fmt::Display for DeserializeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "deserialising the archived message failed: {}",
            self.source
        )
    }
}

impl std::error::Error for DeserializeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The alignment a whole payload must start at for unchecked access: the
/// largest alignment inside any archive this crate writes.
///
/// rkyv lays out every object of an archive at an offset that is a multiple
/// of the object's alignment *relative to the start of the buffer*, so the
/// buffer start must be aligned to the largest alignment of any object in the
/// archive, not just the root's (a root of alignment 4 may point at `u64`s
/// that need 8). The encoder writes into a [`PAYLOAD_ALIGN`]-aligned buffer
/// and pads every payload to a [`PAYLOAD_ALIGN`] boundary, so archived types
/// may need at most that alignment.
///
/// [`PAYLOAD_ALIGN`]: crate::PAYLOAD_ALIGN
const fn archive_align<T: Message>() -> usize {
    let root = align_of::<T::Archived>();
    if root > crate::frame::PAYLOAD_ALIGN {
        root
    } else {
        crate::frame::PAYLOAD_ALIGN
    }
}

fn check_layout<T: Message>(payload: &[u8], offset: u64) -> Result<(), AccessError> {
    check_layout_with::<T>(payload, offset, align_of::<T::Archived>())
}

fn check_layout_with<T: Message>(
    payload: &[u8],
    offset: u64,
    align: usize,
) -> Result<(), AccessError> {
    let misalignment = payload.as_ptr() as usize % align;
    if misalignment != 0 {
        return Err(AccessError::Misaligned {
            offset,
            misalignment,
            align,
        });
    }
    let needed = size_of::<T::Archived>();
    if payload.len() < needed {
        return Err(AccessError::TooShort {
            offset,
            len: payload.len(),
            needed,
        });
    }
    Ok(())
}

pub(crate) fn access_at<T: Message>(
    payload: &[u8],
    offset: u64,
) -> Result<&T::Archived, AccessError> {
    check_layout::<T>(payload, offset)?;
    T::__dndm_access(payload).map_err(|source| AccessError::Invalid {
        offset,
        len: payload.len(),
        source,
    })
}

/// # Safety
/// See [`access_trusted`].
pub(crate) unsafe fn access_trusted_at<T: Message>(
    payload: &[u8],
    offset: u64,
) -> Result<&T::Archived, AccessError> {
    // Unchecked access reads nested objects without looking at their
    // addresses, so the whole buffer must start at the archive's alignment
    // (bytecheck, on the checked path, verifies every nested pointer).
    check_layout_with::<T>(payload, offset, archive_align::<T>())?;
    // SAFETY: `check_layout_with` established that the root object lies inside
    // the slice and that the slice starts at the largest alignment any object
    // of an archive written by this crate needs; rkyv places every object at
    // an offset aligned relative to the buffer start, so all nested objects
    // are aligned too. The caller guarantees the bytes are a valid archive of
    // `T` (see `access_trusted`).
    Ok(unsafe { rkyv::access_unchecked::<T::Archived>(payload) })
}

/// Validates `payload` (rkyv bytecheck) and returns the archived message.
///
/// Use this for every payload that came from the network or another
/// untrusted source. Validation does not allocate for types without shared
/// pointers and is O(1) for byte vectors.
///
/// # Errors
///
/// [`AccessError`] if the payload is misaligned, too short or invalid.
pub fn access<T: Message>(payload: &[u8]) -> Result<&T::Archived, AccessError> {
    access_at::<T>(payload, 0)
}

/// Returns the archived message in `payload` **without** validating it.
///
/// This is the trusted, in-host path (e.g. frames this process encoded
/// itself). Alignment and the minimum length are still checked, so the
/// result is a `Result`: `payload` must start at a [`PAYLOAD_ALIGN`]-aligned
/// address (or the archived root's alignment, if larger), because nested
/// objects (the `u64`s of a `Vec<u64>`) are aligned relative to the start of
/// the archive and are read without further checks. Frames from
/// [`frames`](crate::frames) over an aligned buffer, a
/// [`StreamDecoder`](crate::StreamDecoder) or a
/// [`RecvBuffer`](crate::RecvBuffer) always qualify.
///
/// [`PAYLOAD_ALIGN`]: crate::PAYLOAD_ALIGN
///
/// # Safety
///
/// `payload` must be exactly the bytes of a valid archive of `T` as written
/// by this crate's encoder (same rkyv format), unmodified. Passing bytes from
/// an untrusted peer is undefined behaviour; use [`access`] for those.
///
/// # Errors
///
/// [`AccessError::Misaligned`] or [`AccessError::TooShort`].
pub unsafe fn access_trusted<T: Message>(payload: &[u8]) -> Result<&T::Archived, AccessError> {
    // SAFETY: forwarded from this function's contract.
    unsafe { access_trusted_at::<T>(payload, 0) }
}

/// Deserialises an archived message into an owned `T`.
///
/// # Errors
///
/// [`DeserializeError`] if the deserialiser fails.
pub fn deserialize<T: Message>(archived: &T::Archived) -> Result<T, DeserializeError> {
    T::__dndm_deserialize(archived).map_err(|source| DeserializeError { source })
}

/// A received message: the frame header and a zero-copy view of the archive.
///
/// Dereferences to the archived type; call [`deserialize`](Sample::deserialize)
/// for an owned `T`.
pub struct Sample<'a, T: Message> {
    header: FrameHeader,
    archived: &'a T::Archived,
}

impl<'a, T: Message> Sample<'a, T> {
    pub(crate) fn new(header: FrameHeader, archived: &'a T::Archived) -> Self {
        Self { header, archived }
    }

    /// The header of the frame the sample came in.
    pub fn header(&self) -> &FrameHeader {
        &self.header
    }

    /// The archived message, borrowed from the receive buffer.
    pub fn archived(&self) -> &'a T::Archived {
        self.archived
    }

    /// Deserialises into an owned `T`.
    ///
    /// # Errors
    ///
    /// [`DeserializeError`] if the deserialiser fails.
    pub fn deserialize(&self) -> Result<T, DeserializeError> {
        deserialize::<T>(self.archived)
    }
}

impl<T: Message> Deref for Sample<'_, T> {
    type Target = T::Archived;

    fn deref(&self) -> &Self::Target {
        self.archived
    }
}

impl<T: Message> Clone for Sample<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Message> Copy for Sample<'_, T> {}

impl<T: Message> fmt::Debug for Sample<'_, T>
where
    T::Archived: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sample")
            .field("header", &self.header)
            .field("archived", self.archived)
            .finish()
    }
}
