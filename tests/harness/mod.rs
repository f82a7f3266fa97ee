//! End-to-end harness for the real `registry` and `peer` binaries
//! (`mod harness;` in a test file).
//!
//! - [`Registry`]: the registry on `127.0.0.1` with an embedded store in a
//!   temporary directory; [`Registry::kill9`], [`Registry::restart`] (same
//!   port, same store), killed on drop.
//! - [`Peer`]: `peer --json --registry ADDR` with piped stdin/stdout. A reader
//!   thread parses every stdout line (one JSON object per event) into a
//!   channel; [`Peer::send`] writes a command line; [`Peer::expect`] waits for
//!   the first event with a given name and field values. Helpers:
//!   [`Peer::login_new`] (register + login), [`Peer::command_ok`] (a command
//!   that must produce an event, failing fast on an `error`), [`Peer::quit`],
//!   [`Peer::interrupt_within`] (SIGINT), [`Peer::kill9`], [`open_chat`].
//! - [`Registry::ghost_login`]: a user the registry has online at an address
//!   of your choice, with no peer behind it.
//! - [`spawn_child`]: spawn any other process the same way (see below).
//!
//! # Waiting for events
//!
//! Every event a peer prints is either consumed by an `expect*` call or kept,
//! in arrival order, in the peer's *backlog*. Each `expect*` call searches the
//! backlog first (oldest first), then new events, and takes the first match
//! only; everything else stays in the backlog for later calls. So the order in
//! which a test expects events from one peer does not have to be the order in
//! which they were printed, and nothing is lost.
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
//! process state, with a deadline ([`WAIT`] is a generous default). [`Peer::expect_none`] necessarily watches a
//! whole window; keep those windows short.
//!
//! # Processes
//!
//! Children are started from one long-lived helper thread with
//! `PR_SET_PDEATHSIG = SIGKILL`, so they die with the test process even when it
//! is killed before destructors run, and it is safe to create fixtures on any
//! thread (e.g. in `std::thread::scope` to log several peers in at once).
#![allow(dead_code)]

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::Value;
use std::collections::VecDeque;
use std::fmt::Display;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Password of every account the harness creates (≥ 8 characters).
pub const PASSWORD: &str = "correct-horse-battery";
/// A generous default deadline for events that should come promptly.
pub const WAIT: Duration = Duration::from_secs(5);
/// "No field filter" for [`Peer::expect`] and friends.
pub const ANY: &[(&str, Value)] = &[];

/// How long the registry may take to print its `listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Events and stderr lines shown in failure messages.
const SHOW_EVENTS: usize = 60;
const SHOW_STDERR: usize = 40;

// ---------------------------------------------------------------- spawning

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `cmd` from a helper thread that lives as long as the test process,
/// with `PR_SET_PDEATHSIG = SIGKILL` (which fires when the *spawning thread*
/// exits, hence the long-lived thread).
pub fn spawn_child(mut cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    // SAFETY: prctl and getppid are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        thread::Builder::new()
            .name("harness-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("start the spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .expect("spawner thread gone");
    reply_rx.recv().expect("spawner thread gone")
}

/// Waits up to `limit` for `child` to exit.
fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(e) => panic!("waiting for pid {}: {e}", child.id()),
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Sets `RUST_LOG` to `level` unless the test runner's environment sets it.
fn default_log(cmd: &mut Command, level: &str) {
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", level);
    }
}

// ---------------------------------------------------------------- registry

/// A `registry` process on `127.0.0.1` with an embedded (SQLite) store in a
/// temporary directory. SIGKILLed on drop; its stderr is kept in a log file
/// there (see [`Registry::log`]) and printed if the test panics.
pub struct Registry {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
    extra: Vec<String>,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry on a free port (`--listen 127.0.0.1:0`) with
    /// `--store <tempdir>/r.db` and the `extra` flags.
    pub fn start(extra: &[&str]) -> Registry {
        Registry::start_on(0, extra)
    }

    /// Like [`start`](Self::start) on a given port (0: any free one).
    pub fn start_on(port: u16, extra: &[&str]) -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut r = Registry {
            child: None,
            port,
            store: dir.path().join("r.db"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            dir,
        };
        if let Err(e) = r.spawn() {
            panic!("{e}");
        }
        r
    }

    /// `127.0.0.1:PORT`, for `Peer::spawn` and `--registry`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The store file (`<tempdir>/r.db`).
    pub fn store(&self) -> &Path {
        &self.store
    }

