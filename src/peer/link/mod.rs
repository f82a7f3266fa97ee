//! The peer's connection to the registry: connecting (off the main loop),
//! reconnecting with backoff or, given several registries, moving to the
//! next one at once ([`dial`]), request ids and their pending purposes.
//!
//! Requests are asynchronous: [`Link::request`] hands a line to the writer
//! thread and remembers what the reply is for; the reader thread hands
//! replies back as events. The main loop never writes to the socket itself,
//! so a registry that stops reading cannot stall it.

pub mod dial;
pub mod secure;

use super::events::Event;
use crate::protocol::codec::{read_line, write_json, LineError};
use crate::protocol::{ApiError, ErrorCode, Reply, Request};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use dial::{Addrs, Report};
use secure::{RegistryStream, Security};
use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A dropped connection is followed at once by one to the next registry in
/// the list, at most once in this long; other drops wait out the backoff,
/// so registries that accept and close at once (say, over their connection
/// limit) are not dialled in a tight loop.
const FAILOVER_EVERY: Duration = Duration::from_secs(1);
/// Request lines waiting for the writer thread. Requests come from the
/// user's commands and a few timers, so this is never reached unless the
/// registry stops reading; then a request fails at once with
/// `registry_unreachable` rather than growing the queue, and the writer's
/// 2 s write time-out soon closes the connection.
const WRITE_QUEUE: usize = 256;

enum State {
    /// Not connected; try again at the instant.
    Down { retry_at: Instant },
    /// A connector thread is at work.
    Connecting,
    Up {
        stream: TcpStream,
        /// To the writer thread; dropping it ends the thread.
        out: Sender<serde_json::Value>,
    },
}

pub struct Link<P> {
    /// The `--registry` list as given (for messages).
    addr: String,
    addrs: Addrs,
    events: Sender<Event>,
    state: State,
    backoff: Duration,
    generation: u64,
    next_id: u64,
    pending: HashMap<u64, (P, Instant, Request)>,
    /// Requests made while the connection was down, sent once it is up.
    waiting: Vec<(Request, P, Instant)>,
    /// Set once a connection has been up, so later ones count as reconnects.
    pub was_up: bool,
    /// Connection attempts failed in a row.
    pub failures: u32,
    last_remote: Option<SocketAddr>,
    /// When a dropped connection was last followed at once by another.
    last_failover: Option<Instant>,
    /// The last certificate refusal shown (each is shown once).
    pub shown_refusal: Option<String>,
}

impl<P> Link<P> {
    /// A link that connects at once.
    pub fn new(addr: String, events: Sender<Event>) -> Link<P> {
        Link {
            addrs: Addrs::new(&addr),
            addr,
            events,
            state: State::Down {
                retry_at: Instant::now(),
            },
            backoff: BACKOFF_MIN,
            generation: 0,
            next_id: 1,
            pending: HashMap::new(),
            waiting: Vec::new(),
            was_up: false,
            failures: 0,
            last_remote: None,
            last_failover: None,
            shown_refusal: None,
        }
    }

    /// Sets how connections are secured (plaintext until this is called).
    pub fn secured(mut self, security: Security) -> Link<P> {
        self.addrs.security = security;
        self
    }

    pub fn is_up(&self) -> bool {
        matches!(self.state, State::Up { .. })
    }

    /// The registry's address as last connected (for heartbeat datagrams,
    /// which carry on while the connection is down).
    pub fn remote(&self) -> Option<SocketAddr> {
        self.last_remote
    }

    /// Whether the list holds another registry to move to.
    pub fn has_alternatives(&self) -> bool {
        self.addrs.has_alternatives()
    }

    /// What a connection attempt learnt about the addresses.
    pub fn dialed(&mut self, report: &Report) {
        self.addrs.learn(report, Instant::now());
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len() + self.waiting.len()
    }

    /// Whether a request whose purpose matches `f` is in flight or waiting.
    pub fn any_pending(&self, f: impl Fn(&P) -> bool) -> bool {
        self.pending.values().any(|(p, _, _)| f(p)) || self.waiting.iter().any(|(_, p, _)| f(p))
    }

