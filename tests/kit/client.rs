//! A raw registry client speaking NDJSON over TCP, every read bounded:
//! [`Client`] (panicking helpers for tests, `try_*` ones that report
//! errors, for connections the registry may drop), and [`Session`], a
//! logged-in user with no peer behind it.

use super::heartbeat::Heartbeater;
use super::PASSWORD;
use serde_json::{json, Value};
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::FromRawFd;
use std::time::Duration;

/// Bound on every client read: no test can hang on a silent registry.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// One raw NDJSON connection to the registry.
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    next_id: u64,
}

/// What reading a line found.
#[derive(Debug)]
pub enum Read1 {
    Line(Vec<u8>),
    Eof,
    Reset,
}

impl Client {
    /// Connects to `127.0.0.1:port`.
    pub fn connect(port: u16) -> Client {
        Client::to(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    }

    /// Connects to `addr`; panics if it cannot.
    pub fn to(addr: SocketAddr) -> Client {
        Client::try_connect(addr, READ_TIMEOUT, READ_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to the registry at {addr}: {e}"))
    }

    /// Connects within `connect`, with reads and writes bounded by `io`.
    pub fn try_connect(addr: SocketAddr, connect: Duration, io: Duration) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, connect)?;
        Client::wrap(stream, io)
    }

