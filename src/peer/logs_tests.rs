use super::*;

fn msg(from: &str, chat: &str, text: &str) -> UiEvent {
    UiEvent::Message {
        from: from.into(),
        chat: chat.into(),
        text: text.into(),
        id: 1,
        own: false,
        queued: false,
        action: false,
        mention: false,
        late: false,
    }
}

#[test]
fn file_names_cannot_leave_the_folder_or_hide() {
    assert_eq!(file_name("#lab"), "#lab.log");
    assert_eq!(file_name("bob"), "bob.log");
    assert_eq!(file_name("../../etc/passwd"), "_.._.._etc_passwd.log");
    assert_eq!(file_name(".hidden"), "_.hidden.log");
    assert_eq!(file_name("a\\b"), "a_b.log");
    assert_eq!(file_name(""), "_.log");
    assert!(file_name(&"x".repeat(500)).len() <= 104);
}

#[test]
fn lines_are_logged_sanitised_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut logs = Logs::new(Some(dir.path().to_path_buf()));
    // Nothing before login.
    assert_eq!(logs.record(&msg("bob", "#lab", "early")), None);
    logs.set_user(Some("alice"));
    assert_eq!(
        logs.record(&msg("bob", "#lab", "hi \x1b]0;pwned\x07 there")),
        None
    );
    assert_eq!(logs.record(&msg("alice", "bob", "private")), None);
    assert_eq!(
        logs.record(&UiEvent::Notice {
            text: "not a conversation".into()
        }),
        None
    );
    let mut action = msg("bob", "#lab", "waves");
    if let UiEvent::Message { action: a, .. } = &mut action {
        *a = true;
    }
    assert_eq!(logs.record(&action), None);
    let path = dir.path().join("alice").join("#lab.log");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("--- log opened "), "{text}");
    assert!(text.contains("<bob> hi "), "{text}");
    assert!(text.contains("* bob waves"), "a /me line: {text}");
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
    assert!(!text.contains("early"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("alice")), 0o700);
    }
    let h = logs.history("#lab", 5);
    assert_eq!(h.len(), 2, "{h:?}");
    assert!(h[0].ends_with("there"), "{h:?}");
    assert_eq!(logs.history("bob", 5).len(), 1);
    assert!(logs.history("carol", 5).is_empty());
}

#[test]
fn memory_only_history_is_bounded_and_a_failure_is_told_once() {
    let mut logs = Logs::new(None);
    logs.set_user(Some("alice"));
    for i in 0..SCROLLBACK + 10 {
        assert_eq!(logs.record(&msg("bob", "#lab", &format!("m{i}"))), None);
    }
    let h = logs.history("#lab", 3);
    assert_eq!(h.len(), 3);
    assert!(h[2].ends_with(&format!("m{}", SCROLLBACK + 9)));
    assert_eq!(logs.history("#lab", usize::MAX).len(), SCROLLBACK);

    // A root that is a file: the first write fails, and only it says so.
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut logs = Logs::new(Some(file.path().to_path_buf()));
    logs.set_user(Some("alice"));
    assert!(logs.record(&msg("bob", "#lab", "one")).is_some());
    assert_eq!(logs.record(&msg("bob", "#lab", "two")), None);
    assert_eq!(logs.history("#lab", 5).len(), 2);
}
