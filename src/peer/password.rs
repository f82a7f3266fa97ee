//! The portable hidden password prompt: a line editor whose line is drawn
//! as `*`s. Unix uses termios instead ([`super::term::read_password`]);
//! this is what Windows and other systems get (compiled everywhere, so it
//! is at least type-checked on the machines the project is built on).
#![cfg_attr(unix, allow(dead_code))]

use rustyline::completion::Completer;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use std::borrow::Cow;
use std::io;

/// Draws the line as one `*` per character.
struct Mask;

impl Highlighter for Mask {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        Cow::Owned(mask(line))
    }
    fn highlight_char(&self, _line: &str, _pos: usize, kind: CmdKind) -> bool {
        kind != CmdKind::MoveCursor
    }
}
impl Completer for Mask {
    type Candidate = String;
}
impl Hinter for Mask {
    type Hint = String;
}
impl Validator for Mask {}
impl rustyline::Helper for Mask {}

/// What is shown for `line`.
fn mask(line: &str) -> String {
    "*".repeat(line.chars().count())
}

/// Reads a password, shown masked. Ctrl-C or Ctrl-D cancels (an
/// `Interrupted` error) instead of quitting the peer.
pub fn read_masked(prompt: &str) -> io::Result<String> {
    use rustyline::config::Configurer;
    use rustyline::error::ReadlineError;
    let config = rustyline::Config::builder()
        .auto_add_history(false)
        .color_mode(rustyline::ColorMode::Forced)
        .build();
    let mut editor =
        rustyline::Editor::<Mask, rustyline::history::DefaultHistory>::with_config(config)
            .map_err(io::Error::other)?;
    editor.set_helper(Some(Mask));
    editor.set_auto_add_history(false);
    match editor.readline(prompt) {
        Ok(line) => Ok(line),
        Err(ReadlineError::Interrupted | ReadlineError::Eof) => {
            Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"))
        }
        Err(ReadlineError::Io(e)) => Err(e),
        Err(e) => Err(io::Error::other(e)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_mask_hides_every_character() {
        assert_eq!(super::mask("pä55"), "****");
        assert_eq!(super::mask(""), "");
    }
}
