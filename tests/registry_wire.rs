//! The registry protocol on the real wire: the `registry` binary, raw NDJSON
//! over TCP, exact replies. Every op's success path, every error code, id
//! echoing, and that no connection can act as another user.

mod kit;

use kit::*;
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

fn reg() -> Registry {
    Registry::start(LONG_SESSIONS)
}

/// Registers `names` on a throw-away connection.
fn register_all(r: &Registry, names: &[&str]) {
    let mut c = r.client();
    for n in names {
        c.register(n);
    }
}

fn address(ip: &str, tcp: u16) -> Value {
    json!({"ip": ip, "tcp_port": tcp, "udp_port": tcp + 1})
}

// ---------------------------------------------------------------- success paths

#[test]
fn register_and_login_reply_fields() {
    let r = reg();
    let mut c = r.client();
    let reply = c.ok(json!({"id": 1, "op": "register", "username": "alice", "password": PASSWORD}));
    assert_eq!(reply, json!({"id": 1, "ok": true, "username": "alice"}));

    let mut reply = c.ok(json!({
        "id": 2, "op": "login", "username": "alice", "password": PASSWORD,
        "tcp_port": 7001, "udp_port": 7002,
    }));
    let token = reply["token"].as_str().unwrap().to_string();
    assert!(is_hex64(&token), "token shape: {token}");
    reply.as_object_mut().unwrap().remove("token");
    // The heartbeat credentials: random, and not the token.
    let hb_id = reply
        .as_object_mut()
        .unwrap()
        .remove("heartbeat_id")
        .unwrap();
    let hb_key = reply
        .as_object_mut()
        .unwrap()
        .remove("heartbeat_key")
        .unwrap();
    assert_eq!(hb_id.as_str().map(str::len), Some(32), "{hb_id}");
    assert!(
        is_hex64(hb_key.as_str().unwrap()) && hb_key != json!(token),
        "{hb_key}"
    );
    assert_eq!(
        reply,
        json!({
            "id": 2, "ok": true, "username": "alice",
            "address": {"ip": "127.0.0.1", "tcp_port": 7001, "udp_port": 7002},
            "heartbeat_interval_ms": 1000, "session_timeout_ms": 30000,
            "heartbeat_port": r.port(),
        })
    );
    // The session is real: alice is online at the address she gave.
    assert_eq!(
        c.search(&token, "alice"),
        json!({"username": "alice", "online": true, "address": address("127.0.0.1", 7001)})
    );
}

#[test]
fn login_with_advertise_ip_override() {
    let r = reg();
    register_all(&r, &["alice", "bob", "carol"]);
    let mut a = r.client();
    let reply = a.ok(json!({
        "op": "login", "username": "alice", "password": PASSWORD,
        "tcp_port": 7001, "udp_port": 7002, "advertise_ip": "10.1.2.3",
    }));
    assert_eq!(reply["address"], address("10.1.2.3", 7001));
    let ta = reply["token"].as_str().unwrap().to_string();

    let mut b = r.client();
    let reply = b.ok(json!({
        "op": "login", "username": "bob", "password": PASSWORD,
        "tcp_port": 8001, "udp_port": 8002, "advertise_ip": "fd00::7",
    }));
    assert_eq!(reply["address"], address("fd00::7", 8001));

    // An IPv4-mapped IPv6 address is shown as plain IPv4.
    let mut c = r.client();
    let reply = c.ok(json!({
        "op": "login", "username": "carol", "password": PASSWORD,
        "tcp_port": 9001, "udp_port": 9002, "advertise_ip": "::ffff:192.168.5.6",
    }));
    assert_eq!(reply["address"], address("192.168.5.6", 9001));

    // Others are given the advertised address.
    assert_eq!(a.search(&ta, "bob")["address"], address("fd00::7", 8001));
    assert_eq!(a.search(&ta, "alice")["address"], address("10.1.2.3", 7001));
}

