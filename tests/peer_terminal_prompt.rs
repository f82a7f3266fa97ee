//! In a real terminal (tmux): the prompt names the current conversation
//! and counts unread messages in the others, and only the user changes it
//! (issue 15 item 1); whether the registry can be reached is said at start
//! and in the prompt, and requests are refused at once while it cannot
//! (item 3); a message sent is one line, with its delivery mark, in place
//! of the typed line (item 4).
//!
//! Needs `tmux`; skipped without it (see `peer_terminal.rs`).

mod kit;

use kit::tmux::{last_line, tmux_available, Tmux};
use kit::*;
use serde_json::json;

fn peer_command(registry: &str) -> String {
    format!(
        "exec env NO_COLOR=1 RUST_LOG=error '{}' --registry {registry} --bind 127.0.0.1",
        env!("CARGO_BIN_EXE_peer"),
    )
}

/// Waits for the prompt line (the last one) to read `want` exactly.
fn wait_prompt(t: &Tmux, want: &str) -> String {
    t.wait_screen(&format!("the prompt {want:?}"), WAIT, |s| {
        last_line(s).trim_end() == want.trim_end()
    })
}

/// Alice in the terminal, logged in (password on the line: no hidden
/// prompt to answer).
fn alice_in_terminal(reg: &Registry) -> Tmux {
    let t = Tmux::start(&peer_command(&reg.addr().to_string()), 150, 30);
    t.wait_screen("the registry line", WAIT, |s| {
        s.contains(&format!("connected to the registry at {}", reg.addr()))
    });
    wait_prompt(&t, "> ");
    t.type_command(&format!("/register alice {PASSWORD}"));
    t.wait_screen("registered", WAIT, |s| s.contains("registered alice"));
    t.type_command(&format!("/login alice {PASSWORD}"));
    t.wait_screen("logged in", WAIT, |s| s.contains("logged in as alice"));
    t
}

#[test]
fn prompt_shows_the_current_conversation_and_unread_counts() {
    if !tmux_available() {
        return;
    }
    let reg = Registry::start(&[]);
    let t = alice_in_terminal(&reg);
    let mut bob = Peer::spawn_named("bob", reg.addr(), &[]);
    bob.login_new("bob");
    let mut carol = Peer::spawn_named("carol", reg.addr(), &[]);
    carol.login_new("carol");

    t.type_command("/create lab");
    wait_prompt(&t, "[#lab]> ");
    carol.send("/join lab");
    carol.expect("room_joined", &[("room", "lab")], WAIT);
    t.wait_screen("carol in #lab", WAIT, |s| s.contains("carol joined #lab"));

    // A request, then private messages: the current stays #lab, the prompt
    // counts them.
    bob.send("/chat alice");
    t.wait_screen("bob's request", WAIT, |s| s.contains("bob wants to chat"));
    wait_prompt(&t, "[#lab]> ");
    t.type_command("/accept bob");
    bob.expect("chat_accepted", &[("with", "alice")], WAIT);
    // Accepting is the user's choice: the chat becomes current.
    wait_prompt(&t, "[bob]> ");
    t.type_command("/switch #lab");
    wait_prompt(&t, "[#lab]> ");
    bob.send("/msg alice one");
    bob.send("/msg alice two");
    let s = wait_prompt(&t, "[#lab] bob:2 > ");
    assert!(s.contains("bob (private) two"), "{s}");

    // A half-typed line survives the prompt changing under it.
    t.type_keys("draft words");
    bob.send("/msg alice three");
    wait_prompt(&t, "[#lab] bob:3 > draft words");
    t.key("C-u");
    wait_prompt(&t, "[#lab] bob:3 > ");

    // Plain text still goes to #lab, not to bob who wrote last.
    t.type_command("for the lab");
    carol.expect(
        "message",
        &[("chat", "#lab"), ("text", "for the lab")],
        WAIT,
    );
    bob.expect_none("message", &[("text", "for the lab")], ms(300));

    // Ctrl-X: the next conversation; its messages count as read.
    t.key("C-x");
    wait_prompt(&t, "[bob]> ");
    // Activity in #lab now counts there.
    carol.send("hi all");
    wait_prompt(&t, "[bob] #lab:1 > ");

    // /msg sends elsewhere without switching.
    t.type_command("/msg #lab via msg");
    carol.expect("message", &[("text", "via msg")], WAIT);
    wait_prompt(&t, "[bob] #lab:1 > ");

    // Closing the current chat moves to the next open conversation, and
    // says so.
    t.type_command("/close");
    let s = wait_prompt(&t, "[#lab]> ");
    assert!(s.contains("now talking in #lab"), "{s}");
    t.type_command("/leave");
    let s = wait_prompt(&t, "> ");
    assert!(s.contains("no current conversation now"), "{s}");
}

fn ms(n: u64) -> std::time::Duration {
    std::time::Duration::from_millis(n)
}

