//! Room keys made by members (issue 12, item 4), on the real binaries and
//! the real wire: the registry carries only sealed packages, so neither its
//! traffic nor its store ever holds a room key; and a member who leaves
//! holds no key to anything sent after the room re-keys, whoever captures
//! the datagrams. Room keys are read from each peer's `--keylog`.

mod kit;

use kit::capture::{self, Capture};
use kit::rooms::form_room;
use kit::*;
use lanchat::protocol::datagram::{Datagram, Header, RoomKey};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

/// The room keys in a `--keylog` file: (epoch, key).
fn logged_keys(path: &Path) -> Vec<RoomKey> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "ROOM_KEY").then_some(())?;
            let _room = w.next()?;
            let epoch = w.next()?.parse().ok()?;
            let key = lanchat::identity::unhex32(w.next()?)?;
            Some(RoomKey { epoch, key })
        })
        .collect()
}

/// Alice, bob and carol (plaintext to the registry with `--insecure`, so
/// its traffic can be read), each writing a keylog into `dir`, in `#lab`
/// (alice made it, so alice makes its keys).
fn three_in_a_room(reg: &Registry, dir: &Path) -> Vec<Peer> {
    let specs: Vec<(&str, PeerOpts)> = ["alice", "bob", "carol"]
        .iter()
        .map(|n| {
            let opts = PeerOpts {
                args: vec![
                    "--insecure".into(),
                    "--keylog".into(),
                    dir.join(format!("{n}.keys")).display().to_string(),
                ],
                ..PeerOpts::default()
            };
            (*n, opts)
        })
        .collect();
    let mut p = login_peers(reg.addr(), &specs);
    form_room(&mut p, "lab", T);
    // How long each waited, from its room_joined to its room_key.
    for x in &p {
        let at = |kind: &str| {
            x.history
                .iter()
                .find(|v| v["event"] == kind && v["room"] == "lab")
                .and_then(|v| v["ts_us"].as_u64())
                .unwrap_or(0)
        };
        let waited = at("room_key").saturating_sub(at("room_joined"));
        eprintln!(
            "{} waited {:.1} ms for its key",
            x.name,
            waited as f64 / 1000.0
        );
    }
    p
}

/// Carol leaves; alice and bob drop her and take up epoch 2's key.
fn carol_leaves(p: &mut [Peer]) {
    p[2].send("/leave lab");
    p[2].expect("room_left", &[("room", json!("lab"))], T);
    for x in p[..2].iter_mut() {
        x.expect(
            "member_left",
            &[("room", json!("lab")), ("user", json!("carol"))],
            T,
        );
        let k = x.expect(
            "room_key",
            &[("room", json!("lab")), ("epoch", json!(2))],
            T,
        );
        assert_eq!(k["maker"], json!("alice"), "{k}");
    }
}

