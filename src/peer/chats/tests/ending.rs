//! How chats and requests end: time-outs, silence, closing, lost
//! connections, replaced chats.

use super::*;

#[test]
fn unanswered_request_times_out_on_both_sides() {
    let mut net = Net::new(&["alice", "bob"]);
    net.open("alice", "bob", Some("anyone?"));
    net.pump();
    net.events("alice");
    net.events("bob");
    net.wait(TIMEOUT - CHAT_PING);
    assert!(net.events("bob").is_empty());
    net.wait(CHAT_PING);
    assert_eq!(
        net.events("bob"),
        vec![ChatEvent::TimedOut {
            with: "alice".into()
        }]
    );
    assert_eq!(
        net.events("alice"),
        vec![
            ChatEvent::TimedOut { with: "bob".into() },
            ChatEvent::Error(ChatError::NotSent {
                user: "bob".into(),
                count: 1
            })
        ]
    );
    assert_eq!(net.engine("alice").poll_timeout(), None);
}

#[test]
fn requester_gives_up_when_the_asked_side_is_frozen() {
    let mut net = Net::new(&["alice", "bob"]);
    net.open("alice", "bob", None);
    net.pump();
    net.events("alice");
    net.node("bob").frozen = true;
    net.wait(TIMEOUT + REQUEST_GRACE - CHAT_PING);
    assert!(net.events("alice").is_empty());
    net.wait(CHAT_PING);
    assert_eq!(
        net.events("alice"),
        vec![ChatEvent::TimedOut { with: "bob".into() }]
    );
}

#[test]
fn silent_partner_ends_an_open_chat() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    // Keep-alives hold it open.
    net.wait(CHAT_DEAD * 2);
    assert!(net.events("alice").is_empty());
    net.node("bob").frozen = true;
    net.engine("alice")
        .set_resume_limit(Duration::from_secs(10));
    net.wait(CHAT_DEAD);
    assert_eq!(
        net.events("alice"),
        vec![ChatEvent::Interrupted {
            with: "bob".into(),
            reason: EndReason::NotResponding
        }]
    );
    assert_eq!(EndReason::NotResponding.to_string(), "not responding");
    // Bob never answers the redials: given up after the limit (counted
    // from when he was last heard).
    net.wait(Duration::from_secs(10) - CHAT_DEAD - CHAT_PING);
    assert!(net.events("alice").is_empty());
    net.wait(CHAT_PING);
    assert_eq!(
        net.events("alice"),
        vec![closed("bob", EndReason::NotResumed)]
    );
    assert_eq!(net.engine("alice").poll_timeout(), None);
}

#[test]
fn connection_without_hello_is_dropped_quietly() {
    let mut net = Net::new(&["alice"]);
    let now = net.now;
    net.engine("alice").accepted(now, 99, sock("10.9.9.9"));
    net.now += HELLO_TIMEOUT;
    let now = net.now;
    net.engine("alice").handle_timeout(now);
    assert_eq!(
        net.engine("alice").poll_action(),
        Some(Action::Send {
            conn: 99,
            msg: ChatMsg::Bye
        })
    );
    assert_eq!(
        net.engine("alice").poll_action(),
        Some(Action::Close { conn: 99 })
    );
    assert_eq!(net.engine("alice").poll_action(), None);
}

#[test]
fn either_side_can_close() {
    for (closer, other) in [("alice", "bob"), ("bob", "alice")] {
        let mut net = Net::new(&["alice", "bob"]);
        net.connect("alice", "bob");
        net.engine(closer).close(other.to_string());
        net.pump();
        assert_eq!(
            net.events(closer),
            vec![closed(other, EndReason::YouClosed)]
        );
        assert_eq!(net.events(other), vec![closed(closer, EndReason::Left)]);
        assert_eq!(net.engine(other).poll_timeout(), None);
    }
    assert_eq!(EndReason::Left.to_string(), "left the chat");
    assert_eq!(EndReason::YouClosed.to_string(), "you closed it");
}

#[test]
fn withdrawing_a_request_tells_the_asked_side() {
    let mut net = Net::new(&["alice", "bob"]);
    net.open("alice", "bob", None);
    net.pump();
    net.events("bob");
    net.engine("alice").close("bob".into());
    net.pump();
    assert_eq!(
        net.events("bob"),
        vec![ChatEvent::Notice(ChatNotice::Withdrawn {
            user: "alice".into()
        })]
    );
    net.engine("alice").close("bob".into());
    assert_eq!(
        net.engine("alice").poll_action(),
        Some(Action::Event(ChatEvent::Error(ChatError::NoChat {
            user: "bob".into()
        })))
    );
}

#[test]
fn lost_connection_interrupts_the_chat_until_resumed() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    let conn = *net.node("alice").engine.chats.keys().next().unwrap();
    net.engine("alice").conn_closed(conn, ConnEnd::Closed);
    net.pump();
    let interrupted = |with: &str| ChatEvent::Interrupted {
        with: with.into(),
        reason: EndReason::Conn(ConnEnd::Closed),
    };
    assert_eq!(net.events("alice"), vec![interrupted("bob")]);
    assert_eq!(net.events("bob"), vec![interrupted("alice")]);
    assert!(net.engine("alice").is_open("bob"));
    // Alice's name sorts first: she redials at the next tick.
    net.wait(CHAT_PING);
    let resumed = |with: &str| ChatEvent::Resumed { with: with.into() };
    assert_eq!(net.events("alice"), vec![resumed("bob")]);
    assert_eq!(net.events("bob"), vec![resumed("alice")]);
    assert_eq!(
        EndReason::Conn(ConnEnd::Closed).to_string(),
        "connection closed"
    );
}

#[test]
fn new_request_replaces_a_stale_chat() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    // Alice restarts: a fresh engine asks again.
    let now = net.now;
    let i = net.idx("alice");
    net.nodes[i].engine = Chats::new(now, TIMEOUT);
    net.nodes[i].engine.set_me(Some("alice".into()));
    net.open("alice", "bob", None);
    net.pump();
    assert_eq!(net.events("bob"), vec![request_from("alice")]);
    assert!(!net.engine("bob").is_open("alice"));
    assert_eq!(net.node("bob").engine.chats.len(), 1);
}

#[test]
fn closing_everything_says_bye_and_forgets_dials() {
    let mut net = Net::new(&["alice", "bob", "carol"]);
    net.connect("alice", "bob");
    net.open("alice", "carol", Some("later"));
    net.engine("alice").close_all();
    assert!(!net.engine("alice").is_dialing());
    net.pump();
    let ev = net.events("alice");
    assert!(
        !ev.iter().any(|e| matches!(e, ChatEvent::Closed { .. })),
        "{ev:?}"
    );
    assert_eq!(net.events("bob"), vec![closed("alice", EndReason::Left)]);
}
