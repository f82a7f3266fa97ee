//! Every example in protocol.md goes through the real parsers, and every op,
//! error code and chat message type is documented, so the document cannot
//! drift from the code.

use lanchat::peer::ui::UiEvent;
use lanchat::protocol::chat::ChatMsg;
use lanchat::protocol::datagram::{parse_key, Datagram, RoomKey, NONCE_LEN};
use lanchat::protocol::names::{ROOM_NAME_MAX, USERNAME_MAX, USERNAME_MIN};
use lanchat::protocol::{addr, heartbeat};
use lanchat::protocol::{
    parse_request, Reply, ReplyBody, Request, RoomName, Username, ALL_CODES, OPS,
};
use serde_json::Value;

/// (label, body, line number) of each fenced block.
fn blocks() -> Vec<(String, String, usize)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/protocol.md")).unwrap();
    let mut out = Vec::new();
    let mut current: Option<(String, String, usize)> = None;
    for (i, line) in doc.lines().enumerate() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(label)) => current = Some((label.trim().to_string(), String::new(), i + 1)),
            (Some(_), Some(_)) => out.push(current.take().unwrap()),
            (Some((_, body, _)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "unclosed code block");
    out
}

/// Every username, room name and advertised address in an example request
/// is one the registry accepts.
fn names_follow_the_rules(v: &Value, line: usize) {
    if let Some(u) = v["username"].as_str() {
        Username::parse(u).unwrap_or_else(|e| panic!("protocol.md:{line}: {e}"));
    }
    if let Some(r) = v["room"].as_str() {
        RoomName::parse(r).unwrap_or_else(|e| panic!("protocol.md:{line}: {e}"));
    }
    if let Some(a) = v["advertise_ip"].as_str() {
        let seen = "127.0.0.1".parse().unwrap();
        addr::peer_ip(seen, Some(a)).unwrap_or_else(|e| panic!("protocol.md:{line}: {e}"));
    }
}

/// Whether a reply body has the shape that `op` answers with.
fn shape_fits(op: &str, body: &ReplyBody) -> bool {
    matches!(
        (op, body),
        ("register", ReplyBody::Registered { .. })
            | ("login" | "resume", ReplyBody::Session(_))
            | ("logout" | "heartbeat", ReplyBody::Empty {})
            | ("search", ReplyBody::User { .. })
            | ("online", ReplyBody::Users { .. })
            | (
                "create_room" | "join_room" | "members" | "room_key",
                ReplyBody::Room { .. }
            )
            | ("leave_room", ReplyBody::Left { .. })
            | ("rooms", ReplyBody::Rooms { .. })
            | ("set_topic", ReplyBody::Topic { .. })
            | ("set_away", ReplyBody::Empty {})
            | ("heartbeat", ReplyBody::Announcements { .. })
            | ("announce", ReplyBody::Announced { .. })
            | (
                "kick" | "ban" | "unban" | "op" | "deop" | "invite" | "lock" | "unlock",
                ReplyBody::Moderated { .. }
            )
    )
}

