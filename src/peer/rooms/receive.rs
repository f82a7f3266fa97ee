//! Receiving: checking a datagram (format, epoch, tag, room, addressee,
//! sender), letting in a sender only the registry lists, feeding DATA and
//! SYNCs to the per-sender stream and acknowledging when it says so, and
//! acting on what arrives in order (join, leave, reassembled texts).

use super::engine::{Engine, Inbound, StreamIn, HELD_MAX, MAX_STREAMS};
use super::event::{Event, Gone};
use super::stream::{Item, Received, RecvStream, Report};
use crate::protocol::datagram::{self as wire, Body, Datagram, DecodeError, EventKind, Header};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

const NO_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
use std::time::Instant;

impl Engine {
    /// A datagram arrived from `src` by a room's multicast group (the
    /// driver's group socket).
    pub fn handle_group_datagram(&mut self, now: Instant, src: SocketAddr, bytes: &[u8]) {
        // Our own copies come back (peers on one machine hear each
        // other's): dropped before their signature is checked.
        if Header::peek(bytes).is_ok_and(|h| h.from == self.me) {
            return;
        }
        self.stats.group_in += 1;
        self.via_group = true;
        self.handle_datagram(now, src, bytes);
        self.via_group = false;
    }

    /// A datagram arrived from `src`.
    pub fn handle_datagram(&mut self, now: Instant, _src: SocketAddr, bytes: &[u8]) {
        self.stats.datagrams_in += 1;
        let dg = match self.check(bytes) {
            Ok(d) => d,
            Err(DecodeError::OtherEpoch { room, epoch }) => {
                match self.previous_epoch(now, &room, epoch, bytes) {
                    Some(d) => d,
                    None => {
                        // Either side's key may be out of date: ask.
                        self.stats.other_epoch += 1;
                        log::debug!("#{room}: datagram under epoch {epoch} dropped");
                        self.refresh_members(&room, now);
                        return;
                    }
                }
            }
            Err(DecodeError::UnknownSender { room, from }) => {
                // Counted once, not again when a held one is replayed.
                if !self.replaying {
                    self.stats.unknown_sender += 1;
                    log::debug!("#{room}: datagram from {from}, whose keys we lack, held");
                }
                self.hold(&room, bytes);
                self.refresh_members(&room, now);
                return;
            }
            Err(e) => {
                let stats = &mut self.stats;
                match e {
                    DecodeError::Malformed => stats.malformed += 1,
                    DecodeError::BadTag => stats.bad_tag += 1,
                    DecodeError::BadSignature => {
                        stats.bad_signature += 1;
                        log::debug!("room datagram with a bad signature dropped");
                    }
                    _ => stats.unknown_room += 1,
                }
                return;
            }
        };
        let to_me = match &dg.body {
            Body::Ack { to, .. } | Body::Sync { to, .. } | Body::Late { to, .. } => *to == self.me,
            Body::Data { .. } | Body::Ping => true,
        };
        if !to_me || dg.from == self.me {
            self.stats.wrong_destination += 1;
            return;
        }
        let room = dg.room;
        let from = dg.from;
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        // A member (the usual case): one lookup.
        if let Some(m) = r.members.get_mut(&from) {
            m.last_heard = now;
        } else {
            // One that said it left is back only with a new "join".
            let rejoin = matches!(
                dg.body,
                Body::Data {
                    event: EventKind::Join,
                    ..
                }
            ) || !r.departed.contains_key(&from);
            // Holding the key proves nothing about a name: only the
            // registry's list lets a sender in. One it lists, at the
            // address it lists, is back (a newcomer, or a member we had
            // given up on); anyone else waits for the registry's answer.
            match r.listed.get(&from) {
                Some(addr) if r.leaving.is_none() && rejoin => {
                    let addr = *addr;
                    self.add_member(&room, &from, addr, now);
                }
                _ => {
                    // Counted once, not again when a held one is replayed.
                    if !self.replaying {
                        self.stats.non_member += 1;
                    }
                    self.hold(&room, bytes);
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
        }
        match dg.body {
            Body::Ping => {}
            Body::Ack {
                stream,
                cum,
                high,
                unsynced,
                group,
                missing,
                ..
            } => {
                let report = Report {
                    cum,
                    high,
                    unsynced,
                    missing,
                };
                self.on_ack(&room, &from, (stream, group), report, now)
            }
            Body::Sync { stream, next, .. } => self.on_sync(&room, &from, stream, next, now),
            Body::Late {
                stream,
                upto,
                noted,
                ..
            } => self.on_late(&room, &from, (stream, upto, noted), now),
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
                    late: false,
                };
                self.on_data(&room, &from, (stream, seq), item, now);
            }
        }
    }

    /// Checks a datagram in order: its header; its room; its epoch (an
    /// ex-member's datagrams stop here, whoever still lists it); its
    /// sender's signature, against the key the registry vouches for,
    /// before anything else of it is believed; its tag.
    fn check(&self, bytes: &[u8]) -> Result<Datagram, DecodeError> {
        let h = Header::peek(bytes)?;
        let r = self.rooms.get(&h.room).ok_or(DecodeError::UnknownRoom)?;
        // Without the current key nothing is opened: we ask for it.
        if h.epoch != r.key.epoch || r.stale {
            return Err(DecodeError::OtherEpoch {
                room: h.room,
                epoch: h.epoch,
            });
        }
        self.signed(&h, bytes)?;
        Datagram::open(bytes, h, &r.key)
    }

