//! Room roles in process: a room made before roles existed, and the
//! policy's life with the room.

use super::*;

fn roles_of(body: ReplyBody) -> std::collections::BTreeMap<String, Role> {
    match body {
        ReplyBody::Room { roles, .. } => roles,
        other => panic!("not a room reply: {other:?}"),
    }
}

#[test]
fn a_room_made_before_roles_gets_its_first_member_by_name_as_owner() {
    let mut t = T::new();
    let _zed = t.user("zed", 7001);
    let (mut b, tb) = t.user("bob", 7002);
    let (mut a, ta) = t.user("amy", 7003);
    // As an older registry left it: a room and members, no policy.
    let record = crate::registry::store::RoomRecord {
        name: "old".into(),
        key: "ab".repeat(32),
        epoch: 1,
        created_ms: 0,
        topic: None,
    };
    t.store.create_room(&record, "zed").unwrap();
    t.store.add_member("old", "bob").unwrap();
    // A newcomer joining does not become owner; bob (first by name) does.
    let joined = t.ok(&mut a, room_op("join_room", &ta, "old"));
    assert_eq!(roles_of(joined), [("bob".to_string(), Role::Owner)].into());
    // ... and can moderate.
    let lock = Request::Lock {
        token: tb.clone(),
        room: "old".into(),
    };
    t.ok(&mut b, lock);
}

#[test]
fn a_room_made_again_under_an_old_name_starts_with_a_fresh_policy() {
    let mut t = T::new();
    let (mut a, ta) = t.user("amy", 7001);
    let (mut b, tb) = t.user("bob", 7002);
    t.ok(&mut a, room_op("create_room", &ta, "lab"));
    let ban = Request::Ban {
        token: ta.clone(),
        room: "lab".into(),
        username: "bob".into(),
    };
    t.ok(&mut a, ban);
    assert_eq!(
        t.err(&mut b, room_op("join_room", &tb, "lab")),
        ErrorCode::Banned
    );
    // The last member leaves: the room and its policy go.
    t.ok(&mut a, room_op("leave_room", &ta, "lab"));
    assert_eq!(t.store.room_policy("lab").unwrap(), None);
    let made = t.ok(&mut b, room_op("create_room", &tb, "lab"));
    assert_eq!(roles_of(made), [("bob".to_string(), Role::Owner)].into());
    t.ok(&mut a, room_op("join_room", &ta, "lab"));
}
