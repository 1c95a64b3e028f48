//! Trusted access checks the alignment of the whole archive, not only of its
//! root (issue 10, finding 5).
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use dndm_codec::{AccessError, FrameBuffer, FrameHeader, Message, PAYLOAD_ALIGN, access, frames};
use rkyv::{Archive, Deserialize, Serialize};

/// The root (a relative pointer and a length) needs alignment 4; the `u64`s
/// it points at need 8.
#[derive(Archive, Serialize, Deserialize, Message, Debug, PartialEq, Clone)]
#[message(name = "test.Samples")]
struct Samples {
    values: Vec<u64>,
}

/// A copy of `payload` that starts at an address `shift` mod 16.
fn shifted_copy(payload: &[u8], shift: usize) -> (rkyv::util::AlignedVec<16>, usize) {
    let mut storage = rkyv::util::AlignedVec::<16>::new();
    storage.extend_from_slice(&vec![0; shift]);
    storage.extend_from_slice(payload);
    (storage, shift)
}

#[test]
fn trusted_access_rejects_archive_aligned_only_for_its_root() {
    let mut buf = FrameBuffer::new();
    let value = Samples {
        values: (0..8).map(|i| i * 0x0101_0101_0101).collect(),
    };
    buf.push_message(&FrameHeader::data(1), &value).unwrap();
    let frame = frames(buf.as_bytes()).next().unwrap().unwrap();
    let payload = frame.payload();

    // Aligned: the trusted path reads it.
    // SAFETY: the payload was encoded by this process just above, unmodified.
    let archived = unsafe { dndm_codec::access_trusted::<Samples>(payload) }.unwrap();
    assert_eq!(archived.values[7], 7 * 0x0101_0101_0101);

    // 4 mod 16: fine for the root (align 4), wrong for the `u64`s.
    assert_eq!(align_of::<ArchivedSamples>(), 4);
    let (storage, shift) = shifted_copy(payload, 4);
    let misplaced = &storage[shift..shift + payload.len()];
    assert_eq!(misplaced.as_ptr() as usize % PAYLOAD_ALIGN, 4);
    // SAFETY: the bytes are a valid archive written by this crate; the only
    // defect is the address, which the call must reject before any read. The
    // result is not read unless it is an error.
    let trusted = unsafe { dndm_codec::access_trusted::<Samples>(misplaced) };
    match trusted {
        Err(AccessError::Misaligned {
            misalignment,
            align,
            ..
        }) => {
            assert_eq!(align, PAYLOAD_ALIGN);
            assert_eq!(misalignment, 4);
        }
        // Never dereference an `Ok` here: reading `values` would be a
        // misaligned read (undefined behaviour; a debug build aborts).
        Err(other) => panic!("expected a misalignment error, got {other}"),
        Ok(_) => panic!("access_trusted accepted an archive at an address 4 mod 16"),
    }

    // Every shift that is not a multiple of 16 is refused by the trusted
    // path; the validated path never hands out a misaligned archive either.
    for shift in 1..PAYLOAD_ALIGN {
        let (storage, shift) = shifted_copy(payload, shift);
        let misplaced = &storage[shift..shift + payload.len()];
        // SAFETY: as above; only the error is inspected.
        let trusted = unsafe { dndm_codec::access_trusted::<Samples>(misplaced) };
        assert!(
            matches!(trusted, Err(AccessError::Misaligned { .. })),
            "shift {shift}"
        );
        if let Ok(archived) = access::<Samples>(misplaced) {
            // Validation checked every nested pointer, so this read is sound.
            assert_eq!(archived.values.len(), 8);
        }
    }
}
