//! `peer`: the lanchat peer program a student runs. Parses flags and hands
//! off to [`lanchat::peer::run`].

use clap::Parser;
use lanchat::peer::link::secure::{forget, Security};
use lanchat::peer::rooms::faults::Faults;
use lanchat::peer::{run, term, Config, Discovery, RoomTransport};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// The registry used when none is given and none is found on the LAN.
const FALLBACK: &str = "127.0.0.1:15600";
use std::net::IpAddr;

/// A lanchat peer: one-to-one chats over TCP and chat rooms over UDP, straight
/// to other peers on the LAN; the registry only knows who is where.
///
/// Type /help once it runs. Commands come from the terminal, from a pipe
/// (one per line; with --json every event is printed as a JSON line), or from
/// a demo script (--script).
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// The registry, HOST:PORT; or several, comma-separated
    /// (HOST1:PORT,HOST2:PORT), all sharing one MongoDB store: when the
    /// connected one dies or stops answering, the peer moves its session and
    /// rooms to the next one. A name that resolves to several addresses
    /// counts as several.
    ///
    /// Given neither this nor REGISTRY_ADDR, the peer looks for registries
    /// announced on the LAN (mDNS, `_lanchat._tcp`) for --discover-ms: one
    /// found is used; of several, a terminal user is asked which (scripts,
    /// pipes and --json take the first by name); none: 127.0.0.1:15600.
    #[arg(long, env = "REGISTRY_ADDR")]
    registry: Option<String>,

    /// How long to look for registries on the LAN (milliseconds) when no
    /// registry is given.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=30_000))]
    discover_ms: u64,

    /// Port for this peer's chat listener (TCP) and room socket (UDP); 0 picks
    /// a free one. Fix it when a firewall must let peers in.
    #[arg(long, default_value_t = 0)]
    port: u16,

    /// Local address to bind to.
    #[arg(long, default_value = "0.0.0.0")]
    bind: IpAddr,

    /// The IP other peers should use to reach this one, when the machine has
    /// several interfaces and the registry would see the wrong one.
    #[arg(long)]
    advertise: Option<IpAddr>,

    /// Print one JSON object per event (for programs and tests; see protocol.md).
    #[arg(long)]
    json: bool,

    /// Colours: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = ["auto", "always", "never"])]
    color: String,

    /// The same as --color never.
    #[arg(long)]
    no_color: bool,

    /// Run the commands in FILE (plus /sleep and /wait), then exit: 0 if every
    /// step succeeded, 1 if not.
    #[arg(long, value_name = "FILE")]
    script: Option<String>,

    /// Seconds to pause before each command of the script (not before
    /// /wait), so a class can follow a demo; e.g. 2.
    #[arg(long, value_name = "SECS", default_value_t = 0.0, value_parser = pace)]
    pace: f64,

    /// With --script: show each command as it runs, and stay at the
    /// terminal when the script is done (instead of exiting).
    #[arg(long, requires = "script")]
    stay: bool,

    /// Fault injection on outgoing room datagrams, e.g. drop=0.1,dup=0.05,reorder=0.1.
    #[arg(long, env = "LANCHAT_FAULTS", value_name = "SPEC")]
    faults: Option<Faults>,

    /// Seconds an unanswered chat request waits before it times out.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    chat_timeout_secs: u64,

    /// Seconds a chat interrupted by the network waits for its partner to
    /// come back (counted from when it was last heard); then the chat ends
    /// and the messages it never acknowledged are named as not delivered.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    chat_resume_secs: u64,

    /// Do not write conversation logs (by default every conversation is
    /// appended to $XDG_DATA_HOME/lanchat/logs/USER/NAME.log, else
    /// ~/.local/share/…). /history works either way.
    #[arg(long, env = "LANCHAT_NO_LOG", value_parser = clap::builder::FalseyValueParser::new())]
    no_log: bool,

    /// Where conversation logs go instead (a folder per user inside).
    #[arg(long, env = "LANCHAT_LOG_DIR", value_name = "DIR")]
    log_dir: Option<std::path::PathBuf>,

    /// Talk to the registry in plaintext: anyone on the network can read the
    /// password, the session token and every request. Only for a registry
    /// that also runs --insecure (or a version-1 registry).
    #[arg(long)]
    insecure: bool,

    /// The registry's certificate fingerprint (SHA256:…, as `registry`
    /// prints it), to pin it up front instead of trusting it on first use.
    /// A registry that shows another certificate is refused.
    #[arg(long, env = "LANCHAT_REGISTRY_FINGERPRINT", value_name = "SHA256:…")]
    registry_fingerprint: Option<String>,

    /// The file of registry certificates trusted on first use (default
    /// $XDG_CONFIG_HOME/lanchat/known_registries, else
    /// ~/.config/lanchat/known_registries).
    #[arg(long, env = "LANCHAT_KNOWN_REGISTRIES", value_name = "FILE")]
    known_registries: Option<std::path::PathBuf>,

    /// Forget the certificate trusted for the registry at HOST:PORT (after
    /// its operator made a new one), then exit; the next connection trusts
    /// the certificate it is shown.
    #[arg(long, value_name = "HOST:PORT")]
    forget_registry: Option<String>,
    /// Where /get saves files (default $XDG_DOWNLOAD_DIR, else
    /// ~/Downloads/lanchat).
    #[arg(long, value_name = "DIR")]
    download_dir: Option<std::path::PathBuf>,

    /// Largest file offered or accepted, in bytes (default 1 GiB): larger
    /// offers are refused with the limit named.
    #[arg(long, value_name = "BYTES", default_value_t = lanchat::peer::files::DEFAULT_MAX_SIZE)]
    max_file_size: u64,

    /// Append every room key this peer is given to FILE (like
    /// SSLKEYLOGFILE), to open a capture of the room's datagrams when
    /// teaching or debugging. Whoever reads FILE reads those rooms.
    #[arg(long, env = "LANCHAT_KEYLOG", value_name = "FILE")]
    keylog: Option<std::path::PathBuf>,

    /// How long a room member cut off from us (a Wi-Fi blip, a laptop lid)
    /// stays owed every message we sent meanwhile, in seconds: back within
    /// it, it gets them all, in order, once. 0 keeps nothing for it.
    #[arg(long, value_name = "SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    room_retention: u64,

    /// How many of each room's last texts this peer keeps for members who
    /// join later (and asks the members present for when it joins); at
    /// most 1 MiB of text per room is kept. 0 keeps, serves and asks for
    /// none.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    room_history: u32,

    /// How room messages travel. auto: by IP multicast where the LAN
    /// carries it (one datagram reaches every member on the segment), with
    /// a copy of its own to each member it does not reach; multicast: the
    /// same, but says so when it cannot be set up; unicast: one copy per
    /// member, always. A peer on a loopback address is always unicast.
    #[arg(long, value_enum, value_name = "HOW", default_value_t = RoomTransport::Auto)]
    room_transport: RoomTransport,
}

