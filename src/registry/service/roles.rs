//! Room roles, enforced here: who may kick, ban, invite, lock, set the
//! topic, and who may join (bans, the lock, the room password). The
//! [`Policy`] is read and written through the store with a version check,
//! so several registries sharing one database never lose a change.

use super::policy::{Policy, MAX_LISTED};
use super::{api, no_such_room, ConnSession, Registry};
use crate::protocol::*;
use crate::registry::auth;
use crate::registry::store::Left;

/// Attempts at a policy write before giving up (each loses only to another
/// write to the same room's policy).
const WRITES: usize = 8;

/// A privileged room request, as the dispatcher hands it over.
enum Moderation {
    Kick { user: String, reason: String },
    Ban(String),
    Unban(String),
    Op(String),
    Deop(String),
    Invite(String),
    Lock,
    Unlock,
}

impl Moderation {
    fn action(&self) -> &'static str {
        match self {
            Moderation::Kick { .. } => "kick",
            Moderation::Ban(_) => "ban",
            Moderation::Unban(_) => "unban",
            Moderation::Op(_) => "op",
            Moderation::Deop(_) => "deop",
            Moderation::Invite(_) => "invite",
            Moderation::Lock => "lock",
            Moderation::Unlock => "unlock",
        }
    }

    fn target(&self) -> Option<&str> {
        match self {
            Moderation::Kick { user, .. }
            | Moderation::Ban(user)
            | Moderation::Unban(user)
            | Moderation::Op(user)
            | Moderation::Deop(user)
            | Moderation::Invite(user) => Some(user),
            Moderation::Lock | Moderation::Unlock => None,
        }
    }
}

fn not_operator(room: &str) -> ApiError {
    api(
        ErrorCode::NotOperator,
        format!("only the owner or an operator of room {room} can do that"),
    )
}

impl Registry {
    /// The room's policy and its version (0: none stored yet).
    pub(super) fn policy(&self, room: &str) -> Result<(Policy, u64), ApiError> {
        Ok(match self.store.room_policy(room)? {
            Some((doc, v)) => match serde_json::from_str(&doc) {
                Ok(p) => (p, v),
                Err(e) => {
                    log::error!("room {room}: unreadable policy ({e}); starting afresh");
                    (Policy::default(), v)
                }
            },
            None => (Policy::default(), 0),
        })
    }

    /// Reads the policy, lets `f` change it, and writes it back if it
    /// changed, again from a fresh read whenever another write came first.
    /// `members` (sorted), when given, is reconciled in first.
    pub(super) fn update_policy<T>(
        &self,
        room: &str,
        members: Option<&[String]>,
        f: impl FnMut(&mut Policy) -> Result<T, ApiError>,
    ) -> Result<(T, Policy), ApiError> {
        self.update_read_policy(room, None, members, f)
    }

    /// [`Self::update_policy`] starting from a policy already `read`.
    pub(super) fn update_read_policy<T>(
        &self,
        room: &str,
        mut read: Option<(Policy, u64)>,
        members: Option<&[String]>,
        mut f: impl FnMut(&mut Policy) -> Result<T, ApiError>,
    ) -> Result<(T, Policy), ApiError> {
        for _ in 0..WRITES {
            let (mut p, v) = match read.take() {
                Some(r) => r,
                None => self.policy(room)?,
            };
            let before = p.clone();
            if let Some(m) = members {
                p.reconcile(m);
            }
            let out = f(&mut p)?;
            if p == before {
                return Ok((out, p));
            }
            let doc =
                serde_json::to_string(&p).map_err(|e| api(ErrorCode::Internal, e.to_string()))?;
            if self.store.put_room_policy(room, &doc, v)? {
                return Ok((out, p));
            }
        }
        Err(api(
            ErrorCode::ServerBusy,
            format!("room {room} is changing too fast; try again"),
        ))
    }

    /// After a member left or was taken out: the room's policy follows
    /// (ownership passes on; an empty room's policy goes with it).
    /// `invite_back`: the member's session ended, so its peer will re-join
    /// by itself once resumed and must get past the lock and password.
    pub(super) fn member_gone(&self, room: &str, user: &str, left: Left, invite_back: bool) {
        let done = if left.room_deleted {
            self.store.delete_room_policy(room).map_err(ApiError::from)
        } else if left.removed {
            self.update_policy(room, None, |p| {
                p.removed(user);
                if invite_back && (p.locked || p.password_hash.is_some()) {
                    p.invites.insert(user.to_string());
                }
                Ok(())
            })
            .map(drop)
        } else {
            Ok(())
        };
        if let Err(e) = done {
            log::warn!("room {room}: policy not updated after {user} left: {e}");
        }
    }

    /// The caller must be the owner or an operator of `room` (for
    /// `set_topic`); the room's members, sorted.
    pub(super) fn require_operator(
        &self,
        me: &ConnSession,
        room: &str,
    ) -> Result<Vec<String>, ApiError> {
        let members = self.store.room_members(room)?;
        if members.is_empty() {
            return Err(no_such_room(room));
        }
        if members.binary_search(&me.username).is_err() {
            return Err(api(
                ErrorCode::NotAMember,
                format!("you are not in room {room}"),
            ));
        }
        let (_, p) = self.update_policy(room, Some(&members), |_| Ok(()))?;
        if p.rank(&me.username) == 0 {
            return Err(not_operator(room));
        }
        Ok(members)
    }

