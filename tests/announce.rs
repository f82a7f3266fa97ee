//! Announcements on the real wire: a registry started with `--admin`, the
//! real `peer` binaries, and raw clients for the exact replies.

mod kit;

use kit::*;
use serde_json::json;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

#[test]
fn an_announcement_reaches_every_online_peer() {
    let reg = Registry::start(&["--admin", "teacher,ta"]);
    let mut peers = login_all(reg.addr(), &["teacher", "amy", "ben"], &PeerOpts::default());
    let sent = Instant::now();
    peers[0].send("/announce 10 minutes left");
    let mut id = None;
    for p in peers.iter_mut() {
        let a = p.expect(
            "announcement",
            &[("by", "teacher"), ("text", "10 minutes left")],
            T,
        );
        assert!(id.is_none() || id == Some(a["id"].clone()), "{a}");
        id = Some(a["id"].clone());
    }
    let took = sent.elapsed();
    eprintln!("announcement reached 3 peers in {took:?}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    // Shown once: the next heartbeats (every 2 s) do not repeat it.
    peers[1].expect_none(
        "announcement",
        &[("text", "10 minutes left")],
        Duration::from_secs(3),
    );
    let n = peers[1]
        .history
        .iter()
        .filter(|v| v["event"] == "announcement")
        .count();
    assert_eq!(n, 1, "shown once");

    // Not an admin: refused, and nobody sees it.
    peers[1].send("/announce free pizza");
    peers[1].expect("error", &[("code", "not_admin")], T);
}

#[test]
fn heartbeat_replies_carry_announcements_only_to_peers_that_ask() {
    let reg = Registry::start(&["--admin", "teacher"]);
    let mut teacher = Session::login(reg.addr(), "teacher", 7001, 7001);
    let mut old = Session::login(reg.addr(), "amy", 7002, 7002);
    let a = teacher.ok(json!({"op": "announce", "text": "pens down"}));
    let ann = &a["announcement"];
    assert_eq!(
        (&ann["by"], &ann["text"]),
        (&json!("teacher"), &json!("pens down"))
    );
    // An old peer's heartbeat: the same empty reply as ever.
    let r = old.ok(json!({"op": "heartbeat"}));
    assert_eq!(r, json!({"id": r["id"], "ok": true}));
    // A new one says what it has seen.
    let r = old.ok(json!({"op": "heartbeat", "announcements_after": 0}));
    assert_eq!(r["announcements"], json!([ann]), "{r}");
    let seen = ann["id"].as_u64().unwrap();
    let r = old.ok(json!({"op": "heartbeat", "announcements_after": seen}));
    assert_eq!(r, json!({"id": r["id"], "ok": true}));
    // An admin has no power in rooms it does not run.
    old.ok(json!({"op": "create_room", "room": "lab"}));
    teacher.ok(json!({"op": "join_room", "room": "lab"}));
    let kick = json!({"op": "kick", "room": "lab", "username": "amy"});
    assert_eq!(teacher.request(kick)["code"], json!("not_operator"));
    // Too long, or empty: refused.
    let long = "x".repeat(501);
    assert_eq!(
        teacher.request(json!({"op": "announce", "text": long}))["code"],
        json!("announcement_too_long")
    );
    assert_eq!(
        teacher.request(json!({"op": "announce", "text": "  "}))["code"],
        json!("bad_request")
    );
}
