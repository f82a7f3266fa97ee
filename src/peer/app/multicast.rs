//! The peer's side of room multicast (`--room-transport`): the socket that
//! hears the rooms' groups, its receiver thread, and the groups it joins.
//! The room engine decides what goes to a group and who still needs a
//! copy of its own (see `rooms::group`); this module only does the I/O.
//!
//! Multicast is set up at login, once the registry says which address the
//! other members reach us at: the groups are joined on that interface, and
//! our copies to them leave by it (with a TTL of 1: they never leave the
//! LAN). A loopback address (every peer on one machine) or an IPv6 one
//! leaves rooms unicast.

use crate::peer::rooms::GROUP_PORT;
use crate::peer::RoomTransport;
use crossbeam_channel::Sender;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What the receiver threads queue for the main loop: the bytes, the
/// sender's address, when they came off the socket, and whether by a
/// room's multicast group.
pub type Arrived = (Vec<u8>, SocketAddr, Instant, bool);

pub struct Multicast {
    mode: RoomTransport,
    /// Where the group receiver queues what it hears.
    queue: Sender<Arrived>,
    /// Counts what the receiver drops when the queue is full.
    overflow: Arc<AtomicU64>,
    /// The group socket (its receiver thread holds a clone), once opened.
    sock: Option<UdpSocket>,
    /// The interface the groups are joined on and our copies leave by.
    iface: Option<Ipv4Addr>,
    joined: Vec<SocketAddr>,
    /// The user was told why rooms stay unicast (once a run, the first
    /// time it happens).
    told: bool,
}

impl Multicast {
    pub fn new(mode: RoomTransport, queue: Sender<Arrived>, overflow: Arc<AtomicU64>) -> Multicast {
        Multicast {
            mode,
            queue,
            overflow,
            sock: None,
            iface: None,
            joined: Vec::new(),
            told: false,
        }
    }

    /// A session started, with other peers reaching us at `ip`: sets up
    /// multicast on its interface (`udp` is the room socket, which sends
    /// our copies to the groups). Returns the port to give the engine
    /// (`None`: unicast), and what to tell the user when `multicast` was
    /// asked for and cannot be had (the first time only).
    pub fn start(&mut self, ip: &str, udp: &UdpSocket) -> (Option<u16>, Option<String>) {
        if self.mode == RoomTransport::Unicast {
            return (None, None);
        }
        let why = match ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) if !v4.is_loopback() && !v4.is_unspecified() => {
                match self.open(v4, udp) {
                    Ok(()) => return (Some(GROUP_PORT), None),
                    Err(e) => format!("cannot set up multicast on {v4}: {e}"),
                }
            }
            Ok(IpAddr::V4(v4)) => {
                format!("multicast needs a LAN address, and other peers reach this one at {v4}")
            }
            _ => format!("room multicast is IPv4 only, and other peers reach this one at {ip}"),
        };
        log::info!("rooms use unicast: {why}");
        let tell =
            self.mode == RoomTransport::Multicast && !std::mem::replace(&mut self.told, true);
        (None, tell.then_some(why))
    }

    fn open(&mut self, iface: Ipv4Addr, udp: &UdpSocket) -> std::io::Result<()> {
        let out = socket2::SockRef::from(udp);
        out.set_multicast_if_v4(&iface)?;
        out.set_multicast_ttl_v4(1)?;
        // Peers on one machine hear each other's copies.
        out.set_multicast_loop_v4(true)?;
        if self.iface != Some(iface) {
            // Another interface than the last session's: join again there.
            self.leave_all();
            self.iface = Some(iface);
        }
        if self.sock.is_none() {
            let sock = group_socket()?;
            let rx = sock.try_clone()?;
            let queue = self.queue.clone();
            let overflow = self.overflow.clone();
            std::thread::Builder::new()
                .name("udp-group".into())
                .spawn(move || receive(&rx, &queue, &overflow, true))?;
            self.sock = Some(sock);
        }
        Ok(())
    }

    /// Joins the groups in `want` (the engine's rooms) and leaves the others.
    pub fn reconcile(&mut self, want: &[SocketAddr]) {
        if want == self.joined.as_slice() {
            return;
        }
        let (Some(sock), Some(iface)) = (&self.sock, self.iface) else {
            return;
        };
        for g in self.joined.iter().filter(|g| !want.contains(g)) {
            if let IpAddr::V4(ip) = g.ip() {
                if let Err(e) = sock.leave_multicast_v4(&ip, &iface) {
                    log::debug!("leaving group {ip}: {e}");
                }
            }
        }
        for g in want.iter().filter(|g| !self.joined.contains(g)) {
            if let IpAddr::V4(ip) = g.ip() {
                match sock.join_multicast_v4(&ip, &iface) {
                    Ok(()) => log::info!("joined room group {ip} on {iface}"),
                    // The room stays unicast for us: no member hears us
                    // claim the group.
                    Err(e) => log::warn!("cannot join room group {ip} on {iface}: {e}"),
                }
            }
        }
        self.joined = want.to_vec();
    }

    fn leave_all(&mut self) {
        if let (Some(sock), Some(iface)) = (&self.sock, self.iface) {
            for g in &self.joined {
                if let IpAddr::V4(ip) = g.ip() {
                    let _ = sock.leave_multicast_v4(&ip, &iface);
                }
            }
        }
        self.joined.clear();
    }
}

/// The socket every room group's datagrams reach: the group port on every
/// address, shared with the other peers on this machine, and (on Linux)
/// hearing only the groups it joined itself.
fn group_socket() -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    #[cfg(target_os = "linux")]
    s.set_multicast_all_v4(false)?;
    let any = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), GROUP_PORT);
    s.bind(&any.into())?;
    Ok(s.into())
}

/// A receiver thread's loop (the room socket's, `group` false, and the
/// group socket's): each datagram stamped as it comes off the socket, so
/// liveness verdicts go by arrival, not by when the main loop gets to it;
/// dropped (and counted) when the main loop's queue is full, like a full
/// socket buffer. Returns when the main loop is gone.
pub fn receive(sock: &UdpSocket, queue: &Sender<Arrived>, overflow: &AtomicU64, group: bool) {
    let mut buf = vec![0u8; 2048];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                match queue.try_send((buf[..n].to_vec(), from, Instant::now(), group)) {
                    Ok(()) => {}
                    Err(crossbeam_channel::TrySendError::Full(_)) => {
                        overflow.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(crossbeam_channel::TrySendError::Disconnected(_)) => return,
                }
            }
            // ICMP errors from earlier sends surface here; not fatal.
            Err(e) => log::debug!("udp receive: {e}"),
        }
    }
}
