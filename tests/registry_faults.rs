//! The registry under faults, on the real binary and the real wire:
//! presence (closed connections, stopped heartbeats), garbage on TCP and UDP,
//! idle and slow clients, kill -9 and restart, Ctrl-C, and an unreachable or
//! failing MongoDB store.

mod kit;

use kit::*;
use serde_json::json;
use std::net::UdpSocket;
use std::thread;
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Asserts `cond` holds at every check for the whole of `window`.
fn holds_for(window: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + window;
    while Instant::now() < end {
        assert!(cond(), "no longer true: {what}");
        thread::sleep(ms(50));
    }
    assert!(cond(), "no longer true: {what}");
}

// ---------------------------------------------------------------- presence

#[test]
fn closed_connection_goes_offline_at_once_and_leaves_rooms() {
    let r = Registry::start(LONG_SESSIONS);
    let mut c = r.client();
    for n in ["alice", "bob"] {
        c.register(n);
    }
    let mut b = r.client();
    let tb = b.login_token("bob", 8001);
    b.ok(json!({"op": "create_room", "token": tb, "room": "lab"}));
    let mut a = r.client();
    let ta = a.login_token("alice", 7001);
    a.ok(json!({"op": "join_room", "token": ta, "room": "lab"}));
    a.ok(json!({"op": "create_room", "token": ta, "room": "solo"}));
    assert_eq!(b.member_names(&tb, "lab"), ["alice", "bob"]);

    // Her peer keeps sending UDP heartbeats: a closed connection still
    // means offline.
    let _hb_a = r.heartbeater(&ta, ms(100));
    drop(a); // no logout
    let took = wait_until(Duration::from_secs(1), ms(10), "alice offline", || {
        !b.is_online(&tb, "alice")
    });
    eprintln!("offline {took:?} after the close");
    assert_eq!(
        b.search(&tb, "alice"),
        json!({"username": "alice", "online": false})
    );
    // Leaving the rooms follows the detach closely (not atomically).
    wait_until(ms(500), ms(10), "alice out of her rooms", || {
        b.member_names(&tb, "lab") == ["bob"]
    });
    assert_eq!(
        b.ok(json!({"op": "rooms", "token": tb}))["rooms"],
        json!([{"name": "lab", "members": 1}]),
        "alice's own room is gone with her"
    );
    assert_eq!(
        b.ok(json!({"op": "online", "token": tb}))["users"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn stopped_heartbeats_take_the_session_offline() {
    let r = Registry::start(SHORT_SESSIONS);
    let mut c = r.client();
    for n in ["alice", "bob"] {
        c.register(n);
    }
    let mut b = r.client();
    let tb = b.login_token("bob", 8001);
    let _hb_b = r.heartbeater(&tb, ms(100));
    let mut a = r.client(); // stays open throughout
    let reply = a.login("alice", 7001);
    assert_eq!(reply["session_timeout_ms"], json!(600));
    assert_eq!(reply["heartbeat_interval_ms"], json!(200));
    let ta = reply["token"].as_str().unwrap().to_string();
    a.ok(json!({"op": "create_room", "token": ta, "room": "lab"}));
    b.ok(json!({"op": "join_room", "token": tb, "room": "lab"}));

    let hb_a = r.heartbeater(&ta, ms(100));
    holds_for(ms(1500), "alice online while heartbeating", || {
        b.is_online(&tb, "alice")
    });

    hb_a.stop();
    let stopped = Instant::now();
    wait_until(Duration::from_secs(3), ms(50), "alice offline", || {
        !b.is_online(&tb, "alice")
    });
    let took = stopped.elapsed();
    assert!(took <= ms(600 + 1000), "offline only after {took:?}");
    assert!(took >= ms(400), "offline too early, after {took:?}");
    // The sweeper (every 250 ms) takes her out of her rooms; a search may
    // see her offline (heartbeat too old) slightly before that.
    wait_until(ms(1000), ms(20), "alice out of her rooms", || {
        b.member_names(&tb, "lab") == ["bob"]
    });
    let took = stopped.elapsed();
    assert!(took <= ms(600 + 1000), "rooms left only after {took:?}");
    // Her open connection's token no longer works.
    a.expect_err(json!({"op": "online", "token": ta}), "invalid_session");

    // She can log in again (no already_online) on a new connection.
    let mut a2 = r.client();
    let ta2 = a2.login_token("alice", 7101);
    assert_ne!(ta, ta2);
    let _hb_a2 = r.heartbeater(&ta2, ms(100));
    assert_eq!(
        b.search(&tb, "alice")["address"],
        json!({"ip": "127.0.0.1", "tcp_port": 7101, "udp_port": 7102})
    );
    // Her first connection is still open, but cannot touch the new session.
    a.expect_err(json!({"op": "logout", "token": ta2}), "not_your_session");
}

/// A session that timed out while its connection stayed open: logging in
/// again on that same connection must work, as the user is not online.
#[test]
fn login_again_on_the_same_connection_after_time_out() {
    let r = Registry::start(SHORT_SESSIONS);
    let mut c = r.client();
    c.register("alice");
    c.register("bob");
    let mut b = r.client();
    let tb = b.login_token("bob", 8001);
    let _hb_b = r.heartbeater(&tb, ms(100));
    let mut a = r.client();
    let ta = a.login_token("alice", 7001);
    wait_until(Duration::from_secs(3), ms(50), "alice timed out", || {
        !b.is_online(&tb, "alice")
    });
    let reply = a.request(
        json!({"op": "login", "username": "alice", "password": PASSWORD,
                                 "tcp_port": 7001, "udp_port": 7002}),
    );
    assert_eq!(
        reply["ok"],
        json!(true),
        "re-login on the same connection: {reply}"
    );
    assert_ne!(reply["token"], json!(ta));
}

#[test]
fn resumed_session_survives_its_old_connection_closing() {
    let r = Registry::start(LONG_SESSIONS);
    let mut c = r.client();
    c.register("alice");
    c.register("bob");
    let mut b = r.client();
    let tb = b.login_token("bob", 8001);
    let mut a1 = r.client();
    let ta = a1.login_token("alice", 7001);
    // Alice's peer reconnects and moves her session while the old
    // connection is still open.
    let mut a2 = r.client();
    a2.ok(json!({"op": "resume", "token": ta, "tcp_port": 7101, "udp_port": 7102}));
    a2.ok(json!({"op": "create_room", "token": ta, "room": "lab"}));
    drop(a1);
    // Closing the old connection must not take the moved session offline.
    // (A closed connection is handled at once, so a short window shows it.)
    holds_for(
        ms(700),
        "alice online after her old connection closed",
        || b.is_online(&tb, "alice"),
    );
    assert_eq!(
        b.search(&tb, "alice")["address"],
        json!({"ip": "127.0.0.1", "tcp_port": 7101, "udp_port": 7102})
    );
    assert_eq!(b.member_names(&tb, "lab"), ["alice"]);
    a2.ok(json!({"op": "heartbeat", "token": ta}));
    // Closing the connection that holds it does.
    drop(a2);
    wait_until(ms(1000), ms(10), "alice offline", || {
        !b.is_online(&tb, "alice")
    });
}

/// Once a session has been resumed on another connection, the connection
/// it left is no longer bound to it (else a stale connection can, e.g., log
/// out the session its successor now holds).
#[test]
fn old_connection_loses_a_session_resumed_elsewhere() {
    let r = Registry::start(LONG_SESSIONS);
    let mut c = r.client();
    c.register("alice");
    let mut a1 = r.client();
    let ta = a1.login_token("alice", 7001);
    let mut a2 = r.client();
    a2.ok(json!({"op": "resume", "token": ta, "tcp_port": 7101, "udp_port": 7102}));
    a1.expect_err(json!({"op": "logout", "token": ta}), "not_your_session");
    a1.expect_err(json!({"op": "online", "token": ta}), "not_your_session");
    a2.ok(json!({"op": "online", "token": ta}));
}

#[test]
fn udp_heartbeats_alone_keep_the_session_online() {
    let r = Registry::start(SHORT_SESSIONS);
    let mut c = r.client();
    c.register("alice");
    c.register("bob");
    let mut b = r.client();
    let tb = b.login_token("bob", 8001);
    let _hb_b = r.heartbeater(&tb, ms(100));
    let mut a = r.client();
    let ta = a.login_token("alice", 7001);
    let _hb_a = r.heartbeater(&ta, ms(100));
    // Over three session time-outs without a byte from alice on TCP.
    holds_for(ms(2000), "alice online on UDP heartbeats alone", || {
        b.is_online(&tb, "alice")
    });
    assert!(!a.is_closed());
    a.ok(json!({"op": "heartbeat", "token": ta}));
}

#[test]
fn tcp_heartbeat_op_keeps_the_session_online() {
    let r = Registry::start(SHORT_SESSIONS);
    let mut c = r.client();
    c.register("alice");
    c.register("bob");
    let mut b = r.client();
    let tb = b.login_token("bob", 8001);
    let _hb_b = r.heartbeater(&tb, ms(100));
    let mut a = r.client();
    let ta = a.login_token("alice", 7001);
    let end = Instant::now() + ms(1800);
    while Instant::now() < end {
        a.ok(json!({"op": "heartbeat", "token": ta}));
        assert!(b.is_online(&tb, "alice"));
        thread::sleep(ms(100));
    }
}

// ---------------------------------------------------------------- bad input

const GARBAGE_CODES: &[&str] = &[
    "bad_json",
    "bad_request",
    "unknown_op",
    "line_too_long",
    "bad_encoding",
];

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
                let v: serde_json::Value = serde_json::from_slice(&l)
                    .unwrap_or_else(|e| panic!("reply not JSON ({e}): {}", lossy(&l)));
                assert_error_shape(&v);
                let code = v["code"].as_str().unwrap_or_default();
                assert!(GARBAGE_CODES.contains(&code), "unexpected reply {v}");
                replies += 1;
            }
        }
    }
}

