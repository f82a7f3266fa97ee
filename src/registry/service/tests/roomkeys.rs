//! `room_key`: member-made room keys, stored sealed for the current epoch
//! only, each member handed its own package.

use super::*;
use crate::identity::Identity;
use std::collections::BTreeMap;

/// A registered user logged in with identity keys (derived from `seed`).
fn keyed(t: &mut T, name: &str, port: u16, seed: u8) -> (Conn, String) {
    t.register(&[name]);
    let mut c = t.conn();
    let Request::Login {
        username,
        password,
        tcp_port,
        udp_port,
        advertise_ip,
        ..
    } = login(name, PW, port)
    else {
        unreachable!()
    };
    let req = Request::Login {
        username,
        password,
        tcp_port,
        udp_port,
        advertise_ip,
        keys: Some(Identity::from_secrets([seed; 32], [seed + 1; 32]).wire()),
    };
    match t.ok(&mut c, req) {
        ReplyBody::Session(s) => (c, s.token),
        other => panic!("login reply: {other:?}"),
    }
}

/// A package stand-in: the registry only checks its shape.
fn pkg(b: u8) -> String {
    format!("{b:02x}").repeat(80)
}

fn room_key(token: &str, room: &str, epoch: u64, packages: &[(&str, String)]) -> Request {
    Request::RoomKey {
        token: token.into(),
        room: room.into(),
        epoch,
        packages: packages
            .iter()
            .map(|(u, p)| (u.to_string(), p.clone()))
            .collect(),
    }
}

/// The error of a request, code and message.
fn error(t: &T, c: &mut Conn, req: Request) -> (ErrorCode, String) {
    let e = t.call(c, req).expect_err("an error");
    (e.code, e.message)
}

/// Three keyed users; alice made `lab`, bob joined it, carol did not.
fn lab() -> (T, [(Conn, String); 3]) {
    let mut t = T::new();
    let (mut a, ta) = keyed(&mut t, "alice", 7001, 1);
    let (mut b, tb) = keyed(&mut t, "bob", 7101, 3);
    let c = keyed(&mut t, "carol", 7201, 5);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    t.room(&mut b, room_op("join_room", &tb, "lab"));
    (t, [(a, ta), (b, tb), c])
}

#[test]
fn only_a_member_at_the_current_epoch_with_well_formed_packages_may_post() {
    let (t, [(mut a, ta), _, (mut c, tc)]) = lab();
    let one = [("alice", pkg(1))];
    assert_eq!(
        t.err(&mut c, room_key(&tc, "lab", 1, &one)),
        ErrorCode::NotAMember
    );
    assert_eq!(
        t.err(&mut c, room_key(&tc, "nope", 1, &one)),
        ErrorCode::NoSuchRoom
    );
    assert_eq!(
        t.err(&mut a, room_key(&ta, "Bad Room!", 1, &one)),
        ErrorCode::InvalidRoomName
    );
    for epoch in [0, 2, u64::MAX] {
        let (code, message) = error(&t, &mut a, room_key(&ta, "lab", epoch, &one));
        assert_eq!(code, ErrorCode::StaleEpoch, "{epoch}");
        assert!(message.contains("epoch 1"), "{message}");
    }
    let short = pkg(1)[2..].to_string();
    let long = format!("{}0", pkg(1));
    let not_hex = format!("{}zz", &pkg(1)[2..]);
    for bad in [String::new(), short, long, not_hex, "é".repeat(80)] {
        let (code, message) = error(&t, &mut a, room_key(&ta, "lab", 1, &[("bob", bad)]));
        assert_eq!(code, ErrorCode::BadRequest);
        assert!(message.contains("\"bob\""), "{message}");
    }
    // None of that made anyone the maker.
    assert_eq!(t.store.find_room("lab").unwrap().unwrap().key, "");
}

#[test]
fn the_first_member_to_post_makes_the_key_and_another_gets_key_exists() {
    let (t, [(mut a, ta), (mut b, tb), _]) = lab();
    let before = t.room(&mut b, room_op("members", &tb, "lab"));
    assert_eq!(before.key_maker, None);
    assert_eq!(before.needs_key, ["alice", "bob"]);
    let made = t.room(&mut a, room_key(&ta, "lab", 1, &[("alice", pkg(1))]));
    assert_eq!(made.key_maker.as_deref(), Some("alice"));
    assert_eq!(made.key_package, Some(pkg(1)));
    assert_eq!(made.needs_key, ["bob"]);
    let (code, message) = error(&t, &mut b, room_key(&tb, "lab", 1, &[("bob", pkg(2))]));
    assert_eq!(code, ErrorCode::KeyExists);
    assert!(message.contains("alice"), "{message}");
    // The maker posts again: adds bob, overwrites its own, upper case is fine
    // (stored in lower case); packages for non-members are dropped.
    let upper = pkg(0xab).to_uppercase();
    let again = room_key(
        &ta,
        "lab",
        1,
        &[
            ("bob", upper),
            ("alice", pkg(9)),
            ("carol", pkg(4)),
            ("zed", pkg(5)),
        ],
    );
    let now = t.room(&mut a, again);
    assert_eq!(now.key_package, Some(pkg(9)));
    assert_eq!(now.needs_key, Vec::<String>::new());
    let stored = t.store.find_room("lab").unwrap().unwrap().key;
    let keys = crate::registry::store::roomkeys::RoomKeys::parse(&stored);
    assert_eq!(keys.maker.as_deref(), Some("alice"));
    assert_eq!(
        keys.sealed,
        BTreeMap::from([("alice".into(), pkg(9)), ("bob".into(), pkg(0xab))])
    );
}

