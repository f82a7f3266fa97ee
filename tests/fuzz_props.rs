//! Property-based fuzzing of everything that parses bytes from the network:
//! the registry's line codec and request parser, the room datagram decoder,
//! chat lines, and the command/script language. A bounded number of cases
//! runs with every `make test`; the seed corpus in `tests/corpus/` (real
//! messages and known-nasty ones) is run as is and mutated. A failure found
//! here is fixed and its input added to the corpus (proptest also records
//! it under `proptest-regressions/`).

use lanchat::peer::commands;
use lanchat::peer::script::Script;
use lanchat::protocol::chat::ChatMsg;
use lanchat::protocol::codec::{read_line, LineError, MAX_LINE};
use lanchat::protocol::datagram::{Body, Datagram, DecodeError, EventKind, RoomKey, MAX_DATAGRAM};
use lanchat::protocol::{parse_request, Request};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::io::{BufReader, Read};
use std::path::Path;

const KEY: RoomKey = RoomKey {
    epoch: 1,
    key: [0x5a; 32],
};

/// The signer of the generated datagrams (and alice's example key in
/// protocol.md: secret seed of 32 bytes `a1`).
fn signer() -> lanchat::identity::Identity {
    lanchat::identity::Identity::from_secrets([0xa1; 32], [0xa2; 32])
}

/// Checks and opens `d` as the room's datagram signed by [`signer`].
fn decode(d: &[u8], key: RoomKey) -> Result<Datagram, DecodeError> {
    let me = signer();
    Datagram::decode(d, |_| Some(key), |_| Some(me.public().sign), &me)
}

/// Opens `d` under `key`, its signature unchecked (the documented examples
/// have several signers).
fn open_unsigned(d: &[u8], key: RoomKey) -> Result<Datagram, DecodeError> {
    Datagram::open(d, lanchat::protocol::datagram::Header::peek(d)?, &key)
}

fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {dir}");
    files
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// Applies `edits` (position, kind, byte) to `input`: flip, insert, delete.
fn mutate(input: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut out = input.to_vec();
    for &(pos, kind, byte) in edits {
        if out.is_empty() {
            out.push(byte);
            continue;
        }
        let at = pos % out.len();
        match kind % 3 {
            0 => out[at] ^= byte | 1,
            1 => out.insert(at, byte),
            _ => {
                out.remove(at);
            }
        }
    }
    out
}

/// Reads with at most `chunk` bytes a call, to split lines everywhere.
struct Dribble<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn all_lines(data: &[u8], chunk: usize) -> Vec<Result<String, &'static str>> {
    let mut r = BufReader::with_capacity(
        chunk.max(1),
        Dribble {
            data,
            chunk: chunk.max(1),
        },
    );
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for _ in 0..=data.len() + 1 {
        match read_line(&mut r, &mut buf) {
            Ok(l) => out.push(Ok(l)),
            Err(LineError::Closed) => return out,
            Err(LineError::TooLong) => {
                return {
                    out.push(Err("too long"));
                    out
                }
            }
            Err(LineError::BadEncoding) => out.push(Err("encoding")),
            Err(LineError::Io(e)) => panic!("{e}"),
        }
    }
    panic!("read_line did not terminate");
}

fn check_request_line(line: &str) {
    if let Ok(env) = parse_request(line) {
        // Whatever parses re-serialises to something that parses the same.
        let mut v = serde_json::to_value(&env.request).unwrap();
        v.as_object_mut()
            .unwrap()
            .insert("id".into(), env.id.clone());
        let again = parse_request(&v.to_string()).expect("re-parse");
        assert_eq!(again.request, env.request);
    }
}

fn datagram_strategy() -> impl Strategy<Value = Datagram> {
    let name = "[a-z0-9_.-]{1,32}";
    let body = prop_oneof![
        (
            any::<u64>(),
            1..u64::MAX,
            1u8..=3,
            any::<u64>(),
            1u16..40,
            proptest::collection::vec(any::<u8>(), 0..1000)
        )
            .prop_map(|(stream, seq, ev, msg_id, frags, bytes)| Body::Data {
                stream,
                seq,
                event: match ev {
                    1 => EventKind::Text,
                    2 => EventKind::Join,
                    _ => EventKind::Leave,
                },
                msg_id,
                frag: (msg_id % frags as u64) as u16,
                frags,
                bytes,
            }),
        (
            name,
            any::<u64>(),
            any::<u64>(),
            0u64..1000,
            (any::<bool>(), any::<bool>()),
            proptest::collection::vec((any::<u64>(), any::<u16>()), 0..=32)
        )
            .prop_map(
                |(to, stream, cum, ahead, (unsynced, group), missing)| Body::Ack {
                    to,
                    stream,
                    cum,
                    high: cum.saturating_add(ahead),
                    unsynced,
                    group,
                    missing,
                }
            ),
        Just(Body::Ping),
        (name, any::<u64>(), any::<u64>()).prop_map(|(to, stream, next)| Body::Sync {
            to,
            stream,
            next
        }),
        (name, any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(to, stream, upto, noted)| {
            Body::Late {
                to,
                stream,
                upto,
                noted,
            }
        }),
    ];
    (name, name, body).prop_map(|(room, from, body)| Datagram { room, from, body })
}

