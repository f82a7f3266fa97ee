//! Who may use a session: not logged in, another connection's token.

use super::*;

#[test]
fn every_op_needs_a_live_session() {
    let mut t = T::new();
    let mut c = t.conn();
    let bogus = "0".repeat(64);
    for token in [bogus.as_str(), "", &"x".repeat(5000)] {
        for req in authed_ops(token) {
            assert_eq!(t.err(&mut c, req), ErrorCode::InvalidSession);
        }
        assert_eq!(
            t.err(&mut c, resume(token, 7001)),
            ErrorCode::InvalidSession
        );
    }
    // A token is dead after logout, for every op and for resume.
    let (mut a, ta) = t.user("alice", 7001);
    t.ok(&mut a, logout(&ta));
    for req in authed_ops(&ta) {
        assert_eq!(t.err(&mut a, req), ErrorCode::InvalidSession);
    }
    assert_eq!(t.err(&mut c, resume(&ta, 7001)), ErrorCode::InvalidSession);
}

#[test]
fn nobody_acts_as_another_user() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (mut b, tb) = t.user("bob", 8001);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    let mut anon = t.conn();
    for req in authed_ops(&ta) {
        assert_eq!(
            t.err(&mut b, req.clone()),
            ErrorCode::NotYourSession,
            "{req:?}"
        );
        assert_eq!(
            t.err(&mut anon, req.clone()),
            ErrorCode::NotYourSession,
            "{req:?}"
        );
    }
    // Nor can bob move her session onto his logged-in connection.
    assert_eq!(t.err(&mut b, resume(&ta, 6666)), ErrorCode::AlreadyOnline);
    assert_eq!(t.err(&mut a, logout(&tb)), ErrorCode::NotYourSession);
    // Alice is untouched: online where she was, alone in her room.
    assert_eq!(
        t.search(&mut b, &tb, "alice").address,
        address("127.0.0.1", 7001)
    );
    assert_eq!(t.rooms(&mut b, &tb), [("lab".to_string(), 1)]);
    t.ok(&mut a, heartbeat(&ta));
}
