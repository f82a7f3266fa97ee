//! Cases for room policies (roles) and announcements.

use lanchat::registry::store::{Store, KEPT_ANNOUNCEMENTS};

pub fn case_room_policy(s: &dyn Store) {
    assert_eq!(s.room_policy("lab").unwrap(), None);
    // Version 0 inserts once; a second insert loses.
    assert!(s.put_room_policy("lab", r#"{"owner":"amy"}"#, 0).unwrap());
    assert!(!s.put_room_policy("lab", r#"{"owner":"eve"}"#, 0).unwrap());
    assert_eq!(
        s.room_policy("lab").unwrap(),
        Some((r#"{"owner":"amy"}"#.to_string(), 1))
    );
    // Compare-and-swap on the version: a stale writer loses.
    assert!(s.put_room_policy("lab", r#"{"owner":"bob"}"#, 1).unwrap());
    assert!(!s.put_room_policy("lab", r#"{"owner":"eve"}"#, 1).unwrap());
    assert_eq!(
        s.room_policy("lab").unwrap(),
        Some((r#"{"owner":"bob"}"#.to_string(), 2))
    );
    // Rooms are independent; deleting is idempotent.
    assert_eq!(s.room_policy("other").unwrap(), None);
    s.delete_room_policy("lab").unwrap();
    s.delete_room_policy("lab").unwrap();
    assert_eq!(s.room_policy("lab").unwrap(), None);
    assert!(s.put_room_policy("lab", "{}", 0).unwrap());
    assert_eq!(s.room_policy("lab").unwrap().map(|p| p.1), Some(1));
}

pub fn case_announcements(s: &dyn Store) {
    assert!(s.announcements_after(0, 10).unwrap().is_empty());
    let a = s
        .add_announcement("teacher", "10 minutes left", 1_000)
        .unwrap();
    let b = s.add_announcement("teacher", "pens down", 2_000).unwrap();
    assert!(b.id > a.id, "{} then {}", a.id, b.id);
    assert_eq!(
        (a.by.as_str(), a.text.as_str(), a.at_ms),
        ("teacher", "10 minutes left", 1_000)
    );
    assert_eq!(
        s.announcements_after(0, 10).unwrap(),
        [a.clone(), b.clone()]
    );
    assert_eq!(
        s.announcements_after(a.id, 10).unwrap(),
        std::slice::from_ref(&b)
    );
    assert!(s.announcements_after(b.id, 10).unwrap().is_empty());
    assert_eq!(s.announcements_after(0, 1).unwrap(), [a]);
    // Only the last KEPT_ANNOUNCEMENTS are kept.
    let mut last = b;
    for i in 0..KEPT_ANNOUNCEMENTS {
        last = s
            .add_announcement("teacher", &format!("n{i}"), 3_000)
            .unwrap();
    }
    let kept = s.announcements_after(0, 1000).unwrap();
    let ids: Vec<u64> = kept.iter().map(|a| a.id).collect();
    assert_eq!(kept.len() as u64, KEPT_ANNOUNCEMENTS, "{ids:?}");
    assert_eq!(kept.last(), Some(&last));
}
