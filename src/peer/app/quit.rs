//! Logging out and quitting: closing every chat and room, the logout
//! request, and the exit once everything has said goodbye.

use super::{App, Pending};
use crate::peer::chats::Chats;
use crate::peer::ui::UiEvent;
use crate::protocol::Request;
use std::time::{Duration, Instant};

/// How long `/quit` waits for the logout reply.
const QUIT_GRACE: Duration = Duration::from_millis(700);

impl App {
    /// Closes every chat (telling partners) and leaves every room.
    pub(super) fn leave_everything(&mut self, why: &str) {
        self.with_chats(Chats::close_all);
        self.rooms_leave_all(why);
        self.current = None;
    }

    pub fn quit(&mut self) {
        if self.quit_at.is_some() {
            return;
        }
        self.quit_at = Some(Instant::now() + QUIT_GRACE);
        self.leave_everything("quit");
        match self.session.as_ref().map(|s| s.token.clone()) {
            Some(token) if self.link.is_up() => self.send(
                Request::Logout { token },
                Pending::Logout { quitting: true },
            ),
            _ => self.quitting_ready = true,
        }
    }

    /// Quits once piped input has ended and its requests are answered;
    /// exits once logged out and rooms have said goodbye (or at the grace).
    pub(super) fn quit_tick(&mut self, now: Instant) {
        if self.input_ended
            && self.quit_at.is_none()
            && self.held.is_empty()
            && self.link.pending_len() == 0
            && !self.chats.is_dialing()
        {
            self.quit();
        }
        if self.quit_at.is_some_and(|t| t <= now)
            || (self.quitting_ready && self.rooms.leaving_done())
        {
            self.finish();
        }
    }

    fn finish(&mut self) {
        if self.exit_code.is_none() {
            // Let chat writers send their last lines (a bye) before exit.
            for c in std::mem::take(&mut self.closing) {
                c.wait(Duration::from_millis(300));
            }
            self.emit(UiEvent::Bye);
            let code = self.script.as_ref().map(|s| s.exit_code()).unwrap_or(0);
            self.exit_code = Some(code);
        }
    }
}
