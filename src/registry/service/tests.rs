//! Every handler of [`Registry`], in process: the in-memory store, a manual
//! clock, and connections that are only a [`Conn`]. No sockets, no sleeps.

use super::*;
use crate::registry::clock::ManualClock;
use crate::registry::presence;
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
        let reg = Registry::with_clock(
            Arc::new(store.clone()),
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
            ReplyBody::User { user } => user,
            other => panic!("search reply: {other:?}"),
        }
    }

    fn is_online(&self, c: &mut Conn, token: &str, name: &str) -> bool {
        self.search(c, token, name).online
    }

    fn room(&self, c: &mut Conn, req: Request) -> RoomInfo {
        match self.ok(c, req) {
            ReplyBody::Room { room } => room,
            other => panic!("room reply: {other:?}"),
        }
    }

    fn rooms(&self, c: &mut Conn, token: &str) -> Vec<(String, u64)> {
        match self.ok(c, rooms(token)) {
            ReplyBody::Rooms { rooms } => rooms.into_iter().map(|r| (r.name, r.members)).collect(),
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
    }
}

fn search(token: &str, username: &str) -> Request {
    Request::Search {
        token: token.into(),
        username: username.into(),
    }
}

fn online(token: &str) -> Request {
    Request::Online {
        token: token.into(),
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
        "create_room" => Request::CreateRoom { token, room },
        "join_room" => Request::JoinRoom { token, room },
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

// ---- validation ----

#[test]
fn register_checks_username_and_password() {
    let mut t = T::new();
    let mut c = t.conn();
    let long = "a".repeat(33);
    for bad in [
        "ab",
        "Alice",
        "_bob",
        "bob!",
        "ünï",
        "a b",
        "",
        long.as_str(),
    ] {
        assert_eq!(
            t.err(&mut c, register(bad, PW)),
            ErrorCode::InvalidUsername,
            "{bad:?}"
        );
    }
    let long = "p".repeat(1025);
    for weak in ["", "1234567", "ünïcödé", long.as_str()] {
        assert_eq!(
            t.err(&mut c, register("alice", weak)),
            ErrorCode::WeakPassword,
            "{weak:?}"
        );
    }
    t.register(&["abc", &"a".repeat(32), "0.z_-"]);
    t.ok(&mut c, register("longpw", &"p".repeat(1024)));
    t.ok(&mut c, register("short", "12345678"));
    t.register(&["alice"]);
    assert_eq!(
        t.err(&mut c, register("alice", "another password")),
        ErrorCode::UserExists
    );
    // The first password still works.
    t.login(&mut c, "alice", 7001);
}

#[test]
fn login_and_resume_check_the_address() {
    let mut t = T::new();
    t.register(&["alice"]);
    let mut c = t.conn();
    let mut bad = vec![login("alice", PW, 0), login_at("alice", PW, 7001, 0, None)];
    for adv in ["not-an-ip", "", "256.1.1.1", "10.0.0.1:80", "example.com"] {
        bad.push(login_at("alice", PW, 7001, 7002, Some(adv)));
    }
    // Six of them: none may count as a failed login.
    for req in bad {
        assert_eq!(t.err(&mut c, req), ErrorCode::InvalidAddress);
    }
    let token = t.login(&mut c, "alice", 7001);
    t.reg.disconnected(&c);
    let mut d = t.conn();
    assert_eq!(
        t.err(&mut d, resume_at(&token, 0, 1, None)),
        ErrorCode::InvalidAddress
    );
    assert_eq!(
        t.err(&mut d, resume_at(&token, 1, 2, Some("x"))),
        ErrorCode::InvalidAddress
    );
}

#[test]
fn addresses_advertised_or_seen() {
    let mut t = T::new();
    t.register(&["alice", "bob", "carol"]);
    let mut a = t.conn_at("::ffff:10.0.0.5");
    let ta = t.login(&mut a, "alice", 7001);
    let mut b = t.conn();
    t.ok(&mut b, login_at("bob", PW, 8001, 8002, Some("fd00::7")));
    let mut c = t.conn();
    t.ok(
        &mut c,
        login_at("carol", PW, 9001, 9002, Some("::ffff:192.168.5.6")),
    );
    // An IPv4 client on a dual-stack socket is shown as plain IPv4.
    assert_eq!(
        t.search(&mut a, &ta, "alice").address,
        address("10.0.0.5", 7001)
    );
    assert_eq!(
        t.search(&mut a, &ta, "bob").address,
        address("fd00::7", 8001)
    );
    assert_eq!(
        t.search(&mut a, &ta, "carol").address,
        address("192.168.5.6", 9001)
    );
}

#[test]
fn invalid_credentials_tell_nothing_apart() {
    let mut t = T::new();
    t.register(&["alice"]);
    let mut c = t.conn();
    let errors: Vec<ApiError> = [
        login("alice", "wrong password", 7001),
        login("nobody", PW, 7001),
        login("No Such!", PW, 7001),
    ]
    .into_iter()
    .map(|r| t.call(&mut c, r).unwrap_err())
    .collect();
    for e in &errors {
        assert_eq!(
            (e.code, &e.message),
            (ErrorCode::InvalidCredentials, &errors[0].message)
        );
    }
    t.login(&mut c, "alice", 7001);
}

#[test]
fn failed_logins_are_rate_limited_until_the_block_ends() {
    let mut t = T::new();
    t.register(&["alice", "bob"]);
    let mut c = t.conn();
    for _ in 0..5 {
        assert_eq!(
            t.err(&mut c, login("alice", "wrong password", 7001)),
            ErrorCode::InvalidCredentials
        );
    }
    // Refused before the password is looked at: per username, from anywhere...
    assert_eq!(
        t.err(&mut c, login("alice", PW, 7001)),
        ErrorCode::RateLimited
    );
    let mut elsewhere = t.conn_at("127.0.0.2");
    assert_eq!(
        t.err(&mut elsewhere, login("alice", PW, 7001)),
        ErrorCode::RateLimited
    );
    // ...and per address, for anyone.
    assert_eq!(
        t.err(&mut c, login("bob", PW, 8001)),
        ErrorCode::RateLimited
    );
    t.login(&mut elsewhere, "bob", 8001);
    // The block lasts 60 s.
    t.clock.advance(Duration::from_secs(59));
    assert_eq!(
        t.err(&mut c, login("alice", PW, 7001)),
        ErrorCode::RateLimited
    );
    t.clock.advance(Duration::from_secs(2));
    // bob's heartbeats stopped long ago; only alice is checked here.
    t.login(&mut c, "alice", 7001);
}

#[test]
fn room_names_are_checked_by_every_room_op() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let long = "r".repeat(33);
    for bad in ["", "Lab", "a b", "lab!", "läb", "a.b", long.as_str()] {
        for op in ROOM_OPS {
            assert_eq!(
                t.err(&mut a, room_op(op, &ta, bad)),
                ErrorCode::InvalidRoomName,
                "{op} {bad:?}"
            );
        }
    }
    for good in ["r", &"r".repeat(32), "lab_1-x"] {
        t.room(&mut a, room_op("create_room", &ta, good));
    }
}

#[test]
fn search_finds_only_registered_users() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    t.register(&["carol"]);
    for who in ["nobody", "Alice", "x", "", "../etc"] {
        assert_eq!(
            t.err(&mut a, search(&ta, who)),
            ErrorCode::UserNotFound,
            "{who:?}"
        );
    }
    // Registered, never logged in: offline, no address.
    assert_eq!(
        t.search(&mut a, &ta, "carol"),
        UserInfo {
            username: "carol".into(),
            online: false,
            address: None
        }
    );
}

