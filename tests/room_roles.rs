//! Room roles on the real wire: the registry binary enforces who may kick,
//! ban, invite, lock, set the topic and make operators, and who may join
//! (bans, the lock, the room password). Raw registry clients, so every
//! check is on the exact request and reply; `tests/room_kick.rs` has the
//! peers' side.

mod kit;

use kit::*;
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::time::Duration;

const BEAT: Duration = Duration::from_millis(500);

fn user(reg: &Registry, name: &str, port: u16) -> Session {
    Session::login(reg.addr(), name, port, port).with_heartbeats(BEAT)
}

fn code(s: &mut Session, req: Value) -> String {
    let r = s.request(req.clone());
    assert_eq!(r["ok"], json!(false), "{req} succeeded: {r}");
    r["code"].as_str().unwrap_or_default().to_string()
}

fn roles(s: &mut Session, room: &str) -> Value {
    s.ok(json!({"op": "members", "room": room}))["roles"].clone()
}

#[test]
fn a_member_who_is_not_an_operator_gets_a_clear_code_for_each_privileged_op() {
    let reg = Registry::start(&[]);
    let mut alice = user(&reg, "alice", 7001);
    let mut bob = user(&reg, "bob", 7002);
    let mut carol = user(&reg, "carol", 7003);
    let mut eve = user(&reg, "eve", 7004);
    alice.ok(json!({"op": "create_room", "room": "lab"}));
    bob.ok(json!({"op": "join_room", "room": "lab"}));
    carol.ok(json!({"op": "join_room", "room": "lab"}));
    assert_eq!(roles(&mut bob, "lab"), json!({"alice": "owner"}));

    let on = |op: &str| json!({"op": op, "room": "lab", "username": "carol"});
    for op in ["kick", "ban", "unban", "invite", "op", "deop"] {
        assert_eq!(code(&mut bob, on(op)), "not_operator", "{op}");
    }
    for op in ["lock", "unlock"] {
        assert_eq!(
            code(&mut bob, json!({"op": op, "room": "lab"})),
            "not_operator",
            "{op}"
        );
    }
    let topic = json!({"op": "set_topic", "room": "lab", "topic": "mine now"});
    assert_eq!(code(&mut bob, topic.clone()), "not_operator");
    // Not in the room at all.
    assert_eq!(code(&mut eve, on("kick")), "not_a_member");
    // Nothing changed: carol is still in, the room unlocked.
    let m = bob.ok(json!({"op": "members", "room": "lab"}));
    assert_eq!(names(&m["room"]["members"]), ["alice", "bob", "carol"]);
    assert_eq!(m.get("locked"), None, "{m}");

    // An operator may do those, but not to the owner, and not make operators.
    alice.ok(json!({"op": "op", "room": "lab", "username": "bob"}));
    assert_eq!(
        roles(&mut carol, "lab"),
        json!({"alice": "owner", "bob": "operator"})
    );
    bob.ok(topic);
    assert_eq!(code(&mut bob, on("op")), "not_owner");
    let kick_owner = json!({"op": "kick", "room": "lab", "username": "alice"});
    assert_eq!(code(&mut bob, kick_owner), "not_owner");
    assert_eq!(
        code(
            &mut bob,
            json!({"op": "ban", "room": "lab", "username": "alice"})
        ),
        "not_owner"
    );
    bob.ok(json!({"op": "lock", "room": "lab"}));
    bob.ok(json!({"op": "unlock", "room": "lab"}));
    // An operator kicks, bans, unbans and invites plain members.
    bob.ok(on("kick"));
    bob.ok(on("ban"));
    bob.ok(on("unban"));
    bob.ok(on("invite"));
    carol.ok(json!({"op": "join_room", "room": "lab"}));
    // Nobody acts on themselves.
    let own = json!({"op": "kick", "room": "lab", "username": "alice"});
    assert_eq!(code(&mut alice, own), "bad_request");
    alice.ok(json!({"op": "deop", "room": "lab", "username": "bob"}));
    assert_eq!(code(&mut bob, on("kick")), "not_operator");
    // The owner can take an operator out.
    alice.ok(json!({"op": "op", "room": "lab", "username": "carol"}));
    alice.ok(on("kick"));

    // Announcing needs --admin (this registry has none).
    let announce = json!({"op": "announce", "text": "hello all"});
    assert_eq!(code(&mut alice, announce), "not_admin");
}

