//! Credentials: the password rule (the username rule is
//! [`crate::protocol::names`]), Argon2id hashing with bounded
//! concurrency, session tokens, and the failed-login rate limiter.

use crate::protocol::{ApiError, ErrorCode, Username};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use crossbeam_channel::Sender;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

pub use crate::protocol::names::{PASSWORD_MAX, PASSWORD_MIN};

/// The username rule ([`Username`]) as the registry's `invalid_username`.
pub fn check_username(name: &str) -> Result<(), ApiError> {
    Username::parse(name).map(drop).map_err(ApiError::from)
}

/// Passwords: at least 8 characters, at most 1024 bytes.
pub fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < PASSWORD_MIN {
        Err(ApiError::new(
            ErrorCode::WeakPassword,
            format!("a password needs at least {PASSWORD_MIN} characters"),
        ))
    } else if password.len() > PASSWORD_MAX {
        Err(ApiError::new(
            ErrorCode::WeakPassword,
            format!("a password may be at most {PASSWORD_MAX} bytes"),
        ))
    } else {
        Ok(())
    }
}

/// A new session token: 32 random bytes as 64 hex digits.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

/// What the store keeps instead of a token: its SHA-256, in hex.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A unit of hashing work, run on one of the hasher's threads.
type Job = Box<dyn FnOnce(&Argon2<'static>) + Send>;

/// Runs Argon2id on its own `permits` threads, so at most that many hashes
/// run at once. Each takes about 19 MiB; doing them all on the same few
/// threads lets the allocator reuse that memory instead of keeping some in
/// every client thread's arena. A caller whose hash has not finished within
/// `max_wait` (a login storm) gets `server_busy`.
pub struct Hasher {
    jobs: Sender<Job>,
    max_wait: Duration,
    /// Verified against when the user does not exist, so that an unknown
    /// username costs as much time as a wrong password.
    dummy_hash: String,
}

impl Hasher {
    /// A hasher with Argon2id's recommended cost (19 MiB, 2 passes).
    pub fn new(permits: usize, max_wait: Duration) -> Hasher {
        Self::with_cost(
            permits,
            max_wait,
            Params::DEFAULT_M_COST,
            Params::DEFAULT_T_COST,
        )
        .unwrap_or_else(|_| unreachable!("the default Argon2 parameters are valid"))
    }

    /// A hasher with a chosen memory cost (KiB) and number of passes. New
    /// hashes use this cost; stored hashes carry their own and verify as is.
    pub fn with_cost(
        permits: usize,
        max_wait: Duration,
        m_kib: u32,
        passes: u32,
    ) -> Result<Hasher, String> {
        let params =
            Params::new(m_kib, passes, 1, None).map_err(|e| format!("bad Argon2 cost: {e}"))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = argon
            .hash_password(b"not a real password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default();
        let permits = permits.max(1);
        let (jobs, queue) = crossbeam_channel::bounded::<Job>(permits * 64);
        for i in 0..permits {
            let queue = queue.clone();
            let argon = argon.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    // Ends when the hasher (the only sender) is dropped.
                    for job in queue {
                        job(&argon);
                    }
                })
                .map_err(|e| format!("cannot start a hashing thread: {e}"))?;
        }
        Ok(Hasher {
            jobs,
            max_wait,
            dummy_hash,
        })
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let busy = || {
            ApiError::new(
                ErrorCode::ServerBusy,
                "too many logins at once; try again in a moment",
            )
        };
        let deadline = Instant::now() + self.max_wait;
        let (done, result) = crossbeam_channel::bounded(1);
        let job: Job = Box::new(move |argon| {
            let _ = done.send(f(argon));
        });
        self.jobs.send_deadline(job, deadline).map_err(|_| busy())?;
        result.recv_deadline(deadline).map_err(|_| busy())
    }

    /// Hashes a password with a fresh random salt into a PHC string.
    pub fn hash(&self, password: &str) -> Result<String, ApiError> {
        let password = password.to_string();
        self.run(move |argon| {
            let salt = SaltString::generate(&mut OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| ApiError::new(ErrorCode::Internal, format!("hashing failed: {e}")))
        })?
    }

    /// Verifies a password against a stored PHC string (or, with `None`,
    /// against a dummy hash, to take the same time); true on a match.
    pub fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, ApiError> {
        let phc = stored.unwrap_or(&self.dummy_hash).to_string();
        let password = password.to_string();
        let matched = self.run(move |argon| match PasswordHash::new(&phc) {
            Ok(parsed) => argon.verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(e) => {
                log::error!("a stored password hash does not parse: {e}");
                false
            }
        })?;
        Ok(matched && stored.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_rules() {
        for ok in ["bob", "alice_2", "a.b-c", "0zero"] {
            assert!(check_username(ok).is_ok(), "{ok}");
        }
        for bad in ["", "ab", "Alice", "_bob", "bob!", "ünï", &"a".repeat(33)] {
            assert_eq!(
                check_username(bad).unwrap_err().code,
                ErrorCode::InvalidUsername,
                "{bad}"
            );
        }
    }

    #[test]
    fn hash_and_verify() {
        let h = Hasher::new(2, Duration::from_secs(5));
        let phc = h.hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(!phc.contains("correct horse"));
        assert!(h.verify("correct horse", Some(&phc)).unwrap());
        assert!(!h.verify("wrong horse", Some(&phc)).unwrap());
        assert!(!h.verify("correct horse", None).unwrap());
        assert_ne!(phc, h.hash("correct horse").unwrap(), "salt must be random");
    }
}
