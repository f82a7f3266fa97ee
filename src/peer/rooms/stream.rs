//! The receiving end of one sender's stream in a room: in-order,
//! exactly-once delivery, and when to acknowledge. A pure state machine (the
//! caller passes `now`), tested deterministically.
//!
//! A sender has one stream per room, numbered from seq 1, and sends each
//! DATA to every member. A receiver delivers seq `expected` and then
//! whatever it buffered after it, and drops duplicates by seq — never by
//! content, so two identical texts are two messages. It does not answer
//! every DATA: it reports a gap at once (a NACK: the ACK's missing ranges),
//! repeats the report while the gap stays open, and otherwise acknowledges
//! cumulatively every [`ACK_EVERY`] deliveries or [`ACK_DELAY`] after the
//! first unacknowledged one. A member that joined while the stream ran
//! does not know its first seq: until the sender's SYNC says so it buffers
//! and asks (`unsynced`), delivering nothing.

use crate::protocol::datagram::{EventKind, MAX_RANGES};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How far ahead of `expected` a receiver buffers out-of-order datagrams.
pub const RECV_WINDOW: u64 = 1024;
/// Acknowledge after this many deliveries…
pub const ACK_EVERY: u32 = 16;
/// …or this long after the first unacknowledged one.
pub const ACK_DELAY: Duration = Duration::from_millis(20);
/// Acknowledgements of one stream go out at most this often (a burst of
/// gaps makes one report, not one per datagram)…
pub const ACK_SPACING: Duration = Duration::from_millis(5);
/// A gap is reported this long after it is seen (a datagram only
/// overtaken by the next arrives within it)…
pub const REORDER_GRACE: Duration = Duration::from_millis(5);
/// …and a report of missing seqs (or a request for a SYNC) is repeated
/// this long after the last while the gap stays open.
pub const NACK_REPEAT: Duration = Duration::from_millis(20);

/// One sequenced item: an event or one fragment of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub event: EventKind,
    pub msg_id: u64,
    pub frag: u16,
    pub frags: u16,
    pub bytes: Vec<u8>,
    /// Delivered as part of what we missed while away (its seq is within
    /// the sender's LATE notice); set by the receiver only.
    pub late: bool,
}

/// What a receiver made of one DATA datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// New: these items are now deliverable, in order (maybe none yet).
    Deliver(Vec<Item>),
    /// Already had it (a retransmission or a replay): dropped.
    Duplicate,
    /// Too far ahead to buffer; the sender will send it again.
    OutOfWindow,
}

/// What an acknowledgement says (see `Body::Ack`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub cum: u64,
    pub high: u64,
    pub unsynced: bool,
    pub missing: Vec<(u64, u16)>,
}

/// The receiving half of one sender's stream.
pub struct RecvStream {
    pub id: u64,
    /// The next seq to deliver; `None` until we know where the stream
    /// starts for us (seq 1, or the sender's SYNC).
    expected: Option<u64>,
    ahead: BTreeMap<u64, Item>,
    /// Highest seq received.
    high: u64,
    /// Deliveries since the last acknowledgement.
    unacked: u32,
    /// When the next acknowledgement is due, if one is.
    pub ack_at: Option<Instant>,
    last_ack: Option<Instant>,
    /// Seqs up to this were sent while we were away (the sender's LATE
    /// notice): they are delivered marked late.
    late_upto: u64,
}

impl RecvStream {
    pub fn new(id: u64) -> RecvStream {
        RecvStream {
            id,
            expected: None,
            ahead: BTreeMap::new(),
            high: 0,
            unacked: 0,
            ack_at: None,
            last_ack: None,
            late_upto: 0,
        }
    }

    /// The sender's LATE notice: what we get of seqs up to `upto` was
    /// sent while we were away.
    pub fn late(&mut self, upto: u64) {
        self.late_upto = self.late_upto.max(upto);
    }

    /// Asks for an acknowledgement at `at` at the latest (never sooner
    /// than [`ACK_SPACING`] after the last).
    fn schedule(&mut self, at: Instant) {
        let at = match self.last_ack {
            Some(last) => at.max(last + ACK_SPACING),
            None => at,
        };
        self.ack_at = Some(self.ack_at.map_or(at, |t| t.min(at)));
    }

