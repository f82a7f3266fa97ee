//! The embedded store's one-statement lookups: a user with their session,
//! and a page of the online list with its total.

use super::{session_row, OnlinePage, OnlineQuery, SessionRecord, UserRecord, SESSION_COLS};
use rusqlite::{params, Connection, OptionalExtension};

/// The session columns prefixed with `s.`.
fn s_cols() -> String {
    SESSION_COLS
        .split(", ")
        .map(|c| format!("s.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn user_with_session(
    c: &Connection,
    username: &str,
) -> rusqlite::Result<Option<(UserRecord, Option<SessionRecord>)>> {
    let sql = format!(
        "SELECT u.username, u.password_hash, u.created_ms, {} \
         FROM users u LEFT JOIN sessions s ON s.username = u.username \
         WHERE u.username = ?1",
        s_cols()
    );
    c.prepare_cached(&sql)?
        .query_row([username], |r| {
            let user = UserRecord {
                username: r.get(0)?,
                password_hash: r.get(1)?,
                created_ms: r.get(2)?,
            };
            let has_session = r.get::<_, Option<String>>(3)?.is_some();
            let session = if has_session {
                Some(session_row(&Offset(r, 3))?)
            } else {
                None
            };
            Ok((user, session))
        })
        .optional()
}

pub(super) fn members_with_sessions(
    c: &Connection,
    room: &str,
) -> rusqlite::Result<Vec<(String, Option<SessionRecord>)>> {
    let sql = format!(
        "SELECT m.username, {} FROM members m LEFT JOIN sessions s ON s.username = m.username \
         WHERE m.room = ?1 ORDER BY m.username",
        s_cols()
    );
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map([room], |r| {
        let session = match r.get::<_, Option<String>>(1)? {
            Some(_) => Some(session_row(&Offset(r, 1))?),
            None => None,
        };
        Ok((r.get(0)?, session))
    })?;
    rows.collect()
}

/// A row read from column `.1` on (so `session_row` can read a join).
struct Offset<'a, 'b>(&'a rusqlite::Row<'b>, usize);

/// What `session_row` needs of a row.
pub(super) trait Cols {
    fn col<T: rusqlite::types::FromSql>(&self, i: usize) -> rusqlite::Result<T>;
}

impl Cols for rusqlite::Row<'_> {
    fn col<T: rusqlite::types::FromSql>(&self, i: usize) -> rusqlite::Result<T> {
        self.get(i)
    }
}

impl Cols for Offset<'_, '_> {
    fn col<T: rusqlite::types::FromSql>(&self, i: usize) -> rusqlite::Result<T> {
        self.0.get(i + self.1)
    }
}

/// One statement: the count of every match joined (left) to the page, so
/// an empty page still brings the count.
pub(super) fn online_page(c: &Connection, q: &OnlineQuery<'_>) -> rusqlite::Result<OnlinePage> {
    let matching = "attached = 1 AND last_seen_ms >= ?1 AND username >= ?2 AND username < ?3";
    let sql = format!(
        "SELECT n.total, {s} FROM (SELECT COUNT(*) AS total FROM sessions WHERE {matching}) n \
         LEFT JOIN (SELECT {SESSION_COLS} FROM sessions WHERE {matching} AND username > ?4 \
                    ORDER BY username LIMIT ?5) s ON 1 \
         ORDER BY s.username",
        s = s_cols()
    );
    let limit = i64::try_from(q.limit.saturating_add(1)).unwrap_or(i64::MAX);
    let mut st = c.prepare_cached(&sql)?;
    let mut rows = st.query(params![
        q.fresh_since_ms,
        q.prefix,
        q.prefix_end(),
        q.after.unwrap_or(""),
        limit
    ])?;
    let mut total = 0;
    let mut sessions = Vec::new();
    while let Some(r) = rows.next()? {
        total = r.get::<_, i64>(0)?.max(0) as u64;
        if r.get::<_, Option<String>>(1)?.is_some() {
            sessions.push(session_row(&Offset(r, 1))?);
        }
    }
    let more = sessions.len() > q.limit;
    sessions.truncate(q.limit);
    Ok(OnlinePage {
        sessions,
        more,
        total,
    })
}
