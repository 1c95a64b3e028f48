//! UDP datagrams on loopback: unicast, multicast (when the sandbox allows
//! it) and invalid datagrams.
#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use dndm_codec::{FrameBuffer, FrameHeader};
use dndm_transport::Address;
use dndm_transport::udp::{UdpEndpoint, UdpError};

fn beacon(seq: u64) -> FrameBuffer {
    let mut fb = FrameBuffer::new();
    fb.push_raw(&FrameHeader::control().with_seq(seq), b"beacon")
        .unwrap();
    fb.push_raw(&FrameHeader::data(2).with_seq(seq), b"data")
        .unwrap();
    fb
}

#[test]
fn unicast_frames_and_bad_datagrams() {
    let mut a = UdpEndpoint::bind(&"udp://127.0.0.1:0".parse().unwrap()).unwrap();
    let mut b = UdpEndpoint::bind(&"udp://127.0.0.1:0".parse().unwrap()).unwrap();
    let to = b.local_addr().clone();
    a.send_to(&beacon(1), &to).unwrap();
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < 2 && start.elapsed() < Duration::from_secs(5) {
        b.recv_timeout(Duration::from_millis(100), |from, f| {
            assert_eq!(from, a.local_addr());
            got.push((f.header().seq, f.payload().to_vec()));
        })
        .unwrap();
    }
    assert_eq!(got, vec![(1, b"beacon".to_vec()), (1, b"data".to_vec())]);
    // Garbage is dropped and counted; the socket keeps working.
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    let Address::Udp(sa) = to else { unreachable!() };
    raw.send_to(b"not a frame at all", sa).unwrap();
    let start = Instant::now();
    while b.stats().bad_datagrams == 0 && start.elapsed() < Duration::from_secs(5) {
        assert_eq!(
            b.recv_timeout(Duration::from_millis(100), |_, _| {})
                .unwrap(),
            0
        );
    }
    assert_eq!(b.stats().bad_datagrams, 1);
    assert!(matches!(
        a.send_to(&beacon(2), &"tcp://127.0.0.1:1".parse().unwrap()),
        Err(UdpError::Unsupported { .. })
    ));
}

#[test]
fn multicast_on_loopback() {
    let group: Address = "udp://239.255.0.1:0".parse().unwrap();
    let mut rx = UdpEndpoint::bind(&"udp://0.0.0.0:0".parse().unwrap()).unwrap();
    let Address::Udp(local) = rx.local_addr().clone() else {
        unreachable!()
    };
    if let Err(e) = rx.join_multicast_v4(&group, Ipv4Addr::LOCALHOST) {
        eprintln!("multicast join not possible in this sandbox ({e}); unicast is tested instead");
        return;
    }
    let dest: Address = format!("udp://239.255.0.1:{}", local.port())
        .parse()
        .unwrap();
    let mut tx = UdpEndpoint::bind(&"udp://127.0.0.1:0".parse().unwrap()).unwrap();
    if let Err(e) = tx.send_to(&beacon(5), &dest) {
        eprintln!("multicast send not possible in this sandbox ({e}); unicast is tested instead");
        return;
    }
    let mut got = 0;
    let start = Instant::now();
    while got < 2 && start.elapsed() < Duration::from_secs(2) {
        got += rx
            .recv_timeout(Duration::from_millis(100), |_, _| {})
            .unwrap();
    }
    if got == 0 {
        eprintln!("multicast datagrams not looped back in this sandbox; unicast is tested instead");
        return;
    }
    assert_eq!(got, 2);
}