#[test]
fn binary_garbage_does_not_disturb_other_clients() {
    let r = Registry::start(LONG_SESSIONS);
    let port = r.port();
    let garbage = thread::spawn(move || {
        let mut rng = Xorshift::new(0x5eed);
        let mut replies = 0;
        let fixed: &[&[u8]] = &[
            b"\0\0\0\n",
            b"{\"op\":\"register\0\",\"id\":1}\n",
            b"\n\n\r\n{}\n[]\nnull\ntrue\n\"\"\n{\"op\":null}\n",
            b"{\"id\":1,\"op\":\"login\",\"username\":{},\"password\":[]}\n",
            b"{\"id\":\xc0\xaf}\n",
        ];
        for f in fixed {
            replies += garbage_round(port, f);
        }
        for round in 0..30 {
            // Random bytes, with NULs and newlines sprinkled in.
            let mut bytes = rng.bytes(64 + (round * 997) % 8192);
            for i in (0..bytes.len()).step_by(37) {
                bytes[i] = if i % 2 == 0 { b'\n' } else { 0 };
            }
            replies += garbage_round(port, &bytes);
        }
        // No newline at all, past the line cap.
        replies += garbage_round(
            port,
            &rng.bytes(100 * 1024)
                .iter()
                .map(|b| b | 1)
                .collect::<Vec<_>>(),
        );
        replies
    });

    let mut c = r.client();
    c.register("alice");
    let t = c.login_token("alice", 7001);
    let mut n = 0;
    while !garbage.is_finished() || n < 20 {
        let start = Instant::now();
        assert_eq!(c.search(&t, "alice")["online"], json!(true));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "a request took {:?}",
            start.elapsed()
        );
        n += 1;
        thread::sleep(ms(10));
    }
    let replies = garbage.join().expect("garbage thread");
    assert!(replies >= 30, "only {replies} error replies to garbage");
    // Still serving new connections, with state intact.
    let mut d = r.client();
    d.register("bob");
    let tb = d.login_token("bob", 8001);
    assert!(d.is_online(&tb, "alice"));
}

