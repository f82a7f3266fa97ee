//! Room keys at the peer (protocol.md §4, "Room keys"). The registry only
//! carries sealed packages: each epoch's key is made by one member, the
//! key maker, who seals it to every member's X25519 key
//! (`protocol::roomkey`) and sends the packages with `room_key`; each
//! member opens its own with the maker's key as the registry vouches for
//! it. Who makes it: the first member in the registry's list (with keys)
//! at once; the one after it if no key has come a second later, and so
//! on, so a maker that crashed holds nobody up for long. The registry
//! takes the first maker of an epoch and refuses the others (`key_exists`).

use super::rooms::RoomPending;
use super::{App, Pending};
use crate::identity::{Identity, PublicKeys};
use crate::protocol::datagram::RoomKey;
use crate::protocol::{roomkey, Request, RoomInfo};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most this many packages per `room_key` request: a line of 100 stays
/// near 20 KB, far below the registry's 64 KiB.
const PACKAGES_PER_REQUEST: usize = 100;
/// A member `n` places down the line makes the key itself once the epoch
/// has had no maker for `n` times this.
const MAKER_PATIENCE: Duration = Duration::from_secs(1);
/// A member still listed as needing the key is sealed for again after this.
const RESEAL_AFTER: Duration = Duration::from_secs(2);

/// What the peer remembers of room keys beside the engine.
#[derive(Default)]
pub struct KeyState {
    /// The key we made for each room (its latest epoch).
    made: HashMap<String, RoomKey>,
    /// Since when (as we saw it) each room's epoch has had no maker.
    makerless: HashMap<String, (u64, Instant)>,
    /// When we last sealed the key of an epoch for a member.
    sealed: HashMap<(String, String), (u64, Instant)>,
    /// Packages that did not open, said once per room and epoch.
    unopened: HashMap<String, u64>,
    /// The epoch of the last key we told the user of, per room.
    told: HashMap<String, u64>,
}

impl KeyState {
    pub fn clear(&mut self) {
        *self = KeyState::default();
    }

    /// We (re)joined `room`: what we knew of its keys is void (a room the
    /// registry re-created after a restart starts again at epoch 1).
    pub fn forget(&mut self, room: &str) {
        self.made.remove(room);
        self.makerless.remove(room);
        self.unopened.remove(room);
        self.told.remove(room);
        self.sealed.retain(|(r, _), _| r != room);
    }
}

/// What a room reply says of our key.
pub enum KeyNews {
    /// The current epoch's key.
    Key(RoomKey),
    /// The room is at this epoch and its key has not reached us yet.
    Waiting(u64),
    /// The registry does not count us as a member.
    NotMember,
}

/// The X25519 key the registry vouches for `name` in this reply.
fn kx_of(info: &RoomInfo, name: &str) -> Option<[u8; 32]> {
    let u = info.members.iter().find(|u| u.username == name)?;
    Some(PublicKeys::from_wire(u.keys.as_ref()?).ok()?.kx)
}

impl App {
    /// Reads a room reply for our key, doing what falls to us on the way:
    /// making the epoch's key when it is our turn, and sealing it for the
    /// members who lack it when we are its maker.
    pub(super) fn room_key_news(&mut self, now: Instant, info: &RoomInfo) -> KeyNews {
        let Some(epoch) = info.epoch else {
            return KeyNews::NotMember;
        };
        let (Some(me), Some(id)) = (self.me().map(str::to_string), self.identity.clone()) else {
            return KeyNews::Waiting(epoch);
        };
        let room = info.name.as_str();
        let news = match info.key_maker.as_deref() {
            None => {
                self.maybe_make_key(now, info, epoch, &me, &id);
                KeyNews::Waiting(epoch)
            }
            Some(maker) if maker == me => {
                let made = self.rooms.keys.made.get(room).copied();
                // We made it; if we forgot it (a rejoin's reply came after
                // we made it), our own package gives it back.
                let key = match made.filter(|k| k.epoch == epoch) {
                    Some(key) => Some(key),
                    None => match self.open_package(info, epoch, maker, &me, &id) {
                        KeyNews::Key(key) => {
                            self.rooms.keys.made.insert(room.to_string(), key);
                            Some(key)
                        }
                        _ => None,
                    },
                };
                match key {
                    Some(key) => {
                        self.seal_for_needy(now, info, key, &me, &id);
                        KeyNews::Key(key)
                    }
                    None => KeyNews::Waiting(epoch),
                }
            }
            Some(maker) => self.open_package(info, epoch, maker, &me, &id),
        };
        if let KeyNews::Key(key) = &news {
            if self.rooms.keys.told.insert(room.to_string(), key.epoch) != Some(key.epoch) {
                if let Some(log) = &mut self.keylog {
                    log.record(room, key);
                }
                self.emit(crate::peer::ui::UiEvent::RoomKey {
                    room: room.to_string(),
                    epoch: key.epoch,
                    maker: info.key_maker.clone().unwrap_or_default(),
                });
            }
        }
        news
    }

