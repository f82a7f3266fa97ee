//! A deterministic simulator for the room engine (tests only): many
//! [`Engine`]s on a virtual clock, a virtual network with seeded loss,
//! duplication, reordering, delay and partitions, and a fake registry that
//! answers the engines' [`Ask`]s (or not, while it is down). The same seed
//! gives the same run, datagram for datagram.
//!
//! Time advances in ticks of at most [`TICK`]: datagrams are delivered at
//! their own arrival instants, and each engine's `handle_timeout` runs at
//! the first tick at or after its `poll_timeout` (as a busy main loop would,
//! a little late, never early).

mod attacks;
mod auth;
mod blip;
mod commands;
mod joins;
mod keywait;
mod multicast;
mod net;
mod paste;
mod props;
mod registry;
mod scale;
mod scenarios;
mod signed;
mod slow;

pub use net::{Net, NetConfig};
use registry::RegRoom;

use super::faults::Faults;
use super::{Ask, Engine, Event, Gone, StreamIds};
use crate::protocol::datagram::RoomKey;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

pub const TICK: Duration = Duration::from_millis(5);

/// Stream ids from a counter; a restarted node starts from a higher base.
struct Counter(u64);

impl StreamIds for Counter {
    fn stream_id(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
}

pub struct Node {
    pub name: String,
    /// Its signing key, as the fake registry vouches for it.
    pub sign: crate::protocol::datagram::VerifyingKey,
    pub addr: SocketAddr,
    pub engine: Engine,
    /// Killed nodes receive nothing and run no timers.
    pub up: bool,
    /// When it was killed, until the fake registry times its session out.
    killed_at: Option<Instant>,
    /// Rooms the registry took it out of when its session timed out.
    lost_rooms: Vec<String>,
    generation: u64,
    /// Everything the engine reported, in order (since its last restart),
    /// but texts from others, which go to `inbox`.
    pub events: Vec<Event>,
    /// Texts received, by (room, sender), in delivery order.
    pub inbox: HashMap<(String, String), Vec<String>, foldhash::fast::RandomState>,
    /// Those of them marked late, likewise.
    pub late: HashMap<(String, String), Vec<String>>,
    deadline: Option<Instant>,
    dirty: bool,
    /// A slow node takes this long per datagram; what arrives meanwhile
    /// waits in `backlog` (its socket buffer, at most `backlog_max`; more
    /// is dropped and counted in `overflow`).
    per_datagram: Option<Duration>,
    backlog: VecDeque<(SocketAddr, Vec<u8>, bool)>,
    backlog_max: usize,
    busy_until: Instant,
    pub overflow: u64,
    /// Stopped (SIGSTOP) until then: no timers run; datagrams wait.
    pub frozen_until: Option<Instant>,
    /// The room history it keeps for latecomers (the peer's own store),
    /// fed every text it shows, once [`Sim::keep_history`] is called.
    pub transcripts: Option<crate::peer::history::Transcripts>,
}

pub struct Sim {
    pub t0: Instant,
    pub now: Instant,
    pub nodes: Vec<Node>,
    pub net: Net,
    /// While down, asks for member lists go unanswered.
    pub registry_up: bool,
    /// Member lists the registry answered with, per room, for inspection.
    registry: BTreeMap<String, RegRoom>,
    asks: Vec<(usize, Ask)>,
    /// Datagrams that reached an address with no node (an outsider's):
    /// (from, to, bytes).
    pub outside: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    /// Datagrams sent to each node.
    sent_to: Vec<u64>,
    /// Engines sign with Ed25519 (else with the cheap stand-in).
    signed: bool,
    /// How long a new epoch's key (or a joiner's) takes to reach each
    /// member: zero hands it over with the list at once; more plays the
    /// key maker sealing it and the members fetching their packages.
    pub key_delay: Duration,
}

fn addr(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250) as u8 + 1);
    SocketAddr::new(ip.into(), 40000)
}

fn engine(name: &str, generation: u64, signed: bool) -> Engine {
    let mut e = Engine::new(
        Faults::default(),
        generation,
        Box::new(Counter(generation << 40)),
        auth::auth_for(name, signed),
    );
    e.set_identity(name);
    e
}

