//! A [`Store`] that counts the calls made to each method of the store it
//! wraps: every call is one request to the database (one round trip on
//! MongoDB), so the counts show what each registry operation costs. The
//! service tests assert them per operation, so they cannot creep back up.

use super::*;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Wraps a store and counts calls per method name. Clones share the counts.
#[derive(Clone)]
pub struct CountingStore {
    inner: Arc<dyn Store>,
    counts: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn Store>) -> CountingStore {
        CountingStore {
            inner,
            counts: Arc::default(),
        }
    }

    /// The counts since the last call (method name to calls), and zero again.
    pub fn take(&self) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut *self.counts.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn n(&self, method: &'static str) -> &dyn Store {
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(method)
            .or_default() += 1;
        &*self.inner
    }
}

impl Store for CountingStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn ping(&self) -> StoreResult<()> {
        self.n("ping").ping()
    }
    fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        self.n("create_user").create_user(user)
    }
    fn find_user(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        self.n("find_user").find_user(username)
    }
    fn find_user_with_session(
        &self,
        username: &str,
    ) -> StoreResult<Option<(UserRecord, Option<SessionRecord>)>> {
        self.n("find_user_with_session")
            .find_user_with_session(username)
    }
    fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        self.n("insert_session").insert_session(session)
    }
    fn session_by_token(&self, token_hash: &str) -> StoreResult<Option<SessionRecord>> {
        self.n("session_by_token").session_by_token(token_hash)
    }
    fn session_by_user(&self, username: &str) -> StoreResult<Option<SessionRecord>> {
        self.n("session_by_user").session_by_user(username)
    }
    fn delete_session(&self, token_hash: &str) -> StoreResult<bool> {
        self.n("delete_session").delete_session(token_hash)
    }
    fn attach_session(
        &self,
        token_hash: &str,
        endpoint: &Endpoint,
        instance: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        self.n("attach_session")
            .attach_session(token_hash, endpoint, instance, now_ms)
    }
    fn detach_session(&self, token_hash: &str, instance: &str) -> StoreResult<bool> {
        self.n("detach_session")
            .detach_session(token_hash, instance)
    }
    fn detach_if_stale(&self, token_hash: &str, stale_before_ms: i64) -> StoreResult<bool> {
        self.n("detach_if_stale")
            .detach_if_stale(token_hash, stale_before_ms)
    }
    fn detach_instance(&self, instance: &str) -> StoreResult<Vec<SessionRecord>> {
        self.n("detach_instance").detach_instance(instance)
    }
    fn touch_sessions(&self, token_hashes: &[String], now_ms: i64) -> StoreResult<u64> {
        self.n("touch_sessions")
            .touch_sessions(token_hashes, now_ms)
    }
    fn online_sessions(&self, fresh_since_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        self.n("online_sessions").online_sessions(fresh_since_ms)
    }
    fn online_page(&self, q: &OnlineQuery<'_>) -> StoreResult<OnlinePage> {
        self.n("online_page").online_page(q)
    }
    fn stale_sessions(&self, stale_before_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        self.n("stale_sessions").stale_sessions(stale_before_ms)
    }
    fn purge_sessions(&self, before_ms: i64) -> StoreResult<u64> {
        self.n("purge_sessions").purge_sessions(before_ms)
    }
    fn create_room(&self, room: &RoomRecord, creator: &str) -> StoreResult<()> {
        self.n("create_room").create_room(room, creator)
    }
    fn find_room(&self, name: &str) -> StoreResult<Option<RoomRecord>> {
        self.n("find_room").find_room(name)
    }
    fn add_member(&self, room: &str, username: &str) -> StoreResult<()> {
        self.n("add_member").add_member(room, username)
    }
    fn remove_member(&self, room: &str, username: &str, new_key: &str) -> StoreResult<Left> {
        self.n("remove_member")
            .remove_member(room, username, new_key)
    }
    fn swap_room_key(&self, room: &str, epoch: u64, old: &str, new: &str) -> StoreResult<bool> {
        self.n("swap_room_key").swap_room_key(room, epoch, old, new)
    }
    fn room_members(&self, room: &str) -> StoreResult<Vec<String>> {
        self.n("room_members").room_members(room)
    }
    fn members_with_sessions(
        &self,
        room: &str,
    ) -> StoreResult<Vec<(String, Option<SessionRecord>)>> {
        self.n("members_with_sessions").members_with_sessions(room)
    }
    fn list_rooms(&self) -> StoreResult<Vec<RoomListing>> {
        self.n("list_rooms").list_rooms()
    }
    fn set_topic(&self, room: &str, by: &str, text: &str) -> StoreResult<bool> {
        self.n("set_topic").set_topic(room, by, text)
    }
    fn set_away(&self, token_hash: &str, away: &str) -> StoreResult<bool> {
        self.n("set_away").set_away(token_hash, away)
    }
    fn rooms_of(&self, username: &str) -> StoreResult<Vec<String>> {
        self.n("rooms_of").rooms_of(username)
    }
    fn room_policy(&self, room: &str) -> StoreResult<Option<(String, u64)>> {
        self.n("room_policy").room_policy(room)
    }
    fn put_room_policy(&self, room: &str, doc: &str, expected: u64) -> StoreResult<bool> {
        self.n("put_room_policy")
            .put_room_policy(room, doc, expected)
    }
    fn delete_room_policy(&self, room: &str) -> StoreResult<()> {
        self.n("delete_room_policy").delete_room_policy(room)
    }
    fn add_announcement(&self, by: &str, text: &str, at_ms: i64) -> StoreResult<Announcement> {
        self.n("add_announcement").add_announcement(by, text, at_ms)
    }
    fn announcements_after(&self, after: u64, limit: usize) -> StoreResult<Vec<Announcement>> {
        self.n("announcements_after")
            .announcements_after(after, limit)
    }
}
