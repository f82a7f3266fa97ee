use super::*;
use crate::protocol::messages::{RoomSummary, UserInfo};

fn names() -> Names {
    let mut n = Names::default();
    for u in ["alice", "bob", "bobby", "carol"] {
        n.users.insert(u.into());
    }
    for r in ["lab", "lobby", "music"] {
        n.rooms.insert(r.into());
    }
    n
}

fn at_end(line: &str) -> (usize, Vec<String>) {
    candidates(line, line.len(), &names())
}

#[test]
fn command_names_complete_at_the_line_start() {
    assert_eq!(at_end("/cr"), (0, vec!["/create ".to_string()]));
    assert_eq!(
        at_end("/l"),
        (
            0,
            vec![
                "/leave ".into(),
                "/lock ".into(),
                "/login ".into(),
                "/logout ".into()
            ]
        )
    );
    assert_eq!(at_end("/CH"), (0, vec!["/chat ".to_string()]));
    assert!(at_end("/").1.contains(&"/quit ".to_string()));
    assert!(at_end("/nothing").1.is_empty());
}

#[test]
fn user_commands_complete_user_names() {
    assert_eq!(at_end("/chat b"), (6, vec!["bob ".into(), "bobby ".into()]));
    assert_eq!(at_end("/msg al"), (5, vec!["alice ".to_string()]));
    assert_eq!(at_end("/accept c"), (8, vec!["carol ".to_string()]));
    // The text of /msg is not a user name, unless it is an @nick.
    assert!(at_end("/msg alice b").1.is_empty());
    assert_eq!(at_end("/msg alice hi @ca").1, vec!["@carol ".to_string()]);
}

#[test]
fn room_commands_complete_room_names_with_or_without_hash() {
    assert_eq!(at_end("/join l"), (6, vec!["lab ".into(), "lobby ".into()]));
    assert_eq!(at_end("/join #m"), (6, vec!["#music ".to_string()]));
    assert_eq!(at_end("/leave lo"), (7, vec!["lobby ".to_string()]));
    assert!(at_end("/members b").1.is_empty());
}

#[test]
fn switch_completes_users_and_rooms() {
    let mut n = names();
    n.users.insert("lara".into());
    assert_eq!(
        candidates("/switch l", 9, &n).1,
        vec!["lara ".to_string(), "#lab ".into(), "#lobby ".into()]
    );
    assert_eq!(
        candidates("/switch #lo", 11, &n).1,
        vec!["#lobby ".to_string()]
    );
}

#[test]
fn plain_text_completes_nicks() {
    assert_eq!(at_end("ca"), (0, vec!["carol ".to_string()]));
    assert_eq!(at_end("hello @al"), (6, vec!["@alice ".to_string()]));
    assert!(at_end("hello al").1.is_empty());
    assert!(at_end("").1.is_empty());
}

#[test]
fn the_cursor_position_decides_the_word() {
    // Completing in the middle of a line: the word before the cursor.
    assert_eq!(candidates("/chat bo hello", 8, &names()).1.len(), 2);
    // A position past the end or inside a character does not panic.
    assert!(candidates("/chat é", 7, &names()).1.is_empty());
    assert!(candidates("/chat é", 99, &names()).1.is_empty());
}

#[test]
fn names_are_learned_from_events() {
    let mut n = Names::default();
    let user = |name: &str| UserInfo {
        keys: None,
        username: name.into(),
        online: true,
        address: None,
    };
    n.observe(&UiEvent::Who {
        users: vec![user("bob")],
        total: Some(1),
        next: None,
        away: Default::default(),
    });
    n.observe(&UiEvent::Rooms {
        rooms: vec![RoomSummary {
            name: "lab".into(),
            members: 2,
        }],
        topics: Default::default(),
    });
    n.observe(&UiEvent::RoomJoined {
        room: "#music".into(),
        members: vec!["dave".into()],
    });
    n.observe(&UiEvent::ChatRequest {
        from: "erin".into(),
    });
    assert_eq!(
        n.users.iter().collect::<Vec<_>>(),
        ["bob", "dave", "erin"].iter().collect::<Vec<_>>()
    );
    assert_eq!(
        n.rooms.iter().collect::<Vec<_>>(),
        ["lab", "music"].iter().collect::<Vec<_>>()
    );
}
