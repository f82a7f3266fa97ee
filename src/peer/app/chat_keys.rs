//! The identity key that secures our chat connections (the Noise static
//! key, [`crate::peer::chat_noise`]): the user's device key of
//! [`crate::identity`], loaded once per logged-in user.

use super::App;
use crate::identity::Identity;
use crate::peer::chat_noise::{Role, Setup};
use std::io;

impl App {
    /// What a new chat connection in `role` needs; an error when we are
    /// not logged in or have no identity key.
    pub(super) fn chat_setup(&mut self, role: Role) -> io::Result<Setup> {
        let me = self
            .session
            .as_ref()
            .map(|s| s.username.clone())
            .ok_or_else(|| io::Error::other("not logged in"))?;
        if self.chat_key.as_ref().map(|(u, _)| u) != Some(&me) {
            let path = Identity::path(&crate::tls::cert::config_dir(), &me);
            let (id, _) = Identity::load_or_create(&path).map_err(io::Error::other)?;
            self.chat_key = Some((me.clone(), id.kx_secret()));
        }
        let secret = self.chat_key.as_ref().map(|(_, k)| *k).unwrap_or_default();
        Ok(Setup { secret, me, role })
    }
}