impl Sim {
    /// `n` nodes named `m000`, `m001`…, none in a room yet.
    pub fn new(n: usize, seed: u64, cfg: NetConfig) -> Sim {
        let t0 = Instant::now();
        let nodes = (0..n)
            .map(|i| {
                let name = format!("m{i:03}");
                Node {
                    engine: engine(&name, 1, false),
                    sign: auth::identity(&name).public().sign,
                    name,
                    addr: addr(i),
                    up: true,
                    killed_at: None,
                    lost_rooms: Vec::new(),
                    generation: 1,
                    events: Vec::new(),
                    inbox: HashMap::default(),
                    late: HashMap::new(),
                    deadline: None,
                    dirty: false,
                    per_datagram: None,
                    backlog: VecDeque::new(),
                    backlog_max: 0,
                    busy_until: t0,
                    overflow: 0,
                    frozen_until: None,
                    transcripts: None,
                }
            })
            .collect();
        let mut net = Net::new(seed, cfg);
        for i in 0..n {
            net.attach(addr(i), i);
        }
        Sim {
            t0,
            now: t0,
            nodes,
            net,
            registry_up: true,
            registry: BTreeMap::new(),
            asks: Vec::new(),
            outside: Vec::new(),
            sent_to: vec![0; n],
            signed: false,
            key_delay: Duration::ZERO,
        }
    }

    pub fn name(&self, i: usize) -> String {
        self.nodes[i].name.clone()
    }

    /// Node `i` joins `room` through the registry (made on first join).
    pub fn join(&mut self, i: usize, room: &str) {
        let key = {
            let n = self.registry.len() as u8;
            let r = self.registry.entry(room.to_string()).or_insert(RegRoom {
                key: RoomKey {
                    epoch: 1,
                    key: [n.wrapping_add(1); 32],
                },
                members: BTreeSet::new(),
                outsiders: BTreeMap::new(),
                keyless_until: BTreeMap::new(),
            });
            if r.members.insert(i) && !self.key_delay.is_zero() && r.members.len() > 1 {
                r.keyless_until.insert(i, self.now + self.key_delay);
            }
            r.key
        };
        let listed = self.listed(room);
        let now = self.now;
        if self.keyless(i, room) {
            self.nodes[i]
                .engine
                .enter_awaiting_key(now, room, key.epoch, &listed);
        } else {
            self.nodes[i].engine.enter(now, room, key, &listed);
        }
        self.drain(i);
    }

    /// Node `i` says `text` in `room`; panics if the engine refuses.
    pub fn say(&mut self, i: usize, room: &str, text: &str) -> u64 {
        let now = self.now;
        let id = self.nodes[i]
            .engine
            .say(now, room, text)
            .unwrap_or_else(|e| panic!("{} cannot say in #{room}: {e:?}", self.nodes[i].name));
        self.drain(i);
        id
    }

    pub fn leave(&mut self, i: usize, room: &str) {
        let now = self.now;
        let _ = self.nodes[i].engine.leave(now, room);
        self.drain(i);
    }

