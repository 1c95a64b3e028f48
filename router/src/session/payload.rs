//! What a session can put in a data, request or reply frame.

use dndm_codec::{EncodeError, FrameBuffer, FrameHeader, Message};

/// A frame payload the session can append: raw bytes or an archived
/// message ([`Archive`]).
pub trait Payload {
    /// Appends a frame with `header` and this payload to `out`; returns the
    /// frame length.
    fn push(&self, out: &mut FrameBuffer, header: &FrameHeader) -> Result<usize, EncodeError>;
    /// The payload length, if known before encoding.
    fn len_hint(&self) -> Option<usize>;
}

impl Payload for [u8] {
    fn push(&self, out: &mut FrameBuffer, header: &FrameHeader) -> Result<usize, EncodeError> {
        out.push_raw(header, self)
    }
    fn len_hint(&self) -> Option<usize> {
        Some(self.len())
    }
}

/// A message archived with rkyv as the payload.
#[derive(Debug, Clone, Copy)]
pub struct Archive<'a, T>(pub &'a T);

impl<T: Message> Payload for Archive<'_, T> {
    fn push(&self, out: &mut FrameBuffer, header: &FrameHeader) -> Result<usize, EncodeError> {
        out.push_message(header, self.0)
    }
    fn len_hint(&self) -> Option<usize> {
        None
    }
}
