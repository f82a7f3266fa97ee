//! Rooms: create, join, leave, members, and their errors.

use super::*;

#[test]
fn room_lifecycle() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (mut b, tb) = t.user("bob", 8001);
    let (mut c, tc) = t.user("carol", 9001);
    let alice = UserInfo {
        keys: None,
        username: "alice".into(),
        online: true,
        address: address("127.0.0.1", 7001),
    };
    let bob = UserInfo {
        keys: None,
        username: "bob".into(),
        online: true,
        address: address("127.0.0.1", 8001),
    };

    // The creator is the only member and is told the epoch; there is no
    // key yet (a member makes it, see `roomkeys`), and nobody with identity
    // keys to seal one to (these sessions have none).
    let lab = t.room(&mut a, room_op("create_room", &ta, "lab"));
    assert_eq!(
        lab,
        RoomInfo {
            name: "lab".into(),
            epoch: Some(1),
            key_maker: None,
            key_package: None,
            needs_key: vec![],
            members: vec![alice.clone()]
        }
    );
    // Joining gives the same epoch and the members with their addresses; again is harmless.
    let joined = RoomInfo {
        members: vec![alice, bob],
        ..lab.clone()
    };
    assert_eq!(t.room(&mut b, room_op("join_room", &tb, "lab")), joined);
    assert_eq!(t.room(&mut b, room_op("join_room", &tb, "lab")), joined);
    // A non-member sees the members but not the epoch.
    let seen = t.room(&mut c, room_op("members", &tc, "lab"));
    assert_eq!(
        seen,
        RoomInfo {
            epoch: None,
            ..joined.clone()
        }
    );
    assert_eq!(t.room(&mut a, room_op("members", &ta, "lab")), joined);

    let den = t.room(&mut c, room_op("create_room", &tc, "den"));
    assert_eq!(den.epoch, Some(1));
    assert_eq!(
        t.rooms(&mut b, &tb),
        [("den".to_string(), 1), ("lab".to_string(), 2)]
    );

    // Deleted only when the last member leaves; then the name is free again.
    let left = |room: &str, deleted| ReplyBody::Left {
        room: room.into(),
        deleted,
    };
    assert_eq!(
        t.ok(&mut a, room_op("leave_room", &ta, "lab")),
        left("lab", false)
    );
    assert_eq!(
        names(&t.room(&mut c, room_op("members", &tc, "lab")).members),
        ["bob"]
    );
    // Alice left: the room is one epoch on, which she is not told.
    let rekeyed = t.room(&mut b, room_op("members", &tb, "lab"));
    assert_eq!(rekeyed.epoch, Some(2));
    let seen = t.room(&mut a, room_op("members", &ta, "lab"));
    assert_eq!(seen.epoch, None);
    // A member whose session ends (here: logout) moves it on too.
    let (mut d, td) = t.user("dave", 9101);
    t.room(&mut d, room_op("join_room", &td, "lab"));
    t.ok(&mut d, Request::Logout { token: td.clone() });
    let after = t.room(&mut b, room_op("members", &tb, "lab"));
    assert_eq!(after.epoch, Some(3));
    assert_eq!(
        t.ok(&mut b, room_op("leave_room", &tb, "lab")),
        left("lab", true)
    );
    assert_eq!(t.rooms(&mut b, &tb), [("den".to_string(), 1)]);
    let again = t.room(&mut a, room_op("create_room", &ta, "lab"));
    assert_eq!(again.epoch, Some(1), "a new room starts at epoch 1");
    // The registry made no key for any of these rooms.
    for room in ["lab", "den"] {
        assert_eq!(t.store.find_room(room).unwrap().unwrap().key, "", "{room}");
    }
}

#[test]
fn room_errors() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (mut b, tb) = t.user("bob", 8001);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    assert_eq!(
        t.err(&mut a, room_op("create_room", &ta, "lab")),
        ErrorCode::RoomExists
    );
    assert_eq!(
        t.err(&mut b, room_op("create_room", &tb, "lab")),
        ErrorCode::RoomExists
    );
    for op in ["join_room", "leave_room", "members"] {
        assert_eq!(
            t.err(&mut b, room_op(op, &tb, "nope")),
            ErrorCode::NoSuchRoom,
            "{op}"
        );
    }
    assert_eq!(
        t.err(&mut b, room_op("leave_room", &tb, "lab")),
        ErrorCode::NotAMember
    );
    t.room(&mut b, room_op("join_room", &tb, "lab"));
    t.ok(&mut b, room_op("leave_room", &tb, "lab"));
    assert_eq!(
        t.err(&mut b, room_op("leave_room", &tb, "lab")),
        ErrorCode::NotAMember
    );
    t.ok(&mut a, room_op("leave_room", &ta, "lab"));
    for op in ["leave_room", "members", "join_room"] {
        assert_eq!(
            t.err(&mut a, room_op(op, &ta, "lab")),
            ErrorCode::NoSuchRoom,
            "{op}"
        );
    }
}
