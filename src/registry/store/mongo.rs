//! MongoDB backend, through the official driver's blocking (`sync`) API.
//!
//! Four collections in the URI's default database (else `lanchat`), one
//! document per record, integers as int64 (ports as int32):
//!
//! - `users`: unique `username`;
//! - `sessions`: unique `username`, unique `token_hash`, `instance`, `last_seen_ms`;
//! - `rooms`: unique `name`;
//! - `members` (`room`, `username`): unique `(room, username)`, `username`;
//! - `room_policies`, `announcements`, `counters`: see `mongo/roles.rs`.
//!
//! Uniqueness is enforced by the server's unique indexes, so several
//! registries may share one database. Connecting never waits for the server:
//! when it is down the store answers [`StoreError::Unavailable`] (after the
//! 2 s server selection timeout) and recovers by itself once it is back; the
//! indexes are created at connect time if the server answers, and otherwise
//! by the first [`Store::ping`] or uniqueness-dependent write that reaches it.

use super::*;
use mongodb::bson::{doc, Document};
use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::sync::{Client, Collection, Database};
use mongodb::IndexModel;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod docs;
mod lookups;
mod roles;
mod social;
use docs::*;

type Coll = Collection<Document>;

const DEFAULT_DB: &str = "lanchat";
const TIMEOUT: Duration = Duration::from_secs(2);
const DUPLICATE_KEY: i32 = 11000;
/// Server codes meaning "shutting down / recovering / not primary" or (from
/// a mongos) "cannot reach the shard": the data cannot be served right now.
const UNAVAILABLE_CODES: [i32; 12] = [
    11600, 11602, 13436, 189, 91, 10107, 13435, 10058, 6, 7, 89, 9001,
];

/// The MongoDB-backed [`Store`]. Cheap to share: the driver's `Client` is a
/// handle to a connection pool, safe for concurrent use.
pub struct MongoStore {
    db: Database,
    users: Coll,
    sessions: Coll,
    rooms: Coll,
    members: Coll,
    /// Set once every index exists; until then writes (and `ping`) retry.
    indexes_ready: AtomicBool,
}

impl MongoStore {
    /// Builds a client for `uri`. Fails only on a malformed URI or options,
    /// never because the server is unreachable.
    pub fn connect(uri: &str) -> StoreResult<MongoStore> {
        let opts = client_options(uri)?;
        let db_name = opts.default_database.clone();
        let db_name = db_name.unwrap_or_else(|| DEFAULT_DB.into());
        let client = ok(Client::with_options(opts))?;
        let db = client.database(&db_name);
        let store = MongoStore {
            users: db.collection("users"),
            sessions: db.collection("sessions"),
            rooms: db.collection("rooms"),
            members: db.collection("members"),
            db,
            indexes_ready: AtomicBool::new(false),
        };
        if let Err(e) = store.ensure_indexes() {
            log::warn!("mongodb: indexes not created yet ({e}); will retry");
        }
        Ok(store)
    }

    /// Creates the indexes unless that was already done. Idempotent on the
    /// server side, so concurrent first calls are harmless.
    fn ensure_indexes(&self) -> StoreResult<()> {
        if self.indexes_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let idx = |keys: Document, unique: bool| {
            let opts = IndexOptions::builder()
                .unique(unique.then_some(true))
                .build();
            IndexModel::builder().keys(keys).options(opts).build()
        };
        let plan = [
            (&self.users, doc! {"username": 1}, true),
            (&self.sessions, doc! {"username": 1}, true),
            (&self.sessions, doc! {"token_hash": 1}, true),
            (&self.sessions, doc! {"instance": 1}, false),
            (&self.sessions, doc! {"last_seen_ms": 1}, false),
            (&self.rooms, doc! {"name": 1}, true),
            (&self.members, doc! {"room": 1, "username": 1}, true),
            (&self.members, doc! {"username": 1}, false),
            (&self.db.collection("announcements"), doc! {"n": 1}, true),
        ];
        for (coll, keys, unique) in plan {
            ok(coll.create_index(idx(keys, unique)).run())?;
        }
        self.indexes_ready.store(true, Ordering::Release);
        Ok(())
    }

    fn find_one(&self, coll: &Coll, filter: Document) -> StoreResult<Option<Document>> {
        ok(coll.find_one(filter).run())
    }

    fn find_all(&self, coll: &Coll, filter: Document) -> StoreResult<Vec<Document>> {
        ok(coll.find(filter).run())?.map(ok).collect()
    }

    fn session_where(&self, filter: Document) -> StoreResult<Option<SessionRecord>> {
        let found = self.find_one(&self.sessions, filter)?;
        found.as_ref().map(session_from).transpose()
    }

