//! Replicated scope state across nodes on the simulated network, with
//! fixed seeds: three nodes, a partition, concurrent writes on both sides,
//! heal, every replica equal. Waits are bounded hang guards; nothing
//! asserts timing.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::time::{Duration, Instant};

use dndm::prelude::*;
use dndm::scopes::crdt::{Body, Delta};
use dndm::transport::sim::{Faults, SimNet};
use dndm::transport::{Address, Config};
use dndm::{ReplicationOptions, Scope};
use rkyv::{Archive, Deserialize, Serialize};

#[derive(
    Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
#[message(name = "fleet.Mode")]
struct Mode {
    name: String,
}

#[derive(
    Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
#[message(name = "fleet.Tool")]
struct Tool {
    id: u32,
}

/// Far above any stall on a loaded machine.
const BOUND: Duration = Duration::from_secs(30);

fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + BOUND;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn addr(host: &str) -> Address {
    format!("mem://{host}").parse().unwrap()
}

struct Mesh {
    net: SimNet,
    nodes: Vec<Node>,
}

const HOSTS: [&str; 3] = ["a", "b", "c"];

/// Three nodes, each connected to the others.
fn mesh(seed: u64) -> Mesh {
    let net = SimNet::new(seed, Faults::default());
    let nodes: Vec<Node> = HOSTS
        .iter()
        .map(|h| Node::builder(h).build().unwrap())
        .collect();
    for (i, h) in HOSTS.iter().enumerate() {
        nodes[i]
            .listen_with(&net.host(h, Config::default()), &addr(h))
            .unwrap();
    }
    for (i, host) in HOSTS.iter().enumerate() {
        for other in &HOSTS[..i] {
            nodes[i]
                .connect_with(&net.host(host, Config::default()), &addr(other))
                .unwrap();
        }
    }
    for n in &nodes {
        assert!(
            n.wait_for_peers(2, Some(BOUND)),
            "{} saw no peers",
            n.name()
        );
    }
    Mesh { net, nodes }
}

fn fleet(node: &Node) -> Scope {
    let s = node.scope("fleet").unwrap();
    s.set_replication(ReplicationOptions::new().anti_entropy(Duration::from_millis(20)));
    s
}

type View = (Option<Mode>, i64, Vec<Tool>);

fn view(s: &Scope) -> View {
    (
        s.replicated_register::<Mode>("mode")
            .unwrap()
            .get()
            .unwrap(),
        s.replicated_counter("hits").unwrap().value(),
        s.replicated_set::<Tool>("tools").unwrap().values().unwrap(),
    )
}

fn all_equal(scopes: &[Scope]) -> bool {
    let first = view(&scopes[0]);
    scopes[1..].iter().all(|s| view(s) == first)
}

fn mode(name: &str) -> Mode {
    Mode { name: name.into() }
}

