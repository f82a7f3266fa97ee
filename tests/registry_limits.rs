//! What one client may take from the registry without logging in (issue 11
//! item 7), on real sockets: connections per source address, the idle
//! time-out (blank and trickled lines are not requests), and the shared
//! memory budget for unfinished lines. Also two protocol.md points: the
//! exact echo of request ids, and which heartbeat datagrams count.
//!
//! In process (`registry::start`) where a `Config` field is enough; the
//! binary only to check its flag and its log line.

mod kit;

use kit::{lossy, Client, Read1, Registry};
use lanchat::registry::{self, Config, RunningServer};
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn config() -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        store: "memory".into(),
        session_timeout: Duration::from_secs(30),
        hash_concurrency: 2,
        argon2_m_kib: 64,
        argon2_passes: 1,
        ..Config::default()
    }
}

fn start(config: Config) -> (RunningServer, u16) {
    let server = registry::start(config).expect("start an in-process registry");
    let port = server.addr().port();
    (server, port)
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Registers and logs in `name` on a connection from `src`.
fn logs_in_from(src: Ipv4Addr, port: u16, name: &str) {
    let mut c = Client::connect_from(src, port);
    c.register(name);
    c.login(name, 7001);
}

// ---------------------------------------------------------------- per address

#[test]
fn one_address_at_its_cap_does_not_shut_out_another() {
    const CAP: usize = 8;
    let (_server, port) = start(Config {
        max_connections_per_ip: CAP,
        ..config()
    });
    let mut held: Vec<Client> = (0..CAP).map(|_| Client::connect(port)).collect();
    // The last of them is served (accept is first in, first out, so every
    // one before it is counted too).
    held[CAP - 1].expect_err(json!({"op": "barrier"}), "unknown_op");

    // One more from the same address: one error line, then closed.
    for _ in 0..3 {
        let mut over = Client::connect(port);
        let reply = over.read_reply();
        assert_eq!(reply["code"], json!("too_many_connections"), "{reply}");
        assert_eq!(reply["id"], Value::Null, "{reply}");
        over.expect_closed();
    }

    // Another address registers and logs in as usual, and so do the
    // connections already held.
    logs_in_from(Ipv4Addr::new(127, 0, 0, 2), port, "other");
    held[0].register("held");
    held[0].login("held", 7003);

    // A connection that ends makes room for one more.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Client::connect(port);
        let _ = c.try_send_raw(b"{\"op\":\"barrier\"}\n");
        match c.read_line_raw() {
            Read1::Line(l) => {
                let r: Value = serde_json::from_slice(&l).expect("JSON");
                if r["code"] == json!("unknown_op") {
                    break;
                }
                assert_eq!(r["code"], json!("too_many_connections"), "{r}");
            }
            Read1::Eof | Read1::Reset => {}
        }
        assert!(
            Instant::now() < deadline,
            "no room after a connection ended"
        );
    }
}

#[test]
fn the_binary_caps_connections_and_logs_refusals_sparingly() {
    let reg = Registry::builder()
        .flags(&["--max-connections-per-ip", "2"])
        .start();
    let mut held = [reg.client(), reg.client()];
    held[1].expect_err(json!({"op": "barrier"}), "unknown_op");
    for _ in 0..20 {
        let mut over = reg.client();
        assert_eq!(over.read_reply()["code"], json!("too_many_connections"));
        over.expect_closed();
    }
    logs_in_from(Ipv4Addr::new(127, 0, 0, 3), reg.port(), "other");
    held[0].register("held");
    let log = reg.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("refused")).collect();
    assert_eq!(lines.len(), 1, "one log line for 20 refusals:\n{log}");
    assert!(
        lines[0].contains("127.0.0.1") && lines[0].contains("--max-connections-per-ip"),
        "{}",
        lines[0]
    );
}

// ---------------------------------------------------------------- idle time-out

