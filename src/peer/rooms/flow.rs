//! The sending end of a room stream: the [`Outbox`] (one stream per room,
//! each message sealed once and kept until every member has it) and, per
//! member, a [`Flow`]: what that member has acknowledged, what it is owed,
//! its round-trip time, its congestion window and its retransmissions.
//! Pure state machines (the caller passes `now`).
//!
//! A member's window bounds how far past its acknowledgement we send to
//! it: new messages beyond it wait (for that member only) until its acks
//! open the window again, so a slow member gets its messages late and the
//! others are not held back. The window halves on a loss (at most once per
//! 4 round trips, 50 ms at least) and on a time-out, and grows by one message per window of
//! acknowledged ones (by one per acknowledged message below `ssthresh`).
//! Retransmissions are what the member reported missing (never sent again
//! sooner than half a round trip after the last send), plus, on a time-out
//! (RFC 6298 from measured round trips, with a floor), every outstanding
//! one the member did not report holding; they go out at most [`RETX_BURST`] per
//! [`pace`](Flow::pace).

use super::stream::Item;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Time-out before the first round-trip sample.
pub const RTO_INITIAL: Duration = Duration::from_millis(100);
/// The time-out's floor: a receiver acknowledges within
/// [`ACK_DELAY`](super::stream::ACK_DELAY), so less would only make
/// duplicates.
pub const RTO_MIN: Duration = Duration::from_millis(50);
pub const RTO_MAX: Duration = Duration::from_secs(1);
/// A member with messages outstanding that acknowledged nothing new for
/// this long is unreachable.
pub const STALLED_AFTER: Duration = Duration::from_secs(10);
/// Window bounds, in messages (datagrams).
pub const CWND_INITIAL: f64 = 64.0;
/// Twice [`ACK_EVERY`](super::stream::ACK_EVERY): a window never waits
/// for a delayed acknowledgement.
pub const CWND_MIN: f64 = 32.0;
pub const CWND_MAX: f64 = 1024.0;
/// Retransmissions to one member per pacing interval.
pub const RETX_BURST: usize = 32;
/// Messages kept for retransmission per room; a member that falls further
/// behind is given up on.
pub const OUTBOX_MAX: usize = 16384;

/// One message of the room's stream, with its sealed bytes (sealed once,
/// again only under a new key epoch).
pub struct Sent {
    pub item: Item,
    pub sealed: Option<(u64, Vec<u8>)>,
}

/// The room's stream: one id, seqs from 1, and the messages not yet
/// acknowledged by every member.
pub struct Outbox {
    pub id: u64,
    pub next_seq: u64,
    pub buf: BTreeMap<u64, Sent>,
}

impl Outbox {
    pub fn new(id: u64) -> Outbox {
        Outbox {
            id,
            next_seq: 1,
            buf: BTreeMap::new(),
        }
    }

    /// Appends an item; returns its seq.
    pub fn push(&mut self, item: Item) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.buf.insert(seq, Sent { item, sealed: None });
        seq
    }

    /// The last seq handed out (0 before the first).
    pub fn last(&self) -> u64 {
        self.next_seq - 1
    }

    /// Forgets everything at or below `seq` (every member has it).
    pub fn trim(&mut self, seq: u64) {
        if self
            .buf
            .first_key_value()
            .is_none_or(|(&first, _)| first > seq)
        {
            return;
        }
        self.buf = self.buf.split_off(&(seq + 1));
    }
}

struct Out {
    last_sent: Instant,
    tries: u32,
    /// The member said it has it (above a gap): not sent again.
    held: bool,
}

/// What we owe one member of a room, and how fast we may send it.
pub struct Flow {
    /// Every seq up to this is acknowledged (or was never this member's:
    /// it joined later).
    pub acked: u64,
    /// The highest seq sent to it at least once.
    pub sent_upto: u64,
    out: BTreeMap<u64, Out>,
    retx: BTreeSet<u64>,
    cwnd: f64,
    ssthresh: f64,
    srtt: Option<Duration>,
    rttvar: Duration,
    backoff: u32,
    last_progress: Instant,
    rto_at: Option<Instant>,
    pace_at: Instant,
    last_cut: Option<Instant>,
    /// When we last sent it a SYNC (they are rate-limited).
    pub synced_at: Option<Instant>,
}

