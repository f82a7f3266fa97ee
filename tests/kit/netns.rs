//! A virtual LAN for tests: one network namespace per host, each plugged
//! into a bridge (in a namespace of its own) through a veth pair, so
//! processes run with `ip netns exec` see real, distinct addresses.
//!
//! Namespaces are named `<prefix><pid>-<test>-<role>`, so runs in parallel
//! do not clash; a [`Lab`] deletes its namespaces when dropped (even when
//! the test panics), and those of an earlier run whose process is gone are
//! removed when a new lab starts.
//!
//! Needs root and `ip` (and `nft` for [`Lab::lossy_input`]). [`Lab::start`]
//! checks: without them it prints a SKIP line and returns `None`, unless
//! the environment variable `CI` is set, when it fails the test.

use std::net::Ipv4Addr;
use std::process::Command;

/// Runs a command; `Err` with its output if it fails.
pub fn run(args: &[&str]) -> Result<(), String> {
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

/// A command's standard output (empty if it cannot run).
pub fn output(args: &[&str]) -> String {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// What this machine lacks, if anything.
fn missing_prerequisites(need_nft: bool) -> Vec<String> {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (network namespaces need it)".to_string());
    }
    if run(&["ip", "-V"]).is_err() {
        missing.push("the `ip` command (iproute2)".to_string());
    }
    if need_nft && run(&["nft", "--version"]).is_err() {
        missing.push("the `nft` command (nftables)".to_string());
    }
    missing
}

/// Fails under CI, skips otherwise.
pub fn unavailable(test: &str, why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test} cannot run here: {why} (CI is set, so this is a failure)");
    }
    eprintln!("SKIP {test}: {why} (set CI to make this a failure)");
}

/// Why a [`Lab`] could not be built.
#[derive(Debug)]
pub enum Unavailable {
    /// This machine cannot (no root, no `ip`/`nft`, no namespaces).
    Skip(String),
    /// It should have worked: a command failed half-way.
    Broken(String),
}

/// The IPv4 multicast range, routed to each host's bridge port.
const MULTICAST: &str = "224.0.0.0/4";

/// The namespaces one test created; deleted (last first) on drop, which
/// also removes the veth pairs and the bridge inside them.
pub struct Lab {
    tag: String,
    namespaces: Vec<String>,
}

impl Lab {
    /// Checks the prerequisites and builds the bridge with one host per
    /// `(role, ip)` (bridge port `v<i>` for host `i`); `None` after a SKIP
    /// line when this machine cannot.
    pub fn start(
        prefix: &str,
        test: &str,
        hosts: &[(&str, Ipv4Addr)],
        need_nft: bool,
    ) -> Option<Lab> {
        match Lab::try_start(prefix, test, hosts, need_nft) {
            Ok(lab) => Some(lab),
            Err(Unavailable::Skip(why)) => {
                unavailable(test, &why);
                None
            }
            Err(Unavailable::Broken(e)) => panic!("building the virtual LAN: {e}"),
        }
    }

    /// The same as [`Lab::start`], but says why instead of skipping or
    /// failing (for the benchmark, which reports it).
    pub fn try_start(
        prefix: &str,
        test: &str,
        hosts: &[(&str, Ipv4Addr)],
        need_nft: bool,
    ) -> Result<Lab, Unavailable> {
        let missing = missing_prerequisites(need_nft);
        if !missing.is_empty() {
            return Err(Unavailable::Skip(format!("missing {}", missing.join(", "))));
        }
        remove_leftovers(prefix);
        let mut lab = Lab {
            tag: format!("{prefix}{}-{test}", std::process::id()),
            namespaces: Vec::new(),
        };
        if let Err(e) = lab.build(hosts) {
            if lab.namespaces.is_empty() {
                // Root, but no namespaces (e.g. a container without CAP_SYS_ADMIN).
                return Err(Unavailable::Skip(format!(
                    "cannot create a network namespace: {e}"
                )));
            }
            return Err(Unavailable::Broken(e));
        }
        Ok(lab)
    }