/// Keeps sending `every_tick` (if any) every 200 ms until the registry
/// closes `s`; answers how long after `opened` it did. Panics past `limit`.
fn closed_after(
    s: &mut TcpStream,
    opened: Instant,
    every_tick: &[u8],
    limit: Duration,
) -> Duration {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return opened.elapsed(),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return opened.elapsed(),
            Ok(n) => panic!("the registry sent {:?}", lossy(&b[..n])),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
        assert!(
            opened.elapsed() < limit,
            "connection sending {:?} still open after {:?}",
            lossy(every_tick),
            opened.elapsed()
        );
        if !every_tick.is_empty() && s.write_all(every_tick).is_err() {
            return opened.elapsed();
        }
    }
}

#[test]
fn blank_and_trickled_lines_do_not_keep_a_connection_open() {
    let idle = Duration::from_secs(1);
    let (_server, port) = start(Config {
        idle_timeout: idle,
        ..config()
    });
    // Closed by the idle time-out plus the registry's 1 s read tick.
    let limit = idle + Duration::from_millis(2500);
    for (what, first, tick) in [
        ("silent", &b""[..], &b""[..]),
        ("blank lines", &b""[..], &b"\n"[..]),
        ("CRLF blank lines", &b""[..], &b"  \r\n"[..]),
        (
            "a line trickled byte by byte",
            &b"{\"op\":\"x\",\"pad\":\""[..],
            &b"x"[..],
        ),
    ] {
        let mut s = connect(port);
        let opened = Instant::now();
        s.write_all(first).unwrap();
        let after = closed_after(&mut s, opened, tick, limit);
        assert!(
            after >= idle - Duration::from_millis(100),
            "{what}: closed after {after:?}"
        );
        eprintln!("{what}: closed after {after:?}");
    }
    // Requests do keep it open (past the same limit).
    let mut c = Client::connect(port);
    let opened = Instant::now();
    while opened.elapsed() < limit + Duration::from_millis(500) {
        c.expect_err(json!({"op": "barrier"}), "unknown_op");
    }
}

// ---------------------------------------------------------------- line budget

/// Reads a first line from each connection not yet refused (each read
/// bounded by its time-out): it must be `buffers_full`, which marks it
/// refused.
fn check(conns: &mut [TcpStream], refused: &mut [bool; 2]) {
    for (i, s) in conns.iter_mut().enumerate() {
        if refused[i] {
            continue;
        }
        if let Some(reply) = line_or_timeout(s) {
            assert_eq!(reply["code"], json!("buffers_full"), "{reply}");
            assert_eq!(reply["id"], Value::Null, "{reply}");
            refused[i] = true;
        }
    }
}

