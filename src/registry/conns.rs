//! The registry's open client connections: the cap on connections per
//! source address, the handles shutdown closes, and the count it waits on.
//!
//! Without a cap one address could open connections until the registry ran
//! out of descriptors (10,400 from one address took all 20,000 and shut
//! everyone out). A connection over the cap gets one `too_many_connections`
//! line and is closed; refusals are logged at most once per
//! [`REFUSAL_LOG_EVERY`], with a count, so a flood does not flood the log.

use crate::protocol::*;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// At most one log line about refused connections per this long.
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// The connections being served.
pub struct Conns {
    max_per_ip: usize,
    open: Mutex<Open>,
    changed: Condvar,
}

#[derive(Default)]
struct Open {
    /// Kept so that shutdown can close each connection under its thread.
    streams: HashMap<u64, (IpAddr, Arc<TcpStream>)>,
    per_ip: HashMap<IpAddr, usize>,
}

impl Conns {
    pub fn new(max_per_ip: usize) -> Conns {
        Conns {
            max_per_ip: max_per_ip.max(1),
            open: Mutex::new(Open::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts connection `id` from `ip` (`handle` shares its stream: one
    /// descriptor per connection), or answers `false` when `ip` already has
    /// its maximum.
    pub fn admit(&self, id: u64, ip: IpAddr, handle: Arc<TcpStream>) -> bool {
        let ip = ip.to_canonical();
        let mut open = self.lock();
        let n = open.per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return false;
        }
        *n += 1;
        open.streams.insert(id, (ip, handle));
        true
    }

    /// Connection `id` has ended.
    pub fn finished(&self, id: u64) {
        let mut open = self.lock();
        if let Some((ip, _)) = open.streams.remove(&id) {
            if let Some(n) = open.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    open.per_ip.remove(&ip);
                }
            }
        }
        drop(open);
        self.changed.notify_all();
    }

    /// Closes every connection (their threads then see the end of stream).
    pub fn close_all(&self) {
        for (_, stream) in self.lock().streams.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Waits until no connection is left, or until `deadline`.
    pub fn wait_all_finished(&self, deadline: Instant) {
        let mut open = self.lock();
        while !open.streams.is_empty() && Instant::now() < deadline {
            open = self
                .changed
                .wait_timeout(open, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    pub fn max_per_ip(&self) -> usize {
        self.max_per_ip
    }
}

/// Answers a connection over the cap with one error line and closes it,
/// without ever blocking the accept loop.
pub fn refuse(mut stream: &TcpStream, max_per_ip: usize) {
    let e = ApiError::new(
        ErrorCode::TooManyConnections,
        format!("this address already has {max_per_ip} connections open; closing"),
    );
    if let Ok(mut line) = serde_json::to_vec(&Reply::err(Value::Null, e)) {
        line.push(b'\n');
        let _ = stream.set_nonblocking(true);
        let _ = stream.write_all(&line);
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// Paces log lines about refusals: at most one per [`REFUSAL_LOG_EVERY`].
pub struct RefusalLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl RefusalLog {
    pub const fn new() -> RefusalLog {
        RefusalLog {
            last: None,
            unlogged: 0,
        }
    }

    /// Counts one refusal; answers how many to report when a line is due.
    pub fn note(&mut self) -> Option<u64> {
        self.unlogged += 1;
        let now = Instant::now();
        if self.last.is_some_and(|t| now - t < REFUSAL_LOG_EVERY) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }

    /// Counts a connection refused for the per-address cap, and logs it
    /// when a line is due.
    pub fn over_cap(&mut self, ip: IpAddr, max_per_ip: usize) {
        if let Some(n) = self.note() {
            log::warn!(
                "refused {n} connection(s) over the cap of {max_per_ip} per address \
                 (--max-connections-per-ip) since the last such line; latest from {ip}"
            );
        }
    }
}

impl Default for RefusalLog {
    fn default() -> Self {
        RefusalLog::new()
    }
}
