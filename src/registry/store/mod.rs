//! Persistent state of the registry: users, sessions and rooms.
//!
//! [`Store`] is the one interface the handlers use; the backends below and
//! [`memory::MemoryStore`] implement it and pass the same conformance suite
//! (`tests/store_conformance.rs`):
//!
//! - [`embedded::SqliteStore`]: SQLite in WAL mode, the default, nothing to install;
//! - `mongo::MongoStore`: MongoDB through the official driver's sync API,
//!   built with the cargo feature `mongodb` (on by default).
//!
//! Everything that must survive a registry restart, or be shared by several
//! registry processes using one database, lives here. Operations that must be
//! race-free across processes (one session per user, one room per name, one
//! membership per user and room) rest on unique indexes, not on locks held in
//! one process.
//!
//! [`memory::MemoryStore`] keeps everything in maps in memory and forgets it
//! on exit: a store for tests (`--store memory`), with the same contract.

pub mod embedded;
#[cfg(feature = "mongodb")]
pub mod mongo;

pub mod counting;
pub mod memory;
pub mod roomkeys;

pub use crate::protocol::messages::PeerKeys;
use std::fmt;
use std::sync::Arc;

/// A registered account. `password_hash` is an Argon2id PHC string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub username: String,
    pub password_hash: String,
    pub created_ms: i64,
}

/// A session: at most one per user. The token itself is never stored, only
/// its SHA-256 (`token_hash`), so a copy of the database cannot act as anyone.
///
/// A session is *online* while it is `attached` to a registry connection and
/// its `last_seen_ms` (last heartbeat) is recent. A detached session stays
/// resumable by its token until it is purged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub token_hash: String,
    pub username: String,
    pub ip: String,
    pub tcp_port: u16,
    pub udp_port: u16,
    pub last_seen_ms: i64,
    /// The registry instance whose connection the session is attached to.
    pub instance: String,
    pub attached: bool,
    pub created_ms: i64,
    /// The away message (`set_away`); `None` when the user is not away.
    pub away: Option<String>,
    /// The public identity keys this session logged in (or last resumed)
    /// with; `None` for a version-1 peer that sent none.
    pub keys: Option<PeerKeys>,
}

/// A chat room. `key` holds the current `epoch`'s sealed room keys (see
/// [`roomkeys::RoomKeys`]), `""` while the epoch has none; the epoch is 1 at
/// creation and one more each time a member is removed (the packages are
/// then cleared: the members make a new key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    pub name: String,
    pub key: String,
    pub epoch: u64,
    pub created_ms: i64,
    /// The topic (`set_topic`); `None` when the room has none.
    pub topic: Option<Topic>,
}

/// A room's topic and the member who set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub text: String,
    pub by: String,
}

/// One line of [`Store::list_rooms`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomListing {
    pub name: String,
    pub members: u64,
    pub topic: Option<String>,
}

/// Where a session's peer can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: String,
    pub tcp_port: u16,
    pub udp_port: u16,
    /// The identity keys that go with the address (checked well-formed).
    pub keys: Option<PeerKeys>,
}

/// What leaving a room did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Left {
    /// The user was a member and is not any more.
    pub removed: bool,
    /// The user was the last member, so the room is gone.
    pub room_deleted: bool,
}

/// Which page of the online list to read (see [`Store::online_page`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineQuery<'a> {
    /// Online means attached with `last_seen_ms >= fresh_since_ms`.
    pub fresh_since_ms: i64,
    /// Only usernames that start with this (empty: every one). Usernames
    /// are ASCII below `0x7f`, which the backends rely on for the range
    /// `prefix <= username < prefix + "\x7f"`.
    pub prefix: &'a str,
    /// Only usernames after this one (the last of the previous page).
    pub after: Option<&'a str>,
    /// At most this many sessions.
    pub limit: usize,
}

impl OnlineQuery<'_> {
    /// The exclusive upper bound of the prefix range.
    pub fn prefix_end(&self) -> String {
        format!("{}\u{7f}", self.prefix)
    }
}

