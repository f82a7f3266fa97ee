//! Every handler of [`Registry`], in process: the in-memory store, a manual
//! clock, and connections that are only a [`Conn`]. No sockets, no sleeps.
//! This module holds the fixture ([`T`]) and request builders; the tests
//! are in `validation`, `authorisation`, `sessions` and `rooms`.

mod authorisation;
mod costs;
mod online;
mod roles;
mod roomkeys;
mod rooms;
mod sessions;
mod validation;

use super::*;
use crate::registry::clock::ManualClock;
use crate::registry::presence;
use crate::registry::store::counting::CountingStore;
use crate::registry::store::memory::MemoryStore;

const PW: &str = "correct horse battery";
const TIMEOUT: Duration = Duration::from_secs(3);
const GRACE: Duration = Duration::from_secs(600);
const INSTANCE: &str = "test-1";
const HB_PORT: u16 = 15600;

/// A registry on a fresh memory store and a manual clock.
struct T {
    reg: Registry,
    clock: Arc<ManualClock>,
    store: MemoryStore,
    /// Calls the registry made to `store`.
    counts: CountingStore,
    next_conn: u64,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl T {
    fn new() -> T {
        let config = Config {
            heartbeat_interval: Duration::from_secs(1),
            session_timeout: TIMEOUT,
            resume_grace: GRACE,
            hash_concurrency: 1,
            // Cheap hashes: these tests are about the handlers, not Argon2.
            argon2_m_kib: 64,
            argon2_passes: 1,
            ..Config::default()
        };
        let clock = Arc::new(ManualClock::default());
        let store = MemoryStore::new();
        let counts = CountingStore::new(Arc::new(store.clone()));
        let reg = Registry::with_clock(
            Arc::new(counts.clone()),
            config,
            INSTANCE.into(),
            HB_PORT,
            clock.clone(),
        )
        .unwrap();
        T {
            reg,
            clock,
            store,
            counts,
            next_conn: 1,
        }
    }

    fn conn_at(&mut self, ip: &str) -> Conn {
        self.next_conn += 1;
        Conn {
            id: self.next_conn,
            ip: ip.parse().unwrap(),
            session: None,
        }
    }

    fn conn(&mut self) -> Conn {
        self.conn_at("127.0.0.1")
    }

    fn call(&self, c: &mut Conn, req: Request) -> Result<ReplyBody, ApiError> {
        self.reg.handle(c, req)
    }

    fn ok(&self, c: &mut Conn, req: Request) -> ReplyBody {
        let what = format!("{req:?}");
        self.call(c, req)
            .unwrap_or_else(|e| panic!("{what}: {e:?}"))
    }

    fn err(&self, c: &mut Conn, req: Request) -> ErrorCode {
        let what = format!("{req:?}");
        match self.call(c, req) {
            Ok(r) => panic!("{what}: expected an error, got {r:?}"),
            Err(e) => e.code,
        }
    }

    fn register(&mut self, names: &[&str]) {
        let mut c = self.conn();
        for n in names {
            assert_eq!(
                self.ok(&mut c, register(n, PW)),
                ReplyBody::Registered {
                    username: n.to_string()
                }
            );
        }
    }

    /// Logs `name` in on `c` with TCP port `port`; returns the token.
    fn login(&self, c: &mut Conn, name: &str, port: u16) -> String {
        match self.ok(c, login(name, PW, port)) {
            ReplyBody::Session(s) => s.token,
            other => panic!("login reply: {other:?}"),
        }
    }

    /// A registered user logged in on a connection of their own.
    fn user(&mut self, name: &str, port: u16) -> (Conn, String) {
        self.register(&[name]);
        let mut c = self.conn();
        let t = self.login(&mut c, name, port);
        (c, t)
    }

    fn search(&self, c: &mut Conn, token: &str, name: &str) -> UserInfo {
        match self.ok(c, search(token, name)) {
            ReplyBody::User { user, .. } => user,
            other => panic!("search reply: {other:?}"),
        }
    }

    fn is_online(&self, c: &mut Conn, token: &str, name: &str) -> bool {
        self.search(c, token, name).online
    }

    fn room(&self, c: &mut Conn, req: Request) -> RoomInfo {
        match self.ok(c, req) {
            ReplyBody::Room { room, .. } => room,
            other => panic!("room reply: {other:?}"),
        }
    }

    fn rooms(&self, c: &mut Conn, token: &str) -> Vec<(String, u64)> {
        match self.ok(c, rooms(token)) {
            ReplyBody::Rooms { rooms, .. } => {
                rooms.into_iter().map(|r| (r.name, r.members)).collect()
            }
            other => panic!("rooms reply: {other:?}"),
        }
    }

    /// One heartbeat request, written to the store as the presence thread would.
    fn heartbeat(&self, c: &mut Conn, token: &str) {
        assert_eq!(self.ok(c, heartbeat(token)), ReplyBody::Empty {});
        assert!(presence::flush(&self.reg));
    }
}

// ---- requests ----

fn register(username: &str, password: &str) -> Request {
    Request::Register {
        username: username.into(),
        password: password.into(),
    }
}

fn login_at(username: &str, password: &str, tcp: u16, udp: u16, adv: Option<&str>) -> Request {
    Request::Login {
        keys: None,
        username: username.into(),
        password: password.into(),
        tcp_port: tcp,
        udp_port: udp,
        advertise_ip: adv.map(Into::into),
    }
}

fn login(username: &str, password: &str, tcp: u16) -> Request {
    login_at(username, password, tcp, tcp + 1, None)
}

fn resume_at(token: &str, tcp: u16, udp: u16, adv: Option<&str>) -> Request {
    Request::Resume {
        keys: None,
        token: token.into(),
        tcp_port: tcp,
        udp_port: udp,
        advertise_ip: adv.map(Into::into),
    }
}

fn resume(token: &str, tcp: u16) -> Request {
    resume_at(token, tcp, tcp + 1, None)
}

fn logout(token: &str) -> Request {
    Request::Logout {
        token: token.into(),
    }
}

fn heartbeat(token: &str) -> Request {
    Request::Heartbeat {
        token: token.into(),
        announcements_after: None,
    }
}

fn search(token: &str, username: &str) -> Request {
    Request::Search {
        token: token.into(),
        username: username.into(),
    }
}

fn online(token: &str) -> Request {
    online_page(token, None, None, None)
}

fn online_page(
    token: &str,
    limit: Option<u64>,
    after: Option<&str>,
    prefix: Option<&str>,
) -> Request {
    Request::Online {
        token: token.into(),
        limit,
        after: after.map(Into::into),
        prefix: prefix.map(Into::into),
    }
}

fn rooms(token: &str) -> Request {
    Request::Rooms {
        token: token.into(),
    }
}

/// `create_room`, `join_room`, `leave_room` or `members`.
fn room_op(op: &str, token: &str, room: &str) -> Request {
    let (token, room) = (token.to_string(), room.to_string());
    match op {
        "create_room" => Request::CreateRoom {
            token,
            room,
            password: None,
        },
        "join_room" => Request::JoinRoom {
            token,
            room,
            password: None,
        },
        "leave_room" => Request::LeaveRoom { token, room },
        "members" => Request::Members { token, room },
        _ => unreachable!("{op}"),
    }
}

const ROOM_OPS: [&str; 4] = ["create_room", "join_room", "leave_room", "members"];

/// Every op that needs a session, on `token`.
fn authed_ops(token: &str) -> Vec<Request> {
    let mut v = vec![
        logout(token),
        heartbeat(token),
        search(token, "alice"),
        online(token),
        rooms(token),
        Request::SetTopic {
            token: token.into(),
            room: "lab".into(),
            topic: "t".into(),
        },
        Request::SetAway {
            token: token.into(),
            away: "a".into(),
        },
    ];
    v.extend(ROOM_OPS.map(|op| room_op(op, token, "lab")));
    v
}

fn address(ip: &str, tcp: u16) -> Option<Address> {
    Some(Address {
        ip: ip.into(),
        tcp_port: tcp,
        udp_port: tcp + 1,
    })
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn names(users: &[UserInfo]) -> Vec<&str> {
    users.iter().map(|u| u.username.as_str()).collect()
}
