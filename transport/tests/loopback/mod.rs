//! Helpers shared by the mio transport's loopback tests (`tcp.rs`,
//! `timeouts.rs`): bounded waits only, never a timing assertion.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::time::{Duration, Instant};

use dndm_codec::{FrameBuffer, FrameHeader};
use dndm_transport::{
    Address, CloseReason, Connection, Listener, MioConnection, MioListener, RecvError,
};

/// How long a test waits for something that should take milliseconds: it
/// only stops a broken run, so it is far above any stall of a loaded machine.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// Accepts one connection (bounded wait).
pub(crate) fn accept(listener: &mut MioListener) -> MioConnection {
    let start = Instant::now();
    loop {
        if let Some(c) = listener.try_accept().unwrap() {
            return c;
        }
        assert!(start.elapsed() < DEADLINE, "accept timed out");
        listener.wait_acceptable(Duration::from_millis(10));
    }
}

/// The TCP address a listener is bound to.
pub(crate) fn tcp_addr(l: &MioListener) -> std::net::SocketAddr {
    match l.local_addr() {
        Address::Tcp(a) => *a,
        other => panic!("{other}"),
    }
}

/// Receives until `n` frames or a close; returns payloads and the close reason.
pub(crate) fn drain(conn: &mut MioConnection, n: usize) -> (Vec<Vec<u8>>, Option<CloseReason>) {
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < n {
        match conn.try_recv(usize::MAX, |f| got.push(f.payload().to_vec())) {
            Ok(0) => conn.wait_readable(Duration::from_millis(10)),
            Ok(_) => {}
            Err(RecvError::Closed { reason, .. }) => return (got, Some(reason)),
            Err(e) => panic!("{e}"),
        }
        assert!(start.elapsed() < DEADLINE, "receive timed out");
    }
    (got, None)
}

/// One data frame with `payload`.
pub(crate) fn one_frame(seq: u64, payload: &[u8]) -> FrameBuffer {
    let mut fb = FrameBuffer::new();
    fb.push_raw(&FrameHeader::data(1).with_seq(seq), payload)
        .unwrap();
    fb
}
