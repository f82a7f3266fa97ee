//! One-to-one chats end to end, on the real `registry` and `peer` binaries
//! (peers driven through piped stdin, events read as `--json` lines): request,
//! accept, reject, do-not-disturb, time-outs, quitting, crashes, unreachable
//! users, several chats at once, a registry restart mid-chat, and Ctrl-C.

mod kit;

use kit::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A registry and logged-in peers with the given names.
fn setup(names: &[&str], peer_args: &[&str]) -> (Registry, Vec<Peer>) {
    let reg = Registry::start(&[]);
    let peers = names
        .iter()
        .map(|name| {
            let mut p = Peer::spawn_named(name, reg.addr(), peer_args);
            p.login_new(name);
            p
        })
        .collect();
    (reg, peers)
}

fn texts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|v| v["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn ids(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|v| v["id"].as_u64().unwrap_or(0))
        .collect()
}

// (1)
#[test]
fn accepted_chat_carries_messages_both_ways_in_order() {
    const N: usize = 50;
    let (_reg, mut p) = setup(&["alice", "bob"], &[]);
    let [alice, bob] = &mut p[..] else {
        unreachable!()
    };
    alice.send("/chat bob");
    alice.expect("chat_requested", &[("to", "bob")], WAIT);
    bob.expect("chat_request", &[("from", "alice")], WAIT);
    bob.send("/accept alice");
    bob.expect("chat_accepted", &[("with", "alice")], WAIT);
    alice.expect("chat_accepted", &[("with", "bob")], WAIT);
    // Accepting makes the chat current on both sides: plain text goes there.
    alice.expect("current", &[("target", "bob")], WAIT);
    bob.expect("current", &[("target", "alice")], WAIT);

    for i in 0..N {
        alice.send(&format!("from alice {i:02}"));
        bob.send(&format!("from bob {i:02}"));
    }
    let want =
        |who: &str| -> Vec<String> { (0..N).map(|i| format!("from {who} {i:02}")).collect() };
    let want_ids: Vec<u64> = (1..=N as u64).collect();

    let got_bob = bob.collect(N, "message", &[("from", "alice"), ("chat", "alice")], WAIT);
    assert_eq!(
        texts(&got_bob),
        want("alice"),
        "bob's view of alice's messages"
    );
    assert_eq!(ids(&got_bob), want_ids);
    assert!(
        got_bob.iter().all(|v| v.get("own").is_none()),
        "{got_bob:?}"
    );
    let got_alice = alice.collect(N, "message", &[("from", "bob"), ("chat", "bob")], WAIT);
    assert_eq!(
        texts(&got_alice),
        want("bob"),
        "alice's view of bob's messages"
    );
    assert_eq!(ids(&got_alice), want_ids);

    // Each side also echoes its own messages, in order.
    let own = alice.collect(
        N,
        "message",
        &[("own", json!(true)), ("chat", json!("bob"))],
        WAIT,
    );
    assert_eq!(texts(&own), want("alice"));
    let own = bob.collect(
        N,
        "message",
        &[("own", json!(true)), ("chat", json!("alice"))],
        WAIT,
    );
    assert_eq!(texts(&own), want("bob"));

    // No duplicates trickle in afterwards.
    bob.expect_none("message", &[("from", "alice")], ms(300));
    alice.expect_none("message", &[("from", "bob")], Duration::ZERO);
    alice.expect_none("error", ANY, Duration::ZERO);
    bob.expect_none("error", ANY, Duration::ZERO);
}

// (2)
#[test]
fn rejected_request_is_reported_to_the_requester() {
    let (_reg, mut p) = setup(&["alice", "bob"], &[]);
    let [alice, bob] = &mut p[..] else {
        unreachable!()
    };
    alice.send("/chat bob");
    bob.expect("chat_request", &[("from", "alice")], WAIT);
    bob.send("/reject alice");
    let v = alice.expect("chat_rejected", &[("by", "bob")], WAIT);
    assert_eq!(v["reason"], "declined", "{v}");
    alice.expect_none("chat_accepted", ANY, Duration::ZERO);
    // Plain text has nowhere to go now.
    alice.send("anyone there?");
    alice.expect("error", ANY, WAIT);
}

