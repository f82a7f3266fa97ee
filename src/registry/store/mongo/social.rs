//! MongoDB: room topics (`topic`, `topic_by` in a room's document, unset
//! when there is none) and away messages (`away` in a session's, null when
//! there is none).

use super::{ok, MongoStore, StoreResult};
use mongodb::bson::doc;

impl MongoStore {
    /// Two requests: the membership, then the room (no transaction spans
    /// them; a member who leaves in between may still set the topic).
    pub(super) fn topic_set(&self, room: &str, by: &str, text: &str) -> StoreResult<bool> {
        let member = doc! {"room": room, "username": by};
        if self.find_one(&self.members, member)?.is_none() {
            return Ok(false);
        }
        let set = if text.is_empty() {
            doc! {"$unset": {"topic": "", "topic_by": ""}}
        } else {
            doc! {"$set": {"topic": text, "topic_by": by}}
        };
        let r = ok(self.rooms.update_one(doc! {"name": room}, set).run())?;
        Ok(r.matched_count > 0)
    }

    pub(super) fn away_set(&self, token_hash: &str, away: &str) -> StoreResult<bool> {
        let away = (!away.is_empty()).then_some(away);
        let set = doc! {"away": away};
        Ok(self.set_sessions(doc! {"token_hash": token_hash}, set, false)? > 0)
    }
}
