//! Hardening over a real (virtual) LAN: the registry and three peers, each in
//! a network namespace of its own, on a bridge in one more namespace,
//! 10.197.0.0/24. One peer's cable is pulled (its veth port on the bridge
//! is set down): nothing is closed, packets just stop.
//!
//! - `link_cut_takes_a_peer_offline_and_out_of_its_room`: within 5 s the
//!   registry shows it offline, the other members report it left, and the
//!   registry's member list drops it.
//! - `peer_comes_back_after_its_link_is_restored`: the cable goes back in;
//!   the peer must be online and in its room again, by itself, within 10 s.
//!
//! Needs root and `ip`. Without them the tests print a SKIP line and pass,
//! unless the environment variable `CI` is set, when they fail (as in
//! `rooms_netns`). Namespaces are named after the test process id and the
//! test, deleted by a guard even when a test panics; those of an earlier
//! run whose process is gone are removed at start.

mod rooms_common;

use rooms_common::*;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

const NS_PREFIX: &str = "lchard";
const PEERS: [&str; 3] = ["alice", "bob", "carol"];
/// The peer whose link is cut.
const CUT: usize = 2;
const ROOM: &str = "lab";
/// Offline at the registry, and out of every list, within this.
const DETECT_BOUND: Duration = Duration::from_secs(5);

fn registry_ip() -> Ipv4Addr {
    Ipv4Addr::new(10, 197, 0, 1)
}

fn peer_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 197, 0, 10 + i as u8)
}

/// Runs a command; `Err` with its output if it fails.
fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn output(args: &[&str]) -> String {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// What this machine lacks for the tests, if anything.
fn missing_prerequisites() -> Vec<String> {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (network namespaces need it)".to_string());
    }
    if run(&["ip", "-V"]).is_err() {
        missing.push("the `ip` command (iproute2)".to_string());
    }
    missing
}

/// Fails under CI, skips otherwise.
fn unavailable(test: &str, why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test} cannot run here: {why} (CI is set, so this is a failure)");
    }
    eprintln!("SKIP {test}: {why} (set CI to make this a failure)");
}

/// Network namespaces one test created; deleted (last first) on drop,
/// which also removes the veth pairs and the bridge inside them.
struct Lab {
    tag: String,
    namespaces: Vec<String>,
}

