//! Reliable, ordered, exactly-once delivery over UDP for one direction
//! between two room members: a [`SendStream`] at the sender and a
//! [`RecvStream`] at the receiver. Pure state machines: no sockets, no clock
//! reads (the caller passes `now`), so they are tested deterministically.
//!
//! Each (sender → receiver) pair has its own stream, identified by a stream
//! id that grows with every new stream a sender opens, and numbered from
//! seq 1. The receiver delivers seq `expected` and then anything buffered
//! after it, acknowledges with a cumulative seq plus a 64-bit selective
//! bitmap, and drops duplicates by seq — never by content, so two identical
//! texts are two messages. The sender retransmits each unacknowledged
//! datagram with exponential backoff until it is acknowledged or it gives up.

use crate::protocol::datagram::EventKind;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// Retransmission time-out before the first round-trip sample.
pub const RTO_INITIAL: Duration = Duration::from_millis(40);
pub const RTO_MIN: Duration = Duration::from_millis(20);
pub const RTO_MAX: Duration = Duration::from_secs(1);
/// A datagram is given up on (the receiver declared unreachable) only
/// after this many sends *and* this long since its first send.
pub const MAX_TRIES: u32 = 12;
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(8);
/// …and only when the receiver has acknowledged nothing new for this long:
/// one that keeps acknowledging other datagrams is alive, and a datagram
/// lost over and over (a cut, then heavy loss) is sent again, once a
/// second, rather than the member given up on.
pub const STALLED_AFTER: Duration = Duration::from_secs(10);
/// Datagrams in flight per stream; more wait in a local queue.
pub const WINDOW: usize = 256;
/// How far ahead of `expected` a receiver buffers out-of-order datagrams.
pub const RECV_WINDOW: u64 = 1024;

/// One sequenced item: an event or one fragment of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub event: EventKind,
    pub msg_id: u64,
    pub frag: u16,
    pub frags: u16,
    pub bytes: Vec<u8>,
}

struct InFlight {
    item: Item,
    tries: u32,
    first_sent: Instant,
    due: Instant,
    /// Selectively acknowledged: held by the receiver but not yet
    /// delivered (a gap before it). Not retransmitted; kept until the
    /// cumulative acknowledgement covers it.
    sacked: bool,
}

/// The sending half.
pub struct SendStream {
    pub id: u64,
    next_seq: u64,
    in_flight: BTreeMap<u64, InFlight>,
    /// `(due, seq)` of every in-flight datagram not selectively
    /// acknowledged: the retransmission timers, soonest first.
    timers: BTreeSet<(Instant, u64)>,
    waiting: VecDeque<Item>,
    /// Smoothed round-trip time and its variation (RFC 6298), from
    /// datagrams acknowledged after their first send only (Karn).
    srtt: Option<Duration>,
    rttvar: Duration,
    /// When the receiver last acknowledged something new.
    progress: Option<Instant>,
}

/// What the sender should put on the wire now.
#[derive(Debug, PartialEq, Eq)]
pub struct Transmit {
    pub seq: u64,
    pub item: Item,
    pub retransmit: bool,
}

impl SendStream {
    pub fn new(id: u64) -> SendStream {
        SendStream {
            id,
            next_seq: 1,
            progress: None,
            in_flight: BTreeMap::new(),
            timers: BTreeSet::new(),
            waiting: VecDeque::new(),
            srtt: None,
            rttvar: Duration::ZERO,
        }
    }

    /// The current retransmission time-out.
    pub fn rto(&self) -> Duration {
        match self.srtt {
            None => RTO_INITIAL,
            Some(srtt) => (srtt + 4 * self.rttvar).clamp(RTO_MIN, RTO_MAX),
        }
    }

    fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    /// Queues an item; returns what can go out now (within the window).
    pub fn push(&mut self, item: Item, now: Instant) -> Vec<Transmit> {
        self.waiting.push_back(item);
        self.fill(now)
    }

    fn fill(&mut self, now: Instant) -> Vec<Transmit> {
        let mut out = Vec::new();
        let rto = self.rto();
        while self.in_flight.len() < WINDOW {
            let Some(item) = self.waiting.pop_front() else {
                break;
            };
            let seq = self.next_seq;
            self.next_seq += 1;
            self.timers.insert((now + rto, seq));
            self.in_flight.insert(
                seq,
                InFlight {
                    item: item.clone(),
                    tries: 1,
                    first_sent: now,
                    due: now + rto,
                    sacked: false,
                },
            );
            out.push(Transmit {
                seq,
                item,
                retransmit: false,
            });
        }
        out
    }