// (3)
#[test]
fn do_not_disturb_answers_busy() {
    let (_reg, mut p) = setup(&["alice", "bob"], &[]);
    let [alice, bob] = &mut p[..] else {
        unreachable!()
    };
    bob.send("/dnd on");
    bob.expect("dnd", &[("on", true)], WAIT);
    alice.send("/chat bob");
    alice.expect("busy", &[("user", "bob")], WAIT);
    bob.expect_none("chat_request", ANY, Duration::ZERO);
    // And off again: requests get through.
    bob.send("/dnd off");
    bob.expect("dnd", &[("on", false)], WAIT);
    alice.send("/chat bob");
    bob.expect("chat_request", &[("from", "alice")], WAIT);
}

// (4)
#[test]
fn unanswered_request_times_out_on_both_sides() {
    let (_reg, mut p) = setup(&["alice", "bob"], &["--chat-timeout-secs", "2"]);
    let [alice, bob] = &mut p[..] else {
        unreachable!()
    };
    alice.send("/chat bob");
    let asked = Instant::now();
    bob.expect("chat_request", &[("from", "alice")], WAIT);
    bob.expect("chat_timeout", &[("with", "alice")], ms(6000));
    alice.expect("chat_timeout", &[("with", "bob")], ms(6000));
    let took = asked.elapsed();
    assert!(
        took >= ms(1500) && took <= ms(6000),
        "timed out after {took:?} with a 2 s limit"
    );
    // The request is gone: a late /accept finds nothing.
    bob.send("/accept alice");
    bob.expect("error", ANY, WAIT);
    alice.expect_none("chat_accepted", ANY, Duration::ZERO);
}

// (5)
#[test]
fn partner_quit_closes_the_chat() {
    let (_reg, mut p) = setup(&["alice", "bob"], &[]);
    let [alice, bob] = &mut p[..] else {
        unreachable!()
    };
    open_chat(alice, bob);
    let took = bob.quit_within(Duration::from_secs(1));
    let v = alice.expect("chat_closed", &[("with", "bob")], WAIT);
    assert_eq!(v["reason"], "left the chat", "{v}");
    eprintln!("bob exited {took:?} after /quit");
}

// (6)
#[test]
fn partner_crash_interrupts_the_chat_within_a_second() {
    let (_reg, mut p) = setup(&["alice", "bob"], &[]);
    let [alice, bob] = &mut p[..] else {
        unreachable!()
    };
    open_chat(alice, bob);
    bob.kill9();
    let t0 = Instant::now();
    alice.expect("chat_interrupted", &[("with", "bob")], WAIT);
    let took = t0.elapsed();
    eprintln!("chat_interrupted {took:?} after kill -9");
    assert!(
        took < Duration::from_secs(1),
        "chat_interrupted after {took:?}"
    );
    // The chat waits for bob: plain text is kept, and says so.
    alice.send("still there?");
    alice.expect(
        "message",
        &[("text", json!("still there?")), ("queued", json!(true))],
        WAIT,
    );
    // Closing it names what never reached him.
    alice.send("/close");
    alice.expect("chat_closed", &[("with", "bob")], WAIT);
    let v = alice.expect("undelivered", &[("with", "bob")], WAIT);
    assert_eq!(v["messages"], json!([{"id": 1, "text": "still there?"}]));
    alice.send("anyone?");
    alice.expect("error", ANY, WAIT);
}

