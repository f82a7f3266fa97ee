//! The identity key that secures our chat connections (the Noise static
//! key, [`crate::peer::chat_noise`]): the X25519 key of the identity
//! loaded at login ([`App::identity`]).

use super::App;
use crate::peer::chat_noise::{Role, Setup};
use std::io;

impl App {
    /// What a new chat connection in `role` needs; an error when we are
    /// not logged in or have no identity keys.
    pub(super) fn chat_setup(&mut self, role: Role) -> io::Result<Setup> {
        let me = self
            .session
            .as_ref()
            .map(|s| s.username.clone())
            .ok_or_else(|| io::Error::other("not logged in"))?;
        let secret = match (&self.identity, &self.identity_user) {
            (Some(id), Some(user)) if *user == me => id.kx_secret(),
            _ => return Err(io::Error::other("no identity keys")),
        };
        Ok(Setup { secret, me, role })
    }
}
