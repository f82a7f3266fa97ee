//! Conversation logs and `/history`: every line of a conversation (a room
//! or a one-to-one chat) is kept in a bounded scrollback in memory and,
//! unless logging is off (`--no-log`), appended with a timestamp to one file
//! per conversation, as irssi's autolog does:
//! `$XDG_DATA_HOME/lanchat/logs/<you>/<#room or user>.log` (else
//! `~/.local/share/…`). Files are created `0600`, folders `0700` on unix.
//! Network text is sanitised before it is written, so `cat`ting a log
//! cannot drive the terminal. A write that fails is reported once; the
//! peer goes on without the log.

use super::ui::{local_time, now_us, sanitize, UiEvent};
use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Lines kept in memory per conversation.
pub const SCROLLBACK: usize = 1000;
/// Conversations kept in memory (the least recently written go first).
const CONVERSATIONS: usize = 200;
/// Bytes read from the end of a log file for `/history`.
const TAIL_BYTES: u64 = 256 * 1024;
/// `/history` without a count.
pub const HISTORY_DEFAULT: usize = 20;

pub struct Logs {
    /// Where logs go (`…/lanchat/logs`); `None` with `--no-log`.
    root: Option<PathBuf>,
    /// The logged-in user, whose folder the files are in.
    me: Option<String>,
    scroll: HashMap<String, VecDeque<String>>,
    /// Conversation keys, least recently written first.
    order: VecDeque<String>,
    /// Files written to in this run (a header is written the first time).
    opened: std::collections::HashSet<PathBuf>,
    /// A write failed and was reported: no more files.
    failed: bool,
}

/// The folder logs go to by default: `$XDG_DATA_HOME/lanchat/logs`, else
/// `~/.local/share/lanchat/logs` (`%APPDATA%` on Windows); `None` when
/// there is no home to put it in.
pub fn default_root() -> Option<PathBuf> {
    let nonempty = |v: &str| std::env::var_os(v).filter(|s| !s.is_empty());
    let data = match nonempty("XDG_DATA_HOME") {
        Some(d) => PathBuf::from(d),
        None => match nonempty("HOME") {
            Some(h) => PathBuf::from(h).join(".local").join("share"),
            None => PathBuf::from(nonempty("APPDATA")?),
        },
    };
    Some(data.join("lanchat").join("logs"))
}

/// A conversation's log file name: [`safe_name`] and `.log`.
pub fn file_name(conversation: &str) -> String {
    safe_name(conversation) + ".log"
}

