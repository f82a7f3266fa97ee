//! Black-box tests of chat rooms on loopback: the real `registry` and `peer`
//! binaries, real UDP between peers. Every wait is on an event (bounded);
//! nothing sleeps to synchronise.

mod kit;

use kit::*;
use lanchat::protocol::datagram::{self as wire, Body, Datagram, EventKind, RoomKey};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

/// `peers[0]` creates `room`, the others join one at a time. After each
/// join, every earlier member must see `member_joined` for the newcomer;
/// with `within` set, no later than that after the newcomer's `room_joined`.
fn create_and_join(peers: &mut [Peer], room: &str, within: Option<Duration>) {
    peers[0].send(&format!("/create {room}"));
    let joined = peers[0].expect("room_joined", &[("room", json!(room))], T);
    assert_eq!(joined["members"], json!([peers[0].name]), "{joined}");
    for k in 1..peers.len() {
        peers[k].send(&format!("/join {room}"));
        let joined = peers[k].expect("room_joined", &[("room", json!(room))], T);
        let listed: BTreeSet<&str> = joined["members"]
            .as_array()
            .expect("members")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let want: BTreeSet<&str> = peers[..=k].iter().map(|p| p.name.as_str()).collect();
        assert_eq!(listed, want, "{}'s room_joined: {joined}", peers[k].name);
        let t_join = joined["ts_us"].as_u64().expect("ts_us");
        let newcomer = peers[k].name.clone();
        for p in peers[..k].iter_mut() {
            let seen = p.expect(
                "member_joined",
                &[("room", json!(room)), ("user", json!(newcomer))],
                within.map_or(T, |w| w + Duration::from_secs(2)),
            );
            if let Some(w) = within {
                let lag = Duration::from_micros(
                    seen["ts_us"]
                        .as_u64()
                        .expect("ts_us")
                        .saturating_sub(t_join),
                );
                assert!(
                    lag < w,
                    "{} saw {newcomer} join after {lag:?} (limit {w:?})",
                    p.name
                );
            }
        }
    }
    // Every member holds the room's key (made by the creator, sealed to
    // each): what a test sends from here is opened.
    for p in peers.iter_mut() {
        p.expect("room_key", &[("room", json!(room))], T);
    }
}

fn names(peers: &[Peer]) -> Vec<String> {
    let mut v: Vec<String> = peers.iter().map(|p| p.name.clone()).collect();
    v.sort();
    v
}

#[test]
fn five_peer_room_membership_fan_out_and_leaving() {
    let reg = Registry::start(&[]);
    let mut peers = login_all(
        reg.addr(),
        &["alice", "bob", "carol", "dave", "erin"],
        &PeerOpts::default(),
    );
    create_and_join(&mut peers, "lobby", Some(Duration::from_secs(1)));

    assert_eq!(peers[0].rooms().get("lobby"), Some(&5), "/rooms count");
    let all = names(&peers);
    assert_eq!(peers[3].registry_members("lobby"), all, "/members");

    // Everyone talks at once (plain text goes to the current room).
    const N: usize = 6;
    for i in 0..N {
        for p in peers.iter_mut() {
            let line = format!("{} says {i}", p.name);
            p.send(&line);
        }
    }
    let want: Vec<(String, Vec<String>)> = peers
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                (0..N).map(|i| format!("{} says {i}", p.name)).collect(),
            )
        })
        .collect();
    expect_exact(&mut peers, "#lobby", &want, T);
    for p in peers.iter_mut() {
        let ids = own_ids(p, "#lobby", N);
        assert_eq!(ids.len(), N, "{}: own message events", p.name);
        expect_delivered(p, "lobby", &ids, 4, T);
    }

    // Members leave one by one; the last one out deletes the room.
    while let Some(mut leaver) = peers.pop() {
        leaver.send("/leave lobby");
        leaver.expect("room_left", &[("room", json!("lobby"))], T);
        for p in peers.iter_mut() {
            p.expect(
                "member_left",
                &[
                    ("room", json!("lobby")),
                    ("user", json!(leaver.name)),
                    ("reason", json!("left")),
                ],
                T,
            );
        }
        let rooms = leaver.rooms();
        if peers.is_empty() {
            assert!(
                !rooms.contains_key("lobby"),
                "the room outlived its last member: {rooms:?}"
            );
        } else {
            assert_eq!(rooms.get("lobby"), Some(&(peers.len() as u64)), "{rooms:?}");
            let members = leaver.registry_members("lobby");
            assert_eq!(members, names(&peers), "registry still lists the leaver");
        }
    }
}

