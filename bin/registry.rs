//! `registry`: the lanchat registry server. Parses flags, starts logging and
//! hands off to [`lanchat::registry::Server`].

use clap::Parser;
use lanchat::discovery::Announcer;
use lanchat::registry::{Config, Server};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The registry exits within this long of SIGINT or SIGTERM, whatever it
/// is waiting for; a second signal ends it at once.
const STOP_LIMIT: Duration = Duration::from_millis(2900);

/// The lanchat registry: accounts, sessions, presence and rooms for peers on
/// a LAN. It never relays chat messages; peers talk to each other directly.
///
/// Peers send requests over TCP (newline-delimited JSON, see protocol.md) and
/// heartbeats as UDP datagrams to the same port number.
///
/// For tests, `--store memory` keeps accounts, sessions and rooms in memory
/// only: they are gone when the registry exits.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// Address to listen on, TCP for requests and UDP for heartbeats (same port).
    /// Use 0.0.0.0 to accept peers from the LAN, 127.0.0.1 for this machine only.
    #[arg(long, env = "REGISTRY_LISTEN", default_value = "0.0.0.0:15600")]
    listen: String,

    /// Where accounts, sessions and rooms are kept: a mongodb:// URI (database
    /// from the URI path, default "lanchat"; builds with the default `mongodb`
    /// feature only), or a path to the embedded SQLite file, created on first
    /// start.
    #[arg(long, env = "REGISTRY_STORE", default_value = "registry.db")]
    store: String,

    /// How often peers are told to send a heartbeat, in milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    heartbeat_interval_ms: u64,

    /// A session whose heartbeats stop for this long (ms) goes offline and
    /// leaves its rooms. Must be larger than the heartbeat interval.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(200..=600_000))]
    session_timeout_ms: u64,

    /// Seconds a connection that has not logged in may stay silent.
    #[arg(long, default_value_t = 30)]
    idle_timeout_secs: u64,

    /// Seconds an offline session can still be resumed by its token.
    #[arg(long, default_value_t = 600)]
    resume_grace_secs: u64,

    /// Requests per second one connection may send before it is slowed down.
    #[arg(long, default_value_t = 200)]
    requests_per_sec: u32,

    /// Connections one source address may hold open at once. Over it, a new
    /// connection gets one `too_many_connections` error line and is closed
    /// (logged at most every 10 s). A peer holds one connection, so 64 is
    /// room for a shared machine or a NAT with dozens of users, while one
    /// address can no longer take the registry's descriptors (each
    /// connection costs two, and a thread).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections_per_ip: u64,

    /// Memory, in KiB, that all connections together may hold in lines
    /// still being received, beyond 4 KiB each (a request is far smaller).
    /// A connection whose line would go past it gets a `buffers_full` error
    /// line and is closed. The default, 64 MiB, is room for a thousand
    /// clients each sending a line near the 64 KiB limit at the same moment.
    #[arg(long, default_value_t = 64 * 1024, value_parser = clap::value_parser!(u64).range(64..=16 * 1024 * 1024))]
    line_budget_kib: u64,

    /// Password hashes computed at once (each takes about 19 MiB);
    /// default: the number of CPUs.
    #[arg(long)]
    hash_concurrency: Option<usize>,

    /// Argon2id memory cost in KiB for new password hashes (default 19456,
    /// the recommended 19 MiB). Lower it only on very small machines or for
    /// load tests; existing hashes keep the cost they were made with.
    #[arg(long, default_value_t = 19 * 1024, value_parser = clap::value_parser!(u32).range(64..=1_048_576))]
    argon2_memory_kib: u32,

    /// Argon2id passes for new password hashes.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=20))]
    argon2_passes: u32,

    /// Name of this registry in a shared store (default: hostname:port). At
    /// start, sessions a previous run with the same name left are taken offline.
    #[arg(long)]
    instance_id: Option<String>,

    /// An account that may /announce to every online user (repeat the
    /// option, or give a comma-separated list).
    #[arg(long = "admin", value_delimiter = ',')]
    admins: Vec<String>,

    /// Do not announce this registry on the LAN. By default it announces
    /// itself with DNS-SD over multicast DNS (`_lanchat._tcp.local.`), so
    /// peers started without --registry find it.
    #[arg(long)]
    no_announce: bool,

    /// Where the TLS certificate and key live (`registry-cert.pem`,
    /// `registry-key.pem`, made at first start). Default: beside an embedded
    /// store's file; for `memory` and `mongodb://` stores,
    /// $XDG_CONFIG_HOME/lanchat/registry (else ~/.config/lanchat/registry).
    /// Registries that should present one identity share this directory.
    #[arg(long, env = "REGISTRY_CERT_DIR")]
    cert_dir: Option<std::path::PathBuf>,

    /// Print the certificate's fingerprint (making the certificate if there
    /// is none yet) and exit. Peers pin it (--registry-fingerprint).
    #[arg(long)]
    fingerprint: bool,

    /// Also serve clients that speak plaintext (peers started with
    /// --insecure, version-1 peers): anyone on the network can read their
    /// passwords, tokens and requests. TLS clients still get TLS.
    #[arg(long)]
    insecure: bool,
}

