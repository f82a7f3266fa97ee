//! Nothing lost across a blip (issue 16 item 7) on the simulator: two
//! members cut off from each other for longer than the liveness limit,
//! both sending meanwhile, drop each other from their live lists and,
//! once the link is back, each gets every message the other sent, once
//! and in order.

use super::scenarios::{ms, room_of, ROOM};
use super::{NetConfig, Sim};
use crate::peer::rooms::Gone;
use std::time::Duration;

#[test]
fn a_member_cut_off_for_ten_seconds_gets_everything_it_missed_once_in_order() {
    let mut sim = Sim::new(3, 7, NetConfig::clean());
    room_of(&mut sim, 0..3);
    let mut sent = [Vec::new(), Vec::new()];
    sim.partition(0, 1, true);
    // 10 s of cut, 5 messages a second from each side.
    for k in 0..50 {
        for (s, texts) in sent.iter_mut().enumerate() {
            let text = format!("{} #{k:02}", sim.name(s));
            sim.say(s, ROOM, &text);
            texts.push(text);
        }
        sim.run_for(ms(200));
    }
    // Each dropped the other from its live list meanwhile.
    let (a, b) = (sim.name(0), sim.name(1));
    assert!(sim.departures(0, ROOM).contains(&(b.clone(), Gone::Silent)));
    assert!(sim.departures(1, ROOM).contains(&(a.clone(), Gone::Silent)));
    sim.partition(0, 1, false);
    let end = sim.elapsed() + Duration::from_secs(10);
    let done = |sim: &Sim| {
        sim.received(1, ROOM, &a).len() >= sent[0].len()
            && sim.received(0, ROOM, &b).len() >= sent[1].len()
    };
    while !done(&sim) && sim.elapsed() < end {
        sim.run_for(ms(20));
    }
    assert_eq!(sim.received(1, ROOM, &a), sent[0].as_slice());
    assert_eq!(sim.received(0, ROOM, &b), sent[1].as_slice());
    // The third member, never cut off, got both once, in order.
    assert_eq!(sim.received(2, ROOM, &a), sent[0].as_slice());
    assert_eq!(sim.received(2, ROOM, &b), sent[1].as_slice());
    assert!(sim.members(0, ROOM).contains(&b) && sim.members(1, ROOM).contains(&a));
}
