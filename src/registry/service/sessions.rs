//! Accounts and sessions: register, login, resume, and which connection
//! holds which session (a token only works on the connection holding it).
//!
//! Authenticating a request reads no store: the connection's session is
//! kept in its [`Conn`], which connection holds it and when it was last
//! heard from in [`Presence`](crate::registry::presence::Presence). What
//! only the store knows is whether another registry instance took the
//! session over (`resume` there): that is asked at most once per
//! [`RECHECK`] per connection, so a session resumed elsewhere stops working
//! here within [`RECHECK`].

use super::{api, Conn, ConnSession, Registry};
use crate::protocol::heartbeat::HeartbeatKey;
use crate::protocol::*;
use crate::registry::auth;
use crate::registry::store::{Endpoint, SessionRecord, StoreError, UserRecord};
use std::time::Duration;

/// How long a connection trusts its in-memory session before asking the
/// store again whether the session is still attached to this instance.
pub const RECHECK: Duration = Duration::from_secs(2);

/// Equal strings, in time that depends only on their lengths.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

impl Registry {
    fn session_reply(&self, token: String, s: &SessionRecord, hb: HeartbeatKey) -> ReplyBody {
        ReplyBody::Session(SessionReply {
            username: s.username.clone(),
            token,
            address: Address {
                ip: s.ip.clone(),
                tcp_port: s.tcp_port,
                udp_port: s.udp_port,
            },
            heartbeat_interval_ms: self.config.heartbeat_interval.as_millis() as u64,
            session_timeout_ms: self.config.session_timeout.as_millis() as u64,
            heartbeat_port: self.heartbeat_port,
            heartbeat_id: hb.sid_hex(),
            heartbeat_key: hb.key_hex(),
        })
    }

    fn hold(&self, s: &SessionRecord, conn: &mut Conn) -> HeartbeatKey {
        let hb = self.presence.hold(&s.token_hash, conn.id);
        conn.session = Some(ConnSession {
            token_hash: s.token_hash.clone(),
            username: s.username.clone(),
            checked_ms: self.now_ms(),
        });
        hb
    }

