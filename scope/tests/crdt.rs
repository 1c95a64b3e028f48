//! The replicated types against their laws and simple models, with fixed
//! seeds (a failure prints the case; rerun it with the same seed):
//!
//! * merge is commutative, associative and idempotent for every type;
//! * replicas that receive every delta, in any order and any number of
//!   times, are equal, and equal to the merge of every replica's state;
//! * the counter's value is the sum of every add; the register holds the
//!   write with the greatest stamp; one replica's set behaves as a
//!   `BTreeSet`; an insert concurrent with a remove survives it;
//! * `Replicas` (the wire level): deltas shuffled and duplicated, or only
//!   full states, converge; arbitrary deltas never panic and change
//!   nothing when refused.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use dndm_codec::Message;
use dndm_core::sync::Mutex;
use dndm_scope::crdt::{
    Body, CounterEntry, Crdt, Delta, Hlc, HlcClock, LwwRegister, OrSet, Outbox, PnCounter,
    Replicas, SetEntry, Stamp,
};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use rkyv::{Archive, Deserialize, Serialize};

fn config(seed: u64) -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const REPLICAS: usize = 3;

/// One operation: which replica, what, and the physical time it reads
/// (which may go backwards: the clock must not).
#[derive(Debug, Clone)]
enum Op {
    Set(usize, u8, u64),
    Add(usize, i64),
    Insert(usize, u8, u64),
    Remove(usize, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let r = 0..REPLICAS;
    prop_oneof![
        (r.clone(), 0u8..8, 0u64..50).prop_map(|(r, v, t)| Op::Set(r, v, t)),
        (r.clone(), -5i64..6).prop_map(|(r, by)| Op::Add(r, by)),
        (r.clone(), 0u8..8, 0u64..50).prop_map(|(r, v, t)| Op::Insert(r, v, t)),
        (r, 0u8..8).prop_map(|(r, v)| Op::Remove(r, v)),
    ]
}

#[derive(Debug, Clone)]
struct Replica {
    clock: HlcClock,
    reg: LwwRegister<u8>,
    counter: PnCounter,
    set: OrSet<u8>,
}

#[derive(Debug, Clone)]
enum D {
    Reg(LwwRegister<u8>),
    Counter(PnCounter),
    Set(OrSet<u8>),
}

impl Replica {
    fn new(id: usize) -> Self {
        Self {
            clock: HlcClock::new(id as u64 + 1),
            reg: LwwRegister::new(),
            counter: PnCounter::new(),
            set: OrSet::new(),
        }
    }

    fn apply(&mut self, d: &D) {
        match d {
            D::Reg(r) => {
                if let Some(s) = r.stamp() {
                    self.clock.observe(s);
                }
                self.reg.merge(r);
            }
            D::Counter(c) => {
                self.counter.merge(c);
            }
            D::Set(s) => {
                self.set.merge(s);
            }
        }
    }

    fn merge(&mut self, o: &Replica) {
        self.reg.merge(&o.reg);
        self.counter.merge(&o.counter);
        self.set.merge(&o.set);
    }

