//! The members of a room we send to and hear from, by name: kept in name
//! order (sends, liveness rounds and lists go in that order, as they did
//! from an ordered map) with a hashed index beside it, so that the several
//! lookups each datagram makes cost a hash each instead of a walk of an
//! ordered map's string comparisons. Members come and go rarely; lookups
//! are per datagram.

use super::engine::{ByName, Member};

#[derive(Default)]
pub(super) struct Members {
    /// Sorted by name.
    entries: Vec<(String, Member)>,
    /// Each name's place in `entries`.
    index: ByName<usize>,
}

impl Members {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    pub fn get(&self, name: &str) -> Option<&Member> {
        self.index.get(name).map(|&i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Member> {
        self.index.get(name).map(|&i| &mut self.entries[i].1)
    }

    /// Adds or replaces `name`'s entry; returns the one replaced.
    pub fn insert(&mut self, name: String, m: Member) -> Option<Member> {
        if let Some(&i) = self.index.get(&name) {
            return Some(std::mem::replace(&mut self.entries[i].1, m));
        }
        let at = self.entries.partition_point(|(n, _)| *n < name);
        self.index.insert(name.clone(), at);
        self.entries.insert(at, (name, m));
        self.reindex(at + 1);
        None
    }

    pub fn remove(&mut self, name: &str) -> Option<Member> {
        let at = self.index.remove(name)?;
        let (_, m) = self.entries.remove(at);
        self.reindex(at);
        Some(m)
    }

    /// Entries from `from` on moved: their places are said again.
    fn reindex(&mut self, from: usize) {
        for (i, (n, _)) in self.entries.iter().enumerate().skip(from) {
            if let Some(at) = self.index.get_mut(n.as_str()) {
                *at = i;
            }
        }
    }

    /// In name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Member)> {
        self.entries.iter().map(|(n, m)| (n, m))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut Member)> {
        self.entries.iter_mut().map(|(n, m)| (&*n, m))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(n, _)| n)
    }

    pub fn values(&self) -> impl Iterator<Item = &Member> {
        self.entries.iter().map(|(_, m)| m)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Member> {
        self.entries.iter_mut().map(|(_, m)| m)
    }

    /// Every member once, in name order from the first after `name`
    /// (around to `name` itself last, if it is one).
    pub fn after(&self, name: &str) -> impl Iterator<Item = (&String, &Member)> {
        let at = self.entries.partition_point(|(n, _)| n.as_str() <= name);
        let (upto, rest) = self.entries.split_at(at);
        rest.iter().chain(upto).map(|(n, m)| (n, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::rooms::Engine;
    use std::net::SocketAddr;
    use std::time::Instant;

    fn member(port: u16) -> Member {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Engine::new_member(addr, 0, Instant::now())
    }

    #[test]
    fn kept_in_name_order_and_found_by_name() {
        let mut ms = Members::default();
        for (n, p) in [("carol", 3), ("alice", 1), ("dave", 4), ("bob", 2)] {
            assert!(ms.insert(n.to_string(), member(p)).is_none());
        }
        assert!(ms.insert("bob".to_string(), member(22)).is_some());
        let names = |ms: &Members| ms.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&ms), ["alice", "bob", "carol", "dave"]);
        assert_eq!(ms.get("bob").map(|m| m.addr.port()), Some(22));
        assert!(ms.remove("bob").is_some());
        assert!(ms.remove("bob").is_none());
        assert_eq!(names(&ms), ["alice", "carol", "dave"]);
        for (n, p) in [("alice", 1), ("carol", 3), ("dave", 4)] {
            assert_eq!(ms.get(n).map(|m| m.addr.port()), Some(p), "{n}");
        }
        assert!(!ms.contains_key("bob"));
        let order = |from: &str| ms.after(from).map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(order("alice"), ["carol", "dave", "alice"]);
        assert_eq!(order("bob"), ["carol", "dave", "alice"]);
        assert_eq!(order(""), ["alice", "carol", "dave"]);
        assert_eq!(order("zed"), ["alice", "carol", "dave"]);
    }
}
