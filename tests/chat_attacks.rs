//! A hostile classmate against one-to-one chats (issue 11, items 2 and 3,
//! and the section 3 gaps of protocol.md): a raw Noise client
//! ([`kit::noise`]) plays the attacker against a real `peer` and a real
//! `registry`. Since version 2 every chat connection is a Noise `XX`
//! channel: the attacker completes the handshake with keys of its own
//! (cryptographically it always can) and then speaks the chat's JSON
//! lines inside the channel; what it may do is decided by the registry's
//! binding of the claimed name to keys.

mod kit;

use kit::process::{raise_nofile, threads};
use kit::*;
use lanchat::identity::Identity;
use lanchat::protocol::secure::{frame, Deframer, Handshake};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Live incoming chat connections the peer keeps (`peer::slots::MAX_CONNS`,
/// `MAX_CONNS_PER_IP`) and requests it lets wait from one address (`MAX_PENDING_PER_IP`).
const MAX_CONNS: usize = 64;
const MAX_CONNS_PER_IP: usize = 8;
const MAX_PENDING_PER_IP: usize = 4;

/// A registry and a victim logged in as `victim`.
fn victim() -> (Registry, Peer) {
    let reg = Registry::start(LONG_SESSIONS);
    // Requests wait long enough for a flood slowed down by a full accept
    // queue (SYN retries) on a loaded machine.
    let args = ["--chat-timeout-secs", "300"];
    let mut victim = Peer::spawn_named("victim", reg.addr(), &args);
    victim.login_new("victim");
    (reg, victim)
}

/// The chat hello (inside the channel) from `from`.
fn hello(from: &str) -> Value {
    json!({"type": "hello", "from": from, "version": 1})
}

/// The victim's identity X25519 key (what the registry vouches for it).
fn key_of(victim: &Peer) -> [u8; 32] {
    keys_of(victim, "victim").public().kx
}

/// A channel to the victim as `me`, holding fresh keys of the attacker's,
/// with the hello from `me` sent inside it.
fn attack(victim: &Peer, me: &str) -> NoiseConn {
    let id = Identity::generate();
    let mut att = NoiseConn::dial(victim.tcp_port, &id, me, "victim", key_of(victim));
    att.send(hello(me));
    att
}

/// Item 2: a handshake and `hello` in the name of nobody succeed
/// cryptographically (the attacker has keys, just no registry binding), and
/// are then refused like an impostor; the victim never sees a request from
/// that name.
#[test]
fn hello_in_an_unregistered_name_is_refused() {
    let (_reg, mut victim) = victim();
    let mut att = attack(&victim, "teacher");
    assert_eq!(
        att.next(WAIT),
        Some(json!({"type": "reject", "reason": "identity check failed"}))
    );
    let e = victim.expect("error", &[("code", "identity_check_failed")], WAIT);
    assert!(
        e["message"].as_str().unwrap().contains("no such user"),
        "{e}"
    );
    victim.send("/accept teacher");
    victim.expect(
        "error",
        &[("message", "no chat request from teacher to answer")],
        WAIT,
    );
    assert!(
        !victim
            .history
            .iter()
            .any(|v| matches(v, "chat_request", ANY)),
        "a request was shown"
    );
}

/// Item 2: with the registry gone, a request may be shown, but the prompt
/// and every line of that chat say it is unverified.
#[test]
fn request_the_registry_cannot_check_is_marked_in_every_line() {
    let (mut reg, mut victim) = victim();
    reg.kill9();
    victim.expect("registry_lost", ANY, WAIT);
    let mut att = attack(&victim, "alice");
    let yes = [("unverified", true)];
    victim.expect(
        "chat_request",
        &[("from", json!("alice")), ("unverified", json!(true))],
        WAIT,
    );
    victim.send("/accept alice");
    victim.expect("chat_accepted", &yes, WAIT);
    assert_eq!(att.next(WAIT), Some(json!({"type": "accept"})));
    att.send(json!({"type": "msg", "id": 1, "text": "it's me, trust me"}));
    victim.expect(
        "message",
        &[
            ("text", json!("it's me, trust me")),
            ("unverified", json!(true)),
        ],
        WAIT,
    );
    victim.send("/msg alice who are you?");
    victim.expect(
        "message",
        &[("own", json!(true)), ("unverified", json!(true))],
        WAIT,
    );
    att.send(json!({"type": "bye"}));
    victim.expect("chat_closed", &yes, WAIT);
    // The registry-side notice, when the line is the prompt itself, is
    // not the only mark: every chat line above carried it.
    for v in &victim.history {
        if ["chat_request", "chat_accepted", "chat_closed"]
            .contains(&v["event"].as_str().unwrap_or(""))
        {
            assert_eq!(v["unverified"], true, "{v}");
        }
    }
}

/// Item 3: a flood of connections and handshakes with hellos (registered
/// names with their own keys, and invented names) leaves the victim with a
/// handful of prompts, a bounded thread count, a prompt `/who`, and room
/// for an honest request once it stops.
#[test]
fn flood_of_hellos_is_bounded() {
    raise_nofile(4096);
    let (reg, mut victim) = victim();
    let pid = victim.pid();
    let base = threads(pid);
    let key = key_of(&victim);
    // Accounts online at this address with keys but no peer behind them.
    let ghost_keys: Vec<Identity> = (0..6).map(|_| Identity::generate()).collect();
    let ghosts: Vec<Session> = ghost_keys
        .iter()
        .enumerate()
        .map(|(i, k)| keyed_login(reg.addr(), &format!("ghost{i}"), k, 9))
        .collect();
    // Connections past the per-address cap are answered `busy` (in
    // plaintext, before any handshake) and closed at once.
    let mut quiet: Vec<TcpStream> = (0..MAX_CONNS_PER_IP)
        .map(|_| TcpStream::connect(("127.0.0.1", victim.tcp_port)).unwrap())
        .collect();
    let mut extra = TcpStream::connect(("127.0.0.1", victim.tcp_port)).unwrap();
    let busy = until_closed(&mut extra, WAIT).expect("closed after busy");
    assert_eq!(lossy(&busy), "{\"type\":\"busy\"}\n");
    // The quiet ones (no handshake) are let go after the hello time-out:
    // closed with nothing said (version 1 said `bye`; there is no channel
    // to say it in yet).
    for q in &mut quiet {
        let got = until_closed(q, Duration::from_secs(8));
        assert_eq!(got, Some(Vec::new()), "a quiet connection");
    }
    drop(quiet);
    let mut held = Vec::new();
    let (mut most, mut refused) = (0, 0);
    for i in 0..1500 {
        let fresh;
        let (id, name) = if i % 3 == 0 {
            (&ghost_keys[i % 6], format!("ghost{}", i % 6))
        } else {
            fresh = Identity::generate();
            (&fresh, format!("invented{i}"))
        };
        match NoiseConn::try_dial(victim.tcp_port, id, &name, "victim", key) {
            Ok(mut att) => {
                att.send(hello(&name));
                held.push(att);
            }
            Err(Refused::Plain(_) | Refused::Closed) => refused += 1,
            Err(e) => panic!("handshake {i}: {e:?}"),
        }
        if i % 50 == 49 {
            most = most.max(threads(pid));
        }
    }
    most = most.max(threads(pid));
    eprintln!(
        "{} handshakes done, {refused} refused; {most} threads at most (from {base})",
        held.len()
    );
    // (Most handshakes complete: a refused or answered hello frees its
    // slot before the next dial; the cap was checked with `extra` above.)
    assert!(
        most <= base + 2 * MAX_CONNS + 8,
        "{most} threads under the flood (started with {base})"
    );
    let t = Instant::now();
    victim.send("/who");
    victim.expect("who", ANY, WAIT);
    let who = t.elapsed();
    eprintln!("/who answered in {who:?} under the flood");
    // 1.6 s before the fix, about 20 ms when idle; loose for a loaded
    // test machine.
    assert!(who < Duration::from_secs(1), "/who took {who:?}");
    victim.drain();
    let count = |event: &str| {
        victim
            .history
            .iter()
            .filter(|v| matches(v, event, ANY))
            .count()
    };
    let prompts = count("chat_request");
    // The forged names are refused in one line, not one per hello.
    assert_eq!(count("error"), 1, "refusals shown");
    assert!(
        (1..=MAX_PENDING_PER_IP).contains(&prompts),
        "{prompts} prompts from one address"
    );
    // Once the flood stops, its requests are withdrawn and an honest one
    // gets through.
    drop(held);
    victim.wait_history("the flood's requests withdrawn", WAIT, |h| {
        h.iter()
            .filter(|v| {
                matches(v, "notice", ANY)
                    && v["text"].as_str().is_some_and(|t| t.contains("withdrew"))
            })
            .count()
            >= prompts
    });
    drop(ghosts);
    let mut alice = Peer::spawn_named("alice", reg.addr(), &[]);
    alice.login_new("alice");
    alice.send("/chat victim");
    victim.expect("chat_request", &[("from", "alice")], WAIT);
}

/// Section 3, version 2: a connection must start with a valid Noise
/// handshake, and the channel with a `hello` carrying `version` 1 in the
/// name the handshake claimed; anything else is closed at once, not left to
/// time out.
#[test]
fn anything_but_a_valid_hello_first_is_rejected_at_once() {
    let (_reg, mut victim) = victim();
    let port = victim.tcp_port;
    let key = key_of(&victim);
    let at_once = |what: &str, s: &mut TcpStream| -> Vec<u8> {
        let t = Instant::now();
        let got = until_closed(s, Duration::from_secs(3));
        let got = got.unwrap_or_else(|| panic!("{what}: still open after 3 s"));
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{what}: {:?}",
            t.elapsed()
        );
        got
    };
    // Before the handshake: plaintext (a version-1 peer's lines) is
    // answered with the version-2 refusal; a frame that is no handshake
    // message, or a message 3 that does not authenticate, is closed on.
    let v2 = "{\"type\":\"reject\",\"reason\":\"lanchat protocol version 2 is needed: this peer encrypts chats; upgrade lanchat\"}\n";
    for first in [
        r#"{"type":"msg","id":1,"text":"hi"}"#,
        r#"{"type":"accept"}"#,
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(format!("{first}\n").as_bytes()).unwrap();
        assert_eq!(lossy(&at_once(first, &mut s)), v2);
    }
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(&frame(b"short")).unwrap();
    assert_eq!(at_once("a 5-byte message 1", &mut s), b"");
    // Bytes that may still be the start of a long frame ("no" is a
    // length of 28271) are given the hello time-out (5 s), no more.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"not json at all\n").unwrap();
    let t = Instant::now();
    assert_eq!(
        until_closed(&mut s, Duration::from_secs(8)),
        Some(Vec::new())
    );
    eprintln!("a partial frame was closed on after {:?}", t.elapsed());
    let me = Identity::generate();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_, m1) = Handshake::initiator(&me.kx_secret(), "alice", "victim", key, None).unwrap();
    s.write_all(&m1).unwrap();
    let m2 = read_frame(&mut s, &mut Deframer::default(), Instant::now() + WAIT);
    assert!(m2.is_some(), "no message 2");
    s.write_all(&frame(&[7u8; 64])).unwrap();
    assert_eq!(at_once("a forged message 3", &mut s), b"");
    // Inside the channel: the first line must be a valid hello.
    let reject = Some(json!({"type": "reject", "reason": "bad hello"}));
    for first in [
        r#"{"type":"hello","from":"alice"}"#,
        r#"{"type":"hello","from":"alice","version":2}"#,
        // Not the name the handshake claimed.
        r#"{"type":"hello","from":"bob","version":1}"#,
        r#"{"type":"msg","id":1,"text":"hi"}"#,
        r#"{"type":"accept"}"#,
        "not json at all",
    ] {
        let mut att = NoiseConn::dial(port, &me, "alice", "victim", key);
        att.line(first);
        let t = Instant::now();
        assert_eq!(att.next(Duration::from_secs(3)), reject, "after {first}");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{first}: {:?}",
            t.elapsed()
        );
        assert_eq!(
            att.next(Duration::from_secs(3)),
            None,
            "closed after {first}"
        );
    }
    victim.expect_none("chat_request", ANY, Duration::from_millis(200));
}

