//! The peer fixture: `peer --json` driven through its stdin, every JSON
//! event line it prints read by a thread into a channel.
//!
//! # Waiting for events
//!
//! Every event a peer prints is either consumed by an `expect*` call or kept,
//! in arrival order, in the peer's *backlog*. Each `expect*` call searches the
//! backlog first (oldest first), then new events, and takes the first match
//! only; everything else stays in the backlog for later calls. So the order in
//! which a test expects events from one peer does not have to be the order in
//! which they were printed, and nothing is lost. Besides, [`Peer::history`]
//! keeps every event seen, consumed or not, for checks on whole sequences
//! ([`Peer::wait_history`]).
//!
//! Field filters are `(path, value)` pairs compared with JSON equality; a path
//! may be dotted to reach into objects (`("user.online", false)`). Use
//! [`ANY`] for "no filter", and `serde_json::json!` values to mix types:
//!
//! ```ignore
//! let reg = Registry::start(&[]);
//! let mut alice = Peer::spawn(reg.addr(), &[]);
//! alice.login_new("alice");
//! alice.send("/who");
//! let who = alice.expect("who", ANY, WAIT);
//! alice.expect("search_result", &[("user.username", json!("bob")), ("user.online", json!(false))], WAIT);
//! ```
//!
//! When an `expect` times out (or the peer exits first), the panic message
//! lists the events the peer printed and the tail of its stderr.
//!
//! No helper sleeps to synchronise: everything waits for an event or a
//! process state, with a deadline ([`WAIT`] is a generous default).
//! [`Peer::expect_none`] necessarily watches a whole window; keep those
//! windows short.

use super::process::{command, default_log, spawn_child, tail, wait_child};
use super::process::{signal, START_TIMEOUT};
use super::{ANY, PASSWORD, WAIT};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Display;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Events and stderr lines shown in failure messages.
const SHOW_EVENTS: usize = 40;
const SHOW_STDERR: usize = 40;
/// Events that come in floods: only counted in failure messages.
const BUSY: [&str; 4] = ["message", "delivery", "delivery_failed", "stats"];

/// What to start a peer with.
#[derive(Default, Clone)]
pub struct PeerOpts {
    /// Command prefix (e.g. `ip netns exec NS`). With one, the peer binds
    /// its namespace's addresses; without, `--bind 127.0.0.1` is added
    /// unless `args` has a `--bind`.
    pub prefix: Vec<String>,
    /// `--faults` spec.
    pub faults: Option<String>,
    /// More command-line arguments.
    pub args: Vec<String>,
}

/// One event line: parsed JSON, or `{"event":"_unparsed","line":…}`.
fn parse_event(line: &str) -> Value {
    serde_json::from_str::<Value>(line)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"event": "_unparsed", "line": line}))
}

/// `v` at a dotted `path` (`"user.online"`).
pub fn field<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| v.get(key))
}

/// Whether `v` is an `event` whose fields have the given values.
pub fn matches<V: Into<Value> + Clone>(v: &Value, event: &str, fields: &[(&str, V)]) -> bool {
    v.get("event").and_then(Value::as_str) == Some(event)
        && fields
            .iter()
            .all(|(path, want)| field(v, path) == Some(&want.clone().into()))
}

fn describe<V: Into<Value> + Clone>(event: &str, fields: &[(&str, V)]) -> String {
    let f: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", v.clone().into()))
        .collect();
    if f.is_empty() {
        event.to_string()
    } else {
        format!("{event} {{{}}}", f.join(", "))
    }
}

/// A `peer --json` process driven through its stdin. Killed on drop.
pub struct Peer {
    /// Label in failure messages: the username once logged in.
    pub name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    exit: Option<ExitStatus>,
    events: Receiver<Value>,
    /// Events received and not yet taken by an `expect*` call, oldest first.
    backlog: VecDeque<Value>,
    /// Every event received, in order.
    pub history: Vec<Value>,
    /// The peer's stderr so far.
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Whether a failure message already showed the events.
    reported: bool,
    pub tcp_port: u16,
    pub udp_port: u16,
    /// Its `XDG_CONFIG_HOME` (where it remembers registry certificates).
    config: tempfile::TempDir,
}