    fn state(&self) -> (LwwRegister<u8>, PnCounter, OrSet<u8>) {
        (self.reg.clone(), self.counter.clone(), self.set.clone())
    }
}

/// Runs `ops`; each replica sees only its own writes. Returns the
/// replicas and every delta with its origin.
fn run(ops: &[Op]) -> (Vec<Replica>, Vec<(usize, D)>) {
    let mut rs: Vec<Replica> = (0..REPLICAS).map(Replica::new).collect();
    let mut deltas = Vec::new();
    for o in ops {
        match *o {
            Op::Set(i, v, t) => {
                let r = &mut rs[i];
                let s = r.clock.tick(t);
                deltas.push((i, D::Reg(r.reg.set(s, v))));
            }
            Op::Add(i, by) => {
                let d = rs[i].counter.add(i as u64 + 1, by);
                deltas.push((i, D::Counter(d)));
            }
            Op::Insert(i, v, t) => {
                let r = &mut rs[i];
                let s = r.clock.tick(t);
                deltas.push((i, D::Set(r.set.insert(s, v))));
            }
            Op::Remove(i, v) => {
                if let Some(d) = rs[i].set.remove(&v) {
                    deltas.push((i, D::Set(d)));
                }
            }
        }
    }
    (rs, deltas)
}

fn merged(a: &Replica, b: &Replica) -> Replica {
    let mut m = a.clone();
    m.merge(b);
    m
}

proptest! {
    #![proptest_config(config(0x0c2d_7001))]

    #[test]
    fn merge_laws(ops in prop::collection::vec(op(), 0..40)) {
        let (rs, _) = run(&ops);
        let (a, b, c) = (&rs[0], &rs[1], &rs[2]);
        // Commutative.
        prop_assert_eq!(merged(a, b).state(), merged(b, a).state());
        // Associative.
        prop_assert_eq!(
            merged(&merged(a, b), c).state(),
            merged(a, &merged(b, c)).state()
        );
        // Idempotent.
        prop_assert_eq!(merged(a, a).state(), a.state());
        let ab = merged(a, b);
        prop_assert_eq!(merged(&ab, b).state(), ab.state());
    }

    #[test]
    fn any_delivery_order_converges(
        ops in prop::collection::vec(op(), 0..40),
        orders in prop::collection::vec(prop::collection::vec(any::<prop::sample::Index>(), 0..120), REPLICAS),
    ) {
        let (mut rs, deltas) = run(&ops);
        let mut all = rs[0].clone();
        all.merge(&rs[1]);
        all.merge(&rs[2]);
        for (i, order) in orders.iter().enumerate() {
            // Everyone else's deltas: a random prefix of picks (duplicates
            // and any order), then each once so nothing is missing.
            let theirs: Vec<&D> = deltas.iter().filter(|(o, _)| *o != i).map(|(_, d)| d).collect();
            if !theirs.is_empty() {
                for ix in order {
                    rs[i].apply(theirs[ix.index(theirs.len())]);
                }
            }
            for d in theirs.iter().rev() {
                rs[i].apply(d);
            }
        }
        for r in &rs {
            prop_assert_eq!(r.state(), all.state());
        }
    }

    #[test]
    fn counter_is_the_sum_and_register_the_latest(ops in prop::collection::vec(op(), 0..40)) {
        let (rs, deltas) = run(&ops);
        let sum: i64 = ops.iter().map(|o| if let Op::Add(_, by) = o { *by } else { 0 }).sum();
        let mut all = rs[0].clone();
        all.merge(&rs[1]);
        all.merge(&rs[2]);
        prop_assert_eq!(all.counter.value(), sum);
        let latest = deltas
            .iter()
            .filter_map(|(_, d)| match d {
                D::Reg(r) => Some((r.stamp().unwrap(), *r.get().unwrap())),
                _ => None,
            })
            .max();
        prop_assert_eq!(all.reg.get().copied(), latest.map(|(_, v)| v));
    }

    #[test]
    fn one_replica_set_is_a_btreeset(ops in prop::collection::vec((any::<bool>(), 0u8..8), 0..60)) {
        let mut clock = HlcClock::new(1);
        let mut set = OrSet::new();
        let mut model = BTreeSet::new();
        for (t, (insert, v)) in ops.iter().enumerate() {
            if *insert {
                set.insert(clock.tick(t as u64 / 3), *v);
                model.insert(*v);
            } else {
                prop_assert_eq!(set.remove(v).is_some(), model.remove(v));
            }
            prop_assert_eq!(set.iter().copied().collect::<BTreeSet<_>>(), model.clone());
        }
    }

    #[test]
    fn clock_never_goes_back(times in prop::collection::vec(0u64..20, 1..100), peer in 0u64..30) {
        let mut clock = HlcClock::new(1);
        let mut last = Hlc::default();
        for (i, t) in times.iter().enumerate() {
            if i == times.len() / 2 {
                clock.observe(Hlc { wall: peer, logical: 3, replica: 9 });
                last = last.max(Hlc { wall: peer, logical: 3, replica: 9 });
            }
            let s = clock.tick(*t);
            prop_assert!(s > last);
            last = s;
        }
    }
}

#[test]
fn add_wins_over_a_concurrent_remove() {
    let mut a = OrSet::new();
    let mut ca = HlcClock::new(1);
    let mut cb = HlcClock::new(2);
    a.insert(ca.tick(1), 7u8);
    let mut b = a.clone();
    // Concurrently: a removes 7, b inserts it again.
    let rm = a.remove(&7).unwrap();
    let add = b.insert(cb.tick(2), 7u8);
    a.merge(&add);
    b.merge(&rm);
    assert!(a.contains(&7) && b.contains(&7));
    assert_eq!(a, b);
}

// ---------------------------------------------------------------------------
// The wire level: `Replicas` exchanging `Delta`s.

#[derive(
    Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
#[message(name = "test.Mode")]
struct Mode {
    name: String,
    speed: u32,
}

#[derive(Default)]
struct Capture(Mutex<Vec<Delta>>);

impl Outbox for Capture {
    fn send(&self, delta: Delta) {
        self.0.lock().unwrap().push(delta);
    }
}

fn clock() -> u64 {
    // Deterministic: every replica reads the same instant, so order comes
    // from the logical counter and the replica id.
    1_000
}

struct Wired {
    replicas: Arc<Replicas>,
    out: Arc<Capture>,
}

fn wired(id: u64) -> Wired {
    let replicas = Arc::new(Replicas::new("robot.arm", id, clock));
    let out = Arc::new(Capture::default());
    assert!(replicas.attach(Arc::clone(&out) as Arc<dyn Outbox>));
    Wired { replicas, out }
}

#[derive(Debug, Clone)]
enum WOp {
    Set(usize, u32),
    Add(usize, i64),
    Insert(usize, u32),
    Remove(usize, u32),
}

fn wop() -> impl Strategy<Value = WOp> {
    let r = 0..REPLICAS;
    prop_oneof![
        (r.clone(), 0u32..5).prop_map(|(r, v)| WOp::Set(r, v)),
        (r.clone(), -3i64..4).prop_map(|(r, v)| WOp::Add(r, v)),
        (r.clone(), 0u32..5).prop_map(|(r, v)| WOp::Insert(r, v)),
        (r, 0u32..5).prop_map(|(r, v)| WOp::Remove(r, v)),
    ]
}

fn mode(v: u32) -> Mode {
    Mode {
        name: format!("m{v}"),
        speed: v,
    }
}

type View = (Option<Mode>, i64, Vec<Mode>);

fn view(w: &Wired) -> View {
    let r = &w.replicas;
    (
        r.register::<Mode>("mode").unwrap().get().unwrap(),
        r.counter("count").unwrap().value(),
        r.set::<Mode>("tools").unwrap().values().unwrap(),
    )
}

fn write(ws: &[Wired], o: &WOp) {
    match *o {
        WOp::Set(i, v) => ws[i]
            .replicas
            .register("mode")
            .unwrap()
            .set(mode(v))
            .unwrap(),
        WOp::Add(i, v) => ws[i].replicas.counter("count").unwrap().add(v).unwrap(),
        WOp::Insert(i, v) => ws[i]
            .replicas
            .set("tools")
            .unwrap()
            .insert(&mode(v))
            .unwrap(),
        WOp::Remove(i, v) => {
            ws[i]
                .replicas
                .set::<Mode>("tools")
                .unwrap()
                .remove(&mode(v))
                .unwrap();
        }
    }
}

fn three() -> Vec<Wired> {
    let ws: Vec<Wired> = (1..=REPLICAS as u64).map(wired).collect();
    for w in &ws {
        // Declared on every replica before anything flows.
        w.replicas.register::<Mode>("mode").unwrap();
        w.replicas.counter("count").unwrap();
        w.replicas.set::<Mode>("tools").unwrap();
    }
    ws
}

proptest! {
    #![proptest_config(config(0x0c2d_7002))]

    #[test]
    fn wire_deltas_in_any_order_converge(
        ops in prop::collection::vec(wop(), 0..30),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 0..90),
    ) {
        let ws = three();
        for o in &ops {
            write(&ws, o);
        }
        let sent: Vec<Delta> = ws.iter().flat_map(|w| w.out.0.lock().unwrap().clone()).collect();
        for w in &ws {
            if !sent.is_empty() {
                for p in &picks {
                    w.replicas.apply(&sent[p.index(sent.len())]).unwrap();
                }
            }
            for d in sent.iter().rev() {
                w.replicas.apply(d).unwrap();
            }
            prop_assert_eq!(w.replicas.stats().dropped, 0);
        }
        let first = view(&ws[0]);
        for w in &ws[1..] {
            prop_assert_eq!(view(w), first.clone());
        }
        let sum: i64 = ops.iter().map(|o| if let WOp::Add(_, v) = o { *v } else { 0 }).sum();
        prop_assert_eq!(first.1, sum);
    }

