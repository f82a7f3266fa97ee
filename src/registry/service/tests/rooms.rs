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

    // The creator is the only member and is told the key.
    let lab = t.room(&mut a, room_op("create_room", &ta, "lab"));
    let key = lab.key.clone().unwrap();
    assert!(is_hex64(&key), "{key}");
    assert_eq!(
        lab,
        RoomInfo {
            name: "lab".into(),
            key: Some(key.clone()),
            epoch: Some(1),
            members: vec![alice.clone()]
        }
    );
    // Joining gives the same key and the members with their addresses; again is harmless.
    let joined = RoomInfo {
        name: "lab".into(),
        key: Some(key.clone()),
        epoch: Some(1),
        members: vec![alice, bob],
    };
    assert_eq!(t.room(&mut b, room_op("join_room", &tb, "lab")), joined);
    assert_eq!(t.room(&mut b, room_op("join_room", &tb, "lab")), joined);
    // A non-member sees the members but not the key.
    let seen = t.room(&mut c, room_op("members", &tc, "lab"));
    assert_eq!(
        seen,
        RoomInfo {
            key: None,
            epoch: None,
            ..joined.clone()
        }
    );
    assert_eq!(t.room(&mut a, room_op("members", &ta, "lab")), joined);

    let den = t.room(&mut c, room_op("create_room", &tc, "den"));
    assert_ne!(den.key, Some(key.clone()), "each room has its own key");
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
    // Alice left: the room has a new key, one epoch on, that she is not told.
    let rekeyed = t.room(&mut b, room_op("members", &tb, "lab"));
    assert_eq!(rekeyed.epoch, Some(2));
    assert!(rekeyed.key.as_deref().is_some_and(is_hex64));
    assert_ne!(rekeyed.key, Some(key.clone()));
    let seen = t.room(&mut a, room_op("members", &ta, "lab"));
    assert_eq!((seen.key, seen.epoch), (None, None));
    // A member whose session ends (here: logout) re-keys it too.
    let (mut d, td) = t.user("dave", 9101);
    t.room(&mut d, room_op("join_room", &td, "lab"));
    t.ok(&mut d, Request::Logout { token: td.clone() });
    let after = t.room(&mut b, room_op("members", &tb, "lab"));
    assert_eq!(after.epoch, Some(3));
    assert_ne!(after.key, rekeyed.key);
    assert_eq!(
        t.ok(&mut b, room_op("leave_room", &tb, "lab")),
        left("lab", true)
    );
    assert_eq!(t.rooms(&mut b, &tb), [("den".to_string(), 1)]);
    let again = t.room(&mut a, room_op("create_room", &ta, "lab"));
    assert_ne!(again.key, Some(key), "a new room gets a new key");
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
