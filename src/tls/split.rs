//! One TLS client connection shared by a reader thread and a writer
//! thread (the peer's registry link). The reader waits on the socket
//! without the lock, then feeds what came to the connection under it; the
//! writer encrypts and sends under the lock. Shutting the socket down wakes
//! both, as for a plain connection.

use rustls::ClientConnection;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long the TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the client handshake to its end on `sock` (blocking, at most
/// [`HANDSHAKE_TIMEOUT`] per read).
pub fn handshake(conn: &mut ClientConnection, sock: &mut TcpStream) -> io::Result<()> {
    let before = sock.read_timeout()?;
    sock.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let result = (|| {
        while conn.is_handshaking() {
            conn.complete_io(sock)?;
        }
        while conn.wants_write() {
            conn.write_tls(sock)?;
        }
        Ok(())
    })();
    sock.set_read_timeout(before)?;
    result
}

/// A client connection after its handshake, and its socket.
pub struct Shared {
    conn: Mutex<ClientConnection>,
    sock: TcpStream,
}

impl Shared {
    pub fn new(conn: ClientConnection, sock: TcpStream) -> Arc<Shared> {
        Arc::new(Shared {
            conn: Mutex::new(conn),
            sock,
        })
    }

    fn lock(&self) -> MutexGuard<'_, ClientConnection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends whatever the connection has to send (under its lock).
    fn flush_tls(&self, conn: &mut ClientConnection) -> io::Result<()> {
        while conn.wants_write() {
            conn.write_tls(&mut &self.sock)?;
        }
        Ok(())
    }
}

/// The reading half.
pub struct Reader {
    shared: Arc<Shared>,
    sock: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    pub fn new(shared: Arc<Shared>) -> io::Result<Reader> {
        let sock = shared.sock.try_clone()?;
        Ok(Reader {
            shared,
            sock,
            buf: vec![0; 16 * 1024],
        })
    }
}

impl Read for Reader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.shared.lock().reader().read(out) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            let n = self.sock.read(&mut self.buf)?;
            let mut conn = self.shared.lock();
            if n == 0 {
                return Ok(0);
            }
            let mut rest = &self.buf[..n];
            while !rest.is_empty() {
                conn.read_tls(&mut rest)?;
                conn.process_new_packets().map_err(io::Error::other)?;
            }
            self.shared.flush_tls(&mut conn)?;
        }
    }
}

/// The writing half.
pub struct Writer {
    shared: Arc<Shared>,
}

impl Writer {
    pub fn new(shared: Arc<Shared>) -> Writer {
        Writer { shared }
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut conn = self.shared.lock();
        conn.writer().write_all(buf)?;
        self.shared.flush_tls(&mut conn)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut conn = self.shared.lock();
        self.shared.flush_tls(&mut conn)
    }
}
