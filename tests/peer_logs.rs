//! Conversation logs and `/history` (issue 15 item 11), on the real
//! binaries: every room and chat line is appended to
//! `LOGDIR/USER/NAME.log` (0600) with network text sanitised, nothing is
//! written with `--no-log`, and `/history N` prints the last N lines of the
//! current conversation, in `--json` and in a real terminal (tmux).

mod kit;

use kit::tmux::{last_line, tmux_available, Tmux};
use kit::*;
use serde_json::Value;
use std::path::Path;

const HOSTILE: &str = "hi \u{1b}[2J\u{1b}]0;pwned\u{7} there";

fn lines_of(v: &Value) -> Vec<String> {
    v["lines"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

#[test]
fn conversations_are_logged_sanitised_and_not_with_no_log() {
    let reg = Registry::start(&[]);
    let logs = tempfile::tempdir().unwrap();
    let quiet = tempfile::tempdir().unwrap();
    let dir = |d: &tempfile::TempDir| format!("--log-dir={}", d.path().display());
    let mut alice = Peer::spawn_named("alice", reg.addr(), &[&dir(&logs)]);
    let mut bob = Peer::spawn_named("bob", reg.addr(), &[]);
    let mut carol = Peer::spawn_named("carol", reg.addr(), &[&dir(&quiet), "--no-log"]);
    alice.login_new("alice");
    bob.login_new("bob");
    carol.login_new("carol");
    alice.command_ok("/create lab", "room_joined", &[("room", "lab")], WAIT);
    bob.command_ok("/join lab", "room_joined", &[("room", "lab")], WAIT);
    carol.command_ok("/join lab", "room_joined", &[("room", "lab")], WAIT);
    bob.expect("member_joined", &[("user", "carol")], WAIT);
    alice.expect("member_joined", &[("user", "carol")], WAIT);
    bob.send(&format!("/msg #lab {HOSTILE}"));
    alice.expect("message", &[("chat", "#lab"), ("from", "bob")], WAIT);
    carol.expect("message", &[("chat", "#lab"), ("from", "bob")], WAIT);
    open_chat(&mut bob, &mut alice);
    bob.send("/msg alice just us");
    alice.expect("message", &[("chat", "bob"), ("text", "just us")], WAIT);

    // The room's log: sanitised, private to its owner.
    let user_dir = logs.path().join("alice");
    let room_log = user_dir.join("#lab.log");
    let text = std::fs::read_to_string(&room_log).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; files: {:?}",
            room_log.display(),
            files_under(logs.path())
        )
    });
    assert!(text.starts_with("--- log opened "), "{text}");
    assert!(text.contains("<bob> hi "), "{text}");
    assert!(text.contains(" there\n"), "{text}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("--> carol joined"), "{text}");
    let chat_log = std::fs::read_to_string(user_dir.join("bob.log")).unwrap();
    assert!(chat_log.contains("<bob> just us"), "{chat_log}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&room_log), 0o600);
        assert_eq!(mode(&user_dir), 0o700);
    }

    // /history from the log: the current conversation is the chat now.
    let v = alice.command_ok("/history 1", "history", &[("chat", "bob")], WAIT);
    let h = lines_of(&v);
    assert_eq!(h.len(), 1, "{v}");
    assert!(h[0].ends_with("<bob> just us"), "{v}");
    alice.send("/switch #lab");
    let v = alice.command_ok("/history", "history", &[("chat", "#lab")], WAIT);
    assert!(lines_of(&v).iter().any(|l| l.contains("<bob> hi ")), "{v}");
    assert!(!v.to_string().contains("\\u001b"), "{v}");

    // --no-log: no file at all, and /history still answers from memory.
    let v = carol.command_ok("/history 5", "history", &[("chat", "#lab")], WAIT);
    assert!(lines_of(&v).iter().any(|l| l.contains("<bob> hi ")), "{v}");
    assert!(
        files_under(quiet.path()).is_empty(),
        "{:?}",
        files_under(quiet.path())
    );
}

#[test]
fn history_shows_the_last_lines_in_a_terminal() {
    if !tmux_available() {
        return;
    }
    let reg = Registry::start(&[]);
    let logs = tempfile::tempdir().unwrap();
    let mut bob = Peer::spawn_named("bob", reg.addr(), &[]);
    bob.login_new("bob");
    let t = Tmux::start(
        &format!(
            "exec env -u LANCHAT_NO_LOG NO_COLOR=1 RUST_LOG=error LANCHAT_REGISTRY_FINGERPRINT={} '{}' --registry {} --bind 127.0.0.1 --log-dir '{}'",
            reg.fingerprint(),
            env!("CARGO_BIN_EXE_peer"),
            reg.addr(),
            logs.path().display()
        ),
        160,
        40,
    );
    t.wait_screen("the prompt", WAIT, |s| last_line(s).trim_end() == ">");
    t.type_command(&format!("/register alice {PASSWORD}"));
    t.wait_screen("registered", WAIT, |s| s.contains("registered alice"));
    t.type_command(&format!("/login alice {PASSWORD}"));
    t.wait_screen("logged in", WAIT, |s| s.contains("logged in as alice"));
    t.type_command("/create lab");
    t.wait_screen("in the room", WAIT, |s| s.contains("now talking in #lab"));
    bob.command_ok("/join lab", "room_joined", &[("room", "lab")], WAIT);
    for text in ["one", "two", "three"] {
        bob.send(&format!("/msg #lab {text}"));
    }
    t.wait_screen("bob's lines", WAIT, |s| s.contains("<bob> three"));
    t.type_command("/history 2");
    let screen = t.wait_screen("the history", WAIT, |s| {
        s.contains("last 2 line(s) of #lab:")
    });
    let after: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.contains("last 2 line(s) of #lab:"))
        .skip(1)
        .take(2)
        .collect();
    assert_eq!(after.len(), 2, "{screen}");
    assert!(after[0].trim_end().ends_with("<bob> two"), "{screen}");
    assert!(after[1].trim_end().ends_with("<bob> three"), "{screen}");
    assert!(logs.path().join("alice").join("#lab.log").exists());
}
