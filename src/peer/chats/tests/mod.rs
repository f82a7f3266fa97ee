//! Chat engines driven against each other with no sockets: a FIFO virtual
//! network between them, a registry table, and a hand-moved clock.

mod ending;
mod history;
mod requests;
mod resume;

use super::*;
use crate::protocol::chat::{CHAT_VERSION, MAX_TEXT};
use crate::protocol::{ApiError, ErrorCode, UserInfo};
use std::collections::VecDeque;

const TIMEOUT: Duration = Duration::from_secs(5);

struct Node {
    name: String,
    ip: String,
    engine: Chats,
    events: Vec<ChatEvent>,
    /// Acknowledgements (`ChatEvent::Delivered`), kept apart so the event
    /// sequences above read as before: (with, up to id).
    delivered: Vec<(String, u64)>,
    /// Our own messages that went out: (with, id, text).
    said: Vec<(String, u64, String)>,
    /// Silent: what it sends is lost (a frozen process).
    frozen: bool,
    /// Its link is cut: what it sends and what is sent to it is lost, and
    /// it cannot be dialled (its timers still run).
    cut: bool,
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
    /// Look-ups are lost without an answer.
    registry_silent: bool,
}

fn addr_of(ip: &str) -> Address {
    Address {
        ip: ip.to_string(),
        tcp_port: 7000,
        udp_port: 7000,
    }
}

/// The (stand-in) identity key of `name`.
fn key_of(name: &str) -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in name.bytes().take(32).enumerate() {
        k[i] = b;
    }
    k
}

fn keys_of(name: &str) -> Option<crate::protocol::messages::PeerKeys> {
    Some(crate::protocol::messages::PeerKeys {
        sign: "00".repeat(32),
        kx: crate::identity::hex(&key_of(name)),
    })
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
            registry_silent: false,
        };
        for (i, name) in names.iter().enumerate() {
            let ip = format!("10.0.0.{}", i + 1);
            let mut engine = Chats::new(now, TIMEOUT);
            engine.set_me(Some(name.to_string()));
            net.registry.insert(
                name.to_string(),
                UserInfo {
                    keys: keys_of(name),
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
                delivered: Vec::new(),
                said: Vec::new(),
                frozen: false,
                cut: false,
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
        if !self.nodes[from].frozen && !self.nodes[from].cut {
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
                ..
            } => {
                assert_eq!(from, self.nodes[i].name);
                self.nodes[i].said.push((with, id, text.clone()));
                if let Some(conn) = conn {
                    self.wire(i, Wire::Msg(conn, ChatMsg::Msg { id, text }));
                }
            }
            Action::Close { conn } => {
                self.closed.push(conn);
                self.wire(i, Wire::Closed(conn));
            }
            Action::Lookup { .. } if self.registry_silent => {}
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
            Action::Dial { user, addr, key } => {
                let found = self.nodes.iter().position(|n| n.ip == addr.ip);
                let Some(o) = found.filter(|o| !self.nodes[*o].cut && !self.nodes[i].cut) else {
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
                self.nodes[i]
                    .engine
                    .connected(now, a, sock(&ip_o), user.clone());
                // The handshake: the dialler checks the key it was given,
                // the dialled side learns the dialler's.
                if key != key_of(&self.nodes[o].name) {
                    let why =
                        ConnEnd::Secure(crate::protocol::secure::SecureError::KeyMismatch { user });
                    self.nodes[i].engine.conn_closed(a, why);
                    self.nodes[o].engine.conn_closed(b, ConnEnd::Closed);
                    return;
                }
                let me = self.nodes[i].name.clone();
                self.nodes[o].engine.secured(b, me.clone(), key_of(&me));
            }
            Action::Event(ChatEvent::Delivered { with, id }) => {
                self.nodes[i].delivered.push((with, id))
            }
            Action::Event(e) => self.nodes[i].events.push(e),
            // History requests have their own tests (`history`).
            Action::HistoryAsked { .. } => {}
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
                if self.closed.contains(&other) || self.nodes[o].cut {
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

/// A connection `conn` to `e` from `ip`, whose first line is a hello from
/// `from` naming `chat` (resuming it after `received`).
fn hello_on(
    e: &mut Chats,
    now: Instant,
    (conn, ip): (ConnId, &str),
    (from, key): (&str, [u8; 32]),
    chat: Option<String>,
    received: Option<u64>,
) {
    e.accepted(now, conn, sock(ip));
    e.secured(conn, from.into(), key);
    let hello = ChatMsg::Hello {
        from: from.into(),
        version: CHAT_VERSION,
        chat,
        received,
    };
    e.received(now, conn, hello);
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
    ChatEvent::Opened {
        with: with.into(),
        unverified: false,
    }
}

fn received(from: &str, id: u64, text: &str) -> ChatEvent {
    ChatEvent::Received {
        from: from.into(),
        id,
        text: text.into(),
        unverified: false,
    }
}

fn closed(with: &str, reason: EndReason) -> ChatEvent {
    ChatEvent::Closed {
        with: with.into(),
        reason,
        unverified: false,
    }
}

fn refused(by: &str, reason: EndReason) -> ChatEvent {
    ChatEvent::Refused {
        by: by.into(),
        reason,
    }
}

fn request_from(from: &str) -> ChatEvent {
    ChatEvent::Request {
        from: from.into(),
        unverified: false,
    }
}
