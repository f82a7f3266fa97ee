//! Embedded backend: one SQLite file in WAL mode, created on first start.
//!
//! A single connection behind a mutex: SQLite serialises writers anyway, and
//! every statement here is a point lookup or a small indexed update, so the
//! lock is held for microseconds. Unique constraints give the same guarantees
//! the MongoDB backend gets from unique indexes.

use super::*;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};
use std::sync::Mutex;
use std::time::Duration;

mod file;
mod keys_upgrade;
mod lookups;
mod roles;
mod social;
use file::{check_existing, create_new};
use lookups::Cols;

const SESSION_COLS: &str =
    "token_hash, username, ip, tcp_port, udp_port, last_seen_ms, instance, attached, created_ms, away, \
     sign_key, kx_key";

/// The embedded SQLite store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict,
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

fn port(v: i64) -> rusqlite::Result<u16> {
    u16::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, v))
}

fn session_row(r: &impl Cols) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        token_hash: r.col(0)?,
        username: r.col(1)?,
        ip: r.col(2)?,
        tcp_port: port(r.col(3)?)?,
        udp_port: port(r.col(4)?)?,
        last_seen_ms: r.col(5)?,
        instance: r.col(6)?,
        attached: r.col::<i64>(7)? != 0,
        created_ms: r.col(8)?,
        away: r.col(9)?,
        keys: match (r.col::<Option<String>>(10)?, r.col::<Option<String>>(11)?) {
            (Some(sign), Some(kx)) => Some(PeerKeys { sign, kx }),
            _ => None,
        },
    })
}

