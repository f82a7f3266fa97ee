use super::*;
use serde_json::json;

#[test]
fn matching() {
    let v = json!({"event": "message", "from": "bob", "chat": "#lab", "text": "hi", "id": 3});
    assert!(matches(&v, &["message".into()]));
    assert!(matches(
        &v,
        &[
            "message".into(),
            "from=bob".into(),
            "chat=lab".into(),
            "id=3".into()
        ]
    ));
    assert!(!matches(&v, &["message".into(), "from=carol".into()]));
    assert!(!matches(&v, &["member_joined".into()]));
}

#[test]
fn runs_and_waits() {
    let mut s =
        Script::parse("# demo\n/sleep 10ms\n/who\n/wait message from=bob timeout=1s\n/quit\n")
            .unwrap();
    let t0 = Instant::now();
    assert_eq!(s.next(t0), None);
    assert_eq!(
        s.next(t0 + Duration::from_millis(10)),
        Some(Command::Who {
            prefix: None,
            more: false
        })
    );
    assert_eq!(s.next(t0 + Duration::from_millis(10)), None);
    s.observe(&UiEvent::Message {
        from: "bob".into(),
        chat: "bob".into(),
        text: "x".into(),
        id: 1,
        own: false,
        queued: false,
        action: false,
        mention: false,
        late: false,
    });
    assert_eq!(s.next(t0 + Duration::from_millis(20)), Some(Command::Quit));
    assert_eq!(s.exit_code(), 0);
}

#[test]
fn pace_pauses_before_each_command_but_not_waits() {
    let mut s = Script::parse("/who\n/wait busy user=a\n/dnd\n").unwrap();
    s.set_pace(Duration::from_secs(2));
    s.observe(&UiEvent::Busy { user: "a".into() });
    let t0 = Instant::now();
    let who = Command::Who {
        prefix: None,
        more: false,
    };
    assert_eq!(s.next(t0), Some(who));
    // The wait (already met) is not paced, /dnd is.
    assert_eq!(s.next(t0), None);
    assert_eq!(s.next(t0 + Duration::from_millis(1990)), None);
    assert_eq!(
        s.next(t0 + Duration::from_secs(2)),
        Some(Command::Dnd(None))
    );
}

#[test]
fn missed_wait_names_what() {
    let mut s = Script::parse("/wait member_joined user=bob timeout=50ms\n").unwrap();
    let t0 = Instant::now();
    assert_eq!(s.next(t0), None);
    assert_eq!(s.next(t0 + Duration::from_millis(60)), None);
    let (line, why) = s.take_failure().unwrap();
    assert_eq!(line, 1);
    assert!(why.contains("member_joined user=bob"), "{why}");
    assert_eq!(s.exit_code(), 1);
}

#[test]
fn waits_in_any_order_and_retries() {
    let mut s =
        Script::parse("/wait busy user=b\n/wait busy user=a\n/retry 1s /who\n/quit\n").unwrap();
    s.observe(&UiEvent::Busy { user: "a".into() });
    s.observe(&UiEvent::Busy { user: "b".into() });
    let t0 = Instant::now();
    assert_eq!(
        s.next(t0),
        Some(Command::Who {
            prefix: None,
            more: false
        })
    );
    s.awaiting_reply(t0);
    s.request_done(false);
    s.fail_current("no".into());
    assert_eq!(
        s.exit_code(),
        0,
        "a /retry line failing is not a failure yet"
    );
    assert_eq!(s.next(t0), None);
    assert_eq!(
        s.next(Instant::now() + RETRY_EVERY),
        Some(Command::Who {
            prefix: None,
            more: false
        })
    );
    s.awaiting_reply(t0);
    s.request_done(true);
    assert_eq!(s.next(Instant::now()), Some(Command::Quit));
}

#[test]
fn bad_lines_reported() {
    let e = Script::parse("/login bob\n/frob\n").err().unwrap();
    assert!(e.contains("line 1") && e.contains("line 2"), "{e}");
}