#[test]
fn each_member_sees_only_its_own_package_and_needs_key_shrinks() {
    let (mut t, [(mut a, ta), (mut b, tb), (mut c, tc)]) = lab();
    t.room(&mut c, room_op("join_room", &tc, "lab"));
    // A member without identity keys (a version-1 peer) is never waited for.
    let (mut d, td) = t.user("dave", 7301);
    t.room(&mut d, room_op("join_room", &td, "lab"));
    let r = t.room(&mut d, room_op("members", &td, "lab"));
    assert_eq!(r.needs_key, ["alice", "bob", "carol"]);
    let r = t.room(&mut a, room_key(&ta, "lab", 1, &[("alice", pkg(1))]));
    assert_eq!(r.needs_key, ["bob", "carol"]);
    let r = t.room(&mut a, room_key(&ta, "lab", 1, &[("carol", pkg(3))]));
    assert_eq!(r.needs_key, ["bob"]);
    t.room(&mut a, room_key(&ta, "lab", 1, &[("bob", pkg(2))]));
    for (conn, token, mine) in [
        (&mut a, &ta, Some(pkg(1))),
        (&mut b, &tb, Some(pkg(2))),
        (&mut c, &tc, Some(pkg(3))),
        (&mut d, &td, None),
    ] {
        let r = t.room(conn, room_op("members", token, "lab"));
        assert_eq!(r.key_package, mine, "{token}");
        assert_eq!(r.key_maker.as_deref(), Some("alice"));
        assert!(r.needs_key.is_empty(), "{:?}", r.needs_key);
        assert_eq!(r.epoch, Some(1));
    }
    // Someone outside sees none of it.
    let (mut e, te) = keyed(&mut t, "erin", 7401, 7);
    let r = t.room(&mut e, room_op("members", &te, "lab"));
    assert_eq!(
        (r.epoch, r.key_maker, r.key_package, r.needs_key),
        (None, None, None, vec![])
    );
}

#[test]
fn a_leave_clears_the_packages_and_a_join_only_adds_to_needs_key() {
    let (mut t, [(mut a, ta), (mut b, tb), (mut c, tc)]) = lab();
    let both = [("alice", pkg(1)), ("bob", pkg(2))];
    t.room(&mut a, room_key(&ta, "lab", 1, &both));
    // Carol joins: same epoch, same maker, and carol waits for a package.
    let r = t.room(&mut c, room_op("join_room", &tc, "lab"));
    assert_eq!(r.epoch, Some(1));
    assert_eq!(r.key_maker.as_deref(), Some("alice"));
    assert_eq!(
        (r.key_package, r.needs_key),
        (None, vec!["carol".to_string()])
    );
    // Alice, the maker, leaves: next epoch, no maker, no packages.
    t.ok(&mut a, room_op("leave_room", &ta, "lab"));
    let r = t.room(&mut b, room_op("members", &tb, "lab"));
    assert_eq!(r.epoch, Some(2));
    assert_eq!((r.key_maker, r.key_package), (None, None));
    assert_eq!(r.needs_key, ["bob", "carol"]);
    assert_eq!(t.store.find_room("lab").unwrap().unwrap().key, "");
    // The old epoch is gone; bob makes the new key.
    assert_eq!(
        t.err(&mut b, room_key(&tb, "lab", 1, &[("bob", pkg(2))])),
        ErrorCode::StaleEpoch
    );
    let r = t.room(&mut b, room_key(&tb, "lab", 2, &[("bob", pkg(6))]));
    assert_eq!(r.key_maker.as_deref(), Some("bob"));
    // A kick moves it on again.
    let kick = Request::Kick {
        token: tb.clone(),
        room: "lab".into(),
        username: "carol".into(),
        reason: String::new(),
    };
    t.ok(&mut b, kick);
    let r = t.room(&mut b, room_op("members", &tb, "lab"));
    assert_eq!((r.epoch, r.key_maker), (Some(3), None));
    // A session that ends (logout) does too, for the room it leaves.
    let (mut d, td) = keyed(&mut t, "dave", 7301, 9);
    t.room(&mut d, room_op("join_room", &td, "lab"));
    t.room(&mut b, room_key(&tb, "lab", 3, &[("bob", pkg(7))]));
    t.ok(&mut d, logout(&td));
    let r = t.room(&mut b, room_op("members", &tb, "lab"));
    assert_eq!((r.epoch, r.key_maker), (Some(4), None));
}

#[test]
fn racing_makers_give_exactly_one_maker_per_epoch() {
    let mut t = T::new();
    let mut users: Vec<(Conn, String)> = (0..4)
        .map(|i| {
            keyed(
                &mut t,
                &format!("user{i}"),
                7001 + 100 * i as u16,
                1 + 2 * i as u8,
            )
        })
        .collect();
    for round in 0..20 {
        let room = format!("r{round}");
        let (c, tok) = &mut users[0];
        t.room(c, room_op("create_room", tok, &room));
        for (c, tok) in users.iter_mut().skip(1) {
            t.room(c, room_op("join_room", tok, &room));
        }
        let results: Vec<Result<ReplyBody, ApiError>> = std::thread::scope(|s| {
            let handles: Vec<_> = users
                .iter_mut()
                .enumerate()
                .map(|(i, (c, tok))| {
                    let (t, room) = (&t, &room);
                    let name = format!("user{i}");
                    s.spawn(move || t.call(c, room_key(tok, room, 1, &[(&name, pkg(i as u8))])))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {results:?}");
        for r in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(r.code, ErrorCode::KeyExists, "round {round}: {r:?}");
        }
    }
}
