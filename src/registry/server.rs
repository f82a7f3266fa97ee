//! Sockets and threads: the TCP accept loop with one thread per client, the
//! UDP heartbeat receiver, the presence thread, and shutdown.
//!
//! Only this module, `connection` (which serves each
//! client's lines) and [`conns`] (which refuses connections over the
//! per-address cap) touch registry sockets.
//! [`start`] runs a whole server on a thread of its own (for tests in
//! process); the `registry` binary runs it on its main thread.

use super::clock::{Clock, SystemClock};
use super::config::Config;
use super::connection::serve;
use super::conns::{self, Conns, RefusalLog};
use super::presence::{self, MAX_DATAGRAM};
use super::service::{Conn, Registry};
use super::store::{self, Store};
use crate::protocol::codec::{BudgetedLine, LineBudget};
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often a blocked client read wakes to check idleness and shutdown.
pub(super) const READ_TICK: Duration = Duration::from_secs(1);
/// A client that does not read its replies for this long is dropped.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const CLIENT_STACK: usize = 256 * 1024;
/// How long shutdown waits for client threads to finish their request.
/// With the heartbeat receiver's `READ_TICK` and the final store write
/// this keeps a stop under the 3 s the program promises (`bin/registry.rs`).
pub const CLIENTS_GRACE: Duration = Duration::from_millis(1500);

/// A registry bound to its sockets, ready to [`run`](Server::run).
pub struct Server {
    registry: Arc<Registry>,
    listener: TcpListener,
    udp: UdpSocket,
    handle: Handle,
    startup_done: bool,
}

/// Stops a running server from another thread (or a signal handler).
#[derive(Clone)]
pub struct Handle {
    stop: Arc<AtomicBool>,
    local: SocketAddr,
    conns: Arc<Conns>,
}

