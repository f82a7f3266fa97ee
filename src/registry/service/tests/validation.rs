//! Bad input: every error code a request with bad fields gets.

use super::*;

#[test]
fn register_checks_username_and_password() {
    let mut t = T::new();
    let mut c = t.conn();
    let long = "a".repeat(33);
    for bad in [
        "ab",
        "Alice",
        "_bob",
        "bob!",
        "ünï",
        "a b",
        "",
        long.as_str(),
    ] {
        assert_eq!(
            t.err(&mut c, register(bad, PW)),
            ErrorCode::InvalidUsername,
            "{bad:?}"
        );
    }
    let long = "p".repeat(1025);
    for weak in ["", "1234567", "ünïcödé", long.as_str()] {
        assert_eq!(
            t.err(&mut c, register("alice", weak)),
            ErrorCode::WeakPassword,
            "{weak:?}"
        );
    }
    t.register(&["abc", &"a".repeat(32), "0.z_-"]);
    t.ok(&mut c, register("longpw", &"p".repeat(1024)));
    t.ok(&mut c, register("short", "12345678"));
    t.register(&["alice"]);
    assert_eq!(
        t.err(&mut c, register("alice", "another password")),
        ErrorCode::UserExists
    );
    // The first password still works.
    t.login(&mut c, "alice", 7001);
}

#[test]
fn login_and_resume_check_the_address() {
    let mut t = T::new();
    t.register(&["alice"]);
    let mut c = t.conn();
    let mut bad = vec![login("alice", PW, 0), login_at("alice", PW, 7001, 0, None)];
    for adv in ["not-an-ip", "", "256.1.1.1", "10.0.0.1:80", "example.com"] {
        bad.push(login_at("alice", PW, 7001, 7002, Some(adv)));
    }
    // Six of them: none may count as a failed login.
    for req in bad {
        assert_eq!(t.err(&mut c, req), ErrorCode::InvalidAddress);
    }
    let token = t.login(&mut c, "alice", 7001);
    t.reg.disconnected(&c);
    let mut d = t.conn();
    assert_eq!(
        t.err(&mut d, resume_at(&token, 0, 1, None)),
        ErrorCode::InvalidAddress
    );
    assert_eq!(
        t.err(&mut d, resume_at(&token, 1, 2, Some("x"))),
        ErrorCode::InvalidAddress
    );
}

#[test]
fn addresses_advertised_or_seen() {
    let mut t = T::new();
    t.register(&["alice", "bob", "carol"]);
    let mut a = t.conn_at("::ffff:10.0.0.5");
    let ta = t.login(&mut a, "alice", 7001);
    let mut b = t.conn();
    t.ok(&mut b, login_at("bob", PW, 8001, 8002, Some("fd00::7")));
    let mut c = t.conn();
    t.ok(
        &mut c,
        login_at("carol", PW, 9001, 9002, Some("::ffff:192.168.5.6")),
    );
    // An IPv4 client on a dual-stack socket is shown as plain IPv4.
    assert_eq!(
        t.search(&mut a, &ta, "alice").address,
        address("10.0.0.5", 7001)
    );
    assert_eq!(
        t.search(&mut a, &ta, "bob").address,
        address("fd00::7", 8001)
    );
    assert_eq!(
        t.search(&mut a, &ta, "carol").address,
        address("192.168.5.6", 9001)
    );
}

#[test]
fn invalid_credentials_tell_nothing_apart() {
    let mut t = T::new();
    t.register(&["alice"]);
    let mut c = t.conn();
    let errors: Vec<ApiError> = [
        login("alice", "wrong password", 7001),
        login("nobody", PW, 7001),
        login("No Such!", PW, 7001),
    ]
    .into_iter()
    .map(|r| t.call(&mut c, r).unwrap_err())
    .collect();
    for e in &errors {
        assert_eq!(
            (e.code, &e.message),
            (ErrorCode::InvalidCredentials, &errors[0].message)
        );
    }
    t.login(&mut c, "alice", 7001);
}