    /// kill -9: the node stops answering; the registry shows it offline.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].up = false;
        self.nodes[i].killed_at = Some(self.now);
    }

    /// A new run of a killed node: fresh engine, newer stream ids, and it
    /// joins the rooms the registry still lists it in.
    pub fn restart(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.generation += 1;
        node.engine = engine(&node.name, node.generation, self.signed);
        node.up = true;
        node.events.clear();
        node.inbox.clear();
        node.late.clear();
        node.dirty = true;
        node.killed_at = None;
        let mut rooms: Vec<String> = std::mem::take(&mut node.lost_rooms);
        rooms.extend(
            self.registry
                .iter()
                .filter(|(_, r)| r.members.contains(&i))
                .map(|(n, _)| n.clone()),
        );
        rooms.sort();
        rooms.dedup();
        for room in rooms {
            self.join(i, &room);
        }
    }

    fn drain(&mut self, i: usize) {
        let now = self.now;
        let mut sent_to = std::mem::take(&mut self.sent_to);
        sent_to.resize(self.nodes.len(), 0);
        self.nodes[i].dirty = true;
        while let Some((to, bytes)) = self.nodes[i].engine.poll_transmit() {
            let from = self.nodes[i].addr;
            if to.ip().is_multicast() {
                // Every node up that joined the group, but the sender.
                let heard_by: Vec<SocketAddr> = (0..self.nodes.len())
                    .filter(|&j| j != i && self.nodes[j].up)
                    .filter(|&j| self.nodes[j].engine.listens(to))
                    .map(|j| self.nodes[j].addr)
                    .collect();
                self.net.send_group(now, from, to, &heard_by, bytes);
                continue;
            }
            self.net.send(now, from, to, bytes);
            if let Some(j) = self.net.node_of(to) {
                sent_to[j] += 1;
            }
        }
        let node = &mut self.nodes[i];
        while let Some(ev) = node.engine.poll_event() {
            if let (
                Some(t),
                Event::Message {
                    room,
                    from,
                    text,
                    id,
                    ..
                },
            ) = (&mut node.transcripts, &ev)
            {
                let entry = crate::peer::history::Entry {
                    from: from.clone(),
                    id: *id,
                    text: text.clone(),
                    at: now,
                };
                t.record(room, entry);
            }
            match ev {
                Event::Message {
                    room,
                    from,
                    text,
                    own: false,
                    late,
                    ..
                } => {
                    if late {
                        let key = (room.clone(), from.clone());
                        node.late.entry(key).or_default().push(text.clone());
                    }
                    node.inbox.entry((room, from)).or_default().push(text)
                }
                Event::Ask(a) => {
                    self.asks.push((i, a.clone()));
                    node.events.push(Event::Ask(a));
                }
                ev => node.events.push(ev),
            }
        }
        self.sent_to = sent_to;
    }

    /// Runs the network and every engine's timers for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            let next = self.tick_end(end);
            while let Some(a) = self.net.next_before(next) {
                self.now = a.at;
                let Some(i) = self.net.node_of(a.to) else {
                    self.outside.push((a.from, a.to, a.bytes));
                    continue;
                };
                if self.nodes[i].up {
                    self.arrive(i, a.at, a.from, a.bytes, a.group);
                }
            }
            self.work_backlogs(next);
            self.now = next;
            for i in 0..self.nodes.len() {
                if !self.nodes[i].up || self.nodes[i].frozen_until.is_some_and(|t| t > next) {
                    continue;
                }
                if std::mem::take(&mut self.nodes[i].dirty) {
                    self.nodes[i].deadline = self.nodes[i].engine.poll_timeout();
                }
                if self.nodes[i].deadline.is_some_and(|t| t <= next) {
                    self.nodes[i].engine.handle_timeout(next);
                    self.drain(i);
                    self.nodes[i].deadline = self.nodes[i].engine.poll_timeout();
                    self.nodes[i].dirty = false;
                }
            }
            self.expire_sessions();
            self.answer_asks();
        }
    }

    /// The end of the next tick: [`TICK`] on, or later when idle.
    fn tick_end(&mut self, end: Instant) -> Instant {
        let mut soonest = self.net.next_at();
        for n in self.nodes.iter_mut().filter(|n| n.up) {
            if n.dirty {
                return (self.now + TICK).min(end);
            }
            soonest = match (soonest, n.deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let idle_until = soonest.unwrap_or(end).max(self.now + TICK);
        idle_until.min(end)
    }

    /// Texts node `i` received in `room` from `from`, in delivery order.
    pub fn received(&self, i: usize, room: &str, from: &str) -> &[String] {
        self.nodes[i]
            .inbox
            .get(&(room.to_string(), from.to_string()))
            .map_or(&[], |v| v.as_slice())
    }

    /// Those of them that came marked late.
    pub fn received_late(&self, i: usize, room: &str, from: &str) -> &[String] {
        self.nodes[i]
            .late
            .get(&(room.to_string(), from.to_string()))
            .map_or(&[], |v| v.as_slice())
    }

    /// The members node `i` currently sends to in `room`.
    pub fn members(&self, i: usize, room: &str) -> Vec<String> {
        self.nodes[i].engine.members_of(room)
    }

    /// Final delivery reports node `i` got for its messages in `room`:
    /// id → `Ok(acked)` or `Err(missing)`.
    pub fn reports(&self, i: usize, room: &str) -> BTreeMap<u64, Result<usize, Vec<String>>> {
        let mut out = BTreeMap::new();
        for e in &self.nodes[i].events {
            match e {
                Event::Delivery {
                    room: r,
                    id,
                    acked,
                    total,
                } if r == room && acked == total => {
                    out.insert(*id, Ok(*acked));
                }
                Event::DeliveryFailed {
                    room: r,
                    id,
                    missing,
                } if r == room => {
                    out.insert(*id, Err(missing.clone()));
                }
                _ => {}
            }
        }
        out
    }

    /// Hands node `i` a datagram from `from` now (an outsider speaking).
    pub fn inject(&mut self, i: usize, from: SocketAddr, bytes: &[u8]) {
        let now = self.now;
        self.nodes[i].engine.handle_datagram(now, from, bytes);
        self.drain(i);
    }

    /// Cuts (or heals) the link between nodes `a` and `b`.
    pub fn partition(&mut self, a: usize, b: usize, cut: bool) {
        let (a, b) = (self.nodes[a].addr, self.nodes[b].addr);
        self.net.partition(a, b, cut);
    }

    /// Members node `i` saw leave `room`, with why, in order.
    pub fn departures(&self, i: usize, room: &str) -> Vec<(String, Gone)> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::MemberLeft {
                    room: r,
                    user,
                    reason,
                } if r == room => Some((user.clone(), *reason)),
                _ => None,
            })
            .collect()
    }

    /// How much virtual time has passed.
    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }
}
