//! Announcements: registry admins (`--admin`) `announce` a line; every
//! peer's periodic `heartbeat` request says the last id it saw and the
//! reply carries the newer ones. They live in the store (so registries
//! sharing one database all hand them out); each registry reads the store
//! at most once per [`REFRESH_MS`], not once per heartbeat.

use super::{api, ConnSession, Registry};
use crate::protocol::*;
use crate::registry::store::KEPT_ANNOUNCEMENTS;

/// How often a registry reads new announcements from the store.
const REFRESH_MS: i64 = 500;
/// Announcements older than this are not handed to a peer that has not
/// seen them (one that logged in later), in ms.
const FRESH_MS: i64 = 10 * 60 * 1000;
/// Most announcements in one heartbeat reply (the newest).
const PER_REPLY: usize = 5;

/// What this registry last read of the store's announcements.
#[derive(Default)]
pub struct AnnouncementCache {
    checked_ms: Option<i64>,
    recent: Vec<Announcement>,
}

impl Registry {
    /// `announce`: admins only.
    pub(super) fn announce(&self, me: &ConnSession, text: &str) -> Result<ReplyBody, ApiError> {
        if !self.config.admins.contains(&me.username) {
            return Err(api(
                ErrorCode::NotAdmin,
                "only the registry's admins (--admin) can announce",
            ));
        }
        let text = text.trim();
        if text.is_empty() {
            return Err(api(
                ErrorCode::BadRequest,
                "an announcement needs some text",
            ));
        }
        if text.len() > MAX_ANNOUNCEMENT {
            return Err(api(
                ErrorCode::AnnouncementTooLong,
                format!("an announcement is at most {MAX_ANNOUNCEMENT} bytes"),
            ));
        }
        let a = self
            .store
            .add_announcement(&me.username, text, self.now_ms())?;
        log::info!("announcement {} from {}", a.id, me.username);
        // Seen at once by the heartbeats this registry answers next.
        self.cache().checked_ms = None;
        Ok(ReplyBody::Announced { announcement: a })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, AnnouncementCache> {
        self.announcements.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A heartbeat's reply: the recent announcements after `after` (the
    /// newest few), or nothing.
    pub(super) fn announcements_reply(&self, after: u64) -> Result<ReplyBody, ApiError> {
        let now = self.now_ms();
        let mut c = self.cache();
        if c.checked_ms.is_none_or(|t| now - t >= REFRESH_MS) {
            let last = c.recent.last().map_or(0, |a| a.id);
            let new = self
                .store
                .announcements_after(last, KEPT_ANNOUNCEMENTS as usize)?;
            c.recent.extend(new);
            let extra = c.recent.len().saturating_sub(KEPT_ANNOUNCEMENTS as usize);
            c.recent.drain(..extra);
            c.checked_ms = Some(now);
        }
        let fresh: Vec<Announcement> = c
            .recent
            .iter()
            .filter(|a| a.id > after && a.at_ms >= now - FRESH_MS)
            .cloned()
            .collect();
        if fresh.is_empty() {
            return Ok(ReplyBody::Empty {});
        }
        let skip = fresh.len().saturating_sub(PER_REPLY);
        Ok(ReplyBody::Announcements {
            announcements: fresh[skip..].to_vec(),
        })
    }
}
