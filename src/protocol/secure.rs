//! The secure channel of one-to-one chats (`protocol.md`, "Secure chat
//! connections"), sans-IO: the Noise handshake, its framing, and the
//! transport that then carries the chat's JSON lines.
//!
//! Every chat connection runs `Noise_XX_25519_ChaChaPoly_BLAKE2s` with each
//! side's identity X25519 key ([`crate::identity::Identity::kx_secret`]) as
//! its static key. On the wire each Noise message is a 2-byte big-endian
//! length and the message ([`frame`], [`Deframer`]). The handshake payloads
//! of messages 2 and 3 carry a [`Claim`] (the sender's user name and
//! protocol version), encrypted. The initiator checks the responder's
//! static key against the key the registry vouches for before it sends its
//! own message 3; the responder's check is the chat engine's (a registry
//! look-up of the claimed name). After the handshake the plaintexts of the
//! transport messages, one after another, are the chat's JSON lines.
//!
//! Nothing here owns a socket: the connection threads move the bytes.

use serde::{Deserialize, Serialize};
use snow::{HandshakeState, StatelessTransportState};
use std::fmt;
use std::sync::Arc;

/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// The chat protocol version of a secure connection (in [`Claim`]).
pub const SECURE_VERSION: u32 = 2;
/// Longest Noise message.
pub const MAX_NOISE_MSG: usize = 65535;
/// Bytes of the authentication tag of each transport message.
const TAG: usize = 16;
/// Most plaintext in one transport message.
pub const MAX_PLAIN: usize = MAX_NOISE_MSG - TAG;
/// Longest handshake payload accepted.
const MAX_CLAIM: usize = 1024;

/// What a handshake payload says about its sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub user: String,
    pub version: u32,
}

impl Claim {
    /// Our claim, in the current version.
    pub fn new(user: &str) -> Claim {
        Claim {
            user: user.to_string(),
            version: SECURE_VERSION,
        }
    }
}

/// Why a secure connection could not be set up or went on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecureError {
    /// The other side spoke plaintext JSON: lanchat version 1.
    Version1,
    /// The other side's static key is not the one the registry vouches
    /// for `user`.
    KeyMismatch { user: String },
    /// The responder named itself `got`, not the user we dialled.
    WrongUser { expected: String, got: String },
    /// The other side speaks another protocol version.
    Version { got: u32 },
    /// A handshake message or payload that is not what it must be.
    Malformed(String),
    /// A message failed authentication (or the nonces ran out).
    Crypto,
}

impl fmt::Display for SecureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecureError::Version1 => f.write_str(
                "the other side runs lanchat protocol version 1 (unencrypted chats): it needs to upgrade",
            ),
            SecureError::KeyMismatch { user } => write!(
                f,
                "{user}'s key does not match the one the registry vouches for: someone may be in the middle"
            ),
            SecureError::WrongUser { expected, got } => {
                write!(f, "dialled {expected} but the other side says it is {got}")
            }
            SecureError::Version { got } => write!(
                f,
                "the other side speaks chat protocol version {got}, this peer {SECURE_VERSION}"
            ),
            SecureError::Malformed(why) => write!(f, "bad secure handshake: {why}"),
            SecureError::Crypto => f.write_str("a chat message failed authentication"),
        }
    }
}

impl std::error::Error for SecureError {}

fn noise(e: snow::Error) -> SecureError {
    match e {
        snow::Error::Decrypt => SecureError::Crypto,
        e => SecureError::Malformed(e.to_string()),
    }
}

/// Whether the first byte a responder reads says the other side is a
/// version-1 peer (a JSON hello); a Noise frame's first byte is the high
/// byte of a length, which the first handshake message keeps far below.
pub fn is_plaintext(first: u8) -> bool {
    first == b'{'
}

