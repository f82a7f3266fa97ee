//! Standard input: the thread that reads commands, the hidden password
//! prompt, and putting the terminal back as it was on exit.

use super::commands::{self, Command};
use super::complete::{LineHelper, SharedNames, Typed};
use super::editor::{echoed, Enter, Input, NextConversation};
use super::events::Event;
use super::ui::prompt::{erase_entered, PromptShared};
use super::ui::Sink;
use crate::protocol::names::{Username, PASSWORD_MIN};
use crossbeam_channel::Sender;
use std::io::{self, BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
#[cfg(unix)]
use std::sync::OnceLock;

/// Whether standard input (`fd` 0) or output (1) is a terminal, on any
/// platform.
pub fn is_tty(fd: i32) -> bool {
    use std::io::IsTerminal;
    match fd {
        0 => io::stdin().is_terminal(),
        1 => io::stdout().is_terminal(),
        _ => io::stderr().is_terminal(),
    }
}

/// The line editor, with Tab completion.
type Editor = rustyline::Editor<LineHelper, rustyline::history::DefaultHistory>;

#[cfg(unix)]
static SAVED: OnceLock<libc::termios> = OnceLock::new();

/// Elsewhere the line editor puts the console back itself: nothing to save.
#[cfg(not(unix))]
pub fn save() {}

/// Nothing to restore (see [`save`]).
#[cfg(not(unix))]
pub fn restore() {}

/// Remembers the terminal settings so [`restore`] can undo raw mode even if
/// the process exits while the line editor holds the terminal.
#[cfg(unix)]
pub fn save() {
    if !is_tty(0) {
        return;
    }
    // SAFETY: tcgetattr fills the struct we pass.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(0, &mut t) } == 0 {
        let _ = SAVED.set(t);
    }
}

/// Puts back the terminal settings [`save`] remembered.
#[cfg(unix)]
pub fn restore() {
    if let Some(t) = SAVED.get() {
        // SAFETY: t came from tcgetattr on the same descriptor.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, t) };
    }
}

/// Reads a line from the terminal without echoing it. Ctrl-C or Ctrl-D
/// cancels the prompt (an `Interrupted` error) instead of quitting the
/// peer; Backspace erases.
#[cfg(not(unix))]
pub fn read_password(prompt: &str) -> io::Result<String> {
    super::password::read_masked(prompt)
}

