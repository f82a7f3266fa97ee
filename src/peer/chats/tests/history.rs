//! A connection whose first line asks for a room's history: checked like a
//! hello, then handed to the owner without asking the user.

use super::*;

fn asked(engine: &mut Chats, from: &str, claimed: &str, room: &str) -> Vec<Action> {
    asked_v(engine, from, claimed, room, CHAT_VERSION)
}

fn asked_v(engine: &mut Chats, from: &str, claimed: &str, room: &str, v: u32) -> Vec<Action> {
    let now = Instant::now();
    engine.accepted(now, 9, sock("10.0.0.3"));
    engine.secured(9, claimed.into(), key_of(claimed));
    let msg = ChatMsg::History {
        from: from.into(),
        version: v,
        room: room.into(),
        count: 100,
    };
    engine.received(now, 9, msg);
    std::iter::from_fn(|| engine.poll_action()).collect()
}

fn info(name: &str, key_name: &str) -> UserInfo {
    UserInfo {
        keys: keys_of(key_name),
        username: name.into(),
        online: true,
        address: Some(addr_of("10.0.0.3")),
    }
}

fn engine() -> Chats {
    let mut e = Chats::new(Instant::now(), TIMEOUT);
    e.set_me(Some("alice".into()));
    e
}

#[test]
fn a_checked_asker_is_handed_over_without_a_prompt() {
    let mut e = engine();
    let acts = asked(&mut e, "carol", "carol", "lab");
    let verify = Lookup::Verify { conn: 9 };
    assert_eq!(
        acts,
        vec![Action::Lookup {
            user: "carol".into(),
            purpose: verify.clone()
        }]
    );
    e.looked_up(Instant::now(), verify, Ok(info("carol", "carol")));
    let acts: Vec<Action> = std::iter::from_fn(|| e.poll_action()).collect();
    assert_eq!(
        acts,
        vec![Action::HistoryAsked {
            conn: 9,
            from: "carol".into(),
            ask: HistoryAsk {
                room: "lab".into(),
                count: 100
            }
        }]
    );
    // The engine let go of the connection: nothing more of it.
    e.received(Instant::now(), 9, ChatMsg::Bye);
    assert_eq!(e.poll_action(), None);
}

#[test]
fn a_key_the_registry_does_not_vouch_for_is_refused_quietly() {
    let mut e = engine();
    asked(&mut e, "carol", "carol", "lab");
    // The registry's key for carol is another one.
    let verify = Lookup::Verify { conn: 9 };
    e.looked_up(Instant::now(), verify, Ok(info("carol", "mallory")));
    let acts: Vec<Action> = std::iter::from_fn(|| e.poll_action()).collect();
    let reason = RejectReason::IdentityCheckFailed.wire().to_string();
    assert_eq!(
        acts,
        vec![
            Action::Send {
                conn: 9,
                msg: ChatMsg::Reject { reason }
            },
            Action::Close { conn: 9 }
        ]
    );
    // Without the registry, nobody vouches for it either.
    let mut e = engine();
    asked(&mut e, "carol", "carol", "lab");
    let down = ApiError::new(ErrorCode::RegistryUnreachable, "down");
    e.looked_up(Instant::now(), Lookup::Verify { conn: 9 }, Err(down));
    let acts: Vec<Action> = std::iter::from_fn(|| e.poll_action()).collect();
    let reason = RejectReason::IdentityCheckFailed.wire().to_string();
    assert_eq!(
        acts,
        vec![
            Action::Send {
                conn: 9,
                msg: ChatMsg::Reject { reason }
            },
            Action::Close { conn: 9 }
        ]
    );
}

#[test]
fn a_name_other_than_the_handshakes_a_bad_room_or_version_is_a_bad_hello() {
    for (from, claimed, room, v) in [
        ("carol", "mallory", "lab", CHAT_VERSION),
        ("carol", "carol", "no such room!", CHAT_VERSION),
        ("carol", "carol", "lab", CHAT_VERSION + 1),
    ] {
        let mut e = engine();
        let acts = asked_v(&mut e, from, claimed, room, v);
        let reason = RejectReason::BadHello.wire().to_string();
        assert_eq!(
            acts,
            vec![
                Action::Send {
                    conn: 9,
                    msg: ChatMsg::Reject { reason }
                },
                Action::Close { conn: 9 }
            ],
            "{from} {claimed} {room}"
        );
    }
}
