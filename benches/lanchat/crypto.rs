//! Issue 12's room crypto cost, in process and without sockets: what the
//! room layer (`lanchat::protocol::datagram`) spends per datagram on a
//! typical 200-byte DATA, sealing (XChaCha20-Poly1305) with and without the
//! sender's Ed25519 signature, and opening with and without checking it;
//! then what that makes per message per member in a 30- and a 100-member
//! room, where the sender seals and signs a message once and every other
//! member checks and opens it once.
//!
//! "Without signatures" uses an [`Authenticator`] that signs nothing (64
//! zero bytes, accepted unchecked): the datagram keeps its format and size,
//! so the difference is the signature's CPU alone. Each figure is the
//! median of [`RUNS`] runs of at most [`ITERS`] iterations, each run capped
//! at [`RUN_CAP`].

use super::*;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use lanchat::identity::Identity;
use lanchat::protocol::datagram::{
    verify, Authenticator, Body, Datagram, EventKind, Header, RoomKey, VerifyingKey, SIG_LEN,
    TAG_LEN,
};
use lanchat::protocol::roomkey;
use std::hint::black_box;

/// Runs per figure (the median is reported).
pub const RUNS: usize = 5;
/// Iterations per run at most.
pub const ITERS: u32 = 20_000;
/// A run stops after this long, whatever its count.
pub const RUN_CAP: Duration = Duration::from_millis(400);
/// Bytes of message text in the DATA measured.
pub const TEXT_BYTES: usize = 200;
/// Bytes of a DATA body before sealing: its fixed fields and the text.
const DATA_BODY: usize = 8 + 8 + 1 + 8 + 2 + 2 + 2 + TEXT_BYTES;
/// Room sizes the per-member figures are computed for.
pub const ROOM_SIZES: [usize; 2] = [30, 100];
/// The rooms issue's paced rate, for the share of a core.
pub const RATE: f64 = 200.0;

/// Signs nothing and accepts anything: the format without its signature's
/// cost (the bytes stay, zeros).
struct Unsigned;

impl Authenticator for Unsigned {
    fn sign(&self, _msg: &[u8]) -> [u8; SIG_LEN] {
        [0; SIG_LEN]
    }
    fn verify(&self, _signer: &VerifyingKey, _msg: &[u8], _sig: &[u8; SIG_LEN]) -> bool {
        true
    }
}

/// One operation's cost: median ns per call, and the calls timed.
pub struct Op {
    pub what: &'static str,
    pub key: &'static str,
    pub ns: f64,
    pub calls: u64,
}

pub struct CryptoBench {
    pub datagram_bytes: usize,
    pub ops: Vec<Op>,
}

impl CryptoBench {
    fn ns(&self, key: &str) -> f64 {
        self.ops.iter().find(|o| o.key == key).map_or(0.0, |o| o.ns)
    }
}

/// Median ns per call of `f` over [`RUNS`] bounded runs.
fn time(what: &'static str, key: &'static str, mut f: impl FnMut()) -> Op {
    let mut per = Vec::with_capacity(RUNS);
    let mut calls = 0u64;
    for _ in 0..RUNS {
        let t = Instant::now();
        let mut n = 0u32;
        while n < ITERS {
            f();
            n += 1;
            if n % 64 == 0 && t.elapsed() >= RUN_CAP {
                break;
            }
        }
        per.push(t.elapsed().as_nanos() as f64 / f64::from(n));
        calls += u64::from(n);
    }
    per.sort_by(f64::total_cmp);
    Op {
        what,
        key,
        ns: per[RUNS / 2],
        calls,
    }
}

fn data() -> Datagram {
    Datagram {
        room: "class".into(),
        from: "alice".into(),
        body: Body::Data {
            stream: 7,
            seq: 1234,
            event: EventKind::Text,
            msg_id: 99,
            frag: 0,
            frags: 1,
            bytes: vec![b'x'; TEXT_BYTES],
        },
    }
}

