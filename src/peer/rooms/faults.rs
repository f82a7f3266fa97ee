//! A fault injector on the peer's own room-datagram send path, for tests and
//! for showing the reliability live in class: drop, duplicate or delay
//! (reorder) outgoing datagrams with given probabilities. Off unless
//! `--faults` or `LANCHAT_FAULTS` is given.

use rand::Rng;
use std::net::{SocketAddr, UdpSocket};
use std::str::FromStr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    pub drop: f64,
    pub dup: f64,
    pub reorder: f64,
}

impl Faults {
    pub fn any(&self) -> bool {
        self.drop > 0.0 || self.dup > 0.0 || self.reorder > 0.0
    }
}

impl FromStr for Faults {
    type Err = String;

    /// `drop=0.1,dup=0.05,reorder=0.1` (probabilities from 0 to 1).
    fn from_str(s: &str) -> Result<Faults, String> {
        let mut f = Faults::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("expected NAME=P, got {part:?}"))?;
            let p: f64 = v.parse().map_err(|_| format!("not a probability: {v:?}"))?;
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{k}={v}: a probability is between 0 and 1"));
            }
            match k {
                "drop" => f.drop = p,
                "dup" => f.dup = p,
                "reorder" => f.reorder = p,
                _ => return Err(format!("unknown fault {k:?} (drop, dup, reorder)")),
            }
        }
        Ok(f)
    }
}

/// Sends datagrams, applying the faults.
pub struct Injector {
    faults: Faults,
    delayed: Vec<(Instant, SocketAddr, Vec<u8>)>,
    pub dropped: u64,
    pub duplicated: u64,
    pub reordered: u64,
}

impl Injector {
    pub fn new(faults: Faults) -> Injector {
        Injector {
            faults,
            delayed: Vec::new(),
            dropped: 0,
            duplicated: 0,
            reordered: 0,
        }
    }

    pub fn send(&mut self, udp: &UdpSocket, to: SocketAddr, bytes: Vec<u8>, now: Instant) {
        if !self.faults.any() {
            raw_send(udp, to, &bytes);
            return;
        }
        let mut rng = rand::thread_rng();
        if rng.gen_bool(self.faults.drop) {
            self.dropped += 1;
            return;
        }
        if rng.gen_bool(self.faults.dup) {
            self.duplicated += 1;
            raw_send(udp, to, &bytes);
        }
        if rng.gen_bool(self.faults.reorder) {
            // Held back 1-20 ms, so later datagrams overtake it.
            self.reordered += 1;
            let delay = Duration::from_millis(rng.gen_range(1..=20));
            self.delayed.push((now + delay, to, bytes));
        } else {
            raw_send(udp, to, &bytes);
        }
    }

    /// Sends the held-back datagrams that are due.
    pub fn release(&mut self, udp: &UdpSocket, now: Instant) {
        if self.delayed.is_empty() {
            return;
        }
        let (due, later): (Vec<_>, Vec<_>) =
            self.delayed.drain(..).partition(|(t, _, _)| *t <= now);
        self.delayed = later;
        for (_, to, bytes) in due {
            raw_send(udp, to, &bytes);
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.delayed.iter().map(|(t, _, _)| *t).min()
    }
}

fn raw_send(udp: &UdpSocket, to: SocketAddr, bytes: &[u8]) {
    if let Err(e) = udp.send_to(bytes, to) {
        // UDP: a failed send is a lost datagram; retransmission covers it.
        log::debug!("datagram to {to}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            "drop=0.1, dup=0.05,reorder=1".parse::<Faults>(),
            Ok(Faults {
                drop: 0.1,
                dup: 0.05,
                reorder: 1.0
            })
        );
        assert!("drop=2".parse::<Faults>().is_err());
        assert!("loss=0.1".parse::<Faults>().is_err());
        assert_eq!("".parse::<Faults>(), Ok(Faults::default()));
    }
}
