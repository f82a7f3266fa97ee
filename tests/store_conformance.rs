//! One conformance suite for every [`Store`] backend: each `case_*` function
//! states part of the trait's contract, and `conformance!` runs it as a test
//! on the embedded (SQLite) backend, on MongoDB (see `support::mongo_uri`)
//! and on the in-memory backend.

mod kit;
#[path = "store_conformance/lookups.rs"]
mod lookups;
#[path = "store_conformance/roles.rs"]
mod roles;
#[path = "store_conformance/roomkeys.rs"]
mod roomkeys;
#[path = "store_conformance/social.rs"]
mod social;
use lookups::*;
use roles::*;
use roomkeys::*;
use social::*;

#[cfg(feature = "mongodb")]
use kit::mongo as support;

use lanchat::registry::store::embedded::SqliteStore;
#[cfg(feature = "mongodb")]
use lanchat::registry::store::mongo::MongoStore;
use lanchat::registry::store::{
    Endpoint, Left, PeerKeys, RoomRecord, SessionRecord, Store, StoreError, UserRecord,
};
#[cfg(feature = "mongodb")]
use std::time::{Duration, Instant};

// ---- fixtures ----

fn user(name: &str) -> UserRecord {
    UserRecord {
        username: name.into(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${name}"),
        created_ms: 1_700_000_000_000,
    }
}

/// A session of `name` with token hash `tok-<name>`.
fn session(name: &str, instance: &str, last_seen_ms: i64, attached: bool) -> SessionRecord {
    SessionRecord {
        token_hash: format!("tok-{name}"),
        username: name.into(),
        ip: "192.168.1.20".into(),
        tcp_port: 65535,
        udp_port: 1,
        last_seen_ms,
        instance: instance.into(),
        attached,
        created_ms: 1_700_000_000_000,
        away: None,
        keys: Some(keys('a')),
    }
}

/// Identity keys (the store keeps them as given; the registry checks them).
fn keys(digit: char) -> PeerKeys {
    PeerKeys {
        sign: digit.to_string().repeat(64),
        kx: "0".repeat(63) + &digit.to_string(),
    }
}

fn tok(name: &str) -> String {
    format!("tok-{name}")
}

fn room(name: &str) -> RoomRecord {
    RoomRecord {
        name: name.into(),
        key: "ab".repeat(32),
        epoch: 1,
        created_ms: 1_700_000_000_123,
        topic: None,
    }
}

/// `list_rooms` as (name, members) pairs.
fn listed(s: &dyn Store) -> Vec<(String, u64)> {
    let rooms = s.list_rooms().unwrap();
    rooms.into_iter().map(|r| (r.name, r.members)).collect()
}

fn names(sessions: &[SessionRecord]) -> Vec<&str> {
    sessions.iter().map(|s| s.username.as_str()).collect()
}

fn insert_all(s: &dyn Store, sessions: &[SessionRecord]) {
    for x in sessions {
        s.insert_session(x).unwrap();
    }
}

// ---- cases ----

fn case_backend_and_ping(s: &dyn Store) {
    assert!(["embedded", "mongodb", "memory"].contains(&s.backend()));
    s.ping().unwrap();
}

fn case_users(s: &dyn Store) {
    assert_eq!(s.find_user("alice").unwrap(), None);
    s.create_user(&user("alice")).unwrap();
    assert_eq!(s.find_user("alice").unwrap(), Some(user("alice")));
    let mut other = user("alice");
    other.password_hash = "different".into();
    assert_eq!(s.create_user(&other), Err(StoreError::Conflict));
    assert_eq!(s.find_user("alice").unwrap(), Some(user("alice")));
    s.create_user(&user("bob")).unwrap();
    assert_eq!(s.find_user("bob").unwrap(), Some(user("bob")));
    assert_eq!(
        s.find_user("Alice").unwrap(),
        None,
        "usernames are case-sensitive"
    );
}

fn case_session_insert_and_lookup(s: &dyn Store) {
    let a = session("alice", "reg-1", 1000, true);
    s.insert_session(&a).unwrap();
    assert_eq!(s.session_by_token(&tok("alice")).unwrap(), Some(a.clone()));
    assert_eq!(s.session_by_user("alice").unwrap(), Some(a.clone()));
    assert_eq!(s.session_by_token("nope").unwrap(), None);
    assert_eq!(s.session_by_user("bob").unwrap(), None);
    // One session per user.
    let mut again = session("alice", "reg-2", 2000, false);
    again.token_hash = "another".into();
    assert_eq!(s.insert_session(&again), Err(StoreError::Conflict));
    // One user per token hash.
    let mut clash = session("bob", "reg-1", 1000, true);
    clash.token_hash = tok("alice");
    assert_eq!(s.insert_session(&clash), Err(StoreError::Conflict));
    assert_eq!(s.session_by_user("alice").unwrap(), Some(a));
    assert_eq!(s.session_by_user("bob").unwrap(), None);
}

fn case_delete_session(s: &dyn Store) {
    s.insert_session(&session("alice", "reg-1", 1000, true))
        .unwrap();
    assert!(s.delete_session(&tok("alice")).unwrap());
    assert!(!s.delete_session(&tok("alice")).unwrap());
    assert!(!s.delete_session("unknown").unwrap());
    assert_eq!(s.session_by_token(&tok("alice")).unwrap(), None);
    assert_eq!(s.session_by_user("alice").unwrap(), None);
    // The user may start a new session afterwards.
    s.insert_session(&session("alice", "reg-2", 3000, true))
        .unwrap();
}

fn case_attach_session(s: &dyn Store) {
    s.insert_session(&session("alice", "reg-1", 1000, false))
        .unwrap();
    let ep = Endpoint {
        ip: "10.0.0.7".into(),
        tcp_port: 40000,
        udp_port: 40001,
        keys: Some(keys('b')),
    };
    assert!(s.attach_session(&tok("alice"), &ep, "reg-2", 5000).unwrap());
    let got = s.session_by_token(&tok("alice")).unwrap().unwrap();
    let want = SessionRecord {
        ip: "10.0.0.7".into(),
        tcp_port: 40000,
        udp_port: 40001,
        keys: Some(keys('b')),
        instance: "reg-2".into(),
        attached: true,
        last_seen_ms: 5000,
        ..session("alice", "reg-1", 1000, false)
    };
    assert_eq!(got, want);
    // Attaching an attached session moves it.
    assert!(s.attach_session(&tok("alice"), &ep, "reg-3", 6000).unwrap());
    let got = s.session_by_user("alice").unwrap().unwrap();
    assert_eq!(
        (got.instance.as_str(), got.last_seen_ms, got.attached),
        ("reg-3", 6000, true)
    );
    assert!(!s.attach_session("unknown", &ep, "reg-2", 5000).unwrap());
    assert_eq!(s.session_by_token("unknown").unwrap(), None);
}

fn case_detach_session(s: &dyn Store) {
    s.insert_session(&session("alice", "reg-1", 1000, true))
        .unwrap();
    // Another instance's connection closing does not detach it.
    assert!(!s.detach_session(&tok("alice"), "reg-2").unwrap());
    assert!(s.session_by_user("alice").unwrap().unwrap().attached);
    assert!(s.detach_session(&tok("alice"), "reg-1").unwrap());
    let got = s.session_by_user("alice").unwrap().unwrap();
    assert_eq!(
        got,
        session("alice", "reg-1", 1000, false),
        "only `attached` changes"
    );
    assert!(
        !s.detach_session(&tok("alice"), "reg-1").unwrap(),
        "already detached"
    );
    assert!(!s.detach_session("unknown", "reg-1").unwrap());
}

fn case_detach_if_stale(s: &dyn Store) {
    s.insert_session(&session("alice", "reg-1", 1000, true))
        .unwrap();
    // Not older than the threshold (the bound is exclusive).
    assert!(!s.detach_if_stale(&tok("alice"), 1000).unwrap());
    // A heartbeat wins the race.
    assert_eq!(s.touch_sessions(&[tok("alice")], 5000).unwrap(), 1);
    assert!(!s.detach_if_stale(&tok("alice"), 2000).unwrap());
    assert!(s.session_by_user("alice").unwrap().unwrap().attached);
    // Really stale.
    assert!(s.detach_if_stale(&tok("alice"), 5001).unwrap());
    let got = s.session_by_user("alice").unwrap().unwrap();
    assert!(!got.attached);
    assert_eq!(got.last_seen_ms, 5000);
    assert!(
        !s.detach_if_stale(&tok("alice"), 9999).unwrap(),
        "already detached"
    );
    assert!(!s.detach_if_stale("unknown", 9999).unwrap());
}

fn case_touch_sessions(s: &dyn Store) {
    insert_all(
        s,
        &[
            session("alice", "reg-1", 1000, true),
            session("bob", "reg-1", 1000, true),
            session("carol", "reg-2", 1000, true),
        ],
    );
    let n = s
        .touch_sessions(&[tok("alice"), "unknown".into(), tok("carol")], 7000)
        .unwrap();
    assert_eq!(n, 2, "unknown tokens are ignored");
    assert_eq!(
        s.session_by_user("alice").unwrap().unwrap().last_seen_ms,
        7000
    );
    assert_eq!(
        s.session_by_user("bob").unwrap().unwrap().last_seen_ms,
        1000
    );
    assert_eq!(
        s.session_by_user("carol").unwrap().unwrap().last_seen_ms,
        7000
    );
    // Touching with the same time again still counts the matches.
    assert_eq!(s.touch_sessions(&[tok("alice")], 7000).unwrap(), 1);
    // A token listed twice is one session.
    assert_eq!(
        s.touch_sessions(&[tok("bob"), tok("bob")], 8000).unwrap(),
        1
    );
    assert_eq!(s.touch_sessions(&[], 9000).unwrap(), 0);
    assert_eq!(s.touch_sessions(&["unknown".into()], 9000).unwrap(), 0);
    // A late batch (a retried write, or another registry's older batch)
    // never moves last_seen back: heartbeats are idempotent and monotonic.
    assert_eq!(s.touch_sessions(&[tok("alice")], 3000).unwrap(), 1);
    assert_eq!(
        s.session_by_user("alice").unwrap().unwrap().last_seen_ms,
        7000
    );
}

fn case_online_sessions(s: &dyn Store) {
    insert_all(
        s,
        &[
            session("zed", "reg-1", 5000, true),
            session("bob", "reg-1", 1000, true),    // stale
            session("carol", "reg-2", 9000, false), // detached
            session("alice", "reg-2", 6000, true),
            session("dave", "reg-1", 4000, true), // exactly at the bound
        ],
    );
    let online = s.online_sessions(4000).unwrap();
    assert_eq!(names(&online), ["alice", "dave", "zed"]);
    assert_eq!(online[0], session("alice", "reg-2", 6000, true));
    assert_eq!(
        names(&s.online_sessions(0).unwrap()),
        ["alice", "bob", "dave", "zed"]
    );
    assert!(s.online_sessions(10_000).unwrap().is_empty());
}

fn case_stale_sessions(s: &dyn Store) {
    insert_all(
        s,
        &[
            session("zed", "reg-1", 1000, true),
            session("bob", "reg-2", 2000, true),
            session("carol", "reg-1", 500, false), // detached
            session("alice", "reg-1", 3000, true), // exactly at the bound
            session("dave", "reg-1", 9000, true),
        ],
    );
    let mut stale = s.stale_sessions(3000).unwrap();
    stale.sort_by(|a, b| a.username.cmp(&b.username));
    assert_eq!(names(&stale), ["bob", "zed"]);
    assert_eq!(stale[1], session("zed", "reg-1", 1000, true));
    assert!(s.stale_sessions(1000).unwrap().is_empty());
}

fn case_purge_sessions(s: &dyn Store) {
    insert_all(
        s,
        &[
            session("old-detached", "reg-1", 1000, false),
            session("old-detached-2", "reg-2", 1500, false),
            session("at-bound", "reg-1", 2000, false),
            session("new-detached", "reg-1", 9000, false),
            session("old-attached", "reg-1", 1000, true),
        ],
    );
    assert_eq!(s.purge_sessions(2000).unwrap(), 2);
    assert_eq!(s.session_by_user("old-detached").unwrap(), None);
    assert_eq!(s.session_by_token(&tok("old-detached-2")).unwrap(), None);
    for kept in ["at-bound", "new-detached", "old-attached"] {
        assert!(
            s.session_by_user(kept).unwrap().is_some(),
            "{kept} was purged"
        );
    }
    assert_eq!(s.purge_sessions(2000).unwrap(), 0);
}

fn case_detach_instance(s: &dyn Store) {
    let a = session("alice", "reg-1", 1000, true);
    let c = session("carol", "reg-1", 2000, true);
    insert_all(
        s,
        &[
            c.clone(),
            a.clone(),
            session("bob", "reg-2", 1000, true),
            session("dora", "reg-1", 1000, false), // already detached
        ],
    );
    let mut gone = s.detach_instance("reg-1").unwrap();
    gone.sort_by(|x, y| x.username.cmp(&y.username));
    assert_eq!(gone, [a, c], "records as they were, still attached");
    for name in ["alice", "carol", "dora"] {
        assert!(
            !s.session_by_user(name).unwrap().unwrap().attached,
            "{name} still attached"
        );
    }
    assert!(s.session_by_user("bob").unwrap().unwrap().attached);
    assert!(s.detach_instance("reg-1").unwrap().is_empty());
    assert!(s.detach_instance("reg-9").unwrap().is_empty());
}

fn case_create_room(s: &dyn Store) {
    assert_eq!(s.find_room("lobby").unwrap(), None);
    s.create_room(&room("lobby"), "alice").unwrap();
    assert_eq!(s.find_room("lobby").unwrap(), Some(room("lobby")));
    assert_eq!(s.room_members("lobby").unwrap(), ["alice"]);
    let mut other = room("lobby");
    other.key = "cd".repeat(32);
    assert_eq!(s.create_room(&other, "bob"), Err(StoreError::Conflict));
    assert_eq!(
        s.find_room("lobby").unwrap(),
        Some(room("lobby")),
        "key unchanged"
    );
    assert_eq!(
        s.room_members("lobby").unwrap(),
        ["alice"],
        "loser not added"
    );
    assert!(s.rooms_of("bob").unwrap().is_empty());
}

fn case_add_member(s: &dyn Store) {
    s.create_room(&room("lobby"), "mallory").unwrap();
    s.add_member("lobby", "bob").unwrap();
    s.add_member("lobby", "bob").unwrap(); // idempotent
    s.add_member("lobby", "mallory").unwrap(); // the creator too
    s.add_member("lobby", "aaron").unwrap();
    assert_eq!(
        s.room_members("lobby").unwrap(),
        ["aaron", "bob", "mallory"]
    );
    assert_eq!(s.add_member("nowhere", "bob"), Err(StoreError::NotFound));
    assert_eq!(s.find_room("nowhere").unwrap(), None);
    assert!(s.room_members("nowhere").unwrap().is_empty());
    assert_eq!(s.rooms_of("bob").unwrap(), ["lobby"]);
    assert_eq!(listed(s), [("lobby".to_string(), 3)]);
}

fn case_remove_member(s: &dyn Store) {
    let kept = Left {
        removed: true,
        room_deleted: false,
    };
    let nothing = Left {
        removed: false,
        room_deleted: false,
    };
    s.create_room(&room("lobby"), "alice").unwrap();
    s.add_member("lobby", "bob").unwrap();
    let k2 = "cd".repeat(32);
    // Removing nobody changes no key.
    assert_eq!(s.remove_member("lobby", "carol", &k2).unwrap(), nothing);
    assert_eq!(s.remove_member("nowhere", "alice", &k2).unwrap(), nothing);
    assert_eq!(s.find_room("lobby").unwrap(), Some(room("lobby")));
    // A member out, the room on: a new key, one epoch on.
    assert_eq!(s.remove_member("lobby", "alice", &k2).unwrap(), kept);
    assert_eq!(
        s.remove_member("lobby", "alice", &"ef".repeat(32)).unwrap(),
        nothing
    );
    assert_eq!(s.room_members("lobby").unwrap(), ["bob"]);
    let rekeyed = RoomRecord {
        key: k2.clone(),
        epoch: 2,
        ..room("lobby")
    };
    assert_eq!(s.find_room("lobby").unwrap(), Some(rekeyed));
    // The last one out deletes the room.
    let last = s.remove_member("lobby", "bob", &k2).unwrap();
    assert_eq!(
        last,
        Left {
            removed: true,
            room_deleted: true
        }
    );
    assert_eq!(s.find_room("lobby").unwrap(), None);
    assert!(s.room_members("lobby").unwrap().is_empty());
    assert!(s.list_rooms().unwrap().is_empty());
    assert_eq!(s.add_member("lobby", "bob"), Err(StoreError::NotFound));
    // The name is free again.
    let mut again = room("lobby");
    again.key = "ef".repeat(32);
    s.create_room(&again, "carol").unwrap();
    assert_eq!(s.find_room("lobby").unwrap(), Some(again));
    assert_eq!(s.room_members("lobby").unwrap(), ["carol"]);
}

fn case_list_rooms_and_rooms_of(s: &dyn Store) {
    assert!(s.list_rooms().unwrap().is_empty());
    s.create_room(&room("rust"), "bob").unwrap();
    s.create_room(&room("general"), "carol").unwrap();
    s.create_room(&room("music"), "bob").unwrap();
    s.add_member("rust", "alice").unwrap();
    s.add_member("rust", "carol").unwrap();
    s.add_member("general", "bob").unwrap();
    let want = [("general", 2), ("music", 1), ("rust", 3)].map(|(n, c)| (n.to_string(), c));
    assert_eq!(listed(s), want);
    assert_eq!(s.rooms_of("bob").unwrap(), ["general", "music", "rust"]);
    assert_eq!(s.rooms_of("carol").unwrap(), ["general", "rust"]);
    assert_eq!(s.rooms_of("alice").unwrap(), ["rust"]);
    assert!(s.rooms_of("nobody").unwrap().is_empty());
    assert_eq!(s.room_members("rust").unwrap(), ["alice", "bob", "carol"]);
}

/// Everything survives closing and reopening the same database.
fn case_reopen(open: &dyn Fn() -> Box<dyn Store>) {
    {
        let s = open();
        s.create_user(&user("alice")).unwrap();
        s.insert_session(&session("alice", "reg-1", 4242, true))
            .unwrap();
        s.create_room(&room("lobby"), "alice").unwrap();
        s.add_member("lobby", "bob").unwrap();
    }
    let s = open();
    assert_eq!(s.find_user("alice").unwrap(), Some(user("alice")));
    assert_eq!(
        s.session_by_token(&tok("alice")).unwrap(),
        Some(session("alice", "reg-1", 4242, true))
    );
    assert_eq!(s.find_room("lobby").unwrap(), Some(room("lobby")));
    assert_eq!(s.room_members("lobby").unwrap(), ["alice", "bob"]);
    // Uniqueness still holds.
    assert_eq!(s.create_user(&user("alice")), Err(StoreError::Conflict));
    let mut again = session("alice", "reg-2", 1, false);
    again.token_hash = "other".into();
    assert_eq!(s.insert_session(&again), Err(StoreError::Conflict));
    assert_eq!(
        s.create_room(&room("lobby"), "carol"),
        Err(StoreError::Conflict)
    );
}

// ---- backends ----

/// Opens (and reopens) one fresh embedded database file.
struct Embedded {
    _dir: tempfile::TempDir,
    path: String,
}

impl Embedded {
    fn new() -> Embedded {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db").to_str().unwrap().to_string();
        Embedded { _dir: dir, path }
    }

    fn open(&self) -> Box<dyn Store> {
        Box::new(SqliteStore::open(&self.path).expect("open embedded store"))
    }
}

#[cfg(feature = "mongodb")]
fn mongo_open(uri: &str) -> Box<dyn Store> {
    Box::new(MongoStore::connect(uri).expect("connect to MongoDB"))
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(#[test]
            fn $case() {
                super::$case(&*super::Embedded::new().open());
            })*

            #[test]
            fn case_reopen() {
                let db = super::Embedded::new();
                super::case_reopen(&|| db.open());
            }
        }

        #[cfg(feature = "mongodb")]
        mod mongodb {
            $(#[test]
            fn $case() {
                super::$case(&*super::mongo_open(&super::support::mongo_uri(stringify!($case))));
            })*

            #[test]
            fn case_reopen() {
                let uri = super::support::mongo_uri("reopen");
                super::case_reopen(&|| super::mongo_open(&uri));
            }
        }

        mod memory {
            $(#[test]
            fn $case() {
                super::$case(&lanchat::registry::store::memory::MemoryStore::new());
            })*

            /// "Reopening" is a second handle on the same data.
            #[test]
            fn case_reopen() {
                let db = lanchat::registry::store::memory::MemoryStore::new();
                super::case_reopen(&|| Box::new(db.clone()));
            }
        }
    };
}