    /// The temporary directory (deleted on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("registry not running").id()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// Everything the registry wrote on stderr, over all its runs.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("open the registry log: {e}"))?;
        let _ = writeln!(log, "==== harness: starting on port {} ====", self.port);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_registry"));
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--store")
            .arg(&self.store)
            .args(&self.extra)
            .env_remove("REGISTRY_LISTEN")
            .env_remove("REGISTRY_STORE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        default_log(&mut cmd, "info");
        let mut child = spawn_child(cmd).map_err(|e| format!("cannot run the registry: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let res = reader.read_line(&mut line).map(|_| line);
            let _ = tx.send(res);
            // Keep the pipe open (and drained) while the registry lives.
            let _ = io::copy(&mut reader, &mut io::sink());
        });
        let why = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) => match line
                .trim()
                .strip_prefix("registry listening on ")
                .map(str::parse::<SocketAddr>)
            {
                Some(Ok(addr)) => {
                    self.port = addr.port();
                    self.child = Some(child);
                    return Ok(());
                }
                _ => format!("unexpected first line {line:?}"),
            },
            Ok(Err(e)) => format!("reading its stdout: {e}"),
            Err(_) => "no `listening` line in time".to_string(),
        };
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "the registry did not start: {why}\n---- registry log ----\n{}",
            tail(&self.log(), SHOW_STDERR)
        ))
    }

    /// SIGKILLs the registry (if running) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGINT and waits up to `limit` for the exit status (`None`: it
    /// did not exit in time and was killed).
    pub fn interrupt(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take().expect("registry not running");
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let status = wait_child(&mut child, limit);
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        status
    }

    /// Starts the registry again on the same port, with the same store and
    /// flags (SIGKILLing it first if it still runs). Retries for a while if
    /// the port is not free yet.
    pub fn restart(&mut self) {
        self.kill9();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut pause = Duration::from_millis(20);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => panic!("restart failed: {e}"),
                Err(_) => {
                    thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(250));
                }
            }
        }
    }
}

impl Registry {
    /// Registers `username` (unless it exists) and logs it in over a raw
    /// registry connection, announcing `tcp_port`/`udp_port` on 127.0.0.1:
    /// a user the registry has online where no peer may be listening. The
    /// session lasts while the returned value lives (and, as nothing sends
    /// heartbeats, at most the registry's session time-out).
    pub fn ghost_login(&self, username: &str, tcp_port: u16, udp_port: u16) -> GhostSession {
        let stream = TcpStream::connect(self.addr()).expect("connect to the registry");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut call = |req: Value| -> Value {
            let mut line = req.to_string();
            line.push('\n');
            (&stream)
                .write_all(line.as_bytes())
                .expect("write to the registry");
            let mut reply = String::new();
            reader.read_line(&mut reply).expect("read a registry reply");
            serde_json::from_str(&reply).unwrap_or_else(|e| panic!("reply {reply:?}: {e}"))
        };
        let r = call(serde_json::json!({
            "id": 1, "op": "register", "username": username, "password": PASSWORD,
        }));
        assert!(
            r["ok"] == true || r["code"] == "user_exists",
            "register {username}: {r}"
        );
        let r = call(serde_json::json!({
            "id": 2, "op": "login", "username": username, "password": PASSWORD,
            "tcp_port": tcp_port, "udp_port": udp_port,
        }));
        assert_eq!(r["ok"], true, "login {username}: {r}");
        let token = r["token"].as_str().expect("token").to_string();
        GhostSession {
            _stream: stream,
            token,
        }
    }
}

/// See [`Registry::ghost_login`]; dropping it closes the connection.
pub struct GhostSession {
    _stream: TcpStream,
    pub token: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill9();
        if thread::panicking() {
            eprintln!(
                "---- registry log (tail) ----\n{}",
                tail(&self.log(), SHOW_STDERR)
            );
        }
    }
}

// ---------------------------------------------------------------- peer

/// One event line: parsed JSON, or `{"event":"_unparsed","line":…}`.
fn parse_event(line: &str) -> Value {
    serde_json::from_str::<Value>(line)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| serde_json::json!({"event": "_unparsed", "line": line}))
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
    /// Label in failure messages: the username after [`login_new`](Self::login_new).
    pub name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    exit: Option<ExitStatus>,
    events: Receiver<Value>,
    /// Events received and not yet taken by an `expect*` call, oldest first.
    backlog: VecDeque<Value>,
    /// Every event received, for failure messages.
    seen: Vec<Value>,
    /// The peer's stderr so far.
    stderr: Arc<Mutex<Vec<u8>>>,
    pub tcp_port: u16,
    pub udp_port: u16,
}

