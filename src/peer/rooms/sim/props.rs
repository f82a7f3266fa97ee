//! Property tests on the simulator: for any seed, network faults, room size,
//! churn and a short partition, every message reaches every member that
//! stayed, exactly once, in its sender's order.

use super::scenarios::{ms, room_of, settle, ROOM};
use super::{NetConfig, Sim};
use proptest::prelude::*;
use std::time::Duration;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_message_reaches_every_member_that_stayed_once_in_order(
        seed in any::<u64>(),
        loss in 0.0..0.3f64,
        dup in 0.0..0.3f64,
        reorder in 0.0..0.5f64,
        size in 3usize..9,
        messages in 1usize..80,
        leaver in any::<bool>(),
        killed in any::<bool>(),
        cut in 0u64..2000,
    ) {
        let mut sim = Sim::new(size, seed, NetConfig::lossy(loss, dup, reorder));
        room_of(&mut sim, 0..size);
        let senders: Vec<usize> = (0..size.min(4) - 1).collect();
        // The last members may leave or be killed half-way; the one before
        // them has its link to the first sender cut for a while.
        let mut stayed: Vec<usize> = (0..size).collect();
        let mut sent = vec![Vec::new(); senders.len()];
        let cut_pair = (0, size - 1 - usize::from(leaver) - usize::from(killed));
        let cut_pair = (cut_pair.1 > 0).then_some(cut_pair);
        for n in 0..messages {
            let k = n % senders.len();
            let text = format!("{} #{n} of seed {seed}", sim.name(senders[k]));
            sim.say(senders[k], ROOM, &text);
            sent[k].push(text);
            if n == messages / 2 {
                if leaver && stayed.len() > senders.len() {
                    let who = stayed.pop().unwrap();
                    sim.leave(who, ROOM);
                }
                if killed && stayed.len() > senders.len() {
                    let who = stayed.pop().unwrap();
                    sim.kill(who);
                }
                if let Some((a, b)) = cut_pair {
                    sim.partition(a, b, true);
                }
            }
            sim.run_for(ms(2));
            if n == messages / 2 {
                if let Some((a, b)) = cut_pair {
                    sim.run_for(ms(cut));
                    sim.partition(a, b, false);
                }
            }
        }
        settle(&mut sim, &senders, &sent, &stayed, Duration::from_secs(60));
        // Nothing shows up late, or twice, once things are quiet.
        sim.run_for(ms(3000));
        for &r in &stayed {
            for (k, &s) in senders.iter().enumerate() {
                if s != r {
                    prop_assert_eq!(sim.received(r, ROOM, &sim.name(s)), sent[k].as_slice());
                }
            }
        }
    }
}
