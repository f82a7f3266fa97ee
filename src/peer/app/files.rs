//! Glue between the file transfers ([`crate::peer::files`]) and the rest:
//! the `/send`, `/get`, `/refuse`, `/cancel`, `/files` commands, the
//! `file_*` chat messages, and what the transfer threads report.

use super::App;
use crate::peer::events::Event;
use crate::peer::files::{
    self, progress::Progress, transfer, FileCommand, Incoming, Outgoing, Report,
};
use crate::peer::ui::{FileEntry, UiEvent};
use crate::protocol::chat::ChatMsg;
use crate::protocol::file::{self as wire, Offer};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

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
        if to.starts_with('#') {
            return self.error(
                "not_supported",
                "offering a file to a room is not supported yet; /send USER FILE",
            );
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

    fn make_offer(&mut self, to: String, path: PathBuf, size: u64, sha256: String) {
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
    fn tell(&mut self, user: &str, msg: ChatMsg) {
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

    /// A `file_*` message on chat connection `conn`.
    pub(super) fn file_msg(&mut self, conn: u64, msg: ChatMsg) {
        let Some((user, addr)) = self.chats.open_partner(conn) else {
            return log::debug!("file message on {conn}, not an open chat: ignored");
        };
        match msg {
            ChatMsg::FileOffer(o) => self.offered(user, addr, o),
            ChatMsg::FileRefuse { offer, reason } => {
                if self.files.out.get(&offer).is_some_and(|o| o.to == user) {
                    if let Some(o) = self.files.out.remove(&offer) {
                        self.files.unserve(&offer);
                        self.emit(UiEvent::FileRefused {
                            offer,
                            name: o.offer.name,
                            by: user,
                            reason: wire_text(&reason),
                        });
                    }
                }
            }
            ChatMsg::FileCancel { offer, .. } => {
                if self.files.inc.get(&offer).is_some_and(|i| i.from == user) {
                    if let Some(i) = self.files.inc.remove(&offer) {
                        if let Some(flag) = i.cancel {
                            flag.store(true, Ordering::Relaxed);
                        }
                        self.emit(UiEvent::FileCancelled {
                            offer,
                            name: i.offer.name,
                            by: user,
                        });
                    }
                } else if self.files.out.get(&offer).is_some_and(|o| o.to == user) {
                    if let Some(o) = self.files.out.remove(&offer) {
                        self.files.unserve(&offer);
                        self.emit(UiEvent::FileCancelled {
                            offer,
                            name: o.offer.name,
                            by: user,
                        });
                    }
                }
            }
            ChatMsg::FileDone { offer, ok, reason } => {
                if !self.files.out.get(&offer).is_some_and(|o| o.to == user) {
                    return;
                }
                let Some(o) = self.files.out.remove(&offer) else {
                    return;
                };
                self.files.unserve(&offer);
                self.files.sending.remove(&(offer.clone(), user.clone()));
                let name = o.offer.name;
                match ok {
                    true => self.emit(UiEvent::FileSent {
                        offer,
                        name,
                        to: user,
                    }),
                    false => self.emit(UiEvent::FileFailed {
                        offer,
                        name,
                        user,
                        reason: wire_text(&reason),
                    }),
                }
            }
            _ => {}
        }
    }

    fn offered(&mut self, from: String, addr: SocketAddr, mut o: Offer) {
        let sound = o.offer.len() <= 32
            && o.offer.bytes().all(|b| b.is_ascii_alphanumeric())
            && !o.offer.is_empty()
            && wire::unhex::<32>(&o.key).is_some()
            && wire::unhex::<32>(&o.sha256).is_some()
            && o.name.len() <= wire::MAX_NAME
            && o.port != 0;
        if !sound || self.files.inc.contains_key(&o.offer) {
            return log::info!("a malformed or repeated file offer from {from}: ignored");
        }
        o.name = files::sanitize::sanitize(&o.name);
        let max = self.files.cfg.max_size;
        if o.size > max {
            let reason = format!("too large: {} bytes, the receiver's limit is {max}", o.size);
            self.tell(
                &from,
                ChatMsg::FileRefuse {
                    offer: o.offer.clone(),
                    reason: reason.clone(),
                },
            );
            let me = self.me().unwrap_or_default().to_string();
            return self.emit(UiEvent::FileRefused {
                offer: o.offer,
                name: o.name,
                by: me,
                reason,
            });
        }
        self.emit(UiEvent::FileOffered {
            offer: o.offer.clone(),
            name: o.name.clone(),
            size: o.size,
            sha256: o.sha256.clone(),
            from: from.clone(),
            to: self.me().unwrap_or_default().to_string(),
            own: false,
        });
        let source = SocketAddr::new(addr.ip(), o.port);
        let progress = Progress::new(o.size);
        self.files.inc.insert(
            o.offer.clone(),
            Incoming {
                from,
                offer: o,
                source,
                cancel: None,
                progress,
            },
        );
    }

    /// What a transfer thread reports.
    pub(super) fn file_report(&mut self, r: Report) {
        let now = Instant::now();
        match r {
            Report::Hashed {
                to,
                path,
                result: Ok((size, sha)),
            } => self.make_offer(to, path, size, sha),
            Report::Hashed { result: Err(e), .. } => self.error("bad_file", e),
            Report::Sending { offer, user, done } => {
                let Some(o) = self.files.out.get(&offer) else {
                    return;
                };
                let (name, size) = (o.offer.name.clone(), o.offer.size);
                let p = self
                    .files
                    .sending
                    .entry((offer.clone(), user.clone()))
                    .or_insert_with(|| Progress::new(size));
                let (rate, left) = p.update(done);
                if self.cfg.json || p.due(now, done == size) {
                    self.emit(UiEvent::FileProgress {
                        offer,
                        name,
                        user,
                        sending: true,
                        done,
                        size,
                        rate,
                        left,
                    });
                }
            }
            Report::Receiving { offer, done } => {
                let json = self.cfg.json;
                let Some(i) = self.files.inc.get_mut(&offer) else {
                    return;
                };
                let (rate, left) = i.progress.update(done);
                if json || i.progress.due(now, false) {
                    let (name, user, size) = (i.offer.name.clone(), i.from.clone(), i.offer.size);
                    self.emit(UiEvent::FileProgress {
                        offer,
                        name,
                        user,
                        sending: false,
                        done,
                        size,
                        rate,
                        left,
                    });
                }
            }
            Report::Retrying {
                offer,
                attempt,
                reason,
            } => {
                if let Some(i) = self.files.inc.get(&offer) {
                    let text = format!(
                        "{:?}: transfer interrupted ({reason}); resuming (attempt {attempt})",
                        i.offer.name
                    );
                    self.notice(text);
                }
            }
            Report::Received { offer, path } => {
                let Some(i) = self.files.inc.remove(&offer) else {
                    return;
                };
                self.tell(
                    &i.from,
                    ChatMsg::FileDone {
                        offer: offer.clone(),
                        ok: true,
                        reason: String::new(),
                    },
                );
                self.emit(UiEvent::FileReceived {
                    offer,
                    name: i.offer.name,
                    from: i.from,
                    path: path.display().to_string(),
                    size: i.offer.size,
                    sha256: i.offer.sha256,
                });
            }
            Report::Failed { offer, reason } => {
                let Some(i) = self.files.inc.remove(&offer) else {
                    return;
                };
                self.tell(
                    &i.from,
                    ChatMsg::FileDone {
                        offer: offer.clone(),
                        ok: false,
                        reason: reason.clone(),
                    },
                );
                self.emit(UiEvent::FileFailed {
                    offer,
                    name: i.offer.name,
                    user: i.from,
                    reason,
                });
            }
            Report::Stopped { .. } => {}
        }
    }
}

/// A reason from the other side, bounded.
fn wire_text(s: &str) -> String {
    s.chars().take(200).collect()
}
