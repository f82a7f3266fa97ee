//! The IRC baseline: the room workload (one sender, paced messages then a
//! burst) through ngircd, Debian's IRC server, in the same run. The server
//! and its clients are here; the members' readers are in [`irc_read`], the
//! report in [`irc_report`].
//!
//! ngircd throttles a user that sends more than 3 commands per pass of its
//! main loop or more than 256 bytes a second (`Handle_Buffer` and
//! `Read_Request` in its `conn.c`) by a one-second penalty. Its documented
//! ways out are used: `MaxPenaltyTime = 0` ("0 to disable penalties
//! altogether", ngircd.conf(5)), and the sender becomes an IRC operator
//! (an `[Operator]` block and `OPER`) and sets user mode `F`, "relaxed flood
//! protection (only settable by IRC Operators)" (`doc/Modes.txt`).

use super::*;

pub const CHANNEL: &str = "#bench";
const OPER_NAME: &str = "bench";
const SENDER: &str = "sender";
/// How long registering, joining or becoming an operator may take.
const STEP_WAIT: Duration = Duration::from_secs(15);

/// The ngircd binary: from PATH or /usr/sbin, else installed from Debian
/// (`apt-get install -y ngircd`, with `apt-get update` if that fails) when
/// the bench runs as root. Returns the path and whether it was installed now.
pub fn ensure_ngircd(dir: &Path) -> Result<(PathBuf, bool), String> {
    if let Some(p) = find_ngircd() {
        return Ok((p, false));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("ngircd is not installed and the bench is not root to install it (apt-get install ngircd)".into());
    }
    progress!("irc: ngircd missing; apt-get install -y ngircd");
    if let Err(e) = apt(dir, &["install", "-y", "ngircd"]) {
        progress!("irc: {e}; apt-get update and again");
        apt(dir, &["update"])?;
        apt(dir, &["install", "-y", "ngircd"])?;
    }
    find_ngircd().map(|p| (p, true)).ok_or_else(|| {
        "apt-get installed ngircd but there is no ngircd in PATH or /usr/sbin".into()
    })
}

fn find_ngircd() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push("/usr/sbin".into());
    dirs.into_iter()
        .map(|d| d.join("ngircd"))
        .find(|p| p.is_file())
}

/// `apt-get ARGS`, bounded to 10 minutes, output in `dir/apt.log`.
fn apt(dir: &Path, args: &[&str]) -> Result<(), String> {
    let log_path = dir.join("apt.log");
    let log = File::create(&log_path).map_err(|e| format!("apt.log: {e}"))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("apt-get: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(200)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("apt-get {} took over 10 minutes", args.join(" ")));
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    let out = fs::read_to_string(&log_path).unwrap_or_default();
    Err(format!(
        "apt-get {} failed ({status}): {}",
        args.join(" "),
        tail(&out, 2).replace('\n', " | ")
    ))
}

/// `ngircd --version`'s first line.
pub fn ngircd_version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "?".into())
}

/// An ngircd on 127.0.0.1 with a generated configuration; killed on drop.
pub struct Ngircd {
    child: Child,
    pub port: u16,
    pub oper_password: String,
}

impl Drop for Ngircd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Ngircd {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn start(bin: &Path, dir: &Path) -> Result<Ngircd, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("a free port: {e}"))?
            .port();
        let oper_password = format!("{:016x}", rand::random::<u64>());
        let conf = dir.join("ngircd.conf");
        fs::write(&conf, config(port, &oper_password)).map_err(|e| format!("ngircd.conf: {e}"))?;
        let log_path = dir.join("ngircd.log");
        let log = File::create(&log_path).map_err(|e| format!("ngircd.log: {e}"))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(bin);
        cmd.arg("-n")
            .arg("-f")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        let child = spawn(cmd).map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut server = Ngircd {
            child,
            port,
            oper_password,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            let exited = matches!(server.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > deadline {
                let out = fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!(
                    "ngircd {} on port {port}: {}",
                    if exited { "exited" } else { "never listened" },
                    tail(&out, 3).replace('\n', " | ")
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A minimal ngircd.conf: loopback only, no PAM, ident or DNS lookups, no
/// connection or channel limits, no penalties, pings far apart, and one
/// operator for the sender.
fn config(port: u16, oper_password: &str) -> String {
    format!(
        "# Generated by the lanchat bench.
[Global]
\tName = bench.irc.invalid
\tInfo = lanchat bench baseline
\tListen = 127.0.0.1
\tPorts = {port}
\tMotdPhrase = bench
[Limits]
\tMaxConnections = 0
\tMaxConnectionsIP = 0
\tMaxJoins = 0
\tMaxNickLength = 16
\tMaxPenaltyTime = 0
\tPingTimeout = 600
\tPongTimeout = 600
[Options]
\tDNS = no
\tIdent = no
\tPAM = no
\tRequireAuthPing = no
[Operator]
\tName = {OPER_NAME}
\tPassword = {oper_password}
"
    )
}

/// A registered client connection and what was read past the last line
/// the setup looked at.
pub struct IrcConn {
    pub s: TcpStream,
    pub buf: Vec<u8>,
}

impl IrcConn {
    /// Connects and sends NICK and USER (registration completes later, see
    /// [`IrcConn::wait`]).
    pub fn connect(port: u16, nick: &str) -> Result<IrcConn, String> {
        let mut s =
            TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("{nick}: connect: {e}"))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        // A server that stops reading must not hold the sender for ever.
        s.set_write_timeout(Some(STEP_WAIT))
            .map_err(|e| e.to_string())?;
        s.write_all(format!("NICK {nick}\r\nUSER {nick} 0 * :lanchat bench\r\n").as_bytes())
            .map_err(|e| format!("{nick}: {e}"))?;
        Ok(IrcConn { s, buf: Vec::new() })
    }

    pub fn send(&mut self, line: &str) -> Result<(), String> {
        self.s
            .write_all(format!("{line}\r\n").as_bytes())
            .map_err(|e| format!("sending {line:?}: {e}"))
    }

    /// Reads lines (answering PINGs) until `check` says done (`Some(Ok)`) or
    /// failed (`Some(Err)`), for at most [`STEP_WAIT`] and not past `until`.
    pub fn wait(
        &mut self,
        until: Instant,
        what: &str,
        check: impl Fn(&str) -> Option<Result<(), String>>,
    ) -> Result<(), String> {
        let deadline = (Instant::now() + STEP_WAIT).min(until);
        let mut chunk = [0u8; 4096];
        loop {
            while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end();
                if let Some(rest) = line.strip_prefix("PING ") {
                    self.send(&format!("PONG {rest}"))?;
                } else if line.starts_with("ERROR") {
                    return Err(format!("{what}: {line}"));
                } else if let Some(r) = check(line) {
                    return r.map_err(|e| format!("{what}: {e}"));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("{what}: no answer in time"));
            }
            self.s
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            match self.s.read(&mut chunk) {
                Ok(0) => return Err(format!("{what}: the server closed the connection")),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("{what}: {e}")),
            }
        }
    }
}

/// The numeric of a server reply line (`:server 001 nick ...` → "001").
pub fn numeric(line: &str) -> Option<&str> {
    let mut w = line.split(' ');
    w.next().filter(|p| p.starts_with(':'))?;
    w.next()
        .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()))
}

