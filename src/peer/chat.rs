//! One-to-one chat between two peers: the two threads that serve each direct
//! TCP connection (the messages themselves are [`crate::protocol::chat`]).
//!
//! The reader thread turns lines into [`ChatMsg`] events for the main loop;
//! the writer thread drains a channel, so the main loop never blocks on a
//! slow partner. Dropping a connection's sender closes the socket. What to
//! send and when is decided by the chat engine ([`super::chats`]).
//!
//! Every connection holds a [`Slot`] while its threads run (see
//! [`super::slots`]).

use super::chat_noise::{self, Role, SecureReader, Setup};
use super::chats::ConnEnd;
use super::events::Event;
use super::slots::Slot;
use crate::protocol::chat::{ChatMsg, MAX_TEXT};
use crate::protocol::codec::{read_line, LineError};
use crate::protocol::secure::Sealer;
use crossbeam_channel::{Receiver, Sender};
use std::io::BufReader;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// The main loop's handle on one chat connection.
pub struct ChatConn {
    pub addr: SocketAddr,
    /// Unbounded: the main loop only queues what the user typed and one
    /// keep-alive a second, and must never wait for a slow partner; a
    /// partner that stops reading is cut off by the 2 s write time-out.
    out: Sender<ChatMsg>,
    /// Disconnects when the writer thread has finished.
    done: Receiver<()>,
}

impl ChatConn {
    /// Queues a message; false if the connection is already gone.
    pub fn send(&self, msg: ChatMsg) -> bool {
        self.out.send(msg).is_ok()
    }

    /// Lets the writer finish what is queued and close the socket.
    pub fn close(self) -> Closing {
        Closing { done: self.done }
    }
}

/// A connection whose writer is finishing.
pub struct Closing {
    done: Receiver<()>,
}

impl Closing {
    pub fn is_done(&self) -> bool {
        matches!(
            self.done.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        )
    }

    /// Waits (at most `limit`) until the writer has sent everything queued
    /// and closed the socket; used before the process exits.
    pub fn wait(&self, limit: Duration) {
        let _ = self.done.recv_timeout(limit);
    }
}

/// Starts the reader and writer threads of a connection. `events` is the
/// bounded channel of connection events: when it is full the reader stops
/// reading, so a flooding partner is held back by TCP flow control.
/// The threads hold `slot` until both have ended.
///
/// The reader thread first runs the Noise handshake (`peer::chat_noise`); the
/// writer starts once it is done, so nothing queued before (the hello)
/// leaves before the other side's key has been checked. A failed handshake
/// ends the connection with [`ConnEnd::Secure`].
pub fn spawn(
    id: u64,
    stream: TcpStream,
    events: Sender<Event>,
    slot: Slot,
    setup: Setup,
) -> std::io::Result<ChatConn> {
    let addr = stream.peer_addr()?;
    let _ = stream.set_nodelay(true);
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = stream.try_clone()?;
    let (out, out_rx) = crossbeam_channel::unbounded();
    let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
    let slot = Arc::new(slot);
    thread::Builder::new()
        .name(format!("chat-read-{id}"))
        .spawn(move || {
            let (secured, frames) = match chat_noise::handshake(&mut reader, &setup) {
                Ok(s) => s,
                Err(reason) => {
                    let _ = stream.shutdown(Shutdown::Both);
                    let _ = events.send(Event::ChatClosed { conn: id, reason });
                    drop(done_tx);
                    drop(slot);
                    return;
                }
            };
            if matches!(setup.role, Role::Accept) {
                let ev = Event::ChatSecured {
                    conn: id,
                    user: secured.remote.user.clone(),
                    key: secured.remote_key,
                };
                if events.send(ev).is_err() {
                    return;
                }
            }
            let (mut sealer, opener) = secured.channel.split();
            let ev = events.clone();
            let held = slot.clone();
            let spawned = thread::Builder::new()
                .name(format!("chat-write-{id}"))
                .spawn(move || {
                    write_loop(id, stream, &mut sealer, out_rx, ev);
                    drop(done_tx);
                    drop(held);
                });
            if let Err(e) = spawned {
                let reason = ConnEnd::Io(format!("cannot start a thread: {e}"));
                let _ = events.send(Event::ChatClosed { conn: id, reason });
                return;
            }
            read_loop(id, SecureReader::new(reader, frames, opener), events);
            drop(slot);
        })?;
    Ok(ChatConn { addr, out, done })
}