/// A pause in seconds, 0 to 60.
fn pace(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=60.0).contains(&p) => Ok(p),
        _ => Err(format!("not a number of seconds from 0 to 60: {s}")),
    }
}

/// Asks which of several registries to use, on the terminal; the first on
/// an empty line or end of input. None if the answer cannot be read.
fn pick(found: &[lanchat::discovery::Found]) -> Option<usize> {
    use std::io::{BufRead, Write};
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "found {} registries on the LAN:", found.len());
    for (i, f) in found.iter().enumerate() {
        let _ = writeln!(out, "  {}) {} at {}", i + 1, f.name, f.addr);
    }
    let stdin = std::io::stdin();
    for _ in 0..5 {
        let _ = write!(out, "which one? [1-{}, Enter for 1]: ", found.len());
        let _ = out.flush();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).ok()? == 0 {
            return Some(0);
        }
        match line.trim() {
            "" => return Some(0),
            t => match t.parse::<usize>() {
                Ok(n) if (1..=found.len()).contains(&n) => return Some(n - 1),
                _ => {
                    let _ = writeln!(out, "type a number from 1 to {}", found.len());
                }
            },
        }
    }
    Some(0)
}

/// Browses the LAN for registries; the outcome is shown once the peer runs.
/// Of several, a person at a terminal picks one (`interactive`); otherwise
/// the first by name is used.
fn discover(wait: Duration, interactive: bool) -> Discovery {
    let started = Instant::now();
    let (found, error) = lanchat::discovery::browse(wait);
    if let Some(e) = &error {
        log::warn!("cannot look for registries on the LAN: {e}");
    }
    let chosen = match found.len() {
        0 | 1 => 0,
        _ if interactive => pick(&found).unwrap_or(0),
        _ => 0,
    };
    let using = found
        .get(chosen)
        .map(|f| f.addr.to_string())
        .unwrap_or_else(|| FALLBACK.to_string());
    log::info!(
        "looked for registries on the LAN for {} ms: {} found",
        started.elapsed().as_millis(),
        found.len()
    );
    Discovery { found, using }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    let security = match Security::from_flags(
        args.insecure,
        args.registry_fingerprint.as_deref(),
        args.known_registries.as_deref(),
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if let Some(entry) = &args.forget_registry {
        let Security::Tls { known, .. } = &security else {
            eprintln!("error: --forget-registry has nothing to do with --insecure");
            std::process::exit(2);
        };
        match forget(entry, known) {
            Ok(said) => println!("{said}"),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    if args.insecure {
        eprintln!(
            "WARNING: --insecure: this peer talks to the registry in plaintext; anyone on \
             the network can read your password and take over your session"
        );
    }
    let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = match (args.no_color, args.color.as_str()) {
        (true, _) | (_, "never") => false,
        (_, "always") => true,
        _ => !no_color_env && term::is_tty(1),
    };
    // REGISTRY_ADDR set but empty counts as not given.
    let given = args.registry.filter(|r| !r.trim().is_empty());
    let (registry, discovery) = match given {
        Some(r) => (r, None),
        None => {
            // A person, not a script or a program, can be asked to pick.
            let interactive = !args.json
                && args.script.is_none()
                && std::io::stdin().is_terminal()
                && std::io::stdout().is_terminal();
            let d = discover(Duration::from_millis(args.discover_ms), interactive);
            (d.using.clone(), Some(d))
        }
    };
    let code = run(Config {
        registry,
        discovery,
        bind: args.bind,
        port: args.port,
        advertise: args.advertise.map(|ip| ip.to_string()),
        json: args.json,
        color,
        script: args.script,
        script_pace: Duration::from_secs_f64(args.pace),
        script_stay: args.stay,
        faults: args.faults.unwrap_or_default(),
        chat_timeout: std::time::Duration::from_secs(args.chat_timeout_secs),
        chat_resume: std::time::Duration::from_secs(args.chat_resume_secs),
        log_root: match (args.no_log, args.log_dir) {
            (true, _) => None,
            (false, Some(dir)) => Some(dir),
            (false, None) => lanchat::peer::logs::default_root(),
        },
        security,
        files: lanchat::peer::files::FilesConfig {
            download_dir: args
                .download_dir
                .unwrap_or_else(lanchat::peer::files::default_download_dir),
            max_size: args.max_file_size,
        },
        keylog: args.keylog,
        room_retention: std::time::Duration::from_secs(args.room_retention),
        room_history: args.room_history as usize,
        room_transport: args.room_transport,
    });
    std::process::exit(code);
}
