//! Registry protocol messages (see `protocol.md`).
//!
//! A request is one JSON object with an `op` and an `id`; its reply echoes the
//! `id` and carries `"ok": true` with the op's fields, or `"ok": false` with a
//! stable [`ErrorCode`] and a human `message`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Every op the registry understands, in the order `protocol.md` lists them.
pub const OPS: &[&str] = &[
    "register",
    "login",
    "resume",
    "logout",
    "heartbeat",
    "search",
    "online",
    "create_room",
    "join_room",
    "leave_room",
    "rooms",
    "members",
    "room_key",
    "set_topic",
    "set_away",
    "kick",
    "ban",
    "unban",
    "op",
    "deop",
    "invite",
    "lock",
    "unlock",
    "announce",
];

/// Longest room topic, in bytes of UTF-8 (`topic_too_long` beyond).
pub const MAX_TOPIC: usize = 300;
/// Longest away message, in bytes of UTF-8 (`away_too_long` beyond).
pub const MAX_AWAY: usize = 200;

/// Longest announcement, in bytes of UTF-8 (`announcement_too_long` beyond).
pub const MAX_ANNOUNCEMENT: usize = 500;

/// `online` page size when the request names none.
pub const ONLINE_PAGE: u64 = 100;
/// Largest `online` page; a larger `limit` is cut to this.
pub const ONLINE_PAGE_MAX: u64 = 1000;

/// A parsed request. Unknown extra fields are ignored so that newer clients
/// can talk to older registries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Register {
        username: String,
        password: String,
    },
    Login {
        username: String,
        password: String,
        tcp_port: u16,
        udp_port: u16,
        /// Address other peers should use instead of the source address the
        /// registry sees (for machines with several interfaces).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        advertise_ip: Option<String>,
        /// This device's public identity keys (protocol version 2); the
        /// registry binds them to the name for this session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keys: Option<PeerKeys>,
    },
    /// Re-attach an existing session (after a reconnect or registry restart)
    /// without the password.
    Resume {
        token: String,
        tcp_port: u16,
        udp_port: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        advertise_ip: Option<String>,
        /// As in `login`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keys: Option<PeerKeys>,
    },
    Logout {
        token: String,
    },
    Heartbeat {
        token: String,
        /// The id of the last announcement this peer has seen (0: none);
        /// present, the reply carries the newer ones (see `protocol.md`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        announcements_after: Option<u64>,
    },
    Search {
        token: String,
        username: String,
    },
    /// One page of the online users, by name (see `protocol.md`).
    Online {
        token: String,
        /// Page size; absent: [`ONLINE_PAGE`], at most [`ONLINE_PAGE_MAX`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u64>,
        /// Only names after this one (the `next` of the previous page).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
        /// Only names starting with this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
    },
    CreateRoom {
        token: String,
        room: String,
        /// A room password: joining then needs it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
    },
    JoinRoom {
        token: String,
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
    },
    LeaveRoom {
        token: String,
        room: String,
    },
    Rooms {
        token: String,
    },
    Members {
        token: String,
        room: String,
    },
    /// A member hands over the room key of `epoch`, sealed to each member
    /// named in `packages` (username -> 160 hex digits, see
    /// `protocol::roomkey`). The first member to do so for an epoch becomes
    /// its key maker; after that only the maker may add packages (for
    /// members who join later). Reply: the room, as to `members`.
    RoomKey {
        token: String,
        room: String,
        epoch: u64,
        packages: std::collections::BTreeMap<String, String>,
    },
    /// Sets the topic of a room the caller is in; an empty `topic` clears it.
    SetTopic {
        token: String,
        room: String,
        #[serde(default)]
        topic: String,
    },
    /// Sets the caller's away message; absent or empty: back (no message).
    SetAway {
        token: String,
        #[serde(default)]
        away: String,
    },
    /// Owner or operators: takes `username` out of the room (re-keyed).
    Kick {
        token: String,
        room: String,
        username: String,
        #[serde(default)]
        reason: String,
    },
    /// Owner or operators: `username` cannot join (and is kicked if in).
    Ban {
        token: String,
        room: String,
        username: String,
    },
    Unban {
        token: String,
        room: String,
        username: String,
    },
    /// Owner only: makes a member an operator.
    Op {
        token: String,
        room: String,
        username: String,
    },
    Deop {
        token: String,
        room: String,
        username: String,
    },
    /// Owner or operators: lets `username` join once past the lock and the
    /// password.
    Invite {
        token: String,
        room: String,
        username: String,
    },
    /// Owner or operators: the room becomes invite-only.
    Lock {
        token: String,
        room: String,
    },
    Unlock {
        token: String,
        room: String,
    },
    /// Registry admins (`--admin`): a line every online user is shown.
    Announce {
        token: String,
        text: String,
    },
}

