//! Sending: a text fanned out to every member (fragmented, one reliable
//! stream per member), control items (join, leave), acknowledgements from
//! members, and each message's delivery report.

use super::engine::{Engine, OutMsg};
use super::event::{Event, SayError};
use super::stream::{Item, Transmit};
use crate::protocol::datagram::{self as wire, Body, Datagram, EventKind};
use std::time::Instant;

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
        let members: Vec<String> = r.members.keys().cloned().collect();
        // The registry lists members we cannot reach right now (silent, or
        // we are cut off): they are addressees too, and did not get it.
        let cut_off: Vec<String> = r
            .listed
            .keys()
            .filter(|u| !r.members.contains_key(*u) && !r.departed.contains_key(*u))
            .cloned()
            .collect();
        r.out.insert(
            id,
            OutMsg {
                total: members.len() + cut_off.len(),
                remaining: members
                    .iter()
                    .map(|m| (m.clone(), items.len() as u16))
                    .collect(),
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
        });
        for m in &members {
            for item in &items {
                self.push_item(room, m, item.clone(), now);
            }
        }
        self.check_done(room, id);
        Ok(id)
    }

    /// Encodes and queues stream transmissions from us to `to` in `room`.
    pub(super) fn transmit(&mut self, room: &str, to: &str, sends: Vec<Transmit>, now: Instant) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let Some(m) = r.members.get(to) else { return };
        let (key, addr, stream) = (r.key, m.addr, m.tx.id);
        for t in sends {
            if t.retransmit {
                self.stats.retransmits += 1;
            }
            let dg = Datagram {
                room: room.to_string(),
                from: self.me.clone(),
                to: to.to_string(),
                body: Body::Data {
                    stream,
                    seq: t.seq,
                    event: t.item.event,
                    msg_id: t.item.msg_id,
                    frag: t.item.frag,
                    frags: t.item.frags,
                    bytes: t.item.bytes,
                },
            };
            self.stats.datagrams_out += 1;
            let nonce = self.nonce();
            self.injector.send(addr, dg.encode(&key, &nonce), now);
        }
    }

    /// Queues one unsequenced datagram (ack, ping) to member `to`.
    pub(super) fn control(&mut self, room: &str, to: &str, body: Body, now: Instant) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let Some(addr) = r.members.get(to).map(|m| m.addr) else {
            return;
        };
        self.control_to(room, to, addr, body, now);
    }

    /// Queues one unsequenced datagram to `to` at `addr`, member or not.
    pub(super) fn control_to(
        &mut self,
        room: &str,
        to: &str,
        addr: std::net::SocketAddr,
        body: Body,
        now: Instant,
    ) {
        let Some(key) = self.rooms.get(room).map(|r| r.key) else {
            return;
        };
        let dg = Datagram {
            room: room.to_string(),
            from: self.me.clone(),
            to: to.to_string(),
            body,
        };
        self.stats.datagrams_out += 1;
        let nonce = self.nonce();
        self.injector.send(addr, dg.encode(&key, &nonce), now);
    }

    /// Queues an item on the stream to one member and sends what it lets out.
    pub(super) fn push_item(&mut self, room: &str, to: &str, item: Item, now: Instant) {
        let sends = match self.rooms.get_mut(room).and_then(|r| r.members.get_mut(to)) {
            Some(m) => m.tx.push(item, now),
            None => return,
        };
        self.transmit(room, to, sends, now);
    }

    pub(super) fn on_ack(
        &mut self,
        room: &str,
        from: &str,
        (stream, cum, sack): (u64, u64, u64),
        now: Instant,
    ) {
        let Some(m) = self
            .rooms
            .get_mut(room)
            .and_then(|r| r.members.get_mut(from))
        else {
            return;
        };
        if stream != m.tx.id {
            return;
        }
        let (acked, more) = m.tx.ack(cum, sack, now);
        self.transmit(room, from, more, now);
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let mut touched = Vec::new();
        for item in acked.iter().filter(|i| i.event == EventKind::Text) {
            if let Some(o) = r.out.get_mut(&item.msg_id) {
                if let Some(left) = o.remaining.get_mut(from) {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        o.remaining.remove(from);
                        touched.push(item.msg_id);
                    }
                }
            }
        }
        for id in touched {
            self.check_done(room, id);
        }
        let leave_done = self
            .rooms
            .get(room)
            .is_some_and(|r| r.leaving.is_some() && r.members.values().all(|m| m.tx.idle()));
        if leave_done {
            self.finish_leaving(room);
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
    }
}
