//! The registry's framing on a real socket, in process: the real accept loop
//! and connection handler (`registry::start`) on `127.0.0.1:0` with the
//! in-memory store, and raw bytes on a TCP connection. Malformed, oversized,
//! non-UTF-8, partial and pipelined lines; id echoing; garbage on TCP and
//! UDP; time-outs on a manual clock; shutdown. Only tests that kill, signal
//! or restart the registry need the binary (`registry_faults.rs`).

mod kit;

use kit::{assert_error_shape, lossy, wait_until, Client, Read1, Xorshift, PASSWORD};
use lanchat::registry::clock::{Clock, ManualClock};
use lanchat::registry::store::memory::MemoryStore;
use lanchat::registry::store::Store;
use lanchat::registry::{self, Config, RunningServer, Server};
use serde_json::{json, Value};
use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// An in-process registry, shut down on drop.
struct Reg {
    server: RunningServer,
    port: u16,
}

fn config(session_timeout: Duration) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        store: "memory".into(),
        heartbeat_interval: Duration::from_secs(1),
        session_timeout,
        hash_concurrency: 2,
        // Cheap hashes: these tests are about bytes, not Argon2.
        argon2_m_kib: 64,
        argon2_passes: 1,
        ..Config::default()
    }
}

impl Reg {
    fn start() -> Reg {
        let server =
            registry::start(config(Duration::from_secs(30))).expect("start an in-process registry");
        let port = server.addr().port();
        Reg { server, port }
    }

    fn client(&self) -> Client {
        Client::connect(self.port)
    }
}

// ---------------------------------------------------------------- framing errors

