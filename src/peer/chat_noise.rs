//! The bytes of a chat connection's secure channel: the connection thread
//! runs the Noise handshake of [`crate::protocol::secure`] on the socket,
//! then reads and writes through it. All decisions (keys, names, framing)
//! are the sans-IO module's; this file only moves bytes.

use super::chats::{ConnEnd, HELLO_TIMEOUT};
use crate::protocol::secure::{
    is_plaintext, Deframer, Handshake, Next, Opener, Sealer, SecureError, Secured,
};
use std::io::{self, Read, Write};
use std::net::TcpStream;

/// What a connection needs to set up its secure channel.
pub struct Setup {
    /// Our identity X25519 secret (the Noise static key).
    pub secret: [u8; 32],
    /// Our user name.
    pub me: String,
    pub role: Role,
}

pub enum Role {
    /// We dialled `user`, whose key the registry vouches is `key`.
    Dial { user: String, key: [u8; 32] },
    /// They connected to us.
    Accept,
}

/// What a version-2 responder answers a version-1 hello with, in
/// plaintext, before it closes.
pub const VERSION_1_REPLY: &str = "{\"type\":\"reject\",\"reason\":\"lanchat protocol version 2 is needed: this peer encrypts chats; upgrade lanchat\"}\n";

/// Runs the handshake on `stream` (blocking, at most [`HELLO_TIMEOUT`] per
/// read); gives the secured channel and what was read past it.
pub fn handshake(stream: &mut TcpStream, setup: &Setup) -> Result<(Secured, Deframer), ConnEnd> {
    stream
        .set_read_timeout(Some(HELLO_TIMEOUT))
        .map_err(|e| ConnEnd::Io(e.to_string()))?;
    let mut frames = Deframer::default();
    let mut first = true;
    let mut hs = match &setup.role {
        Role::Dial { user, key } => {
            let (hs, m1) = Handshake::initiator(&setup.secret, &setup.me, user, *key, None)
                .map_err(ConnEnd::Secure)?;
            stream
                .write_all(&m1)
                .map_err(|e| ConnEnd::WriteFailed(e.to_string()))?;
            hs
        }
        Role::Accept => {
            Handshake::responder(&setup.secret, &setup.me, None).map_err(ConnEnd::Secure)?
        }
    };
    let mut buf = [0u8; 4096];
    loop {
        let msg = loop {
            if let Some(m) = frames.next_msg() {
                break m;
            }
            let n = match stream.read(&mut buf) {
                Ok(0) => return Err(ConnEnd::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ConnEnd::Io(e.to_string())),
            };
            if first && is_plaintext(buf[0]) {
                if matches!(setup.role, Role::Accept) {
                    let _ = stream.write_all(VERSION_1_REPLY.as_bytes());
                }
                return Err(ConnEnd::Secure(SecureError::Version1));
            }
            first = false;
            frames.push(&buf[..n]);
        };
        match hs.read(&msg).map_err(ConnEnd::Secure)? {
            Next::Continue(next, out) => {
                stream
                    .write_all(&out)
                    .map_err(|e| ConnEnd::WriteFailed(e.to_string()))?;
                hs = next;
            }
            Next::Done(secured, out) => {
                if let Some(out) = out {
                    stream
                        .write_all(&out)
                        .map_err(|e| ConnEnd::WriteFailed(e.to_string()))?;
                }
                stream
                    .set_read_timeout(None)
                    .map_err(|e| ConnEnd::Io(e.to_string()))?;
                return Ok((secured, frames));
            }
        }
    }
}

/// The plaintext of a secure connection, as a byte stream (the chat's
/// JSON lines).
pub struct SecureReader {
    stream: TcpStream,
    frames: Deframer,
    opener: Opener,
    plain: Vec<u8>,
    pos: usize,
}

impl SecureReader {
    pub fn new(stream: TcpStream, frames: Deframer, opener: Opener) -> SecureReader {
        SecureReader {
            stream,
            frames,
            opener,
            plain: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for SecureReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut buf = [0u8; 8192];
        while self.pos >= self.plain.len() {
            if let Some(m) = self.frames.next_msg() {
                self.plain = self
                    .opener
                    .open(&m)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                self.pos = 0;
                continue;
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Ok(0);
            }
            self.frames.push(&buf[..n]);
        }
        let n = out.len().min(self.plain.len() - self.pos);
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Writes one chat line (or several) as transport messages.
pub fn write_sealed(stream: &mut TcpStream, sealer: &mut Sealer, plain: &[u8]) -> io::Result<()> {
    let bytes = sealer
        .seal(plain)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    stream.write_all(&bytes)?;
    stream.flush()
}
