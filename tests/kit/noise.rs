//! A raw one-to-one chat client over the Noise channel (`protocol.md`,
//! "Secure channel (Noise)"), for tests that play a hand-written or hostile
//! partner against a real `peer`: [`NoiseConn::dial`] connects and runs
//! the `XX` handshake with a given [`Identity`], then sends and receives
//! the chat's JSON lines inside the channel. [`keyed_login`] registers a
//! user whose keys are an [`Identity`] of the test's, so an attacker can be
//! a registered user with its own keys.

use super::client::{login_req, Session};
use super::peer::Peer;
use lanchat::identity::Identity;
use lanchat::protocol::secure::{Deframer, Handshake, Next, Opener, Sealer, SecureError};
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Read time-out of a dial's handshake.
const HANDSHAKE_WAIT: Duration = Duration::from_secs(10);

/// The identity keys `peer` uses for `user` (in its config directory).
pub fn keys_of(peer: &Peer, user: &str) -> Identity {
    let path = Identity::path(&peer.config_dir().join("lanchat"), user);
    Identity::load_or_create(&path).expect("the peer's keys").0
}

/// Registers `username` and logs it in over a raw connection with the
/// public keys of `id`, announcing `tcp` and `udp` (no peer behind them).
pub fn keyed_login(registry: SocketAddr, username: &str, id: &Identity, tcp: u16) -> Session {
    let mut req = login_req(username, tcp, 9);
    req["keys"] = serde_json::to_value(id.wire()).expect("keys as JSON");
    Session::login_with(registry, username, req)
}

/// The next whole Noise message on `s` (unframed): `None` when it closes,
/// fails, or nothing whole arrives before `deadline`.
pub fn read_frame(s: &mut TcpStream, d: &mut Deframer, deadline: Instant) -> Option<Vec<u8>> {
    let mut buf = [0u8; 8192];
    loop {
        if let Some(m) = d.next_msg() {
            return Some(m);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        s.set_read_timeout(Some(left)).ok()?;
        let n = s.read(&mut buf).ok().filter(|n| *n > 0)?;
        d.push(&buf[..n]);
    }
}

/// Whatever `s` receives until it closes; `None` when still open after
/// `limit`.
pub fn until_closed(s: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + limit;
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        s.set_read_timeout(Some(left)).ok()?;
        match s.read(&mut buf) {
            Ok(0) => return Some(all),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None
            }
            // A reset is a close too.
            Err(_) => return Some(all),
        }
    }
}

/// Why a dial did not get a channel.
#[derive(Debug, PartialEq)]
pub enum Refused {
    /// The peer answered a plaintext line before any handshake (the
    /// listener's `busy`, or the version-1 refusal).
    Plain(String),
    /// Closed (or reset, or silent) before the handshake finished.
    Closed,
    /// The handshake failed on our side (e.g. the key is not `key`).
    Handshake(SecureError),
}

/// The attacker's (or hand-written partner's) end of one chat connection,
/// after the handshake: JSON lines inside the channel.
pub struct NoiseConn {
    pub stream: TcpStream,
    frames: Deframer,
    seal: Sealer,
    open: Opener,
    plain: Vec<u8>,
}

impl NoiseConn {
    /// Connects to `port` on 127.0.0.1 as `me` holding `id`, expecting
    /// `user` whose key is `key`, and runs the handshake; panics if it
    /// fails.
    pub fn dial(port: u16, id: &Identity, me: &str, user: &str, key: [u8; 32]) -> NoiseConn {
        NoiseConn::try_dial(port, id, me, user, key)
            .unwrap_or_else(|e| panic!("handshake with {user} as {me}: {e:?}"))
    }

    /// [`NoiseConn::dial`], giving what stopped the handshake.
    pub fn try_dial(
        port: u16,
        id: &Identity,
        me: &str,
        user: &str,
        key: [u8; 32],
    ) -> Result<NoiseConn, Refused> {
        let to = SocketAddr::from(([127, 0, 0, 1], port));
        NoiseConn::try_dial_addr(to, id, me, user, key)
    }

