//! Room history for latecomers (issue 16, item 7), on the real binaries:
//! a member that joins a room fetches the texts shown there before, over
//! the peers' Noise channel (`protocol.md` section 3, "Room history"), from
//! a member present; bounded by `--room-history`; refused to non-members.
//! Every wait is on an event.

mod kit;

use kit::rooms::form_room;
use kit::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

/// Alice, bob and carol logged in; alice and bob in `#lab` (carol not).
fn lab(reg: &Registry, member_args: &[&str]) -> Vec<Peer> {
    lab_with(reg, member_args, member_args)
}

/// [`lab`] with alice's and bob's own arguments.
fn lab_with(reg: &Registry, alice: &[&str], bob: &[&str]) -> Vec<Peer> {
    let opts = |args: &[&str]| PeerOpts {
        args: args.iter().map(|a| a.to_string()).collect(),
        ..PeerOpts::default()
    };
    let specs = [
        ("alice", opts(alice)),
        ("bob", opts(bob)),
        ("carol", PeerOpts::default()),
    ];
    let mut p = login_peers(reg.addr(), &specs);
    form_room(&mut p[..2], "lab", T);
    p
}

/// `p[i]` says `text` in #lab; waits until both members have shown it.
fn say(p: &mut [Peer], i: usize, text: &str) {
    p[i].send(text);
    let from = p[i].name.clone();
    p[i].expect(
        "message",
        &[("chat", json!("#lab")), ("text", json!(text))],
        T,
    );
    let o = 1 - i;
    p[o].expect(
        "message",
        &[
            ("chat", json!("#lab")),
            ("from", json!(from)),
            ("text", json!(text)),
        ],
        T,
    );
}

/// Carol joins #lab and waits for the end of her history fetch; gives her
/// `room_history` events and the `room_history_end`.
fn carol_joins(carol: &mut Peer) -> (Vec<Value>, Value) {
    carol.send("/join lab");
    carol.expect("room_joined", &[("room", "lab")], T);
    let end = carol.expect("room_history_end", &[("room", "lab")], T);
    let got = carol
        .history
        .iter()
        .filter(|v| v["event"] == "room_history")
        .cloned()
        .collect();
    (got, end)
}

