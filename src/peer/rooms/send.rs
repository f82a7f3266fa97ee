//! Sending: a text (fragmented) or a control item (join, leave) goes down
//! our one stream to the room, sealed once and sent to every member whose
//! window has room (the others get it when their acknowledgements open
//! it); acknowledgements from members, repairs and SYNCs; and each
//! message's delivery report.

use super::engine::{Engine, OutMsg};
use super::event::{Event, SayError};
use super::flow::OUTBOX_MAX;
use super::stream::{Item, Report};
use super::timers::arm_member;
use crate::protocol::datagram::{self as wire, Body, Datagram, EventKind};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// SYNCs to one member at most this often.
const SYNC_SPACING: Duration = Duration::from_millis(20);

pub(super) fn text_items(text: &str, msg_id: u64) -> Vec<Item> {
    let bytes = text.as_bytes();
    let chunks: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[][..]]
    } else {
        bytes.chunks(wire::FRAGMENT_BYTES).collect()
    };
    let frags = chunks.len() as u16;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| Item {
            event: EventKind::Text,
            msg_id,
            frag: i as u16,
            frags,
            bytes: c.to_vec(),
            late: false,
        })
        .collect()
}

pub(super) fn control_item(event: EventKind) -> Item {
    Item {
        event,
        msg_id: 0,
        frag: 0,
        frags: 1,
        bytes: Vec::new(),
        late: false,
    }
}

impl Engine {
    /// Sends a text to every member of `room`; returns its message id (our
    /// own copy comes back as an [`Event::Message`] with `own` set).
    pub fn say(&mut self, now: Instant, room: &str, text: &str) -> Result<u64, SayError> {
        if !self.is_member(room) {
            return Err(SayError::NotMember);
        }
        if text.len() > wire::MAX_MESSAGE {
            return Err(SayError::TooLong { len: text.len() });
        }
        let me = self.me.clone();
        let Some(r) = self.rooms.get_mut(room) else {
            return Err(SayError::NotMember);
        };
        let id = r.next_msg;
        r.next_msg += 1;
        let items = text_items(text, id);
        let slots = &mut r.slots;
        let members: Vec<usize> = r
            .members
            .keys()
            .map(|m| super::owed::slot(slots, m))
            .collect();
        // The registry lists members we cannot reach right now (silent, or
        // we are cut off): they are addressees too, and did not get it.
        let cut_off: Vec<String> = r
            .listed
            .keys()
            .filter(|u| !r.members.contains_key(u) && !r.departed.contains_key(*u))
            .cloned()
            .collect();
        r.out.insert(
            id,
            OutMsg {
                total: members.len() + cut_off.len(),
                remaining: super::owed::Owed::new(members, items.len() as u16),
                failed: cut_off,
                sent_at: now,
                progress_shown: false,
            },
        );
        self.emit(Event::Message {
            from: me,
            room: room.to_string(),
            text: text.to_string(),
            id,
            own: true,
            late: false,
        });
        self.run_said(room, id, now);
        for item in items {
            self.push_item(room, item, now);
        }
        self.check_done(room, id);
        Ok(id)
    }

