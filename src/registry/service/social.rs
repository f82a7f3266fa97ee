//! Room topics and away messages: the `set_topic` and `set_away` ops, and
//! how `rooms` and `online` replies carry them.

use super::{api, no_such_room, ConnSession, Registry};
use crate::protocol::*;
use crate::registry::store::{RoomListing, SessionRecord};
use std::collections::BTreeMap;

/// The `rooms` reply: the list, and the topics of the rooms that have one.
pub(super) fn rooms_reply(listing: Vec<RoomListing>) -> ReplyBody {
    let mut topics = BTreeMap::new();
    let rooms = listing
        .into_iter()
        .map(|r| {
            if let Some(t) = r.topic {
                topics.insert(r.name.clone(), t);
            }
            RoomSummary {
                name: r.name,
                members: r.members,
            }
        })
        .collect();
    ReplyBody::Rooms { rooms, topics }
}

/// The away messages of the sessions that have one, by username.
pub(super) fn away_of(sessions: &[SessionRecord]) -> BTreeMap<String, String> {
    sessions
        .iter()
        .filter_map(|s| Some((s.username.clone(), s.away.clone()?)))
        .collect()
}

/// `code` when `text` is over `max` bytes.
fn too_long(code: ErrorCode, what: &str, max: usize, text: &str) -> Result<(), ApiError> {
    if text.len() <= max {
        return Ok(());
    }
    let message = format!("{what} is at most {max} bytes (this one is {})", text.len());
    Err(api(code, message))
}

impl Registry {
    /// `set_topic`: members only; one store write (plus one read to tell
    /// a missing room from a missing membership when it fails).
    pub(super) fn set_topic(
        &self,
        me: &ConnSession,
        room: &str,
        topic: &str,
    ) -> Result<ReplyBody, ApiError> {
        RoomName::parse(room)?;
        too_long(ErrorCode::TopicTooLong, "a topic", MAX_TOPIC, topic)?;
        let topic = topic.trim();
        if !self.store.set_topic(room, &me.username, topic)? {
            return Err(match self.store.find_room(room)? {
                None => no_such_room(room),
                Some(_) => api(
                    ErrorCode::NotAMember,
                    format!("only members of room {room} can set its topic"),
                ),
            });
        }
        log::info!("{} set the topic of room {room}", me.username);
        Ok(ReplyBody::Topic {
            room: room.to_string(),
            topic: (!topic.is_empty()).then(|| TopicInfo {
                text: topic.to_string(),
                by: me.username.clone(),
            }),
        })
    }

    /// `set_away`: one store write.
    pub(super) fn set_away(&self, me: &ConnSession, away: &str) -> Result<ReplyBody, ApiError> {
        too_long(ErrorCode::AwayTooLong, "an away message", MAX_AWAY, away)?;
        if !self.store.set_away(&me.token_hash, away.trim())? {
            return Err(api(
                ErrorCode::InvalidSession,
                "no such session; log in again",
            ));
        }
        Ok(ReplyBody::Empty {})
    }
}
