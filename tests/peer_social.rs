//! In a real terminal (tmux): a room line that names you is highlighted
//! and rings the bell once (not while `/dnd` is on), as does a private
//! message in a chat that is not current; `/me` shows an action line.

mod kit;

use kit::tmux::{last_line, tmux_available, Tmux};
use kit::*;
use std::time::{Duration, Instant};

/// The peer in the terminal, in colour (the highlight is an escape).
fn peer_command(reg: &Registry) -> String {
    format!(
        "exec env RUST_LOG=error LANCHAT_REGISTRY_FINGERPRINT={} '{}' --registry {} --bind 127.0.0.1",
        reg.fingerprint(),
        env!("CARGO_BIN_EXE_peer"),
        reg.addr()
    )
}

/// Logs `name` in, in the terminal.
fn login(t: &Tmux, name: &str) {
    t.wait_screen("the prompt", WAIT, |s| last_line(s).trim_end() == ">");
    t.type_command(&format!("/register {name} {PASSWORD}"));
    t.wait_screen("registered", WAIT, |s| {
        s.contains(&format!("registered {name}"))
    });
    t.type_command(&format!("/login {name} {PASSWORD}"));
    t.wait_screen("logged in", WAIT, |s| {
        s.contains(&format!("logged in as {name}"))
    });
}

/// BEL bytes the pane has received so far.
fn bells(log: &std::path::Path) -> usize {
    std::fs::read(log)
        .unwrap_or_default()
        .iter()
        .filter(|b| **b == 0x07)
        .count()
}

