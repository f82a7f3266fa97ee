//! Attacks on the room engine, on the simulator: forged, replayed and
//! foreign datagrams, a forged stream, a join under a name the registry
//! does not list, an ex-member holding an old key, and a member cut off
//! from everyone (who must be told who did not get its message).

use super::scenarios::{ms, room_of, ROOM};
use super::{Event, Gone, NetConfig, Sim};
use crate::protocol::datagram::{
    Body, Datagram, DecodeError, EventKind, Header, RoomKey, NONCE_LEN,
};

/// A DATA of one fragment in the room, its `msg_id` being its `seq`.
/// (`_to`: DATA goes to the room; the argument says who the test hands it to.)
pub(super) fn data(
    from: &str,
    _to: &str,
    stream: u64,
    seq: u64,
    event: EventKind,
    text: &str,
) -> Datagram {
    Datagram {
        room: ROOM.into(),
        from: from.into(),
        body: Body::Data {
            stream,
            seq,
            event,
            msg_id: seq,
            frag: 0,
            frags: 1,
            bytes: text.as_bytes().to_vec(),
        },
    }
}

/// `dg` sealed under `key` and signed by the sender it names (the test
/// plays that sender, or one that stole its signing key: what it checks
/// lies past the signature).
/// (These simulations sign with the cheap stand-in.)
fn seal(dg: &Datagram, key: &RoomKey, nonce: [u8; NONCE_LEN]) -> Vec<u8> {
    dg.encode(key, &nonce, super::auth::auth_for(&dg.from, false).as_ref())
}

/// Opens `b` under `key`, its signature unchecked.
fn open(b: &[u8], key: &RoomKey) -> Result<Datagram, DecodeError> {
    Datagram::open(b, Header::peek(b)?, key)
}

/// A nonce made of one repeated byte (tests need them distinct, not secret).
fn n(b: u8) -> [u8; NONCE_LEN] {
    [b; NONCE_LEN]
}

/// What `tests/rooms.rs` checks with a raw UDP socket, here with an
/// outsider address: garbage, a wrong key, a foreign room, a datagram
/// replayed to the wrong member, a stale stream, a non-member; then the
/// genuine datagrams still get through. Each drop shows in its counter.
#[test]
fn forged_replayed_and_foreign_datagrams_are_dropped() {
    let mut sim = Sim::new(2, 7, NetConfig::clean());
    room_of(&mut sim, 0..2);
    let mallory: std::net::SocketAddr = "10.9.9.9:5000".parse().unwrap();
    let counter = |sim: &Sim, name: &str| -> u64 {
        let v = serde_json::to_value(sim.nodes[1].engine.stats()).unwrap();
        v[name].as_u64().unwrap()
    };
    let expect_dropped = |sim: &mut Sim, bytes: &[u8], name: &str| {
        let before = counter(sim, name);
        sim.inject(1, mallory, bytes);
        assert_eq!(counter(sim, name), before + 1, "{name}");
    };

    expect_dropped(&mut sim, b"\x00garbage, not a datagram\xff", "malformed");
    let forged = data("m000", "m001", 1 << 50, 1, EventKind::Text, "wrong key");
    let wrong = RoomKey {
        key: [0x42; 32],
        ..sim.key(ROOM)
    };
    expect_dropped(&mut sim, &seal(&forged, &wrong, n(1)), "bad_tag");
    let old = RoomKey {
        epoch: wrong.epoch + 7,
        ..wrong
    };
    expect_dropped(&mut sim, &seal(&forged, &old, n(2)), "other_epoch");
    let other = Datagram {
        room: "elsewhere".into(),
        ..forged.clone()
    };
    expect_dropped(&mut sim, &seal(&other, &wrong, n(3)), "unknown_room");

    // Mallory joins the room through the registry, and so holds the key.
    let key = sim.register_outsider(ROOM, "mallory", mallory);
    let m_stream = 1 << 50;
    for _ in 0..2 {
        // The first join makes each member ask the registry (or the next
        // regular poll does); the second (a retransmission) finds mallory
        // on its list.
        for (i, to) in [(0, "m000"), (1, "m001")] {
            let join = data("mallory", to, m_stream, 1, EventKind::Join, "");
            sim.inject(i, mallory, &seal(&join, &key, n(4)));
        }
        sim.run_for(super::super::engine::MEMBERS_POLL + ms(10));
    }
    for i in 0..2 {
        assert!(sim.members(i, ROOM).contains(&"mallory".to_string()));
    }
    // A member talks; mallory gets its own copy.
    sim.say(0, ROOM, "secret one");
    sim.run_for(ms(50));
    assert_eq!(sim.received(1, ROOM, "m000"), ["secret one"]);
    let captured = sim
        .outside
        .iter()
        .map(|(_, _, b)| b.clone())
        .find(|b| {
            open(b, &key).is_ok_and(
                |d| matches!(d.body, Body::Data { ref bytes, .. } if bytes == b"secret one"),
            )
        })
        .expect("alice's DATA to mallory");
    // The same bytes went to every member: replayed, a duplicate.
    expect_dropped(&mut sim, &captured, "duplicates");
    // An acknowledgement meant for another member.
    let ack = Datagram {
        room: ROOM.into(),
        from: "mallory".into(),
        body: Body::Ack {
            to: "m000".into(),
            stream: 1,
            cum: 1,
            high: 1,
            unsynced: false,
            group: false,
            missing: Vec::new(),
        },
    };
    expect_dropped(&mut sim, &seal(&ack, &key, n(8)), "wrong_destination");
    // Claiming to be m000 on a stream older than its current one.
    let stale = data("m000", "m001", 1, 1, EventKind::Text, "stale stream");
    expect_dropped(&mut sim, &seal(&stale, &key, n(5)), "stale_stream");
    // From someone not in the room (and not joining): the registry
    // vouches for no key of eve's in it.
    let eve = data("eve", "m001", 1 << 50, 1, EventKind::Text, "non-member");
    expect_dropped(&mut sim, &seal(&eve, &key, n(6)), "unknown_sender");
    // Mallory, a member with the room key, posing as m000: its own
    // signature is not m000's.
    let posing = data("m000", "m001", 1 << 51, 1, EventKind::Text, "I am m000");
    let forged = posing.encode(&key, &n(9), sim.auth("mallory").as_ref());
    expect_dropped(&mut sim, &forged, "bad_signature");
    // Honest this time: mallory's own stream, next seq.
    let hello = data("mallory", "m001", m_stream, 2, EventKind::Text, "hello");
    sim.inject(1, mallory, &seal(&hello, &key, n(7)));
    assert_eq!(sim.received(1, ROOM, "m000"), ["secret one"]);
    assert_eq!(sim.received(1, ROOM, "mallory"), ["hello"]);
}

