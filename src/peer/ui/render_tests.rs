//! Unit tests of the terminal lines.

use super::*;
use crate::peer::ui::Sink;

#[test]
fn stable_colors() {
    assert_eq!(user_color("alice"), user_color("alice"));
    let distinct: std::collections::HashSet<_> = ["alice", "bob", "carol", "dave", "erin"]
        .iter()
        .map(|n| format!("{:?}", user_color(n)))
        .collect();
    assert!(distinct.len() >= 3);
}

#[test]
fn formatting() {
    assert_eq!(
        format_text("a *b* _c_ \x1b[2J", false),
        "a *b* _c_ \u{FFFD}[2J"
    );
    colored::control::set_override(true);
    let s = format_text("see https://example.org/x. *now*!", true);
    assert!(s.contains("\x1b]8;;https://example.org/x\x1b\\"), "{s:?}");
    assert!(s.contains("\x1b[1mnow\x1b[0m!"), "{s:?}");
    let s = format_text("see you _right after_ class, snake_case stays", true);
    assert!(s.contains("\x1b[3mright after\x1b[0m class"), "{s:?}");
    assert!(s.contains("snake_case stays"), "{s:?}");
    assert_eq!(format_text("2 * 3 * 4", true), "2 * 3 * 4");
}

/// The text of a line without its colours (SGR sequences).
fn plain(line: String) -> String {
    let mut out = String::new();
    let mut it = line.chars();
    while let Some(c) = it.next() {
        if c == '\x1b' {
            it.by_ref().find(|c| *c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn interrupted_and_undelivered_lines() {
    // Colour on, as the other tests here set it (the switch is global).
    let ui = Ui::new(false, true, super::super::Sink::Stdout);
    let line = |ev| plain(ui.line(ev));
    let line1 = line(UiEvent::ChatInterrupted {
        with: "bob".into(),
        reason: "not responding".into(),
    });
    assert_eq!(
        line1,
        "-- chat with bob interrupted (not responding); will resume when bob is back"
    );
    let long = "x".repeat(70);
    let line2 = line(UiEvent::Undelivered {
        with: "bob".into(),
        messages: vec![
            super::super::UndeliveredMsg::new(3, "see you at 5"),
            super::super::UndeliveredMsg::new(4, &long),
        ],
    });
    let cut = format!("{}…", "x".repeat(60));
    assert_eq!(
        line2,
        format!("!! 2 message(s) to bob not delivered: #3 \"see you at 5\", #4 \"{cut}\"")
    );
    let line3 = line(UiEvent::Message {
        from: "alice".into(),
        chat: "bob".into(),
        text: "later".into(),
        id: 5,
        own: true,
        queued: true,
        action: false,
        mention: false,
        late: false,
    });
    assert_eq!(line3, "you → bob later (queued)");
}

/// Issue 15's wording: each notice names who did what, once.
#[test]
fn notices_name_who_did_what() {
    let ui = Ui::new(false, true, super::super::Sink::Stdout);
    let line = |ev| plain(ui.line(ev));
    let cases = [
        (
            UiEvent::ChatRejected {
                by: "bob".into(),
                reason: "declined".into(),
            },
            "-- bob declined your chat request",
        ),
        (
            UiEvent::ChatRejected {
                by: "bob".into(),
                reason: "identity check failed".into(),
            },
            "-- bob refused the chat: identity check failed",
        ),
        (
            UiEvent::ChatClosed {
                with: "alice".into(),
                reason: "left the chat".into(),
            },
            "-- chat with alice ended: alice left the chat",
        ),
        (
            UiEvent::MemberLeft {
                room: "lab".into(),
                user: "carol".into(),
                reason: "left".into(),
            },
            "<-- carol left #lab",
        ),
        (
            UiEvent::MemberLeft {
                room: "lab".into(),
                user: "carol".into(),
                reason: "not responding".into(),
            },
            "<-- carol left #lab (not responding)",
        ),
        (
            UiEvent::Current {
                target: "alice".into(),
            },
            "-- now talking to alice",
        ),
        (
            UiEvent::Current {
                target: "#lab".into(),
            },
            "-- now talking in #lab",
        ),
        (
            UiEvent::Rooms {
                rooms: vec![
                    crate::protocol::RoomSummary {
                        name: "lab".into(),
                        members: 1,
                    },
                    crate::protocol::RoomSummary {
                        name: "physics".into(),
                        members: 5,
                    },
                ],
                topics: Default::default(),
            },
            "-- rooms: #lab (1 member), #physics (5 members)",
        ),
    ];
    for (ev, want) in cases {
        assert_eq!(line(ev), want);
    }
}

/// Own text keeps the terminal's colour (bright white was unreadable on
/// a light background); only "you" is bold.
#[test]
fn own_text_is_never_bright_white() {
    let ui = Ui::new(false, true, super::super::Sink::Stdout);
    for chat in ["#lab", "bob"] {
        let line = ui.line(UiEvent::Message {
            from: "alice".into(),
            chat: chat.into(),
            text: "hello".into(),
            id: 1,
            own: true,
            queued: false,
            action: false,
            mention: false,
            late: false,
        });
        assert!(!line.contains("\x1b[97m"), "{line:?}");
        assert!(line.ends_with(" hello"), "{line:?}");
    }
}

#[test]
fn who_lines_say_the_count_and_how_to_see_more() {
    // Colour on, as other tests here set it (the switch is global);
    // the escapes are taken out before comparing.
    let ui = Ui::new(false, true, Sink::Stdout);
    let plain = |s: String| {
        let mut out = String::new();
        let mut rest = s.as_str();
        while let Some(i) = rest.find('\x1b') {
            out.push_str(&rest[..i]);
            rest = rest[i..].split_once('m').map_or("", |(_, r)| r);
        }
        out + rest
    };
    let user = |n: &str| UserInfo {
        keys: None,
        username: n.into(),
        online: true,
        address: None,
    };
    let who = |users: Vec<UserInfo>, total, next: Option<&str>| UiEvent::Who {
        users,
        total,
        next: next.map(Into::into),
        away: Default::default(),
    };
    let line = |ev| plain(ui.line(ev));
    assert_eq!(
        line(who(vec![user("amy"), user("bob")], Some(120), Some("bob"))),
        "-- online (120, 2 here): amy, bob (more: /who +)"
    );
    assert_eq!(
        line(who(vec![user("amy")], Some(1), None)),
        "-- online (1): amy"
    );
    // From a registry without paging: no total.
    assert_eq!(
        line(who(vec![user("amy")], None, None)),
        "-- online (1): amy"
    );
    assert_eq!(line(who(vec![], Some(0), None)), "-- nobody is online");
    assert_eq!(
        line(who(vec![], Some(3), None)),
        "-- 3 online; no more to show"
    );
}

/// A registry from before paging sends only `users`: the `who` event
/// then has `total` and `next` null.
#[test]
fn who_from_a_registry_without_paging() {
    let old =
        serde_json::json!({"id": 1, "ok": true, "users": [{"username": "amy", "online": false}]});
    let reply = crate::protocol::Reply::from_value(old).unwrap();
    let Ok(crate::protocol::ReplyBody::Users {
        users,
        total,
        next,
        away,
    }) = reply.result
    else {
        panic!("{reply:?}")
    };
    let ev = serde_json::to_value(UiEvent::Who {
        users,
        total,
        next,
        away,
    })
    .unwrap();
    assert_eq!(
        ev,
        serde_json::json!({"event": "who", "users": [{"username": "amy", "online": false}],
                           "total": null, "next": null})
    );
}

#[test]
fn the_move_to_another_registry_is_one_line() {
    let ui = Ui::new(false, true, super::super::Sink::Stdout);
    let moved = |username: Option<&str>| {
        plain(ui.line(UiEvent::RegistryMoved {
            from: "127.0.0.1:15600".into(),
            to: "127.0.0.1:15601".into(),
            username: username.map(String::from),
        }))
    };
    assert_eq!(
        moved(Some("alice")),
        "-- registry 127.0.0.1:15600 is gone; now on 127.0.0.1:15601 (session of alice restored)"
    );
    assert_eq!(
        moved(None),
        "-- registry 127.0.0.1:15600 is gone; now on 127.0.0.1:15601"
    );
}

#[test]
fn discovery_lines_name_what_was_found_or_the_hint() {
    let ui = Ui::new(false, false, Sink::Stdout);
    let reg = |name: &str, addr: &str| crate::discovery::Found {
        name: name.into(),
        addr: addr.parse().expect("address"),
        proto: Some("1".into()),
    };
    let line = |found: Vec<crate::discovery::Found>, using: &str| {
        plain(ui.line(UiEvent::Discovery {
            found,
            using: using.into(),
        }))
    };
    let one = line(
        vec![reg("lanchat registry on t:15600", "10.0.0.1:15600")],
        "10.0.0.1:15600",
    );
    assert!(
        one.contains("found registry lanchat registry on t:15600 at 10.0.0.1:15600 on the LAN"),
        "{one}"
    );
    let two = line(
        vec![reg("a", "10.0.0.1:1"), reg("b", "10.0.0.2:2")],
        "10.0.0.1:1",
    );
    assert!(
        two.contains("found 2 registries on the LAN: a at 10.0.0.1:1, b at 10.0.0.2:2; using a"),
        "{two}"
    );
    // The one picked at the prompt is the one named.
    let picked = line(
        vec![reg("a", "10.0.0.1:1"), reg("b", "10.0.0.2:2")],
        "10.0.0.2:2",
    );
    assert!(picked.contains("; using b ("), "{picked}");
    let none = line(Vec::new(), "127.0.0.1:15600");
    assert!(
        none.contains("no registry found on the LAN; trying 127.0.0.1:15600"),
        "{none}"
    );
    assert!(
        none.contains("--registry") && none.contains("REGISTRY_ADDR"),
        "{none}"
    );
}

/// Actions, mentions, topics and away messages.
#[test]
fn social_lines() {
    let ui = Ui::new(false, true, Sink::Stdout);
    let msg = |chat: &str, own, action, mention| UiEvent::Message {
        from: if own { "alice" } else { "bob" }.into(),
        chat: chat.into(),
        text: "waves".into(),
        id: 1,
        own,
        queued: false,
        action,
        mention,
        late: false,
    };
    let line = |ev| plain(ui.line(ev));
    assert_eq!(line(msg("#lab", false, true, false)), "#lab * bob waves");
    assert_eq!(line(msg("#lab", true, true, false)), "#lab * alice waves");
    assert_eq!(
        line(msg("bob", false, true, false)),
        "* bob waves (private)"
    );
    assert_eq!(
        line(msg("bob", true, true, false)),
        "you → bob * alice waves"
    );
    // A mention: the sender's name in reverse video (SGR 7).
    let raw = ui.line(msg("#lab", false, false, true));
    assert!(raw.contains(";7m") || raw.contains("[7m"), "{raw:?}");
    assert_eq!(plain(raw), "#lab <bob> waves");
    let topic = |text: Option<&str>, by: Option<&str>, changed| UiEvent::Topic {
        room: "lab".into(),
        text: text.map(Into::into),
        by: by.map(Into::into),
        changed,
    };
    assert_eq!(
        line(topic(Some("plans"), Some("bob"), false)),
        "-- topic of #lab: plans (set by bob)"
    );
    assert_eq!(
        line(topic(Some("plans"), Some("bob"), true)),
        "-- bob set the topic of #lab: plans"
    );
    assert_eq!(line(topic(None, None, false)), "-- #lab has no topic");
    assert_eq!(
        line(topic(None, None, true)),
        "-- the topic of #lab was cleared"
    );
    let away = |own, message: Option<&str>| UiEvent::Away {
        user: "bob".into(),
        message: message.map(Into::into),
        own,
    };
    assert_eq!(line(away(false, Some("lunch"))), "-- bob is away: lunch");
    assert_eq!(
        line(away(true, Some("lunch"))),
        "-- you are away: lunch (/away again when you are back)"
    );
    assert_eq!(line(away(true, None)), "-- you are back (no away message)");
    // A topic is sanitised like any other text from the network.
    assert_eq!(
        line(topic(Some("\x1b[2Jx\x07"), Some("bob"), true)),
        "-- bob set the topic of #lab: \u{FFFD}[2Jx\u{FFFD}"
    );
}

#[test]
fn room_role_and_announcement_lines() {
    let ui = Ui::new(false, true, super::super::Sink::Stdout);
    let line = |ev| plain(ui.line(ev));
    let user = |n: &str| crate::protocol::UserInfo {
        keys: None,
        username: n.into(),
        online: false,
        address: None,
    };
    let members = line(UiEvent::Members {
        room: "lab".into(),
        members: vec![user("alice"), user("bob"), user("carol")],
        roles: [
            ("alice".to_string(), crate::protocol::Role::Owner),
            ("bob".to_string(), crate::protocol::Role::Operator),
        ]
        .into(),
    });
    assert_eq!(members, "-- #lab: @alice, @bob, carol");
    let kicked = line(UiEvent::Kicked {
        room: "lab".into(),
        by: "alice".into(),
        reason: "spamming".into(),
        banned: false,
    });
    assert_eq!(kicked, "!! you were kicked from #lab by alice: spamming");
    let banned = line(UiEvent::Kicked {
        room: "lab".into(),
        by: "alice".into(),
        reason: String::new(),
        banned: true,
    });
    assert_eq!(banned, "!! you were banned from #lab by alice");
    let done = line(UiEvent::Moderated {
        room: "lab".into(),
        action: "kick".into(),
        user: Some("bob".into()),
    });
    assert_eq!(done, "-- #lab: bob kicked");
    let a = UiEvent::Announcement {
        id: 1,
        by: "teacher".into(),
        text: "10 minutes left".into(),
    };
    let coloured = ui.line(a.clone());
    assert!(
        coloured.contains("\x1b[1;35m"),
        "bold magenta: {coloured:?}"
    );
    assert_eq!(line(a), "📢 announcement from teacher: 10 minutes left");
}

/// A room message that came late says so after its text.
#[test]
fn a_late_room_message_is_marked() {
    let ui = Ui::new(false, false, super::super::Sink::Stdout);
    let line = ui.line(UiEvent::Message {
        from: "alice".into(),
        chat: "#lab".into(),
        text: "did everyone get the link?".into(),
        id: 6,
        own: false,
        queued: false,
        action: false,
        mention: false,
        late: true,
    });
    assert!(
        line.ends_with("<alice> did everyone get the link? (late)"),
        "{line:?}"
    );
}
