//! The registry stops on SIGTERM and SIGINT even when no datagram reaches
//! it: in a network namespace whose nftables input hook drops every UDP
//! datagram, the wake-up datagram that shutdown sends to the registry's
//! own heartbeat socket is lost. Before the fix this hung for ever; now
//! the registry must exit within 3 s, and a second signal must end it at
//! once whatever it is doing.
//!
//! Needs root, `ip` and `nft` (see `netns`); without them it prints a SKIP
//! line and passes, unless `CI` is set.

mod netns;

use netns::Lab;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const NS_PREFIX: &str = "lcstop";
/// The promise: exit within 3 s of the signal.
const STOP_BOUND: Duration = Duration::from_secs(3);

/// A registry in `lab`'s `reg` namespace, once it printed its listening line.
fn start(lab: &Lab, dir: &std::path::Path) -> Child {
    let mut cmd = Command::new(lab.prefix("reg")[0].clone());
    cmd.args(&lab.prefix("reg")[1..])
        .arg(env!("CARGO_BIN_EXE_registry"))
        .args(["--listen", "10.196.0.1:0", "--store"])
        .arg(dir.join("r.db"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn registry");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert!(line.starts_with("registry listening on"), "{line:?}");
    child
}

/// Sends `sig` to the registry; how long it took to exit, if it did
/// within `limit`.
fn signal_and_wait(child: &mut Child, sigs: &[i32], limit: Duration) -> Option<Duration> {
    // `ip netns exec` execs the registry, so the child's pid is the registry's.
    let pid = child.id() as i32;
    let sent = Instant::now();
    for &sig in sigs {
        // SAFETY: kill only sends a signal to our own child.
        unsafe { libc::kill(pid, sig) };
    }
    let (tx, rx) = mpsc::channel();
    let mut waiter = std::mem::replace(child, Command::new("true").spawn().expect("true"));
    std::thread::spawn(move || {
        let _ = tx.send(waiter.wait().map(|_| ()));
        waiter
    });
    rx.recv_timeout(limit).ok().map(|_| sent.elapsed())
}

#[test]
fn the_registry_stops_within_3_s_when_every_datagram_is_lost() {
    let Some(lab) = Lab::start(
        NS_PREFIX,
        "stop",
        &[("reg", Ipv4Addr::new(10, 196, 0, 1))],
        true,
    ) else {
        return;
    };
    lab.drop_udp_input("reg", 100).expect("drop rule");
    let dir = tempfile::tempdir().expect("tempdir");
    for (sigs, name) in [
        (&[libc::SIGTERM][..], "SIGTERM"),
        (&[libc::SIGINT][..], "SIGINT"),
    ] {
        let mut reg = start(&lab, dir.path());
        let took = signal_and_wait(&mut reg, sigs, STOP_BOUND + Duration::from_secs(5));
        let _ = reg.kill();
        let took = took.unwrap_or_else(|| panic!("still running 8 s after {name}"));
        assert!(took < STOP_BOUND, "{name}: stopped after {took:?}");
        eprintln!("{name}: stopped after {took:?} with every datagram lost");
    }
    // A second signal acts at once, even while the first stop is under way.
    let mut reg = start(&lab, dir.path());
    let took = signal_and_wait(&mut reg, &[libc::SIGTERM, libc::SIGTERM], STOP_BOUND)
        .expect("exit after two signals");
    assert!(took < Duration::from_secs(2), "two signals: {took:?}");
}
