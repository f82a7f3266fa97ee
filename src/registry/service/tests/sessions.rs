//! Sessions: login, resume, logout, heartbeats and time-outs on the
//! manual clock, purge, restart clean-up, and a store that is down.

use super::*;
use crate::protocol::heartbeat::HeartbeatKey;

#[test]
fn login_reply_and_online_list() {
    let mut t = T::new();
    t.register(&["zed", "amy", "mia", "bob"]);
    let mut c = t.conn();
    let reply = t.ok(&mut c, login("zed", PW, 7000));
    let ReplyBody::Session(s) = reply else {
        panic!("{reply:?}")
    };
    assert!(is_hex64(&s.token), "{}", s.token);
    assert_eq!(
        s,
        SessionReply {
            username: "zed".into(),
            token: s.token.clone(),
            address: address("127.0.0.1", 7000).unwrap(),
            heartbeat_interval_ms: 1000,
            session_timeout_ms: 3000,
            heartbeat_port: HB_PORT,
            heartbeat_id: s.heartbeat_id.clone(),
            heartbeat_key: s.heartbeat_key.clone(),
        }
    );
    // Heartbeat credentials of their own, never the token.
    assert_eq!((s.heartbeat_id.len(), s.heartbeat_key.len()), (32, 64));
    assert!(!s.heartbeat_id.contains(&s.token) && !s.token.contains(&s.heartbeat_id));
    // The store keeps the token's hash, never the token.
    assert!(t.store.session_by_token(&s.token).unwrap().is_none());
    assert!(t
        .store
        .session_by_token(&auth::token_hash(&s.token))
        .unwrap()
        .is_some());
    for (i, n) in ["mia", "amy"].iter().enumerate() {
        let mut c = t.conn();
        t.login(&mut c, n, 7010 + 10 * i as u16);
    }
    let ReplyBody::Users { users, .. } = t.ok(&mut c, online(&s.token)) else {
        panic!()
    };
    assert_eq!(names(&users), ["amy", "mia", "zed"]);
    assert_eq!(users[0].address, address("127.0.0.1", 7020));
}

#[test]
fn one_live_session_per_user_and_per_connection() {
    let mut t = T::new();
    t.register(&["bob"]);
    let (mut a, ta) = t.user("alice", 7001);
    let mut a2 = t.conn();
    // Not a failed login: never rate limited.
    for _ in 0..6 {
        assert_eq!(
            t.err(&mut a2, login("alice", PW, 7101)),
            ErrorCode::AlreadyOnline
        );
    }
    assert_eq!(
        t.err(&mut a, login("alice", PW, 7001)),
        ErrorCode::AlreadyOnline
    );
    assert_eq!(
        t.err(&mut a, login("bob", PW, 8001)),
        ErrorCode::AlreadyOnline
    );
    assert_eq!(
        t.search(&mut a, &ta, "alice").address,
        address("127.0.0.1", 7001)
    );
    t.ok(&mut a, logout(&ta));
    t.login(&mut a2, "alice", 7101);
}

#[test]
fn logout_ends_the_session_and_leaves_rooms() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (mut b, tb) = t.user("bob", 8001);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    assert_eq!(t.ok(&mut a, logout(&ta)), ReplyBody::Empty {});
    assert!(!t.is_online(&mut b, &tb, "alice"));
    assert_eq!(t.rooms(&mut b, &tb), []);
    // The same connection may log in again, with a new token.
    let ta2 = t.login(&mut a, "alice", 7001);
    assert_ne!(ta, ta2);
    assert!(t.is_online(&mut b, &tb, "alice"));
}

#[test]
fn closed_connection_goes_offline_and_resumes_elsewhere() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (mut b, tb) = t.user("bob", 8001);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    t.room(&mut b, room_op("join_room", &tb, "lab"));
    t.reg.disconnected(&a);
    assert!(!t.is_online(&mut b, &tb, "alice"));
    assert_eq!(t.rooms(&mut b, &tb), [("lab".to_string(), 1)]);

    t.clock.advance(ms(2000));
    let mut a2 = t.conn();
    let ReplyBody::Session(s) = t.ok(&mut a2, resume(&ta, 7101)) else {
        panic!()
    };
    assert_eq!(
        (s.token.as_str(), s.username.as_str()),
        (ta.as_str(), "alice")
    );
    assert_eq!(Some(s.address), address("127.0.0.1", 7101));
    assert_eq!(
        t.search(&mut b, &tb, "alice").address,
        address("127.0.0.1", 7101)
    );
    t.ok(&mut a2, online(&ta));
    // The old connection is no longer bound to it.
    assert_eq!(t.err(&mut a, logout(&ta)), ErrorCode::NotYourSession);
}

