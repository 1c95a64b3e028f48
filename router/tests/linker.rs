//! The linker: fan-out, fan-in, schema checks, notifications and cleanup.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::sync::Arc;
use std::time::Duration;

use dndm_core::{Config, Receiver, Sender};
use dndm_router::{
    ChannelIntent, ChannelInterest, LinkError, LinkEvent, Linker, Route, RouteError, RouteKey,
    Selector,
};

fn sub(linker: &Linker, sel: &str, fp: u64) -> (Receiver<u32>, dndm_router::Interest) {
    let rx = Receiver::new(Config::new(64)).unwrap();
    let i = linker
        .add_interest(
            sel.parse().unwrap(),
            fp,
            Arc::new(ChannelInterest::new(rx.inlet())),
        )
        .unwrap();
    (rx, i)
}

fn publ(linker: &Linker, route: &str, fp: u64) -> (Sender<u32>, dndm_router::Intent) {
    let tx = Sender::new();
    let i = linker
        .add_intent(
            route.parse().unwrap(),
            fp,
            Arc::new(ChannelIntent::new(tx.downgrade())),
        )
        .unwrap();
    (tx, i)
}

#[test]
fn fan_out_and_fan_in() {
    let linker = Linker::new();
    let (rx1, s1) = sub(&linker, "T@a.*", 1);
    let (rx2, s2) = sub(&linker, "T@**", 1);
    let (tx1, p1) = publ(&linker, "T@a.x", 1);
    let (tx2, p2) = publ(&linker, "T@a.y", 1);
    let (_tx3, p3) = publ(&linker, "T@b", 1);
    assert_eq!(p1.interest_count(), 2);
    assert_eq!(p2.interest_count(), 2);
    assert_eq!(p3.interest_count(), 1);
    assert_eq!(s1.intent_count(), 2);
    assert_eq!(s2.intent_count(), 3);
    assert_eq!(linker.link_count(), 5);
    tx1.send(1).unwrap();
    tx2.send(2).unwrap();
    let mut got: Vec<u32> = rx1.drain().collect();
    got.sort();
    assert_eq!(got, [1, 2]);
    assert_eq!(rx2.drain().count(), 2);
    let feeders: Vec<String> = s1.feeders().iter().map(|(_, r)| r.to_string()).collect();
    assert_eq!(feeders, ["T@a.x", "T@a.y"]);
}

#[test]
fn notifications_first_and_last() {
    let linker = Linker::new();
    let (_tx, p) = publ(&linker, "T@a", 1);
    assert_eq!(p.interest_count(), 0);
    assert!(!p.wait_for_interest(Some(Duration::from_millis(1))));
    let (_rx1, s1) = sub(&linker, "T@a", 1);
    // A second publisher on a linked route also learns about the interest.
    let (_tx2, p2) = publ(&linker, "T@a", 1);
    assert!(matches!(p2.try_event(), Some(LinkEvent::Linked { .. })));
    assert_eq!(p2.interest_count(), 1);
    let (_rx2, s2) = sub(&linker, "T@*", 1);
    assert_eq!(p.interest_count(), 2);
    assert!(
        matches!(p.try_event(), Some(LinkEvent::Linked { interest, .. }) if interest == s1.id())
    );
    assert!(
        matches!(p.try_event(), Some(LinkEvent::Linked { interest, .. }) if interest == s2.id())
    );
    drop(s1);
    assert!(matches!(p.try_event(), Some(LinkEvent::Unlinked { .. })));
    assert_eq!(p.interest_count(), 1);
    drop(s2);
    assert_eq!(p.interest_count(), 0);
    assert_eq!(linker.link_count(), 0);
}

#[test]
fn schema_mismatch_links_nothing() {
    let linker = Linker::new();
    let (_rx, s) = sub(&linker, "T@a", 1);
    let (tx, p) = publ(&linker, "T@a", 2);
    assert_eq!(p.interest_count(), 0);
    let Some(LinkEvent::SchemaMismatch(m)) = p.try_event() else {
        panic!("expected a mismatch")
    };
    assert!(m.to_string().contains("T@a"), "{m}");
    assert!(matches!(s.try_event(), Some(LinkEvent::SchemaMismatch(_))));
    assert_eq!(tx.receiver_count(), 0);
    // Different type names never meet.
    let (_tx, p2) = publ(&linker, "U@a", 1);
    assert!(p2.try_event().is_none());
}

