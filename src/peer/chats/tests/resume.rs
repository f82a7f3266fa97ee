//! Acknowledgements, interrupted chats that resume, and what is reported
//! when a chat ends with messages never acknowledged.

use super::*;

fn unacked(net: &mut Net, who: &str) -> Vec<u64> {
    let e = &net.node(who).engine;
    e.chats
        .values()
        .flat_map(|c| c.unacked.iter().map(|(id, _)| *id))
        .collect()
}

fn say(net: &mut Net, who: &str, to: &str, text: &str) {
    net.open(who, to, Some(text));
}

/// Cuts (or restores) `who`'s link; the registry sees it offline meanwhile.
fn cable(net: &mut Net, who: &str, up: bool) {
    net.node(who).cut = !up;
    if let Some(info) = net.registry.get_mut(who) {
        info.online = up;
    }
}

fn interrupted(with: &str) -> ChatEvent {
    ChatEvent::Interrupted {
        with: with.into(),
        reason: EndReason::NotResponding,
    }
}

fn resumed(with: &str) -> ChatEvent {
    ChatEvent::Resumed { with: with.into() }
}

fn undelivered(with: &str, messages: &[(u64, &str)]) -> ChatEvent {
    ChatEvent::Undelivered {
        with: with.into(),
        messages: messages.iter().map(|(i, t)| (*i, t.to_string())).collect(),
    }
}

#[test]
fn shown_messages_are_acknowledged() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    for t in ["one", "two", "three"] {
        say(&mut net, "alice", "bob", t);
    }
    assert_eq!(unacked(&mut net, "alice"), [1, 2, 3]);
    net.pump();
    assert_eq!(unacked(&mut net, "alice"), Vec::<u64>::new());
    assert_eq!(
        net.events("bob"),
        vec![
            received("alice", 1, "one"),
            received("alice", 2, "two"),
            received("alice", 3, "three")
        ]
    );
}

/// The case: bob's link is cut for 10 s; a message alice sends
/// as the cut begins and one she types during it both reach bob, once
/// each, in order, when the chat resumes by itself.
#[test]
fn cut_chat_resumes_and_delivers_what_was_queued_exactly_once() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    say(&mut net, "alice", "bob", "before");
    net.pump();
    cable(&mut net, "bob", false);
    say(&mut net, "alice", "bob", "lost on the wire");
    net.pump();
    net.wait(CHAT_DEAD);
    assert_eq!(net.events("alice"), vec![interrupted("bob")]);
    assert_eq!(net.events("bob")[1..], [interrupted("alice")]);
    say(&mut net, "alice", "bob", "typed during the cut");
    net.wait(Duration::from_secs(7));
    assert_eq!(unacked(&mut net, "alice"), [2, 3]);
    cable(&mut net, "bob", true);
    net.wait(CHAT_PING);
    assert_eq!(net.events("alice"), vec![resumed("bob")]);
    assert_eq!(
        net.events("bob"),
        vec![
            resumed("alice"),
            received("alice", 2, "lost on the wire"),
            received("alice", 3, "typed during the cut")
        ]
    );
    assert_eq!(unacked(&mut net, "alice"), Vec::<u64>::new());
    // Ids go on counting on the resumed chat.
    say(&mut net, "alice", "bob", "after");
    net.pump();
    assert_eq!(net.events("bob"), vec![received("alice", 4, "after")]);
    let said: Vec<u64> = net.node("alice").said.iter().map(|s| s.1).collect();
    assert_eq!(said, [1, 2, 3, 4]);
}

/// Bob showed a message but his ack was lost with the link: the resume
/// handshake says so, and the message is not sent again; a copy that
/// arrives anyway is dropped.
#[test]
fn a_message_shown_before_the_cut_is_not_shown_again() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    // Bob's acks are lost: alice stops hearing him.
    net.node("bob").frozen = true;
    say(&mut net, "alice", "bob", "seen");
    net.pump();
    assert_eq!(net.events("bob"), vec![received("alice", 1, "seen")]);
    assert_eq!(unacked(&mut net, "alice"), [1]);
    net.node("bob").frozen = false;
    net.node("bob").cut = true;
    net.wait(CHAT_DEAD);
    net.node("bob").cut = false;
    net.wait(CHAT_PING * 2);
    let ev = net.events("bob");
    assert!(ev.contains(&resumed("alice")), "{ev:?}");
    assert!(
        !ev.iter().any(|e| matches!(e, ChatEvent::Received { .. })),
        "{ev:?}"
    );
    assert_eq!(unacked(&mut net, "alice"), Vec::<u64>::new());
    let now = net.now;
    let conn = *net.node("bob").engine.chats.keys().next().unwrap();
    let copy = ChatMsg::Msg {
        id: 1,
        text: "seen".into(),
    };
    net.engine("bob").received(now, conn, copy);
    net.pump();
    assert!(net.events("bob").is_empty());
}

