//! Nothing readable on the wire (issue 12): every packet on the loopback
//! interface is captured raw (`AF_PACKET`, as root) while two real peers
//! register, log in, chat one to one and talk in a room through a TLS-only
//! registry. No password, message text, token or room key may appear in
//! any captured byte.

mod kit;

use kit::capture::{self, Capture};
use kit::rooms::form_room;
use kit::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

/// Cheap password hashes: this test is about the wire, not hashing.
const CHEAP_HASH: &[&str] = &["--argon2-memory-kib", "256", "--argon2-passes", "1"];

#[test]
fn nothing_readable_on_the_wire_in_chats_and_rooms() {
    let r = Registry::builder().flags(CHEAP_HASH).tls_only().start();
    let Some(cap) = Capture::loopback() else {
        eprintln!("skipped: no AF_PACKET socket (not root)");
        return;
    };
    let keylog = tempfile::tempdir().unwrap();
    let password = "a quite secret password";
    let mut peers = Vec::new();
    for name in ["alice", "bob"] {
        let log = keylog.path().join(format!("{name}.keys"));
        let opts = PeerOpts {
            args: vec![
                "--registry-fingerprint".into(),
                r.fingerprint().to_string(),
                "--keylog".into(),
                log.display().to_string(),
            ],
            ..PeerOpts::default()
        };
        let mut p = Peer::start(r.addr(), name, &opts);
        p.send(&format!("/register {name} {password}"));
        p.expect("registered", ANY, T);
        p.send(&format!("/login {name} {password}"));
        p.expect("logged_in", ANY, T);
        p.name = name.to_string();
        peers.push(p);
    }
    let chat_text = "the chat secret is 4417 walrus";
    let reply_text = "and the answer is 9921 pelican";
    let room_text = "the room secret is 7734 heron";
    {
        let (a, b) = peers.split_at_mut(1);
        let (alice, bob) = (&mut a[0], &mut b[0]);
        alice.send("/chat bob");
        bob.expect("chat_request", &[("from", "alice")], T);
        bob.send("/accept alice");
        alice.expect("chat_accepted", &[("with", "bob")], T);
        alice.send(&format!("/msg bob {chat_text}"));
        bob.expect("message", &[("from", "alice"), ("text", chat_text)], T);
        bob.send(&format!("/msg alice {reply_text}"));
        alice.expect("message", &[("from", "bob"), ("text", reply_text)], T);
    }
    form_room(&mut peers, "lab", T);
    peers[0].send(&format!("/msg #lab {room_text}"));
    peers[1].expect("message", &[("from", "alice"), ("text", room_text)], T);
    let frames = cap.stop();
    // The capture saw the chat (TCP to bob's port) and the room (UDP to
    // bob's port), so what follows checks real traffic.
    for (what, port) in [("chat", peers[1].tcp_port), ("room", peers[1].udp_port)] {
        assert!(
            !capture::payloads_on_port(&frames, port).is_empty(),
            "no {what} traffic captured on port {port}"
        );
    }
    let all: Vec<u8> = frames.concat();

    let mut secrets: Vec<Vec<u8>> = [
        password,
        chat_text,
        reply_text,
        room_text,
        // Pieces too, in case a line is split or escaped differently.
        "4417 walrus",
        "9921 pelican",
        "7734 heron",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    // Every room key either peer held (the keylog, like SSLKEYLOGFILE).
    let mut room_keys = 0;
    for name in ["alice", "bob"] {
        let text =
            std::fs::read_to_string(keylog.path().join(format!("{name}.keys"))).unwrap_or_default();
        for line in text.lines() {
            if let Some(hex) = line.split_whitespace().last() {
                room_keys += 1;
                secrets.push(hex.as_bytes().to_vec());
                secrets.push(unhex(hex));
            }
        }
    }
    assert!(room_keys >= 2, "no room keys logged: {room_keys}");
    eprintln!(
        "captured {} frames ({} bytes); {} secrets and {room_keys} room keys checked",
        frames.len(),
        all.len(),
        secrets.len()
    );
    for s in &secrets {
        assert!(
            !capture::contains(&all, s),
            "{:?} is on the wire",
            String::from_utf8_lossy(s)
        );
    }
    // Tokens are 64 hex digits: none on the wire at all (the registry link
    // is TLS, heartbeats carry MACs and no token, chats and rooms are
    // encrypted binary).
    let hb_port = r.port();
    for (i, f) in capture::payloads_on_port(&frames, hb_port)
        .iter()
        .enumerate()
    {
        for run in capture::hex_runs(f, 64) {
            // Only the heartbeats' MACs are 64-hex-digit runs.
            let v: serde_json::Value = serde_json::from_slice(f).unwrap_or_default();
            assert_eq!(v["mac"].as_str(), Some(run.as_str()), "packet {i}: {run}");
        }
    }
}

/// The bytes a hex string stands for.
fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}