    #[test]
    fn full_states_alone_converge(ops in prop::collection::vec(wop(), 0..30)) {
        // Every delta lost (a partition); one anti-entropy round each way.
        let ws = three();
        for o in &ops {
            write(&ws, o);
        }
        let fulls: Vec<Vec<Delta>> = ws.iter().map(|w| w.replicas.full_state()).collect();
        for (i, w) in ws.iter().enumerate() {
            for (j, f) in fulls.iter().enumerate() {
                if i != j {
                    for d in f {
                        w.replicas.apply(d).unwrap();
                    }
                }
            }
        }
        let first = view(&ws[0]);
        for w in &ws[1..] {
            prop_assert_eq!(view(w), first.clone());
        }
    }

    #[test]
    fn hostile_deltas_never_panic(
        key in prop_oneof![Just("mode".to_string()), Just("count".to_string()), Just("tools".to_string()), ".{0,8}"],
        value_type in prop_oneof![Just("test.Mode".to_string()), Just(String::new()), ".{0,8}"],
        fingerprint in prop_oneof![Just(<Mode as dndm_codec::Schema>::FINGERPRINT), Just(0u64), any::<u64>()],
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        stamps in prop::collection::vec((any::<u64>(), any::<u32>(), any::<u64>()), 0..4),
        kind in 0u8..3,
    ) {
        let ws = three();
        write(&ws, &WOp::Set(0, 1));
        write(&ws, &WOp::Add(0, 2));
        write(&ws, &WOp::Insert(0, 3));
        let before = view(&ws[0]);
        let stamps: Vec<Stamp> = stamps
            .iter()
            .map(|(wall, logical, replica)| Stamp { wall: *wall, logical: *logical, replica: *replica })
            .collect();
        let body = match kind {
            0 => Body::Register { stamp: stamps.first().copied().unwrap_or(Stamp { wall: u64::MAX, logical: 0, replica: 9 }), value: bytes.clone() },
            1 => Body::Counter { entries: stamps.iter().map(|s| CounterEntry { replica: s.replica, inc: s.wall, dec: u64::from(s.logical) }).collect() },
            _ => Body::Set { live: vec![SetEntry { value: bytes.clone(), tags: stamps.clone() }], removed: stamps.clone() },
        };
        let d = Delta {
            scope: "robot.arm".into(),
            key,
            sender: 77,
            full: false,
            value_type,
            fingerprint,
            body,
        };
        match ws[0].replicas.apply(&d) {
            // Accepted: only possible for well-formed input (a counter, or
            // bytes that happen to be a valid archive).
            Ok(_) => {}
            Err(_) => prop_assert_eq!(view(&ws[0]), before),
        }
        let s = ws[0].replicas.stats();
        prop_assert_eq!(s.applied + s.dropped + s.unknown, 1);
    }
}

