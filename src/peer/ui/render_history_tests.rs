//! The terminal lines of room history (`room_history*`).

use super::*;

#[test]
fn history_lines_are_marked_earlier_and_name_who_kept_them() {
    let ui = Ui::new(false, true, super::super::Sink::Stdout);
    let line = |ev| {
        // Without its colours (SGR sequences).
        let l = ui.line(ev);
        let mut out = String::new();
        let mut it = l.chars();
        while let Some(c) = it.next() {
            if c == '\x1b' {
                it.by_ref().find(|c| *c == 'm');
            } else {
                out.push(c);
            }
        }
        out
    };
    let (room, via) = (String::from("lab"), String::from("bob"));
    assert_eq!(
        line(UiEvent::RoomHistoryStart {
            room: room.clone(),
            via: via.clone()
        }),
        "   #lab: earlier messages, as kept by bob:"
    );
    assert_eq!(
        line(UiEvent::RoomHistory {
            room: room.clone(),
            from: "alice".into(),
            id: 7,
            text: "see you at 10".into(),
            age_ms: 1234,
            via: via.clone(),
        }),
        "#lab [earlier] <alice> see you at 10"
    );
    let end = |count| UiEvent::RoomHistoryEnd {
        room: room.clone(),
        via: via.clone(),
        count,
    };
    assert_eq!(line(end(5)), "   #lab: 5 earlier messages from bob");
    assert_eq!(line(end(0)), "   #lab: no earlier messages from bob");
    assert_eq!(
        line(UiEvent::RoomHistoryUnavailable {
            room: room.clone(),
            reason: "no other member is online to ask".into()
        }),
        "   #lab: no earlier messages (no other member is online to ask)"
    );
}
