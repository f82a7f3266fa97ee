//! In a real terminal (tmux): mistakes are told before any password is
//! typed (a username that breaks the rule, `/login` while logged in, a
//! password shorter than the rule the prompt states), and Ctrl-C cancels
//! what is being typed or answered, quitting only when pressed twice on an
//! empty line. Tab completes commands, user names and room names.

mod kit;

use kit::tmux::{last_line, tmux_available, zombie_exit_code, Tmux};
use kit::*;

const SECRET: &str = "s3cret-Checks-pw";

fn peer_command(reg: &Registry) -> String {
    format!(
        "exec env NO_COLOR=1 RUST_LOG=error LANCHAT_REGISTRY_FINGERPRINT={} '{}' --registry {} --bind 127.0.0.1",
        reg.fingerprint(),
        env!("CARGO_BIN_EXE_peer"),
        reg.addr()
    )
}

/// Lines of the screen that start a password prompt.
fn prompts(screen: &str) -> usize {
    screen
        .lines()
        .filter(|l| l.starts_with("password for") || l.starts_with("repeat it:"))
        .count()
}

#[test]
fn mistakes_are_told_before_any_password_prompt() {
    if !tmux_available() {
        return;
    }
    let reg = Registry::start(&[]);
    let t = Tmux::start(&peer_command(&reg), 160, 40);
    t.wait_screen("the prompt", WAIT, |s| last_line(s).trim_end() == ">");

    // A name against the rule: the rule, and no prompt.
    t.type_command("/register Bad!");
    let s = t.wait_screen("the username rule", WAIT, |s| {
        s.contains("/register: a username is 3-32 characters")
    });
    assert_eq!(prompts(&s), 0, "{s}");

    // The prompt states the password rule; a short one is refused before
    // it is asked for again.
    t.type_command("/register alice");
    t.wait_screen("the password prompt with its rule", WAIT, |s| {
        last_line(s).starts_with("password for alice (at least 8 characters):")
    });
    t.type_line("short");
    let s = t.wait_screen("the password rule", WAIT, |s| {
        s.contains("a password needs at least 8 characters; nothing registered")
    });
    assert!(!s.contains("repeat it:"), "{s}");

    // Registered and logged in, a second /login asks for nothing.
    t.type_command("/register alice");
    t.wait_screen("the first prompt", WAIT, |s| {
        last_line(s).starts_with("password for alice")
    });
    t.type_line(SECRET);
    t.wait_screen("the second prompt", WAIT, |s| {
        last_line(s).starts_with("repeat it:")
    });
    t.type_line(SECRET);
    t.wait_screen("registered", WAIT, |s| s.contains("registered alice"));
    t.type_command("/login alice");
    t.wait_screen("the login prompt", WAIT, |s| {
        last_line(s).starts_with("password for alice:")
    });
    t.type_line(SECRET);
    let s = t.wait_screen("logged in", WAIT, |s| s.contains("logged in as alice"));
    let before = prompts(&s);
    t.type_command("/login alice");
    let s = t.wait_screen("the refusal", WAIT, |s| {
        s.contains("already logged in; /logout first")
    });
    assert_eq!(prompts(&s), before, "no new password prompt: {s}");
    assert!(!s.contains(SECRET), "the password never shows: {s}");
}

