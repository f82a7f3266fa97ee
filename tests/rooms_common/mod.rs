//! Fixtures for the room tests (`mod rooms_common;`): the real `registry`
//! and `peer` binaries as child processes, optionally run inside a network
//! namespace through a command prefix (`ip netns exec NS`).
//!
//! - [`Registry`]: started with `--listen …:0`, its port read from the
//!   `registry listening on ADDR` line; killed on drop.
//! - [`Peer`]: `peer --json`, commands written to its stdin, every JSON event
//!   line read by a thread into a channel. [`Peer::expect`] waits (bounded)
//!   for an event with given fields; [`Peer::history`] keeps every event seen,
//!   in order, for checks on whole sequences. Killed on drop.
//! - [`RawClient`]: a registry client over raw TCP NDJSON (for a test that
//!   plays a misbehaving user), with a UDP heartbeat thread.
//!
//! Children get `PR_SET_PDEATHSIG = SIGKILL`, so they die with the test
//! thread that started them even if `Drop` never runs.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const PASSWORD: &str = "correct horse battery";
/// How long a process may take to start and print its first line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Microseconds since the Unix epoch (the clock peers stamp `ts_us` with).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A command for `bin`, run through `prefix` (e.g. `ip netns exec NS`) when
/// it is not empty, that dies with the spawning thread.
fn command(prefix: &[String], bin: &str) -> Command {
    let mut cmd = match prefix.split_first() {
        None => Command::new(bin),
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
    };
    // SAFETY: prctl is async-signal-safe. (`ip netns exec` execs the
    // program in the same process, so the setting carries over.)
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Reads the first line of a child's stdout (bounded), then keeps draining
/// the rest on a thread so the child never blocks on a full pipe.
fn first_line(child: &mut Child) -> Result<String, String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        let res = r.read_line(&mut line).map(|_| line);
        let _ = tx.send(res);
        let _ = io::copy(&mut r, &mut io::sink());
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(Ok(line)) if !line.is_empty() => Ok(line.trim_end().to_string()),
        Ok(Ok(_)) => Err("exited before printing anything".into()),
        Ok(Err(e)) => Err(format!("reading stdout: {e}")),
        Err(_) => Err("nothing printed in time".into()),
    }
}

/// A running `registry`, killed on drop.
pub struct Registry {
    child: Child,
    /// Where peers reach it.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    prefix: Vec<String>,
    listen_ip: String,
}

impl Registry {
    /// On 127.0.0.1, a free port, a fresh embedded store.
    pub fn start() -> Registry {
        Registry::start_in(&[], "127.0.0.1:0", None)
    }

    /// Through `prefix`, listening on `listen` (port 0 for a free one).
    /// Peers are told `connect_ip` (default: the IP it reports).
    pub fn start_in(
        prefix: &[String],
        listen: &str,
        connect_ip: Option<std::net::IpAddr>,
    ) -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let (child, line) = Registry::spawn(prefix, listen, &dir).unwrap_or_else(|e| panic!("{e}"));
        let addr: SocketAddr = line
            .strip_prefix("registry listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the registry: {line:?}"));
        let listen_ip = listen
            .rsplit_once(':')
            .map_or("127.0.0.1", |(ip, _)| ip)
            .to_string();
        let addr = SocketAddr::new(connect_ip.unwrap_or(addr.ip()), addr.port());
        Registry {
            child,
            addr,
            dir,
            prefix: prefix.to_vec(),
            listen_ip,
        }
    }

    /// SIGKILLs the registry and starts it again on the same port and store
    /// (retrying while the port is still taken).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let listen = format!("{}:{}", self.listen_ip, self.addr.port());
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match Registry::spawn(&self.prefix, &listen, &self.dir) {
                Ok((child, _)) => {
                    self.child = child;
                    return;
                }
                Err(e) if Instant::now() >= deadline => panic!("restart failed: {e}"),
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn spawn(
        prefix: &[String],
        listen: &str,
        dir: &tempfile::TempDir,
    ) -> Result<(Child, String), String> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("registry.log"))
            .map_err(|e| format!("registry log: {e}"))?;
        let mut child = command(prefix, env!("CARGO_BIN_EXE_registry"))
            .arg("--listen")
            .arg(listen)
            .arg("--store")
            .arg(dir.path().join("r.db"))
            .env_remove("REGISTRY_LISTEN")
            .env_remove("REGISTRY_STORE")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("spawn registry: {e}"))?;
        match first_line(&mut child) {
            Ok(l) => Ok((child, l)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
                Err(format!("registry did not start: {e}\n{}", tail(&log, 20)))
            }
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("---- registry log (tail) ----\n{}", tail(&self.log(), 40));
        }
    }
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// What to start a peer with.
#[derive(Default, Clone)]
pub struct PeerOpts {
    /// Command prefix (e.g. `ip netns exec NS`).
    pub prefix: Vec<String>,
    /// `--faults` spec.
    pub faults: Option<String>,
}

