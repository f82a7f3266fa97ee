//! The prompt: the conversation plain text goes to, unread activity in the
//! others, and whether the registry is out of reach (`[#lab] bob:2 > `).
//!
//! The main loop knows all that; the stdin thread draws it. They share a
//! [`PromptShared`]. The line editor (rustyline) takes its prompt when it
//! starts reading a line and cannot change it while it waits, so when the
//! text changes the main loop *kicks* the editor: it sends the process a
//! `SIGINT`, which the editor (whose handler is in place while it reads)
//! turns into an interrupted read. The stdin thread sees the kick, erases
//! the old prompt line and reads again with the new prompt and the
//! half-typed text as it was. A kick that arrives while the editor is not
//! reading reaches the peer's own Ctrl-C handler, which drops it (see
//! [`PromptShared::take_kick`]); the next read takes the new prompt anyway.
//!
//! While the stdin thread erases a line the output waits at a gate
//! ([`PromptShared::wait_gate`]), so no line printed meanwhile is erased
//! instead.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long output waits, at most, for the stdin thread to finish erasing.
const GATE_LIMIT: Duration = Duration::from_millis(300);

/// How soon the main loop looks again at a prompt not yet redrawn.
pub const RECHECK: Duration = Duration::from_millis(100);

/// The prompt's text for a current conversation (`bob`, `#lab`), the
/// unread counts of the others, and whether the registry is unreachable:
/// `> `, `[#lab]> `, `[#lab] bob:2 #physics:5 > `, and with the registry
/// out of reach a leading `(no registry) `.
pub fn text(current: Option<&str>, unread: &BTreeMap<String, u32>, no_registry: bool) -> String {
    let mut parts: Vec<String> = Vec::new();
    if no_registry {
        parts.push("(no registry)".into());
    }
    if let Some(c) = current {
        parts.push(format!("[{c}]"));
    }
    parts.extend(
        unread
            .iter()
            .filter(|(name, n)| **n > 0 && Some(name.as_str()) != current)
            .map(|(name, n)| format!("{name}:{n}")),
    );
    match (parts.len(), current.is_some()) {
        (0, _) => "> ".into(),
        // Only the current conversation: no space before the `>`.
        (1, true) => format!("{}> ", parts[0]),
        _ => format!("{} > ", parts.join(" ")),
    }
}

/// The prompt shared by the main loop and the stdin thread.
#[derive(Default)]
pub struct PromptShared {
    text: Mutex<String>,
    /// The text the editor is reading with; `None` while it is not
    /// reading (a line is being handled, a password asked for).
    shown: Mutex<Option<String>>,
    /// A kick was sent and not yet taken.
    kicks: AtomicU32,
    /// The line editor runs (a terminal): only then are kicks sent.
    editor: AtomicBool,
    /// Closed while the stdin thread erases a line.
    gate: Mutex<Option<Instant>>,
    opened: Condvar,
    /// Why the registry cannot be used now.
    down: Mutex<Option<String>>,
}

impl PromptShared {
    /// The prompt to draw.
    pub fn get(&self) -> String {
        let t = self.text.lock().map(|t| t.clone()).unwrap_or_default();
        if t.is_empty() {
            "> ".into()
        } else {
            t
        }
    }

