//! Rooms over a real (virtual) LAN with real packet loss: one network
//! namespace per host (the registry and four peers) on a bridge in a
//! namespace of its own, 10.199.0.0/24, and an nftables rule in every peer
//! namespace dropping 10% of incoming UDP. The peers' own injector adds
//! duplication and reordering. Two senders, 250 messages each; everyone
//! must get every message exactly once, in each sender's order.
//!
//! Needs root, `ip` and `nft`. Without them the test prints a SKIP line and
//! passes, unless the environment variable `CI` is set, when it fails.
//! Namespaces are named after the test process id, so parallel or leftover
//! runs do not clash, and are deleted by a guard even when the test panics
//! (leftovers of a killed run, whose pid is gone, are removed at start).

mod rooms_common;

use rooms_common::*;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::{Duration, Instant};

const NS_PREFIX: &str = "lcrooms";
const PEERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const PER_SENDER: usize = 250;
const BOUND: Duration = Duration::from_secs(60);

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

/// What this machine lacks for the test, if anything.
fn missing_prerequisites() -> Vec<String> {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (network namespaces and nftables need it)".to_string());
    }
    if run(&["ip", "-V"]).is_err() {
        missing.push("the `ip` command (iproute2)".to_string());
    }
    if run(&["nft", "--version"]).is_err() {
        missing.push("the `nft` command (nftables)".to_string());
    }
    missing
}

/// Fails under CI, skips otherwise.
fn unavailable(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("rooms_netns cannot run here: {why} (CI is set, so this is a failure)");
    }
    eprintln!("SKIP rooms_netns: {why} (set CI to make this a failure)");
}

/// Network namespaces this run created; deleted (last first) on drop,
/// which also removes the veth pairs and the bridge inside them.
struct Lab {
    tag: String,
    namespaces: Vec<String>,
}

impl Lab {
    fn new() -> Lab {
        remove_leftovers();
        Lab {
            tag: format!("{NS_PREFIX}{}", std::process::id()),
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

    /// The bridge, then one host namespace per `(role, ip)` plugged into it.
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
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                "eth0",
            ])?;
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    /// Drops 10% of the UDP datagrams arriving in `role`'s namespace. Only
    /// peers get this: heartbeats go from peers to the registry's namespace,
    /// which has no rule, so presence is not at stake (TCP is untouched).
    fn lossy_input(&self, role: &str) -> Result<(), String> {
        let ns = self.ns(role);
        let nft = |rest: &[&str]| {
            let mut args = vec!["ip", "netns", "exec", &ns, "nft"];
            args.extend_from_slice(rest);
            run(&args)
        };
        nft(&["add", "table", "inet", "lossy"])?;
        nft(&[
            "add",
            "chain",
            "inet",
            "lossy",
            "input",
            "{ type filter hook input priority 0; }",
        ])?;
        nft(&[
            "add", "rule", "inet", "lossy", "input", "meta", "l4proto", "udp", "numgen", "random",
            "mod", "10", "0", "counter", "drop",
        ])
    }