    /// Handles DATA `seq`.
    pub fn receive(&mut self, seq: u64, item: Item, now: Instant) -> Received {
        if seq == 1 && self.expected.is_none() {
            self.expected = Some(1);
        }
        let Some(expected) = self.expected else {
            // Not synced: keep it (bounded) and ask where we start.
            if self.ahead.contains_key(&seq) {
                return Received::Duplicate;
            }
            if self.ahead.len() as u64 >= RECV_WINDOW {
                return Received::OutOfWindow;
            }
            self.ahead.insert(seq, item);
            self.high = self.high.max(seq);
            self.schedule(now);
            return Received::Deliver(Vec::new());
        };
        if seq < expected || self.ahead.contains_key(&seq) {
            // The sender may have missed our acknowledgement.
            self.schedule(now + ACK_DELAY);
            return Received::Duplicate;
        }
        if seq - expected >= RECV_WINDOW {
            return Received::OutOfWindow;
        }
        // A seq past the highest with a hole before it: a new gap, said
        // as soon as a datagram merely overtaken would have come.
        if seq > self.high.max(expected - 1) + 1 {
            self.schedule(now + REORDER_GRACE);
        }
        self.high = self.high.max(seq);
        if seq == expected {
            // The next one: delivered without a stay in `ahead`.
            return Received::Deliver(self.drain_after(now, Some(item)));
        }
        self.ahead.insert(seq, item);
        Received::Deliver(self.drain(now))
    }

    fn drain(&mut self, now: Instant) -> Vec<Item> {
        self.drain_after(now, None)
    }

    /// Delivers `first` (seq `expected`, if given), then what `ahead`
    /// holds in order after it.
    fn drain_after(&mut self, now: Instant, first: Option<Item>) -> Vec<Item> {
        let Some(mut expected) = self.expected else {
            return Vec::new();
        };
        let mut ready = Vec::new();
        if let Some(mut item) = first {
            item.late = expected <= self.late_upto;
            ready.push(item);
            expected += 1;
        }
        while let Some(mut item) = self.ahead.remove(&expected) {
            item.late = expected <= self.late_upto;
            ready.push(item);
            expected += 1;
        }
        self.expected = Some(expected);
        self.high = self.high.max(expected - 1);
        if !ready.is_empty() {
            self.unacked += ready.len() as u32;
            if self.unacked >= ACK_EVERY {
                self.schedule(now);
            } else {
                self.schedule(now + ACK_DELAY);
            }
        }
        ready
    }

    /// The sender's SYNC: our part of the stream starts at `next`. Taken
    /// when we did not know, or when it is ahead of us (the sender dropped
    /// us for a while and let us back in: what it sent meanwhile is not
    /// ours). Returns what is now deliverable.
    pub fn sync(&mut self, next: u64, now: Instant) -> Vec<Item> {
        if self.expected.is_some_and(|e| e >= next) || next == 0 {
            return Vec::new();
        }
        self.expected = Some(next);
        self.ahead = self.ahead.split_off(&next);
        self.schedule(now + ACK_DELAY);
        self.drain(now)
    }

    /// Whether an acknowledgement is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.ack_at.is_some_and(|t| t <= now)
    }

    /// The acknowledgement to send now; schedules its repetition while a
    /// gap stays open (or we are not synced).
    pub fn report(&mut self, now: Instant) -> Report {
        self.last_ack = Some(now);
        self.unacked = 0;
        let Some(expected) = self.expected else {
            self.ack_at = Some(now + NACK_REPEAT);
            return Report {
                cum: 0,
                high: self.high,
                unsynced: true,
                missing: Vec::new(),
            };
        };
        let cum = expected - 1;
        let mut missing = Vec::new();
        let mut next = expected;
        let mut high = self.high.max(cum);
        for &s in self.ahead.keys() {
            if s > next && missing.len() == MAX_RANGES {
                // No room to list this gap: say nothing past it.
                high = next - 1;
                break;
            }
            if s > next {
                let count = (s - next).min(u64::from(u16::MAX));
                missing.push((next, count as u16));
            }
            next = s + 1;
        }
        self.ack_at = (!missing.is_empty()).then_some(now + NACK_REPEAT);
        Report {
            cum,
            high,
            unsynced: false,
            missing,
        }
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
