//! One-to-one chat messages (`protocol.md` section 3): one JSON object per
//! line on a direct TCP connection between two peers, framed by
//! [`super::codec`]. The threads that carry them are in `peer::chat`.

use serde::{Deserialize, Serialize};

/// Version of the peer-to-peer chat protocol in `hello`.
pub const CHAT_VERSION: u32 = 1;
/// Longest message text accepted on a chat connection, in bytes.
pub const MAX_TEXT: usize = 16 * 1024;
/// Longest chat id in a `hello`, in bytes; a longer one is a bad hello.
pub const MAX_CHAT_ID: usize = 64;

/// A message on a one-to-one chat connection (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatMsg {
    /// First line from the side that connects: a request to chat. `chat`
    /// names the chat (chosen by the asker, at most [`MAX_CHAT_ID`] bytes)
    /// so that it can be resumed; `received` makes the hello a resume of
    /// that chat, with the last message id its sender has shown.
    Hello {
        from: String,
        version: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chat: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        received: Option<u64>,
    },
    /// The request was accepted; messages may flow. `received`: the last
    /// message id the accepting side has shown in this chat (0 on a new
    /// chat); a peer that sends it can resume the chat.
    Accept {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        received: Option<u64>,
    },
    /// The request was declined (`reason`: e.g. "declined", "crossed").
    Reject {
        #[serde(default)]
        reason: String,
    },
    /// The user is in do-not-disturb mode.
    Busy,
    /// Nobody answered the request in time.
    Timeout,
    /// A chat message; `id` counts up from 1 per chat and direction, across
    /// the connections of a resumed chat.
    Msg { id: u64, text: String },
    /// Every message with an id up to `id` has been shown.
    Ack { id: u64 },
    /// Keep-alive, sent every second so a dead partner is noticed.
    Ping,
    /// The sender is closing the chat (`/close`, `/quit`).
    Bye,
    /// First line instead of `hello`: send me the last `count` texts you
    /// kept of room `room` (`protocol.md` section 3, "Room history").
    History {
        from: String,
        version: u32,
        room: String,
        count: u32,
    },
    /// One kept room text, oldest first: its sender, the sender's message
    /// id in the room, and how long before the answer it was shown.
    HistoryMsg {
        from: String,
        id: u64,
        text: String,
        age_ms: u64,
    },
    /// The last line of a history answer: `count` entries were sent.
    HistoryEnd { count: u32 },
    /// A file offered to the partner (`/send`); see [`super::file`].
    FileOffer(super::file::Offer),
    /// The receiver will not take offer `offer` (`/refuse`, too large…).
    FileRefuse { offer: String, reason: String },
    /// Either side stops offer `offer` and any transfer of it (`/cancel`).
    FileCancel { offer: String, reason: String },
    /// The receiver has the whole file (`ok`) or gave it up (`reason`).
    FileDone {
        offer: String,
        ok: bool,
        #[serde(default)]
        reason: String,
    },
}

impl ChatMsg {
    /// Whether this is one of the file messages (`file_*`).
    pub fn is_file(&self) -> bool {
        matches!(
            self,
            ChatMsg::FileOffer(_)
                | ChatMsg::FileRefuse { .. }
                | ChatMsg::FileCancel { .. }
                | ChatMsg::FileDone { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form() {
        let m = ChatMsg::Msg {
            id: 3,
            text: "hi".into(),
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"type":"msg","id":3,"text":"hi"}"#
        );
        let h: ChatMsg =
            serde_json::from_str(r#"{"type":"hello","from":"bob","version":1}"#).unwrap();
        assert_eq!(
            h,
            ChatMsg::Hello {
                from: "bob".into(),
                version: 1,
                chat: None,
                received: None,
            }
        );
        let a: ChatMsg = serde_json::from_str(r#"{"type":"accept"}"#).unwrap();
        assert_eq!(a, ChatMsg::Accept { received: None });
        assert_eq!(
            serde_json::to_string(&ChatMsg::Accept { received: Some(4) }).unwrap(),
            r#"{"type":"accept","received":4}"#
        );
        let asks = [
            (
                ChatMsg::History {
                    from: "carol".into(),
                    version: 1,
                    room: "lab".into(),
                    count: 100,
                },
                r#"{"type":"history","from":"carol","version":1,"room":"lab","count":100}"#,
            ),
            (
                ChatMsg::HistoryMsg {
                    from: "alice".into(),
                    id: 7,
                    text: "see you at 10".into(),
                    age_ms: 1234,
                },
                r#"{"type":"history_msg","from":"alice","id":7,"text":"see you at 10","age_ms":1234}"#,
            ),
            (
                ChatMsg::HistoryEnd { count: 1 },
                r#"{"type":"history_end","count":1}"#,
            ),
        ];
        for (m, line) in asks {
            assert_eq!(serde_json::to_string(&m).unwrap(), line);
        }
        let r: ChatMsg = serde_json::from_str(r#"{"type":"reject"}"#).unwrap();
        assert_eq!(
            r,
            ChatMsg::Reject {
                reason: String::new()
            }
        );
    }
}
