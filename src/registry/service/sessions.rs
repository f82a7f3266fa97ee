//! Accounts and sessions: register, login, resume, and which connection
//! holds which session (a token only works on the connection holding it).

use super::{api, Conn, Registry};
use crate::protocol::*;
use crate::registry::auth;
use crate::registry::store::{Endpoint, SessionRecord, StoreError, UserRecord};

impl Registry {
    fn session_reply(&self, token: String, s: &SessionRecord) -> ReplyBody {
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
        })
    }

    fn hold(&self, token_hash: &str, conn: &mut Conn) {
        self.holders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token_hash.to_string(), conn.id);
        conn.session = Some(token_hash.to_string());
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
        if self.holds_live_session(conn)? {
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
        };
        // One session per user, enforced by the store's unique key. An old
        // session that is no longer online is replaced; a live one wins.
        for _ in 0..3 {
            match self.store.insert_session(&session) {
                Ok(()) => {
                    self.hold(&session.token_hash, conn);
                    log::info!("{username} logged in from {}", conn.ip);
                    return Ok(self.session_reply(token, &session));
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
        if conn.session.as_deref() != Some(hash.as_str()) && self.holds_live_session(conn)? {
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
        self.hold(&hash, conn);
        let session = SessionRecord {
            ip: ep.ip,
            tcp_port: ep.tcp_port,
            udp_port: ep.udp_port,
            attached: true,
            instance: self.instance.clone(),
            ..old
        };
        log::info!("{} resumed a session from {}", session.username, conn.ip);
        Ok(self.session_reply(token.to_string(), &session))
    }

    /// Whether this connection is bound to a session that is still online
    /// (and still held by this connection).
    fn holds_live_session(&self, conn: &Conn) -> Result<bool, ApiError> {
        let Some(held) = &conn.session else {
            return Ok(false);
        };
        if !self.is_holder(held, conn.id) {
            return Ok(false);
        }
        Ok(self
            .store
            .session_by_token(held)?
            .is_some_and(|s| self.is_online(&s, self.now_ms())))
    }

    fn is_holder(&self, token_hash: &str, conn_id: u64) -> bool {
        self.holders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token_hash)
            == Some(&conn_id)
    }

    /// The live session behind `token`, which must be the one this
    /// connection logged in to.
    pub(super) fn authenticate(&self, conn: &Conn, token: &str) -> Result<SessionRecord, ApiError> {
        let hash = auth::token_hash(token);
        let session = self.store.session_by_token(&hash)?;
        let mine = conn.session.as_deref() == Some(hash.as_str()) && self.is_holder(&hash, conn.id);
        match (&session, mine) {
            (None, _) => Err(api(
                ErrorCode::InvalidSession,
                "no such session; log in again",
            )),
            (Some(_), false) => Err(api(
                ErrorCode::NotYourSession,
                "that session is not this connection's; use resume to move it here",
            )),
            (Some(s), _) if !self.is_online(s, self.now_ms()) => Err(api(
                ErrorCode::InvalidSession,
                "the session went offline (no heartbeats); resume it",
            )),
            (Some(_), _) => Ok(session.unwrap_or_else(|| unreachable!())),
        }
    }
}
