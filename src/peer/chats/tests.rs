//! Chat engines driven against each other with no sockets: a FIFO virtual
//! network between them, a registry table, and a hand-moved clock.

use super::*;
use crate::protocol::ErrorCode;
use std::collections::VecDeque;

const TIMEOUT: Duration = Duration::from_secs(5);

struct Node {
    name: String,
    ip: String,
    engine: Chats,
    events: Vec<ChatEvent>,
    /// Our own messages that went out: (with, id, text).
    said: Vec<(String, u64, String)>,
    /// Silent: what it sends is lost (a frozen process).
    frozen: bool,
}

enum Wire {
    Msg(ConnId, ChatMsg),
    Closed(ConnId),
}

struct Net {
    now: Instant,
    nodes: Vec<Node>,
    /// Where each connection end leads: (its owner, the other end).
    ends: HashMap<ConnId, (usize, ConnId)>,
    /// Connection ends closed by their owner.
    closed: Vec<ConnId>,
    next_conn: ConnId,
    queue: VecDeque<Wire>,
    registry: HashMap<String, UserInfo>,
    registry_down: bool,
}

fn addr_of(ip: &str) -> Address {
    Address {
        ip: ip.to_string(),
        tcp_port: 7000,
        udp_port: 7000,
    }
}

fn sock(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), 40000)
}

impl Net {
    fn new(names: &[&str]) -> Net {
        let now = Instant::now();
        let mut net = Net {
            now,
            nodes: Vec::new(),
            ends: HashMap::new(),
            closed: Vec::new(),
            next_conn: 1,
            queue: VecDeque::new(),
            registry: HashMap::new(),
            registry_down: false,
        };
        for (i, name) in names.iter().enumerate() {
            let ip = format!("10.0.0.{}", i + 1);
            let mut engine = Chats::new(now, TIMEOUT);
            engine.set_me(Some(name.to_string()));
            net.registry.insert(
                name.to_string(),
                UserInfo {
                    username: name.to_string(),
                    online: true,
                    address: Some(addr_of(&ip)),
                },
            );
            net.nodes.push(Node {
                name: name.to_string(),
                ip,
                engine,
                events: Vec::new(),
                said: Vec::new(),
                frozen: false,
            });
        }
        net
    }

    fn idx(&self, name: &str) -> usize {
        self.nodes.iter().position(|n| n.name == name).unwrap()
    }

    fn node(&mut self, name: &str) -> &mut Node {
        let i = self.idx(name);
        &mut self.nodes[i]
    }

    fn engine(&mut self, name: &str) -> &mut Chats {
        &mut self.node(name).engine
    }

    /// Takes the events `name` has shown since last asked.
    fn events(&mut self, name: &str) -> Vec<ChatEvent> {
        std::mem::take(&mut self.node(name).events)
    }

    fn wire(&mut self, from: usize, w: Wire) {
        if !self.nodes[from].frozen {
            self.queue.push_back(w);
        }
    }

    /// Carries out one node's action.
    fn act(&mut self, i: usize, a: Action) {
        let now = self.now;
        match a {
            Action::Send { conn, msg } => self.wire(i, Wire::Msg(conn, msg)),
            Action::Say {
                conn,
                from,
                with,
                id,
                text,
            } => {
                assert_eq!(from, self.nodes[i].name);
                self.nodes[i].said.push((with, id, text.clone()));
                self.wire(i, Wire::Msg(conn, ChatMsg::Msg { id, text }));
            }
            Action::Close { conn } => {
                self.closed.push(conn);
                self.wire(i, Wire::Closed(conn));
            }
            Action::Lookup { user, purpose } => {
                let result = match self.registry.get(&user) {
                    _ if self.registry_down => Err(ApiError::new(
                        ErrorCode::RegistryUnreachable,
                        "cannot reach the registry",
                    )),
                    Some(info) => Ok(info.clone()),
                    None => Err(ApiError::new(ErrorCode::UserNotFound, "no such user")),
                };
                self.nodes[i].engine.looked_up(now, purpose, result);
            }
            Action::Dial { user, addr } => {
                let Some(o) = self.nodes.iter().position(|n| n.ip == addr.ip) else {
                    let why = format!("cannot reach {user} at {}", addr.ip);
                    self.nodes[i].engine.dial_failed(user, why);
                    return;
                };
                let (a, b) = (self.next_conn, self.next_conn + 1);
                self.next_conn += 2;
                self.ends.insert(a, (i, b));
                self.ends.insert(b, (o, a));
                let (ip_i, ip_o) = (self.nodes[i].ip.clone(), self.nodes[o].ip.clone());
                self.nodes[o].engine.accepted(now, b, sock(&ip_i));
                self.nodes[i].engine.connected(now, a, sock(&ip_o), user);
            }
            Action::Event(e) => self.nodes[i].events.push(e),
        }
    }