#[test]
fn resume_on_new_connection_after_close() {
    let r = reg();
    register_all(&r, &["alice", "bob"]);
    let mut b = r.client();
    let tb = b.login_token("bob", 8001);

    let mut a1 = r.client();
    let ta = a1.login_token("alice", 7001);
    drop(a1);
    wait_until(
        std::time::Duration::from_secs(2),
        std::time::Duration::from_millis(20),
        "alice offline after her connection closed",
        || !b.is_online(&tb, "alice"),
    );

    let mut a2 = r.client();
    let reply =
        a2.ok(json!({"id": "r", "op": "resume", "token": ta, "tcp_port": 7101, "udp_port": 7102}));
    assert_eq!(reply["token"], json!(ta), "resume keeps the token");
    assert_eq!(reply["username"], json!("alice"));
    assert_eq!(reply["address"], address("127.0.0.1", 7101));
    assert_eq!(reply["heartbeat_port"], json!(r.port()));
    assert_eq!(
        b.search(&tb, "alice"),
        json!({"username": "alice", "online": true, "address": address("127.0.0.1", 7101)})
    );
    // The resumed session works on its new connection.
    assert_eq!(
        names(&a2.ok(json!({"op": "online", "token": ta}))["users"]),
        ["alice", "bob"]
    );
}

#[test]
fn logout_ends_session() {
    let r = reg();
    register_all(&r, &["alice", "bob"]);
    let mut b = r.client();
    let tb = b.login_token("bob", 8001);
    let mut a = r.client();
    let ta = a.login_token("alice", 7001);
    a.ok(json!({"op": "create_room", "token": ta, "room": "lab"}));

    let reply = a.ok(json!({"id": 9, "op": "logout", "token": ta}));
    assert_eq!(reply, json!({"id": 9, "ok": true}));
    assert_eq!(
        b.search(&tb, "alice"),
        json!({"username": "alice", "online": false})
    );
    // Logging out leaves rooms (the last member leaving deletes the room).
    assert_eq!(
        b.ok(json!({"op": "rooms", "token": tb}))["rooms"],
        json!([])
    );
    // The same connection may log in again.
    let ta2 = a.login_token("alice", 7001);
    assert_ne!(ta, ta2);
    assert!(b.is_online(&tb, "alice"));
}

#[test]
fn heartbeat_op() {
    let r = reg();
    register_all(&r, &["alice"]);
    let mut a = r.client();
    let ta = a.login_token("alice", 7001);
    for id in 0..3 {
        let reply = a.ok(json!({"id": id, "op": "heartbeat", "token": ta}));
        assert_eq!(reply, json!({"id": id, "ok": true}));
    }
}

#[test]
fn search_online_and_offline_users() {
    let r = reg();
    register_all(&r, &["alice", "bob", "carol"]);
    let mut a = r.client();
    let ta = a.login_token("alice", 7001);
    let mut b = r.client();
    b.login_token("bob", 8001);

    let reply = a.ok(json!({"id": 5, "op": "search", "token": ta, "username": "bob"}));
    assert_eq!(
        reply,
        json!({"id": 5, "ok": true,
               "user": {"username": "bob", "online": true, "address": address("127.0.0.1", 8001)}})
    );
    // Registered but never logged in: offline, and no address at all.
    let reply = a.ok(json!({"id": 6, "op": "search", "token": ta, "username": "carol"}));
    assert_eq!(
        reply,
        json!({"id": 6, "ok": true, "user": {"username": "carol", "online": false}})
    );
}

#[test]
fn online_lists_only_online_users_sorted() {
    let r = reg();
    register_all(&r, &["zed", "amy", "mia", "bob"]);
    let mut clients = Vec::new();
    let mut token = String::new();
    for (i, n) in ["zed", "mia", "amy"].iter().enumerate() {
        let mut c = r.client();
        token = c.login_token(n, 7000 + 10 * i as u16);
        clients.push(c);
    }
    let c = clients.last_mut().unwrap();
    let reply = c.ok(json!({"id": 1, "op": "online", "token": token}));
    assert_eq!(
        reply,
        json!({"id": 1, "ok": true, "users": [
            {"username": "amy", "online": true, "address": address("127.0.0.1", 7020)},
            {"username": "mia", "online": true, "address": address("127.0.0.1", 7010)},
            {"username": "zed", "online": true, "address": address("127.0.0.1", 7000)},
        ], "total": 3, "next": null})
    );
}