/// A running `peer --json`, killed (SIGKILL) on drop.
pub struct Peer {
    pub name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    events: Receiver<Value>,
    /// Seen but not yet consumed by [`expect`](Self::expect).
    pending: VecDeque<Value>,
    /// Every event seen, in order.
    pub history: Vec<Value>,
    pub udp_port: u16,
    pub tcp_port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Peer {
    /// Starts a peer for user `name` (not logged in yet) talking to `registry`.
    pub fn start(registry: SocketAddr, name: &str, opts: &PeerOpts) -> Peer {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("peer.log");
        let mut cmd = command(&opts.prefix, env!("CARGO_BIN_EXE_peer"));
        cmd.arg("--registry")
            .arg(registry.to_string())
            .arg("--json")
            .arg("--no-color")
            .env_remove("REGISTRY_ADDR")
            .env_remove("LANCHAT_FAULTS")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::create(&log).expect("peer log")));
        if let Some(f) = &opts.faults {
            cmd.arg("--faults").arg(f);
        }
        let mut child = cmd.spawn().expect("spawn peer");
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"event": "_unparsed", "line": line}));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut p = Peer {
            name: name.to_string(),
            child: Some(child),
            stdin,
            events: rx,
            pending: VecDeque::new(),
            history: Vec::new(),
            udp_port: 0,
            tcp_port: 0,
            log,
            _dir: dir,
        };
        let ready = p.expect("ready", &[], START_TIMEOUT);
        p.udp_port = ready["udp_port"].as_u64().expect("udp_port") as u16;
        p.tcp_port = ready["tcp_port"].as_u64().expect("tcp_port") as u16;
        p
    }

    /// Starts a peer, registers `name` and logs it in.
    pub fn login(registry: SocketAddr, name: &str, opts: &PeerOpts) -> Peer {
        login_all(registry, &[name], opts).pop().expect("one peer")
    }

    /// Waits for the reply to `line` (already sent): `event`, or a "not
    /// connected to the registry" error, after which `line` is sent again
    /// (the peer connects in the background) until `event` comes.
    fn finish(&mut self, line: &str, event: &str) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let v = self.expect_match(&format!("{event} or error"), START_TIMEOUT, |v| {
                v["event"] == event || v["event"] == "error"
            });
            if v["event"] == event {
                return;
            }
            let msg = v["message"].as_str().unwrap_or_default();
            assert!(
                msg.contains("not connected") && Instant::now() < deadline,
                "{}: {line:?} failed: {v}",
                self.name
            );
            thread::sleep(Duration::from_millis(50));
            self.send(line);
        }
    }

    /// Writes one command line to the peer's stdin.
    pub fn send(&mut self, line: &str) {
        self.send_lines(std::iter::once(line.to_string()));
    }

    /// Writes several command lines at once.
    pub fn send_lines(&mut self, lines: impl IntoIterator<Item = String>) {
        let mut buf = String::new();
        for l in lines {
            buf.push_str(&l);
            buf.push('\n');
        }
        let name = self.name.clone();
        let stdin = self.stdin.as_mut().expect("peer stdin");
        stdin
            .write_all(buf.as_bytes())
            .and_then(|_| stdin.flush())
            .unwrap_or_else(|e| panic!("{name}: writing to stdin: {e}"));
    }

    /// Waits for the next event, up to `deadline`; records it.
    fn recv(&mut self, deadline: Instant) -> Option<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.events.recv_timeout(left) {
            Ok(v) => {
                self.history.push(v.clone());
                self.pending.push_back(v.clone());
                Some(v)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                // The process is gone; do not spin.
                if Instant::now() < deadline {
                    thread::sleep(left.min(Duration::from_millis(20)));
                }
                None
            }
        }
    }

    /// Takes the first not-yet-consumed event satisfying `pred`, waiting up
    /// to `timeout` for it; panics (with the recent events) if none comes.
    pub fn expect_match(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i).expect("index in range");
        }
        loop {
            if Instant::now() >= deadline {
                panic!(
                    "{}: no {what} within {timeout:?}; recent events:\n{}",
                    self.name,
                    self.recent(25)
                );
            }
            if let Some(v) = self.recv(deadline) {
                if pred(&v) {
                    self.pending.pop_back();
                    return v;
                }
            }
        }
    }

    /// Waits for event `event` whose fields equal `fields`.
    pub fn expect(&mut self, event: &str, fields: &[(&str, Value)], timeout: Duration) -> Value {
        let what = format!("{event} {}", fields_desc(fields));
        self.expect_match(&what, timeout, |v| {
            v["event"] == event && fields.iter().all(|(k, want)| &v[*k] == want)
        })
    }

    /// Pumps events until `cond(history)` holds; panics after `timeout`.
    pub fn wait_history(&mut self, what: &str, timeout: Duration, cond: impl Fn(&[Value]) -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond(&self.history) {
            if Instant::now() >= deadline {
                panic!(
                    "{}: {what} did not happen within {timeout:?}; recent events:\n{}",
                    self.name,
                    self.recent(25)
                );
            }
            self.recv(deadline);
        }
    }

    /// Pumps events until `cond(history)` holds or `timeout` passes;
    /// returns whether it holds.
    pub fn try_wait_history(&mut self, timeout: Duration, cond: impl Fn(&[Value]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while !cond(&self.history) {
            if Instant::now() >= deadline {
                return false;
            }
            self.recv(deadline);
        }
        true
    }

    /// Reads whatever events are already queued, without waiting.
    pub fn drain(&mut self) {
        while let Ok(v) = self.events.try_recv() {
            self.history.push(v.clone());
            self.pending.push_back(v);
        }
    }

    /// `/stats`: the room datagram counters.
    pub fn stats(&mut self) -> Value {
        self.send("/stats");
        self.expect("stats", &[], Duration::from_secs(10))["rooms"].clone()
    }

    /// Polls `/stats` until `cond` holds on the counters; returns them.
    pub fn wait_stats(
        &mut self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.stats();
            if cond(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{}: stats never showed {what} within {timeout:?}: {s}",
                self.name
            );
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// `/members ROOM` (the registry's list): usernames, sorted.
    pub fn registry_members(&mut self, room: &str) -> Vec<String> {
        self.send(&format!("/members {room}"));
        let v = self.expect("members", &[("room", json!(room))], Duration::from_secs(10));
        let mut names: Vec<String> = v["members"]
            .as_array()
            .expect("members array")
            .iter()
            .map(|u| u["username"].as_str().expect("username").to_string())
            .collect();
        names.sort();
        names
    }

    /// `/rooms`: room name → member count.
    pub fn rooms(&mut self) -> BTreeMap<String, u64> {
        self.send("/rooms");
        let v = self.expect("rooms", &[], Duration::from_secs(10));
        v["rooms"]
            .as_array()
            .expect("rooms array")
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().expect("name").to_string(),
                    r["members"].as_u64().expect("members"),
                )
            })
            .collect()
    }

    /// Texts of messages from others in `chat` ("#room") sent by `from`,
    /// in arrival order.
    pub fn texts_from(&self, chat: &str, from: &str) -> Vec<String> {
        received(&self.history, chat, from)
    }

    /// Waits until `n` messages from `from` in `chat` have arrived.
    pub fn wait_messages(&mut self, chat: &str, from: &str, n: usize, timeout: Duration) {
        let what = format!("{n} messages from {from} in {chat}");
        self.wait_history(&what, timeout, |h| received(h, chat, from).len() >= n);
    }

    /// Every `message` event that is not our own.
    pub fn incoming(&self) -> Vec<&Value> {
        self.history
            .iter()
            .filter(|v| v["event"] == "message" && v["own"] != json!(true))
            .collect()
    }

    /// SIGKILLs the peer and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.stdin = None;
    }

    pub fn recent(&self, n: usize) -> String {
        let h = &self.history;
        h[h.len().saturating_sub(n)..]
            .iter()
            .map(|v| {
                let s = v.to_string();
                if s.chars().count() > 300 {
                    let head: String = s.chars().take(300).collect();
                    format!("{head}… ({} bytes)", s.len())
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill9();
        if thread::panicking() {
            self.drain();
            // Membership and errors tell most stories; messages and
            // deliveries are only counted.
            let busy = ["message", "delivery", "delivery_failed", "stats"];
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            let mut lines = Vec::new();
            for v in &self.history {
                let ev = v["event"].as_str().unwrap_or("?");
                if busy.contains(&ev) {
                    *counts.entry(ev).or_default() += 1;
                } else {
                    lines.push(v.to_string());
                }
            }
            let lines = &lines[lines.len().saturating_sub(20)..];
            eprintln!(
                "---- {}: {counts:?}; other events (last 20) ----\n{}",
                self.name,
                lines.join("\n")
            );
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            if !log.trim().is_empty() {
                eprintln!("---- {} stderr (tail) ----\n{}", self.name, tail(&log, 20));
            }
        }
    }
}

fn fields_desc(fields: &[(&str, Value)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Starts one peer per `(name, options)` (all from this thread: children
/// die with the thread that spawned them), then registers and logs them all
/// in, the password hashing of all of them overlapping at the registry.
pub fn login_peers(registry: SocketAddr, specs: &[(&str, PeerOpts)]) -> Vec<Peer> {
    let mut peers: Vec<Peer> = specs
        .iter()
        .map(|(n, o)| Peer::start(registry, n, o))
        .collect();
    for (verb, event) in [("register", "registered"), ("login", "logged_in")] {
        for p in peers.iter_mut() {
            let line = format!("/{verb} {} {PASSWORD}", p.name);
            p.send(&line);
        }
        for p in peers.iter_mut() {
            let line = format!("/{verb} {} {PASSWORD}", p.name);
            p.finish(&line, event);
        }
    }
    peers
}

/// [`login_peers`] with the same options for every peer.
pub fn login_all(registry: SocketAddr, names: &[&str], opts: &PeerOpts) -> Vec<Peer> {
    let specs: Vec<(&str, PeerOpts)> = names.iter().map(|n| (*n, opts.clone())).collect();
    login_peers(registry, &specs)
}

/// Texts of messages in `chat` from `from` (not our own), in order.
pub fn received(history: &[Value], chat: &str, from: &str) -> Vec<String> {
    history
        .iter()
        .filter(|v| {
            v["event"] == "message"
                && v["own"] != json!(true)
                && v["chat"] == chat
                && v["from"] == from
        })
        .map(|v| v["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Has every member in `peers` (by index) seen `member_joined` for every
/// other? Waits for it; used after a burst of joins.
pub fn await_full_mesh(peers: &mut [Peer], room: &str, timeout: Duration) {
    let names: Vec<String> = peers.iter().map(|p| p.name.clone()).collect();
    for (i, p) in peers.iter_mut().enumerate() {
        let others: Vec<&String> = names
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| n)
            .collect();
        let what = format!("member_joined (or room_joined listing) of {others:?} in #{room}");
        p.wait_history(&what, timeout, |h| {
            others.iter().all(|o| {
                h.iter().any(|v| {
                    (v["event"] == "member_joined" && v["room"] == room && v["user"] == o.as_str())
                        || (v["event"] == "room_joined"
                            && v["room"] == room
                            && v["members"]
                                .as_array()
                                .is_some_and(|m| m.iter().any(|x| x == o.as_str())))
                })
            })
        });
    }
}

/// Waits until each receiver has `want[s]` from each sender `s` (the last
/// text of each list acts as the fence: per-sender order means everything
/// before it must be there too), then checks the sequence is exactly that:
/// all of them, once each, in order.
pub fn expect_exact(
    peers: &mut [Peer],
    chat: &str,
    want: &[(String, Vec<String>)],
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    for p in peers.iter_mut() {
        let me = p.name.clone();
        for (from, texts) in want.iter().filter(|(from, _)| *from != me) {
            let last = texts.last().expect("at least one text").clone();
            let left = deadline.saturating_duration_since(Instant::now());
            let what = format!("the last message ({last:?}) from {from} in {chat}");
            p.wait_history(&what, left, |h| received(h, chat, from).contains(&last));
            let got = p.texts_from(chat, from);
            assert_exact_sequence(&p.name, from, &got, texts);
        }
    }
}

/// Ids of our own messages in `chat`, in order, once there are `n`.
pub fn own_ids(p: &mut Peer, chat: &str, n: usize) -> Vec<u64> {
    p.wait_history(
        &format!("{n} own messages in {chat}"),
        Duration::from_secs(10),
        |h| {
            h.iter()
                .filter(|v| v["event"] == "message" && v["own"] == json!(true) && v["chat"] == chat)
                .count()
                >= n
        },
    );
    p.history
        .iter()
        .filter(|v| v["event"] == "message" && v["own"] == json!(true) && v["chat"] == chat)
        .map(|v| v["id"].as_u64().expect("id"))
        .collect()
}

/// Every one of `ids` gets a final `delivery` with acked == total == `n`.
pub fn expect_delivered(p: &mut Peer, room: &str, ids: &[u64], n: usize, timeout: Duration) {
    for &id in ids {
        p.expect(
            "delivery",
            &[
                ("room", json!(room)),
                ("id", json!(id)),
                ("acked", json!(n)),
                ("total", json!(n)),
            ],
            timeout,
        );
    }
    assert!(
        !p.history.iter().any(|v| v["event"] == "delivery_failed"),
        "{}: a delivery failed:\n{}",
        p.name,
        p.recent(30)
    );
}

/// Checks that `got` is exactly `want`: every message once, in order. On a
/// mismatch, says where it first differs and what is missing or doubled.
pub fn assert_exact_sequence(who: &str, from: &str, got: &[String], want: &[String]) {
    if got == want {
        return;
    }
    let first_diff = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for w in want {
        *counts.entry(w).or_default() -= 1;
    }
    for g in got {
        *counts.entry(g).or_default() += 1;
    }
    let missing: Vec<&&str> = counts
        .iter()
        .filter(|(_, c)| **c < 0)
        .map(|(k, _)| k)
        .take(10)
        .collect();
    let extra: Vec<&&str> = counts
        .iter()
        .filter(|(_, c)| **c > 0)
        .map(|(k, _)| k)
        .take(10)
        .collect();
    panic!(
        "{who} got {} messages from {from}, expected {}; first difference at index {first_diff} \
         (got {:?}, expected {:?}); missing {missing:?}; duplicated/unexpected {extra:?}",
        got.len(),
        want.len(),
        got.get(first_diff),
        want.get(first_diff),
    );
}

/// A logged-in registry session over raw TCP NDJSON, kept online by UDP
/// heartbeats from a helper thread every 300 ms.
pub struct RawClient {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
    next_id: u64,
    pub token: String,
    stop: Arc<AtomicBool>,
    heartbeats: Option<JoinHandle<()>>,
}

impl RawClient {
    /// Registers and logs in `username`, announcing `udp_port` (and the same
    /// number as its TCP port).
    pub fn login(registry: SocketAddr, username: &str, udp_port: u16) -> RawClient {
        let stream = TcpStream::connect(registry).expect("connect to the registry");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut c = RawClient {
            reader,
            stream,
            next_id: 1,
            token: String::new(),
            stop: Arc::new(AtomicBool::new(false)),
            heartbeats: None,
        };
        c.ok(json!({"op": "register", "username": username, "password": PASSWORD}));
        let r = c.ok(json!({
            "op": "login", "username": username, "password": PASSWORD,
            "tcp_port": udp_port, "udp_port": udp_port,
        }));
        c.token = r["token"].as_str().expect("token").to_string();
        let hb_port = r["heartbeat_port"].as_u64().expect("heartbeat_port") as u16;
        let to = SocketAddr::new(registry.ip(), hb_port);
        let msg = json!({"op": "heartbeat", "token": c.token}).to_string();
        let stop = c.stop.clone();
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind heartbeat socket");
        c.heartbeats = Some(thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let _ = sock.send_to(msg.as_bytes(), to);
                thread::sleep(Duration::from_millis(300));
            }
        }));
        c
    }

    /// Sends a request (an `id` is added) and returns the reply.
    pub fn request(&mut self, mut req: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        req["id"] = json!(id);
        if !self.token.is_empty() && req.get("token").is_none() {
            let op = req["op"].as_str().unwrap_or_default();
            if op != "register" && op != "login" {
                req["token"] = json!(self.token);
            }
        }
        let mut line = req.to_string();
        line.push('\n');
        self.stream
            .write_all(line.as_bytes())
            .expect("send request");
        let mut reply = String::new();
        self.reader.read_line(&mut reply).expect("read reply");
        let v: Value =
            serde_json::from_str(&reply).unwrap_or_else(|e| panic!("reply {reply:?}: {e}"));
        assert_eq!(v["id"], json!(id), "reply to another request: {v}");
        v
    }

    /// A request that must succeed.
    pub fn ok(&mut self, req: Value) -> Value {
        let v = self.request(req.clone());
        assert_eq!(v["ok"], json!(true), "{req} failed: {v}");
        v
    }
}

impl Drop for RawClient {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.heartbeats.take() {
            let _ = t.join();
        }
    }
}
