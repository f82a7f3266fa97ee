//! The peer program: client and server at once.
//!
//! Threads: stdin ([`term`]), a TCP listener for incoming one-to-one chats
//! (plus a reader and a writer per chat, [`chat`]; the listener answers
//! `busy` past [`slots::MAX_CONNS`] live connections, so a flood cannot
//! grow the thread count), a UDP receiver for room
//! datagrams, a connector, a reader and a writer for the registry
//! ([`link`]), and the main loop ([`app`]) that owns all state and is the
//! only printer ([`ui`]). Threads report to it through [`events`].
//!
//! - [`chats`]: one-to-one chats as a sans-IO state machine (no sockets,
//!   threads or clock); [`app`] glues it to the [`chat`] threads.
//! - [`commands`]: the `/command` language; [`script`]: demo scripts.
//! - [`rooms`]: rooms as a sans-IO engine (membership, reliable UDP fan-out)
//!   with thin glue to the main loop, fault injector, and a deterministic
//!   simulator for tests (the datagram format is [`crate::protocol::datagram`]).

pub mod app;
pub mod chat;
pub(crate) mod chat_noise;
pub mod chats;
pub mod commands;
pub mod complete;
pub mod editor;
pub mod events;
pub mod files;
pub mod history;
pub mod link;
pub mod logs;
mod password;
pub mod rooms;
pub mod script;
pub mod slots;
pub mod social;
pub mod term;
pub mod ui;

use events::Event;
use rooms::faults::Faults;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Room datagrams waiting for the main loop; beyond this they are dropped.
pub(crate) const DATAGRAM_QUEUE: usize = 8192;
/// Connection events (chat lines, closed chats, accepted connections)
/// waiting for the main loop. When the queue is full the threads wait to
/// add to it: a chat reader stops reading its socket, so TCP flow control
/// holds back a flooding partner (whose writer then times out), and the
/// listener stops accepting, so further connections wait in the kernel's
/// backlog. Nothing is dropped, and the other events (input, registry)
/// have their own channel, so a flood cannot crowd them out.
const CONN_QUEUE: usize = 1024;
/// Other events waiting for the main loop (see `run`).
const EVENT_QUEUE: usize = 1024;

/// Peer settings (from the command line, see `bin/peer.rs`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Registry `host:port`.
    pub registry: String,
    /// How `registry` was found on the LAN, when it was not given.
    pub discovery: Option<Discovery>,
    /// Address to bind the chat listener and room socket to.
    pub bind: IpAddr,
    /// Port for both the TCP listener and the UDP socket (0: any free one).
    pub port: u16,
    /// IP other peers should use to reach us (several interfaces).
    pub advertise: Option<String>,
    pub json: bool,
    pub color: bool,
    pub script: Option<String>,
    pub faults: Faults,
    /// An unanswered chat request gives up after this long (30 s).
    pub chat_timeout: std::time::Duration,
    /// An interrupted chat gives up after this long without its partner
    /// (120 s).
    pub chat_resume: std::time::Duration,
    /// A pause before each command of the script (0: none).
    pub script_pace: std::time::Duration,
    /// After the script, stay at the terminal (each command of the script
    /// is shown as it runs); without it the peer exits.
    pub script_stay: bool,
    /// Where conversation logs go (`None`: not logged; see [`logs`]).
    pub log_root: Option<std::path::PathBuf>,
    /// TLS to the registry (and what is pinned), or `--insecure`.
    pub security: link::secure::Security,
    /// `--download-dir`, `--max-file-size`.
    pub files: files::FilesConfig,
    /// `--keylog FILE`: room keys appended there (see `app::keylog`).
    pub keylog: Option<std::path::PathBuf>,
    /// `--room-retention`: how long a room member cut off stays owed what
    /// it missed (10 minutes).
    pub room_retention: std::time::Duration,
    /// `--room-history`: room texts kept per room for latecomers, and
    /// asked for on joining (100; 0: none kept, served or asked for).
    pub room_history: usize,
    /// `--room-transport`: whether rooms use IP multicast where the LAN
    /// carries it.
    pub room_transport: RoomTransport,
}

/// How room datagrams travel (`--room-transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RoomTransport {
    /// Multicast where this peer has a LAN address and the group can be
    /// joined, unicast otherwise, without a word.
    #[default]
    Auto,
    /// Like auto, but says so when multicast cannot be set up.
    Multicast,
    /// Never multicast: one copy per member.
    Unicast,
}

/// The outcome of looking for registries on the LAN (no `--registry`).
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The registries found, sorted by name.
    pub found: Vec<crate::discovery::Found>,
    /// The address used: the first found, or the fallback.
    pub using: String,
}