// (7)
#[test]
fn messages_to_unreachable_users_fail_fast() {
    let (reg, mut p) = setup(&["alice", "bob"], &[]);
    let [alice, bob] = &mut p[..] else {
        unreachable!()
    };
    let quick = Duration::from_secs(2);

    // Registered but never logged in.
    alice.register("carol");
    let t0 = Instant::now();
    alice.send("/msg carol hello?");
    let v = alice.expect("error", ANY, quick);
    assert_eq!(v["code"], "offline", "{v}");
    assert!(v["message"].as_str().unwrap().contains("carol"), "{v}");
    eprintln!("offline user: error after {:?}", t0.elapsed());

    // Not registered at all.
    alice.send("/msg nobody_here hello?");
    let v = alice.expect("error", ANY, quick);
    assert!(
        v["message"].as_str().unwrap().contains("nobody_here"),
        "{v}"
    );

    // Killed, and messaged at once (before or after the registry notices).
    bob.kill9();
    let t0 = Instant::now();
    alice.send("/msg bob are you there?");
    let v = alice.expect("error", ANY, quick);
    eprintln!("killed user: error after {:?}: {v}", t0.elapsed());
    assert!(v["message"].as_str().unwrap().contains("bob"), "{v}");

    // Registered online at an address where nothing listens any more: the
    // registry has not noticed that the process is gone.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let _dave = reg.ghost_login("dave", port, port);
    alice.send("/search dave");
    let v = alice.expect("search_result", &[("user.username", "dave")], WAIT);
    assert_eq!(v["user"]["online"], true, "premise: dave online: {v}");
    let t0 = Instant::now();
    alice.send("/msg dave are you there?");
    let v = alice.expect("error", ANY, quick);
    eprintln!("dead but online user: error after {:?}: {v}", t0.elapsed());
    assert!(v["message"].as_str().unwrap().contains("dave"), "{v}");
    alice.expect_none("chat_requested", ANY, Duration::ZERO);

    // No hang: the peer still answers.
    alice.send("/who");
    alice.expect("who", ANY, WAIT);
}

// (8)
#[test]
fn two_chats_at_once_route_to_the_current_one() {
    let (_reg, mut p) = setup(&["alice", "bob", "carol"], &[]);
    let [alice, bob, carol] = &mut p[..] else {
        unreachable!()
    };
    open_chat(alice, bob);
    alice.expect("current", &[("target", "bob")], WAIT);
    open_chat(alice, carol);
    alice.expect("current", &[("target", "carol")], WAIT);

    alice.send("for carol 1");
    let v = alice.expect(
        "message",
        &[("own", json!(true)), ("text", json!("for carol 1"))],
        WAIT,
    );
    assert_eq!(v["chat"], "carol", "{v}");
    carol.expect(
        "message",
        &[("from", "alice"), ("text", "for carol 1")],
        WAIT,
    );

    alice.send("/chat bob");
    alice.expect("current", &[("target", "bob")], WAIT);
    alice.send("for bob 1");
    alice.send("for bob 2");
    let v = alice.expect(
        "message",
        &[("own", json!(true)), ("text", json!("for bob 1"))],
        WAIT,
    );
    assert_eq!(v["chat"], "bob", "{v}");
    let got = bob.collect(2, "message", &[("from", "alice")], WAIT);
    assert_eq!(texts(&got), ["for bob 1", "for bob 2"]);
    // A misrouted "for carol 1" would have reached bob before these.
    bob.expect_none("message", &[("text", "for carol 1")], Duration::ZERO);

    // /msg goes to the named chat without changing the current one.
    alice.send("/msg carol fence");
    carol.expect("message", &[("from", "alice"), ("text", "fence")], WAIT);
    carol.expect_none(
        "message",
        &[("from", "alice"), ("text", "for bob 1")],
        Duration::ZERO,
    );
    carol.expect_none(
        "message",
        &[("from", "alice"), ("text", "for bob 2")],
        Duration::ZERO,
    );
    alice.send("for bob 3");
    bob.expect("message", &[("from", "alice"), ("text", "for bob 3")], WAIT);

    // Replies arrive tagged with the right chat.
    bob.send("from bob");
    carol.send("from carol");
    alice.expect(
        "message",
        &[("from", "bob"), ("chat", "bob"), ("text", "from bob")],
        WAIT,
    );
    alice.expect(
        "message",
        &[("from", "carol"), ("chat", "carol"), ("text", "from carol")],
        WAIT,
    );
    bob.expect_none("message", &[("text", "from carol")], Duration::ZERO);
    carol.expect_none("message", &[("text", "from bob")], Duration::ZERO);
}

