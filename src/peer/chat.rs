//! One-to-one chat between two peers: the two threads that serve each direct
//! TCP connection (the messages themselves are [`crate::protocol::chat`]).
//!
//! The reader thread turns lines into [`ChatMsg`] events for the main loop;
//! the writer thread drains a channel, so the main loop never blocks on a
//! slow partner. Dropping a connection's sender closes the socket.

use super::events::Event;
use crate::protocol::chat::{ChatMsg, MAX_TEXT};
use crate::protocol::codec::{read_line, write_json, LineError};
use crossbeam_channel::{Receiver, Sender};
use std::io::BufReader;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

/// The main loop's handle on one chat connection.
pub struct ChatConn {
    pub id: u64,
    pub addr: SocketAddr,
    out: Sender<ChatMsg>,
    /// Disconnects when the writer thread has finished.
    done: Receiver<()>,
}

impl ChatConn {
    /// Queues a message; false if the connection is already gone.
    pub fn send(&self, msg: ChatMsg) -> bool {
        self.out.send(msg).is_ok()
    }

    /// Waits (at most `limit`) until the writer has sent everything queued
    /// up to a `Bye` and closed the socket; used before the process exits.
    pub fn closed_within(&self, limit: Duration) {
        let _ = self.done.recv_timeout(limit);
    }
}

/// Starts the reader and writer threads of a connection.
pub fn spawn(id: u64, stream: TcpStream, events: Sender<Event>) -> std::io::Result<ChatConn> {
    let addr = stream.peer_addr()?;
    let _ = stream.set_nodelay(true);
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let reader = stream.try_clone()?;
    let (out, out_rx) = crossbeam_channel::unbounded();
    let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
    let ev = events.clone();
    thread::Builder::new()
        .name(format!("chat-read-{id}"))
        .spawn(move || read_loop(id, reader, ev))?;
    thread::Builder::new()
        .name(format!("chat-write-{id}"))
        .spawn(move || {
            write_loop(id, stream, out_rx, events);
            drop(done_tx);
        })?;
    Ok(ChatConn {
        id,
        addr,
        out,
        done,
    })
}

fn read_loop(id: u64, stream: TcpStream, events: Sender<Event>) {
    let mut r = BufReader::new(stream);
    let mut buf = Vec::new();
    let reason = loop {
        match read_line(&mut r, &mut buf) {
            Ok(line) => match serde_json::from_str::<ChatMsg>(&line) {
                Ok(ChatMsg::Msg { text, .. }) if text.len() > MAX_TEXT => {
                    break "sent an oversized message".to_string();
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
            Err(LineError::Closed) => break "closed".to_string(),
            Err(LineError::TooLong) => break "sent a line over 64 KiB".to_string(),
            Err(LineError::BadEncoding) => break "sent invalid UTF-8".to_string(),
            Err(LineError::Io(e)) => break e.to_string(),
        }
    };
    let _ = events.send(Event::ChatClosed { conn: id, reason });
}

fn write_loop(id: u64, mut stream: TcpStream, out: Receiver<ChatMsg>, events: Sender<Event>) {
    for msg in out.iter() {
        let last = msg == ChatMsg::Bye;
        if let Err(e) = write_json(&mut stream, &msg) {
            let _ = events.send(Event::ChatClosed {
                conn: id,
                reason: format!("write failed: {e}"),
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