#[test]
fn malformed_deltas_are_typed_and_counted() {
    let ws = three();
    write(&ws, &WOp::Set(0, 1));
    let good = ws[0].out.0.lock().unwrap()[0].clone();
    let r = &ws[1].replicas;

    let mut wrong_scope = good.clone();
    wrong_scope.scope = "robot.leg".into();
    let e = r.apply(&wrong_scope).unwrap_err().to_string();
    assert!(e.contains("robot.leg"), "{e}");

    let mut garbage = good.clone();
    garbage.body = Body::Register {
        stamp: Stamp {
            wall: 5,
            logical: 0,
            replica: 1,
        },
        value: vec![0xff; 3],
    };
    let e = r.apply(&garbage).unwrap_err().to_string();
    assert!(e.contains("malformed") && e.contains("mode"), "{e}");

    let mut wrong_kind = good.clone();
    wrong_kind.body = Body::Counter { entries: vec![] };
    assert!(r.apply(&wrong_kind).is_err());

    let mut unknown = good.clone();
    unknown.key = "nope".into();
    assert!(r.apply(&unknown).is_err());

    assert_eq!(r.register::<Mode>("mode").unwrap().get().unwrap(), None);
    let s = r.stats();
    assert_eq!((s.dropped, s.unknown, s.applied), (3, 1, 0));
    r.apply(&good).unwrap();
    assert_eq!(
        r.register::<Mode>("mode").unwrap().get().unwrap(),
        Some(mode(1))
    );
}

#[test]
fn declaring_a_key_twice_as_another_kind_is_refused() {
    let w = wired(1);
    w.replicas.register::<Mode>("k").unwrap();
    let e = w.replicas.counter("k").unwrap_err().to_string();
    assert!(e.contains("register of test.Mode"), "{e}");
    assert!(w.replicas.counter("").is_err());
    assert!(w.replicas.counter("a b").is_err());
    let counts: BTreeMap<String, String> = w.replicas.keys().into_iter().collect();
    assert_eq!(counts.len(), 1);
}

#[test]
fn a_key_never_grows_past_its_bound() {
    use dndm_scope::crdt::{MAX_KEY_ENTRIES, ReplicaError};
    let w = wired(1);
    let count = w.replicas.counter("count").unwrap();
    let flood = |from: usize, n: usize| Delta {
        scope: "robot.arm".into(),
        key: "count".into(),
        sender: 77,
        full: true,
        value_type: String::new(),
        fingerprint: 0,
        body: Body::Counter {
            entries: (from..from + n)
                .map(|i| CounterEntry {
                    replica: i as u64 + 100,
                    inc: 1,
                    dec: 0,
                })
                .collect(),
        },
    };
    // One entry too many: refused whole.
    assert!(w.replicas.apply(&flood(0, MAX_KEY_ENTRIES + 1)).is_err());
    assert_eq!(count.value(), 0);
    // Exactly full: accepted; then local writes fail instead of growing.
    assert!(w.replicas.apply(&flood(0, MAX_KEY_ENTRIES)).unwrap());
    assert_eq!(count.value(), MAX_KEY_ENTRIES as i64);
    assert!(matches!(count.add(1), Err(ReplicaError::Full { .. })));
    assert!(w.replicas.apply(&flood(MAX_KEY_ENTRIES, 1)).is_err());
    assert_eq!(w.replicas.stats().dropped, 2);
}