/// One page of the online list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlinePage {
    /// At most `limit` sessions, by username.
    pub sessions: Vec<SessionRecord>,
    /// Whether more online sessions follow this page.
    pub more: bool,
    /// How many online sessions match the prefix (on every page, not only
    /// after the cursor).
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A unique key is taken (username, a user's session, a room name).
    Conflict,
    /// The thing the operation needs (a room) does not exist.
    NotFound,
    /// The database cannot be reached right now.
    Unavailable(String),
    /// Anything else the database reported.
    Other(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Conflict => f.write_str("already exists"),
            StoreError::NotFound => f.write_str("not found"),
            StoreError::Unavailable(m) => write!(f, "store unavailable: {m}"),
            StoreError::Other(m) => write!(f, "store error: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

pub type StoreResult<T> = Result<T, StoreError>;

/// The `--store` value that selects [`memory::MemoryStore`].
pub const MEMORY: &str = "memory";

/// `memory`, or else a path to the embedded database file.
fn open_local(spec: &str) -> StoreResult<Arc<dyn Store>> {
    if spec == MEMORY {
        Ok(Arc::new(memory::MemoryStore::new()))
    } else {
        Ok(Arc::new(embedded::SqliteStore::open(spec)?))
    }
}

/// The registry's persistent state. Implementations are shared by every
/// client thread (`Send + Sync`) and must be safe under concurrent calls.
pub trait Store: Send + Sync {
    /// A short name for logs: `"embedded"` or `"mongodb"`.
    fn backend(&self) -> &'static str;

    /// Checks that the database answers (and creates indexes if they were
    /// not created yet because it was down at start).
    fn ping(&self) -> StoreResult<()>;

    // ---- users ----

    /// Inserts a user; `Conflict` if the username is taken.
    fn create_user(&self, user: &UserRecord) -> StoreResult<()>;
    fn find_user(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// A user and their session if they have one, in one request to the
    /// database (a join); `None` if there is no such user.
    fn find_user_with_session(
        &self,
        username: &str,
    ) -> StoreResult<Option<(UserRecord, Option<SessionRecord>)>>;

    // ---- sessions ----

    /// Inserts a session; `Conflict` if the user already has one.
    fn insert_session(&self, session: &SessionRecord) -> StoreResult<()>;
    fn session_by_token(&self, token_hash: &str) -> StoreResult<Option<SessionRecord>>;
    fn session_by_user(&self, username: &str) -> StoreResult<Option<SessionRecord>>;
    /// Deletes a session; true if it existed.
    fn delete_session(&self, token_hash: &str) -> StoreResult<bool>;
    /// Attaches a session to `instance` with a new endpoint and
    /// `last_seen_ms = now_ms`; false if the session does not exist.
    fn attach_session(
        &self,
        token_hash: &str,
        endpoint: &Endpoint,
        instance: &str,
        now_ms: i64,
    ) -> StoreResult<bool>;
    /// Detaches a session, but only if it is attached to `instance` (so a
    /// connection closing on one registry never takes down the session that
    /// moved to another); true if it was detached.
    fn detach_session(&self, token_hash: &str, instance: &str) -> StoreResult<bool>;
    /// Detaches an attached session whose last heartbeat is older than
    /// `stale_before_ms`; true if it did (false if a heartbeat won the race).
    fn detach_if_stale(&self, token_hash: &str, stale_before_ms: i64) -> StoreResult<bool>;
    /// Detaches every session attached to `instance`; returns their records
    /// as they were.
    fn detach_instance(&self, instance: &str) -> StoreResult<Vec<SessionRecord>>;
    /// Raises `last_seen_ms` to `now_ms` on the sessions with these token
    /// hashes, never lowering it, so a batch applied twice or late (a retried
    /// write, another registry's older batch) changes nothing; unknown ones
    /// are ignored. Returns how many matched.
    fn touch_sessions(&self, token_hashes: &[String], now_ms: i64) -> StoreResult<u64>;
    /// Attached sessions with `last_seen_ms >= fresh_since_ms`, by username.
    fn online_sessions(&self, fresh_since_ms: i64) -> StoreResult<Vec<SessionRecord>>;
    /// One page of the online sessions, by username, with the count of all
    /// that match the prefix: one query to the database.
    fn online_page(&self, q: &OnlineQuery<'_>) -> StoreResult<OnlinePage>;
    /// Attached sessions with `last_seen_ms < stale_before_ms`.
    fn stale_sessions(&self, stale_before_ms: i64) -> StoreResult<Vec<SessionRecord>>;
    /// Deletes detached sessions with `last_seen_ms < before_ms`; returns how many.
    fn purge_sessions(&self, before_ms: i64) -> StoreResult<u64>;

    // ---- rooms ----

    /// Creates a room with `creator` as its only member; `Conflict` if the
    /// name is taken.
    fn create_room(&self, room: &RoomRecord, creator: &str) -> StoreResult<()>;
    fn find_room(&self, name: &str) -> StoreResult<Option<RoomRecord>>;
    /// Adds a member (idempotent); `NotFound` if the room does not exist.
    fn add_member(&self, room: &str, username: &str) -> StoreResult<()>;
    /// Removes a member; deletes the room when it was the last one, and
    /// otherwise gives it `new_key` (the registry passes `""`: no packages)
    /// under the next epoch, so the one who left is sealed no key of it. (Embedded and
    /// in-memory stores do both in one transaction; on MongoDB the key
    /// changes first and the membership right after, so a failure between
    /// the two leaves the member listed, never removed under the old key.)
    fn remove_member(&self, room: &str, username: &str, new_key: &str) -> StoreResult<Left>;
    /// Sets a room's `key` to `new`, but only if the room exists at `epoch`
    /// with `key` still `old` (a compare-and-swap); true iff it was updated.
    fn swap_room_key(&self, room: &str, epoch: u64, old: &str, new: &str) -> StoreResult<bool>;
    /// Usernames of a room's members, sorted.
    fn room_members(&self, room: &str) -> StoreResult<Vec<String>>;
    /// A room's members, sorted, each with their session if they have one,
    /// in one request to the database (a join).
    fn members_with_sessions(
        &self,
        room: &str,
    ) -> StoreResult<Vec<(String, Option<SessionRecord>)>>;
    /// Every room with its member count and topic, sorted by name.
    fn list_rooms(&self) -> StoreResult<Vec<RoomListing>>;
    /// Names of the rooms a user is in, sorted.
    fn rooms_of(&self, username: &str) -> StoreResult<Vec<String>>;

    // ---- topics and away messages ----

    /// Sets the topic of `room` to `text` as set by `by` (an empty `text`
    /// clears it), but only if `by` is a member; false when the room does
    /// not exist or `by` is not in it.
    fn set_topic(&self, room: &str, by: &str, text: &str) -> StoreResult<bool>;
    /// Sets a session's away message (empty: not away); false if the
    /// session does not exist.
    fn set_away(&self, token_hash: &str, away: &str) -> StoreResult<bool>;

    // ---- room roles and announcements (see `service/roles.rs`) ----

    /// A room's policy (owner, operators, bans, lock, password: a JSON
    /// document the store does not look into) and its version; `None`
    /// when the room has none.
    fn room_policy(&self, room: &str) -> StoreResult<Option<(String, u64)>>;
    /// Writes the policy of `room` as version `expected + 1`, but only if
    /// the stored version is still `expected` (0: none stored); false when
    /// another write came first (the caller reads again and retries).
    fn put_room_policy(&self, room: &str, doc: &str, expected: u64) -> StoreResult<bool>;
    /// Deletes a room's policy (the room is gone); no error if none.
    fn delete_room_policy(&self, room: &str) -> StoreResult<()>;
    /// Stores an announcement under the next id (increasing across every
    /// registry that shares the store) and keeps only the last
    /// [`KEPT_ANNOUNCEMENTS`].
    fn add_announcement(&self, by: &str, text: &str, at_ms: i64) -> StoreResult<Announcement>;
    /// The announcements with an id above `after`, oldest first, at most
    /// `limit`.
    fn announcements_after(&self, after: u64, limit: usize) -> StoreResult<Vec<Announcement>>;
}

/// How many announcements a store keeps (older ones are deleted).
pub const KEPT_ANNOUNCEMENTS: u64 = 100;

pub use crate::protocol::Announcement;

/// Opens the store named on the command line: a `mongodb://` or
/// `mongodb+srv://` URI, `memory` (a store that lives and dies with the
/// process), or else a path to the embedded database file.
pub fn open(spec: &str) -> StoreResult<Arc<dyn Store>> {
    if spec.starts_with("mongodb://") || spec.starts_with("mongodb+srv://") {
        open_mongodb(spec)
    } else {
        open_local(spec)
    }
}

#[cfg(feature = "mongodb")]
fn open_mongodb(uri: &str) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(mongo::MongoStore::connect(uri)?))
}

#[cfg(not(feature = "mongodb"))]
fn open_mongodb(_uri: &str) -> StoreResult<Arc<dyn Store>> {
    Err(StoreError::Other(
        "this registry was built without MongoDB support (cargo feature `mongodb`); \
         rebuild with default features, or give a file path for the embedded store"
            .into(),
    ))
}

#[cfg(all(test, not(feature = "mongodb")))]
mod tests {
    #[test]
    fn mongodb_uri_without_the_feature_says_so() {
        let e = super::open("mongodb://127.0.0.1:1/x")
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("built without MongoDB support")),
            "{e:?}"
        );
    }
}
