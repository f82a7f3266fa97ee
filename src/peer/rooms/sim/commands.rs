//! The engine's commands, one by one, on the simulator: what each refuses
//! (typed) and what it asks of the registry.

use super::super::{Ask, Event, NotMember, SayError};
use super::scenarios::{ms, room_of, ROOM};
use super::{NetConfig, Sim};

/// What node `i` asked of the registry, but the regular member polls.
fn asks(sim: &Sim, i: usize) -> Vec<Ask> {
    sim.nodes[i]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Ask(Ask::Members(_)) => None,
            Event::Ask(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

/// Every member asks the registry for the room's members on a timer.
#[test]
fn members_are_polled_from_the_registry() {
    use super::super::engine::MEMBERS_POLL;
    let mut sim = Sim::new(2, 1, NetConfig::clean());
    room_of(&mut sim, 0..2);
    let polls = |sim: &Sim| {
        sim.nodes[0]
            .events
            .iter()
            .filter(|e| matches!(e, Event::Ask(Ask::Members(_))))
            .count()
    };
    let before = polls(&sim);
    sim.run_for(MEMBERS_POLL * 4);
    let n = polls(&sim) - before;
    assert!((3..=5).contains(&n), "{n} polls in 4 periods");
}

#[test]
fn commands_refuse_rooms_we_are_not_in_and_ask_the_registry() {
    let mut sim = Sim::new(3, 1, NetConfig::clean());
    room_of(&mut sim, 0..3);
    let now = sim.now;
    let e = &mut sim.nodes[0].engine;
    assert_eq!(e.say(now, "nowhere", "hi"), Err(SayError::NotMember));
    assert_eq!(e.leave(now, "nowhere"), Err(NotMember));
    assert_eq!(e.joined(), [ROOM]);

    // Session restored: one rejoin per room we are in.
    sim.nodes[0].engine.rejoin();
    sim.drain(0);
    assert_eq!(asks(&sim, 0), [Ask::Rejoin(ROOM.into())]);

    // Leaving tells the members (they see "left"), and the registry once
    // they have acknowledged it (the registry then re-keys the room).
    sim.leave(2, ROOM);
    assert!(!sim.nodes[2].engine.is_member(ROOM));
    assert!(!sim.nodes[2].engine.leaving_done());
    assert_eq!(asks(&sim, 2), []);
    sim.run_for(ms(200));
    assert_eq!(asks(&sim, 2), [Ask::Leave(ROOM.into())]);
    assert!(
        sim.nodes[2].engine.leaving_done(),
        "the leave was acknowledged"
    );
    for i in 0..2 {
        assert_eq!(
            sim.departures(i, ROOM),
            [("m002".into(), super::super::Gone::Left)]
        );
    }
    // A message to no one else is delivered at once.
    sim.leave(1, ROOM);
    sim.run_for(ms(200));
    let id = sim.say(0, ROOM, "alone");
    assert_eq!(sim.reports(0, ROOM)[&id], Ok(0));
    // Logging out forgets every room without a word.
    sim.nodes[0].engine.clear();
    assert!(sim.nodes[0].engine.joined().is_empty());
    assert_eq!(sim.nodes[0].engine.poll_timeout(), None);
}
