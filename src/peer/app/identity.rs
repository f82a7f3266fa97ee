//! The user's identity keys on this device (see [`crate::identity`]):
//! loaded or made at `/login`, shown by `/keys`.

use super::App;
use crate::identity::{Identity, PublicKeys};
use crate::protocol::PeerKeys;
use std::sync::Arc;

impl App {
    /// Loads `username`'s keys from the config directory, making them at
    /// the first login on this device; `None` (after an error line) when
    /// the file cannot be read or written.
    pub(super) fn load_identity(&mut self, username: &str) -> Option<PeerKeys> {
        if let Some(id) = &self.identity {
            if self.identity_user.as_deref() == Some(username) {
                return Some(id.wire());
            }
        }
        if crate::protocol::names::Username::parse(username).is_err() {
            // No such account can exist (the registry refuses the login):
            // no file is made under a name that is not a valid file name.
            return Some(Identity::generate().wire());
        }
        let path = Identity::path(&crate::tls::cert::config_dir(), username);
        match Identity::load_or_create(&path) {
            Ok((id, made)) => {
                if made {
                    self.notice(format!(
                        "made identity keys for {username} on this device ({}); kept in {}",
                        id.public().fingerprint(),
                        path.display()
                    ));
                }
                let keys = id.wire();
                self.identity = Some(Arc::new(id));
                self.identity_user = Some(username.to_string());
                Some(keys)
            }
            Err(e) => {
                self.error(
                    "identity",
                    format!(
                        "cannot use identity keys: {e}; not logged in. Move that file away \
                         (or delete it) and /login again to make new keys for this device \
                         (others will then see a new fingerprint for you)"
                    ),
                );
                None
            }
        }
    }

    /// `/keys`: our fingerprint; `/keys USER`: the one the registry vouches
    /// for (asked with `search`).
    pub(super) fn show_own_keys(&mut self) {
        match (&self.identity, self.me()) {
            (Some(id), Some(me)) => {
                let fp = id.public().fingerprint();
                self.notice(format!("your keys ({me} on this device): {fp}"));
            }
            _ => self.error("not_logged_in", "log in first"),
        }
    }
}

/// How `/keys USER` shows what the registry returned.
pub fn describe(user: &str, keys: Option<&PeerKeys>) -> String {
    match keys.map(PublicKeys::from_wire) {
        Some(Ok(k)) => format!(
            "{user}'s keys, as the registry vouches for them: {}",
            k.fingerprint()
        ),
        Some(Err(e)) => format!("{user}'s keys are malformed ({e})"),
        None => format!("{user} has no identity keys (offline, or a version-1 peer)"),
    }
}
