//! A kick as peers see it: the real `peer` binaries in a room on loopback.
//! The kicked peer is told who and why, drops the room and is not
//! re-joined; what the room says afterwards reaches the others and not it
//! (the registry re-keyed the room: see `tests/room_roles.rs`).

mod kit;

use kit::*;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

#[test]
fn a_kicked_member_gets_nothing_more_and_a_banned_one_cannot_rejoin() {
    let reg = Registry::start(&[]);
    let mut peers = login_all(reg.addr(), &["alice", "bob", "carol"], &PeerOpts::default());
    form_room(&mut peers, "lab", T);
    let [alice, bob, carol] = &mut peers[..] else {
        unreachable!()
    };

    // Before: bob hears alice.
    alice.send("before the kick");
    bob.expect(
        "message",
        &[("chat", "#lab"), ("text", "before the kick")],
        T,
    );

    // Not an operator: refused, with the registry's code.
    bob.send("/kick carol");
    bob.expect("error", &[("code", "not_operator")], T);

    alice.send("/kick bob spamming the room");
    alice.expect(
        "moderated",
        &[("room", "lab"), ("action", "kick"), ("user", "bob")],
        T,
    );
    // bob learns at its next member refresh (every 1.5 s).
    let k = bob.expect("kicked", &[("room", "lab")], T);
    assert_eq!(
        (&k["by"], &k["reason"], &k["banned"]),
        (&json!("alice"), &json!("spamming the room"), &json!(false)),
        "{k}"
    );
    alice.expect("member_left", &[("room", "lab"), ("user", "bob")], T);
    carol.expect("member_left", &[("room", "lab"), ("user", "bob")], T);

    // After: carol gets it, alice's delivery counts carol alone, bob
    // never sees it.
    alice.send("after the kick");
    carol.expect(
        "message",
        &[("chat", "#lab"), ("text", "after the kick")],
        T,
    );
    alice.expect(
        "delivery",
        &[
            ("room", json!("lab")),
            ("acked", json!(1)),
            ("total", json!(1)),
        ],
        T,
    );
    bob.expect_none(
        "message",
        &[("text", "after the kick")],
        Duration::from_secs(2),
    );

    // The member list shows the owner's role.
    carol.send("/members");
    let m = carol.expect("members", &[("room", "lab")], T);
    assert_eq!(m["roles"], json!({"alice": "owner"}), "{m}");

    // A ban keeps bob out.
    alice.send("/ban bob");
    alice.expect("moderated", &[("action", "ban"), ("user", "bob")], T);
    bob.send("/join lab");
    bob.expect("error", &[("code", "banned")], T);
    alice.send("/unban bob");
    alice.expect("moderated", &[("action", "unban"), ("user", "bob")], T);
    bob.send("/join lab");
    bob.expect("room_joined", &[("room", "lab")], T);
}

#[test]
fn a_password_room_and_a_locked_room_from_the_peer() {
    let reg = Registry::start(&[]);
    let mut peers = login_all(reg.addr(), &["alice", "bob", "carol"], &PeerOpts::default());
    let [alice, bob, carol] = &mut peers[..] else {
        unreachable!()
    };
    // Piped: the password is given on the line (a terminal asks for it).
    alice.send("/create exam --password s3cret-pass");
    alice.expect("room_joined", &[("room", "exam")], T);
    bob.send("/join exam");
    let e = bob.expect("error", &[("code", "room_password_required")], T);
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("/join exam --password"),
        "{e}"
    );
    bob.send("/join exam wrong-pass");
    bob.expect("error", &[("code", "wrong_room_password")], T);
    bob.send("/join exam --password s3cret-pass");
    bob.expect("room_joined", &[("room", "exam")], T);

    alice.send("/lock");
    alice.expect("moderated", &[("action", "lock")], T);
    carol.send("/join exam s3cret-pass");
    carol.expect("error", &[("code", "room_locked")], T);
    alice.send("/invite carol");
    alice.expect("moderated", &[("action", "invite"), ("user", "carol")], T);
    // An invite gets past the lock and the password.
    carol.send("/join exam");
    carol.expect("room_joined", &[("room", "exam")], T);
}
