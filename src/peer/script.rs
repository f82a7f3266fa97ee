//! Demo scripts (`peer --script FILE`): the interactive command syntax, one
//! command a line, plus `/sleep DURATION` and
//! `/wait EVENT [FIELD=VALUE…] [timeout=DURATION]`.
//!
//! A command that asks the registry something waits for the answer before
//! the next line runs, and fails the script if the answer is an error. A
//! `/wait` matches the JSON form of UI events (as `--json` prints them)
//! that happened and were not matched by an earlier `/wait`, so waits for
//! events that may come in either order work. `/retry DURATION COMMAND`
//! runs a command again (every 250 ms) until it succeeds, for example to
//! join a room another script is about to create. The first failure stops
//! the script and the peer exits 1, naming the line and what it waited for.

use super::commands::{self, Command};
use super::ui::UiEvent;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Lines starting with this are comments.
const COMMENT: char = '#';
/// How long a command may wait for the registry's answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(15);
const RETRY_EVERY: Duration = Duration::from_millis(250);

enum State {
    Ready,
    Sleeping(Instant),
    Waiting {
        what: Vec<String>,
        until: Instant,
        timeout: Duration,
    },
    Reply {
        until: Instant,
    },
    Done,
}

pub struct Script {
    lines: Vec<(usize, Command)>,
    pos: usize,
    line: usize,
    state: State,
    seen: Vec<Value>,
    failed: Option<(usize, String)>,
    /// The current line (by index) is a `/retry` that may run again until then.
    retry_until: Option<(usize, Instant)>,
    /// A pause before each command after the first (not before `/wait`
    /// or `/sleep`), so that a class can follow a demo.
    pace: Duration,
    /// The line (by index) the pause was taken for.
    paced: Option<usize>,
    /// The script's text, line by line (for [`Script::take_echo`]).
    source: Vec<String>,
    /// The line last given by [`Script::take_echo`].
    echoed: Option<usize>,
}