/// `msg` framed: its length as 2 bytes big-endian, then the bytes.
pub fn frame(msg: &[u8]) -> Vec<u8> {
    debug_assert!(msg.len() <= MAX_NOISE_MSG);
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    out.extend_from_slice(msg);
    out
}

/// Splits received bytes into Noise messages.
#[derive(Default)]
pub struct Deframer {
    buf: Vec<u8>,
}

impl Deframer {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message received, if any.
    pub fn next_msg(&mut self) -> Option<Vec<u8>> {
        if self.buf.len() < 2 {
            return None;
        }
        let len = u16::from_be_bytes([self.buf[0], self.buf[1]]) as usize;
        if self.buf.len() < 2 + len {
            return None;
        }
        let msg = self.buf[2..2 + len].to_vec();
        self.buf.drain(..2 + len);
        Some(msg)
    }

    /// Bytes received and not yet a whole message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// A handshake under way.
pub struct Handshake {
    hs: HandshakeState,
    me: Claim,
    /// The initiator's: whom it dialled and the key the registry vouches
    /// for.
    expect: Option<(String, [u8; 32])>,
}

/// What a received handshake message leads to. (Made at most twice per
/// connection: the size of the handshake state moved by value is no cost.)
#[allow(clippy::large_enum_variant)]
pub enum Next {
    /// Send these (framed) bytes; the handshake goes on.
    Continue(Handshake, Vec<u8>),
    /// The handshake is done: send these (framed) bytes first, if any.
    Done(Secured, Option<Vec<u8>>),
}

/// A finished handshake.
pub struct Secured {
    pub channel: Channel,
    /// The other side's static (identity X25519) key.
    pub remote_key: [u8; 32],
    pub remote: Claim,
}

fn builder<'a>(secret: &'a [u8; 32], ephemeral: Option<&'a [u8; 32]>) -> snow::Builder<'a> {
    // The name is a constant that parses.
    let params = NOISE_PARAMS.parse().expect("Noise parameters");
    let b = snow::Builder::new(params).local_private_key(secret);
    match ephemeral {
        Some(e) => b.fixed_ephemeral_key_for_testing_only(e),
        None => b,
    }
}

impl Handshake {
    /// The dialling side, to `user` whose key the registry vouches is
    /// `key`; gives the (framed) first message to send. `ephemeral` fixes
    /// the ephemeral key: only for tests and the documentation's example.
    pub fn initiator(
        secret: &[u8; 32],
        me: &str,
        user: &str,
        key: [u8; 32],
        ephemeral: Option<&[u8; 32]>,
    ) -> Result<(Handshake, Vec<u8>), SecureError> {
        let mut hs = builder(secret, ephemeral)
            .build_initiator()
            .map_err(noise)?;
        let mut buf = [0u8; MAX_NOISE_MSG];
        let n = hs.write_message(&[], &mut buf).map_err(noise)?;
        let h = Handshake {
            hs,
            me: Claim::new(me),
            expect: Some((user.to_string(), key)),
        };
        Ok((h, frame(&buf[..n])))
    }

    /// The accepting side.
    pub fn responder(
        secret: &[u8; 32],
        me: &str,
        ephemeral: Option<&[u8; 32]>,
    ) -> Result<Handshake, SecureError> {
        let hs = builder(secret, ephemeral)
            .build_responder()
            .map_err(noise)?;
        Ok(Handshake {
            hs,
            me: Claim::new(me),
            expect: None,
        })
    }