    /// Packets the loss rule in `role`'s namespace dropped so far.
    fn dropped(&self, role: &str) -> Option<u64> {
        let text = output(&[
            "ip",
            "netns",
            "exec",
            &self.ns(role),
            "nft",
            "list",
            "table",
            "inet",
            "lossy",
        ]);
        let after = text.split("counter packets ").nth(1)?;
        after.split_whitespace().next()?.parse().ok()
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

#[test]
fn five_hundred_messages_over_a_lossy_bridged_lan() {
    let missing = missing_prerequisites();
    if !missing.is_empty() {
        return unavailable(&format!("missing {}", missing.join(", ")));
    }
    // Declared first, so dropped last: after every process in it is killed.
    let mut lab = Lab::new();
    let registry_ip = Ipv4Addr::new(10, 199, 0, 1);
    let mut hosts = vec![("reg", registry_ip)];
    for (i, name) in PEERS.iter().enumerate() {
        hosts.push((name, Ipv4Addr::new(10, 199, 0, 10 + i as u8)));
    }
    if let Err(e) = lab.build(&hosts) {
        if lab.namespaces.is_empty() {
            // Root, but no namespaces (e.g. a container without CAP_SYS_ADMIN).
            return unavailable(&format!("cannot create a network namespace: {e}"));
        }
        panic!("building the virtual LAN: {e}");
    }
    for name in PEERS {
        lab.lossy_input(name)
            .unwrap_or_else(|e| panic!("nftables: {e}"));
    }

    let reg = Registry::start_in(
        &lab.prefix("reg"),
        "0.0.0.0:0",
        Some(IpAddr::V4(registry_ip)),
    );
    let specs: Vec<(&str, PeerOpts)> = PEERS
        .iter()
        .map(|name| {
            let opts = PeerOpts {
                prefix: lab.prefix(name),
                faults: Some("dup=0.05,reorder=0.1".into()),
            };
            (*name, opts)
        })
        .collect();
    let mut p = login_peers(reg.addr, &specs);
    for (x, (_, ip)) in p.iter().zip(&hosts[1..]) {
        let me = x
            .history
            .iter()
            .find(|v| v["event"] == "logged_in")
            .expect("logged_in");
        assert_eq!(me["address"]["ip"], json!(ip.to_string()), "{me}");
    }

    p[0].send("/create mesh");
    p[0].expect(
        "room_joined",
        &[("room", json!("mesh"))],
        Duration::from_secs(10),
    );
    for x in p[1..].iter_mut() {
        x.send("/join mesh");
        x.expect(
            "room_joined",
            &[("room", json!("mesh"))],
            Duration::from_secs(10),
        );
    }
    await_full_mesh(&mut p, "mesh", Duration::from_secs(20));

    let texts =
        |who: &str| -> Vec<String> { (0..PER_SENDER).map(|i| format!("{who} {i:03}")).collect() };
    let senders = ["alice", "bob"];
    let started = Instant::now();
    // Interleave the two senders' bursts of 25.
    for start in (0..PER_SENDER).step_by(25) {
        let chunk = start..(start + 25).min(PER_SENDER);
        for (s, who) in senders.iter().enumerate() {
            p[s].send_lines(texts(who)[chunk.clone()].to_vec());
        }
    }
    let want: Vec<(String, Vec<String>)> =
        senders.iter().map(|s| (s.to_string(), texts(s))).collect();
    expect_exact(&mut p, "#mesh", &want, BOUND);
    let elapsed = started.elapsed();
    for x in p[..2].iter_mut() {
        let ids = own_ids(x, "#mesh", PER_SENDER);
        expect_delivered(x, "mesh", &ids, PEERS.len() - 1, Duration::from_secs(30));
    }
    let delivered_all = started.elapsed();

    let stats: Vec<Value> = p.iter_mut().map(|x| x.stats()).collect();
    eprintln!(
        "netns: {} messages from 2 senders to {} peers (10% UDP loss in nftables, \
         dup=0.05,reorder=0.1 injected): all received in {elapsed:?}, all acknowledged in \
         {delivered_all:?}",
        2 * PER_SENDER,
        PEERS.len()
    );
    for (x, s) in p.iter().zip(&stats) {
        eprintln!(
            "  {:>5}: nft dropped {:>4?} | {s}",
            x.name,
            lab.dropped(&x.name).unwrap_or(0)
        );
    }
    assert!(elapsed < BOUND, "took {elapsed:?}");
    for (x, s) in p.iter().zip(&stats) {
        let want = if x.name == "alice" || x.name == "bob" {
            PER_SENDER
        } else {
            2 * PER_SENDER
        };
        assert_eq!(s["messages_delivered"], json!(want), "{}: {s}", x.name);
        assert!(
            lab.dropped(&x.name).unwrap_or(0) > 0,
            "{}: nothing dropped?",
            x.name
        );
    }
    for (x, s) in p[..2].iter().zip(&stats) {
        assert!(
            s["retransmits"].as_u64().unwrap_or(0) > 0,
            "{}: {s}",
            x.name
        );
    }
}