#[test]
fn incompatible_ports_fail_visibly() {
    let linker = Linker::new();
    let rx = Receiver::<u64>::new(Config::new(4)).unwrap();
    let s = linker
        .add_interest(
            "T@a".parse().unwrap(),
            1,
            Arc::new(ChannelInterest::new(rx.inlet())),
        )
        .unwrap();
    let (_tx, p) = publ(&linker, "T@a", 1);
    assert!(matches!(p.try_event(), Some(LinkEvent::Failed { .. })));
    assert!(matches!(s.try_event(), Some(LinkEvent::Failed { .. })));
    assert_eq!(linker.link_count(), 0);
}

#[test]
fn hashed_routes_need_the_key() {
    let linker = Linker::new();
    let key = RouteKey::derive(b"secret");
    let route = Route::hashed(&key, "T", "robot", "robot.arm").unwrap();
    let rx = Receiver::<u32>::new(Config::new(4)).unwrap();
    let _s = linker
        .add_interest(
            Selector::Hashed(route.clone()),
            1,
            Arc::new(ChannelInterest::new(rx.inlet())),
        )
        .unwrap();
    // A wildcard cannot see it.
    let (_rx2, wild) = sub(&linker, "T@**", 1);
    let tx = Sender::new();
    let p = linker
        .add_intent(route, 1, Arc::new(ChannelIntent::new(tx.downgrade())))
        .unwrap();
    assert_eq!(p.interest_count(), 1);
    assert_eq!(wild.intent_count(), 0);
    tx.send(5u32).unwrap();
    assert_eq!(rx.recv().unwrap(), 5);
    let wrong = Route::hashed(&RouteKey::derive(b"other"), "T", "robot", "robot.arm").unwrap();
    let (_tx, p2) = publ(&linker, &wrong.to_string(), 1);
    assert_eq!(p2.interest_count(), 0);
}

#[test]
fn close_unlinks_everything() {
    let linker = Linker::new();
    let (rx, s) = sub(&linker, "T@a", 1);
    let (tx, p) = publ(&linker, "T@a", 1);
    linker.close();
    assert_eq!(linker.link_count(), 0);
    assert_eq!(tx.receiver_count(), 0);
    assert!(p.is_closed() && s.is_closed());
    assert_eq!(p.interest_count(), 0);
    assert!(!p.wait_for_interest(None), "a closed intent does not wait");
    let e = linker
        .add_intent(
            "T@b".parse().unwrap(),
            1,
            Arc::new(ChannelIntent::new(tx.downgrade())),
        )
        .unwrap_err();
    assert!(matches!(e, LinkError::Closed { .. }));
    assert!(e.to_string().contains("T@b"));
    drop((p, s));
    drop(tx);
    assert!(rx.recv().is_err(), "the receiver sees the end");
}

#[test]
fn bad_input_is_typed() {
    for (input, needle) in [
        ("T@", "path is empty"),
        ("T@a..b", "segment 1 is empty"),
        ("T@a.b$", "reserved character"),
        ("@a", "type name is empty"),
        ("a.b", "expected"),
        ("p#zz", "hex"),
    ] {
        let e = input.parse::<Route>().unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(input), "{msg}");
        assert!(msg.contains(needle), "{msg}");
    }
    assert!(matches!(
        "T@a b".parse::<Route>(),
        Err(RouteError::SegmentChar { ch: ' ', .. })
    ));
    let long = vec!["a"; 40].join(".");
    assert!(matches!(
        Route::new("T", &long),
        Err(RouteError::TooManySegments { .. })
    ));
    assert!(
        "T@a.*".parse::<Route>().is_err(),
        "routes have no wildcards"
    );
}

/// Refuses links with peers' registrations on routes under `deny`, and
/// records what it was asked.
struct DenyPeers {
    deny: &'static str,
    asked: dndm_core::sync::Mutex<Vec<(dndm_router::session::Origin, String)>>,
}

