//! Heartbeats and time-outs.
//!
//! Heartbeats (UDP datagrams or `heartbeat` requests) are collected in memory
//! and written to the store in one batch every [`FLUSH_EVERY`], so ten
//! thousand peers cost one write a tick, not ten thousand. The same thread
//! sweeps sessions whose heartbeats stopped and purges old offline ones.
//!
//! Presence also knows, in memory, which connection of this process holds
//! each session it logged in or resumed, and when that session was last
//! heard from: authenticated requests are checked against that, without
//! reading the store (see `service::sessions`).

use super::clock::Clock;
use super::service::Registry;
use crate::protocol::heartbeat::{self, HeartbeatKey, SID_BYTES};
use crossbeam_channel::Receiver;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
const SWEEP_EVERY: Duration = Duration::from_millis(250);
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Largest heartbeat datagram read; anything longer is garbage.
pub const MAX_DATAGRAM: usize = 512;

/// A session held by a connection of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The connection (`Conn::id`) holding it.
    pub conn: u64,
    /// Wall-clock milliseconds of its attach or latest heartbeat.
    pub seen_ms: i64,
    /// Its heartbeat id (the key is in `Presence::keys`).
    pub sid: [u8; SID_BYTES],
}

/// A held session's heartbeat key and the highest counter heard.
struct Keyed {
    token_hash: String,
    key: HeartbeatKey,
    last_ctr: u64,
}

/// Pending heartbeats, the sessions held here, and counters.
pub struct Presence {
    clock: Arc<dyn Clock>,
    pending: Mutex<HashSet<String>>,
    /// By token hash. Only sessions attached here: a heartbeat for any
    /// other token never adds an entry, so garbage cannot grow it.
    held: Mutex<HashMap<String, Held>>,
    /// Heartbeat keys of the held sessions, by heartbeat id (locked after
    /// `held` when both are).
    keys: Mutex<HashMap<[u8; SID_BYTES], Keyed>>,
    /// Valid heartbeat datagrams received.
    pub heartbeats: AtomicU64,
    /// Datagrams dropped as garbage.
    pub garbage: AtomicU64,
    /// Well-formed datagrams dropped for a wrong MAC or an unknown id.
    pub forged: AtomicU64,
    /// Datagrams dropped for a counter not above the last one (replays).
    pub replayed: AtomicU64,
}

impl Presence {
    pub fn new(clock: Arc<dyn Clock>) -> Presence {
        Presence {
            clock,
            pending: Mutex::default(),
            held: Mutex::default(),
            keys: Mutex::default(),
            heartbeats: AtomicU64::new(0),
            garbage: AtomicU64::new(0),
            forged: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
        }
    }

