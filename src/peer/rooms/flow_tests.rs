use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn window_bounds_what_is_outstanding() {
    let t = Instant::now();
    let mut f = Flow::new(0, t);
    let mut n = 0;
    while f.may_send(n + 1) {
        n += 1;
        f.sent(n, t);
    }
    assert_eq!(n, CWND_INITIAL as u64);
    assert_eq!(f.ack(10, 10, &[], t + ms(2)), 1..=10);
    assert!(f.may_send(n + 1));
    assert!(f.rto() >= RTO_MIN);
}

#[test]
fn missing_ones_are_sent_again_paced_and_once_per_round_trip() {
    let t = Instant::now();
    let mut f = Flow::new(0, t);
    for s in 1..=100 {
        f.sent(s, t);
    }
    // A first ack gives an RTT of 2 ms.
    f.ack(1, 1, &[], t + ms(2));
    let t1 = t + ms(10);
    f.ack(1, 100, &[(2, 60)], t1);
    let first = f.due(t1);
    assert_eq!(first.len(), RETX_BURST);
    assert_eq!(first[0], 2);
    // The rest waits for the pacing interval.
    assert!(f.due(t1).is_empty());
    let t2 = t1 + f.pace();
    assert_eq!(f.due(t2).len(), 60 - RETX_BURST);
    // Reported again at once: what went out just now is not sent again.
    f.ack(1, 100, &[(2, 60)], t2);
    let again = f.due(t2 + f.pace());
    assert!(
        again.iter().all(|&s| s < 2 + RETX_BURST as u64),
        "{again:?}"
    );
    // What is held above the gaps never goes again.
    assert!(again.iter().all(|&s| (2..62).contains(&s)));
}

#[test]
fn a_time_out_resends_the_first_and_backs_off() {
    let t = Instant::now();
    let mut f = Flow::new(0, t);
    f.sent(1, t);
    let rto = f.rto();
    assert_eq!(f.deadline(), Some(t + rto));
    assert_eq!(f.due(t + rto), vec![1]);
    assert!(f.rto() > rto);
    assert_eq!(f.ack(1, 1, &[], t + rto * 2), 1..=1);
    assert_eq!(f.deadline(), None);
    assert!(f.idle(1));
}

/// The tail of a window lost (a receiver stopped, its socket buffer full):
/// no NACK can name it, and one time-out queues all of it, not one seq.
#[test]
fn a_time_out_resends_a_lost_tail_at_once() {
    let t = Instant::now();
    let mut f = Flow::new(0, t);
    for seq in 1..=50 {
        f.sent(seq, t);
    }
    // It has 1..=10 and reports nothing missing: 11..=50 never arrived.
    f.ack(10, 10, &[], t + ms(1));
    let at = f.deadline().expect("a time-out");
    let first = f.due(at);
    let split = 10 + RETX_BURST as u64;
    assert_eq!(first, (11..=split).collect::<Vec<_>>());
    let rest = f.due(at + f.pace());
    assert_eq!(rest, (split + 1..=50).collect::<Vec<_>>());
}

#[test]
fn stalls_only_without_progress() {
    let t = Instant::now();
    let mut f = Flow::new(5, t);
    assert!(!f.stalled(t + STALLED_AFTER));
    f.sent(6, t);
    assert!(!f.stalled(t + ms(100)));
    assert!(f.stalled(t + STALLED_AFTER));
}

#[test]
fn a_send_after_an_idle_spell_does_not_count_the_spell_as_a_stall() {
    let t = Instant::now();
    let mut f = Flow::new(0, t);
    f.sent(1, t);
    f.ack(1, 1, &[], t + ms(2));
    assert_eq!(f.stall_at(), None);
    // The room stays quiet for longer than a stall, then talks again.
    let later = t + STALLED_AFTER * 2;
    f.sent(2, later);
    assert!(!f.stalled(later + ms(10)));
    assert_eq!(f.stall_at(), Some(later + STALLED_AFTER));
    // Unanswered from then on, it does stall.
    assert!(f.stalled(later + STALLED_AFTER));
}

#[test]
fn a_member_that_reports_progress_is_not_timed_out_and_recent_sends_wait() {
    let t = Instant::now();
    let mut f = Flow::new(0, t);
    f.sent(1, t);
    // An RTT of 10 ms: the time-out is its floor.
    f.ack(1, 1, &[], t + ms(10));
    assert_eq!(f.rto(), RTO_MIN);
    // Seq 2 is lost for good; 3 to 20 go out, one every 5 ms, and the
    // member's reports every 20 ms say it holds all it got but 2.
    let mut now = t + ms(10);
    for s in 2..=20 {
        f.sent(s, now);
        if s % 4 == 0 {
            f.ack(1, s - 1, &[(2, 1)], now);
            let repaired = f.due(now);
            assert!(repaired.is_empty() || repaired == [2], "{repaired:?}");
        }
        now += ms(5);
    }
    // 95 ms after the last cumulative progress but 5 ms after the last
    // report: no time-out, so nothing it holds or may still report goes
    // again (it used to be every seq not reported yet).
    assert!(f.due(now).is_empty());
    // The reports stop (lost). 21 goes out 5 ms before the time-out; at
    // the time-out, what is a round trip old goes again (2, 20), not 21.
    let last_report = t + ms(100);
    f.sent(21, last_report + f.rto() - ms(5));
    let again = f.due(last_report + f.rto());
    assert!(again.contains(&20) && !again.contains(&21), "{again:?}");
}
