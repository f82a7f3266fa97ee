//! What members are told when someone joins: a join is learnt twice, from
//! the registry's member list and from the joiner's own datagram, in either
//! order; the user is told once.

use super::scenarios::{ms, room_of, ROOM};
use super::{NetConfig, Sim};
use crate::peer::rooms::Event;

#[test]
fn a_join_is_shown_once_whichever_way_it_is_learnt_first() {
    for seed in 0..8 {
        let mut sim = Sim::new(3, 40 + seed, NetConfig::clean());
        room_of(&mut sim, 0..2);
        sim.join(2, ROOM);
        sim.run_for(ms(4000));
        for i in 0..2 {
            assert!(sim.members(i, ROOM).contains(&"m002".to_string()));
            let shown = sim.nodes[i]
                .events
                .iter()
                .filter(|e| matches!(e, Event::MemberJoined { user, .. } if user == "m002"))
                .count();
            assert_eq!(shown, 1, "seed {seed}: member {i} was told {shown} times");
        }
    }
}
