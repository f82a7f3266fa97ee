//! The simulator's virtual network: every datagram is lost, duplicated,
//! delayed and reordered by a seeded generator, and partitions cut chosen
//! pairs of nodes apart.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// SplitMix64: tiny, fast in debug builds, and fully determined by its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next_u64() >> 11) as f64) / ((1u64 << 53) as f64) < p
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_nanos() as u64;
        lo + Duration::from_nanos(self.next_u64() % (span + 1))
    }
}

#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram arrives twice.
    pub dup: f64,
    /// Probability that a datagram is held back by up to `reorder_by`,
    /// so later ones overtake it.
    pub reorder: f64,
    pub reorder_by: Duration,
    /// One-way delay, uniform in this range.
    pub delay: (Duration, Duration),
}

impl NetConfig {
    /// A clean LAN: no loss, 0.5-2 ms.
    pub fn clean() -> NetConfig {
        NetConfig {
            loss: 0.0,
            dup: 0.0,
            reorder: 0.0,
            reorder_by: Duration::ZERO,
            delay: (Duration::from_micros(500), Duration::from_millis(2)),
        }
    }

    /// `loss`, `dup` and `reorder` probabilities on a 0.5-2 ms LAN;
    /// reordered datagrams are held back up to 20 ms.
    pub fn lossy(loss: f64, dup: f64, reorder: f64) -> NetConfig {
        NetConfig {
            loss,
            dup,
            reorder,
            reorder_by: Duration::from_millis(20),
            ..NetConfig::clean()
        }
    }
}

/// A datagram on its way: in the queue, its arrival (then when it was
/// sent, to break ties) and where it waits in `Net::flying`; the queue's
/// entries stay small, so keeping it ordered moves little.
type Due = Reverse<(Instant, u64, usize)>;

/// A datagram's addresses and bytes, while it is on its way.
struct InFlight {
    from: SocketAddr,
    to: SocketAddr,
    /// It came by a multicast group.
    group: bool,
    bytes: Vec<u8>,
}

/// A datagram arriving: when, from and to whom, whether by a multicast
/// group, its bytes.
pub struct Arrival {
    pub at: Instant,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub group: bool,
    pub bytes: Vec<u8>,
}

pub struct Net {
    pub cfg: NetConfig,
    rng: Rng,
    /// Earliest arrival first.
    queue: BinaryHeap<Due>,
    /// The datagrams the queue points to; `None`: a free place, listed in
    /// `free`.
    flying: Vec<Option<InFlight>>,
    free: Vec<usize>,
    next_seq: u64,
    nodes: HashMap<SocketAddr, usize, foldhash::fast::RandomState>,
    cut: HashSet<(SocketAddr, SocketAddr)>,
    pub sent: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// When set, a copy of every datagram sent (before loss), for tests
    /// that look at what went on the wire.
    pub tap: Option<Vec<(SocketAddr, Vec<u8>)>>,
    /// When set, every datagram of this kind (the header's fourth byte)
    /// is lost: a peer that does not know it, or a path that drops it.
    pub drop_kind: Option<u8>,
    /// Nodes no multicast reaches (a switch or a firewall that drops it):
    /// every group copy to them is lost.
    pub group_deaf: HashSet<SocketAddr>,
    /// Datagrams sent to a multicast group (counted in `sent` as well).
    pub group_sent: u64,
}

impl Net {
    pub fn new(seed: u64, cfg: NetConfig) -> Net {
        Net {
            cfg,
            rng: Rng::new(seed),
            queue: BinaryHeap::new(),
            flying: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
            nodes: HashMap::default(),
            cut: HashSet::new(),
            sent: 0,
            lost: 0,
            duplicated: 0,
            reordered: 0,
            tap: None,
            drop_kind: None,
            group_deaf: HashSet::new(),
            group_sent: 0,
        }
    }

    pub fn attach(&mut self, addr: SocketAddr, node: usize) {
        self.nodes.insert(addr, node);
    }

    pub fn node_of(&self, addr: SocketAddr) -> Option<usize> {
        self.nodes.get(&addr).copied()
    }

    /// Cuts (or with `cut = false` heals) the link between two addresses,
    /// both ways.
    pub fn partition(&mut self, a: SocketAddr, b: SocketAddr, cut: bool) {
        for pair in [(a, b), (b, a)] {
            if cut {
                self.cut.insert(pair);
            } else {
                self.cut.remove(&pair);
            }
        }
    }

    pub fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        self.sent += 1;
        if let Some(tap) = &mut self.tap {
            tap.push((to, bytes.clone()));
        }
        self.carry(now, from, to, bytes, false);
    }

    /// One datagram to multicast group `group`: sent once, it reaches each
    /// of `to` (the nodes that joined it) or not, each copy lost,
    /// duplicated and delayed on its own (one segment, many receivers).
    pub fn send_group(
        &mut self,
        now: Instant,
        from: SocketAddr,
        group: SocketAddr,
        to: &[SocketAddr],
        bytes: Vec<u8>,
    ) {
        self.sent += 1;
        self.group_sent += 1;
        if let Some(tap) = &mut self.tap {
            tap.push((group, bytes.clone()));
        }
        for &to in to {
            if self.group_deaf.contains(&to) {
                self.lost += 1;
                continue;
            }
            self.carry(now, from, to, bytes.clone(), true);
        }
    }

    fn carry(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        mut bytes: Vec<u8>,
        group: bool,
    ) {
        let dropped = self.drop_kind.is_some_and(|k| bytes.get(3) == Some(&k));
        if dropped || self.cut.contains(&(from, to)) || self.rng.chance(self.cfg.loss) {
            self.lost += 1;
            return;
        }
        let copies = if self.rng.chance(self.cfg.dup) {
            self.duplicated += 1;
            2
        } else {
            1
        };
        for copy in 1..=copies {
            let (lo, hi) = self.cfg.delay;
            let mut at = now + self.rng.between(lo, hi);
            if self.rng.chance(self.cfg.reorder) {
                self.reordered += 1;
                at += self.rng.between(Duration::ZERO, self.cfg.reorder_by);
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            let d = InFlight {
                from,
                to,
                group,
                bytes: if copy == copies {
                    std::mem::take(&mut bytes)
                } else {
                    bytes.clone()
                },
            };
            let slot = match self.free.pop() {
                Some(slot) => {
                    self.flying[slot] = Some(d);
                    slot
                }
                None => {
                    self.flying.push(Some(d));
                    self.flying.len() - 1
                }
            };
            self.queue.push(Reverse((at, seq, slot)));
        }
    }

    /// When the next datagram arrives.
    pub fn next_at(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The next datagram arriving at or before `until`.
    pub fn next_before(&mut self, until: Instant) -> Option<Arrival> {
        loop {
            if self.queue.peek()?.0 .0 > until {
                return None;
            }
            let Reverse((at, _, slot)) = self.queue.pop()?;
            let Some(d) = self.flying[slot].take() else {
                continue;
            };
            self.free.push(slot);
            if self.cut.contains(&(d.from, d.to)) {
                self.lost += 1;
                continue;
            }
            return Some(Arrival {
                at,
                from: d.from,
                to: d.to,
                group: d.group,
                bytes: d.bytes,
            });
        }
    }
}