#[test]
fn udp_garbage_is_ignored() {
    let r = Registry::start(SHORT_SESSIONS);
    let mut c = r.client();
    for n in ["alice", "bob", "carol"] {
        c.register(n);
    }
    let mut b = r.client();
    let tb = b.login_token("bob", 8001);
    let _hb_b = r.heartbeater(&tb, ms(100));
    let mut a = r.client();
    let ta = a.login_token("alice", 7001);

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |bytes: &[u8]| {
        udp.send_to(bytes, r.addr()).expect("send datagram");
    };
    let mut rng = Xorshift::new(42);
    let long_token = "a".repeat(200);
    let padded = json!({"op": "heartbeat", "token": ta, "pad": "p".repeat(1400)}).to_string();
    let near_misses = [
        json!({"op": "heartbeat"}).to_string(),
        json!({"token": ta}).to_string(),
        json!({"op": "heartbeat", "token": 5}).to_string(),
        json!({"op": "Heartbeat", "token": ta}).to_string(),
        json!({"op": "login", "token": ta}).to_string(),
        json!({"op": "heartbeat", "token": long_token}).to_string(),
        json!([{"op": "heartbeat", "token": ta}]).to_string(),
        padded,
    ];
    // Only garbage and near misses for alice: she must time out anyway.
    let start = Instant::now();
    let mut went_offline = false;
    while start.elapsed() < Duration::from_secs(3) {
        for _ in 0..5 {
            let n = (rng.next_u64() % 600) as usize;
            send(&rng.bytes(n));
        }
        send(&rng.bytes(1400));
        send(b"");
        for m in &near_misses {
            send(m.as_bytes());
        }
        if !b.is_online(&tb, "alice") {
            went_offline = true;
            break;
        }
        thread::sleep(ms(50));
    }
    assert!(went_offline, "near-miss datagrams kept alice online");
    assert!(
        start.elapsed() <= ms(600 + 1000),
        "offline only after {:?}",
        start.elapsed()
    );

    // Bob's real heartbeats were honoured all along, and still are.
    assert!(b.is_online(&tb, "bob"));
    let mut k = r.client();
    let tk = k.login_token("carol", 9001);
    let _hb_k = r.heartbeater(&tk, ms(100));
    holds_for(ms(1300), "carol online on real heartbeats", || {
        b.is_online(&tb, "carol") && b.is_online(&tb, "bob")
    });
    drop(a);
}