/// Reads one line from `s` (bounded by its read time-out), or `None` at a
/// time-out.
fn line_or_timeout(s: &mut TcpStream) -> Option<Value> {
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => panic!("closed without a line"),
            Ok(_) if b[0] == b'\n' => return Some(serde_json::from_slice(&got).expect("JSON")),
            Ok(_) => got.push(b[0]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                assert!(got.is_empty(), "half a line: {:?}", lossy(&got));
                return None;
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

#[test]
fn unfinished_lines_share_a_budget_and_the_rest_are_served() {
    let (_server, port) = start(Config {
        line_budget: 64 * 1024,
        ..config()
    });
    // Two connections each send 40 KiB of a request and stop: the budget
    // cannot hold both, so one (or, when both lines grew at the same
    // moment, each) is told and closed.
    let pad = "x".repeat(40 * 1024);
    let mut conns: Vec<TcpStream> = (0..2).map(|_| connect(port)).collect();
    for (i, s) in conns.iter_mut().enumerate() {
        write!(s, "{{\"id\":{i},\"op\":\"nope\",\"pad\":\"{pad}").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
    }
    let mut refused = [false; 2];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !refused.contains(&true) {
        assert!(Instant::now() < deadline, "no connection was refused");
        check(&mut conns, &mut refused);
    }
    // One more look: a refusal at the same moment has arrived by now.
    check(&mut conns, &mut refused);
    for i in (0..2).filter(|&i| refused[i]) {
        let mut r = Client::from_stream(conns[i].try_clone().unwrap());
        r.expect_closed();
    }

    // Meanwhile others register and log in as usual.
    logs_in_from(Ipv4Addr::LOCALHOST, port, "alice");
    logs_in_from(Ipv4Addr::new(127, 0, 0, 2), port, "bob");

    // The one that was held, if any, finishes its line and gets its answer.
    let Some(holding) = refused.iter().position(|r| !r) else {
        return;
    };
    let s = &mut conns[holding];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"\"}\n").unwrap();
    let reply = line_or_timeout(s).expect("a reply to the finished line");
    assert_eq!(
        (&reply["id"], &reply["code"]),
        (&json!(holding), &json!("unknown_op"))
    );
}

// ---------------------------------------------------------------- id echo

#[test]
fn ids_come_back_as_the_exact_text_sent() {
    let (_server, port) = start(config());
    let mut c = Client::connect(port);
    for id in [
        "1e2",
        "1E+2",
        "-0",
        "0.10",
        "1.00000000000000000000001",
        "123456789012345678901234567890",
        "-9223372036854775809",
        "\"\\u00e9t\\u00e9\"",
        "\"a\\/b\"",
        "7",
        "\"plain\"",
    ] {
        c.send_raw(format!("{{\"id\":{id},\"op\":\"nope\"}}\n").as_bytes());
        let Read1::Line(line) = c.read_line_raw() else {
            panic!("no reply for id {id}")
        };
        let line = String::from_utf8(line).expect("UTF-8");
        let reply: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(reply["code"], json!("unknown_op"), "{line}");
        assert!(
            line.starts_with(&format!("{{\"id\":{id},"))
                || line.contains(&format!(",\"id\":{id},"))
                || line.contains(&format!(",\"id\":{id}}}")),
            "id {id} came back as {line}"
        );
    }
}

// ---------------------------------------------------------------- heartbeats

#[test]
fn heartbeats_ignore_other_fields_but_must_be_objects() {
    let (server, port) = start(config());
    let presence = &server.registry().presence;
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
    let to = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut c = Client::connect(port);
    c.register("beats");
    let token = c.login_token("beats", 7001);
    // A heartbeat of this session (version 2, MACed), with more fields.
    let with_more = |dg: Vec<u8>| {
        let dg = String::from_utf8(dg).unwrap();
        format!(r#"{},"seq":7,"ext":{{"v":[1]}}}}"#, &dg[..dg.len() - 1])
    };
    let counted = |what: &str, before: (u64, u64), heartbeat: bool| {
        kit::poll(Duration::from_secs(5), what, || {
            let now = (
                presence.heartbeats.load(Ordering::Relaxed),
                presence.garbage.load(Ordering::Relaxed),
            );
            now != before
        });
        let now = (
            presence.heartbeats.load(Ordering::Relaxed),
            presence.garbage.load(Ordering::Relaxed),
        );
        let expected = if heartbeat {
            (before.0 + 1, before.1)
        } else {
            (before.0, before.1 + 1)
        };
        assert_eq!(now, expected, "{what}");
    };
    for (datagram, heartbeat) in [
        (with_more(kit::heartbeat::datagram(&token)), true),
        (format!(r#"["heartbeat","{token}"]"#), false),
        // Version 1's form (the token in the clear) no longer counts.
        (format!(r#"{{"op":"heartbeat","token":"{token}"}}"#), false),
        (
            String::from_utf8(kit::heartbeat::datagram(&token)).unwrap(),
            true,
        ),
    ] {
        let before = (
            presence.heartbeats.load(Ordering::Relaxed),
            presence.garbage.load(Ordering::Relaxed),
        );
        udp.send_to(datagram.as_bytes(), to).expect("send");
        counted(&datagram, before, heartbeat);
    }
}
