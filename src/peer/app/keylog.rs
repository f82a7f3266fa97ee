//! `--keylog FILE`: every room key this peer is given is appended to FILE,
//! the way `SSLKEYLOGFILE` works for TLS, so that a capture of the room's
//! datagrams can be opened for teaching or debugging (and so that the
//! wire-capture test can check no key ever travels in the clear). Off
//! unless asked for; anyone who reads the file reads the rooms.

use crate::protocol::datagram::RoomKey;
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

/// Where keys go, and which were written already.
pub struct KeyLog {
    path: PathBuf,
    seen: HashSet<(String, u64, [u8; 32])>,
}

impl KeyLog {
    pub fn new(path: PathBuf) -> KeyLog {
        KeyLog {
            path,
            seen: HashSet::new(),
        }
    }

    /// Appends `ROOM_KEY #room EPOCH HEX` once per key (a room made again
    /// after a registry restart starts again at epoch 1, with a new key).
    pub fn record(&mut self, room: &str, key: &RoomKey) {
        if !self.seen.insert((room.to_string(), key.epoch, key.key)) {
            return;
        }
        let hex: String = key.key.iter().map(|b| format!("{b:02x}")).collect();
        let line = format!("ROOM_KEY #{room} {} {hex}\n", key.epoch);
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        if let Err(e) = opts
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
        {
            log::warn!("--keylog {}: {e}", self.path.display());
        }
    }
}