/// Section 3: message ids must increase; a repeat or a step back inside
/// the channel (each one a fresh, authentic Noise message: the channel's
/// own nonces do not stop a sender from repeating an id) is dropped, so a
/// message is never shown twice.
#[test]
fn repeated_and_out_of_order_message_ids_are_dropped() {
    let (reg, mut victim) = victim();
    // mallory is a registered user with keys of her own.
    let keys = Identity::generate();
    let _mallory = keyed_login(reg.addr(), "mallory", &keys, 9);
    let mut att = NoiseConn::dial(victim.tcp_port, &keys, "mallory", "victim", key_of(&victim));
    att.send(hello("mallory"));
    victim.expect("chat_request", &[("from", "mallory")], WAIT);
    victim.send("/accept mallory");
    assert_eq!(att.next(WAIT), Some(json!({"type": "accept"})));
    for (id, text) in [
        (1, "one"),
        (1, "one"),
        (0, "zero"),
        (3, "three"),
        (2, "two"),
        (4, "four"),
    ] {
        att.send(json!({"type": "msg", "id": id, "text": text}));
    }
    victim.wait_messages("mallory", "mallory", 3, WAIT);
    victim.expect_none("message", &[("text", "two")], Duration::from_millis(300));
    assert_eq!(
        victim.texts_from("mallory", "mallory"),
        vec!["one", "three", "four"]
    );
}