    /// Connects from source address `src` (any 127.x.y.z works on Linux
    /// loopback), so the registry sees another client IP.
    pub fn connect_from(src: Ipv4Addr, port: u16) -> Client {
        let stream = tcp_connect_from(src, SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
            .unwrap_or_else(|e| panic!("connect from {src}: {e}"));
        Client::from_stream(stream)
    }

    /// Wraps an existing stream (e.g. a clone, to read on another thread).
    pub fn from_stream(stream: TcpStream) -> Client {
        Client::wrap(stream, READ_TIMEOUT).expect("set up a registry connection")
    }

    fn wrap(stream: TcpStream, timeout: Duration) -> io::Result<Client> {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let _ = stream.set_nodelay(true);
        let reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
        Ok(Client {
            stream,
            reader,
            next_id: 1,
        })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send to registry");
    }

    /// Like [`send_raw`](Self::send_raw) but tolerates a closed connection.
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one line (without `\n`) into `buf`; `Ok(false)` at EOF.
    fn read_into(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        buf.clear();
        Ok(self.reader.read_until(b'\n', buf)? > 0)
    }

    /// Reads one line (without `\n`), EOF, or a connection reset. Panics on
    /// a time-out or another error.
    pub fn read_line_raw(&mut self) -> Read1 {
        let mut buf = Vec::new();
        match self.read_into(&mut buf) {
            Ok(false) => Read1::Eof,
            Ok(true) => {
                assert_eq!(buf.pop(), Some(b'\n'), "line not terminated: {buf:?}");
                Read1::Line(buf)
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Read1::Reset,
            Err(e) => panic!("reading a reply: {e}"),
        }
    }

    /// Reads one reply line and parses it as JSON.
    pub fn read_reply(&mut self) -> Value {
        match self.read_line_raw() {
            Read1::Line(l) => {
                let v = serde_json::from_slice(&l)
                    .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {:?}", lossy(&l)));
                super::heartbeat::note_session(&v);
                v
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    /// Adds an `id` to `req` unless it has one; returns the id.
    fn stamp(&mut self, req: &mut Value) -> Value {
        let obj = req.as_object_mut().expect("request must be an object");
        if !obj.contains_key("id") {
            obj.insert("id".into(), json!(self.next_id));
            self.next_id += 1;
        }
        obj["id"].clone()
    }

    /// Sends one request (an `id` is added if missing) and reads its reply,
    /// reporting a closed connection, a time-out, a reply that is not JSON
    /// or that answers another id as an error.
    pub fn try_request(&mut self, mut req: Value) -> io::Result<Value> {
        let id = self.stamp(&mut req);
        let mut line = serde_json::to_vec(&req).expect("serialise a request");
        line.push(b'\n');
        self.stream.write_all(&line)?;
        let mut buf = Vec::new();
        if !self.read_into(&mut buf)? {
            return Err(io::Error::new(ErrorKind::UnexpectedEof, "closed"));
        }
        let v: Value = serde_json::from_slice(&buf).map_err(|e| {
            io::Error::new(ErrorKind::InvalidData, format!("{:?}: {e}", lossy(&buf)))
        })?;
        super::heartbeat::note_session(&v);
        if v["id"] != id {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                format!("reply to another request: {v}"),
            ));
        }
        Ok(v)
    }

    /// Sends `{"id":N,BODY}` (`body`: the rest of a JSON object, unparsed)
    /// and returns the reply line, also unparsed: the fast path for load.
    pub fn try_raw<'a>(&mut self, body: &str, reply: &'a mut Vec<u8>) -> io::Result<&'a str> {
        let line = format!("{{\"id\":{},{body}}}\n", self.next_id);
        self.next_id += 1;
        self.stream.write_all(line.as_bytes())?;
        if !self.read_into(reply)? {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "the registry closed the connection",
            ));
        }
        let text = std::str::from_utf8(reply)
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, e.to_string()))?;
        Ok(text.trim_end())
    }

    /// Sends one request (an `id` is added if missing) and returns the reply,
    /// after checking it echoes the id.
    pub fn request(&mut self, req: Value) -> Value {
        let shown = req.to_string();
        self.try_request(req)
            .unwrap_or_else(|e| panic!("request {shown}: {e}"))
    }

    /// A request that must succeed; returns the reply.
    pub fn ok(&mut self, req: Value) -> Value {
        let reply = self.request(req.clone());
        assert_eq!(reply["ok"], json!(true), "request {req} failed: {reply}");
        reply
    }

    /// A request that must fail; returns the error code.
    pub fn err(&mut self, req: Value) -> String {
        let reply = self.request(req.clone());
        assert_error_shape(&reply);
        assert_eq!(
            reply["ok"],
            json!(false),
            "request {req} succeeded: {reply}"
        );
        reply["code"].as_str().unwrap().to_string()
    }

    /// Asserts the request fails with `code`.
    pub fn expect_err(&mut self, req: Value, code: &str) {
        let got = self.err(req.clone());
        assert_eq!(got, code, "wrong error for {req}");
    }

    /// Waits (bounded) until the registry closes the connection: EOF or a
    /// reset, with no further reply in between.
    pub fn expect_closed(&mut self) {
        match self.read_line_raw() {
            Read1::Eof | Read1::Reset => {}
            Read1::Line(l) => panic!("expected the connection closed, got {:?}", lossy(&l)),
        }
    }

    /// Whether the registry has closed the connection (non-blocking check;
    /// `false` when it is open and quiet).
    pub fn is_closed(&mut self) -> bool {
        self.reader.buffer().is_empty() && is_closed(&self.stream)
    }

    // ---- op helpers ----

    /// `register` with [`PASSWORD`], reporting errors.
    pub fn try_register(&mut self, username: &str) -> io::Result<Value> {
        self.try_request(json!({"op": "register", "username": username, "password": PASSWORD}))
    }

    pub fn register(&mut self, username: &str) {
        let r = self.ok(json!({"op": "register", "username": username, "password": PASSWORD}));
        assert_eq!(r["username"], json!(username));
    }

    /// Logs in with ports (`tcp`, `tcp + 1`); returns the reply.
    pub fn login(&mut self, username: &str, tcp: u16) -> Value {
        self.ok(login_req(username, tcp, tcp + 1))
    }

    /// Logs in and returns the token.
    pub fn login_token(&mut self, username: &str, tcp: u16) -> String {
        let r = self.login(username, tcp);
        let token = r["token"].as_str().unwrap().to_string();
        assert!(is_hex64(&token), "token shape: {token}");
        token
    }

    /// The `user` object `search` returns.
    pub fn search(&mut self, token: &str, username: &str) -> Value {
        let r = self.ok(json!({"op": "search", "token": token, "username": username}));
        r["user"].clone()
    }

    pub fn is_online(&mut self, token: &str, username: &str) -> bool {
        let u = self.search(token, username);
        let online = u["online"].as_bool().expect("online flag");
        assert_eq!(
            online,
            u.get("address").is_some(),
            "address iff online: {u}"
        );
        online
    }

    /// Member names of a room, from `members`.
    pub fn member_names(&mut self, token: &str, room: &str) -> Vec<String> {
        let r = self.request(json!({"op": "members", "token": token, "room": room}));
        if r["ok"] == json!(false) {
            assert_eq!(r["code"], json!("no_such_room"), "{r}");
            return Vec::new();
        }
        names(&r["room"]["members"])
    }
}

/// A `login` request with [`PASSWORD`] announcing `tcp` and `udp`.
pub fn login_req(username: &str, tcp: u16, udp: u16) -> Value {
    json!({
        "op": "login", "username": username, "password": PASSWORD,
        "tcp_port": tcp, "udp_port": udp,
    })
}

