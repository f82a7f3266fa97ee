//! Standard input: the thread that reads commands, the hidden password
//! prompt, and putting the terminal back as it was on exit.

use super::commands::{self, Command};
use super::events::Event;
use super::ui::Sink;
use crate::protocol::names::{Username, PASSWORD_MIN};
use crossbeam_channel::Sender;
use std::io::{self, BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

pub fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

static SAVED: OnceLock<libc::termios> = OnceLock::new();

/// Remembers the terminal settings so [`restore`] can undo raw mode even if
/// the process exits while the line editor holds the terminal.
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

pub fn restore() {
    if let Some(t) = SAVED.get() {
        // SAFETY: t came from tcgetattr on the same descriptor.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, t) };
    }
}

/// Reads a line from the terminal without echoing it.
pub fn read_password(prompt: &str) -> io::Result<String> {
    // SAFETY: plain termios calls on stdin with structs we own.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(0, &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut quiet = old;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL | libc::ICANON;
    unsafe { libc::tcsetattr(0, libc::TCSANOW, &quiet) };
    let mut out = io::stdout();
    let _ = write!(out, "{prompt}");
    let _ = out.flush();
    let mut line = String::new();
    let read = io::stdin().lock().read_line(&mut line);
    unsafe { libc::tcsetattr(0, libc::TCSANOW, &old) };
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// What is checked before any password prompt, so a mistake is told before
/// the user types a password (twice, for `/register`): the username rule,
/// and `/login` while logged in.
fn check_before_password(cmd: &Command, logged_in: &AtomicBool) -> Result<(), String> {
    let (verb, username) = match cmd {
        Command::Login { username, .. } => ("login", username),
        Command::Register { username, .. } => ("register", username),
        _ => return Ok(()),
    };
    if verb == "login" && logged_in.load(Ordering::Relaxed) {
        return Err("already logged in; /logout first".into());
    }
    Username::parse(username)
        .map(drop)
        .map_err(|e| format!("/{verb}: {e} (not {username:?})"))
}

/// Fills in a missing password by asking (only on a terminal).
fn complete(cmd: Command, interactive: bool, logged_in: &AtomicBool) -> Result<Command, String> {
    check_before_password(&cmd, logged_in)?;
    let ask = |verb: &str, user: &str, rule: &str| -> Result<String, String> {
        if !interactive {
            return Err(format!(
                "usage: /{verb} {user} PASSWORD (no terminal to ask on)"
            ));
        }
        read_password(&format!("password for {user}{rule}: "))
            .map_err(|e| format!("cannot read the password: {e}"))
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
                let again = read_password("repeat it: ").map_err(|e| e.to_string())?;
                if again != first {
                    return Err("the passwords differ; nothing registered".into());
                }
            }
            Command::Register {
                username,
                password: Some(first),
            }
        }
        other => other,
    })
}

fn forward(line: &str, interactive: bool, logged_in: &AtomicBool, events: &Sender<Event>) -> bool {
    let ev = match commands::parse(line) {
        Ok(None) => return true,
        Ok(Some(cmd)) => match complete(cmd, interactive, logged_in) {
            Ok(cmd) => Event::Input(cmd),
            Err(e) => Event::InputError(e),
        },
        Err(e) => Event::InputError(e),
    };
    events.send(ev).is_ok()
}

/// Starts the stdin thread. On a terminal it runs a line editor and returns
/// the editor's printer, so output never garbles the line being typed.
/// `logged_in` is the main loop's word on whether a session is open.
pub fn spawn_stdin(events: Sender<Event>, logged_in: Arc<AtomicBool>) -> Option<Sink> {
    if is_tty(0) && is_tty(1) {
        match rustyline::DefaultEditor::new() {
            Ok(mut editor) => {
                let printer = editor.create_external_printer().ok();
                std::thread::Builder::new()
                    .name("stdin".into())
                    .spawn(move || editor_loop(editor, events, logged_in))
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
                        if !forward(&line, interactive, &logged_in, &events) {
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

fn editor_loop(
    mut editor: rustyline::DefaultEditor,
    events: Sender<Event>,
    logged_in: Arc<AtomicBool>,
) {
    use rustyline::error::ReadlineError;
    loop {
        match editor.readline("> ") {
            Ok(line) => {
                if !line.trim().is_empty()
                    && !line.starts_with("/login")
                    && !line.starts_with("/register")
                {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if !forward(&line, true, &logged_in, &events) {
                    return;
                }
            }
            Err(ReadlineError::Interrupted) => {
                let _ = events.send(Event::Interrupt);
                return;
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