// ---- authorisation ----

#[test]
fn every_op_needs_a_live_session() {
    let mut t = T::new();
    let mut c = t.conn();
    let bogus = "0".repeat(64);
    for token in [bogus.as_str(), "", &"x".repeat(5000)] {
        for req in authed_ops(token) {
            assert_eq!(t.err(&mut c, req), ErrorCode::InvalidSession);
        }
        assert_eq!(
            t.err(&mut c, resume(token, 7001)),
            ErrorCode::InvalidSession
        );
    }
    // A token is dead after logout, for every op and for resume.
    let (mut a, ta) = t.user("alice", 7001);
    t.ok(&mut a, logout(&ta));
    for req in authed_ops(&ta) {
        assert_eq!(t.err(&mut a, req), ErrorCode::InvalidSession);
    }
    assert_eq!(t.err(&mut c, resume(&ta, 7001)), ErrorCode::InvalidSession);
}

#[test]
fn nobody_acts_as_another_user() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (mut b, tb) = t.user("bob", 8001);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    let mut anon = t.conn();
    for req in authed_ops(&ta) {
        assert_eq!(
            t.err(&mut b, req.clone()),
            ErrorCode::NotYourSession,
            "{req:?}"
        );
        assert_eq!(
            t.err(&mut anon, req.clone()),
            ErrorCode::NotYourSession,
            "{req:?}"
        );
    }
    // Nor can bob move her session onto his logged-in connection.
    assert_eq!(t.err(&mut b, resume(&ta, 6666)), ErrorCode::AlreadyOnline);
    assert_eq!(t.err(&mut a, logout(&tb)), ErrorCode::NotYourSession);
    // Alice is untouched: online where she was, alone in her room.
    assert_eq!(
        t.search(&mut b, &tb, "alice").address,
        address("127.0.0.1", 7001)
    );
    assert_eq!(t.rooms(&mut b, &tb), [("lab".to_string(), 1)]);
    t.ok(&mut a, heartbeat(&ta));
}

