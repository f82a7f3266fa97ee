//! The registry connection coming and going: connected, a connection
//! attempt failed, the connection lost, and moving to another registry of
//! the `--registry` list (the session is then resumed there, see
//! `session`).

use super::App;
use crate::peer::link::dial::Report;
use crate::peer::link::secure::RegistryStream;
use crate::peer::ui::UiEvent;
use crate::protocol::{ApiError, ErrorCode};
use std::time::Instant;

/// The registry connection dropped and, another registry being in the
/// list, the peer is moving: one line says so once it got there.
pub struct Moving {
    /// The registry that went away.
    pub from: String,
    pub reason: String,
    /// The loss was already shown (no registry answered at once).
    pub shown: bool,
}

impl App {
    pub(super) fn registry_connected(&mut self, stream: RegistryStream, report: Report) {
        self.link.dialed(&report);
        if let Some(note) = &report.note {
            self.notice(note.clone());
        }
        let reconnect = self.link.was_up;
        if let Err(e) = self.link.connected(stream) {
            log::warn!("registry connection unusable: {e}");
            self.link.down(Instant::now());
            return;
        }
        if !reconnect {
            // The first connection: say so, after `ready` (or after the
            // failure line with its hint, when it took a while).
            let addr = self
                .link
                .remote()
                .map(|a| a.to_string())
                .unwrap_or_default();
            self.emit(UiEvent::RegistryReached { addr });
        }
        if self.session.is_none() && self.moving.is_some() {
            // Nothing to restore: the move is done.
            self.moved(None);
        } else if reconnect && self.moving.as_ref().is_none_or(|m| m.shown) {
            self.notice("reconnected to the registry");
        }
        self.resuming = false;
        self.resume_session();
        for (req, p) in self.link.take_waiting() {
            self.send(req, p);
        }
    }

    pub(super) fn registry_connect_failed(&mut self, e: String, report: Report) {
        log::info!("registry: {e}");
        self.link.dialed(&report);
        // A certificate that is not the trusted one: said loudly, once.
        if let Some(refused) = report.refused.as_ref() {
            if self.link.shown_refusal.as_ref() != Some(refused) {
                self.link.shown_refusal = Some(refused.clone());
                self.error("registry_untrusted", refused.clone());
            }
        }
        self.link.down(Instant::now());
        // No registry in the list answered at once: show the loss now.
        if let Some(m) = self.moving.as_mut().filter(|m| !m.shown) {
            m.shown = true;
            let reason = m.reason.clone();
            self.emit(UiEvent::RegistryLost { reason });
        }
        if !self.link.was_up && self.link.failures == 1 {
            self.error(
                "registry_unreachable",
                format!(
                    "{e}; retrying in the background (name another with --registry HOST:PORT or REGISTRY_ADDR)"
                ),
            );
        }
        // What the user asked for while the registry was away is refused
        // now, not answered later as if current.
        let why = self.unreachable_why();
        for p in self.link.take_waiting_where(|p| !p.is_background()) {
            self.failed(p, &why);
        }
    }

    /// Whether the registry is out of reach: not connected, and a
    /// connection attempt failed since the last success, or the connection
    /// was lost.
    pub(super) fn registry_unreachable(&self) -> bool {
        !self.link.is_up() && (self.link.failures > 0 || self.link.was_up)
    }

    /// The error a request gets while the registry is out of reach.
    pub(super) fn unreachable_why(&self) -> ApiError {
        ApiError::new(
            ErrorCode::RegistryUnreachable,
            format!(
                "cannot reach the registry at {}: not sent (retrying in the background)",
                self.link.addr()
            ),
        )
    }

    pub(super) fn registry_closed(&mut self, generation: u64, reason: String) {
        if self.link.is_current(generation) {
            self.registry_gone(reason);
        }
    }

    /// The registry connection is lost (closed, or the registry stopped
    /// answering). With another registry in the list the link dials it at
    /// once, and the loss is shown only if that fails (see [`Moving`]).
    pub(super) fn registry_gone(&mut self, reason: String) {
        let from = self.link.remote().map(|a| a.to_string());
        let moving = self.link.has_alternatives() && self.quit_at.is_none();
        for p in self.link.down(Instant::now()) {
            self.failed(
                p,
                &ApiError::new(ErrorCode::RegistryUnreachable, "registry connection lost"),
            );
        }
        match from {
            Some(from) if moving => {
                self.moving = Some(Moving {
                    from,
                    reason,
                    shown: false,
                })
            }
            _ if self.quit_at.is_none() => self.emit(UiEvent::RegistryLost { reason }),
            _ => {}
        }
    }

    /// The one line saying the peer moved to another registry (or, back on
    /// the same one, that it is back).
    pub(super) fn moved(&mut self, username: Option<String>) {
        let Some(m) = self.moving.take() else { return };
        let to = self
            .link
            .remote()
            .map(|a| a.to_string())
            .unwrap_or_default();
        match username {
            Some(username) if to == m.from => self.emit(UiEvent::SessionRestored { username }),
            None if to == m.from => self.notice("reconnected to the registry"),
            username => self.emit(UiEvent::RegistryMoved {
                from: m.from,
                to,
                username,
            }),
        }
    }
}
