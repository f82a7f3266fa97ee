//! Requests: asking, answering, refusing, and what goes wrong on the way.

use super::*;

#[test]
fn accepted_chat_carries_queued_and_later_messages_in_order() {
    let mut net = Net::new(&["alice", "bob"]);
    net.open("alice", "bob", Some("one"));
    // Typed while the registry is being asked, then while bob is asked.
    net.open("alice", "bob", Some("two"));
    net.pump();
    net.open("alice", "bob", Some("three"));
    assert_eq!(
        net.events("alice"),
        vec![ChatEvent::Requested { to: "bob".into() }]
    );
    assert_eq!(net.events("bob"), vec![request_from("alice")]);
    net.engine("bob").answer(Some("alice".into()), true);
    net.pump();
    assert_eq!(net.events("alice"), vec![ev_opened("bob")]);
    assert_eq!(
        net.events("bob"),
        vec![
            ev_opened("alice"),
            received("alice", 1, "one"),
            received("alice", 2, "two"),
            received("alice", 3, "three"),
        ]
    );
    // Bob acknowledged all three: alice hears it (once per acknowledgement
    // that settles a message).
    let acks = std::mem::take(&mut net.node("alice").delivered);
    assert_eq!(acks.last(), Some(&("bob".to_string(), 3)), "{acks:?}");
    assert!(acks.windows(2).all(|w| w[0].1 < w[1].1), "{acks:?}");
    net.open("bob", "alice", Some("hi"));
    net.pump();
    assert_eq!(net.events("alice"), vec![received("bob", 1, "hi")]);
    assert_eq!(net.node("bob").delivered, vec![("alice".to_string(), 1)]);
    assert_eq!(net.node("bob").said, vec![("alice".into(), 1, "hi".into())]);
    // `/chat` with an open chat only makes it current.
    net.open("alice", "bob", None);
    assert_eq!(
        net.engine("alice").poll_action(),
        Some(Action::Event(ChatEvent::Focus { with: "bob".into() }))
    );
}

#[test]
fn rejected_request_reports_declined_and_unsent_texts() {
    let mut net = Net::new(&["alice", "bob"]);
    net.open("alice", "bob", Some("hello?"));
    net.pump();
    net.events("bob");
    net.engine("bob").answer(None, false);
    net.pump();
    assert_eq!(
        net.events("bob"),
        vec![ChatEvent::Notice(ChatNotice::Declined {
            user: "alice".into()
        })]
    );
    let ev = net.events("alice");
    assert_eq!(
        ev[1..],
        [
            refused("bob", EndReason::Rejected(RejectReason::Declined)),
            ChatEvent::Error(ChatError::NotSent {
                user: "bob".into(),
                count: 1
            })
        ]
    );
    assert_eq!(
        EndReason::Rejected(RejectReason::Declined).to_string(),
        "declined"
    );
    assert_eq!(
        ChatError::NotSent {
            user: "bob".into(),
            count: 1
        }
        .to_string(),
        "1 message(s) to bob not sent"
    );
    assert!(!net.engine("alice").is_open("bob"));
    // Nothing is left to answer.
    net.engine("bob").answer(None, false);
    assert_eq!(
        net.engine("bob").poll_action(),
        Some(Action::Event(ChatEvent::Error(ChatError::NoRequest {
            from: None
        })))
    );
}

#[test]
fn crossed_requests_end_in_one_chat() {
    let mut net = Net::new(&["alice", "bob"]);
    net.open("alice", "bob", Some("from alice"));
    net.open("bob", "alice", Some("from bob"));
    net.pump();
    for (me, other) in [("alice", "bob"), ("bob", "alice")] {
        let ev = net.events(me);
        assert!(ev.contains(&ev_opened(other)), "{me}: {ev:?}");
        assert!(
            ev.contains(&received(other, 1, &format!("from {other}"))),
            "{me}: {ev:?}"
        );
        assert!(
            !ev.iter()
                .any(|e| matches!(e, ChatEvent::Refused { .. } | ChatEvent::Request { .. })),
            "{me}: {ev:?}"
        );
        assert_eq!(net.node(me).engine.chats.len(), 1, "{me}");
    }
    // The request from the smaller name wins: alice dialled first, so her
    // end of it is connection 1.
    let alice: Vec<ConnId> = net.node("alice").engine.chats.keys().copied().collect();
    assert_eq!(alice, vec![1]);
}