impl Request {
    /// The session token, for ops that need one.
    pub fn token(&self) -> Option<&str> {
        match self {
            Request::Register { .. } | Request::Login { .. } => None,
            Request::Resume { token, .. }
            | Request::Logout { token }
            | Request::Heartbeat { token, .. }
            | Request::Search { token, .. }
            | Request::Online { token, .. }
            | Request::CreateRoom { token, .. }
            | Request::JoinRoom { token, .. }
            | Request::LeaveRoom { token, .. }
            | Request::Rooms { token }
            | Request::Members { token, .. }
            | Request::RoomKey { token, .. }
            | Request::SetTopic { token, .. }
            | Request::SetAway { token, .. }
            | Request::Kick { token, .. }
            | Request::Ban { token, .. }
            | Request::Unban { token, .. }
            | Request::Op { token, .. }
            | Request::Deop { token, .. }
            | Request::Invite { token, .. }
            | Request::Lock { token, .. }
            | Request::Unlock { token, .. }
            | Request::Announce { token, .. } => Some(token),
        }
    }
}

/// A request line with its `id` (any JSON scalar; echoed verbatim).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: Value,
    #[serde(flatten)]
    pub request: Request,
}

macro_rules! error_codes {
    ($($(#[$meta:meta])* $variant:ident => $name:literal,)*) => {
        /// Stable machine-readable error codes. The `Display` form is the wire form.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ErrorCode {
            $($(#[$meta])* #[serde(rename = $name)] $variant,)*
        }

        impl ErrorCode {
            /// The wire name, e.g. `"rate_limited"`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)*
                }
            }
        }

        /// The wire names of every error code.
        pub const ALL_CODES: &[&str] = &[$($name,)*];
    };
}

error_codes! {
    /// The line is not JSON.
    BadJson => "bad_json",
    /// JSON, but not a request object: no `op`, a missing or mistyped field.
    BadRequest => "bad_request",
    /// `op` names no operation.
    UnknownOp => "unknown_op",
    /// The line is longer than 64 KiB (the connection is closed).
    LineTooLong => "line_too_long",
    /// The line is not UTF-8 (the connection is closed).
    BadEncoding => "bad_encoding",
    /// Username breaks the rules (3-32 of `a-z 0-9 _ . -`, starting with a letter or digit).
    InvalidUsername => "invalid_username",
    /// Password shorter than 8 characters (or longer than 1024 bytes).
    WeakPassword => "weak_password",
    /// `advertise_ip` is not an IP address, or a port is 0.
    InvalidAddress => "invalid_address",
    /// `keys` are not two 64-hex-digit public keys (or `sign` is not an
    /// Ed25519 point).
    InvalidKeys => "invalid_keys",
    UserExists => "user_exists",
    /// Unknown user or wrong password (deliberately not told apart).
    InvalidCredentials => "invalid_credentials",
    /// Too many failed logins for this username or from this address.
    RateLimited => "rate_limited",
    /// The user already has a live session.
    AlreadyOnline => "already_online",
    /// The token names no session (never issued, logged out, or expired).
    InvalidSession => "invalid_session",
    /// This connection is bound to another session.
    NotYourSession => "not_your_session",
    UserNotFound => "user_not_found",
    InvalidRoomName => "invalid_room_name",
    RoomExists => "room_exists",
    NoSuchRoom => "no_such_room",
    NotAMember => "not_a_member",
    /// A `room_key` for an epoch that is not the room's current one.
    StaleEpoch => "stale_epoch",
    /// A `room_key` for an epoch whose key another member made.
    KeyExists => "key_exists",
    /// A `set_topic` topic longer than [`MAX_TOPIC`] bytes.
    TopicTooLong => "topic_too_long",
    /// A `set_away` message longer than [`MAX_AWAY`] bytes.
    AwayTooLong => "away_too_long",
    /// Too much work queued (password hashing); try again shortly.
    ServerBusy => "server_busy",
    /// The store (database) cannot be reached; try again.
    StoreUnavailable => "store_unavailable",
    /// The source address has `--max-connections-per-ip` connections open
    /// already (the new connection is closed).
    TooManyConnections => "too_many_connections",
    /// The registry's shared memory for unfinished lines is spent (the
    /// connection whose line needed more is closed).
    BuffersFull => "buffers_full",
    /// Only the room's owner or operators may do this.
    NotOperator => "not_operator",
    /// Only the room's owner may do this (or: the target outranks you).
    NotOwner => "not_owner",
    /// Only the registry's admins (`--admin`) may announce.
    NotAdmin => "not_admin",
    /// The caller is banned from the room.
    Banned => "banned",
    /// The room is invite-only and the caller was not invited.
    RoomLocked => "room_locked",
    /// The room has a password and the request gave none.
    RoomPasswordRequired => "room_password_required",
    /// The room password given is wrong.
    WrongRoomPassword => "wrong_room_password",
    /// An announcement longer than [`MAX_ANNOUNCEMENT`] bytes.
    AnnouncementTooLong => "announcement_too_long",
    /// A plaintext client reached a registry that speaks TLS (sent in
    /// plaintext, then the connection is closed).
    TlsRequired => "tls_required",
    /// A bug in the registry; the message says more.
    Internal => "internal",
    /// Never sent by the registry: a peer's own error when the registry
    /// could not be reached, or did not answer, in time.
    RegistryUnreachable => "registry_unreachable",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error reply's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

/// Where a peer can be reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub ip: String,
    pub tcp_port: u16,
    pub udp_port: u16,
}

/// A user as `search`, `online` and room replies show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInfo {
    pub username: String,
    pub online: bool,
    /// Present only while the user is online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// The public identity keys the user's session logged in with, as the
    /// registry vouches for them; present with `address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<PeerKeys>,
}

