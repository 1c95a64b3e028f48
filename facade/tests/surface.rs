//! The public surface a first user touches: ids that compare with link
//! events, a glob import that leaves `::core` alone, schema mismatches that
//! reach the log.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
#![allow(
    clippy::disallowed_types,
    reason = "tests use std sync types like users do"
)]

use std::fmt::{Debug, Write as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dndm::prelude::*;
#[allow(unused_imports, reason = "the glob import is what is tested")]
use dndm::*;
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
#[message(name = "test.Num")]
struct Num {
    v: u64,
}

/// Same name as `Num`, another shape: a schema mismatch.
mod other {
    use super::*;
    #[derive(Archive, Serialize, Deserialize, Message, Clone, Debug, PartialEq)]
    #[message(name = "test.Num")]
    pub struct Num {
        pub v: u32,
        pub w: u32,
    }
}

const LONG: Option<Duration> = Some(Duration::from_secs(30));

#[test]
fn a_glob_import_of_dndm_leaves_core_alone() {
    // With `dndm::core` re-exported, `core` here would be ambiguous.
    assert_eq!(core::mem::size_of::<u64>(), 8);
    let (tx, rx) = chan::bounded::<u8>(1).unwrap();
    tx.send(1).unwrap();
    assert_eq!(rx.recv().unwrap(), 1);
}

#[test]
fn handle_ids_compare_with_the_ids_of_link_events() {
    let node = Node::new("t");
    let sub = node.subscribe::<Num>("a").unwrap();
    let publ = node.publish::<Num>("a").unwrap();
    let Some(LinkEvent::Linked {
        intent, interest, ..
    }) = publ.next_event(LONG)
    else {
        panic!("no link event");
    };
    assert!(publ.id() == intent && intent == publ.id());
    assert!(sub.id() == interest && interest == sub.id());
    assert_eq!(PublisherId::from(intent), publ.id());
    assert_eq!(SubscriberId::from(interest), sub.id());
    assert_eq!(router::IntentId::from(publ.id()), intent);
    assert_eq!(router::InterestId::from(sub.id()), interest);
    // Ids are opaque; their number survives a round trip.
    assert_eq!(publ.id().get(), intent.get());
    assert_eq!(sub.id().get(), interest.get());
    assert_eq!(router::IntentId::from_raw(intent.get()), intent);
    publ.send(Num { v: 1 }).unwrap();
    assert!(sub.recv().unwrap().publisher() == intent);
    let Some(LinkEvent::Linked { intent: i2, .. }) = sub.next_event(LONG) else {
        panic!("no link event");
    };
    assert_eq!(i2, intent);
}

/// Collects the text of every warning emitted on this thread.
struct Warnings(Arc<Mutex<Vec<String>>>);

struct Text(String);

impl tracing::field::Visit for Text {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut text = Text(String::new());
            event.record(&mut text);
            self.0.lock().unwrap().push(text.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn a_schema_mismatch_is_logged_as_a_warning() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    tracing::subscriber::with_default(Warnings(Arc::clone(&seen)), || {
        let node = Node::new("t");
        let _sub = node.subscribe::<Num>("m.*").unwrap();
        let publ = node.publish::<other::Num>("m.x").unwrap();
        assert_eq!(publ.interest_count(), 0, "no link across schemas");
    });
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "one warning per mismatched pair: {seen:?}");
    assert!(seen[0].contains("schema mismatch"), "{}", seen[0]);
    assert!(seen[0].contains("test.Num@m.x"), "{}", seen[0]);
}
