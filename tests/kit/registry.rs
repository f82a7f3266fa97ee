//! The registry fixture: the real `registry` binary, started through a
//! [`RegistryBuilder`] (flags, store, namespace, listening address), killed
//! (SIGKILL) on drop. It can be killed with `kill -9`, interrupted (SIGINT)
//! and restarted on the same port and store; its stderr goes to a log file
//! that is printed if the test panics.
//!
//! It speaks TLS, and the kit adds `--insecure` unless the builder says
//! [`tls_only`](RegistryBuilder::tls_only): peers still get TLS (they
//! always ask for it), while the raw plaintext [`Client`] keeps working.
//! Its certificate's fingerprint is read from its second line of output.

use super::client::{Client, Session};
use super::heartbeat::Heartbeater;
use super::process::{command, default_log, first_lines, kill_child, spawn_child_with_nofile};
use super::process::{tail, wait_child};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Registry log lines shown in failure messages.
const SHOW_LOG: usize = 40;

/// How to start a [`Registry`]; [`Registry::builder`] makes one.
pub struct RegistryBuilder {
    flags: Vec<String>,
    store: Option<String>,
    prefix: Vec<String>,
    listen: String,
    connect_ip: Option<IpAddr>,
    bin: PathBuf,
    env: Vec<(String, String)>,
    dir: Option<PathBuf>,
    log_name: String,
    nofile: u64,
    tls_only: bool,
}

impl RegistryBuilder {
    /// TLS only, as the product runs. Without it the kit adds `--insecure`
    /// (the registry then serves TLS peers with TLS and the kit's raw
    /// plaintext [`Client`] too).
    pub fn tls_only(mut self) -> Self {
        self.tls_only = true;
        self
    }

    /// Extra command-line flags.
    pub fn flags(mut self, flags: &[&str]) -> Self {
        self.flags.extend(flags.iter().map(|s| s.to_string()));
        self
    }

    /// A store path or `mongodb://` URI (default: `r.db` in the temporary
    /// directory, an embedded store).
    pub fn store(mut self, store: &str) -> Self {
        self.store = Some(store.to_string());
        self
    }

    /// Run through a command prefix (`ip netns exec NS`).
    pub fn prefix(mut self, prefix: &[String]) -> Self {
        self.prefix = prefix.to_vec();
        self
    }

    /// The `--listen` address (default `127.0.0.1:0`; port 0 for a free one).
    pub fn listen(mut self, listen: &str) -> Self {
        self.listen = listen.to_string();
        self
    }

    /// The IP clients are told to use (default: the one it reports).
    pub fn connect_ip(mut self, ip: IpAddr) -> Self {
        self.connect_ip = Some(ip);
        self
    }

    /// Another registry executable (the benchmark's release build).
    pub fn bin(mut self, bin: &Path) -> Self {
        self.bin = bin.to_path_buf();
        self
    }

