//! Glue between the file transfers ([`crate::peer::files`]) and the rest:
//! the `/send`, `/get`, `/refuse`, `/cancel`, `/files` commands, the
//! `file_*` chat messages, and what the transfer threads report.

use super::App;
use crate::peer::events::Event;
use crate::peer::files::{self, progress::Progress, transfer, FileCommand, Outgoing, Report};
use crate::peer::ui::{FileEntry, UiEvent};
use crate::protocol::chat::ChatMsg;
use crate::protocol::file::{self as wire, Offer};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

impl App {
    pub(super) fn file_command(&mut self, cmd: FileCommand) {
        if self.me().is_none() {
            return self.error("not_logged_in", "not logged in; /login first");
        }
        match cmd {
            FileCommand::Send { to, path } => self.offer_file(to, PathBuf::from(path)),
            FileCommand::Get(arg) => match self.files.find_incoming(arg.as_deref()) {
                Ok(id) => self.fetch(id),
                Err(e) => self.error("no_such_offer", e),
            },
            FileCommand::Refuse(arg) => match self.files.find_incoming(arg.as_deref()) {
                Ok(id) => self.drop_incoming(id, false),
                Err(e) => self.error("no_such_offer", e),
            },
            FileCommand::Cancel(arg) => {
                if let Ok(id) = self.files.find_incoming(Some(&arg)) {
                    self.drop_incoming(id, true)
                } else {
                    match self.files.find_outgoing(Some(&arg)) {
                        Ok(id) => self.drop_outgoing(id, "cancelled"),
                        Err(e) => self.error("no_such_offer", e),
                    }
                }
            }
            FileCommand::List => {
                let mut list: Vec<FileEntry> = self
                    .files
                    .inc
                    .iter()
                    .map(|(id, i)| FileEntry {
                        offer: id.clone(),
                        name: i.offer.name.clone(),
                        size: i.offer.size,
                        direction: "in".into(),
                        user: i.from.clone(),
                        state: if i.cancel.is_some() {
                            "fetching"
                        } else {
                            "offered"
                        }
                        .into(),
                    })
                    .collect();
                list.extend(self.files.out.iter().map(|(id, o)| FileEntry {
                    offer: id.clone(),
                    name: o.offer.name.clone(),
                    size: o.offer.size,
                    direction: "out".into(),
                    user: o.to.clone(),
                    state: if o.sent { "offered" } else { "waiting" }.into(),
                }));
                self.emit(UiEvent::Files { files: list });
            }
        }
    }