/// Reads a line from the terminal without echoing it (termios). Ctrl-C or
/// Ctrl-D cancels the prompt (an `Interrupted` error) instead of quitting
/// the peer; Backspace erases.
#[cfg(unix)]
pub fn read_password(prompt: &str) -> io::Result<String> {
    use std::io::Read;
    // SAFETY: plain termios calls on stdin with structs we own.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(0, &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // Byte at a time, no echo, and Ctrl-C arrives as a byte, not SIGINT.
    let mut quiet = old;
    quiet.c_lflag &= !(libc::ECHO | libc::ICANON | libc::ISIG);
    quiet.c_cc[libc::VMIN] = 1;
    quiet.c_cc[libc::VTIME] = 0;
    unsafe { libc::tcsetattr(0, libc::TCSANOW, &quiet) };
    let mut out = io::stdout();
    let _ = write!(out, "{prompt}");
    let _ = out.flush();
    let mut bytes = Vec::new();
    let mut stdin = io::stdin().lock();
    let mut b = [0u8; 1];
    let read = loop {
        match stdin.read(&mut b) {
            Ok(0) => break Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => match b[0] {
                b'\r' | b'\n' => break Ok(()),
                3 | 4 => break Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled")),
                8 | 127 => {
                    // Erase one character (all of a UTF-8 sequence).
                    while let Some(last) = bytes.pop() {
                        if last & 0xC0 != 0x80 {
                            break;
                        }
                    }
                }
                other => bytes.push(other),
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
    };
    unsafe { libc::tcsetattr(0, libc::TCSANOW, &old) };
    let _ = writeln!(out);
    read?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// What is checked before any password prompt, so a mistake is told before
/// the user types a password (twice, for `/register`): the username rule,
/// and `/login` while logged in.
fn check_before_password(
    cmd: &Command,
    logged_in: &AtomicBool,
    prompt: &PromptShared,
) -> Result<(), String> {
    // Only a prompt to come needs checking here: a command with its
    // password is checked where it runs, in order with the commands
    // before it (a piped `/logout` first, say).
    let (verb, username) = match cmd {
        Command::Login {
            username,
            password: None,
        } => ("login", username),
        Command::Register {
            username,
            password: None,
        } => ("register", username),
        _ => return Ok(()),
    };
    if verb == "login" && logged_in.load(Ordering::Relaxed) {
        return Err("already logged in; /logout first".into());
    }
    if let Some(why) = prompt.registry_down() {
        return Err(format!("/{verb}: {why}"));
    }
    Username::parse(username)
        .map(drop)
        .map_err(|e| format!("/{verb}: {e} (not {username:?})"))
}

/// Fills in a missing password by asking (only on a terminal).
fn complete(
    cmd: Command,
    interactive: bool,
    logged_in: &AtomicBool,
    prompt: &PromptShared,
) -> Result<Command, String> {
    check_before_password(&cmd, logged_in, prompt)?;
    let ask = |verb: &str, user: &str, rule: &str| -> Result<String, String> {
        if !interactive {
            return Err(format!(
                "usage: /{verb} {user} PASSWORD (no terminal to ask on)"
            ));
        }
        read_password(&format!("password for {user}{rule}: ")).map_err(|e| {
            if e.kind() == io::ErrorKind::Interrupted {
                format!("/{verb} cancelled")
            } else {
                format!("cannot read the password: {e}")
            }
        })
    };
    Ok(match cmd {
        Command::Login {
            username,
            password: None,
        } => {
            let password = Some(ask("login", &username, "")?);
            Command::Login { username, password }
        }
        Command::Register {
            username,
            password: None,
        } => {
            let rule = format!(" (at least {PASSWORD_MIN} characters)");
            let first = ask("register", &username, &rule)?;
            if interactive && first.chars().count() < PASSWORD_MIN {
                return Err(format!(
                    "a password needs at least {PASSWORD_MIN} characters; nothing registered"
                ));
            }
            if interactive {
                let again = read_password("repeat it: ").map_err(|e| {
                    if e.kind() == io::ErrorKind::Interrupted {
                        "/register cancelled".to_string()
                    } else {
                        e.to_string()
                    }
                })?;
                if again != first {
                    return Err("the passwords differ; nothing registered".into());
                }
            }
            Command::Register {
                username,
                password: Some(first),
            }
        }
        Command::RoomWithPassword {
            create,
            room,
            password: None,
        } => {
            let verb = if create { "create" } else { "join" };
            if !interactive {
                return Err(format!(
                    "usage: /{verb} {room} --password PASSWORD (no terminal to ask on)"
                ));
            }
            let password = ask(verb, &format!("room {room}"), "")?;
            Command::RoomWithPassword {
                create,
                room,
                password: Some(password),
            }
        }
        other => other,
    })
}

fn forward(
    line: &str,
    interactive: bool,
    logged_in: &AtomicBool,
    prompt: &PromptShared,
    events: &Sender<Event>,
) -> bool {
    let ev = match commands::parse(line) {
        Ok(None) => return true,
        Ok(Some(cmd)) => match complete(cmd, interactive, logged_in, prompt) {
            Ok(cmd) => Event::Input(cmd),
            Err(e) => Event::InputError(e),
        },
        Err(e) => Event::InputError(e),
    };
    events.send(ev).is_ok()
}

/// Starts the stdin thread. On a terminal it runs a line editor and returns
/// the editor's printer, so output never garbles the line being typed.
/// `logged_in` is the main loop's word on whether a session is open;
/// `names` the names it has seen, for Tab completion.
pub fn spawn_stdin(
    events: Sender<Event>,
    logged_in: Arc<AtomicBool>,
    names: SharedNames,
    prompt: Arc<PromptShared>,
) -> Option<Sink> {
    if is_tty(0) && is_tty(1) {
        // Tab lists the candidates under the line and completes what they
        // share (as bash does): the same keys give the same screen.
        let config = rustyline::Config::builder()
            .completion_type(rustyline::CompletionType::List)
            .build();
        match Editor::with_config(config) {
            Ok(mut editor) => {
                let typed = Typed::default();
                editor.set_helper(Some(LineHelper {
                    names,
                    typed: typed.clone(),
                }));
                editor.bind_sequence(
                    rustyline::KeyEvent::ctrl('C'),
                    rustyline::EventHandler::Conditional(Box::new(CtrlC)),
                );
                editor.bind_sequence(
                    rustyline::KeyEvent(rustyline::KeyCode::Enter, rustyline::Modifiers::NONE),
                    rustyline::EventHandler::Conditional(Box::new(Enter {
                        prompt: prompt.clone(),
                    })),
                );
                editor.bind_sequence(
                    rustyline::KeyEvent::ctrl('X'),
                    rustyline::EventHandler::Conditional(Box::new(NextConversation {
                        events: events.clone(),
                    })),
                );
                let printer = editor.create_external_printer().ok();
                let input = Input {
                    events,
                    logged_in,
                    prompt,
                    typed,
                };
                std::thread::Builder::new()
                    .name("stdin".into())
                    .spawn(move || editor_loop(editor, input))
                    .ok()?;
                return printer.map(|p| Sink::Editor(Box::new(p)));
            }
            Err(e) => log::warn!("line editor unavailable ({e}); reading plain lines"),
        }
    }
    let interactive = is_tty(0);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let stdin = io::stdin();
            let mut line = String::new();
            loop {
                line.clear();
                match stdin.lock().read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) => {
                        if !forward(&line, interactive, &logged_in, &prompt, &events) {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = events.send(Event::InputError(format!("cannot read input: {e}")));
                        break;
                    }
                }
            }
            let _ = events.send(Event::InputEnd);
        })
        .ok()?;
    None
}

