//! The user's side of the chat engine: `/chat`, `/msg`, `/accept`,
//! `/reject`, `/close`, and sending on an open chat.

use super::{
    Action, ChatError, ChatEvent, ChatNotice, Chats, ConnId, EndReason, Lookup, RejectReason, State,
};
use crate::protocol::chat::{ChatMsg, MAX_TEXT};

impl Chats {
    /// `/chat USER` (no text) and `/msg USER TEXT`.
    pub fn open(&mut self, user: String, text: Option<String>) {
        let Some(me) = self.me.clone() else {
            self.error(ChatError::NotLoggedIn);
            return;
        };
        if user == me {
            self.error(ChatError::ThatIsYou);
            return;
        }
        if let Some(id) = self.find_live(&user) {
            match text {
                Some(t) => self.say_on(id, t),
                None => self.event(ChatEvent::Focus { with: user }),
            }
            return;
        }
        if let Some(id) = self.find(&user, State::Asked) {
            // They asked us already: treat this as yes.
            self.accept(id);
            if let Some(t) = text {
                self.say_on(id, t);
            }
            return;
        }
        if let Some(id) = self.find(&user, State::Requesting) {
            match (text, self.chats.get_mut(&id)) {
                (Some(t), Some(c)) => c.queued.push(t),
                _ => self.notice(ChatNotice::AlreadyWaiting { user }),
            }
            return;
        }
        if let Some(q) = self.dialing.get_mut(&user) {
            q.extend(text);
            return;
        }
        self.dialing
            .insert(user.clone(), text.into_iter().collect());
        self.actions.push_back(Action::Lookup {
            user: user.clone(),
            purpose: Lookup::Dial { user },
        });
    }

    /// `/accept [USER]` (`yes`) and `/reject [USER]`: answers the latest
    /// request (from `user`).
    pub fn answer(&mut self, user: Option<String>, yes: bool) {
        let found = self
            .chats
            .iter()
            .filter(|(_, c)| c.state == State::Asked && user.as_ref().is_none_or(|u| *u == c.user))
            .max_by_key(|(_, c)| c.since)
            .map(|(id, _)| *id);
        let Some(id) = found else {
            self.error(ChatError::NoRequest { from: user });
            return;
        };
        if yes {
            self.accept(id);
        } else {
            let reason = RejectReason::Declined.wire().to_string();
            if let Some(c) = self.end(id, Some(ChatMsg::Reject { reason })) {
                self.notice(ChatNotice::Declined { user: c.user });
            }
        }
    }

    /// `/close USER`: ends every chat with `user`, in any state.
    pub fn close(&mut self, user: String) {
        let ids: Vec<ConnId> = self
            .chats
            .iter()
            .filter(|(_, c)| c.user == user)
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() {
            self.error(ChatError::NoChat { user });
            return;
        }
        let mut unverified = false;
        let mut ended = Vec::new();
        for id in ids {
            if let Some(c) = self.end(id, Some(ChatMsg::Bye)) {
                unverified |= c.unverified;
                ended.push(c);
            }
        }
        self.event(ChatEvent::Closed {
            with: user,
            reason: EndReason::YouClosed,
            unverified,
        });
        for c in ended {
            self.report_undelivered(&c);
        }
    }

    /// Logging out or quitting: says bye on every chat and forgets texts
    /// waiting for a dial; only messages never acknowledged are reported.
    pub fn close_all(&mut self) {
        let ids: Vec<ConnId> = self.chats.keys().copied().collect();
        for id in ids {
            if let Some(c) = self.end(id, Some(ChatMsg::Bye)) {
                self.report_undelivered(&c);
            }
        }
        self.dialing.clear();
    }

    pub(super) fn accept(&mut self, id: ConnId) {
        let Some(c) = self.chats.get_mut(&id) else {
            return;
        };
        c.state = State::Open;
        let with = c.user.clone();
        // `received` tells a partner that named the chat that we can resume it.
        let received = c.resumable.then_some(0);
        self.send(id, ChatMsg::Accept { received });
        self.opened(id, with);
    }

    pub(super) fn opened(&mut self, id: ConnId, with: String) {
        let unverified = self.chats.get(&id).is_some_and(|c| c.unverified);
        self.event(ChatEvent::Opened { with, unverified });
        let queued = self
            .chats
            .get_mut(&id)
            .map(|c| std::mem::take(&mut c.queued))
            .unwrap_or_default();
        for t in queued {
            self.say_on(id, t);
        }
    }

    pub(super) fn say_on(&mut self, id: ConnId, text: String) {
        if text.len() > MAX_TEXT {
            self.error(ChatError::TooLong {
                len: text.len(),
                max: MAX_TEXT,
            });
            return;
        }
        self.keep(id, text);
    }
}
