//! Room roles and announcements on the peer: `/kick`, `/ban`, `/unban`,
//! `/op`, `/deop`, `/invite`, `/lock`, `/unlock`, `/announce`, rooms with a
//! password, being kicked, and the announcements heartbeat replies carry.
//! The registry enforces every rule; this only asks and shows.

use super::rooms::RoomPending;
use super::{App, Pending, Target};
use crate::peer::ui::UiEvent;
use crate::protocol::{KickInfo, ReplyBody, Request};
use std::time::Instant;

impl App {
    /// `/create ROOM --password`, `/join ROOM PASSWORD`.
    pub(super) fn room_with_password(&mut self, create: bool, room: String, password: String) {
        let Some(token) = self.session.as_ref().map(|s| s.token.clone()) else {
            self.error("not_logged_in", "not logged in; /login USER first");
            return;
        };
        let password = Some(password);
        let (req, p) = if create {
            let req = Request::CreateRoom {
                token,
                room: room.clone(),
                password,
            };
            (req, RoomPending::Create(room))
        } else {
            if self.rooms.is_member(&room) {
                self.set_current(Target::Room(room));
                return;
            }
            let req = Request::JoinRoom {
                token,
                room: room.clone(),
                password,
            };
            (req, RoomPending::Join(room))
        };
        self.send(req, Pending::Room(p));
    }

    /// `/kick` and the other room moderation commands.
    pub(super) fn moderate_command(
        &mut self,
        action: String,
        room: Option<String>,
        user: Option<String>,
        reason: String,
    ) {
        let Some(token) = self.session.as_ref().map(|s| s.token.clone()) else {
            self.error("not_logged_in", "not logged in; /login USER first");
            return;
        };
        let current = match &self.current {
            Some(Target::Room(r)) => Some(r.clone()),
            _ => None,
        };
        let Some(room) = room.or(current) else {
            self.error("usage", format!("which room? /{action} #ROOM …"));
            return;
        };
        let username = user.unwrap_or_default();
        let r = room.clone();
        let req = match action.as_str() {
            "kick" => Request::Kick {
                token,
                room: r,
                username,
                reason,
            },
            "ban" => Request::Ban {
                token,
                room: r,
                username,
            },
            "unban" => Request::Unban {
                token,
                room: r,
                username,
            },
            "op" => Request::Op {
                token,
                room: r,
                username,
            },
            "deop" => Request::Deop {
                token,
                room: r,
                username,
            },
            "invite" => Request::Invite {
                token,
                room: r,
                username,
            },
            "lock" => Request::Lock { token, room: r },
            _ => Request::Unlock { token, room: r },
        };
        self.send(req, Pending::Room(RoomPending::Moderated(room)));
    }

    /// `/announce TEXT`.
    pub(super) fn announce_command(&mut self, text: String) {
        let Some(token) = self.session.as_ref().map(|s| s.token.clone()) else {
            self.error("not_logged_in", "not logged in; /login USER first");
            return;
        };
        self.send(
            Request::Announce { token, text },
            Pending::Room(RoomPending::Announce),
        );
    }

    /// The reply to a moderation request or an announcement.
    pub(super) fn moderation_replied(&mut self, body: ReplyBody) {
        match body {
            ReplyBody::Moderated {
                room,
                action,
                username,
            } => self.emit(UiEvent::Moderated {
                room,
                action,
                user: username,
            }),
            // Our own announcement comes back with the next heartbeat, as
            // everyone else's does.
            ReplyBody::Announced { .. } => {}
            other => log::warn!("unexpected moderation reply: {other:?}"),
        }
    }

    /// A session check's reply: announcements we have not shown yet.
    pub(super) fn announcements_heard(&mut self, body: ReplyBody) {
        let ReplyBody::Announcements { announcements } = body else {
            return;
        };
        for a in announcements {
            if a.id > self.announcements_seen {
                self.announcements_seen = a.id;
                self.emit(UiEvent::Announcement {
                    id: a.id,
                    by: a.by,
                    text: a.text,
                });
            }
        }
    }

    /// The registry says we were taken out of `room`: leave it here too
    /// (without asking the registry, and without re-joining), and say why.
    pub(super) fn room_kicked(&mut self, room: String, k: KickInfo) {
        self.rooms.engine.drop_room(Instant::now(), &room);
        if matches!(&self.current, Some(Target::Room(r)) if *r == room) {
            self.current = None;
            self.current_left(std::slice::from_ref(&room));
        }
        self.emit(UiEvent::Kicked {
            room,
            by: k.by,
            reason: k.reason,
            banned: k.banned,
        });
    }
}