#[test]
fn do_not_disturb_answers_busy() {
    let mut net = Net::new(&["alice", "bob"]);
    assert!(net.engine("bob").set_dnd(None));
    net.open("alice", "bob", Some("psst"));
    net.pump();
    assert_eq!(
        net.events("bob"),
        vec![ChatEvent::Notice(ChatNotice::AnsweredBusy {
            user: "alice".into()
        })]
    );
    let ev = net.events("alice");
    assert_eq!(ev[1], ChatEvent::Busy { user: "bob".into() });
    assert_eq!(
        ChatNotice::AnsweredBusy {
            user: "alice".into()
        }
        .to_string(),
        "alice asked for a chat; answered busy (do not disturb)"
    );
    assert!(!net.engine("bob").set_dnd(None));
    net.open("alice", "bob", None);
    net.pump();
    assert_eq!(net.events("bob"), vec![request_from("alice")]);
}

#[test]
fn hello_with_a_key_other_than_the_registrys_fails_the_identity_check() {
    let mut net = Net::new(&["alice", "bob"]);
    // Bob's look-up of alice vouches for other keys than hers.
    net.registry.get_mut("alice").unwrap().keys = keys_of("mallory");
    net.open("alice", "bob", None);
    net.pump();
    let ev = net.events("bob");
    assert_eq!(
        ev,
        vec![ChatEvent::Error(ChatError::KeyMismatch {
            user: "alice".into(),
        })]
    );
    assert_eq!(
        ev[0].to_string_for_test(),
        "alice's key does not match the one the registry vouches for: \
         someone may be in the middle"
    );
    assert_eq!(
        net.events("alice")[1],
        refused(
            "bob",
            EndReason::Rejected(RejectReason::IdentityCheckFailed)
        )
    );
    assert_eq!(
        EndReason::Rejected(RejectReason::IdentityCheckFailed).to_string(),
        "identity check failed"
    );
}

/// Where a hello comes from does not matter, only its key: two users on
/// one machine are told apart by their keys.
#[test]
fn the_address_no_longer_decides_identity() {
    let mut net = Net::new(&["alice", "bob"]);
    net.registry.get_mut("alice").unwrap().address = Some(addr_of("10.7.7.7"));
    net.open("alice", "bob", None);
    net.pump();
    assert_eq!(net.events("bob"), vec![request_from("alice")]);
}

/// The dialler refuses a key other than the registry's before it sends
/// its hello, and says why; a user the registry has no keys for is a
/// version-1 peer and is named as needing to upgrade.
#[test]
fn the_dialler_checks_the_key_and_refuses_version_1_peers() {
    let mut net = Net::new(&["alice", "bob"]);
    net.registry.get_mut("bob").unwrap().keys = keys_of("mallory");
    net.open("alice", "bob", Some("secret"));
    net.pump();
    let ev = net.events("alice");
    assert!(
        ev.contains(&ChatEvent::Error(ChatError::KeyMismatch {
            user: "bob".into()
        })),
        "{ev:?}"
    );
    assert!(net.events("bob").is_empty());
    net.registry.get_mut("bob").unwrap().keys = None;
    net.open("alice", "bob", Some("secret"));
    net.pump();
    let ev = net.events("alice");
    assert_eq!(
        ev,
        vec![ChatEvent::Error(ChatError::NeedsUpgrade {
            user: "bob".into(),
            unsent: 1
        })]
    );
    assert_eq!(
        ev[0].to_string_for_test(),
        "bob runs lanchat protocol version 1 (no keys, unencrypted chats): \
         bob needs to upgrade; 1 message(s) not sent"
    );
}

#[test]
fn unverifiable_request_is_asked_with_a_warning() {
    let mut net = Net::new(&["alice", "bob"]);
    net.open("alice", "bob", None);
    // Alice's look-up is answered, then the registry goes away.
    let a = net.engine("alice").poll_action().unwrap();
    net.act(0, a);
    net.registry_down = true;
    net.pump();
    assert_eq!(
        net.events("bob"),
        vec![
            ChatEvent::Notice(ChatNotice::Unverified {
                user: "alice".into()
            }),
            // The prompt itself says so (issue 11).
            ChatEvent::Request {
                from: "alice".into(),
                unverified: true
            }
        ]
    );
    // So does every line of the chat on bob's side, and only there.
    net.engine("bob").answer(None, true);
    net.pump();
    net.open("alice", "bob", Some("hi"));
    net.pump();
    net.engine("bob").close("alice".into());
    net.pump();
    let marks: Vec<bool> = net
        .events("bob")
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Opened { unverified, .. }
            | ChatEvent::Received { unverified, .. }
            | ChatEvent::Closed { unverified, .. } => Some(*unverified),
            _ => None,
        })
        .collect();
    assert_eq!(marks, vec![true, true, true]);
    assert!(net.events("alice").contains(&ev_opened("bob")));
}