impl SqliteStore {
    /// Opens the database file at `path`, in WAL mode, creating it when
    /// there is no file there. An existing file must be a registry database
    /// (see `file::check_existing`); anything else is refused, so a truncated
    /// or foreign file never silently becomes an empty registry.
    pub fn open(path: &str) -> StoreResult<SqliteStore> {
        let file = std::path::Path::new(path);
        if let Some(dir) = file.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Other(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        match std::fs::metadata(file) {
            Ok(m) if m.len() == 0 => {
                return Err(StoreError::Other(format!(
                    "{path} is an empty file (0 bytes), not a registry database; \
                     restore it from a backup, or remove it to start an empty registry"
                )))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_new(path)?,
            Err(e) => return Err(StoreError::Other(format!("cannot read {path}: {e}"))),
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::Other(format!("cannot open {path}: {e}")))?;
        conn.busy_timeout(Duration::from_secs(2)).map_err(err)?;
        check_existing(&conn, path)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            log::warn!("embedded store {path}: journal mode is {mode}, not WAL");
        }
        // NORMAL in WAL mode: a committed transaction survives a process
        // crash (SIGKILL); only an OS crash can lose the last few.
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            .map_err(err)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        // A panic while holding the lock cannot leave SQLite half-written
        // (statements are atomic), so a poisoned lock is safe to reuse.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(err)
    }

    fn sessions_where(
        &self,
        clause: &str,
        p: impl rusqlite::Params,
    ) -> StoreResult<Vec<SessionRecord>> {
        self.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {SESSION_COLS} FROM sessions WHERE {clause}"
            ))?;
            let rows = st.query_map(p, |r| session_row(r))?;
            rows.collect()
        })
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn ping(&self) -> StoreResult<()> {
        self.with(|c| c.query_row("SELECT 1", [], |_| Ok(())))
    }

    fn create_user(&self, u: &UserRecord) -> StoreResult<()> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO users (username, password_hash, created_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![u.username, u.password_hash, u.created_ms])
            .map(|_| ())
        })
    }

    fn find_user(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT username, password_hash, created_ms FROM users WHERE username = ?1",
            )?
            .query_row([username], |r| {
                Ok(UserRecord {
                    username: r.get(0)?,
                    password_hash: r.get(1)?,
                    created_ms: r.get(2)?,
                })
            })
            .optional()
        })
    }

    fn find_user_with_session(
        &self,
        username: &str,
    ) -> StoreResult<Option<(UserRecord, Option<SessionRecord>)>> {
        self.with(|c| lookups::user_with_session(c, username))
    }

    fn insert_session(&self, s: &SessionRecord) -> StoreResult<()> {
        self.with(|c| {
            c.prepare_cached(&format!(
                "INSERT INTO sessions ({SESSION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ))?
            .execute(params![
                s.token_hash,
                s.username,
                s.ip,
                s.tcp_port,
                s.udp_port,
                s.last_seen_ms,
                s.instance,
                s.attached as i64,
                s.created_ms,
                s.away,
                s.keys.as_ref().map(|k| &k.sign),
                s.keys.as_ref().map(|k| &k.kx)
            ])
            .map(|_| ())
        })
    }

    fn session_by_token(&self, token_hash: &str) -> StoreResult<Option<SessionRecord>> {
        Ok(self.sessions_where("token_hash = ?1", [token_hash])?.pop())
    }

    fn session_by_user(&self, username: &str) -> StoreResult<Option<SessionRecord>> {
        Ok(self.sessions_where("username = ?1", [username])?.pop())
    }

    fn delete_session(&self, token_hash: &str) -> StoreResult<bool> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?
                .execute([token_hash])
                .map(|n| n > 0)
        })
    }

    fn attach_session(
        &self,
        token_hash: &str,
        e: &Endpoint,
        instance: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        self.with(|c| {
            c.prepare_cached(
                "UPDATE sessions SET ip = ?2, tcp_port = ?3, udp_port = ?4, instance = ?5, \
                 attached = 1, last_seen_ms = ?6, sign_key = ?7, kx_key = ?8 WHERE token_hash = ?1",
            )?
            .execute(params![
                token_hash,
                e.ip,
                e.tcp_port,
                e.udp_port,
                instance,
                now_ms,
                e.keys.as_ref().map(|k| &k.sign),
                e.keys.as_ref().map(|k| &k.kx)
            ])
            .map(|n| n > 0)
        })
    }

    fn detach_session(&self, token_hash: &str, instance: &str) -> StoreResult<bool> {
        self.with(|c| {
            c.prepare_cached(
                "UPDATE sessions SET attached = 0 WHERE token_hash = ?1 AND instance = ?2 AND attached = 1",
            )?
            .execute([token_hash, instance])
            .map(|n| n > 0)
        })
    }

    fn detach_if_stale(&self, token_hash: &str, stale_before_ms: i64) -> StoreResult<bool> {
        self.with(|c| {
            c.prepare_cached(
                "UPDATE sessions SET attached = 0 \
                 WHERE token_hash = ?1 AND attached = 1 AND last_seen_ms < ?2",
            )?
            .execute(params![token_hash, stale_before_ms])
            .map(|n| n > 0)
        })
    }

    fn detach_instance(&self, instance: &str) -> StoreResult<Vec<SessionRecord>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let before: Vec<SessionRecord> = {
                let mut st = tx.prepare_cached(&format!(
                    "SELECT {SESSION_COLS} FROM sessions WHERE instance = ?1 AND attached = 1 ORDER BY username"
                ))?;
                let rows = st.query_map([instance], |r| session_row(r))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            tx.execute(
                "UPDATE sessions SET attached = 0 WHERE instance = ?1 AND attached = 1",
                [instance],
            )?;
            tx.commit()?;
            Ok(before)
        })
    }

    fn touch_sessions(&self, token_hashes: &[String], now_ms: i64) -> StoreResult<u64> {
        if token_hashes.is_empty() {
            return Ok(0);
        }
        self.with(|c| {
            let tx = c.transaction()?;
            let mut n = 0;
            {
                let mut st = tx.prepare_cached(
                    "UPDATE sessions SET last_seen_ms = MAX(last_seen_ms, ?2) WHERE token_hash = ?1",
                )?;
                let unique: std::collections::BTreeSet<&String> = token_hashes.iter().collect();
                for t in unique {
                    n += st.execute(params![t, now_ms])? as u64;
                }
            }
            tx.commit()?;
            Ok(n)
        })
    }

    fn online_sessions(&self, fresh_since_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        self.sessions_where(
            "attached = 1 AND last_seen_ms >= ?1 ORDER BY username",
            [fresh_since_ms],
        )
    }

    fn online_page(&self, q: &OnlineQuery<'_>) -> StoreResult<OnlinePage> {
        self.with(|c| lookups::online_page(c, q))
    }

    fn stale_sessions(&self, stale_before_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        self.sessions_where(
            "attached = 1 AND last_seen_ms < ?1 ORDER BY username",
            [stale_before_ms],
        )
    }

    fn purge_sessions(&self, before_ms: i64) -> StoreResult<u64> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM sessions WHERE attached = 0 AND last_seen_ms < ?1")?
                .execute([before_ms])
                .map(|n| n as u64)
        })
    }

    fn create_room(&self, room: &RoomRecord, creator: &str) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            let (topic, by) = match &room.topic {
                Some(t) => (Some(&t.text), Some(&t.by)),
                None => (None, None),
            };
            tx.execute(
                "INSERT INTO rooms (name, key, epoch, created_ms, topic, topic_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    room.name,
                    room.key,
                    room.epoch as i64,
                    room.created_ms,
                    topic,
                    by
                ],
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO members (room, username) VALUES (?1, ?2)",
                [&room.name, creator],
            )?;
            tx.commit()
        })
    }

    fn find_room(&self, name: &str) -> StoreResult<Option<RoomRecord>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT name, key, epoch, created_ms, topic, topic_by FROM rooms WHERE name = ?1",
            )?
            .query_row([name], |r| {
                Ok(RoomRecord {
                    name: r.get(0)?,
                    key: r.get(1)?,
                    epoch: r.get::<_, i64>(2)?.max(0) as u64,
                    created_ms: r.get(3)?,
                    topic: social::topic(r.get(4)?, r.get(5)?),
                })
            })
            .optional()
        })
    }

    fn add_member(&self, room: &str, username: &str) -> StoreResult<()> {
        let found = self.with(|c| {
            let tx = c.transaction()?;
            let exists = tx
                .query_row("SELECT 1 FROM rooms WHERE name = ?1", [room], |_| Ok(()))
                .optional()?
                .is_some();
            if exists {
                tx.execute(
                    "INSERT OR IGNORE INTO members (room, username) VALUES (?1, ?2)",
                    [room, username],
                )?;
            }
            tx.commit()?;
            Ok(exists)
        })?;
        if found {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    fn remove_member(&self, room: &str, username: &str, new_key: &str) -> StoreResult<Left> {
        self.with(|c| {
            let tx = c.transaction()?;
            let removed = tx.execute(
                "DELETE FROM members WHERE room = ?1 AND username = ?2",
                [room, username],
            )? > 0;
            let left: i64 = tx.query_row(
                "SELECT COUNT(*) FROM members WHERE room = ?1",
                [room],
                |r| r.get(0),
            )?;
            let room_deleted =
                left == 0 && tx.execute("DELETE FROM rooms WHERE name = ?1", [room])? > 0;
            if removed && left > 0 {
                tx.execute(
                    "UPDATE rooms SET key = ?2, epoch = epoch + 1 WHERE name = ?1",
                    [room, new_key],
                )?;
            }
            tx.commit()?;
            Ok(Left {
                removed,
                room_deleted,
            })
        })
    }

    fn swap_room_key(&self, room: &str, epoch: u64, old: &str, new: &str) -> StoreResult<bool> {
        self.with(|c| {
            c.prepare_cached(
                "UPDATE rooms SET key = ?4 WHERE name = ?1 AND epoch = ?2 AND key = ?3",
            )?
            .execute(params![room, epoch as i64, old, new])
            .map(|n| n == 1)
        })
    }

    fn room_members(&self, room: &str) -> StoreResult<Vec<String>> {
        self.with(|c| {
            let mut st =
                c.prepare_cached("SELECT username FROM members WHERE room = ?1 ORDER BY username")?;
            let rows = st.query_map([room], |r| r.get(0))?;
            rows.collect()
        })
    }

    fn members_with_sessions(
        &self,
        room: &str,
    ) -> StoreResult<Vec<(String, Option<SessionRecord>)>> {
        self.with(|c| lookups::members_with_sessions(c, room))
    }

    fn list_rooms(&self) -> StoreResult<Vec<RoomListing>> {
        self.with(social::list_rooms)
    }

    fn rooms_of(&self, username: &str) -> StoreResult<Vec<String>> {
        self.with(|c| {
            let mut st =
                c.prepare_cached("SELECT room FROM members WHERE username = ?1 ORDER BY room")?;
            let rows = st.query_map([username], |r| r.get(0))?;
            rows.collect()
        })
    }

    fn set_topic(&self, room: &str, by: &str, text: &str) -> StoreResult<bool> {
        self.with(|c| social::set_topic(c, room, by, text))
    }

    fn set_away(&self, token_hash: &str, away: &str) -> StoreResult<bool> {
        self.with(|c| social::set_away(c, token_hash, away))
    }

    fn room_policy(&self, room: &str) -> StoreResult<Option<(String, u64)>> {
        self.with(|c| roles::room_policy(c, room))
    }

    fn put_room_policy(&self, room: &str, doc: &str, expected: u64) -> StoreResult<bool> {
        self.with(|c| roles::put_room_policy(c, room, doc, expected))
    }

    fn delete_room_policy(&self, room: &str) -> StoreResult<()> {
        self.with(|c| roles::delete_room_policy(c, room))
    }

    fn add_announcement(&self, by: &str, text: &str, at_ms: i64) -> StoreResult<Announcement> {
        self.with(|c| roles::add_announcement(c, by, text, at_ms))
    }

    fn announcements_after(&self, after: u64, limit: usize) -> StoreResult<Vec<Announcement>> {
        self.with(|c| roles::announcements_after(c, after, limit))
    }
}