fn read_loop(id: u64, stream: SecureReader, events: Sender<Event>) {
    let mut r = BufReader::new(stream);
    let mut buf = Vec::new();
    let reason = loop {
        match read_line(&mut r, &mut buf) {
            Ok(line) => match serde_json::from_str::<ChatMsg>(&line) {
                Ok(ChatMsg::Msg { text, .. }) if text.len() > MAX_TEXT => {
                    break ConnEnd::Oversized;
                }
                Ok(msg) => {
                    if events.send(Event::ChatMsg { conn: id, msg }).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    log::debug!("chat {id}: bad line: {e}");
                    let _ = events.send(Event::ChatGarbage { conn: id });
                }
            },
            Err(LineError::Closed) => break ConnEnd::Closed,
            Err(LineError::TooLong) => break ConnEnd::LineTooLong,
            Err(LineError::BadEncoding) => break ConnEnd::BadEncoding,
            Err(LineError::Io(e)) => break ConnEnd::Io(e.to_string()),
        }
    };
    let _ = events.send(Event::ChatClosed { conn: id, reason });
}

fn write_loop(
    id: u64,
    mut stream: TcpStream,
    sealer: &mut Sealer,
    out: Receiver<ChatMsg>,
    events: Sender<Event>,
) {
    for msg in out.iter() {
        let last = msg == ChatMsg::Bye;
        let mut line = serde_json::to_vec(&msg).unwrap_or_default();
        line.push(b'\n');
        if let Err(e) = chat_noise::write_sealed(&mut stream, sealer, &line) {
            let _ = events.send(Event::ChatClosed {
                conn: id,
                reason: ConnEnd::WriteFailed(e.to_string()),
            });
            break;
        }
        if last {
            break;
        }
    }
    // Sender dropped, Bye sent, or a write failed: close both directions so
    // the reader thread ends too.
    let _ = stream.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    /// A partner that floods a connection whose event queue is full is
    /// held back by TCP: its writes stop going through, and the queue does
    /// not grow past its bound.
    #[test]
    fn full_event_queue_holds_back_a_flooding_partner() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut partner = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        let (tx, rx) = crossbeam_channel::bounded(4);
        let bob = crate::identity::Identity::from_secrets([1; 32], [2; 32]);
        let setup = Setup {
            secret: bob.kx_secret(),
            me: "bob".into(),
            role: Role::Accept,
        };
        let _conn = spawn(1, ours, tx, Slot::outgoing(), setup).unwrap();
        let alice = Setup {
            secret: [3; 32],
            me: "alice".into(),
            role: Role::Dial {
                user: "bob".into(),
                key: bob.public().kx,
            },
        };
        let (secured, _) = chat_noise::handshake(&mut partner, &alice).unwrap();
        let (mut sealer, _) = secured.channel.split();
        assert!(matches!(
            rx.recv_timeout(Duration::from_secs(5)),
            Ok(Event::ChatSecured { conn: 1, .. })
        ));
        partner
            .set_write_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let line = serde_json::to_string(&ChatMsg::Msg {
            id: 1,
            text: "x".repeat(MAX_TEXT),
        })
        .unwrap()
            + "\n";
        let mut sent = 0usize;
        let blocked = loop {
            let sealed = sealer.seal(line.as_bytes()).unwrap();
            match partner.write_all(&sealed) {
                Ok(()) => sent += line.len(),
                Err(e) => break e,
            }
            assert!(sent < 256 << 20, "256 MiB went through a full queue");
        };
        assert!(
            matches!(
                blocked.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{blocked}"
        );
        assert_eq!(rx.len(), 4);
        // Draining the queue lets the reader go on.
        let first = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(matches!(first, Event::ChatMsg { conn: 1, .. }));
    }
}
