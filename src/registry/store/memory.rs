//! In-memory backend: everything in maps behind one mutex, gone when the
//! process exits. For tests (`--store memory`): it keeps the same contract as
//! the other backends (the conformance suite runs on it), needs no file or
//! server, and can be told to fail as if the database were down.

use super::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The in-memory store. Clones share the same data (like two connections
/// to one database).
#[derive(Clone, Default)]
pub struct MemoryStore {
    data: Arc<Mutex<Data>>,
    down: Arc<AtomicBool>,
}

#[derive(Default)]
struct Data {
    users: HashMap<String, UserRecord>,
    /// By token hash.
    sessions: HashMap<String, SessionRecord>,
    /// Username to token hash: at most one session per user.
    session_of: HashMap<String, String>,
    /// By name, with the members.
    rooms: BTreeMap<String, (RoomRecord, BTreeSet<String>)>,
    /// Room policies by room name, with their versions.
    policies: HashMap<String, (String, u64)>,
    /// Announcements by id; the last id given out.
    announcements: BTreeMap<u64, Announcement>,
    last_announcement: u64,
}

impl Data {
    /// Attached sessions matching `keep`, sorted by username.
    fn attached(&self, keep: impl Fn(&SessionRecord) -> bool) -> Vec<SessionRecord> {
        let mut v: Vec<SessionRecord> = self
            .sessions
            .values()
            .filter(|s| s.attached && keep(s))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.username.cmp(&b.username));
        v
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// While `down`, every operation fails with [`StoreError::Unavailable`].
    pub fn set_unavailable(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn with<T>(&self, f: impl FnOnce(&mut Data) -> StoreResult<T>) -> StoreResult<T> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the memory store is down".into()));
        }
        f(&mut self.data.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn update(
        &self,
        token_hash: &str,
        f: impl FnOnce(&mut SessionRecord) -> bool,
    ) -> StoreResult<bool> {
        self.with(|d| Ok(d.sessions.get_mut(token_hash).is_some_and(f)))
    }
}

impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn ping(&self) -> StoreResult<()> {
        self.with(|_| Ok(()))
    }

    fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        self.with(|d| {
            if d.users.contains_key(&user.username) {
                return Err(StoreError::Conflict);
            }
            d.users.insert(user.username.clone(), user.clone());
            Ok(())
        })
    }

    fn find_user(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        self.with(|d| Ok(d.users.get(username).cloned()))
    }

    fn find_user_with_session(
        &self,
        username: &str,
    ) -> StoreResult<Option<(UserRecord, Option<SessionRecord>)>> {
        self.with(|d| {
            let session = d.session_of.get(username).and_then(|t| d.sessions.get(t));
            Ok(d.users.get(username).map(|u| (u.clone(), session.cloned())))
        })
    }

    fn insert_session(&self, s: &SessionRecord) -> StoreResult<()> {
        self.with(|d| {
            if d.sessions.contains_key(&s.token_hash) || d.session_of.contains_key(&s.username) {
                return Err(StoreError::Conflict);
            }
            d.session_of
                .insert(s.username.clone(), s.token_hash.clone());
            d.sessions.insert(s.token_hash.clone(), s.clone());
            Ok(())
        })
    }

    fn session_by_token(&self, token_hash: &str) -> StoreResult<Option<SessionRecord>> {
        self.with(|d| Ok(d.sessions.get(token_hash).cloned()))
    }

    fn session_by_user(&self, username: &str) -> StoreResult<Option<SessionRecord>> {
        self.with(|d| {
            Ok(d.session_of
                .get(username)
                .and_then(|t| d.sessions.get(t))
                .cloned())
        })
    }

    fn delete_session(&self, token_hash: &str) -> StoreResult<bool> {
        self.with(|d| match d.sessions.remove(token_hash) {
            Some(s) => {
                d.session_of.remove(&s.username);
                Ok(true)
            }
            None => Ok(false),
        })
    }

    fn attach_session(
        &self,
        token_hash: &str,
        endpoint: &Endpoint,
        instance: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        self.update(token_hash, |s| {
            s.ip = endpoint.ip.clone();
            s.tcp_port = endpoint.tcp_port;
            s.udp_port = endpoint.udp_port;
            s.keys = endpoint.keys.clone();
            s.instance = instance.to_string();
            s.attached = true;
            s.last_seen_ms = now_ms;
            true
        })
    }

    fn detach_session(&self, token_hash: &str, instance: &str) -> StoreResult<bool> {
        self.update(token_hash, |s| {
            let detach = s.attached && s.instance == instance;
            s.attached &= !detach;
            detach
        })
    }

    fn detach_if_stale(&self, token_hash: &str, stale_before_ms: i64) -> StoreResult<bool> {
        self.update(token_hash, |s| {
            let detach = s.attached && s.last_seen_ms < stale_before_ms;
            s.attached &= !detach;
            detach
        })
    }

    fn detach_instance(&self, instance: &str) -> StoreResult<Vec<SessionRecord>> {
        self.with(|d| {
            let before = d.attached(|s| s.instance == instance);
            for s in &before {
                if let Some(s) = d.sessions.get_mut(&s.token_hash) {
                    s.attached = false;
                }
            }
            Ok(before)
        })
    }

    fn touch_sessions(&self, token_hashes: &[String], now_ms: i64) -> StoreResult<u64> {
        self.with(|d| {
            let unique: BTreeSet<&String> = token_hashes.iter().collect();
            let mut n = 0;
            for t in unique {
                if let Some(s) = d.sessions.get_mut(t) {
                    s.last_seen_ms = s.last_seen_ms.max(now_ms);
                    n += 1;
                }
            }
            Ok(n)
        })
    }

    fn online_sessions(&self, fresh_since_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        self.with(|d| Ok(d.attached(|s| s.last_seen_ms >= fresh_since_ms)))
    }

    fn online_page(&self, q: &OnlineQuery<'_>) -> StoreResult<OnlinePage> {
        let end = q.prefix_end();
        self.with(|d| {
            let matching = d.attached(|s| {
                s.last_seen_ms >= q.fresh_since_ms
                    && s.username.as_str() >= q.prefix
                    && s.username < end
            });
            let total = matching.len() as u64;
            let mut sessions: Vec<SessionRecord> = matching
                .into_iter()
                .filter(|s| q.after.is_none_or(|a| s.username.as_str() > a))
                .take(q.limit.saturating_add(1))
                .collect();
            let more = sessions.len() > q.limit;
            sessions.truncate(q.limit);
            Ok(OnlinePage {
                sessions,
                more,
                total,
            })
        })
    }

    fn stale_sessions(&self, stale_before_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        self.with(|d| Ok(d.attached(|s| s.last_seen_ms < stale_before_ms)))
    }

    fn purge_sessions(&self, before_ms: i64) -> StoreResult<u64> {
        self.with(|d| {
            let old: Vec<SessionRecord> = d
                .sessions
                .values()
                .filter(|s| !s.attached && s.last_seen_ms < before_ms)
                .cloned()
                .collect();
            for s in &old {
                d.sessions.remove(&s.token_hash);
                d.session_of.remove(&s.username);
            }
            Ok(old.len() as u64)
        })
    }

    fn create_room(&self, room: &RoomRecord, creator: &str) -> StoreResult<()> {
        self.with(|d| {
            if d.rooms.contains_key(&room.name) {
                return Err(StoreError::Conflict);
            }
            let members = BTreeSet::from([creator.to_string()]);
            d.rooms.insert(room.name.clone(), (room.clone(), members));
            Ok(())
        })
    }

    fn find_room(&self, name: &str) -> StoreResult<Option<RoomRecord>> {
        self.with(|d| Ok(d.rooms.get(name).map(|(r, _)| r.clone())))
    }

    fn add_member(&self, room: &str, username: &str) -> StoreResult<()> {
        self.with(|d| match d.rooms.get_mut(room) {
            Some((_, members)) => {
                members.insert(username.to_string());
                Ok(())
            }
            None => Err(StoreError::NotFound),
        })
    }

    fn remove_member(&self, room: &str, username: &str, new_key: &str) -> StoreResult<Left> {
        self.with(|d| {
            let Some((record, members)) = d.rooms.get_mut(room) else {
                return Ok(Left {
                    removed: false,
                    room_deleted: false,
                });
            };
            let removed = members.remove(username);
            let room_deleted = members.is_empty();
            if room_deleted {
                d.rooms.remove(room);
            } else if removed {
                record.key = new_key.to_string();
                record.epoch += 1;
            }
            Ok(Left {
                removed,
                room_deleted,
            })
        })
    }

    fn swap_room_key(&self, room: &str, epoch: u64, old: &str, new: &str) -> StoreResult<bool> {
        self.with(|d| match d.rooms.get_mut(room) {
            Some((r, _)) if r.epoch == epoch && r.key == old => {
                r.key = new.to_string();
                Ok(true)
            }
            _ => Ok(false),
        })
    }

    fn room_members(&self, room: &str) -> StoreResult<Vec<String>> {
        self.with(|d| {
            Ok(d.rooms
                .get(room)
                .map(|(_, m)| m.iter().cloned().collect())
                .unwrap_or_default())
        })
    }

    fn members_with_sessions(
        &self,
        room: &str,
    ) -> StoreResult<Vec<(String, Option<SessionRecord>)>> {
        self.with(|d| {
            let Some((_, members)) = d.rooms.get(room) else {
                return Ok(Vec::new());
            };
            Ok(members
                .iter()
                .map(|u| {
                    let s = d.session_of.get(u).and_then(|t| d.sessions.get(t));
                    (u.clone(), s.cloned())
                })
                .collect())
        })
    }

    fn list_rooms(&self) -> StoreResult<Vec<RoomListing>> {
        self.with(|d| {
            Ok(d.rooms
                .iter()
                .map(|(name, (r, m))| RoomListing {
                    name: name.clone(),
                    members: m.len() as u64,
                    topic: r.topic.as_ref().map(|t| t.text.clone()),
                })
                .collect())
        })
    }

    fn rooms_of(&self, username: &str) -> StoreResult<Vec<String>> {
        self.with(|d| {
            Ok(d.rooms
                .iter()
                .filter(|(_, (_, m))| m.contains(username))
                .map(|(name, _)| name.clone())
                .collect())
        })
    }

    fn set_topic(&self, room: &str, by: &str, text: &str) -> StoreResult<bool> {
        self.with(|d| match d.rooms.get_mut(room) {
            Some((record, members)) if members.contains(by) => {
                record.topic = (!text.is_empty()).then(|| Topic {
                    text: text.to_string(),
                    by: by.to_string(),
                });
                Ok(true)
            }
            _ => Ok(false),
        })
    }

    fn set_away(&self, token_hash: &str, away: &str) -> StoreResult<bool> {
        self.update(token_hash, |s| {
            s.away = (!away.is_empty()).then(|| away.to_string());
            true
        })
    }

    fn room_policy(&self, room: &str) -> StoreResult<Option<(String, u64)>> {
        self.with(|d| Ok(d.policies.get(room).cloned()))
    }

    fn put_room_policy(&self, room: &str, doc: &str, expected: u64) -> StoreResult<bool> {
        self.with(|d| {
            let now = d.policies.get(room).map_or(0, |(_, v)| *v);
            if now != expected {
                return Ok(false);
            }
            d.policies
                .insert(room.to_string(), (doc.to_string(), expected + 1));
            Ok(true)
        })
    }

    fn delete_room_policy(&self, room: &str) -> StoreResult<()> {
        self.with(|d| {
            d.policies.remove(room);
            Ok(())
        })
    }

    fn add_announcement(&self, by: &str, text: &str, at_ms: i64) -> StoreResult<Announcement> {
        self.with(|d| {
            d.last_announcement += 1;
            let a = Announcement {
                id: d.last_announcement,
                by: by.to_string(),
                text: text.to_string(),
                at_ms,
            };
            d.announcements.insert(a.id, a.clone());
            let keep_from = a.id.saturating_sub(KEPT_ANNOUNCEMENTS - 1);
            d.announcements = d.announcements.split_off(&keep_from);
            Ok(a)
        })
    }

    fn announcements_after(&self, after: u64, limit: usize) -> StoreResult<Vec<Announcement>> {
        self.with(|d| {
            let newer = d.announcements.range(after.saturating_add(1)..);
            Ok(newer.take(limit).map(|(_, a)| a.clone()).collect())
        })
    }
}