#[test]
fn unreachable_registry_is_said_and_requests_are_refused_at_once() {
    if !tmux_available() {
        return;
    }
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let t = Tmux::start(&peer_command(&format!("127.0.0.1:{port}")), 220, 20);
    let s = wait_prompt(&t, "(no registry) > ");
    assert!(
        s.contains(
            "retrying in the background (name another with --registry HOST:PORT or REGISTRY_ADDR)"
        ),
        "{s}"
    );
    // Refused before any password is asked for, at once.
    t.type_command("/login alice");
    // "At once": well before the 10 s a request used to wait.
    let s = t.wait_screen("the refusal", ms(2000), |s| {
        s.contains(&format!(
            "/login: cannot reach the registry at 127.0.0.1:{port}: not sent"
        ))
    });
    assert!(!s.contains("password for"), "{s}");

    // A registry that goes away while logged in: the prompt says so, /who
    // is refused at once (not answered later), and the prompt recovers.
    let mut reg = Registry::start(&[]);
    let t = alice_in_terminal(&reg);
    wait_prompt(&t, "> ");
    reg.kill9();
    wait_prompt(&t, "(no registry) > ");
    t.type_command("/who");
    t.wait_screen("/who refused", ms(2000), |s| {
        s.contains("cannot reach the registry at") && s.contains("not sent")
    });
    reg.restart();
    // The reconnection backs off up to 5 s between attempts.
    let s = t.wait_screen("the prompt without (no registry)", ms(15_000), |s| {
        last_line(s).trim_end() == ">"
    });
    assert!(
        !s.contains("online (") && !s.contains("nobody is online"),
        "a stale /who answer:\n{s}"
    );
}

#[test]
fn one_line_per_message_sent_with_its_delivery_mark() {
    if !tmux_available() {
        return;
    }
    let reg = Registry::start(&[]);
    let t = alice_in_terminal(&reg);
    let mut bob = Peer::spawn_named("bob", reg.addr(), &[]);
    bob.login_new("bob");
    t.type_command("/create lab");
    wait_prompt(&t, "[#lab]> ");
    t.type_command("alone");
    t.wait_screen("the echo alone", WAIT, |s| {
        s.contains("#lab <you> alone (nobody else here)")
    });
    bob.send("/join lab");
    bob.expect("room_joined", &[("room", "lab")], WAIT);
    t.wait_screen("bob in #lab", WAIT, |s| s.contains("bob joined #lab"));

    // Room: the typed line is replaced by the echo, marked delivered.
    t.type_command("hello lab");
    bob.expect("message", &[("text", "hello lab")], WAIT);
    let s = t.wait_screen("the echo", WAIT, |s| s.contains("#lab <you> hello lab ✓"));
    let lines: Vec<&str> = s.lines().filter(|l| l.contains("hello lab")).collect();
    assert_eq!(lines.len(), 1, "one line for the message:\n{s}");
    assert!(!s.contains("delivered"), "{s}");
    wait_prompt(&t, "[#lab]> ");

    // Chat: the same, once bob acknowledges it.
    t.type_command("/msg bob psst");
    bob.expect("chat_request", &[("from", "alice")], WAIT);
    bob.send("/accept alice");
    bob.expect("message", &[("text", "psst"), ("from", "alice")], WAIT);
    let s = t.wait_screen("the chat echo", WAIT, |s| s.contains("you → bob psst ✓"));
    let lines: Vec<&str> = s.lines().filter(|l| l.contains("psst")).collect();
    assert_eq!(lines.len(), 1, "one line for the message:\n{s}");

    // A partner who does not acknowledge within a second: the echo says
    // so, and one line follows when the acknowledgement comes.
    bob.signal(libc::SIGSTOP);
    t.type_command("/msg bob frozen?");
    t.wait_screen("the unacknowledged echo", ms(3000), |s| {
        s.contains("you → bob frozen? (not acknowledged yet)")
    });
    bob.signal(libc::SIGCONT);
    bob.expect("message", &[("text", "frozen?")], WAIT);
    t.wait_screen("the late acknowledgement", WAIT, |s| {
        s.contains("bob has your messages up to")
    });

    // A member who does not answer: the echo comes after a second with
    // what is known, and the members missed are named once given up.
    // (Stopped, not killed: a killed peer's registry connection closes, its
    // session ends at once and the room may drop it before the line is
    // typed; a stopped one stays listed until its session times out.)
    bob.signal(libc::SIGSTOP);
    t.type_command("anyone?");
    let s = t.wait_screen("the unsettled echo", ms(3000), |s| {
        s.contains("#lab <you> anyone? (0/1 so far)")
    });
    assert_eq!(
        s.lines().filter(|l| l.contains("anyone?")).count(),
        1,
        "{s}"
    );
    let s = t.wait_screen("the members missed", ms(20_000), |s| {
        s.contains("#lab message") && s.contains("1 of 1 missed: bob")
    });
    assert!(!s.contains("delivered"), "{s}");
}

/// `--json`: delivery states as events (rooms: `delivery`, chats:
/// `chat_delivered`).
#[test]
fn json_delivery_states() {
    let reg = Registry::start(&[]);
    let mut p = login_all(reg.addr(), &["alice", "bob"], &PeerOpts::default());
    let [alice, bob] = &mut p[..] else {
        unreachable!()
    };
    open_chat(alice, bob);
    alice.send("/msg bob one");
    let sent = alice.expect(
        "message",
        &[("own", json!(true)), ("text", json!("one"))],
        WAIT,
    );
    bob.expect("message", &[("text", "one")], WAIT);
    alice.expect(
        "chat_delivered",
        &[("with", json!("bob")), ("id", sent["id"].clone())],
        WAIT,
    );
    alice.send("/create lab");
    alice.expect("room_joined", &[("room", "lab")], WAIT);
    bob.send("/join lab");
    bob.expect("room_joined", &[("room", "lab")], WAIT);
    alice.expect("member_joined", &[("user", "bob")], WAIT);
    alice.send("/msg #lab all");
    let sent = alice.expect(
        "message",
        &[("own", json!(true)), ("text", json!("all"))],
        WAIT,
    );
    alice.expect(
        "delivery",
        &[
            ("room", json!("lab")),
            ("id", sent["id"].clone()),
            ("acked", json!(1)),
            ("total", json!(1)),
        ],
        WAIT,
    );
}
