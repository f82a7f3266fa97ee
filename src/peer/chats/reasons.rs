//! What the chat engine reports, as types: why a request was refused or a
//! chat ended, and the events, notices and errors the UI shows. Each has a
//! `Display` that gives the exact text the peer prints (tests check it).

use crate::protocol::ApiError;
use std::fmt;
use std::net::SocketAddr;

/// The `reason` of a `reject` line, both ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    /// The user answered no (also an empty or missing reason).
    Declined,
    /// Both asked at once and the other request won.
    Crossed,
    /// The asked side has no session.
    NotLoggedIn,
    /// The first line is not a valid `hello` (not JSON, another type, no
    /// or another `version`, a name that is not a valid user name or is
    /// the asked user's).
    BadHello,
    /// The registry places the claimed user elsewhere.
    IdentityCheckFailed,
    /// A resume hello for a chat the asked side does not hold (any more).
    UnknownChat,
    /// A reason this version does not know, shown as it came.
    Other(String),
}

impl RejectReason {
    /// The text on the wire.
    pub fn wire(&self) -> &str {
        match self {
            RejectReason::Declined => "declined",
            RejectReason::Crossed => "crossed",
            RejectReason::NotLoggedIn => "not logged in",
            RejectReason::BadHello => "bad hello",
            RejectReason::IdentityCheckFailed => "identity check failed",
            RejectReason::UnknownChat => "unknown chat",
            RejectReason::Other(s) => s,
        }
    }

    pub fn from_wire(s: &str) -> RejectReason {
        match s {
            "" | "declined" => RejectReason::Declined,
            "crossed" => RejectReason::Crossed,
            "not logged in" => RejectReason::NotLoggedIn,
            "bad hello" => RejectReason::BadHello,
            "identity check failed" => RejectReason::IdentityCheckFailed,
            "unknown chat" => RejectReason::UnknownChat,
            other => RejectReason::Other(other.to_string()),
        }
    }
}

/// Why a chat connection ended, as its reader or writer thread saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnEnd {
    /// The partner closed the connection.
    Closed,
    /// A `msg` over the text limit.
    Oversized,
    /// A line over the line limit.
    LineTooLong,
    BadEncoding,
    /// Reading failed (the error's text).
    Io(String),
    /// Writing failed (the error's text).
    WriteFailed(String),
    /// The secure channel could not be set up (or a message failed it).
    Secure(crate::protocol::secure::SecureError),
}

impl fmt::Display for ConnEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnEnd::Closed => f.write_str("connection closed"),
            ConnEnd::Oversized => f.write_str("sent an oversized message"),
            ConnEnd::LineTooLong => f.write_str("sent a line over 64 KiB"),
            ConnEnd::BadEncoding => f.write_str("sent invalid UTF-8"),
            ConnEnd::Io(e) => f.write_str(e),
            ConnEnd::WriteFailed(e) => write!(f, "write failed: {e}"),
            ConnEnd::Secure(e) => e.fmt(f),
        }
    }
}

/// Why a chat, or a request we made, ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The partner said bye on an open chat.
    Left,
    /// The partner said bye before the chat was open.
    Withdrew,
    /// Nothing heard on an open chat for the dead time.
    NotResponding,
    /// `/close`.
    YouClosed,
    /// An interrupted chat whose partner did not come back in time.
    NotResumed,
    /// The partner answered our request with a reject.
    Rejected(RejectReason),
    Conn(ConnEnd),
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::Left => f.write_str("left the chat"),
            EndReason::Withdrew => f.write_str("withdrew the request"),
            EndReason::NotResponding => f.write_str("not responding"),
            EndReason::YouClosed => f.write_str("you closed it"),
            EndReason::NotResumed => f.write_str("did not come back"),
            EndReason::Rejected(r) => f.write_str(r.wire()),
            EndReason::Conn(c) => c.fmt(f),
        }
    }
}