    /// Extra environment variables.
    pub fn envs(mut self, vars: &[(&str, &str)]) -> Self {
        self.env
            .extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// Keep the log (and default store) in `dir` instead of a temporary
    /// directory, with the log named `name`.
    pub fn log_in(mut self, dir: &Path, name: &str) -> Self {
        self.dir = Some(dir.to_path_buf());
        self.log_name = name.to_string();
        self
    }

    /// The open-file limit (soft and hard) of the process (0: inherited).
    pub fn nofile(mut self, n: u64) -> Self {
        self.nofile = n;
        self
    }

    /// Starts it; `Err` (with the log's tail) if it does not come up.
    pub fn try_start(self) -> Result<Registry, String> {
        let (dir, tmp) = match &self.dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let store = self
            .store
            .clone()
            .unwrap_or_else(|| dir.join("r.db").to_string_lossy().into_owned());
        let (listen_ip, port) = match self.listen.rsplit_once(':') {
            Some((ip, port)) => (ip.to_string(), port.parse().unwrap_or(0)),
            None => (self.listen.clone(), 0),
        };
        let mut r = Registry {
            child: None,
            port,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            listen_ip,
            store,
            log: dir.join(&self.log_name),
            dir,
            _tmp: tmp,
            how: self,
            fingerprint: String::new(),
        };
        r.spawn()?;
        Ok(r)
    }

    /// Starts it; panics if it does not come up.
    pub fn start(self) -> Registry {
        self.try_start().unwrap_or_else(|e| panic!("{e}"))
    }
}

/// A running `registry` process, SIGKILLed on drop.
pub struct Registry {
    child: Option<Child>,
    port: u16,
    addr: SocketAddr,
    listen_ip: String,
    store: String,
    log: PathBuf,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    how: RegistryBuilder,
    /// The certificate fingerprint it printed (`SHA256:…`).
    fingerprint: String,
}

impl Registry {
    /// A builder: `127.0.0.1:0`, an embedded store in a fresh temporary
    /// directory, no extra flags.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder {
            flags: Vec::new(),
            store: None,
            prefix: Vec::new(),
            listen: "127.0.0.1:0".into(),
            connect_ip: None,
            bin: PathBuf::from(env!("CARGO_BIN_EXE_registry")),
            env: Vec::new(),
            dir: None,
            log_name: "registry.log".into(),
            nofile: 0,
            tls_only: false,
        }
    }

    /// On `127.0.0.1:0` with an embedded store in a fresh temporary
    /// directory, plus `flags`.
    pub fn start(flags: &[&str]) -> Registry {
        Registry::builder().flags(flags).start()
    }

    /// Where clients reach it.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The fingerprint of its TLS certificate, as it printed it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The store path or URI it runs with.
    pub fn store(&self) -> &str {
        &self.store
    }

    /// The directory of its log (and default store).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("registry not running").id()
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything it wrote on stderr, over all its runs.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("open the registry log: {e}"))?;
        let _ = writeln!(log, "==== kit: starting on port {} ====", self.port);
        let how = &self.how;
        let mut cmd = command(&how.prefix, &how.bin);
        cmd.arg("--listen")
            .arg(format!("{}:{}", self.listen_ip, self.port))
            .arg("--store")
            .arg(&self.store)
            .args(&how.flags)
            .args((!how.tls_only).then_some("--insecure"))
            // The certificate of a memory or MongoDB store goes there.
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .envs(how.env.iter().map(|(k, v)| (k, v)))
            .env_remove("REGISTRY_LISTEN")
            .env_remove("REGISTRY_STORE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if !how.env.iter().any(|(k, _)| k == "RUST_LOG") {
            default_log(&mut cmd, "info");
        }
        let mut child = spawn_child_with_nofile(cmd, how.nofile)
            .map_err(|e| format!("cannot run the registry: {e}"))?;
        let why = match first_lines(&mut child, 2) {
            Ok(lines) => match (
                lines[0]
                    .strip_prefix("registry listening on ")
                    .map(str::parse::<SocketAddr>),
                lines[1].strip_prefix("registry certificate "),
            ) {
                (Some(Ok(addr)), Some(fp)) => {
                    self.fingerprint = fp.to_string();
                    self.port = addr.port();
                    self.addr = SocketAddr::new(how.connect_ip.unwrap_or(addr.ip()), addr.port());
                    self.child = Some(child);
                    return Ok(());
                }
                _ => format!("unexpected first lines {lines:?}"),
            },
            Err(e) => e,
        };
        kill_child(&mut child);
        Err(format!(
            "the registry did not start: {why}\n---- registry log ----\n{}",
            tail(&self.log(), SHOW_LOG)
        ))
    }

    /// SIGKILLs the registry (if running) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_child(&mut child);
        }
    }

    /// Sends SIGINT and waits up to `limit` for the exit status (`None`: it
    /// did not exit in time and was killed).
    pub fn interrupt(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.signal_and_wait(&[libc::SIGINT], limit)
    }

    /// Sends each of `signals` in turn, then waits up to `limit` for the
    /// exit status (`None`: it did not exit in time and was killed).
    pub fn signal_and_wait(
        &mut self,
        signals: &[libc::c_int],
        limit: Duration,
    ) -> Option<ExitStatus> {
        let mut child = self.child.take().expect("registry not running");
        for &sig in signals {
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(child.id() as libc::pid_t, sig) };
        }
        let status = wait_child(&mut child, limit);
        if status.is_none() {
            kill_child(&mut child);
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

    /// A raw NDJSON connection to it.
    pub fn client(&self) -> Client {
        Client::to(self.addr)
    }

    /// Sends one heartbeat datagram for `token` to its UDP port.
    pub fn udp_heartbeat(&self, token: &str) {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        sock.send_to(&super::heartbeat::datagram(token), self.addr)
            .expect("send heartbeat");
    }

    /// Sends UDP heartbeats for `token` every `every` until the result is dropped.
    pub fn heartbeater(&self, token: &str, every: Duration) -> Heartbeater {
        Heartbeater::for_token(self.addr, token, every)
    }

    /// Registers `username` (unless it exists) and logs it in over a raw
    /// connection, announcing `tcp_port`/`udp_port`: a user the registry
    /// has online where no peer may be listening. The session lasts while
    /// the returned value lives (and, as nothing sends heartbeats, at most
    /// the registry's session time-out).
    pub fn ghost_login(&self, username: &str, tcp_port: u16, udp_port: u16) -> Session {
        Session::login(self.addr, username, tcp_port, udp_port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill9();
        if thread::panicking() {
            eprintln!(
                "---- registry log (tail) ----\n{}",
                tail(&self.log(), SHOW_LOG)
            );
        }
    }
}