#[test]
fn ctrl_c_cancels_before_it_quits() {
    if !tmux_available() {
        return;
    }
    let reg = Registry::start(&[]);
    let t = Tmux::start(&peer_command(&reg), 160, 40);
    t.wait_screen("the prompt", WAIT, |s| last_line(s).trim_end() == ">");

    // On a half-typed line: the line goes, nothing else happens.
    t.type_keys("half a thought");
    t.key("C-c");
    let s = t.wait_screen("the line cleared", WAIT, |s| last_line(s).trim_end() == ">");
    assert!(!s.contains("Ctrl-C again"), "{s}");

    // At a password prompt: the command is cancelled, the peer goes on.
    t.type_command("/register alice");
    t.wait_screen("the password prompt", WAIT, |s| {
        last_line(s).starts_with("password for alice")
    });
    t.type_text("half");
    t.key("C-c");
    t.wait_screen("the cancel", WAIT, |s| s.contains("/register cancelled"));
    assert_eq!(t.exit_status(), None, "still running");

    // On an empty line: asked once, quits on the second.
    t.wait_screen("a fresh prompt", WAIT, |s| last_line(s).trim_end() == ">");
    t.key("C-c");
    t.wait_screen("the hint", WAIT, |s| {
        s.contains("press Ctrl-C again to quit (or Ctrl-D, or /quit)")
    });
    assert_eq!(t.exit_status(), None, "one Ctrl-C does not quit");
    let pid = t.pane_pid();
    t.key("C-c");
    let end = std::time::Instant::now() + WAIT;
    let status = loop {
        // tmux may not see the exit before the process is reaped.
        if let Some(code) = t.exit_status().or_else(|| zombie_exit_code(pid)) {
            break Some(code);
        }
        if std::time::Instant::now() >= end {
            break None;
        }
        let _ = t.screen();
    };
    assert_eq!(status, Some(0), "{}", t.screen());
}

/// Presses Tab on `typed` and waits for the prompt line to read `want`
/// (with the cursor after it), then clears the line (Ctrl-C).
fn complete(t: &Tmux, typed: &str, want: &str) {
    t.type_keys(typed);
    t.key("Tab");
    let line = format!("> {want}");
    let col = line.chars().count();
    t.wait_screen(&format!("{typed:?} completed to {want:?}"), WAIT, |s| {
        last_line(s).trim_end() == line.trim_end() && t.cursor_x() == col
    });
    t.key("C-c");
    t.wait_screen("the line cleared", WAIT, |s| last_line(s).trim_end() == ">");
}

#[test]
fn tab_completes_commands_users_and_rooms() {
    if !tmux_available() {
        return;
    }
    let reg = Registry::start(&[]);
    let mut bob = Peer::spawn_named("bob", reg.addr(), &[]);
    bob.login_new("bob");
    bob.command_ok("/create lab", "room_joined", ANY, WAIT);

    let t = Tmux::start(&peer_command(&reg), 160, 40);
    t.wait_screen("the prompt", WAIT, |s| last_line(s).trim_end() == ">");
    complete(&t, "/cr", "/create ");

    t.type_command(&format!("/register alice {PASSWORD}"));
    t.wait_screen("registered", WAIT, |s| s.contains("registered alice"));
    t.type_command(&format!("/login alice {PASSWORD}"));
    t.wait_screen("logged in", WAIT, |s| s.contains("logged in as alice"));

    // A user name the peer has seen in /who.
    t.type_command("/who");
    t.wait_screen("the online list", WAIT, |s| {
        s.lines().any(|l| l.contains("online") && l.contains("bob"))
    });
    complete(&t, "/chat b", "/chat bob ");
    complete(&t, "hi @b", "hi @bob ");

    // Several fit: Tab completes what they share, a second Tab lists them.
    t.type_keys("/u");
    t.key("Tab");
    t.wait_screen("the shared part", WAIT, |s| {
        last_line(s).trim_end() == "> /un"
    });
    t.key("Tab");
    t.wait_screen("the candidates listed", WAIT, |s| {
        s.lines()
            .any(|l| l.contains("/unban") && l.contains("/unlock") && !l.starts_with('>'))
    });
    t.key("C-c");
    t.wait_screen("the line cleared", WAIT, |s| last_line(s).trim_end() == ">");

    // A room name the peer has seen in /rooms, with or without `#`.
    t.type_command("/rooms");
    t.wait_screen("the room list", WAIT, |s| s.contains("rooms: #lab"));
    complete(&t, "/join l", "/join lab ");
    complete(&t, "/switch #l", "/switch #lab ");
}