impl Lab {
    /// `test` keeps the namespaces of tests running at once apart.
    fn new(test: &str) -> Lab {
        remove_leftovers();
        Lab {
            tag: format!("{NS_PREFIX}{}-{test}", std::process::id()),
            namespaces: Vec::new(),
        }
    }

    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.tag)
    }

    fn add_ns(&mut self, role: &str) -> Result<String, String> {
        let name = self.ns(role);
        run(&["ip", "netns", "add", &name])?;
        self.namespaces.push(name.clone());
        run(&["ip", "-n", &name, "link", "set", "lo", "up"])?;
        Ok(name)
    }

    /// The bridge, then one host namespace per `(role, ip)` plugged into it
    /// through bridge port `v<i>`.
    fn build(&mut self, hosts: &[(&str, Ipv4Addr)]) -> Result<(), String> {
        let br = self.add_ns("br")?;
        run(&["ip", "-n", &br, "link", "add", "br0", "type", "bridge"])?;
        run(&["ip", "-n", &br, "link", "set", "br0", "up"])?;
        for (i, (role, ip)) in hosts.iter().enumerate() {
            let ns = self.add_ns(role)?;
            let port = format!("v{i}");
            run(&[
                "ip", "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ])?;
            run(&["ip", "-n", &br, "link", "set", &port, "master", "br0", "up"])?;
            let cidr = format!("{ip}/24");
            run(&["ip", "-n", &ns, "addr", "add", &cidr, "dev", "eth0"])?;
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    /// Sets bridge port `v<i>` up or down: the cable of host `i`.
    fn cable(&self, i: usize, up: bool) {
        let port = format!("v{i}");
        let state = if up { "up" } else { "down" };
        run(&["ip", "-n", &self.ns("br"), "link", "set", &port, state])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// `ip netns exec NS` for `role`.
    fn prefix(&self, role: &str) -> Vec<String> {
        ["ip", "netns", "exec"]
            .iter()
            .map(|s| s.to_string())
            .chain([self.ns(role)])
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            if let Err(e) = run(&["ip", "netns", "del", ns]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// Deletes namespaces named by an earlier run whose process is gone.
fn remove_leftovers() {
    for line in output(&["ip", "netns", "list"]).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(NS_PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run(&["ip", "netns", "del", name]);
        }
    }
}

/// The registry and the three peers on the virtual LAN, logged in and all
/// in room [`ROOM`]; `None` (after a SKIP line) when namespaces are not
/// available here.
fn setup(test: &str) -> Option<(Lab, Registry, Vec<Peer>)> {
    let missing = missing_prerequisites();
    if !missing.is_empty() {
        unavailable(test, &format!("missing {}", missing.join(", ")));
        return None;
    }
    let mut lab = Lab::new(test);
    let mut hosts = vec![("reg", registry_ip())];
    for (i, name) in PEERS.iter().enumerate() {
        hosts.push((name, peer_ip(i)));
    }
    if let Err(e) = lab.build(&hosts) {
        if lab.namespaces.is_empty() {
            // Root, but no namespaces (e.g. a container without CAP_SYS_ADMIN).
            unavailable(test, &format!("cannot create a network namespace: {e}"));
            return None;
        }
        panic!("building the virtual LAN: {e}");
    }
    let reg = Registry::start_in(
        &lab.prefix("reg"),
        "0.0.0.0:0",
        Some(IpAddr::V4(registry_ip())),
    );
    let specs: Vec<(&str, PeerOpts)> = PEERS
        .iter()
        .map(|name| {
            let opts = PeerOpts {
                prefix: lab.prefix(name),
                faults: None,
            };
            (*name, opts)
        })
        .collect();
    let mut p = login_peers(reg.addr, &specs);
    p[0].send(&format!("/create {ROOM}"));
    p[0].expect(
        "room_joined",
        &[("room", json!(ROOM))],
        Duration::from_secs(10),
    );
    for x in p[1..].iter_mut() {
        x.send(&format!("/join {ROOM}"));
        x.expect(
            "room_joined",
            &[("room", json!(ROOM))],
            Duration::from_secs(10),
        );
    }
    await_full_mesh(&mut p, ROOM, Duration::from_secs(10));
    assert_eq!(p[0].registry_members(ROOM), PEERS, "members before the cut");
    Some((lab, reg, p))
}

/// `/search USER` on `p`: the `user` object.
fn search(p: &mut Peer, user: &str) -> Value {
    p.send(&format!("/search {user}"));
    p.expect("search_result", &[], Duration::from_secs(5))["user"].clone()
}

/// Polls (every 100 ms) until `cond` holds; panics with `what` once
/// `deadline` has passed. Returns when it held.
fn poll_until(deadline: Instant, what: &str, mut cond: impl FnMut() -> bool) -> Instant {
    loop {
        if cond() {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "{what}: not by the deadline");
        thread::sleep(Duration::from_millis(100));
    }
}

/// Cuts carol's link and checks the registry and the other members let her
/// go within [`DETECT_BOUND`]; returns when she was cut.
fn cut_and_check(lab: &Lab, p: &mut [Peer]) -> Instant {
    let victim = PEERS[CUT];
    let cut_us = now_us();
    let cut = Instant::now();
    lab.cable(1 + CUT, false);
    let deadline = cut + DETECT_BOUND;

    // The registry's view, polled through alice: offline, and off the
    // room's member list (both from the same sweep of stale sessions).
    let (mut offline, mut dropped) = (None, None);
    poll_until(
        deadline,
        "registry shows carol offline and out of the room",
        || {
            if offline.is_none() && search(&mut p[0], victim)["online"] == json!(false) {
                offline = Some(Instant::now());
            }
            if dropped.is_none() && !p[0].registry_members(ROOM).contains(&victim.to_string()) {
                dropped = Some(Instant::now());
            }
            offline.is_some() && dropped.is_some()
        },
    );
    let (offline, dropped) = (offline.unwrap_or(cut), dropped.unwrap_or(cut));
    let mut left_after = Vec::new();
    for x in p.iter_mut().filter(|x| x.name != victim) {
        let left = deadline.saturating_duration_since(Instant::now());
        let v = x.expect(
            "member_left",
            &[("room", json!(ROOM)), ("user", json!(victim))],
            left,
        );
        let ts = v["ts_us"].as_u64().unwrap_or(cut_us);
        left_after.push((
            x.name.clone(),
            Duration::from_micros(ts.saturating_sub(cut_us)),
            v["reason"].clone(),
        ));
    }
    assert_eq!(p[1].registry_members(ROOM), ["alice", "bob"]);
    eprintln!(
        "link cut: registry showed {victim} offline after {:?} (polled), off #{ROOM} at the \
         registry after {:?} (polled); member_left (time after the cut, reason): {left_after:?}",
        offline - cut,
        dropped - cut
    );
    for (who, after, _) in &left_after {
        assert!(
            *after <= DETECT_BOUND,
            "{who}: member_left {after:?} after the cut"
        );
    }
    cut
}

#[test]
fn link_cut_takes_a_peer_offline_and_out_of_its_room() {
    let Some((lab, reg, mut p)) = setup("cut") else {
        return;
    };
    cut_and_check(&lab, &mut p);
    // The two left still talk to each other.
    p[0].send("still here");
    p[1].wait_messages(&format!("#{ROOM}"), "alice", 1, Duration::from_secs(5));
    assert_eq!(
        p[1].texts_from(&format!("#{ROOM}"), "alice"),
        ["still here"]
    );
    drop(p);
    drop(reg);
}

/// How long a restored link may take to bring the peer back: its
/// heartbeats resume at once; the registry, a session time-out (3 s) and a
/// reconnect with backoff are plenty within this.
const RESTORE_BOUND: Duration = Duration::from_secs(10);

#[test]
fn peer_comes_back_after_its_link_is_restored() {
    let Some((lab, reg, mut p)) = setup("flap") else {
        return;
    };
    let victim = PEERS[CUT];
    cut_and_check(&lab, &mut p);
    let restored = Instant::now();
    lab.cable(1 + CUT, true);
    let deadline = restored + RESTORE_BOUND;
    let online = poll_until(
        deadline,
        "carol online again after the link came back",
        || search(&mut p[0], victim)["online"] == json!(true),
    );
    for x in p.iter_mut().filter(|x| x.name != victim) {
        let left = deadline.saturating_duration_since(Instant::now());
        x.expect(
            "member_joined",
            &[("room", json!(ROOM)), ("user", json!(victim))],
            left,
        );
    }
    let back = Instant::now();
    eprintln!(
        "link restored: {victim} online again after {:?}, back in #{ROOM} after {:?}",
        online - restored,
        back - restored
    );
    // And messages flow to her again.
    p[0].send("welcome back");
    p[CUT].wait_messages(&format!("#{ROOM}"), "alice", 1, Duration::from_secs(5));
    drop(p);
    drop(reg);
}