/// The heartbeat id and key of protocol.md's `login` reply.
const DOC_HB_ID: &str = "00112233445566778899aabbccddeeff";
const DOC_HB_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[test]
fn every_example_parses() {
    let mut last_op: Option<String> = None;
    let mut counts = std::collections::HashMap::<String, usize>::new();
    for (label, body, line) in blocks() {
        *counts.entry(label.clone()).or_default() += 1;
        let text = body.trim();
        match label.as_str() {
            "request" => {
                let env =
                    parse_request(text).unwrap_or_else(|(_, e)| panic!("protocol.md:{line}: {e}"));
                let v = serde_json::to_value(&env.request).unwrap();
                last_op = Some(v["op"].as_str().unwrap().to_string());
                names_follow_the_rules(&v, line);
            }
            "reply" => {
                let v: Value = serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("protocol.md:{line}: {e}"));
                let reply = Reply::from_value(v.clone())
                    .unwrap_or_else(|e| panic!("protocol.md:{line}: {e}"));
                // What the registry would print for it is the same JSON.
                assert_eq!(
                    reply.to_value(),
                    v,
                    "protocol.md:{line}: not in canonical form"
                );
                if let Ok(body) = &reply.result {
                    let op = last_op
                        .as_deref()
                        .unwrap_or_else(|| panic!("protocol.md:{line}: reply before any request"));
                    assert!(
                        shape_fits(op, body),
                        "protocol.md:{line}: not a `{op}` reply: {body:?}"
                    );
                }
            }
            "heartbeat" => {
                let v: Value = serde_json::from_str(text).unwrap();
                assert_eq!(v["op"], "heartbeat", "protocol.md:{line}");
                assert!(v.get("token").is_none(), "protocol.md:{line}: a token");
                let beat = heartbeat::decode(text.as_bytes())
                    .unwrap_or_else(|| panic!("protocol.md:{line}: not a heartbeat"));
                // The MAC recomputed under the key of the documented login reply.
                let key = heartbeat::HeartbeatKey::from_hex(DOC_HB_ID, DOC_HB_KEY).unwrap();
                assert!(key.verify(&beat), "protocol.md:{line}: wrong MAC");
                assert_eq!(key.encode(beat.ctr), text, "protocol.md:{line}");
            }
            "chat" => {
                let m: ChatMsg = serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("protocol.md:{line}: {e}"));
                if let ChatMsg::Hello { from, .. }
                | ChatMsg::History { from, .. }
                | ChatMsg::HistoryMsg { from, .. } = &m
                {
                    Username::parse(from).unwrap_or_else(|e| panic!("protocol.md:{line}: {e}"));
                }
                let again: Value = serde_json::to_value(&m).unwrap();
                assert_eq!(
                    again,
                    serde_json::from_str::<Value>(text).unwrap(),
                    "protocol.md:{line}"
                );
            }
            "event" => {
                let mut v: Value = serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("protocol.md:{line}: {e}"));
                let ev: UiEvent = serde_json::from_value(v.clone())
                    .unwrap_or_else(|e| panic!("protocol.md:{line}: {e}"));
                v.as_object_mut()
                    .unwrap()
                    .remove("ts_us")
                    .expect("every event has ts_us");
                assert_eq!(
                    serde_json::to_value(&ev).unwrap(),
                    v,
                    "protocol.md:{line}: not what the peer prints"
                );
            }
            "datagram" => {
                let mut lines = text.lines();
                let key = parse_key(lines.next().unwrap().strip_prefix("key ").unwrap()).unwrap();
                let epoch: u64 = lines
                    .next()
                    .and_then(|l| l.strip_prefix("epoch "))
                    .and_then(|e| e.parse().ok())
                    .unwrap_or_else(|| panic!("protocol.md:{line}: an epoch line"));
                let key = RoomKey { epoch, key };
                // The sender's Ed25519 secret seed (an example's, never a
                // real one): its public key checks the signature, and the
                // same bytes come out sealed and signed again.
                let seed = lines
                    .next()
                    .and_then(|l| l.strip_prefix("signer "))
                    .and_then(parse_key)
                    .unwrap_or_else(|| panic!("protocol.md:{line}: a signer line"));
                let signer = lanchat::identity::Identity::from_secrets(seed, [0; 32]);
                let hex = lines.next().unwrap();
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect();
                let d = Datagram::decode(
                    &bytes,
                    |_| Some(key),
                    |_| Some(signer.public().sign),
                    &signer,
                )
                .unwrap_or_else(|e| panic!("protocol.md:{line}: {e:?}"));
                // Sealed again with the nonce it carries: the same bytes.
                let at = 5 + 2 + d.room.len() + d.from.len() + 8;
                let nonce: [u8; NONCE_LEN] = bytes[at..at + NONCE_LEN].try_into().unwrap();
                assert_eq!(d.encode(&key, &nonce, &signer), bytes, "protocol.md:{line}");
            }
            "fetch" | "fetch-reply" | "chunk" => file_block(&label, text, line),
            "noise" => noise_block(text, line),
            "" | "text" | "sh" | "console" | "toml" => {}
            other => panic!("protocol.md:{line}: unknown block label {other:?}"),
        }
    }
    for label in [
        "request",
        "reply",
        "heartbeat",
        "chat",
        "event",
        "datagram",
        "fetch",
        "fetch-reply",
        "chunk",
        "noise",
    ] {
        assert!(
            counts.get(label).copied().unwrap_or(0) > 0,
            "no {label} examples"
        );
    }
}

#[test]
fn every_op_and_error_code_is_documented() {
    let requests: Vec<Request> = blocks()
        .into_iter()
        .filter(|(l, _, _)| l == "request")
        .map(|(_, b, _)| parse_request(b.trim()).unwrap().request)
        .collect();
    for op in OPS {
        assert!(
            requests
                .iter()
                .any(|r| serde_json::to_value(r).unwrap()["op"] == *op),
            "protocol.md has no example of `{op}`"
        );
    }
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/protocol.md")).unwrap();
    for code in ALL_CODES {
        assert!(
            doc.contains(&format!("| `{code}` |")),
            "protocol.md's error table lacks `{code}`"
        );
    }
    for t in [
        "hello",
        "accept",
        "reject",
        "busy",
        "timeout",
        "msg",
        "ack",
        "ping",
        "bye",
        "history",
        "history_msg",
        "history_end",
    ] {
        assert!(
            doc.contains(&format!("{{\"type\":\"{t}\"")),
            "protocol.md has no `{t}` chat message"
        );
    }
}

