//! The receive loop shared by the stream connections (mio and simulated).

use dndm_codec::{DecodeError, Frame, StreamDecoder};

/// Hands complete frames from `decoder` to `on_frame` until `delivered`
/// reaches `max_frames` or the decoder needs more bytes, counting each in
/// `received`. Returns the decode error that stopped it, if one did; the
/// caller decides how the connection closes.
pub(crate) fn drain<F: FnMut(Frame<'_>)>(
    decoder: &mut StreamDecoder,
    max_frames: usize,
    delivered: &mut usize,
    received: &mut u64,
    on_frame: &mut F,
) -> Option<DecodeError> {
    while *delivered < max_frames {
        match decoder.next_frame() {
            Ok(Some(frame)) => {
                on_frame(frame);
                *delivered += 1;
                *received += 1;
            }
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
    None
}
