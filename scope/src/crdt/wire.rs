//! What replicas send each other: one [`Delta`] message per key, either
//! the delta of a local write or a key's full state (anti-entropy). Both
//! are states of the key's type, so a receiver merges them the same way.
//!
//! Values travel as the rkyv payload of the key's value type; the receiver
//! checks every field (scope, kind, type name, fingerprint, sizes, every
//! value's archive) before it changes anything.

use dndm_codec::{FrameBuffer, FrameHeader, Message, RecvBuffer, Schema};
use rkyv::{Archive, Deserialize, Serialize};

use super::hlc::Hlc;

/// The type name of [`Delta`], reserved for replication.
pub const DELTA_TYPE: &str = "dndm.scope.ReplicaDelta";

/// One key's delta or full state, from one replica of a scope.
#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq, Eq)]
#[message(name = "dndm.scope.ReplicaDelta")]
pub struct Delta {
    /// The scope's path.
    pub scope: String,
    /// The key.
    pub key: String,
    /// The sending replica.
    pub sender: u64,
    /// True for a full state (anti-entropy), false for a write's delta.
    pub full: bool,
    /// The type name of the key's values (empty for a counter).
    pub value_type: String,
    /// The schema fingerprint of the key's values (0 for a counter).
    pub fingerprint: u64,
    /// The state.
    pub body: Body,
}

/// The state carried by a [`Delta`].
#[derive(Archive, Serialize, Deserialize, Schema, Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// A last-writer-wins register.
    Register {
        /// The write's stamp.
        stamp: Stamp,
        /// The value's archive.
        value: Vec<u8>,
    },
    /// A PN counter's entries.
    Counter {
        /// Per replica totals.
        entries: Vec<CounterEntry>,
    },
    /// An observed-remove set.
    Set {
        /// Live elements with their tags.
        live: Vec<SetEntry>,
        /// Tombstoned tags.
        removed: Vec<Stamp>,
    },
}

/// An [`Hlc`] on the wire.
#[derive(Archive, Serialize, Deserialize, Schema, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// See [`Hlc::wall`].
    pub wall: u64,
    /// See [`Hlc::logical`].
    pub logical: u32,
    /// See [`Hlc::replica`].
    pub replica: u64,
}

impl From<Hlc> for Stamp {
    fn from(h: Hlc) -> Self {
        Self {
            wall: h.wall,
            logical: h.logical,
            replica: h.replica,
        }
    }
}

impl From<Stamp> for Hlc {
    fn from(s: Stamp) -> Self {
        Self {
            wall: s.wall,
            logical: s.logical,
            replica: s.replica,
        }
    }
}

/// One replica's totals in a counter.
#[derive(Archive, Serialize, Deserialize, Schema, Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterEntry {
    /// The replica.
    pub replica: u64,
    /// Everything it added.
    pub inc: u64,
    /// Everything it subtracted.
    pub dec: u64,
}

/// One live element of a set.
#[derive(Archive, Serialize, Deserialize, Schema, Clone, Debug, PartialEq, Eq)]
pub struct SetEntry {
    /// The element's archive.
    pub value: Vec<u8>,
    /// Its live tags.
    pub tags: Vec<Stamp>,
}

/// The rkyv payload of `value` (elements of a set are compared by it).
pub(crate) fn encode<T: Message>(value: &T) -> Result<Vec<u8>, String> {
    let mut buf = FrameBuffer::new();
    buf.push_message(&FrameHeader::data(0), value)
        .map_err(|e| e.to_string())?;
    let frame = dndm_codec::frames(buf.as_bytes())
        .next()
        .ok_or_else(|| "encoder wrote no frame".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(frame.payload().to_vec())
}

/// Validates and deserialises a payload made by [`encode`].
pub(crate) fn decode<T: Message>(bytes: &[u8]) -> Result<T, String> {
    let mut aligned = RecvBuffer::new();
    aligned.extend_from_slice(bytes);
    let archived = dndm_codec::access::<T>(&aligned).map_err(|e| e.to_string())?;
    dndm_codec::deserialize::<T>(archived).map_err(|e| e.to_string())
}
