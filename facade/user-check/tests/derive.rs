//! The derived message works end to end through the facade alone.

use dndm::prelude::*;
use dndm_user_check::Temperature;

#[test]
fn derived_message_travels_through_a_node() -> Result<(), dndm::Error> {
    assert_eq!(<Temperature as Message>::TYPE_NAME, "check.Temperature");
    assert_eq!(<Temperature as Message>::VERSION, 2);
    let node = Node::new("check");
    let sub = node.subscribe::<Temperature>("check.*")?;
    let publisher = node.publish::<Temperature>("check.kitchen")?;
    let reading = Temperature {
        celsius: 21.5,
        room: "kitchen".into(),
    };
    publisher.send(reading.clone())?;
    assert_eq!(*sub.recv()?, reading);
    Ok(())
}
