//! The line codec: the only place that turns bytes on a registry or
//! one-to-one chat connection into lines and lines into bytes. It works on
//! any `BufRead`/`Write` and owns no socket.
//!
//! Framing is newline-delimited JSON. A line is capped at [`MAX_LINE`] bytes
//! (the newline excluded); a longer line, or one that is not UTF-8, breaks the
//! framing and the connection is closed after an error reply.

use std::io::{self, BufRead, Write};

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
    fn rejects_invalid_utf8() {
        assert_eq!(lines(b"\xff\xfe\n{}\n")[0], Err("encoding".into()));
    }
}