    /// Appends an item to our stream in `room` and sends it to every
    /// member whose window lets it through.
    pub(super) fn push_item(&mut self, room: &str, item: Item, now: Instant) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let seq = r.tx.push(item);
        let to: Vec<String> = r
            .members
            .iter()
            .filter(|(_, m)| m.flow.may_send(seq))
            .map(|(n, _)| n.clone())
            .collect();
        if !to.is_empty() {
            self.send_seq(room, seq, &to, false, now);
        }
        self.enforce_outbox(room, now);
    }

    /// The sealed bytes of `seq` under the room's current key (sealed once
    /// per epoch).
    fn sealed(&mut self, room: &str, seq: u64) -> Option<Vec<u8>> {
        {
            let r = self.rooms.get(room).filter(|r| !r.stale)?;
            let sent = r.tx.buf.get(&seq)?;
            if let Some((epoch, bytes)) = &sent.sealed {
                if *epoch == r.key.epoch {
                    return Some(bytes.clone());
                }
            }
        }
        // Only a fresh seal draws a nonce.
        let nonce = self.nonce();
        let me = self.me.clone();
        let r = self.rooms.get_mut(room)?;
        let key = r.key;
        let stream = r.tx.id;
        let sent = r.tx.buf.get_mut(&seq)?;
        let item = &sent.item;
        let dg = Datagram {
            room: room.to_string(),
            from: me,
            body: Body::Data {
                stream,
                seq,
                event: item.event,
                msg_id: item.msg_id,
                frag: item.frag,
                frags: item.frags,
                bytes: item.bytes.clone(),
            },
        };
        let bytes = dg.encode(&key, &nonce, self.auth.as_ref());
        sent.sealed = Some((key.epoch, bytes.clone()));
        Some(bytes)
    }

    /// Sends `seq` to each of `to` (the same bytes to all). The first time
    /// `seq` goes to anyone it also goes to the room's multicast group, if
    /// any, and so to every member that hears the group, whatever its
    /// window (the group goes at the pace of the members' fastest window,
    /// and a slower one gets repairs, unicast, at its own); what went to
    /// the group is not sent again to a member that hears it.
    fn send_seq(&mut self, room: &str, seq: u64, to: &[String], retransmit: bool, now: Instant) {
        let Some(bytes) = self.sealed(room, seq) else {
            return;
        };
        let group = self
            .multicast
            .filter(|_| !retransmit)
            .map(|port| super::group::group_of(room, port));
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let timers = &mut self.timers;
        let mut addrs = Vec::with_capacity(to.len() + 1);
        if let Some(g) = group.filter(|_| seq > r.group_upto) {
            r.group_upto = seq;
            self.stats.group_out += 1;
            addrs.push(g);
            for (name, m) in r.members.iter_mut().filter(|(_, m)| m.hears_group) {
                for s in m.flow.sent_upto + 1..=seq {
                    m.flow.sent(s, now);
                }
                m.last_sent = now;
                arm_member(timers, room, name, m);
            }
        }
        for name in to {
            let Some(m) = r.members.get_mut(name) else {
                continue;
            };
            if group.is_some() && m.hears_group {
                // Went to the group, now or before.
                if m.flow.sent_upto < seq {
                    m.flow.sent(seq, now);
                    m.last_sent = now;
                    arm_member(timers, room, name, m);
                }
                continue;
            }
            if !retransmit {
                m.flow.sent(seq, now);
            }
            m.last_sent = now;
            addrs.push(m.addr);
            arm_member(timers, room, name, m);
        }
        if retransmit {
            self.stats.retransmits += addrs.len() as u64;
        }
        self.stats.datagrams_out += addrs.len() as u64;
        for addr in addrs {
            self.injector.send(addr, bytes.clone(), now);
        }
    }

    /// Sends member `user` what its window and its repairs allow now.
    pub(super) fn pump(&mut self, room: &str, user: &str, now: Instant) {
        if self.hold_for_notice(room, user, now) {
            return;
        }
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let last = r.tx.last();
        let Some(m) = r.members.get_mut(user) else {
            return;
        };
        let retx = m.flow.due(now);
        let fresh = m.flow.sent_upto + 1..=last.min(m.flow.window_end());
        self.arm_flow(room, user);
        let who = [user.to_string()];
        for seq in retx {
            self.send_seq(room, seq, &who, true, now);
        }
        for seq in fresh {
            self.send_seq(room, seq, &who, false, now);
        }
    }

    /// Queues one unsequenced datagram (ack, ping, sync) to member `to`.
    pub(super) fn control(&mut self, room: &str, to: &str, body: Body, now: Instant) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let Some(m) = r.members.get_mut(to) else {
            return;
        };
        m.last_sent = now;
        let addr = m.addr;
        self.control_to(room, addr, body, now);
    }

    /// Queues one unsequenced datagram to `addr`, member or not.
    pub(super) fn control_to(
        &mut self,
        room: &str,
        addr: std::net::SocketAddr,
        body: Body,
        now: Instant,
    ) {
        let Some(key) = self.rooms.get(room).filter(|r| !r.stale).map(|r| r.key) else {
            return;
        };
        let dg = Datagram {
            room: room.to_string(),
            from: self.me.clone(),
            body,
        };
        self.stats.datagrams_out += 1;
        let nonce = self.nonce();
        let bytes = dg.encode(&key, &nonce, self.auth.as_ref());
        self.injector.send(addr, bytes, now);
    }

    /// Member `from`'s acknowledgement of our stream `stream` (`group`: it
    /// hears our copies to the room's group).
    pub(super) fn on_ack(
        &mut self,
        room: &str,
        from: &str,
        (stream, group): (u64, bool),
        report: Report,
        now: Instant,
    ) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if stream != r.tx.id {
            return;
        }
        let tx_id = r.tx.id;
        let Some(m) = r.members.get_mut(from) else {
            return;
        };
        m.hears_group = group;
        // It does not know where our stream starts for it, or is behind
        // where we let it in: tell it.
        if report.unsynced || report.cum < m.flow.acked {
            if m.flow
                .synced_at
                .is_none_or(|t| now.saturating_duration_since(t) >= SYNC_SPACING)
            {
                m.flow.synced_at = Some(now);
                let sync = Body::Sync {
                    to: from.to_string(),
                    stream: tx_id,
                    next: m.flow.acked + 1,
                };
                self.control(room, from, sync, now);
            }
            if report.unsynced {
                return;
            }
        }
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let Some(m) = r.members.get_mut(from) else {
            return;
        };
        let acked = m.flow.ack(report.cum, report.high, &report.missing, now);
        let mut touched = BTreeSet::new();
        let slot = r.slots.get(from).copied();
        if let Some(slot) = slot.filter(|_| !acked.is_empty()) {
            for (_, sent) in r.tx.buf.range(acked.clone()) {
                if sent.item.event != EventKind::Text {
                    continue;
                }
                if let Some(o) = r.out.get_mut(&sent.item.msg_id) {
                    if o.remaining.acked(slot) {
                        touched.insert(sent.item.msg_id);
                    }
                }
            }
        }
        if !acked.is_empty() {
            // The outbox's floor moves only when the member at it moves
            // (every member has acknowledged up to just below its first
            // seq): not a scan of the room per acknowledgement.
            let was = acked.start() - 1;
            if r.tx
                .buf
                .first_key_value()
                .is_some_and(|(&first, _)| was < first)
            {
                let last = r.tx.last();
                let floor = self.outbox_floor(room, now);
                if let Some(r) = self.rooms.get_mut(room) {
                    r.tx.trim(floor.unwrap_or(last));
                }
            }
        }
        self.pump(room, from, now);
        for id in touched {
            self.check_done(room, id);
        }
        self.check_left(room);
    }

    /// A room we are leaving is done once every member has our "leave".
    pub(super) fn check_left(&mut self, room: &str) {
        let leave_done = self.rooms.get(room).is_some_and(|r| {
            r.leaving.is_some() && r.members.values().all(|m| m.flow.idle(r.tx.last()))
        });
        if leave_done {
            self.finish_leaving(room);
        }
    }

    /// A member so far behind that the outbox would outgrow
    /// [`OUTBOX_MAX`] is given up on.
    fn enforce_outbox(&mut self, room: &str, now: Instant) {
        let behind: Vec<String> = match self.rooms.get(room) {
            Some(r) if r.tx.buf.len() > OUTBOX_MAX => {
                let floor = r.tx.last().saturating_sub(OUTBOX_MAX as u64);
                r.members
                    .iter()
                    .filter(|(_, m)| m.flow.acked < floor)
                    .map(|(n, _)| n.clone())
                    .collect()
            }
            _ => return,
        };
        for user in behind {
            self.unreachable(room, &user, now);
        }
        if let Some(floor) = self
            .rooms
            .get(room)
            .filter(|r| r.tx.buf.len() > OUTBOX_MAX)
            .map(|r| r.tx.last().saturating_sub(OUTBOX_MAX as u64))
        {
            self.outbox_overflow(room, floor, now);
        }
    }

    /// Reports the final delivery state of message `id` once every member
    /// has acknowledged it or been given up on.
    pub(super) fn check_done(&mut self, room: &str, id: u64) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let Some(o) = r.out.get(&id) else { return };
        if !o.remaining.is_empty() {
            return;
        }
        let Some(o) = r.out.remove(&id) else { return };
        if o.failed.is_empty() {
            self.emit(Event::Delivery {
                room: room.to_string(),
                id,
                acked: o.total,
                total: o.total,
            });
        } else {
            self.emit(Event::DeliveryFailed {
                room: room.to_string(),
                id,
                missing: o.failed,
            });
        }
        self.run_check_end(room);
    }
}