    /// `/send USER FILE`: checks the size, hashes the file off the main
    /// loop; [`App::file_report`] makes the offer once it is hashed.
    fn offer_file(&mut self, to: String, path: PathBuf) {
        if let Some(room) = to.strip_prefix('#') {
            if !self.rooms.is_member(room) {
                return self.error(
                    "not_a_member",
                    format!("you are not in #{room}; /join {room} first"),
                );
            }
        }
        let size = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m.len(),
            Ok(_) => return self.error("bad_file", format!("{} is not a file", path.display())),
            Err(e) => {
                return self.error("bad_file", format!("cannot read {}: {e}", path.display()))
            }
        };
        if size > self.files.cfg.max_size {
            let max = self.files.cfg.max_size;
            return self.error(
                "file_too_large",
                format!(
                    "{} is {size} bytes; the limit (--max-file-size) is {max}",
                    path.display()
                ),
            );
        }
        let events = self.events.clone();
        let spawned = std::thread::Builder::new()
            .name("file-hash".into())
            .spawn(move || {
                let result = std::fs::File::open(&path)
                    .and_then(|mut f| Ok((f.metadata()?.len(), transfer::sha256_of(&mut f)?)))
                    .map_err(|e| format!("cannot read {}: {e}", path.display()));
                let _ = events.send(Event::File(Report::Hashed { to, path, result }));
            });
        if let Err(e) = spawned {
            self.error("bad_file", format!("cannot start hashing: {e}"));
        }
    }

    /// `/send #ROOM FILE`: an offer of its own (id, key) to each other
    /// member, each on the chat with that member; each fetches from us.
    pub(super) fn offer_to_room(&mut self, room: &str, path: PathBuf, size: u64, sha256: String) {
        let me = self.me().unwrap_or_default().to_string();
        let members: Vec<String> = self
            .rooms
            .engine
            .members_of(room)
            .into_iter()
            .filter(|m| *m != me)
            .collect();
        if members.is_empty() {
            return self.error(
                "no_target",
                format!("nobody else is in #{room}; not offered"),
            );
        }
        self.notice(format!(
            "offering {} to the {} other member(s) of #{room}",
            path.display(),
            members.len()
        ));
        for m in members {
            self.make_offer(m, path.clone(), size, sha256.clone());
        }
    }

    pub(super) fn make_offer(&mut self, to: String, path: PathBuf, size: u64, sha256: String) {
        let port = match self.files.port(self.cfg.bind, &self.events) {
            Ok(p) => p,
            Err(e) => return self.error("bad_file", format!("cannot listen for transfers: {e}")),
        };
        let (id, key) = files::fresh();
        let raw = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let offer = Offer {
            offer: id.clone(),
            name: files::sanitize::sanitize(&raw),
            size,
            sha256,
            key: wire::hex(&key),
            port,
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let users: HashSet<String> = [to.clone()].into();
        self.files
            .serve(&offer, path.clone(), key, users, cancel.clone());
        self.emit(UiEvent::FileOffered {
            offer: id.clone(),
            name: offer.name.clone(),
            size,
            sha256: offer.sha256.clone(),
            from: self.me().unwrap_or_default().to_string(),
            to: to.clone(),
            own: true,
        });
        self.files.out.insert(
            id,
            Outgoing {
                to: to.clone(),
                offer,
                path,
                cancel,
                sent: false,
            },
        );
        self.flush_offers();
        if self.chats.open_conn(&to).is_none() && !self.chats.is_open(&to) {
            // As `/msg` does: ask for the chat without making it current.
            self.convos.quiet.insert(to.clone());
            self.with_chats(|c| c.open(to, None));
        }
    }

    /// Sends the offers whose chat has opened since they were made.
    pub(super) fn flush_offers(&mut self) {
        for (user, msg) in std::mem::take(&mut self.files.later) {
            self.tell(&user, msg);
        }
        let waiting: Vec<(String, String)> = self
            .files
            .out
            .iter()
            .filter(|(_, o)| !o.sent)
            .map(|(id, o)| (id.clone(), o.to.clone()))
            .collect();
        for (id, to) in waiting {
            let Some(conn) = self.chats.open_conn(&to) else {
                continue;
            };
            let Some(o) = self.files.out.get_mut(&id) else {
                continue;
            };
            if self
                .conns
                .get(&conn)
                .is_some_and(|c| c.send(ChatMsg::FileOffer(o.offer.clone())))
            {
                o.sent = true;
            }
        }
    }

    /// Sends `msg` on the open chat with `user`; while that chat is
    /// interrupted (or opening), keeps it for when it is open again.
    pub(super) fn tell(&mut self, user: &str, msg: ChatMsg) {
        let sent = self
            .chats
            .open_conn(user)
            .and_then(|conn| self.conns.get(&conn))
            .is_some_and(|c| c.send(msg.clone()));
        if !sent && self.chats.is_open(user) && self.files.later.len() < files::MAX_LATER {
            self.files.later.push((user.to_string(), msg));
        }
    }

    fn fetch(&mut self, id: String) {
        let me = self.me().unwrap_or_default().to_string();
        let dir = self.files.cfg.download_dir.clone();
        if let Some(name) = self
            .files
            .inc
            .get(&id)
            .filter(|i| i.cancel.is_some())
            .map(|i| i.offer.name.clone())
        {
            return self.error(
                "already_fetching",
                format!("{name} is being fetched already"),
            );
        }
        let Some(inc) = self.files.inc.get_mut(&id) else {
            return;
        };
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return self.error("bad_file", format!("cannot create {}: {e}", dir.display()));
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let d = transfer::Download {
            offer: inc.offer.clone(),
            me,
            source: inc.source,
            part: dir.join(format!("{}.{id}.part", inc.offer.name)),
            dir,
            name: inc.offer.name.clone(),
            cancel: cancel.clone(),
            events: self.events.clone(),
        };
        inc.cancel = Some(cancel);
        inc.progress = Progress::new(inc.offer.size);
        let (name, from) = (inc.offer.name.clone(), inc.from.clone());
        if std::thread::Builder::new()
            .name("file-fetch".into())
            .spawn(move || transfer::download(d))
            .is_err()
        {
            self.files.inc.remove(&id);
            return self.error("bad_file", "cannot start the transfer");
        }
        self.notice(format!("fetching {name:?} from {from}"));
    }

    /// `/refuse` (or `/cancel` with `cancel`) of an offer to us.
    fn drop_incoming(&mut self, id: String, cancel: bool) {
        let Some(inc) = self.files.inc.remove(&id) else {
            return;
        };
        if let Some(flag) = &inc.cancel {
            flag.store(true, Ordering::Relaxed);
        }
        let me = self.me().unwrap_or_default().to_string();
        let name = inc.offer.name.clone();
        if cancel || inc.cancel.is_some() {
            self.tell(
                &inc.from,
                ChatMsg::FileCancel {
                    offer: id.clone(),
                    reason: "cancelled".into(),
                },
            );
            self.emit(UiEvent::FileCancelled {
                offer: id,
                name,
                by: me,
            });
        } else {
            self.tell(
                &inc.from,
                ChatMsg::FileRefuse {
                    offer: id.clone(),
                    reason: "refused".into(),
                },
            );
            self.emit(UiEvent::FileRefused {
                offer: id,
                name,
                by: me,
                reason: "refused".into(),
            });
        }
    }

    /// `/cancel` of an offer we made.
    fn drop_outgoing(&mut self, id: String, reason: &str) {
        let Some(o) = self.files.out.remove(&id) else {
            return;
        };
        self.files.unserve(&id);
        self.tell(
            &o.to,
            ChatMsg::FileCancel {
                offer: id.clone(),
                reason: reason.into(),
            },
        );
        let me = self.me().unwrap_or_default().to_string();
        self.emit(UiEvent::FileCancelled {
            offer: id,
            name: o.offer.name,
            by: me,
        });
    }
}
