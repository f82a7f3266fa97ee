//! Registries found on the LAN (issue 13, item 5): a registry announces
//! itself with DNS-SD over multicast DNS (`_lanchat._tcp.local.`), and a
//! peer started with no `--registry` and no `REGISTRY_ADDR` finds it.
//! Each test builds hosts on a bridge in network namespaces (10.197.x.0/24):
//! the registry on one host, the peer on another, real binaries.
//!
//! Needs root and `ip` (see `kit::netns`); without them each test prints a
//! SKIP line and passes, unless `CI` is set.

mod kit;

use kit::{Lab, Peer, Registry, WAIT};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::time::Instant;

/// The registry a peer uses when it finds none.
const FALLBACK: &str = "127.0.0.1:15600";

/// The `discovery` event's `found` list as (name, addr) pairs.
fn found(ev: &Value) -> Vec<(String, String)> {
    ev["found"]
        .as_array()
        .expect("found is a list")
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("name"), s("addr"))
        })
        .collect()
}

#[test]
fn a_peer_with_no_registry_given_finds_the_one_on_the_lan_and_logs_in() {
    let reg_ip = Ipv4Addr::new(10, 197, 1, 1);
    let hosts = [("reg", reg_ip), ("amy", Ipv4Addr::new(10, 197, 1, 2))];
    let Some(lab) = Lab::start("lcdisc", "found", &hosts, false) else {
        return;
    };
    let reg = lab.registry("reg", reg_ip);
    let want = format!("{reg_ip}:{}", reg.port());
    let started = Instant::now();
    let mut amy = Peer::start("", "amy", &lab.peer_opts("amy"));
    let ev = amy.expect("discovery", &[("using", want.as_str())], WAIT);
    let took = started.elapsed();
    let list = found(&ev);
    assert_eq!(list.len(), 1, "{ev}");
    assert_eq!(list[0].1, want, "{ev}");
    assert!(
        list[0].0.starts_with("lanchat registry on "),
        "instance name: {ev}"
    );
    assert_eq!(ev["found"][0]["proto"], "1", "TXT proto: {ev}");
    amy.login_new("amy");
    eprintln!("found {want} and ready after {took:?} (browse 1 s)");
}

#[test]
fn with_announcing_off_the_peer_falls_back_to_loopback_with_a_hint() {
    let reg_ip = Ipv4Addr::new(10, 197, 2, 1);
    let hosts = [("reg", reg_ip), ("bob", Ipv4Addr::new(10, 197, 2, 2))];
    let Some(lab) = Lab::start("lcdisc", "none", &hosts, false) else {
        return;
    };
    let _reg = Registry::builder()
        .prefix(&lab.prefix("reg"))
        .listen("0.0.0.0:0")
        .connect_ip(reg_ip.into())
        .flags(&["--no-announce"])
        .start();
    let mut bob = Peer::start("", "bob", &lab.peer_opts("bob"));
    let ev = bob.expect("discovery", &[("using", FALLBACK)], WAIT);
    assert!(found(&ev).is_empty(), "{ev}");
    // Nothing listens on the fallback in bob's namespace.
    bob.expect("error", &[("code", "registry_unreachable")], WAIT);
}

/// The human line names the hint (`--registry`, `REGISTRY_ADDR`).
#[test]
fn the_fallback_line_names_both_ways_to_give_a_registry() {
    let Some(lab) = Lab::start(
        "lcdisc",
        "hint",
        &[("solo", Ipv4Addr::new(10, 197, 3, 1))],
        false,
    ) else {
        return;
    };
    let out = kit::process::command(&lab.prefix("solo"), env!("CARGO_BIN_EXE_peer"))
        .args(["--no-color", "--script", "/dev/null"])
        .env_remove("REGISTRY_ADDR")
        .output()
        .expect("run peer");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("no registry found on the LAN; trying 127.0.0.1:15600")
            && text.contains("--registry")
            && text.contains("REGISTRY_ADDR"),
        "{text}"
    );
}