    fn held_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn keys_map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; SID_BYTES], Keyed>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connection `conn` now holds the session (just attached: seen now),
    /// with new heartbeat credentials (any earlier ones stop working).
    pub fn hold(&self, token_hash: &str, conn: u64) -> HeartbeatKey {
        let seen_ms = self.clock.now_ms();
        let key = HeartbeatKey::random();
        let mut held = self.held_map();
        let old = held.insert(
            token_hash.to_string(),
            Held {
                conn,
                seen_ms,
                sid: key.sid,
            },
        );
        let mut keys = self.keys_map();
        if let Some(old) = old {
            keys.remove(&old.sid);
        }
        keys.insert(
            key.sid,
            Keyed {
                token_hash: token_hash.to_string(),
                key,
                last_ctr: 0,
            },
        );
        key
    }

    /// Forgets the session (and its heartbeat key) if `conn` holds it;
    /// true if it did.
    pub fn release(&self, token_hash: &str, conn: u64) -> bool {
        let mut held = self.held_map();
        match held.get(token_hash) {
            Some(h) if h.conn == conn => {
                let sid = h.sid;
                held.remove(token_hash);
                self.keys_map().remove(&sid);
                true
            }
            _ => false,
        }
    }

    /// Who holds the session here, and when it was last heard from.
    pub fn held(&self, token_hash: &str) -> Option<Held> {
        self.held_map().get(token_hash).copied()
    }

    /// Notes a heartbeat for a session (by token hash).
    pub fn touch(&self, token_hash: String) {
        if let Some(h) = self.held_map().get_mut(&token_hash) {
            h.seen_ms = h.seen_ms.max(self.clock.now_ms());
        }
        self.requeue(token_hash);
    }

    /// Puts a heartbeat (back) in the next batch.
    fn requeue(&self, token_hash: String) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token_hash);
    }

    /// Handles one datagram from the UDP socket: it counts only with the
    /// right MAC under a held session's key and a counter above the last
    /// one. Anything else is counted and dropped; no reply is ever sent.
    pub fn datagram(&self, bytes: &[u8]) {
        let Some(beat) = heartbeat::decode(bytes) else {
            return dropped(&self.garbage, "malformed heartbeat datagrams");
        };
        let mut keys = self.keys_map();
        let Some(k) = keys.get_mut(&beat.sid).filter(|k| k.key.verify(&beat)) else {
            drop(keys);
            return dropped(
                &self.forged,
                "heartbeat datagrams with an unknown id or a wrong MAC",
            );
        };
        if beat.ctr <= k.last_ctr {
            drop(keys);
            return dropped(
                &self.replayed,
                "replayed heartbeat datagrams (counter not above the last)",
            );
        }
        k.last_ctr = beat.ctr;
        let token_hash = k.token_hash.clone();
        drop(keys);
        self.heartbeats.fetch_add(1, Ordering::Relaxed);
        self.touch(token_hash);
    }

    /// Heartbeat keys held (for tests: one per held session).
    pub fn keys_held(&self) -> usize {
        self.keys_map().len()
    }

    fn take(&self) -> Vec<String> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.drain().collect()
    }
}

/// Counts a dropped datagram; logs the count at 1, 2, 4, 8…
fn dropped(counter: &AtomicU64, what: &str) {
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    if n.is_power_of_two() {
        log::warn!("dropped {n} {what} so far");
    }
}

/// Runs until `stop` fires or disconnects: flushes heartbeats, sweeps stale
/// sessions, purges old ones, and retries the start-up clean-up until the
/// store lets it through.
pub fn run(registry: &Registry, stop: Receiver<()>, mut startup_done: bool) {
    let mut last_sweep = Instant::now();
    let mut last_purge = Instant::now();
    loop {
        let stopping = !matches!(
            stop.recv_timeout(FLUSH_EVERY),
            Err(crossbeam_channel::RecvTimeoutError::Timeout)
        );
        let flushed = flush(registry);
        if stopping {
            return;
        }
        if !startup_done {
            startup_done = registry.detach_own_sessions().is_ok();
        }
        if flushed {
            registry.retry_unfinished_leaves();
        }
        // While heartbeats cannot be written, sessions would look stale
        // through no fault of their peers: do not time anyone out then.
        if flushed && last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = Instant::now();
            if let Err(e) = registry.sweep_stale() {
                log::warn!("presence sweep failed: {e}");
            }
        }
        if last_purge.elapsed() >= PURGE_EVERY {
            last_purge = Instant::now();
            match registry.purge_old() {
                Ok(0) => {}
                Ok(n) => log::info!("purged {n} expired offline sessions"),
                Err(e) => log::warn!("purge failed: {e}"),
            }
        }
    }
}

/// Writes the pending heartbeats; false if the store refused them (they
/// are kept, and written with the next batch).
pub fn flush(registry: &Registry) -> bool {
    let batch = registry.presence.take();
    if batch.is_empty() {
        return true;
    }
    match registry.store.touch_sessions(&batch, registry.now_ms()) {
        Ok(_) => true,
        Err(e) => {
            log::warn!("could not record {} heartbeats: {e}", batch.len());
            for token_hash in batch {
                registry.presence.requeue(token_hash);
            }
            false
        }
    }
}