    /// The namespace of `role`.
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.tag)
    }

    fn add_ns(&mut self, role: &str) -> Result<String, String> {
        let name = self.ns(role);
        run(&["ip", "netns", "add", &name])?;
        self.namespaces.push(name.clone());
        run(&["ip", "-n", &name, "link", "set", "lo", "up"])?;
        Ok(name)
    }

    fn build(&mut self, hosts: &[(&str, Ipv4Addr)]) -> Result<(), String> {
        let br = self.add_ns("br")?;
        // No IGMP snooping: multicast DNS (registry discovery) reaches
        // every port without a querier on the bridge.
        let no_snooping = ["mcast_snooping", "0"];
        run(&[
            &["ip", "-n", &br, "link", "add", "br0", "type", "bridge"][..],
            &no_snooping,
        ]
        .concat())?;
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
            // There is no default route; multicast (mDNS) needs one.
            run(&["ip", "-n", &ns, "route", "add", MULTICAST, "dev", "eth0"])?;
        }
        Ok(())
    }

    /// `ip netns exec NS` for `role`, to put in front of a command.
    pub fn prefix(&self, role: &str) -> Vec<String> {
        ["ip", "netns", "exec"]
            .iter()
            .map(|s| s.to_string())
            .chain([self.ns(role)])
            .collect()
    }

    /// Sets bridge port `v<i>` up or down: the cable of host `i`.
    pub fn cable(&self, i: usize, up: bool) {
        let port = format!("v{i}");
        let state = if up { "up" } else { "down" };
        run(&["ip", "-n", &self.ns("br"), "link", "set", &port, state])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Drops 10% of the UDP datagrams arriving in `role`'s namespace (an
    /// nftables rule on the input hook: silent loss, as on a real network).
    pub fn lossy_input(&self, role: &str) -> Result<(), String> {
        self.drop_udp_input(role, 10)
    }

    /// Drops `percent`% (1 to 100) of the UDP datagrams arriving in `role`'s
    /// namespace, loopback included.
    pub fn drop_udp_input(&self, role: &str, percent: u32) -> Result<(), String> {
        self.drop_input(role, percent, Some("udp"))
    }

    /// Drops `percent`% of every IP packet (TCP included) arriving in
    /// `role`'s namespace.
    pub fn drop_ip_input(&self, role: &str, percent: u32) -> Result<(), String> {
        self.drop_input(role, percent, None)
    }

    /// Drops `percent`% of the packets of protocol `l4` (`udp`, `tcp`; all
    /// without) arriving in `role`'s namespace.
    pub fn drop_input(&self, role: &str, percent: u32, l4: Option<&str>) -> Result<(), String> {
        assert!((1..=100).contains(&percent), "{percent}%");
        let below = format!("0-{}", percent - 1);
        let mut rule = Vec::new();
        if let Some(l4) = l4 {
            rule.extend(["meta", "l4proto", l4]);
        }
        rule.extend(["numgen", "random", "mod", "100", &below, "counter", "drop"]);
        self.input_rule(role, ["inet", "lossy"], &rule)
    }

    /// Drops every multicast packet arriving in `role`'s namespace (an
    /// nftables rule on the input hook: a switch or a firewall that does
    /// not pass multicast to that host), and counts them.
    pub fn deaf_to_multicast(&self, role: &str) -> Result<(), String> {
        let rule = ["ip", "daddr", MULTICAST, "counter", "drop"];
        self.input_rule(role, ["ip", "deaf"], &rule)
    }

    /// Adds nftables `rule` on the input hook of `role`'s namespace, in
    /// table `family table` (made, with its input chain, if new).
    fn input_rule(
        &self,
        role: &str,
        [family, table]: [&str; 2],
        rule: &[&str],
    ) -> Result<(), String> {
        let ns = self.ns(role);
        let nft = |rest: &[&str]| {
            let mut args = vec!["ip", "netns", "exec", &ns, "nft"];
            args.extend_from_slice(rest);
            run(&args)
        };
        nft(&["add", "table", family, table])?;
        let chain = "{ type filter hook input priority 0; }";
        nft(&["add", "chain", family, table, "input", chain])?;
        let mut add = vec!["add", "rule", family, table, "input"];
        add.extend_from_slice(rule);
        nft(&add)
    }

    /// Makes `role` send every TCP segment as a packet of its own (no
    /// segmentation offload on its veth), so a loss rule drops packets of
    /// at most the MTU, as on a real link, not 64 KiB aggregates.
    pub fn no_offload(&self, role: &str) -> Result<(), String> {
        let ns = self.ns(role);
        run(&["ip", "-n", &ns, "link", "set", "eth0", "gso_max_segs", "1"])
    }

    /// Packets the loss rule in `role`'s namespace dropped so far.
    pub fn dropped(&self, role: &str) -> Option<u64> {
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
}

/// Fixtures in the lab.
impl Lab {
    /// A registry in `role`'s namespace on `ip` (listening on every address
    /// there, a free port).
    pub fn registry(&self, role: &str, ip: Ipv4Addr) -> super::Registry {
        super::Registry::builder()
            .prefix(&self.prefix(role))
            .listen("0.0.0.0:0")
            .connect_ip(ip.into())
            .start()
    }

    /// Options for a peer in `role`'s namespace.
    pub fn peer_opts(&self, role: &str) -> super::PeerOpts {
        super::PeerOpts {
            prefix: self.prefix(role),
            ..super::PeerOpts::default()
        }
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
fn remove_leftovers(prefix: &str) {
    for line in output(&["ip", "netns", "list"]).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(prefix)
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
