//! Request handlers: a typed [`Request`] in, a typed reply out, no sockets.
//!
//! [`Registry`] holds what every client thread shares: the store, the
//! password hasher, the login limiter and the heartbeat batch. Per-connection
//! state ([`Conn`]) is only which session the connection has logged in to,
//! held in memory so that authenticating a request reads no store.
//! Time comes from the registry's [`Clock`], never from the system directly.
//!
//! - `sessions`: register, login, resume, and which connection holds
//!   which session.
//! - `offline`: taking sessions offline (closed connection, time-out,
//!   restart, purge) and out of their rooms.
//! - `tests`: unit tests of every handler on the in-memory store and a
//!   manual clock.

use super::auth::{self, Hasher};
use super::clock::{Clock, SystemClock};
use super::config::Config;
use super::limiter::LoginLimiter;
use super::presence::Presence;
use super::store::{Endpoint, OnlineQuery, RoomRecord, SessionRecord, Store, StoreError};
use crate::protocol::*;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

mod announce;
mod joining;
mod offline;
mod policy;
mod roles;
mod roomkeys;
mod sessions;
mod social;
pub use sessions::RECHECK;
#[cfg(test)]
mod tests;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Unavailable(m) => {
                log::warn!("store unavailable: {m}");
                ApiError::new(
                    ErrorCode::StoreUnavailable,
                    "the registry's database is unavailable; try again shortly",
                )
            }
            other => {
                log::error!("store: {other}");
                ApiError::new(ErrorCode::Internal, format!("{other}"))
            }
        }
    }
}

/// One client connection's state.
#[derive(Debug)]
pub struct Conn {
    /// Unique within this process.
    pub id: u64,
    /// The address the registry sees the client at.
    pub ip: IpAddr,
    /// The session this connection logged in to.
    pub session: Option<ConnSession>,
}

/// The session a connection logged in to (or resumed), as this process
/// knows it without asking the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnSession {
    pub token_hash: String,
    pub username: String,
    /// When the store last confirmed that the session is still attached
    /// here (see `sessions::RECHECK`).
    pub checked_ms: i64,
}