// ---- sessions ----

#[test]
fn login_reply_and_online_list() {
    let mut t = T::new();
    t.register(&["zed", "amy", "mia", "bob"]);
    let mut c = t.conn();
    let reply = t.ok(&mut c, login("zed", PW, 7000));
    let ReplyBody::Session(s) = reply else {
        panic!("{reply:?}")
    };
    assert!(is_hex64(&s.token), "{}", s.token);
    assert_eq!(
        s,
        SessionReply {
            username: "zed".into(),
            token: s.token.clone(),
            address: address("127.0.0.1", 7000).unwrap(),
            heartbeat_interval_ms: 1000,
            session_timeout_ms: 3000,
            heartbeat_port: HB_PORT,
        }
    );
    // The store keeps the token's hash, never the token.
    assert!(t.store.session_by_token(&s.token).unwrap().is_none());
    assert!(t
        .store
        .session_by_token(&auth::token_hash(&s.token))
        .unwrap()
        .is_some());
    for (i, n) in ["mia", "amy"].iter().enumerate() {
        let mut c = t.conn();
        t.login(&mut c, n, 7010 + 10 * i as u16);
    }
    let ReplyBody::Users { users } = t.ok(&mut c, online(&s.token)) else {
        panic!()
    };
    assert_eq!(names(&users), ["amy", "mia", "zed"]);
    assert_eq!(users[0].address, address("127.0.0.1", 7020));
}

#[test]
fn one_live_session_per_user_and_per_connection() {
    let mut t = T::new();
    t.register(&["bob"]);
    let (mut a, ta) = t.user("alice", 7001);
    let mut a2 = t.conn();
    // Not a failed login: never rate limited.
    for _ in 0..6 {
        assert_eq!(
            t.err(&mut a2, login("alice", PW, 7101)),
            ErrorCode::AlreadyOnline
        );
    }
    assert_eq!(
        t.err(&mut a, login("alice", PW, 7001)),
        ErrorCode::AlreadyOnline
    );
    assert_eq!(
        t.err(&mut a, login("bob", PW, 8001)),
        ErrorCode::AlreadyOnline
    );
    assert_eq!(
        t.search(&mut a, &ta, "alice").address,
        address("127.0.0.1", 7001)
    );
    t.ok(&mut a, logout(&ta));
    t.login(&mut a2, "alice", 7101);
}

