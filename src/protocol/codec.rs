//! The line codec: the only place that turns bytes on a registry or
//! one-to-one chat connection into lines and lines into bytes. It works on
//! any `BufRead`/`Write` and owns no socket.
//!
//! Framing is newline-delimited JSON. A line is capped at [`MAX_LINE`] bytes
//! (the newline excluded); a longer line, or one that is not UTF-8, breaks the
//! framing and the connection is closed after an error reply.
//!
//! A server that reads from many connections can charge their unfinished
//! lines to one shared [`LineBudget`] ([`BudgetedLine`]), so that many
//! clients each holding an almost complete line cannot take its memory.

use std::io::{self, BufRead, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Largest accepted line, in bytes, not counting the trailing `\n`.
pub const MAX_LINE: usize = 64 * 1024;

/// Why a line could not be read.
#[derive(Debug)]
pub enum LineError {
    /// The peer closed the connection cleanly between lines.
    Closed,
    /// The line grew past [`MAX_LINE`] bytes before its newline.
    TooLong,
    /// The line is not valid UTF-8.
    BadEncoding,
    /// The socket failed or timed out (`WouldBlock`/`TimedOut` on a read timeout).
    Io(io::Error),
}

/// Reads one `\n`-terminated line from `r`, without the newline (a trailing
/// `\r` is dropped too). At most `MAX_LINE + 1` bytes are buffered, whatever
/// the peer sends. A final line without a newline at end of stream is returned
/// as a line.
///
/// On a read timeout the bytes read so far stay in `buf`, so the caller can
/// call again and resume the same line; `buf` must start empty for each new line.
pub fn read_line<R: BufRead>(r: &mut R, buf: &mut Vec<u8>) -> Result<String, LineError> {
    read_line_with(r, buf, |_, _| true)
}

/// [`read_line`], with `room(buf, n)` called before `n` more bytes are
/// added to `buf`: it makes room for them, or answers `false` to refuse.
fn read_line_with<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    mut room: impl FnMut(&mut Vec<u8>, usize) -> bool,
) -> Result<String, LineError> {
    loop {
        let available = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LineError::Io(e)),
        };
        if available.is_empty() {
            if buf.is_empty() {
                return Err(LineError::Closed);
            }
            break;
        }
        let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i)),
            None => (available, None),
        };
        if buf.len() + chunk.len() > MAX_LINE {
            // Consume what we looked at so a caller that keeps reading does
            // not see the same bytes again; the connection is closing anyway.
            let n = chunk.len();
            r.consume(n);
            buf.clear();
            return Err(LineError::TooLong);
        }
        if !room(buf, chunk.len()) {
            let n = chunk.len();
            r.consume(n);
            buf.clear();
            return Err(LineError::Io(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "the shared budget for unfinished lines is spent",
            )));
        }
        buf.extend_from_slice(chunk);
        match found {
            Some(i) => {
                r.consume(i + 1);
                break;
            }
            None => {
                let n = chunk.len();
                r.consume(n);
            }
        }
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    let bytes = std::mem::take(buf);
    String::from_utf8(bytes).map_err(|_| LineError::BadEncoding)
}

/// Memory shared by the unfinished lines of many connections, in bytes.
#[derive(Debug)]
pub struct LineBudget {
    limit: usize,
    used: AtomicUsize,
}

impl LineBudget {
    pub fn new(limit: usize) -> Arc<LineBudget> {
        Arc::new(LineBudget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes charged now, by every connection together.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&u| u <= self.limit)
            })
            .is_ok()
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// One connection's line buffer, its memory charged to a [`LineBudget`]
/// beyond the first [`FREE_BYTES`] (so ordinary requests, which are far
/// smaller, never depend on the budget). The charge is given back when the
/// line is complete and when the buffer is dropped.
#[derive(Debug)]
pub struct BudgetedLine {
    buf: Vec<u8>,
    budget: Arc<LineBudget>,
    charged: usize,
}

/// What each connection may buffer of a line without drawing on the budget.
pub const FREE_BYTES: usize = 4 * 1024;

impl BudgetedLine {
    pub fn new(budget: Arc<LineBudget>) -> BudgetedLine {
        BudgetedLine {
            buf: Vec::new(),
            budget,
            charged: 0,
        }
    }

