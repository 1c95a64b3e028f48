//! Control payloads of the peer protocol: a small hand-written binary layout.
//!
//! Every control frame (`FrameKind::Control`, route alias 0) carries exactly
//! one message: a type byte followed by its body, all integers
//! little-endian. `PROTOCOL.md` (next to this file) is the byte-by-byte
//! reference. Decoding goes through [`Reader`], which checks every length
//! against the bytes that remain and returns a [`Malformed`] naming the
//! field instead of panicking; trailing bytes are an error too.
//!
//! A hand-written layout rather than rkyv: the messages are tiny, mostly
//! strings and integers, and a cursor with explicit bounds checks is easier
//! to audit and to fuzz than validated archives of nested vectors.

use std::fmt;

/// Message type bytes.
pub(crate) const MSG_HELLO: u8 = 1;
pub(crate) const MSG_UPDATE: u8 = 2;
pub(crate) const MSG_PING: u8 = 3;
pub(crate) const MSG_PONG: u8 = 4;
pub(crate) const MSG_GOODBYE: u8 = 5;

/// Update entry operations.
pub(crate) const OP_DECLARE_INTENT: u8 = 1;
pub(crate) const OP_DECLARE_INTEREST: u8 = 2;
pub(crate) const OP_WITHDRAW_INTENT: u8 = 3;
pub(crate) const OP_WITHDRAW_INTEREST: u8 = 4;
pub(crate) const OP_DECLARE_CLIENT: u8 = 5;
pub(crate) const OP_DECLARE_SERVER: u8 = 6;

/// Bytes of an UPDATE header (type byte + count).
pub(crate) const UPDATE_HEADER_LEN: usize = 1 + 2;

/// What was wrong with a control payload: the field and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The message being decoded (`hello`, `update`, …).
    pub message: &'static str,
    /// The field that could not be read or was invalid.
    pub field: &'static str,
    /// Byte offset of the field inside the control payload.
    pub offset: usize,
    /// What was wrong.
    pub problem: &'static str,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed {} message: field {} at byte {}: {}",
            self.message, self.field, self.offset, self.problem
        )
    }
}

/// A bounds-checked cursor over a control payload.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    message: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], message: &'static str) -> Self {
        Self {
            buf,
            pos: 0,
            message,
        }
    }

    pub(crate) fn set_message(&mut self, message: &'static str) {
        self.message = message;
    }

    pub(crate) fn error(&self, field: &'static str, problem: &'static str) -> Malformed {
        Malformed {
            message: self.message,
            field,
            offset: self.pos,
            problem,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], Malformed> {
        if self.remaining() < n {
            return Err(self.error(field, "truncated"));
        }
        let out = self.buf.get(self.pos..self.pos + n);
        match out {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            None => Err(self.error(field, "truncated")),
        }
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], Malformed> {
        let b = self.bytes(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, Malformed> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, Malformed> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, Malformed> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// A `u16` length followed by that many UTF-8 bytes, at most `max`.
    pub(crate) fn str(&mut self, field: &'static str, max: usize) -> Result<&'a str, Malformed> {
        let len = usize::from(self.u16(field)?);
        if len > max {
            return Err(self.error(field, "longer than the negotiated name limit"));
        }
        let b = self.bytes(len, field)?;
        std::str::from_utf8(b).map_err(|_| self.error(field, "not utf-8"))
    }

    pub(crate) fn finish(&self) -> Result<(), Malformed> {
        if self.remaining() != 0 {
            return Err(self.error("end", "trailing bytes"));
        }
        Ok(())
    }
}

/// Appends little-endian fields to a control payload.
pub(crate) struct Writer<'a>(pub(crate) &'a mut Vec<u8>);

impl Writer<'_> {
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
    /// A `u16` length and the bytes, cut at `u16::MAX` bytes on a character
    /// boundary (callers check limits before; this only keeps the layout
    /// well formed).
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        let s = truncate_str(s, usize::from(u16::MAX));
        // `truncate_str` guarantees the length fits a u16.
        self.u16(u16::try_from(s.len()).unwrap_or(u16::MAX));
        self.bytes(s.as_bytes())
    }
}

/// The longest prefix of `s` of at most `max` bytes ending on a character
/// boundary.
pub(crate) fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_truncation_and_trailing_bytes() {
        let mut r = Reader::new(&[1, 2, 3], "ping");
        assert_eq!(r.u16("a"), Ok(0x0201));
        let e = r.u32("t1").unwrap_err();
        assert_eq!(e.field, "t1");
        assert_eq!(e.offset, 2);
        assert!(e.to_string().contains("malformed ping message"), "{e}");
        let r = Reader::new(&[1], "ping");
        assert!(r.finish().is_err());
    }

    #[test]
    fn lying_string_length_is_an_error() {
        let mut v = Vec::new();
        Writer(&mut v).u16(100).bytes(b"abc");
        let mut r = Reader::new(&v, "hello");
        assert_eq!(r.str("name", 1000).unwrap_err().problem, "truncated");
        let mut r = Reader::new(&v, "hello");
        assert_eq!(
            r.str("name", 10).unwrap_err().problem,
            "longer than the negotiated name limit"
        );
        let mut v = Vec::new();
        Writer(&mut v).u16(2).bytes(&[0xff, 0xfe]);
        assert_eq!(
            Reader::new(&v, "x").str("s", 10).unwrap_err().problem,
            "not utf-8"
        );
    }

    #[test]
    fn truncation_keeps_char_boundaries() {
        assert_eq!(truncate_str("héllo", 2), "h");
        assert_eq!(truncate_str("abc", 5), "abc");
    }
}