impl dndm_router::LinkGuard for DenyPeers {
    fn admit(
        &self,
        other: dndm_router::session::Origin,
        link: dndm_router::LinkInfo<'_>,
    ) -> Result<(), String> {
        let route = link.route.to_string();
        self.asked.lock().unwrap().push((other, route.clone()));
        match other {
            dndm_router::session::Origin::Peer(_) if route.contains(self.deny) => {
                Err(format!("deny {route}"))
            }
            _ => Ok(()),
        }
    }
}

#[test]
fn guards_refuse_links_before_ports_connect() {
    use dndm_router::session::{NodeId, Origin};
    use dndm_router::{LinkGuard, PortError};

    let linker = Linker::new();
    let guard = Arc::new(DenyPeers {
        deny: "secret",
        asked: dndm_core::sync::Mutex::new(Vec::new()),
    });
    let peer = Origin::Peer(NodeId::from_bytes([7; 16]));
    // A guarded local subscriber; peers publish a public and a secret route.
    let rx = Receiver::<u32>::new(Config::new(8)).unwrap();
    let guarded = linker
        .add_interest_guarded(
            "T@**".parse().unwrap(),
            1,
            Arc::new(ChannelInterest::new(rx.inlet())),
            Arc::clone(&guard) as Arc<dyn LinkGuard>,
        )
        .unwrap();
    let peer_pub = |route: &str| {
        let tx = Sender::<u32>::new();
        let i = linker
            .add_intent_from(
                route.parse().unwrap(),
                1,
                Arc::new(ChannelIntent::new(tx.downgrade())),
                peer,
            )
            .unwrap();
        (tx, i)
    };
    let (public_tx, public) = peer_pub("T@a.public");
    let (secret_tx, secret) = peer_pub("T@a.secret");
    // A local publisher on the secret route links: the guard admits locals.
    let (local_tx, local) = publ(&linker, "T@a.secret", 1);
    assert_eq!(public.interest_count(), 1);
    assert_eq!(secret.interest_count(), 0);
    assert_eq!(local.interest_count(), 1);
    assert_eq!(guarded.intent_count(), 2);
    public_tx.send(1).unwrap();
    assert!(
        secret_tx.send(2).is_err(),
        "the refused intent reaches nobody"
    );
    local_tx.send(3).unwrap();
    let mut got: Vec<u32> = rx.drain().collect();
    got.sort();
    assert_eq!(got, [1, 3]);
    // Both sides hear of the refusal, with the guard's reason.
    let refused = std::iter::from_fn(|| secret.try_event())
        .find_map(|e| match e {
            LinkEvent::Failed {
                error: PortError::Refused { reason },
                ..
            } => Some(reason),
            _ => None,
        })
        .unwrap();
    assert_eq!(refused, "deny T@a.secret");
    assert!(std::iter::from_fn(|| guarded.try_event()).any(|e| matches!(
        e,
        LinkEvent::Failed {
            error: PortError::Refused { .. },
            ..
        }
    )));
    let asked = guard.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        [
            (peer, "T@a.public".to_string()),
            (peer, "T@a.secret".to_string()),
            (Origin::Local, "T@a.secret".to_string()),
        ]
    );

    // A guarded publisher: a peer's subscriber is put to the guard too.
    let tx = Sender::<u32>::new();
    let guarded_pub = linker
        .add_intent_guarded(
            "T@b.secret".parse().unwrap(),
            1,
            Arc::new(ChannelIntent::new(tx.downgrade())),
            Arc::clone(&guard) as Arc<dyn LinkGuard>,
        )
        .unwrap();
    let prx = Receiver::<u32>::new(Config::new(8)).unwrap();
    let peer_sub = linker
        .add_interest_from(
            "T@b.*".parse().unwrap(),
            1,
            Arc::new(ChannelInterest::new(prx.inlet())),
            peer,
        )
        .unwrap();
    assert_eq!(peer_sub.intent_count(), 0);
    // Only the local subscriber of `T@**`.
    assert_eq!(guarded_pub.interest_count(), 1);
    drop((guarded, guarded_pub, public, secret, local, peer_sub));
    assert_eq!(linker.link_count(), 0);
}
