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

#[test]
fn beyond_the_retention_window_a_member_gets_only_what_follows_its_return() {
    let mut sim = Sim::new(3, 9, NetConfig::clean());
    for i in 0..3 {
        sim.nodes[i].engine.set_retention(Duration::from_secs(2));
    }
    room_of(&mut sim, 0..3);
    let (a, b) = (sim.name(0), sim.name(1));
    sim.partition(0, 1, true);
    let mut during = Vec::new();
    for k in 0..40 {
        let text = format!("during #{k:02}");
        sim.say(0, ROOM, &text);
        during.push(text);
        sim.run_for(ms(200));
    }
    assert!(sim.departures(0, ROOM).contains(&(b.clone(), Gone::Silent)));
    sim.partition(0, 1, false);
    // Back after 8 s, well past 2 s: only what is said from now on.
    let end = sim.elapsed() + Duration::from_secs(10);
    while !sim.members(0, ROOM).contains(&b) && sim.elapsed() < end {
        sim.run_for(ms(20));
    }
    assert!(sim.members(0, ROOM).contains(&b));
    let after: Vec<String> = (0..5).map(|k| format!("after #{k}")).collect();
    for t in &after {
        sim.say(0, ROOM, t);
        sim.run_for(ms(20));
    }
    let end = sim.elapsed() + Duration::from_secs(10);
    while sim.received(1, ROOM, &a).len() < after.len() && sim.elapsed() < end {
        sim.run_for(ms(20));
    }
    let got = sim.received(1, ROOM, &a);
    assert!(got.ends_with(&after), "{got:?}");
    assert!(got.iter().all(|t| !t.starts_with("during")), "{got:?}");
    // The member never cut off got everything.
    let all: Vec<String> = during.iter().chain(&after).cloned().collect();
    assert_eq!(sim.received(2, ROOM, &a), all.as_slice());
}
