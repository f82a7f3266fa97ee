//! Cases for the one-request lookups: a user with their session, and a
//! page of the online list with its total.

use super::{insert_all, names, room, session, tok, user};
use lanchat::registry::store::{OnlinePage, OnlineQuery, Store};

pub fn case_find_user_with_session(s: &dyn Store) {
    assert_eq!(s.find_user_with_session("alice").unwrap(), None);
    s.create_user(&user("alice")).unwrap();
    s.create_user(&user("bob")).unwrap();
    assert_eq!(
        s.find_user_with_session("alice").unwrap(),
        Some((user("alice"), None))
    );
    insert_all(s, &[session("bob", "reg-1", 5000, true)]);
    assert_eq!(
        s.find_user_with_session("bob").unwrap(),
        Some((user("bob"), Some(session("bob", "reg-1", 5000, true))))
    );
    assert_eq!(
        s.find_user_with_session("alice").unwrap(),
        Some((user("alice"), None))
    );
    assert!(s.delete_session(&tok("bob")).unwrap());
    assert_eq!(
        s.find_user_with_session("bob").unwrap(),
        Some((user("bob"), None))
    );
    // A session whose user record is gone is no user.
    insert_all(s, &[session("ghost", "reg-1", 5000, true)]);
    assert_eq!(s.find_user_with_session("ghost").unwrap(), None);
}

fn page(
    s: &dyn Store,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> (Vec<String>, bool, u64) {
    let OnlinePage {
        sessions,
        more,
        total,
    } = s
        .online_page(&OnlineQuery {
            fresh_since_ms: 4000,
            prefix,
            after,
            limit,
        })
        .unwrap();
    let names = names(&sessions).iter().map(|n| n.to_string()).collect();
    (names, more, total)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub fn case_online_page(s: &dyn Store) {
    assert_eq!(page(s, "", None, 10), (vec![], false, 0));
    insert_all(
        s,
        &[
            session("zed", "reg-1", 5000, true),
            session("bob", "reg-1", 1000, true),    // stale
            session("carol", "reg-2", 9000, false), // detached
            session("alice", "reg-2", 6000, true),
            session("dave", "reg-1", 4000, true), // exactly at the bound
            session("alan", "reg-1", 7000, true),
            session("al.x", "reg-2", 7000, true),
            session("alba", "reg-1", 7000, true),
        ],
    );
    assert_eq!(page(s, "", None, 2), (strings(&["al.x", "alan"]), true, 6));
    assert_eq!(
        page(s, "", Some("alan"), 2),
        (strings(&["alba", "alice"]), true, 6)
    );
    assert_eq!(
        page(s, "", Some("alice"), 2),
        (strings(&["dave", "zed"]), false, 6)
    );
    assert_eq!(page(s, "", Some("zed"), 2), (vec![], false, 6));
    // A cursor that is nobody's name works too.
    assert_eq!(
        page(s, "", Some("b"), 10),
        (strings(&["dave", "zed"]), false, 6)
    );
    assert_eq!(
        page(s, "al", None, 10),
        (strings(&["al.x", "alan", "alba", "alice"]), false, 4)
    );
    assert_eq!(
        page(s, "al", Some("alan"), 1),
        (strings(&["alba"]), true, 4)
    );
    assert_eq!(page(s, "alb", None, 10), (strings(&["alba"]), false, 1));
    assert_eq!(page(s, "alan", None, 10), (strings(&["alan"]), false, 1));
    assert_eq!(page(s, "c", None, 10), (vec![], false, 0));
    assert_eq!(page(s, "q", None, 10), (vec![], false, 0));
    // Whole records, as stored.
    let full = s
        .online_page(&OnlineQuery {
            fresh_since_ms: 0,
            prefix: "",
            after: Some("alice"),
            limit: 1,
        })
        .unwrap();
    assert_eq!(
        full,
        OnlinePage {
            sessions: vec![session("bob", "reg-1", 1000, true)],
            more: true,
            total: 7,
        }
    );
}

pub fn case_members_with_sessions(s: &dyn Store) {
    assert_eq!(s.members_with_sessions("lab").unwrap(), vec![]);
    s.create_room(&room("lab"), "zed").unwrap();
    s.add_member("lab", "amy").unwrap();
    s.add_member("lab", "bob").unwrap();
    s.create_room(&room("other"), "carl").unwrap();
    insert_all(
        s,
        &[
            session("amy", "reg-1", 5000, true),
            session("zed", "reg-2", 1000, false),
            session("carl", "reg-1", 5000, true),
        ],
    );
    assert_eq!(
        s.members_with_sessions("lab").unwrap(),
        vec![
            ("amy".to_string(), Some(session("amy", "reg-1", 5000, true))),
            ("bob".to_string(), None),
            (
                "zed".to_string(),
                Some(session("zed", "reg-2", 1000, false))
            ),
        ]
    );
    assert_eq!(s.members_with_sessions("nope").unwrap(), vec![]);
}
