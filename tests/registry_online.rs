//! `online` paging on the real wire, and a session held in memory by the
//! connection that logged in: what another registry instance sharing the
//! store does to it (`resume` there) reaches the first within the re-check
//! interval (2 s, protocol.md §1).

mod kit;

use kit::*;
use serde_json::{json, Value};
use std::time::Duration;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `(names, total, next)` of an `online` reply.
fn page(reply: &Value) -> (Vec<String>, Value, Value) {
    (
        names(&reply["users"]),
        reply["total"].clone(),
        reply["next"].clone(),
    )
}

#[test]
fn online_pages_by_limit_cursor_and_prefix() {
    let r = Registry::start(LONG_SESSIONS);
    let all: Vec<String> = (0..12).map(|i| format!("user{i:02}")).collect();
    let mut c = r.client();
    c.register("zed");
    for n in &all {
        c.register(n);
    }
    // Everyone logged in on a connection of their own, kept open.
    let mut conns: Vec<Client> = Vec::new();
    for (i, n) in all.iter().enumerate() {
        let mut s = r.client();
        s.login_token(n, 7000 + 2 * i as u16);
        conns.push(s);
    }
    let mut z = r.client();
    let tz = z.login_token("zed", 9000);
    let mut want = all.clone();
    want.push("zed".into());

    // Without paging fields (an older client): the first page of 100.
    let reply = z.ok(json!({"op": "online", "token": tz}));
    assert_eq!(page(&reply), (want.clone(), json!(13), Value::Null));
    assert_eq!(
        reply["users"][0],
        json!({"username": "user00", "online": true,
               "address": {"ip": "127.0.0.1", "tcp_port": 7000, "udp_port": 7001}})
    );

    let mut seen = Vec::new();
    let mut after = Value::Null;
    for want_next in [json!("user04"), json!("user09"), Value::Null] {
        let mut req = json!({"op": "online", "token": tz, "limit": 5});
        if !after.is_null() {
            req["after"] = after.clone();
        }
        let (names, total, next) = page(&z.ok(req));
        assert_eq!((total, &next), (json!(13), &want_next));
        seen.extend(names);
        after = next;
    }
    assert_eq!(seen, want);

    let reply = z.ok(json!({"op": "online", "token": tz, "prefix": "user1", "limit": 1}));
    assert_eq!(
        page(&reply),
        (vec!["user10".to_string()], json!(2), json!("user10"))
    );
    let reply = z.ok(json!({"op": "online", "token": tz, "prefix": "user1", "after": "user10"}));
    assert_eq!(
        page(&reply),
        (vec!["user11".to_string()], json!(2), Value::Null)
    );
    for bad in [
        json!({"op": "online", "token": tz, "limit": 0}),
        json!({"op": "online", "token": tz, "limit": -1}),
        json!({"op": "online", "token": tz, "prefix": "User"}),
        json!({"op": "online", "token": tz, "after": 7}),
    ] {
        z.expect_err(bad, "bad_request");
    }
}

#[test]
fn a_session_resumed_on_another_registry_stops_working_on_the_first() {
    let a = Registry::start(LONG_SESSIONS);
    resumed_elsewhere(&a, a.store());
}

#[cfg(feature = "mongodb")]
#[test]
fn on_mongodb_a_session_resumed_on_another_registry_stops_working_on_the_first() {
    let uri = kit::mongo::mongo_uri("resumed_elsewhere");
    let a = Registry::builder().flags(LONG_SESSIONS).store(&uri).start();
    resumed_elsewhere(&a, &uri);
}

/// Two registries on one store: alice logs in on `a`, resumes on the other.
fn resumed_elsewhere(a: &Registry, store: &str) {
    let b = Registry::builder()
        .flags(LONG_SESSIONS)
        .store(store)
        .start();
    let mut c = a.client();
    c.register("alice");
    c.register("bob");
    let mut bob = a.client();
    let tb = bob.login_token("bob", 8001);
    let mut a1 = a.client();
    let ta = a1.login_token("alice", 7001);
    a1.ok(json!({"op": "online", "token": ta}));

    let mut a2 = b.client();
    a2.ok(json!({"op": "resume", "token": ta, "tcp_port": 7101, "udp_port": 7102}));
    // The first registry learns it at its next re-check of the session,
    // at most 2 s after the last one.
    let took = wait_until(ms(3500), ms(50), "the old connection refused", || {
        let reply = a1.request(json!({"op": "online", "token": ta}));
        reply["ok"] == json!(false)
    });
    assert!(took <= ms(2500), "{took:?}");
    a1.expect_err(json!({"op": "logout", "token": ta}), "not_your_session");
    a1.expect_err(json!({"op": "heartbeat", "token": ta}), "not_your_session");
    // The session lives on where it went, as both registries say.
    a2.ok(json!({"op": "heartbeat", "token": ta}));
    assert_eq!(
        bob.search(&tb, "alice")["address"],
        json!({"ip": "127.0.0.1", "tcp_port": 7101, "udp_port": 7102})
    );
    assert!(bob.is_online(&tb, "alice"));
}