fn texts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|v| v["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_joiner_gets_the_texts_said_before_it_came_once_each() {
    let reg = Registry::start(&[]);
    let mut p = lab(&reg, &[]);
    let said = ["one", "two", "three", "four", "five"];
    for (k, text) in said.iter().enumerate() {
        say(&mut p, k % 2, text);
    }
    // A live text on its way while carol joins: shown once, live or as
    // history, never both.
    p[0].send("crossing");
    let (got, end) = carol_joins(&mut p[2]);
    eprintln!("carol: {}", serde_json::to_string(&got).unwrap_or_default());
    eprintln!("carol: {end}");
    let via = end["via"].as_str().unwrap_or_default().to_string();
    assert!(via == "alice" || via == "bob", "{end}");
    let mut want: Vec<String> = said.iter().map(|s| s.to_string()).collect();
    let shown = texts(&got);
    if shown.len() == 6 {
        want.push("crossing".into());
    }
    assert_eq!(shown, want, "carol's history: {got:?}");
    assert_eq!(end["count"], json!(shown.len()), "{end}");
    for (v, text) in got.iter().zip(said) {
        assert_eq!(v["room"], "lab");
        assert_eq!(v["via"], json!(via));
        let from = if ["one", "three", "five"].contains(&text) {
            "alice"
        } else {
            "bob"
        };
        assert_eq!(v["from"], from, "{v}");
        assert!(v["id"].as_u64().is_some_and(|id| id > 0), "{v}");
        assert!(v["age_ms"].as_u64().is_some(), "{v}");
    }
    let keys: BTreeSet<(String, u64)> = got
        .iter()
        .map(|v| (v["from"].to_string(), v["id"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(keys.len(), got.len(), "an entry twice: {got:?}");
    // Once the members know carol and she holds the key, texts reach her
    // live; "crossing" was shown exactly once in all.
    for x in &mut p[..2] {
        x.expect("member_joined", &[("room", "lab"), ("user", "carol")], T);
    }
    p[2].expect("room_key", &[("room", "lab")], T);
    say_to_all(&mut p, "after");
    assert!(
        !p[2]
            .history
            .iter()
            .any(|v| v["event"] == "room_history" && v["text"] == "after"),
        "{}",
        p[2].recent(20)
    );
    let crossing = p[2]
        .history
        .iter()
        .filter(|v| {
            v["text"] == "crossing" && (v["event"] == "message" || v["event"] == "room_history")
        })
        .count();
    assert_eq!(crossing, 1, "carol: {}", p[2].recent(20));
    for x in &mut p {
        x.quit();
    }
}

/// Alice says `text`; bob and carol show it.
fn say_to_all(p: &mut [Peer], text: &str) {
    p[0].send(text);
    for x in &mut p[1..] {
        x.expect(
            "message",
            &[("from", json!("alice")), ("text", json!(text))],
            T,
        );
    }
}

/// 120 texts from alice, then carol joins.
fn hundred_and_twenty(member_args: &[&str]) -> (Vec<Peer>, Vec<String>, Value) {
    let reg = Registry::start(&[]);
    let mut p = lab(&reg, member_args);
    let lines: Vec<String> = (1..=120).map(|i| format!("text {i}")).collect();
    p[0].send_lines(lines.clone());
    p[1].wait_messages("#lab", "alice", 120, T);
    p[0].wait_history("alice's 120 texts", T, |h| {
        h.iter().filter(|v| v["event"] == "message").count() >= 120
    });
    let (got, end) = carol_joins(&mut p[2]);
    (p, texts(&got), end)
}

#[test]
fn a_joiner_gets_the_last_hundred_by_default() {
    let (mut p, got, end) = hundred_and_twenty(&[]);
    let want: Vec<String> = (21..=120).map(|i| format!("text {i}")).collect();
    assert_eq!(got, want);
    assert_eq!(end["count"], 100, "{end}");
    for x in &mut p {
        x.quit();
    }
}

#[test]
fn members_keeping_ten_give_ten() {
    let (mut p, got, end) = hundred_and_twenty(&["--room-history", "10"]);
    let want: Vec<String> = (111..=120).map(|i| format!("text {i}")).collect();
    assert_eq!(got, want);
    assert_eq!(end["count"], 10, "{end}");
    for x in &mut p {
        x.quit();
    }
}

#[test]
fn a_user_outside_the_room_is_refused() {
    let reg = Registry::start(&[]);
    let mut p = lab(&reg, &[]);
    say(&mut p, 0, "members only");
    p[2].send("/history #lab");
    let no = p[2].expect("room_history_unavailable", &[("room", "lab")], T);
    eprintln!("carol: {no}");
    let reason = no["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not a member"), "{no}");
    assert!(
        !p[2].history.iter().any(|v| v["event"] == "room_history"),
        "carol got history: {}",
        p[2].recent(20)
    );
    for x in &mut p {
        x.quit();
    }
}

#[test]
fn a_fifth_ask_in_a_minute_goes_to_the_next_member() {
    let reg = Registry::start(&[]);
    let mut p = lab(&reg, &[]);
    say(&mut p, 0, "hello lab");
    let (got, end) = carol_joins(&mut p[2]);
    assert_eq!(texts(&got), vec!["hello lab"]);
    assert_eq!(end["via"], "alice", "{end}");
    // Three more asks of alice in the minute: answered, with nothing new
    // (carol has shown "hello lab" already).
    for _ in 0..3 {
        p[2].clear_backlog();
        p[2].send("/history #lab");
        let end = p[2].expect("room_history_end", &[("room", "lab")], T);
        assert_eq!(
            (&end["via"], &end["count"]),
            (&json!("alice"), &json!(0)),
            "{end}"
        );
    }
    // The fifth: alice answers busy, bob answers.
    p[2].clear_backlog();
    p[2].send("/history #lab");
    let end = p[2].expect("room_history_end", &[("room", "lab")], T);
    assert_eq!(end["via"], "bob", "{end}");
    for x in &mut p {
        x.quit();
    }
}

#[test]
fn a_creator_alone_asks_nobody_and_a_lone_member_says_so_once() {
    let reg = Registry::start(&[]);
    let mut p = login_all(reg.addr(), &["alice"], &PeerOpts::default());
    p[0].send("/create lab");
    p[0].expect("room_joined", &[("room", "lab")], T);
    p[0].send("/history #lab");
    let no = p[0].expect("room_history_unavailable", &[("room", "lab")], T);
    assert_eq!(no["reason"], "no other member is online to ask", "{no}");
    p[0].quit();
    let n = p[0]
        .history
        .iter()
        .filter(|v| {
            v["event"]
                .as_str()
                .is_some_and(|e| e.starts_with("room_history"))
        })
        .count();
    assert_eq!(n, 1, "{}", p[0].recent(20));
}

#[test]
fn a_member_keeping_nothing_sends_the_joiner_to_the_next() {
    let reg = Registry::start(&[]);
    let mut p = lab_with(&reg, &["--room-history", "0"], &[]);
    say(&mut p, 0, "kept by bob only");
    let (got, end) = carol_joins(&mut p[2]);
    assert_eq!(texts(&got), vec!["kept by bob only"]);
    assert_eq!(end["via"], "bob", "{end}");
    for x in &mut p {
        x.quit();
    }
}

#[test]
fn a_stopped_member_is_given_up_for_the_next() {
    let reg = Registry::start(&[]);
    let mut p = lab(&reg, &[]);
    say(&mut p, 1, "while alice sleeps");
    p[0].signal(libc::SIGSTOP);
    let asked = std::time::Instant::now();
    let (got, end) = carol_joins(&mut p[2]);
    eprintln!("carol had her history {:?} after joining", asked.elapsed());
    p[0].signal(libc::SIGCONT);
    assert_eq!(texts(&got), vec!["while alice sleeps"]);
    assert_eq!(end["via"], "bob", "{end}");
    for x in &mut p {
        x.quit();
    }
}

#[test]
fn a_member_forgets_the_texts_of_a_room_it_left() {
    let reg = Registry::start(&[]);
    let mut p = lab_with(&reg, &["--room-history", "0"], &[]);
    say(&mut p, 0, "before bob left");
    p[1].send("/leave lab");
    p[1].expect("room_left", &[("room", "lab")], T);
    p[1].send("/join lab");
    p[1].expect("room_joined", &[("room", "lab")], T);
    // Alice keeps nothing: bob has nobody to ask.
    let no = p[1].expect("room_history_unavailable", &[("room", "lab")], T);
    assert_eq!(no["reason"], "alice: no history kept", "{no}");
    // And bob kept nothing of his first stay for carol.
    let (got, end) = carol_joins(&mut p[2]);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(
        (&end["via"], &end["count"]),
        (&json!("bob"), &json!(0)),
        "{end}"
    );
    for x in &mut p {
        x.quit();
    }
}

/// A member that restarts counts its message ids in the room from 1
/// again: its new texts reuse ids a joiner was shown as history, and are
/// shown all the same (a live text is taken for a history copy only with
/// the same text, soon after).
#[test]
fn a_restarted_members_new_texts_are_shown_though_their_ids_came_as_history() {
    let reg = Registry::start(&[]);
    let mut p = lab(&reg, &[]);
    say(&mut p, 0, "before the restart");
    let (got, _) = carol_joins(&mut p[2]);
    assert_eq!(texts(&got), ["before the restart"]);
    assert_eq!(got[0]["id"], json!(1), "{got:?}");
    // Alice restarts on the same device (her identity file copied over).
    let old_config = p[0].config_dir().to_path_buf();
    p[0].quit();
    let mut alice = Peer::start(reg.addr(), "alice", &PeerOpts::default());
    let from = old_config.join("lanchat");
    let to = alice.config_dir().join("lanchat");
    copy_dir(&from, &to);
    alice.login("alice");
    alice.send("/join lab");
    alice.expect("room_joined", &[("room", "lab")], T);
    alice.expect("room_key", &[("room", "lab")], T);
    alice.send("after the restart");
    let own = alice.expect(
        "message",
        &[
            ("chat", json!("#lab")),
            ("text", json!("after the restart")),
        ],
        T,
    );
    assert_eq!(own["id"], json!(1), "ids count from 1 again: {own}");
    p[2].expect(
        "message",
        &[
            ("chat", json!("#lab")),
            ("from", json!("alice")),
            ("text", json!("after the restart")),
        ],
        T,
    );
    alice.quit();
    for x in &mut p[1..] {
        x.quit();
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