/// Waits until `n` BEL bytes have reached the pane.
fn wait_bells(log: &std::path::Path, n: usize) {
    let deadline = Instant::now() + WAIT;
    while bells(log) < n {
        assert!(
            Instant::now() < deadline,
            "expected {n} bells, saw {}",
            bells(log)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A registry, and bob (`--json`) logged in and in #lab he created.
fn bob_in_lab() -> (Registry, Peer) {
    let reg = Registry::start(&[]);
    let mut bob = Peer::spawn_named("bob", reg.addr(), &[]);
    bob.login_new("bob");
    bob.command_ok("/create lab", "room_joined", ANY, WAIT);
    (reg, bob)
}

#[test]
fn a_mention_is_highlighted_and_rings_the_bell_once() {
    if !tmux_available() {
        return;
    }
    let (reg, mut bob) = bob_in_lab();
    let t = Tmux::start(&peer_command(&reg), 160, 40);
    let log = std::env::temp_dir().join(format!("lanchat-bells-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    t.pipe_to(&log);
    login(&t, "alice");
    t.type_command("/join lab");
    t.wait_screen("joined", WAIT, |s| s.contains("joined #lab"));
    bob.expect("member_joined", &[("user", "alice")], WAIT);

    // A line that does not name alice: shown, no bell.
    bob.send("hello room");
    t.wait_screen("the plain line", WAIT, |s| s.contains("<bob> hello room"));
    assert!(!t.bell_flag(), "a plain line rang the bell");

    // One that does: highlighted (the name in reverse video), one bell.
    bob.send("look at this, Alice!");
    t.wait_screen("the mention", WAIT, |s| s.contains("look at this, Alice!"));
    wait_bells(&log, 1);
    assert!(t.bell_flag(), "tmux saw no bell");
    let line = t
        .screen_ansi()
        .lines()
        .find(|l| l.contains("look at this"))
        .map(str::to_string)
        .unwrap_or_default();
    // SGR 7 (reverse video), alone or with others (`ESC[1;7m`).
    let reverse = line.contains("\x1b[7m") || line.contains(";7m");
    assert!(reverse, "no reverse video: {line:?}");

    // An action line.
    bob.send("/me waves at everyone");
    t.wait_screen("the action", WAIT, |s| {
        s.contains("#lab * bob waves at everyone")
    });
    t.type_command("/me waves back");
    t.wait_screen("our action", WAIT, |s| {
        s.contains("#lab * alice waves back")
    });
    let seen = bob.expect("message", &[("from", "alice")], WAIT);
    assert_eq!(seen["text"], "waves back", "{seen}");
    assert_eq!(seen["action"], true, "{seen}");

    // With /dnd on, a mention is still highlighted but does not ring.
    t.type_command("/dnd on");
    t.wait_screen("dnd on", WAIT, |s| s.contains("do not disturb: on"));
    bob.send("alice: quiet now?");
    t.wait_screen("the muted mention", WAIT, |s| {
        s.contains("alice: quiet now?")
    });
    // The line after it shows that nothing more is coming for it.
    bob.send("end");
    t.wait_screen("the last line", WAIT, |s| s.contains("<bob> end"));
    assert_eq!(bells(&log), 1, "a muted mention rang the bell");
    t.type_command("/dnd off");
    t.wait_screen("dnd off", WAIT, |s| s.contains("do not disturb: off"));

    // A private message in a chat that is not current rings too.
    bob.send("/msg alice psst");
    t.wait_screen("the chat request", WAIT, |s| s.contains("wants to chat"));
    t.type_command("/accept bob");
    t.wait_screen("the private line", WAIT, |s| s.contains("psst"));
    // Accepting made the chat current: its message is no mention.
    t.type_command("/switch #lab");
    t.wait_screen("back in the room", WAIT, |s| {
        s.contains("now talking in #lab")
    });
    bob.send("/msg alice over here");
    t.wait_screen("the private line", WAIT, |s| s.contains("over here"));
    wait_bells(&log, 2);
    let _ = std::fs::remove_file(&log);
}

#[test]
fn a_topic_shows_on_join_and_when_it_changes_and_away_shows_in_who() {
    if !tmux_available() {
        return;
    }
    let (reg, mut bob) = bob_in_lab();
    let set = bob.command_ok("/topic plans for friday", "topic", ANY, WAIT);
    assert_eq!(
        (&set["text"], &set["by"], &set["changed"]),
        (&"plans for friday".into(), &"bob".into(), &true.into()),
        "{set}"
    );

    let t = Tmux::start(&peer_command(&reg), 160, 40);
    login(&t, "alice");
    t.type_command("/join lab");
    t.wait_screen("the topic under the join line", WAIT, |s| {
        s.contains("topic of #lab: plans for friday (set by bob)")
    });
    t.type_command("/rooms");
    t.wait_screen("the topic in /rooms", WAIT, |s| {
        s.contains("#lab (2 members: plans for friday)")
    });

    // Changed by bob: alice learns it from her next members poll.
    bob.command_ok("/topic exam on monday", "topic", ANY, WAIT);
    t.wait_screen("the change", WAIT, |s| {
        s.contains("bob set the topic of #lab: exam on monday")
    });
    // Only members set it (the peer knows), and not too long (the registry).
    t.type_command("/topic #nowhere x");
    t.wait_screen("not a member", WAIT, |s| {
        s.contains("you are not in #nowhere")
    });
    bob.send(&format!("/topic {}", "x".repeat(301)));
    let e = bob.expect("error", &[("code", "topic_too_long")], WAIT);
    assert_eq!(
        e["message"],
        "a topic is at most 300 bytes (this one is 301)"
    );

    // Away: set, seen by others in /who, /search, and when they message.
    t.type_command("/away lunch, back at 2");
    t.wait_screen("away set", WAIT, |s| {
        s.contains("you are away: lunch, back at 2")
    });
    let who = bob.command_ok("/who", "who", ANY, WAIT);
    assert_eq!(
        who["away"],
        serde_json::json!({"alice": "lunch, back at 2"}),
        "{who}"
    );
    let found = bob.command_ok("/search alice", "search_result", ANY, WAIT);
    assert_eq!(found["away"], "lunch, back at 2", "{found}");
    bob.send("/msg alice are you there?");
    let away = bob.expect("away", &[("user", "alice")], WAIT);
    assert_eq!(away["message"], "lunch, back at 2", "{away}");

    bob.command_ok("/away in a meeting", "away", &[("own", true)], WAIT);
    t.type_command("/who");
    t.wait_screen("bob away in /who", WAIT, |s| {
        s.lines()
            .any(|l| l.contains("online") && l.contains("bob (away: in a meeting)"))
    });
    t.type_command("/away");
    t.wait_screen("back", WAIT, |s| s.contains("you are back"));
    let who = bob.command_ok("/who", "who", ANY, WAIT);
    assert!(
        who.get("away").is_some_and(|a| a.get("alice").is_none()),
        "{who}"
    );
}

/// With `--json`, a mention is `"mention":true` on the message (and no BEL
/// is printed); an action is `"action":true` with the text after `/me `.
#[test]
fn json_marks_mentions_and_actions() {
    let reg = Registry::start(&[]);
    let mut alice = Peer::spawn_named("alice", reg.addr(), &[]);
    let mut bob = Peer::spawn_named("bob", reg.addr(), &[]);
    alice.login_new("alice");
    bob.login_new("bob");
    alice.command_ok("/create lab", "room_joined", ANY, WAIT);
    bob.command_ok("/join lab", "room_joined", ANY, WAIT);
    alice.expect("member_joined", &[("user", "bob")], WAIT);

    bob.send("hi ALICE.");
    let m = alice.expect("message", &[("from", "bob")], WAIT);
    assert_eq!(
        (&m["mention"], m.get("action")),
        (&true.into(), None),
        "{m}"
    );
    bob.send("/me waves");
    let m = alice.expect("message", &[("from", "bob")], WAIT);
    assert_eq!(
        (&m["text"], &m["action"]),
        (&"waves".into(), &true.into()),
        "{m}"
    );
    assert!(m.get("mention").is_none(), "{m}");
    // Our own line naming ourselves is no mention; nor is "malice".
    let own = bob.command_ok("bob here, no malice", "message", &[("own", true)], WAIT);
    assert!(own.get("mention").is_none(), "{own}");
    let m = alice.expect("message", &[("from", "bob")], WAIT);
    assert!(m.get("mention").is_none(), "{m}");
    let text = alice.recent(100);
    assert!(!text.contains('\u{7}'), "a BEL in --json output");
}