    /// Sets the prompt; when it differs from what the editor shows, kicks
    /// the editor to redraw it (unless a kick is on its way already).
    pub fn set(&self, new: String) {
        if let Ok(mut t) = self.text.lock() {
            if *t != new {
                *t = new.clone();
            }
        }
        if !self.editor.load(Ordering::SeqCst) || !self.stale() {
            return;
        }
        if self
            .kicks
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.close_gate();
            if !kick_editor() {
                self.kicks.store(0, Ordering::SeqCst);
                self.open_gate();
            }
        }
    }

    /// The stdin thread runs the line editor, which takes kicks.
    pub fn editor_started(&self) {
        self.editor.store(true, Ordering::SeqCst);
    }

    /// The stdin thread is about to read with `text` (`None`: it stopped
    /// reading).
    pub fn showing(&self, text: Option<&str>) {
        if let Ok(mut s) = self.shown.lock() {
            *s = text.map(str::to_string);
        }
    }

    /// Whether the editor reads with another prompt than the one set. A
    /// kick that came before the editor's handler was in place was lost:
    /// the main loop checks again shortly ([`RECHECK`]).
    pub fn stale(&self) -> bool {
        let text = self.get();
        self.shown
            .lock()
            .map(|s| s.as_ref().is_some_and(|s| *s != text))
            .unwrap_or(false)
    }

    /// Takes a pending kick: true when a `SIGINT` was ours (a prompt
    /// change), not the user's. The taker opens the gate once done.
    pub fn take_kick(&self) -> bool {
        self.kicks.swap(0, Ordering::SeqCst) > 0
    }

    /// Sets why the registry cannot be used now (`None`: it can).
    pub fn set_registry_down(&self, why: Option<String>) {
        if let Ok(mut d) = self.down.lock() {
            *d = why;
        }
    }

    /// Why the registry cannot be used now, for the stdin thread to refuse
    /// `/login` and `/register` before asking for a password.
    pub fn registry_down(&self) -> Option<String> {
        self.down.lock().ok().and_then(|d| d.clone())
    }

    /// Holds output until [`PromptShared::open_gate`] (or a short limit).
    pub fn close_gate(&self) {
        if let Ok(mut g) = self.gate.lock() {
            *g = Some(Instant::now() + GATE_LIMIT);
        }
    }

    pub fn open_gate(&self) {
        if let Ok(mut g) = self.gate.lock() {
            *g = None;
        }
        self.opened.notify_all();
    }

    /// Waits while the stdin thread erases a line (bounded).
    pub fn wait_gate(&self) {
        let Ok(mut g) = self.gate.lock() else { return };
        while let Some(until) = *g {
            let now = Instant::now();
            if now >= until {
                *g = None;
                break;
            }
            match self.opened.wait_timeout(g, until - now) {
                Ok((next, _)) => g = next,
                Err(_) => return,
            }
        }
    }
}

/// Interrupts the line editor's read with a `SIGINT` to this process, so
/// that it reads again under the new prompt; true if sent.
#[cfg(unix)]
fn kick_editor() -> bool {
    // SAFETY: sends a signal to this very process.
    unsafe { libc::kill(libc::getpid(), libc::SIGINT) == 0 }
}

/// Elsewhere (not tried: see README, "Platforms") there is no such signal
/// to send: the prompt shows its new text when the next line is read.
#[cfg(not(unix))]
fn kick_editor() -> bool {
    false
}

/// The terminal's width in columns (80 when it cannot be told).
#[cfg(unix)]
fn columns() -> usize {
    // SAFETY: TIOCGWINSZ fills the struct we pass.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    if unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0 {
        usize::from(ws.ws_col)
    } else {
        80
    }
}

#[cfg(not(unix))]
fn columns() -> usize {
    80
}

/// Rows a prompt and its line took once the editor ended the line (it
/// moves to the end and writes a newline).
pub fn rows_taken(prompt: &str, line: &str, cols: usize) -> usize {
    let width = prompt.chars().count() + line.chars().count();
    width / cols.max(1) + 1
}

/// Erases the prompt line the editor just left (cursor below it).
pub fn erase_entered(prompt: &str, line: &str) {
    let rows = rows_taken(prompt, line, columns());
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "\x1b[{rows}A\r\x1b[J");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unread(list: &[(&str, u32)]) -> BTreeMap<String, u32> {
        list.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    }

    #[test]
    fn prompt_names_the_current_conversation_and_unread_ones() {
        let none = BTreeMap::new();
        assert_eq!(text(None, &none, false), "> ");
        assert_eq!(text(Some("#lab"), &none, false), "[#lab]> ");
        assert_eq!(text(Some("bob"), &none, false), "[bob]> ");
        let u = unread(&[("bob", 2), ("#physics", 5), ("#lab", 3), ("carol", 0)]);
        assert_eq!(text(Some("#lab"), &u, false), "[#lab] #physics:5 bob:2 > ");
        assert_eq!(text(None, &u, false), "#lab:3 #physics:5 bob:2 > ");
        assert_eq!(text(None, &none, true), "(no registry) > ");
        assert_eq!(text(Some("bob"), &none, true), "(no registry) [bob] > ");
    }

    #[test]
    fn rows_count_wrapped_lines() {
        assert_eq!(rows_taken("> ", "hi", 80), 1);
        assert_eq!(rows_taken("> ", &"x".repeat(78), 80), 2);
        assert_eq!(rows_taken("> ", &"x".repeat(100), 80), 2);
    }
}