conformance!(
    case_backend_and_ping,
    case_users,
    case_session_insert_and_lookup,
    case_delete_session,
    case_attach_session,
    case_detach_session,
    case_detach_if_stale,
    case_touch_sessions,
    case_online_sessions,
    case_stale_sessions,
    case_purge_sessions,
    case_detach_instance,
    case_create_room,
    case_add_member,
    case_remove_member,
    case_list_rooms_and_rooms_of,
    case_find_user_with_session,
    case_online_page,
    case_members_with_sessions,
    case_topics,
    case_away,
    case_room_policy,
    case_announcements,
    case_swap_room_key,
);

// ---- MongoDB only (feature `mongodb`): the server goes away and comes back ----

#[cfg(feature = "mongodb")]
fn assert_unavailable<T: std::fmt::Debug>(what: &str, r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "{what}: expected Unavailable, got {r:?}"
    );
}

/// Calls `f` until it succeeds (the driver rediscovers a restarted server
/// within its server selection timeout; allow a few rounds).
#[cfg(feature = "mongodb")]
fn eventually<T>(what: &str, f: impl Fn() -> Result<T, StoreError>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => panic!("{what}: still failing: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[cfg(feature = "mongodb")]
#[test]
fn mongodb_unreachable_is_unavailable() {
    let uri = format!("mongodb://127.0.0.1:{}/lanchat_down", support::free_port());
    let t = Instant::now();
    let s = MongoStore::connect(&uri).expect("connect must not need the server");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "connect took {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    assert_unavailable("ping", s.ping());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "ping took {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    assert_unavailable("find_user", s.find_user("alice"));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "find_user took {:?}",
        t.elapsed()
    );
    assert_unavailable("create_user", s.create_user(&user("alice")));
}

#[cfg(feature = "mongodb")]
#[test]
fn mongodb_server_restart() {
    let server = support::nx_server_start(&support::fresh_dir("restart"));
    let s = MongoStore::connect(&server.uri("lanchat_restart")).unwrap();
    s.create_user(&user("alice")).unwrap();
    s.create_room(&room("lobby"), "alice").unwrap();

    server.kill();
    let t = Instant::now();
    assert_unavailable("ping while down", s.ping());
    assert_unavailable("find_user while down", s.find_user("alice"));
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "two calls took {:?}",
        t.elapsed()
    );
    // A store connected while the server is down gets its indexes later.
    let late = MongoStore::connect(&server.uri("lanchat_late")).unwrap();
    assert_unavailable("late ping", late.ping());

    server.restart();
    eventually("ping after restart", || s.ping());
    assert_eq!(s.find_user("alice").unwrap(), Some(user("alice")));
    assert_eq!(s.room_members("lobby").unwrap(), ["alice"]);
    assert_eq!(s.create_user(&user("alice")), Err(StoreError::Conflict));
    s.create_user(&user("bob")).unwrap();

    eventually("late ping after restart", || late.ping());
    late.create_user(&user("carol")).unwrap();
    assert_eq!(late.create_user(&user("carol")), Err(StoreError::Conflict));
    late.create_room(&room("lobby"), "carol").unwrap();
    assert_eq!(
        late.create_room(&room("lobby"), "dave"),
        Err(StoreError::Conflict)
    );
}

/// A room an older registry wrote to MongoDB before key epochs (no `epoch`
/// field, a registry-made key) reads as epoch 0 and takes `room_key`s.
#[cfg(feature = "mongodb")]
#[test]
fn mongodb_room_without_an_epoch_takes_room_keys() {
    use ::mongodb::bson::{doc, Document};
    let uri = support::mongo_uri("no_epoch");
    let s = MongoStore::connect(&uri).unwrap();
    let client = ::mongodb::sync::Client::with_uri_str(&uri).unwrap();
    let rooms = client
        .default_database()
        .expect("a database in the URI")
        .collection::<Document>("rooms");
    let old = "ab".repeat(32);
    rooms
        .insert_one(doc! {"name": "old", "key": &old, "created_ms": 1_i64})
        .run()
        .unwrap();
    assert_eq!(s.find_room("old").unwrap().unwrap().epoch, 0);
    assert!(!s.swap_room_key("old", 1, &old, "x").unwrap());
    assert!(s.swap_room_key("old", 0, &old, "x").unwrap());
    assert_eq!(s.find_room("old").unwrap().unwrap().key, "x");
}
