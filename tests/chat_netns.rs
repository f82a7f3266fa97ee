//! One-to-one chats across a network cut, on a real (virtual) LAN: the
//! registry, alice and bob each in a network namespace of their own, on a
//! bridge, 10.195.0.0/24. Bob's cable is pulled (his veth port on the
//! bridge is set down): nothing is closed, packets just stop.
//!
//! - `cut_chat_resumes_and_delivers_exactly_once` (issue 11, item 12):
//!   the cable is out for 10 s; a message alice sends as it goes and one
//!   she types during the cut both reach bob, once each and in order,
//!   when the chat resumes by itself after the cable is back; so does the
//!   one bob types during the cut.
//! - `chat_cut_on_the_redialling_side_resumes_too`: the same with alice's
//!   cable (alice's name sorts first, so she is the one who redials).
//! - `chat_that_never_resumes_names_what_was_not_delivered`: bob is
//!   killed during the cut; alice's chat gives up (after
//!   `--chat-resume-secs 6`) and names the message bob never
//!   acknowledged, and not the one he did.
//!
//! Needs root and `ip`: without them the tests print a SKIP line and pass,
//! unless `CI` is set (see `kit::netns`).

mod kit;

use kit::*;
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const NS_PREFIX: &str = "lcchat";
/// Bridge ports of alice's and bob's namespaces (the registry's is 0).
const ALICE_CABLE: usize = 1;
const BOB_CABLE: usize = 2;
/// How long the cable stays out, as in the issue.
const CUT: Duration = Duration::from_secs(10);

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 195, 0, last)
}

/// The lab, its registry, and alice and bob logged in with a chat open
/// (alice with `alice_args`); `None` after a SKIP line.
fn setup(test: &str, alice_args: &[&str]) -> Option<(Lab, Registry, Peer, Peer)> {
    let hosts = [("reg", ip(1)), ("alice", ip(10)), ("bob", ip(11))];
    let lab = Lab::start(NS_PREFIX, test, &hosts, false)?;
    let reg = lab.registry("reg", ip(1));
    let mut alice_opts = lab.peer_opts("alice");
    alice_opts.args = alice_args.iter().map(|s| s.to_string()).collect();
    let specs = [("alice", alice_opts), ("bob", lab.peer_opts("bob"))];
    let mut p = login_peers(reg.addr(), &specs);
    let bob = p.pop().expect("bob");
    let mut alice = p.pop().expect("alice");
    let mut bob = bob;
    open_chat(&mut alice, &mut bob);
    Some((lab, reg, alice, bob))
}

/// Messages `who` received from `from`: (id, text), in order.
fn got(who: &Peer, from: &str) -> Vec<(u64, String)> {
    who.history
        .iter()
        .filter(|v| v["event"] == "message" && v["own"] != json!(true) && v["chat"] == from)
        .map(|v| {
            let id = v["id"].as_u64().unwrap_or(0);
            (id, v["text"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

fn pairs(list: &[(u64, &str)]) -> Vec<(u64, String)> {
    list.iter().map(|(i, t)| (*i, t.to_string())).collect()
}

/// The chat, the cable `cable` (alice's or bob's) out for [`CUT`]; both
/// type during the cut; everything arrives once, in order, on resume.
fn cut_and_resume(test: &str, cable: usize) {
    let Some((lab, _reg, mut alice, mut bob)) = setup(test, &[]) else {
        return;
    };
    alice.send("before the cut");
    bob.expect("message", &[("text", "before the cut")], WAIT);

    lab.cable(cable, false);
    let cut = Instant::now();
    // Typed as the link goes: shown as sent, but it cannot arrive.
    alice.send("as the link went");
    alice.expect("message", &[("text", "as the link went")], WAIT);
    for p in [&mut alice, &mut bob] {
        let other = if p.name == "alice" { "bob" } else { "alice" };
        let v = p.expect("chat_interrupted", &[("with", other)], WAIT);
        eprintln!(
            "{} saw the chat interrupted {:?} after the cut ({})",
            p.name,
            cut.elapsed(),
            v["reason"]
        );
        // Typed during the cut: shown as queued.
        let text = format!("{} typed during the cut", p.name);
        p.send(&text);
        p.expect(
            "message",
            &[("text", json!(text)), ("queued", json!(true))],
            WAIT,
        );
    }
    // Nothing resumes, or ends, while the cable is out.
    alice.expect_none("chat_resumed", ANY, CUT.saturating_sub(cut.elapsed()));
    for p in [&mut alice, &mut bob] {
        p.expect_none("chat_closed", ANY, Duration::ZERO);
    }

    lab.cable(cable, true);
    let back = Instant::now();
    alice.expect("chat_resumed", &[("with", "bob")], Duration::from_secs(20));
    bob.expect("chat_resumed", &[("with", "alice")], WAIT);
    let resumed = back.elapsed();
    bob.expect("message", &[("text", "alice typed during the cut")], WAIT);
    alice.expect("message", &[("text", "bob typed during the cut")], WAIT);
    // One more each way after the resume: anything sent twice would have
    // come before it.
    alice.send("after");
    bob.expect("message", &[("text", "after")], WAIT);
    bob.send("all here");
    alice.expect("message", &[("text", "all here")], WAIT);
    eprintln!("chat resumed {resumed:?} after the cable was back");

    assert_eq!(
        got(&bob, "alice"),
        pairs(&[
            (1, "before the cut"),
            (2, "as the link went"),
            (3, "alice typed during the cut"),
            (4, "after")
        ]),
        "bob's messages from alice"
    );
    assert_eq!(
        got(&alice, "bob"),
        pairs(&[(1, "bob typed during the cut"), (2, "all here")]),
        "alice's messages from bob"
    );
    for p in [&alice, &bob] {
        let ends: Vec<&Value> = p
            .history
            .iter()
            .filter(|v| v["event"] == "chat_closed" || v["event"] == "undelivered")
            .collect();
        assert!(ends.is_empty(), "{}: {ends:?}", p.name);
    }
}

#[test]
fn cut_chat_resumes_and_delivers_exactly_once() {
    cut_and_resume("resume", BOB_CABLE);
}

/// The same with the cable of alice, the side that redials, pulled.
#[test]
fn chat_cut_on_the_redialling_side_resumes_too() {
    cut_and_resume("resume-a", ALICE_CABLE);
}

#[test]
fn chat_that_never_resumes_names_what_was_not_delivered() {
    let Some((lab, _reg, mut alice, mut bob)) = setup("giveup", &["--chat-resume-secs", "6"])
    else {
        return;
    };
    alice.send("delivered");
    bob.expect("message", &[("text", "delivered")], WAIT);
    // Bob's ack of it was written before his answer: once alice has the
    // answer, she has the ack.
    bob.send("got it");
    alice.expect("message", &[("text", "got it")], WAIT);

    lab.cable(BOB_CABLE, false);
    bob.kill9();
    let cut = Instant::now();
    alice.send("never arrives");
    alice.expect("chat_interrupted", &[("with", "bob")], WAIT);
    let v = alice.expect("chat_closed", &[("with", "bob")], Duration::from_secs(15));
    let ended = cut.elapsed();
    assert_eq!(v["reason"], "did not come back");
    let v = alice.expect("undelivered", &[("with", "bob")], WAIT);
    assert_eq!(
        v["messages"],
        json!([{"id": 2, "text": "never arrives"}]),
        "{v}"
    );
    eprintln!("alice gave the chat up {ended:?} after the cut");
    assert!(ended < Duration::from_secs(12), "{ended:?}");
}
