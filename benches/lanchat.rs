//! lanchat benchmarks: registry throughput and concurrency, room fan-out
//! latency, footprint, and the loopback floor the latencies compare with.
//!
//! `make bench` (or `cargo bench --bench lanchat -- [--quick] [--only LIST]`)
//! starts the real release binaries (`target/release/registry` and
//! `target/release/peer`, built by `cargo build --release --bins`), prints a
//! table, and writes the same figures, with a description of the machine, to
//! `target/bench/results.json`. Targets are reported next to the figures
//! (MET / NOT MET), never asserted. See BENCHMARKS.md for a run and what the
//! figures mean.
//!
//! Sections (`--only`, comma-separated): `floor`, `registry`, `concurrency`,
//! `rooms`, `footprint`. The floor also runs whenever `registry` or `rooms`
//! does, since their latencies are shown as ratios to it.
//!
//! Every loop is bounded in count and in time; every child process gets
//! `PR_SET_PDEATHSIG = SIGKILL` (and is killed on drop), and the network
//! namespaces of the lossy room run are deleted by a guard.

#[path = "../tests/kit/mod.rs"]
mod kit;

use kit::mongo as support;

use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: cargo bench --bench lanchat -- [--quick] [--only floor,registry,concurrency,rooms,footprint]
       [--rooms 10,30,100] [--room-rate 200] [--room-msgs 400] [--keep]
  --quick   smaller counts (under 2 minutes)
  --only    run only these sections (the floor runs too for registry and rooms)
  --rooms   room sizes to measure (default 10,30,100)
  --room-rate, --room-msgs   the first (base) room run's offered rate and count (200/s, 400; quick 100)
  --keep    keep the work directory: registry logs, and every peer's stderr and JSON events";
const SECTIONS: [&str; 5] = ["floor", "registry", "concurrency", "rooms", "footprint"];
const PASSWORD: &str = "correct horse battery";
/// Cheap Argon2id for parts that only need many accounts quickly.
const CHEAP_ARGON2: [&str; 4] = ["--argon2-memory-kib", "256", "--argon2-passes", "1"];
/// So the registry's per-connection pacing never caps throughput.
const NO_PACING: [&str; 2] = ["--requests-per-sec", "1000000"];
/// A rate step whose p99 exceeds this counts as a latency blow-up.
const BLOWUP_P99_US: f64 = 100_000.0;
/// A rate step must send at least this share of the offered rate.
const MIN_ACHIEVED: f64 = 0.9;
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a registry request may take before it counts as failed.
const LONG_WAIT: Duration = Duration::from_secs(15);
/// The same while filling a registry with sessions (a login with cheap
/// Argon2id takes milliseconds; a connection the registry never accepted
/// should not hold a worker for long).
const FILL_WAIT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- options

struct Opts {
    quick: bool,
    only: BTreeSet<String>,
    rooms: Option<Vec<usize>>,
    room_rate: Option<f64>,
    room_msgs: Option<usize>,
    keep: bool,
}

impl Opts {
    fn has(&self, s: &str) -> bool {
        self.only.contains(s)
    }
}

fn parse_args() -> Result<Opts, String> {
    let mut quick = false;
    let mut keep = false;
    let mut rooms = None;
    let mut room_rate = None;
    let mut room_msgs = None;
    let mut only: BTreeSet<String> = SECTIONS.iter().map(|s| s.to_string()).collect();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--keep" => keep = true,
            "--room-rate" => {
                let v = args.next().ok_or("--room-rate needs a number")?;
                let r: f64 = v.parse().map_err(|_| format!("bad --room-rate {v:?}"))?;
                if !(1.0..=20_000.0).contains(&r) {
                    return Err("--room-rate is 1 to 20000".into());
                }
                room_rate = Some(r);
            }
            "--room-msgs" => {
                let v = args.next().ok_or("--room-msgs needs a number")?;
                let n: usize = v.parse().map_err(|_| format!("bad --room-msgs {v:?}"))?;
                if !(1..=100_000).contains(&n) {
                    return Err("--room-msgs is 1 to 100000".into());
                }
                room_msgs = Some(n);
            }
            "--rooms" => {
                let list = args.next().ok_or("--rooms needs a list")?;
                let sizes = list
                    .split(',')
                    .map(|x| x.trim().parse::<usize>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| format!("bad --rooms {list:?}"))?;
                if sizes.iter().any(|&n| !(2..=250).contains(&n)) {
                    return Err("room sizes are 2 to 250".into());
                }
                rooms = Some(sizes);
            }
            // `cargo bench` adds this one.
            "--bench" => {}
            "--only" => {
                let list = args.next().ok_or("--only needs a list")?;
                only.clear();
                for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if !SECTIONS.contains(&s) {
                        return Err(format!("unknown section {s:?}"));
                    }
                    only.insert(s.to_string());
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => {
                if let Some(list) = other.strip_prefix("--only=") {
                    only.clear();
                    for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        if !SECTIONS.contains(&s) {
                            return Err(format!("unknown section {s:?}"));
                        }
                        only.insert(s.to_string());
                    }
                } else {
                    return Err(format!("unknown argument {other:?}"));
                }
            }
        }
    }
    if only.is_empty() {
        return Err("--only selects no section".into());
    }
    Ok(Opts {
        quick,
        only,
        rooms,
        room_rate,
        room_msgs,
        keep,
    })
}

/// Counts and durations of a run (`--quick` or full).
struct Params {
    quick: bool,
    floor_trips: usize,
    op_secs: f64,
    op_max: u64,
    login_secs: f64,
    login_clients: Vec<usize>,
    sessions: usize,
    search_secs: f64,
    room_sizes: Vec<usize>,
    room_msgs: usize,
    base_rate: f64,
    step_rates: Vec<f64>,
    step_secs: f64,
    step_cap: usize,
    step_sizes: Vec<usize>,
    drain: Duration,
    lossy_members: usize,
    lossy_msgs: usize,
    idle_secs: u64,
}

impl Params {
    fn new(quick: bool) -> Params {
        if quick {
            Params {
                quick,
                floor_trips: 10_000,
                op_secs: 0.5,
                op_max: 200_000,
                login_secs: 1.0,
                login_clients: vec![1, 8],
                sessions: 10_000,
                search_secs: 3.0,
                room_sizes: vec![10, 30, 100],
                room_msgs: 100,
                base_rate: 200.0,
                step_rates: vec![500.0, 1000.0, 2000.0],
                step_secs: 0.5,
                step_cap: 1000,
                step_sizes: vec![30],
                drain: Duration::from_secs(5),
                lossy_members: 30,
                lossy_msgs: 100,
                idle_secs: 5,
            }
        } else {
            Params {
                quick,
                floor_trips: 10_000,
                op_secs: 3.0,
                op_max: 500_000,
                login_secs: 5.0,
                login_clients: vec![1, 8],
                sessions: 10_000,
                search_secs: 10.0,
                room_sizes: vec![10, 30, 100],
                room_msgs: 400,
                base_rate: 200.0,
                step_rates: vec![500.0, 1000.0, 2000.0, 5000.0],
                step_secs: 2.0,
                step_cap: 4000,
                step_sizes: vec![10, 30, 100],
                drain: Duration::from_secs(10),
                lossy_members: 30,
                lossy_msgs: 400,
                idle_secs: 30,
            }
        }
    }
}

// ---------------------------------------------------------------- small helpers

static T0: OnceLock<Instant> = OnceLock::new();

/// A progress line on stderr, stamped with the time since start.
macro_rules! progress {
    ($($a:tt)*) => {
        eprintln!("[{:>6.1}s] {}", T0.get_or_init(Instant::now).elapsed().as_secs_f64(), format!($($a)*))
    };
}

/// Latency summary, in microseconds.
#[derive(Clone, Copy, Default, Debug)]
struct Lat {
    n: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summary of latencies given in nanoseconds.
fn lat_ns(mut v: Vec<u64>) -> Lat {
    v.sort_unstable();
    Lat {
        n: v.len(),
        p50: percentile(&v, 50.0) as f64 / 1000.0,
        p99: percentile(&v, 99.0) as f64 / 1000.0,
        max: v.last().copied().unwrap_or(0) as f64 / 1000.0,
    }
}

fn lat_json(l: &Lat) -> Value {
    json!({"n": l.n, "p50_us": round2(l.p50), "p99_us": round2(l.p99), "max_us": round2(l.max)})
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A duration in microseconds, for people.
fn fmt_us(us: f64) -> String {
    if us < 100.0 {
        format!("{us:.1} µs")
    } else if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 100_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else if us < 10_000_000.0 {
        format!("{:.0} ms", us / 1000.0)
    } else {
        format!("{:.1} s", us / 1e6)
    }
}

fn fmt_rate(r: f64) -> String {
    if r >= 100.0 {
        group(r.round() as u64)
    } else {
        format!("{r:.1}")
    }
}

/// 12345 → "12,345".
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ratio(x: f64, floor: Option<f64>) -> String {
    match floor {
        Some(f) if f > 0.0 => format!("{:.1}x", x / f),
        _ => "n/a".into(),
    }
}

fn ratio_json(x: f64, floor: Option<f64>) -> Value {
    match floor {
        Some(f) if f > 0.0 => json!(round2(x / f)),
        _ => Value::Null,
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A left-aligned text table.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from("  ");
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(w[i] - c.chars().count() + 2));
            }
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for r in rows {
        let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
    }
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}

/// Runs a section; a panic in it becomes an error message, not the end of
/// the whole benchmark.
fn guarded<T>(name: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    progress!("== {name}");
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(format!("panicked: {}", panic_text(&*p))),
    }
}

// ---------------------------------------------------------------- /proc

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS").unwrap_or(0)
}

/// utime + stime, in clock ticks (includes threads that have exited).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat; `rest` starts at field 3.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// CPU time of the live threads, in nanoseconds (schedstat).
fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for e in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let s = fs::read_to_string(e.path().join("schedstat")).ok()?;
        total += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Datagrams the kernel dropped at the UDP socket bound to `port` (IPv4).
fn udp_drops(port: u16) -> Option<u64> {
    let s = fs::read_to_string("/proc/net/udp").ok()?;
    let want = format!(":{port:04X}");
    for l in s.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 13 && f[1].ends_with(&want) {
            return f.last()?.parse().ok();
        }
    }
    None
}

/// Raises this process's soft open-file limit to the hard one:
/// (before, after, hard).
fn raise_nofile() -> (u64, u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return (0, 0, 0);
        }
        let old = lim.rlim_cur;
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            return (old, old, lim.rlim_max);
        }
        (old, lim.rlim_cur, lim.rlim_max)
    }
}

/// Sets this process's open-file limit, soft and hard, to `want` if that
/// is higher than the hard limit (which needs root); children inherit it.
fn set_nofile(want: u64) -> Result<(), String> {
    let lim = libc::rlimit {
        rlim_cur: want,
        rlim_max: want,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error().to_string())
    }
}

/// Open file descriptors of a process.
fn fd_count(pid: u32) -> Option<usize> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

fn machine() -> Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let mem_kib = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let cmd = |args: &[&str]| {
        Command::new(args[0])
            .args(&args[1..])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let nproc = thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    json!({
        "nproc": nproc,
        "cpu_model": model,
        "mem_total_kib": mem_kib,
        "mem_total_gib": round2(mem_kib as f64 / 1024.0 / 1024.0),
        "kernel": cmd(&["uname", "-srm"]),
        "date": cmd(&["date", "-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "rustc": cmd(&["rustc", "--version"]),
        "loadavg_at_start": loadavg(),
    })
}

/// The 1-, 5- and 15-minute load averages: other work on the machine
/// skews every figure here.
fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------- child processes

struct Bins {
    registry: PathBuf,
    peer: PathBuf,
}

static BINS: OnceLock<Bins> = OnceLock::new();

fn bins() -> &'static Bins {
    BINS.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .filter(|t| !t.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
        let target = if target.is_relative() {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(target)
        } else {
            target
        };
        let b = Bins {
            registry: target.join("release").join("registry"),
            peer: target.join("release").join("peer"),
        };
        for p in [&b.registry, &b.peer] {
            if !p.exists() {
                eprintln!(
                    "{} is missing: run `cargo build --release --bins` first (make bench does)",
                    p.display()
                );
                std::process::exit(2);
            }
        }
        b
    })
}

/// When not 0, children get this open-file limit (soft and hard) instead
/// of the bench's own: lowering a limit needs no privilege.
static CHILD_NOFILE: AtomicU64 = AtomicU64::new(0);