#[test]
fn guessing_is_slowed_then_refused_but_the_owner_gets_in() {
    let mut t = T::new();
    t.register(&["alice", "bob"]);
    let mut c = t.conn();
    // Each failure delays the next attempt of the same name from the same
    // address: 0, 0.25, 0.5, 1 and 2 s (the manual clock moves instead of
    // sleeping).
    let mut waited = Vec::new();
    for _ in 0..5 {
        let before = t.clock.now();
        assert_eq!(
            t.err(&mut c, login("alice", "wrong password", 7001)),
            ErrorCode::InvalidCredentials
        );
        waited.push((t.clock.now() - before).as_millis());
    }
    assert_eq!(waited, [0, 250, 500, 1000, 2000]);
    // Five failures block the address, for any name, before any hashing...
    assert_eq!(
        t.err(&mut c, login("alice", PW, 7001)),
        ErrorCode::RateLimited
    );
    assert_eq!(
        t.err(&mut c, login("bob", PW, 8001)),
        ErrorCode::RateLimited
    );
    // ...but never the name: its owner, from an address without failures,
    // gets in at once.
    let mut elsewhere = t.conn_at("127.0.0.2");
    let before = t.clock.now();
    t.login(&mut elsewhere, "alice", 7001);
    assert_eq!(t.clock.now(), before, "the owner was delayed");
    // The block lasts 60 s.
    t.clock.advance(Duration::from_secs(59));
    assert_eq!(
        t.err(&mut c, login("bob", PW, 8001)),
        ErrorCode::RateLimited
    );
    t.clock.advance(Duration::from_secs(2));
    t.login(&mut c, "bob", 8001);
}

#[test]
fn failed_logins_from_one_address_block_it_for_every_username() {
    let mut t = T::new();
    t.register(&["carol", "dave"]);
    let mut c = t.conn();
    // One failure each for five usernames, from one address.
    for user in ["u1", "u2", "u3", "carol", "u5"] {
        let wrong = login(user, "wrong password", 7001);
        assert_eq!(
            t.err(&mut c, wrong),
            ErrorCode::InvalidCredentials,
            "{user}"
        );
    }
    // That address is blocked, even for a user with no failures of its
    // own, and on a new connection.
    assert_eq!(
        t.err(&mut c, login("dave", PW, 8001)),
        ErrorCode::RateLimited
    );
    let mut c2 = t.conn();
    assert_eq!(
        t.err(&mut c2, login("dave", PW, 8001)),
        ErrorCode::RateLimited
    );
    // Another address logs both in (carol has only one failure).
    let mut d = t.conn_at("127.0.0.2");
    t.login(&mut d, "dave", 8001);
    let mut e = t.conn_at("127.0.0.2");
    t.login(&mut e, "carol", 9001);
}

#[test]
fn failed_logins_older_than_the_window_are_forgotten() {
    let mut t = T::new();
    t.register(&["alice"]);
    let mut c = t.conn();
    let wrong = || login("alice", "wrong password", 7001);
    for _ in 0..4 {
        assert_eq!(t.err(&mut c, wrong()), ErrorCode::InvalidCredentials);
    }
    // The window is 60 s: these four no longer count.
    t.clock.advance(Duration::from_secs(60));
    for _ in 0..4 {
        assert_eq!(t.err(&mut c, wrong()), ErrorCode::InvalidCredentials);
    }
    t.login(&mut c, "alice", 7001);
}

#[test]
fn room_names_are_checked_by_every_room_op() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let long = "r".repeat(33);
    for bad in ["", "Lab", "a b", "lab!", "läb", "a.b", long.as_str()] {
        for op in ROOM_OPS {
            assert_eq!(
                t.err(&mut a, room_op(op, &ta, bad)),
                ErrorCode::InvalidRoomName,
                "{op} {bad:?}"
            );
        }
    }
    for good in ["r", &"r".repeat(32), "lab_1-x"] {
        t.room(&mut a, room_op("create_room", &ta, good));
    }
}

#[test]
fn search_finds_only_registered_users() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    t.register(&["carol"]);
    for who in ["nobody", "Alice", "x", "", "../etc"] {
        assert_eq!(
            t.err(&mut a, search(&ta, who)),
            ErrorCode::UserNotFound,
            "{who:?}"
        );
    }
    // Registered, never logged in: offline, no address.
    assert_eq!(
        t.search(&mut a, &ta, "carol"),
        UserInfo {
            keys: None,
            username: "carol".into(),
            online: false,
            address: None
        }
    );
}

#[test]
fn store_errors_become_store_unavailable_or_internal() {
    let code = |e: StoreError| ApiError::from(e).code;
    assert_eq!(
        code(StoreError::Unavailable("down".into())),
        ErrorCode::StoreUnavailable
    );
    for other in [
        StoreError::Other("disk full".into()),
        StoreError::Conflict,
        StoreError::NotFound,
    ] {
        assert_eq!(code(other), ErrorCode::Internal);
    }
}