/// Waits for the end of registration (001); a 4xx reply is an error.
pub fn registered(line: &str) -> Option<Result<(), String>> {
    match numeric(line) {
        Some("001") => Some(Ok(())),
        Some(n) if n.starts_with('4') => Some(Err(line.to_string())),
        _ => None,
    }
}

/// Waits for the end of NAMES (366) after a JOIN.
pub fn joined(line: &str) -> Option<Result<(), String>> {
    match numeric(line) {
        Some("366") => Some(Ok(())),
        Some(n) if n.starts_with('4') => Some(Err(line.to_string())),
        _ => None,
    }
}

/// `n - 1` members registered and joined (all registrations pipelined, then
/// all joins), then the sender, which also becomes an operator with user
/// mode F (see the module comment) before it joins, then one warm-up line
/// that every member has received.
pub fn irc_setup(
    server: &Ngircd,
    n: usize,
    until: Instant,
) -> Result<(IrcConn, Vec<IrcConn>), String> {
    let mut members = Vec::with_capacity(n - 1);
    for i in 1..n {
        members.push(IrcConn::connect(server.port, &format!("m{i:03}"))?);
    }
    for m in &mut members {
        m.wait(until, "registering a member", registered)?;
    }
    for m in &mut members {
        m.send(&format!("JOIN {CHANNEL}"))?;
    }
    for m in &mut members {
        m.wait(until, "a member joining", joined)?;
    }
    let mut sender = IrcConn::connect(server.port, SENDER)?;
    sender.wait(until, "registering the sender", registered)?;
    sender.send(&format!("OPER {OPER_NAME} {}", server.oper_password))?;
    sender.wait(until, "OPER", |l| match numeric(l) {
        Some("381") => Some(Ok(())),
        Some(c) if c.starts_with('4') => Some(Err(l.to_string())),
        _ => None,
    })?;
    sender.send(&format!("MODE {SENDER} +F"))?;
    sender.wait(until, "MODE +F", |l| {
        if l.contains(&format!(" MODE {SENDER} ")) && l.contains("+F") {
            Some(Ok(()))
        } else if l.contains(" MODE ") && l.contains(SENDER) {
            Some(Err(format!("mode F not granted: {l}")))
        } else {
            numeric(l)
                .filter(|c| c.starts_with('4') || c.starts_with('5'))
                .map(|_| Err(l.to_string()))
        }
    })?;
    sender.send(&format!("JOIN {CHANNEL}"))?;
    sender.wait(until, "the sender joining", joined)?;
    // One unmeasured line that every member must get before the run: right
    // after the sender's JOIN ngircd holds its first channel messages for
    // about 40 ms (BENCHMARKS.md), a start-up cost, not the steady state.
    sender.send(&format!("PRIVMSG {CHANNEL} :warm-up"))?;
    for m in &mut members {
        m.wait(until, "a member getting the warm-up line", |l| {
            l.contains(&format!(" PRIVMSG {CHANNEL} :warm-up"))
                .then_some(Ok(()))
        })?;
    }
    Ok((sender, members))
}

/// Wall-clock time in nanoseconds since the epoch (the clock of
/// SO_TIMESTAMPNS).
pub fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