    /// Runs every action and delivers every line until all is quiet.
    fn pump(&mut self) {
        loop {
            let mut busy = false;
            for i in 0..self.nodes.len() {
                while let Some(a) = self.nodes[i].engine.poll_action() {
                    busy = true;
                    self.act(i, a);
                }
            }
            let batch: Vec<Wire> = self.queue.drain(..).collect();
            if batch.is_empty() && !busy {
                return;
            }
            for w in batch {
                let now = self.now;
                let (end, w) = match w {
                    Wire::Msg(c, m) => (c, Some(m)),
                    Wire::Closed(c) => (c, None),
                };
                let (_, other) = self.ends[&end];
                let (o, _) = self.ends[&other];
                if self.closed.contains(&other) {
                    continue;
                }
                let engine = &mut self.nodes[o].engine;
                match w {
                    Some(m) => engine.received(now, other, m),
                    None => engine.conn_closed(other, ConnEnd::Closed),
                }
            }
        }
    }

    /// Moves the clock on by `total`, a second at a time.
    fn wait(&mut self, total: Duration) {
        let end = self.now + total;
        while self.now < end {
            self.now = (self.now + CHAT_PING).min(end);
            let now = self.now;
            for n in &mut self.nodes {
                if !n.frozen {
                    n.engine.handle_timeout(now);
                }
            }
            self.pump();
        }
    }

    fn open(&mut self, who: &str, with: &str, text: Option<&str>) {
        self.engine(who)
            .open(with.to_string(), text.map(str::to_string));
    }

    /// `a` asks `b`, `b` accepts; both see the chat open.
    fn connect(&mut self, a: &str, b: &str) {
        self.open(a, b, None);
        self.pump();
        self.engine(b).answer(None, true);
        self.pump();
        assert!(self.engine(a).is_open(b) && self.engine(b).is_open(a));
        self.events(a);
        self.events(b);
    }
}

impl ChatEvent {
    fn to_string_for_test(&self) -> String {
        match self {
            ChatEvent::Error(e) => e.to_string(),
            ChatEvent::Notice(n) => n.to_string(),
            other => format!("{other:?}"),
        }
    }
}

fn ev_opened(with: &str) -> ChatEvent {
    ChatEvent::Opened { with: with.into() }
}

fn received(from: &str, id: u64, text: &str) -> ChatEvent {
    ChatEvent::Received {
        from: from.into(),
        id,
        text: text.into(),
    }
}

#[test]
fn accepted_chat_carries_queued_and_later_messages_in_order() {
    let mut net = Net::new(&["alice", "bob"]);
    net.open("alice", "bob", Some("one"));
    // Typed while the registry is being asked, then while bob is asked.
    net.open("alice", "bob", Some("two"));
    net.pump();
    net.open("alice", "bob", Some("three"));
    assert_eq!(
        net.events("alice"),
        vec![ChatEvent::Requested { to: "bob".into() }]
    );
    assert_eq!(
        net.events("bob"),
        vec![ChatEvent::Request {
            from: "alice".into()
        }]
    );
    net.engine("bob").answer(Some("alice".into()), true);
    net.pump();
    assert_eq!(net.events("alice"), vec![ev_opened("bob")]);
    assert_eq!(
        net.events("bob"),
        vec![
            ev_opened("alice"),
            received("alice", 1, "one"),
            received("alice", 2, "two"),
            received("alice", 3, "three"),
        ]
    );
    net.open("bob", "alice", Some("hi"));
    net.pump();
    assert_eq!(net.events("alice"), vec![received("bob", 1, "hi")]);
    assert_eq!(net.node("bob").said, vec![("alice".into(), 1, "hi".into())]);
    // `/chat` with an open chat only makes it current.
    net.open("alice", "bob", None);
    assert_eq!(
        net.engine("alice").poll_action(),
        Some(Action::Event(ChatEvent::Focus { with: "bob".into() }))
    );
}

#[test]
fn rejected_request_reports_declined_and_unsent_texts() {
    let mut net = Net::new(&["alice", "bob"]);
    net.open("alice", "bob", Some("hello?"));
    net.pump();
    net.events("bob");
    net.engine("bob").answer(None, false);
    net.pump();
    assert_eq!(
        net.events("bob"),
        vec![ChatEvent::Notice(ChatNotice::Declined {
            user: "alice".into()
        })]
    );
    let ev = net.events("alice");
    assert_eq!(
        ev[1..],
        [
            ChatEvent::Refused {
                by: "bob".into(),
                reason: EndReason::Rejected(RejectReason::Declined)
            },
            ChatEvent::Error(ChatError::NotSent {
                user: "bob".into(),
                count: 1
            })
        ]
    );
    assert_eq!(
        EndReason::Rejected(RejectReason::Declined).to_string(),
        "declined"
    );
    assert_eq!(
        ChatError::NotSent {
            user: "bob".into(),
            count: 1
        }
        .to_string(),
        "1 message(s) to bob not sent"
    );
    assert!(!net.engine("alice").is_open("bob"));
    // Nothing is left to answer.
    net.engine("bob").answer(None, false);
    assert_eq!(
        net.engine("bob").poll_action(),
        Some(Action::Event(ChatEvent::Error(ChatError::NoRequest {
            from: None
        })))
    );
}

