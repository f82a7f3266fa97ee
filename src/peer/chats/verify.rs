//! Checking an incoming hello with the registry, and what follows: a
//! refusal, a resumed chat, a crossed request, or a prompt for our user.

use super::{ChatError, ChatEvent, ChatNotice, Chats, ConnId, RejectReason, State, REFUSAL_QUIET};
use crate::protocol::chat::ChatMsg;
use crate::protocol::{ApiError, ErrorCode, UserInfo};
use std::time::Instant;

impl Chats {
    /// The registry's answer on who sent the hello on `conn` (an error
    /// when it could not be asked).
    pub(super) fn verified(&mut self, now: Instant, id: ConnId, info: Result<UserInfo, ApiError>) {
        let Some(c) = self.chats.get(&id) else { return };
        if c.state != State::Verifying {
            return;
        }
        let user = c.user.clone();
        let from = c.addr;
        if c.history.is_some() {
            // Nobody is asked about a history request: without the
            // registry's word for the asker's key it is refused.
            let refused = match &info {
                Ok(info) => self.key_check(id, info).err().map(|e| e.to_string()),
                Err(e) => Some(format!(
                    "{user}'s identity cannot be checked: {}",
                    e.message
                )),
            };
            match refused {
                Some(why) => {
                    log::info!("history ask from {from} refused: {why}");
                    let reason = RejectReason::IdentityCheckFailed.wire().to_string();
                    self.end(id, Some(ChatMsg::Reject { reason }));
                }
                None => self.history_verified(id),
            }
            return;
        }
        let refused = match info {
            // The key its handshake showed must be the one the registry
            // vouches for the name; where it connects from does not matter
            // (two users on one machine are told apart by their keys).
            Ok(info) => self.key_check(id, &info).err(),
            Err(e) if e.code == ErrorCode::RegistryUnreachable => {
                // The registry cannot be asked at all: let the user decide,
                // with every line of the chat marked unverified.
                if let Some(c) = self.chats.get_mut(&id) {
                    c.unverified = true;
                }
                self.notice(ChatNotice::Unverified { user: user.clone() });
                None
            }
            // No such user (or the registry would not say): an invented
            // name is refused like any failed identity check.
            Err(e) => Some(ChatError::UnknownSender {
                user,
                from,
                why: match e.code {
                    ErrorCode::UserNotFound => "the registry has no such user".into(),
                    _ => format!("the registry could not vouch for it ({})", e.message),
                },
            }),
        };
        if let Some(error) = refused {
            let reason = RejectReason::IdentityCheckFailed.wire().to_string();
            self.end(id, Some(ChatMsg::Reject { reason }));
            self.show_refusal(now, from.ip(), error);
            return;
        }
        let Some((user, resume)) = self.chats.get(&id).map(|c| (c.user.clone(), c.resume_from))
        else {
            return;
        };
        if let Some(received) = resume {
            // A chat already accepted, resumed without asking again.
            self.adopt(now, id, received);
            return;
        }
        if self.dnd {
            self.end(id, Some(ChatMsg::Busy));
            self.notice(ChatNotice::AnsweredBusy { user });
            return;
        }
        let me = self.me.clone().unwrap_or_default();
        if let Some(ours) = self.find(&user, State::Requesting) {
            // Both asked at once: the request from the smaller name wins.
            if me < user {
                let reason = RejectReason::Crossed.wire().to_string();
                self.end(id, Some(ChatMsg::Reject { reason }));
                return;
            }
            let queued = self.end(ours, None).map(|c| c.queued).unwrap_or_default();
            if let Some(c) = self.chats.get_mut(&id) {
                c.queued = queued;
            }
            self.accept(id);
            return;
        }
        // A new request replaces a stale one (the partner restarted). One
        // that replaces a request still on screen takes its place quietly:
        // the prompt there answers it, and repeated hellos cannot add
        // prompts.
        let asked = self.find(&user, State::Asked);
        let old = self.find_live(&user).or(asked);
        let old = old.and_then(|old| self.end(old, Some(ChatMsg::Bye)));
        if let Some(o) = &old {
            self.report_undelivered(o);
        }
        let mut unverified = false;
        if let Some(c) = self.chats.get_mut(&id) {
            c.state = State::Asked;
            c.since = now;
            unverified = c.unverified;
        }
        let on_screen = old.filter(|o| o.state == State::Asked && o.unverified == unverified);
        if on_screen.is_none() {
            self.event(ChatEvent::Request {
                from: user,
                unverified,
            });
        }
    }

    /// Shows a refused request, unless one from the same address was
    /// shown within [`REFUSAL_QUIET`]: a flood of forged hellos is one
    /// line, not one per hello.
    fn show_refusal(&mut self, now: Instant, ip: std::net::IpAddr, error: ChatError) {
        self.refusals_shown
            .retain(|_, at| now.duration_since(*at) < REFUSAL_QUIET);
        if self.refusals_shown.contains_key(&ip) {
            log::info!("{error}");
            return;
        }
        self.refusals_shown.insert(ip, now);
        self.error(error);
    }
}