#[test]
fn rooms_lifecycle() {
    let r = reg();
    register_all(&r, &["alice", "bob", "carol"]);
    let mut a = r.client();
    let ta = a.login_token("alice", 7001);
    let mut b = r.client();
    let tb = b.login_token("bob", 8001);
    let mut c = r.client();
    let tc = c.login_token("carol", 9001);

    // create_room: the creator is the only member and gets the key epoch;
    // no key (a member makes it, see `room_keys_are_made_by_members`).
    let reply = a.ok(json!({"id": 1, "op": "create_room", "token": ta, "room": "lab"}));
    assert_eq!(
        reply,
        json!({"id": 1, "ok": true, "room": {"name": "lab", "epoch": 1, "members": [
            {"username": "alice", "online": true, "address": address("127.0.0.1", 7001)},
        ]}, "roles": {"alice": "owner"}})
    );

    // join_room: members with addresses, and the same epoch.
    let reply = b.ok(json!({"id": 2, "op": "join_room", "token": tb, "room": "lab"}));
    assert_eq!(
        reply,
        json!({"id": 2, "ok": true, "room": {"name": "lab", "epoch": 1, "members": [
            {"username": "alice", "online": true, "address": address("127.0.0.1", 7001)},
            {"username": "bob", "online": true, "address": address("127.0.0.1", 8001)},
        ]}, "roles": {"alice": "owner"}})
    );
    // Joining again is harmless.
    let again = b.ok(json!({"op": "join_room", "token": tb, "room": "lab"}));
    assert_eq!(names(&again["room"]["members"]), ["alice", "bob"]);

    // members: a non-member sees the members but not the epoch.
    let reply = c.ok(json!({"id": 3, "op": "members", "token": tc, "room": "lab"}));
    assert_eq!(
        reply,
        json!({"id": 3, "ok": true, "room": {"name": "lab", "members": [
            {"username": "alice", "online": true, "address": address("127.0.0.1", 7001)},
            {"username": "bob", "online": true, "address": address("127.0.0.1", 8001)},
        ]}, "roles": {"alice": "owner"}})
    );
    let reply = a.ok(json!({"op": "members", "token": ta, "room": "lab"}));
    assert_eq!(
        reply["room"]["epoch"],
        json!(1),
        "members tells members the epoch"
    );

    // rooms: every room with its member count, sorted by name.
    c.ok(json!({"op": "create_room", "token": tc, "room": "den"}));
    let reply = b.ok(json!({"id": 4, "op": "rooms", "token": tb}));
    assert_eq!(
        reply,
        json!({"id": 4, "ok": true, "rooms": [
            {"name": "den", "members": 1},
            {"name": "lab", "members": 2},
        ]})
    );

    // leave_room: deleted only when the last member leaves.
    let reply = a.ok(json!({"id": 5, "op": "leave_room", "token": ta, "room": "lab"}));
    assert_eq!(
        reply,
        json!({"id": 5, "ok": true, "room": "lab", "deleted": false})
    );
    assert_eq!(c.member_names(&tc, "lab"), ["bob"]);
    // Alice left: one epoch on, told to the members only.
    let rekeyed = b.ok(json!({"op": "members", "token": tb, "room": "lab"}));
    assert_eq!(rekeyed["room"]["epoch"], json!(2), "{rekeyed}");
    let outside = a.ok(json!({"op": "members", "token": ta, "room": "lab"}));
    assert_eq!(outside["room"].get("epoch"), None, "{outside}");
    let reply = b.ok(json!({"id": 6, "op": "leave_room", "token": tb, "room": "lab"}));
    assert_eq!(
        reply,
        json!({"id": 6, "ok": true, "room": "lab", "deleted": true})
    );
    assert_eq!(
        b.ok(json!({"op": "rooms", "token": tb}))["rooms"],
        json!([{"name": "den", "members": 1}])
    );
    // The name is free again.
    let reply = a.ok(json!({"op": "create_room", "token": ta, "room": "lab"}));
    assert_eq!(
        reply["room"]["epoch"],
        json!(1),
        "a new room starts at epoch 1"
    );
}

// ---------------------------------------------------------------- framing errors

// ---------------------------------------------------------------- account errors

#[test]
fn register_validation_errors() {
    let r = reg();
    let mut c = r.client();
    for bad in [
        "ab",
        "Alice",
        "_bob",
        "bob!",
        "ünï",
        "a b",
        "",
        &"a".repeat(33),
    ] {
        c.expect_err(
            json!({"op": "register", "username": bad, "password": PASSWORD}),
            "invalid_username",
        );
    }
    for weak in ["", "1234567", "ünïcödé", &"p".repeat(1025)] {
        c.expect_err(
            json!({"op": "register", "username": "alice", "password": weak}),
            "weak_password",
        );
    }
    // Boundaries that are allowed.
    c.register("abc");
    c.register(&"a".repeat(32));
    c.ok(json!({"op": "register", "username": "0.z_-", "password": "12345678"}));
    c.ok(json!({"op": "register", "username": "longpw", "password": "p".repeat(1024)}));
    // user_exists, and the first password still works.
    c.register("alice");
    c.expect_err(
        json!({"op": "register", "username": "alice", "password": "another password"}),
        "user_exists",
    );
    c.login_token("alice", 7001);
}

