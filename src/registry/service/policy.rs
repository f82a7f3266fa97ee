//! A room's policy: who owns it, its operators, bans, invites, lock and
//! password, in join order. Pure data and rules, no store: `roles.rs`
//! reads and writes it (as JSON, compare-and-swap on its version).

use crate::protocol::{KickInfo, Role};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Most kick notices kept per room (the oldest names go first).
const MAX_NOTICES: usize = 200;
/// Most bans or invites kept per room.
pub const MAX_LISTED: usize = 1000;

/// What the registry knows of a room beyond its members and key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub ops: BTreeSet<String>,
    #[serde(default)]
    pub bans: BTreeSet<String>,
    #[serde(default)]
    pub invites: BTreeSet<String>,
    #[serde(default)]
    pub locked: bool,
    /// Argon2id PHC string, like account passwords.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Members, longest present first.
    #[serde(default)]
    pub joined: Vec<String>,
    /// Users taken out by a kick or ban, told so at their next `members`.
    #[serde(default)]
    pub kicked: BTreeMap<String, KickInfo>,
}

impl Policy {
    /// A new room's: `creator` owns it.
    pub fn created(creator: &str, password_hash: Option<String>) -> Policy {
        Policy {
            owner: Some(creator.to_string()),
            joined: vec![creator.to_string()],
            password_hash,
            ..Policy::default()
        }
    }

    pub fn role(&self, user: &str) -> Option<Role> {
        if self.owner.as_deref() == Some(user) {
            Some(Role::Owner)
        } else if self.ops.contains(user) {
            Some(Role::Operator)
        } else {
            None
        }
    }

    /// 2 the owner, 1 an operator, 0 anyone else.
    pub fn rank(&self, user: &str) -> u8 {
        match self.role(user) {
            Some(Role::Owner) => 2,
            Some(Role::Operator) => 1,
            None => 0,
        }
    }

    /// The owner and operators, for replies.
    pub fn roles(&self) -> BTreeMap<String, Role> {
        let mut out: BTreeMap<String, Role> = self
            .ops
            .iter()
            .map(|u| (u.clone(), Role::Operator))
            .collect();
        if let Some(o) = &self.owner {
            out.insert(o.clone(), Role::Owner);
        }
        out
    }

    /// Brings the policy in line with the room's actual `members` (sorted):
    /// the join order keeps only members, and members it lacks (rooms made
    /// before roles existed, or a write that failed half-way) go at its end
    /// in name order; operators are members; a room without a present
    /// owner gets one. True if anything changed.
    pub fn reconcile(&mut self, members: &[String]) -> bool {
        let before = self.clone();
        self.joined.retain(|u| members.binary_search(u).is_ok());
        for m in members {
            if !self.joined.contains(m) {
                self.joined.push(m.clone());
            }
        }
        self.ops.retain(|u| members.binary_search(u).is_ok());
        if self
            .owner
            .as_ref()
            .is_none_or(|o| members.binary_search(o).is_err())
        {
            self.owner = None;
            self.pass_ownership();
        }
        *self != before
    }

    /// `user` is no longer a member: out of the join order and the
    /// operators; if it owned the room, ownership passes on.
    pub fn removed(&mut self, user: &str) {
        self.joined.retain(|u| u != user);
        self.ops.remove(user);
        if self.owner.as_deref() == Some(user) {
            self.owner = None;
            self.pass_ownership();
        }
    }

    /// `user` joined: at the end of the join order, its invite used up and
    /// any kick notice forgotten.
    pub fn added(&mut self, user: &str) {
        if !self.joined.iter().any(|u| u == user) {
            self.joined.push(user.to_string());
        }
        self.invites.remove(user);
        self.kicked.remove(user);
        if self.owner.is_none() {
            self.pass_ownership();
        }
    }

    /// The longest-present operator becomes owner, else the longest-present
    /// member, else nobody (the room is empty).
    fn pass_ownership(&mut self) {
        let next = self
            .joined
            .iter()
            .find(|u| self.ops.contains(*u))
            .or_else(|| self.joined.first())
            .cloned();
        if let Some(n) = &next {
            self.ops.remove(n);
        }
        self.owner = next;
    }

    /// Records why `user` was taken out (bounded).
    pub fn notice(&mut self, user: &str, info: KickInfo) {
        if self.kicked.len() >= MAX_NOTICES && !self.kicked.contains_key(user) {
            if let Some(first) = self.kicked.keys().next().cloned() {
                self.kicked.remove(&first);
            }
        }
        self.kicked.insert(user.to_string(), info);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ownership_passes_to_an_operator_first_then_the_longest_present() {
        let mut p = Policy::created("amy", None);
        for u in ["bob", "cid", "dan"] {
            p.added(u);
        }
        p.ops.insert("cid".into());
        p.removed("amy");
        assert_eq!(p.owner.as_deref(), Some("cid"));
        assert!(
            p.ops.is_empty(),
            "the new owner is no longer listed as operator"
        );
        p.removed("cid");
        assert_eq!(p.owner.as_deref(), Some("bob"));
        p.removed("bob");
        p.removed("dan");
        assert_eq!(p.owner, None);
    }

    #[test]
    fn a_room_without_a_policy_gets_its_first_member_by_name_as_owner() {
        let mut p = Policy::default();
        assert!(p.reconcile(&names(&["bob", "zed"])));
        assert_eq!(p.owner.as_deref(), Some("bob"));
        assert_eq!(p.joined, names(&["bob", "zed"]));
        assert!(!p.reconcile(&names(&["bob", "zed"])), "stable");
        // The owner's membership vanished behind our back: it passes on.
        assert!(p.reconcile(&names(&["zed"])));
        assert_eq!(p.owner.as_deref(), Some("zed"));
    }

    #[test]
    fn ranks_and_roles() {
        let mut p = Policy::created("amy", None);
        p.added("bob");
        p.added("cid");
        p.ops.insert("bob".into());
        assert_eq!((p.rank("amy"), p.rank("bob"), p.rank("cid")), (2, 1, 0));
        let roles = p.roles();
        assert_eq!(roles.get("amy"), Some(&Role::Owner));
        assert_eq!(roles.get("bob"), Some(&Role::Operator));
        assert_eq!(roles.get("cid"), None);
    }

    #[test]
    fn joining_uses_the_invite_and_clears_the_notice() {
        let mut p = Policy::created("amy", None);
        p.invites.insert("bob".into());
        let info = KickInfo {
            by: "amy".into(),
            reason: "spam".into(),
            banned: false,
        };
        p.notice("bob", info);
        p.added("bob");
        assert!(p.invites.is_empty() && p.kicked.is_empty());
    }

    #[test]
    fn notices_are_bounded() {
        let mut p = Policy::default();
        for i in 0..MAX_NOTICES + 50 {
            let info = KickInfo {
                by: "amy".into(),
                reason: String::new(),
                banned: false,
            };
            p.notice(&format!("u{i:04}"), info);
        }
        assert_eq!(p.kicked.len(), MAX_NOTICES);
    }
}