    /// The `--registry` list as given.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Takes the queued requests whose purpose matches `f`.
    pub fn take_waiting_where(&mut self, f: impl Fn(&P) -> bool) -> Vec<P> {
        let (take, keep): (Vec<_>, Vec<_>) = self.waiting.drain(..).partition(|(_, p, _)| f(p));
        self.waiting = keep;
        take.into_iter().map(|(_, p, _)| p).collect()
    }

    /// Requests queued while the link was down, to send now that it is up
    /// (after anything that must go first, such as `resume`).
    pub fn take_waiting(&mut self) -> Vec<(Request, P)> {
        self.waiting.drain(..).map(|(r, p, _)| (r, p)).collect()
    }

    /// Starts a connector thread if it is time to.
    pub fn poll_connect(&mut self, now: Instant) {
        if let State::Down { retry_at } = self.state {
            if now >= retry_at {
                self.state = State::Connecting;
                let plan = self.addrs.plan(now);
                let events = self.events.clone();
                let spawned = std::thread::Builder::new()
                    .name("connect".into())
                    .spawn(move || {
                        let ev = match plan.connect() {
                            (Ok(s), report) => Event::RegistryConnected(s, report),
                            (Err(e), report) => Event::RegistryConnectFailed(e, report),
                        };
                        let _ = events.send(ev);
                    });
                if spawned.is_err() {
                    self.state = State::Down {
                        retry_at: now + self.backoff,
                    };
                }
            }
        }
    }

    /// The next instant the link needs the main loop: a retry or a request
    /// deadline.
    pub fn deadline(&self) -> Option<Instant> {
        let retry = match self.state {
            State::Down { retry_at } => Some(retry_at),
            _ => None,
        };
        let req = self.pending.values().map(|(_, d, _)| *d).min();
        let queued = self.waiting.iter().map(|(_, _, d)| *d).min();
        [retry, req, queued].into_iter().flatten().min()
    }

