//! Nothing lost across a blip (issue 16 item 7) on the simulator: two
//! members cut off from each other for longer than the liveness limit,
//! both sending meanwhile, drop each other from their live lists and,
//! once the link is back, each gets every message the other sent, once
//! and in order; and the room history each member keeps for latecomers
//! stays bounded and holds, through a blip and a lossy network, the last
//! texts of every sender, once each and in order.

use super::scenarios::{ms, room_of, settle, traffic, ROOM};
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
    // What the other missed came marked late: one run, to the end.
    for (me, s) in [(1, 0), (0, 1)] {
        let from = sim.name(s);
        let late = sim.received_late(me, ROOM, &from);
        let got = sim.received(me, ROOM, &from);
        assert!(late.len() >= 30, "{} late of {}", late.len(), got.len());
        assert!(got.ends_with(late), "{late:?}");
    }
    // The third member, never cut off, got both once, in order, none late.
    assert_eq!(sim.received(2, ROOM, &a), sent[0].as_slice());
    assert_eq!(sim.received(2, ROOM, &b), sent[1].as_slice());
    assert!(sim.received_late(2, ROOM, &a).is_empty());
    assert!(sim.received_late(2, ROOM, &b).is_empty());
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

#[test]
fn through_loss_duplication_and_reordering_exactly_the_missed_messages_come_marked_late() {
    for seed in 11..16 {
        missed_messages_come_marked_late(seed);
    }
}

fn missed_messages_come_marked_late(seed: u64) {
    let mut sim = Sim::new(3, seed, NetConfig::lossy(0.10, 0.05, 0.10));
    room_of(&mut sim, 0..3);
    let (a, b) = (sim.name(0), sim.name(1));
    let mut sent = Vec::new();
    let mut say = |sim: &mut Sim, phase: &str, n: usize| {
        for k in 0..n {
            let text = format!("{phase} #{k:02}");
            sim.say(0, ROOM, &text);
            sent.push(text);
            sim.run_for(ms(200));
        }
    };
    say(&mut sim, "before", 10);
    sim.partition(0, 1, true);
    say(&mut sim, "during", 40);
    assert!(sim.departures(0, ROOM).contains(&(b.clone(), Gone::Silent)));
    sim.partition(0, 1, false);
    let end = sim.elapsed() + Duration::from_secs(10);
    while !sim.members(0, ROOM).contains(&b) && sim.elapsed() < end {
        sim.run_for(ms(20));
    }
    say(&mut sim, "after", 10);
    let end = sim.elapsed() + Duration::from_secs(10);
    while sim.received(1, ROOM, &a).len() < sent.len() && sim.elapsed() < end {
        sim.run_for(ms(20));
    }
    assert_eq!(sim.received(1, ROOM, &a), sent.as_slice());
    let late = sim.received_late(1, ROOM, &a);
    // Late: one run of what was said while cut off, to its end; nothing
    // said before the cut or after the return.
    assert!(late.len() >= 20, "{late:?}");
    assert!(late.iter().all(|t| t.starts_with("during")), "{late:?}");
    let first = sent.iter().position(|t| *t == late[0]).unwrap_or(0);
    let during_end = sent.iter().filter(|t| !t.starts_with("after")).count();
    assert_eq!(late, &sent[first..during_end]);
    assert!(sim.received_late(2, ROOM, &a).is_empty());
}

