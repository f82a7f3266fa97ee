//! Who signs what in the simulator. Each name has a fixed identity (its
//! keys derived from the name), which the fake registry vouches for. By
//! default the engines sign with a cheap stand-in for Ed25519, so that the
//! 300-member test's millions of datagrams cost no signatures;
//! [`Sim::with_signatures`] switches every engine to the real thing.

use super::Sim;
use crate::identity::Identity;
use crate::protocol::datagram::{Authenticator, VerifyingKey, SIG_LEN};
use sha2::{Digest, Sha256};

/// The fixed identity of `name`.
pub fn identity(name: &str) -> Identity {
    let d: [u8; 32] = Sha256::digest(name.as_bytes()).into();
    Identity::from_secrets(d, d)
}

/// A stand-in for Ed25519 that binds a datagram to its signer's public key
/// only: a "signature" is the signer's key, then zeros. It tells one
/// sender from another (a member signing as itself while naming another
/// fails), at no cost; it proves nothing against an attacker who knows the
/// scheme, which is why the real one runs in the tests of forgery.
pub struct Cheap(pub VerifyingKey);

impl Authenticator for Cheap {
    fn sign(&self, _msg: &[u8]) -> [u8; SIG_LEN] {
        let mut s = [0; SIG_LEN];
        s[..32].copy_from_slice(self.0.as_bytes());
        s
    }
    fn verify(&self, signer: &VerifyingKey, _msg: &[u8], sig: &[u8; SIG_LEN]) -> bool {
        sig[..32] == signer.as_bytes()[..] && sig[32..].iter().all(|&b| b == 0)
    }
}

impl Sim {
    /// How `name` signs in this simulation (the real Ed25519 key after
    /// [`Sim::with_signatures`], else the cheap stand-in).
    pub fn auth(&self, name: &str) -> Box<dyn Authenticator> {
        auth_for(name, self.signed)
    }

    /// Every engine signs and checks with real Ed25519 signatures, now and
    /// after restarts.
    pub fn with_signatures(mut self) -> Sim {
        self.signed = true;
        for node in &mut self.nodes {
            node.engine.set_auth(auth_for(&node.name, true));
        }
        self
    }
}

pub(super) fn auth_for(name: &str, signed: bool) -> Box<dyn Authenticator> {
    let id = identity(name);
    if signed {
        Box::new(id)
    } else {
        Box::new(Cheap(id.public().sign))
    }
}