    /// A connection came up: start its reader and writer threads.
    pub fn connected(&mut self, secured: RegistryStream) -> Result<(), String> {
        self.generation += 1;
        let remote = secured.tcp.peer_addr().map_err(|e| e.to_string())?;
        let _ = secured.tcp.set_nodelay(true);
        secured
            .tcp
            .set_write_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        let (reader, writer) = secured.halves().map_err(|e| e.to_string())?;
        let stream = secured.tcp;
        let events = self.events.clone();
        let generation = self.generation;
        std::thread::Builder::new()
            .name("registry-read".into())
            .spawn(move || read_loop(reader, generation, events))
            .map_err(|e| e.to_string())?;
        let closer = stream.try_clone().map_err(|e| e.to_string())?;
        let (out, lines) = crossbeam_channel::bounded(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("registry-write".into())
            .spawn(move || write_loop(writer, closer, lines))
            .map_err(|e| e.to_string())?;
        self.state = State::Up { stream, out };
        self.last_remote = Some(remote);
        self.addrs.last = Some(remote);
        self.backoff = BACKOFF_MIN;
        self.was_up = true;
        self.failures = 0;
        Ok(())
    }

    /// A connection attempt failed or the connection dropped: schedule a
    /// retry and fail every pending request. Returns the failed purposes.
    /// A dropped connection with another registry in the list is followed
    /// at once by one to the other registry (at most once a second, `FAILOVER_EVERY`).
    pub fn down(&mut self, now: Instant) -> Vec<P> {
        let mut retry_at = now + self.backoff;
        if matches!(self.state, State::Connecting) {
            self.failures += 1;
        }
        if let State::Up { stream, .. } = &self.state {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            if self.addrs.has_alternatives() {
                if let Some(dead) = self.last_remote {
                    self.addrs.avoid(dead, now);
                }
                let recent = self
                    .last_failover
                    .is_some_and(|t| now.saturating_duration_since(t) < FAILOVER_EVERY);
                if !recent {
                    retry_at = now;
                    self.last_failover = Some(now);
                }
            }
        }
        if retry_at > now {
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        }
        self.state = State::Down { retry_at };
        self.pending.drain().map(|(_, (p, _, _))| p).collect()
    }

    /// Whether a `RegistryClosed` event is about the current connection.
    pub fn is_current(&self, generation: u64) -> bool {
        generation == self.generation && self.is_up()
    }

    /// Sends a request, or queues it while the connection is down (for at
    /// most the request time-out); on failure the purpose comes back with
    /// the error. Never blocks.
    pub fn request(&mut self, req: &Request, purpose: P) -> Result<(), (P, ApiError)> {
        self.request_within(req, purpose, REQUEST_TIMEOUT)
    }

    /// [`Link::request`] with its own time-out for the reply.
    pub fn request_within(
        &mut self,
        req: &Request,
        purpose: P,
        timeout: Duration,
    ) -> Result<(), (P, ApiError)> {
        let State::Up { out, .. } = &self.state else {
            self.waiting
                .push((req.clone(), purpose, Instant::now() + REQUEST_TIMEOUT));
            return Ok(());
        };
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_value(req).unwrap_or_default();
        if let Some(map) = line.as_object_mut() {
            map.insert("id".into(), id.into());
        }
        if let Err(e) = out.try_send(line) {
            let why = match e {
                TrySendError::Full(_) => "registry write failed: too many requests waiting",
                TrySendError::Disconnected(_) => "registry write failed: connection closed",
            };
            return Err((purpose, ApiError::new(ErrorCode::RegistryUnreachable, why)));
        }
        self.pending
            .insert(id, (purpose, Instant::now() + timeout, req.clone()));
        Ok(())
    }

    /// Matches a reply to its request (given back, so it can be retried).
    pub fn reply(&mut self, v: serde_json::Value) -> Option<(P, Reply, Request)> {
        let reply = Reply::from_value(v).ok()?;
        let id = reply.id.as_u64()?;
        let (p, _, req) = self.pending.remove(&id)?;
        Some((p, reply, req))
    }

    /// Queued requests that never got a connection, with the error to give.
    pub fn expired_waiting(&mut self, now: Instant) -> Vec<(P, ApiError)> {
        let (late, keep): (Vec<_>, Vec<_>) =
            self.waiting.drain(..).partition(|(_, _, d)| *d <= now);
        self.waiting = keep;
        let why = format!("cannot reach the registry at {}", self.addr);
        late.into_iter()
            .map(|(_, p, _)| {
                (
                    p,
                    ApiError::new(ErrorCode::RegistryUnreachable, why.clone()),
                )
            })
            .collect()
    }

    /// Requests whose reply is overdue.
    pub fn expired(&mut self, now: Instant) -> Vec<P> {
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, (_, d, _))| *d <= now)
            .map(|(id, _)| *id)
            .collect();
        late.into_iter()
            .filter_map(|id| self.pending.remove(&id).map(|(p, _, _)| p))
            .collect()
    }
}

/// Writes request lines until the link drops its sender or a write fails;
/// then closes the socket, so the reader ends and reports the connection
/// closed (which fails the pending requests and reconnects).
fn write_loop(mut out: Box<dyn Write + Send>, sock: TcpStream, lines: Receiver<serde_json::Value>) {
    for line in lines.iter() {
        if let Err(e) = write_json(&mut out, &line) {
            log::info!("registry write failed: {e}");
            break;
        }
    }
    let _ = sock.shutdown(std::net::Shutdown::Both);
}

fn read_loop(stream: Box<dyn Read + Send>, generation: u64, events: Sender<Event>) {
    let mut r = BufReader::new(stream);
    let mut buf = Vec::new();
    let reason = loop {
        match read_line(&mut r, &mut buf) {
            Ok(line) => match serde_json::from_str(&line) {
                Ok(v) => {
                    if events.send(Event::RegistryReply(v)).is_err() {
                        return;
                    }
                }
                Err(e) => log::warn!("registry sent a line that is not JSON: {e}"),
            },
            Err(LineError::Closed) => break "connection closed".to_string(),
            Err(LineError::Io(e)) => break e.to_string(),
            Err(LineError::TooLong) => break "registry sent an oversized line".to_string(),
            Err(LineError::BadEncoding) => break "registry sent invalid UTF-8".to_string(),
        }
    };
    let _ = events.send(Event::RegistryClosed { generation, reason });
}

#[cfg(test)]
mod tests;
