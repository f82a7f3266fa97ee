//! The peer in a real terminal (tmux), for what issue 15 asks of its words
//! and colours: every usage error states the rule, an unknown command
//! suggests the nearest one, errors name the next step; your own text is
//! never bright white (unreadable on a light background), and a nick keeps
//! its colour from line to line.
//!
//! Needs `tmux`. Without it the test is skipped with a message, unless the
//! `CI` environment variable is set: then it fails.

mod kit;

use kit::tmux::{last_line, tmux_available, Tmux};
use kit::*;

/// The screen line (with its colour escapes) that contains `text`.
fn ansi_line(t: &Tmux, text: &str) -> String {
    t.screen_ansi()
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?}: {}", t.screen()))
        .to_string()
}

/// The escape sequences right before the first `name` in `line`.
fn colour_before(line: &str, name: &str) -> String {
    let at = line.find(name).expect("the name");
    let before = &line[..at];
    let start = before.rfind('m').map_or(0, |i| i + 1);
    let esc = before[..start].rfind("\x1b[").unwrap_or(start);
    before[esc..start].to_string()
}

#[test]
fn words_state_the_rule_and_the_next_step_and_colours_suit_any_background() {
    if !tmux_available() {
        return;
    }
    let reg = Registry::start(&[]);
    let mut bob = Peer::spawn_named("bob", reg.addr(), &[]);
    bob.login_new("bob");
    bob.command_ok("/create lab", "room_joined", ANY, WAIT);
    let cmd = format!(
        "exec env -u NO_COLOR LANCHAT_NO_LOG=1 RUST_LOG=error LANCHAT_REGISTRY_FINGERPRINT={} '{}' --registry {} --bind 127.0.0.1",
        reg.fingerprint(),
        env!("CARGO_BIN_EXE_peer"),
        reg.addr()
    );
    let t = Tmux::start(&cmd, 200, 40);
    t.wait_screen("the prompt", WAIT, |s| last_line(s).trim_end() == ">");
    t.type_command(&format!("/register alice {PASSWORD}"));
    t.wait_screen("registered", WAIT, |s| s.contains("registered alice"));
    t.type_command(&format!("/login alice {PASSWORD}"));
    t.wait_screen("logged in", WAIT, |s| s.contains("logged in as alice"));

    // An unknown command: the nearest one.
    t.type_command("/serch bob");
    t.wait_screen("the suggestion", WAIT, |s| {
        s.contains("unknown command /serch; did you mean /search?")
    });
    // A usage error: the rule that was broken.
    t.type_command("/create bad name!");
    t.wait_screen("the room-name rule", WAIT, |s| {
        s.contains("a room name is 1-32 characters of a-z, 0-9, '_', '-' (not \"bad name!\")")
    });
    // Errors name the next step.
    t.type_command("/join nosuch");
    t.wait_screen("the next step after no such room", WAIT, |s| {
        s.contains("/create nosuch makes it")
    });
    t.type_command("/create lab");
    t.wait_screen("the next step after room exists", WAIT, |s| {
        s.contains("/join lab to go in")
    });

    // Own text: in the default colour or bold, never (bright) white.
    t.type_command("/join lab");
    t.wait_screen("joined", WAIT, |s| s.contains("joined #lab"));
    bob.expect("member_joined", &[("user", "alice")], WAIT);
    t.type_command("my own words");
    t.wait_screen("the own line", WAIT, |s| {
        s.lines().any(|l| l.contains("<you> my own words"))
    });
    let own = ansi_line(&t, "my own words");
    for white in ["\x1b[97m", "\x1b[37m", ";97m", ";37m", "[1;37m", "[1;97m"] {
        assert!(
            !own.contains(white),
            "own text in white ({white:?}): {own:?}"
        );
    }
    // A nick keeps its colour from one line to the next.
    bob.send("/msg #lab first from bob");
    bob.send("/msg #lab second from bob");
    t.wait_screen("bob's lines", WAIT, |s| s.contains("second from bob"));
    let a = colour_before(&ansi_line(&t, "first from bob"), "bob");
    let b = colour_before(&ansi_line(&t, "second from bob"), "bob");
    assert!(a.starts_with("\x1b["), "bob's name is coloured: {a:?}");
    assert_eq!(a, b, "bob's colour changed between lines");
}