#[test]
fn a_kick_rekeys_the_room_and_tells_the_kicked_member_why() {
    let reg = Registry::start(&[]);
    let mut alice = user(&reg, "alice", 7001);
    let mut bob = user(&reg, "bob", 7002);
    alice.ok(json!({"op": "create_room", "room": "lab"}));
    let before = bob.ok(json!({"op": "join_room", "room": "lab"}));
    let r = alice.ok(json!({
        "op": "kick", "room": "lab", "username": "bob", "reason": "spamming",
    }));
    assert_eq!(
        r,
        json!({"id": r["id"], "ok": true, "room": "lab", "action": "kick", "username": "bob"})
    );
    // The room moved to a new key epoch the kicked member is never told
    // (and is sealed no key of).
    let now = alice.ok(json!({"op": "members", "room": "lab"}));
    assert_eq!(
        now["room"]["epoch"].as_u64(),
        before["room"]["epoch"].as_u64().map(|e| e + 1)
    );
    let seen = bob.ok(json!({"op": "members", "room": "lab"}));
    assert_eq!(seen["room"].get("epoch"), None, "{seen}");
    assert_eq!(seen["room"].get("key_package"), None, "{seen}");
    assert_eq!(names(&seen["room"]["members"]), ["alice"]);
    assert_eq!(
        seen["kicked"],
        json!({"by": "alice", "reason": "spamming", "banned": false})
    );
    // A kick is not a ban: bob may come back (and the notice goes).
    bob.ok(json!({"op": "join_room", "room": "lab"}));
    let back = bob.ok(json!({"op": "members", "room": "lab"}));
    assert_eq!(back.get("kicked"), None, "{back}");
}

#[test]
fn a_banned_user_cannot_rejoin_and_a_locked_room_admits_only_the_invited() {
    let reg = Registry::start(&[]);
    let mut alice = user(&reg, "alice", 7001);
    let mut bob = user(&reg, "bob", 7002);
    let mut carol = user(&reg, "carol", 7003);
    let mut dave = user(&reg, "dave", 7004);
    alice.ok(json!({"op": "create_room", "room": "lab"}));
    bob.ok(json!({"op": "join_room", "room": "lab"}));

    // A ban of a member takes it out, as a kick does.
    alice.ok(json!({"op": "ban", "room": "lab", "username": "bob"}));
    let seen = bob.ok(json!({"op": "members", "room": "lab"}));
    assert_eq!(seen["kicked"]["banned"], json!(true), "{seen}");
    assert_eq!(names(&seen["room"]["members"]), ["alice"]);
    let join = json!({"op": "join_room", "room": "lab"});
    for _ in 0..2 {
        assert_eq!(code(&mut bob, join.clone()), "banned");
    }
    alice.ok(json!({"op": "unban", "room": "lab", "username": "bob"}));
    bob.ok(join.clone());

    // Locked: invite-only. An invite lets one user in, once.
    alice.ok(json!({"op": "lock", "room": "lab"}));
    assert_eq!(
        alice.ok(json!({"op": "members", "room": "lab"}))["locked"],
        json!(true)
    );
    assert_eq!(code(&mut carol, join.clone()), "room_locked");
    alice.ok(json!({"op": "invite", "room": "lab", "username": "carol"}));
    carol.ok(join.clone());
    assert_eq!(code(&mut dave, join.clone()), "room_locked");
    carol.ok(json!({"op": "leave_room", "room": "lab"}));
    assert_eq!(
        code(&mut carol, join.clone()),
        "room_locked",
        "invite used up"
    );
    alice.ok(json!({"op": "unlock", "room": "lab"}));
    dave.ok(join);
}