/// Public identity keys (see `crate::identity`): `sign` is an Ed25519
/// public key, `kx` an X25519 public key, each 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerKeys {
    pub sign: String,
    pub kx: String,
}

/// A room with its members (reply to `create_room`, `join_room`, `members`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomInfo {
    pub name: String,
    /// The current key epoch: it grows by one each time a member leaves
    /// (or is taken out when its session ends), and the room then needs a
    /// new key. Only members are told it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// The member who made the current epoch's room key (the first to send
    /// `room_key` for it); absent while the epoch has no key yet. Members
    /// only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_maker: Option<String>,
    /// The current epoch's room key sealed to the caller by `key_maker`
    /// (160 hex digits); absent until the maker has sealed one for it. The
    /// registry cannot open it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_package: Option<String>,
    /// Members the maker has not yet sealed the current key to (all of
    /// them while there is no maker). Members only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs_key: Vec<String>,
    pub members: Vec<UserInfo>,
}

/// One line of the `rooms` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomSummary {
    pub name: String,
    pub members: u64,
}

/// A room's topic and who set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicInfo {
    pub text: String,
    pub by: String,
}

/// The body of a successful reply, one shape per op.
///
/// What newer registries add (`topic`, `topics`, `away`) sits beside the
/// older fields, never inside [`RoomInfo`], [`UserInfo`] or
/// [`RoomSummary`] (which deny unknown fields), so older peers still read
/// every reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReplyBody {
    /// login, resume
    Session(SessionReply),
    /// search; `away`: the user's away message, if they set one.
    User {
        user: UserInfo,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        away: Option<String>,
    },
    /// online: one page, how many match in all, and the cursor of the
    /// next page (absent from old registries: then the list is complete).
    /// `away`: the away messages of the users on the page who set one.
    Users {
        users: Vec<UserInfo>,
        #[serde(default)]
        total: Option<u64>,
        #[serde(default)]
        next: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        away: BTreeMap<String, String>,
    },
    /// create_room, join_room, members; `topic` when the room has one;
    /// `roles`: the owner and operators; `locked`, `password` when set;
    /// `kicked`: to a caller taken out by a kick or ban.
    Room {
        room: RoomInfo,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<TopicInfo>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        roles: BTreeMap<String, Role>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        locked: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        password: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kicked: Option<KickInfo>,
    },
    /// kick, ban, unban, op, deop, invite, lock, unlock: what was done.
    Moderated {
        room: String,
        action: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
    },
    /// announce: the announcement as stored.
    Announced { announcement: Announcement },
    /// heartbeat with `announcements_after`, when newer ones exist.
    Announcements { announcements: Vec<Announcement> },
    /// rooms; `topics`: the topic of each room that has one.
    Rooms {
        rooms: Vec<RoomSummary>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        topics: BTreeMap<String, String>,
    },
    /// leave_room
    Left { room: String, deleted: bool },
    /// set_topic: the room's topic now (`null`: cleared).
    Topic {
        room: String,
        topic: Option<TopicInfo>,
    },
    /// register
    Registered { username: String },
    /// logout, heartbeat
    Empty {},
}