    /// Takes the other side's next handshake message (unframed).
    pub fn read(mut self, msg: &[u8]) -> Result<Next, SecureError> {
        let mut payload = [0u8; MAX_NOISE_MSG];
        let n = self.hs.read_message(msg, &mut payload).map_err(noise)?;
        let claim = if n == 0 {
            None
        } else if n > MAX_CLAIM {
            return Err(SecureError::Malformed("payload too long".into()));
        } else {
            let c: Claim = serde_json::from_slice(&payload[..n])
                .map_err(|e| SecureError::Malformed(format!("payload: {e}")))?;
            if c.version != SECURE_VERSION {
                return Err(SecureError::Version { got: c.version });
            }
            Some(c)
        };
        if self.hs.is_handshake_finished() {
            // The responder, after message 3.
            let remote = claim.ok_or_else(|| SecureError::Malformed("no claim".into()))?;
            return self.finish(remote, None);
        }
        if let (Some(c), Some((user, key))) = (&claim, &self.expect) {
            // The initiator, after message 2: check before saying anything.
            if self.hs.get_remote_static() != Some(&key[..]) {
                return Err(SecureError::KeyMismatch { user: user.clone() });
            }
            if &c.user != user {
                return Err(SecureError::WrongUser {
                    expected: user.clone(),
                    got: c.user.clone(),
                });
            }
        } else if self.expect.is_some() || claim.is_some() {
            return Err(SecureError::Malformed("unexpected message".into()));
        }
        let mine =
            serde_json::to_vec(&self.me).map_err(|e| SecureError::Malformed(e.to_string()))?;
        let mut buf = [0u8; MAX_NOISE_MSG];
        let n = self.hs.write_message(&mine, &mut buf).map_err(noise)?;
        let out = frame(&buf[..n]);
        match claim {
            Some(remote) if self.hs.is_handshake_finished() => self.finish(remote, Some(out)),
            _ => Ok(Next::Continue(self, out)),
        }
    }

    fn finish(self, remote: Claim, out: Option<Vec<u8>>) -> Result<Next, SecureError> {
        let remote_key: [u8; 32] = self
            .hs
            .get_remote_static()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| SecureError::Malformed("no static key".into()))?;
        let state = self.hs.into_stateless_transport_mode().map_err(noise)?;
        let channel = Channel {
            state: Arc::new(state),
        };
        Ok(Next::Done(
            Secured {
                channel,
                remote_key,
                remote,
            },
            out,
        ))
    }
}

/// The transport of a secure connection, split into its two directions
/// (each with its own nonce counter) for the reader and writer threads.
pub struct Channel {
    state: Arc<StatelessTransportState>,
}

impl Channel {
    pub fn split(self) -> (Sealer, Opener) {
        let sealer = Sealer {
            state: self.state.clone(),
            nonce: 0,
        };
        let opener = Opener {
            state: self.state,
            nonce: 0,
        };
        (sealer, opener)
    }
}

/// Encrypts what we send.
pub struct Sealer {
    state: Arc<StatelessTransportState>,
    nonce: u64,
}

impl Sealer {
    /// `plain` as framed transport messages (several when longer than
    /// [`MAX_PLAIN`]).
    pub fn seal(&mut self, plain: &[u8]) -> Result<Vec<u8>, SecureError> {
        let mut out = Vec::with_capacity(plain.len() + 2 + TAG);
        let mut buf = vec![0u8; MAX_NOISE_MSG];
        for chunk in plain.chunks(MAX_PLAIN) {
            let n = self
                .state
                .write_message(self.nonce, chunk, &mut buf)
                .map_err(noise)?;
            self.nonce += 1;
            out.extend_from_slice(&frame(&buf[..n]));
        }
        Ok(out)
    }
}

/// Decrypts what we receive.
pub struct Opener {
    state: Arc<StatelessTransportState>,
    nonce: u64,
}

impl Opener {
    /// The plaintext of one received transport message (unframed).
    pub fn open(&mut self, msg: &[u8]) -> Result<Vec<u8>, SecureError> {
        let mut buf = vec![0u8; MAX_NOISE_MSG];
        let n = self
            .state
            .read_message(self.nonce, msg, &mut buf)
            .map_err(noise)?;
        self.nonce += 1;
        buf.truncate(n);
        Ok(buf)
    }
}

#[cfg(test)]
#[path = "secure_tests.rs"]
mod tests;
