//! Cases for room topics and away messages.

use super::{room, session, tok};
use lanchat::registry::store::{Endpoint, OnlineQuery, Store, Topic};

pub fn case_topics(s: &dyn Store) {
    s.create_room(&room("lab"), "alice").unwrap();
    s.add_member("lab", "bob").unwrap();
    // Only a member sets it; no room, no topic.
    assert!(!s.set_topic("lab", "mallory", "pwned").unwrap());
    assert!(!s.set_topic("nowhere", "alice", "x").unwrap());
    assert_eq!(s.find_room("lab").unwrap().unwrap().topic, None);
    assert!(s.set_topic("lab", "bob", "plans for friday").unwrap());
    let want = Topic {
        text: "plans for friday".into(),
        by: "bob".into(),
    };
    assert_eq!(s.find_room("lab").unwrap().unwrap().topic, Some(want));
    let rooms = s.list_rooms().unwrap();
    assert_eq!(rooms[0].topic.as_deref(), Some("plans for friday"));
    // It outlives a rekey, goes with the room, and clears.
    s.remove_member("lab", "alice", &"cd".repeat(32)).unwrap();
    assert!(s.find_room("lab").unwrap().unwrap().topic.is_some());
    assert!(s.set_topic("lab", "bob", "").unwrap());
    assert_eq!(s.find_room("lab").unwrap().unwrap().topic, None);
    assert_eq!(s.list_rooms().unwrap()[0].topic, None);
    assert!(s.set_topic("lab", "bob", "again").unwrap());
    s.remove_member("lab", "bob", &"ef".repeat(32)).unwrap();
    s.create_room(&room("lab"), "carol").unwrap();
    assert_eq!(s.find_room("lab").unwrap().unwrap().topic, None);
}

pub fn case_away(s: &dyn Store) {
    s.insert_session(&session("amy", "i1", 10, true)).unwrap();
    s.insert_session(&session("bob", "i1", 10, true)).unwrap();
    assert!(!s.set_away("tok-nobody", "x").unwrap());
    assert!(s.set_away(&tok("amy"), "lunch, back at 2").unwrap());
    let amy = s.session_by_token(&tok("amy")).unwrap().unwrap();
    assert_eq!(amy.away.as_deref(), Some("lunch, back at 2"));
    // Every read of a session carries it.
    let page = s
        .online_page(&OnlineQuery {
            fresh_since_ms: 0,
            prefix: "",
            after: None,
            limit: 10,
        })
        .unwrap();
    let aways: Vec<_> = page.sessions.iter().map(|s| s.away.clone()).collect();
    assert_eq!(aways, [Some("lunch, back at 2".to_string()), None]);
    // Attaching again (resume) keeps it; empty clears it.
    let ep = Endpoint {
        ip: "10.0.0.1".into(),
        tcp_port: 1,
        udp_port: 2,
        keys: None,
    };
    assert!(s.attach_session(&tok("amy"), &ep, "i2", 20).unwrap());
    let amy = s.session_by_token(&tok("amy")).unwrap().unwrap();
    assert_eq!(amy.away.as_deref(), Some("lunch, back at 2"));
    assert!(s.set_away(&tok("amy"), "").unwrap());
    assert_eq!(s.session_by_token(&tok("amy")).unwrap().unwrap().away, None);
}
