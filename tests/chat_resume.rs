//! One-to-one chats that lose their connection, on the real binaries over
//! loopback: a partner frozen (SIGSTOP) long enough for the chat to be
//! interrupted, then thawed, gets the chat back by itself with every
//! message exactly once; the netns tests (`chat_netns`) do the same with a
//! cable pulled.

mod kit;

use kit::*;
use lanchat::identity::Identity;
use serde_json::json;
use std::time::{Duration, Instant};

fn setup() -> (Registry, Peer, Peer) {
    let reg = Registry::start(LONG_SESSIONS);
    let mut p = login_all(reg.addr(), &["alice", "bob"], &PeerOpts::default());
    let mut bob = p.pop().expect("bob");
    let mut alice = p.pop().expect("alice");
    open_chat(&mut alice, &mut bob);
    (reg, alice, bob)
}

#[test]
fn frozen_partner_gets_the_chat_back_with_every_message_once() {
    let (_reg, mut alice, mut bob) = setup();
    alice.send("one");
    bob.expect("message", &[("text", "one")], WAIT);
    bob.signal(libc::SIGSTOP);
    let t0 = Instant::now();
    alice.send("while frozen");
    alice.expect("chat_interrupted", &[("with", "bob")], WAIT);
    eprintln!("interrupted {:?} after SIGSTOP", t0.elapsed());
    alice.send("queued");
    alice.expect(
        "message",
        &[("text", json!("queued")), ("queued", json!(true))],
        WAIT,
    );
    bob.signal(libc::SIGCONT);
    let t1 = Instant::now();
    alice.expect("chat_resumed", &[("with", "bob")], Duration::from_secs(15));
    bob.expect("chat_resumed", &[("with", "alice")], WAIT);
    eprintln!("resumed {:?} after SIGCONT", t1.elapsed());
    bob.expect("message", &[("text", "queued")], WAIT);
    alice.send("after");
    bob.expect("message", &[("text", "after")], WAIT);
    bob.send("all here");
    alice.expect("message", &[("text", "all here")], WAIT);
    let got: Vec<(u64, String)> = bob
        .history
        .iter()
        .filter(|v| v["event"] == "message" && v["chat"] == "alice" && v["own"] != json!(true))
        .map(|v| {
            let id = v["id"].as_u64().unwrap_or(0);
            (id, v["text"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    let want: Vec<(u64, String)> = [(1, "one"), (2, "while frozen"), (3, "queued"), (4, "after")]
        .iter()
        .map(|(i, t)| (*i, t.to_string()))
        .collect();
    assert_eq!(got, want);
    assert!(
        !alice.history.iter().any(|v| v["event"] == "undelivered"),
        "alice reported something undelivered"
    );
}

/// One chat connection to `peer` as a hand-written partner: a Noise
/// channel (as `mallory`, with `keys`) carrying the chat's JSON lines.
struct Wire(NoiseConn);

impl Wire {
    fn open(peer: &Peer, keys: &Identity, hello: serde_json::Value) -> Wire {
        let key = keys_of(peer, "bob").public().kx;
        let mut w = Wire(NoiseConn::dial(peer.tcp_port, keys, "mallory", "bob", key));
        w.put(hello);
        w
    }

    fn put(&mut self, v: serde_json::Value) {
        self.0.send(v);
    }

    /// The next line other than a ping; `None` once closed or silent.
    fn take(&mut self) -> Option<serde_json::Value> {
        self.0.next(WAIT)
    }
}

/// The resume handshake on the wire (inside each connection's Noise
/// channel), against a hand-written partner: a
/// resume of a chat the peer does not hold is refused, a dropped
/// connection interrupts the chat, a resume answers with what was shown
/// and sends the unacknowledged message again, and repeats are dropped.
#[test]
fn resume_handshake_on_the_wire() {
    let reg = Registry::start(LONG_SESSIONS);
    let mut bob = Peer::spawn_named("bob", reg.addr(), &[]);
    bob.login_new("bob");
    // mallory: a registered user with keys of her own, no peer behind.
    let keys = Identity::generate();
    let _mallory = keyed_login(reg.addr(), "mallory", &keys, 9);
    let hello = |received: Option<u64>| {
        let mut v = json!({"type": "hello", "from": "mallory", "version": 1, "chat": "c1"});
        if let Some(r) = received {
            v["received"] = json!(r);
        }
        v
    };

    let mut w = Wire::open(&bob, &keys, hello(Some(0)));
    assert_eq!(
        w.take(),
        Some(json!({"type": "reject", "reason": "unknown chat"}))
    );
    bob.expect_none("chat_request", ANY, Duration::ZERO);

    let mut w = Wire::open(&bob, &keys, hello(None));
    bob.expect("chat_request", &[("from", "mallory")], WAIT);
    bob.send("/accept mallory");
    assert_eq!(w.take(), Some(json!({"type": "accept", "received": 0})));
    bob.send("hi");
    assert_eq!(
        w.take(),
        Some(json!({"type": "msg", "id": 1, "text": "hi"}))
    );
    w.put(json!({"type": "msg", "id": 1, "text": "yo"}));
    assert_eq!(w.take(), Some(json!({"type": "ack", "id": 1})));
    drop(w);
    bob.expect("chat_interrupted", &[("with", "mallory")], WAIT);

    // "hi" was never acknowledged: sent again after the resume.
    let mut w = Wire::open(&bob, &keys, hello(Some(0)));
    assert_eq!(w.take(), Some(json!({"type": "accept", "received": 1})));
    assert_eq!(
        w.take(),
        Some(json!({"type": "msg", "id": 1, "text": "hi"}))
    );
    bob.expect("chat_resumed", &[("with", "mallory")], WAIT);
    w.put(json!({"type": "ack", "id": u64::MAX}));
    w.put(json!({"type": "msg", "id": 1, "text": "yo"}));
    w.put(json!({"type": "msg", "id": 2, "text": "again"}));
    assert_eq!(w.take(), Some(json!({"type": "ack", "id": 2})));
    bob.expect("message", &[("text", "again")], WAIT);
    assert_eq!(bob.texts_from("mallory", "mallory"), ["yo", "again"]);
    bob.send("/close mallory");
    bob.expect("chat_closed", &[("with", "mallory")], WAIT);
    assert_eq!(w.take(), Some(json!({"type": "bye"})));
    bob.expect_none("undelivered", ANY, Duration::ZERO);
}