/// Something the user sees happen in a one-to-one chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// Our hello went out.
    Requested {
        to: String,
    },
    /// Someone asks us for a chat. `unverified` (here and below): the
    /// registry could not be reached to check who asks, so the name is
    /// only what the other side claims.
    Request {
        from: String,
        unverified: bool,
    },
    /// The chat is open (either side accepted): it becomes the current
    /// conversation.
    Opened {
        with: String,
        unverified: bool,
    },
    /// `/chat` with a user whose chat is open: it becomes the current
    /// conversation.
    Focus {
        with: String,
    },
    /// Our request was turned down or ended before an answer.
    Refused {
        by: String,
        reason: EndReason,
    },
    /// They are in do-not-disturb mode.
    Busy {
        user: String,
    },
    /// A request (ours or theirs) was not answered in time.
    TimedOut {
        with: String,
    },
    /// An open chat ended (or we closed a chat in any state); it stops
    /// being the current conversation.
    Closed {
        with: String,
        reason: EndReason,
        unverified: bool,
    },
    /// An open chat lost its connection without `bye` (`reason`); it is
    /// kept, and resumed when the partner is back.
    Interrupted {
        with: String,
        reason: EndReason,
    },
    /// The partner acknowledged our messages up to `id` (shown them).
    Delivered {
        with: String,
        id: u64,
    },
    /// An interrupted chat is open again; what was queued is on its way.
    Resumed {
        with: String,
    },
    /// A chat ended with our messages (id, text) never acknowledged.
    Undelivered {
        with: String,
        messages: Vec<(u64, String)>,
    },
    /// A message from the partner.
    Received {
        from: String,
        id: u64,
        text: String,
        unverified: bool,
    },
    Notice(ChatNotice),
    Error(ChatError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatNotice {
    /// The registry could not be asked where the requester is.
    Unverified {
        user: String,
    },
    AnsweredBusy {
        user: String,
    },
    AlreadyWaiting {
        user: String,
    },
    Declined {
        user: String,
    },
    Withdrawn {
        user: String,
    },
}

impl fmt::Display for ChatNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatNotice::Unverified { user } => write!(
                f,
                "could not check that the request really comes from {user}"
            ),
            ChatNotice::AnsweredBusy { user } => {
                write!(f, "{user} asked for a chat; answered busy (do not disturb)")
            }
            ChatNotice::AlreadyWaiting { user } => {
                write!(f, "already waiting for {user} to answer")
            }
            ChatNotice::Declined { user } => write!(f, "declined {user}'s chat request"),
            ChatNotice::Withdrawn { user } => write!(f, "{user} withdrew the chat request"),
        }
    }
}

/// "; 2 message(s) not sent", or nothing when none were waiting.
struct Unsent(usize);

impl fmt::Display for Unsent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, "; {n} message(s) not sent"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatError {
    NotLoggedIn,
    /// `/chat` with one's own name.
    ThatIsYou,
    TooLong {
        len: usize,
        max: usize,
    },
    /// The registry has the user offline; `unsent` texts were waiting.
    Offline {
        user: String,
        unsent: usize,
    },
    /// The registry look-up failed.
    LookupFailed {
        user: String,
        error: ApiError,
        unsent: usize,
    },
    /// The partner's address could not be connected to (the dialer's text).
    Unreachable {
        why: String,
        unsent: usize,
    },
    /// Texts queued for a request that ended unanswered.
    NotSent {
        user: String,
        count: usize,
    },
    /// `/accept` or `/reject` with nothing to answer.
    NoRequest {
        from: Option<String>,
    },
    NoChat {
        user: String,
    },
    /// `max` of our messages to `user` are still unacknowledged.
    TooManyUnacked {
        user: String,
        max: usize,
    },
    /// The other side's static key is not the one the registry vouches
    /// for `user` (either side of a chat connection).
    KeyMismatch {
        user: String,
    },
    /// The registry has no keys for `user`: a version-1 peer.
    NeedsUpgrade {
        user: String,
        unsent: usize,
    },
    /// Our connection to `user` failed to set up its secure channel.
    Secure {
        user: String,
        error: crate::protocol::secure::SecureError,
        unsent: usize,
    },
    /// An incoming hello in the name of a user the registry does not know
    /// (or that it refused to look up: `why`).
    UnknownSender {
        user: String,
        from: SocketAddr,
        why: String,
    },
}

