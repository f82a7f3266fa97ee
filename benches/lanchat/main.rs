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
//! Sections (`--only`, comma-separated): `floor`, `registry`, `workload`,
//! `concurrency`, `rooms`, `lecture`, `irc`, `footprint`, `noise` (the chat handshake, [`noise`]), `crypto` (the room
//! layer's seal/sign/verify/open per datagram and per member, in process, [`crypto`]). The floor also runs whenever `registry` or `rooms`
//! does, since their latencies are shown as ratios to it.
//!
//! Modules: [`fanout`] (issue 16's room workload figures), [`floor`], [`registry`], [`workload`], [`concurrency`], [`rooms`] (with its
//! peers in [`hub`]), [`lecture`] (issue 16's workload on lanchat, and the idle room in [`idle`]), [`irc_report`] (the ngircd baseline, with [`irc`] and
//! [`irc_run`]) and [`footprint`] measure and report one section each;
//! [`load`] drives the registry, [`sys`] reads `/proc`, [`procs`] starts the
//! release binaries through the test kit (`tests/kit`), [`report`] formats.
//!
//! `--bin-dir DIR` runs the sections against the `registry` and `peer` in
//! DIR instead (another commit's release build, e.g. for a before/after
//! comparison); results.json still goes to this tree's `target/bench`.
//!
//! Every loop is bounded in count and in time; every child process gets
//! `PR_SET_PDEATHSIG = SIGKILL` (and is killed on drop), and the network
//! namespaces of the lossy room run are deleted by a guard.

/// A progress line on stderr, stamped with the time since start.
macro_rules! progress {
    ($($a:tt)*) => {
        eprintln!("[{:>6.1}s] {}", T0.get_or_init(Instant::now).elapsed().as_secs_f64(), format!($($a)*))
    };
}

#[path = "../../tests/kit/mod.rs"]
mod kit;

mod concurrency;
mod crypto;
mod fanout;
mod floor;
mod footprint;
mod hub;
mod idle;
mod irc;
mod irc_report;
mod irc_run;
mod lecture;
mod load;
mod noise;
mod procs;
mod registry;
mod report;
mod rooms;
mod sys;
mod workload;

use clap::Parser;
use concurrency::*;
use crypto::*;
use fanout::*;
use floor::*;
use footprint::*;
use hub::*;
use idle::*;
use irc::*;
use irc_report::*;
use irc_run::*;
use kit::mongo as support;
use kit::process::{tail, START_TIMEOUT};
use kit::{Client, Heartbeater, Registry, PASSWORD};
use lecture::*;
use load::*;
use noise::*;
use procs::*;
use registry::*;
use report::*;
use rooms::*;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Barrier, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};
use sys::*;
use workload::*;

/// When the run started, for [`progress!`].
static T0: OnceLock<Instant> = OnceLock::new();

const SECTIONS: [&str; 10] = [
    "floor",
    "registry",
    "workload",
    "concurrency",
    "rooms",
    "lecture",
    "irc",
    "footprint",
    "noise",
    "crypto",
];
/// Cheap Argon2id for parts that only need many accounts quickly.
const CHEAP_ARGON2: [&str; 4] = ["--argon2-memory-kib", "256", "--argon2-passes", "1"];
/// So the registry's per-connection pacing never caps throughput.
const NO_PACING: [&str; 2] = ["--requests-per-sec", "1000000"];
/// A rate step whose p99 exceeds this counts as a latency blow-up.
const BLOWUP_P99_US: f64 = 100_000.0;
/// A rate step must send at least this share of the offered rate.
const MIN_ACHIEVED: f64 = 0.9;
/// How long a registry request may take before it counts as failed.
const LONG_WAIT: Duration = Duration::from_secs(15);
/// The same while filling a registry with sessions (a login with cheap
/// Argon2id takes milliseconds; a connection the registry never accepted
/// should not hold a worker for long).
const FILL_WAIT: Duration = Duration::from_secs(5);

/// The command line (`cargo bench --bench lanchat -- ARGS`).
#[derive(Parser)]
#[command(
    name = "lanchat-bench",
    bin_name = "cargo bench --bench lanchat --",
    about = "lanchat benchmarks on the release binaries: a table and target/bench/results.json"
)]
struct Opts {
    /// Smaller counts (under 2 minutes).
    #[arg(long)]
    quick: bool,
    /// Run only these sections (the floor runs too for registry and rooms).
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        value_parser = SECTIONS,
        default_value = "floor,registry,workload,concurrency,rooms,lecture,irc,footprint,noise,crypto"
    )]
    only: Vec<String>,
    /// Room sizes to measure (default 10,30,100).
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = room_size)]
    rooms: Option<Vec<usize>>,
    /// The first (base) room run's offered rate (200/s).
    #[arg(long, value_name = "PER_SEC", value_parser = room_rate)]
    room_rate: Option<f64>,
    /// The first (base) room run's message count (400; quick 100).
    #[arg(long, value_name = "N", value_parser = room_msgs)]
    room_msgs: Option<usize>,
    /// Use the `registry` and `peer` binaries in DIR (default: this tree's
    /// target/release).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Keep the work directory: registry logs, and every peer's stderr and
    /// JSON events.
    #[arg(long)]
    keep: bool,
    /// Added by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