#[test]
fn invalid_address_errors() {
    let r = reg();
    register_all(&r, &["alice"]);
    let mut c = r.client();
    let login = |tcp: u16, udp: u16, adv: Option<&str>| {
        let mut v = json!({"op": "login", "username": "alice", "password": PASSWORD,
                           "tcp_port": tcp, "udp_port": udp});
        if let Some(a) = adv {
            v["advertise_ip"] = json!(a);
        }
        v
    };
    c.expect_err(login(0, 7002, None), "invalid_address");
    c.expect_err(login(7001, 0, None), "invalid_address");
    for adv in ["not-an-ip", "", "256.1.1.1", "10.0.0.1:80", "example.com"] {
        c.expect_err(login(7001, 7002, Some(adv)), "invalid_address");
    }
    // Addresses no peer can reach anyone at: unspecified, broadcast,
    // multicast (peers would send room traffic and chats there).
    for adv in ["0.0.0.0", "::", "255.255.255.255", "224.0.0.251", "ff02::1"] {
        let e = c.request(login(7001, 7002, Some(adv)));
        assert_eq!(e["code"], "invalid_address", "{adv}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains("advertise_ip is"),
            "{e}"
        );
    }
    // None of these counted as failed logins or created a session.
    let reply = c.login("alice", 7001);
    let token = reply["token"].as_str().unwrap().to_string();
    // resume checks the address too.
    drop(c);
    let mut d = r.client();
    d.expect_err(
        json!({"op": "resume", "token": token, "tcp_port": 0, "udp_port": 1}),
        "invalid_address",
    );
    d.expect_err(
        json!({"op": "resume", "token": token, "tcp_port": 1, "udp_port": 2, "advertise_ip": "x"}),
        "invalid_address",
    );
}

#[test]
fn invalid_credentials_same_for_wrong_password_and_unknown_user() {
    let r = reg();
    register_all(&r, &["alice"]);
    let mut c = r.client();
    let wrong = c.request(
        json!({"op": "login", "username": "alice", "password": "wrong password",
                                 "tcp_port": 7001, "udp_port": 7002}),
    );
    let unknown = c.request(
        json!({"op": "login", "username": "nobody", "password": PASSWORD,
                                   "tcp_port": 7001, "udp_port": 7002}),
    );
    let invalid = c.request(
        json!({"op": "login", "username": "No Such!", "password": PASSWORD,
                                   "tcp_port": 7001, "udp_port": 7002}),
    );
    for reply in [&wrong, &unknown, &invalid] {
        assert_error_shape(reply);
        assert_eq!(reply["code"], json!("invalid_credentials"), "{reply}");
    }
    // Not told apart, not even by the message.
    assert_eq!(wrong["message"], unknown["message"]);
    assert_eq!(wrong["message"], invalid["message"]);
    c.login_token("alice", 7001);
}

fn login_req(user: &str, password: &str) -> Value {
    json!({"op": "login", "username": user, "password": password, "tcp_port": 7001, "udp_port": 7002})
}

/// Guessing a name's password is slowed down and then refused, but never
/// locks the name's owner out: five wrong passwords for alice from one
/// address used to refuse alice's right password from any address for a
/// minute.
#[test]
fn guessing_is_throttled_but_the_owner_gets_in_at_once() {
    let r = reg();
    register_all(&r, &["alice", "bob"]);
    let mut c = r.client();
    let mut took = Vec::new();
    for i in 0..5 {
        let sent = Instant::now();
        assert_eq!(
            c.err(login_req("alice", "wrong password")),
            "invalid_credentials",
            "attempt {}",
            i + 1
        );
        took.push(sent.elapsed());
    }
    // Each failure delays the next attempt: 0.25, 0.5, 1 then 2 s.
    assert!(took[3] >= Duration::from_millis(1000), "{took:?}");
    assert!(took[4] >= Duration::from_millis(2000), "{took:?}");
    // The 6th attempt is refused before the password is even looked at,
    // and so is every name from that address.
    c.expect_err(login_req("alice", PASSWORD), "rate_limited");
    c.expect_err(login_req("bob", PASSWORD), "rate_limited");
    // The owner, from another address, gets in at once.
    let mut owner = Client::connect_from(Ipv4Addr::new(127, 0, 0, 2), r.port());
    let sent = Instant::now();
    owner.login_token("alice", 8001);
    assert!(
        sent.elapsed() < Duration::from_millis(1000),
        "{:?}",
        sent.elapsed()
    );
    let mut d = Client::connect_from(Ipv4Addr::new(127, 0, 0, 3), r.port());
    d.login_token("bob", 8002);
}

