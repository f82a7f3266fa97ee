//! Room topics and away messages on the real wire: the `registry` binary,
//! raw NDJSON over TCP. Only members set a topic, which is bounded in
//! length; it comes back in `join_room`, `members` and `rooms` replies.
//! An away message shows in `search` and `online`.

mod kit;

use kit::*;
use lanchat::protocol::{RoomInfo, UserInfo};
use serde_json::json;

/// A connection logged in as a new user `name`, and its token.
fn logged_in(r: &Registry, name: &str, tcp: u16) -> (Client, String) {
    let mut c = r.client();
    c.register(name);
    let token = c.login_token(name, tcp);
    (c, token)
}

#[test]
fn only_members_set_a_topic_and_everyone_joining_sees_it() {
    let r = Registry::start(LONG_SESSIONS);
    let ((mut a, ta), (mut b, tb)) = (logged_in(&r, "alice", 7001), logged_in(&r, "bob", 7011));
    a.ok(json!({"op": "create_room", "token": ta, "room": "lab"}));

    // No topic yet: the reply has none.
    let joined = b.ok(json!({"id": 1, "op": "join_room", "token": tb, "room": "lab"}));
    assert!(joined.get("topic").is_none(), "{joined}");
    b.ok(json!({"op": "leave_room", "token": tb, "room": "lab"}));

    // A non-member cannot set it; nor can anyone on a missing room.
    let set = |t: &str, room: &str, topic: &str| json!({"id": 7, "op": "set_topic", "token": t, "room": room, "topic": topic});
    let reply = b.request(set(&tb, "lab", "pwned"));
    assert_eq!(reply["code"], "not_a_member", "{reply}");
    assert_eq!(
        reply["message"], "only members of room lab can set its topic",
        "{reply}"
    );
    b.expect_err(set(&tb, "nowhere", "x"), "no_such_room");
    a.expect_err(set(&ta, "bad name!", "x"), "invalid_room_name");

    // Too long: a clear code, and the topic stays as it was.
    let long = "x".repeat(301);
    let reply = a.request(set(&ta, "lab", &long));
    assert_eq!(reply["code"], "topic_too_long", "{reply}");
    assert_eq!(
        reply["message"],
        "a topic is at most 300 bytes (this one is 301)"
    );

    // A member sets it: the reply says it, with who set it.
    let reply = a.ok(set(&ta, "lab", "  plans for friday "));
    assert_eq!(
        reply,
        json!({"id": 7, "ok": true, "room": "lab",
               "topic": {"text": "plans for friday", "by": "alice"}})
    );
    // Beside the room (not in it), in join, members and rooms replies.
    let joined = b.ok(json!({"op": "join_room", "token": tb, "room": "lab"}));
    assert_eq!(
        joined["topic"],
        json!({"text": "plans for friday", "by": "alice"}),
        "{joined}"
    );
    // The room object itself is as before: a peer written before topics
    // (whose `RoomInfo` denies unknown fields) still reads the reply.
    let room: Result<RoomInfo, _> = serde_json::from_value(joined["room"].clone());
    assert!(room.is_ok(), "{joined}");
    let members = a.ok(json!({"op": "members", "token": ta, "room": "lab"}));
    assert_eq!(members["topic"]["text"], "plans for friday", "{members}");
    let rooms = b.ok(json!({"id": 9, "op": "rooms", "token": tb}));
    assert_eq!(
        rooms,
        json!({"id": 9, "ok": true, "rooms": [{"name": "lab", "members": 2}],
               "topics": {"lab": "plans for friday"}})
    );

    // Only the owner and operators set it (see tests/room_roles.rs).
    assert_eq!(b.request(set(&tb, "lab", ""))["code"], "not_operator");
    a.ok(json!({"op": "op", "token": ta, "room": "lab", "username": "bob"}));
    // Cleared: absent again.
    let reply = b.ok(set(&tb, "lab", ""));
    assert_eq!(
        reply,
        json!({"id": 7, "ok": true, "room": "lab", "topic": null})
    );
    let rooms = b.ok(json!({"op": "rooms", "token": tb}));
    assert!(rooms.get("topics").is_none(), "{rooms}");
}

#[test]
fn an_away_message_shows_in_search_and_online() {
    let r = Registry::start(LONG_SESSIONS);
    let ((mut a, ta), (mut b, tb)) = (logged_in(&r, "alice", 7001), logged_in(&r, "bob", 7011));

    let reply = a.ok(json!({"id": 3, "op": "set_away", "token": ta, "away": "lunch, back at 2"}));
    assert_eq!(reply, json!({"id": 3, "ok": true}));
    let found = b.ok(json!({"op": "search", "token": tb, "username": "alice"}));
    assert_eq!(found["away"], "lunch, back at 2", "{found}");
    // Beside the user, which is as before (for older peers).
    let user: Result<UserInfo, _> = serde_json::from_value(found["user"].clone());
    assert!(user.is_ok(), "{found}");
    let online = b.ok(json!({"op": "online", "token": tb}));
    assert_eq!(
        online["away"],
        json!({"alice": "lunch, back at 2"}),
        "{online}"
    );

    let long = "y".repeat(201);
    let reply = a.request(json!({"op": "set_away", "token": ta, "away": long}));
    assert_eq!(reply["code"], "away_too_long", "{reply}");

    // Back: no away field at all.
    a.ok(json!({"op": "set_away", "token": ta}));
    let found = b.ok(json!({"op": "search", "token": tb, "username": "alice"}));
    assert!(found.get("away").is_none(), "{found}");
    let online = b.ok(json!({"op": "online", "token": tb}));
    assert!(online.get("away").is_none(), "{online}");

    // Not without a session.
    a.expect_err(
        json!({"op": "set_away", "token": "0".repeat(64), "away": "x"}),
        "invalid_session",
    );
}