/// The certificate directory: `--cert-dir`, else beside an embedded
/// store's file, else the user's configuration directory.
fn cert_dir(args: &Args) -> std::path::PathBuf {
    if let Some(d) = &args.cert_dir {
        return d.clone();
    }
    let store = args.store.as_str();
    if store == "memory" || store.starts_with("mongodb://") || store.starts_with("mongodb+srv://") {
        return lanchat::tls::cert::config_dir().join("registry");
    }
    match std::path::Path::new(store).parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

/// Each password hash allocates its Argon2 memory (19 MiB) and frees it.
/// glibc raises its mmap threshold after such a free and then serves the
/// next ones from its heaps, which it keeps: a registry grew by tens of MiB
/// per login. A fixed threshold keeps big blocks mmapped, so they go back
/// to the system when freed.
fn keep_big_allocations_returnable() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Announces the registry on the LAN; a failure is only a warning.
fn announce(listen: std::net::SocketAddr) -> Option<Announcer> {
    if listen.ip().is_loopback() {
        log::info!("not announced on the LAN: listening on loopback only");
        return None;
    }
    match Announcer::start(listen, &lanchat::sys::hostname()) {
        Ok(a) => {
            log::info!("announcing {} on the LAN (mDNS)", a.fullname());
            Some(a)
        }
        Err(e) => {
            log::warn!("not announced on the LAN: {e}");
            None
        }
    }
}

fn main() -> ExitCode {
    keep_big_allocations_returnable();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let identity = match lanchat::tls::cert::load_or_create(&cert_dir(&args)) {
        Ok((id, made)) => {
            if made {
                log::info!("made a new certificate {}", id.cert_path.display());
            }
            id
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.fingerprint {
        println!("{}", identity.fingerprint);
        return ExitCode::SUCCESS;
    }
    if args.session_timeout_ms <= args.heartbeat_interval_ms {
        eprintln!("error: --session-timeout-ms must be larger than --heartbeat-interval-ms");
        return ExitCode::from(2);
    }
    // Each client holds two descriptors (its socket, and a handle kept to
    // close it at shutdown).
    lanchat::sys::raise_nofile_limit("clients", 2);
    let mut config = Config {
        listen: args.listen.clone(),
        store: args.store.clone(),
        heartbeat_interval: Duration::from_millis(args.heartbeat_interval_ms),
        session_timeout: Duration::from_millis(args.session_timeout_ms),
        idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
        resume_grace: Duration::from_secs(args.resume_grace_secs),
        requests_per_sec: args.requests_per_sec,
        argon2_m_kib: args.argon2_memory_kib,
        argon2_passes: args.argon2_passes,
        max_connections_per_ip: usize::try_from(args.max_connections_per_ip).unwrap_or(usize::MAX),
        line_budget: usize::try_from(args.line_budget_kib * 1024).unwrap_or(usize::MAX),
        admins: args.admins,
        instance_id: args.instance_id.clone(),
        tls: Some(identity.config.clone()),
        allow_plaintext: args.insecure,
        ..Config::default()
    };
    if let Some(n) = args.hash_concurrency {
        config.hash_concurrency = n.max(1);
    }
    let server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = server.handle();
    let signals = AtomicU32::new(0);
    if let Err(e) = ctrlc::set_handler(move || {
        // The handler runs on a thread of its own, not in signal context.
        if signals.fetch_add(1, Ordering::SeqCst) > 0 {
            log::warn!("second signal: exiting now");
            std::process::exit(1);
        }
        log::info!("stopping (signal)");
        handle.shutdown();
        // A stop must never hang (a store that does not answer, a client
        // thread stuck in a write): past the limit, exit anyway.
        let _ = std::thread::Builder::new()
            .name("stop-limit".into())
            .spawn(|| {
                std::thread::sleep(STOP_LIMIT);
                log::warn!("still stopping after {STOP_LIMIT:?}: exiting now");
                std::process::exit(1);
            });
    }) {
        log::warn!("cannot install the Ctrl-C handler: {e}");
    }
    // Printed once signals are handled: a script that reads this line and
    // then signals must not find the default action (death, no clean-up).
    // Tests and scripts read the real port from this line (with --listen …:0).
    println!("registry listening on {}", server.local_addr());
    // The second line: what peers pin (a teacher copies it to the board).
    println!("registry certificate {}", identity.fingerprint);
    if args.insecure {
        log::warn!(
            "--insecure: plaintext clients are served too; their passwords, tokens and \
             requests can be read by anyone on the network"
        );
    }
    let announcer = if args.no_announce {
        None
    } else {
        announce(server.local_addr())
    };
    server.run();
    if let Some(a) = announcer {
        a.stop();
    }
    ExitCode::SUCCESS
}