#[test]
fn hello_in_the_name_of_nobody_is_refused() {
    let mut net = Net::new(&["alice", "bob"]);
    net.registry.remove("alice");
    let now = net.now;
    let e = net.engine("bob");
    e.accepted(now, 50, sock("10.0.0.1"));
    let hello = ChatMsg::Hello {
        from: "teacher".into(),
        version: CHAT_VERSION,
        chat: None,
        received: None,
    };
    e.received(now, 50, hello);
    let lookup = e.poll_action();
    assert!(matches!(lookup, Some(Action::Lookup { .. })), "{lookup:?}");
    let missing = ApiError::new(ErrorCode::UserNotFound, "no such user");
    e.looked_up(now, Lookup::Verify { conn: 50 }, Err(missing));
    let reason = "identity check failed".to_string();
    assert_eq!(
        e.poll_action(),
        Some(Action::Send {
            conn: 50,
            msg: ChatMsg::Reject { reason }
        })
    );
    assert_eq!(e.poll_action(), Some(Action::Close { conn: 50 }));
    let Some(Action::Event(ChatEvent::Error(err))) = e.poll_action() else {
        panic!("no error shown");
    };
    assert_eq!(
        err.to_string(),
        "refused a chat request claiming to be teacher from 10.0.0.1:40000: \
         the registry has no such user"
    );
}

#[test]
fn pending_requests_are_bounded_per_address_and_in_all() {
    let mut net = Net::new(&["bob"]);
    let now = net.now;
    let e = net.engine("bob");
    let mut lookups = 0;
    let mut busy = 0;
    for conn in 1..=40u64 {
        // Ten addresses, four connections each.
        let ip = format!("10.0.1.{}", conn % 10);
        e.accepted(now, conn, sock(&ip));
        let hello = ChatMsg::Hello {
            from: format!("user{conn}"),
            version: CHAT_VERSION,
            chat: None,
            received: None,
        };
        e.received(now, conn, hello);
        while let Some(a) = e.poll_action() {
            match a {
                Action::Lookup { .. } => lookups += 1,
                Action::Send {
                    msg: ChatMsg::Busy, ..
                } => busy += 1,
                _ => {}
            }
        }
    }
    assert_eq!(lookups, MAX_PENDING);
    assert_eq!(busy, 40 - MAX_PENDING);
    let e = net.engine("bob");
    for conn in 41..=50u64 {
        e.accepted(now, conn, sock("10.0.2.1"));
        let hello = ChatMsg::Hello {
            from: format!("user{conn}"),
            version: CHAT_VERSION,
            chat: None,
            received: None,
        };
        e.received(now, conn, hello);
    }
    let asked = std::iter::from_fn(|| e.poll_action())
        .filter(|a| matches!(a, Action::Lookup { .. }))
        .count();
    assert_eq!(asked, 0, "the total bound holds for a new address too");
    let _ = MAX_PENDING_PER_IP;
}

#[test]
fn anything_but_a_valid_hello_first_is_rejected_at_once() {
    let mut net = Net::new(&["bob"]);
    let now = net.now;
    let e = net.engine("bob");
    let reject = |conn| {
        vec![
            Action::Send {
                conn,
                msg: ChatMsg::Reject {
                    reason: "bad hello".into(),
                },
            },
            Action::Close { conn },
        ]
    };
    e.accepted(now, 1, sock("10.0.0.9"));
    e.garbage(1);
    assert_eq!(
        std::iter::from_fn(|| e.poll_action()).collect::<Vec<_>>(),
        reject(1)
    );
    e.accepted(now, 2, sock("10.0.0.9"));
    e.received(now, 2, ChatMsg::Accept { received: None });
    assert_eq!(
        std::iter::from_fn(|| e.poll_action()).collect::<Vec<_>>(),
        reject(2)
    );
    e.accepted(now, 3, sock("10.0.0.9"));
    let hello = ChatMsg::Hello {
        from: "alice".into(),
        version: CHAT_VERSION + 1,
        chat: None,
        received: None,
    };
    e.received(now, 3, hello);
    assert_eq!(
        std::iter::from_fn(|| e.poll_action()).collect::<Vec<_>>(),
        reject(3)
    );
}