    /// [`read_line`] into this buffer. When the line would need more of the
    /// budget than is left, the bytes read so far are dropped and the error
    /// is `LineError::Io` of kind `OutOfMemory`; the connection should be
    /// closed (the rest of the line is still on its way).
    pub fn read<R: BufRead>(&mut self, r: &mut R) -> Result<String, LineError> {
        let (budget, charged) = (&self.budget, &mut self.charged);
        let result = read_line_with(r, &mut self.buf, |buf, n| {
            let needed = buf.len() + n;
            if needed <= buf.capacity() {
                return true;
            }
            // Grow as a Vec would (doubling), but never past the line cap,
            // and charge the budget before allocating.
            // If the budget is short, grow only to what the line needs.
            let charge = |cap: usize| cap.saturating_sub(FREE_BYTES);
            let doubled = needed.max(buf.capacity() * 2).min(MAX_LINE).max(needed);
            let Some((target, wanted)) = [doubled, needed].into_iter().find_map(|target| {
                let wanted = charge(target).saturating_sub(*charged);
                (wanted == 0 || budget.take(wanted)).then_some((target, wanted))
            }) else {
                return false;
            };
            *charged += wanted;
            buf.reserve_exact(target - buf.len());
            // The allocator may hand out more than asked: charge it too.
            let extra = charge(buf.capacity()).saturating_sub(*charged);
            if extra > 0 {
                budget.used.fetch_add(extra, Ordering::AcqRel);
                *charged += extra;
            }
            true
        });
        let resumable = matches!(&result, Err(LineError::Io(e))
            if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut));
        if result.is_err() && !resumable {
            // A broken line (or one refused): its bytes are of no more use.
            self.buf = Vec::new();
        }
        self.settle();
        result
    }

    /// Gives back what the buffer no longer holds (a complete line moves
    /// its bytes out, leaving an empty buffer).
    fn settle(&mut self) {
        let held = self.buf.capacity().saturating_sub(FREE_BYTES);
        if held < self.charged {
            self.budget.give(self.charged - held);
            self.charged = held;
        }
    }
}

impl Drop for BudgetedLine {
    fn drop(&mut self) {
        self.budget.give(self.charged);
    }
}

/// Writes `value` as one JSON line and flushes.
pub fn write_json<W: Write, T: serde::Serialize>(w: &mut W, value: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn lines(input: &[u8]) -> Vec<Result<String, String>> {
        let mut r = BufReader::with_capacity(7, input);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            match read_line(&mut r, &mut buf) {
                Ok(l) => out.push(Ok(l)),
                Err(LineError::Closed) => return out,
                Err(LineError::TooLong) => out.push(Err("too_long".into())),
                Err(LineError::BadEncoding) => out.push(Err("encoding".into())),
                Err(LineError::Io(e)) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn splits_lines_across_small_reads() {
        assert_eq!(
            lines(b"{\"a\":1}\r\nsecond line\nlast"),
            vec![
                Ok("{\"a\":1}".into()),
                Ok("second line".into()),
                Ok("last".into())
            ]
        );
    }

    #[test]
    fn caps_line_length() {
        let mut input = vec![b'x'; MAX_LINE];
        input.push(b'\n');
        assert_eq!(lines(&input), vec![Ok("x".repeat(MAX_LINE))]);
        let long = vec![b'x'; MAX_LINE + 1];
        assert_eq!(lines(&long)[0], Err("too_long".into()));
    }

    #[test]
    fn budget_is_charged_for_unfinished_lines_only() {
        let budget = LineBudget::new(20 * 1024);
        let mut a = BudgetedLine::new(budget.clone());
        // Small lines never touch the budget.
        let mut r = BufReader::with_capacity(64, &b"{\"op\":\"x\"}\n"[..]);
        assert_eq!(a.read(&mut r).unwrap(), "{\"op\":\"x\"}");
        assert_eq!(budget.used(), 0);
        // An unfinished 16 KiB line is charged beyond the free 4 KiB...
        let mut r = BufReader::with_capacity(1024, &[b'x'; 16 * 1024][..]);
        let mut partial = BufReader::new(Partial(&mut r));
        assert!(matches!(a.read(&mut partial), Err(LineError::Io(_))));
        let charged = budget.used();
        assert!((12 * 1024..=16 * 1024).contains(&charged), "{charged}");
        // ...so a second one does not fit: refused, and holds nothing.
        let mut b = BudgetedLine::new(budget.clone());
        let mut r = BufReader::with_capacity(1024, &[b'y'; 16 * 1024][..]);
        let err = b.read(&mut BufReader::new(Partial(&mut r))).unwrap_err();
        assert!(
            matches!(&err, LineError::Io(e) if e.kind() == io::ErrorKind::OutOfMemory),
            "{err:?}"
        );
        assert_eq!(budget.used(), charged);
        // The first line completes: its charge is given back.
        let mut r = BufReader::new(&b"x\n"[..]);
        assert_eq!(a.read(&mut r).unwrap().len(), 16 * 1024 + 1);
        assert_eq!(budget.used(), 0);
        let mut r = BufReader::with_capacity(1024, &[b'x'; 8 * 1024][..]);
        let _ = a.read(&mut BufReader::new(Partial(&mut r)));
        assert!(budget.used() > 0);
        drop(a);
        assert_eq!(budget.used(), 0);
    }

    /// A reader that times out at its end, as a socket with a read
    /// time-out does while the rest of a line is on its way.
    struct Partial<'a, R>(&'a mut R);

    impl<R: BufRead> io::Read for Partial<'_, R> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            match self.0.read(out)? {
                0 => Err(io::ErrorKind::WouldBlock.into()),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert_eq!(lines(b"\xff\xfe\n{}\n")[0], Err("encoding".into()));
    }
}
