//! Who still owes an acknowledgement of one of our messages, and of how
//! many fragments: a count per member, kept by the member's slot in the
//! room (a small number given to each name once, [`Slots`]) instead of
//! in a map keyed by name. An acknowledgement of a run of seqs then costs
//! one name lookup, not one per message; saying a message copies no names.

use std::collections::HashMap;

/// A small number per member name of a room, given once and kept (a
/// member that leaves and comes back has the same one).
pub(super) type Slots = HashMap<String, usize, foldhash::fast::RandomState>;

/// `name`'s slot, given now if it had none.
pub(super) fn slot(slots: &mut Slots, name: &str) -> usize {
    if let Some(&s) = slots.get(name) {
        return s;
    }
    let s = slots.len();
    slots.insert(name.to_string(), s);
    s
}

/// Fragments each addressee has still to acknowledge, by slot (0: none
/// left, or not an addressee).
#[derive(Debug, Default)]
pub(super) struct Owed {
    left: Vec<u16>,
    count: usize,
}

impl Owed {
    /// Each of `slots` owes `frags` (at least 1) fragments.
    pub fn new(slots: impl IntoIterator<Item = usize>, frags: u16) -> Owed {
        let mut owed = Owed::default();
        for s in slots {
            if owed.left.len() <= s {
                owed.left.resize(s + 1, 0);
            }
            if owed.left[s] == 0 && frags > 0 {
                owed.count += 1;
            }
            owed.left[s] = frags;
        }
        owed
    }

    /// How many addressees have not acknowledged it all.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The member at `slot` no longer counts; whether it did.
    pub fn remove(&mut self, slot: Option<usize>) -> bool {
        match slot.and_then(|s| self.left.get_mut(s)) {
            Some(left) if *left > 0 => {
                *left = 0;
                self.count -= 1;
                true
            }
            _ => false,
        }
    }

    /// The member at `slot` acknowledged one more fragment: true when that
    /// was its last (it no longer counts).
    pub fn acked(&mut self, slot: usize) -> bool {
        match self.left.get_mut(slot) {
            Some(left) if *left > 0 => {
                *left -= 1;
                if *left == 0 {
                    self.count -= 1;
                }
                *left == 0
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_addressees_until_each_has_acknowledged_every_fragment() {
        let mut slots = Slots::default();
        let (a, b, c) = (
            slot(&mut slots, "a"),
            slot(&mut slots, "b"),
            slot(&mut slots, "c"),
        );
        assert_eq!(slot(&mut slots, "b"), b);
        let mut o = Owed::new([a, c], 2);
        assert_eq!(o.len(), 2);
        assert!(!o.acked(b), "not an addressee");
        assert!(!o.acked(a));
        assert!(o.acked(a));
        assert!(!o.acked(a), "done already");
        assert_eq!(o.len(), 1);
        assert!(!o.remove(Some(b)));
        assert!(!o.remove(None));
        assert!(o.remove(Some(c)));
        assert!(o.is_empty());
        assert!(!o.acked(99));
    }
}
