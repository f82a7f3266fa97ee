//! UDP heartbeats to the registry from a thread, for sessions that have no
//! peer behind them: one token (a test's raw client) or thousands (the
//! benchmark's sessions), each sent once per period, spread over it in
//! bursts of 20, until the [`Heartbeater`] is dropped.
//!
//! A heartbeat carries no token (protocol version 2): it is MACed with the
//! session's heartbeat key. The kit's clients [note](note_session) the id
//! and key of every login or resume reply they read, by token, so that
//! tests keep naming sessions by their token; an unknown token gets a key
//! the registry never gave (its heartbeats are dropped as forged).

use lanchat::protocol::heartbeat::HeartbeatKey;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Datagrams sent back to back before the thread pauses.
const BURST: usize = 20;

/// A thread sending a heartbeat for every token it was given once per
/// period; stopped (and joined) on drop.
pub struct Heartbeater {
    stop: Arc<AtomicBool>,
    tokens: Arc<Mutex<Vec<String>>>,
    sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeater {
    /// Heartbeats for `token` to `to` every `every`.
    pub fn for_token(to: SocketAddr, token: &str, every: Duration) -> Heartbeater {
        Heartbeater::start(to, every, 1, &[token])
    }

    /// A heartbeater for `tokens` (more can be [added](Self::add)), sending
    /// from `sockets` sockets, each token once per `every`.
    pub fn start(to: SocketAddr, every: Duration, sockets: usize, tokens: &[&str]) -> Heartbeater {
        let stop = Arc::new(AtomicBool::new(false));
        let tokens: Arc<Mutex<Vec<String>>> =
            Arc::new(Mutex::new(tokens.iter().map(|t| t.to_string()).collect()));
        let sent = Arc::new(AtomicU64::new(0));
        let bind = SocketAddr::new(
            if to.ip().is_loopback() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            },
            0,
        );
        let socks: Vec<UdpSocket> = (0..sockets.max(1))
            .map(|_| UdpSocket::bind(bind).expect("bind a heartbeat socket"))
            .collect();
        let (st, list, count) = (stop.clone(), tokens.clone(), sent.clone());
        // Bursts are spread over 90% of the period, so the last one does
        // not run into the next round.
        let spread = every.mul_f64(0.9);
        let thread = thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                let round = Instant::now();
                let n = list.lock().unwrap().len();
                let mut start = 0;
                while start < n && !st.load(Ordering::SeqCst) {
                    let due = round + spread.mul_f64(start as f64 / n as f64);
                    let now = Instant::now();
                    if due > now {
                        thread::sleep(due - now);
                    }
                    let l = list.lock().unwrap();
                    for (i, token) in l.iter().enumerate().skip(start).take(BURST) {
                        if socks[i % socks.len()].send_to(&datagram(token), to).is_ok() {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    start += BURST;
                }
                // Sleep out the period in short steps, so drop is prompt.
                while !st.load(Ordering::SeqCst) {
                    let left = every.saturating_sub(round.elapsed());
                    if left.is_zero() {
                        break;
                    }
                    thread::sleep(left.min(Duration::from_millis(20)));
                }
            }
        });
        Heartbeater {
            stop,
            tokens,
            sent,
            thread: Some(thread),
        }
    }

    /// Adds a token (its first heartbeat goes with the next round).
    pub fn add(&self, token: &str) {
        self.tokens.lock().unwrap().push(token.to_string());
    }

    /// Datagrams sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Heartbeater {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Heartbeat keys by token, with the last counter sent.
static KEYS: Mutex<Option<HashMap<String, (HeartbeatKey, u64)>>> = Mutex::new(None);

/// Notes the heartbeat id and key of a login or resume reply (anything
/// else is ignored).
pub fn note_session(reply: &Value) {
    let (Some(token), Some(sid), Some(key)) = (
        reply["token"].as_str(),
        reply["heartbeat_id"].as_str(),
        reply["heartbeat_key"].as_str(),
    ) else {
        return;
    };
    if let Some(k) = HeartbeatKey::from_hex(sid, key) {
        let mut keys = KEYS.lock().unwrap_or_else(|p| p.into_inner());
        keys.get_or_insert_with(HashMap::new)
            .insert(token.to_string(), (k, 0));
    }
}

/// The next heartbeat datagram for `token` (its counter one above the
/// last one sent for it).
pub fn datagram(token: &str) -> Vec<u8> {
    let mut keys = KEYS.lock().unwrap_or_else(|p| p.into_inner());
    let (k, ctr) = keys
        .get_or_insert_with(HashMap::new)
        .entry(token.to_string())
        .or_insert_with(|| (HeartbeatKey::random(), 0));
    *ctr += 1;
    k.encode(*ctr).into_bytes()
}

/// A version-1 heartbeat datagram, with the token in it.
pub fn v1_datagram(token: &str) -> Vec<u8> {
    json!({"op": "heartbeat", "token": token})
        .to_string()
        .into_bytes()
}