    pub(super) fn register(&self, username: &str, password: &str) -> Result<ReplyBody, ApiError> {
        auth::check_username(username)?;
        auth::check_password(password)?;
        // Cheap early answer; the unique index decides races.
        if self.store.find_user(username)?.is_some() {
            return Err(api(
                ErrorCode::UserExists,
                format!("{username} is already registered"),
            ));
        }
        let password_hash = self.hasher.hash(password)?;
        let user = UserRecord {
            username: username.to_string(),
            password_hash,
            created_ms: self.now_ms(),
        };
        match self.store.create_user(&user) {
            Ok(()) => {
                log::info!("registered {username}");
                Ok(ReplyBody::Registered {
                    username: username.to_string(),
                })
            }
            Err(StoreError::Conflict) => Err(api(
                ErrorCode::UserExists,
                format!("{username} is already registered"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) fn login(
        &self,
        conn: &mut Conn,
        username: &str,
        password: &str,
        ep: Endpoint,
    ) -> Result<ReplyBody, ApiError> {
        if self.holds_live_session(conn) {
            return Err(api(
                ErrorCode::AlreadyOnline,
                "this connection is already logged in; log out first",
            ));
        }
        // Refused if the address is blocked; slowed down if this name has
        // recently failed from this address (see `limiter`).
        let delay = self.limiter.check(username, conn.ip)?;
        if !delay.is_zero() {
            self.clock.sleep(delay);
        }
        let user = if auth::check_username(username).is_ok() {
            self.store.find_user(username)?
        } else {
            None
        };
        if !self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))?
        {
            self.limiter.record_failure(username, conn.ip);
            log::info!("failed login for {username:?} from {}", conn.ip);
            return Err(api(
                ErrorCode::InvalidCredentials,
                "wrong username or password",
            ));
        }
        self.limiter.record_success(username, conn.ip);
        let token = auth::new_token();
        let now = self.now_ms();
        let session = SessionRecord {
            token_hash: auth::token_hash(&token),
            username: username.to_string(),
            ip: ep.ip,
            tcp_port: ep.tcp_port,
            udp_port: ep.udp_port,
            last_seen_ms: now,
            instance: self.instance.clone(),
            attached: true,
            created_ms: now,
            away: None,
            keys: ep.keys,
        };
        // One session per user, enforced by the store's unique key. An old
        // session that is no longer online is replaced; a live one wins.
        for _ in 0..3 {
            match self.store.insert_session(&session) {
                Ok(()) => {
                    let hb = self.hold(&session, conn);
                    log::info!("{username} logged in from {}", conn.ip);
                    return Ok(self.session_reply(token, &session, hb));
                }
                Err(StoreError::Conflict) => match self.store.session_by_user(username)? {
                    Some(old) if self.is_online(&old, self.now_ms()) => break,
                    Some(old) => {
                        self.store.delete_session(&old.token_hash)?;
                        self.leave_all_rooms(username);
                    }
                    None => {}
                },
                Err(e) => return Err(e.into()),
            }
        }
        Err(api(
            ErrorCode::AlreadyOnline,
            format!("{username} is already online elsewhere"),
        ))
    }

    pub(super) fn resume(
        &self,
        conn: &mut Conn,
        token: &str,
        ep: Endpoint,
    ) -> Result<ReplyBody, ApiError> {
        let hash = auth::token_hash(token);
        let same_session = conn.session.as_ref().map(|s| s.token_hash.as_str()) == Some(&hash);
        if !same_session && self.holds_live_session(conn) {
            return Err(api(
                ErrorCode::AlreadyOnline,
                "this connection is already logged in; log out first",
            ));
        }
        let Some(old) = self.store.session_by_token(&hash)? else {
            return Err(api(
                ErrorCode::InvalidSession,
                "no such session; log in again",
            ));
        };
        if !self
            .store
            .attach_session(&hash, &ep, &self.instance, self.now_ms())?
        {
            return Err(api(
                ErrorCode::InvalidSession,
                "no such session; log in again",
            ));
        }
        let session = SessionRecord {
            ip: ep.ip,
            tcp_port: ep.tcp_port,
            udp_port: ep.udp_port,
            keys: ep.keys,
            attached: true,
            instance: self.instance.clone(),
            ..old
        };
        let hb = self.hold(&session, conn);
        log::info!("{} resumed a session from {}", session.username, conn.ip);
        Ok(self.session_reply(token.to_string(), &session, hb))
    }

    /// Whether this connection holds a session that is online, as this
    /// process knows it (no store read).
    pub fn holds_live_session(&self, conn: &Conn) -> bool {
        conn.session.as_ref().is_some_and(|s| {
            self.presence.held(&s.token_hash).is_some_and(|h| {
                h.conn == conn.id && h.seen_ms >= self.now_ms() - self.timeout_ms()
            })
        })
    }

    /// The live session behind `token`, which must be the one this
    /// connection logged in to. Reads the store only on failure (to tell a
    /// session held elsewhere from none) and once per [`RECHECK`].
    pub(super) fn authenticate(
        &self,
        conn: &mut Conn,
        token: &str,
    ) -> Result<ConnSession, ApiError> {
        let hash = auth::token_hash(token);
        let now = self.now_ms();
        let held = conn.session.as_ref().filter(|s| same(&s.token_hash, &hash));
        let here = held.and_then(|_| self.presence.held(&hash));
        let Some((mine, seen_ms)) = held.zip(here.filter(|h| h.conn == conn.id).map(|h| h.seen_ms))
        else {
            return Err(match self.store.session_by_token(&hash)? {
                None => no_session(),
                Some(_) => not_yours(),
            });
        };
        if seen_ms < now - self.timeout_ms() {
            return Err(api(
                ErrorCode::InvalidSession,
                "the session went offline (no heartbeats); resume it",
            ));
        }
        let mut mine = mine.clone();
        if now - mine.checked_ms >= RECHECK.as_millis() as i64 {
            self.recheck(conn, &mut mine, now)?;
        }
        Ok(mine)
    }

    /// Asks the store whether the connection's session is still attached
    /// to this instance. A store that cannot answer is not a reason to
    /// refuse (nobody can resume the session elsewhere through it either):
    /// the request goes on, and the store is asked again after [`RECHECK`].
    fn recheck(&self, conn: &mut Conn, mine: &mut ConnSession, now: i64) -> Result<(), ApiError> {
        mine.checked_ms = now;
        if let Some(s) = conn.session.as_mut() {
            s.checked_ms = now;
        }
        let stored = match self.store.session_by_token(&mine.token_hash) {
            Ok(stored) => stored,
            Err(e) => {
                log::warn!("cannot re-check the session of {}: {e}", mine.username);
                return Ok(());
            }
        };
        let gone = match &stored {
            None => Some(no_session()),
            Some(s) if s.instance != self.instance => Some(not_yours()),
            Some(s) if !s.attached => Some(api(
                ErrorCode::InvalidSession,
                "the session went offline (no heartbeats); resume it",
            )),
            Some(_) => None,
        };
        match gone {
            None => Ok(()),
            Some(e) => {
                // Taken over or ended elsewhere: this connection lets go of it.
                self.presence.release(&mine.token_hash, conn.id);
                conn.session = None;
                Err(e)
            }
        }
    }
}

fn no_session() -> ApiError {
    api(ErrorCode::InvalidSession, "no such session; log in again")
}

fn not_yours() -> ApiError {
    api(
        ErrorCode::NotYourSession,
        "that session is not this connection's; use resume to move it here",
    )
}
