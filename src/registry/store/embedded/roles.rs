//! The embedded store's room policies and announcements (schema version 4:
//! tables `room_policies` and `announcements`).

use super::{Announcement, KEPT_ANNOUNCEMENTS};
use rusqlite::{params, Connection, OptionalExtension};

/// The tables of schema version 4, created in a new file and by the
/// upgrade from an older one.
pub(super) const SCHEMA_V4: &str = "
CREATE TABLE IF NOT EXISTS room_policies (
    room    TEXT PRIMARY KEY,
    doc     TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS announcements (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    by_user TEXT NOT NULL,
    text    TEXT NOT NULL,
    at_ms   INTEGER NOT NULL
);
";

pub(super) fn room_policy(
    c: &mut Connection,
    room: &str,
) -> rusqlite::Result<Option<(String, u64)>> {
    c.prepare_cached("SELECT doc, version FROM room_policies WHERE room = ?1")?
        .query_row([room], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })
        .optional()
}

pub(super) fn put_room_policy(
    c: &mut Connection,
    room: &str,
    doc: &str,
    expected: u64,
) -> rusqlite::Result<bool> {
    let n = if expected == 0 {
        c.prepare_cached(
            "INSERT OR IGNORE INTO room_policies (room, doc, version) VALUES (?1, ?2, 1)",
        )?
        .execute(params![room, doc])?
    } else {
        c.prepare_cached(
            "UPDATE room_policies SET doc = ?2, version = version + 1 \
             WHERE room = ?1 AND version = ?3",
        )?
        .execute(params![room, doc, expected as i64])?
    };
    Ok(n == 1)
}

pub(super) fn delete_room_policy(c: &mut Connection, room: &str) -> rusqlite::Result<()> {
    c.prepare_cached("DELETE FROM room_policies WHERE room = ?1")?
        .execute([room])
        .map(drop)
}

pub(super) fn add_announcement(
    c: &mut Connection,
    by: &str,
    text: &str,
    at_ms: i64,
) -> rusqlite::Result<Announcement> {
    let tx = c.transaction()?;
    tx.execute(
        "INSERT INTO announcements (by_user, text, at_ms) VALUES (?1, ?2, ?3)",
        params![by, text, at_ms],
    )?;
    let id = tx.last_insert_rowid().max(0) as u64;
    tx.execute(
        "DELETE FROM announcements WHERE id <= ?1",
        [id.saturating_sub(KEPT_ANNOUNCEMENTS) as i64],
    )?;
    tx.commit()?;
    Ok(Announcement {
        id,
        by: by.to_string(),
        text: text.to_string(),
        at_ms,
    })
}

pub(super) fn announcements_after(
    c: &mut Connection,
    after: u64,
    limit: usize,
) -> rusqlite::Result<Vec<Announcement>> {
    let mut st = c.prepare_cached(
        "SELECT id, by_user, text, at_ms FROM announcements WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let rows = st.query_map(params![after, limit as i64], |r| {
        Ok(Announcement {
            id: r.get::<_, i64>(0)?.max(0) as u64,
            by: r.get(1)?,
            text: r.get(2)?,
            at_ms: r.get(3)?,
        })
    })?;
    rows.collect()
}
