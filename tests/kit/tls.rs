//! A raw registry client over TLS, pinning the registry's printed
//! fingerprint (the peer's verifier, from the library), and a TLS server
//! with a certificate of its own: a man in the middle.

use lanchat::tls::{cert, pin, Fingerprint};
use rustls::{ClientConnection, StreamOwned};
use serde_json::{json, Value};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One NDJSON connection to the registry inside TLS.
pub struct TlsClient {
    stream: BufReader<StreamOwned<ClientConnection, TcpStream>>,
    next_id: u64,
}

impl TlsClient {
    /// Connects and completes the handshake, accepting only `fingerprint`.
    pub fn connect(addr: SocketAddr, fingerprint: &str) -> io::Result<TlsClient> {
        let fp: Fingerprint = fingerprint.parse().map_err(io::Error::other)?;
        let (config, _) = pin::client_config(Some(fp));
        let mut conn = pin::client_connection(config).map_err(io::Error::other)?;
        let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(5)))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        Ok(TlsClient {
            stream: BufReader::new(StreamOwned::new(conn, tcp)),
            next_id: 1,
        })
    }

    /// Sends a request (an `id` added) and reads its reply.
    pub fn request(&mut self, mut req: Value) -> Value {
        req["id"] = json!(self.next_id);
        self.next_id += 1;
        let mut line = req.to_string();
        line.push('\n');
        let s = self.stream.get_mut();
        s.write_all(line.as_bytes()).expect("send over TLS");
        s.flush().expect("flush TLS");
        let mut reply = String::new();
        self.stream.read_line(&mut reply).expect("read over TLS");
        let v: Value = serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{reply:?}: {e}"));
        super::heartbeat::note_session(&v);
        v
    }

    /// A request that must succeed.
    pub fn ok(&mut self, req: Value) -> Value {
        let v = self.request(req.clone());
        assert_eq!(v["ok"], json!(true), "{req} -> {v}");
        v
    }
}

/// A TLS server with its own certificate (made by `rcgen`) on `listen`:
/// it completes any handshake and keeps every plaintext byte it is sent.
pub struct Impostor {
    pub addr: SocketAddr,
    pub fingerprint: String,
    /// Plaintext received inside TLS, from every connection.
    pub heard: Arc<Mutex<Vec<u8>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Impostor {
    pub fn start(listen: &str) -> Impostor {
        let dir = tempfile::tempdir().expect("tempdir");
        let (id, _) = cert::load_or_create(dir.path()).expect("a certificate");
        let listener = TcpListener::bind(listen).expect("bind the impostor");
        let addr = listener.local_addr().unwrap();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let (config, keep) = (id.config.clone(), heard.clone());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = thread::spawn(move || {
            for tcp in listener.incoming() {
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(tcp) = tcp else { return };
                let (config, keep) = (config.clone(), keep.clone());
                thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let mut s = StreamOwned::new(conn, tcp);
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        keep.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                });
            }
        });
        Impostor {
            addr,
            fingerprint: id.fingerprint.to_string(),
            heard,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    pub fn heard(&self) -> Vec<u8> {
        self.heard.lock().unwrap().clone()
    }
}

impl Drop for Impostor {
    /// Stops listening (the address is free again once dropped).
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