impl Peer {
    /// Runs `peer --json --registry REGISTRY [--bind 127.0.0.1] EXTRA…` and
    /// waits for its `ready` event (taken; ports in `tcp_port`/`udp_port`).
    /// `--bind 127.0.0.1` is added unless `extra` has a `--bind`.
    /// `REGISTRY_ADDR` and `LANCHAT_FAULTS` are removed from its environment
    /// (pass `--faults` in `extra` instead); `RUST_LOG` defaults to `info`.
    pub fn spawn(registry: impl Display, extra: &[&str]) -> Peer {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Peer::spawn_named(&format!("peer#{n}"), registry, extra)
    }

    /// [`spawn`](Self::spawn) with a label for failure messages.
    pub fn spawn_named(name: &str, registry: impl Display, extra: &[&str]) -> Peer {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer"));
        cmd.arg("--json")
            .arg("--registry")
            .arg(registry.to_string());
        if !extra
            .iter()
            .any(|a| *a == "--bind" || a.starts_with("--bind="))
        {
            cmd.args(["--bind", "127.0.0.1"]);
        }
        cmd.args(extra)
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
            seen: Vec::new(),
            stderr,
            tcp_port: 0,
            udp_port: 0,
        };
        let ready = p.expect("ready", ANY, START_TIMEOUT);
        p.tcp_port = ready["tcp_port"].as_u64().unwrap_or(0) as u16;
        p.udp_port = ready["udp_port"].as_u64().unwrap_or(0) as u16;
        p
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
        if let Err(e) = self.try_send(line) {
            self.fail(&format!("cannot send {line:?}: {e}"));
        }
    }

    /// Like [`send`](Self::send), but reports a closed pipe instead.
    pub fn try_send(&mut self, line: &str) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "stdin closed"))?;
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        stdin.write_all(&bytes)?;
        stdin.flush()
    }

    /// Closes the peer's stdin (EOF: the peer quits).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn take_from_backlog(&mut self, pred: &mut dyn FnMut(&Value) -> bool) -> Option<Value> {
        let i = self.backlog.iter().position(pred)?;
        self.backlog.remove(i)
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

    fn try_expect_where(
        &mut self,
        pred: &mut dyn FnMut(&Value) -> bool,
        timeout: Duration,
    ) -> Result<Value, String> {
        if let Some(v) = self.take_from_backlog(pred) {
            return Ok(v);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return Ok(v);
                    }
                    self.backlog.push_back(v);
                }
                Err(RecvTimeoutError::Timeout) => return Err("it did not come".into()),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(Duration::from_secs(1));
                    return Err(format!("the peer's output ended (exit: {status:?})"));
                }
            }
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

    /// Moves every event already printed into the backlog (no waiting) and
    /// returns a view of it.
    pub fn backlog(&mut self) -> &VecDeque<Value> {
        while let Ok(v) = self.events.try_recv() {
            self.seen.push(v.clone());
            self.backlog.push_back(v);
        }
        &self.backlog
    }

    /// Forgets the backlog (e.g. after a noisy phase).
    pub fn clear_backlog(&mut self) {
        self.backlog();
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
        let v = self.expect_where(
            &format!("{} (or an error) after {cmd:?}", describe(event, fields)),
            |v| matches(v, event, fields) || matches(v, "error", ANY),
            timeout,
        );
        if !matches(&v, event, fields) {
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
        let pid = self.pid() as libc::pid_t;
        // SAFETY: signalling our own (not yet reaped) child by pid.
        if unsafe { libc::kill(pid, sig) } != 0 {
            let e = io::Error::last_os_error();
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

    /// Panics with `msg`, the events seen and the stderr tail.
    #[track_caller]
    pub fn fail(&mut self, msg: &str) -> ! {
        self.backlog();
        let shown = &self.seen[self.seen.len().saturating_sub(SHOW_EVENTS)..];
        let events: Vec<String> = shown.iter().map(|v| format!("  {v}")).collect();
        let status = match self.exit {
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exited with code {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => format!("{s}"),
            },
            None => "running".into(),
        };
        panic!(
            "peer {}: {msg}\n---- {} event(s) seen, last {} ({} still in the backlog) ----\n{}\n---- process: {status}; stderr (tail) ----\n{}",
            self.name,
            self.seen.len(),
            shown.len(),
            self.backlog.len(),
            events.join("\n"),
            tail(&self.stderr(), SHOW_STDERR)
        );
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill9();
    }
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