#[test]
fn logout_ends_the_session_and_leaves_rooms() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (mut b, tb) = t.user("bob", 8001);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    assert_eq!(t.ok(&mut a, logout(&ta)), ReplyBody::Empty {});
    assert!(!t.is_online(&mut b, &tb, "alice"));
    assert_eq!(t.rooms(&mut b, &tb), []);
    // The same connection may log in again, with a new token.
    let ta2 = t.login(&mut a, "alice", 7001);
    assert_ne!(ta, ta2);
    assert!(t.is_online(&mut b, &tb, "alice"));
}

#[test]
fn closed_connection_goes_offline_and_resumes_elsewhere() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (mut b, tb) = t.user("bob", 8001);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    t.room(&mut b, room_op("join_room", &tb, "lab"));
    t.reg.disconnected(&a);
    assert!(!t.is_online(&mut b, &tb, "alice"));
    assert_eq!(t.rooms(&mut b, &tb), [("lab".to_string(), 1)]);

    t.clock.advance(ms(2000));
    let mut a2 = t.conn();
    let ReplyBody::Session(s) = t.ok(&mut a2, resume(&ta, 7101)) else {
        panic!()
    };
    assert_eq!(
        (s.token.as_str(), s.username.as_str()),
        (ta.as_str(), "alice")
    );
    assert_eq!(Some(s.address), address("127.0.0.1", 7101));
    assert_eq!(
        t.search(&mut b, &tb, "alice").address,
        address("127.0.0.1", 7101)
    );
    t.ok(&mut a2, online(&ta));
    // The old connection is no longer bound to it.
    assert_eq!(t.err(&mut a, logout(&ta)), ErrorCode::NotYourSession);
}

#[test]
fn a_session_resumed_elsewhere_survives_its_old_connection() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (mut b, tb) = t.user("bob", 8001);
    // Resume while the first connection is still open: the session moves.
    let mut a2 = t.conn();
    t.ok(&mut a2, resume(&ta, 7101));
    assert_eq!(t.err(&mut a, heartbeat(&ta)), ErrorCode::NotYourSession);
    t.reg.disconnected(&a);
    assert!(t.is_online(&mut b, &tb, "alice"));
    t.ok(&mut a2, heartbeat(&ta));
    // Resuming on the connection that already holds it is fine too.
    t.ok(&mut a2, resume(&ta, 7201));
    assert_eq!(
        t.search(&mut b, &tb, "alice").address,
        address("127.0.0.1", 7201)
    );
}

#[test]
fn heartbeats_keep_a_session_online_until_they_stop() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (mut b, tb) = t.user("bob", 8001);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    t.room(&mut b, room_op("join_room", &tb, "lab"));
    for _ in 0..5 {
        t.clock.advance(ms(2000));
        t.heartbeat(&mut a, &ta);
        t.heartbeat(&mut b, &tb);
        assert_eq!(t.reg.sweep_stale().unwrap(), 0);
    }
    // Bob goes on; alice stops. At exactly the time-out she is still online.
    t.clock.advance(ms(2000));
    t.heartbeat(&mut b, &tb);
    t.clock.advance(ms(1000));
    assert!(t.is_online(&mut b, &tb, "alice"));
    assert_eq!(t.reg.sweep_stale().unwrap(), 0);
    t.clock.advance(ms(1));
    // Offline from now, even before the sweep takes her out of her rooms.
    assert!(!t.is_online(&mut b, &tb, "alice"));
    let ReplyBody::Users { users } = t.ok(&mut b, online(&tb)) else {
        panic!()
    };
    assert_eq!(names(&users), ["bob"]);
    let lab = t.room(&mut b, room_op("members", &tb, "lab"));
    assert_eq!(
        lab.members[0],
        UserInfo {
            username: "alice".into(),
            online: false,
            address: None
        }
    );
    assert_eq!(t.err(&mut a, heartbeat(&ta)), ErrorCode::InvalidSession);
    assert_eq!(t.reg.sweep_stale().unwrap(), 1);
    assert_eq!(t.reg.sweep_stale().unwrap(), 0);
    assert_eq!(t.rooms(&mut b, &tb), [("lab".to_string(), 1)]);
    // Her session can be resumed (here on the same connection).
    t.ok(&mut a, resume(&ta, 7001));
    assert!(t.is_online(&mut b, &tb, "alice"));
}

