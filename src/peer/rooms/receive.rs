//! Receiving: checking a datagram (format, tag, room, addressee, sender),
//! letting a newcomer in on its signed "join", feeding DATA to the per-sender
//! stream and acknowledging it, and acting on what arrives in order (join,
//! leave, reassembled texts).

use super::engine::{Engine, Inbound, StreamIn, MAX_STREAMS};
use super::event::{Event, Gone};
use super::stream::{Item, Received, RecvStream};
use crate::protocol::datagram::{self as wire, Body, Datagram, DecodeError, EventKind};
use std::net::SocketAddr;
use std::time::Instant;

impl Engine {
    /// A datagram arrived from `src`.
    pub fn handle_datagram(&mut self, now: Instant, src: SocketAddr, bytes: &[u8]) {
        let stats = &mut self.stats;
        stats.datagrams_in += 1;
        let rooms = &self.rooms;
        let dg = match Datagram::decode(bytes, |name| rooms.get(name).map(|r| r.key)) {
            Ok(d) => d,
            Err(e) => {
                match e {
                    DecodeError::Malformed => stats.malformed += 1,
                    DecodeError::BadTag => stats.bad_tag += 1,
                    DecodeError::UnknownRoom => stats.unknown_room += 1,
                }
                return;
            }
        };
        if dg.to != self.me || dg.from == self.me {
            self.stats.wrong_destination += 1;
            return;
        }
        let room = dg.room;
        let from = dg.from;
        let known = self
            .rooms
            .get(&room)
            .is_some_and(|r| r.members.contains_key(&from));
        if !known {
            let is_join = matches!(
                dg.body,
                Body::Data {
                    event: EventKind::Join,
                    ..
                }
            );
            if is_join && self.is_member(&room) {
                // A newcomer proves it holds the key; confirm with the registry.
                let m = self.new_member(src, now);
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.members.insert(from.clone(), m);
                }
            } else {
                self.stats.non_member += 1;
                self.refresh_members(&room, now);
                return;
            }
        }
        if let Some(m) = self
            .rooms
            .get_mut(&room)
            .and_then(|r| r.members.get_mut(&from))
        {
            m.last_heard = now;
        }
        match dg.body {
            Body::Ping => {}
            Body::Ack { stream, cum, sack } => self.on_ack(&room, &from, (stream, cum, sack), now),
            Body::Data {
                stream,
                seq,
                event,
                msg_id,
                frag,
                frags,
                bytes,
            } => {
                let item = Item {
                    event,
                    msg_id,
                    frag,
                    frags,
                    bytes,
                };
                self.on_data(&room, &from, (stream, seq), item, now);
            }
        }
    }

    fn on_data(
        &mut self,
        room: &str,
        from: &str,
        (stream, seq): (u64, u64),
        item: Item,
        now: Instant,
    ) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.leaving.is_some() || !r.members.contains_key(from) {
            return;
        }
        let inbound = r
            .inbound
            .entry(from.to_string())
            .or_insert_with(|| Inbound {
                streams: Vec::new(),
                floor: 0,
                renewed: false,
            });
        let at = match inbound.streams.iter().position(|s| s.rx.id == stream) {
            Some(at) => at,
            // Below every stream we hold: an earlier run's, replayed.
            None if stream < inbound.floor
                || inbound.streams.iter().all(|s| stream < s.rx.id)
                    && !inbound.streams.is_empty() =>
            {
                self.stats.stale_stream += 1;
                return;
            }
            None => {
                // Another stream: a new run of the sender, or a forgery. The
                // streams we hold go on either way (see `Inbound`).
                if inbound.streams.len() >= MAX_STREAMS {
                    if let Some(oldest) =
                        (0..inbound.streams.len()).min_by_key(|&i| inbound.streams[i].last)
                    {
                        let gone = inbound.streams.swap_remove(oldest);
                        inbound.floor = inbound.floor.max(gone.rx.id.saturating_add(1));
                    }
                }
                if stream < inbound.floor {
                    self.stats.stale_stream += 1;
                    return;
                }
                inbound.renewed |= !inbound.streams.is_empty();
                inbound.streams.push(StreamIn {
                    rx: RecvStream::new(stream),
                    partial: None,
                    last: now,
                });
                inbound.streams.len() - 1
            }
        };
        let this = &mut inbound.streams[at];
        this.last = now;
        let result = this.rx.receive(stream, seq, item);
        let (cum, sack) = this.rx.ack();
        let delivered = match result {
            Received::Deliver(items) => items,
            Received::Duplicate => {
                self.stats.duplicates += 1;
                Vec::new()
            }
            Received::Stale => {
                self.stats.stale_stream += 1;
                return;
            }
            Received::OutOfWindow => {
                self.stats.out_of_window += 1;
                return;
            }
        };
        let ack = Body::Ack { stream, cum, sack };
        self.control(room, from, ack, now);
        for item in delivered {
            self.deliver(room, from, stream, item, now);
        }
    }

    /// An item arrived in order from `from` on its stream `stream`.
    fn deliver(&mut self, room: &str, from: &str, stream: u64, item: Item, now: Instant) {
        match item.event {
            EventKind::Join => {
                if let Some(r) = self.rooms.get_mut(room) {
                    r.departed.remove(from);
                }
                // A new run of a member we heard from before (it restarted,
                // or left and came back) knows nothing of our stream: start
                // a new one at seq 1, resending what it has not acknowledged.
                let renewed = self
                    .rooms
                    .get_mut(room)
                    .and_then(|r| r.inbound.get_mut(from))
                    .is_some_and(|i| std::mem::take(&mut i.renewed));
                if renewed {
                    let id = self.new_stream_id();
                    let sends = match self
                        .rooms
                        .get_mut(room)
                        .and_then(|r| r.members.get_mut(from))
                    {
                        Some(m) => m.tx.reset(id, now),
                        None => return,
                    };
                    self.transmit(room, from, sends, now);
                }
                self.emit(Event::MemberJoined {
                    room: room.to_string(),
                    user: from.to_string(),
                })
            }
            EventKind::Leave => {
                self.remove_member(room, from, Gone::Left);
                if let Some(r) = self.rooms.get_mut(room) {
                    r.inbound.remove(from);
                    r.departed.insert(from.to_string(), now);
                }
            }
            EventKind::Text => self.text_fragment(room, from, stream, item),
        }
    }

    /// Reassembles a text from its fragments and reports it when complete.
    fn text_fragment(&mut self, room: &str, from: &str, stream: u64, item: Item) {
        let Some(inb) = self
            .rooms
            .get_mut(room)
            .and_then(|r| r.inbound.get_mut(from))
            .and_then(|i| i.streams.iter_mut().find(|s| s.rx.id == stream))
        else {
            return;
        };
        let (msg_id, mut buf, next) = match inb.partial.take() {
            Some((id, buf, next)) if id == item.msg_id && next == item.frag => (id, buf, next),
            _ if item.frag == 0 => (item.msg_id, Vec::new(), 0),
            // A fragment out of place can only come from a broken
            // sender: drop it and what was pending.
            _ => return,
        };
        buf.extend_from_slice(&item.bytes);
        if next + 1 < item.frags {
            if buf.len() <= wire::MAX_MESSAGE {
                inb.partial = Some((msg_id, buf, next + 1));
            }
            return;
        }
        self.stats.messages_delivered += 1;
        let text = String::from_utf8_lossy(&buf).into_owned();
        self.emit(Event::Message {
            from: from.to_string(),
            room: room.to_string(),
            text,
            id: msg_id,
            own: false,
        });
    }
}
