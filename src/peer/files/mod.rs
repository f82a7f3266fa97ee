//! File transfers, peer to peer (`protocol.md` §3, "Files"). An offer travels on
//! the one-to-one chat with the receiver (a `file_offer` chat message,
//! with a fresh key); the file itself goes on a connection of its own from
//! the receiver to the sender's file port, as sealed chunks
//! ([`transfer`]). This module holds the state the main loop keeps (offers
//! made and received, transfers under way); `app::files` is the glue.

pub mod progress;
pub mod sanitize;
#[cfg(test)]
mod tests;
pub mod transfer;

use crate::peer::events::Event;
use crate::protocol::file::Offer;
use crossbeam_channel::Sender;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Default `--max-file-size`: 1 GiB.
pub const DEFAULT_MAX_SIZE: u64 = 1 << 30;
/// Transfer connections served at once; more are closed at once.
pub const MAX_UPLOADS: usize = 32;
/// Offers from one user kept at once; more are refused unseen.
pub const MAX_OFFERS_PER_USER: usize = 32;
/// File messages kept for interrupted chats, at most.
pub const MAX_LATER: usize = 256;

/// `--download-dir` and `--max-file-size`.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    pub download_dir: PathBuf,
    pub max_size: u64,
}

impl Default for FilesConfig {
    fn default() -> FilesConfig {
        FilesConfig {
            download_dir: default_download_dir(),
            max_size: DEFAULT_MAX_SIZE,
        }
    }
}

/// `$XDG_DOWNLOAD_DIR`, else `~/Downloads/lanchat`, else `./downloads`.
pub fn default_download_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DOWNLOAD_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => PathBuf::from(h).join("Downloads").join("lanchat"),
        None => PathBuf::from("downloads"),
    }
}

/// The file commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileCommand {
    /// `/send USER|#ROOM PATH`
    Send { to: String, path: String },
    /// `/get [ID|NAME]`
    Get(Option<String>),
    /// `/refuse [ID|NAME]`
    Refuse(Option<String>),
    /// `/cancel ID|NAME`
    Cancel(String),
    /// `/files`
    List,
}

/// Parses the file commands (`verb` in lower case).
pub fn parse(verb: &str, args: &str) -> Result<FileCommand, String> {
    let arg = (!args.is_empty()).then(|| args.to_string());
    Ok(match verb {
        "send" => match args.split_once(char::is_whitespace) {
            Some((to, path)) if !path.trim().is_empty() => FileCommand::Send {
                to: to.to_string(),
                path: path.trim().to_string(),
            },
            _ => return Err("usage: /send USER FILE".into()),
        },
        "get" => FileCommand::Get(arg),
        "refuse" => FileCommand::Refuse(arg),
        "cancel" => FileCommand::Cancel(arg.ok_or("usage: /cancel ID")?),
        _ => FileCommand::List,
    })
}

/// What transfer threads tell the main loop (as `Event::File`).
#[derive(Debug)]
pub enum Report {
    /// The file to offer has been hashed (or could not be read).
    Hashed {
        to: String,
        path: PathBuf,
        result: Result<(u64, String), String>,
    },
    Sending {
        offer: String,
        user: String,
        done: u64,
    },
    Receiving {
        offer: String,
        done: u64,
    },
    Retrying {
        offer: String,
        attempt: u32,
        reason: String,
    },
    Received {
        offer: String,
        path: PathBuf,
    },
    Failed {
        offer: String,
        reason: String,
    },
    /// The download stopped after a cancel (its `.part` removed).
    Stopped {
        offer: String,
    },
}

/// An offer as the serving thread sees it.
#[derive(Clone)]
pub struct Served {
    pub path: PathBuf,
    pub key: [u8; 32],
    pub size: u64,
    /// Who may fetch it.
    pub users: HashSet<String>,
    pub cancel: Arc<AtomicBool>,
}

/// Offers served, by id, shared with the serving threads.
pub type Table = Arc<Mutex<HashMap<String, Served>>>;

/// An offer we made.
pub struct Outgoing {
    pub to: String,
    pub offer: Offer,
    pub path: PathBuf,
    pub cancel: Arc<AtomicBool>,
    /// Sent on the chat (else waiting for the chat to open).
    pub sent: bool,
}

/// An offer we received, and its download once `/get` started it.
pub struct Incoming {
    pub from: String,
    pub offer: Offer,
    /// The sender's file port on the chat partner's address.
    pub source: SocketAddr,
    /// Set while downloading.
    pub cancel: Option<Arc<AtomicBool>>,
    pub progress: progress::Progress,
}