/// Binds the TCP listener and the UDP socket. With port 0 both get the same
/// free port number when possible, which makes firewall rules simpler.
fn bind(cfg: &Config) -> Result<(TcpListener, UdpSocket), String> {
    if cfg.port != 0 {
        let addr = SocketAddr::new(cfg.bind, cfg.port);
        let tcp =
            TcpListener::bind(addr).map_err(|e| format!("cannot listen on TCP {addr}: {e}"))?;
        let udp = UdpSocket::bind(addr).map_err(|e| format!("cannot bind UDP {addr}: {e}"))?;
        return Ok((tcp, udp));
    }
    for _ in 0..20 {
        let tcp = TcpListener::bind(SocketAddr::new(cfg.bind, 0))
            .map_err(|e| format!("cannot listen: {e}"))?;
        let port = tcp.local_addr().map_err(|e| e.to_string())?.port();
        if let Ok(udp) = UdpSocket::bind(SocketAddr::new(cfg.bind, port)) {
            return Ok((tcp, udp));
        }
    }
    let tcp = TcpListener::bind(SocketAddr::new(cfg.bind, 0))
        .map_err(|e| format!("cannot listen: {e}"))?;
    let udp = UdpSocket::bind(SocketAddr::new(cfg.bind, 0))
        .map_err(|e| format!("cannot bind UDP: {e}"))?;
    Ok((tcp, udp))
}

/// Runs the peer until it quits; returns the process exit code.
pub fn run(cfg: Config) -> i32 {
    let script = match &cfg.script {
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| script::Script::parse(&t))
        {
            Ok(mut s) => {
                s.set_pace(cfg.script_pace);
                Some(s)
            }
            Err(e) => {
                eprintln!("error: script {path}: {e}");
                return 2;
            }
        },
        None => None,
    };
    // Each chat holds a socket (two descriptors with its writer's clone).
    crate::sys::raise_nofile_limit("chats", 2);
    let (listener, udp) = match bind(&cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let tcp_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let udp_port = udp.local_addr().map(|a| a.port()).unwrap_or(0);
    // Input, registry and dial events. Their threads are paced by a person
    // or by our own requests, so this queue stays short; it is bounded all
    // the same, so a registry that floods replies is held back by TCP flow
    // control (its reader waits while the queue is full) instead of growing
    // it. Only worker threads send here, never the main loop, so a full
    // queue cannot deadlock.
    let (tx, rx) = crossbeam_channel::bounded::<Event>(EVENT_QUEUE);
    let (conn_tx, conn_rx) = crossbeam_channel::bounded::<Event>(CONN_QUEUE);
    let (sig_tx, sig_rx) = crossbeam_channel::bounded::<()>(1);
    let prompt = Arc::new(ui::prompt::PromptShared::default());
    let kicked = prompt.clone();
    if let Err(e) = ctrlc::set_handler(move || {
        // Our own signal, to redraw the prompt, while the editor was not
        // reading (see `ui::prompt`): not a Ctrl-C.
        if kicked.take_kick() {
            kicked.open_gate();
            return;
        }
        let _ = sig_tx.try_send(());
    }) {
        log::warn!("cannot install the Ctrl-C handler: {e}");
    }

    term::save();
    let logged_in = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let names = complete::SharedNames::default();
    let sink = if script.is_none() || cfg.script_stay {
        term::spawn_stdin(tx.clone(), logged_in.clone(), names.clone(), prompt.clone())
    } else {
        None
    };
    let ui = ui::Ui::new(cfg.json, cfg.color, sink.unwrap_or(ui::Sink::Stdout));

    let ev = conn_tx.clone();
    let spawned = std::thread::Builder::new()
        .name("listener".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        // Past the connection caps: answered busy, closed.
                        let Some(incoming) = slots::admit(s) else {
                            continue;
                        };
                        if ev.send(Event::ChatIncoming(incoming)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        log::warn!("accept: {e}");
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                }
            }
        });
    let recv_udp = match udp.try_clone() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    // Datagrams get their own bounded queue: a flood of them is dropped
    // here, like a full socket buffer, and cannot crowd out other events.
    let (dg_tx, dg_rx) = crossbeam_channel::bounded::<app::Arrived>(DATAGRAM_QUEUE);
    let group_tx = dg_tx.clone();
    let overflow = Arc::new(AtomicU64::new(0));
    let dropped = overflow.clone();
    let spawned_udp = std::thread::Builder::new()
        .name("udp".into())
        .spawn(move || app::receive(&recv_udp, &dg_tx, &dropped, false));
    if spawned.is_err() || spawned_udp.is_err() {
        eprintln!("error: cannot start threads");
        return 1;
    }
    let mut app = app::App::new(cfg, ui, tx, conn_tx, udp, tcp_port, udp_port);
    app.share_login_state(logged_in);
    app.share_names(names);
    app.share_prompt(prompt);
    app.script = script;
    app.multicast = Some(app::Multicast::new(
        app.cfg.room_transport,
        group_tx,
        overflow.clone(),
    ));
    app.rooms.queue_overflow = overflow;
    let code = app.run(rx, conn_rx, dg_rx, sig_rx);
    term::restore();
    code
}
