use super::*;
use std::time::{Duration, Instant};

fn item(n: u64) -> Item {
    Item {
        event: EventKind::Text,
        msg_id: n,
        frag: 0,
        frags: 1,
        bytes: n.to_string().into_bytes(),
        late: false,
    }
}

fn ids(r: Received) -> Vec<u64> {
    match r {
        Received::Deliver(v) => v.into_iter().map(|i| i.msg_id).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn in_order_exactly_once_with_gaps_reported_at_once() {
    let t = Instant::now();
    let mut rx = RecvStream::new(7);
    assert_eq!(ids(rx.receive(1, item(1), t)), [1]);
    // One delivery: acknowledged after the delay, not at once.
    assert!(!rx.due(t));
    assert!(rx.due(t + ACK_DELAY));
    let r = rx.report(t + ACK_DELAY);
    assert_eq!((r.cum, r.high, r.missing.clone()), (1, 1, vec![]));
    assert_eq!(rx.ack_at, None);
    // 3 and 5 before 2 and 4: the gap is reported at once (after spacing).
    let t2 = t + Duration::from_millis(100);
    assert!(ids(rx.receive(3, item(3), t2)).is_empty());
    assert!(!rx.due(t2));
    let t2 = t2 + REORDER_GRACE;
    assert!(rx.due(t2));
    assert!(ids(rx.receive(5, item(5), t2)).is_empty());
    let r = rx.report(t2);
    assert_eq!((r.cum, r.high), (1, 5));
    assert_eq!(r.missing, vec![(2, 1), (4, 1)]);
    // Still missing: said again a little later.
    assert_eq!(rx.ack_at, Some(t2 + NACK_REPEAT));
    assert_eq!(rx.receive(3, item(3), t2), Received::Duplicate);
    assert_eq!(ids(rx.receive(2, item(2), t2)), [2, 3]);
    assert_eq!(ids(rx.receive(4, item(4), t2)), [4, 5]);
    assert_eq!(rx.receive(1, item(1), t2), Received::Duplicate);
    assert_eq!(rx.receive(5000, item(5000), t2), Received::OutOfWindow);
}

#[test]
fn acks_every_k_deliveries() {
    let t = Instant::now();
    let mut rx = RecvStream::new(1);
    for s in 1..ACK_EVERY as u64 {
        rx.receive(s, item(s), t);
    }
    assert!(!rx.due(t));
    rx.receive(ACK_EVERY as u64, item(0), t);
    assert!(rx.due(t));
}

#[test]
fn a_late_joiner_waits_for_its_sync() {
    let t = Instant::now();
    let mut rx = RecvStream::new(1);
    assert!(ids(rx.receive(42, item(42), t)).is_empty());
    assert!(ids(rx.receive(41, item(41), t)).is_empty());
    let r = rx.report(t);
    assert!(r.unsynced);
    assert_eq!(ids(Received::Deliver(rx.sync(40, t))), Vec::<u64>::new());
    let r = rx.report(t);
    assert_eq!((r.cum, r.missing.clone()), (39, vec![(40, 1)]));
    assert_eq!(ids(rx.receive(40, item(40), t)), [40, 41, 42]);
    // A SYNC behind us changes nothing; one ahead skips (we were dropped).
    assert!(rx.sync(10, t).is_empty());
    assert!(rx.sync(50, t).is_empty());
    assert_eq!(ids(rx.receive(50, item(50), t)), [50]);
}

#[test]
fn at_most_32_ranges_and_high_stops_before_the_unlisted() {
    let t = Instant::now();
    let mut rx = RecvStream::new(1);
    rx.receive(1, item(1), t);
    for s in (3..200).step_by(2) {
        rx.receive(s, item(s), t);
    }
    let r = rx.report(t);
    assert_eq!(r.missing.len(), MAX_RANGES);
    let last = r.missing.last().unwrap().0;
    assert_eq!(r.high, last + 1);
}

#[test]
fn after_a_late_notice_seqs_up_to_it_come_marked_late_and_no_others() {
    let t = Instant::now();
    let mut rx = RecvStream::new(7);
    assert_eq!(ids(rx.receive(1, item(1), t)), [1]);
    rx.late(4);
    // 3 waits for 2; 2 brings 3; both late, then 4 late, 5 not.
    assert!(ids(rx.receive(3, item(3), t)).is_empty());
    let late = |r: Received| match r {
        Received::Deliver(v) => v
            .into_iter()
            .map(|i| (i.msg_id, i.late))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(late(rx.receive(2, item(2), t)), [(2, true), (3, true)]);
    assert_eq!(late(rx.receive(4, item(4), t)), [(4, true)]);
    assert_eq!(late(rx.receive(5, item(5), t)), [(5, false)]);
    // A repeated, older notice changes nothing.
    rx.late(2);
    assert_eq!(late(rx.receive(6, item(6), t)), [(6, false)]);
}
