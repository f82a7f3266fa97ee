//! IP multicast for rooms (`--room-transport`): where a LAN allows it, a
//! sender sends each DATA datagram once to the room's group, and a member
//! whose copies come that way needs no copy of its own.
//!
//! Nothing is trusted to the group: it only saves datagrams.
//! - Every room has a group address, the same for every peer: 239.192.0.0/14
//!   (organisation-local scope) plus the low 18 bits of the FNV-1a hash of
//!   the room's name, on port [`GROUP_PORT`] ([`group_of`]).
//! - A sender sends each seq of its stream to the group the first time it
//!   sends it to anyone; retransmissions (repairs) always go unicast.
//! - A member says in its ACKs (flag `02`) whether the sender's group copies
//!   reach it, and says so only once one has: the sender keeps sending
//!   unicast to every member that has not said so, so a network that drops
//!   multicast costs one datagram per message, never a message.
//! - A member that stops hearing the group falls back on its own: when
//!   [`FALLBACK_RUN`] DATA datagrams in a row from a sender came unicast
//!   (the sender's repairs) and none by the group for [`FALLBACK_QUIET`],
//!   it drops the flag, in an ACK sent at once. It takes the flag again
//!   when a group copy arrives.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

/// The UDP port of every room's group.
pub const GROUP_PORT: u16 = 47447;
/// DATA datagrams in a row from one sender that came unicast…
pub const FALLBACK_RUN: u32 = 4;
/// …with no group copy from it for this long: its group copies no longer
/// reach us. (Taken for a loss, it costs a few datagrams: the next group
/// copy that arrives puts the flag back.)
pub const FALLBACK_QUIET: Duration = Duration::from_millis(250);

/// The group of `room`: 239.192.0.0/14 plus the low 18 bits of the 32-bit
/// FNV-1a hash of its name's bytes, on `port`.
pub fn group_of(room: &str, port: u16) -> SocketAddr {
    let mut h: u32 = 0x811c_9dc5;
    for b in room.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let base = u32::from(Ipv4Addr::new(239, 192, 0, 0));
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::from(base | (h & 0x3_ffff)),
        port,
    ))
}

/// Whether one sender's group copies reach us.
#[derive(Debug, Default)]
pub(super) struct Hearing {
    /// What our ACKs to it say (flag `02`).
    pub hears: bool,
    /// DATA from it that came unicast since the last by the group.
    unicast_run: u32,
    last_group: Option<Instant>,
}

impl Hearing {
    /// A DATA datagram from the sender arrived (`group`: by the group).
    /// True when what our ACKs say changes.
    pub fn arrived(&mut self, group: bool, now: Instant) -> bool {
        if group {
            self.unicast_run = 0;
            self.last_group = Some(now);
            return !std::mem::replace(&mut self.hears, true);
        }
        self.unicast_run = self.unicast_run.saturating_add(1);
        let quiet = self
            .last_group
            .is_none_or(|t| now.saturating_duration_since(t) >= FALLBACK_QUIET);
        if self.hears && self.unicast_run >= FALLBACK_RUN && quiet {
            self.hears = false;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_addresses_are_organisation_local_and_fixed() {
        // The example in protocol.md section 4.
        assert_eq!(
            group_of("lab", GROUP_PORT).to_string(),
            "239.192.146.244:47447"
        );
        for room in ["lab", "general", "a", "x".repeat(32).as_str()] {
            let SocketAddr::V4(a) = group_of(room, 1) else {
                panic!("not v4")
            };
            let o = a.ip().octets();
            assert_eq!(o[0], 239);
            assert_eq!(o[1] & 0xfc, 192, "{room}: {a}");
        }
        assert_ne!(group_of("lab", 1), group_of("lab2", 1));
    }

    #[test]
    fn hearing_is_claimed_on_a_group_copy_and_dropped_after_a_quiet_run() {
        let t0 = Instant::now();
        let mut h = Hearing::default();
        // Unicast alone never claims it.
        for i in 0..10 {
            assert!(!h.arrived(false, t0 + Duration::from_millis(i)));
        }
        assert!(h.arrived(true, t0));
        assert!(h.hears);
        // Repairs between group copies keep it.
        for i in 0..20 {
            assert!(!h.arrived(false, t0 + Duration::from_millis(10 * i)));
        }
        assert!(!h.arrived(true, t0 + Duration::from_millis(300)));
        // A run of unicast, but the last group copy is recent: kept.
        let t1 = t0 + Duration::from_millis(300);
        for i in 1..=FALLBACK_RUN {
            assert!(!h.arrived(false, t1 + Duration::from_millis(u64::from(i))));
        }
        // Still nothing by the group a while later: dropped, once.
        assert!(h.arrived(false, t1 + FALLBACK_QUIET));
        assert!(!h.hears);
        assert!(!h.arrived(false, t1 + FALLBACK_QUIET * 2));
        // Back when a group copy comes again.
        assert!(h.arrived(true, t1 + FALLBACK_QUIET * 3));
    }
}