#[test]
fn rate_limited_per_ip() {
    let r = reg();
    register_all(&r, &["carol", "dave"]);
    let mut c = r.client();
    // One failure each for five usernames from one address.
    for (i, user) in ["u1", "u2", "u3", "carol", "u5"].iter().enumerate() {
        assert_eq!(
            c.err(login_req(user, "wrong password")),
            "invalid_credentials",
            "attempt {}",
            i + 1
        );
    }
    // That address is now blocked, even for a correct password of a user
    // with no failures of its own, and on a new connection.
    c.expect_err(login_req("dave", PASSWORD), "rate_limited");
    let mut c2 = r.client();
    c2.expect_err(login_req("dave", PASSWORD), "rate_limited");
    // Another address can log in both (carol has only 1 failure).
    let mut d = Client::connect_from(Ipv4Addr::new(127, 0, 0, 2), r.port());
    d.login_token("dave", 8001);
    let mut e = Client::connect_from(Ipv4Addr::new(127, 0, 0, 2), r.port());
    e.login_token("carol", 9001);
}

#[test]
fn already_online() {
    let r = reg();
    register_all(&r, &["alice", "bob"]);
    let mut a = r.client();
    let ta = a.login_token("alice", 7001);
    let _hb = r.heartbeater(&ta, std::time::Duration::from_millis(200));
    a.ok(json!({"op": "heartbeat", "token": ta}));

    // A second login for alice while her connection is alive and heartbeating.
    let mut a2 = r.client();
    a2.expect_err(login_req("alice", PASSWORD), "already_online");
    // The same connection cannot log in again (as anyone) without logging out.
    a.expect_err(login_req("alice", PASSWORD), "already_online");
    a.expect_err(login_req("bob", PASSWORD), "already_online");
    // The first session is untouched.
    assert!(a.is_online(&ta, "alice"));
    assert_eq!(
        a.search(&ta, "alice")["address"],
        address("127.0.0.1", 7001)
    );
    // already_online is not a failed login: no rate limiting follows.
    for _ in 0..6 {
        a2.expect_err(login_req("alice", PASSWORD), "already_online");
    }
    a.ok(json!({"op": "logout", "token": ta}));
    a2.login_token("alice", 7101);
}

// ---------------------------------------------------------------- session errors

#[test]
fn invalid_session_errors() {
    let r = reg();
    register_all(&r, &["alice"]);
    let mut c = r.client();
    let bogus = "0".repeat(64);
    for req in [
        json!({"op": "search", "token": bogus, "username": "alice"}),
        json!({"op": "heartbeat", "token": bogus}),
        json!({"op": "logout", "token": bogus}),
        json!({"op": "online", "token": ""}),
        json!({"op": "rooms", "token": "x".repeat(5000)}),
        json!({"op": "resume", "token": bogus, "tcp_port": 1, "udp_port": 2}),
    ] {
        c.expect_err(req, "invalid_session");
    }
    // A token after logout is dead, for every op.
    let t = c.login_token("alice", 7001);
    c.ok(json!({"op": "logout", "token": t}));
    c.expect_err(json!({"op": "online", "token": t}), "invalid_session");
    c.expect_err(json!({"op": "logout", "token": t}), "invalid_session");
    c.expect_err(json!({"op": "heartbeat", "token": t}), "invalid_session");
    let mut d = r.client();
    d.expect_err(
        json!({"op": "resume", "token": t, "tcp_port": 1, "udp_port": 2}),
        "invalid_session",
    );
}