/// A member holding the key announces a join under a name the registry
/// does not list in the room ("admin"): it used to be let in on its valid
/// tag. Nobody adds it, however often it repeats, and nothing it sends
/// under that name is shown.
#[test]
fn a_join_under_a_name_the_registry_does_not_list_is_refused() {
    let mut sim = Sim::new(3, 21, NetConfig::clean());
    room_of(&mut sim, 0..3);
    let mallory: std::net::SocketAddr = "10.9.9.9:5000".parse().unwrap();
    let key = sim.register_outsider(ROOM, "mallory", mallory);
    for round in 0..5u8 {
        for (seq, event, text) in [(1, EventKind::Join, ""), (2, EventKind::Text, "I am admin")] {
            for i in 0..3 {
                let dg = data("admin", &sim.name(i), 1 << 50, seq, event, text);
                let nonce = n(round * 8 + seq as u8 + i as u8);
                sim.inject(i, mallory, &seal(&dg, &key, nonce));
            }
        }
        sim.run_for(ms(1100));
    }
    for i in 0..3 {
        assert!(!sim.members(i, ROOM).contains(&"admin".to_string()));
        assert!(sim.received(i, ROOM, "admin").is_empty());
        assert!(!sim.nodes[i]
            .events
            .iter()
            .any(|e| matches!(e, Event::MemberJoined { user, .. } if user == "admin")));
        // Nobody vouches for a key of "admin"'s: dropped before anything
        // else is looked at (and held for the registry's answer, once).
        assert!(sim.nodes[i].engine.stats().unknown_sender >= 10);
    }
}

