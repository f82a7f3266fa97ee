//! Member-made room keys on the real wire: a member seals a room key to
//! each member (`protocol::roomkey`) and posts the packages with
//! `room_key`; the `registry` binary stores them for the current epoch and
//! hands each member its own, which it opens with the maker's key from the
//! member list. The registry never holds the key itself.

mod kit;

use kit::*;
use lanchat::identity::{hex, unhex32, Identity};
use lanchat::protocol::roomkey;
use serde_json::{json, Value};

/// A member's X25519 key as the member list shows it.
fn kx_of(room: &Value, user: &str) -> [u8; 32] {
    let members = room["room"]["members"].as_array().expect("members");
    let m = members
        .iter()
        .find(|m| m["username"] == json!(user))
        .unwrap_or_else(|| panic!("{user} in {room}"));
    unhex32(m["keys"]["kx"].as_str().expect("kx key")).expect("64 hex digits")
}

fn members(s: &mut Session, room: &str) -> Value {
    let token = s.token.clone();
    s.client
        .ok(json!({"op": "members", "token": token, "room": room}))
}

#[test]
fn room_keys_are_made_by_members_and_stored_sealed() {
    let r = Registry::start(LONG_SESSIONS);
    let (ida, idb) = (
        Identity::from_secrets([0x11; 32], [0x12; 32]),
        Identity::from_secrets([0x21; 32], [0x22; 32]),
    );
    let mut a = keyed_login(r.addr(), "alice", &ida, 7001);
    let mut b = keyed_login(r.addr(), "bob", &idb, 7101);
    let mut c = keyed_login(r.addr(), "carol", &Identity::generate(), 7201);
    let (ta, tb) = (a.token.clone(), b.token.clone());
    let mut replies = Vec::new();

    a.client
        .ok(json!({"op": "create_room", "token": ta, "room": "lab"}));
    let joined = b
        .client
        .ok(json!({"op": "join_room", "token": tb, "room": "lab"}));
    // No key yet: no maker, and both members wait for one.
    assert_eq!(joined["room"]["epoch"], json!(1), "{joined}");
    assert_eq!(joined["room"].get("key_maker"), None, "{joined}");
    assert_eq!(joined["room"]["needs_key"], json!(["alice", "bob"]));

    // Alice makes the key and seals it to both members' keys from the list.
    let key: [u8; 32] = rand::random();
    let seal = |to: &str| {
        let kx = kx_of(&joined, to);
        roomkey::seal_hex(&ida, "alice", to, &kx, "lab", 1, &key, rand::random())
    };
    let (for_a, for_b) = (seal("alice"), seal("bob"));
    let posted = a.client.ok(json!({
        "id": 7, "op": "room_key", "token": ta, "room": "lab", "epoch": 1,
        "packages": {"alice": for_a, "bob": for_b},
    }));
    assert_eq!(posted["room"]["key_maker"], json!("alice"), "{posted}");
    assert_eq!(posted["room"]["key_package"], json!(for_a), "{posted}");
    assert_eq!(posted["room"].get("needs_key"), None, "{posted}");
    replies.push(posted);

    // Bob is handed his own package and opens it with alice's listed key.
    let seen = members(&mut b, "lab");
    assert_eq!(seen["room"]["key_maker"], json!("alice"));
    let package = seen["room"]["key_package"].as_str().expect("a package");
    assert_eq!(package, for_b);
    let from_kx = kx_of(&seen, "alice");
    let opened = roomkey::open_hex(&idb, "alice", "bob", &from_kx, "lab", 1, package);
    assert_eq!(opened, Some(key));
    replies.push(seen);

    // Bob cannot replace the key; a stale epoch is refused; carol (outside)
    // is told nothing of it.
    let again = json!({"op": "room_key", "token": tb, "room": "lab", "epoch": 1,
        "packages": {"bob": for_b}});
    b.client.expect_err(again, "key_exists");
    let stale = json!({"op": "room_key", "token": ta, "room": "lab", "epoch": 2,
        "packages": {}});
    a.client.expect_err(stale, "stale_epoch");
    let outside = members(&mut c, "lab");
    for field in ["epoch", "key_maker", "key_package", "needs_key"] {
        assert_eq!(outside["room"].get(field), None, "{field}: {outside}");
    }
    replies.push(outside);

    // What the registry stores: the sealed packages, never the key.
    let key_hex = hex(&key);
    let mut stored = Vec::new();
    for suffix in ["", "-wal"] {
        stored.extend(std::fs::read(format!("{}{suffix}", r.store())).unwrap_or_default());
    }
    let holds = |needle: &[u8]| stored.windows(needle.len()).any(|w| w == needle);
    assert!(holds(for_b.as_bytes()), "the store holds bob's package");
    assert!(
        !holds(key_hex.as_bytes()) && !holds(&key),
        "the key in the store"
    );
    for reply in &replies {
        assert!(!reply.to_string().contains(&key_hex), "the key in {reply}");
    }

    // The maker leaves: the next epoch has no key and bob waits for one.
    a.client
        .ok(json!({"op": "leave_room", "token": ta, "room": "lab"}));
    let after = members(&mut b, "lab");
    assert_eq!(after["room"]["epoch"], json!(2), "{after}");
    assert_eq!(after["room"].get("key_maker"), None, "{after}");
    assert_eq!(after["room"].get("key_package"), None, "{after}");
    assert_eq!(after["room"]["needs_key"], json!(["bob"]));
}

/// protocol.md's `room_key` examples carry real packages: each opens, for
/// its member, to the documented key (32 × `07`, room `lab`, epoch 3).
#[test]
fn the_documented_packages_open() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/protocol.md")).unwrap();
    let alice = Identity::from_secrets([1; 32], [2; 32]);
    let carol = Identity::from_secrets([3; 32], [4; 32]);
    let mut opened = 0;
    for line in doc.lines().filter(|l| l.contains(r#""op":"room_key""#)) {
        let req: Value = serde_json::from_str(line).unwrap();
        let epoch = req["epoch"].as_u64().unwrap();
        for (to, package) in req["packages"].as_object().unwrap() {
            let me = match to.as_str() {
                "alice" => &alice,
                "carol" => &carol,
                other => panic!("no example identity for {other}"),
            };
            let akx = alice.public().kx;
            let p = package.as_str().unwrap();
            let key = roomkey::open_hex(me, "alice", to, &akx, "lab", epoch, p);
            assert_eq!(key, Some([7; 32]), "{to}'s package in {line}");
            opened += 1;
        }
    }
    assert_eq!(opened, 2);
}
