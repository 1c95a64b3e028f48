//! UDP datagrams: discovery beacons and best-effort data (`udp://`).
//!
//! A datagram carries one or more whole frames (one [`FrameBuffer`] per
//! datagram). Datagrams may be lost, duplicated or reordered; a datagram
//! that is not a sequence of valid frames is dropped and counted, and the
//! socket keeps working. Receiving parses frames in place from an aligned
//! buffer. Multicast: bind the group's port on `0.0.0.0`, then
//! [`UdpEndpoint::join_multicast_v4`] on the interface to listen on.
//!
//! Without `socket2` the outgoing multicast interface is the OS's choice
//! (std has no `IP_MULTICAST_IF`); the interface for receiving is chosen
//! at join time.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use dndm_codec::{Frame, FrameBuffer, RecvBuffer, frames};

use crate::Address;

/// Largest UDP payload.
pub const MAX_DATAGRAM: usize = 65_507;

/// Why a UDP operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UdpError {
    /// The address is not `udp://`.
    #[error("{addr} is not a udp:// address")]
    Unsupported {
        /// The address.
        addr: Address,
    },
    /// The batch does not fit in one datagram.
    #[error("datagram of {len} bytes to {addr} exceeds {limit}")]
    TooLarge {
        /// The destination.
        addr: Address,
        /// Bytes offered.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// An OS error.
    #[error("udp i/o on {addr}: {source}")]
    Io {
        /// The address involved.
        addr: Address,
        /// The OS error.
        source: io::Error,
    },
}

/// Counters of one UDP endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UdpStats {
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Datagrams received (valid or not).
    pub datagrams_received: u64,
    /// Frames delivered.
    pub frames_received: u64,
    /// Datagrams dropped because they were not valid frames.
    pub bad_datagrams: u64,
}

/// A bound UDP socket that sends and receives frames.
#[derive(Debug)]
pub struct UdpEndpoint {
    sock: UdpSocket,
    local: Address,
    buf: RecvBuffer,
    max_frame_len: usize,
    stats: UdpStats,
}

fn udp_addr(addr: &Address) -> Result<SocketAddr, UdpError> {
    match addr {
        Address::Udp(sa) => Ok(*sa),
        _ => Err(UdpError::Unsupported { addr: addr.clone() }),
    }
}

impl UdpEndpoint {
    /// Binds `addr` (`udp://0.0.0.0:7446` to receive a multicast group's
    /// traffic on port 7446; port 0 for any free port).
    ///
    /// # Errors
    ///
    /// [`UdpError`] naming the address.
    pub fn bind(addr: &Address) -> Result<Self, UdpError> {
        let sa = udp_addr(addr)?;
        let io = |source| UdpError::Io {
            addr: addr.clone(),
            source,
        };
        let sock = UdpSocket::bind(sa).map_err(io)?;
        let local = Address::Udp(sock.local_addr().map_err(io)?);
        let mut buf = RecvBuffer::new();
        buf.resize(MAX_DATAGRAM, 0);
        Ok(Self {
            sock,
            local,
            buf,
            max_frame_len: MAX_DATAGRAM,
            stats: UdpStats::default(),
        })
    }

    /// The bound address (with the real port).
    pub fn local_addr(&self) -> &Address {
        &self.local
    }

    /// Counters.
    pub fn stats(&self) -> UdpStats {
        self.stats
    }

    /// Joins multicast `group` on the interface with address `interface`
    /// (`Ipv4Addr::LOCALHOST` for loopback), with loopback of our own
    /// datagrams on.
    ///
    /// # Errors
    ///
    /// [`UdpError`] if the group is not IPv4 multicast or the OS refuses.
    pub fn join_multicast_v4(&self, group: &Address, interface: Ipv4Addr) -> Result<(), UdpError> {
        let io = |source| UdpError::Io {
            addr: group.clone(),
            source,
        };
        let SocketAddr::V4(g) = udp_addr(group)? else {
            return Err(io(io::ErrorKind::InvalidInput.into()));
        };
        self.sock
            .join_multicast_v4(g.ip(), &interface)
            .map_err(io)?;
        self.sock.set_multicast_loop_v4(true).map_err(io)
    }

    /// Sends every frame of `batch` in one datagram to `to`.
    ///
    /// # Errors
    ///
    /// [`UdpError::TooLarge`] above [`MAX_DATAGRAM`], [`UdpError::Io`].
    pub fn send_to(&mut self, batch: &FrameBuffer, to: &Address) -> Result<(), UdpError> {
        let sa = udp_addr(to)?;
        if batch.len() > MAX_DATAGRAM {
            return Err(UdpError::TooLarge {
                addr: to.clone(),
                len: batch.len(),
                limit: MAX_DATAGRAM,
            });
        }
        self.sock
            .send_to(batch.as_bytes(), sa)
            .map_err(|source| UdpError::Io {
                addr: to.clone(),
                source,
            })?;
        self.stats.datagrams_sent += 1;
        Ok(())
    }

    /// Waits up to `timeout` for one datagram and delivers its frames to
    /// `on_frame(from, frame)`; returns how many (0 on timeout or for a
    /// dropped invalid datagram).
    ///
    /// # Errors
    ///
    /// [`UdpError::Io`] for socket errors other than a timeout.
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
        mut on_frame: impl FnMut(&Address, Frame<'_>),
    ) -> Result<usize, UdpError> {
        let io = |source| UdpError::Io {
            addr: self.local.clone(),
            source,
        };
        self.sock
            .set_read_timeout(Some(timeout.max(Duration::from_micros(1))))
            .map_err(io)?;
        let (n, from) = match self.sock.recv_from(self.buf.as_mut_slice()) {
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(0);
            }
            Err(e) => return Err(io(e)),
        };
        self.stats.datagrams_received += 1;
        let bytes = self.buf.as_slice().get(..n).unwrap_or_default();
        // Validate the whole datagram first: a bad one delivers nothing.
        if frames(bytes)
            .max_frame_len(self.max_frame_len)
            .any(|f| f.is_err())
        {
            self.stats.bad_datagrams += 1;
            return Ok(0);
        }
        let from = Address::Udp(from);
        let mut count = 0;
        for frame in frames(bytes).flatten() {
            on_frame(&from, frame);
            count += 1;
        }
        self.stats.frames_received += count as u64;
        Ok(count)
    }
}
