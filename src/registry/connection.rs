//! One client connection, on its own thread: lines in through the codec
//! (charged to the shared
//! [`LineBudget`](crate::protocol::codec::LineBudget)), requests to
//! [`Registry::handle`], replies out (the `id` echoed as sent); pacing, and
//! closing the connection when idle.

use super::conns::RefusalLog;
use super::server::{READ_TICK, WRITE_TIMEOUT};
use super::service::{Conn, Registry};
use super::wire::{self, Wire};
use crate::protocol::codec::{write_json, BudgetedLine, LineError};
use crate::protocol::*;
use serde_json::value::RawValue;
use serde_json::Value;
use std::io::{self, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// Paces one connection: `rate` requests a second with bursts of twice that;
/// a client that goes faster is made to wait, which slows it alone.
struct Pacer {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    fn new(rate: u32) -> Pacer {
        let rate = f64::from(rate.max(1));
        Pacer {
            rate,
            tokens: rate * 2.0,
            last: Instant::now(),
        }
    }

    fn take(&mut self) {
        let now = Instant::now();
        self.tokens =
            (self.tokens + (now - self.last).as_secs_f64() * self.rate).min(self.rate * 2.0);
        self.last = now;
        if self.tokens < 1.0 {
            let wait = (1.0 - self.tokens) / self.rate;
            thread::sleep(Duration::from_secs_f64(wait));
            self.tokens = 1.0;
            self.last = Instant::now();
        }
        self.tokens -= 1.0;
    }
}

/// Connections refused for the line budget, from every client thread.
static BUDGET_REFUSALS: Mutex<RefusalLog> = Mutex::new(RefusalLog::new());

pub(super) fn serve(
    reg: &Registry,
    conn: &mut Conn,
    stream: &TcpStream,
    mut line: BudgetedLine,
    stop: &AtomicBool,
) -> io::Result<()> {
    stream.set_read_timeout(Some(READ_TICK))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let _ = stream.set_nodelay(true);
    let idle = reg.config.idle_timeout;
    let Some(wire) = wire::open(
        stream,
        reg.config.tls.as_ref(),
        reg.config.allow_plaintext,
        idle,
        stop,
    )?
    else {
        return Ok(());
    };
    // Both halves use the one socket (and TLS connection): no second
    // descriptor per client; replies are written through `reader.get_mut()`.
    let mut reader = BufReader::with_capacity(8 * 1024, Ticking::new(wire));
    let mut pacer = Pacer::new(reg.config.requests_per_sec);
    // Only requests (complete, non-blank lines) move this on: blank lines
    // and a line trickled in byte by byte do not keep a connection open.
    let mut quiet_until = Instant::now() + idle;
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let text = match line.read(&mut reader) {
            Ok(text) if !text.trim().is_empty() => text,
            Ok(_blank) => {
                if !keep_open(reg, conn, &mut quiet_until) {
                    return Ok(());
                }
                continue;
            }
            Err(LineError::Closed) => return Ok(()),
            Err(LineError::TooLong) => {
                let e = ApiError::new(ErrorCode::LineTooLong, "line longer than 64 KiB; closing");
                return write_json(reader.get_mut(), &Reply::err(Value::Null, e));
            }
            Err(LineError::BadEncoding) => {
                let e = ApiError::new(ErrorCode::BadEncoding, "line is not UTF-8; closing");
                return write_json(reader.get_mut(), &Reply::err(Value::Null, e));
            }
            Err(LineError::Io(e)) if e.kind() == ErrorKind::OutOfMemory => {
                let budget = reg.config.line_budget;
                if let Some(n) = BUDGET_REFUSALS
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .note()
                {
                    log::warn!(
                        "closed {n} connection(s) whose unfinished line did not fit in the \
                         {budget}-byte budget (--line-budget-kib) since the last such line; \
                         latest from {}",
                        conn.ip
                    );
                }
                let e = ApiError::new(
                    ErrorCode::BuffersFull,
                    "the registry's memory for unfinished lines is full; closing",
                );
                return write_json(reader.get_mut(), &Reply::err(Value::Null, e));
            }
            Err(LineError::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                if !keep_open(reg, conn, &mut quiet_until) {
                    return Ok(());
                }
                continue;
            }
            Err(LineError::Io(e)) => return Err(e),
        };
        quiet_until = Instant::now() + idle;
        pacer.take();
        let reply = match parse_request(&text) {
            Err((id, e)) => Reply::err(id, e),
            Ok(Envelope { id, request }) => {
                let result = catch_unwind(AssertUnwindSafe(|| reg.handle(conn, request)))
                    .unwrap_or_else(|_| {
                        log::error!("a handler panicked (a bug); the connection lives on");
                        Err(ApiError::new(ErrorCode::Internal, "internal error"))
                    });
                Reply { id, result }
            }
        };
        write_reply(reader.get_mut(), &reply, &text)?;
    }
}

