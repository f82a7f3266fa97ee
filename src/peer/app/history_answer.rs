//! The asked side of room history (see `history`): a checked asker that
//! is a member of the room gets the room's last texts from our transcript,
//! without our user being asked; anyone else a refusal.

use super::history::{HistoryPending, NOT_A_MEMBER};
use super::App;
use crate::peer::chats::{ConnId, HistoryAsk};
use crate::protocol::chat::ChatMsg;
use crate::protocol::codec::MAX_LINE;
use crate::protocol::Request;
use std::time::Instant;

impl App {
    /// `from` (its key checked with the registry) asks on `conn` for a
    /// room's history.
    pub(super) fn history_asked(&mut self, conn: ConnId, from: String, ask: HistoryAsk) {
        self.history.forget_left(&self.rooms);
        if self.history.transcripts.limit() == 0 {
            return self.history_refuse(conn, "no history kept");
        }
        if !self.rooms.is_member(&ask.room) {
            return self.history_refuse(conn, "not in the room");
        }
        if !self.history.answers.allow(&from, Instant::now()) {
            log::info!("history ask from {from}: too many this minute");
            if let Some(c) = self.conns.get(&conn) {
                c.send(ChatMsg::Busy);
            }
            return self.history_close(conn);
        }
        if self.rooms.engine.members_of(&ask.room).contains(&from) {
            return self.history_answer(conn, &from, &ask);
        }
        // Not (yet) in our list: the registry has the last word.
        let Some(token) = self.session.as_ref().map(|s| s.token.clone()) else {
            return self.history_refuse(conn, NOT_A_MEMBER);
        };
        self.history.checking.insert(conn, from.clone());
        let req = Request::Members {
            token,
            room: ask.room.clone(),
        };
        let p = HistoryPending::Check { conn, from, ask };
        self.send(req, super::Pending::History(p));
    }

    /// Sends the last entries of the room (oldest first) and the end line.
    /// Texts shown after `from` became a member in our view are left
    /// out: their senders sent them to it live too (by the room's reliable
    /// transport), and a history copy that won the race would hide the
    /// live one.
    pub(super) fn history_answer(&mut self, conn: ConnId, from: &str, ask: &HistoryAsk) {
        let now = Instant::now();
        let count = (ask.count as usize).min(self.history.transcripts.limit());
        let since = self.history.member_since(&ask.room, from);
        let all = self.history.transcripts.last(&ask.room, usize::MAX);
        let missed: Vec<_> = all
            .into_iter()
            .filter(|e| since.is_none_or(|s| e.at < s))
            .collect();
        let mut sent = 0u32;
        if let Some(c) = self.conns.get(&conn) {
            for e in &missed[missed.len().saturating_sub(count)..] {
                let msg = ChatMsg::HistoryMsg {
                    from: e.from.clone(),
                    id: e.id,
                    text: e.text.clone(),
                    age_ms: now.duration_since(e.at).as_millis() as u64,
                };
                // A text whose line would be too long to read is left out.
                let len = serde_json::to_vec(&msg).map_or(usize::MAX, |v| v.len());
                if len < MAX_LINE && c.send(msg) {
                    sent += 1;
                }
            }
            c.send(ChatMsg::HistoryEnd { count: sent });
        }
        log::info!("history of #{}: {sent} entries answered", ask.room);
        self.history_close(conn);
    }

    pub(super) fn history_refuse(&mut self, conn: ConnId, reason: &str) {
        if let Some(c) = self.conns.get(&conn) {
            c.send(ChatMsg::Reject {
                reason: reason.into(),
            });
        }
        self.history_close(conn);
    }

    /// Closes `conn` once what is queued on it has been written.
    pub(super) fn history_close(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            self.closing.retain(|c| !c.is_done());
            self.closing.push(c.close());
        }
    }
}
