//! The MongoDB store's one-request lookups: a user with their session
//! (`$lookup`), and a page of the online list with its total (`$facet`).
//! Each is one `aggregate` command, so one round trip.

use super::{
    all, bad, get_i64, get_str, ok, session_from, MongoStore, OnlinePage, OnlineQuery,
    SessionRecord, StoreResult, UserRecord,
};
use mongodb::bson::{doc, Bson, Document};

impl MongoStore {
    pub(super) fn user_with_session(
        &self,
        username: &str,
    ) -> StoreResult<Option<(UserRecord, Option<SessionRecord>)>> {
        let pipeline = [
            doc! {"$match": {"username": username}},
            doc! {"$limit": 1},
            doc! {"$lookup": {
                "from": "sessions",
                "localField": "username",
                "foreignField": "username",
                "as": "session",
            }},
        ];
        let Some(d) = ok(self.users.aggregate(pipeline).run())?.next() else {
            return Ok(None);
        };
        let d = ok(d)?;
        let user = UserRecord {
            username: get_str(&d, "username")?,
            password_hash: get_str(&d, "password_hash")?,
            created_ms: get_i64(&d, "created_ms")?,
        };
        Ok(Some((user, joined_session(&d)?)))
    }

    pub(super) fn members_joined(
        &self,
        room: &str,
    ) -> StoreResult<Vec<(String, Option<SessionRecord>)>> {
        let pipeline = [
            doc! {"$match": {"room": room}},
            doc! {"$lookup": {
                "from": "sessions",
                "localField": "username",
                "foreignField": "username",
                "as": "session",
            }},
        ];
        let mut out = Vec::new();
        for d in ok(self.members.aggregate(pipeline).run())? {
            let d = ok(d)?;
            out.push((get_str(&d, "username")?, joined_session(&d)?));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub(super) fn online_page_facet(&self, q: &OnlineQuery<'_>) -> StoreResult<OnlinePage> {
        let matching = doc! {
            "attached": true,
            "last_seen_ms": {"$gte": q.fresh_since_ms},
            "username": {"$gte": q.prefix, "$lt": q.prefix_end()},
        };
        let limit = i64::try_from(q.limit.saturating_add(1)).unwrap_or(i64::MAX);
        let pipeline = [
            doc! {"$match": matching},
            // Before `$facet`, so the username index can give the order.
            doc! {"$sort": {"username": 1}},
            doc! {"$facet": {
                "total": [{"$count": "n"}],
                "page": [
                    {"$match": {"username": {"$gt": q.after.unwrap_or("")}}},
                    {"$limit": limit},
                ],
            }},
        ];
        let Some(d) = ok(self.sessions.aggregate(pipeline).run())?.next() else {
            return Err(bad(&Document::new(), "$facet"));
        };
        let d = ok(d)?;
        let array = |field: &str| match d.get(field) {
            Some(Bson::Array(a)) => Ok(a
                .iter()
                .filter_map(|x| x.as_document().cloned())
                .collect::<Vec<_>>()),
            _ => Err(bad(&d, field)),
        };
        let total = match array("total")?.first() {
            Some(t) => u64::try_from(get_i64(t, "n")?).map_err(|_| bad(t, "n"))?,
            None => 0,
        };
        let mut sessions = all(array("page")?, session_from)?;
        // The server sorted them; sorting again costs nothing and keeps the
        // contract if a compatible server does not.
        sessions.sort_by(|a, b| a.username.cmp(&b.username));
        let more = sessions.len() > q.limit;
        sessions.truncate(q.limit);
        Ok(OnlinePage {
            sessions,
            more,
            total,
        })
    }
}

/// The session a `$lookup` put in `session` (an array of none or one).
fn joined_session(d: &Document) -> StoreResult<Option<SessionRecord>> {
    match d.get("session") {
        Some(Bson::Array(a)) => match a.first() {
            Some(Bson::Document(s)) => Ok(Some(session_from(s)?)),
            None => Ok(None),
            Some(_) => Err(bad(d, "session")),
        },
        _ => Err(bad(d, "session")),
    }
}