/// A member's role in a room (members without one are not listed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Operator,
    Owner,
}

/// Why the caller is no longer in a room: who took it out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KickInfo {
    pub by: String,
    #[serde(default)]
    pub reason: String,
    /// A ban, not only a kick.
    #[serde(default)]
    pub banned: bool,
}

/// One announcement from a registry admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// Increasing; peers ask for those after the last one they saw.
    pub id: u64,
    pub by: String,
    pub text: String,
    pub at_ms: i64,
}

/// Reply to `login` and `resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionReply {
    pub username: String,
    pub token: String,
    /// The address other peers will be given for this user.
    pub address: Address,
    /// How often to send a heartbeat (UDP datagram or `heartbeat` request).
    pub heartbeat_interval_ms: u64,
    /// After this long without a heartbeat the session goes offline.
    pub session_timeout_ms: u64,
    /// The registry's UDP port for heartbeat datagrams.
    pub heartbeat_port: u16,
    /// Names the session in heartbeat datagrams (16 bytes, hex; not the token).
    pub heartbeat_id: String,
    /// The key heartbeat datagrams are MACed with (32 bytes, hex).
    pub heartbeat_key: String,
}

/// A reply line as it travels: `{"id":…,"ok":true,…}` or
/// `{"id":…,"ok":false,"code":…,"message":…}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub id: Value,
    pub result: Result<ReplyBody, ApiError>,
}

impl Reply {
    pub fn ok(id: Value, body: ReplyBody) -> Self {
        Reply {
            id,
            result: Ok(body),
        }
    }

    pub fn err(id: Value, err: ApiError) -> Self {
        Reply {
            id,
            result: Err(err),
        }
    }

    /// The reply as a JSON object.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("id".into(), self.id.clone());
        match &self.result {
            Ok(body) => {
                map.insert("ok".into(), Value::Bool(true));
                if let Ok(Value::Object(fields)) = serde_json::to_value(body) {
                    map.extend(fields);
                }
            }
            Err(e) => {
                map.insert("ok".into(), Value::Bool(false));
                map.insert("code".into(), Value::String(e.code.as_str().into()));
                map.insert("message".into(), Value::String(e.message.clone()));
            }
        }
        Value::Object(map)
    }

    /// Parses a reply line; the body is kept as the untagged [`ReplyBody`].
    pub fn from_value(v: Value) -> Result<Reply, String> {
        let Value::Object(mut map) = v else {
            return Err("reply is not an object".into());
        };
        let id = map.remove("id").ok_or("reply has no id")?;
        let ok = map
            .remove("ok")
            .and_then(|v| v.as_bool())
            .ok_or("reply has no boolean ok")?;
        if ok {
            let body: ReplyBody =
                serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())?;
            Ok(Reply::ok(id, body))
        } else {
            let err: ApiError =
                serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())?;
            Ok(Reply::err(id, err))
        }
    }
}