/// Item 2, on screen: the peer without `--json` (output to a pipe, no
/// colours) prints `[unverified]` on the prompt and every line of the chat.
#[test]
fn unverified_lines_say_so_on_screen() {
    use std::process::{Command, Stdio};
    let mut reg = Registry::start(LONG_SESSIONS);
    let config = tempfile::tempdir().expect("a config directory");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer"));
    cmd.args(["--registry", &reg.addr().to_string(), "--bind", "127.0.0.1"])
        .env_remove("REGISTRY_ADDR")
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", config.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = spawn_child(cmd).expect("run the peer");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = crossbeam_channel::unbounded::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let until = |what: &str| -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains(what) => return l,
                Ok(_) => {}
                Err(e) => panic!("no line with {what:?}: {e}"),
            }
        }
    };
    let ready = until("chats on TCP port");
    let port: u16 = ready
        .split("TCP port ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .expect("the TCP port");
    writeln!(stdin, "/register victim {PASSWORD}").unwrap();
    until("registered victim");
    writeln!(stdin, "/login victim {PASSWORD}").unwrap();
    until("logged in as");
    reg.kill9();
    until("lost the registry");
    let path = Identity::path(&config.path().join("lanchat"), "victim");
    let key = Identity::load_or_create(&path).unwrap().0.public().kx;
    let mut att = NoiseConn::dial(port, &Identity::generate(), "alice", "victim", key);
    att.send(hello("alice"));
    let prompt = until("wants to chat");
    assert!(
        prompt.contains("[unverified] ** alice wants to chat"),
        "{prompt}"
    );
    writeln!(stdin, "/accept alice").unwrap();
    let open = until("chat with alice open");
    assert!(open.contains("[unverified]"), "{open}");
    att.send(json!({"type": "msg", "id": 1, "text": "trust me"}));
    let msg = until("trust me");
    assert!(
        msg.contains("[unverified] alice (private) trust me"),
        "{msg}"
    );
    writeln!(stdin, "/msg alice prove it").unwrap();
    let own = until("prove it");
    assert!(own.contains("[unverified] you → alice prove it"), "{own}");
    att.send(json!({"type": "bye"}));
    let closed = until("chat with alice ended");
    assert!(closed.contains("[unverified]"), "{closed}");
    let _ = child.kill();
    let _ = child.wait();
}