impl Peer {
    /// Runs `peer --json --registry REGISTRY [--bind 127.0.0.1] EXTRA…` and
    /// waits for its `ready` event (taken; ports in `tcp_port`/`udp_port`).
    pub fn spawn(registry: impl Display, extra: &[&str]) -> Peer {
        static N: AtomicUsize = AtomicUsize::new(1);
        let n = N.fetch_add(1, Ordering::Relaxed);
        Peer::spawn_named(&format!("peer#{n}"), registry, extra)
    }

    /// [`spawn`](Self::spawn) with a label for failure messages.
    pub fn spawn_named(name: &str, registry: impl Display, extra: &[&str]) -> Peer {
        let opts = PeerOpts {
            args: extra.iter().map(|s| s.to_string()).collect(),
            ..PeerOpts::default()
        };
        Peer::start(registry, name, &opts)
    }

    /// Starts a peer labelled `name` (not logged in) with `opts`.
    /// `REGISTRY_ADDR` and `LANCHAT_FAULTS` are removed from its environment;
    /// `RUST_LOG` defaults to `info`. An empty `registry` starts it without
    /// `--registry`: it looks for one on the LAN.
    pub fn start(registry: impl Display, name: &str, opts: &PeerOpts) -> Peer {
        let mut cmd = command(&opts.prefix, env!("CARGO_BIN_EXE_peer"));
        cmd.arg("--json");
        let registry = registry.to_string();
        if !registry.is_empty() {
            cmd.arg("--registry").arg(registry);
        }
        let has_bind = opts
            .args
            .iter()
            .any(|a| a == "--bind" || a.starts_with("--bind="));
        if opts.prefix.is_empty() && !has_bind {
            cmd.args(["--bind", "127.0.0.1"]);
        }
        if let Some(f) = &opts.faults {
            cmd.arg("--faults").arg(f);
        }
        // Registry certificates trusted on first use go to a directory of
        // this peer's own, not the user's.
        let config = tempfile::tempdir().expect("a config directory");
        cmd.args(&opts.args)
            .env("XDG_CONFIG_HOME", config.path())
            .env_remove("LANCHAT_REGISTRY_FINGERPRINT")
            .env_remove("LANCHAT_KNOWN_REGISTRIES")
            .env_remove("REGISTRY_ADDR")
            .env_remove("LANCHAT_FAULTS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        default_log(&mut cmd, "info");
        let mut child = spawn_child(cmd).unwrap_or_else(|e| panic!("cannot run peer: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let buf = stderr.clone();
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                match stderr_pipe.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&chunk[..n]),
                }
            }
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(parse_event(&line)).is_err() {
                    return;
                }
            }
        });
        let mut p = Peer {
            name: name.to_string(),
            child: Some(child),
            stdin,
            exit: None,
            events: rx,
            backlog: VecDeque::new(),
            history: Vec::new(),
            stderr,
            reported: false,
            tcp_port: 0,
            udp_port: 0,
            config,
        };
        let ready = p.expect("ready", ANY, START_TIMEOUT);
        p.tcp_port = ready["tcp_port"].as_u64().expect("tcp_port") as u16;
        p.udp_port = ready["udp_port"].as_u64().expect("udp_port") as u16;
        p
    }

    /// Its configuration directory (`XDG_CONFIG_HOME`).
    pub fn config_dir(&self) -> &std::path::Path {
        self.config.path()
    }

    /// The process id (while it runs).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("peer already reaped").id()
    }

    /// What the peer wrote on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Writes one command line (a `\n` is added). Panics if the peer's stdin
    /// is closed.
    #[track_caller]
    pub fn send(&mut self, line: &str) {
        self.send_lines([line.to_string()]);
    }

    /// Writes several command lines at once.
    #[track_caller]
    pub fn send_lines(&mut self, lines: impl IntoIterator<Item = String>) {
        let mut buf = String::new();
        for l in lines {
            buf.push_str(&l);
            buf.push('\n');
        }
        if let Err(e) = self.try_send_bytes(buf.as_bytes()) {
            let shown = lossy_str(&buf);
            self.fail(&format!("cannot send {shown:?}: {e}"));
        }
    }

    /// Like [`send`](Self::send), but reports a closed pipe instead.
    pub fn try_send(&mut self, line: &str) -> io::Result<()> {
        self.try_send_bytes(format!("{line}\n").as_bytes())
    }

    fn try_send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "stdin closed"))?;
        stdin.write_all(bytes)?;
        stdin.flush()
    }

    /// Closes the peer's stdin (EOF: the peer quits).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the next event until `deadline` and records it (history
    /// and backlog). `Err` on a time-out or when the peer's output ended.
    fn recv(&mut self, deadline: Instant) -> Result<(), String> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.events.recv_timeout(left) {
            Ok(v) => {
                self.history.push(v.clone());
                self.backlog.push_back(v);
                Ok(())
            }
            Err(RecvTimeoutError::Timeout) => Err("it did not come".into()),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.wait_exit(Duration::from_secs(1));
                Err(format!("the peer's output ended (exit: {status:?})"))
            }
        }
    }

    fn try_expect_where(
        &mut self,
        pred: &mut dyn FnMut(&Value) -> bool,
        timeout: Duration,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        let mut searched = 0;
        loop {
            if let Some(i) = self.backlog.iter().skip(searched).position(&mut *pred) {
                return Ok(self.backlog.remove(searched + i).expect("index in range"));
            }
            searched = self.backlog.len();
            self.recv(deadline)?;
        }
    }

    /// Waits for the first event (backlog first) for which `pred` holds;
    /// `what` describes it in the failure message. Other events stay in the
    /// backlog.
    #[track_caller]
    pub fn expect_where(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&Value) -> bool,
        timeout: Duration,
    ) -> Value {
        match self.try_expect_where(&mut pred, timeout) {
            Ok(v) => v,
            Err(why) => self.fail(&format!("expected {what} within {timeout:?}, but {why}")),
        }
    }

    /// Waits up to `timeout` for the first `event` with the given field values
    /// and returns it (see the module docs for the backlog).
    #[track_caller]
    pub fn expect<V: Into<Value> + Clone>(
        &mut self,
        event: &str,
        fields: &[(&str, V)],
        timeout: Duration,
    ) -> Value {
        let what = describe(event, fields);
        self.expect_where(&what, |v| matches(v, event, fields), timeout)
    }

    /// Takes `n` matching events, in the order they were printed, within
    /// `timeout` overall.
    #[track_caller]
    pub fn collect<V: Into<Value> + Clone>(
        &mut self,
        n: usize,
        event: &str,
        fields: &[(&str, V)],
        timeout: Duration,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let what = describe(event, fields);
        let mut got = Vec::with_capacity(n);
        for i in 0..n {
            let left = deadline.saturating_duration_since(Instant::now());
            let label = format!("{what} (number {} of {n})", i + 1);
            got.push(self.expect_where(&label, |v| matches(v, event, fields), left));
        }
        got
    }

    /// Watches for `window` (backlog included) and panics if a matching
    /// event shows up. Other events stay in the backlog.
    #[track_caller]
    pub fn expect_none<V: Into<Value> + Clone>(
        &mut self,
        event: &str,
        fields: &[(&str, V)],
        window: Duration,
    ) {
        let mut pred = |v: &Value| matches(v, event, fields);
        if let Ok(v) = self.try_expect_where(&mut pred, window) {
            self.fail(&format!(
                "expected no {} within {window:?}, got {v}",
                describe(event, fields)
            ));
        }
    }

    /// Receives events until `cond(history)` holds; panics after `timeout`.
    #[track_caller]
    pub fn wait_history(&mut self, what: &str, timeout: Duration, cond: impl Fn(&[Value]) -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond(&self.history) {
            if let Err(why) = self.recv(deadline) {
                self.fail(&format!("{what} did not happen within {timeout:?}: {why}"));
            }
        }
    }

    /// Receives events until `cond(history)` holds or `timeout` passes (or
    /// the peer's output ends); returns whether it holds.
    pub fn try_wait_history(&mut self, timeout: Duration, cond: impl Fn(&[Value]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while !cond(&self.history) {
            if self.recv(deadline).is_err() {
                return cond(&self.history);
            }
        }
        true
    }

    /// Moves every event already printed into the backlog (no waiting).
    pub fn drain(&mut self) {
        while let Ok(v) = self.events.try_recv() {
            self.history.push(v.clone());
            self.backlog.push_back(v);
        }
    }

    /// [`drain`](Self::drain)s and returns a view of the backlog.
    pub fn backlog(&mut self) -> &VecDeque<Value> {
        self.drain();
        &self.backlog
    }

    /// Forgets the backlog (e.g. after a noisy phase).
    pub fn clear_backlog(&mut self) {
        self.drain();
        self.backlog.clear();
    }

    /// Sends `cmd` and waits for `event`/`fields`; an `error` event first
    /// fails the test at once (with the error), instead of at the time-out.
    #[track_caller]
    pub fn command_ok<V: Into<Value> + Clone>(
        &mut self,
        cmd: &str,
        event: &str,
        fields: &[(&str, V)],
        timeout: Duration,
    ) -> Value {
        self.send(cmd);
        let what = describe(event, fields);
        self.reply_ok(cmd, &what, |v| matches(v, event, fields), timeout)
    }

    /// Waits for the reply `want` to `cmd` (already sent), described as
    /// `what`; an `error` event first fails the test at once.
    #[track_caller]
    fn reply_ok(
        &mut self,
        cmd: &str,
        what: &str,
        want: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Value {
        let v = self.expect_where(
            &format!("{what} (or an error) after {cmd:?}"),
            |v| want(v) || matches(v, "error", ANY),
            timeout,
        );
        if !want(&v) {
            self.fail(&format!("{cmd:?} failed: {v}"));
        }
        v
    }

    /// `/register NAME PASSWORD`, waiting for `registered`.
    #[track_caller]
    pub fn register(&mut self, name: &str) {
        self.command_ok(
            &format!("/register {name} {PASSWORD}"),
            "registered",
            &[("username", name)],
            WAIT,
        );
    }

    /// `/login NAME PASSWORD`, waiting for `logged_in`; sets [`name`](Self::name).
    #[track_caller]
    pub fn login(&mut self, name: &str) -> Value {
        let v = self.command_ok(
            &format!("/login {name} {PASSWORD}"),
            "logged_in",
            &[("username", name)],
            WAIT,
        );
        self.name = name.to_string();
        v
    }

    /// Registers `name` (with [`PASSWORD`]), logs in and waits for `logged_in`.
    #[track_caller]
    pub fn login_new(&mut self, name: &str) -> Value {
        self.register(name);
        self.login(name)
    }

    /// `/stats`: the room datagram counters.
    #[track_caller]
    pub fn stats(&mut self) -> Value {
        self.send("/stats");
        self.expect("stats", ANY, Duration::from_secs(10))["rooms"].clone()
    }

    /// Asks `/stats` until `cond` holds on the counters (the counters have
    /// no event of their own); returns them.
    #[track_caller]
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
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "stats never showed {what} within {timeout:?}: {s}"
                ));
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// `/members ROOM` (the registry's list): usernames, sorted.
    #[track_caller]
    pub fn registry_members(&mut self, room: &str) -> Vec<String> {
        self.send(&format!("/members {room}"));
        let v = self.expect("members", &[("room", room)], Duration::from_secs(10));
        let mut names = super::names(&v["members"]);
        names.sort();
        names
    }

    /// `/rooms`: room name → member count.
    #[track_caller]
    pub fn rooms(&mut self) -> BTreeMap<String, u64> {
        self.send("/rooms");
        let v = self.expect("rooms", ANY, Duration::from_secs(10));
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
    #[track_caller]
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

    /// Waits up to `limit` for the process to exit (`None`: still running).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Some(child) = &mut self.child {
                self.exit = wait_child(child, limit);
            }
        }
        self.exit
    }

    /// Sends a signal to the process.
    #[track_caller]
    pub fn signal(&mut self, sig: libc::c_int) {
        let pid = self.pid();
        if let Err(e) = signal(pid, sig) {
            self.fail(&format!("kill({pid}, {sig}): {e}"));
        }
    }

    /// Sends `/quit` and asserts the peer exits with status 0 within `limit`;
    /// returns how long it took.
    #[track_caller]
    pub fn quit_within(&mut self, limit: Duration) -> Duration {
        let t0 = Instant::now();
        self.send("/quit");
        self.assert_exit_ok(t0, limit, "/quit")
    }

    /// `/quit`; the peer must exit with status 0 within 2 s.
    #[track_caller]
    pub fn quit(&mut self) -> Duration {
        self.quit_within(Duration::from_secs(2))
    }

    /// Sends SIGINT (Ctrl-C) and asserts exit status 0 within `limit`;
    /// returns how long it took.
    #[track_caller]
    pub fn interrupt_within(&mut self, limit: Duration) -> Duration {
        let t0 = Instant::now();
        self.signal(libc::SIGINT);
        self.assert_exit_ok(t0, limit, "SIGINT")
    }

    #[track_caller]
    fn assert_exit_ok(&mut self, t0: Instant, limit: Duration, what: &str) -> Duration {
        match self.wait_exit(limit) {
            Some(s) if s.success() => t0.elapsed(),
            Some(s) => self.fail(&format!("after {what}: exited with {s}, not 0")),
            None => self.fail(&format!("after {what}: still running after {limit:?}")),
        }
    }

    /// SIGKILLs the peer and reaps it: its sockets are closed on return.
    pub fn kill9(&mut self) {
        if let Some(child) = &mut self.child {
            if self.exit.is_none() {
                let _ = child.kill();
                self.exit = child.wait().ok();
            }
        }
        self.stdin = None;
    }

    /// The exit status, once the process has been reaped.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.exit
    }

    /// The last events seen: flood events (messages, deliveries, stats)
    /// only counted, the others shown (each cut to 300 characters).
    pub fn recent(&self, n: usize) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut lines = Vec::new();
        for v in &self.history {
            let ev = v["event"].as_str().unwrap_or("?");
            if BUSY.contains(&ev) {
                *counts.entry(ev).or_default() += 1;
            }
            lines.push(lossy_str(&v.to_string()));
        }
        let shown = &lines[lines.len().saturating_sub(n)..];
        format!(
            "{} event(s) in all ({counts:?} of the busy kinds), the last {}:\n{}",
            self.history.len(),
            shown.len(),
            shown.join("\n")
        )
    }

    /// Panics with `msg`, the events seen and the stderr tail.
    #[track_caller]
    pub fn fail(&mut self, msg: &str) -> ! {
        self.drain();
        self.reported = true;
        let status = match self.exit {
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exited with code {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => format!("{s}"),
            },
            None => "running".into(),
        };
        panic!(
            "peer {}: {msg}\n---- events, {} not taken by an expect: {}\n---- process: {status}; stderr (tail) ----\n{}",
            self.name,
            self.backlog.len(),
            self.recent(SHOW_EVENTS),
            tail(&self.stderr(), SHOW_STDERR)
        );
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill9();
        // A failed assertion outside the fixture: show what this peer saw.
        if thread::panicking() && !self.reported {
            self.drain();
            eprintln!(
                "---- peer {}: {}\n---- {} stderr (tail) ----\n{}",
                self.name,
                self.recent(20),
                self.name,
                tail(&self.stderr(), 20)
            );
        }
    }
}