impl Serialize for Reply {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

/// Parses one request line. On failure, returns the error together with the
/// `id` recovered from the line (or `null`), so the error reply can echo it.
pub fn parse_request(line: &str) -> Result<Envelope, (Value, ApiError)> {
    let value: Value = serde_json::from_str(line).map_err(|e| {
        (
            Value::Null,
            ApiError::new(ErrorCode::BadJson, format!("not valid JSON: {e}")),
        )
    })?;
    let Value::Object(mut map) = value else {
        return Err((
            Value::Null,
            ApiError::new(ErrorCode::BadRequest, "a request must be a JSON object"),
        ));
    };
    let id = match map.remove("id") {
        None => Value::Null,
        Some(v @ (Value::Number(_) | Value::String(_) | Value::Null)) => v,
        Some(_) => {
            return Err((
                Value::Null,
                ApiError::new(ErrorCode::BadRequest, "`id` must be a number or a string"),
            ))
        }
    };
    let op = match map.get("op") {
        None => {
            return Err((
                id,
                ApiError::new(ErrorCode::BadRequest, "missing field `op`"),
            ))
        }
        Some(Value::String(op)) => op.clone(),
        Some(_) => {
            return Err((
                id,
                ApiError::new(ErrorCode::BadRequest, "`op` must be a string"),
            ))
        }
    };
    if !OPS.contains(&op.as_str()) {
        let shown: String = op.chars().take(40).collect();
        return Err((
            id,
            ApiError::new(ErrorCode::UnknownOp, format!("unknown op `{shown}`")),
        ));
    }
    match serde_json::from_value::<Request>(Value::Object(map)) {
        Ok(request) => Ok(Envelope { id, request }),
        Err(e) => Err((
            id,
            ApiError::new(ErrorCode::BadRequest, format!("bad `{op}` request: {e}")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_code_names_match_the_list() {
        for name in ALL_CODES {
            let code: ErrorCode = serde_json::from_value(json!(name)).unwrap();
            assert_eq!(code.as_str(), *name);
        }
    }

    #[test]
    fn ops_list_matches_the_enum() {
        for op in OPS {
            let err = parse_request(&json!({"id": 1, "op": op}).to_string()).unwrap_err();
            assert_eq!(err.1.code, ErrorCode::BadRequest, "{op}");
            assert!(err.1.message.contains("missing field"), "{op}: {}", err.1);
        }
    }

    #[test]
    fn parse_errors_keep_the_id() {
        let (id, e) = parse_request(r#"{"id":"a7","op":"nope"}"#).unwrap_err();
        assert_eq!((id, e.code), (json!("a7"), ErrorCode::UnknownOp));
        let (id, e) = parse_request(r#"{"id":3,"op":"search","token":5}"#).unwrap_err();
        assert_eq!((id, e.code), (json!(3), ErrorCode::BadRequest));
        let (id, e) = parse_request("{not json").unwrap_err();
        assert_eq!((id, e.code), (Value::Null, ErrorCode::BadJson));
        let (_, e) = parse_request("[1,2]").unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
    }

    #[test]
    fn reply_round_trips() {
        let r = Reply::ok(
            json!(9),
            ReplyBody::Left {
                room: "lab".into(),
                deleted: true,
            },
        );
        let v = r.to_value();
        assert_eq!(
            v,
            json!({"id": 9, "ok": true, "room": "lab", "deleted": true})
        );
        assert_eq!(Reply::from_value(v).unwrap(), r);
        let e = Reply::err(json!(null), ApiError::new(ErrorCode::BadJson, "x"));
        assert_eq!(Reply::from_value(e.to_value()).unwrap(), e);
    }
}