#[test]
fn udp_heartbeat_datagrams_count_and_garbage_does_not() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (mut b, tb) = t.user("bob", 8001);
    let datagram = format!(r#"{{"op":"heartbeat","token":"{ta}"}}"#);
    for _ in 0..3 {
        t.clock.advance(ms(2000));
        t.reg.presence.datagram(datagram.as_bytes());
        t.reg.presence.datagram(b"\xff garbage");
        t.reg.presence.datagram(br#"{"op":"login","token":"x"}"#);
        t.ok(&mut b, heartbeat(&tb));
        assert!(presence::flush(&t.reg));
        assert_eq!(t.reg.sweep_stale().unwrap(), 0);
    }
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(t.reg.presence.heartbeats.load(Relaxed), 3);
    assert_eq!(t.reg.presence.garbage.load(Relaxed), 6);
    assert!(t.is_online(&mut a, &ta, "alice"));
}

#[test]
fn a_timed_out_session_gives_way_to_a_new_login() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    t.clock.advance(ms(3001));
    // Before any sweep: a login elsewhere replaces it, and leaves its rooms.
    let mut a2 = t.conn();
    let ta2 = t.login(&mut a2, "alice", 7101);
    assert_eq!(t.err(&mut a, heartbeat(&ta)), ErrorCode::InvalidSession);
    assert_eq!(t.rooms(&mut a2, &ta2), []);
    // And on the connection it timed out on, logging in again works.
    t.clock.advance(ms(3001));
    t.login(&mut a2, "alice", 7201);
}

#[test]
fn offline_sessions_are_purged_after_the_grace_period() {
    let mut t = T::new();
    let (a, ta) = t.user("alice", 7001);
    let (_b, _tb) = t.user("bob", 8001);
    t.reg.disconnected(&a);
    t.clock.advance(GRACE);
    assert_eq!(t.reg.purge_old().unwrap(), 0);
    t.clock.advance(ms(1));
    // Only the detached one: bob is still attached, though silent.
    assert_eq!(t.reg.purge_old().unwrap(), 1);
    let mut c = t.conn();
    assert_eq!(t.err(&mut c, resume(&ta, 7001)), ErrorCode::InvalidSession);
}

#[test]
fn a_restarted_instance_takes_its_old_sessions_offline() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    // Another registry's session, in the same store.
    let mut other = t.store.session_by_user("alice").unwrap().unwrap();
    other.username = "bob".into();
    other.token_hash = "elsewhere".into();
    other.instance = "test-2".into();
    t.store.insert_session(&other).unwrap();
    assert_eq!(t.reg.detach_own_sessions().unwrap(), 1);
    assert!(!t.store.session_by_user("alice").unwrap().unwrap().attached);
    assert!(t.store.session_by_user("bob").unwrap().unwrap().attached);
    assert!(t.store.find_room("lab").unwrap().is_none());
}

#[test]
fn a_store_that_is_down_answers_store_unavailable() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    t.ok(&mut a, heartbeat(&ta));
    t.store.set_unavailable(true);
    let mut c = t.conn();
    assert_eq!(
        t.err(&mut c, register("bob", PW)),
        ErrorCode::StoreUnavailable
    );
    assert_eq!(
        t.err(&mut c, login("alice", PW, 7001)),
        ErrorCode::StoreUnavailable
    );
    assert_eq!(t.err(&mut a, online(&ta)), ErrorCode::StoreUnavailable);
    // Heartbeats are kept for the next batch, and nobody is swept meanwhile.
    assert!(!presence::flush(&t.reg));
    assert!(t.reg.sweep_stale().is_err());
    t.clock.advance(ms(2000));
    t.store.set_unavailable(false);
    t.ok(&mut a, heartbeat(&ta));
    assert!(presence::flush(&t.reg));
    t.clock.advance(ms(2000));
    assert!(t.is_online(&mut a, &ta, "alice"));
}