#[test]
fn a_session_resumed_elsewhere_survives_its_old_connection() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (mut b, tb) = t.user("bob", 8001);
    // Resume while the first connection is still open: the session moves.
    let mut a2 = t.conn();
    t.ok(&mut a2, resume(&ta, 7101));
    assert_eq!(t.err(&mut a, heartbeat(&ta)), ErrorCode::NotYourSession);
    t.reg.disconnected(&a);
    assert!(t.is_online(&mut b, &tb, "alice"));
    t.ok(&mut a2, heartbeat(&ta));
    // Resuming on the connection that already holds it is fine too.
    t.ok(&mut a2, resume(&ta, 7201));
    assert_eq!(
        t.search(&mut b, &tb, "alice").address,
        address("127.0.0.1", 7201)
    );
}

#[test]
fn heartbeats_keep_a_session_online_until_they_stop() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (mut b, tb) = t.user("bob", 8001);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    t.room(&mut b, room_op("join_room", &tb, "lab"));
    for _ in 0..5 {
        t.clock.advance(ms(2000));
        t.heartbeat(&mut a, &ta);
        t.heartbeat(&mut b, &tb);
        assert_eq!(t.reg.sweep_stale().unwrap(), 0);
    }
    // Bob goes on; alice stops. At exactly the time-out she is still online.
    t.clock.advance(ms(2000));
    t.heartbeat(&mut b, &tb);
    t.clock.advance(ms(1000));
    assert!(t.is_online(&mut b, &tb, "alice"));
    assert_eq!(t.reg.sweep_stale().unwrap(), 0);
    t.clock.advance(ms(1));
    // Offline from now, even before the sweep takes her out of her rooms.
    assert!(!t.is_online(&mut b, &tb, "alice"));
    let ReplyBody::Users { users, .. } = t.ok(&mut b, online(&tb)) else {
        panic!()
    };
    assert_eq!(names(&users), ["bob"]);
    let lab = t.room(&mut b, room_op("members", &tb, "lab"));
    assert_eq!(
        lab.members[0],
        UserInfo {
            keys: None,
            username: "alice".into(),
            online: false,
            address: None
        }
    );
    assert_eq!(t.err(&mut a, heartbeat(&ta)), ErrorCode::InvalidSession);
    assert_eq!(t.reg.sweep_stale().unwrap(), 1);
    assert_eq!(t.reg.sweep_stale().unwrap(), 0);
    assert_eq!(t.rooms(&mut b, &tb), [("lab".to_string(), 1)]);
    // Her session can be resumed (here on the same connection).
    t.ok(&mut a, resume(&ta, 7001));
    assert!(t.is_online(&mut b, &tb, "alice"));
}

#[test]
fn udp_heartbeat_datagrams_count_and_garbage_does_not() {
    let mut t = T::new();
    t.register(&["alice"]);
    let mut a = t.conn();
    let ReplyBody::Session(s) = t.ok(&mut a, login("alice", PW, 7001)) else {
        panic!("no session")
    };
    let ta = s.token.clone();
    let key = HeartbeatKey::from_hex(&s.heartbeat_id, &s.heartbeat_key).unwrap();
    let (mut b, tb) = t.user("bob", 8001);
    let v1 = format!(r#"{{"op":"heartbeat","token":"{ta}"}}"#);
    let mut forged = key;
    forged.key[0] ^= 1;
    for ctr in 1..=3 {
        t.clock.advance(ms(2000));
        t.reg.presence.datagram(key.encode(ctr).as_bytes());
        // Replayed, forged, version 1 (a token), garbage.
        t.reg.presence.datagram(key.encode(ctr).as_bytes());
        t.reg.presence.datagram(forged.encode(ctr + 10).as_bytes());
        t.reg.presence.datagram(v1.as_bytes());
        t.reg.presence.datagram(b"\xff garbage");
        t.ok(&mut b, heartbeat(&tb));
        assert!(presence::flush(&t.reg));
        assert_eq!(t.reg.sweep_stale().unwrap(), 0);
    }
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(t.reg.presence.heartbeats.load(Relaxed), 3);
    assert_eq!(t.reg.presence.replayed.load(Relaxed), 3);
    assert_eq!(t.reg.presence.forged.load(Relaxed), 3);
    assert_eq!(t.reg.presence.garbage.load(Relaxed), 6);
    assert!(t.is_online(&mut a, &ta, "alice"));
    // Replayed alone, her heartbeats keep nobody online.
    for _ in 0..3 {
        t.clock.advance(ms(2000));
        t.reg.presence.datagram(key.encode(3).as_bytes());
        t.ok(&mut b, heartbeat(&tb));
        assert!(presence::flush(&t.reg));
        t.reg.sweep_stale().unwrap();
    }
    assert!(!t.is_online(&mut b, &tb, "alice"));
    // Her connection gone, her key is gone with it.
    assert_eq!(t.reg.presence.keys_held(), 2);
    t.reg.disconnected(&a);
    assert_eq!(t.reg.presence.keys_held(), 1);
}

#[test]
fn a_timed_out_session_gives_way_to_a_new_login() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    t.clock.advance(ms(3001));
    // Before any sweep: a login elsewhere replaces it, and leaves its rooms.
    let mut a2 = t.conn();
    let ta2 = t.login(&mut a2, "alice", 7101);
    assert_eq!(t.err(&mut a, heartbeat(&ta)), ErrorCode::InvalidSession);
    assert_eq!(t.rooms(&mut a2, &ta2), []);
    // And on the connection it timed out on, logging in again works.
    t.clock.advance(ms(3001));
    t.login(&mut a2, "alice", 7201);
}

