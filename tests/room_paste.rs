//! A paste into a room, on the real binaries over loopback: 2,000 lines
//! written to one peer's input at once reach both other members of a
//! three-member room, every line once and in order, within a bound; the
//! sender reports the send's progress (`sending` events) while it runs and
//! once when all of it is delivered.

mod kit;

use kit::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const LINES: usize = 2000;

fn paste(tag: &str) -> Vec<String> {
    (0..LINES)
        .map(|i| format!("{tag} line {i:04} of the paste: {}", "x".repeat(40)))
        .collect()
}

/// The sender's `sending` events for `room` so far.
fn sending(history: &[Value], room: &str) -> Vec<Value> {
    history
        .iter()
        .filter(|v| v["event"] == "sending" && v["room"] == room)
        .cloned()
        .collect()
}

#[test]
fn a_2000_line_paste_arrives_complete_in_order_once_with_progress() {
    let reg = Registry::start(&[]);
    let mut p = login_all(reg.addr(), &["alice", "bob", "carol"], &PeerOpts::default());
    form_room(&mut p, "paste", Duration::from_secs(10));

    // A paste at full speed.
    let texts = paste("first");
    let started = Instant::now();
    p[0].send_lines(texts.clone());
    let want = vec![("alice".to_string(), texts.clone())];
    expect_exact(&mut p[1..], "#paste", &want, Duration::from_secs(30));
    let first = texts;
    let arrived = started.elapsed();
    let done = [
        ("room", json!("paste")),
        ("done", json!(LINES)),
        ("total", json!(LINES)),
    ];
    p[0].expect("sending", &done, Duration::from_secs(30));
    let summary = started.elapsed();
    // Only the second paste's events from here on.
    p[0].clear_backlog();
    let before = p[0].history.len();
    eprintln!(
        "{LINES} lines at both members in {arrived:?}, all delivered (sender) in {summary:?}"
    );
    assert!(arrived < Duration::from_secs(20), "{arrived:?}");

    // A long one: bob is stopped while it goes out, so it cannot finish
    // until bob runs again, and its progress shows meanwhile.
    let texts = paste("second");
    p[1].signal(libc::SIGSTOP);
    p[0].send_lines(texts.clone());
    let partial = p[0].expect_where(
        "sending with done < total",
        |v| {
            v["event"] == "sending"
                && v["total"] == json!(LINES)
                && v["done"].as_u64() < Some(LINES as u64)
        },
        Duration::from_secs(10),
    );
    p[1].signal(libc::SIGCONT);
    // Everything from alice so far: both pastes, each line once, in order.
    let both: Vec<String> = first.into_iter().chain(texts).collect();
    let last = both.last().cloned().unwrap_or_default();
    let resumed = Instant::now();
    let caught_up = p[1].try_wait_history(Duration::from_secs(30), |h| {
        received(h, "#paste", "alice").contains(&last)
    });
    if !caught_up {
        let (a, b) = (p[0].stats(), p[1].stats());
        let got = p[1].texts_from("#paste", "alice").len();
        panic!(
            "bob has {got} of {} after 30 s; alice: {a}\nbob: {b}",
            both.len()
        );
    }
    eprintln!(
        "bob caught up {:?} after it resumed; alice: {}; bob: {}",
        resumed.elapsed(),
        p[0].stats(),
        p[1].stats()
    );
    let want = vec![("alice".to_string(), both)];
    expect_exact(&mut p[1..], "#paste", &want, Duration::from_secs(30));
    p[0].expect("sending", &done, Duration::from_secs(30));
    let progress = sending(&p[0].history[before..], "paste");
    eprintln!(
        "first progress while bob was stopped: {partial}; {} sending events in all",
        progress.len()
    );
    let dones: Vec<u64> = progress.iter().filter_map(|v| v["done"].as_u64()).collect();
    assert!(
        dones.windows(2).all(|w| w[0] <= w[1]),
        "progress went back: {dones:?}"
    );
    assert!(
        progress.iter().all(|v| v["total"] == json!(LINES)),
        "{progress:?}"
    );
    if p[0].history.iter().any(|v| v["event"] == "delivery_failed") {
        p[0].fail("a delivery failed");
    }
}