/// A user logged in over a raw connection, with no peer behind it (its
/// announced ports may be anyone's); optionally kept online by heartbeats.
/// Dropping it stops the heartbeats and closes the connection.
pub struct Session {
    pub client: Client,
    pub token: String,
    /// The registry's heartbeat address, from the login reply.
    pub heartbeat_to: SocketAddr,
    heartbeats: Option<Heartbeater>,
}

impl Session {
    /// Registers `username` (unless it exists) and logs it in, announcing
    /// `tcp_port` and `udp_port`.
    /// The session registers [`raw_identity`](super::rooms::raw_identity)'s
    /// keys: signed room datagrams from it use them.
    pub fn login(registry: SocketAddr, username: &str, tcp_port: u16, udp_port: u16) -> Session {
        let mut req = login_req(username, tcp_port, udp_port);
        let keys = super::rooms::raw_identity().wire();
        req["keys"] = json!({"sign": keys.sign, "kx": keys.kx});
        Session::login_with(registry, username, req)
    }

    /// Registers `username` (unless it exists) and logs it in with the
    /// `login` request `req` (e.g. [`login_req`] with `keys` added).
    pub fn login_with(registry: SocketAddr, username: &str, req: Value) -> Session {
        let mut client = Client::to(registry);
        let r = client.request(json!({
            "op": "register", "username": username, "password": PASSWORD,
        }));
        assert!(
            r["ok"] == true || r["code"] == "user_exists",
            "register {username}: {r}"
        );
        let r = client.ok(req);
        let token = r["token"].as_str().expect("token").to_string();
        let hb_port = r["heartbeat_port"].as_u64().expect("heartbeat_port") as u16;
        Session {
            client,
            token,
            heartbeat_to: SocketAddr::new(registry.ip(), hb_port),
            heartbeats: None,
        }
    }

    /// Keeps the session online with UDP heartbeats every `every`.
    pub fn with_heartbeats(mut self, every: Duration) -> Session {
        self.heartbeats = Some(Heartbeater::for_token(
            self.heartbeat_to,
            &self.token,
            every,
        ));
        self
    }

    /// A request on the session's connection, with its token added (unless
    /// given) to every op but `register` and `login`.
    pub fn request(&mut self, mut req: Value) -> Value {
        let op = req["op"].as_str().unwrap_or_default();
        if req.get("token").is_none() && op != "register" && op != "login" {
            req["token"] = json!(self.token);
        }
        self.client.request(req)
    }

    /// A request that must succeed.
    pub fn ok(&mut self, req: Value) -> Value {
        let v = self.request(req.clone());
        assert_eq!(v["ok"], json!(true), "{req} failed: {v}");
        v
    }
}

/// Whether the other side has closed `s` (non-blocking; `false` when it is
/// open and quiet).
pub fn is_closed(s: &TcpStream) -> bool {
    s.set_nonblocking(true).expect("nonblocking");
    let mut b = [0u8; 1];
    let r = s.peek(&mut b);
    s.set_nonblocking(false).expect("blocking");
    match r {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    }
}

/// Usernames from a JSON array of user objects.
pub fn names(users: &Value) -> Vec<String> {
    users
        .as_array()
        .expect("array of users")
        .iter()
        .map(|u| u["username"].as_str().expect("username").to_string())
        .collect()
}

/// Error replies carry exactly id, ok:false, code and message.
pub fn assert_error_shape(reply: &Value) {
    if reply["ok"] != json!(false) {
        return;
    }
    let obj = reply.as_object().expect("reply object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "id", "message", "ok"], "{reply}");
    assert!(
        reply["code"].is_string() && reply["message"].is_string(),
        "{reply}"
    );
}

pub fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `b` as text, cut after 300 characters.
pub fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.chars().count() > 300 {
        let head: String = s.chars().take(300).collect();
        format!("{head}… ({} bytes)", b.len())
    } else {
        s.into_owned()
    }
}

/// A TCP connection from a chosen source IPv4 address.
fn tcp_connect_from(src: Ipv4Addr, dst: SocketAddrV4) -> io::Result<TcpStream> {
    fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
        libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: a.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            },
            sin_zero: [0; 8],
        }
    }
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor we own; on success it is
    // handed to TcpStream, which closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let s = sockaddr(SocketAddrV4::new(src, 0));
        if libc::bind(fd, (&s as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        let d = sockaddr(dst);
        if libc::connect(fd, (&d as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stream)
    }
}