    /// Dispatches kick, ban, unban, op, deop, invite, lock and unlock.
    pub(super) fn moderation_request(
        &self,
        me: &ConnSession,
        req: Request,
    ) -> Result<ReplyBody, ApiError> {
        let (room, m) = match req {
            Request::Kick {
                room,
                username,
                reason,
                ..
            } => (
                room,
                Moderation::Kick {
                    user: username,
                    reason,
                },
            ),
            Request::Ban { room, username, .. } => (room, Moderation::Ban(username)),
            Request::Unban { room, username, .. } => (room, Moderation::Unban(username)),
            Request::Op { room, username, .. } => (room, Moderation::Op(username)),
            Request::Deop { room, username, .. } => (room, Moderation::Deop(username)),
            Request::Invite { room, username, .. } => (room, Moderation::Invite(username)),
            Request::Lock { room, .. } => (room, Moderation::Lock),
            Request::Unlock { room, .. } => (room, Moderation::Unlock),
            _ => return Err(api(ErrorCode::Internal, "not a moderation request")),
        };
        self.moderate(me, &room, m)
    }

    /// kick, ban, unban, op, deop, invite, lock, unlock.
    fn moderate(&self, me: &ConnSession, room: &str, m: Moderation) -> Result<ReplyBody, ApiError> {
        RoomName::parse(room)?;
        if let Some(t) = m.target() {
            auth::check_username(t)?;
            if t == me.username {
                return Err(api(ErrorCode::BadRequest, "not on yourself"));
            }
        }
        let members = self.require_operator(me, room)?;
        let present = |u: &str| members.binary_search(&u.to_string()).is_ok();
        let actor = me.username.clone();
        // Whether the target is to be taken out (kick, or ban of a member).
        let (out, _) = self.update_policy(room, Some(&members), |p| {
            let rank = p.rank(&actor);
            let outranked = |p: &Policy, t: &str| {
                if p.rank(t) >= rank {
                    Err(api(
                        ErrorCode::NotOwner,
                        format!("only the owner of room {room} can do that to {t}"),
                    ))
                } else {
                    Ok(())
                }
            };
            let full = |set: &std::collections::BTreeSet<String>| {
                if set.len() >= MAX_LISTED {
                    Err(api(ErrorCode::BadRequest, "that list is full"))
                } else {
                    Ok(())
                }
            };
            Ok(match &m {
                Moderation::Kick { user, reason } => {
                    if !present(user) {
                        return Err(api(
                            ErrorCode::NotAMember,
                            format!("{user} is not in room {room}"),
                        ));
                    }
                    outranked(p, user)?;
                    let info = KickInfo {
                        by: actor.clone(),
                        reason: reason.clone(),
                        banned: false,
                    };
                    p.notice(user, info);
                    true
                }
                Moderation::Ban(user) => {
                    outranked(p, user)?;
                    full(&p.bans)?;
                    p.bans.insert(user.clone());
                    p.invites.remove(user);
                    if present(user) {
                        let info = KickInfo {
                            by: actor.clone(),
                            reason: String::new(),
                            banned: true,
                        };
                        p.notice(user, info);
                    }
                    present(user)
                }
                Moderation::Unban(user) => {
                    p.bans.remove(user);
                    false
                }
                Moderation::Op(user) | Moderation::Deop(user) => {
                    if rank < 2 {
                        return Err(api(
                            ErrorCode::NotOwner,
                            format!("only the owner of room {room} can make or unmake operators"),
                        ));
                    }
                    if matches!(m, Moderation::Op(_)) {
                        if !present(user) {
                            return Err(api(
                                ErrorCode::NotAMember,
                                format!("{user} is not in room {room}"),
                            ));
                        }
                        p.ops.insert(user.clone());
                    } else {
                        p.ops.remove(user);
                    }
                    false
                }
                Moderation::Invite(user) => {
                    full(&p.invites)?;
                    p.invites.insert(user.clone());
                    p.bans.remove(user);
                    false
                }
                Moderation::Lock => {
                    p.locked = true;
                    false
                }
                Moderation::Unlock => {
                    p.locked = false;
                    false
                }
            })
        })?;
        if let (true, Some(user)) = (out, m.target()) {
            // As for a leave: the store moves the room to a new epoch and
            // clears its packages before it drops the membership, so the
            // one taken out is sealed none of the next key.
            let left = self.store.remove_member(room, user, "")?;
            self.member_gone(room, user, left, false);
        }
        log::info!(
            "{actor}: {} {} in room {room}",
            m.action(),
            m.target().unwrap_or("")
        );
        Ok(ReplyBody::Moderated {
            room: room.to_string(),
            action: m.action().to_string(),
            username: m.target().map(str::to_string),
        })
    }
}