#[test]
fn nobody_acts_as_another_user() {
    let r = reg();
    register_all(&r, &["alice", "bob"]);
    let mut a = r.client();
    let ta = a.login_token("alice", 7001);
    let mut b = r.client();
    let tb = b.login_token("bob", 8001);
    a.ok(json!({"op": "create_room", "token": ta, "room": "lab"}));

    // Bob's connection holding alice's token cannot use it for anything.
    for req in [
        json!({"op": "logout", "token": ta}),
        json!({"op": "heartbeat", "token": ta}),
        json!({"op": "search", "token": ta, "username": "alice"}),
        json!({"op": "online", "token": ta}),
        json!({"op": "create_room", "token": ta, "room": "evil"}),
        json!({"op": "join_room", "token": ta, "room": "lab"}),
        json!({"op": "leave_room", "token": ta, "room": "lab"}),
        json!({"op": "rooms", "token": ta}),
        json!({"op": "members", "token": ta, "room": "lab"}),
    ] {
        b.expect_err(req, "not_your_session");
    }
    // Nor move her session onto his logged-in connection.
    b.expect_err(
        json!({"op": "resume", "token": ta, "tcp_port": 6666, "udp_port": 6667}),
        "already_online",
    );
    // A connection that never logged in cannot use it either.
    let mut anon = r.client();
    anon.expect_err(json!({"op": "logout", "token": ta}), "not_your_session");
    anon.expect_err(json!({"op": "online", "token": ta}), "not_your_session");
    // A random token is no session at all.
    let random = "9f".repeat(32);
    b.expect_err(json!({"op": "logout", "token": random}), "invalid_session");

    // Alice is still online, where she was, and still in her room alone.
    assert_eq!(
        b.search(&tb, "alice"),
        json!({"username": "alice", "online": true, "address": address("127.0.0.1", 7001)})
    );
    assert_eq!(b.member_names(&tb, "lab"), ["alice"]);
    assert_eq!(
        b.ok(json!({"op": "rooms", "token": tb}))["rooms"],
        json!([{"name": "lab", "members": 1}])
    );
    // And her own connection still works with her token.
    a.ok(json!({"op": "heartbeat", "token": ta}));
    // Bob's own token works on his connection, not on alice's.
    a.expect_err(json!({"op": "logout", "token": tb}), "not_your_session");
    assert!(a.is_online(&ta, "bob"));
}

#[test]
fn user_not_found() {
    let r = reg();
    register_all(&r, &["alice"]);
    let mut c = r.client();
    let t = c.login_token("alice", 7001);
    for who in ["nobody", "Alice", "x", "", "../etc"] {
        c.expect_err(
            json!({"op": "search", "token": t, "username": who}),
            "user_not_found",
        );
    }
}

#[test]
fn room_errors() {
    let r = reg();
    register_all(&r, &["alice", "bob"]);
    let mut a = r.client();
    let ta = a.login_token("alice", 7001);
    let mut b = r.client();
    let tb = b.login_token("bob", 8001);

    for bad in ["", "Lab", "a b", "lab!", "läb", "a.b", &"r".repeat(33)] {
        for op in ["create_room", "join_room", "leave_room", "members"] {
            a.expect_err(
                json!({"op": op, "token": ta, "room": bad}),
                "invalid_room_name",
            );
        }
    }
    a.ok(json!({"op": "create_room", "token": ta, "room": "r"}));
    a.ok(json!({"op": "create_room", "token": ta, "room": "r".repeat(32)}));
    a.ok(json!({"op": "create_room", "token": ta, "room": "lab_1-x"}));

    a.expect_err(
        json!({"op": "create_room", "token": ta, "room": "lab_1-x"}),
        "room_exists",
    );
    b.expect_err(
        json!({"op": "create_room", "token": tb, "room": "lab_1-x"}),
        "room_exists",
    );

    for op in ["join_room", "leave_room", "members"] {
        b.expect_err(
            json!({"op": op, "token": tb, "room": "nope"}),
            "no_such_room",
        );
    }
    b.expect_err(
        json!({"op": "leave_room", "token": tb, "room": "lab_1-x"}),
        "not_a_member",
    );
    // After leaving, leaving again is not_a_member (room still has alice).
    b.ok(json!({"op": "join_room", "token": tb, "room": "lab_1-x"}));
    b.ok(json!({"op": "leave_room", "token": tb, "room": "lab_1-x"}));
    b.expect_err(
        json!({"op": "leave_room", "token": tb, "room": "lab_1-x"}),
        "not_a_member",
    );
    // Once the last member leaves, the room is gone.
    a.ok(json!({"op": "leave_room", "token": ta, "room": "lab_1-x"}));
    a.expect_err(
        json!({"op": "leave_room", "token": ta, "room": "lab_1-x"}),
        "no_such_room",
    );
    a.expect_err(
        json!({"op": "members", "token": ta, "room": "lab_1-x"}),
        "no_such_room",
    );
}
