//! Chat connection slots: every one-to-one chat connection holds a [`Slot`]
//! while its threads run. Incoming connections are admitted by the listener
//! only while a slot is free ([`MAX_CONNS`] in all, [`MAX_CONNS_PER_IP`] per
//! source address); others are answered `busy` and closed at once, so no
//! flood of connections can grow the peer's thread count without bound.

use crate::protocol::chat::ChatMsg;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, TcpStream};
use std::sync::Mutex;

/// Live incoming chat connections (two threads each) in all, and from one
/// source address. Connections we dial are counted but never refused:
/// only our user makes them.
pub const MAX_CONNS: usize = 64;
pub const MAX_CONNS_PER_IP: usize = 8;

/// Live connections: (in all, per source address of incoming ones).
static LIVE: Mutex<(usize, BTreeMap<IpAddr, usize>)> = Mutex::new((0, BTreeMap::new()));

/// One live connection's place in the count, given back when dropped
/// (when both of its threads have ended).
pub struct Slot {
    ip: Option<IpAddr>,
}

impl Slot {
    /// A slot for an incoming connection from `ip`, if one is free.
    pub fn admit(ip: IpAddr) -> Option<Slot> {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        let from_ip = live.1.get(&ip).copied().unwrap_or(0);
        if live.0 >= MAX_CONNS || from_ip >= MAX_CONNS_PER_IP {
            return None;
        }
        live.0 += 1;
        live.1.insert(ip, from_ip + 1);
        Some(Slot { ip: Some(ip) })
    }

    /// A slot for a connection we dialled.
    pub fn outgoing() -> Slot {
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).0 += 1;
        Slot { ip: None }
    }

    /// Live connections now, in all.
    pub fn live() -> usize {
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).0
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.0 = live.0.saturating_sub(1);
        if let Some(ip) = self.ip {
            if let Some(n) = live.1.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    live.1.remove(&ip);
                }
            }
        }
    }
}

/// An accepted connection with its slot, on its way to the main loop.
pub struct Incoming {
    pub stream: TcpStream,
    pub slot: Slot,
}

/// Admits an accepted connection, or answers it `busy` and closes it at
/// once when every slot (for its address) is taken.
pub fn admit(stream: TcpStream) -> Option<Incoming> {
    let ip = stream.peer_addr().ok()?.ip();
    match Slot::admit(ip) {
        Some(slot) => Some(Incoming { stream, slot }),
        None => {
            refuse(stream);
            None
        }
    }
}

/// Answers `busy` without waiting (a new socket's buffer has room) and
/// closes. What the partner already sent is read first (without waiting),
/// so that closing does not reset the connection before `busy` arrives.
fn refuse(mut stream: TcpStream) {
    log::debug!("chat connection refused: {MAX_CONNS} live or {MAX_CONNS_PER_IP} from its address");
    let _ = stream.set_nonblocking(true);
    if let Ok(line) = serde_json::to_string(&ChatMsg::Busy) {
        let _ = stream.write_all(format!("{line}\n").as_bytes());
    }
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.read(&mut [0u8; 1024]);
}
