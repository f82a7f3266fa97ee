//! Room history for latecomers (`protocol.md` section 3, "Room history"),
//! the parts without I/O: the bounded transcript of the texts each room
//! showed, the limit on the history answers each asker gets, and the
//! joiner's bookkeeping while it fetches (whom to ask next, what it showed).
//! The connections are the chat connections' (`peer::chat`); the glue is
//! `app::history`.

use crate::protocol::Address;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// `--room-history`'s default: texts kept per room, and asked for.
pub const DEFAULT_ENTRIES: usize = 100;
/// Bytes of text (and sender names) kept per room at most; the oldest
/// entries go first.
pub const MAX_ROOM_BYTES: usize = 1 << 20;
/// History answers one asker gets per [`ANSWER_WINDOW`] at most.
pub const ANSWERS_PER_WINDOW: usize = 4;
pub const ANSWER_WINDOW: Duration = Duration::from_secs(60);
/// Members a joiner asks at most before it gives up.
pub const MAX_TRIES: usize = 3;
/// A fetch whose member has not finished answering by then is given up
/// (and the next member asked).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// One text a room showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub from: String,
    /// The sender's message id in the room.
    pub id: u64,
    pub text: String,
    /// When it was shown.
    pub at: Instant,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.from.len() + self.text.len()
    }
}

#[derive(Default)]
struct Transcript {
    entries: VecDeque<Entry>,
    bytes: usize,
}

/// The last texts of every room we are in, at most `limit` entries and
/// `max_bytes` per room.
pub struct Transcripts {
    limit: usize,
    max_bytes: usize,
    rooms: HashMap<String, Transcript>,
}

impl Transcripts {
    pub fn new(limit: usize, max_bytes: usize) -> Transcripts {
        Transcripts {
            limit,
            max_bytes,
            rooms: HashMap::new(),
        }
    }

    /// The most entries kept per room (`--room-history`).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Keeps a text `room` showed, evicting the oldest beyond the bounds.
    pub fn record(&mut self, room: &str, entry: Entry) {
        if self.limit == 0 || entry.bytes() > self.max_bytes {
            return;
        }
        let t = self.rooms.entry(room.to_string()).or_default();
        t.bytes += entry.bytes();
        t.entries.push_back(entry);
        while t.entries.len() > self.limit || t.bytes > self.max_bytes {
            match t.entries.pop_front() {
                Some(old) => t.bytes -= old.bytes(),
                None => break,
            }
        }
    }

    /// Forgets every room `keep` says no to (the rooms we left).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.rooms.retain(|room, _| keep(room));
    }

    /// The last `count` entries of `room`, oldest first.
    pub fn last(&self, room: &str, count: usize) -> Vec<&Entry> {
        let Some(t) = self.rooms.get(room) else {
            return Vec::new();
        };
        let skip = t.entries.len().saturating_sub(count);
        t.entries.iter().skip(skip).collect()
    }

    /// The (sender, id) of every entry of `room`.
    pub fn keys(&self, room: &str) -> HashSet<(String, u64)> {
        self.rooms
            .get(room)
            .map(|t| t.entries.iter().map(|e| (e.from.clone(), e.id)).collect())
            .unwrap_or_default()
    }

    /// Entries and bytes kept for `room`.
    pub fn size(&self, room: &str) -> (usize, usize) {
        self.rooms
            .get(room)
            .map_or((0, 0), |t| (t.entries.len(), t.bytes))
    }
}

/// At most [`ANSWERS_PER_WINDOW`] answers per asker per [`ANSWER_WINDOW`].
#[derive(Default)]
pub struct AnswerLimit {
    asked: HashMap<String, VecDeque<Instant>>,
}

impl AnswerLimit {
    /// Whether `who` may have an answer now (and counts it if so).
    pub fn allow(&mut self, who: &str, now: Instant) -> bool {
        self.asked.retain(|_, times| {
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= ANSWER_WINDOW)
            {
                times.pop_front();
            }
            !times.is_empty()
        });
        let times = self.asked.entry(who.to_string()).or_default();
        if times.len() >= ANSWERS_PER_WINDOW {
            return false;
        }
        times.push_back(now);
        true
    }
}

/// A member to ask: its name, address and the Noise static key the
/// registry vouches for it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub user: String,
    pub addr: Address,
    pub key: [u8; 32],
}

/// A joiner's fetch of one room's history.
pub struct Fetch {
    pub room: String,
    pub count: u32,
    /// Members still to ask, in the registry's order.
    pub candidates: VecDeque<Candidate>,
    pub tries: usize,
    /// The member being asked, and its connection once dialled.
    pub via: Option<String>,
    pub conn: Option<u64>,
    /// Since when the current member is being asked.
    pub since: Instant,
    /// (sender, id) shown in the room since we joined: not shown again.
    pub seen: HashSet<(String, u64)>,
    /// Entries shown from the current member.
    pub shown: u32,
    /// Entries received from the current member (shown or not).
    pub got: u32,
    /// The current member's answer has begun (its header is shown).
    pub started: bool,
    /// Why the last member failed.
    pub why: Option<String>,
    /// Asked by `/history #ROOM`, not on joining.
    pub manual: bool,
}

impl Fetch {
    pub fn new(room: String, count: u32, seen: HashSet<(String, u64)>, now: Instant) -> Fetch {
        Fetch {
            room,
            count,
            candidates: VecDeque::new(),
            tries: 0,
            via: None,
            conn: None,
            since: now,
            seen,
            shown: 0,
            got: 0,
            started: false,
            why: None,
            manual: false,
        }
    }