#[test]
fn idle_connections_are_closed_but_live_sessions_are_not() {
    let r = Registry::start(&[SHORT_SESSIONS, &["--idle-timeout-secs", "2"]].concat());
    let mut c = r.client();
    c.register("alice");
    c.register("bob");
    drop(c);
    // Logged in and heartbeating: must stay open.
    let mut live = r.client();
    let ta = live.login_token("alice", 7001);
    let _hb = r.heartbeater(&ta, ms(100));
    // Logged in, no heartbeats: goes offline, then counts as idle.
    let mut lapsed = r.client();
    lapsed.login_token("bob", 8001);
    // Never logged in: one request, then silence; and total silence.
    let mut chatty = r.client();
    chatty.expect_err(json!({"op": "fly"}), "unknown_op");
    let start = Instant::now();
    let mut silent = r.client();

    let took = wait_until(
        Duration::from_secs(5),
        ms(50),
        "silent connection closed",
        || silent.is_closed(),
    );
    assert!(took >= ms(1800), "closed after only {took:?}");
    silent.expect_closed();
    wait_until(
        Duration::from_secs(2),
        ms(50),
        "chatty connection closed",
        || chatty.is_closed(),
    );
    wait_until(
        Duration::from_secs(2),
        ms(50),
        "lapsed session's connection closed",
        || lapsed.is_closed(),
    );
    eprintln!("idle connections closed after {:?}", start.elapsed());
    holds_for(ms(1200), "live connection open", || !live.is_closed());
    live.ok(json!({"op": "heartbeat", "token": ta}));
}