#[test]
fn crossed_requests_end_in_one_chat() {
    let mut net = Net::new(&["alice", "bob"]);
    net.open("alice", "bob", Some("from alice"));
    net.open("bob", "alice", Some("from bob"));
    net.pump();
    for (me, other) in [("alice", "bob"), ("bob", "alice")] {
        let ev = net.events(me);
        assert!(ev.contains(&ev_opened(other)), "{me}: {ev:?}");
        assert!(
            ev.contains(&received(other, 1, &format!("from {other}"))),
            "{me}: {ev:?}"
        );
        assert!(
            !ev.iter()
                .any(|e| matches!(e, ChatEvent::Refused { .. } | ChatEvent::Request { .. })),
            "{me}: {ev:?}"
        );
        assert_eq!(net.node(me).engine.chats.len(), 1, "{me}");
    }
    // The request from the smaller name wins: alice dialled first, so her
    // end of it is connection 1.
    let alice: Vec<ConnId> = net.node("alice").engine.chats.keys().copied().collect();
    assert_eq!(alice, vec![1]);
}

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
    net.wait(CHAT_DEAD);
    assert_eq!(
        net.events("alice"),
        vec![ChatEvent::Closed {
            with: "bob".into(),
            reason: EndReason::NotResponding
        }]
    );
    assert_eq!(EndReason::NotResponding.to_string(), "not responding");
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
fn do_not_disturb_answers_busy() {
    let mut net = Net::new(&["alice", "bob"]);
    assert!(net.engine("bob").set_dnd(None));
    net.open("alice", "bob", Some("psst"));
    net.pump();
    assert_eq!(
        net.events("bob"),
        vec![ChatEvent::Notice(ChatNotice::AnsweredBusy {
            user: "alice".into()
        })]
    );
    let ev = net.events("alice");
    assert_eq!(ev[1], ChatEvent::Busy { user: "bob".into() });
    assert_eq!(
        ChatNotice::AnsweredBusy {
            user: "alice".into()
        }
        .to_string(),
        "alice asked for a chat; answered busy (do not disturb)"
    );
    assert!(!net.engine("bob").set_dnd(None));
    net.open("alice", "bob", None);
    net.pump();
    assert_eq!(
        net.events("bob"),
        vec![ChatEvent::Request {
            from: "alice".into()
        }]
    );
}

#[test]
fn hello_from_the_wrong_address_fails_the_identity_check() {
    let mut net = Net::new(&["alice", "bob"]);
    net.registry.get_mut("alice").unwrap().address = Some(addr_of("10.7.7.7"));
    // Alice's own look-up of bob still works; bob finds alice elsewhere.
    net.open("alice", "bob", None);
    net.pump();
    let ev = net.events("bob");
    assert_eq!(
        ev,
        vec![ChatEvent::Error(ChatError::Impostor {
            user: "alice".into(),
            from: sock("10.0.0.1")
        })]
    );
    assert_eq!(
        ev[0].to_string_for_test(),
        "refused a chat request claiming to be alice from 10.0.0.1:40000: \
         the registry has alice elsewhere"
    );
    assert_eq!(
        net.events("alice")[1],
        ChatEvent::Refused {
            by: "bob".into(),
            reason: EndReason::Rejected(RejectReason::IdentityCheckFailed)
        }
    );
    assert_eq!(
        EndReason::Rejected(RejectReason::IdentityCheckFailed).to_string(),
        "identity check failed"
    );
}

#[test]
fn unverifiable_request_is_asked_with_a_warning() {
    let mut net = Net::new(&["alice", "bob"]);
    net.open("alice", "bob", None);
    // Alice's look-up is answered, then the registry goes away.
    let a = net.engine("alice").poll_action().unwrap();
    net.act(0, a);
    net.registry_down = true;
    net.pump();
    assert_eq!(
        net.events("bob"),
        vec![
            ChatEvent::Notice(ChatNotice::Unverified {
                user: "alice".into()
            }),
            ChatEvent::Request {
                from: "alice".into()
            }
        ]
    );
}