#[test]
fn a_member_that_never_notes_the_late_notice_still_gets_what_it_missed_unmarked() {
    let mut sim = Sim::new(3, 13, NetConfig::clean());
    room_of(&mut sim, 0..3);
    let (a, b) = (sim.name(0), sim.name(1));
    // Every LATE datagram is lost: as with a peer that does not know it.
    sim.net.drop_kind = Some(5);
    sim.partition(0, 1, true);
    let mut sent = Vec::new();
    for k in 0..30 {
        let text = format!("during #{k:02}");
        sim.say(0, ROOM, &text);
        sent.push(text);
        sim.run_for(ms(200));
    }
    assert!(sim.departures(0, ROOM).contains(&(b.clone(), Gone::Silent)));
    sim.partition(0, 1, false);
    let back = sim.elapsed();
    let end = back + Duration::from_secs(10);
    while sim.received(1, ROOM, &a).len() < sent.len() && sim.elapsed() < end {
        sim.run_for(ms(20));
    }
    assert_eq!(sim.received(1, ROOM, &a), sent.as_slice());
    assert!(sim.received_late(1, ROOM, &a).is_empty());
    // Held for the notice's patience, not longer.
    let took = sim.elapsed() - back;
    assert!(took < Duration::from_secs(3), "{took:?}");
}

impl Sim {
    /// Every node keeps the last `limit` texts of each room (and at most
    /// 1 MiB of them), as a peer's `--room-history` does.
    pub fn keep_history(&mut self, limit: usize) {
        for n in &mut self.nodes {
            let store =
                crate::peer::history::Transcripts::new(limit, crate::peer::history::MAX_ROOM_BYTES);
            n.transcripts = Some(store);
        }
    }
}

#[test]
fn the_history_each_member_keeps_is_bounded_and_whole_through_a_blip_and_loss() {
    const KEPT: usize = 100;
    let all: Vec<usize> = (0..6).collect();
    let mut sim = Sim::new(6, 21, NetConfig::lossy(0.10, 0.05, 0.10));
    sim.keep_history(KEPT);
    room_of(&mut sim, 0..6);
    let senders = [0, 1, 2];
    let mut sent = traffic(&mut sim, &senders, 150, 3);
    // Node 3 is cut off from every other for 6 s (dropped as silent by
    // all) while the senders go on, then comes back.
    for j in (0..6).filter(|&j| j != 3) {
        sim.partition(3, j, true);
    }
    for k in 0..30 {
        for (n, &s) in senders.iter().enumerate() {
            let text = format!("{} cut #{k:02}", sim.name(s));
            sim.say(s, ROOM, &text);
            sent[n].push(text);
        }
        sim.run_for(ms(200));
    }
    for j in (0..6).filter(|&j| j != 3) {
        sim.partition(3, j, false);
    }
    let more = traffic(&mut sim, &senders, 60, 3);
    for (n, texts) in more.into_iter().enumerate() {
        sent[n].extend(texts);
    }
    settle(&mut sim, &senders, &sent, &all, Duration::from_secs(30));
    assert!(sim
        .departures(0, ROOM)
        .contains(&(sim.name(3), Gone::Silent)));
    let late: Vec<String> = senders
        .iter()
        .flat_map(|&s| sim.received_late(3, ROOM, &sim.name(s)).to_vec())
        .collect();
    assert!(!late.is_empty());
    let total: usize = sent.iter().map(Vec::len).sum();
    for i in all {
        let t = sim.nodes[i].transcripts.as_ref().unwrap();
        let (entries, bytes) = t.size(ROOM);
        assert_eq!(entries, KEPT.min(total), "{}", sim.name(i));
        assert!(bytes <= crate::peer::history::MAX_ROOM_BYTES);
        let history = t.last(ROOM, KEPT);
        // What it would give a latecomer: of each sender, the last of its
        // texts, once each and in its order (its own included), however
        // late some of them came.
        for (n, &s) in senders.iter().enumerate() {
            let from = sim.name(s);
            let mine: Vec<&String> = history
                .iter()
                .filter(|e| e.from == from)
                .map(|e| &e.text)
                .collect();
            let suffix: Vec<&String> = sent[n][sent[n].len() - mine.len()..].iter().collect();
            assert_eq!(mine, suffix, "{}'s history of {from}", sim.name(i));
        }
        if i == 3 {
            // Some of what it keeps came late.
            let kept_late = history.iter().filter(|e| late.contains(&e.text)).count();
            eprintln!(
                "node 3 keeps {kept_late} texts that came late ({} came late)",
                late.len()
            );
            assert!(kept_late > 0);
        }
    }
}