/// A JSON value shaped like a request, with fields of random types.
fn json_request() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let fields = [
        "id",
        "op",
        "username",
        "password",
        "token",
        "tcp_port",
        "udp_port",
        "advertise_ip",
        "room",
    ];
    let ops = prop_oneof![
        proptest::sample::select(lanchat::protocol::OPS.to_vec()).prop_map(|s| json!(s)),
        value.clone(),
    ];
    (
        ops,
        proptest::collection::vec((proptest::sample::select(fields.to_vec()), value), 0..8),
    )
        .prop_map(|(op, fields)| {
            let mut m = serde_json::Map::new();
            m.insert("op".into(), op);
            for (k, v) in fields {
                m.insert(k.into(), v);
            }
            Value::Object(m)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn codec_never_panics_and_caps_lines(data in proptest::collection::vec(any::<u8>(), 0..4096), chunk in 1usize..64) {
        for line in all_lines(&data, chunk).into_iter().flatten() {
            prop_assert!(line.len() <= MAX_LINE);
            prop_assert!(!line.contains('\n'));
        }
    }

    #[test]
    fn codec_keeps_valid_lines(lines in proptest::collection::vec("[^\n\r]{0,200}", 0..20), chunk in 1usize..64) {
        let mut data = Vec::new();
        for l in &lines {
            data.extend_from_slice(l.as_bytes());
            data.push(b'\n');
        }
        let got: Vec<String> = all_lines(&data, chunk).into_iter().map(|r| r.unwrap()).collect();
        prop_assert_eq!(got, lines);
    }

    #[test]
    fn request_parser_takes_any_text(line in ".{0,300}") {
        check_request_line(&line);
    }

    #[test]
    fn request_parser_takes_any_json_shape(v in json_request()) {
        check_request_line(&v.to_string());
    }

    #[test]
    fn corpus_requests_mutated(i in any::<usize>(), edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..6)) {
        let seeds = corpus("requests");
        let input = mutate(&seeds[i % seeds.len()], &edits);
        for line in all_lines(&input, 7).into_iter().flatten() {
            check_request_line(&line);
        }
    }

    #[test]
    fn datagram_decoder_takes_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..1400)) {
        let r = decode(&data, KEY);
        if data.len() > MAX_DATAGRAM {
            prop_assert_eq!(r, Err(DecodeError::Malformed));
        }
    }

    #[test]
    fn datagrams_round_trip_and_any_flip_is_caught(d in datagram_strategy(), nonce in any::<[u8; 24]>(), pos in any::<usize>(), bit in 0u8..8) {
        let bytes = d.encode(&KEY, &nonce, &signer());
        prop_assert!(bytes.len() <= MAX_DATAGRAM);
        prop_assert_eq!(decode(&bytes, KEY), Ok(d));
        let mut bad = bytes.clone();
        let at = pos % bad.len();
        bad[at] ^= 1 << bit;
        prop_assert!(decode(&bad, KEY).is_err());
    }

    #[test]
    fn corpus_datagrams_mutated(i in any::<usize>(), edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..6)) {
        let seeds = corpus("datagrams");
        let input = mutate(&seeds[i % seeds.len()], &edits);
        let _ = decode(&input, RoomKey { epoch: 3, key: [7; 32] });
    }

    #[test]
    fn chat_lines_and_commands_take_any_text(line in ".{0,300}") {
        let _ = serde_json::from_str::<ChatMsg>(&line);
        let _ = commands::parse(&line);
        let _ = Script::parse(&line);
    }

    #[test]
    fn corpus_chat_mutated(i in any::<usize>(), edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..6)) {
        let seeds = corpus("chat");
        let input = mutate(&seeds[i % seeds.len()], &edits);
        let _ = serde_json::from_slice::<ChatMsg>(&input);
    }
}

#[test]
fn corpus_as_is() {
    for seed in corpus("requests") {
        for line in all_lines(&seed, 4096).into_iter().flatten() {
            check_request_line(&line);
        }
    }
    // The documented examples are valid; the extra seeds are not requests.
    let valid = corpus("requests")
        .iter()
        .filter_map(|s| parse_request(std::str::from_utf8(s).ok()?.trim()).ok())
        .filter(|e| matches!(e.request, Request::Login { .. } | Request::Register { .. }))
        .count();
    assert!(valid >= 2);
    let key = RoomKey {
        epoch: 3,
        key: [7; 32],
    };
    let docs: Vec<_> = corpus("datagrams")
        .into_iter()
        .filter(|d| open_unsigned(d, key).is_ok())
        .collect();
    assert_eq!(docs.len(), 2, "the two datagrams from protocol.md decode");
    for seed in corpus("chat") {
        serde_json::from_slice::<ChatMsg>(&seed).expect("chat corpus holds valid messages");
    }
}
