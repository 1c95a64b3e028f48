//! Scopes on a node: relative paths, ownership and close, policies,
//! inherited settings, state, introspection.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use dndm::prelude::*;
use dndm::scopes::{HandleKind, Key, RestoreError, WriteError};
use dndm::{
    Access, LinkEvent, Op, PathError, RecvTimeoutError, ScopeCallError, ScopeError, ScopePolicy,
    ScopePublishError, ScopeSendError, ScopeSubscribeError,
};
use rkyv::{Archive, Deserialize, Serialize};

/// Far above any stall of a loaded machine; only failures wait this long.
const WAIT: Duration = Duration::from_secs(30);

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "t.Pose")]
struct Pose {
    x: u32,
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "t.Count")]
struct Count {
    n: u64,
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "t.Name")]
struct Name {
    s: String,
}

#[test]
fn paths_inside_a_scope_are_relative_and_the_absolute_form_stays_inside() {
    let node = Node::new("t");
    let arm = node.scope("robot.arm").unwrap();
    let gripper = arm.child("gripper").unwrap();
    assert_eq!(gripper.path(), "robot.arm.gripper");
    assert_eq!(gripper.depth(), 2);

    let all = node.subscribe::<Pose>("**").unwrap();
    let p = gripper.publish::<Pose>("pose").unwrap();
    assert_eq!(p.route().to_string(), "t.Pose@robot.arm.gripper.pose");
    let q = gripper.publish::<Pose>("/robot.arm.gripper.tip").unwrap();
    assert_eq!(q.route().to_string(), "t.Pose@robot.arm.gripper.tip");
    assert_eq!(all.publisher_count(), 2);

    for bad in [
        "../base",
        "..",
        ".x",
        "x.",
        "a..b",
        "/robot.base.x",
        "/robot.arm",
        "/**",
        "a/b",
        "//robot.arm.gripper.x",
        "",
    ] {
        match gripper.publish::<Pose>(bad) {
            Err(ScopePublishError::Path(_)) => {}
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // Wildcards stay inside too.
    let e = gripper
        .subscribe::<Pose>("/robot.*.gripper.**")
        .unwrap_err();
    assert!(
        matches!(e, ScopeSubscribeError::Path(PathError::Outside { .. })),
        "{e}"
    );
    let mine = arm.subscribe::<Pose>("**").unwrap();
    assert_eq!(mine.pattern(), "t.Pose@robot.arm.**");
    assert_eq!(mine.publisher_count(), 2);
    // Nothing bad was registered.
    assert_eq!(node.stats().intents, 2);
    assert_eq!(node.stats().interests, 2);

    for bad in ["", "a..b", "a.*", "sp ace", "../x", "a/b"] {
        assert!(
            matches!(node.scope(bad), Err(ScopeError::Name { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(arm.child(bad), Err(ScopeError::Name { .. })),
            "{bad:?}"
        );
    }
    let e = gripper.publish::<Pose>("../base").unwrap_err().to_string();
    assert!(
        e.starts_with("cannot publish: path \"../base\" in scope robot.arm.gripper"),
        "{e}"
    );
}

#[test]
fn closing_a_scope_withdraws_every_handle_and_tells_the_other_side() {
    let node = Node::new("t");
    let outside = node.scope("watch").unwrap();
    let robot = node.scope("robot").unwrap();
    let arm = robot.child("arm").unwrap();
    let watcher = node.subscribe::<Pose>("robot.**").unwrap();
    let listener = node.publish::<Pose>("robot.arm.cmd").unwrap();

    let p = arm.publish::<Pose>("pose").unwrap();
    let s = arm.subscribe::<Pose>("cmd").unwrap();
    let _srv = arm
        .serve::<Count, Count, _>("double", |c| Count { n: c.n * 2 })
        .unwrap();
    assert!(
        outside
            .call::<Count, Count>("/watch.none", Count { n: 1 }, Duration::ZERO)
            .is_err()
    );
    assert_eq!(
        node.call::<Count, Count>("robot.arm.double", Count { n: 4 }, WAIT)
            .unwrap(),
        Count { n: 8 }
    );
    assert_eq!(watcher.publisher_count(), 2); // `p` and `listener`
    assert_eq!(listener.interest_count(), 2); // `s` and `watcher`
    while listener.try_event().is_some() {}
    p.send(Pose { x: 1 }).unwrap();
    listener.send(Pose { x: 7 }).unwrap();

    robot.close();
    assert!(arm.is_closed());
    // The other side of every link knows before close returned.
    assert_eq!(watcher.publisher_count(), 1);
    assert_eq!(listener.interest_count(), 1);
    assert!(matches!(
        listener.try_event(),
        Some(LinkEvent::Unlinked { .. })
    ));
    // Clients stay with the node; every subscriber and server went.
    assert_eq!(node.stats().interests, 1); // `watcher` only
    assert!(matches!(
        node.call::<Count, Count>("robot.arm.double", Count { n: 4 }, Duration::ZERO),
        Err(CallError::NoServer { .. })
    ));

    // Using the handles afterwards: typed errors, never a panic.
    match p.send(Pose { x: 2 }) {
        Err(ScopeSendError::Closed { msg, scope, .. }) => {
            assert_eq!(msg, Pose { x: 2 });
            assert_eq!(scope, "robot.arm");
        }
        other => panic!("{other:?}"),
    }
    assert!(p.is_closed());
    // The subscriber drains what was queued, then reports closure.
    assert_eq!(s.recv_timeout(WAIT).unwrap().x, 7);
    assert!(matches!(
        s.recv_timeout(WAIT),
        Err(RecvTimeoutError::Closed { .. })
    ));
    assert!(matches!(
        arm.publish::<Pose>("again"),
        Err(ScopePublishError::Closed(_))
    ));
    assert!(matches!(arm.child("late"), Err(ScopeError::Closed { .. })));
    assert!(matches!(
        arm.call::<Count, Count>("double", Count { n: 1 }, WAIT),
        Err(ScopeCallError::Closed(_))
    ));
    let mut got = [
        watcher.recv_timeout(WAIT).unwrap().x,
        watcher.recv_timeout(WAIT).unwrap().x,
    ];
    got.sort_unstable();
    assert_eq!(got, [1, 7]);
}

#[test]
fn dropping_the_last_scope_handle_closes_it() {
    let node = Node::new("t");
    let sub = node.subscribe::<Pose>("**").unwrap();
    let scope = node.scope("a").unwrap();
    let again = scope.clone();
    let p = scope.child("b").unwrap().publish::<Pose>("x").unwrap();
    // The child scope handle was dropped: its publisher went with it.
    assert!(p.is_closed());
    let q = scope.publish::<Pose>("y").unwrap();
    drop(scope);
    assert!(!q.is_closed());
    assert_eq!(sub.publisher_count(), 1);
    drop(again);
    assert!(q.is_closed());
    assert_eq!(sub.publisher_count(), 0);
}

#[test]
fn a_denied_operation_never_links() {
    let node = Node::new("t");
    let sub = node.subscribe::<Pose>("**").unwrap();
    let pubr = node.publish::<Pose>("robot.arm.secret.key").unwrap();
    let robot = node.scope("robot").unwrap();
    let arm = robot.child("arm").unwrap();
    robot.set_policy(
        ScopePolicy::new()
            .deny(&[Op::Publish, Op::Subscribe], "arm.secret.**")
            .unwrap(),
    );
    // The child allows everything below it: it cannot widen the parent.
    arm.set_policy(ScopePolicy::new().allow(Op::ALL, "**").unwrap());
    let before = node.stats();

    let e = arm.publish::<Pose>("secret.key").unwrap_err();
    match &e {
        ScopePublishError::Denied(d) => {
            assert_eq!(d.op, Op::Publish);
            assert_eq!(d.scope, "robot");
            assert!(
                d.rule
                    .contains("deny publish,subscribe /robot.arm.secret.**"),
                "{d}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("is denied by rule"), "{e}");
    // A pattern that could reach a denied route is denied too.
    assert!(matches!(
        arm.subscribe::<Pose>("**"),
        Err(ScopeSubscribeError::Denied(_))
    ));
    assert!(matches!(
        arm.subscribe::<Pose>("*.key"),
        Err(ScopeSubscribeError::Denied(_))
    ));
    let after = node.stats();
    assert_eq!(after.intents, before.intents);
    assert_eq!(after.interests, before.interests);
    assert_eq!(after.links, before.links);
    assert_eq!(sub.publisher_count(), 1);
    assert_eq!(pubr.interest_count(), 1);
    assert_eq!(arm.info().counters.denied, 2 + 1);

    // What the policies allow still works.
    let ok = arm.publish::<Pose>("open").unwrap();
    assert_eq!(ok.interest_count(), 1);
    let ok_sub = arm.subscribe::<Pose>("open").unwrap();
    assert_eq!(ok_sub.publisher_count(), 1);

    // An allow list closes everything else; a child narrows it further.
    let base = node.scope("base").unwrap();
    base.set_policy(ScopePolicy::new().allow(&[Op::Publish], "motor.*").unwrap());
    assert!(base.publish::<Pose>("motor.left").is_ok());
    let e = base.publish::<Pose>("camera").unwrap_err().to_string();
    assert!(e.contains("its allow list of scope base"), "{e}");
    let motor = base.child("motor").unwrap();
    motor.set_policy(ScopePolicy::new().deny(&[Op::Publish], "right").unwrap());
    assert!(motor.publish::<Pose>("left").is_ok());
    assert!(motor.publish::<Pose>("right").is_err());
    // Serve and call are ruled on separately.
    base.set_policy(
        ScopePolicy::new()
            .deny(&[Op::Serve, Op::Call], "**")
            .unwrap(),
    );
    assert!(base.serve::<Count, Count, _>("svc", |c| c).is_err());
    assert!(
        base.call::<Count, Count>("svc", Count { n: 1 }, WAIT)
            .is_err()
    );
    assert!(base.publish::<Pose>("camera").is_ok());
}

#[test]
fn children_inherit_settings_and_the_cache_follows_ancestors() {
    let node = Node::new("t");
    let root = node.scope("r").unwrap();
    let mid = root.child("m").unwrap();
    let leaf = mid.child("l").unwrap();
    let cap = |s: &dndm::Scope| s.tree().get::<SubscribeOptions>().map(|o| format!("{o:?}"));
    assert_eq!(cap(&leaf), None); // cached as "none"
    root.set_subscribe_defaults(SubscribeOptions::new().capacity(4));
    let four = cap(&root);
    assert!(four.is_some());
    assert_eq!(cap(&leaf), four);
    mid.set_subscribe_defaults(SubscribeOptions::new().capacity(8));
    let eight = cap(&mid);
    assert_ne!(eight, four);
    assert_eq!(cap(&leaf), eight);
    mid.tree().unset::<SubscribeOptions>();
    assert_eq!(cap(&leaf), four);
    // A subscriber made in the leaf uses the inherited capacity.
    root.set_subscribe_defaults(SubscribeOptions::new().capacity(2).policy(Policy::Reject));
    let sub = leaf.subscribe::<Pose>("x").unwrap();
    let p = leaf.publish::<Pose>("x").unwrap();
    p.send(Pose { x: 1 }).unwrap();
    p.send(Pose { x: 2 }).unwrap();
    assert!(p.send(Pose { x: 3 }).is_err()); // full at 2
    assert_eq!(sub.try_recv().unwrap().x, 1);
}

#[test]
fn a_scope_closes_while_other_threads_publish_and_subscribe() {
    let node = Node::new("t");
    for round in 0..20 {
        let scope = node.scope("race").unwrap();
        let p = scope.publish::<Pose>("x").unwrap();
        let s = scope.subscribe::<Pose>("x").unwrap();
        let outside = node.subscribe::<Pose>("race.x").unwrap();
        let publisher = thread::spawn(move || {
            let mut sent = 0u32;
            loop {
                match p.send(Pose { x: sent }) {
                    Ok(()) => sent += 1,
                    Err(ScopeSendError::Closed { .. }) => return sent,
                    Err(e) => panic!("{e}"),
                }
            }
        });
        let receiver = thread::spawn(move || {
            let mut got = 0u32;
            while s.recv_timeout(WAIT).is_ok() {
                got += 1;
            }
            got
        });
        if round % 2 == 0 {
            thread::yield_now();
        }
        scope.close();
        assert_eq!(outside.publisher_count(), 0);
        let _ = publisher.join().unwrap();
        let _ = receiver.join().unwrap();
        assert_eq!(node.stats().intents, 0);
        assert_eq!(node.stats().interests, 1);
    }
}

#[test]
fn scopes_are_created_and_closed_from_many_threads() {
    let node = Node::new("t");
    let root = node.scope("root").unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let root = root.clone();
            thread::spawn(move || {
                for i in 0..200 {
                    let Ok(c) = root.child(&format!("c{t}_{i}")) else {
                        return;
                    };
                    match c.publish::<Pose>("x") {
                        Ok(p) => {
                            let _ = p.send(Pose { x: i });
                        }
                        Err(ScopePublishError::Closed(_)) => return,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(1));
    root.close();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(node.stats().intents, 0);
    assert!(root.info().children.is_empty());
}

#[test]
fn state_is_isolated_until_granted() {
    let node = Node::new("t");
    let robot = node.scope("robot").unwrap();
    let arm = robot.child("arm").unwrap();
    let grip = arm.child("grip").unwrap();
    let other = node.scope("other").unwrap();
    let mode = robot.state().key("mode", Count { n: 1 }).unwrap();

    assert!(grip.state_of("robot").is_err());
    assert!(other.state_of("robot").is_err());
    assert!(robot.grant(&other, Access::Read).is_err());
    assert!(robot.grant(&robot, Access::Read).is_err());
    robot.grant(&arm, Access::Read).unwrap();
    // A grant covers the grantee's descendants.
    let seen: Key<Count> = grip
        .state_of("robot")
        .unwrap()
        .key("mode", Count { n: 0 })
        .unwrap();
    assert_eq!(seen.get().unwrap().n, 1);
    assert!(matches!(
        seen.set(Count { n: 5 }),
        Err(WriteError::ReadOnly { .. })
    ));
    // A read-only handle cannot declare keys.
    assert!(
        grip.state_of("robot")
            .unwrap()
            .key("new", Count { n: 0 })
            .is_err()
    );
    robot.grant(&grip, Access::ReadWrite).unwrap();
    let writable = grip
        .state_of("robot")
        .unwrap()
        .key("mode", Count { n: 0 })
        .unwrap();
    writable.set(Count { n: 6 }).unwrap();
    assert_eq!(mode.get().unwrap().n, 6);
    // Another type under the same name is refused.
    assert!(
        robot
            .state()
            .key("mode", Name { s: String::new() })
            .is_err()
    );
    // The child's own state is its own.
    let arm_mode = arm.state().key("mode", Count { n: 100 }).unwrap();
    assert_eq!(arm_mode.get().unwrap().n, 100);
    assert_eq!(mode.get().unwrap().n, 6);
}

#[test]
fn observers_see_every_change_in_order_and_nothing_after_drop() {
    let node = Node::new("t");
    let scope = node.scope("s").unwrap();
    let state = scope.state();
    let k = state.key("k", Count { n: 0 }).unwrap();
    let obs = k.observe().unwrap();
    let writers: Vec<_> = (0..3)
        .map(|_| {
            let k = k.clone();
            thread::spawn(move || {
                for _ in 0..100 {
                    loop {
                        let n = k.get().unwrap().n;
                        // Not atomic: the versions still come in order.
                        if k.set(Count { n: n + 1 }).is_ok() {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    let mut last = 0;
    for _ in 0..300 {
        let c = obs.recv_timeout(WAIT).unwrap();
        assert_eq!(c.version, last + 1);
        last = c.version;
    }
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(k.version(), 300);
    assert!(obs.try_recv().is_err());
    assert_eq!(obs.missed(), 0);
    drop(obs);
    k.set(Count { n: 0 }).unwrap();
    assert_eq!(scope.info().state[0].observers, 0);

    let obs = k.observe().unwrap();
    scope.close();
    assert!(matches!(
        obs.recv_timeout(WAIT),
        Err(dndm::scopes::ObserveError::Closed { .. })
    ));
    assert!(k.get().is_err());
    assert!(matches!(
        k.set(Count { n: 1 }),
        Err(WriteError::Closed { .. })
    ));
}

#[test]
fn computed_values_follow_their_inputs_only() {
    let node = Node::new("t");
    let scope = node.scope("s").unwrap();
    let state = scope.state();
    let a = state.key("a", Count { n: 1 }).unwrap();
    let b = state.key("b", Count { n: 2 }).unwrap();
    let unrelated = state.key("c", Count { n: 0 }).unwrap();
    let (ia, ib) = (a.clone(), b.clone());
    let sum = state
        .computed("sum", &[&a, &b], move |i| Count {
            n: i.get(&ia).n + i.get(&ib).n,
        })
        .unwrap();
    assert_eq!(sum.get().unwrap().n, 3);
    let obs = sum.observe().unwrap();
    let base = state.recomputes();
    unrelated.set(Count { n: 9 }).unwrap();
    assert_eq!(state.recomputes(), base);
    assert!(obs.try_recv().is_err());
    a.set(Count { n: 10 }).unwrap();
    assert_eq!(state.recomputes(), base + 1);
    assert_eq!(obs.try_recv().unwrap().value.n, 12);
    // A batch of both inputs recomputes once and is seen once, whole.
    state
        .batch()
        .set(&a, Count { n: 100 })
        .set(&b, Count { n: 200 })
        .commit()
        .unwrap();
    assert_eq!(state.recomputes(), base + 2);
    assert_eq!(obs.try_recv().unwrap().value.n, 300);
    assert!(obs.try_recv().is_err());
    assert!(matches!(
        sum.set(Count { n: 0 }),
        Err(WriteError::Computed { .. })
    ));
}

#[test]
fn validators_refuse_writes_and_batches_whole() {
    let node = Node::new("t");
    let scope = node.scope("s").unwrap();
    let state = scope.state();
    let speed = state.key("speed", Count { n: 1 }).unwrap();
    let other = state.key("other", Count { n: 1 }).unwrap();
    speed
        .validate(|c| {
            if c.n <= 10 {
                Ok(())
            } else {
                Err(format!("{} is above 10", c.n))
            }
        })
        .unwrap();
    let e = speed.set(Count { n: 11 }).unwrap_err();
    assert_eq!(
        e.to_string(),
        "write to state key \"speed\" in scope s refused: 11 is above 10"
    );
    let e = state
        .batch()
        .set(&other, Count { n: 5 })
        .set(&speed, Count { n: 50 })
        .commit()
        .unwrap_err();
    assert!(matches!(e, WriteError::Invalid { .. }));
    assert_eq!(other.get().unwrap().n, 1);
    assert_eq!(speed.get().unwrap().n, 1);
    let foreign = node
        .scope("f")
        .unwrap()
        .state()
        .key("x", Count { n: 0 })
        .unwrap();
    assert!(matches!(
        state.batch().set(&foreign, Count { n: 1 }).commit(),
        Err(WriteError::ForeignKey { .. })
    ));
}

#[test]
fn snapshots_restore_and_refuse_other_schemas_and_corruption() {
    let node = Node::new("t");
    let scope = node.scope("s").unwrap();
    let state = scope.state();
    let a = state.key("a", Count { n: 1 }).unwrap();
    let name = state.key("name", Name { s: "arm".into() }).unwrap();
    let (ia, _) = (a.clone(), ());
    let twice = state
        .computed("twice", &[&a], move |i| Count {
            n: i.get(&ia).n * 2,
        })
        .unwrap();
    let bytes = state.snapshot().unwrap();
    a.set(Count { n: 7 }).unwrap();
    name.set(Name {
        s: "changed".into(),
    })
    .unwrap();
    let obs = a.observe().unwrap();
    state.restore(&bytes).unwrap();
    assert_eq!(a.get().unwrap().n, 1);
    assert_eq!(name.get().unwrap().s, "arm");
    assert_eq!(twice.get().unwrap().n, 2);
    assert_eq!(obs.try_recv().unwrap().value.n, 1);

    // Now change the state, then fail restores: nothing moves.
    a.set(Count { n: 42 }).unwrap();
    let version = a.version();
    let check_unchanged = || {
        assert_eq!(a.get().unwrap().n, 42);
        assert_eq!(a.version(), version);
        assert_eq!(name.get().unwrap().s, "arm");
    };
    // Another schema: a state with other keys.
    let other = node.scope("o").unwrap();
    other.state().key("a", Count { n: 3 }).unwrap();
    let foreign = other.state().snapshot().unwrap();
    assert!(matches!(
        state.restore(&foreign),
        Err(RestoreError::Schema { .. })
    ));
    check_unchanged();
    // Same names, another type.
    let typed = node.scope("p").unwrap();
    typed.state().key("a", Name { s: String::new() }).unwrap();
    typed
        .state()
        .key("name", Name { s: String::new() })
        .unwrap();
    let wrong = typed.state().snapshot().unwrap();
    assert!(matches!(
        state.restore(&wrong),
        Err(RestoreError::Schema { .. })
    ));
    check_unchanged();
    // Corruption: every truncation and a flipped byte everywhere.
    for len in 0..bytes.len() {
        assert!(state.restore(&bytes[..len]).is_err(), "truncated to {len}");
    }
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x5a;
        let _ = state.restore(&bad);
        // A flip in a value's payload may still decode; restore it back if
        // so, otherwise nothing changed.
        if a.version() != version {
            a.set(Count { n: 42 }).unwrap();
            name.set(Name { s: "arm".into() }).unwrap();
            break;
        }
    }
    let mut extra = bytes.clone();
    extra.extend_from_slice(&bytes);
    assert!(matches!(
        state.restore(&extra),
        Err(RestoreError::Corrupt { .. })
    ));
    assert!(matches!(
        state.restore(b"not a snapshot"),
        Err(RestoreError::Corrupt { .. })
    ));
    assert_eq!(a.get().unwrap().n, 42);
}

#[test]
fn a_snapshot_never_mixes_two_writes_of_a_batch() {
    let node = Node::new("t");
    let scope = node.scope("s").unwrap();
    let state = scope.state();
    let a = state.key("a", Count { n: 0 }).unwrap();
    let b = state.key("b", Count { n: 0 }).unwrap();
    let (wa, wb, ws) = (a.clone(), b.clone(), state.clone());
    let writer = thread::spawn(move || {
        for n in 1..=2000 {
            ws.batch()
                .set(&wa, Count { n })
                .set(&wb, Count { n })
                .commit()
                .unwrap();
        }
    });
    let probe = node.scope("probe").unwrap();
    let pa = probe.state().key("a", Count { n: 0 }).unwrap();
    let pb = probe.state().key("b", Count { n: 0 }).unwrap();
    for _ in 0..200 {
        let bytes = state.snapshot().unwrap();
        probe.state().restore(&bytes).unwrap();
        assert_eq!(pa.get().unwrap(), pb.get().unwrap());
    }
    writer.join().unwrap();
    let _ = (a, b);
}

#[test]
fn introspection_shows_the_tree_as_data_and_text() {
    let node = Node::new("t");
    let robot = node.scope("robot").unwrap();
    let arm = robot.child("arm").unwrap();
    robot.set_policy(ScopePolicy::new().deny(&[Op::Publish], "secret").unwrap());
    let _p = arm.publish::<Pose>("pose").unwrap();
    let _s = robot.subscribe::<Pose>("**").unwrap();
    let _k = arm.state().key("mode", Count { n: 0 }).unwrap();
    assert!(robot.publish::<Pose>("secret").is_err());
    let info = robot.info();
    assert_eq!(info.path, "robot");
    assert_eq!(info.handles.len(), 1);
    assert_eq!(info.handles[0].kind, HandleKind::Subscriber);
    assert_eq!(info.handles[0].links, 1);
    assert_eq!(info.policy.as_deref(), Some("deny publish /robot.secret"));
    assert_eq!(info.children.len(), 1);
    let arm_info = &info.children[0];
    assert_eq!(arm_info.handles[0].kind, HandleKind::Publisher);
    assert_eq!(arm_info.handles[0].target, "t.Pose@robot.arm.pose");
    assert_eq!(arm_info.handles[0].links, 1);
    assert_eq!(info.counters.denied, 1);
    assert_eq!(arm_info.state[0].name, "mode");
    let text = robot.to_string();
    assert!(text.contains("scope robot (depth 1)"), "{text}");
    assert!(text.contains("  scope robot.arm (depth 2)"), "{text}");
    assert!(
        text.contains("publisher t.Pose@robot.arm.pose (1 links)"),
        "{text}"
    );
    assert!(text.contains("state mode: t.Count v0"), "{text}");
    let _keep = Arc::new(());
}
