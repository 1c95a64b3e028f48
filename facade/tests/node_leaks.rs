//! A networked node holds the threads and descriptors its design explains
//! (one driver thread per node, one I/O thread per socket transport, one
//! socket per connection, no poller per connection), and after it is
//! dropped none is left. Counts the process's threads and descriptors, so
//! it runs alone in its own test binary (one test function).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::time::{Duration, Instant};

use dndm::prelude::*;
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "leak.Blob")]
struct Blob {
    seq: u64,
    bytes: Vec<u8>,
}

const BOUND: Duration = Duration::from_secs(20);

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

fn threads() -> usize {
    count("/proc/self/task")
}

fn fds() -> usize {
    count("/proc/self/fd")
}

/// Nodes joined in a ring of `n` over TCP (even) and Unix (odd) sockets,
/// with traffic on every link; returns the nodes.
fn network(n: usize, round: usize) -> Vec<Node> {
    let dir = std::env::temp_dir();
    let nodes: Vec<Node> = (0..n)
        .map(|i| Node::builder(&format!("n{i}")).build().unwrap())
        .collect();
    for i in 0..n {
        let uri = if i % 2 == 0 {
            "tcp://127.0.0.1:0".to_owned()
        } else {
            format!(
                "unix://{}/dndm-leak-{}-{round}-{i}.sock",
                dir.display(),
                std::process::id()
            )
        };
        let addr = nodes[i].listen(&uri).unwrap();
        nodes[(i + 1) % n].connect(&addr.to_string()).unwrap();
    }
    for node in &nodes {
        assert!(node.wait_for_peers(2, Some(BOUND)));
    }
    nodes
}

#[test]
fn dropped_nodes_leave_no_thread_and_no_descriptor() {
    let (t0, f0) = (threads(), fds());
    const N: usize = 4;
    for round in 0..3 {
        let nodes = network(N, round);
        // Traffic on every link, so every queue, outlet and lane is used.
        let subs: Vec<_> = nodes
            .iter()
            .map(|n| n.subscribe::<Blob>("leak.**").unwrap())
            .collect();
        let pubs: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| n.publish::<Blob>(&format!("leak.n{i}")).unwrap())
            .collect();
        for p in &pubs {
            // Its own node's subscriber and the two neighbours'.
            let deadline = Instant::now() + BOUND;
            while p.interest_count() < 3 {
                assert!(Instant::now() < deadline, "links did not form");
                std::thread::sleep(Duration::from_millis(1));
            }
            for seq in 0..100 {
                p.send(Blob {
                    seq,
                    bytes: vec![7; 4096],
                })
                .unwrap();
            }
        }
        for s in &subs {
            s.recv_timeout(BOUND).unwrap();
        }
        // Request/reply on every link too: each node serves, each calls
        // its neighbour's server across the wire.
        let servers: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                n.serve(&format!("leak.svc.n{i}"), |b: Blob| Blob {
                    seq: b.seq + 1,
                    bytes: Vec::new(),
                })
                .unwrap()
            })
            .collect();
        for (i, n) in nodes.iter().enumerate() {
            let path = format!("leak.svc.n{}", (i + 1) % N);
            for seq in 0..20 {
                let r: Blob = n
                    .call(
                        &path,
                        Blob {
                            seq,
                            bytes: vec![1; 64],
                        },
                        BOUND,
                    )
                    .unwrap();
                assert_eq!(r.seq, seq + 1);
            }
        }
        // What the design explains while it runs: per node one driver and
        // one mio I/O thread (it serves both TCP and Unix), and one worker
        // per server.
        let extra_threads = threads() - t0;
        assert!(
            extra_threads <= 3 * N,
            "{extra_threads} threads for {N} nodes"
        );
        // Per node: its I/O thread's poll and waker, one listener and two
        // connection ends; a Unix listener of the ring may hold one more.
        let extra_fds = fds() - f0;
        assert!(extra_fds <= 6 * N, "{extra_fds} descriptors for {N} nodes");
        drop(servers);
        drop(pubs);
        drop(subs);
        drop(nodes);
        let deadline = Instant::now() + BOUND;
        while threads() != t0 || fds() != f0 {
            assert!(
                Instant::now() < deadline,
                "left behind after drop: {} threads, {} descriptors",
                threads() as isize - t0 as isize,
                fds() as isize - f0 as isize
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