    /// Applies an acknowledgement. Returns the items now delivered (covered
    /// by the cumulative seq) and whatever the freed window lets out.
    pub fn ack(&mut self, cum: u64, sack: u64, now: Instant) -> (Vec<Item>, Vec<Transmit>) {
        let mut delivered = Vec::new();
        let mut rtt = None;
        let rest = match cum.checked_add(1) {
            Some(next) => self.in_flight.split_off(&next),
            None => BTreeMap::new(),
        };
        let done = std::mem::replace(&mut self.in_flight, rest);
        if !done.is_empty() {
            self.progress = Some(now);
        }
        for (s, f) in done {
            self.timers.remove(&(f.due, s));
            if f.tries == 1 && !f.sacked {
                rtt = Some(now.saturating_duration_since(f.first_sent));
            }
            delivered.push(f.item);
        }
        // With no gap (the common case) nothing is selectively acknowledged.
        let window = cum.saturating_add(1)..=cum.saturating_add(64);
        if sack != 0 {
            for (s, f) in self.in_flight.range_mut(window) {
                if sack & (1u64 << (s - cum - 1)) != 0 && !f.sacked {
                    f.sacked = true;
                    self.progress = Some(now);
                    self.timers.remove(&(f.due, *s));
                    if f.tries == 1 {
                        rtt = Some(now.saturating_duration_since(f.first_sent));
                    }
                }
            }
        }
        if let Some(r) = rtt {
            self.sample(r);
        }
        let more = self.fill(now);
        (delivered, more)
    }

    /// Datagrams due for retransmission, or `Err` with every undelivered
    /// item when one has used up its tries (the receiver is unreachable).
    pub fn due(&mut self, now: Instant) -> Result<Vec<Transmit>, Vec<Item>> {
        let rto = self.rto();
        let mut out = Vec::new();
        // In seq order, as they were sent.
        let mut due: Vec<u64> = self
            .timers
            .range(..=(now, u64::MAX))
            .map(|&(_, seq)| seq)
            .collect();
        due.sort_unstable();
        for seq in due {
            let Some(f) = self.in_flight.get_mut(&seq) else {
                continue;
            };
            let stalled = self
                .progress
                .is_none_or(|p| now.saturating_duration_since(p) >= STALLED_AFTER);
            if f.tries >= MAX_TRIES
                && now.saturating_duration_since(f.first_sent) >= GIVE_UP_AFTER
                && stalled
            {
                return Err(self.take_all());
            }
            // Exponential backoff from the current time-out.
            let backoff = rto.saturating_mul(1 << f.tries.min(10)).min(RTO_MAX);
            self.timers.remove(&(f.due, seq));
            f.tries += 1;
            f.due = now + backoff;
            self.timers.insert((f.due, seq));
            out.push(Transmit {
                seq,
                item: f.item.clone(),
                retransmit: true,
            });
        }
        Ok(out)
    }

    fn take_all(&mut self) -> Vec<Item> {
        self.timers.clear();
        let mut all: Vec<Item> = std::mem::take(&mut self.in_flight)
            .into_values()
            .map(|f| f.item)
            .collect();
        all.extend(self.waiting.drain(..));
        all
    }

    /// Starts over on a new stream (the receiver is a new incarnation that
    /// expects seq 1): everything not yet delivered is sent again, in order.
    pub fn reset(&mut self, id: u64, now: Instant) -> Vec<Transmit> {
        let pending = self.take_all();
        self.id = id;
        self.next_seq = 1;
        self.progress = None;
        self.waiting = pending.into();
        self.fill(now)
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.timers.first().map(|&(due, _)| due)
    }

    pub fn idle(&self) -> bool {
        self.in_flight.is_empty() && self.waiting.is_empty()
    }
}

/// What a receiver made of one DATA datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// New: these items are now deliverable, in order.
    Deliver(Vec<Item>),
    /// Already had it (a retransmission or a replay): drop, but re-ack.
    Duplicate,
    /// From a stream older than the current one: a replay; drop, no ack.
    Stale,
    /// Too far ahead to buffer; the sender will retransmit.
    OutOfWindow,
}

/// The receiving half.
pub struct RecvStream {
    pub id: u64,
    expected: u64,
    ahead: BTreeMap<u64, Item>,
}

impl RecvStream {
    pub fn new(id: u64) -> RecvStream {
        RecvStream {
            id,
            expected: 1,
            ahead: BTreeMap::new(),
        }
    }

    /// Handles DATA `seq` on stream `stream` (a newer stream id replaces
    /// this one: the sender started over).
    pub fn receive(&mut self, stream: u64, seq: u64, item: Item) -> Received {
        if stream < self.id {
            return Received::Stale;
        }
        if stream > self.id {
            *self = RecvStream::new(stream);
        }
        if seq < self.expected || self.ahead.contains_key(&seq) {
            return Received::Duplicate;
        }
        if seq - self.expected >= RECV_WINDOW {
            return Received::OutOfWindow;
        }
        self.ahead.insert(seq, item);
        let mut ready = Vec::new();
        while let Some(item) = self.ahead.remove(&self.expected) {
            ready.push(item);
            self.expected += 1;
        }
        Received::Deliver(ready)
    }

    /// The acknowledgement to send: cumulative seq and selective bitmap.
    pub fn ack(&self) -> (u64, u64) {
        let cum = self.expected - 1;
        let mut sack = 0u64;
        for &s in self.ahead.range(cum + 2..=cum + 64).map(|(s, _)| s) {
            sack |= 1u64 << (s - cum - 1);
        }
        (cum, sack)
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
