//! Member-made room keys on the simulator: between the registry moving a
//! room to a new epoch and that epoch's key reaching a member (the maker
//! seals it, the member fetches its package), the member sends nothing
//! under the old key, which the member who left still holds; what is said
//! meanwhile arrives, once and in order, when the key does. A joiner
//! waiting for its first key is let in the same way.

use super::scenarios::{ms, room_of, ROOM};
use super::{NetConfig, Sim};
use crate::protocol::datagram::Header;

#[test]
fn nothing_goes_out_under_an_ex_members_key_while_the_new_one_is_on_the_way() {
    let mut sim = Sim::new(4, 11, NetConfig::clean());
    sim.key_delay = ms(2000);
    room_of(&mut sim, 0..4);
    let end = sim.elapsed() + ms(5000);
    while sim.elapsed() < end && (0..4).any(|i| !sim.nodes[i].engine.has_key(ROOM)) {
        sim.run_for(ms(20));
    }
    for i in 0..4 {
        assert_eq!(sim.nodes[i].engine.members_of(ROOM).len(), 3, "{i}");
        assert!(sim.nodes[i].engine.has_key(ROOM), "{i}");
    }
    let old = sim.key(ROOM);
    sim.leave(3, ROOM);
    // The others learn of the new epoch at their next members poll; from
    // then on they wait for its key.
    let end = sim.elapsed() + ms(3000);
    while sim.elapsed() < end && (0..3).any(|i| sim.nodes[i].engine.has_key(ROOM)) {
        sim.run_for(ms(5));
    }
    assert!((0..3).all(|i| !sim.nodes[i].engine.has_key(ROOM)));
    sim.net.tap = Some(Vec::new());
    let mut sent = Vec::new();
    for k in 0..5 {
        let text = format!("while waiting #{k}");
        sim.say(0, ROOM, &text);
        sent.push(text);
        sim.run_for(ms(20));
    }
    // Everything arrives once the key does, once and in order.
    let a = sim.name(0);
    let end = sim.elapsed() + ms(5000);
    while sim.elapsed() < end && (1..3).any(|i| sim.received(i, ROOM, &a).len() < 5) {
        sim.run_for(ms(20));
    }
    for i in 1..3 {
        let got = sim.received(i, ROOM, &a);
        assert_eq!(&got[got.len() - 5..], sent.as_slice(), "member {i}");
        assert_eq!(sim.nodes[i].engine.epoch(ROOM), Some(old.epoch + 1));
    }
    assert!(sim
        .received(3, ROOM, &a)
        .iter()
        .all(|t| !t.starts_with("while")));
    let tap = sim.net.tap.take().unwrap_or_default();
    assert!(!tap.is_empty());
    for (to, bytes) in &tap {
        let h = Header::peek(bytes).expect("a datagram of ours");
        assert_ne!(
            h.epoch, old.epoch,
            "sent to {to} under the ex-member's epoch"
        );
    }
}

#[test]
fn a_joiner_waiting_for_its_key_sends_nothing_then_catches_up() {
    let mut sim = Sim::new(3, 5, NetConfig::clean());
    room_of(&mut sim, 0..2);
    sim.key_delay = ms(500);
    sim.net.tap = Some(Vec::new());
    sim.join(2, ROOM);
    assert!(!sim.nodes[2].engine.has_key(ROOM));
    sim.say(2, ROOM, "said before the key came");
    sim.run_for(ms(100));
    // Only its knock (epoch 0) left it so far.
    let c = sim.nodes[2].addr;
    let knocks = sim.net.tap.take().unwrap_or_default();
    let from_c: Vec<u64> = knocks
        .iter()
        .filter(|(to, _)| *to != c)
        .filter_map(|(_, b)| Header::peek(b).ok())
        .filter(|h| h.from == sim.name(2))
        .map(|h| h.epoch)
        .collect();
    assert!(
        !from_c.is_empty() && from_c.iter().all(|&e| e == 0),
        "{from_c:?}"
    );
    let end = sim.elapsed() + ms(5000);
    let c_name = sim.name(2);
    while sim.elapsed() < end && (0..2).any(|i| sim.received(i, ROOM, &c_name).is_empty()) {
        sim.run_for(ms(20));
    }
    for i in 0..2 {
        assert_eq!(sim.received(i, ROOM, &c_name), ["said before the key came"]);
    }
    assert!(sim.nodes[2].engine.has_key(ROOM));
}

#[test]
fn a_key_confirmed_unchanged_ends_the_wait_and_what_waited_goes_out() {
    let mut sim = Sim::new(2, 3, NetConfig::clean());
    room_of(&mut sim, 0..2);
    let now = sim.now;
    sim.nodes[0].engine.await_key(now, ROOM);
    sim.say(0, ROOM, "held while waiting");
    sim.run_for(ms(100));
    let a = sim.name(0);
    assert!(sim.received(1, ROOM, &a).is_empty());
    let now = sim.now;
    sim.nodes[0].engine.key_confirmed(now, ROOM);
    assert!(sim.nodes[0].engine.has_key(ROOM));
    let end = sim.elapsed() + ms(3000);
    while sim.received(1, ROOM, &a).is_empty() && sim.elapsed() < end {
        sim.run_for(ms(10));
    }
    assert_eq!(sim.received(1, ROOM, &a), ["held while waiting"]);
}
