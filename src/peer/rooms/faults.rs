//! A fault injector on the peer's own room-datagram send path (the room
//! engine's transmit queue), for tests and for showing the reliability live
//! in class: drop, duplicate or delay (reorder) outgoing datagrams with
//! given probabilities. Off unless `--faults` or `LANCHAT_FAULTS` is given.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::net::SocketAddr;
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

/// The engine's outgoing datagram queue, applying the faults. Randomness
/// comes from a seeded generator, so a run with faults is reproducible.
pub struct Injector {
    faults: Faults,
    rng: StdRng,
    ready: VecDeque<(SocketAddr, Vec<u8>)>,
    delayed: Vec<(Instant, SocketAddr, Vec<u8>)>,
    pub dropped: u64,
    pub duplicated: u64,
    pub reordered: u64,
}

impl Injector {
    pub fn new(faults: Faults, seed: u64) -> Injector {
        Injector {
            faults,
            rng: StdRng::seed_from_u64(seed),
            ready: VecDeque::new(),
            delayed: Vec::new(),
            dropped: 0,
            duplicated: 0,
            reordered: 0,
        }
    }

    /// Queues a datagram for sending (or drops, doubles or holds it back).
    pub fn send(&mut self, to: SocketAddr, bytes: Vec<u8>, now: Instant) {
        if !self.faults.any() {
            self.ready.push_back((to, bytes));
            return;
        }
        if self.rng.gen_bool(self.faults.drop) {
            self.dropped += 1;
            return;
        }
        if self.rng.gen_bool(self.faults.dup) {
            self.duplicated += 1;
            self.ready.push_back((to, bytes.clone()));
        }
        if self.rng.gen_bool(self.faults.reorder) {
            // Held back 1-20 ms, so later datagrams overtake it.
            self.reordered += 1;
            let delay = Duration::from_millis(self.rng.gen_range(1..=20));
            self.delayed.push((now + delay, to, bytes));
        } else {
            self.ready.push_back((to, bytes));
        }
    }

    /// Moves the held-back datagrams that are due to the send queue.
    pub fn release(&mut self, now: Instant) {
        if self.delayed.is_empty() {
            return;
        }
        let (due, later): (Vec<_>, Vec<_>) =
            self.delayed.drain(..).partition(|(t, _, _)| *t <= now);
        self.delayed = later;
        self.ready
            .extend(due.into_iter().map(|(_, to, bytes)| (to, bytes)));
    }

    /// The next datagram to put on the wire.
    pub fn pop(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.ready.pop_front()
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.delayed.iter().map(|(t, _, _)| *t).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let f: Faults = "drop=0.3,dup=0.3,reorder=0.3".parse().unwrap();
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let t0 = Instant::now();
        let run = |seed| {
            let mut inj = Injector::new(f.clone(), seed);
            for n in 0..100u8 {
                inj.send(to, vec![n], t0);
            }
            inj.release(t0 + Duration::from_millis(20));
            std::iter::from_fn(|| inj.pop()).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

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