impl Flow {
    /// A member owed every seq after `base`.
    pub fn new(base: u64, now: Instant) -> Flow {
        Flow {
            acked: base,
            sent_upto: base,
            out: BTreeMap::new(),
            retx: BTreeSet::new(),
            cwnd: CWND_INITIAL,
            ssthresh: CWND_MAX,
            srtt: None,
            rttvar: Duration::ZERO,
            backoff: 0,
            last_progress: now,
            rto_at: None,
            pace_at: now,
            last_cut: None,
            synced_at: None,
        }
    }

    pub fn rto(&self) -> Duration {
        let base = match self.srtt {
            None => RTO_INITIAL,
            Some(srtt) => (srtt + 4 * self.rttvar).clamp(RTO_MIN, RTO_MAX),
        };
        base.saturating_mul(1 << self.backoff.min(6)).min(RTO_MAX)
    }

    /// The smoothed round trip (the initial time-out before any sample).
    pub fn srtt(&self) -> Duration {
        self.srtt.unwrap_or(RTO_INITIAL)
    }

    /// How long a batch of retransmissions waits for the next.
    pub fn pace(&self) -> Duration {
        (self.srtt() / 2).clamp(Duration::from_millis(1), Duration::from_millis(50))
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

    /// Whether `seq` (the next after `sent_upto`) may go to it now.
    pub fn may_send(&self, seq: u64) -> bool {
        seq == self.sent_upto + 1 && (seq - self.acked) as f64 <= self.cwnd
    }

    /// The last seq its window lets out now.
    pub fn window_end(&self) -> u64 {
        self.acked + self.cwnd as u64
    }

    /// `seq` went to it for the first time.
    pub fn sent(&mut self, seq: u64, now: Instant) {
        // Nothing was outstanding: the silence before this send is not the
        // member's (a room idle for longer than STALLED_AFTER used to make
        // its next message find every member "unreachable" at once).
        if self.out.is_empty() {
            self.last_progress = now;
        }
        self.sent_upto = self.sent_upto.max(seq);
        self.out.insert(
            seq,
            Out {
                last_sent: now,
                tries: 1,
                held: false,
            },
        );
        self.rto_at.get_or_insert(now + self.rto());
    }

    fn cut(&mut self, now: Instant) {
        // Losses within a few round trips are one event (on a LAN most
        // loss is not congestion: one cut per burst of it).
        let quiet = (self.srtt() * 4).max(Duration::from_millis(50));
        if self
            .last_cut
            .is_some_and(|t| now.saturating_duration_since(t) < quiet)
        {
            return;
        }
        self.last_cut = Some(now);
        self.ssthresh = (self.cwnd / 2.0).max(CWND_MIN);
        self.cwnd = self.ssthresh;
    }

    /// Applies its acknowledgement; returns the seqs newly acknowledged
    /// (`old acked + 1 ..= new acked`).
    pub fn ack(
        &mut self,
        cum: u64,
        high: u64,
        missing: &[(u64, u16)],
        now: Instant,
    ) -> std::ops::RangeInclusive<u64> {
        let cum = cum.min(self.sent_upto);
        let before = self.acked;
        if cum > self.acked {
            // Karn: only a seq sent once, and acknowledged as it arrived
            // (not held behind a gap, which would add the repair's time).
            if let Some(o) = self.out.get(&cum).filter(|o| o.tries == 1 && !o.held) {
                let rtt = now.saturating_duration_since(o.last_sent);
                self.sample(rtt);
            }
            self.out = self.out.split_off(&(cum + 1));
            self.retx = self.retx.split_off(&(cum + 1));
            let n = (cum - self.acked) as f64;
            self.cwnd = if self.cwnd < self.ssthresh {
                self.cwnd + n
            } else {
                self.cwnd + n / self.cwnd
            }
            .min(CWND_MAX);
            self.acked = cum;
            self.backoff = 0;
            self.last_progress = now;
            self.rto_at = (!self.out.is_empty()).then(|| now + self.rto());
        }
        // Everything reported up to `high` but the missing ranges is held.
        let mut lost = false;
        let mut gaps = missing
            .iter()
            .map(|&(first, count)| (first, first.saturating_add(u64::from(count))))
            .peekable();
        // Not sent again while it may still be on its way (reordered).
        let pace_floor = self.srtt() / 2;
        let mut heard = false;
        for (&seq, o) in self.out.range_mut(..=high.min(self.sent_upto)) {
            while gaps.peek().is_some_and(|&(_, end)| end <= seq) {
                gaps.next();
            }
            let is_missing = gaps.peek().is_some_and(|&(first, _)| first <= seq);
            if !is_missing {
                if !o.held {
                    o.held = true;
                    self.last_progress = now;
                    // It hears us: what is outstanding is waiting on a
                    // repair or on its next acknowledgement, not lost
                    // (RFC 6298 5.3, with selective acknowledgements).
                    heard = true;
                }
                self.retx.remove(&seq);
            } else if now.saturating_duration_since(o.last_sent) >= pace_floor {
                lost |= self.retx.insert(seq);
            }
        }
        if heard {
            self.rto_at = Some(now + self.rto());
        }
        if lost {
            self.cut(now);
        }
        before + 1..=self.acked
    }

    /// Time passing: a time-out queues again every outstanding seq the
    /// member did not say it holds (a lost tail of the window, which no
    /// NACK can report, is repaired in one time-out, paced, not one seq
    /// per time-out); returns the retransmissions that may go out now.
    pub fn due(&mut self, now: Instant) -> Vec<u64> {
        if self.rto_at.is_some_and(|t| t <= now) {
            // Not what went out too recently for its acknowledgement to
            // be back (a time-out restarted by the member's last report
            // fires while the next is on its way): it is due when it is
            // no longer recent, if still unacknowledged.
            let recent = self.srtt();
            let mut lost = Vec::new();
            let mut young: Option<Instant> = None;
            for (&seq, o) in self.out.iter().filter(|(_, o)| !o.held) {
                if now.saturating_duration_since(o.last_sent) >= recent {
                    lost.push(seq);
                } else {
                    young = Some(young.map_or(o.last_sent, |t| t.min(o.last_sent)));
                }
            }
            let next = if lost.is_empty() {
                young.map(|t| t + recent)
            } else {
                self.retx.extend(lost);
                self.cut(now);
                self.backoff += 1;
                None
            };
            self.rto_at = (!self.out.is_empty()).then(|| next.unwrap_or(now + self.rto()));
        }
        if self.retx.is_empty() || now < self.pace_at {
            return Vec::new();
        }
        let mut out = Vec::new();
        while out.len() < RETX_BURST {
            let Some(seq) = self.retx.pop_first() else {
                break;
            };
            if let Some(o) = self.out.get_mut(&seq) {
                o.last_sent = now;
                o.tries += 1;
                out.push(seq);
            }
        }
        self.pace_at = now + self.pace();
        out
    }

    /// The room has a new key: what is outstanding may have been dropped
    /// under the old one, so the first of it goes again now, under the new
    /// one, and the time-out starts over.
    pub fn rekeyed(&mut self, now: Instant) {
        self.backoff = 0;
        if !self.out.is_empty() {
            self.rto_at = Some(now);
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        let retx = (!self.retx.is_empty()).then_some(self.pace_at);
        [self.rto_at, retx].into_iter().flatten().min()
    }

    /// Nothing outstanding or owed up to `last`.
    pub fn idle(&self, last: u64) -> bool {
        self.acked >= last
    }

    /// When it will count as stalled, if nothing changes.
    pub fn stall_at(&self) -> Option<Instant> {
        (!self.out.is_empty()).then_some(self.last_progress + STALLED_AFTER)
    }

    /// Outstanding messages and no progress for [`STALLED_AFTER`].
    pub fn stalled(&self, now: Instant) -> bool {
        !self.out.is_empty() && now.saturating_duration_since(self.last_progress) >= STALLED_AFTER
    }
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod tests;