#[test]
fn giving_up_names_what_was_not_delivered() {
    let mut net = Net::new(&["alice", "bob"]);
    net.engine("alice")
        .set_resume_limit(Duration::from_secs(10));
    net.connect("alice", "bob");
    say(&mut net, "alice", "bob", "delivered");
    net.pump();
    cable(&mut net, "bob", false);
    net.wait(CHAT_DEAD);
    say(&mut net, "alice", "bob", "never arrives");
    net.events("alice");
    net.wait(Duration::from_secs(7));
    assert_eq!(
        net.events("alice"),
        vec![
            closed("bob", EndReason::NotResumed),
            undelivered("bob", &[(2, "never arrives")])
        ]
    );
    assert!(!net.engine("alice").is_open("bob"));
}

#[test]
fn closing_an_interrupted_chat_names_what_was_not_delivered() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    cable(&mut net, "bob", false);
    say(&mut net, "alice", "bob", "one");
    net.wait(CHAT_DEAD);
    say(&mut net, "alice", "bob", "two");
    net.events("alice");
    net.engine("alice").close("bob".into());
    net.pump();
    assert_eq!(
        net.events("alice"),
        vec![
            closed("bob", EndReason::YouClosed),
            undelivered("bob", &[(1, "one"), (2, "two")])
        ]
    );
}

/// Bob restarted during the cut: alice's resume hello names a chat he
/// does not hold, he says so, and alice ends the chat with the report.
#[test]
fn resume_of_an_unknown_chat_ends_it() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    cable(&mut net, "bob", false);
    say(&mut net, "alice", "bob", "lost");
    net.wait(CHAT_DEAD);
    let now = net.now;
    let i = net.idx("bob");
    net.nodes[i].engine = Chats::new(now, TIMEOUT);
    net.nodes[i].engine.set_me(Some("bob".into()));
    net.events("alice");
    net.events("bob");
    cable(&mut net, "bob", true);
    net.wait(CHAT_PING);
    assert_eq!(
        net.events("alice"),
        vec![
            closed("bob", EndReason::Rejected(RejectReason::UnknownChat)),
            undelivered("bob", &[(1, "lost")])
        ]
    );
    assert!(net.events("bob").is_empty());
}

/// The side whose name sorts second waits for the other to redial.
#[test]
fn only_the_first_name_redials() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    net.node("alice").cut = true;
    net.wait(CHAT_DEAD);
    let dials = |net: &mut Net| net.next_conn;
    let before = dials(&mut net);
    net.wait(Duration::from_secs(5));
    assert_eq!(dials(&mut net), before, "a dial while alice is cut");
    net.node("alice").cut = false;
    net.wait(CHAT_PING);
    assert_eq!(net.events("bob")[1..], [resumed("alice")]);
}

#[test]
fn unacknowledged_messages_are_bounded() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    net.node("bob").frozen = true;
    for i in 0..MAX_UNACKED {
        say(&mut net, "alice", "bob", &format!("m{i}"));
    }
    net.pump();
    net.events("alice");
    say(&mut net, "alice", "bob", "one too many");
    net.pump();
    assert_eq!(
        net.events("alice"),
        vec![ChatEvent::Error(ChatError::TooManyUnacked {
            user: "bob".into(),
            max: MAX_UNACKED
        })]
    );
    assert_eq!(unacked(&mut net, "alice").len(), MAX_UNACKED);
    let e = ChatError::TooManyUnacked {
        user: "bob".into(),
        max: MAX_UNACKED,
    };
    assert_eq!(
        e.to_string(),
        "1024 messages to bob are still unacknowledged; message not sent"
    );
}

#[test]
fn hello_with_a_bad_chat_id_is_rejected() {
    for (chat, received) in [
        (Some(String::new()), None),
        (Some("x".repeat(65)), None),
        (None, Some(3)),
    ] {
        let mut net = Net::new(&["bob"]);
        let now = net.now;
        let e = net.engine("bob");
        hello_on(
            e,
            now,
            (7, "10.0.0.9"),
            ("alice", key_of("alice")),
            chat,
            received,
        );
        let reason = "bad hello".to_string();
        assert_eq!(
            e.poll_action(),
            Some(Action::Send {
                conn: 7,
                msg: ChatMsg::Reject { reason }
            })
        );
    }
}

