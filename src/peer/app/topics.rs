//! Room topics and away messages on the peer: `/topic`, `/away`, and the
//! topic lines shown when a room is joined or its topic changes (learnt
//! from the registry's replies, including the periodic `members` poll).

use super::{App, Pending, RoomPending, Target};
use crate::peer::chats::Lookup;
use crate::peer::ui::UiEvent;
use crate::protocol::{Request, TopicInfo};

impl App {
    /// A registry reply told the topic of `room`: on join it is shown (if
    /// there is one); afterwards only a change is.
    pub(super) fn topic_seen(&mut self, room: &str, topic: Option<TopicInfo>, joined: bool) {
        if !self.rooms.is_member(room) {
            return;
        }
        let old = self.rooms.topics.insert(room.to_string(), topic.clone());
        if joined {
            if let Some(t) = topic {
                self.emit(UiEvent::Topic {
                    room: room.to_string(),
                    text: Some(t.text),
                    by: Some(t.by),
                    changed: false,
                });
            }
            return;
        }
        if old.flatten() == topic {
            return;
        }
        let (text, by) = match topic {
            Some(t) => (Some(t.text), Some(t.by)),
            None => (None, None),
        };
        self.emit(UiEvent::Topic {
            room: room.to_string(),
            text,
            by,
            changed: true,
        });
    }

    /// `/topic [#ROOM] [TEXT]`: shows the topic we know, or sets it.
    pub(super) fn topic_command(&mut self, room: Option<String>, text: Option<String>) {
        let current = match &self.current {
            Some(Target::Room(r)) => Some(r.clone()),
            _ => None,
        };
        let Some(room) = room.or(current) else {
            self.error(
                "usage",
                "which room? /topic in a room, or /topic #ROOM [TEXT]",
            );
            return;
        };
        if !self.rooms.is_member(&room) {
            self.error(
                "not_a_member",
                format!("you are not in #{room}; /join {room} first"),
            );
            return;
        }
        let Some(text) = text else {
            let (text, by) = match self.rooms.topics.get(&room).cloned().flatten() {
                Some(t) => (Some(t.text), Some(t.by)),
                None => (None, None),
            };
            self.emit(UiEvent::Topic {
                room,
                text,
                by,
                changed: false,
            });
            return;
        };
        let Some(token) = self.session.as_ref().map(|s| s.token.clone()) else {
            return;
        };
        let req = Request::SetTopic {
            token,
            room: room.clone(),
            topic: text,
        };
        self.send(req, Pending::Room(RoomPending::Topic(room)));
    }

    /// `/away [MESSAGE]`.
    pub(super) fn away_command(&mut self, message: Option<String>) {
        let Some(token) = self.session.as_ref().map(|s| s.token.clone()) else {
            self.error("not_logged_in", "not logged in; /login USER first");
            return;
        };
        let req = Request::SetAway {
            token,
            away: message.clone().unwrap_or_default(),
        };
        self.send(req, Pending::Away(message));
    }

    /// The registry took our away message.
    pub(super) fn away_set(&mut self, message: Option<String>) {
        let user = self.me().unwrap_or_default().to_string();
        self.emit(UiEvent::Away {
            user,
            message,
            own: true,
        });
    }

    /// Looking up a user to chat with told their away message.
    pub(super) fn chat_partner_away(&mut self, purpose: &Lookup, user: &str, away: Option<String>) {
        if let (Lookup::Dial { .. }, Some(message)) = (purpose, away) {
            self.emit(UiEvent::Away {
                user: user.to_string(),
                message: Some(message),
                own: false,
            });
        }
    }
}
