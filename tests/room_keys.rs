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