#[test]
fn bad_hellos_are_rejected() {
    let mut net = Net::new(&["bob"]);
    let now = net.now;
    for (conn, from) in [(1, "bob"), (2, "no spaces please")] {
        let e = net.engine("bob");
        e.accepted(now, conn, sock("10.0.0.9"));
        e.received(
            now,
            conn,
            ChatMsg::Hello {
                from: from.into(),
                version: CHAT_VERSION,
                chat: None,
                received: None,
            },
        );
        let reason = "bad hello".to_string();
        assert_eq!(
            e.poll_action(),
            Some(Action::Send {
                conn,
                msg: ChatMsg::Reject { reason }
            })
        );
        assert_eq!(e.poll_action(), Some(Action::Close { conn }));
    }
    net.engine("bob").set_me(None);
    let e = net.engine("bob");
    e.accepted(now, 3, sock("10.0.0.9"));
    e.received(
        now,
        3,
        ChatMsg::Hello {
            from: "alice".into(),
            version: CHAT_VERSION,
            chat: None,
            received: None,
        },
    );
    let reason = "not logged in".to_string();
    assert_eq!(
        e.poll_action(),
        Some(Action::Send {
            conn: 3,
            msg: ChatMsg::Reject { reason }
        })
    );
}

#[test]
fn offline_and_unknown_users_fail_with_the_texts_waiting() {
    let mut net = Net::new(&["alice", "bob"]);
    net.registry.get_mut("bob").unwrap().online = false;
    net.open("alice", "bob", Some("a"));
    net.open("alice", "bob", Some("b"));
    assert!(net.engine("alice").is_dialing());
    net.pump();
    let ev = net.events("alice");
    let err = ChatError::Offline {
        user: "bob".into(),
        unsent: 2,
    };
    assert_eq!(ev, vec![ChatEvent::Error(err.clone())]);
    assert_eq!(err.to_string(), "bob is offline; 2 message(s) not sent");
    assert_eq!(err.code().as_deref(), Some("offline"));
    assert_eq!(err.script_failure(), Some("user offline"));
    assert!(!net.engine("alice").is_dialing());
    net.open("alice", "carol", None);
    net.pump();
    let ev = net.events("alice");
    let ChatEvent::Error(e @ ChatError::LookupFailed { .. }) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(e.to_string(), "cannot chat with carol: no such user");
    assert_eq!(e.code().as_deref(), Some("user_not_found"));
    // Nobody listens at the address the registry gives.
    net.registry.get_mut("bob").unwrap().online = true;
    net.registry.get_mut("bob").unwrap().address = Some(addr_of("10.5.5.5"));
    net.open("alice", "bob", Some("x"));
    net.pump();
    assert_eq!(
        net.events("alice"),
        vec![ChatEvent::Error(ChatError::Unreachable {
            why: "cannot reach bob at 10.5.5.5".into(),
            unsent: 1
        })]
    );
}

#[test]
fn own_name_and_logged_out_are_refused() {
    let mut net = Net::new(&["alice"]);
    net.open("alice", "alice", None);
    assert_eq!(
        net.engine("alice").poll_action(),
        Some(Action::Event(ChatEvent::Error(ChatError::ThatIsYou)))
    );
    net.engine("alice").set_me(None);
    net.open("alice", "bob", None);
    assert_eq!(
        net.engine("alice").poll_action(),
        Some(Action::Event(ChatEvent::Error(ChatError::NotLoggedIn)))
    );
}

#[test]
fn oversized_text_is_refused_before_sending() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    net.open("alice", "bob", Some(&"x".repeat(MAX_TEXT + 1)));
    assert_eq!(
        net.engine("alice").poll_action(),
        Some(Action::Event(ChatEvent::Error(ChatError::TooLong {
            len: MAX_TEXT + 1,
            max: MAX_TEXT
        })))
    );
}
