//! The room engine with real Ed25519 signatures (the large simulations use
//! a cheap stand-in): a member holding the room key cannot pass anything
//! off as another member's, and captured datagrams replayed do no harm.

use super::scenarios::{ms, room_of, ROOM};
use super::{NetConfig, Sim};
use crate::protocol::datagram::{EventKind, NONCE_LEN};

#[test]
fn with_real_signatures_a_member_cannot_forge_and_replays_do_no_harm() {
    let mut sim = Sim::new(4, 31, NetConfig::clean()).with_signatures();
    room_of(&mut sim, 0..4);
    // Mallory is a member (the registry lists her, with her own keys).
    let mallory: std::net::SocketAddr = "10.9.9.9:5000".parse().unwrap();
    let key = sim.register_outsider(ROOM, "mallory", mallory);
    sim.run_for(super::super::engine::MEMBERS_POLL + ms(100));
    for n in 0..5 {
        sim.say(0, ROOM, &format!("real {n}"));
    }
    sim.run_for(ms(300));
    let real: Vec<String> = (0..5).map(|n| format!("real {n}")).collect();
    // She signs as herself a text naming m000, on m000's own stream and on
    // a new one, and a "leave" naming m001.
    let me = super::auth::identity("mallory");
    let forge = |from: &str, stream, seq, event, nonce: u8| {
        super::attacks::data(from, "", stream, seq, event, "forged").encode(
            &key,
            &[nonce; NONCE_LEN],
            &me,
        )
    };
    let before: Vec<u64> = (0..4)
        .map(|i| sim.nodes[i].engine.stats().bad_signature)
        .collect();
    for i in 1..4 {
        sim.inject(
            i,
            mallory,
            &forge("m000", 1 << 40 | 1, 6, EventKind::Text, 1),
        );
        sim.inject(i, mallory, &forge("m000", 1 << 60, 1, EventKind::Text, 2));
        sim.inject(i, mallory, &forge("m001", 1 << 60, 1, EventKind::Leave, 3));
    }
    sim.run_for(ms(300));
    for (i, was) in before.iter().enumerate().skip(1) {
        assert_eq!(sim.received(i, ROOM, "m000"), real, "node {i}");
        assert_eq!(sim.nodes[i].engine.stats().bad_signature, was + 3);
    }
    for i in [0, 2, 3] {
        assert!(sim.members(i, ROOM).contains(&"m001".to_string()));
    }
    // Everything that reached mallory (DATA, pings, acks and syncs for
    // her), replayed to every member three times: nothing is shown twice,
    // nobody is dropped, and the room goes on exactly once, in order.
    let captured: Vec<Vec<u8>> = sim.outside.iter().map(|(_, _, b)| b.clone()).collect();
    assert!(!captured.is_empty());
    for _ in 0..3 {
        for b in &captured {
            for i in 0..4 {
                sim.inject(i, mallory, b);
            }
        }
        sim.run_for(ms(100));
    }
    for n in 5..10 {
        sim.say(0, ROOM, &format!("real {n}"));
    }
    sim.run_for(ms(500));
    let all: Vec<String> = (0..10).map(|n| format!("real {n}")).collect();
    for i in 1..4 {
        assert_eq!(sim.received(i, ROOM, "m000"), all, "node {i}");
        assert_eq!(sim.members(i, ROOM).len(), 4, "node {i}");
    }
    let reports = sim.reports(0, ROOM);
    assert!(reports.values().all(|r| r == &Ok(4)), "{reports:?}");
}