// ---- rooms ----

#[test]
fn room_lifecycle() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (mut b, tb) = t.user("bob", 8001);
    let (mut c, tc) = t.user("carol", 9001);
    let alice = UserInfo {
        username: "alice".into(),
        online: true,
        address: address("127.0.0.1", 7001),
    };
    let bob = UserInfo {
        username: "bob".into(),
        online: true,
        address: address("127.0.0.1", 8001),
    };

    // The creator is the only member and is told the key.
    let lab = t.room(&mut a, room_op("create_room", &ta, "lab"));
    let key = lab.key.clone().unwrap();
    assert!(is_hex64(&key), "{key}");
    assert_eq!(
        lab,
        RoomInfo {
            name: "lab".into(),
            key: Some(key.clone()),
            members: vec![alice.clone()]
        }
    );
    // Joining gives the same key and the members with their addresses; again is harmless.
    let joined = RoomInfo {
        name: "lab".into(),
        key: Some(key.clone()),
        members: vec![alice, bob],
    };
    assert_eq!(t.room(&mut b, room_op("join_room", &tb, "lab")), joined);
    assert_eq!(t.room(&mut b, room_op("join_room", &tb, "lab")), joined);
    // A non-member sees the members but not the key.
    let seen = t.room(&mut c, room_op("members", &tc, "lab"));
    assert_eq!(
        seen,
        RoomInfo {
            key: None,
            ..joined.clone()
        }
    );
    assert_eq!(t.room(&mut a, room_op("members", &ta, "lab")), joined);

    let den = t.room(&mut c, room_op("create_room", &tc, "den"));
    assert_ne!(den.key, Some(key.clone()), "each room has its own key");
    assert_eq!(
        t.rooms(&mut b, &tb),
        [("den".to_string(), 1), ("lab".to_string(), 2)]
    );

    // Deleted only when the last member leaves; then the name is free again.
    let left = |room: &str, deleted| ReplyBody::Left {
        room: room.into(),
        deleted,
    };
    assert_eq!(
        t.ok(&mut a, room_op("leave_room", &ta, "lab")),
        left("lab", false)
    );
    assert_eq!(
        names(&t.room(&mut c, room_op("members", &tc, "lab")).members),
        ["bob"]
    );
    assert_eq!(
        t.ok(&mut b, room_op("leave_room", &tb, "lab")),
        left("lab", true)
    );
    assert_eq!(t.rooms(&mut b, &tb), [("den".to_string(), 1)]);
    let again = t.room(&mut a, room_op("create_room", &ta, "lab"));
    assert_ne!(again.key, Some(key), "a new room gets a new key");
}

#[test]
fn room_errors() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (mut b, tb) = t.user("bob", 8001);
    t.room(&mut a, room_op("create_room", &ta, "lab"));
    assert_eq!(
        t.err(&mut a, room_op("create_room", &ta, "lab")),
        ErrorCode::RoomExists
    );
    assert_eq!(
        t.err(&mut b, room_op("create_room", &tb, "lab")),
        ErrorCode::RoomExists
    );
    for op in ["join_room", "leave_room", "members"] {
        assert_eq!(
            t.err(&mut b, room_op(op, &tb, "nope")),
            ErrorCode::NoSuchRoom,
            "{op}"
        );
    }
    assert_eq!(
        t.err(&mut b, room_op("leave_room", &tb, "lab")),
        ErrorCode::NotAMember
    );
    t.room(&mut b, room_op("join_room", &tb, "lab"));
    t.ok(&mut b, room_op("leave_room", &tb, "lab"));
    assert_eq!(
        t.err(&mut b, room_op("leave_room", &tb, "lab")),
        ErrorCode::NotAMember
    );
    t.ok(&mut a, room_op("leave_room", &ta, "lab"));
    for op in ["leave_room", "members", "join_room"] {
        assert_eq!(
            t.err(&mut a, room_op(op, &ta, "lab")),
            ErrorCode::NoSuchRoom,
            "{op}"
        );
    }
}