/// Partition `c` from `a` and `b`, write on both sides, then heal. With
/// `lose`, the connections to `c` are also cut (what the partition held
/// is lost) and `c` reconnects: only anti-entropy can repair that.
fn partition_and_heal(seed: u64, lose: bool) {
    let m = mesh(seed);
    let scopes: Vec<Scope> = m.nodes.iter().map(fleet).collect();
    let (a, b, c) = (&scopes[0], &scopes[1], &scopes[2]);
    a.replicated_register::<Mode>("mode")
        .unwrap()
        .set(mode("idle"))
        .unwrap();
    a.replicated_counter("hits").unwrap().add(1).unwrap();
    let tools = a.replicated_set::<Tool>("tools").unwrap();
    tools.insert(&Tool { id: 1 }).unwrap();
    tools.insert(&Tool { id: 2 }).unwrap();
    assert!(
        eventually(|| all_equal(&scopes)),
        "no convergence before the partition"
    );
    assert_eq!(view(c).2, vec![Tool { id: 1 }, Tool { id: 2 }]);

    m.net.partition("a", "c");
    m.net.partition("b", "c");
    // Concurrent writes on both sides.
    a.replicated_register::<Mode>("mode")
        .unwrap()
        .set(mode("work"))
        .unwrap();
    b.replicated_counter("hits").unwrap().add(10).unwrap();
    b.replicated_set::<Tool>("tools")
        .unwrap()
        .remove(&Tool { id: 1 })
        .unwrap();
    c.replicated_counter("hits").unwrap().add(-3).unwrap();
    c.replicated_set::<Tool>("tools")
        .unwrap()
        .insert(&Tool { id: 1 })
        .unwrap();
    c.replicated_set::<Tool>("tools")
        .unwrap()
        .insert(&Tool { id: 3 })
        .unwrap();
    c.replicated_set::<Tool>("tools")
        .unwrap()
        .remove(&Tool { id: 2 })
        .unwrap();
    c.replicated_register::<Mode>("mode")
        .unwrap()
        .set(mode("dock"))
        .unwrap();
    // Each side converges on its own.
    assert!(eventually(|| view(a) == view(b)), "a and b diverge");
    assert_eq!(view(a).1, 11);
    // Nothing crossed the partition: c still has only its own writes.
    assert_eq!(view(c).1, 1 - 3);
    assert_ne!(view(c), view(a));

    if lose {
        m.net.disconnect("a", "c");
        m.net.disconnect("b", "c");
    }
    m.net.heal("a", "c");
    m.net.heal("b", "c");
    if lose {
        for n in &m.nodes {
            assert!(
                eventually(|| n.peers().len() == if n.name() == "c" { 0 } else { 1 }),
                "{} still sees the cut peers",
                n.name()
            );
        }
        for h in ["a", "b"] {
            m.nodes[2]
                .connect_with(&m.net.host("c", Config::default()), &addr(h))
                .unwrap();
        }
        for n in &m.nodes {
            assert!(
                n.wait_for_peers(2, Some(BOUND)),
                "{} did not reconnect",
                n.name()
            );
        }
    }
    assert!(
        eventually(|| all_equal(&scopes)),
        "replicas differ after heal: {:?}",
        scopes.iter().map(view).collect::<Vec<_>>()
    );
    let (reg, hits, tools) = view(a);
    assert_eq!(hits, 1 + 10 - 3);
    // c's remove of 2 saw 2; b's remove of 1 did not see c's insert of 1
    // (add wins); 3 is new.
    assert_eq!(tools, vec![Tool { id: 1 }, Tool { id: 3 }]);
    let reg = reg.unwrap();
    assert!(reg == mode("work") || reg == mode("dock"), "{reg:?}");
    for s in &scopes {
        assert_eq!(s.replication_stats().unwrap().dropped, 0);
    }
}

#[test]
fn three_nodes_converge_after_a_partition_heals() {
    for seed in [1, 2, 3] {
        partition_and_heal(seed, false);
    }
}

#[test]
fn anti_entropy_repairs_what_a_partition_lost() {
    for seed in [4, 5] {
        partition_and_heal(seed, true);
    }
}

#[test]
fn a_late_joiner_gets_the_state() {
    let net = SimNet::new(7, Faults::default());
    let a = Node::builder("a").build().unwrap();
    a.listen_with(&net.host("a", Config::default()), &addr("a"))
        .unwrap();
    let sa = fleet(&a);
    sa.replicated_register::<Mode>("mode")
        .unwrap()
        .set(mode("early"))
        .unwrap();
    sa.replicated_counter("hits").unwrap().add(5).unwrap();
    sa.replicated_set::<Tool>("tools")
        .unwrap()
        .insert(&Tool { id: 9 })
        .unwrap();

    let d = Node::builder("d").build().unwrap();
    d.connect_with(&net.host("d", Config::default()), &addr("a"))
        .unwrap();
    assert!(d.wait_for_peers(1, Some(BOUND)));
    let sd = fleet(&d);
    assert!(
        eventually(|| view(&sd) == view(&sa)),
        "the late joiner has {:?}",
        view(&sd)
    );
    assert_eq!(view(&sd).1, 5);
}

