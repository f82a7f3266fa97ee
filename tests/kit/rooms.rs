//! Checks on chat rooms across several [`Peer`]s: everyone saw everyone
//! join, every message arrived exactly once and in order, every message was
//! acknowledged by every member.

use super::peer::{received, Peer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Microseconds since the Unix epoch (the clock peers stamp `ts_us` with).
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The room key a raw client (logged in as `me` with [`raw_identity`]'s
/// keys) gets in `room`: from `reply` (to `join_room` or `members`) when it
/// carries our package, else asking `members` every 100 ms (up to 10 s)
/// until the room's key maker, a real peer, has sealed one for us. Opened
/// with the maker's key as the registry vouches for it.
#[track_caller]
pub fn room_key(
    session: &mut super::client::Session,
    me: &str,
    reply: &Value,
) -> lanchat::protocol::datagram::RoomKey {
    let room = reply["room"]["name"]
        .as_str()
        .expect("a room in the reply")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reply = reply.clone();
    loop {
        if let Some(key) = open_package(me, &reply["room"]) {
            return key;
        }
        assert!(
            Instant::now() < deadline,
            "no room key sealed for {me} in #{room}: {reply}"
        );
        std::thread::sleep(Duration::from_millis(100));
        reply = session.ok(json!({"op": "members", "room": room}));
    }
}

/// Our package in a room entry, opened.
fn open_package(me: &str, room: &Value) -> Option<lanchat::protocol::datagram::RoomKey> {
    let maker = room["key_maker"].as_str()?;
    let package = room["key_package"].as_str()?;
    let epoch = room["epoch"].as_u64()?;
    let keys = room["members"]
        .as_array()?
        .iter()
        .find(|u| u["username"] == maker)?
        .get("keys")?;
    let kx = lanchat::identity::unhex32(keys["kx"].as_str()?)?;
    let name = room["name"].as_str()?;
    let key = lanchat::protocol::roomkey::open_hex(
        &raw_identity(),
        maker,
        me,
        &kx,
        name,
        epoch,
        package,
    )?;
    Some(lanchat::protocol::datagram::RoomKey { epoch, key })
}

/// The fixed identity a raw test client logs in with and signs room
/// datagrams with.
pub fn raw_identity() -> lanchat::identity::Identity {
    lanchat::identity::Identity::from_secrets([0x5a; 32], [0x5b; 32])
}

/// Seals `dg` under `key` with a fresh random nonce, as a peer does, signed
/// by [`raw_identity`].
pub fn seal(
    dg: &lanchat::protocol::datagram::Datagram,
    key: &lanchat::protocol::datagram::RoomKey,
) -> Vec<u8> {
    dg.encode(key, &rand::random(), &raw_identity())
}

/// Opens a captured datagram under `key`, its signature unchecked.
pub fn open(
    bytes: &[u8],
    key: &lanchat::protocol::datagram::RoomKey,
) -> Result<lanchat::protocol::datagram::Datagram, lanchat::protocol::datagram::DecodeError> {
    use lanchat::protocol::datagram::{Datagram, Header};
    Datagram::open(bytes, Header::peek(bytes)?, key)
}

/// `peers[0]` creates `room` and the others join it (each waiting for its
/// `room_joined`); then waits, up to `timeout`, until everyone has seen
/// everyone join ([`await_full_mesh`]).
#[track_caller]
pub fn form_room(peers: &mut [Peer], room: &str, timeout: Duration) {
    for (i, x) in peers.iter_mut().enumerate() {
        let verb = if i == 0 { "create" } else { "join" };
        x.send(&format!("/{verb} {room}"));
        x.expect("room_joined", &[("room", room)], Duration::from_secs(10));
    }
    await_full_mesh(peers, room, timeout);
    for x in peers.iter_mut() {
        x.expect("room_key", &[("room", room)], timeout);
    }
}

/// Waits until every peer has seen `member_joined` (or a `room_joined`
/// listing) for every other in `room`; used after a burst of joins.
#[track_caller]
pub fn await_full_mesh(peers: &mut [Peer], room: &str, timeout: Duration) {
    let names: Vec<String> = peers.iter().map(|p| p.name.clone()).collect();
    for (i, p) in peers.iter_mut().enumerate() {
        let others: Vec<&String> = names
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| n)
            .collect();
        let what = format!("member_joined (or room_joined listing) of {others:?} in #{room}");
        p.wait_history(&what, timeout, |h| {
            others.iter().all(|o| {
                h.iter().any(|v| {
                    (v["event"] == "member_joined" && v["room"] == room && v["user"] == o.as_str())
                        || (v["event"] == "room_joined"
                            && v["room"] == room
                            && v["members"]
                                .as_array()
                                .is_some_and(|m| m.iter().any(|x| x == o.as_str())))
                })
            })
        });
    }
}

/// Waits until each receiver has `want[s]` from each sender `s` (the last
/// text of each list acts as the fence: per-sender order means everything
/// before it must be there too), then checks the sequence is exactly that:
/// all of them, once each, in order.
#[track_caller]
pub fn expect_exact(
    peers: &mut [Peer],
    chat: &str,
    want: &[(String, Vec<String>)],
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    for p in peers.iter_mut() {
        let me = p.name.clone();
        for (from, texts) in want.iter().filter(|(from, _)| *from != me) {
            let last = texts.last().expect("at least one text").clone();
            let left = deadline.saturating_duration_since(Instant::now());
            let what = format!("the last message ({last:?}) from {from} in {chat}");
            p.wait_history(&what, left, |h| received(h, chat, from).contains(&last));
            let got = p.texts_from(chat, from);
            assert_exact_sequence(&p.name, from, &got, texts);
        }
    }
}

/// Ids of our own messages in `chat`, in order, once there are `n`.
#[track_caller]
pub fn own_ids(p: &mut Peer, chat: &str, n: usize) -> Vec<u64> {
    let own = |v: &&Value| v["event"] == "message" && v["own"] == json!(true) && v["chat"] == chat;
    p.wait_history(
        &format!("{n} own messages in {chat}"),
        Duration::from_secs(10),
        |h| h.iter().filter(own).count() >= n,
    );
    p.history
        .iter()
        .filter(own)
        .map(|v| v["id"].as_u64().expect("id"))
        .collect()
}

/// Every one of `ids` gets a final `delivery` with acked == total == `n`.
#[track_caller]
pub fn expect_delivered(p: &mut Peer, room: &str, ids: &[u64], n: usize, timeout: Duration) {
    for &id in ids {
        p.expect(
            "delivery",
            &[
                ("room", json!(room)),
                ("id", json!(id)),
                ("acked", json!(n)),
                ("total", json!(n)),
            ],
            timeout,
        );
    }
    if p.history.iter().any(|v| v["event"] == "delivery_failed") {
        p.fail("a delivery failed");
    }
}

/// Checks that `got` is exactly `want`: every message once, in order. On a
/// mismatch, says where it first differs and what is missing or doubled.
#[track_caller]
pub fn assert_exact_sequence(who: &str, from: &str, got: &[String], want: &[String]) {
    if got == want {
        return;
    }
    let first_diff = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for w in want {
        *counts.entry(w).or_default() -= 1;
    }
    for g in got {
        *counts.entry(g).or_default() += 1;
    }
    let pick = |neg: bool| -> Vec<&&str> {
        counts
            .iter()
            .filter(|(_, c)| if neg { **c < 0 } else { **c > 0 })
            .map(|(k, _)| k)
            .take(10)
            .collect()
    };
    let (missing, extra) = (pick(true), pick(false));
    panic!(
        "{who} got {} messages from {from}, expected {}; first difference at index {first_diff} \
         (got {:?}, expected {:?}); missing {missing:?}; duplicated/unexpected {extra:?}",
        got.len(),
        want.len(),
        got.get(first_diff),
        want.get(first_diff),
    );
}