/// Only alice saw the connection break; bob still has the chat open when
/// her resume hello comes: it takes the chat over, and what bob sent into
/// the dead connection reaches alice once.
#[test]
fn resume_takes_over_a_chat_still_open_on_the_other_side() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    net.node("bob").cut = true;
    say(&mut net, "bob", "alice", "into the void");
    let conn = *net.node("alice").engine.chats.keys().next().unwrap();
    net.engine("alice")
        .conn_closed(conn, ConnEnd::Io("reset".into()));
    net.pump();
    net.node("bob").cut = false;
    assert!(net.events("bob").is_empty());
    net.wait(CHAT_PING);
    assert_eq!(
        net.events("alice"),
        vec![
            ChatEvent::Interrupted {
                with: "bob".into(),
                reason: EndReason::Conn(ConnEnd::Io("reset".into()))
            },
            resumed("bob"),
            received("bob", 1, "into the void")
        ]
    );
    assert_eq!(net.events("bob"), vec![resumed("alice")]);
    assert_eq!(unacked(&mut net, "bob"), Vec::<u64>::new());
    // The old connection's end, when bob finally sees it, changes nothing.
    let old: Vec<ConnId> = net.node("bob").engine.chats.keys().copied().collect();
    assert_eq!(old.len(), 1);
    net.engine("bob").conn_closed(conn + 1, ConnEnd::Closed);
    net.pump();
    assert!(net.events("bob").is_empty());
    assert!(net.engine("bob").is_open("alice"));
}

/// A redial whose look-up is never answered is started again.
#[test]
fn a_redial_left_unanswered_is_tried_again() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    net.registry_silent = true;
    cable(&mut net, "bob", false);
    net.wait(CHAT_DEAD + CHAT_PING);
    cable(&mut net, "bob", true);
    net.registry_silent = false;
    net.wait(Duration::from_secs(13));
    assert!(!net.events("alice").contains(&resumed("bob")));
    net.wait(CHAT_PING * 2);
    assert!(net.events("alice").contains(&resumed("bob")));
}

/// A resume hello is checked like any hello: with a key other than the
/// one the registry vouches for its user, it is refused, however right its
/// chat id, and the interrupted chat goes on waiting.
#[test]
fn resume_with_the_wrong_key_is_refused() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    cable(&mut net, "alice", false);
    net.wait(CHAT_DEAD);
    net.events("bob");
    let chat = net.node("bob").engine.chats.values().next().unwrap();
    let chat_id = chat.chat_id.clone();
    assert!(chat_id.is_some());
    let alice = net.registry["alice"].clone();
    let now = net.now;
    let e = net.engine("bob");
    let mallory = key_of("mallory");
    hello_on(
        e,
        now,
        (900, "10.9.9.9"),
        ("alice", mallory),
        chat_id,
        Some(0),
    );
    let mut actions = Vec::new();
    while let Some(a) = e.poll_action() {
        match a {
            Action::Lookup { purpose, .. } => e.looked_up(now, purpose, Ok(alice.clone())),
            other => actions.push(other),
        }
    }
    let reason = "identity check failed".to_string();
    assert_eq!(
        actions[..2],
        [
            Action::Send {
                conn: 900,
                msg: ChatMsg::Reject { reason }
            },
            Action::Close { conn: 900 }
        ]
    );
    assert!(
        matches!(
            &actions[2..],
            [Action::Event(ChatEvent::Error(
                ChatError::KeyMismatch { .. }
            ))]
        ),
        "{actions:?}"
    );
    assert!(net.engine("bob").is_open("alice"));
}

/// Quitting (or logging out) names what the partner never acknowledged
/// too (here bob showed it, but his ack was lost: the sender cannot know).
#[test]
fn quitting_names_what_was_not_delivered() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    say(&mut net, "alice", "bob", "seen");
    net.pump();
    net.node("bob").frozen = true;
    say(&mut net, "alice", "bob", "unseen");
    net.pump();
    net.events("alice");
    net.engine("alice").close_all();
    net.pump();
    assert_eq!(
        net.events("alice"),
        vec![undelivered("bob", &[(2, "unseen")])]
    );
}
