//! Several registries on one MongoDB store, and a peer given a list of
//! them: when its registry is killed (`kill -9`) mid-conversation, the peer
//! moves its session and rooms to another one within the session time-out
//! (3 s), so nobody goes offline, no room message is lost, and presence on
//! the surviving registry stays right.
//!
//! Needs a MongoDB-compatible server: `make test` passes `NX27017`
//! (see `kit::mongo`); without the `mongodb` feature the test is not built.

#![cfg(feature = "mongodb")]

mod kit;

use kit::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Cheap password hashes: the test is about sessions, not hashing.
const CHEAP_HASH: &[&str] = &["--argon2-memory-kib", "256", "--argon2-passes", "1"];
/// The bound: back online on another registry within this.
const RECOVERY: Duration = Duration::from_secs(3);
const T: Duration = Duration::from_secs(10);

/// Every user `observer` sees online at its registry.
fn online(observer: &mut Session) -> Vec<String> {
    let mut users = names(&observer.ok(json!({"op": "online"}))["users"]);
    users.sort();
    users
}

/// A text to the current conversation (the room), remembered in `sent`.
fn say(p: &mut Peer, sent: &mut Vec<(String, Vec<String>)>, text: String) {
    p.send(&text);
    let name = p.name.clone();
    match sent.iter_mut().find(|(from, _)| *from == name) {
        Some((_, texts)) => texts.push(text),
        None => sent.push((name, vec![text])),
    }
}

#[test]
fn peers_move_to_another_registry_when_theirs_is_killed() {
    let nx = kit::mongo::nx_server_start(&kit::mongo::fresh_dir("failover"));
    let uri = nx.uri("registry_failover");
    // One certificate for both (as the README advises for registries that
    // share a store): the peers trust it once, and a move is silent.
    let certs = tempfile::tempdir().unwrap();
    let shared = ["--cert-dir", certs.path().to_str().unwrap()];
    let mut reg_a = Registry::builder()
        .store(&uri)
        .flags(CHEAP_HASH)
        .flags(&shared)
        .start();
    let mut reg_b = Registry::builder()
        .store(&uri)
        .flags(CHEAP_HASH)
        .flags(&shared)
        .start();
    assert_eq!(reg_a.fingerprint(), reg_b.fingerprint());
    let (a, b) = (reg_a.addr(), reg_b.addr());

    // alice and bob on A, carol on B; each has the other registry second.
    let mut p = login_peers(
        format!("{a},{b}"),
        &[("alice", PeerOpts::default()), ("bob", PeerOpts::default())],
    );
    p.extend(login_peers(
        format!("{b},{a}"),
        &[("carol", PeerOpts::default())],
    ));
    {
        let [alice, _, carol] = &mut p[..] else {
            unreachable!()
        };
        open_chat(alice, carol);
    }
    form_room(&mut p, "lab", T);
    let mut observer = reg_b.ghost_login("olivia", 9, 9).with_heartbeats(ms(500));
    assert_eq!(online(&mut observer), ["alice", "bob", "carol", "olivia"]);
    // dave is connected to A (registered) but not logged in.
    let mut dave = Peer::start(format!("{a},{b}"), "dave", &PeerOpts::default());
    dave.send(&format!("/register dave {PASSWORD}"));
    dave.expect("registered", &[("username", "dave")], T);

    let mut sent = Vec::new();
    for x in p.iter_mut() {
        let text = format!("{} before", x.name);
        say(x, &mut sent, text);
    }
    p[0].send("/msg carol chat before");
    p[2].expect("message", &[("from", "alice"), ("text", "chat before")], T);

    // (The notice of the certificate trusted at the first connection is
    // history before the kill.)
    let before: Vec<usize> = p.iter().map(|x| x.history.len()).collect();
    reg_a.kill9();
    let killed = Instant::now();
    let killed_us = now_us();
    // Sent while alice and bob have no registry.
    for x in p.iter_mut() {
        let text = format!("{} during", x.name);
        say(x, &mut sent, text);
    }

    let mut lags = Vec::new();
    for x in p[..2].iter_mut() {
        let name = x.name.clone();
        let moved = x.expect(
            "registry_moved",
            &[
                ("from", json!(a.to_string())),
                ("to", json!(b.to_string())),
                ("username", json!(name)),
            ],
            T,
        );
        let lag = Duration::from_micros(moved["ts_us"].as_u64().unwrap().saturating_sub(killed_us));
        lags.push((name, lag));
    }
    eprintln!("after kill -9 of registry A: session restored on B after {lags:?}");
    for (who, lag) in &lags {
        assert!(*lag < RECOVERY, "{who} was back only after {lag:?}");
    }
    let moved = dave.expect("registry_moved", ANY, T);
    assert_eq!(
        (&moved["from"], &moved["to"], moved.get("username")),
        (&json!(a.to_string()), &json!(b.to_string()), None)
    );
    // One line says so: no `registry_lost`, `session_restored` or notice.
    for (x, before) in p[..2].iter_mut().zip(&before) {
        x.drain();
        let extra: Vec<&Value> = x.history[*before..]
            .iter()
            .filter(|v| {
                ["registry_lost", "session_restored", "notice"]
                    .contains(&v["event"].as_str().unwrap_or(""))
            })
            .collect();
        assert!(
            extra.is_empty(),
            "{}: more than one line: {extra:?}",
            x.name
        );
    }

    // Nobody went offline at the survivor: everyone is listed, during and
    // after the move, and nobody left the room.
    wait_until(T, ms(50), "all three online at B", || {
        online(&mut observer) == ["alice", "bob", "carol", "olivia"]
    });
    eprintln!("all online at B {:?} after the kill", killed.elapsed());

    for x in p.iter_mut() {
        let text = format!("{} after", x.name);
        say(x, &mut sent, text);
    }
    p[0].send("/msg carol chat after");
    p[2].send("/msg alice chat reply");
    p[2].expect("message", &[("from", "alice"), ("text", "chat after")], T);
    p[0].expect("message", &[("from", "carol"), ("text", "chat reply")], T);

    expect_exact(&mut p, "#lab", &sent, T);
    // Past the session time-out counted from the kill: still all online
    // (heartbeats now go to B), checked all along.
    let mut checks = 0;
    while killed.elapsed() < RECOVERY + ms(500) {
        assert_eq!(online(&mut observer), ["alice", "bob", "carol", "olivia"]);
        checks += 1;
        std::thread::sleep(ms(100));
    }
    assert!(checks > 0);
    for x in p.iter_mut() {
        x.drain();
        let left: Vec<&Value> = x
            .history
            .iter()
            .filter(|v| v["event"] == "member_left" || v["event"] == "delivery_failed")
            .collect();
        assert!(left.is_empty(), "{}: {left:?}", x.name);
    }
    assert_eq!(online(&mut observer), ["alice", "bob", "carol", "olivia"]);

    // With no registry left, the loss is shown as with a single one.
    reg_b.kill9();
    for x in p.iter_mut() {
        x.expect("registry_lost", ANY, T);
    }
}