    /// The matching sessions, by username.
    fn sessions_where(&self, filter: Document) -> StoreResult<Vec<SessionRecord>> {
        let mut out = all(self.find_all(&self.sessions, filter)?, session_from)?;
        out.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(out)
    }

    /// `$set`s fields on the first (or every) matching session; returns how
    /// many matched (whether or not a value changed).
    fn set_sessions(&self, filter: Document, set: Document, many: bool) -> StoreResult<u64> {
        let (coll, update) = (&self.sessions, doc! {"$set": set});
        let r = if many {
            ok(coll.update_many(filter, update).run())?
        } else {
            ok(coll.update_one(filter, update).run())?
        };
        Ok(r.matched_count)
    }

    fn delete_one(&self, coll: &Coll, filter: Document) -> StoreResult<bool> {
        Ok(ok(coll.delete_one(filter).run())?.deleted_count > 0)
    }

    /// The sorted values of `field` in the `members` documents matching `filter`.
    fn member_field(&self, filter: Document, field: &str) -> StoreResult<Vec<String>> {
        let mut out = all(self.find_all(&self.members, filter)?, |d| get_str(d, field))?;
        out.sort();
        Ok(out)
    }

    fn insert(&self, coll: &Coll, d: Document) -> StoreResult<()> {
        self.ensure_indexes()?;
        ok(coll.insert_one(d).run()).map(drop)
    }

    /// Inserts a membership; an existing one counts as success.
    fn insert_member(&self, room: &str, username: &str) -> StoreResult<()> {
        match self.insert(&self.members, doc! {"room": room, "username": username}) {
            Err(StoreError::Conflict) => Ok(()),
            r => r,
        }
    }

    fn count_members(&self, room: &str) -> StoreResult<u64> {
        ok(self.members.count_documents(doc! {"room": room}).run())
    }
}

/// The URI's options, with our defaults where it gives none: 2 s to find a
/// server and to connect, and the application's name.
fn client_options(uri: &str) -> StoreResult<ClientOptions> {
    let mut opts = ok(ClientOptions::parse(uri).run())?;
    opts.server_selection_timeout.get_or_insert(TIMEOUT);
    opts.connect_timeout.get_or_insert(TIMEOUT);
    opts.app_name
        .get_or_insert_with(|| "lanchat-registry".into());
    Ok(opts)
}

fn ok<T>(r: mongodb::error::Result<T>) -> StoreResult<T> {
    r.map_err(map_err)
}

fn all<T>(docs: Vec<Document>, f: impl Fn(&Document) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    docs.iter().map(f).collect()
}

/// Maps a driver error: duplicate key -> `Conflict`; cannot reach or use the
/// server -> `Unavailable`; anything else -> `Other`.
fn map_err(e: MongoError) -> StoreError {
    let code = match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::InsertMany(m) => {
            let mut codes = m.write_errors.iter().flatten().map(|w| w.code);
            codes.find(|&c| c == DUPLICATE_KEY)
        }
        ErrorKind::BulkWrite(b) => {
            let mut codes = b.write_errors.values().map(|w| w.code);
            codes.find(|&c| c == DUPLICATE_KEY)
        }
        _ => None,
    };
    let unreachable = matches!(
        &*e.kind,
        ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. }
            | ErrorKind::Shutdown
    );
    match code {
        Some(DUPLICATE_KEY) => StoreError::Conflict,
        Some(c) if UNAVAILABLE_CODES.contains(&c) => StoreError::Unavailable(e.kind.to_string()),
        _ if unreachable => StoreError::Unavailable(e.kind.to_string()),
        _ => StoreError::Other(e.kind.to_string()),
    }
}