/// Ctrl-C on a line being typed clears it; on an empty line it is left to
/// the editor, which reports it (see [`editor_loop`]).
struct CtrlC;

impl rustyline::ConditionalEventHandler for CtrlC {
    fn handle(
        &self,
        _: &rustyline::Event,
        _: rustyline::RepeatCount,
        _: bool,
        ctx: &rustyline::EventContext,
    ) -> Option<rustyline::Cmd> {
        (!ctx.line().is_empty()).then_some(rustyline::Cmd::Kill(rustyline::Movement::WholeLine))
    }
}

/// A second Ctrl-C on an empty line within this long quits.
const QUIT_AGAIN_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

fn editor_loop(mut editor: Editor, input: Input) {
    use rustyline::error::ReadlineError;
    let Input {
        events,
        logged_in,
        prompt,
        typed,
    } = input;
    prompt.editor_started();
    let mut last_interrupt: Option<std::time::Instant> = None;
    // The half-typed line and cursor to read on with (after a redraw).
    let mut again: Option<(String, usize)> = None;
    loop {
        let shown = prompt.get();
        prompt.showing(Some(&shown));
        let read = match again.take() {
            Some((line, pos)) => {
                let pos = if line.is_char_boundary(pos) {
                    pos
                } else {
                    line.len()
                };
                editor.readline_with_initial(shown.as_str(), (&line[..pos], &line[pos..]))
            }
            None => editor.readline(shown.as_str()),
        };
        prompt.showing(None);
        match read {
            Ok(line) => {
                if echoed(&line) {
                    erase_entered(&shown, &line);
                    prompt.open_gate();
                }
                if !line.trim().is_empty()
                    && !line.starts_with("/login")
                    && !line.starts_with("/register")
                {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if !forward(&line, true, &logged_in, &prompt, &events) {
                    return;
                }
            }
            // The prompt changed (see `ui::prompt`): erase the old one and
            // read on with the new one and what was typed.
            Err(ReadlineError::Interrupted) if prompt.take_kick() => {
                let typed = typed.lock().map(|t| t.clone()).unwrap_or_default();
                erase_entered(&shown, &typed.0);
                prompt.open_gate();
                again = Some(typed);
            }
            // Ctrl-C on an empty line: once asks, twice quits (as the
            // Python and Node prompts do); Ctrl-D quits at once.
            Err(ReadlineError::Interrupted) => {
                let now = std::time::Instant::now();
                if last_interrupt.is_some_and(|t| now.duration_since(t) < QUIT_AGAIN_WITHIN) {
                    let _ = events.send(Event::Interrupt);
                    return;
                }
                last_interrupt = Some(now);
                let hint = "press Ctrl-C again to quit (or Ctrl-D, or /quit)".to_string();
                if events.send(Event::InputHint(hint)).is_err() {
                    return;
                }
            }
            Err(ReadlineError::Eof) => {
                let _ = events.send(Event::InputEnd);
                return;
            }
            Err(e) => {
                let _ = events.send(Event::InputError(format!("terminal: {e}")));
                let _ = events.send(Event::InputEnd);
                return;
            }
        }
    }
}
