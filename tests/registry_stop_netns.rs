//! The registry stops on SIGTERM and SIGINT even when no datagram reaches
//! it: in a network namespace whose nftables input hook drops every UDP
//! datagram, the wake-up datagram that shutdown sends to the registry's
//! own heartbeat socket is lost. Before the fix this hung for ever; now
//! the registry must exit within 3 s, and a second signal must end it at
//! once whatever it is doing.
//!
//! Needs root, `ip` and `nft` (see `kit::netns`); without them it prints a
//! SKIP line and passes, unless `CI` is set.

mod kit;

use kit::{poll, Lab, Registry};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// The promise: exit within 3 s of the signal.
const STOP_BOUND: Duration = Duration::from_secs(3);

#[test]
fn the_registry_stops_within_3_s_when_every_datagram_is_lost() {
    let ip = Ipv4Addr::new(10, 196, 0, 1);
    let Some(lab) = Lab::start("lcstop", "stop", &[("reg", ip)], true) else {
        return;
    };
    lab.drop_udp_input("reg", 100).expect("drop rule");
    // Serving for real before the signal: the heartbeat receiver is in its
    // loop (a signal that comes earlier stops it before its first receive,
    // and the stop is then quick whatever the network does).
    let start = || {
        let reg = Registry::builder()
            .prefix(&lab.prefix("reg"))
            .listen(&format!("{ip}:0"))
            .envs(&[("RUST_LOG", "info")])
            .start();
        poll(STOP_BOUND, "the registry receives heartbeats", || {
            reg.log().contains("receiving heartbeats on")
        });
        reg
    };
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let mut reg = start();
        let sent = Instant::now();
        let status = reg.signal_and_wait(&[sig], STOP_BOUND + Duration::from_secs(5));
        let took = sent.elapsed();
        let status = status.unwrap_or_else(|| panic!("still running {took:?} after {name}"));
        assert!(took < STOP_BOUND, "{name}: stopped after {took:?}");
        assert_eq!(status.code(), Some(0), "{name}: a clean stop");
        eprintln!("{name}: stopped after {took:?} with every datagram lost");
    }
    // A second signal while the first stop is under way ends the registry
    // at once: exit status 1 instead of the clean stop's 0, which here
    // would come only after the heartbeat receiver's one-second tick.
    let mut reg = start();
    kit::process::signal(reg.pid(), libc::SIGTERM).expect("SIGTERM");
    poll(STOP_BOUND, "the registry logs that it is stopping", || {
        reg.log().contains("stopping (signal)")
    });
    let status = reg
        .signal_and_wait(&[libc::SIGTERM], STOP_BOUND)
        .expect("exit after a second SIGTERM");
    assert_eq!(status.code(), Some(1), "{status:?}: {}", reg.log());
    assert!(
        reg.log().contains("second signal: exiting now"),
        "{}",
        reg.log()
    );
}
