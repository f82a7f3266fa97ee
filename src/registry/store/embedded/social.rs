//! The embedded store's room topics and away messages (schema version 3:
//! `rooms.topic`, `rooms.topic_by`, `sessions.away`; NULL when unset).

use super::{RoomListing, Topic};
use rusqlite::{params, Connection};

/// A topic from its two columns (both set, or none).
pub(super) fn topic(text: Option<String>, by: Option<String>) -> Option<Topic> {
    match (text, by) {
        (Some(text), Some(by)) if !text.is_empty() => Some(Topic { text, by }),
        _ => None,
    }
}

pub(super) fn list_rooms(c: &mut Connection) -> rusqlite::Result<Vec<RoomListing>> {
    let mut st = c.prepare_cached(
        "SELECT r.name, (SELECT COUNT(*) FROM members m WHERE m.room = r.name), r.topic \
         FROM rooms r ORDER BY r.name",
    )?;
    let rows = st.query_map([], |r| {
        Ok(RoomListing {
            name: r.get(0)?,
            members: r.get::<_, i64>(1)?.max(0) as u64,
            topic: r.get::<_, Option<String>>(2)?.filter(|t| !t.is_empty()),
        })
    })?;
    rows.collect()
}

/// One statement: the topic changes only if `by` is a member.
pub(super) fn set_topic(
    c: &mut Connection,
    room: &str,
    by: &str,
    text: &str,
) -> rusqlite::Result<bool> {
    let (text, by_col) = if text.is_empty() {
        (None, None)
    } else {
        (Some(text), Some(by))
    };
    c.prepare_cached(
        "UPDATE rooms SET topic = ?2, topic_by = ?3 WHERE name = ?1 \
         AND EXISTS (SELECT 1 FROM members WHERE room = ?1 AND username = ?4)",
    )?
    .execute(params![room, text, by_col, by])
    .map(|n| n > 0)
}

pub(super) fn set_away(c: &mut Connection, token_hash: &str, away: &str) -> rusqlite::Result<bool> {
    let away = (!away.is_empty()).then_some(away);
    c.prepare_cached("UPDATE sessions SET away = ?2 WHERE token_hash = ?1")?
        .execute(params![token_hash, away])
        .map(|n| n > 0)
}