impl Opts {
    fn has(&self, s: &str) -> bool {
        self.only.iter().any(|x| x == s)
    }
}

/// A number in `lo..=hi`.
fn bounded<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    v: &str,
    lo: T,
    hi: T,
) -> Result<T, String> {
    match v.trim().parse::<T>() {
        Ok(n) if n >= lo && n <= hi => Ok(n),
        _ => Err(format!("{v:?} is not a number from {lo} to {hi}")),
    }
}

fn room_size(v: &str) -> Result<usize, String> {
    bounded(v, 2, 250)
}

fn room_rate(v: &str) -> Result<f64, String> {
    bounded(v, 1.0, 20_000.0)
}

fn room_msgs(v: &str) -> Result<usize, String> {
    bounded(v, 1, 100_000)
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
    workload_secs: f64,
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
    /// The IRC baseline: paced messages, burst, and a bound per room size.
    irc_paced: usize,
    irc_burst: usize,
    irc_limit: Duration,
    /// lanchat on the same workload (`lecture`): the bound per room size,
    /// setup included.
    lecture_limit: Duration,
    /// The lecture room idle before its first line: settling, then measured.
    idle_settle: Duration,
    idle_window: Duration,
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
                workload_secs: 1.0,
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
                irc_paced: 200,
                irc_burst: 500,
                irc_limit: Duration::from_secs(15),
                lecture_limit: Duration::from_secs(40),
                idle_settle: Duration::from_secs(2),
                idle_window: Duration::from_secs(3),
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
                workload_secs: 5.0,
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
                irc_paced: 1000,
                irc_burst: 2000,
                irc_limit: Duration::from_secs(30),
                lecture_limit: Duration::from_secs(60),
                idle_settle: Duration::from_secs(3),
                idle_window: Duration::from_secs(10),
            }
        }
    }
}

fn main() {
    T0.get_or_init(Instant::now);
    let opts = Opts::parse();
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
    if let Some(d) = &opts.bin_dir {
        let _ = BIN_DIR.set(d.clone());
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
    let workload = opts.has("workload").then(|| {
        guarded("workload", || {
            let mut runs = vec![workload(&p, "embedded", None, dir.path())];
            let mongo = start_mongo()?;
            runs.push(workload(&p, "mongodb", Some(&mongo), dir.path()));
            Ok(runs)
        })
    });
    let conc = opts
        .has("concurrency")
        .then(|| guarded("concurrency", || concurrency_section(&p, dir.path())));
    let rooms = opts
        .has("rooms")
        .then(|| guarded("rooms", || rooms_section(&p, dir.path())));
    let lecture = opts
        .has("lecture")
        .then(|| guarded("lecture", || lecture_section(&p, dir.path())));
    let irc = opts
        .has("irc")
        .then(|| guarded("irc", || irc_section(&p, dir.path())));
    let footprint = opts
        .has("footprint")
        .then(|| guarded("footprint", || footprint_section(&p, dir.path())));
    let noise = opts.has("noise").then(|| guarded("noise", noise_section));
    let crypto = opts
        .has("crypto")
        .then(|| guarded("crypto", crypto_section));
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
    if let Some(x) = &workload {
        report_workload(&mut r, x);
    }
    if let Some(x) = &conc {
        report_conc(&mut r, x, floor_ok);
    }
    if let Some(x) = &rooms {
        report_rooms(&mut r, x, floor_ok, &p);
    }
    if let Some(x) = &lecture {
        report_lecture(&mut r, x, &p);
    }
    if let Some(x) = &irc {
        report_irc(
            &mut r,
            x,
            lecture.as_ref().and_then(|x| x.as_ref().ok()),
            &p,
        );
    }
    if let Some(x) = &footprint {
        report_footprint(&mut r, x, conc.as_ref().and_then(|c| c.as_ref().ok()));
    }
    if let Some(x) = &noise {
        report_noise(&mut r, x);
    }
    if let Some(x) = &crypto {
        report_crypto(&mut r, x);
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
            "sections": opts.only.iter().collect::<BTreeSet<_>>(),
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
    let out_dir = target_dir().join("bench");
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
