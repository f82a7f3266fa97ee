//! The other half of the file glue (see `files`): the `file_*` chat
//! messages from the other side, and what the transfer threads report.

use super::App;
use crate::peer::files::{self, progress::Progress, Incoming, Report};
use crate::peer::ui::UiEvent;
use crate::protocol::chat::ChatMsg;
use crate::protocol::file::{self as wire, Offer};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

impl App {
    /// A `file_*` message on chat connection `conn`.
    pub(super) fn file_msg(&mut self, conn: u64, msg: ChatMsg) {
        let Some((user, addr)) = self.chats.open_partner(conn) else {
            return log::debug!("file message on {conn}, not an open chat: ignored");
        };
        match msg {
            ChatMsg::FileOffer(o) => self.offered(user, addr, o),
            ChatMsg::FileRefuse { offer, reason } => {
                if self.files.out.get(&offer).is_none_or(|o| o.to != user) {
                    return;
                }
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
                if self.files.out.get(&offer).is_none_or(|o| o.to != user) {
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
        let pending = self.files.inc.values().filter(|i| i.from == from).count();
        if pending >= files::MAX_OFFERS_PER_USER {
            let reason = format!("too many offers pending ({pending})");
            self.tell(
                &from,
                ChatMsg::FileRefuse {
                    offer: o.offer,
                    reason,
                },
            );
            return log::info!("file offer from {from} refused: {pending} pending");
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
            } => match to.strip_prefix('#') {
                Some(room) => self.offer_to_room(room, path, size, sha),
                None => self.make_offer(to, path, size, sha),
            },
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