impl Store for MongoStore {
    fn backend(&self) -> &'static str {
        "mongodb"
    }

    fn ping(&self) -> StoreResult<()> {
        self.ensure_indexes()?;
        ok(self.db.run_command(doc! {"ping": 1}).run()).map(drop)
    }

    fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        let d = doc! {
            "username": &user.username,
            "password_hash": &user.password_hash,
            "created_ms": user.created_ms,
        };
        self.insert(&self.users, d)
    }

    fn find_user(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let found = self.find_one(&self.users, doc! {"username": username})?;
        let user = |d: Document| {
            Ok(UserRecord {
                username: get_str(&d, "username")?,
                password_hash: get_str(&d, "password_hash")?,
                created_ms: get_i64(&d, "created_ms")?,
            })
        };
        found.map(user).transpose()
    }

    fn find_user_with_session(
        &self,
        username: &str,
    ) -> StoreResult<Option<(UserRecord, Option<SessionRecord>)>> {
        self.user_with_session(username)
    }

    fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        self.insert(&self.sessions, session_doc(session))
    }

    fn session_by_token(&self, token_hash: &str) -> StoreResult<Option<SessionRecord>> {
        self.session_where(doc! {"token_hash": token_hash})
    }

    fn session_by_user(&self, username: &str) -> StoreResult<Option<SessionRecord>> {
        self.session_where(doc! {"username": username})
    }

    fn delete_session(&self, token_hash: &str) -> StoreResult<bool> {
        self.delete_one(&self.sessions, doc! {"token_hash": token_hash})
    }

    fn attach_session(
        &self,
        token_hash: &str,
        endpoint: &Endpoint,
        instance: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let set = doc! {
            "ip": &endpoint.ip,
            "tcp_port": i32::from(endpoint.tcp_port),
            "udp_port": i32::from(endpoint.udp_port),
            "instance": instance,
            "attached": true,
            "last_seen_ms": now_ms,
            "sign_key": endpoint.keys.as_ref().map(|k| k.sign.as_str()),
            "kx_key": endpoint.keys.as_ref().map(|k| k.kx.as_str()),
        };
        Ok(self.set_sessions(doc! {"token_hash": token_hash}, set, false)? > 0)
    }

    fn detach_session(&self, token_hash: &str, instance: &str) -> StoreResult<bool> {
        let filter = doc! {"token_hash": token_hash, "instance": instance, "attached": true};
        Ok(self.set_sessions(filter, doc! {"attached": false}, false)? > 0)
    }

    fn detach_if_stale(&self, token_hash: &str, stale_before_ms: i64) -> StoreResult<bool> {
        let filter = doc! {
            "token_hash": token_hash,
            "attached": true,
            "last_seen_ms": {"$lt": stale_before_ms},
        };
        Ok(self.set_sessions(filter, doc! {"attached": false}, false)? > 0)
    }

    fn detach_instance(&self, instance: &str) -> StoreResult<Vec<SessionRecord>> {
        let filter = doc! {"instance": instance, "attached": true};
        let found = self.sessions_where(filter.clone())?;
        // A session that moves to another instance between the two calls no
        // longer matches the filter, so it stays attached where it went (and
        // is still reported here, which only costs a spurious notification).
        self.set_sessions(filter, doc! {"attached": false}, true)?;
        Ok(found)
    }

    fn touch_sessions(&self, token_hashes: &[String], now_ms: i64) -> StoreResult<u64> {
        if token_hashes.is_empty() {
            return Ok(0);
        }
        // `$max`, not `$set`: `updateMany` is not a retryable write, so the
        // registry re-sends a batch whose outcome it does not know; applied
        // twice, or after a newer batch from another registry, it is a no-op.
        let filter = doc! {"token_hash": {"$in": token_hashes}};
        let update = doc! {"$max": {"last_seen_ms": now_ms}};
        Ok(ok(self.sessions.update_many(filter, update).run())?.matched_count)
    }

    fn online_sessions(&self, fresh_since_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        self.sessions_where(doc! {"attached": true, "last_seen_ms": {"$gte": fresh_since_ms}})
    }

    fn online_page(&self, q: &OnlineQuery<'_>) -> StoreResult<OnlinePage> {
        self.online_page_facet(q)
    }

    fn stale_sessions(&self, stale_before_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        self.sessions_where(doc! {"attached": true, "last_seen_ms": {"$lt": stale_before_ms}})
    }

    fn purge_sessions(&self, before_ms: i64) -> StoreResult<u64> {
        let filter = doc! {"attached": false, "last_seen_ms": {"$lt": before_ms}};
        Ok(ok(self.sessions.delete_many(filter).run())?.deleted_count)
    }

    fn create_room(&self, room: &RoomRecord, creator: &str) -> StoreResult<()> {
        let d = doc! {
            "name": &room.name,
            "key": &room.key,
            "epoch": room.epoch as i64,
            "created_ms": room.created_ms,
        };
        self.insert(&self.rooms, d)?;
        if let Err(e) = self.insert_member(&room.name, creator) {
            // Best effort: do not leave a room nobody is in.
            let _ = self.delete_one(&self.rooms, doc! {"name": &room.name});
            return Err(e);
        }
        Ok(())
    }

    fn find_room(&self, name: &str) -> StoreResult<Option<RoomRecord>> {
        let found = self.find_one(&self.rooms, doc! {"name": name})?;
        found.as_ref().map(room_from).transpose()
    }

    fn add_member(&self, room: &str, username: &str) -> StoreResult<()> {
        if self.find_room(room)?.is_none() {
            return Err(StoreError::NotFound);
        }
        self.insert_member(room, username)?;
        // The last member may have left (deleting the room) between the check
        // and the insert: then take the membership back rather than leave it
        // pointing at no room.
        if self.find_room(room)?.is_none() {
            self.delete_one(&self.members, doc! {"room": room, "username": username})?;
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn remove_member(&self, room: &str, username: &str, new_key: &str) -> StoreResult<Left> {
        let left = |removed, room_deleted| {
            Ok(Left {
                removed,
                room_deleted,
            })
        };
        // No transaction spans the two collections, so the order is chosen
        // for a failure in between (a primary step-down, say): the next
        // epoch first (sealed keys dropped), then remove. Cut short, the
        // member is still listed (and a retried leave moves the epoch on
        // again, so it is never sealed the final key); never removed with
        // the room still at the epoch whose key it holds.
        let member = doc! {"room": room, "username": username};
        if self.find_one(&self.members, member.clone())?.is_none() {
            return left(false, false);
        }
        // One update, so the key field and its epoch change together.
        let rekey = doc! {"$set": {"key": new_key}, "$inc": {"epoch": 1_i64}};
        ok(self.rooms.update_one(doc! {"name": room}, rekey).run())?;
        if !self.delete_one(&self.members, member)? {
            // A concurrent leave of the same member won the delete.
            return left(false, false);
        }
        if self.count_members(room)? > 0 {
            return left(true, false);
        }
        let deleted = self.delete_one(&self.rooms, doc! {"name": room})?;
        // No transaction spans the count and the delete: a join that passed
        // both of `add_member`'s room checks in between keeps a membership of
        // the deleted room. Accepted as rare and mild: that room is not
        // listed, a new room of that name would count the joiner in, and the
        // membership goes when they leave. Logged so it can be noticed.
        if deleted && self.count_members(room).unwrap_or(0) > 0 {
            log::warn!("mongodb: room {room:?} deleted while a member joined it");
        }
        left(true, deleted)
    }

    fn swap_room_key(&self, room: &str, epoch: u64, old: &str, new: &str) -> StoreResult<bool> {
        // A room written before key epochs has no `epoch` (read as 0).
        let at = match epoch {
            0 => mongodb::bson::Bson::Document(doc! {"$exists": false}),
            e => mongodb::bson::Bson::Int64(e as i64),
        };
        let filter = doc! {"name": room, "epoch": at, "key": old};
        let set = doc! {"$set": {"key": new}};
        Ok(ok(self.rooms.update_one(filter, set).run())?.matched_count == 1)
    }

    fn room_members(&self, room: &str) -> StoreResult<Vec<String>> {
        self.member_field(doc! {"room": room}, "username")
    }

    fn members_with_sessions(
        &self,
        room: &str,
    ) -> StoreResult<Vec<(String, Option<SessionRecord>)>> {
        self.members_joined(room)
    }

    fn list_rooms(&self) -> StoreResult<Vec<RoomListing>> {
        let pipeline = [doc! {"$group": {"_id": "$room", "n": {"$sum": 1}}}];
        let mut counts = std::collections::HashMap::new();
        for d in ok(self.members.aggregate(pipeline).run())? {
            let d = ok(d)?;
            let n = u64::try_from(get_i64(&d, "n")?).map_err(|_| bad(&d, "n"))?;
            counts.insert(get_str(&d, "_id")?, n);
        }
        let mut out = all(self.find_all(&self.rooms, doc! {})?, |d| {
            let name = get_str(d, "name")?;
            let members = counts.get(&name).copied().unwrap_or(0);
            let topic = docs::get_text(d, "topic");
            Ok(RoomListing {
                name,
                members,
                topic,
            })
        })?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn rooms_of(&self, username: &str) -> StoreResult<Vec<String>> {
        self.member_field(doc! {"username": username}, "room")
    }

    fn set_topic(&self, room: &str, by: &str, text: &str) -> StoreResult<bool> {
        self.topic_set(room, by, text)
    }

    fn set_away(&self, token_hash: &str, away: &str) -> StoreResult<bool> {
        self.away_set(token_hash, away)
    }

    fn room_policy(&self, room: &str) -> StoreResult<Option<(String, u64)>> {
        self.policy_of(room)
    }

    fn put_room_policy(&self, room: &str, doc: &str, expected: u64) -> StoreResult<bool> {
        self.policy_put(room, doc, expected)
    }

    fn delete_room_policy(&self, room: &str) -> StoreResult<()> {
        self.policy_delete(room)
    }

    fn add_announcement(&self, by: &str, text: &str, at_ms: i64) -> StoreResult<Announcement> {
        self.announcement_add(by, text, at_ms)
    }

    fn announcements_after(&self, after: u64, limit: usize) -> StoreResult<Vec<Announcement>> {
        self.announcements_since(after, limit)
    }
}

#[cfg(test)]
mod tests;
