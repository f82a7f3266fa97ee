//! Mentions and actions, as pure functions the main loop and the UI share.
//!
//! - An *action* (`/me waves`) travels as a message whose text starts with
//!   [`ACTION`] (room datagrams and one-to-one chats alike), so a peer that
//!   does not know actions still shows it, as the text `/me waves`; one that
//!   does shows `* alice waves`.
//! - A *mention* is a room line from someone else that names you (your
//!   username as a whole word, any case), or a private message in a chat
//!   that is not the current conversation: highlighted, and it rings the
//!   terminal bell once unless `/dnd` is on.

/// The text prefix that makes a message an action.
pub const ACTION: &str = "/me ";

/// The action's text (`waves` of `/me waves`), or `None` for a plain message.
pub fn action(text: &str) -> Option<&str> {
    text.strip_prefix(ACTION)
}

/// Characters that continue a username-like word.
fn wordish(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Whether `text` names `me` as a whole word, ignoring case. A `.` right
/// after the name ends the word unless a letter or digit follows it
/// (`thanks alice.` names alice; `alice.b` does not).
pub fn mentions(text: &str, me: &str) -> bool {
    if me.is_empty() {
        return false;
    }
    let hay = text.to_lowercase();
    let me = me.to_lowercase();
    let mut from = 0;
    while let Some(at) = hay[from..].find(&me) {
        let start = from + at;
        let end = start + me.len();
        let before = hay[..start].chars().next_back();
        let mut after = hay[end..].chars();
        let next = after.next();
        let starts = before.is_none_or(|c| !(wordish(c) || c == '.'));
        let ends = match next {
            None => true,
            Some('.') => after.next().is_none_or(|c| !c.is_alphanumeric()),
            Some(c) => !wordish(c),
        };
        if starts && ends {
            return true;
        }
        from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mention_is_the_name_as_a_word_in_any_case() {
        for t in [
            "alice",
            "hi Alice",
            "ALICE: look",
            "@alice see this",
            "thanks alice.",
            "alice, bob",
            "(alice)",
        ] {
            assert!(mentions(t, "alice"), "{t}");
        }
        for t in [
            "malice",
            "alice2",
            "alice_b",
            "alice-bot",
            "alice.b",
            "al ice",
            "",
        ] {
            assert!(!mentions(t, "alice"), "{t}");
        }
        assert!(mentions("ask a.b.", "a.b"));
        assert!(!mentions("anything", ""));
    }

    #[test]
    fn an_action_is_text_after_the_prefix() {
        assert_eq!(action("/me waves"), Some("waves"));
        assert_eq!(action("/mean"), None);
        assert_eq!(action("waves"), None);
    }
}