/// A registry that stops answering (SIGSTOP: its connections stay open,
/// nothing closes them) is left too: the session check it does not answer
/// moves the peer to the other registry before its session goes offline.
#[test]
fn peers_leave_a_registry_that_stops_answering() {
    let nx = kit::mongo::nx_server_start(&kit::mongo::fresh_dir("failover-stop"));
    let uri = nx.uri("registry_failover_stop");
    let reg_a = Registry::builder().store(&uri).flags(CHEAP_HASH).start();
    let reg_b = Registry::builder().store(&uri).flags(CHEAP_HASH).start();
    let (a, b) = (reg_a.addr(), reg_b.addr());
    let mut p = login_peers(format!("{a},{b}"), &[("alice", PeerOpts::default())]);
    p.extend(login_peers(
        format!("{b},{a}"),
        &[("carol", PeerOpts::default())],
    ));
    form_room(&mut p, "lab", T);
    let mut observer = reg_b.ghost_login("olivia", 9, 9).with_heartbeats(ms(500));

    kit::process::signal(reg_a.pid(), libc::SIGSTOP).expect("SIGSTOP");
    let stopped_us = now_us();
    let moved = p[0].expect(
        "registry_moved",
        &[
            ("from", json!(a.to_string())),
            ("to", json!(b.to_string())),
            ("username", json!("alice")),
        ],
        T,
    );
    let lag = Duration::from_micros(moved["ts_us"].as_u64().unwrap().saturating_sub(stopped_us));
    eprintln!("after SIGSTOP of registry A: session restored on B after {lag:?}");
    assert!(lag < RECOVERY, "alice was back only after {lag:?}");
    assert_eq!(online(&mut observer), ["alice", "carol", "olivia"]);

    p[0].send("alice after");
    p[1].wait_messages("#lab", "alice", 1, T);
    p[1].drain();
    let left: Vec<&Value> = p[1]
        .history
        .iter()
        .filter(|v| v["event"] == "member_left")
        .collect();
    assert!(left.is_empty(), "carol saw {left:?}");
    // Killed on drop (SIGKILL works on a stopped process).
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