pub fn crypto_section() -> Result<CryptoBench, String> {
    let id = Identity::generate();
    let signer = id.public().sign;
    let key = RoomKey {
        epoch: 3,
        key: rand::random(),
    };
    let dg = data();
    let nonce: [u8; 24] = rand::random();
    let signed = dg.encode(&key, &nonce, &id);
    let unsigned = dg.encode(&key, &nonce, &Unsigned);
    let decode = |bytes: &[u8], auth: &dyn Authenticator| {
        Datagram::decode(bytes, |_| Some(key), |_| Some(signer), auth)
    };
    // The measured paths must do what they claim: open, and refuse a
    // forgery when signatures are checked.
    if decode(&signed, &id).as_ref() != Ok(&dg) || decode(&unsigned, &Unsigned).as_ref() != Ok(&dg)
    {
        return Err("a datagram did not decode to what was sealed".into());
    }
    if decode(&unsigned, &id).is_ok() {
        return Err("an unsigned datagram passed the signature check".into());
    }
    // The AEAD alone, on the same header (associated data) and body size.
    let body_at = signed.len() - SIG_LEN - TAG_LEN - DATA_BODY;
    let (aad, body) = (signed[..body_at].to_vec(), vec![0u8; DATA_BODY]);
    let xnonce = *XNonce::from_slice(&nonce);
    let mut buf = body.clone();
    let tag = XChaCha20Poly1305::new((&key.key).into())
        .encrypt_in_place_detached(&xnonce, &aad, &mut buf)
        .map_err(|e| e.to_string())?;
    let sealed_body = buf;
    let signed_part = &signed[..signed.len() - SIG_LEN];
    let sig: [u8; SIG_LEN] = signed[signed.len() - SIG_LEN..]
        .try_into()
        .map_err(|_| "signature length")?;
    let mut ops = vec![
        time("XChaCha20-Poly1305 seal alone", "aead_seal", || {
            let mut b = body.clone();
            let c = XChaCha20Poly1305::new(black_box(&key.key).into());
            black_box(c.encrypt_in_place_detached(&xnonce, &aad, &mut b).ok());
            black_box(b);
        }),
        time("XChaCha20-Poly1305 open alone", "aead_open", || {
            let mut b = sealed_body.clone();
            let c = XChaCha20Poly1305::new(black_box(&key.key).into());
            let t = Tag::from_slice(&tag);
            black_box(c.decrypt_in_place_detached(&xnonce, &aad, &mut b, t).ok());
            black_box(b);
        }),
        time("Ed25519 sign alone", "ed25519_sign", || {
            black_box(id.sign(black_box(signed_part)));
        }),
        time("Ed25519 verify alone", "ed25519_verify", || {
            black_box(Authenticator::verify(
                &id,
                &signer,
                black_box(signed_part),
                &sig,
            ));
        }),
        time("send: encode + seal (unsigned)", "send_unsigned", || {
            black_box(dg.encode(&key, &nonce, &Unsigned));
        }),
        time("send: encode + seal + sign", "send_signed", || {
            black_box(dg.encode(&key, &nonce, &id));
        }),
        time("receive: open + parse (unchecked)", "recv_unsigned", || {
            black_box(decode(black_box(&unsigned), &Unsigned).ok());
        }),
        time("receive: verify + open + parse", "recv_signed", || {
            black_box(decode(black_box(&signed), &id).ok());
        }),
    ];
    ops.push(time("receive: header + verify only", "recv_verify", || {
        black_box(Header::peek(black_box(&signed)).is_ok() && verify(&id, &signer, &signed));
    }));
    // Room keys (issue 12 item 4): the maker seals the epoch's key to each
    // member once per leave (or join); each member opens its own once.
    let member = Identity::generate();
    let member_kx = member.public().kx;
    let maker_kx = id.public().kx;
    let package = roomkey::seal(
        &id,
        "alice",
        "bob",
        &member_kx,
        "lab",
        3,
        &key.key,
        rand::random(),
    );
    if roomkey::open(&member, "alice", "bob", &maker_kx, "lab", 3, &package) != Some(key.key) {
        return Err("a room key package did not open".into());
    }
    ops.push(time("room key: seal one package", "roomkey_seal", || {
        black_box(roomkey::seal(
            &id,
            "alice",
            "bob",
            &member_kx,
            "lab",
            3,
            &key.key,
            rand::random(),
        ));
    }));
    ops.push(time("room key: open one package", "roomkey_open", || {
        black_box(roomkey::open(
            &member,
            "alice",
            "bob",
            &maker_kx,
            "lab",
            3,
            black_box(&package),
        ));
    }));
    progress!(
        "crypto: {} timed calls, {} B datagram",
        group(ops.iter().map(|o| o.calls).sum()),
        signed.len()
    );
    Ok(CryptoBench {
        datagram_bytes: signed.len(),
        ops,
    })
}

/// Per message, per member of an `n`-member room: the sender's cost spread
/// over the `n - 1` members it reaches, plus one member's receive.
fn per_member(send: f64, recv: f64, n: usize) -> f64 {
    send / (n - 1) as f64 + recv
}

pub fn report_crypto(r: &mut Report, x: &Result<CryptoBench, String>) {
    r.heading("Room crypto per datagram (in process, 200-byte DATA)");
    let x = match x {
        Ok(x) => x,
        Err(e) => return r.line(format!("  failed: {e}")),
    };
    r.line(format!(
        "  a {}-byte datagram; median of {RUNS} runs of up to {} calls (each run at most {} ms)",
        x.datagram_bytes,
        group(u64::from(ITERS)),
        RUN_CAP.as_millis()
    ));
    let rows: Vec<Vec<String>> = x
        .ops
        .iter()
        .map(|o| vec![o.what.to_string(), fmt_us(o.ns / 1000.0), group(o.calls)])
        .collect();
    table(&mut r.text, &["operation", "per call", "calls"], &rows);
    let mut json_ops = serde_json::Map::new();
    for o in &x.ops {
        json_ops.insert(o.key.into(), json!(round2(o.ns / 1000.0)));
    }
    r.line("");
    r.line("  per message, per member: sender's seal spread over the others + one receive;");
    r.line(format!(
        "  room: the whole room's CPU per message; core at {RATE:.0}/s: one receiving member's share of a core"
    ));
    let mut rows = Vec::new();
    let mut rooms = Vec::new();
    for n in ROOM_SIZES {
        for (label, send, recv) in [
            ("signed", x.ns("send_signed"), x.ns("recv_signed")),
            ("unsigned", x.ns("send_unsigned"), x.ns("recv_unsigned")),
        ] {
            let member = per_member(send, recv, n);
            let room = send + (n - 1) as f64 * recv;
            let core = RATE * recv / 1e9 * 100.0;
            rows.push(vec![
                n.to_string(),
                label.to_string(),
                fmt_us(member / 1000.0),
                fmt_us(room / 1000.0),
                format!("{core:.2}%"),
            ]);
            rooms.push(json!({
                "members": n, "auth": label,
                "per_member_us": round2(member / 1000.0),
                "room_us": round2(room / 1000.0),
                "receiver_core_pct_at_200": round2(core),
            }));
        }
    }
    table(
        &mut r.text,
        &[
            "members",
            "datagrams",
            "per member",
            "room",
            "core at 200/s",
        ],
        &rows,
    );
    r.json.insert(
        "room_crypto".into(),
        json!({"datagram_bytes": x.datagram_bytes, "text_bytes": TEXT_BYTES,
               "ops_us": json_ops, "rooms": rooms}),
    );
}
