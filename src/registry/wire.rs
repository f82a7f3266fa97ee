//! What a client connection speaks: TLS, or plaintext when the registry
//! runs with `--insecure`. The first byte tells: a TLS handshake starts
//! with 0x16; a plaintext client (a version-1 peer, or one started with
//! `--insecure`) starts with `{`. Without `--insecure` the registry answers
//! a plaintext client's first request one `tls_required` error line, in
//! plaintext, and closes; with it, it serves both (the peer decides: a TLS peer gets TLS).

use crate::protocol::codec::write_json;
use crate::protocol::*;
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::Value;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The first byte of a TLS record carrying a handshake message.
const TLS_HANDSHAKE: u8 = 0x16;

/// One client connection's byte stream.
pub enum Wire<'a> {
    Plain(&'a TcpStream),
    Tls(Box<StreamOwned<ServerConnection, &'a TcpStream>>),
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(s) => s.read(buf),
            Wire::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(s) => s.write(buf),
            Wire::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Wire::Plain(s) => s.flush(),
            Wire::Tls(s) => s.flush(),
        }
    }
}

/// Waits for the client's first byte (the socket's read time-out must be
/// set), then answers the wire to serve it on; `None` when the connection
/// is done with: closed, silent past `idle`, the registry stopping, or a
/// plaintext client of a TLS registry (answered `tls_required`).
pub fn open<'a>(
    stream: &'a TcpStream,
    tls: Option<&Arc<ServerConfig>>,
    allow_plaintext: bool,
    idle: Duration,
    stop: &AtomicBool,
) -> io::Result<Option<Wire<'a>>> {
    let Some(config) = tls else {
        return Ok(Some(Wire::Plain(stream)));
    };
    let until = Instant::now() + idle;
    let mut first = [0u8; 1];
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        match stream.peek(&mut first) {
            Ok(0) => return Ok(None),
            Ok(_) => break,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if Instant::now() >= until {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
    if first[0] != TLS_HANDSHAKE && allow_plaintext {
        return Ok(Some(Wire::Plain(stream)));
    }
    if first[0] != TLS_HANDSHAKE {
        // The answer echoes the first request's `id`, so that a version-1
        // peer shows it as the answer to what the user typed.
        let id = first_request_id(stream, until, stop);
        let e = ApiError::new(
            ErrorCode::TlsRequired,
            "this registry speaks TLS (protocol version 2): update the peer, or run both sides with --insecure; closing",
        );
        let mut w = stream;
        let _ = write_json(&mut w, &Reply::err(id, e));
        let _ = stream.shutdown(std::net::Shutdown::Write);
        return Ok(None);
    }
    let conn = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
    Ok(Some(Wire::Tls(Box::new(StreamOwned::new(conn, stream)))))
}

/// The `id` of the plaintext request line the client is sending (read
/// up to its newline, at most [`FIRST_LINE_MAX`] bytes, until `until`);
/// null when there is none to be had.
fn first_request_id(mut stream: &TcpStream, until: Instant, stop: &AtomicBool) -> Value {
    let mut line = Vec::new();
    let mut buf = [0u8; 1024];
    while line.len() < FIRST_LINE_MAX && !line.contains(&b'\n') {
        if stop.load(Ordering::SeqCst) || Instant::now() >= until {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => line.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
    match serde_json::from_slice::<Value>(&line[..end]) {
        Ok(Value::Object(mut o)) => match o.remove("id") {
            Some(id @ (Value::Number(_) | Value::String(_))) => id,
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

/// The most of a plaintext first line read to find its `id`.
const FIRST_LINE_MAX: usize = 8 * 1024;