/// `s` cut after 300 characters.
fn lossy_str(s: &str) -> String {
    super::lossy(s.as_bytes())
}

/// Starts one peer per `(name, options)`, then registers and logs them all
/// in, the password hashing of all of them overlapping at the registry.
#[track_caller]
pub fn login_peers(registry: impl Display, specs: &[(&str, PeerOpts)]) -> Vec<Peer> {
    let registry = registry.to_string();
    let mut peers: Vec<Peer> = specs
        .iter()
        .map(|(n, o)| Peer::start(&registry, n, o))
        .collect();
    for (verb, event) in [("register", "registered"), ("login", "logged_in")] {
        let line = |p: &Peer| format!("/{verb} {} {PASSWORD}", p.name);
        for p in peers.iter_mut() {
            let l = line(p);
            p.send(&l);
        }
        for p in peers.iter_mut() {
            let (l, name) = (line(p), p.name.clone());
            let want = [("username", name.as_str())];
            p.reply_ok(&l, event, |v| matches(v, event, &want), START_TIMEOUT);
        }
    }
    peers
}

/// [`login_peers`] with the same options for every peer.
#[track_caller]
pub fn login_all(registry: impl Display, names: &[&str], opts: &PeerOpts) -> Vec<Peer> {
    let specs: Vec<(&str, PeerOpts)> = names.iter().map(|n| (*n, opts.clone())).collect();
    login_peers(registry, &specs)
}

/// Opens a chat: `a` asks with `/chat B`, `b` accepts; waits until both
/// see `chat_accepted` (and thus have each other as current target).
#[track_caller]
pub fn open_chat(a: &mut Peer, b: &mut Peer) {
    let (an, bn) = (a.name.clone(), b.name.clone());
    a.send(&format!("/chat {bn}"));
    b.expect("chat_request", &[("from", an.as_str())], WAIT);
    b.send(&format!("/accept {an}"));
    b.expect("chat_accepted", &[("with", an.as_str())], WAIT);
    a.expect("chat_accepted", &[("with", bn.as_str())], WAIT);
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