/// A name that is safe as one path component: no path separators, no
/// control characters, not hidden (no leading `.`), not empty, at most
/// 100 bytes.
pub fn safe_name(conversation: &str) -> String {
    let mut out: String = sanitize::clean(conversation)
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    while out.len() > 100 {
        out.pop();
    }
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

/// The conversation an event belongs to, and its line (sanitised).
fn conversation_line(ev: &UiEvent) -> Option<(String, String)> {
    let c = |s: &str| sanitize::clean(s).into_owned();
    let room = |r: &str| format!("#{}", c(r));
    Some(match ev {
        UiEvent::Message {
            from,
            chat,
            text,
            queued,
            action,
            ..
        } => {
            let q = if *queued { " (queued)" } else { "" };
            let line = match action {
                true => format!("* {} {}{q}", c(from), c(text)),
                false => format!("<{}> {}{q}", c(from), c(text)),
            };
            (c(chat), line)
        }
        UiEvent::RoomJoined { room: r, members } => {
            let names: Vec<String> = members.iter().map(|m| c(m)).collect();
            (room(r), format!("-- joined; members: {}", names.join(", ")))
        }
        UiEvent::RoomLeft { room: r } => (room(r), "-- left".into()),
        UiEvent::MemberJoined { room: r, user } => (room(r), format!("--> {} joined", c(user))),
        UiEvent::MemberLeft {
            room: r,
            user,
            reason,
        } => (room(r), format!("<-- {} left ({})", c(user), c(reason))),
        UiEvent::ChatAccepted { with } => (c(with), "-- chat open".into()),
        UiEvent::ChatClosed { with, reason } => (c(with), format!("-- chat ended: {}", c(reason))),
        _ => return None,
    })
}

impl Logs {
    /// Logs under `root` (`None`: memory only).
    pub fn new(root: Option<PathBuf>) -> Logs {
        Logs {
            root,
            me: None,
            scroll: HashMap::new(),
            order: VecDeque::new(),
            opened: Default::default(),
            failed: false,
        }
    }

    /// The user whose conversations are logged (`None` after logout).
    pub fn set_user(&mut self, me: Option<&str>) {
        if self.me.as_deref() != me {
            self.me = me.map(str::to_string);
            self.scroll.clear();
            self.order.clear();
        }
    }

    /// The file of `conversation`, when logging is on and someone is
    /// logged in.
    pub fn path(&self, conversation: &str) -> Option<PathBuf> {
        let dir = self
            .root
            .as_ref()?
            .join(file_name(self.me.as_ref()?).trim_end_matches(".log"));
        Some(dir.join(file_name(conversation)))
    }

    /// Records `ev` when it belongs to a conversation. Returns an error
    /// message the first time writing the log fails.
    pub fn record(&mut self, ev: &UiEvent) -> Option<String> {
        self.me.as_ref()?;
        let (key, line) = conversation_line(ev)?;
        let stamped = format!(
            "{} {line}",
            local_time(now_us(), "%Y-%m-%d %H:%M:%S").unwrap_or_default()
        );
        self.remember(&key, stamped.clone());
        let path = self.path(&key).filter(|_| !self.failed)?;
        let first = self.opened.insert(path.clone());
        match append(&path, &stamped, first) {
            Ok(()) => None,
            Err(e) => {
                self.failed = true;
                Some(format!(
                    "cannot write the log {}: {e}; no more logs this run (/history still works)",
                    path.display()
                ))
            }
        }
    }

    fn remember(&mut self, key: &str, line: String) {
        if let Some(pos) = self.order.iter().position(|k| k == key) {
            self.order.remove(pos);
        } else if self.order.len() >= CONVERSATIONS {
            if let Some(old) = self.order.pop_front() {
                self.scroll.remove(&old);
            }
        }
        self.order.push_back(key.to_string());
        let lines = self.scroll.entry(key.to_string()).or_default();
        if lines.len() >= SCROLLBACK {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The last `n` lines of `conversation`: from its log file when there
    /// is one (earlier runs included), else from memory.
    pub fn history(&self, conversation: &str, n: usize) -> Vec<String> {
        if let Some(lines) = self
            .path(conversation)
            .filter(|_| !self.failed)
            .and_then(|p| tail(&p, n).ok())
        {
            return lines;
        }
        let lines = self.scroll.get(conversation);
        let all = lines.map(|l| l.iter().cloned().collect::<Vec<_>>());
        let all = all.unwrap_or_default();
        all[all.len().saturating_sub(n)..].to_vec()
    }
}

/// Appends `line` to `path`, creating the folders (0700) and the file
/// (0600); `first` also writes a "log opened" line.
fn append(path: &Path, line: &str, first: bool) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        let mut b = fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)?;
    }
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path)?;
    let mut text = String::new();
    if first {
        let at = local_time(now_us(), "%a %b %d %H:%M:%S %Y").unwrap_or_default();
        text.push_str(&format!("--- log opened {at}\n"));
    }
    text.push_str(line);
    text.push('\n');
    f.write_all(text.as_bytes())
}

/// The last `n` conversation lines of the file (not its "log opened"
/// lines), reading at most its last [`TAIL_BYTES`].
fn tail(path: &Path, n: usize) -> io::Result<Vec<String>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let from = len.saturating_sub(TAIL_BYTES);
    f.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    f.take(TAIL_BYTES).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("--- ")).collect();
    if from > 0 && !lines.is_empty() {
        lines.remove(0); // cut in the middle
    }
    let lines = &lines[lines.len().saturating_sub(n)..];
    Ok(lines
        .iter()
        .map(|l| sanitize::clean(l).into_owned())
        .collect())
}

#[cfg(test)]
#[path = "logs_tests.rs"]
mod tests;