    fn open_package(
        &mut self,
        info: &RoomInfo,
        epoch: u64,
        maker: &str,
        me: &str,
        id: &Identity,
    ) -> KeyNews {
        let Some(package) = info.key_package.as_deref() else {
            return KeyNews::Waiting(epoch);
        };
        let room = info.name.as_str();
        let opened = kx_of(info, maker)
            .and_then(|kx| roomkey::open_hex(id, maker, me, &kx, room, epoch, package));
        match opened {
            Some(key) => KeyNews::Key(RoomKey { epoch, key }),
            None => {
                if self.rooms.keys.unopened.insert(room.to_string(), epoch) != Some(epoch) {
                    self.error(
                        "bad_room_key",
                        format!(
                            "the key {maker} sealed for you in #{room} does not open with \
                             {maker}'s key as the registry vouches for it; waiting for another"
                        ),
                    );
                }
                KeyNews::Waiting(epoch)
            }
        }
    }

    /// The epoch has no key yet: the first member in line makes it; the
    /// others give it [`MAKER_PATIENCE`] per place ahead of them.
    fn maybe_make_key(
        &mut self,
        now: Instant,
        info: &RoomInfo,
        epoch: u64,
        me: &str,
        id: &Arc<Identity>,
    ) {
        let room = info.name.clone();
        let line: Vec<&str> = info
            .members
            .iter()
            .filter(|u| u.online && u.keys.is_some())
            .map(|u| u.username.as_str())
            .collect();
        let Some(place) = line.iter().position(|n| *n == me) else {
            return;
        };
        let since = match self.rooms.keys.makerless.get(&room) {
            Some(&(e, t)) if e == epoch => t,
            _ => {
                self.rooms.keys.makerless.insert(room.clone(), (epoch, now));
                now
            }
        };
        let already = self
            .rooms
            .keys
            .made
            .get(&room)
            .is_some_and(|k| k.epoch == epoch);
        let turn = now.saturating_duration_since(since) >= MAKER_PATIENCE * place as u32;
        if already || !turn {
            return;
        }
        let key = RoomKey {
            epoch,
            key: rand::random(),
        };
        log::info!("#{room}: making the key of epoch {epoch}");
        self.rooms.keys.made.insert(room, key);
        let everyone: Vec<String> = line.iter().map(|s| s.to_string()).collect();
        self.post_packages(now, info, key, &everyone, me, id);
    }

    /// As the maker: seals the key for the members listed as needing it
    /// (each at most every [`RESEAL_AFTER`]).
    fn seal_for_needy(
        &mut self,
        now: Instant,
        info: &RoomInfo,
        key: RoomKey,
        me: &str,
        id: &Identity,
    ) {
        let due: Vec<String> = info
            .needs_key
            .iter()
            .filter(|u| {
                let k = (info.name.clone(), (*u).clone());
                !matches!(self.rooms.keys.sealed.get(&k),
                    Some(&(e, t)) if e == key.epoch && now.saturating_duration_since(t) < RESEAL_AFTER)
            })
            .cloned()
            .collect();
        if !due.is_empty() {
            self.post_packages(now, info, key, &due, me, id);
        }
    }

    /// Seals `key` for each of `to` that has keys and sends the packages
    /// to the registry, [`PACKAGES_PER_REQUEST`] at a time.
    fn post_packages(
        &mut self,
        now: Instant,
        info: &RoomInfo,
        key: RoomKey,
        to: &[String],
        me: &str,
        id: &Identity,
    ) {
        let Some(token) = self.session.as_ref().map(|s| s.token.clone()) else {
            return;
        };
        let room = info.name.as_str();
        let mut packages = BTreeMap::new();
        for user in to {
            let Some(kx) = kx_of(info, user) else {
                continue;
            };
            let p = roomkey::seal_hex(id, me, user, &kx, room, key.epoch, &key.key, rand::random());
            packages.insert(user.clone(), p);
            self.rooms
                .keys
                .sealed
                .insert((room.to_string(), user.clone()), (key.epoch, now));
        }
        let mut packages = packages.into_iter().peekable();
        while packages.peek().is_some() {
            let chunk: BTreeMap<String, String> =
                packages.by_ref().take(PACKAGES_PER_REQUEST).collect();
            let req = Request::RoomKey {
                token: token.clone(),
                room: room.to_string(),
                epoch: key.epoch,
                packages: chunk,
            };
            self.send(req, Pending::Room(RoomPending::Key(room.to_string())));
        }
    }
}
