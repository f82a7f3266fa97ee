//! Issue 16's idle target: what a room costs its members when nobody
//! talks (liveness and acknowledgements only), per peer, measured on the
//! `lecture` section's room after it settled and before its first line.
//!
//! CPU is every peer's utime+stime over the window (clock ticks, so a
//! figure below one tick per peer per window reads as 0); datagrams are the
//! kernel's `Udp: OutDatagrams` counter of the bench's network namespace
//! (`/proc/net/snmp`) over the same window: the room's traffic, the
//! registry heartbeats (one a second per peer) and anything else on the
//! machine's loopback at the time.

use super::*;

/// The idle figures of one room.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdleRoom {
    pub members: usize,
    pub secs: f64,
    /// All peers together, in cores.
    pub cores: f64,
    /// UDP datagrams sent per second in the namespace (all sockets).
    pub datagrams_per_sec: Option<f64>,
}

impl IdleRoom {
    /// Share of one core per peer, in percent.
    pub fn per_peer_pct(&self) -> f64 {
        100.0 * self.cores / self.members.max(1) as f64
    }

    /// The target: under 1% of a core per peer.
    pub fn met(&self) -> bool {
        self.per_peer_pct() < 1.0
    }

    pub fn json(&self) -> Value {
        json!({
            "members": self.members, "secs": round2(self.secs),
            "peer_cpu_cores_total": (self.cores * 1e4).round() / 1e4,
            "per_peer_core_percent": (self.per_peer_pct() * 1e3).round() / 1e3,
            "udp_out_datagrams_per_sec": self.datagrams_per_sec.map(|d| d.round()),
        })
    }

    pub fn line(&self) -> String {
        format!(
            "{} members idle for {:.0} s: peers use {:.3} cores together, {:.3}% of a core each; {} UDP datagrams/s sent on the host",
            self.members,
            self.secs,
            self.cores,
            self.per_peer_pct(),
            self.datagrams_per_sec
                .map_or("?".into(), |d| group(d.round() as u64))
        )
    }
}

/// `Udp: OutDatagrams` of this network namespace.
pub fn udp_out_datagrams() -> Option<u64> {
    let s = fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = s.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let i = names.split_whitespace().position(|f| f == "OutDatagrams")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// Lets the room settle for `settle`, then measures it idle for `window`
/// (both bounded in time; the hub's events are handled meanwhile).
pub fn idle_room(hub: &mut Hub, members: usize, settle: Duration, window: Duration) -> IdleRoom {
    hub.pump_for(settle);
    let (t, k0, d0) = (Instant::now(), hub.cpu_ticks_all(), udp_out_datagrams());
    hub.pump_for(window);
    let secs = t.elapsed().as_secs_f64();
    let ticks = hub.cpu_ticks_all().saturating_sub(k0);
    let d1 = udp_out_datagrams();
    hub.clear_pending();
    IdleRoom {
        members,
        secs,
        cores: ticks as f64 / clk_tck() as f64 / secs,
        datagrams_per_sec: d0.zip(d1).map(|(a, b)| b.saturating_sub(a) as f64 / secs),
    }
}