/// The limits in the document's name rules are the ones the code enforces
/// (`names_follow_the_rules` checks every example against the rules).
#[test]
fn name_rules_are_the_documented_ones() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/protocol.md")).unwrap();
    let doc = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    for rule in [
        format!("Usernames are {USERNAME_MIN} to {USERNAME_MAX} characters of `a-z`, `0-9`, `_`, `.`, `-`, starting with a letter or digit."),
        format!("Room names are 1 to {ROOM_NAME_MAX} characters of `a-z`, `0-9`, `_`, `-`"),
    ] {
        assert!(doc.contains(&rule), "protocol.md lacks: {rule}");
    }
}

/// The file transfer connection's blocks (protocol.md section 3, "Files"):
/// a `fetch` line whose proof holds under the `key` line before it, a
/// `fetch-reply` in canonical form, a `chunk` whose `frame` is `text`
/// sealed as documented.
fn file_block(label: &str, text: &str, line: usize) {
    use lanchat::protocol::file;
    let key = |l: Option<&str>| -> [u8; 32] {
        l.and_then(|l| l.strip_prefix("key "))
            .and_then(file::unhex::<32>)
            .unwrap_or_else(|| panic!("protocol.md:{line}: a key line"))
    };
    let mut lines = text.lines();
    match label {
        "fetch" => {
            let k = key(lines.next());
            let json = lines.next().unwrap_or_default();
            let f: file::Fetch =
                serde_json::from_str(json).unwrap_or_else(|e| panic!("protocol.md:{line}: {e}"));
            assert!(file::check_proof(&k, &f), "protocol.md:{line}: wrong proof");
            assert_eq!(
                serde_json::to_value(&f).unwrap(),
                serde_json::from_str::<Value>(json).unwrap(),
                "protocol.md:{line}"
            );
        }
        "fetch-reply" => {
            let r: file::FetchReply =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("protocol.md:{line}: {e}"));
            assert_eq!(
                serde_json::to_value(&r).unwrap(),
                serde_json::from_str::<Value>(text).unwrap(),
                "protocol.md:{line}"
            );
        }
        _ => {
            let k = key(lines.next());
            let mut field = |name: &str| -> String {
                lines
                    .next()
                    .and_then(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_else(|| panic!("protocol.md:{line}: a {name} line"))
            };
            let offer = field("offer");
            let index: u64 = field("index").parse().expect("index");
            let plain: String = serde_json::from_str(&field("text")).expect("text");
            let frame = field("frame");
            let mut buf = plain.as_bytes().to_vec();
            assert!(file::seal(&k, &offer, index, &mut buf));
            let mut sealed = (buf.len() as u32).to_be_bytes().to_vec();
            sealed.extend(&buf);
            assert_eq!(file::hex(&sealed), frame, "protocol.md:{line}");
            assert!(file::open(&k, &offer, index, &mut buf));
            assert_eq!(buf, plain.as_bytes(), "protocol.md:{line}");
        }
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A Noise handshake example: `name: hex` lines giving both sides' static
/// secrets and ephemeral secrets, and the first two framed messages as
/// the handshake of `lanchat::protocol::secure` makes them.
fn noise_block(text: &str, line: usize) {
    use lanchat::protocol::secure::{Deframer, Handshake, Next};
    let field = |name: &str| -> [u8; 32] {
        let hex = text
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
            .unwrap_or_else(|| panic!("protocol.md:{line}: no {name}"));
        unhex(hex.trim())
            .try_into()
            .unwrap_or_else(|_| panic!("protocol.md:{line}: {name} is not 32 bytes"))
    };
    let shown = |name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
            .unwrap_or_else(|| panic!("protocol.md:{line}: no {name}"))
            .trim()
            .to_string()
    };
    let (a, ea, b, eb) = (
        field("alice static"),
        field("alice ephemeral"),
        field("bob static"),
        field("bob ephemeral"),
    );
    let bob_public = lanchat::identity::Identity::from_secrets([0; 32], b)
        .public()
        .kx;
    assert_eq!(
        lanchat::identity::hex(&bob_public),
        shown("bob public"),
        "protocol.md:{line}: bob public"
    );
    let (_, m1) = Handshake::initiator(&a, "alice", "bob", bob_public, Some(&ea)).unwrap();
    assert_eq!(
        lanchat::identity::hex(&m1),
        shown("message 1"),
        "protocol.md:{line}: message 1"
    );
    let responder = Handshake::responder(&b, "bob", Some(&eb)).unwrap();
    let mut d = Deframer::default();
    d.push(&m1);
    let Ok(Next::Continue(_, m2)) = responder.read(&d.next_msg().unwrap()) else {
        panic!("protocol.md:{line}: message 1 refused")
    };
    assert_eq!(
        lanchat::identity::hex(&m2),
        shown("message 2"),
        "protocol.md:{line}: message 2"
    );
}