impl Handle {
    /// Asks the server to stop: wakes the accept loop and the UDP receiver
    /// and closes every client connection.
    pub fn shutdown(&self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        let wake = SocketAddr::new(loopback_for(self.local.ip()), self.local.port());
        let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(500));
        if let Ok(s) = UdpSocket::bind(SocketAddr::new(loopback_for(self.local.ip()), 0)) {
            let _ = s.send_to(b"", wake);
        }
        self.conns.close_all();
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

fn loopback_for(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

impl Server {
    /// Opens the store and binds the TCP and UDP sockets.
    pub fn bind(config: Config) -> Result<Server, String> {
        let store = store::open(&config.store)
            .map_err(|e| format!("cannot open store {}: {e}", config.store))?;
        Server::bind_with(config, store, Arc::new(SystemClock))
    }

    /// Binds the sockets for a registry on an open store, reading time from
    /// `clock` (`config.store` is then only a name for logs).
    pub fn bind_with(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Server, String> {
        let listener = TcpListener::bind(&config.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let udp = UdpSocket::bind(local).map_err(|e| format!("cannot bind UDP {local}: {e}"))?;
        let instance = config
            .instance_id
            .clone()
            .unwrap_or_else(|| format!("{}:{}", crate::sys::hostname(), local.port()));
        let conns = Arc::new(Conns::new(config.max_connections_per_ip));
        let registry = Registry::with_clock(store, config, instance, local.port(), clock)?;
        let startup_done = match registry.detach_own_sessions() {
            Ok(0) => true,
            Ok(n) => {
                log::info!("took {n} sessions left by a previous run offline");
                true
            }
            Err(e) => {
                log::warn!("store not ready at start ({e}); will retry");
                false
            }
        };
        log::info!(
            "registry {} listening on {local} (TCP requests, UDP heartbeats), store: {}",
            registry.instance,
            registry.store.backend()
        );
        Ok(Server {
            registry: Arc::new(registry),
            listener,
            udp,
            handle: Handle {
                stop: Arc::new(AtomicBool::new(false)),
                local,
                conns,
            },
            startup_done,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// Serves until [`Handle::shutdown`]; then waits (up to
    /// [`CLIENTS_GRACE`]) for client threads to finish and takes this
    /// instance's sessions offline.
    pub fn run(self) {
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let reg = self.registry.clone();
        let startup_done = self.startup_done;
        let presence = thread::Builder::new()
            .name("presence".into())
            .spawn(move || presence::run(&reg, stop_rx, startup_done))
            .expect("spawn presence thread");
        let reg = self.registry.clone();
        let udp = match self.udp.try_clone() {
            Ok(u) => u,
            Err(e) => {
                log::error!("cannot clone the UDP socket: {e}");
                return;
            }
        };
        let stop = self.handle.stop.clone();
        let udp_thread = thread::Builder::new()
            .name("heartbeats".into())
            .spawn(move || udp_loop(&reg, &udp, &stop))
            .expect("spawn heartbeat thread");

        let next_id = AtomicU64::new(1);
        let budget = LineBudget::new(self.registry.config.line_budget);
        let mut refusals = RefusalLog::default();
        for stream in self.listener.incoming() {
            if self.handle.stop.load(Ordering::SeqCst) {
                break;
            }
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    log::warn!("accept failed: {e}");
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            self.spawn_client(id, stream, &budget, &mut refusals);
        }

        self.handle
            .conns
            .wait_all_finished(Instant::now() + CLIENTS_GRACE);
        drop(stop_tx);
        let _ = presence.join();
        let _ = udp_thread.join();
        match self.registry.detach_own_sessions() {
            Ok(n) if n > 0 => log::info!("took {n} sessions offline at shutdown"),
            Ok(_) => {}
            Err(e) => log::warn!("could not take sessions offline at shutdown: {e}"),
        }
        log::info!("registry stopped");
    }

    fn spawn_client(
        &self,
        id: u64,
        stream: TcpStream,
        budget: &Arc<LineBudget>,
        refusals: &mut RefusalLog,
    ) {
        let Ok(peer) = stream.peer_addr() else { return };
        // Shared, not duplicated (one descriptor per connection), so that
        // shutdown can close the connection under its thread.
        let stream = Arc::new(stream);
        let conns = &self.handle.conns;
        if !conns.admit(id, peer.ip(), stream.clone()) {
            refusals.over_cap(peer.ip(), conns.max_per_ip());
            conns::refuse(&stream, conns.max_per_ip());
            return;
        }
        let reg = self.registry.clone();
        let handle = self.handle.clone();
        let line = BudgetedLine::new(budget.clone());
        let spawned = thread::Builder::new()
            .name(format!("client-{id}"))
            .stack_size(CLIENT_STACK)
            .spawn(move || {
                let mut conn = Conn {
                    id,
                    ip: peer.ip(),
                    session: None,
                };
                if let Err(e) = serve(&reg, &mut conn, &stream, line, &handle.stop) {
                    log::debug!("client {peer}: {e}");
                }
                reg.disconnected(&conn);
                handle.finished(id);
            });
        if let Err(e) = spawned {
            log::error!("cannot start a thread for {peer}: {e}");
            self.handle.finished(id);
        }
    }
}

impl Server {
    /// Serves on a thread of its own until the returned server is shut down
    /// or dropped.
    pub fn spawn(self) -> RunningServer {
        let handle = self.handle();
        let registry = self.registry();
        let thread = thread::Builder::new()
            .name("registry".into())
            .spawn(move || self.run())
            .expect("spawn the registry thread");
        RunningServer {
            handle,
            registry,
            thread: Some(thread),
        }
    }
}

/// Binds a registry for `config` and serves it on a thread of its own.
pub fn start(config: Config) -> Result<RunningServer, String> {
    Ok(Server::bind(config)?.spawn())
}

/// A server running on its own thread; stopped (and waited for) on
/// [`shutdown`](RunningServer::shutdown) or drop.
pub struct RunningServer {
    handle: Handle,
    registry: Arc<Registry>,
    thread: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// Where it listens (TCP requests and UDP heartbeats).
    pub fn addr(&self) -> SocketAddr {
        self.handle.local
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Stops the server and waits until it has finished.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Handle {
    fn finished(&self, id: u64) {
        self.conns.finished(id);
    }
}

/// Receives heartbeats until `stop`. Shutdown sends an empty datagram to
/// wake the receive at once, but that datagram may be lost like any other
/// (it was, under 10% loss, and the registry never stopped), so the receive
/// also times out every [`READ_TICK`] to look at `stop`.
fn udp_loop(reg: &Registry, udp: &UdpSocket, stop: &AtomicBool) {
    if let Err(e) = udp.set_read_timeout(Some(READ_TICK)) {
        log::warn!("heartbeat socket: cannot set a read timeout: {e}");
    }
    if let Ok(addr) = udp.local_addr() {
        log::info!("receiving heartbeats on {addr}");
    }
    let mut buf = [0u8; MAX_DATAGRAM + 1];
    while !stop.load(Ordering::SeqCst) {
        match udp.recv_from(&mut buf) {
            Ok((n, _)) if n > MAX_DATAGRAM => reg.presence.datagram(b""),
            Ok((0, _)) => {}
            Ok((n, _)) => reg.presence.datagram(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => {
                log::debug!("heartbeat socket: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}
