//! `room_key`: a member hands over the current epoch's room key, sealed to
//! each member (`protocol::roomkey`). The registry keeps, per room and for
//! the current epoch only, who made the key and the sealed packages
//! ([`RoomKeys`] in the room's `key` field); it cannot open them. A leave
//! (or a session ending, a kick, a ban) moves the room to the next epoch and
//! clears them, and the members make a new key.

use super::{api, no_such_room, ConnSession, Registry};
use crate::protocol::roomkey::SEALED_LEN;
use crate::protocol::*;
use crate::registry::store::roomkeys::RoomKeys;
use crate::registry::store::RoomRecord;
use std::collections::BTreeMap;

/// How many times a `room_key` re-reads and retries when another write to
/// the room's keys came between its read and its compare-and-swap.
const ATTEMPTS: usize = 8;

/// A package as the wire carries it: `2 * SEALED_LEN` hex digits, either case.
fn is_package(p: &str) -> bool {
    p.len() == 2 * SEALED_LEN && p.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Registry {
    /// Stores `packages` (username -> sealed key) for `room` at `epoch`,
    /// making the caller the epoch's key maker if it has none; replies with
    /// the room as `members` does.
    pub(super) fn room_key(
        &self,
        me: &ConnSession,
        room: &str,
        epoch: u64,
        packages: BTreeMap<String, String>,
    ) -> Result<ReplyBody, ApiError> {
        RoomName::parse(room)?;
        if let Some((user, _)) = packages.iter().find(|(_, p)| !is_package(p)) {
            return Err(api(
                ErrorCode::BadRequest,
                format!(
                    "the package for {user:?} must be {} hex digits",
                    2 * SEALED_LEN
                ),
            ));
        }
        for _ in 0..ATTEMPTS {
            let record = self
                .store
                .find_room(room)?
                .ok_or_else(|| no_such_room(room))?;
            let members = self.store.members_with_sessions(room)?;
            if !members.iter().any(|(u, _)| *u == me.username) {
                return Err(api(
                    ErrorCode::NotAMember,
                    format!("you are not in room {room}"),
                ));
            }
            if record.epoch != epoch {
                return Err(stale(room, record.epoch));
            }
            let mut keys = RoomKeys::parse(&record.key);
            match &keys.maker {
                Some(maker) if *maker != me.username => {
                    return Err(api(
                        ErrorCode::KeyExists,
                        format!("{maker} made the key of room {room} for epoch {epoch}"),
                    ))
                }
                _ => keys.maker = Some(me.username.clone()),
            }
            for (user, p) in &packages {
                // Only current members: a package for anyone else is dropped.
                if members.iter().any(|(u, _)| u == user) {
                    keys.sealed.insert(user.clone(), p.to_ascii_lowercase());
                }
            }
            let new = keys.encode();
            if new == record.key || self.store.swap_room_key(room, epoch, &record.key, &new)? {
                if new != record.key {
                    log::info!("{} set keys of room {room} epoch {epoch}", me.username);
                }
                let record = RoomRecord { key: new, ..record };
                return self.room_reply_from(record, true, members, &me.username, None);
            }
            // Another write came first (a package, a leave): read again.
        }
        Err(api(
            ErrorCode::ServerBusy,
            format!("the keys of room {room} keep changing; try again"),
        ))
    }
}

fn stale(room: &str, current: u64) -> ApiError {
    api(
        ErrorCode::StaleEpoch,
        format!("room {room} is at key epoch {current}"),
    )
}

/// The key fields of a member's `RoomInfo`: the maker, the caller's own
/// package, and the members (as shown, in order) who have identity keys
/// but no package yet (all of them while there is no maker).
pub(super) fn key_fields(
    stored: &str,
    caller: &str,
    members: &[UserInfo],
) -> (Option<String>, Option<String>, Vec<String>) {
    let keys = RoomKeys::parse(stored);
    let needs = members
        .iter()
        .filter(|m| m.keys.is_some())
        .filter(|m| keys.maker.is_none() || !keys.sealed.contains_key(&m.username))
        .map(|m| m.username.clone())
        .collect();
    let package = keys.sealed.get(caller).cloned();
    (keys.maker, package, needs)
}
