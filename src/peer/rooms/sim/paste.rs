//! Pastes on the simulator (issue 16 item 6): 2,000 messages said at once
//! reach every member once and in order, and the sender shows the run's
//! progress, including while a member is paused (a process stopped for a
//! moment, its socket buffer filling) and after it resumes.

use super::scenarios::{ms, room_of, ROOM};
use super::{NetConfig, Sim};
use crate::peer::rooms::Event;
use std::time::Duration;

impl Sim {
    /// Node `i` handles nothing for `d` (its datagrams wait in a buffer of
    /// `buffer`, the rest are dropped), then catches up at once.
    pub fn pause(&mut self, i: usize, d: Duration, buffer: usize) {
        let node = &mut self.nodes[i];
        node.per_datagram = Some(Duration::from_micros(5));
        node.backlog_max = buffer;
        node.busy_until = self.now + d;
        node.frozen_until = Some(self.now + d);
    }

    /// The `Sending` events node `i` reported for `room`: (done, total).
    pub fn sending(&self, i: usize, room: &str) -> Vec<(u64, u64)> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Sending {
                    room: r,
                    done,
                    total,
                } if r == room => Some((*done, *total)),
                _ => None,
            })
            .collect()
    }
}

const N: usize = 2000;

fn paste(sim: &mut Sim, tag: &str) -> Vec<String> {
    let texts: Vec<String> = (0..N).map(|k| format!("{tag} line {k:04}")).collect();
    for t in &texts {
        sim.say(0, ROOM, t);
    }
    texts
}

/// Runs until nodes 1 and 2 have `want` from node 0, or `limit` passes;
/// returns how long it took.
fn until_received(sim: &mut Sim, want: &[String], limit: Duration) -> Duration {
    let start = sim.elapsed();
    let from = sim.name(0);
    while sim.elapsed() - start < limit
        && !(1..3).all(|i| sim.received(i, ROOM, &from).len() >= want.len())
    {
        sim.run_for(ms(10));
    }
    for i in 1..3 {
        assert_eq!(sim.received(i, ROOM, &from), want, "{}", sim.name(i));
    }
    sim.elapsed() - start
}

#[test]
fn a_paste_arrives_once_in_order_with_progress_through_a_paused_member() {
    let mut sim = Sim::new(3, 6, NetConfig::clean());
    room_of(&mut sim, 0..3);
    let first = paste(&mut sim, "first");
    let took = until_received(&mut sim, &first, Duration::from_secs(10));
    sim.run_for(ms(100));
    assert_eq!(sim.sending(0, ROOM).last(), Some(&(N as u64, N as u64)));

    // Stopped for a second behind a small socket buffer: most of what is
    // sent to it meanwhile is lost, the tail of its window included.
    sim.pause(1, ms(1000), 16);
    let second = paste(&mut sim, "second");
    let mut both = first.clone();
    both.extend(second);
    let took_paused = until_received(&mut sim, &both, Duration::from_secs(20));
    sim.run_for(ms(100));
    let progress = sim.sending(0, ROOM);
    eprintln!(
        "{N} lines in {took:?}; with a member paused 1 s, {took_paused:?}; progress {progress:?}"
    );
    assert_eq!(progress.last(), Some(&(N as u64, N as u64)));
    assert!(progress.iter().any(|&(d, t)| t == N as u64 && d < t));
    assert!(sim.reports(0, ROOM).values().all(|r| *r == Ok(2)));
    // Caught up soon after it resumed (a lost tail repaired one seq per
    // time-out took minutes).
    assert!(took_paused < Duration::from_secs(4), "{took_paused:?}");
}