/// The main loop's file state.
pub struct Files {
    pub cfg: FilesConfig,
    pub table: Table,
    port: Option<u16>,
    pub out: BTreeMap<String, Outgoing>,
    pub inc: BTreeMap<String, Incoming>,
    /// Progress of what we send, per (offer, user).
    pub sending: BTreeMap<(String, String), progress::Progress>,
    /// File messages for chats that are interrupted, sent on resume.
    pub later: Vec<(String, crate::protocol::chat::ChatMsg)>,
}

impl Files {
    pub fn new(cfg: FilesConfig) -> Files {
        Files {
            cfg,
            table: Default::default(),
            port: None,
            out: BTreeMap::new(),
            inc: BTreeMap::new(),
            sending: BTreeMap::new(),
            later: Vec::new(),
        }
    }

    /// The file port, listening from the first call on (on `bind`).
    pub fn port(&mut self, bind: IpAddr, events: &Sender<Event>) -> std::io::Result<u16> {
        if let Some(p) = self.port {
            return Ok(p);
        }
        let listener = TcpListener::bind(SocketAddr::new(bind, 0))?;
        let port = listener.local_addr()?.port();
        let table = self.table.clone();
        let events = events.clone();
        let active = Arc::new(AtomicUsize::new(0));
        std::thread::Builder::new()
            .name("files".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    if active.load(Ordering::Relaxed) >= MAX_UPLOADS {
                        continue;
                    }
                    active.fetch_add(1, Ordering::Relaxed);
                    let (table, events, active) = (table.clone(), events.clone(), active.clone());
                    let spawned =
                        std::thread::Builder::new()
                            .name("file-serve".into())
                            .spawn(move || {
                                transfer::serve(stream, table, events);
                                active.fetch_sub(1, Ordering::Relaxed);
                            });
                    if spawned.is_err() {
                        log::warn!("cannot start a file transfer thread");
                    }
                }
            })?;
        self.port = Some(port);
        Ok(port)
    }

    /// Serves `offer` from `path` to `users`.
    pub fn serve(
        &self,
        offer: &Offer,
        path: PathBuf,
        key: [u8; 32],
        users: HashSet<String>,
        cancel: Arc<AtomicBool>,
    ) {
        if let Ok(mut t) = self.table.lock() {
            let served = Served {
                path,
                key,
                size: offer.size,
                users,
                cancel,
            };
            t.insert(offer.offer.clone(), served);
        }
    }

    /// Stops serving `offer` (and the transfers of it under way).
    pub fn unserve(&self, offer: &str) {
        if let Ok(mut t) = self.table.lock() {
            if let Some(s) = t.remove(offer) {
                s.cancel.store(true, Ordering::Relaxed);
            }
        }
    }

    /// The received offer `arg` names (an id, an id's start, or a name),
    /// or the only one when `arg` is `None`.
    pub fn find_incoming(&self, arg: Option<&str>) -> Result<String, String> {
        find(self.inc.iter().map(|(id, i)| (id, &i.offer.name)), arg)
    }

    /// The same among offers we made.
    pub fn find_outgoing(&self, arg: Option<&str>) -> Result<String, String> {
        find(self.out.iter().map(|(id, o)| (id, &o.offer.name)), arg)
    }
}

fn find<'a>(
    items: impl Iterator<Item = (&'a String, &'a String)>,
    arg: Option<&str>,
) -> Result<String, String> {
    let items: Vec<_> = items.collect();
    let hits: Vec<&String> = match arg {
        None => items.iter().map(|(id, _)| *id).collect(),
        Some(a) => {
            let exact: Vec<&String> = items
                .iter()
                .filter(|(id, n)| *id == a || *n == a)
                .map(|(id, _)| *id)
                .collect();
            if exact.is_empty() {
                items
                    .iter()
                    .filter(|(id, _)| id.starts_with(a))
                    .map(|(id, _)| *id)
                    .collect()
            } else {
                exact
            }
        }
    };
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(match arg {
            Some(a) => format!("no file offer {a:?}; /files lists them"),
            None => "no file offer; /files lists them".into(),
        }),
        _ => Err("more than one file offer; name one (/files lists them)".into()),
    }
}

/// A fresh random id (12 hex digits) and key.
pub fn fresh() -> (String, [u8; 32]) {
    use rand::RngCore;
    let mut id = [0u8; 6];
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut id);
    rand::thread_rng().fill_bytes(&mut key);
    (crate::protocol::file::hex(&id), key)
}
