//! Mentions and actions on the way to the UI (see [`crate::peer::social`]):
//! every message line passes [`App::decorate`] before it is shown.

use super::{App, Target};
use crate::peer::social;
use crate::peer::ui::UiEvent;

impl App {
    /// Marks a message as an action (taking `/me ` off its text) and as a
    /// mention: a room line from someone else that names us, or a private
    /// message in a chat that is not the current conversation.
    pub(super) fn decorate(&self, ev: &mut UiEvent) {
        let UiEvent::Message {
            from,
            chat,
            text,
            own,
            action,
            mention,
            ..
        } = ev
        else {
            return;
        };
        if let Some(rest) = social::action(text) {
            *text = rest.to_string();
            *action = true;
        }
        if *own {
            return;
        }
        *mention = match chat.strip_prefix('#') {
            Some(_) => self.me().is_some_and(|me| social::mentions(text, me)),
            None => self.current.as_ref() != Some(&Target::Chat(from.clone())),
        };
    }
}