/// A command for `bin`, through `prefix` (`ip netns exec NS`) if any, that
/// dies with the thread that spawns it (always the main thread here).
fn command(prefix: &[String], bin: &Path) -> Command {
    let mut cmd = match prefix.split_first() {
        None => Command::new(bin),
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
    };
    let nofile = CHILD_NOFILE.load(Ordering::Relaxed);
    // SAFETY: prctl and setrlimit are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            if nofile > 0 {
                let lim = libc::rlimit {
                    rlim_cur: nofile,
                    rlim_max: nofile,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd
}

/// Reads the first stdout line (bounded), then drains the rest on a thread.
fn first_line(child: &mut Child) -> Result<String, String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
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

/// A running `registry`, SIGKILLed on drop.
struct RegistryProc {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl RegistryProc {
    fn start(
        prefix: &[String],
        listen: &str,
        store: &str,
        extra: &[&str],
        log: PathBuf,
        connect_ip: Option<IpAddr>,
    ) -> Result<RegistryProc, String> {
        Self::start_env(prefix, listen, store, extra, log, connect_ip, &[])
    }

    fn start_env(
        prefix: &[String],
        listen: &str,
        store: &str,
        extra: &[&str],
        log: PathBuf,
        connect_ip: Option<IpAddr>,
        env: &[(&str, &str)],
    ) -> Result<RegistryProc, String> {
        let err_file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = command(prefix, &bins().registry)
            .args(["--listen", listen, "--store", store])
            .args(extra)
            .envs(env.iter().copied())
            .env_remove("REGISTRY_LISTEN")
            .env_remove("REGISTRY_STORE")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err_file))
            .spawn()
            .map_err(|e| format!("spawn registry: {e}"))?;
        let line = match first_line(&mut child) {
            Ok(l) => l,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("registry did not start: {e}\n{}", tail(&log, 20)));
            }
        };
        let addr: SocketAddr = line
            .strip_prefix("registry listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("unexpected first line from the registry: {line:?}"))?;
        let addr = SocketAddr::new(connect_ip.unwrap_or(addr.ip()), addr.port());
        Ok(RegistryProc { child, addr, log })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RegistryProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- registry client

/// One registry connection speaking NDJSON, blocking, one request at a time.
struct RegClient {
    w: TcpStream,
    r: BufReader<TcpStream>,
    next_id: u64,
    buf: Vec<u8>,
    reply: String,
    user: String,
    token: String,
}

fn is_ok(reply: &str) -> bool {
    reply.contains("\"ok\":true")
}

impl RegClient {
    fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<RegClient> {
        let w = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        w.set_nodelay(true)?;
        w.set_read_timeout(Some(timeout))?;
        w.set_write_timeout(Some(timeout))?;
        let r = BufReader::with_capacity(64 * 1024, w.try_clone()?);
        Ok(RegClient {
            w,
            r,
            next_id: 1,
            buf: Vec::with_capacity(256),
            reply: String::with_capacity(1024),
            user: String::new(),
            token: String::new(),
        })
    }

    /// Sends `{"id":N,BODY}` and returns the reply line.
    fn raw(&mut self, body: &str) -> io::Result<&str> {
        self.buf.clear();
        let _ = writeln!(self.buf, "{{\"id\":{},{body}}}", self.next_id);
        self.next_id += 1;
        self.w.write_all(&self.buf)?;
        self.reply.clear();
        if self.r.read_line(&mut self.reply)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the registry closed the connection",
            ));
        }
        Ok(self.reply.trim_end())
    }

    /// A request given as a JSON object; the parsed reply, or the error.
    fn req(&mut self, body: Value) -> Result<Value, String> {
        let s = body.to_string();
        let inner = &s[1..s.len() - 1];
        let line = self.raw(inner).map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(line).map_err(|e| format!("reply {line:?}: {e}"))?;
        if v["ok"] == json!(true) {
            Ok(v)
        } else {
            Err(format!(
                "{}: {}",
                v["code"].as_str().unwrap_or("?"),
                v["message"].as_str().unwrap_or("?")
            ))
        }
    }

    /// Retries while the registry answers `server_busy` (bounded).
    fn req_retry(&mut self, body: Value) -> Result<Value, String> {
        let mut tries = 0;
        loop {
            match self.req(body.clone()) {
                Err(e) if e.starts_with("server_busy") && tries < 20 => {
                    tries += 1;
                    thread::sleep(Duration::from_millis(100));
                }
                r => return r,
            }
        }
    }

    fn register(&mut self, user: &str) -> Result<(), String> {
        self.req_retry(json!({"op": "register", "username": user, "password": PASSWORD}))
            .map(|_| ())
    }

    fn login(&mut self, user: &str) -> Result<(), String> {
        let v = self.req_retry(json!({
            "op": "login", "username": user, "password": PASSWORD,
            "tcp_port": 40000, "udp_port": 40000,
        }))?;
        self.user = user.to_string();
        self.token = v["token"].as_str().ok_or("no token")?.to_string();
        Ok(())
    }

    fn logout(&mut self) -> Result<(), String> {
        let body = json!({"op": "logout", "token": self.token});
        self.req(body).map(|_| ())
    }

    /// Keeps only the connection (one descriptor instead of two).
    fn into_stream(self) -> TcpStream {
        self.w
    }
}

