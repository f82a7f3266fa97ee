//! A hostile classmate against one-to-one chats (issue 11, items 2 and 3,
//! and the section 3 gaps of protocol.md): a raw TCP client plays the
//! attacker against a real `peer` and a real `registry`.

mod kit;

use kit::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Live incoming chat connections the peer keeps (`peer::chat::MAX_CONNS`,
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

/// The attacker's end of one chat connection.
struct Raw {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Raw {
    fn connect(to: &Peer) -> Raw {
        Raw::connect_port(to.tcp_port)
    }

    fn connect_port(port: u16) -> Raw {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let w = TcpStream::connect(addr).expect("connect to the victim");
        w.set_read_timeout(Some(WAIT)).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Raw { w, r }
    }

    fn line(&mut self, line: &str) {
        self.w
            .write_all(format!("{line}\n").as_bytes())
            .expect("write to the victim");
    }

    fn send(&mut self, v: Value) {
        self.line(&v.to_string());
    }

    fn hello(&mut self, from: &str) {
        self.send(json!({"type": "hello", "from": from, "version": 1}));
    }

    /// The next line that is not a ping (`None`: closed, or nothing within
    /// `limit`).
    fn next(&mut self, limit: Duration) -> Option<Value> {
        self.w.set_read_timeout(Some(limit)).unwrap();
        loop {
            let mut s = String::new();
            match self.r.read_line(&mut s) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {
                    let v: Value = serde_json::from_str(&s).expect("a JSON line");
                    if v["type"] != "ping" {
                        return Some(v);
                    }
                }
            }
        }
    }
}

/// Threads of process `pid` now.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn raise_nofile(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Item 2: `hello` in the name of nobody is refused like an impostor, and
/// the victim never sees a request from that name.
#[test]
fn hello_in_an_unregistered_name_is_refused() {
    let (_reg, mut victim) = victim();
    let mut att = Raw::connect(&victim);
    att.hello("teacher");
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
    let mut att = Raw::connect(&victim);
    att.hello("alice");
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

/// Item 3: a flood of connections and hellos (real and invented names)
/// leaves the victim with a handful of prompts, a bounded thread count,
/// a prompt `/who`, and room for an honest request once it stops.
#[test]
fn flood_of_hellos_is_bounded() {
    raise_nofile(4096);
    let (reg, mut victim) = victim();
    let pid = victim.pid();
    let base = threads(pid);
    // Accounts online at this address with no peer behind them.
    let ghosts: Vec<Session> = (0..6)
        .map(|i| reg.ghost_login(&format!("ghost{i}"), 9, 9))
        .collect();
    // Connections past the per-address cap are answered `busy` at once.
    let mut quiet: Vec<Raw> = (0..MAX_CONNS_PER_IP)
        .map(|_| Raw::connect(&victim))
        .collect();
    let mut extra = Raw::connect(&victim);
    assert_eq!(extra.next(WAIT), Some(json!({"type": "busy"})));
    assert_eq!(extra.next(WAIT), None, "closed after busy");
    // The quiet ones are let go after the hello time-out.
    for q in &mut quiet {
        assert_eq!(q.next(Duration::from_secs(8)), Some(json!({"type": "bye"})));
    }
    drop(quiet);
    let mut held = Vec::new();
    let mut most = 0;
    for i in 0..1500 {
        let mut att = Raw::connect(&victim);
        if i % 3 == 0 {
            att.hello(&format!("ghost{}", i % 6));
        } else {
            att.hello(&format!("invented{i}"));
        }
        held.push(att);
        if i % 50 == 49 {
            most = most.max(threads(pid));
        }
    }
    most = most.max(threads(pid));
    assert!(
        most <= base + 2 * MAX_CONNS + 8,
        "{most} threads under the flood (started with {base})"
    );
    let t = Instant::now();
    victim.send("/who");
    victim.expect("who", ANY, WAIT);
    let who = t.elapsed();
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

/// Section 3: a connection must start with a `hello` carrying `version`
/// 1; anything else is rejected at once, not left to time out.
#[test]
fn anything_but_a_valid_hello_first_is_rejected_at_once() {
    let (_reg, mut victim) = victim();
    let reject = Some(json!({"type": "reject", "reason": "bad hello"}));
    for first in [
        r#"{"type":"hello","from":"alice"}"#,
        r#"{"type":"hello","from":"alice","version":2}"#,
        r#"{"type":"msg","id":1,"text":"hi"}"#,
        r#"{"type":"accept"}"#,
        "not json at all",
    ] {
        let mut att = Raw::connect(&victim);
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

/// Section 3: message ids must increase; a repeat or a step back is
/// dropped, so a message is never shown twice.
#[test]
fn repeated_and_out_of_order_message_ids_are_dropped() {
    let (reg, mut victim) = victim();
    let _mallory = reg.ghost_login("mallory", 9, 9);
    let mut att = Raw::connect(&victim);
    att.hello("mallory");
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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer"));
    cmd.args(["--registry", &reg.addr().to_string(), "--bind", "127.0.0.1"])
        .env_remove("REGISTRY_ADDR")
        .env("NO_COLOR", "1")
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
    let mut att = Raw::connect_port(port);
    att.hello("alice");
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
