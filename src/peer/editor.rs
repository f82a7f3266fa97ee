//! The line editor's own keys and what its loop works with: Enter on a
//! message (the typed line gives way to the message's line, see
//! [`crate::peer::ui::prompt`]) and Ctrl-X (the next conversation).

use super::commands::Command;
use super::complete::Typed;
use super::events::Event;
use super::ui::prompt::PromptShared;
use crossbeam_channel::Sender;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What the editor loop works with.
pub struct Input {
    pub events: Sender<Event>,
    pub logged_in: Arc<AtomicBool>,
    pub prompt: Arc<PromptShared>,
    pub typed: Typed,
}

/// Whether an entered line is echoed as a message (plain text, `/msg`):
/// then the typed line is erased, and the echo takes its place.
pub fn echoed(line: &str) -> bool {
    matches!(
        super::commands::parse(line),
        Ok(Some(Command::Say(_) | Command::Msg { .. }))
    )
}

/// Enter on a line that will be echoed: output waits until the line is
/// erased (see [`PromptShared::close_gate`]). The key then does what it
/// always does.
pub struct Enter {
    pub prompt: Arc<PromptShared>,
}

impl rustyline::ConditionalEventHandler for Enter {
    fn handle(
        &self,
        _: &rustyline::Event,
        _: rustyline::RepeatCount,
        _: bool,
        ctx: &rustyline::EventContext,
    ) -> Option<rustyline::Cmd> {
        if echoed(ctx.line()) {
            self.prompt.close_gate();
        }
        None
    }
}

/// Ctrl-X: the next open conversation becomes current (`/switch +`).
pub struct NextConversation {
    pub events: Sender<Event>,
}

impl rustyline::ConditionalEventHandler for NextConversation {
    fn handle(
        &self,
        _: &rustyline::Event,
        _: rustyline::RepeatCount,
        _: bool,
        _: &rustyline::EventContext,
    ) -> Option<rustyline::Cmd> {
        let _ = self.events.send(Event::Input(Command::Switch("+".into())));
        Some(rustyline::Cmd::Noop)
    }
}

#[cfg(test)]
mod tests {
    use super::echoed;

    #[test]
    fn messages_are_echoed_commands_are_not() {
        for line in ["hello", "//slash text", "/msg bob hi", "/msg #lab hi"] {
            assert!(echoed(line), "{line}");
        }
        for line in ["", "  ", "/who", "/join lab", "/msg", "/login alice"] {
            assert!(!echoed(line), "{line}");
        }
    }
}
