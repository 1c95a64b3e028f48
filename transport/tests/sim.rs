//! The simulated network: determinism, latency, bandwidth, partitions,
//! disconnects, datagram loss and reordering, all in virtual time.
#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]

use std::time::Duration;

use dndm_codec::{FrameBuffer, FrameHeader};
use dndm_transport::sim::{Faults, SimNet, TraceEvent};
use dndm_transport::{
    Address, CloseReason, Config, ConnectError, Connection, Listener, RecvError, SendError,
    Transport,
};

fn frame(seq: u64, len: usize) -> FrameBuffer {
    let mut fb = FrameBuffer::new();
    fb.push_raw(&FrameHeader::data(1).with_seq(seq), &vec![seq as u8; len])
        .unwrap();
    fb
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A scenario with every fault kind; returns the trace and what the
/// receivers saw.
fn scenario(seed: u64) -> (Vec<TraceEvent>, Vec<u64>, Vec<u64>) {
    let net = SimNet::new(
        seed,
        Faults::default()
            .with_latency(ms(5))
            .with_jitter(ms(3))
            .with_bandwidth(Some(1 << 20))
            .with_loss(0.2)
            .with_reorder(0.2),
    );
    let a = net.host("a", Config::default());
    let b = net.host("b", Config::default());
    let mut listener = b.listen(&"mem://b".parse().unwrap()).unwrap();
    let client = a.connect(&"mem://b".parse().unwrap()).unwrap();
    let mut server = listener.try_accept().unwrap().unwrap();
    let mut sa = net.bind_datagram("a", "beacon-a").unwrap();
    let mut sb = net.bind_datagram("b", "beacon-b").unwrap();
    let mut stream_seen = Vec::new();
    let mut dgram_seen = Vec::new();
    for step in 0..200u64 {
        if step % 3 == 0 {
            client
                .try_send(&frame(step, 100 + (step as usize % 7) * 50))
                .unwrap();
        }
        sa.send_to(&step.to_le_bytes(), "beacon-b");
        if step == 60 {
            net.partition("a", "b");
        }
        if step == 90 {
            net.heal("a", "b");
        }
        net.advance(ms(1));
        server
            .try_recv(usize::MAX, |f| stream_seen.push(f.header().seq))
            .unwrap();
        sb.recv(|_, bytes| {
            dgram_seen.push(u64::from_le_bytes(bytes.try_into().unwrap()));
        });
    }
    net.advance(ms(1000));
    server
        .try_recv(usize::MAX, |f| stream_seen.push(f.header().seq))
        .unwrap();
    sb.recv(|_, bytes| dgram_seen.push(u64::from_le_bytes(bytes.try_into().unwrap())));
    (net.trace(), stream_seen, dgram_seen)
}

#[test]
fn same_seed_same_trace() {
    let (t1, s1, d1) = scenario(1234);
    let (t2, s2, d2) = scenario(1234);
    assert!(t1.len() > 400, "trace too short: {}", t1.len());
    assert_eq!(t1, t2);
    assert_eq!((s1.clone(), d1.clone()), (s2, d2));
    let (t3, _, d3) = scenario(99);
    assert_ne!(t1, t3, "a different seed should change the trace");
    assert_ne!(d1, d3);
}

#[test]
fn streams_stay_ordered_and_complete_under_faults() {
    let (_, stream, dgrams) = scenario(7);
    let expected: Vec<u64> = (0..200).filter(|s| s % 3 == 0).collect();
    assert_eq!(stream, expected);
    // Datagrams: some lost, some reordered, none duplicated.
    assert!(dgrams.len() < 200 && dgrams.len() > 100, "{}", dgrams.len());
    assert!(dgrams.windows(2).any(|w| w[0] > w[1]), "no reordering seen");
    let mut sorted = dgrams.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), dgrams.len());
}

#[test]
fn latency_and_bandwidth_in_virtual_time() {
    // 1008 bytes/s: a 1008-byte frame takes 1 s on the wire, + 10 ms latency.
    let net = SimNet::new(
        1,
        Faults::default()
            .with_latency(ms(10))
            .with_bandwidth(Some(1008)),
    );
    let a = net.host("a", Config::default());
    let b = net.host("b", Config::default());
    let mut l = b.listen(&"mem://svc".parse().unwrap()).unwrap();
    let c = a.connect(&"mem://svc".parse().unwrap()).unwrap();
    let mut s = l.try_accept().unwrap().unwrap();
    let fb = frame(1, 960); // 1008 bytes on the wire: 1 s at 1008 B/s
    assert_eq!(fb.len(), 1008);
    c.try_send(&fb).unwrap();
    net.set_now(ms(1009));
    assert_eq!(s.try_recv(8, |_| {}).unwrap(), 0);
    assert_eq!(c.queued_bytes(), 1008);
    net.set_now(ms(1010));
    assert_eq!(s.try_recv(8, |_| {}).unwrap(), 1);
    assert_eq!(c.queued_bytes(), 0);
    assert_eq!(net.now(), ms(1010));
}

#[test]
fn partition_holds_streams_and_refuses_new_connections() {
    let net = SimNet::new(3, Faults::default().with_latency(ms(1)));
    let a = net.host("a", Config::default());
    let b = net.host("b", Config::default());
    let mut l = b.listen(&"mem://svc".parse().unwrap()).unwrap();
    let c = a.connect(&"mem://svc".parse().unwrap()).unwrap();
    let mut s = l.try_accept().unwrap().unwrap();
    net.partition("a", "b");
    c.try_send(&frame(1, 10)).unwrap();
    net.advance(ms(100));
    assert_eq!(s.try_recv(8, |_| {}).unwrap(), 0);
    assert!(matches!(
        a.connect(&"mem://svc".parse().unwrap()),
        Err(ConnectError::TimedOut { .. })
    ));
    net.heal("a", "b");
    assert_eq!(s.try_recv(8, |_| {}).unwrap(), 1);
    assert!(matches!(
        a.connect(&"mem://nobody".parse().unwrap()),
        Err(ConnectError::Refused { .. })
    ));
}

#[test]
fn abrupt_disconnect_resets_both_sides() {
    let net = SimNet::new(3, Faults::default().with_latency(ms(1)));
    let a = net.host("a", Config::default());
    let b = net.host("b", Config::default());
    let mut l = b.listen(&"mem://svc".parse().unwrap()).unwrap();
    let mut c = a.connect(&"mem://svc".parse().unwrap()).unwrap();
    let mut s = l.try_accept().unwrap().unwrap();
    c.try_send(&frame(1, 10)).unwrap();
    net.disconnect("a", "b");
    net.advance(ms(10));
    assert!(matches!(
        s.try_recv(8, |_| {}),
        Err(RecvError::Closed {
            reason: CloseReason::Reset,
            ..
        })
    ));
    assert!(matches!(
        c.try_send(&frame(2, 10)),
        Err(SendError::Closed {
            reason: CloseReason::Reset,
            ..
        })
    ));
    assert!(matches!(
        c.try_recv(8, |_| {}),
        Err(RecvError::Closed {
            reason: CloseReason::Reset,
            ..
        })
    ));
    let addr: Address = "tcp://127.0.0.1:1".parse().unwrap();
    assert!(a.listen(&addr).is_err());
}