#[test]
fn of_several_registries_the_peer_lists_all_and_uses_the_first_by_name() {
    let ips = [Ipv4Addr::new(10, 197, 4, 1), Ipv4Addr::new(10, 197, 4, 2)];
    let hosts = [
        ("r1", ips[0]),
        ("r2", ips[1]),
        ("cat", Ipv4Addr::new(10, 197, 4, 3)),
    ];
    let Some(lab) = Lab::start("lcdisc", "many", &hosts, false) else {
        return;
    };
    let regs = [lab.registry("r1", ips[0]), lab.registry("r2", ips[1])];
    let mut cat = Peer::start("", "cat", &lab.peer_opts("cat"));
    let ev = cat.expect_where("discovery of 2", |v| v["event"] == "discovery", WAIT);
    let list = found(&ev);
    let mut want: Vec<String> = regs
        .iter()
        .zip(ips)
        .map(|(r, ip)| format!("{ip}:{}", r.port()))
        .collect();
    let mut names: Vec<String> = list.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    assert_eq!(
        list.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        names,
        "sorted: {ev}"
    );
    let mut got: Vec<String> = list.iter().map(|(_, a)| a.clone()).collect();
    assert_eq!(ev["using"].as_str(), Some(got[0].as_str()), "{ev}");
    got.sort();
    want.sort();
    assert_eq!(got, want, "{ev}");
    cat.login_new("cat");
}

/// At a terminal, several registries found are listed with numbers and the
/// user picks one; the peer then uses that one.
#[test]
fn at_a_terminal_the_user_picks_one_of_several_registries() {
    if !kit::tmux::tmux_available() {
        return;
    }
    let ips = [Ipv4Addr::new(10, 197, 5, 1), Ipv4Addr::new(10, 197, 5, 2)];
    let hosts = [
        ("r1", ips[0]),
        ("r2", ips[1]),
        ("dan", Ipv4Addr::new(10, 197, 5, 3)),
    ];
    let Some(lab) = Lab::start("lcdisc", "pick", &hosts, false) else {
        return;
    };
    let regs = [lab.registry("r1", ips[0]), lab.registry("r2", ips[1])];
    let addrs: Vec<String> = regs
        .iter()
        .zip(ips)
        .map(|(r, ip)| format!("{ip}:{}", r.port()))
        .collect();
    let cmd = format!(
        "exec {} env -u REGISTRY_ADDR RUST_LOG=error '{}' --no-color",
        lab.prefix("dan").join(" "),
        env!("CARGO_BIN_EXE_peer")
    );
    let t = kit::tmux::Tmux::start(&cmd, 160, 30);
    let s = t.wait_screen("the numbered list and the question", WAIT, |s| {
        s.contains("which one? [1-2, Enter for 1]:")
    });
    assert!(s.contains("found 2 registries on the LAN:"), "{s}");
    // Listed by name; find the number of the second registry's address.
    let line_of = |addr: &str| {
        s.lines()
            .find(|l| l.trim_end().ends_with(&format!(" at {addr}")))
            .unwrap_or_else(|| panic!("{addr} listed: {s}"))
            .trim()
            .to_string()
    };
    let pick = line_of(&addrs[1]);
    let number = pick.split(')').next().expect("numbered").to_string();
    t.type_line("9");
    t.wait_screen("the rule", WAIT, |s| {
        s.contains("type a number from 1 to 2")
    });
    t.type_line(&number);
    let name = pick
        .split_once(") ")
        .and_then(|(_, rest)| rest.rsplit_once(" at "))
        .expect("N) NAME at ADDR")
        .0
        .to_string();
    // (The line may wrap: look at the screen without its line breaks.)
    t.wait_screen("the choice named", WAIT, |s| {
        s.replace('\n', "")
            .contains(&format!("; using {name} (choose"))
    });
    // It is that registry the peer talks to: register there.
    t.type_command("/register dan");
    t.wait_screen("the password prompt", WAIT, |s| {
        s.contains("password for dan")
    });
    t.type_line("dan-password-1");
    t.wait_screen("the second prompt", WAIT, |s| s.contains("repeat it:"));
    t.type_line("dan-password-1");
    t.wait_screen("registered", WAIT, |s| s.contains("registered dan"));
    // `pick` is the second registry's line, whatever its number.
    let (chosen, other) = (&regs[1], &regs[0]);
    assert!(chosen.log().contains("registered dan"), "the picked one");
    assert!(!other.log().contains("registered dan"), "not the other");
}
