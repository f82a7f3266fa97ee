//! Issue 16's room workload, as figures: the same for ngircd ([`irc_run`])
//! and for lanchat ([`lecture`]), computed once from when each line was
//! handed over and when its last member got it, and shown as one table row.

use super::*;

/// What one room size's run of the workload measured.
#[derive(Default)]
pub struct Fanout {
    pub members: usize,
    /// Offered paced rate (messages/s).
    pub rate: f64,
    pub paced: usize,
    /// Paced rate actually handed over.
    pub achieved: f64,
    /// Paced messages every member got.
    pub paced_complete: usize,
    pub paced_lat: Lat,
    pub burst: usize,
    /// Burst messages every member got.
    pub burst_complete: usize,
    /// First burst line handed over → last member's last burst line.
    pub burst_secs: f64,
    pub burst_lat: Lat,
    /// (message, member) pairs never delivered.
    pub lost: usize,
    pub dups: u64,
    /// Lines that arrived after a later one.
    pub reordered: u64,
}

/// The table's columns for [`Fanout::cells`], after "members" and before
/// the CPU column.
pub const FANOUT_COLUMNS: [&str; 11] = [
    "offered/s",
    "sent/s",
    "paced done",
    "p50",
    "p99",
    "max",
    "burst done",
    "burst time",
    "deliveries/s",
    "burst p99",
    "lost/dup/reord",
];

impl Fanout {
    /// The timing figures of a run of `paced` then `burst` lines: `sent[i]`
    /// is when line `i` was handed over, `last[i]` when its last member got
    /// it (both in ns on one clock), and `complete(i)` whether every member
    /// got it; latencies count complete lines only. Loss, duplicates and
    /// reordering are the caller's to fill in.
    pub fn timed(
        members: usize,
        rate: f64,
        (paced, burst): (usize, usize),
        sent: &[u64],
        last: &[u64],
        complete: &dyn Fn(usize) -> bool,
    ) -> Fanout {
        let total = paced + burst;
        let lat = |r: std::ops::Range<usize>| {
            lat_ns(
                r.filter(|&i| complete(i))
                    .map(|i| last[i].saturating_sub(sent[i]))
                    .collect(),
            )
        };
        let achieved = if paced > 1 && sent[paced - 1] > sent[0] {
            (paced - 1) as f64 / ((sent[paced - 1] - sent[0]) as f64 / 1e9)
        } else {
            0.0
        };
        let burst_secs = if burst > 0 && sent[paced] > 0 {
            let end = last[paced..total].iter().copied().max().unwrap_or(0);
            end.saturating_sub(sent[paced]) as f64 / 1e9
        } else {
            0.0
        };
        Fanout {
            members,
            rate,
            paced,
            achieved,
            paced_complete: (0..paced).filter(|&i| complete(i)).count(),
            paced_lat: lat(0..paced),
            burst,
            burst_complete: (paced..total).filter(|&i| complete(i)).count(),
            burst_secs,
            burst_lat: lat(paced..total),
            ..Fanout::default()
        }
    }

    pub fn receivers(&self) -> usize {
        self.members.saturating_sub(1)
    }

    pub fn deliveries_per_sec(&self) -> f64 {
        if self.burst_secs > 0.0 {
            (self.burst_complete * self.receivers()) as f64 / self.burst_secs
        } else {
            0.0
        }
    }

    pub fn delivered_pct(&self) -> f64 {
        let all = (self.paced + self.burst) * self.receivers();
        if all == 0 {
            return 0.0;
        }
        100.0 * (all - self.lost.min(all)) as f64 / all as f64
    }

    /// One table row: the members, [`FANOUT_COLUMNS`], then `cpu`.
    pub fn cells(&self, cpu: f64) -> Vec<String> {
        vec![
            self.members.to_string(),
            format!("{}", self.rate),
            fmt_rate(self.achieved),
            format!("{}/{}", self.paced_complete, self.paced),
            fmt_us(self.paced_lat.p50),
            fmt_us(self.paced_lat.p99),
            fmt_us(self.paced_lat.max),
            format!("{}/{}", self.burst_complete, self.burst),
            format!("{:.3} s", self.burst_secs),
            fmt_rate(self.deliveries_per_sec()),
            fmt_us(self.burst_lat.p99),
            format!("{}/{}/{}", self.lost, self.dups, self.reordered),
            format!("{:.2}", cpu),
        ]
    }

    /// The table's header: "members", [`FANOUT_COLUMNS`], `cpu`.
    pub fn header(cpu: &'static str) -> Vec<&'static str> {
        let mut h = vec!["members"];
        h.extend(FANOUT_COLUMNS);
        h.push(cpu);
        h
    }
}