#[test]
fn slow_client_does_not_block_others() {
    let r = Registry::start(LONG_SESSIONS);
    let mut slow1 = r.client();
    slow1.send_raw(b"{\"id\":\"slow\",\"op\":\"reg");
    let mut slow2 = r.client();
    slow2.send_raw(b"{");
    let stalled = Instant::now();

    let mut c = r.client();
    let timed = |c: &mut Client, req: serde_json::Value| {
        let start = Instant::now();
        let reply = c.request(req);
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "request took {took:?}: {reply}"
        );
        reply
    };
    assert_eq!(
        timed(
            &mut c,
            json!({"op": "register", "username": "alice", "password": PASSWORD})
        )["ok"],
        json!(true)
    );
    let login = timed(
        &mut c,
        json!({"op": "login", "username": "alice", "password": PASSWORD,
                                     "tcp_port": 7001, "udp_port": 7002}),
    );
    let t = login["token"].as_str().unwrap().to_string();
    for _ in 0..5 {
        timed(&mut c, json!({"op": "online", "token": t}));
    }
    // Stall past the registry's 1 s read tick, then finish the line: the
    // half line was kept, and the request is answered.
    while stalled.elapsed() < ms(1300) {
        timed(&mut c, json!({"op": "rooms", "token": t}));
        thread::sleep(ms(100));
    }
    slow1.send_raw(b"ister\",\"username\":\"slowpoke\",\"password\":\"correct horse battery\"}\n");
    assert_eq!(
        slow1.read_reply(),
        json!({"id": "slow", "ok": true, "username": "slowpoke"})
    );
    slow2.send_raw(b"\"id\":2,\"op\":\"fly\"}\n");
    assert_eq!(slow2.read_reply()["code"], json!("unknown_op"));
}

#[test]
fn flooding_client_is_paced_alone() {
    let r = Registry::start(&[LONG_SESSIONS, &["--requests-per-sec", "100"]].concat());
    let mut c = r.client();
    c.register("alice");
    let t = c.login_token("alice", 7001);

    // 400 pipelined requests at once: a burst of 200, then 100 a second.
    const N: usize = 400;
    let mut flood = r.client();
    let mut reader = Client::from_stream(flood.stream.try_clone().unwrap());
    let start = Instant::now();
    let done = thread::spawn(move || {
        for i in 0..N {
            let reply = reader.read_reply();
            assert_eq!(reply["id"], json!(i), "replies in order");
            assert_eq!(reply["code"], json!("unknown_op"));
        }
        start.elapsed()
    });
    let mut lines = Vec::new();
    for i in 0..N {
        lines.extend_from_slice(format!("{{\"id\":{i},\"op\":\"flood\"}}\n").as_bytes());
    }
    flood.send_raw(&lines);

    // Meanwhile another client is served at full speed.
    let mut n = 0;
    while !done.is_finished() {
        let t0 = Instant::now();
        c.ok(json!({"op": "online", "token": t}));
        assert!(t0.elapsed() < ms(1000), "request took {:?}", t0.elapsed());
        n += 1;
        thread::sleep(ms(20));
    }
    let took = done.join().expect("flood reader");
    assert!(
        took >= ms(1500),
        "400 requests at 100/s done in {took:?}: not paced"
    );
    assert!(n >= 20, "only {n} requests from the other client meanwhile");
}

// ---------------------------------------------------------------- restart

#[test]
fn kill_9_and_restart_keeps_users_and_clears_presence() {
    let mut r = Registry::start(LONG_SESSIONS);
    let port = r.port();
    let ta;
    {
        let mut c = r.client();
        for n in ["alice", "bob", "carol"] {
            c.register(n);
        }
        let mut a = r.client();
        ta = a.login_token("alice", 7001);
        a.ok(json!({"op": "create_room", "token": ta, "room": "lab"}));
        let mut b = r.client();
        let tb = b.login_token("bob", 8001);
        b.ok(json!({"op": "join_room", "token": tb, "room": "lab"}));
        r.kill9();
    }
    r.restart();
    assert_eq!(r.port(), port);

    // No stale presence: with a 30 s session time-out, only the restart can
    // have taken alice and bob offline, and their rooms with them.
    let mut c = r.client();
    let tc = c.login_token("carol", 9001);
    assert_eq!(
        c.search(&tc, "alice"),
        json!({"username": "alice", "online": false})
    );
    assert_eq!(
        c.search(&tc, "bob"),
        json!({"username": "bob", "online": false})
    );
    assert_eq!(
        names(&c.ok(json!({"op": "online", "token": tc}))["users"]),
        ["carol"]
    );
    assert_eq!(
        c.ok(json!({"op": "rooms", "token": tc}))["rooms"],
        json!([])
    );

    // Accounts survived: bob logs in with his password (no already_online),
    // and alice resumes her session by its token.
    let mut b = r.client();
    b.login_token("bob", 8101);
    let mut a = r.client();
    let reply = a.ok(json!({"op": "resume", "token": ta, "tcp_port": 7101, "udp_port": 7102}));
    assert_eq!(reply["username"], json!("alice"));
    assert_eq!(
        names(&c.ok(json!({"op": "online", "token": tc}))["users"]),
        ["alice", "bob", "carol"]
    );
    // A wrong password is still wrong (the hashes survived, not just names).
    let mut d = r.client();
    d.expect_err(
        json!({"op": "login", "username": "carol", "password": "wrong password",
               "tcp_port": 1, "udp_port": 2}),
        "invalid_credentials",
    );
}

