//! Cases for a room's sealed keys: `swap_room_key`, the compare-and-swap the
//! registry stores member-made packages with.

use super::room;
use lanchat::registry::store::{RoomRecord, Store};

/// What the registry stores: `store::roomkeys` JSON (quotes and all).
fn sealed(maker: &str, digit: char) -> String {
    format!(
        r#"{{"maker":"{maker}","sealed":{{"{maker}":"{}"}}}}"#,
        digit.to_string().repeat(160)
    )
}

pub fn case_swap_room_key(s: &dyn Store) {
    let fresh = RoomRecord {
        key: String::new(),
        ..room("lab")
    };
    s.create_room(&fresh, "alice").unwrap();
    s.add_member("lab", "bob").unwrap();
    let a = sealed("alice", 'a');
    // Only at the room's epoch, with the key as it is, on a room that exists.
    assert!(!s.swap_room_key("lab", 2, "", &a).unwrap());
    assert!(!s.swap_room_key("lab", 1, "x", &a).unwrap());
    assert!(!s.swap_room_key("nowhere", 1, "", &a).unwrap());
    assert_eq!(s.find_room("lab").unwrap(), Some(fresh.clone()));
    assert!(s.swap_room_key("lab", 1, "", &a).unwrap());
    // The same swap again loses: the key is no longer "".
    assert!(!s.swap_room_key("lab", 1, "", &sealed("bob", 'b')).unwrap());
    let b = sealed("alice", 'b');
    assert!(s.swap_room_key("lab", 1, &a, &b).unwrap());
    let want = RoomRecord {
        key: b.clone(),
        ..fresh.clone()
    };
    assert_eq!(s.find_room("lab").unwrap(), Some(want));
    // A member out: next epoch, packages cleared; the old epoch is closed.
    s.remove_member("lab", "alice", "").unwrap();
    let room2 = s.find_room("lab").unwrap().unwrap();
    assert_eq!((room2.key.as_str(), room2.epoch), ("", 2));
    assert!(!s.swap_room_key("lab", 1, "", &a).unwrap());
    assert!(!s.swap_room_key("lab", 1, &b, &a).unwrap());
    assert!(s.swap_room_key("lab", 2, "", &sealed("bob", 'c')).unwrap());
    // Racing swaps from one read: exactly one wins, each epoch.
    for epoch in 2..5u64 {
        let old = s.find_room("lab").unwrap().unwrap().key;
        let wins: Vec<bool> = std::thread::scope(|sc| {
            let racers: Vec<_> = ['d', 'e', 'f', '0']
                .map(|d| {
                    let old = old.clone();
                    sc.spawn(move || s.swap_room_key("lab", epoch, &old, &sealed("bob", d)))
                })
                .into_iter()
                .collect();
            racers
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
        s.add_member("lab", "carol").unwrap();
        s.remove_member("lab", "carol", "").unwrap();
    }
}
