//! Helpers for the registry's black-box tests (`mod common;`): a [`Registry`]
//! fixture that runs the real `registry` binary and kills it on drop, a raw
//! NDJSON [`Client`] with bounded reads, a UDP [`Heartbeater`], and polling.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Password used for every test account.
pub const PASSWORD: &str = "correct horse battery";
/// Bound on every client read: no test can hang on a silent registry.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the registry may take to print its `listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Flags that keep sessions alive for the length of any test that does not
/// exercise time-outs, so a slow (loaded) machine cannot make it flaky.
pub const LONG_SESSIONS: &[&str] = &[
    "--heartbeat-interval-ms",
    "1000",
    "--session-timeout-ms",
    "30000",
];

/// Flags for presence tests: sessions go offline 600 ms after the last heartbeat.
pub const SHORT_SESSIONS: &[&str] = &[
    "--heartbeat-interval-ms",
    "200",
    "--session-timeout-ms",
    "600",
];

/// A running `registry` process on 127.0.0.1, killed (SIGKILL) on drop.
pub struct Registry {
    child: Option<Child>,
    /// Kept open so a late write to stdout never hits a closed pipe.
    _stdout: Option<BufReader<ChildStdout>>,
    pub port: u16,
    store: String,
    extra: Vec<String>,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry on `127.0.0.1:0` with an embedded store in a fresh
    /// temporary directory, plus `extra` flags.
    pub fn start(extra: &[&str]) -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("r.db").to_string_lossy().into_owned();
        Registry::start_with_store(dir, &store, extra)
    }

    /// Starts a registry on `127.0.0.1:0` using `store` (a path or URI).
    pub fn start_with_store(dir: tempfile::TempDir, store: &str, extra: &[&str]) -> Registry {
        let mut r = Registry {
            child: None,
            _stdout: None,
            port: 0,
            store: store.to_string(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            dir,
        };
        r.spawn("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        r
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// What the registry logged so far (stderr), for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("registry not running").id()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    fn spawn(&mut self, listen: &str) -> Result<(), String> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("open log: {e}"))?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_registry"));
        cmd.arg("--listen")
            .arg(listen)
            .arg("--store")
            .arg(&self.store)
            .args(&self.extra)
            .env("RUST_LOG", "debug")
            .env_remove("REGISTRY_LISTEN")
            .env_remove("REGISTRY_STORE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        // The registry dies with the test thread that started it, even if
        // the test process is killed before `Drop` runs.
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run registry: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let res = reader.read_line(&mut line).map(|_| line);
            let _ = tx.send((res, reader));
        });
        let fail = |child: &mut Child, why: String, me: &Registry| {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("registry did not start: {why}\nlog:\n{}", me.log()))
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok((Ok(line), reader)) => {
                let Some(addr) = line.trim().strip_prefix("registry listening on ") else {
                    return fail(&mut child, format!("unexpected stdout {line:?}"), self);
                };
                let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
                self.port = addr.port();
                self.child = Some(child);
                self._stdout = Some(reader);
                Ok(())
            }
            Ok((Err(e), _)) => fail(&mut child, format!("reading stdout: {e}"), self),
            Err(_) => fail(&mut child, "no listening line in time".into(), self),
        }
    }

    /// SIGKILLs the registry and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self._stdout = None;
    }

    /// Sends SIGINT and waits up to `within` for the exit status.
    pub fn interrupt(&mut self, within: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take().expect("registry not running");
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the registry again (after [`kill9`](Self::kill9)) on the same
    /// store and the same port, retrying while the port is still taken.
    pub fn restart_same_port(&mut self) {
        self.kill9();
        let listen = format!("127.0.0.1:{}", self.port);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn(&listen) {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => panic!("restart failed: {e}"),
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// Sends one heartbeat datagram for `token` to the registry's UDP port.
    pub fn udp_heartbeat(&self, token: &str) {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let msg = json!({"op": "heartbeat", "token": token}).to_string();
        sock.send_to(msg.as_bytes(), self.addr())
            .expect("send heartbeat");
    }

    /// Sends UDP heartbeats for `token` every `every` until the result is dropped.
    pub fn heartbeater(&self, token: &str, every: Duration) -> Heartbeater {
        Heartbeater::start(self.addr(), token, every)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill9();
        if thread::panicking() {
            eprintln!("---- registry log ----\n{}", self.log());
        }
    }
}

/// A thread sending UDP heartbeats for one token until dropped.
pub struct Heartbeater {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeater {
    pub fn start(to: SocketAddr, token: &str, every: Duration) -> Heartbeater {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let msg = json!({"op": "heartbeat", "token": token}).to_string();
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let thread = thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let _ = sock.send_to(msg.as_bytes(), to);
                thread::sleep(every);
            }
        });
        Heartbeater {
            stop,
            thread: Some(thread),
        }
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

/// One raw NDJSON connection to the registry. Every read is bounded by
/// [`READ_TIMEOUT`].
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    next_id: u64,
}

/// What reading a line found.
#[derive(Debug)]
pub enum Read1 {
    Line(Vec<u8>),
    Eof,
    Reset,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to registry");
        Client::from_stream(stream)
    }

    /// Connects from source address `src` (any 127.x.y.z works on Linux
    /// loopback), so the registry sees another client IP.
    pub fn connect_from(src: Ipv4Addr, port: u16) -> Client {
        let stream = tcp_connect_from(src, SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
            .unwrap_or_else(|e| panic!("connect from {src}: {e}"));
        Client::from_stream(stream)
    }

    /// Wraps an existing stream (e.g. a clone, to read on another thread).
    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        let _ = stream.set_nodelay(true);
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client {
            stream,
            reader,
            next_id: 1,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send to registry");
    }

    /// Like [`send_raw`](Self::send_raw) but tolerates a closed connection.
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one line (without `\n`), EOF, or a connection reset. Panics on
    /// a time-out or another error.
    pub fn read_line_raw(&mut self) -> Read1 {
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) => Read1::Eof,
            Ok(_) => {
                assert_eq!(buf.pop(), Some(b'\n'), "line not terminated: {buf:?}");
                Read1::Line(buf)
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Read1::Reset,
            Err(e) => panic!("reading a reply: {e}"),
        }
    }

    /// Reads one reply line and parses it as JSON.
    pub fn read_reply(&mut self) -> Value {
        match self.read_line_raw() {
            Read1::Line(l) => serde_json::from_slice(&l)
                .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {:?}", lossy(&l))),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    /// Sends one request (an `id` is added if missing) and returns the reply,
    /// after checking it echoes the id.
    pub fn request(&mut self, mut req: Value) -> Value {
        let obj = req.as_object_mut().expect("request must be an object");
        if !obj.contains_key("id") {
            obj.insert("id".into(), json!(self.next_id));
            self.next_id += 1;
        }
        let id = obj["id"].clone();
        let mut line = serde_json::to_vec(&req).unwrap();
        line.push(b'\n');
        self.send_raw(&line);
        let reply = self.read_reply();
        assert_eq!(reply["id"], id, "reply id mismatch: {reply}");
        reply
    }

    /// A request that must succeed; returns the reply.
    pub fn ok(&mut self, req: Value) -> Value {
        let reply = self.request(req.clone());
        assert_eq!(reply["ok"], json!(true), "request {req} failed: {reply}");
        reply
    }

    /// A request that must fail; returns the error code.
    pub fn err(&mut self, req: Value) -> String {
        let reply = self.request(req.clone());
        assert_error_shape(&reply);
        assert_eq!(
            reply["ok"],
            json!(false),
            "request {req} succeeded: {reply}"
        );
        reply["code"].as_str().unwrap().to_string()
    }

    /// Asserts the request fails with `code`.
    pub fn expect_err(&mut self, req: Value, code: &str) {
        let got = self.err(req.clone());
        assert_eq!(got, code, "wrong error for {req}");
    }

    /// Waits (bounded) until the registry closes the connection: EOF or a
    /// reset, with no further reply in between.
    pub fn expect_closed(&mut self) {
        match self.read_line_raw() {
            Read1::Eof | Read1::Reset => {}
            Read1::Line(l) => panic!("expected the connection closed, got {:?}", lossy(&l)),
        }
    }

    /// Whether the registry has closed the connection (non-blocking check;
    /// `false` when it is open and quiet).
    pub fn is_closed(&mut self) -> bool {
        if !self.reader.buffer().is_empty() {
            return false;
        }
        self.stream.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        let r = self.stream.peek(&mut b);
        self.stream.set_nonblocking(false).unwrap();
        match r {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(_) => true,
        }
    }

    // ---- op helpers ----

    pub fn register(&mut self, username: &str) {
        let r = self.ok(json!({"op": "register", "username": username, "password": PASSWORD}));
        assert_eq!(r["username"], json!(username));
    }

    /// Logs in with ports (`tcp`, `tcp + 1`); returns the reply.
    pub fn login(&mut self, username: &str, tcp: u16) -> Value {
        self.ok(json!({
            "op": "login", "username": username, "password": PASSWORD,
            "tcp_port": tcp, "udp_port": tcp + 1,
        }))
    }

    /// Logs in and returns the token.
    pub fn login_token(&mut self, username: &str, tcp: u16) -> String {
        let r = self.login(username, tcp);
        let token = r["token"].as_str().unwrap().to_string();
        assert!(is_hex64(&token), "token shape: {token}");
        token
    }

    /// The `user` object `search` returns.
    pub fn search(&mut self, token: &str, username: &str) -> Value {
        let r = self.ok(json!({"op": "search", "token": token, "username": username}));
        r["user"].clone()
    }

    pub fn is_online(&mut self, token: &str, username: &str) -> bool {
        let u = self.search(token, username);
        let online = u["online"].as_bool().expect("online flag");
        assert_eq!(
            online,
            u.get("address").is_some(),
            "address iff online: {u}"
        );
        online
    }

    /// Member names of a room, from `members`.
    pub fn member_names(&mut self, token: &str, room: &str) -> Vec<String> {
        let r = self.request(json!({"op": "members", "token": token, "room": room}));
        if r["ok"] == json!(false) {
            assert_eq!(r["code"], json!("no_such_room"), "{r}");
            return Vec::new();
        }
        names(&r["room"]["members"])
    }
}

/// Usernames from a JSON array of user objects.
pub fn names(users: &Value) -> Vec<String> {
    users
        .as_array()
        .expect("array of users")
        .iter()
        .map(|u| u["username"].as_str().expect("username").to_string())
        .collect()
}

/// Error replies carry exactly id, ok:false, code and message.
pub fn assert_error_shape(reply: &Value) {
    if reply["ok"] != json!(false) {
        return;
    }
    let obj = reply.as_object().expect("reply object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "id", "message", "ok"], "{reply}");
    assert!(
        reply["code"].is_string() && reply["message"].is_string(),
        "{reply}"
    );
}

pub fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.chars().count() > 300 {
        let head: String = s.chars().take(300).collect();
        format!("{head}… ({} bytes)", b.len())
    } else {
        s.into_owned()
    }
}

/// Polls `cond` every `every` until it holds; panics with `what` after `within`.
/// Returns how long it took.
pub fn wait_until(
    within: Duration,
    every: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        if start.elapsed() >= within {
            panic!("timed out after {within:?} waiting for: {what}");
        }
        thread::sleep(every);
    }
}

/// A deterministic pseudo-random byte source (xorshift64*).
pub struct Xorshift(u64);

impl Xorshift {
    pub fn new(seed: u64) -> Xorshift {
        Xorshift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// A TCP connection from a chosen source IPv4 address.
fn tcp_connect_from(src: Ipv4Addr, dst: SocketAddrV4) -> io::Result<TcpStream> {
    fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
        libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: a.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            },
            sin_zero: [0; 8],
        }
    }
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor we own; on success it is
    // handed to TcpStream, which closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let s = sockaddr(SocketAddrV4::new(src, 0));
        if libc::bind(fd, (&s as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        let d = sockaddr(dst);
        if libc::connect(fd, (&d as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stream)
    }
}