#[test]
fn malformed_deltas_from_a_peer_are_dropped_and_counted() {
    let net = SimNet::new(8, Faults::default());
    let a = Node::builder("a").build().unwrap();
    a.listen_with(&net.host("a", Config::default()), &addr("a"))
        .unwrap();
    let sa = fleet(&a);
    let reg = sa.replicated_register::<Mode>("mode").unwrap();
    reg.set(mode("safe")).unwrap();

    let evil = Node::builder("evil").build().unwrap();
    evil.connect_with(&net.host("evil", Config::default()), &addr("a"))
        .unwrap();
    assert!(evil.wait_for_peers(1, Some(BOUND)));
    let p = evil.publish::<Delta>("fleet._state").unwrap();
    assert!(p.wait_for_interest(Some(BOUND)));
    let bad = |key: &str, body: Body, value_type: &str| Delta {
        scope: "fleet".into(),
        key: key.into(),
        sender: 0xbad,
        full: false,
        value_type: value_type.into(),
        fingerprint: <Mode as dndm::codec::Schema>::FINGERPRINT,
        body,
    };
    let stamp = dndm::scopes::crdt::Stamp {
        wall: u64::MAX,
        logical: 0,
        replica: 0xbad,
    };
    // Not an archive of Mode.
    p.send(bad(
        "mode",
        Body::Register {
            stamp,
            value: vec![1, 2, 3],
        },
        "fleet.Mode",
    ))
    .unwrap();
    // Another value type.
    p.send(bad(
        "mode",
        Body::Register {
            stamp,
            value: vec![],
        },
        "fleet.Other",
    ))
    .unwrap();
    // The wrong kind.
    p.send(bad("mode", Body::Counter { entries: vec![] }, "fleet.Mode"))
        .unwrap();
    assert!(
        eventually(|| sa.replication_stats().unwrap().dropped >= 3),
        "{:?}",
        sa.replication_stats()
    );
    assert_eq!(reg.get().unwrap(), Some(mode("safe")));
    // Still replicating.
    reg.set(mode("after")).unwrap();
    assert_eq!(reg.get().unwrap(), Some(mode("after")));
}

#[test]
fn closing_a_scope_stops_its_replication() {
    let node = Node::new("solo");
    let s = fleet(&node);
    let c = s.replicated_counter("hits").unwrap();
    c.add(2).unwrap();
    let info = s.info();
    assert_eq!(
        info.replicated,
        [("hits".to_string(), "counter".to_string())]
    );
    let text = info.to_string();
    assert!(text.contains("replicated hits: counter"), "{text}");
    assert!(text.contains("replication fleet._state (1 keys)"), "{text}");
    s.close();
    assert!(s.replicated_counter("hits").is_err());
    // A handle outlives its scope: it reads the last state, writes fail.
    let e = c.add(1).unwrap_err().to_string();
    assert!(e.contains("closed") && e.contains("hits"), "{e}");
    assert_eq!(c.value(), 2);
    assert_eq!(node.stats().intents, 0);
}