/// A member leaves through the registry, which re-keys the room: the
/// others take up the new epoch and drop the ex-member from their lists
/// within 5 s, though it keeps pinging; it can no longer read what they
/// send (nothing to it, nothing under its key) nor post (its datagrams
/// under the old key are dropped).
#[test]
fn an_ex_member_can_neither_read_nor_post_after_it_leaves() {
    let mut sim = Sim::new(3, 23, NetConfig::clean());
    room_of(&mut sim, 0..3);
    let mallory: std::net::SocketAddr = "10.9.9.9:5000".parse().unwrap();
    let old = sim.register_outsider(ROOM, "mallory", mallory);
    let dg =
        |to: String, seq: u64, event, text: &str| data("mallory", &to, 1 << 50, seq, event, text);
    let mut nonce = 0u8;
    let mut send_all = |sim: &mut Sim, seq: u64, event, text: &str| {
        for i in 0..3 {
            nonce += 1;
            let bytes = seal(&dg(sim.name(i), seq, event, text), &old, n(nonce));
            sim.inject(i, mallory, &bytes);
        }
    };
    send_all(&mut sim, 1, EventKind::Join, "");
    sim.run_for(super::super::engine::MEMBERS_POLL + ms(10));
    send_all(&mut sim, 1, EventKind::Join, "");
    send_all(&mut sim, 2, EventKind::Text, "still a member");
    for i in 0..3 {
        assert_eq!(sim.received(i, ROOM, "mallory"), ["still a member"]);
    }
    sim.unregister_outsider(ROOM, "mallory");
    let left = sim.elapsed();
    let mut dropped_after = [None; 3];
    while dropped_after.iter().any(Option::is_none) && sim.elapsed() < left + ms(6000) {
        // Mallory keeps pinging under the key it still holds.
        for i in 0..3 {
            let ping = Datagram {
                body: Body::Ping,
                ..dg(sim.name(i), 0, EventKind::Text, "")
            };
            let bytes = seal(&ping, &old, n(200 + i as u8));
            sim.inject(i, mallory, &bytes);
        }
        sim.run_for(ms(100));
        for (i, d) in dropped_after.iter_mut().enumerate() {
            if d.is_none() && !sim.members(i, ROOM).contains(&"mallory".to_string()) {
                *d = Some(sim.elapsed() - left);
            }
        }
    }
    for (i, d) in dropped_after.iter().enumerate() {
        let d = d.unwrap_or_else(|| panic!("{} still sends to mallory", sim.name(i)));
        assert!(d <= ms(5000), "{d:?}");
        assert_eq!(sim.nodes[i].engine.epoch(ROOM), Some(sim.key(ROOM).epoch));
        assert!(sim
            .departures(i, ROOM)
            .contains(&("mallory".to_string(), Gone::NotListed)));
    }
    let outside_before = sim.outside.len();
    sim.say(0, ROOM, "after mallory left");
    send_all(&mut sim, 3, EventKind::Text, "posted with the old key");
    sim.run_for(ms(500));
    for i in 1..3 {
        assert_eq!(sim.received(i, ROOM, "m000"), ["after mallory left"]);
    }
    for i in 0..3 {
        assert_eq!(sim.received(i, ROOM, "mallory"), ["still a member"]);
        assert!(sim.nodes[i].engine.stats().other_epoch > 0);
    }
    // Whatever still reaches mallory's address opens under no key it has.
    assert!(sim.outside[outside_before..]
        .iter()
        .all(|(_, _, b)| open(b, &old).is_err()));
}

/// A member cut off from everyone (and from the registry) while it talks:
/// its list empties as the others fall silent, but its messages still had
/// addressees, the members the registry last listed, and are reported as
/// not delivered to them by name, never as "delivered 0/0".
#[test]
fn a_cut_off_member_is_told_who_did_not_get_its_message() {
    let mut sim = Sim::new(3, 25, NetConfig::clean());
    room_of(&mut sim, 0..3);
    sim.registry_down();
    sim.partition(0, 1, true);
    sim.partition(0, 2, true);
    sim.run_for(ms(5000));
    assert!(sim.members(0, ROOM).is_empty());
    let id = sim.say(0, ROOM, "anyone?");
    sim.run_for(ms(100));
    assert_eq!(
        sim.reports(0, ROOM).get(&id),
        Some(&Err(vec!["m001".to_string(), "m002".to_string()]))
    );
}

/// One forged datagram from a member holding the room key, claiming to be
/// m000 on a higher stream, used to make m001 drop every real datagram of
/// m000 after it as a replay, until m000 gave up on m001. Now m000's stream
/// goes on: every message arrives once, in order, and is acknowledged.
#[test]
fn a_forged_higher_stream_does_not_cut_a_member_off() {
    let mut sim = Sim::new(2, 11, NetConfig::clean());
    room_of(&mut sim, 0..2);
    sim.say(0, ROOM, "before");
    sim.run_for(ms(100));
    let key = sim.key(ROOM);
    let mallory: std::net::SocketAddr = "10.9.9.9:5000".parse().unwrap();
    for (stream, seq) in [(u64::MAX, 1), (1 << 62, 7)] {
        let forged = data("m000", "m001", stream, seq, EventKind::Text, "forged");
        sim.inject(1, mallory, &seal(&forged, &key, n(seq as u8)));
    }
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(sim.say(0, ROOM, &format!("after {n}")));
        sim.run_for(ms(20));
    }
    sim.run_for(ms(2000));
    let got: Vec<&String> = sim
        .received(1, ROOM, "m000")
        .iter()
        .filter(|t| t.as_str() != "forged")
        .collect();
    let want: Vec<String> = std::iter::once("before".to_string())
        .chain((0..20).map(|n| format!("after {n}")))
        .collect();
    assert_eq!(got, want.iter().collect::<Vec<_>>());
    let reports = sim.reports(0, ROOM);
    for id in ids {
        assert_eq!(reports.get(&id), Some(&Ok(1)), "message {id}: {reports:?}");
    }
    assert!(sim.members(0, ROOM).contains(&"m001".to_string()));
}