#[test]
fn the_registry_never_sees_a_room_key() {
    let reg = Registry::start(&[]);
    let Some(cap) = Capture::loopback() else {
        eprintln!("skipped: no AF_PACKET socket (not root)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut p = three_in_a_room(&reg, dir.path());
    carol_leaves(&mut p);
    p[0].send("/msg #lab under the second key");
    p[1].expect(
        "message",
        &[("from", "alice"), ("text", "under the second key")],
        T,
    );
    let frames = cap.stop();
    let registry_bytes: Vec<u8> = capture::payloads_on_port(&frames, reg.port()).concat();
    // The registry link is readable here, and the packages went over it.
    assert!(
        capture::contains(&registry_bytes, b"\"key_package\""),
        "no plaintext registry traffic captured ({} bytes)",
        registry_bytes.len()
    );
    // Everything the registry keeps, in any file of its directory.
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(reg.dir()).unwrap().flatten() {
        if entry.path().is_file() {
            stored.extend(std::fs::read(entry.path()).unwrap_or_default());
        }
    }
    assert!(
        !stored.is_empty(),
        "no store files in {}",
        reg.dir().display()
    );
    let mut keys = Vec::new();
    for n in ["alice", "bob", "carol"] {
        keys.extend(logged_keys(&dir.path().join(format!("{n}.keys"))));
    }
    let epochs: std::collections::BTreeSet<u64> = keys.iter().map(|k| k.epoch).collect();
    assert_eq!(epochs, [1, 2].into(), "keys logged: {keys:?}");
    for k in &keys {
        let hex = lanchat::identity::hex(&k.key);
        for form in [
            k.key.to_vec(),
            hex.clone().into_bytes(),
            hex.to_uppercase().into_bytes(),
        ] {
            assert!(
                !capture::contains(&registry_bytes, &form),
                "epoch {}'s key went over the registry link",
                k.epoch
            );
            assert!(
                !capture::contains(&stored, &form),
                "epoch {}'s key is in the registry's store",
                k.epoch
            );
        }
    }
    eprintln!(
        "{} bytes of registry traffic and {} bytes of store checked for {} room keys",
        registry_bytes.len(),
        stored.len(),
        keys.len()
    );
}

#[test]
fn an_ex_member_holds_no_key_to_what_is_sent_after_it_leaves() {
    let reg = Registry::start(&[]);
    let Some(cap) = Capture::loopback() else {
        eprintln!("skipped: no AF_PACKET socket (not root)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut p = three_in_a_room(&reg, dir.path());
    let carols = logged_keys(&dir.path().join("carol.keys"));
    assert_eq!(carols.iter().map(|k| k.epoch).collect::<Vec<_>>(), [1]);
    carol_leaves(&mut p);
    // From here on, every room datagram on the loopback interface.
    drop(cap);
    let cap = Capture::loopback().expect("a second capture");
    let said: Vec<String> = (1..=5).map(|i| format!("after carol left {i}")).collect();
    for s in &said {
        p[0].send(&format!("/msg #lab {s}"));
        p[1].send(&format!("/msg #lab bob: {s}"));
    }
    p[1].wait_messages("#lab", "alice", said.len(), T);
    p[0].wait_messages("#lab", "bob", said.len(), T);
    let frames = cap.stop();
    let new_key = logged_keys(&dir.path().join("alice.keys"))
        .into_iter()
        .find(|k| k.epoch == 2)
        .expect("alice logged epoch 2's key");
    let mut room_datagrams = 0;
    let mut opened_new = 0;
    for port in [p[0].udp_port, p[1].udp_port, p[2].udp_port] {
        for bytes in capture::udp_payloads_to(&frames, port) {
            let Ok(h) = Header::peek(&bytes) else {
                continue; // a heartbeat, not a room datagram
            };
            room_datagrams += 1;
            for old in &carols {
                assert!(
                    Datagram::open(&bytes, h.clone(), old).is_err(),
                    "a datagram to port {port} opens under carol's key of epoch {}",
                    old.epoch
                );
            }
            if Datagram::open(&bytes, h, &new_key).is_ok() {
                opened_new += 1;
            }
        }
    }
    eprintln!("{room_datagrams} room datagrams captured, {opened_new} opened under epoch 2");
    assert!(opened_new >= 10, "{opened_new} of {room_datagrams}");
    // Carol's own peer showed none of it.
    assert!(p[2]
        .texts_from("#lab", "alice")
        .iter()
        .all(|t| !t.contains("after carol")));
}

/// A man in the middle of a room's keys: mallory, a registered user with
/// keys of her own, is not let into the key's making. Outside the room she
/// cannot post packages for it; once a member (then she reads the room, as
/// members do) she cannot replace the key its maker made, and alice and bob
/// go on under alice's key. (Rewriting members' datagrams with her own
/// signature is dropped: `rooms::a_member_cannot_forge_another_members_message`.)
#[test]
fn a_stranger_with_keys_of_its_own_cannot_make_or_replace_a_room_key() {
    let reg = Registry::start(&[]);
    let mut p = login_all(reg.addr(), &["alice", "bob"], &PeerOpts::default());
    form_room(&mut p, "lab", T);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut mallory = Session::login(reg.addr(), "mallory", port, port)
        .with_heartbeats(Duration::from_millis(300));
    let me = kit::rooms::raw_identity();
    let seen = mallory.ok(json!({"op": "members", "room": "lab"}));
    let kx_of = |room: &serde_json::Value, user: &str| -> [u8; 32] {
        let u = room["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == user)
            .unwrap_or_else(|| panic!("{user} listed: {room}"));
        lanchat::identity::unhex32(u["keys"]["kx"].as_str().unwrap()).unwrap()
    };
    let packages = |room: &serde_json::Value, epoch: u64| {
        let mut m = serde_json::Map::new();
        for user in ["alice", "bob", "mallory"] {
            let kx = if user == "mallory" {
                me.public().kx
            } else {
                kx_of(room, user)
            };
            let p = lanchat::protocol::roomkey::seal_hex(
                &me,
                "mallory",
                user,
                &kx,
                "lab",
                epoch,
                &[0x66; 32],
                rand::random(),
            );
            m.insert(user.into(), json!(p));
        }
        serde_json::Value::Object(m)
    };
    // Outside the room: no epoch is shown to her, and no package is taken.
    assert_eq!(seen["room"].get("epoch"), None, "{seen}");
    let out = mallory.request(json!({
        "op": "room_key", "room": "lab", "epoch": 1, "packages": packages(&seen["room"], 1),
    }));
    assert_eq!(out["code"], json!("not_a_member"), "{out}");

    // A member: alice, the maker, seals the key to her too.
    let joined = mallory.ok(json!({"op": "join_room", "room": "lab"}));
    let key = room_key(&mut mallory, "mallory", &joined);
    let now = mallory.ok(json!({"op": "members", "room": "lab"}));
    assert_eq!(now["room"]["key_maker"], json!("alice"), "{now}");
    let again = mallory.request(json!({
        "op": "room_key", "room": "lab", "epoch": key.epoch,
        "packages": packages(&now["room"], key.epoch),
    }));
    assert_eq!(again["code"], json!("key_exists"), "{again}");
    // Nothing changed for alice and bob: still alice's key, and they talk.
    p[0].send("/msg #lab still alice's key");
    p[1].expect(
        "message",
        &[("from", "alice"), ("text", "still alice's key")],
        T,
    );
    p[1].drain();
    let keys: Vec<_> = p[1]
        .history
        .iter()
        .filter(|v| v["event"] == "room_key")
        .map(|v| (v["epoch"].clone(), v["maker"].clone()))
        .collect();
    assert_eq!(keys, [(json!(key.epoch), json!("alice"))], "bob's keys");
}

/// The first member in line, which makes each key, stops answering (its
/// peer is stopped): the room is not held up. Carol leaves, and a key for
/// the new epoch comes from bob, the next in line (after his second of
/// patience, or once the stopped member's session timed out, whichever the
/// registry sees first), and bob and dave talk under it.
#[test]
fn when_the_first_in_line_is_stopped_the_next_member_makes_the_key() {
    let reg = Registry::start(&[]);
    let mut p = login_all(
        reg.addr(),
        &["alice", "bob", "carol", "dave"],
        &PeerOpts::default(),
    );
    form_room(&mut p, "lab", T);
    p[0].signal(libc::SIGSTOP);
    let stopped = std::time::Instant::now();
    p[2].send("/leave lab");
    p[2].expect("room_left", &[("room", json!("lab"))], T);
    for x in [1, 3] {
        let k = p[x].expect("room_key", &[("room", json!("lab"))], T);
        assert!(k["epoch"].as_u64() >= Some(2), "{k}");
        assert_eq!(k["maker"], json!("bob"), "{k}");
    }
    eprintln!(
        "bob's key reached dave {:?} after alice stopped",
        stopped.elapsed()
    );
    p[1].send("/msg #lab without alice's key");
    p[3].expect(
        "message",
        &[("from", "bob"), ("text", "without alice's key")],
        T,
    );
    p[0].signal(libc::SIGCONT);
}