/// Shared state of a running registry.
pub struct Registry {
    pub store: Arc<dyn Store>,
    pub config: Config,
    pub instance: String,
    pub heartbeat_port: u16,
    pub presence: Presence,
    pub clock: Arc<dyn Clock>,
    hasher: Hasher,
    limiter: LoginLimiter,
    /// Wrong room passwords, limited like logins (see `roles`).
    room_limiter: LoginLimiter,
    /// Announcements as last read from the store (see `announce`).
    announcements: std::sync::Mutex<announce::AnnouncementCache>,
    /// Users taken offline whose room leaves the store refused (during a
    /// MongoDB election, say): retried until done, see `offline.rs`.
    unfinished_leaves: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

fn api(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

fn endpoint(
    ip: IpAddr,
    tcp_port: u16,
    udp_port: u16,
    advertise: &Option<String>,
    keys: Option<PeerKeys>,
) -> Result<Endpoint, ApiError> {
    addr::check_ports(tcp_port, udp_port)?;
    let ip = addr::peer_ip(ip, advertise.as_deref())?;
    if let Some(k) = &keys {
        crate::identity::PublicKeys::from_wire(k)
            .map_err(|e| api(ErrorCode::InvalidKeys, format!("invalid keys: {e}")))?;
    }
    Ok(Endpoint {
        ip: ip.to_string(),
        tcp_port,
        udp_port,
        keys,
    })
}

impl Registry {
    pub fn new(
        store: Arc<dyn Store>,
        config: Config,
        instance: String,
        heartbeat_port: u16,
    ) -> Result<Registry, String> {
        Self::with_clock(
            store,
            config,
            instance,
            heartbeat_port,
            Arc::new(SystemClock),
        )
    }

    /// A registry that reads time from `clock` (tests pass a manual one).
    pub fn with_clock(
        store: Arc<dyn Store>,
        config: Config,
        instance: String,
        heartbeat_port: u16,
        clock: Arc<dyn Clock>,
    ) -> Result<Registry, String> {
        let hasher = Hasher::with_cost(
            config.hash_concurrency,
            Duration::from_secs(10),
            config.argon2_m_kib,
            config.argon2_passes,
        )?;
        Ok(Registry {
            hasher,
            limiter: LoginLimiter::new(Duration::from_secs(60), Duration::from_secs(60))
                .with_clock(clock.clone()),
            room_limiter: LoginLimiter::new(Duration::from_secs(60), Duration::from_secs(60))
                .with_clock(clock.clone()),
            announcements: Default::default(),
            presence: Presence::new(clock.clone()),
            clock,
            store,
            config,
            instance,
            heartbeat_port,
            unfinished_leaves: Default::default(),
        })
    }

    /// Wall-clock milliseconds since the Unix epoch (shared across registries).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn timeout_ms(&self) -> i64 {
        self.config.session_timeout.as_millis() as i64
    }

    /// Online: attached to a connection and heard from within the timeout.
    pub fn is_online(&self, s: &SessionRecord, now: i64) -> bool {
        s.attached && s.last_seen_ms >= now - self.timeout_ms()
    }

    fn info(&self, username: String, session: Option<&SessionRecord>, now: i64) -> UserInfo {
        match session.filter(|s| self.is_online(s, now)) {
            Some(s) => UserInfo {
                username,
                online: true,
                address: Some(Address {
                    ip: s.ip.clone(),
                    tcp_port: s.tcp_port,
                    udp_port: s.udp_port,
                }),
                keys: s.keys.clone(),
            },
            None => UserInfo {
                username,
                online: false,
                address: None,
                keys: None,
            },
        }
    }

    /// Handles one request for `conn`.
    pub fn handle(&self, conn: &mut Conn, req: Request) -> Result<ReplyBody, ApiError> {
        match req {
            Request::Register { username, password } => self.register(&username, &password),
            Request::Login {
                username,
                password,
                tcp_port,
                udp_port,
                advertise_ip,
                keys,
                ..
            } => {
                let ep = endpoint(conn.ip, tcp_port, udp_port, &advertise_ip, keys)?;
                self.login(conn, &username, &password, ep)
            }
            Request::Resume {
                token,
                tcp_port,
                udp_port,
                advertise_ip,
                keys,
                ..
            } => {
                let ep = endpoint(conn.ip, tcp_port, udp_port, &advertise_ip, keys)?;
                self.resume(conn, &token, ep)
            }
            other => {
                let token = other.token().unwrap_or_default().to_string();
                let me = self.authenticate(conn, &token)?;
                self.authed(conn, me, other)
            }
        }
    }

    fn authed(
        &self,
        conn: &mut Conn,
        me: ConnSession,
        req: Request,
    ) -> Result<ReplyBody, ApiError> {
        let now = self.now_ms();
        match req {
            Request::Logout { .. } => {
                self.store.delete_session(&me.token_hash)?;
                self.presence.release(&me.token_hash, conn.id);
                conn.session = None;
                self.leave_all_rooms(&me.username);
                log::info!("{} logged out", me.username);
                Ok(ReplyBody::Empty {})
            }
            Request::Heartbeat {
                announcements_after,
                ..
            } => {
                self.presence.touch(me.token_hash);
                match announcements_after {
                    Some(after) => self.announcements_reply(after),
                    None => Ok(ReplyBody::Empty {}),
                }
            }
            Request::Search { username, .. } => {
                let found = match auth::check_username(&username) {
                    Ok(()) => self.store.find_user_with_session(&username)?,
                    Err(_) => None,
                };
                let Some((_, s)) = found else {
                    return Err(api(
                        ErrorCode::UserNotFound,
                        format!("no user named {username:?}"),
                    ));
                };
                let away = s.as_ref().and_then(|s| s.away.clone());
                Ok(ReplyBody::User {
                    user: self.info(username, s.as_ref(), now),
                    away,
                })
            }
            Request::Online {
                limit,
                after,
                prefix,
                ..
            } => self.online(now, limit, after.as_deref(), prefix.as_deref()),
            Request::CreateRoom { room, password, .. } => {
                RoomName::parse(&room)?;
                let password_hash = self.room_password_hash(password.as_deref())?;
                let record = RoomRecord {
                    name: room.clone(),
                    // No key yet: a member makes it (`room_key`).
                    key: String::new(),
                    epoch: 1,
                    created_ms: now,
                    topic: None,
                };
                match self.store.create_room(&record, &me.username) {
                    Ok(()) => {
                        log::info!("{} created room {room}", me.username);
                        let p = self.room_created(&room, &me.username, password_hash)?;
                        self.room_reply(&room, true, &me.username, Some(p))
                    }
                    Err(StoreError::Conflict) => Err(api(
                        ErrorCode::RoomExists,
                        format!("room {room} already exists"),
                    )),
                    Err(e) => Err(e.into()),
                }
            }
            Request::JoinRoom { room, password, .. } => {
                RoomName::parse(&room)?;
                self.join(&me, conn.ip, &room, password.as_deref())
            }
            Request::LeaveRoom { room, .. } => {
                RoomName::parse(&room)?;
                if self.store.find_room(&room)?.is_none() {
                    return Err(no_such_room(&room));
                }
                let left = self.store.remove_member(&room, &me.username, "")?;
                if !left.removed {
                    return Err(api(
                        ErrorCode::NotAMember,
                        format!("you are not in room {room}"),
                    ));
                }
                self.member_gone(&room, &me.username, left, false);
                Ok(ReplyBody::Left {
                    room,
                    deleted: left.room_deleted,
                })
            }
            Request::Rooms { .. } => Ok(social::rooms_reply(self.store.list_rooms()?)),
            Request::Members { room, .. } => {
                RoomName::parse(&room)?;
                let members = self.store.members_with_sessions(&room)?;
                let is_member = members.iter().any(|(u, _)| *u == me.username);
                self.room_reply_of(&room, is_member, members, &me.username, None)
            }
            Request::RoomKey {
                room,
                epoch,
                packages,
                ..
            } => self.room_key(&me, &room, epoch, packages),
            Request::SetTopic { room, topic, .. } => {
                RoomName::parse(&room)?;
                self.require_operator(&me, &room)
                    .map_err(|e| match e.code {
                        ErrorCode::NotAMember => api(
                            ErrorCode::NotAMember,
                            format!("only members of room {room} can set its topic"),
                        ),
                        _ => e,
                    })?;
                self.set_topic(&me, &room, &topic)
            }
            Request::Announce { text, .. } => self.announce(&me, &text),
            Request::SetAway { away, .. } => self.set_away(&me, &away),
            Request::Kick { .. }
            | Request::Ban { .. }
            | Request::Unban { .. }
            | Request::Op { .. }
            | Request::Deop { .. }
            | Request::Invite { .. }
            | Request::Lock { .. }
            | Request::Unlock { .. } => self.moderation_request(&me, req),
            Request::Register { .. } | Request::Login { .. } | Request::Resume { .. } => {
                Err(api(ErrorCode::Internal, "unreachable"))
            }
        }
    }

    /// One page of the online list: one store query.
    fn online(
        &self,
        now: i64,
        limit: Option<u64>,
        after: Option<&str>,
        prefix: Option<&str>,
    ) -> Result<ReplyBody, ApiError> {
        let limit = match limit.unwrap_or(ONLINE_PAGE) {
            0 => return Err(api(ErrorCode::BadRequest, "`limit` must be at least 1")),
            n => n.min(ONLINE_PAGE_MAX) as usize,
        };
        let prefix = prefix.unwrap_or("");
        for (field, value) in [("prefix", Some(prefix)), ("after", after)] {
            if !value.is_none_or(names::is_username_text) {
                return Err(api(
                    ErrorCode::BadRequest,
                    format!(
                        "`{field}` must be at most {} characters of a-z, 0-9, '_', '.', '-'",
                        names::USERNAME_MAX
                    ),
                ));
            }
        }
        let page = self.store.online_page(&OnlineQuery {
            fresh_since_ms: now - self.timeout_ms(),
            prefix,
            after,
            limit,
        })?;
        let next = page
            .more
            .then(|| page.sessions.last().map(|s| s.username.clone()))
            .flatten();
        let away = social::away_of(&page.sessions);
        let users = page
            .sessions
            .into_iter()
            .map(|s| self.info(s.username.clone(), Some(&s), now))
            .collect();
        Ok(ReplyBody::Users {
            users,
            total: Some(page.total),
            next,
            away,
        })
    }

    /// A room with its members; the key epoch, maker, the caller's sealed
    /// key and who still needs one only for members.
    fn room_reply(
        &self,
        room: &str,
        with_key: bool,
        caller: &str,
        policy: Option<policy::Policy>,
    ) -> Result<ReplyBody, ApiError> {
        let members = self.store.members_with_sessions(room)?;
        self.room_reply_of(room, with_key, members, caller, policy)
    }

    /// [`Self::room_reply`] with the member list already read.
    fn room_reply_of(
        &self,
        room: &str,
        with_key: bool,
        members: Vec<(String, Option<SessionRecord>)>,
        caller: &str,
        policy: Option<policy::Policy>,
    ) -> Result<ReplyBody, ApiError> {
        let record = self
            .store
            .find_room(room)?
            .ok_or_else(|| no_such_room(room))?;
        self.room_reply_from(record, with_key, members, caller, policy)
    }

    /// [`Self::room_reply_of`] with the room's record already read.
    fn room_reply_from(
        &self,
        record: RoomRecord,
        with_key: bool,
        members: Vec<(String, Option<SessionRecord>)>,
        caller: &str,
        policy: Option<policy::Policy>,
    ) -> Result<ReplyBody, ApiError> {
        let room = record.name.as_str();
        let names: Vec<String> = members.iter().map(|(u, _)| u.clone()).collect();
        // The policy just written (create, join), or read and brought in
        // line with the members (a room older than roles gets its owner).
        let policy = match policy {
            Some(p) => p,
            None => self.update_policy(room, Some(&names), |_| Ok(()))?.1,
        };
        let now = self.now_ms();
        let members: Vec<UserInfo> = members
            .into_iter()
            .map(|(u, s)| self.info(u, s.as_ref(), now))
            .collect();
        let (key_maker, key_package, needs_key) = match with_key {
            true => roomkeys::key_fields(&record.key, caller, &members),
            false => (None, None, Vec::new()),
        };
        Ok(ReplyBody::Room {
            room: RoomInfo {
                name: record.name,
                epoch: with_key.then_some(record.epoch),
                key_maker,
                key_package,
                needs_key,
                members,
            },
            topic: record.topic.map(|t| TopicInfo {
                text: t.text,
                by: t.by,
            }),
            roles: policy.roles(),
            locked: policy.locked,
            password: policy.password_hash.is_some(),
            kicked: (!with_key)
                .then(|| policy.kicked.get(caller).cloned())
                .flatten(),
        })
    }
}

fn no_such_room(room: &str) -> ApiError {
    api(ErrorCode::NoSuchRoom, format!("there is no room {room}"))
}