#[test]
fn framing_errors_keep_the_connection_usable() {
    let r = Reg::start();
    let mut c = r.client();
    let cases: &[(&[u8], &str, Value)] = &[
        (b"{not json\n", "bad_json", Value::Null),
        (b"\"just a string\"\n", "bad_request", Value::Null),
        (b"[1,2,3]\n", "bad_request", Value::Null),
        (b"42\n", "bad_request", Value::Null),
        (br#"{"id":1}"#, "bad_request", json!(1)),
        (br#"{"id":2,"op":7}"#, "bad_request", json!(2)),
        (br#"{"id":{"x":1},"op":"rooms","token":"t"}"#, "bad_request", Value::Null),
        (br#"{"id":true,"op":"rooms","token":"t"}"#, "bad_request", Value::Null),
        (br#"{"id":[1],"op":"fly"}"#, "bad_request", Value::Null),
        (br#"{"id":3,"op":"fly"}"#, "unknown_op", json!(3)),
        (br#"{"id":"s4","op":"LOGIN"}"#, "unknown_op", json!("s4")),
        // Missing and mistyped fields.
        (br#"{"id":5,"op":"register","username":"alice"}"#, "bad_request", json!(5)),
        (
            br#"{"id":6,"op":"login","username":"alice","password":"x","tcp_port":"x","udp_port":1}"#,
            "bad_request",
            json!(6),
        ),
        (
            br#"{"id":7,"op":"login","username":"alice","password":"x","tcp_port":70000,"udp_port":1}"#,
            "bad_request",
            json!(7),
        ),
        (br#"{"id":8,"op":"search","token":5,"username":"a"}"#, "bad_request", json!(8)),
        (br#"{"id":9,"op":"rooms"}"#, "bad_request", json!(9)),
    ];
    for (line, code, id) in cases {
        let mut bytes = line.to_vec();
        if bytes.last() != Some(&b'\n') {
            bytes.push(b'\n');
        }
        c.send_raw(&bytes);
        let reply = c.read_reply();
        assert_error_shape(&reply);
        assert_eq!(
            (&reply["ok"], reply["code"].as_str().unwrap(), &reply["id"]),
            (&json!(false), *code, id),
            "for {:?}: {reply}",
            lossy(line)
        );
    }
    // Blank lines and CRLF line ends are fine; the connection still works.
    c.send_raw(b"\n\r\n   \n");
    c.send_raw(b"{\"id\":10,\"op\":\"register\",\"username\":\"alice\",\"password\":\"correct horse battery\"}\r\n");
    assert_eq!(
        c.read_reply(),
        json!({"id": 10, "ok": true, "username": "alice"})
    );
}

#[test]
fn ids_are_echoed_verbatim() {
    let r = Reg::start();
    let mut c = r.client();
    for id in [
        json!(0),
        json!(-17),
        json!(1.5),
        json!(9007199254740993u64),
        json!("abc"),
        json!(""),
        json!("ünï \"quoted\""),
        Value::Null,
    ] {
        // An error that does not break framing, then a success: both echo the id.
        let reply = c.request(json!({"id": id, "op": "search", "token": "nope", "username": "x"}));
        assert_eq!(reply["id"], id);
        assert_eq!(reply["code"], json!("invalid_session"), "{reply}");
        let reply = c.request(json!({"id": id, "op": "nope"}));
        assert_eq!((&reply["id"], &reply["code"]), (&id, &json!("unknown_op")));
    }
    // No id at all: the reply has "id": null.
    c.send_raw(b"{\"op\":\"fly\"}\n");
    let reply = c.read_reply();
    assert_eq!(
        (&reply["id"], &reply["code"]),
        (&Value::Null, &json!("unknown_op"))
    );
    // Still answering.
    c.register("alice");
}

#[test]
fn line_too_long_replies_then_closes() {
    let r = Reg::start();
    let mut c = r.client();
    let mut line = br#"{"id":1,"op":"register","username":"alice","password":""#.to_vec();
    line.extend(vec![b'x'; 70 * 1024]);
    line.extend_from_slice(b"\"}\n");
    // The registry may close before reading it all; a write error is fine.
    let _ = c.try_send_raw(&line);
    let reply = match c.read_line_raw() {
        Read1::Line(l) => serde_json::from_slice::<Value>(&l).unwrap(),
        other => panic!("expected a line_too_long reply, got {other:?}"),
    };
    assert_error_shape(&reply);
    assert_eq!(
        (&reply["id"], &reply["code"]),
        (&Value::Null, &json!("line_too_long")),
        "{reply}"
    );
    c.expect_closed();
    // Nothing of it was acted on, and the registry still serves others.
    let mut d = r.client();
    d.register("alice");
}

#[test]
fn line_of_exactly_64_kib_is_accepted() {
    let r = Reg::start();
    let mut c = r.client();
    let head = br#"{"id":1,"op":"fly","pad":""#;
    let tail = br#""}"#;
    let mut line = head.to_vec();
    line.extend(vec![b'x'; 64 * 1024 - head.len() - tail.len()]);
    line.extend_from_slice(tail);
    assert_eq!(line.len(), 64 * 1024);
    line.push(b'\n');
    c.send_raw(&line);
    let reply = c.read_reply();
    assert_eq!(
        (&reply["id"], &reply["code"]),
        (&json!(1), &json!("unknown_op"))
    );
    c.register("alice");
}

#[test]
fn last_line_without_newline_is_answered_at_half_close() {
    let r = Reg::start();
    let mut c = r.client();
    c.send_raw(
        br#"{"id":1,"op":"register","username":"alice","password":"correct horse battery"}"#,
    );
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(
        c.read_reply(),
        json!({"id": 1, "ok": true, "username": "alice"})
    );
    c.expect_closed();
    // It was really acted on.
    r.client().expect_err(
        json!({"op": "register", "username": "alice", "password": PASSWORD}),
        "user_exists",
    );
}

#[test]
fn bad_encoding_replies_then_closes() {
    let r = Reg::start();
    let mut c = r.client();
    c.send_raw(b"{\"id\":1,\"op\":\"fly\",\"x\":\"\xff\xfe\xc3\x28\"}\n");
    let reply = c.read_reply();
    assert_error_shape(&reply);
    assert_eq!(
        (&reply["id"], &reply["code"]),
        (&Value::Null, &json!("bad_encoding")),
        "{reply}"
    );
    c.expect_closed();
}

// ---------------------------------------------------------------- partial and pipelined lines

#[test]
fn a_line_sent_a_byte_at_a_time_is_one_request() {
    let r = Reg::start();
    let mut c = r.client();
    let line =
        br#"{"id":"slow","op":"register","username":"alice","password":"correct horse battery"}"#;
    for b in line.iter().chain(b"\n") {
        c.send_raw(&[*b]);
    }
    assert_eq!(
        c.read_reply(),
        json!({"id": "slow", "ok": true, "username": "alice"})
    );
    // Two requests cut at arbitrary places, the cut inside the second one.
    let both = b"{\"id\":1,\"op\":\"fly\"}\n{\"id\":2,\"op\":\"walk\"}\n";
    for chunk in [&both[..7], &both[7..27], &both[27..]] {
        c.send_raw(chunk);
    }
    for id in [1, 2] {
        assert_eq!(c.read_reply()["id"], json!(id), "replies in order");
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let r = Reg::start();
    let mut c = r.client();
    let mut lines = String::new();
    lines +=
        &json!({"id": 1, "op": "register", "username": "alice", "password": PASSWORD}).to_string();
    lines += "\n{broken\n";
    lines += &json!({"id": 3, "op": "login", "username": "alice", "password": PASSWORD,
                     "tcp_port": 7001, "udp_port": 7002})
    .to_string();
    lines += "\n\n";
    for id in 4..54 {
        lines += &format!("{{\"id\":{id},\"op\":\"fly\"}}\n");
    }
    c.send_raw(lines.as_bytes());
    assert_eq!(
        c.read_reply(),
        json!({"id": 1, "ok": true, "username": "alice"})
    );
    let broken = c.read_reply();
    assert_eq!(
        (&broken["id"], &broken["code"]),
        (&Value::Null, &json!("bad_json"))
    );
    let login = c.read_reply();
    assert_eq!(
        (&login["id"], &login["ok"]),
        (&json!(3), &json!(true)),
        "{login}"
    );
    for id in 4..54 {
        let reply = c.read_reply();
        assert_eq!(
            (&reply["id"], &reply["code"]),
            (&json!(id), &json!("unknown_op"))
        );
    }
    let token = login["token"].as_str().unwrap();
    assert!(c.is_online(token, "alice"));
}

// ---------------------------------------------------------------- garbage

/// Sends `bytes` then half-closes, and reads every reply until the registry
/// closes: each must be a well-formed framing error.
fn garbage_round(port: u16, bytes: &[u8]) -> usize {
    let mut g = Client::connect(port);
    let _ = g.try_send_raw(bytes);
    let _ = g.stream.shutdown(std::net::Shutdown::Write);
    let mut replies = 0;
    loop {
        match g.read_line_raw() {
            Read1::Eof | Read1::Reset => return replies,
            Read1::Line(l) => {
                let v: Value = serde_json::from_slice(&l)
                    .unwrap_or_else(|e| panic!("reply not JSON ({e}): {}", lossy(&l)));
                assert_error_shape(&v);
                let code = v["code"].as_str().unwrap_or_default();
                assert!(
                    [
                        "bad_json",
                        "bad_request",
                        "unknown_op",
                        "line_too_long",
                        "bad_encoding"
                    ]
                    .contains(&code),
                    "unexpected reply {v}"
                );
                replies += 1;
            }
        }
    }
}

#[test]
fn binary_garbage_gets_framing_errors_and_leaves_state_intact() {
    let r = Reg::start();
    let mut c = r.client();
    c.register("alice");
    let t = c.login_token("alice", 7001);
    let mut rng = Xorshift::new(0x5eed);
    let mut replies = 0;
    for f in [
        &b"\0\0\0\n"[..],
        b"{\"op\":\"register\0\",\"id\":1}\n",
        b"\n\n\r\n{}\n[]\nnull\ntrue\n\"\"\n{\"op\":null}\n",
        b"{\"id\":1,\"op\":\"login\",\"username\":{},\"password\":[]}\n",
        b"{\"id\":\xc0\xaf}\n",
    ] {
        replies += garbage_round(r.port, f);
    }
    for round in 0..30 {
        // Random bytes, with NULs and newlines sprinkled in.
        let mut bytes = rng.bytes(64 + (round * 997) % 8192);
        for i in (0..bytes.len()).step_by(37) {
            bytes[i] = if i % 2 == 0 { b'\n' } else { 0 };
        }
        replies += garbage_round(r.port, &bytes);
        assert_eq!(c.search(&t, "alice")["online"], json!(true));
    }
    // No newline at all, past the line cap.
    let long: Vec<u8> = rng.bytes(100 * 1024).iter().map(|b| b | 1).collect();
    assert_eq!(garbage_round(r.port, &long), 1);
    assert!(replies >= 30, "only {replies} error replies to garbage");
    let mut d = r.client();
    d.register("bob");
    let tb = d.login_token("bob", 8001);
    assert!(d.is_online(&tb, "alice"));
}

#[test]
fn udp_heartbeats_count_and_garbage_is_dropped() {
    let r = Reg::start();
    let mut c = r.client();
    c.register("alice");
    let t = c.login_token("alice", 7001);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let garbage = [
        json!({"op": "heartbeat"}).to_string(),
        json!({"op": "heartbeat", "token": 5}).to_string(),
        json!({"op": "Heartbeat", "token": t}).to_string(),
        // A version-1 heartbeat: the token no longer counts.
        json!({"op": "heartbeat", "token": t}).to_string(),
        json!({"op": "heartbeat", "token": "a".repeat(200)}).to_string(),
        json!({"op": "heartbeat", "token": t, "pad": "p".repeat(1400)}).to_string(),
        "\u{ff}".repeat(300),
    ];
    for g in &garbage {
        udp.send_to(g.as_bytes(), r.server.addr()).unwrap();
    }
    let hb = kit::heartbeat::datagram(&t);
    udp.send_to(&hb, r.server.addr()).unwrap();
    // The same datagram again (a replay), and one for a session the
    // registry never gave a key (forged).
    udp.send_to(&hb, r.server.addr()).unwrap();
    udp.send_to(&kit::heartbeat::datagram("no such token"), r.server.addr())
        .unwrap();
    let presence = &r.server.registry().presence;
    wait_until(
        Duration::from_secs(5),
        Duration::from_millis(2),
        "every datagram counted",
        || {
            presence.heartbeats.load(Ordering::Relaxed) == 1
                && presence.garbage.load(Ordering::Relaxed) == garbage.len() as u64
                && presence.replayed.load(Ordering::Relaxed) == 1
                && presence.forged.load(Ordering::Relaxed) == 1
        },
    );
    // No reply is ever sent to a datagram.
    udp.set_nonblocking(true).unwrap();
    assert!(udp.recv(&mut [0u8; 16]).is_err());
}

// ---------------------------------------------------------------- time-outs

/// The presence thread (heartbeat batches, sweeps) on the registry's clock:
/// session time passes only when the test says so, whatever the machine's
/// load; the test waits only for the thread's next tick.
#[test]
fn sessions_time_out_on_the_registrys_clock() {
    let clock = Arc::new(ManualClock::default());
    let store = MemoryStore::new();
    let server = Server::bind_with(
        config(Duration::from_secs(3)),
        Arc::new(store.clone()),
        clock.clone(),
    )
    .expect("bind an in-process registry")
    .spawn();
    let port = server.addr().port();
    let mut c = Client::connect(port);
    c.register("alice");
    c.register("bob");
    let mut a = Client::connect(port);
    let ta = a.login_token("alice", 7001);
    let mut b = Client::connect(port);
    let tb = b.login_token("bob", 8001);
    a.ok(json!({"op": "create_room", "token": ta, "room": "lab"}));
    b.ok(json!({"op": "join_room", "token": tb, "room": "lab"}));

    // Two seconds on: only bob's peer sends a heartbeat datagram.
    clock.advance(Duration::from_secs(2));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(&kit::heartbeat::datagram(&tb), server.addr())
        .unwrap();
    let last_seen = |name: &str| store.session_by_user(name).unwrap().unwrap().last_seen_ms;
    wait_until(
        Duration::from_secs(5),
        Duration::from_millis(2),
        "bob's heartbeat written",
        || last_seen("bob") == clock.now_ms(),
    );
    assert!(b.is_online(&tb, "alice"), "3 s is not over for alice yet");

    // 3.5 s after her login: alice is offline at once, and the next sweep
    // takes her out of her room. Bob, heard from 1.5 s ago, stays.
    clock.advance(Duration::from_millis(1500));
    assert!(!b.is_online(&tb, "alice"));
    wait_until(
        Duration::from_secs(5),
        Duration::from_millis(2),
        "alice swept out of her room",
        || store.room_members("lab").unwrap() == ["bob"],
    );
    assert!(b.is_online(&tb, "bob"));
    assert!(!store.session_by_user("alice").unwrap().unwrap().attached);
    // Her connection is still open; her token works again once resumed.
    a.expect_err(json!({"op": "online", "token": ta}), "invalid_session");
    a.ok(json!({"op": "resume", "token": ta, "tcp_port": 7001, "udp_port": 7002}));
    assert!(b.is_online(&tb, "alice"));
}

// ---------------------------------------------------------------- shutdown

#[test]
fn shutdown_closes_every_connection_and_returns() {
    let r = Reg::start();
    let mut idle = r.client();
    let mut c = r.client();
    c.register("alice");
    c.login_token("alice", 7001);
    // Half a line pending on another connection.
    let mut half = r.client();
    half.send_raw(b"{\"id\":1,");
    let Reg { server, port } = r;
    let done = thread::spawn(move || server.shutdown());
    for client in [&mut idle, &mut c, &mut half] {
        client.expect_closed();
    }
    done.join().expect("shutdown");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