#[test]
fn offline_sessions_are_purged_after_the_grace_period() {
    let mut t = T::new();
    let (a, ta) = t.user("alice", 7001);
    let (_b, _tb) = t.user("bob", 8001);
    t.reg.disconnected(&a);
    t.clock.advance(GRACE);
    assert_eq!(t.reg.purge_old().unwrap(), 0);
    t.clock.advance(ms(1));
    // Only the detached one: bob is still attached, though silent.
    assert_eq!(t.reg.purge_old().unwrap(), 1);
    let mut c = t.conn();
    assert_eq!(t.err(&mut c, resume(&ta, 7001)), ErrorCode::InvalidSession);
}

#[test]
fn a_restarted_instance_takes_its_old_sessions_offline() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    // Another registry's session, in the same store.
    let mut other = t.store.session_by_user("alice").unwrap().unwrap();
    other.username = "bob".into();
    other.token_hash = "elsewhere".into();
    other.instance = "test-2".into();
    t.store.insert_session(&other).unwrap();
    assert_eq!(t.reg.detach_own_sessions().unwrap(), 1);
    assert!(!t.store.session_by_user("alice").unwrap().unwrap().attached);
    assert!(t.store.session_by_user("bob").unwrap().unwrap().attached);
    assert!(t.store.find_room("lab").unwrap().is_none());
}

#[test]
fn a_store_that_is_down_answers_store_unavailable() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    t.ok(&mut a, heartbeat(&ta));
    t.store.set_unavailable(true);
    let mut c = t.conn();
    assert_eq!(
        t.err(&mut c, register("bob", PW)),
        ErrorCode::StoreUnavailable
    );
    assert_eq!(
        t.err(&mut c, login("alice", PW, 7001)),
        ErrorCode::StoreUnavailable
    );
    assert_eq!(t.err(&mut a, online(&ta)), ErrorCode::StoreUnavailable);
    // Heartbeats are kept for the next batch, and nobody is swept meanwhile.
    assert!(!presence::flush(&t.reg));
    assert!(t.reg.sweep_stale().is_err());
    t.clock.advance(ms(2000));
    t.store.set_unavailable(false);
    t.ok(&mut a, heartbeat(&ta));
    assert!(presence::flush(&t.reg));
    t.clock.advance(ms(2000));
    assert!(t.is_online(&mut a, &ta, "alice"));
}

#[test]
fn a_room_leave_the_store_refused_is_retried_once_it_answers() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (mut b, tb) = t.user("bob", 7002);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    t.room(&mut b, room_op("join_room", &tb, "lab"));
    let epoch = t.store.find_room("lab").unwrap().unwrap().epoch;
    // Bob's session ends while the store refuses everything (an election).
    let bob = t.store.session_by_user("bob").unwrap().unwrap();
    assert!(t.store.detach_session(&bob.token_hash, INSTANCE).unwrap());
    t.store.set_unavailable(true);
    t.reg.leave_all_rooms("bob");
    t.reg.retry_unfinished_leaves();
    t.store.set_unavailable(false);
    assert_eq!(t.store.room_members("lab").unwrap(), ["alice", "bob"]);
    // Once it answers, bob leaves and the room re-keys.
    t.reg.retry_unfinished_leaves();
    assert_eq!(t.store.room_members("lab").unwrap(), ["alice"]);
    assert_eq!(t.store.find_room("lab").unwrap().unwrap().epoch, epoch + 1);
    // Done: nothing is left to retry.
    t.counts.take();
    t.reg.retry_unfinished_leaves();
    assert!(
        t.counts.take().is_empty(),
        "no store call when nothing is left"
    );
}

#[test]
fn a_user_back_online_keeps_the_rooms_a_refused_leave_would_have_taken() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    t.store.set_unavailable(true);
    t.reg.leave_all_rooms("alice");
    t.store.set_unavailable(false);
    // Alice's session is still attached (she resumed): her room stays hers.
    t.reg.retry_unfinished_leaves();
    assert_eq!(t.store.room_members("lab").unwrap(), ["alice"]);
}