#[test]
fn replicas_converge_through_a_one_slot_queue() {
    let net = SimNet::new(9, Faults::default());
    let a = Node::builder("a").build().unwrap();
    a.listen_with(&net.host("a", Config::default()), &addr("a"))
        .unwrap();
    let b = Node::builder("b").build().unwrap();
    b.connect_with(&net.host("b", Config::default()), &addr("a"))
        .unwrap();
    assert!(b.wait_for_peers(1, Some(BOUND)));
    let opts = ReplicationOptions::new()
        .anti_entropy(Duration::from_millis(20))
        .capacity(1);
    let (sa, sb) = (a.scope("fleet").unwrap(), b.scope("fleet").unwrap());
    sa.set_replication(opts);
    sb.set_replication(opts);
    let tools_a = sa.replicated_set::<Tool>("tools").unwrap();
    let tools_b = sb.replicated_set::<Tool>("tools").unwrap();
    let hits_a = sa.replicated_counter("hits").unwrap();
    // Far more deltas than b's queue holds: whatever it drops (oldest
    // first), a later full state repairs.
    for id in 0..300 {
        tools_a.insert(&Tool { id }).unwrap();
        hits_a.add(1).unwrap();
    }
    for id in (0..300).step_by(3) {
        tools_a.remove(&Tool { id }).unwrap();
    }
    let hits_b = sb.replicated_counter("hits").unwrap();
    assert!(
        eventually(|| hits_b.value() == 300 && tools_b.len() == 200),
        "b has {} hits and {} tools",
        hits_b.value(),
        tools_b.len()
    );
    assert_eq!(tools_b.values().unwrap(), tools_a.values().unwrap());
}

#[test]
fn a_policy_can_forbid_replication() {
    use dndm::{Op, ScopePolicy};
    let node = Node::new("solo");
    let s = node.scope("fleet").unwrap();
    s.set_policy(
        ScopePolicy::new()
            .deny(&[Op::Publish], dndm::STATE_PATH)
            .unwrap(),
    );
    let e = s.replicated_counter("hits").unwrap_err().to_string();
    assert!(e.contains("deny publish"), "{e}");
    assert_eq!(node.stats().intents, 0);
    assert_eq!(node.stats().interests, 0);
}

/// A small deterministic generator (xorshift), so a failing seed replays
/// the same script.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Random writes on every node while random pairs are cut off and healed;
/// once everything heals, every replica is equal and the counter holds
/// every add.
#[test]
fn random_scripts_with_partitions_converge() {
    for seed in [0x9e37_79b9_7f4a_7c15_u64, 0x1234_5678, 0xdead_beef] {
        let m = mesh(seed);
        let scopes: Vec<Scope> = m.nodes.iter().map(fleet).collect();
        let mut rng = Rng(seed);
        let mut cut: Vec<(usize, usize)> = Vec::new();
        let mut sum = 0;
        for _ in 0..200 {
            let s = &scopes[rng.below(3) as usize];
            match rng.below(6) {
                0 => {
                    let name = format!("m{}", rng.below(4));
                    s.replicated_register::<Mode>("mode")
                        .unwrap()
                        .set(mode(&name))
                        .unwrap();
                }
                1 => {
                    let by = rng.below(7) as i64 - 3;
                    sum += by;
                    s.replicated_counter("hits").unwrap().add(by).unwrap();
                }
                2 => {
                    let id = rng.below(6) as u32;
                    s.replicated_set::<Tool>("tools")
                        .unwrap()
                        .insert(&Tool { id })
                        .unwrap();
                }
                3 => {
                    let id = rng.below(6) as u32;
                    s.replicated_set::<Tool>("tools")
                        .unwrap()
                        .remove(&Tool { id })
                        .unwrap();
                }
                4 => {
                    let (i, j) = (rng.below(3) as usize, rng.below(3) as usize);
                    if i != j && !cut.contains(&(i, j)) && !cut.contains(&(j, i)) {
                        m.net.partition(HOSTS[i], HOSTS[j]);
                        cut.push((i, j));
                    }
                }
                _ => {
                    if !cut.is_empty() {
                        let (i, j) = cut.remove(rng.below(cut.len() as u64) as usize);
                        m.net.heal(HOSTS[i], HOSTS[j]);
                    }
                }
            }
        }
        for (i, j) in cut.drain(..) {
            m.net.heal(HOSTS[i], HOSTS[j]);
        }
        assert!(
            eventually(|| all_equal(&scopes)),
            "seed {seed:#x}: replicas differ: {:?}",
            scopes.iter().map(view).collect::<Vec<_>>()
        );
        assert_eq!(view(&scopes[0]).1, sum, "seed {seed:#x}");
    }
}