/// Writes `reply` to the request `line`, echoing the request's `id` as the
/// very JSON text the client sent. Integers come back as they came; a
/// number with a fraction or an exponent, or a string, would come back
/// re-serialised (`1e2` as `100.0`, `"\u00e9"` as `"é"`), so its text is
/// taken from the line.
fn write_reply(w: &mut impl Write, reply: &Reply, line: &str) -> io::Result<()> {
    #[derive(serde::Deserialize)]
    struct RawId<'a> {
        #[serde(borrow)]
        id: &'a RawValue,
    }
    let exact = match &reply.id {
        Value::String(_) => true,
        Value::Number(n) => n.is_f64(),
        _ => false,
    };
    let raw = exact
        .then(|| serde_json::from_str::<RawId>(line).ok())
        .flatten();
    let Some(RawId { id }) = raw else {
        return write_json(w, reply);
    };
    let Value::Object(mut fields) = serde_json::to_value(reply).map_err(io::Error::other)? else {
        return write_json(w, reply);
    };
    fields.remove("id");
    let rest = serde_json::to_string(&fields).map_err(io::Error::other)?;
    let mut out = format!("{{\"id\":{}", id.get());
    match rest.strip_prefix('{') {
        Some("}") | None => out.push('}'),
        Some(rest) => {
            out.push(',');
            out.push_str(rest);
        }
    }
    out.push('\n');
    w.write_all(out.as_bytes())?;
    w.flush()
}

/// After a read time-out or a blank line (no request): whether to keep the
/// connection. It is closed once quiet past `quiet_until` unless its
/// session is online (then its heartbeats decide).
fn keep_open(reg: &Registry, conn: &Conn, quiet_until: &mut Instant) -> bool {
    let now = Instant::now();
    if now < *quiet_until {
        return true;
    }
    // Its session online, as this process knows it (no store read).
    if reg.holds_live_session(conn) {
        // Look again in a while, not at every blank line.
        *quiet_until = now + READ_TICK;
        return true;
    }
    log::debug!("closing idle connection from {}", conn.ip);
    false
}

/// A client socket whose reads time out at least every [`READ_TICK`], even
/// while bytes keep coming: a client that trickles a line byte by byte is
/// still checked for idleness and shutdown between bytes. A partial line
/// survives the time-out (the codec resumes it).
struct Ticking<'a> {
    stream: Wire<'a>,
    tick_at: Instant,
}

impl<'a> Ticking<'a> {
    fn new(stream: Wire<'a>) -> Self {
        Ticking {
            stream,
            tick_at: Instant::now() + READ_TICK,
        }
    }
}

impl Read for Ticking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if Instant::now() >= self.tick_at {
            self.tick_at = Instant::now() + READ_TICK;
            return Err(ErrorKind::TimedOut.into());
        }
        let r = self.stream.read(buf);
        if matches!(&r, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)) {
            self.tick_at = Instant::now() + READ_TICK;
        }
        r
    }
}

impl Write for Ticking<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}