    /// The next member to ask, if any is left and tries remain.
    pub fn next(&mut self, now: Instant) -> Option<Candidate> {
        if self.tries >= MAX_TRIES {
            return None;
        }
        let c = self.candidates.pop_front()?;
        self.tries += 1;
        self.via = Some(c.user.clone());
        self.conn = None;
        self.since = now;
        self.shown = 0;
        self.got = 0;
        self.started = false;
        Some(c)
    }

    /// Whether the current member has had its time.
    pub fn overdue(&self, now: Instant) -> bool {
        now.duration_since(self.since) >= FETCH_TIMEOUT
    }
}

/// A live text is taken for one shown as history (and not shown again)
/// only this long after it, and only with the same text: a copy racing
/// its history copy comes within seconds, while the same sender and id
/// later is a new message (its sender restarted, and counts from 1 again).
pub const SHOWN_FOR: Duration = Duration::from_secs(60);

/// A text shown as history: its fingerprint and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    print: u64,
    at: Instant,
}

impl Shown {
    pub fn new(text: &str, at: Instant) -> Shown {
        Shown {
            print: fingerprint(text),
            at,
        }
    }

    /// Whether `text`, arriving live at `now` with this one's sender and
    /// id, is the same message (not to be shown again).
    pub fn is_copy(&self, text: &str, now: Instant) -> bool {
        self.print == fingerprint(text) && now.saturating_duration_since(self.at) < SHOWN_FOR
    }
}

fn fingerprint(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(from: &str, id: u64, text: &str, at: Instant) -> Entry {
        Entry {
            from: from.into(),
            id,
            text: text.into(),
            at,
        }
    }

    #[test]
    fn keeps_the_last_n_entries() {
        let now = Instant::now();
        let mut t = Transcripts::new(100, MAX_ROOM_BYTES);
        for i in 1..=120 {
            t.record("lab", entry("alice", i, &format!("m{i}"), now));
        }
        let last = t.last("lab", 1000);
        assert_eq!(last.len(), 100);
        assert_eq!(last[0].id, 21);
        assert_eq!(last[99].id, 120);
        let ten: Vec<u64> = t.last("lab", 10).iter().map(|e| e.id).collect();
        assert_eq!(ten, (111..=120).collect::<Vec<_>>());
        // "alice" and "m21".."m99" (79 of 3 bytes), "m100".."m120" (21 of 4).
        assert_eq!(t.size("lab"), (100, 100 * 5 + 79 * 3 + 21 * 4));
        assert!(t.last("other", 10).is_empty());
    }

    #[test]
    fn keeps_at_most_max_bytes() {
        let now = Instant::now();
        let mut t = Transcripts::new(100, 1000);
        let text = "x".repeat(295);
        for i in 1..=10 {
            t.record("lab", entry("bobby", i, &text, now));
        }
        // 300 bytes an entry: three fit in 1000.
        assert_eq!(t.size("lab"), (3, 900));
        let ids: Vec<u64> = t.last("lab", 100).iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![8, 9, 10]);
        // One bigger than the whole cap is not kept, and evicts nothing.
        t.record("lab", entry("bobby", 11, &"y".repeat(1000), now));
        assert_eq!(t.size("lab"), (3, 900));
    }

    #[test]
    fn zero_keeps_nothing_and_leaving_forgets() {
        let now = Instant::now();
        let mut none = Transcripts::new(0, MAX_ROOM_BYTES);
        none.record("lab", entry("alice", 1, "hi", now));
        assert_eq!(none.size("lab"), (0, 0));
        let mut t = Transcripts::new(5, MAX_ROOM_BYTES);
        t.record("lab", entry("alice", 1, "hi", now));
        t.record("den", entry("alice", 1, "hi", now));
        assert!(t.keys("lab").contains(&("alice".to_string(), 1)));
        t.retain(|r| r != "lab");
        assert_eq!(t.size("lab"), (0, 0));
        assert_eq!(t.size("den"), (1, 7));
    }

    #[test]
    fn answers_are_limited_per_asker_per_minute() {
        let now = Instant::now();
        let mut l = AnswerLimit::default();
        for _ in 0..ANSWERS_PER_WINDOW {
            assert!(l.allow("carol", now));
        }
        assert!(!l.allow("carol", now + Duration::from_secs(59)));
        assert!(l.allow("dave", now));
        assert!(l.allow("carol", now + ANSWER_WINDOW));
    }

    #[test]
    fn a_fetch_tries_at_most_three_members() {
        let now = Instant::now();
        let mut f = Fetch::new("lab".into(), 100, HashSet::new(), now);
        for u in ["a", "b", "c", "d"] {
            f.candidates.push_back(Candidate {
                user: u.into(),
                addr: Address {
                    ip: "127.0.0.1".into(),
                    tcp_port: 1,
                    udp_port: 1,
                },
                key: [0; 32],
            });
        }
        let asked: Vec<String> = std::iter::from_fn(|| f.next(now).map(|c| c.user)).collect();
        assert_eq!(asked, vec!["a", "b", "c"]);
        assert!(!f.overdue(now));
        assert!(f.overdue(now + FETCH_TIMEOUT));
    }

    #[test]
    fn a_live_text_is_a_copy_of_a_history_one_only_soon_after_and_with_the_same_text() {
        let t = Instant::now();
        let shown = Shown::new("see you at 10", t);
        assert!(shown.is_copy("see you at 10", t + Duration::from_secs(2)));
        // Its sender restarted and reuses the id for another text.
        assert!(!shown.is_copy("I'm back", t + Duration::from_secs(2)));
        // Long after, even the same text is a new message.
        assert!(!shown.is_copy("see you at 10", t + SHOWN_FOR));
    }
}
