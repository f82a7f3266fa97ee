//! Slow nodes on the simulator: a node that handles one datagram per
//! interval, behind a bounded socket buffer (what overflows is dropped and
//! counted), as a process too busy to keep up would.

use super::Sim;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

impl Sim {
    /// Node `i` handles datagrams one per `per` from now on, keeping at
    /// most `buffer` waiting (a slow process behind its socket buffer).
    pub fn slow(&mut self, i: usize, per: Duration, buffer: usize) {
        self.nodes[i].per_datagram = Some(per);
        self.nodes[i].backlog_max = buffer;
    }

    /// Datagrams sent to node `i` so far.
    pub fn sent_to(&self, i: usize) -> u64 {
        self.sent_to.get(i).copied().unwrap_or(0)
    }

    /// A datagram reaches node `i` at `at` (`group`: by a multicast
    /// group): handled now, or queued behind a slow node's backlog.
    pub(super) fn arrive(
        &mut self,
        i: usize,
        at: Instant,
        from: SocketAddr,
        bytes: Vec<u8>,
        group: bool,
    ) {
        let node = &mut self.nodes[i];
        if let Some(per) = node.per_datagram {
            if node.busy_until > at || !node.backlog.is_empty() {
                if node.backlog.len() < node.backlog_max {
                    node.backlog.push_back((from, bytes, group));
                } else {
                    node.overflow += 1;
                }
                return;
            }
            node.busy_until = at + per;
        }
        self.handle(i, at, from, &bytes, group);
    }

    fn handle(&mut self, i: usize, at: Instant, from: SocketAddr, bytes: &[u8], group: bool) {
        let engine = &mut self.nodes[i].engine;
        if group {
            engine.handle_group_datagram(at, from, bytes);
        } else {
            engine.handle_datagram(at, from, bytes);
        }
        self.drain(i);
    }

    /// Slow nodes work through their backlogs up to `until`.
    pub(super) fn work_backlogs(&mut self, until: Instant) {
        for i in 0..self.nodes.len() {
            while let Some(per) = self.nodes[i].per_datagram {
                let node = &mut self.nodes[i];
                if node.busy_until > until || !node.up {
                    break;
                }
                let Some((from, bytes, group)) = node.backlog.pop_front() else {
                    break;
                };
                let at = node.busy_until;
                node.busy_until = at + per;
                let saved = self.now;
                self.now = at;
                self.handle(i, at, from, &bytes, group);
                self.now = saved;
            }
        }
    }
}