// (9)
#[test]
fn chat_survives_a_registry_restart() {
    let (mut reg, mut p) = setup(&["alice", "bob"], &[]);
    let [alice, bob] = &mut p[..] else {
        unreachable!()
    };
    open_chat(alice, bob);
    alice.send("before");
    bob.expect("message", &[("from", "alice"), ("text", "before")], WAIT);

    reg.kill9();
    alice.expect("registry_lost", ANY, WAIT);
    bob.expect("registry_lost", ANY, WAIT);
    // Peer to peer: the chat does not need the registry.
    alice.send("during the outage");
    bob.send("still here");
    bob.expect(
        "message",
        &[("from", "alice"), ("text", "during the outage")],
        WAIT,
    );
    alice.expect("message", &[("from", "bob"), ("text", "still here")], WAIT);

    reg.restart();
    alice.expect("session_restored", &[("username", "alice")], ms(10_000));
    bob.expect("session_restored", &[("username", "bob")], ms(10_000));
    alice.send("/who");
    let who = alice.expect("who", ANY, WAIT);
    let mut online: Vec<&str> = who["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["online"] == true)
        .filter_map(|u| u["username"].as_str())
        .collect();
    online.sort_unstable();
    assert_eq!(online, ["alice", "bob"], "{who}");

    alice.send("after");
    bob.expect("message", &[("from", "alice"), ("text", "after")], WAIT);
    alice.expect_none("chat_closed", ANY, Duration::ZERO);
    bob.expect_none("chat_closed", ANY, Duration::ZERO);
}

// (10)
#[test]
fn ctrl_c_quits_cleanly_and_logs_out() {
    let (_reg, mut p) = setup(&["alice", "bob", "carol"], &[]);
    let [alice, bob, carol] = &mut p[..] else {
        unreachable!()
    };
    open_chat(alice, bob);
    let took = bob.interrupt_within(Duration::from_secs(1));
    eprintln!("bob exited {took:?} after SIGINT");
    alice.expect("chat_closed", &[("with", "bob")], WAIT);
    carol.send("/search bob");
    let v = carol.expect("search_result", &[("user.username", "bob")], WAIT);
    assert_eq!(v["user"]["online"], false, "{v}");
}

/// Commands piped in before the peer's first registry connection is up wait
/// for it (they used to fail with "not connected to the registry"). The line
/// is in the pipe before the peer starts, so the stdin thread reads it before
/// the connector thread has connected.
#[test]
fn commands_before_registry_connection_wait() {
    let reg = Registry::start(&[]);
    let mut fds = [0; 2];
    // SAFETY: pipe fills the array we own; each fd is owned exactly once below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut input = std::fs::File::from(write_end);
    writeln!(input, "/register early_bird {PASSWORD}").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer"));
    cmd.args(["--json", "--bind", "127.0.0.1", "--registry"])
        .arg(reg.addr().to_string())
        .stdin(Stdio::from(read_end))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = spawn_child(cmd).expect("run peer");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let outcome = loop {
        match rx.recv_timeout(WAIT) {
            Ok(line) => {
                let v: Value = serde_json::from_str(&line).unwrap();
                seen.push(line);
                if v["event"] == "registered" || v["event"] == "error" {
                    break v;
                }
            }
            Err(_) => break Value::Null,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    drop(input);
    assert_eq!(outcome["event"], "registered", "{seen:#?}");
}

/// Commands piped in and then end of input: the requests already made are
/// answered before the peer quits (`printf '/register …' | peer`).
#[test]
fn end_of_input_lets_pending_requests_finish() {
    let reg = Registry::start(&[]);
    let mut p = Peer::spawn(reg.addr(), &[]);
    p.send("/register piped password1");
    p.send("/login piped password1");
    p.close_stdin();
    p.expect(
        "registered",
        &[("username", "piped")],
        Duration::from_secs(5),
    );
    p.expect(
        "logged_in",
        &[("username", "piped")],
        Duration::from_secs(5),
    );
    p.expect("bye", ANY, Duration::from_secs(5));
    let status = p.wait_exit(Duration::from_secs(2)).expect("peer exits");
    assert!(status.success(), "{status:?}");
}