/// Registers and logs in `names`, each on its own connection, from
/// `workers` threads; calls `on_login(token)` right after each login.
/// Stops early after 20 failures or when `bound` has passed. Returns the
/// clients (in `names` order, failures left out), the failure count and
/// the first failure.
fn login_many(
    addr: SocketAddr,
    names: &[String],
    workers: usize,
    bound: Duration,
    timeout: Duration,
    on_login: &(dyn Fn(&str) + Sync),
) -> (Vec<RegClient>, usize, Option<String>) {
    let deadline = Instant::now() + bound;
    let failures = AtomicU64::new(0);
    let first_err: Mutex<Option<String>> = Mutex::new(None);
    let results: Vec<Vec<(usize, RegClient)>> = thread::scope(|s| {
        let hs: Vec<_> = (0..workers)
            .map(|w| {
                let failures = &failures;
                let first_err = &first_err;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in (w..names.len()).step_by(workers) {
                        if failures.load(Ordering::Relaxed) >= 20 || Instant::now() >= deadline {
                            break;
                        }
                        let r = RegClient::connect(addr, timeout)
                            .map_err(|e| format!("connect: {e}"))
                            .and_then(|mut c| {
                                c.register(&names[i])
                                    .map_err(|e| format!("register {}: {e}", names[i]))?;
                                c.login(&names[i])
                                    .map_err(|e| format!("login {}: {e}", names[i]))?;
                                Ok(c)
                            });
                        match r {
                            Ok(c) => {
                                on_login(&c.token);
                                mine.push((i, c));
                            }
                            Err(e) => {
                                failures.fetch_add(1, Ordering::Relaxed);
                                first_err.lock().unwrap().get_or_insert(e);
                            }
                        }
                    }
                    mine
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut all: Vec<(usize, RegClient)> = results.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    let n_fail = failures.load(Ordering::Relaxed) as usize;
    let err = first_err.into_inner().unwrap();
    (all.into_iter().map(|(_, c)| c).collect(), n_fail, err)
}

/// Sends a UDP heartbeat for every token once a second, spread over 0.9 s
/// in bursts of 20, from a few sockets.
struct Heartbeater {
    stop: Arc<AtomicBool>,
    list: Arc<Mutex<Vec<Vec<u8>>>>,
    sent: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl Heartbeater {
    fn start(to: SocketAddr, sockets: usize) -> Heartbeater {
        let stop = Arc::new(AtomicBool::new(false));
        let list: Arc<Mutex<Vec<Vec<u8>>>> = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let (st, li, se) = (stop.clone(), list.clone(), sent.clone());
        let bind = SocketAddr::new(
            if to.ip().is_loopback() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            },
            0,
        );
        let socks: Vec<UdpSocket> = (0..sockets.max(1))
            .map(|_| UdpSocket::bind(bind).expect("bind heartbeat socket"))
            .collect();
        let handle = thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let round = Instant::now();
                let n = li.lock().unwrap().len();
                let mut start = 0;
                while start < n && !st.load(Ordering::Relaxed) {
                    let due = round + Duration::from_millis(900) * start as u32 / n as u32;
                    let now = Instant::now();
                    if due > now {
                        thread::sleep(due - now);
                    }
                    let l = li.lock().unwrap();
                    for (i, dg) in l.iter().enumerate().skip(start).take(20) {
                        if socks[i % socks.len()].send_to(dg, to).is_ok() {
                            se.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    start += 20;
                }
                while round.elapsed() < Duration::from_secs(1) && !st.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(20));
                }
            }
        });
        Heartbeater {
            stop,
            list,
            sent,
            handle: Some(handle),
        }
    }

    fn add(&self, token: &str) {
        let dg = json!({"op": "heartbeat", "token": token}).to_string();
        self.list.lock().unwrap().push(dg.into_bytes());
    }
}

impl Drop for Heartbeater {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// What a closed-loop run of one op produced.
struct OpRun {
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    secs: f64,
    lat: Lat,
    reply_bytes: usize,
    /// Registry CPU over the run, in cores.
    reg_cores: f64,
}

impl OpRun {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.secs.max(1e-9)
    }
}

/// Every client sends its `bodies` (cycling) back to back until `secs` pass
/// or `max_total` requests are done in all; all start together.
fn run_op(
    clients: &mut [RegClient],
    bodies: &[Vec<String>],
    secs: f64,
    max_total: u64,
    reg_pid: u32,
) -> OpRun {
    let c = clients.len().max(1);
    let per = (max_total / c as u64).max(1);
    let barrier = Barrier::new(clients.len() + 1);
    let ticks0 = cpu_ticks(reg_pid).unwrap_or(0);
    let (parts, elapsed) = thread::scope(|s| {
        let hs: Vec<_> = clients
            .iter_mut()
            .zip(bodies)
            .map(|(cl, body)| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let deadline = Instant::now() + Duration::from_secs_f64(secs);
                    let mut lat = Vec::with_capacity(4096);
                    let mut errors = 0u64;
                    let mut first_error = None;
                    let mut bytes = 0;
                    let mut k = 0;
                    while (lat.len() as u64) < per && Instant::now() < deadline {
                        let b = &body[k % body.len()];
                        k += 1;
                        let t = Instant::now();
                        match cl.raw(b) {
                            Ok(r) => {
                                let d = t.elapsed().as_nanos() as u64;
                                if !is_ok(r) {
                                    errors += 1;
                                    first_error.get_or_insert_with(|| r.to_string());
                                }
                                bytes = r.len();
                                lat.push(d);
                            }
                            Err(e) => {
                                errors += 1;
                                first_error.get_or_insert_with(|| e.to_string());
                                break;
                            }
                        }
                    }
                    (lat, errors, first_error, bytes)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let parts: Vec<_> = hs.into_iter().map(|h| h.join().expect("client")).collect();
        (parts, start.elapsed().as_secs_f64())
    });
    let ticks1 = cpu_ticks(reg_pid).unwrap_or(0);
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut reply_bytes = 0;
    for (lat, e, fe, b) in parts {
        all.extend(lat);
        errors += e;
        if first_error.is_none() {
            first_error = fe;
        }
        reply_bytes = reply_bytes.max(b);
    }
    OpRun {
        requests: all.len() as u64,
        errors,
        first_error,
        secs: elapsed,
        lat: lat_ns(all),
        reply_bytes,
        reg_cores: ticks1.saturating_sub(ticks0) as f64 / clk_tck() as f64 / elapsed.max(1e-9),
    }
}

// ---------------------------------------------------------------- report

struct Report {
    text: String,
    json: serde_json::Map<String, Value>,
    targets: Vec<Value>,
    target_rows: Vec<Vec<String>>,
}

impl Report {
    fn line(&mut self, s: impl AsRef<str>) {
        self.text.push_str(s.as_ref());
        self.text.push('\n');
    }

    fn heading(&mut self, s: &str) {
        self.line("");
        self.line(format!("== {s}"));
    }

    /// A target and whether it was met: `Some(true)`, `Some(false)`, or
    /// `None` when it was not measured (with the reason as the figure).
    fn target(&mut self, what: &str, figure: String, met: Option<bool>) {
        let status = match met {
            Some(true) => "MET",
            Some(false) => "NOT MET",
            None => "NOT MEASURED",
        };
        self.targets
            .push(json!({"target": what, "figure": figure, "status": status}));
        self.target_rows
            .push(vec![what.to_string(), figure, status.to_string()]);
    }
}

// ---------------------------------------------------------------- 5. floor

struct Floor {
    trips: usize,
    tcp: Lat,
    udp: Lat,
}

fn floor_tcp(trips: usize) -> io::Result<Lat> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let echo = thread::spawn(move || -> io::Result<()> {
        let (mut s, _) = l.accept()?;
        s.set_nodelay(true)?;
        let mut b = [0u8; 1];
        loop {
            match s.read(&mut b) {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => s.write_all(&b)?,
            }
        }
    });
    let mut c = TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut b = [7u8; 1];
    let mut v = Vec::with_capacity(trips);
    for i in 0..trips + 1000 {
        let t = Instant::now();
        c.write_all(&b)?;
        c.read_exact(&mut b)?;
        if i >= 1000 {
            v.push(t.elapsed().as_nanos() as u64);
        }
    }
    drop(c);
    let _ = echo.join();
    Ok(lat_ns(v))
}

fn floor_udp(trips: usize) -> io::Result<Lat> {
    let a = UdpSocket::bind("127.0.0.1:0")?;
    let b = UdpSocket::bind("127.0.0.1:0")?;
    a.connect(b.local_addr()?)?;
    b.connect(a.local_addr()?)?;
    a.set_read_timeout(Some(Duration::from_secs(1)))?;
    b.set_read_timeout(Some(Duration::from_secs(5)))?;
    let echo = thread::spawn(move || {
        let mut buf = [0u8; 8];
        while let Ok(n) = b.recv(&mut buf) {
            if n != 1 || b.send(&buf[..1]).is_err() {
                return;
            }
        }
    });
    let mut buf = [0u8; 8];
    let mut v = Vec::with_capacity(trips);
    for i in 0..trips + 1000 {
        let t = Instant::now();
        a.send(&[7])?;
        if a.recv(&mut buf).is_ok() && i >= 1000 {
            v.push(t.elapsed().as_nanos() as u64);
        }
    }
    let _ = a.send(b"stop");
    let _ = echo.join();
    Ok(lat_ns(v))
}

fn floor_section(p: &Params) -> Result<Floor, String> {
    let tcp = floor_tcp(p.floor_trips).map_err(|e| format!("TCP floor: {e}"))?;
    let udp = floor_udp(p.floor_trips).map_err(|e| format!("UDP floor: {e}"))?;
    Ok(Floor {
        trips: p.floor_trips,
        tcp,
        udp,
    })
}

fn report_floor(r: &mut Report, f: &Result<Floor, String>) {
    r.heading("Floor: loopback round trips, 1-byte ping-pong between two threads of the bench");
    match f {
        Ok(f) => {
            let rows = vec![
                vec![
                    "TCP round trip".into(),
                    group(f.trips as u64),
                    fmt_us(f.tcp.p50),
                    fmt_us(f.tcp.p99),
                    fmt_us(f.tcp.max),
                ],
                vec![
                    "UDP round trip".into(),
                    group(f.udp.n as u64),
                    fmt_us(f.udp.p50),
                    fmt_us(f.udp.p99),
                    fmt_us(f.udp.max),
                ],
            ];
            table(&mut r.text, &["", "trips", "p50", "p99", "max"], &rows);
            r.json.insert(
                "floor".into(),
                json!({"round_trips": f.trips, "tcp": lat_json(&f.tcp), "udp": lat_json(&f.udp)}),
            );
        }
        Err(e) => {
            r.line(format!("  error: {e}"));
            r.json.insert("floor".into(), json!({"error": e}));
        }
    }
}

// ---------------------------------------------------------------- 1. registry requests

const OPS: [&str; 3] = ["search", "online", "heartbeat"];
const CLIENT_COUNTS: [usize; 4] = [1, 8, 32, 256];

struct OpRow {
    op: &'static str,
    clients: usize,
    run: OpRun,
}

struct LoginRow {
    clients: usize,
    run: OpRun,
}

struct StoreBench {
    store: String,
    what: String,
    ops: Vec<OpRow>,
    online_bytes: usize,
    online_users: usize,
    logins: Vec<LoginRow>,
    /// Sessions the registry timed out although the bench sent their
    /// heartbeats every second, and the heartbeats sent / dropped by the
    /// kernel at the registry's UDP socket.
    timed_out: usize,
    first_timeout: Option<String>,
    hb_sent: u64,
    hb_dropped: Option<u64>,
    error: Option<String>,
}

/// The MongoDB the registry benchmark uses: `$MONGODB_URI` (each registry
/// gets a database of its own), else a throwaway nx-27017 started here and
/// killed when this is dropped.
enum Mongo {
    Uri,
    Nx(support::NxServer),
}

fn start_mongo() -> Result<Mongo, String> {
    if std::env::var("MONGODB_URI").is_ok_and(|u| !u.trim().is_empty()) {
        return Ok(Mongo::Uri);
    }
    progress!("starting nx-27017");
    catch_unwind(|| support::nx_server_start(&support::fresh_dir("bench")))
        .map(Mongo::Nx)
        .map_err(|e| format!("cannot start nx-27017: {}", panic_text(&*e)))
}

/// A `--store` spec for a fresh store, and what it is.
fn store_spec(mongo: Option<&Mongo>, dir: &Path, hint: &str) -> (String, String) {
    match mongo {
        None => (
            dir.join(format!("{hint}.db")).to_string_lossy().into_owned(),
            "embedded SQLite (WAL)".into(),
        ),
        Some(Mongo::Uri) => (support::mongo_uri(hint), "MongoDB at $MONGODB_URI".into()),
        Some(Mongo::Nx(server)) => (
            server.uri(&format!("bench_{hint}_{}", std::process::id())),
            "nx-27017 0.8.1 (a MongoDB-wire-compatible server in Python on SQLite, started by the bench; not a real mongod)".into(),
        ),
    }
}

fn empty_store_bench(kind: &str) -> StoreBench {
    StoreBench {
        store: kind.to_string(),
        what: String::new(),
        ops: Vec::new(),
        online_bytes: 0,
        online_users: 0,
        logins: Vec::new(),
        timed_out: 0,
        first_timeout: None,
        hb_sent: 0,
        hb_dropped: None,
        error: None,
    }
}

fn registry_store(p: &Params, kind: &str, mongo: Option<&Mongo>, dir: &Path) -> StoreBench {
    let mut out = empty_store_bench(kind);
    if let Err(e) = registry_store_inner(p, kind, mongo, dir, &mut out) {
        progress!("{kind}: {e}");
        out.error = Some(e);
    }
    out
}

fn registry_store_inner(
    p: &Params,
    kind: &str,
    mongo: Option<&Mongo>,
    dir: &Path,
    out: &mut StoreBench,
) -> Result<(), String> {
    let (spec, what) = store_spec(mongo, dir, "ops");
    out.what = what;
    let mut args: Vec<&str> = NO_PACING.to_vec();
    args.extend(CHEAP_ARGON2);
    let reg = RegistryProc::start(
        &[],
        "127.0.0.1:0",
        &spec,
        &args,
        dir.join(format!("registry-ops-{kind}.log")),
        None,
    )?;
    let nmax = *CLIENT_COUNTS.iter().max().unwrap_or(&1);
    let names: Vec<String> = (0..nmax).map(|i| format!("u{i:03}")).collect();
    let hb = Heartbeater::start(reg.addr, 2);
    progress!("{kind}: registering and logging in {nmax} users");
    let (mut clients, nfail, err) = login_many(
        reg.addr,
        &names,
        8,
        Duration::from_secs(120),
        LONG_WAIT,
        &|t: &str| hb.add(t),
    );
    if nfail > 0 || clients.len() < nmax {
        return Err(format!(
            "only {} of {nmax} logins worked: {}",
            clients.len(),
            err.unwrap_or_default()
        ));
    }
    let users: Vec<String> = clients.iter().map(|c| c.user.clone()).collect();
    for &c in &CLIENT_COUNTS {
        for op in OPS {
            let bodies: Vec<Vec<String>> = clients[..c]
                .iter()
                .enumerate()
                .map(|(i, cl)| match op {
                    "search" => (1..=16)
                        .map(|k| {
                            format!(
                                r#""op":"search","token":"{}","username":"{}""#,
                                cl.token,
                                users[(i + k * 7) % users.len()]
                            )
                        })
                        .collect(),
                    _ => vec![format!(r#""op":"{op}","token":"{}""#, cl.token)],
                })
                .collect();
            let run = run_op(&mut clients[..c], &bodies, p.op_secs, p.op_max, reg.pid());
            progress!(
                "{kind}: {op:<9} {c:>3} clients: {} req/s, p50 {}, p99 {}, {} errors",
                fmt_rate(run.rate()),
                fmt_us(run.lat.p50),
                fmt_us(run.lat.p99),
                run.errors
            );
            // Every client's last reply: all `nmax` users online if none failed.
            if op == "online" && c == nmax && run.errors == 0 {
                out.online_bytes = run.reply_bytes;
                out.online_users = nmax;
            }
            out.ops.push(OpRow {
                op,
                clients: c,
                run,
            });
        }
    }
    out.hb_sent = hb.sent.load(Ordering::Relaxed);
    out.hb_dropped = udp_drops(reg.addr.port());
    let log = reg.log_text();
    let timeouts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("timed out (no heartbeat)"))
        .collect();
    out.timed_out = timeouts.len();
    out.first_timeout = timeouts.first().map(|l| l.to_string());
    drop(clients);
    drop(hb);
    drop(reg);

    // Logins at the default Argon2id cost, on a registry of their own.
    let (spec, _) = store_spec(mongo, dir, "logins");
    let reg = RegistryProc::start(
        &[],
        "127.0.0.1:0",
        &spec,
        &NO_PACING,
        dir.join(format!("registry-logins-{kind}.log")),
        None,
    )?;
    let nl = p.login_clients.iter().copied().max().unwrap_or(1);
    progress!("{kind}: registering {nl} users at the default Argon2id cost");
    let mut lclients = Vec::new();
    for i in 0..nl {
        let mut c = RegClient::connect(reg.addr, Duration::from_secs(30))
            .map_err(|e| format!("connect: {e}"))?;
        c.register(&format!("lg{i}"))?;
        c.user = format!("lg{i}");
        lclients.push(c);
    }
    for &n in &p.login_clients {
        let run = login_cycles(&mut lclients[..n], p.login_secs, reg.pid());
        progress!(
            "{kind}: logins, {n} clients: {:.1}/s, p50 {}, p99 {}, {} errors",
            run.rate(),
            fmt_us(run.lat.p50),
            fmt_us(run.lat.p99),
            run.errors
        );
        out.logins.push(LoginRow { clients: n, run });
    }
    Ok(())
}

/// login + logout cycles on each client's own user, until `secs` pass
/// (a cycle started before then finishes). Latency is the login's.
fn login_cycles(clients: &mut [RegClient], secs: f64, reg_pid: u32) -> OpRun {
    let barrier = Barrier::new(clients.len() + 1);
    let ticks0 = cpu_ticks(reg_pid).unwrap_or(0);
    let (parts, elapsed) = thread::scope(|s| {
        let hs: Vec<_> = clients
            .iter_mut()
            .map(|c| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let deadline = Instant::now() + Duration::from_secs_f64(secs);
                    let mut lat = Vec::new();
                    let mut errors = 0u64;
                    let mut first = None;
                    let user = c.user.clone();
                    while Instant::now() < deadline && lat.len() < 10_000 {
                        let t = Instant::now();
                        match c.login(&user) {
                            Ok(()) => {
                                lat.push(t.elapsed().as_nanos() as u64);
                                if let Err(e) = c.logout() {
                                    errors += 1;
                                    first.get_or_insert(e);
                                }
                            }
                            Err(e) => {
                                errors += 1;
                                first.get_or_insert(e);
                                if errors > 20 {
                                    break;
                                }
                            }
                        }
                    }
                    (lat, errors, first)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let parts: Vec<_> = hs.into_iter().map(|h| h.join().expect("client")).collect();
        (parts, start.elapsed().as_secs_f64())
    });
    let ticks1 = cpu_ticks(reg_pid).unwrap_or(0);
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for (l, e, f) in parts {
        all.extend(l);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    OpRun {
        requests: all.len() as u64,
        errors,
        first_error,
        secs: elapsed,
        lat: lat_ns(all),
        reply_bytes: 0,
        reg_cores: ticks1.saturating_sub(ticks0) as f64 / clk_tck() as f64 / elapsed.max(1e-9),
    }
}

fn report_registry(r: &mut Report, res: &Result<Vec<StoreBench>, String>, floor: Option<&Floor>) {
    r.heading("1. Registry requests: closed loop, each client its own TCP connection and user");
    r.line("  registry started with --requests-per-sec 1000000, so per-connection pacing does not cap throughput;");
    r.line("  the sessions for search/online/heartbeat were set up with --argon2-memory-kib 256 --argon2-passes 1");
    r.line("  (those ops do no hashing). Ratios: latency / loopback TCP round-trip floor (p50/p50, p99/p99).");
    r.line("  The bench's client threads share the same CPUs as the registry.");
    let stores = match res {
        Ok(s) => s,
        Err(e) => {
            r.line(format!("  error: {e}"));
            r.json.insert("registry".into(), json!({"error": e}));
            return;
        }
    };
    let (f50, f99) = (floor.map(|f| f.tcp.p50), floor.map(|f| f.tcp.p99));
    let mut rows = Vec::new();
    let mut js = Vec::new();
    for s in stores {
        let mut ops = Vec::new();
        for o in &s.ops {
            rows.push(vec![
                s.store.clone(),
                o.op.to_string(),
                o.clients.to_string(),
                group(o.run.requests),
                fmt_rate(o.run.rate()),
                fmt_us(o.run.lat.p50),
                fmt_us(o.run.lat.p99),
                ratio(o.run.lat.p50, f50),
                ratio(o.run.lat.p99, f99),
                format!("{:.2}", o.run.reg_cores),
                o.run.errors.to_string(),
            ]);
            ops.push(json!({
                "op": o.op, "clients": o.clients, "requests": o.run.requests,
                "errors": o.run.errors, "first_error": o.run.first_error,
                "secs": round2(o.run.secs), "req_per_sec": round2(o.run.rate()),
                "latency": lat_json(&o.run.lat),
                "p50_over_tcp_floor": ratio_json(o.run.lat.p50, f50),
                "p99_over_tcp_floor": ratio_json(o.run.lat.p99, f99),
                "reply_bytes": o.run.reply_bytes,
                "registry_cpu_cores": round2(o.run.reg_cores),
            }));
        }
        let logins: Vec<Value> = s
            .logins
            .iter()
            .map(|l| {
                json!({
                    "clients": l.clients, "logins": l.run.requests,
                    "logins_per_sec": round2(l.run.rate()), "errors": l.run.errors,
                    "first_error": l.run.first_error, "secs": round2(l.run.secs),
                    "login_latency": lat_json(&l.run.lat),
                    "registry_cpu_cores": round2(l.run.reg_cores),
                })
            })
            .collect();
        js.push(json!({
            "store": s.store, "what": s.what, "ops": ops, "logins": logins,
            "online_reply_bytes": s.online_bytes, "online_reply_users": s.online_users,
            "heartbeats_sent": s.hb_sent, "heartbeats_dropped_by_kernel": s.hb_dropped,
            "sessions_timed_out_despite_heartbeats": s.timed_out,
            "first_timeout_log_line": s.first_timeout,
            "error": s.error,
        }));
    }
    table(
        &mut r.text,
        &[
            "store",
            "op",
            "clients",
            "requests",
            "req/s",
            "p50",
            "p99",
            "p50/floor",
            "p99/floor",
            "reg CPU",
            "errors",
        ],
        &rows,
    );
    for s in stores {
        r.line(format!("  {}: {}", s.store, s.what));
        if s.online_bytes > 0 {
            r.line(format!(
                "  {}: the `online` reply lists every online user, so it grows with them: {} bytes with {} users online",
                s.store,
                group(s.online_bytes as u64),
                s.online_users
            ));
        }
        if let Some(e) = &s.error {
            r.line(format!("  {}: error: {e}", s.store));
        }
        if s.hb_sent > 0 {
            r.line(format!(
                "  {}: UDP heartbeats sent every second for all 256 sessions: {} ({} dropped by the kernel at the registry); sessions the registry timed out anyway: {}{}",
                s.store,
                group(s.hb_sent),
                s.hb_dropped.map_or("?".into(), group),
                s.timed_out,
                s.first_timeout
                    .as_ref()
                    .map_or(String::new(), |l| format!(" (first: {l})"))
            ));
        }
        for o in s.ops.iter().filter(|o| o.run.errors > 0) {
            r.line(format!(
                "  {} {} x{}: first error: {}",
                s.store,
                o.op,
                o.clients,
                o.run.first_error.as_deref().unwrap_or("?")
            ));
        }
    }
    r.line("");
    r.line("  Logins: login+logout cycles at the DEFAULT Argon2id cost (19456 KiB, 2 passes).");
    r.line("  Argon2id is slow on purpose (it makes guessing passwords expensive); the registry hashes");
    r.line("  at most nproc passwords at once (--hash-concurrency).");
    let mut rows = Vec::new();
    for s in stores {
        for l in &s.logins {
            rows.push(vec![
                s.store.clone(),
                l.clients.to_string(),
                group(l.run.requests),
                format!("{:.1}", l.run.rate()),
                fmt_us(l.run.lat.p50),
                fmt_us(l.run.lat.p99),
                format!("{:.2}", l.run.reg_cores),
                l.run.errors.to_string(),
            ]);
        }
    }
    table(
        &mut r.text,
        &[
            "store",
            "clients",
            "logins",
            "logins/s",
            "login p50",
            "login p99",
            "reg CPU",
            "errors",
        ],
        &rows,
    );
    r.json.insert(
        "registry".into(),
        json!({
            "requests_per_sec_flag": 1_000_000,
            "setup_argon2": "--argon2-memory-kib 256 --argon2-passes 1 (ops registry only)",
            "login_argon2": "default: 19456 KiB, 2 passes",
            "stores": js,
        }),
    );
    for s in stores {
        let row = s.ops.iter().find(|o| o.op == "search" && o.clients == 256);
        match row {
            Some(o) if o.run.requests > 0 => {
                let met = o.run.lat.p99 <= 10_000.0 && o.run.errors == 0;
                r.target(
                    &format!("search p99 <= 10 ms with 256 clients ({})", s.store),
                    fmt_us(o.run.lat.p99),
                    Some(met),
                );
            }
            _ => r.target(
                &format!("search p99 <= 10 ms with 256 clients ({})", s.store),
                s.error.clone().unwrap_or_else(|| "no data".into()),
                None,
            ),
        }
    }
}

// ---------------------------------------------------------------- 2. concurrency

/// How many sessions a registry holds with the open-file limit it inherits.
struct Cap {
    hard: u64,
    reached: usize,
    secs: f64,
    first_error: Option<String>,
    fds: Option<usize>,
    registry_problems: Vec<String>,
}

struct Conc {
    cap: Option<Result<Cap, String>>,
    raised_to: Option<Result<u64, String>>,
    fds: Option<usize>,
    requested: usize,
    logged_in: usize,
    failures: usize,
    first_error: Option<String>,
    login_secs: f64,
    nofile: (u64, u64, u64),
    registry_limit_line: String,
    idle_rss: u64,
    rss: u64,
    hwm: u64,
    threads: u64,
    search: OpRun,
    searchers: usize,
    online_count: usize,
    online_listed: usize,
    online_bytes: usize,
    online_us: f64,
    heartbeats_sent: u64,
    udp_drops: Option<u64>,
    registry_problems: Vec<String>,
}

impl Conc {
    fn per_session_kib(&self) -> Option<f64> {
        (self.logged_in > 0)
            .then(|| self.rss.saturating_sub(self.idle_rss) as f64 / self.logged_in as f64)
    }
}

/// Lines of a registry log that tell of trouble, summarised.
fn log_problems(log: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for key in [
        "accept failed",
        "cannot start a thread",
        "timed out (no heartbeat)",
        "WARN",
        "ERROR",
    ] {
        let hits: Vec<&str> = log.lines().filter(|l| l.contains(key)).collect();
        if let Some(first) = hits.first() {
            problems.push(format!("{} x {key:?}, first: {first}", hits.len()));
        }
    }
    problems
}

/// Logs in sessions on a registry started with the open-file limit the
/// bench has now, until logins fail (or all of them work).
fn descriptor_cap(p: &Params, dir: &Path, hard: u64) -> Result<Cap, String> {
    let mut args: Vec<&str> = NO_PACING.to_vec();
    args.extend(CHEAP_ARGON2);
    let reg = RegistryProc::start(
        &[],
        "127.0.0.1:0",
        &dir.join("cap.db").to_string_lossy(),
        &args,
        dir.join("registry-cap.log"),
        None,
    )?;
    let hb = Heartbeater::start(reg.addr, 4);
    let names: Vec<String> = (0..p.sessions).map(|i| format!("c{i:05}")).collect();
    progress!(
        "logging in up to {} sessions with the open-file limit {hard}",
        p.sessions
    );
    let t = Instant::now();
    let (clients, _, first_error) = login_many(
        reg.addr,
        &names,
        8,
        Duration::from_secs(120),
        FILL_WAIT,
        &|t: &str| hb.add(t),
    );
    let secs = t.elapsed().as_secs_f64();
    let fds = fd_count(reg.pid());
    let streams: Vec<TcpStream> = clients.into_iter().map(RegClient::into_stream).collect();
    let reached = streams.len();
    progress!("{reached} sessions before logins failed: {first_error:?}");
    let registry_problems = log_problems(&reg.log_text());
    drop(hb);
    drop(reg);
    drop(streams);
    Ok(Cap {
        hard,
        reached,
        secs,
        first_error,
        fds,
        registry_problems,
    })
}

fn concurrency_section(p: &Params, dir: &Path) -> Result<Conc, String> {
    let mut nofile = raise_nofile();
    progress!(
        "bench open-file limit: {} -> {} (hard {})",
        nofile.0,
        nofile.1,
        nofile.2
    );
    // What the registry needs: three descriptors a connection (see the
    // report), plus some.
    let need = 3 * (p.sessions as u64 + 4) + 256;
    let mut cap = None;
    let mut raised_to = None;
    if nofile.2 < need {
        let old = nofile.2;
        let want = 4 * p.sessions as u64 + 1024;
        let r = set_nofile(want).map(|_| want);
        if r.is_ok() {
            nofile.1 = want;
            nofile.2 = want;
            progress!("raised the open-file limit (soft and hard) from {old} to {want}");
            if !p.quick {
                // First, what the limit the machine gave us allows.
                CHILD_NOFILE.store(old, Ordering::Relaxed);
                cap = Some(descriptor_cap(p, dir, old));
                CHILD_NOFILE.store(0, Ordering::Relaxed);
            }
        }
        raised_to =
            Some(r.map_err(|e| format!("raising the hard limit from {old} to {want}: {e}")));
    }
    let mut args: Vec<&str> = NO_PACING.to_vec();
    args.extend(CHEAP_ARGON2);
    let reg = RegistryProc::start(
        &[],
        "127.0.0.1:0",
        &dir.join("sessions.db").to_string_lossy(),
        &args,
        dir.join("registry-sessions.log"),
        None,
    )?;
    thread::sleep(Duration::from_millis(500));
    let idle_rss = rss_kib(reg.pid());
    let hb = Heartbeater::start(reg.addr, 4);
    let searcher_names: Vec<String> = (0..4).map(|i| format!("searcher{i}")).collect();
    let (mut searchers, f, e) = login_many(
        reg.addr,
        &searcher_names,
        4,
        Duration::from_secs(30),
        LONG_WAIT,
        &|t: &str| hb.add(t),
    );
    if f > 0 {
        return Err(format!("searcher logins failed: {}", e.unwrap_or_default()));
    }
    let want = p.sessions;
    let names: Vec<String> = (0..want).map(|i| format!("s{i:05}")).collect();
    progress!("logging in {want} sessions (each its own TCP connection)");
    let t = Instant::now();
    let (clients, failures, first_error) = login_many(
        reg.addr,
        &names,
        8,
        Duration::from_secs(if p.quick { 60 } else { 180 }),
        FILL_WAIT,
        &|t: &str| hb.add(t),
    );
    let login_secs = t.elapsed().as_secs_f64();
    let logged: Vec<String> = clients.iter().map(|c| c.user.clone()).collect();
    // Keep one descriptor per session.
    let streams: Vec<TcpStream> = clients.into_iter().map(RegClient::into_stream).collect();
    progress!(
        "{} sessions logged in in {login_secs:.1} s ({failures} failures)",
        streams.len()
    );
    // Let every session get a couple of heartbeats.
    thread::sleep(Duration::from_secs(2));
    progress!("searching from {} extra clients", searchers.len());
    let targets: Vec<&String> = if logged.is_empty() {
        searcher_names.iter().collect()
    } else {
        logged.iter().collect()
    };
    let bodies: Vec<Vec<String>> = searchers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (0..64)
                .map(|k| {
                    let u = targets[(i * 7919 + k * 104_729) % targets.len()];
                    format!(r#""op":"search","token":"{}","username":"{u}""#, c.token)
                })
                .collect()
        })
        .collect();
    let search = run_op(
        &mut searchers,
        &bodies,
        p.search_secs,
        10_000_000,
        reg.pid(),
    );
    let rss = rss_kib(reg.pid());
    let hwm = proc_status_kib(reg.pid(), "VmHWM").unwrap_or(0);
    let threads = proc_status_kib(reg.pid(), "Threads").unwrap_or(0);
    let fds = fd_count(reg.pid());
    // Everyone online?
    let body = format!(r#""op":"online","token":"{}""#, searchers[0].token);
    let t = Instant::now();
    let reply = searchers[0]
        .raw(&body)
        .map(str::to_string)
        .map_err(|e| e.to_string());
    let online_us = t.elapsed().as_nanos() as f64 / 1000.0;
    let (online_count, online_listed, online_bytes) = match &reply {
        Ok(line) => {
            let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
            let users = v["users"].as_array().cloned().unwrap_or_default();
            let mine: HashSet<&str> = logged.iter().map(String::as_str).collect();
            let n = users
                .iter()
                .filter(|u| u["online"] == json!(true))
                .filter(|u| u["username"].as_str().is_some_and(|n| mine.contains(n)))
                .count();
            (n, users.len(), line.len())
        }
        Err(_) => (0, 0, 0),
    };
    let udp_drops = udp_drops(reg.addr.port());
    let heartbeats_sent = hb.sent.load(Ordering::Relaxed);
    let log = reg.log_text();
    let registry_limit_line = log
        .lines()
        .find(|l| l.contains("open-file limit"))
        .unwrap_or("(no open-file limit line in the registry's log)")
        .to_string();
    let problems = log_problems(&log);
    progress!(
        "online: {online_count} of {} ours listed online; registry RSS {}",
        logged.len(),
        mib(rss)
    );
    drop(hb);
    // Kill the registry before closing 10k connections (no 10k detaches).
    drop(reg);
    drop(streams);
    drop(searchers);
    Ok(Conc {
        cap,
        raised_to,
        fds,
        requested: want,
        logged_in: logged.len(),
        failures,
        first_error,
        login_secs,
        nofile,
        registry_limit_line,
        idle_rss,
        rss,
        hwm,
        threads,
        searchers: bodies.len(),
        search,
        online_count,
        online_listed,
        online_bytes,
        online_us,
        heartbeats_sent,
        udp_drops,
        registry_problems: problems,
    })
}

fn report_conc(r: &mut Report, res: &Result<Conc, String>, floor: Option<&Floor>) {
    r.heading("2. Concurrency: many sessions on one registry (embedded store)");
    r.line("  registry started with --argon2-memory-kib 256 --argon2-passes 1 so that the logins take seconds");
    r.line("  (not the default cost), and --requests-per-sec 1000000. Each session has its own TCP connection");
    r.line("  and gets a UDP heartbeat every second (spread over the second, from 4 sockets).");
    let c = match res {
        Ok(c) => c,
        Err(e) => {
            r.line(format!("  error: {e}"));
            r.json.insert("concurrency".into(), json!({"error": e}));
            r.target("10,000 sessions online at once", e.clone(), None);
            return;
        }
    };
    let (f50, f99) = (floor.map(|f| f.tcp.p50), floor.map(|f| f.tcp.p99));
    let per = c.per_session_kib();
    let mut rows = Vec::new();
    let mut cap_json = Value::Null;
    match &c.cap {
        Some(Ok(cap)) => {
            rows.push(vec![
                format!("with the inherited limit ({})", cap.hard),
                format!(
                    "{} sessions, then logins fail: {} ({} open descriptors in the registry; {:.0} s)",
                    group(cap.reached as u64),
                    cap.first_error.as_deref().unwrap_or("none"),
                    cap.fds.map_or("?".into(), |n| group(n as u64)),
                    cap.secs
                ),
            ]);
            if cap.registry_problems.is_empty() {
                rows.push(vec![
                    "  registry log about it".into(),
                    "nothing (the refused connections are dropped without a log line)".into(),
                ]);
            }
            for pr in &cap.registry_problems {
                rows.push(vec!["  registry log about it".into(), pr.clone()]);
            }
            cap_json = json!({
                "hard_limit": cap.hard, "sessions_reached": cap.reached,
                "first_failure": cap.first_error, "registry_fds": cap.fds,
                "registry_log_problems": cap.registry_problems, "secs": round2(cap.secs),
            });
        }
        Some(Err(e)) => {
            rows.push(vec![
                "with the inherited limit".into(),
                format!("error: {e}"),
            ]);
            cap_json = json!({"error": e});
        }
        None => {}
    }
    match &c.raised_to {
        Some(Ok(n)) => rows.push(vec![
            "limit raised by the bench (root)".into(),
            format!("soft and hard RLIMIT_NOFILE = {n}, inherited by the registry"),
        ]),
        Some(Err(e)) => rows.push(vec![
            "limit raise failed".into(),
            format!(
                "{e} (needs CAP_SYS_RESOURCE): the registry keeps the limit of {}",
                c.nofile.2
            ),
        ]),
        None => {}
    }
    rows.extend([
        vec![
            "bench open-file limit".into(),
            format!("{} -> {} (hard {})", c.nofile.0, c.nofile.1, c.nofile.2),
        ],
        vec!["registry says".into(), c.registry_limit_line.clone()],
        vec![
            "sessions logged in".into(),
            format!(
                "{} of {} in {:.1} s ({:.0}/s, cheap Argon2id), {} failures",
                group(c.logged_in as u64),
                group(c.requested as u64),
                c.login_secs,
                c.logged_in as f64 / c.login_secs.max(1e-9),
                c.failures
            ),
        ],
        vec![
            "online at the end (`online`)".into(),
            format!(
                "{} of {} (reply: {} users, {} bytes, {})",
                group(c.online_count as u64),
                group(c.logged_in as u64),
                group(c.online_listed as u64),
                group(c.online_bytes as u64),
                fmt_us(c.online_us)
            ),
        ],
        vec![
            format!("search under load ({} clients)", c.searchers),
            format!(
                "{} req/s, p50 {} ({}), p99 {} ({}), {} errors",
                fmt_rate(c.search.rate()),
                fmt_us(c.search.lat.p50),
                ratio(c.search.lat.p50, f50),
                fmt_us(c.search.lat.p99),
                ratio(c.search.lat.p99, f99),
                c.search.errors
            ),
        ],
        vec![
            "registry RSS idle -> loaded".into(),
            format!(
                "{} -> {} (peak {}), {} threads",
                mib(c.idle_rss),
                mib(c.rss),
                mib(c.hwm),
                c.threads
            ),
        ],
        vec![
            "registry memory per session".into(),
            per.map_or("n/a".into(), |k| {
                format!("{k:.1} KiB  ((loaded - idle) / sessions)")
            }),
        ],
        vec![
            "registry open descriptors".into(),
            match c.fds {
                Some(n) if c.logged_in > 0 => format!(
                    "{} for {} connections: {:.2} per connection",
                    group(n as u64),
                    group(c.logged_in as u64 + c.searchers as u64),
                    n as f64 / (c.logged_in + c.searchers) as f64
                ),
                _ => "?".into(),
            },
        ],
        vec![
            "heartbeat datagrams".into(),
            format!(
                "{} sent, {} dropped by the kernel at the registry's socket",
                group(c.heartbeats_sent),
                c.udp_drops.map_or("?".into(), group)
            ),
        ],
    ]);
    table(&mut r.text, &["", ""], &rows);
    if let Some(e) = &c.first_error {
        r.line(format!("  first login failure: {e}"));
        if c.registry_problems.is_empty() {
            r.line("  registry log: nothing about it (the refused connections are dropped without a log line)");
        }
    }
    for p in &c.registry_problems {
        r.line(format!("  registry log: {p}"));
    }
    r.json.insert(
        "concurrency".into(),
        json!({
            "argon2": "--argon2-memory-kib 256 --argon2-passes 1",
            "sessions_requested": c.requested,
            "sessions_logged_in": c.logged_in,
            "login_failures": c.failures,
            "first_login_failure": c.first_error,
            "login_secs": round2(c.login_secs),
            "bench_nofile": {"before": c.nofile.0, "after": c.nofile.1, "hard": c.nofile.2},
            "registry_nofile_log_line": c.registry_limit_line,
            "online_at_end": c.online_count,
            "online_reply_users": c.online_listed,
            "online_reply_bytes": c.online_bytes,
            "online_request_us": round2(c.online_us),
            "search": {
                "clients": c.searchers, "requests": c.search.requests,
                "req_per_sec": round2(c.search.rate()), "errors": c.search.errors,
                "first_error": c.search.first_error,
                "latency": lat_json(&c.search.lat),
                "p50_over_tcp_floor": ratio_json(c.search.lat.p50, f50),
                "p99_over_tcp_floor": ratio_json(c.search.lat.p99, f99),
            },
            "registry_rss_idle_kib": c.idle_rss,
            "registry_rss_loaded_kib": c.rss,
            "registry_rss_peak_kib": c.hwm,
            "registry_threads": c.threads,
            "registry_fds": c.fds,
            "inherited_limit_run": cap_json,
            "limit_raised_to": c.raised_to.as_ref().map(|r| match r {
                Ok(n) => json!(n),
                Err(e) => json!({"error": e}),
            }),
            "registry_kib_per_session": per.map(round2),
            "heartbeats_sent": c.heartbeats_sent,
            "heartbeats_dropped_by_kernel": c.udp_drops,
            "registry_log_problems": c.registry_problems,
        }),
    );
    let met = c.requested >= 10_000 && c.online_count >= 10_000;
    let mut figure = format!(
        "{} logged in, {} online at the end",
        group(c.logged_in as u64),
        group(c.online_count as u64)
    );
    if c.failures > 0 {
        if let Some(fds) = c.fds {
            let _ = write!(
                figure,
                " (logins fail at {} registry descriptors, limit {})",
                group(fds as u64),
                group(c.nofile.2)
            );
        }
    }
    if c.requested < 10_000 {
        r.target("10,000 sessions online at once", figure, None);
    } else {
        r.target("10,000 sessions online at once", figure, Some(met));
    }
}

// ---------------------------------------------------------------- 3. rooms

enum PEv {
    Msg {
        idx: usize,
        own: bool,
        id: u64,
        text: String,
        ts: u64,
    },
    /// A `delivery` event with `acked == total`: the sender considers the
    /// message delivered to every member it still has.
    Delivered {
        idx: usize,
        id: u64,
    },
    Other {
        idx: usize,
        v: Value,
    },
    Closed {
        idx: usize,
    },
}

/// A running `peer --json`, SIGKILLed on drop.
struct PeerProc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl Drop for PeerProc {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Receives one room run's `message` events.
struct RunAcc {
    tag: String,
    sender: usize,
    n: usize,
    slot: HashMap<usize, usize>,
    own_ts: Vec<u64>,
    max_ts: Vec<u64>,
    counts: Vec<Vec<u16>>,
    got: Vec<usize>,
    own_seen: usize,
    pairs: usize,
    dups: u64,
    foreign: u64,
    incidents: Vec<String>,
    /// The sender's message id → index, from its own `message` events.
    id_of: HashMap<u64, usize>,
    reported_done: Vec<bool>,
    failed_reported: usize,
}

impl RunAcc {
    fn new(tag: &str, sender: usize, receivers: &[usize], n: usize) -> RunAcc {
        RunAcc {
            tag: tag.to_string(),
            sender,
            n,
            slot: receivers.iter().enumerate().map(|(s, &i)| (i, s)).collect(),
            own_ts: vec![0; n],
            max_ts: vec![0; n],
            counts: vec![vec![0; n]; receivers.len()],
            got: vec![0; n],
            own_seen: 0,
            pairs: 0,
            dups: 0,
            foreign: 0,
            incidents: Vec::new(),
            id_of: HashMap::new(),
            reported_done: vec![false; n],
            failed_reported: 0,
        }
    }

    fn delivered(&mut self, idx: usize, id: u64) {
        if idx == self.sender {
            if let Some(&i) = self.id_of.get(&id) {
                self.reported_done[i] = true;
            }
        }
    }

    fn message(&mut self, idx: usize, own: bool, id: u64, text: &str, ts: u64) {
        let i = text
            .strip_prefix(self.tag.as_str())
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|r| r.parse::<usize>().ok())
            .filter(|i| *i < self.n);
        let Some(i) = i else {
            self.foreign += 1;
            return;
        };
        if own {
            if idx == self.sender && self.own_ts[i] == 0 {
                self.own_ts[i] = ts;
                self.own_seen += 1;
                self.id_of.insert(id, i);
            }
            return;
        }
        let Some(&s) = self.slot.get(&idx) else {
            self.foreign += 1;
            return;
        };
        let c = &mut self.counts[s][i];
        *c = c.saturating_add(1);
        if *c == 1 {
            self.pairs += 1;
            self.got[i] += 1;
            self.max_ts[i] = self.max_ts[i].max(ts);
        } else {
            self.dups += 1;
        }
    }

    fn done(&self) -> bool {
        self.own_seen == self.n && self.pairs == self.n * self.counts.len()
    }
}

/// With `--keep`: every peer's stdout (its JSON events) is copied to a file.
static TEE: AtomicBool = AtomicBool::new(false);

/// Peers, their events (one channel for all), and the run being measured.
struct Hub {
    registry: SocketAddr,
    dir: PathBuf,
    peers: Vec<PeerProc>,
    tx: Sender<PEv>,
    rx: Receiver<PEv>,
    pending: Vec<VecDeque<Value>>,
    alive: Vec<bool>,
    acc: Option<RunAcc>,
}

impl Hub {
    fn new(registry: SocketAddr, dir: &Path) -> Hub {
        let (tx, rx) = mpsc::channel();
        Hub {
            registry,
            dir: dir.to_path_buf(),
            peers: Vec::new(),
            tx,
            rx,
            pending: Vec::new(),
            alive: Vec::new(),
            acc: None,
        }
    }

    fn spawn(&mut self, name: &str, prefix: &[String]) -> Result<usize, String> {
        let idx = self.peers.len();
        let log = self.dir.join(format!("peer-{name}.log"));
        let err = File::create(&log).map_err(|e| e.to_string())?;
        let mut child = command(prefix, &bins().peer)
            .arg("--registry")
            .arg(self.registry.to_string())
            .args(["--json", "--no-color"])
            .env_remove("REGISTRY_ADDR")
            .env_remove("LANCHAT_FAULTS")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("spawn peer: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stdin = child.stdin.take();
        let tx = self.tx.clone();
        let mut tee = if TEE.load(Ordering::Relaxed) {
            File::create(self.dir.join(format!("peer-{name}.events")))
                .ok()
                .map(io::LineWriter::new)
        } else {
            None
        };
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(t) = &mut tee {
                    let _ = writeln!(t, "{line}");
                }
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"event": "_unparsed", "line": line}));
                let ev = match v["event"].as_str() {
                    Some("message") => PEv::Msg {
                        idx,
                        own: v["own"] == json!(true),
                        id: v["id"].as_u64().unwrap_or(0),
                        text: v["text"].as_str().unwrap_or_default().to_string(),
                        ts: v["ts_us"].as_u64().unwrap_or(0),
                    },
                    // Only the final one (everyone still listed acked).
                    Some("delivery") if v["acked"] == v["total"] => PEv::Delivered {
                        idx,
                        id: v["id"].as_u64().unwrap_or(0),
                    },
                    Some("delivery") => continue,
                    _ => PEv::Other { idx, v },
                };
                if tx.send(ev).is_err() {
                    return;
                }
            }
            let _ = tx.send(PEv::Closed { idx });
        });
        self.peers.push(PeerProc {
            name: name.to_string(),
            child,
            stdin,
            log,
        });
        self.pending.push(VecDeque::new());
        self.alive.push(true);
        Ok(idx)
    }

    fn pid(&self, idx: usize) -> u32 {
        self.peers[idx].child.id()
    }

    fn send(&mut self, idx: usize, line: &str) -> Result<(), String> {
        let p = &mut self.peers[idx];
        let stdin = p.stdin.as_mut().ok_or("stdin closed")?;
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        buf.push('\n');
        stdin
            .write_all(buf.as_bytes())
            .map_err(|e| format!("{}: writing to stdin: {e}", p.name))
    }

    fn dispatch(&mut self, ev: PEv) {
        match ev {
            PEv::Msg {
                idx,
                own,
                id,
                text,
                ts,
            } => {
                if let Some(acc) = &mut self.acc {
                    acc.message(idx, own, id, &text, ts);
                }
            }
            PEv::Delivered { idx, id } => {
                if let Some(acc) = &mut self.acc {
                    acc.delivered(idx, id);
                }
            }
            PEv::Other { idx, v } => {
                if let Some(acc) = &mut self.acc {
                    let ev = v["event"].as_str().unwrap_or_default();
                    if ev == "delivery_failed" || ev == "member_left" || ev == "registry_lost" {
                        acc.incidents.push(format!("{}: {v}", self.peers[idx].name));
                    }
                    if ev == "delivery_failed" && idx == acc.sender {
                        acc.failed_reported += 1;
                    }
                }
                let q = &mut self.pending[idx];
                q.push_back(v);
                if q.len() > 5000 {
                    q.pop_front();
                }
            }
            PEv::Closed { idx } => self.alive[idx] = false,
        }
    }

    /// Handles one event, waiting until `until` at most; false on time-out.
    fn pump(&mut self, until: Instant) -> bool {
        let left = until.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(ev) => {
                self.dispatch(ev);
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => {
                thread::sleep(left.min(Duration::from_millis(20)));
                false
            }
        }
    }

    /// Handles events until `until`.
    fn pump_for(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.pump(until);
        }
    }

    fn clear_pending(&mut self) {
        while let Ok(ev) = self.rx.try_recv() {
            self.dispatch(ev);
        }
        for q in &mut self.pending {
            q.clear();
        }
    }

    fn log_tail(&self, idx: usize) -> String {
        let log = fs::read_to_string(&self.peers[idx].log).unwrap_or_default();
        let recent: Vec<String> = self.pending[idx]
            .iter()
            .rev()
            .take(8)
            .map(|v| v.to_string())
            .collect();
        format!("recent events: {:?}; stderr: {}", recent, tail(&log, 5))
    }

    /// Takes the first pending event of `idx` matching `pred`, waiting up
    /// to `timeout`.
    fn wait(
        &mut self,
        idx: usize,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = self.pending[idx].iter().position(&pred) {
                return Ok(self.pending[idx].remove(pos).expect("in range"));
            }
            // A peer's lines all come before its `Closed`.
            if Instant::now() >= deadline || !self.alive[idx] {
                return Err(format!(
                    "{}: no {what} within {timeout:?}; {}",
                    self.peers[idx].name,
                    self.log_tail(idx)
                ));
            }
            self.pump(deadline);
        }
    }

    /// Waits for `ready`, then registers and logs in each of `idxs` (the
    /// peer connects to the registry in the background: "not connected"
    /// means try again shortly).
    fn login(&mut self, idxs: &[usize]) -> Result<(), String> {
        for &i in idxs {
            self.wait(i, "ready", START_TIMEOUT, |v| v["event"] == "ready")?;
        }
        for (verb, event) in [("register", "registered"), ("login", "logged_in")] {
            for &i in idxs {
                let line = format!("/{verb} {} {PASSWORD}", self.peers[i].name);
                self.send(i, &line)?;
            }
            for &i in idxs {
                let line = format!("/{verb} {} {PASSWORD}", self.peers[i].name);
                let deadline = Instant::now() + START_TIMEOUT;
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let v = self.wait(i, event, left, |v| {
                        v["event"] == event || v["event"] == "error"
                    })?;
                    if v["event"] == event {
                        break;
                    }
                    let msg = v["message"].as_str().unwrap_or_default();
                    if !msg.contains("not connected") || Instant::now() >= deadline {
                        return Err(format!("{}: {line:?} failed: {v}", self.peers[i].name));
                    }
                    thread::sleep(Duration::from_millis(50));
                    self.send(i, &line)?;
                }
            }
        }
        Ok(())
    }

    /// utime+stime of every peer, in ticks.
    fn cpu_ticks_all(&self) -> u64 {
        self.peers
            .iter()
            .filter_map(|p| cpu_ticks(p.child.id()))
            .sum()
    }
}