    /// Whether the sender named in `h` signed `bytes`, by the key the
    /// registry vouches for.
    fn signed(&self, h: &Header, bytes: &[u8]) -> Result<(), DecodeError> {
        let r = self.rooms.get(&h.room).ok_or(DecodeError::UnknownRoom)?;
        let Some(signer) = r.signers.get(&h.from) else {
            return Err(DecodeError::UnknownSender {
                room: h.room.clone(),
                from: h.from.clone(),
            });
        };
        if !wire::verify(self.auth.as_ref(), signer, bytes) {
            return Err(DecodeError::BadSignature);
        }
        Ok(())
    }

    /// Keeps a datagram from a sender the registry has not (yet) listed, to
    /// look at again once it answers: a newcomer's "join" is then taken at
    /// once instead of at its next retransmission. Bounded by
    /// [`HELD_MAX`]; a datagram replayed is never held again.
    fn hold(&mut self, room: &str, bytes: &[u8]) {
        if self.replaying {
            return;
        }
        if let Some(r) = self.rooms.get_mut(room) {
            if r.held.len() < HELD_MAX {
                r.held.push(bytes.to_vec());
            }
        }
    }

    /// The registry answered: what was held goes through again.
    pub(super) fn replay_held(&mut self, room: &str, now: Instant) {
        let Some(held) = self
            .rooms
            .get_mut(room)
            .map(|r| std::mem::take(&mut r.held))
        else {
            return;
        };
        self.replaying = true;
        for bytes in held {
            // The sender address is not used: the registry's list is.
            self.handle_datagram(now, NO_ADDR, &bytes);
        }
        self.replaying = false;
    }

    /// A datagram under the key we held before the current one: only a
    /// member's "leave" is taken from it, for [`PREVIOUS_KEY_GRACE`](super::engine::PREVIOUS_KEY_GRACE) after
    /// the switch (a member that leaves tells the others and the registry at
    /// once, and the registry's new key can reach them first). Nothing else
    /// is: an ex-member's old key posts nothing.
    fn previous_epoch(
        &mut self,
        now: Instant,
        room: &str,
        epoch: u64,
        bytes: &[u8],
    ) -> Option<Datagram> {
        let r = self.rooms.get(room)?;
        // The key we hold while we wait for the next one is as good as a
        // previous one: a member's leave under it is still taken.
        let grace = super::engine::PREVIOUS_KEY_GRACE;
        let held = (r.stale && !r.placeholder).then_some((r.key, now + grace));
        let (key, until) = held.filter(|(k, _)| k.epoch == epoch).or(r.previous)?;
        if key.epoch != epoch || now >= until {
            return None;
        }
        let h = Header::peek(bytes).ok()?;
        self.signed(&h, bytes).ok()?;
        let dg = Datagram::open(bytes, h, &key).ok()?;
        let leave = matches!(
            dg.body,
            Body::Data {
                event: EventKind::Leave,
                ..
            }
        );
        (leave && r.members.contains_key(&dg.from)).then_some(dg)
    }