#[test]
fn bad_hellos_are_rejected() {
    let mut net = Net::new(&["bob"]);
    let now = net.now;
    for (conn, from) in [(1, "bob"), (2, "no spaces please")] {
        let e = net.engine("bob");
        e.accepted(now, conn, sock("10.0.0.9"));
        e.received(
            now,
            conn,
            ChatMsg::Hello {
                from: from.into(),
                version: CHAT_VERSION,
            },
        );
        let reason = "bad hello".to_string();
        assert_eq!(
            e.poll_action(),
            Some(Action::Send {
                conn,
                msg: ChatMsg::Reject { reason }
            })
        );
        assert_eq!(e.poll_action(), Some(Action::Close { conn }));
    }
    net.engine("bob").set_me(None);
    let e = net.engine("bob");
    e.accepted(now, 3, sock("10.0.0.9"));
    e.received(
        now,
        3,
        ChatMsg::Hello {
            from: "alice".into(),
            version: CHAT_VERSION,
        },
    );
    let reason = "not logged in".to_string();
    assert_eq!(
        e.poll_action(),
        Some(Action::Send {
            conn: 3,
            msg: ChatMsg::Reject { reason }
        })
    );
}

#[test]
fn offline_and_unknown_users_fail_with_the_texts_waiting() {
    let mut net = Net::new(&["alice", "bob"]);
    net.registry.get_mut("bob").unwrap().online = false;
    net.open("alice", "bob", Some("a"));
    net.open("alice", "bob", Some("b"));
    assert!(net.engine("alice").is_dialing());
    net.pump();
    let ev = net.events("alice");
    let err = ChatError::Offline {
        user: "bob".into(),
        unsent: 2,
    };
    assert_eq!(ev, vec![ChatEvent::Error(err.clone())]);
    assert_eq!(err.to_string(), "bob is offline; 2 message(s) not sent");
    assert_eq!(err.code().as_deref(), Some("offline"));
    assert_eq!(err.script_failure(), Some("user offline"));
    assert!(!net.engine("alice").is_dialing());
    net.open("alice", "carol", None);
    net.pump();
    let ev = net.events("alice");
    let ChatEvent::Error(e @ ChatError::LookupFailed { .. }) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(e.to_string(), "cannot chat with carol: no such user");
    assert_eq!(e.code().as_deref(), Some("user_not_found"));
    // Nobody listens at the address the registry gives.
    net.registry.get_mut("bob").unwrap().online = true;
    net.registry.get_mut("bob").unwrap().address = Some(addr_of("10.5.5.5"));
    net.open("alice", "bob", Some("x"));
    net.pump();
    assert_eq!(
        net.events("alice"),
        vec![ChatEvent::Error(ChatError::Unreachable {
            why: "cannot reach bob at 10.5.5.5".into(),
            unsent: 1
        })]
    );
}

#[test]
fn own_name_and_logged_out_are_refused() {
    let mut net = Net::new(&["alice"]);
    net.open("alice", "alice", None);
    assert_eq!(
        net.engine("alice").poll_action(),
        Some(Action::Event(ChatEvent::Error(ChatError::ThatIsYou)))
    );
    net.engine("alice").set_me(None);
    net.open("alice", "bob", None);
    assert_eq!(
        net.engine("alice").poll_action(),
        Some(Action::Event(ChatEvent::Error(ChatError::NotLoggedIn)))
    );
}

#[test]
fn oversized_text_is_refused_before_sending() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    net.open("alice", "bob", Some(&"x".repeat(MAX_TEXT + 1)));
    assert_eq!(
        net.engine("alice").poll_action(),
        Some(Action::Event(ChatEvent::Error(ChatError::TooLong {
            len: MAX_TEXT + 1,
            max: MAX_TEXT
        })))
    );
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
            vec![ChatEvent::Closed {
                with: other.into(),
                reason: EndReason::YouClosed
            }]
        );
        assert_eq!(
            net.events(other),
            vec![ChatEvent::Closed {
                with: closer.into(),
                reason: EndReason::Left
            }]
        );
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
fn lost_connection_closes_the_chat() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    let conn = *net.node("alice").engine.chats.keys().next().unwrap();
    net.engine("alice").conn_closed(conn, ConnEnd::Closed);
    net.pump();
    assert_eq!(
        net.events("alice"),
        vec![ChatEvent::Closed {
            with: "bob".into(),
            reason: EndReason::Conn(ConnEnd::Closed)
        }]
    );
    assert_eq!(
        net.events("bob"),
        vec![ChatEvent::Closed {
            with: "alice".into(),
            reason: EndReason::Conn(ConnEnd::Closed)
        }]
    );
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
    assert_eq!(
        net.events("bob"),
        vec![ChatEvent::Request {
            from: "alice".into()
        }]
    );
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
    assert_eq!(
        net.events("bob"),
        vec![ChatEvent::Closed {
            with: "alice".into(),
            reason: EndReason::Left
        }]
    );
}