impl Script {
    /// Parses a script; every bad line is reported at once.
    pub fn parse(text: &str) -> Result<Script, String> {
        let mut lines = Vec::new();
        let mut errors = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let t = raw.trim();
            if t.is_empty() || t.starts_with(COMMENT) {
                continue;
            }
            match commands::parse(t) {
                Ok(Some(
                    Command::Login { password: None, .. }
                    | Command::Register { password: None, .. },
                )) => errors.push(format!("line {}: a script must give the password", i + 1)),
                Ok(Some(cmd)) => lines.push((i + 1, cmd)),
                Ok(None) => {}
                Err(e) => errors.push(format!("line {}: {e}", i + 1)),
            }
        }
        if errors.is_empty() {
            Ok(Script {
                lines,
                pos: 0,
                line: 0,
                state: State::Ready,
                seen: Vec::new(),
                failed: None,
                retry_until: None,
                pace: Duration::ZERO,
                paced: None,
                source: text.lines().map(|l| l.trim().to_string()).collect(),
                echoed: None,
            })
        } else {
            Err(errors.join("\n"))
        }
    }

    /// The command [`Script::next`] returned last, as written (without a
    /// `/retry DURATION` in front), once per line: `None` when it runs
    /// again.
    pub fn take_echo(&mut self) -> Option<String> {
        if self.echoed == Some(self.line) {
            return None;
        }
        self.echoed = Some(self.line);
        let text = self.source.get(self.line.checked_sub(1)?)?;
        Some(match text.strip_prefix("/retry ") {
            Some(rest) => rest
                .trim_start()
                .split_once(' ')
                .map_or(rest, |(_, c)| c)
                .to_string(),
            None => text.clone(),
        })
    }

    /// Pauses `pace` before each command but the first (`/wait` and
    /// `/sleep` are not paced; a `/retry` is paced once).
    pub fn set_pace(&mut self, pace: Duration) {
        self.pace = pace;
    }

    /// The next command to run now, if the script is ready for one.
    pub fn next(&mut self, now: Instant) -> Option<Command> {
        loop {
            match &self.state {
                State::Sleeping(t) if now >= *t => self.state = State::Ready,
                State::Waiting {
                    what,
                    until,
                    timeout,
                } => {
                    if now >= *until {
                        let reason = format!(
                            "timed out after {} waiting for {}",
                            fmt_dur(*timeout),
                            what.join(" ")
                        );
                        self.fail_current(reason);
                    }
                    return None;
                }
                State::Reply { until } if now >= *until => {
                    self.fail_current("the registry did not answer".into());
                    return None;
                }
                State::Ready => {}
                _ => return None,
            }
            let Some((line, cmd)) = self.lines.get(self.pos).cloned() else {
                self.state = State::Done;
                return None;
            };
            let directive = matches!(cmd, Command::Sleep(_) | Command::WaitFor { .. });
            if !self.pace.is_zero() && self.pos > 0 && !directive && self.paced != Some(self.pos) {
                self.paced = Some(self.pos);
                self.state = State::Sleeping(now + self.pace);
                continue;
            }
            self.pos += 1;
            self.line = line;
            let cmd = match cmd {
                Command::Retry { within, cmd } => {
                    if self.retry_until.is_none_or(|(pos, _)| pos != self.pos) {
                        self.retry_until = Some((self.pos, now + within));
                    }
                    *cmd
                }
                other => {
                    self.retry_until = None;
                    other
                }
            };
            match cmd {
                Command::Sleep(d) => self.state = State::Sleeping(now + d),
                Command::WaitFor { what, timeout } => {
                    if self.consume_match(&what) {
                        continue;
                    }
                    self.state = State::Waiting {
                        what,
                        until: now + timeout,
                        timeout,
                    };
                    return None;
                }
                other => return Some(other),
            }
        }
    }

    /// The command just run sent a registry request: wait for its answer.
    pub fn awaiting_reply(&mut self, now: Instant) {
        if matches!(self.state, State::Ready) {
            self.state = State::Reply {
                until: now + REPLY_TIMEOUT,
            };
        }
    }

    pub fn request_done(&mut self, ok: bool) {
        if matches!(self.state, State::Reply { .. }) && ok {
            self.state = State::Ready;
        }
    }

    pub fn fail_current(&mut self, reason: String) {
        if let Some((_, until)) = self.retry_until {
            let now = Instant::now();
            if now < until && matches!(self.state, State::Ready | State::Reply { .. }) {
                // Run the same line again shortly.
                self.pos -= 1;
                self.state = State::Sleeping(now + RETRY_EVERY);
                return;
            }
        }
        if self.failed.is_none() && !matches!(self.state, State::Done) {
            self.failed = Some((self.line, reason));
            self.state = State::Done;
        }
    }

    /// Takes a failure to report, once.
    pub fn take_failure(&mut self) -> Option<(usize, String)> {
        self.failed
            .as_ref()
            .map(|(l, r)| (*l, r.clone()))
            .filter(|_| matches!(self.state, State::Done))
    }

    pub fn finished(&self) -> bool {
        matches!(self.state, State::Done)
    }

    pub fn exit_code(&self) -> i32 {
        if self.failed.is_some() {
            1
        } else {
            0
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Sleeping(t) => Some(*t),
            State::Waiting { until, .. } => Some(*until),
            State::Reply { until } => Some(*until),
            _ => None,
        }
    }

    /// Records an event; a pending `/wait` it matches is satisfied.
    pub fn observe(&mut self, ev: &UiEvent) {
        let Ok(v) = serde_json::to_value(ev) else {
            return;
        };
        self.seen.push(v);
        if self.seen.len() > 10_000 {
            self.seen.drain(..5_000);
        }
        if let State::Waiting { what, .. } = &self.state {
            let what = what.clone();
            if self.consume_match(&what) {
                self.state = State::Ready;
            }
        }
    }

    /// Finds the first seen event matching `what` and forgets it (only it:
    /// other events stay for later waits).
    fn consume_match(&mut self, what: &[String]) -> bool {
        match self.seen.iter().position(|v| matches(v, what)) {
            Some(i) => {
                self.seen.remove(i);
                true
            }
            None => false,
        }
    }
}

fn fmt_dur(d: Duration) -> String {
    if d.as_millis() % 1000 == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// `what[0]` is the event name; the rest are `field=value` (a string field
/// equal to the value, or a number equal to it).
pub fn matches(v: &Value, what: &[String]) -> bool {
    let Some((name, fields)) = what.split_first() else {
        return false;
    };
    if v.get("event").and_then(Value::as_str) != Some(name.as_str()) {
        return false;
    }
    fields.iter().all(|f| {
        let Some((k, want)) = f.split_once('=') else {
            return false;
        };
        match v.get(k) {
            Some(Value::String(s)) => {
                s == want
                    || (k == "chat" && s.trim_start_matches('#') == want.trim_start_matches('#'))
            }
            Some(Value::Number(n)) => n.to_string() == want,
            Some(Value::Bool(b)) => b.to_string() == want,
            _ => false,
        }
    })
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