    /// The index of stream `stream` from `from` among those we hold,
    /// opened if new; `None` (counted) for a stale one or a room we are
    /// leaving.
    pub(super) fn inbound_stream(
        &mut self,
        room: &str,
        from: &str,
        stream: u64,
        now: Instant,
    ) -> Option<usize> {
        let r = self.rooms.get_mut(room)?;
        if r.leaving.is_some() || !r.members.contains_key(from) {
            return None;
        }
        // A stream we hold: one lookup, and no name allocated.
        if let Some(at) = r
            .inbound
            .get(from)
            .and_then(|i| i.streams.iter().position(|s| s.rx.id == stream))
        {
            return Some(at);
        }
        let inbound = r.inbound.entry(from.to_string()).or_insert(Inbound {
            streams: Vec::new(),
            floor: 0,
            renewed: false,
        });
        match inbound.streams.iter().position(|s| s.rx.id == stream) {
            Some(at) => Some(at),
            // Below every stream we hold: an earlier run's, replayed.
            None if stream < inbound.floor
                || inbound.streams.iter().all(|s| stream < s.rx.id)
                    && !inbound.streams.is_empty() =>
            {
                self.stats.stale_stream += 1;
                None
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
                    return None;
                }
                inbound.renewed |= !inbound.streams.is_empty();
                inbound.streams.push(StreamIn {
                    rx: RecvStream::new(stream),
                    partial: None,
                    last: now,
                    timer: None,
                    hearing: Default::default(),
                });
                Some(inbound.streams.len() - 1)
            }
        }
    }

    /// The stream at `at` from `from`, if still there.
    pub(super) fn stream_at(&mut self, room: &str, from: &str, at: usize) -> Option<&mut StreamIn> {
        self.rooms
            .get_mut(room)?
            .inbound
            .get_mut(from)?
            .streams
            .get_mut(at)
    }

    fn on_data(
        &mut self,
        room: &str,
        from: &str,
        (stream, seq): (u64, u64),
        item: Item,
        now: Instant,
    ) {
        let Some(at) = self.inbound_stream(room, from, stream, now) else {
            return;
        };
        let via_group = self.via_group;
        let Some(this) = self.stream_at(room, from, at) else {
            return;
        };
        this.last = now;
        if this.hearing.arrived(via_group, now) {
            // Tell the sender at once: it stops (or starts) sending us
            // our own copies.
            this.rx.ack_at = Some(now);
            log::info!(
                "#{room}: {from}'s multicast copies {} reach us",
                if this.hearing.hears {
                    "now"
                } else {
                    "no longer"
                }
            );
        }
        let delivered = match this.rx.receive(seq, item, now) {
            Received::Deliver(items) => {
                if items.iter().any(|i| i.event == EventKind::Leave) {
                    // Its stream ends here: acknowledge before forgetting it.
                    this.rx.ack_at = Some(now);
                }
                items
            }
            Received::Duplicate => {
                self.stats.duplicates += 1;
                Vec::new()
            }
            Received::OutOfWindow => {
                self.stats.out_of_window += 1;
                Vec::new()
            }
        };
        self.maybe_ack(room, from, at, now);
        for item in delivered {
            self.deliver(room, from, stream, item, now);
        }
    }

    /// The sender's SYNC: where its stream starts for us.
    fn on_sync(&mut self, room: &str, from: &str, stream: u64, next: u64, now: Instant) {
        let Some(at) = self.inbound_stream(room, from, stream, now) else {
            return;
        };
        let Some(this) = self.stream_at(room, from, at) else {
            return;
        };
        this.last = now;
        let delivered = this.rx.sync(next, now);
        self.maybe_ack(room, from, at, now);
        for item in delivered {
            self.deliver(room, from, stream, item, now);
        }
    }

    /// Sends the acknowledgement of stream `at` from `from` if it is due,
    /// or has the sweep come back for it when it will be.
    pub(super) fn maybe_ack(&mut self, room: &str, from: &str, at: usize, now: Instant) {
        let Some(this) = self.stream_at(room, from, at) else {
            return;
        };
        if !this.rx.due(now) {
            self.arm_ack(room, from, at);
            return;
        }
        let stream = this.rx.id;
        let group = this.hearing.hears;
        let Report {
            cum,
            high,
            unsynced,
            missing,
        } = this.rx.report(now);
        self.arm_ack(room, from, at);
        let ack = Body::Ack {
            to: from.to_string(),
            stream,
            cum,
            high,
            unsynced,
            group,
            missing,
        };
        self.control(room, from, ack, now);
    }

    /// An item arrived in order from `from` on its stream `stream`.
    fn deliver(&mut self, room: &str, from: &str, stream: u64, item: Item, now: Instant) {
        match item.event {
            EventKind::Join => {
                if let Some(r) = self.rooms.get_mut(room) {
                    r.departed.remove(from);
                }
                // A new run of a member we heard from before (it restarted,
                // or left and came back) knows nothing of our stream: its
                // first acknowledgement asks for a SYNC, and it gets what
                // it has not acknowledged.
                if let Some(i) = self
                    .rooms
                    .get_mut(room)
                    .and_then(|r| r.inbound.get_mut(from))
                {
                    i.renewed = false;
                }
                // Said once: the registry's list may have let it in first.
                let new = self
                    .rooms
                    .get_mut(room)
                    .is_some_and(|r| r.announced.insert(from.to_string()));
                if new {
                    self.emit(Event::MemberJoined {
                        room: room.to_string(),
                        user: from.to_string(),
                    })
                }
            }
            EventKind::Leave => {
                self.remove_member(room, from, Gone::Left);
                if let Some(r) = self.rooms.get_mut(room) {
                    r.inbound.remove(from);
                    r.departed.insert(from.to_string(), now);
                }
                // The room moves to a new epoch without it: learn so now,
                // and send nothing more under the key it holds.
                self.refresh_members(room, now);
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
        let (msg_id, buf, next, late) = match inb.partial.take() {
            Some((id, mut buf, next, late)) if id == item.msg_id && next == item.frag => {
                buf.extend_from_slice(&item.bytes);
                (id, buf, next, late || item.late)
            }
            // A first fragment's bytes start the text (moved, not copied).
            _ if item.frag == 0 => (item.msg_id, item.bytes, 0, item.late),
            // A fragment out of place can only come from a broken
            // sender: drop it and what was pending.
            _ => return,
        };
        if next + 1 < item.frags {
            if buf.len() <= wire::MAX_MESSAGE {
                inb.partial = Some((msg_id, buf, next + 1, late));
            }
            return;
        }
        self.stats.messages_delivered += 1;
        let text = String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        self.emit(Event::Message {
            from: from.to_string(),
            room: room.to_string(),
            text,
            id: msg_id,
            own: false,
            late,
        });
    }
}