/// Creates `room` with `members[0]` and has the others join; waits until
/// the first member (the sender) knows every other one.
fn setup_room(hub: &mut Hub, room: &str, members: &[usize]) -> Result<(), String> {
    let s = members[0];
    let joined = |room: &str| {
        let room = room.to_string();
        move |v: &Value| v["event"] == "room_joined" && v["room"] == json!(room)
    };
    hub.send(s, &format!("/create {room}"))?;
    hub.wait(s, "room_joined", Duration::from_secs(10), joined(room))?;
    for &m in &members[1..] {
        hub.send(m, &format!("/join {room}"))?;
    }
    for &m in &members[1..] {
        let v = hub.wait(m, "room_joined", Duration::from_secs(30), joined(room))?;
        let sender = hub.peers[s].name.clone();
        let lists_sender = v["members"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == sender.as_str()));
        if !lists_sender {
            return Err(format!(
                "{} joined #{room} without {sender} in its list: {v}",
                hub.peers[m].name
            ));
        }
    }
    let mut missing: HashSet<String> = members[1..]
        .iter()
        .map(|&m| hub.peers[m].name.clone())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !missing.is_empty() {
        let q = &mut hub.pending[s];
        q.retain(|v| {
            if v["event"] == "member_joined" && v["room"] == json!(room) {
                if let Some(u) = v["user"].as_str() {
                    missing.remove(u);
                }
                false
            } else {
                true
            }
        });
        if missing.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the sender never saw {} of the members join #{room}",
                missing.len()
            ));
        }
        hub.pump(deadline);
    }
    hub.send(s, &format!("/switch #{room}"))?;
    hub.pump_for(Duration::from_secs(1));
    hub.clear_pending();
    Ok(())
}