#[test]
fn two_rooms_keep_their_messages_apart() {
    let reg = Registry::start(&[]);
    let mut p = login_all(reg.addr(), &["alice", "bob"], &PeerOpts::default());
    for room in ["red", "blue"] {
        p[0].send(&format!("/create {room}"));
        p[0].expect("room_joined", &[("room", json!(room))], T);
        p[1].send(&format!("/join {room}"));
        p[1].expect("room_joined", &[("room", json!(room))], T);
        p[0].expect(
            "member_joined",
            &[("room", json!(room)), ("user", json!("bob"))],
            T,
        );
    }
    // Both are now "in" blue (the last room each created or joined).
    p[0].send("/msg #red alice to red by msg");
    p[0].send("alice plain to blue");
    p[0].send("/switch #red");
    p[0].expect("current", &[("target", json!("#red"))], T);
    p[0].send("alice plain to red after switch");
    p[1].send("/msg #blue bob to blue by msg");
    p[1].send("/switch #red");
    p[1].expect("current", &[("target", json!("#red"))], T);
    p[1].send("bob plain to red after switch");

    let (a, b) = p.split_at_mut(1);
    let (alice, bob) = (&mut a[0], &mut b[0]);
    bob.wait_history("alice's messages", T, |h| {
        received(h, "#red", "alice").len() >= 2 && !received(h, "#blue", "alice").is_empty()
    });
    alice.wait_history("bob's messages and alice's own three echoes", T, |h| {
        !received(h, "#red", "bob").is_empty()
            && !received(h, "#blue", "bob").is_empty()
            && h.iter()
                .filter(|v| v["event"] == "message" && v["own"] == json!(true))
                .count()
                >= 3
    });
    assert_eq!(
        bob.texts_from("#red", "alice"),
        ["alice to red by msg", "alice plain to red after switch"]
    );
    assert_eq!(bob.texts_from("#blue", "alice"), ["alice plain to blue"]);
    assert_eq!(alice.texts_from("#blue", "bob"), ["bob to blue by msg"]);
    assert_eq!(
        alice.texts_from("#red", "bob"),
        ["bob plain to red after switch"]
    );
    // The sender's own echo names the right room too.
    let own: Vec<(String, String)> = alice
        .history
        .iter()
        .filter(|v| v["event"] == "message" && v["own"] == json!(true))
        .map(|v| {
            (
                v["chat"].as_str().unwrap().into(),
                v["text"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        own,
        [
            ("#red".to_string(), "alice to red by msg".to_string()),
            ("#blue".into(), "alice plain to blue".into()),
            ("#red".into(), "alice plain to red after switch".into()),
        ]
    );
}

/// Text of `len` bytes with multi-byte characters straddling fragment
/// boundaries and a position marker every few bytes (so a swapped or
/// repeated fragment cannot go unnoticed).
fn long_text(len: usize) -> String {
    let mut s = String::new();
    let mut i = 0;
    while s.len() < len {
        s.push_str(&format!("{i}€ "));
        i += 1;
    }
    while s.len() > len {
        s.pop();
    }
    while s.len() < len {
        s.push('.');
    }
    s
}

#[test]
fn identical_texts_long_messages_and_the_size_limit() {
    let reg = Registry::start(&[]);
    let mut p = login_all(reg.addr(), &["alice", "bob"], &PeerOpts::default());
    create_and_join(&mut p, "misc", None);

    let long = long_text(5000);
    let max = long_text(wire::MAX_MESSAGE);
    let over = long_text(wire::MAX_MESSAGE + 1);
    assert_eq!((long.len(), max.len(), over.len()), (5000, 32000, 32001));

    p[0].send("ok");
    p[0].send("ok");
    p[0].send(&long);
    p[0].send(&max);
    p[0].send(&over);
    let err = p[0].expect("error", ANY, T);
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("too long"),
        "{err}"
    );
    p[0].send("after the big one");

    let want = vec![(
        "alice".to_string(),
        vec![
            "ok".to_string(),
            "ok".to_string(),
            long.clone(),
            max.clone(),
            "after the big one".to_string(),
        ],
    )];
    expect_exact(&mut p, "#misc", &want, T);

    let oks: Vec<u64> = p[1]
        .incoming()
        .iter()
        .filter(|v| v["text"] == "ok")
        .map(|v| v["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(oks.len(), 2);
    assert_ne!(oks[0], oks[1], "two messages, two ids");

    // The sender never echoed the oversized message, and got a final
    // delivery for each of the others.
    let ids = own_ids(&mut p[0], "#misc", 5);
    assert_eq!(ids.len(), 5, "own messages: {ids:?}");
    assert!(
        !p[0].history.iter().any(|v| v["text"] == json!(over)),
        "oversized message echoed"
    );
    expect_delivered(&mut p[0], "misc", &ids, 1, T);
}

#[test]
fn reliable_exactly_once_in_order_through_injected_faults() {
    let reg = Registry::start(&[]);
    let opts = PeerOpts {
        faults: Some("drop=0.2,dup=0.1,reorder=0.2".into()),
        ..PeerOpts::default()
    };
    let mut p = login_all(reg.addr(), &["alice", "bob", "carol"], &opts);
    create_and_join(&mut p, "noisy", None);

    const N: usize = 200;
    let started = Instant::now();
    let texts = |who: &str| -> Vec<String> { (0..N).map(|i| format!("{who} #{i:03}")).collect() };
    // Interleave the two senders' bursts.
    for chunk in 0..(N / 20) {
        for sender in p[..2].iter_mut() {
            let who = sender.name.clone();
            sender.send_lines(texts(&who)[chunk * 20..(chunk + 1) * 20].to_vec());
        }
    }
    let want = vec![
        ("alice".to_string(), texts("alice")),
        ("bob".to_string(), texts("bob")),
    ];
    expect_exact(&mut p, "#noisy", &want, Duration::from_secs(60));
    let elapsed = started.elapsed();
    for sender in p[..2].iter_mut() {
        let ids = own_ids(sender, "#noisy", N);
        assert_eq!(ids.len(), N);
        expect_delivered(sender, "noisy", &ids, 2, Duration::from_secs(30));
    }
    let stats: Vec<Value> = p.iter_mut().map(|x| x.stats()).collect();
    eprintln!("2 x {N} messages through drop=0.2,dup=0.1,reorder=0.2 in {elapsed:?}");
    for (x, s) in p.iter().zip(&stats) {
        eprintln!("  {}: {s}", x.name);
    }
    for (x, s) in p.iter().zip(&stats) {
        // Everyone receives (alice and bob from each other).
        assert!(s["duplicates"].as_u64().unwrap() > 0, "{}: {s}", x.name);
        assert!(
            s["messages_delivered"].as_u64().unwrap() >= N as u64,
            "{}: {s}",
            x.name
        );
    }
    for (x, s) in p.iter().zip(&stats).take(2) {
        assert!(s["retransmits"].as_u64().unwrap() > 0, "{}: {s}", x.name);
        assert!(s["injected_drops"].as_u64().unwrap() > 0, "{}: {s}", x.name);
    }
}

/// A one-fragment DATA datagram in room "sec" (msg_id = seq); DATA goes
/// to the room, `_to` says who the test hands it to.
fn data(from: &str, _to: &str, stream: u64, seq: u64, event: EventKind, text: &str) -> Datagram {
    Datagram {
        room: "sec".into(),
        from: from.into(),
        body: Body::Data {
            stream,
            seq,
            event,
            msg_id: seq,
            frag: 0,
            frags: 1,
            bytes: text.as_bytes().to_vec(),
        },
    }
}

/// Counter `name` of a `/stats` reply.
fn counter(s: &Value, name: &str) -> u64 {
    s[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {s}"))
}

/// Sends `bytes` to `to`, then waits until `peer`'s counter `name` has
/// grown by one from `base` (the datagram was dropped for that reason).
fn expect_dropped(
    sock: &UdpSocket,
    bytes: &[u8],
    to: SocketAddr,
    peer: &mut Peer,
    base: &Value,
    name: &str,
) {
    sock.send_to(bytes, to).expect("send datagram");
    let want = counter(base, name) + 1;
    let s = peer.wait_stats(&format!("{name} = {want}"), T, |s| counter(s, name) >= want);
    assert_eq!(counter(&s, name), want, "{name}: {s}");
}

#[test]
fn forged_replayed_and_foreign_datagrams_are_dropped() {
    let t0_us = now_us();
    let reg = Registry::start(&[]);
    let mut p = login_all(reg.addr(), &["alice", "bob"], &PeerOpts::default());
    create_and_join(&mut p, "sec", None);
    let bob_addr: SocketAddr = ([127, 0, 0, 1], p[1].udp_port).into();
    let alice_addr: SocketAddr = ([127, 0, 0, 1], p[0].udp_port).into();
    let base = p[1].stats();

    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let my_port = sock.local_addr().unwrap().port();

    // (a) garbage
    expect_dropped(
        &sock,
        b"\x00garbage, not a datagram\xff",
        bob_addr,
        &mut p[1],
        &base,
        "malformed",
    );
    // (b) well formed, sealed with the wrong key (of the room's epoch: it
    // was just made, and nobody left)
    let wrong_key = RoomKey {
        epoch: 1,
        key: [0x42; 32],
    };
    let forged = data(
        "alice",
        "bob",
        now_us(),
        1,
        EventKind::Text,
        "forged with a wrong key",
    );
    // Signed by the test's key, not alice's: refused before the tag is
    // looked at.
    expect_dropped(
        &sock,
        &seal(&forged, &wrong_key),
        bob_addr,
        &mut p[1],
        &base,
        "bad_signature",
    );
    // ... and for a room bob is not in
    let other = Datagram {
        room: "elsewhere".into(),
        ..data(
            "alice",
            "bob",
            now_us(),
            1,
            EventKind::Text,
            "forged other room",
        )
    };
    expect_dropped(
        &sock,
        &seal(&other, &wrong_key),
        bob_addr,
        &mut p[1],
        &base,
        "unknown_room",
    );

    // (c) mallory: a real account and a real member of the room, so it
    // holds the room key; it speaks from the test's socket.
    let mut mallory = Session::login(reg.addr(), "mallory", my_port, my_port)
        .with_heartbeats(Duration::from_millis(300));
    let joined = mallory.ok(json!({"op": "join_room", "room": "sec"}));
    let key = room_key(&mut mallory, "mallory", &joined);
    let m_stream = now_us();
    let join = data("mallory", "", m_stream, 1, EventKind::Join, "");
    for addr in [alice_addr, bob_addr] {
        sock.send_to(&seal(&join, &key), addr).expect("send join");
    }
    for x in p.iter_mut() {
        x.expect(
            "member_joined",
            &[("room", json!("sec")), ("user", json!("mallory"))],
            T,
        );
    }

    // A real member talks; mallory receives its copy.
    p[0].send("secret one");
    p[1].wait_messages("#sec", "alice", 1, T);
    let deadline = Instant::now() + T;
    let captured = loop {
        assert!(
            Instant::now() < deadline,
            "no DATA from alice reached mallory"
        );
        let mut buf = [0u8; 2048];
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let Ok(dg) = kit::rooms::open(&buf[..n], &key) else {
            continue;
        };
        if let Body::Data {
            event: EventKind::Text,
            ref bytes,
            ..
        } = dg.body
        {
            if dg.from == "alice" && bytes == b"secret one" {
                break buf[..n].to_vec();
            }
        }
    };
    let base = p[1].stats();

    // The same bytes went to every member: replayed to bob, a duplicate.
    expect_dropped(&sock, &captured, bob_addr, &mut p[1], &base, "duplicates");
    // An acknowledgement meant for alice, sent to bob.
    let ack = Datagram {
        room: "sec".into(),
        from: "mallory".into(),
        body: Body::Ack {
            to: "alice".into(),
            stream: 1,
            cum: 1,
            high: 1,
            unsynced: false,
            group: false,
            missing: Vec::new(),
        },
    };
    expect_dropped(
        &sock,
        &seal(&ack, &key),
        bob_addr,
        &mut p[1],
        &base,
        "wrong_destination",
    );
    // Mallory on a stream older than her current one (a replay of an
    // earlier run's).
    let stale = data(
        "mallory",
        "bob",
        t0_us,
        1,
        EventKind::Text,
        "forged stale stream",
    );
    expect_dropped(
        &sock,
        &seal(&stale, &key),
        bob_addr,
        &mut p[1],
        &base,
        "stale_stream",
    );
    // From someone who is not in the room (and not joining): the registry
    // vouches for no key of theirs.
    let eve = data(
        "eve",
        "bob",
        now_us(),
        1,
        EventKind::Text,
        "forged non-member",
    );
    expect_dropped(
        &sock,
        &seal(&eve, &key),
        bob_addr,
        &mut p[1],
        &base,
        "unknown_sender",
    );

    // The same crafting, honest this time: mallory's own fresh stream.
    let hello = data(
        "mallory",
        "bob",
        m_stream,
        2,
        EventKind::Text,
        "hello from mallory",
    );
    sock.send_to(&seal(&hello, &key), bob_addr).expect("send");
    p[1].wait_messages("#sec", "mallory", 1, T);

    // Everything above was processed (each drop showed in the counters, in
    // the order sent); exactly the two genuine messages came out.
    let got: Vec<(String, String)> = p[1]
        .incoming()
        .iter()
        .map(|v| {
            (
                v["from"].as_str().unwrap().into(),
                v["text"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("alice".to_string(), "secret one".to_string()),
            ("mallory".into(), "hello from mallory".into()),
        ]
    );
    drop(mallory);
}

/// A member who holds the room key (mallory, a real member) sends a text
/// naming alice, on a higher stream, signed with her own registry-vouched
/// key: bob drops it as a bad signature, shows nothing of it, and alice's
/// stream goes on, everything she says reaching bob in order.
#[test]
fn a_member_cannot_forge_another_members_message() {
    let reg = Registry::start(&[]);
    let mut p = login_all(reg.addr(), &["alice", "bob"], &PeerOpts::default());
    create_and_join(&mut p, "sec", None);
    let bob_addr: SocketAddr = ([127, 0, 0, 1], p[1].udp_port).into();
    p[0].send("before");
    p[1].wait_messages("#sec", "alice", 1, T);

    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let my_port = sock.local_addr().unwrap().port();
    let mut mallory = Session::login(reg.addr(), "mallory", my_port, my_port)
        .with_heartbeats(Duration::from_millis(300));
    let joined = mallory.ok(json!({"op": "join_room", "room": "sec"}));
    let key = room_key(&mut mallory, "mallory", &joined);
    let base = p[1].stats();
    let forged = data("alice", "bob", u64::MAX, 1, EventKind::Text, "forged");
    sock.send_to(&seal(&forged, &key), bob_addr).expect("send");
    let want = counter(&base, "bad_signature") + 1;
    p[1].wait_stats("a bad signature", T, |s| {
        counter(s, "bad_signature") >= want
    });

    let said: Vec<String> = (1..=5).map(|n| format!("after {n}")).collect();
    for text in &said {
        p[0].send(text);
    }
    p[1].wait_messages("#sec", "alice", 1 + said.len(), T);
    let got: Vec<&str> = p[1]
        .incoming()
        .iter()
        .filter(|v| v["from"] == "alice")
        .map(|v| v["text"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = std::iter::once("before")
        .chain(said.iter().map(String::as_str))
        .collect();
    assert_eq!(got, want);
    drop(mallory);
}

#[test]
fn a_killed_member_leaves_every_list_within_five_seconds() {
    let reg = Registry::start(&[]);
    let mut p = login_all(
        reg.addr(),
        &["alice", "bob", "carol", "olivia"],
        &PeerOpts::default(),
    );
    let mut observer = p.pop().expect("olivia");
    create_and_join(&mut p, "live", None);
    assert_eq!(observer.registry_members("live"), ["alice", "bob", "carol"]);

    let killed_at = Instant::now();
    let killed_us = now_us();
    p[2].kill9();

    // The registry: it sees carol's connection close (no event tells a
    // member that, so ask).
    wait_until(
        Duration::from_secs(5).saturating_sub(killed_at.elapsed()),
        Duration::from_millis(50),
        "the registry to stop listing carol (5 s after kill -9)",
        || {
            !observer
                .registry_members("live")
                .contains(&"carol".to_string())
        },
    );
    let registry_lag = killed_at.elapsed();

    // The peers: carol stops answering pings.
    let mut lags = Vec::new();
    for x in p[..2].iter_mut() {
        let left = x.expect(
            "member_left",
            &[("room", json!("live")), ("user", json!("carol"))],
            Duration::from_secs(8),
        );
        let lag = Duration::from_micros(left["ts_us"].as_u64().unwrap().saturating_sub(killed_us));
        lags.push((x.name.clone(), lag, left["reason"].clone()));
    }
    eprintln!("after kill -9: registry dropped carol within {registry_lag:?}; peers: {lags:?}");
    for (who, lag, _) in &lags {
        assert!(
            *lag < Duration::from_secs(5),
            "{who} noticed only after {lag:?}"
        );
    }

    // The survivors still talk.
    p[0].send("still here");
    p[1].wait_messages("#live", "alice", 1, T);
}

/// After the registry restarts (same port, same store) both peers restore
/// their sessions and re-join the room, and keep talking.
///
/// The bug this guards against (when `reconcile` still removed members
/// known for over 2 s that the registry did not list): the restarted
/// registry takes every old session offline, which empties and deletes the
/// room; on `session_restored` each peer re-joins (`rooms_rejoin`), the
/// first one re-creating the room. The reply it got listed only itself, so
/// `reconcile` removed the other peer ("left"); moments later that peer's
/// pings (non_member) made it refresh and re-add it with a brand-new
/// `Member` whose `rx` was `None`. The other peer never dropped anything, so
/// it kept sending on its old stream at seq N > 1; the new `RecvStream`
/// started at `expected = 1`, buffered seq N forever and SACKed it, so the
/// sender even reported the message delivered (`delivery` acked == total)
/// although it was never shown.
#[test]
fn rooms_keep_working_after_a_registry_restart() {
    let mut reg = Registry::start(&[]);
    let mut p = login_all(reg.addr(), &["alice", "bob"], &PeerOpts::default());
    create_and_join(&mut p, "r", None);
    p[0].send("alice before");
    p[1].send("bob before");
    p[1].wait_messages("#r", "alice", 1, T);
    p[0].wait_messages("#r", "bob", 1, T);

    reg.restart();
    for x in p.iter_mut() {
        x.expect("session_restored", ANY, Duration::from_secs(15));
    }
    // Each peer re-joins on `session_restored` (the first re-creates the
    // room, which the restart emptied); no event says the registry has both
    // again, so ask it, from aside (asking through a peer would make that
    // peer reconcile its member list).
    let mut observer = reg.ghost_login("olivia", 9, 9);
    wait_until(
        T,
        Duration::from_millis(50),
        "both peers members of #r at the registry again",
        || {
            let mut m = observer.client.member_names(&observer.token, "r");
            m.sort();
            m == ["alice", "bob"]
        },
    );
    p[0].send("alice after");
    p[1].send("bob after");
    let mut failures = Vec::new();
    for (to, from) in [(1, 0), (0, 1)] {
        let sender = p[from].name.clone();
        let want = [format!("{sender} before"), format!("{sender} after")];
        p[to].try_wait_history(T, |h| received(h, "#r", &sender).len() >= 2);
        let got = p[to].texts_from("#r", &sender);
        if got != want {
            // Did the sender get told it was delivered?
            let own = own_ids(&mut p[from], "#r", 2);
            p[from].drain();
            let acked = p[from].history.iter().any(|v| {
                v["event"] == "delivery" && v["id"] == json!(own[1]) && v["acked"] == v["total"]
            });
            failures.push(format!(
                "{} got {got:?} from {sender} (expected {want:?}); {sender} was told \
                 {:?} was delivered: {acked}; {}'s recent events:\n{}",
                p[to].name,
                want[1],
                p[to].name,
                p[to].recent(8)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A room mistake says the next step: `/create` after "no such room",
/// `/join` after "already exists".
#[test]
fn room_errors_suggest_the_next_step() {
    let reg = Registry::start(&[]);
    let mut p = login_all(reg.addr(), &["alice", "bob"], &PeerOpts::default());
    p[0].send("/join nosuch");
    let e = p[0].expect("error", &[("code", json!("no_such_room"))], T);
    let msg = e["message"].as_str().unwrap_or_default();
    assert!(msg.ends_with("; /create nosuch makes it"), "{e}");
    p[0].send("/create lab");
    p[0].expect("room_joined", &[("room", json!("lab"))], T);
    p[1].send("/create lab");
    let e = p[1].expect("error", &[("code", json!("room_exists"))], T);
    let msg = e["message"].as_str().unwrap_or_default();
    assert!(msg.ends_with("; /join lab to go in"), "{e}");
}

/// `--room-transport multicast` on a loopback address: the peer says at
/// login that rooms stay unicast, and its room works as before, nothing
/// sent to a group (`auto`, the default, stays unicast there without a
/// word).
#[test]
fn multicast_asked_for_on_loopback_says_so_and_stays_unicast() {
    let reg = Registry::start(&[]);
    let multicast = PeerOpts {
        args: vec!["--room-transport".into(), "multicast".into()],
        ..PeerOpts::default()
    };
    let specs = [("alice", multicast), ("bob", PeerOpts::default())];
    let mut p = login_peers(reg.addr(), &specs);
    let said = |h: &[Value]| {
        h.iter().any(|v| {
            v["event"] == "notice"
                && v["text"].as_str().is_some_and(|t| {
                    t.starts_with("rooms use unicast: multicast needs a LAN address")
                })
        })
    };
    p[0].wait_history("the notice that rooms stay unicast", T, said);
    assert!(!said(&p[1].history), "auto says nothing");
    create_and_join(&mut p, "lab", None);
    p[0].send("/msg #lab over unicast");
    p[1].wait_messages("#lab", "alice", 1, T);
    p[0].expect("delivery", &[("room", "lab")], T);
    let s = p[0].stats();
    assert_eq!(
        (s["group_out"].as_u64(), s["group_in"].as_u64()),
        (Some(0), Some(0))
    );
}
