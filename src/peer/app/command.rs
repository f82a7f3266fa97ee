//! The user's `/commands` (typed, piped or from a script) and the script
//! runner that feeds them in.

use super::RoomCommand;
use super::{App, Pending, Target};
use crate::peer::commands::{Command, HELP};
use crate::peer::social;
use crate::peer::ui::UiEvent;
use crate::protocol::Request;
use std::time::Instant;

/// Users per `/who` page.
const WHO_PAGE: u64 = 50;

impl App {
    pub(super) fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Help => self.emit(UiEvent::Help {
                commands: HELP
                    .iter()
                    .map(|(c, d)| (c.to_string(), d.to_string()))
                    .collect(),
            }),
            Command::Register { username, password } => {
                let req = Request::Register {
                    username,
                    password: password.unwrap_or_default(),
                };
                self.send(req, Pending::Register);
            }
            Command::Login { username, password } => {
                if let Some(me) = self.me() {
                    let msg = format!("already logged in as {me}; /logout first");
                    self.error("already_logged_in", msg);
                    return;
                }
                let Some(keys) = self.load_identity(&username) else {
                    return;
                };
                let req = Request::Login {
                    username,
                    password: password.unwrap_or_default(),
                    tcp_port: self.tcp_port,
                    udp_port: self.udp_port,
                    advertise_ip: self.cfg.advertise.clone(),
                    keys: Some(keys),
                };
                self.send(req, Pending::Login);
            }
            Command::Logout => {
                if let Some(token) = self.token() {
                    self.leave_everything("logged out");
                    self.send(
                        Request::Logout { token },
                        Pending::Logout { quitting: false },
                    );
                }
            }
            Command::Who { prefix, more } => self.who(prefix, more),
            Command::Keys(None) => self.show_own_keys(),
            Command::Keys(Some(username)) | Command::Search(username) => {
                if let Some(token) = self.token() {
                    self.send(Request::Search { token, username }, Pending::Search);
                }
            }
            Command::Chat(user) => {
                // Asked for by name: it becomes current when it opens.
                self.convos.quiet.remove(&user);
                self.with_chats(|c| c.open(user, None))
            }
            Command::Accept(user) => {
                if let Some(u) = &user {
                    self.convos.quiet.remove(u);
                }
                self.with_chats(|c| c.answer(user, true))
            }
            Command::Reject(user) => self.with_chats(|c| c.answer(user, false)),
            Command::Msg { to, text } => match to.strip_prefix('#') {
                Some(room) => self.room_say(room.to_string(), text),
                None => {
                    if !self.chats.is_open(&to) {
                        self.convos.quiet.insert(to.clone());
                    }
                    self.with_chats(|c| c.open(to, Some(text)))
                }
            },
            Command::Close(user) => self.close_chat(user),
            Command::Dnd(on) => {
                let on = self.chats.set_dnd(on);
                self.ui.set_bell(!on);
                self.emit(UiEvent::Dnd { on });
            }
            Command::Create(room) => self.room_command(RoomCommand::Create(room)),
            Command::Join(room) => self.room_command(RoomCommand::Join(room)),
            Command::Leave(room) => self.room_command(RoomCommand::Leave(room)),
            Command::Rooms => self.room_command(RoomCommand::List),
            Command::Members(room) => self.room_command(RoomCommand::Members(room)),
            Command::Switch(name) => self.switch(name),
            Command::Stats => {
                let rooms = self.rooms.stats();
                self.emit(UiEvent::Stats { rooms })
            }
            Command::History(n) => self.history(n),
            Command::RoomHistory { room, count } => {
                let count = count.unwrap_or(crate::peer::history::DEFAULT_ENTRIES as u32);
                self.history_fetch(room, count, true)
            }
            Command::Quit => self.quit(),
            Command::Topic { room, text } => self.topic_command(room, text),
            Command::RoomWithPassword {
                create,
                room,
                password,
            } => self.room_with_password(create, room, password.unwrap_or_default()),
            Command::Moderate {
                action,
                room,
                user,
                reason,
            } => self.moderate_command(action, room, user, reason),
            Command::Announce(text) => self.announce_command(text),
            Command::Away(message) => self.away_command(message),
            Command::Me(action) => {
                self.command(Command::Say(format!("{}{action}", social::ACTION)))
            }
            Command::Say(text) => match self.current.clone() {
                Some(Target::Chat(user)) => self.with_chats(|c| c.open(user, Some(text))),
                Some(Target::Room(room)) => self.room_say(room, text),
                None => self.error(
                    "no_target",
                    format!(
                        "no current conversation, not sent: {text:?}; /switch NAME, /chat USER or /join ROOM first, or /msg NAME TEXT"
                    ),
                ),
            },
            Command::File(cmd) => self.file_command(cmd),
            Command::Sleep(_) | Command::WaitFor { .. } | Command::Retry { .. } => self.error(
                "script_only",
                "/sleep and /wait work in scripts (peer --script FILE)",
            ),
        }
    }

    fn switch(&mut self, name: String) {
        if name == "+" {
            return self.switch_next();
        }
        let target = match name.strip_prefix('#') {
            Some(room) if self.rooms.is_member(room) => Target::Room(room.to_string()),
            None if self.chats.is_open(&name) => Target::Chat(name),
            _ if self.rooms.is_member(&name) => Target::Room(name),
            _ => {
                self.error(
                    "no_target",
                    format!("no open chat or joined room called {name}"),
                );
                return;
            }
        };
        self.set_current(target);
    }

    pub(super) fn script_step(&mut self, now: Instant) {
        while self.quit_at.is_none() {
            let Some(script) = &mut self.script else {
                return;
            };
            let next = script.next(now);
            if let Some((line, reason)) = script.take_failure() {
                self.emit(UiEvent::ScriptFailed { line, reason });
                self.script_end();
                return;
            }
            if script.finished() {
                self.emit(UiEvent::ScriptDone);
                self.script_end();
                return;
            }
            let Some(cmd) = next else { return };
            if cmd == Command::Quit {
                // Reaching /quit is the script's successful end.
                self.emit(UiEvent::ScriptDone);
                self.script_end();
                return;
            }
            if self.cfg.script_stay {
                // Shown as if typed, so that a class can follow.
                if let Some(text) = script.take_echo() {
                    self.notice(format!("> {text}"));
                }
            }
            let before = self.link.pending_len();
            self.command(cmd);
            if self.link.pending_len() > before {
                if let Some(s) = &mut self.script {
                    s.awaiting_reply(now);
                }
            }
        }
    }

    /// The script ended: quit, or with `--stay` hand the terminal over.
    fn script_end(&mut self) {
        if !self.cfg.script_stay {
            self.quit();
            return;
        }
        self.script = None;
        self.notice("the terminal is yours now: /help lists the commands");
    }

    /// `/who`: the first page of online users (with a name prefix), or
    /// with `more` the page after the last one shown.
    fn who(&mut self, prefix: Option<String>, more: bool) {
        let Some(token) = self.token() else { return };
        let (prefix, after) = if more {
            match self.who_more.clone() {
                Some((prefix, after)) => (prefix, Some(after)),
                None => {
                    self.error("no_more", "no more online users to show; /who starts again");
                    return;
                }
            }
        } else {
            (prefix, None)
        };
        let req = Request::Online {
            token,
            limit: Some(WHO_PAGE),
            after,
            prefix: prefix.clone(),
        };
        self.send(req, Pending::Who { prefix });
    }

    /// `/history [N]`: the last lines of the current conversation.
    fn history(&mut self, n: Option<usize>) {
        let Some(target) = self.current.clone() else {
            self.error(
                "no_target",
                "no current conversation: /chat USER or /join ROOM first",
            );
            return;
        };
        let chat = target.to_string();
        let n = n.unwrap_or(crate::peer::logs::HISTORY_DEFAULT);
        let lines = self.logs.history(&chat, n);
        self.emit(UiEvent::History { chat, lines });
    }

    pub(super) fn script_fail(&mut self, why: &str) {
        if let Some(s) = &mut self.script {
            s.request_done(false);
            s.fail_current(why.to_string());
        }
    }
}
