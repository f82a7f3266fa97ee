//! Store calls per operation, counted by [`CountingStore`]: each call is one
//! request to the database (one round trip on MongoDB). The table is the
//! contract; a change that adds a round trip to an operation fails here.

use super::*;
use std::collections::BTreeMap;

/// `method=calls` pairs, sorted, e.g. `"find_user=1 insert_session=1"`.
fn calls(t: &T) -> String {
    let counts: BTreeMap<&str, u64> = t.counts.take();
    let v: Vec<String> = counts.iter().map(|(m, n)| format!("{m}={n}")).collect();
    v.join(" ")
}

#[test]
fn store_calls_per_operation() {
    let mut t = T::new();
    let mut c = t.conn();
    let mut got: Vec<(&str, String)> = Vec::new();
    t.counts.take();

    t.ok(&mut c, register("alice", PW));
    got.push(("register", calls(&t)));
    t.register(&["bob"]);
    let mut b = t.conn();
    let tb = t.login(&mut b, "bob", 8001);
    t.counts.take();

    let ta = t.login(&mut c, "alice", 7001);
    got.push(("login", calls(&t)));
    for _ in 0..3 {
        t.ok(&mut c, heartbeat(&ta));
        t.ok(&mut b, heartbeat(&tb));
    }
    got.push(("heartbeat x6", calls(&t)));
    assert!(presence::flush(&t.reg));
    got.push(("heartbeat flush", calls(&t)));
    t.search(&mut c, &ta, "bob");
    got.push(("search online user", calls(&t)));
    t.register(&["carol"]);
    t.counts.take();
    t.search(&mut c, &ta, "carol");
    got.push(("search offline user", calls(&t)));
    t.err(&mut c, search(&ta, "nobody"));
    got.push(("search no user", calls(&t)));
    t.ok(&mut c, online(&ta));
    got.push(("online", calls(&t)));
    t.room(&mut c, room_op("create_room", &ta, "lab"));
    got.push(("create_room", calls(&t)));
    t.room(&mut b, room_op("join_room", &tb, "lab"));
    got.push(("join_room (2 members)", calls(&t)));
    t.room(&mut b, room_op("members", &tb, "lab"));
    got.push(("members (2 members)", calls(&t)));
    let room_key = Request::RoomKey {
        token: tb.clone(),
        room: "lab".into(),
        epoch: 1,
        packages: [("bob".to_string(), "0a".repeat(80))].into(),
    };
    t.room(&mut b, room_key);
    got.push(("room_key", calls(&t)));
    t.rooms(&mut b, &tb);
    got.push(("rooms", calls(&t)));
    let topic = |room: &str| Request::SetTopic {
        token: ta.clone(),
        room: room.into(),
        topic: "plans".into(),
    };
    t.ok(&mut c, topic("lab"));
    got.push(("set_topic", calls(&t)));
    t.err(&mut c, topic("nowhere"));
    got.push(("set_topic, no room", calls(&t)));
    let away = Request::SetAway {
        token: tb.clone(),
        away: "lunch".into(),
    };
    t.ok(&mut b, away);
    got.push(("set_away", calls(&t)));
    t.ok(&mut b, room_op("leave_room", &tb, "lab"));
    got.push(("leave_room", calls(&t)));
    // Past the re-check interval: one read, then none again until the next.
    t.clock.advance(RECHECK);
    t.ok(&mut c, heartbeat(&ta));
    got.push(("heartbeat, re-check due", calls(&t)));
    t.ok(&mut c, heartbeat(&ta));
    got.push(("heartbeat after re-check", calls(&t)));
    // A token that is not this connection's: a read, to say which error.
    t.err(&mut b, heartbeat(&ta));
    got.push(("someone else's token", calls(&t)));
    t.ok(&mut c, logout(&ta));
    got.push(("logout (1 room)", calls(&t)));
    t.reg.disconnected(&b);
    got.push(("connection closed (0 rooms)", calls(&t)));
    let mut b2 = t.conn();
    t.ok(&mut b2, resume(&tb, 8101));
    got.push(("resume", calls(&t)));

    let want = [
        ("register", "create_user=1 find_user=1"),
        ("login", "find_user=1 insert_session=1"),
        ("heartbeat x6", ""),
        ("heartbeat flush", "touch_sessions=1"),
        ("search online user", "find_user_with_session=1"),
        ("search offline user", "find_user_with_session=1"),
        ("search no user", "find_user_with_session=1"),
        ("online", "online_page=1"),
        // Room roles (see `roles.rs`): the policy is deleted (an earlier
        // room's) and written at creation; read, checked and written at a
        // join; read for each member list (roles, a kick notice).
        (
            "create_room",
            "create_room=1 delete_room_policy=1 find_room=1 members_with_sessions=1 \
             put_room_policy=1",
        ),
        (
            "join_room (2 members)",
            "add_member=1 find_room=1 members_with_sessions=1 put_room_policy=1 \
             room_members=1 room_policy=1",
        ),
        (
            "members (2 members)",
            "find_room=1 members_with_sessions=1 room_policy=1",
        ),
        // The room and members read, the keys swapped in, the policy read.
        (
            "room_key",
            "find_room=1 members_with_sessions=1 room_policy=1 swap_room_key=1",
        ),
        ("rooms", "list_rooms=1"),
        // Owner and operators only: the members and the policy first.
        ("set_topic", "room_members=1 room_policy=1 set_topic=1"),
        ("set_topic, no room", "room_members=1"),
        ("set_away", "set_away=1"),
        (
            "leave_room",
            "find_room=1 put_room_policy=1 remove_member=1 room_policy=1",
        ),
        ("heartbeat, re-check due", "session_by_token=1"),
        ("heartbeat after re-check", ""),
        ("someone else's token", "session_by_token=1"),
        (
            "logout (1 room)",
            "delete_room_policy=1 delete_session=1 remove_member=1 rooms_of=1",
        ),
        ("connection closed (0 rooms)", "detach_session=1 rooms_of=1"),
        ("resume", "attach_session=1 session_by_token=1"),
    ];
    let table = |v: &[(&str, String)]| {
        v.iter()
            .map(|(op, c)| format!("{op:30} {c}\n"))
            .collect::<String>()
    };
    let want: Vec<(&str, String)> = want.iter().map(|(o, c)| (*o, c.to_string())).collect();
    assert_eq!(table(&got), table(&want), "\ngot:\n{}", table(&got));
}

#[test]
fn a_store_read_per_recheck_interval_not_per_request() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    t.counts.take();
    // 20 requests over 10 s of heartbeats: one read every 2 s.
    for _ in 0..20 {
        t.clock.advance(ms(500));
        t.ok(&mut a, heartbeat(&ta));
        t.ok(&mut a, rooms(&ta));
    }
    let counts = t.counts.take();
    assert_eq!(counts.get("session_by_token"), Some(&5), "{counts:?}");
    assert_eq!(counts.get("list_rooms"), Some(&20), "{counts:?}");
}