impl ChatError {
    /// The error code shown beside the message.
    pub fn code(&self) -> Option<String> {
        Some(
            match self {
                ChatError::Offline { .. } => "offline",
                ChatError::LookupFailed { error, .. } => error.code.as_str(),
                ChatError::UnknownSender { .. } => "identity_check_failed",
                ChatError::KeyMismatch { .. } => "key_mismatch",
                ChatError::NeedsUpgrade { .. } => "needs_upgrade",
                ChatError::Secure { .. } => "secure_failed",
                ChatError::NotLoggedIn => "not_logged_in",
                ChatError::ThatIsYou => "that_is_you",
                ChatError::TooLong { .. } => "too_long",
                ChatError::Unreachable { .. } => "unreachable",
                ChatError::NotSent { .. } => "not_sent",
                ChatError::NoRequest { .. } => "no_request",
                ChatError::NoChat { .. } => "no_chat",
                ChatError::TooManyUnacked { .. } => "too_many_unacked",
            }
            .into(),
        )
    }

    /// Why a script line fails with this error (`None`: it does not).
    pub fn script_failure(&self) -> Option<&'static str> {
        match self {
            ChatError::NotLoggedIn => Some("not logged in"),
            ChatError::Offline { .. } => Some("user offline"),
            ChatError::LookupFailed { .. } => Some("chat failed"),
            ChatError::Unreachable { .. } => Some("dial failed"),
            ChatError::NoRequest { .. } => Some("no request"),
            _ => None,
        }
    }
}

impl fmt::Display for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatError::NotLoggedIn => f.write_str("not logged in; /login USER first"),
            ChatError::ThatIsYou => f.write_str("that is you"),
            ChatError::TooLong { len, max } => {
                write!(f, "message too long ({len} bytes; at most {max})")
            }
            ChatError::Offline { user, unsent } => {
                write!(f, "{user} is offline{}", Unsent(*unsent))
            }
            ChatError::LookupFailed {
                user,
                error,
                unsent,
            } => write!(
                f,
                "cannot chat with {user}: {}{}",
                error.message,
                Unsent(*unsent)
            ),
            ChatError::Unreachable { why, unsent } => write!(f, "{why}{}", Unsent(*unsent)),
            ChatError::NotSent { user, count } => {
                write!(f, "{count} message(s) to {user} not sent")
            }
            ChatError::NoRequest { from } => match from {
                Some(u) => write!(f, "no chat request from {u} to answer"),
                None => f.write_str("no chat request to answer"),
            },
            ChatError::NoChat { user } => write!(f, "no chat with {user}"),
            ChatError::TooManyUnacked { user, max } => write!(
                f,
                "{max} messages to {user} are still unacknowledged; message not sent"
            ),
            ChatError::KeyMismatch { user } => write!(
                f,
                "{}",
                crate::protocol::secure::SecureError::KeyMismatch { user: user.clone() }
            ),
            ChatError::NeedsUpgrade { user, unsent } => write!(
                f,
                "{user} runs lanchat protocol version 1 (no keys, unencrypted chats): {user} needs to upgrade{}",
                Unsent(*unsent)
            ),
            ChatError::Secure {
                user,
                error,
                unsent,
            } => write!(f, "cannot chat with {user}: {error}{}", Unsent(*unsent)),
            ChatError::UnknownSender { user, from, why } => write!(
                f,
                "refused a chat request claiming to be {user} from {from}: {why}"
            ),
        }
    }
}