    /// [`NoiseConn::try_dial`] to any address.
    pub fn try_dial_addr(
        to: SocketAddr,
        id: &Identity,
        me: &str,
        user: &str,
        key: [u8; 32],
    ) -> Result<NoiseConn, Refused> {
        let mut s = TcpStream::connect(to).map_err(|_| Refused::Closed)?;
        let _ = s.set_nodelay(true);
        let (hs, m1) = Handshake::initiator(&id.kx_secret(), me, user, key, None)
            .map_err(Refused::Handshake)?;
        s.write_all(&m1).map_err(|_| Refused::Closed)?;
        let deadline = Instant::now() + HANDSHAKE_WAIT;
        // A plaintext answer starts with '{'; a Noise frame's length byte
        // for message 2 never does.
        let mut first = [0u8; 1];
        s.set_read_timeout(Some(HANDSHAKE_WAIT))
            .map_err(|_| Refused::Closed)?;
        match s.peek(&mut first) {
            Ok(1) if first[0] == b'{' => {
                let line = until_closed(&mut s, HANDSHAKE_WAIT).unwrap_or_default();
                return Err(Refused::Plain(String::from_utf8_lossy(&line).into_owned()));
            }
            Ok(1) => {}
            _ => return Err(Refused::Closed),
        }
        let mut frames = Deframer::default();
        let m2 = read_frame(&mut s, &mut frames, deadline).ok_or(Refused::Closed)?;
        let Next::Done(sec, Some(m3)) = hs.read(&m2).map_err(Refused::Handshake)? else {
            return Err(Refused::Handshake(SecureError::Malformed(
                "no message 3".into(),
            )));
        };
        s.write_all(&m3).map_err(|_| Refused::Closed)?;
        let (seal, open) = sec.channel.split();
        Ok(NoiseConn {
            stream: s,
            frames,
            seal,
            open,
            plain: Vec::new(),
        })
    }

    /// The answering side: runs the handshake on an accepted `s` as `me`
    /// holding `id` (whoever dials is accepted: checking the dialler is
    /// the real peer's job, not this stand-in's); panics if it fails.
    pub fn accept(mut s: TcpStream, id: &Identity, me: &str) -> NoiseConn {
        let deadline = Instant::now() + HANDSHAKE_WAIT;
        let mut frames = Deframer::default();
        let hs = Handshake::responder(&id.kx_secret(), me, None).expect("responder");
        let m1 = read_frame(&mut s, &mut frames, deadline).expect("message 1");
        let Ok(Next::Continue(hs, m2)) = hs.read(&m1) else {
            panic!("bad message 1")
        };
        s.write_all(&m2).expect("message 2");
        let m3 = read_frame(&mut s, &mut frames, deadline).expect("message 3");
        let Ok(Next::Done(sec, _)) = hs.read(&m3) else {
            panic!("bad message 3")
        };
        let (seal, open) = sec.channel.split();
        NoiseConn {
            stream: s,
            frames,
            seal,
            open,
            plain: Vec::new(),
        }
    }

    /// Sends `line` (a newline is added) inside the channel.
    pub fn line(&mut self, line: &str) {
        let bytes = self
            .seal
            .seal(format!("{line}\n").as_bytes())
            .expect("seal");
        self.stream.write_all(&bytes).expect("write to the peer");
    }

    /// Sends one chat JSON line.
    pub fn send(&mut self, v: Value) {
        self.line(&v.to_string());
    }

    /// Every plaintext received until the peer closes (or a message fails
    /// to authenticate, or nothing comes for `limit`), pings included.
    pub fn rest(&mut self, limit: Duration) -> String {
        let mut out = std::mem::take(&mut self.plain);
        loop {
            let deadline = Instant::now() + limit;
            let Some(m) = read_frame(&mut self.stream, &mut self.frames, deadline) else {
                break;
            };
            match self.open.open(&m) {
                Ok(p) => out.extend(p),
                Err(_) => break,
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The next chat line that is not a ping (`None`: closed, failed, or
    /// nothing within `limit`).
    pub fn next(&mut self, limit: Duration) -> Option<Value> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(i) = self.plain.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.plain.drain(..=i).collect();
                let v: Value = serde_json::from_slice(&line).expect("a JSON line");
                if v["type"] != "ping" {
                    return Some(v);
                }
                continue;
            }
            let m = read_frame(&mut self.stream, &mut self.frames, deadline)?;
            let plain = self.open.open(&m).ok()?;
            self.plain.extend(plain);
        }
    }
}