fn leave_room(hub: &mut Hub, room: &str, members: &[usize]) {
    for &m in members {
        let _ = hub.send(m, &format!("/leave {room}"));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for &m in members {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = hub.wait(m, "room_left", left, |v| {
            v["event"] == "room_left" && v["room"] == json!(room)
        });
    }
    // The "leave" lingers 1.5 s at most.
    hub.pump_for(Duration::from_millis(1600));
    hub.clear_pending();
}

#[derive(Clone)]
struct RoomRun {
    members: usize,
    offered: f64,
    msgs: usize,
    achieved: f64,
    lat: Lat,
    /// (message, member) pairs never delivered.
    lost: usize,
    dups: u64,
    incidents: Vec<String>,
    drained: bool,
    peer_cores: f64,
    /// Messages the sender reported as delivered (`acked == total`) although
    /// some member never got them.
    false_delivered: usize,
    /// `delivery_failed` events the sender emitted.
    failed_reported: usize,
}

impl RoomRun {
    fn sustained(&self) -> bool {
        self.lost == 0
            && self.dups == 0
            && self.drained
            && !self.incidents.iter().any(|i| i.contains("delivery_failed"))
            && self.achieved >= MIN_ACHIEVED * self.offered
            && self.lat.p99 <= BLOWUP_P99_US
    }

    fn json(&self, floor: Option<&Floor>) -> Value {
        let (f50, f99) = (floor.map(|f| f.udp.p50), floor.map(|f| f.udp.p99));
        json!({
            "members": self.members, "offered_per_sec": self.offered, "messages": self.msgs,
            "achieved_per_sec": round2(self.achieved),
            "latency_send_to_last_member": lat_json(&self.lat),
            "p50_over_udp_floor": ratio_json(self.lat.p50, f50),
            "p99_over_udp_floor": ratio_json(self.lat.p99, f99),
            "lost_member_messages": self.lost, "duplicates": self.dups,
            "all_delivered_in_time": self.drained,
            "incidents": self.incidents.iter().take(20).collect::<Vec<_>>(),
            "incident_count": self.incidents.len(),
            "peer_cpu_cores": round2(self.peer_cores),
            "sender_reported_delivered_but_not_received": self.false_delivered,
            "sender_delivery_failed_events": self.failed_reported,
            "sustained": self.sustained(),
        })
    }
}

/// Sends `n` messages from `sender` at `rate` a second (on a schedule;
/// late ones go at once) and measures, for each, the time from the
/// sender's own `message` event to the last member's.
fn run_room(
    hub: &mut Hub,
    tag: &str,
    sender: usize,
    receivers: &[usize],
    rate: f64,
    n: usize,
    drain: Duration,
) -> Result<RoomRun, String> {
    hub.clear_pending();
    hub.acc = Some(RunAcc::new(tag, sender, receivers, n));
    let ticks0 = hub.cpu_ticks_all();
    let t0 = Instant::now();
    for i in 0..n {
        let due = t0 + Duration::from_secs_f64(i as f64 / rate);
        loop {
            let now = Instant::now();
            if now + Duration::from_micros(200) >= due {
                break;
            }
            match hub.rx.recv_timeout(due - now - Duration::from_micros(150)) {
                Ok(ev) => hub.dispatch(ev),
                Err(_) => continue,
            }
        }
        hub.send(sender, &format!("{tag}.{i}"))?;
    }
    let deadline = Instant::now() + drain;
    while !hub.acc.as_ref().is_some_and(RunAcc::done) && Instant::now() < deadline {
        hub.pump(deadline);
    }
    // Late duplicates, if any, show up here.
    let extra = Instant::now() + Duration::from_millis(200);
    while hub.pump(extra) {}
    let wall = t0.elapsed().as_secs_f64();
    let ticks1 = hub.cpu_ticks_all();
    let acc = hub.acc.take().expect("run");
    let drained = acc.done();
    let receivers_n = acc.counts.len();
    let lat: Vec<u64> = acc
        .own_ts
        .iter()
        .zip(&acc.max_ts)
        .zip(&acc.got)
        .filter(|((&own, _), &got)| own > 0 && got == receivers_n)
        .map(|((&own, &last), _)| last.saturating_sub(own) * 1000)
        .collect();
    let lost = acc.n * receivers_n - acc.pairs;
    let false_delivered = acc
        .reported_done
        .iter()
        .zip(&acc.got)
        .filter(|(&done, &got)| done && got < receivers_n)
        .count();
    let own: Vec<u64> = acc.own_ts.iter().copied().filter(|&t| t > 0).collect();
    let achieved = match (own.iter().min(), own.iter().max()) {
        (Some(a), Some(b)) if b > a && own.len() > 1 => {
            (own.len() - 1) as f64 / ((b - a) as f64 / 1e6)
        }
        _ => 0.0,
    };
    let mut incidents = acc.incidents;
    if acc.own_seen < acc.n {
        incidents.push(format!(
            "the sender showed only {} of {} messages as sent",
            acc.own_seen, acc.n
        ));
    }
    Ok(RoomRun {
        members: receivers_n + 1,
        offered: rate,
        msgs: n,
        achieved,
        lat: lat_ns(lat),
        lost,
        dups: acc.dups,
        incidents,
        drained,
        peer_cores: ticks1.saturating_sub(ticks0) as f64 / clk_tck() as f64 / wall,
        false_delivered,
        failed_reported: acc.failed_reported,
    })
}

struct RoomSize {
    members: usize,
    /// CPU of all peers while the room is idle (liveness pings only), in cores.
    idle_cores: Option<f64>,
    runs: Vec<RoomRun>,
    max_sustained: Option<f64>,
    stepped: bool,
    error: Option<String>,
}

struct Lossy {
    run: RoomRun,
    nft_dropped: u64,
    retransmits: Option<u64>,
    duplicates_dropped: Option<u64>,
}

struct Rooms {
    sizes: Vec<RoomSize>,
    lossy: Result<Lossy, String>,
}

fn rooms_section(p: &Params, dir: &Path) -> Result<Rooms, String> {
    let reg = RegistryProc::start(
        &[],
        "127.0.0.1:0",
        &dir.join("rooms.db").to_string_lossy(),
        &CHEAP_ARGON2,
        dir.join("registry-rooms.log"),
        None,
    )?;
    let mut hub = Hub::new(reg.addr, dir);
    let mut sizes = Vec::new();
    for &n in &p.room_sizes {
        let mut size = RoomSize {
            members: n,
            idle_cores: None,
            runs: Vec::new(),
            max_sustained: None,
            stepped: p.step_sizes.contains(&n),
            error: None,
        };
        if let Err(e) = room_size(p, &mut hub, n, &mut size) {
            progress!("room of {n}: {e}");
            size.error = Some(e);
        }
        sizes.push(size);
    }
    drop(hub);
    drop(reg);
    let lossy = if p.lossy_members > 0 {
        lossy_room(p, dir)
    } else {
        Err("skipped: not requested".into())
    };
    Ok(Rooms { sizes, lossy })
}

fn room_size(p: &Params, hub: &mut Hub, n: usize, size: &mut RoomSize) -> Result<(), String> {
    let have = hub.peers.len();
    if have < n {
        progress!("starting peers {have}..{n}");
        let mut new = Vec::new();
        for i in have..n {
            new.push(hub.spawn(&format!("m{i:03}"), &[])?);
        }
        hub.login(&new)?;
    }
    let members: Vec<usize> = (0..n).collect();
    let room = format!("b{n}");
    progress!("room of {n}: setting up #{room}");
    setup_room(hub, &room, &members)?;
    // The cost of just being in the room: every member pings every other
    // one twice a second.
    let (t, k0) = (Instant::now(), hub.cpu_ticks_all());
    hub.pump_for(Duration::from_secs(2));
    let idle = hub.cpu_ticks_all().saturating_sub(k0) as f64
        / clk_tck() as f64
        / t.elapsed().as_secs_f64();
    size.idle_cores = Some(idle);
    progress!("room of {n}: idle (pings only): peers use {idle:.2} cores");
    hub.clear_pending();
    let mut rates = vec![p.base_rate];
    if size.stepped {
        rates.extend(p.step_rates.iter().copied());
    }
    for (k, &rate) in rates.iter().enumerate() {
        let msgs = if k == 0 {
            p.room_msgs
        } else {
            ((rate * p.step_secs) as usize).min(p.step_cap)
        };
        let tag = format!("r{n}x{}", rate as u64);
        let run = run_room(hub, &tag, 0, &members[1..], rate, msgs, p.drain)?;
        progress!(
            "room of {n}: {} msg/s offered, {:.0} sent/s: p50 {}, p99 {}, max {}, lost {}, dups {}, peers {:.2} cores{}",
            rate,
            run.achieved,
            fmt_us(run.lat.p50),
            fmt_us(run.lat.p99),
            fmt_us(run.lat.max),
            run.lost,
            run.dups,
            run.peer_cores,
            if run.sustained() { "" } else { "  <- not sustained" }
        );
        let ok = run.sustained();
        size.runs.push(run);
        if !ok {
            break;
        }
        size.max_sustained = Some(rate);
        // Let retransmissions and pings settle between steps.
        hub.pump_for(Duration::from_millis(500));
        hub.clear_pending();
    }
    leave_room(hub, &room, &members);
    Ok(())
}

// The virtual LAN of the lossy run: the same helpers as the namespace tests.
use kit::netns;

const NS_PREFIX: &str = "lcbench";

fn lossy_room(p: &Params, dir: &Path) -> Result<Lossy, String> {
    let n = p.lossy_members;
    progress!("lossy room: building {} network namespaces", n + 2);
    let reg_ip = Ipv4Addr::new(10, 198, 0, 1);
    let mut hosts = vec![("reg".to_string(), reg_ip)];
    for i in 0..n {
        hosts.push((format!("m{i:03}"), Ipv4Addr::new(10, 198, 0, 10 + i as u8)));
    }
    let roles: Vec<(&str, Ipv4Addr)> = hosts.iter().map(|(r, ip)| (r.as_str(), *ip)).collect();
    // Declared first, so dropped last: after the processes in it are killed.
    let lab = netns::Lab::try_start(NS_PREFIX, "lossy", &roles, true).map_err(|e| match e {
        netns::Unavailable::Skip(why) => format!("skipped: {why}"),
        netns::Unavailable::Broken(e) => format!("building the namespaces: {e}"),
    })?;
    for (role, _) in &hosts[1..] {
        lab.lossy_input(role)
            .map_err(|e| format!("skipped: nftables: {e}"))?;
    }
    let reg = RegistryProc::start(
        &lab.prefix("reg"),
        "0.0.0.0:0",
        &dir.join("lossy.db").to_string_lossy(),
        &CHEAP_ARGON2,
        dir.join("registry-lossy.log"),
        Some(IpAddr::V4(reg_ip)),
    )?;
    let ldir = dir.join("lossy");
    fs::create_dir_all(&ldir).map_err(|e| e.to_string())?;
    let mut hub = Hub::new(reg.addr, &ldir);
    let mut idxs = Vec::new();
    for (role, _) in &hosts[1..] {
        idxs.push(hub.spawn(role, &lab.prefix(role))?);
    }
    hub.login(&idxs)?;
    progress!("lossy room: setting up #lossy with {n} members");
    setup_room(&mut hub, "lossy", &idxs)?;
    let run = run_room(
        &mut hub,
        "lossy",
        idxs[0],
        &idxs[1..],
        p.base_rate,
        p.lossy_msgs,
        Duration::from_secs(30),
    )?;
    progress!(
        "lossy room: p50 {}, p99 {}, max {}, lost {}, dups {}",
        fmt_us(run.lat.p50),
        fmt_us(run.lat.p99),
        fmt_us(run.lat.max),
        run.lost,
        run.dups
    );
    let nft_dropped = hosts[1..]
        .iter()
        .map(|(role, _)| lab.dropped(role).unwrap_or(0))
        .sum();
    let stats = hub
        .send(idxs[0], "/stats")
        .and_then(|_| {
            hub.wait(idxs[0], "stats", Duration::from_secs(10), |v| {
                v["event"] == "stats"
            })
        })
        .ok();
    let retransmits = stats
        .as_ref()
        .and_then(|s| s["rooms"]["retransmits"].as_u64());
    let mut dups = 0;
    let mut any = false;
    for &i in &idxs[1..] {
        if hub.send(i, "/stats").is_ok() {
            if let Ok(s) = hub.wait(i, "stats", Duration::from_secs(10), |v| {
                v["event"] == "stats"
            }) {
                dups += s["rooms"]["duplicates"].as_u64().unwrap_or(0);
                any = true;
            }
        }
    }
    drop(hub);
    drop(reg);
    drop(lab);
    Ok(Lossy {
        run,
        nft_dropped,
        retransmits,
        duplicates_dropped: any.then_some(dups),
    })
}

/// Incidents ("peer: {event json}") counted by event and reason, with the
/// first of each kind.
fn incident_summary(incidents: &[String]) -> Vec<String> {
    let mut kinds: Vec<(String, usize, String)> = Vec::new();
    for i in incidents {
        let (who, ev) = i.split_once(": ").unwrap_or(("?", i));
        let v: Value = serde_json::from_str(ev).unwrap_or(Value::Null);
        let key = match (v["event"].as_str(), v["reason"].as_str()) {
            (Some(e), Some(r)) => format!("{e} ({r})"),
            (Some(e), None) => e.to_string(),
            _ => i.chars().take(60).collect(),
        };
        match kinds.iter_mut().find(|(k, _, _)| *k == key) {
            Some(k) => k.1 += 1,
            None => {
                let first = format!("{who}: {}", ev.chars().take(140).collect::<String>());
                kinds.push((key, 1, first));
            }
        }
    }
    kinds
        .into_iter()
        .map(|(k, n, first)| format!("{n} x {k}, first: {first}"))
        .collect()
}

fn report_rooms(r: &mut Report, res: &Result<Rooms, String>, floor: Option<&Floor>, p: &Params) {
    r.heading("3. Rooms: one sender, real `peer --json` processes on loopback");
    r.line("  latency = max over members of (member's `message` ts_us) - (sender's own `message` ts_us), one host clock;");
    r.line("  it starts when the sender's main loop takes the line from its input, so input-queue wait is not in it:");
    r.line("  \"sent/s\" (from the sender's own events) shows when the sender could not keep up with the offered rate;");
    r.line("  ratios are to the loopback UDP round-trip floor (the room figure is one way: a ratio of 0.5 would match it).");
    r.line(format!(
        "  {} messages at {} msg/s offered; then the offered rate steps up ({} msgs or {} s a step) until a step",
        p.room_msgs,
        p.base_rate,
        p.step_cap,
        p.step_secs
    ));
    r.line(format!(
        "  loses or duplicates anything, sends < {:.0}% of the offered rate, or has p99 > {}.",
        MIN_ACHIEVED * 100.0,
        fmt_us(BLOWUP_P99_US)
    ));
    r.line("  Registry for rooms: --argon2-memory-kib 256 --argon2-passes 1. \"peer CPU\" = all peer processes, in cores.");
    let rooms = match res {
        Ok(x) => x,
        Err(e) => {
            r.line(format!("  error: {e}"));
            r.json.insert("rooms".into(), json!({"error": e}));
            r.target("30-member room p99 <= 1 ms on loopback", e.clone(), None);
            r.target("no loss at 10% network loss", e.clone(), None);
            return;
        }
    };
    let (f50, f99) = (floor.map(|f| f.udp.p50), floor.map(|f| f.udp.p99));
    let mut rows = Vec::new();
    for s in &rooms.sizes {
        for run in &s.runs {
            rows.push(vec![
                s.members.to_string(),
                format!("{}", run.offered),
                fmt_rate(run.achieved),
                group(run.msgs as u64),
                fmt_us(run.lat.p50),
                fmt_us(run.lat.p99),
                fmt_us(run.lat.max),
                ratio(run.lat.p50, f50),
                ratio(run.lat.p99, f99),
                format!("{}/{}", run.lost, run.dups),
                format!("{:.2}", run.peer_cores),
                if run.sustained() { "yes" } else { "NO" }.into(),
            ]);
        }
    }
    table(
        &mut r.text,
        &[
            "members",
            "offered/s",
            "sent/s",
            "msgs",
            "p50",
            "p99",
            "max",
            "p50/floor",
            "p99/floor",
            "lost/dup",
            "peer CPU",
            "sustained",
        ],
        &rows,
    );
    for s in &rooms.sizes {
        let best = match (s.stepped, s.max_sustained) {
            (false, _) => "not stepped in this run".to_string(),
            (true, Some(x)) => {
                let top = s.runs.last().is_some_and(RoomRun::sustained);
                if top {
                    format!("{x} msg/s (the highest step tried)")
                } else {
                    format!("{x} msg/s")
                }
            }
            (true, None) => format!("below {} msg/s", p.base_rate),
        };
        r.line(format!(
            "  {} members: highest rate sustained with zero loss: {best}; idle room (liveness pings only, {} datagrams/s): peers use {} cores",
            s.members,
            group(2 * (s.members * s.members.saturating_sub(1)) as u64),
            s.idle_cores.map_or("?".into(), |c| format!("{c:.2}"))
        ));
        if let Some(e) = &s.error {
            r.line(format!("  {} members: error: {e}", s.members));
        }
        for run in s.runs.iter().filter(|r| r.lost > 0) {
            r.line(format!(
                "  {} members at {}/s: {} member-messages never arrived; the sender emitted {} delivery_failed and reported {} of those messages as delivered to all (acked = total)",
                s.members,
                run.offered,
                group(run.lost as u64),
                run.failed_reported,
                run.false_delivered
            ));
        }
        for run in &s.runs {
            for line in incident_summary(&run.incidents) {
                r.line(format!(
                    "  {} members at {}/s: {line}",
                    s.members, run.offered
                ));
            }
        }
    }
    r.line("");
    r.line("  With 10% loss: each member in its own network namespace on a bridge, nftables input rule");
    r.line("  `meta l4proto udp numgen random mod 10 0 drop` in every member namespace.");
    let lossy_json = match &rooms.lossy {
        Ok(l) => {
            let run = &l.run;
            table(
                &mut r.text,
                &[
                    "members",
                    "offered/s",
                    "msgs",
                    "p50",
                    "p99",
                    "max",
                    "p50/floor",
                    "p99/floor",
                    "lost/dup",
                    "nft dropped",
                    "retransmits",
                    "dups discarded",
                ],
                &[vec![
                    run.members.to_string(),
                    format!("{}", run.offered),
                    group(run.msgs as u64),
                    fmt_us(run.lat.p50),
                    fmt_us(run.lat.p99),
                    fmt_us(run.lat.max),
                    ratio(run.lat.p50, f50),
                    ratio(run.lat.p99, f99),
                    format!("{}/{}", run.lost, run.dups),
                    group(l.nft_dropped),
                    l.retransmits.map_or("?".into(), group),
                    l.duplicates_dropped.map_or("?".into(), group),
                ]],
            );
            for line in incident_summary(&run.incidents) {
                r.line(format!("  lossy: {line}"));
            }
            let mut j = run.json(floor);
            j["nft_dropped_datagrams"] = json!(l.nft_dropped);
            j["sender_retransmits"] = json!(l.retransmits);
            j["receiver_duplicates_discarded"] = json!(l.duplicates_dropped);
            j
        }
        Err(e) => {
            r.line(format!("  {e}"));
            json!({"skipped": e})
        }
    };
    let sizes: Vec<Value> = rooms
        .sizes
        .iter()
        .map(|s| {
            json!({
                "members": s.members,
                "runs": s.runs.iter().map(|x| x.json(floor)).collect::<Vec<_>>(),
                "stepped": s.stepped,
                "idle_peer_cpu_cores": s.idle_cores.map(round2),
                "ping_datagrams_per_sec": 2 * s.members * s.members.saturating_sub(1),
                "max_sustained_per_sec": s.max_sustained,
                "error": s.error,
            })
        })
        .collect();
    r.json.insert(
        "rooms".into(),
        json!({
            "blowup_p99_us": BLOWUP_P99_US, "min_achieved_share": MIN_ACHIEVED,
            "sizes": sizes, "lossy_10pct": lossy_json,
        }),
    );
    let thirty = rooms
        .sizes
        .iter()
        .find(|s| s.members == 30)
        .and_then(|s| s.runs.first());
    match thirty {
        Some(run) if run.lat.n > 0 => r.target(
            "30-member room p99 <= 1 ms on loopback",
            format!("{} at {}/s", fmt_us(run.lat.p99), run.offered),
            Some(run.lat.p99 <= 1000.0 && run.lost == 0),
        ),
        _ => r.target(
            "30-member room p99 <= 1 ms on loopback",
            "no data".into(),
            None,
        ),
    }
    match &rooms.lossy {
        Ok(l) => r.target(
            "no loss at 10% network loss (30 members)",
            format!(
                "{} of {} member-messages lost, {} duplicated",
                l.run.lost,
                l.run.msgs * (l.run.members - 1),
                l.run.dups
            ),
            Some(l.run.lost == 0 && l.run.dups == 0),
        ),
        Err(e) => r.target("no loss at 10% network loss (30 members)", e.clone(), None),
    }
}

// ---------------------------------------------------------------- 4. footprint

/// Registry memory for sessions logged in at the default Argon2id cost.
struct MemAtCost {
    env: String,
    sessions: usize,
    idle: u64,
    loaded: u64,
    after_close: u64,
}

impl MemAtCost {
    fn per_session_kib(&self) -> f64 {
        self.loaded.saturating_sub(self.idle) as f64 / self.sessions.max(1) as f64
    }
}

fn mem_at_default_cost(
    dir: &Path,
    n: usize,
    env: &[(&str, &str)],
    hint: &str,
) -> Result<MemAtCost, String> {
    let reg = RegistryProc::start_env(
        &[],
        "127.0.0.1:0",
        &dir.join(format!("mem-{hint}.db")).to_string_lossy(),
        &NO_PACING,
        dir.join(format!("registry-mem-{hint}.log")),
        None,
        env,
    )?;
    thread::sleep(Duration::from_millis(300));
    let idle = rss_kib(reg.pid());
    let hb = Heartbeater::start(reg.addr, 1);
    let names: Vec<String> = (0..n).map(|i| format!("mem{i:03}")).collect();
    let (clients, fails, err) = login_many(
        reg.addr,
        &names,
        2,
        Duration::from_secs(60),
        LONG_WAIT,
        &|t: &str| hb.add(t),
    );
    if fails > 0 {
        return Err(format!("logins failed: {}", err.unwrap_or_default()));
    }
    thread::sleep(Duration::from_millis(300));
    let loaded = rss_kib(reg.pid());
    drop(clients);
    thread::sleep(Duration::from_millis(700));
    let after_close = rss_kib(reg.pid());
    Ok(MemAtCost {
        env: env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
        sessions: n,
        idle,
        loaded,
        after_close,
    })
}

struct Footprint {
    mem: Vec<Result<MemAtCost, String>>,
    secs: f64,
    rss: u64,
    hwm: u64,
    threads: u64,
    cpu_pct: f64,
    cpu_pct_ns: Option<f64>,
    tick_ms: f64,
}

fn footprint_section(p: &Params, dir: &Path) -> Result<Footprint, String> {
    let reg = RegistryProc::start(
        &[],
        "127.0.0.1:0",
        &dir.join("footprint.db").to_string_lossy(),
        &CHEAP_ARGON2,
        dir.join("registry-footprint.log"),
        None,
    )?;
    let fdir = dir.join("footprint");
    fs::create_dir_all(&fdir).map_err(|e| e.to_string())?;
    let mut hub = Hub::new(reg.addr, &fdir);
    let i = hub.spawn("idle", &[])?;
    hub.login(&[i])?;
    hub.pump_for(Duration::from_secs(2));
    let pid = hub.pid(i);
    progress!("idle peer: measuring for {} s", p.idle_secs);
    let (t0, k0, n0) = (Instant::now(), cpu_ticks(pid), cpu_ns(pid));
    hub.pump_for(Duration::from_secs(p.idle_secs));
    let (secs, k1, n1) = (t0.elapsed().as_secs_f64(), cpu_ticks(pid), cpu_ns(pid));
    let rss = rss_kib(pid);
    let hwm = proc_status_kib(pid, "VmHWM").unwrap_or(0);
    let threads = proc_status_kib(pid, "Threads").unwrap_or(0);
    let ticks = k1
        .zip(k0)
        .map(|(a, b)| a.saturating_sub(b))
        .ok_or("no /proc stat")?;
    let cpu_pct = ticks as f64 / clk_tck() as f64 / secs * 100.0;
    let cpu_pct_ns = n1
        .zip(n0)
        .map(|(a, b)| a.saturating_sub(b) as f64 / 1e9 / secs * 100.0);
    if !hub.alive[i] {
        return Err("the idle peer exited".into());
    }
    drop(hub);
    drop(reg);
    let n = if p.quick { 10 } else { 20 };
    progress!("registry memory for {n} sessions at the default Argon2id cost");
    let mut mem = vec![mem_at_default_cost(dir, n, &[], "plain")];
    // Diagnostic: a fixed mmap threshold (glibc) keeps Argon2's big buffer
    // out of the heap.
    mem.push(mem_at_default_cost(
        dir,
        n,
        &[("MALLOC_MMAP_THRESHOLD_", "131072")],
        "mmap",
    ));
    Ok(Footprint {
        mem,
        secs,
        rss,
        hwm,
        threads,
        cpu_pct,
        cpu_pct_ns,
        tick_ms: 1000.0 / clk_tck() as f64,
    })
}

fn report_footprint(r: &mut Report, res: &Result<Footprint, String>, conc: Option<&Conc>) {
    r.heading("4. Footprint");
    let per = conc.and_then(Conc::per_session_kib);
    match res {
        Ok(f) => {
            let rows = vec![
                vec![
                    "idle logged-in peer: RSS".into(),
                    format!(
                        "{} (peak {}), {} threads",
                        mib(f.rss),
                        mib(f.hwm),
                        f.threads
                    ),
                ],
                vec![
                    format!("idle logged-in peer: CPU over {:.0} s", f.secs),
                    format!(
                        "{:.3}% of one core (utime+stime, {:.0} ms ticks); {} by schedstat",
                        f.cpu_pct,
                        f.tick_ms,
                        f.cpu_pct_ns.map_or("n/a".into(), |x| format!("{x:.4}%"))
                    ),
                ],
                vec![
                    "registry memory per session (section 2)".into(),
                    per.map_or("n/a (concurrency not run)".into(), |k| {
                        format!("{k:.1} KiB")
                    }),
                ],
            ];
            let mut rows = rows;
            let mut mem_json = Vec::new();
            for m in &f.mem {
                match m {
                    Ok(m) => {
                        let label = if m.env.is_empty() {
                            format!(
                                "registry RSS per session, default Argon2id cost ({} logins)",
                                m.sessions
                            )
                        } else {
                            format!("  same, diagnostic run with {}", m.env)
                        };
                        rows.push(vec![
                            label,
                            format!(
                                "{:.0} KiB  (idle {} -> {} with them; {} after they disconnect)",
                                m.per_session_kib(),
                                mib(m.idle),
                                mib(m.loaded),
                                mib(m.after_close)
                            ),
                        ]);
                        mem_json.push(json!({
                            "env": m.env, "sessions": m.sessions, "rss_idle_kib": m.idle,
                            "rss_loaded_kib": m.loaded, "rss_after_disconnect_kib": m.after_close,
                            "kib_per_session": round2(m.per_session_kib()),
                        }));
                    }
                    Err(e) => {
                        rows.push(vec!["registry RSS at the default cost".into(), e.clone()]);
                        mem_json.push(json!({"error": e}));
                    }
                }
            }
            table(&mut r.text, &["", ""], &rows);
            r.json.insert(
                "footprint".into(),
                json!({
                    "idle_secs": round2(f.secs), "peer_rss_kib": f.rss, "peer_rss_peak_kib": f.hwm,
                    "peer_threads": f.threads, "peer_cpu_percent_of_one_core": (f.cpu_pct * 1000.0).round() / 1000.0,
                    "peer_cpu_percent_schedstat": f.cpu_pct_ns.map(|x| (x * 10000.0).round() / 10000.0),
                    "clock_tick_ms": f.tick_ms,
                    "registry_kib_per_session": per.map(round2),
                    "registry_memory_at_default_argon2": mem_json,
                }),
            );
            r.target(
                "idle peer < 10 MB RSS",
                mib(f.rss),
                Some((f.rss as f64) * 1024.0 < 10.0 * 1024.0 * 1024.0),
            );
            r.target(
                "idle peer < 0.1% CPU",
                format!("{:.3}%", f.cpu_pct),
                Some(f.cpu_pct < 0.1),
            );
        }
        Err(e) => {
            r.line(format!("  error: {e}"));
            r.json.insert("footprint".into(), json!({"error": e}));
            r.target("idle peer < 10 MB RSS", e.clone(), None);
            r.target("idle peer < 0.1% CPU", e.clone(), None);
        }
    }
}

// ---------------------------------------------------------------- main

fn main() {
    T0.get_or_init(Instant::now);
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let mut p = Params::new(opts.quick);
    if let Some(sizes) = &opts.rooms {
        p.room_sizes = sizes.clone();
        if !p.quick {
            p.step_sizes = sizes.clone();
        }
    }
    if let Some(r) = opts.room_rate {
        p.base_rate = r;
    }
    if let Some(n) = opts.room_msgs {
        p.room_msgs = n;
    }
    let bins = bins();
    let started = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("lanchat-bench-")
        .tempdir()
        .expect("temporary directory");
    TEE.store(opts.keep, Ordering::Relaxed);
    let machine = machine();
    progress!(
        "lanchat benchmarks ({} run): {}",
        if p.quick { "quick" } else { "full" },
        machine
    );
    progress!(
        "registry: {}, peer: {}",
        bins.registry.display(),
        bins.peer.display()
    );

    let mut r = Report {
        text: String::new(),
        json: serde_json::Map::new(),
        targets: Vec::new(),
        target_rows: Vec::new(),
    };
    let run_floor = opts.has("floor") || opts.has("registry") || opts.has("rooms");
    let floor = run_floor.then(|| guarded("floor", || floor_section(&p)));
    let floor_ok = floor.as_ref().and_then(|f| f.as_ref().ok());
    let registry = opts.has("registry").then(|| {
        guarded("registry", || {
            let mut stores = vec![registry_store(&p, "embedded", None, dir.path())];
            let mongo = start_mongo();
            stores.push(match &mongo {
                Ok(m) => registry_store(&p, "mongodb", Some(m), dir.path()),
                Err(e) => StoreBench {
                    error: Some(e.clone()),
                    ..empty_store_bench("mongodb")
                },
            });
            // Dropping `mongo` stops nx-27017.
            Ok(stores)
        })
    });
    let conc = opts
        .has("concurrency")
        .then(|| guarded("concurrency", || concurrency_section(&p, dir.path())));
    let rooms = opts
        .has("rooms")
        .then(|| guarded("rooms", || rooms_section(&p, dir.path())));
    let footprint = opts
        .has("footprint")
        .then(|| guarded("footprint", || footprint_section(&p, dir.path())));
    let total = started.elapsed().as_secs_f64();
    if opts.keep {
        let kept = dir.keep();
        progress!("kept the work directory: {}", kept.display());
    }

    let m = &machine;
    let load_end = loadavg();
    r.line(format!(
        "lanchat benchmarks: {} run, {} on {} ({} CPUs, {} GiB RAM, {}), {:.0} s",
        if p.quick { "quick" } else { "full" },
        m["date"].as_str().unwrap_or("?"),
        m["cpu_model"].as_str().unwrap_or("?"),
        m["nproc"],
        m["mem_total_gib"],
        m["kernel"].as_str().unwrap_or("?"),
        total
    ));
    r.line(format!(
        "load average (1/5/15 min) at start {}, at end {}",
        m["loadavg_at_start"].as_str().unwrap_or("?"),
        load_end
    ));
    if let Some(f) = &floor {
        report_floor(&mut r, f);
    }
    if let Some(x) = &registry {
        report_registry(&mut r, x, floor_ok);
    }
    if let Some(x) = &conc {
        report_conc(&mut r, x, floor_ok);
    }
    if let Some(x) = &rooms {
        report_rooms(&mut r, x, floor_ok, &p);
    }
    if let Some(x) = &footprint {
        report_footprint(&mut r, x, conc.as_ref().and_then(|c| c.as_ref().ok()));
    }
    r.heading("Targets (reported, not asserted)");
    let rows = std::mem::take(&mut r.target_rows);
    if rows.is_empty() {
        r.line("  (none in the selected sections)");
    } else {
        table(&mut r.text, &["target", "figure", "status"], &rows);
    }

    print!("{}", r.text);
    let mut doc = serde_json::Map::new();
    doc.insert("machine".into(), machine);
    doc.insert(
        "run".into(),
        json!({
            "mode": if p.quick { "quick" } else { "full" },
            "sections": opts.only.iter().collect::<Vec<_>>(),
            "total_secs": round2(total),
            "loadavg_at_end": load_end,
            "registry_binary": bins.registry.display().to_string(),
            "peer_binary": bins.peer.display().to_string(),
        }),
    );
    doc.extend(std::mem::take(&mut r.json));
    doc.insert(
        "targets".into(),
        Value::Array(std::mem::take(&mut r.targets)),
    );
    doc.insert("table".into(), json!(r.text));
    let out_dir = bins
        .registry
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("bench"))
        .unwrap_or_else(|| PathBuf::from("target/bench"));
    let path = out_dir.join("results.json");
    match fs::create_dir_all(&out_dir).and_then(|_| {
        fs::write(
            &path,
            serde_json::to_string_pretty(&Value::Object(doc)).unwrap_or_default() + "\n",
        )
    }) {
        Ok(()) => println!("\nresults: {}", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
}