#[test]
fn a_wrong_room_password_is_refused_then_rate_limited() {
    let reg = Registry::start(&[]);
    let mut alice = user(&reg, "alice", 7001);
    let mut bob = user(&reg, "bob", 7002);
    let made = alice.ok(json!({"op": "create_room", "room": "exam", "password": "s3cret-pass"}));
    assert_eq!(made["password"], json!(true), "{made}");
    assert!(!made.to_string().contains("s3cret"), "{made}");
    // Hashed like account passwords: too short is refused the same way.
    assert_eq!(
        code(
            &mut alice,
            json!({"op": "create_room", "room": "x", "password": "short"})
        ),
        "weak_password"
    );

    let join = |pw: Option<&str>| match pw {
        Some(pw) => json!({"op": "join_room", "room": "exam", "password": pw}),
        None => json!({"op": "join_room", "room": "exam"}),
    };
    assert_eq!(code(&mut bob, join(None)), "room_password_required");
    let mut codes = Vec::new();
    for i in 0..6 {
        codes.push(code(&mut bob, join(Some(&format!("guess-{i}xx")))));
    }
    assert_eq!(
        codes,
        [
            "wrong_room_password",
            "wrong_room_password",
            "wrong_room_password",
            "wrong_room_password",
            "wrong_room_password",
            "rate_limited"
        ]
    );
    // Even the right password waits out the block from that address ...
    assert_eq!(code(&mut bob, join(Some("s3cret-pass"))), "rate_limited");
    // ... while another machine gets in with it at once.
    let mut carol = Client::connect_from(Ipv4Addr::new(127, 0, 0, 2), reg.port());
    carol.register("carol");
    let token = carol.login_token("carol", 7003);
    let r = carol
        .ok(json!({"op": "join_room", "token": token, "room": "exam", "password": "s3cret-pass"}));
    assert_eq!(names(&r["room"]["members"]), ["alice", "carol"]);
}

#[test]
fn ownership_passes_to_an_operator_then_to_the_longest_present_member() {
    let reg = Registry::start(&[]);
    let mut alice = user(&reg, "alice", 7001);
    let mut zed = user(&reg, "zed", 7002);
    let mut bob = user(&reg, "bob", 7003);
    let mut dave = user(&reg, "dave", 7004);
    alice.ok(json!({"op": "create_room", "room": "lab"}));
    // Join order: zed, bob, dave (not name order).
    for s in [&mut zed, &mut bob, &mut dave] {
        s.ok(json!({"op": "join_room", "room": "lab"}));
    }
    alice.ok(json!({"op": "op", "room": "lab", "username": "dave"}));
    alice.ok(json!({"op": "leave_room", "room": "lab"}));
    assert_eq!(roles(&mut bob, "lab"), json!({"dave": "owner"}));
    dave.ok(json!({"op": "leave_room", "room": "lab"}));
    assert_eq!(roles(&mut bob, "lab"), json!({"zed": "owner"}));
    // An owner whose session ends (its connection closes) hands on too.
    drop(zed);
    wait_until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        "bob owns lab after zed's connection closed",
        || roles(&mut bob, "lab") == json!({"bob": "owner"}),
    );
    // The new owner can moderate.
    bob.ok(json!({"op": "lock", "room": "lab"}));
}

#[test]
fn a_member_whose_session_ended_gets_back_into_a_locked_room() {
    let reg = Registry::start(&[]);
    let mut alice = user(&reg, "alice", 7001);
    let mut bob = user(&reg, "bob", 7002);
    alice.ok(json!({"op": "create_room", "room": "lab"}));
    bob.ok(json!({"op": "join_room", "room": "lab"}));
    alice.ok(json!({"op": "lock", "room": "lab"}));
    // bob's connection drops: its session goes offline and out of the room.
    drop(bob);
    wait_until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        "bob out of lab",
        || {
            let m = alice.ok(json!({"op": "members", "room": "lab"}));
            names(&m["room"]["members"]) == ["alice"]
        },
    );
    // Back (as its peer re-joins by itself after a reconnect): let in once.
    let mut bob = user(&reg, "bob", 7002);
    bob.ok(json!({"op": "join_room", "room": "lab"}));
    bob.ok(json!({"op": "leave_room", "room": "lab"}));
    assert_eq!(
        code(&mut bob, json!({"op": "join_room", "room": "lab"})),
        "room_locked",
        "a leave is not a session that ended"
    );
}