#[test]
fn sigint_exits_zero_promptly() {
    let mut r = Registry::start(LONG_SESSIONS);
    let mut c = r.client();
    c.register("alice");
    let mut a = r.client();
    a.login_token("alice", 7001);
    let mut half = r.client();
    half.send_raw(b"{\"op\":");
    let idle = r.client();

    let start = Instant::now();
    let status = r.interrupt(Duration::from_secs(2));
    let status = status.unwrap_or_else(|| panic!("still running 2 s after SIGINT\n{}", r.log()));
    assert!(status.success(), "exit status {status:?}\n{}", r.log());
    eprintln!("exited {:?} after SIGINT", start.elapsed());
    // Its clients see the connection closed.
    a.expect_closed();
    half.expect_closed();
    drop(idle);
}

// ---------------------------------------------------------------- store

#[cfg(feature = "mongodb")]
#[test]
fn unreachable_mongodb_answers_store_unavailable() {
    let port = kit::mongo::free_port();
    let r = Registry::builder()
        .store(&format!("mongodb://127.0.0.1:{port}/x"))
        .flags(LONG_SESSIONS)
        .start();
    // Both requests at once, on two connections (each waits out the
    // driver's server selection time-out).
    let reqs = [
        json!({"op": "register", "username": "alice", "password": PASSWORD}),
        json!({"op": "login", "username": "alice", "password": PASSWORD,
               "tcp_port": 7001, "udp_port": 7002}),
    ];
    let mut clients: Vec<Client> = reqs.iter().map(|_| r.client()).collect();
    let start = Instant::now();
    for (c, req) in clients.iter_mut().zip(&reqs) {
        let mut line = serde_json::to_vec(req).unwrap();
        line.push(b'\n');
        c.send_raw(&line);
    }
    for (c, req) in clients.iter_mut().zip(&reqs) {
        let reply = c.read_reply();
        assert_error_shape(&reply);
        assert_eq!(
            reply["code"],
            json!("store_unavailable"),
            "{req} -> {reply}"
        );
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "store_unavailable only after {took:?}"
        );
    }
    // The connection stays usable.
    clients[0].expect_err(json!({"op": "fly"}), "unknown_op");
}

#[cfg(feature = "mongodb")]
#[test]
fn mongodb_outage_and_recovery() {
    let nx = kit::mongo::nx_server_start(&kit::mongo::fresh_dir("registry-faults"));
    let r = Registry::builder()
        .store(&nx.uri("registry_faults"))
        .flags(LONG_SESSIONS)
        .start();
    let mut c = r.client();
    c.register("alice");
    let mut a = r.client();
    let ta = a.login_token("alice", 7001);
    a.ok(json!({"op": "logout", "token": ta}));

    nx.kill();
    let start = Instant::now();
    c.expect_err(
        json!({"op": "register", "username": "bob", "password": PASSWORD}),
        "store_unavailable",
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );

    nx.restart();
    // Recovers without restarting the registry (the driver reconnects).
    wait_until(
        Duration::from_secs(15),
        ms(200),
        "register works again",
        || {
            let reply =
                c.request(json!({"op": "register", "username": "bob", "password": PASSWORD}));
            match reply["ok"].as_bool() {
                Some(true) => true,
                _ => {
                    assert_eq!(reply["code"], json!("store_unavailable"), "{reply}");
                    false
                }
            }
        },
    );
    // The registration from before the outage is still there.
    let mut a = r.client();
    a.login_token("alice", 7001);
    let mut b = r.client();
    b.login_token("bob", 8001);
}
