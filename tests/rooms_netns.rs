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

mod kit;

use kit::*;
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const NS_PREFIX: &str = "lcrooms";
const PEERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const PER_SENDER: usize = 250;
const BOUND: Duration = Duration::from_secs(60);

#[test]
fn five_hundred_messages_over_a_lossy_bridged_lan() {
    let registry_ip = Ipv4Addr::new(10, 199, 0, 1);
    let mut hosts = vec![("reg", registry_ip)];
    for (i, name) in PEERS.iter().enumerate() {
        hosts.push((name, Ipv4Addr::new(10, 199, 0, 10 + i as u8)));
    }
    // Declared first, so dropped last: after every process in it is killed.
    let Some(lab) = Lab::start(NS_PREFIX, "rooms_netns", &hosts, true) else {
        return;
    };
    for name in PEERS {
        lab.lossy_input(name)
            .unwrap_or_else(|e| panic!("nftables: {e}"));
    }

    let reg = lab.registry("reg", registry_ip);
    let specs: Vec<(&str, PeerOpts)> = PEERS
        .iter()
        .map(|name| {
            let opts = PeerOpts {
                faults: Some("dup=0.05,reorder=0.1".into()),
                ..lab.peer_opts(name)
            };
            (*name, opts)
        })
        .collect();
    let mut p = login_peers(reg.addr(), &specs);
    for (x, (_, ip)) in p.iter().zip(&hosts[1..]) {
        let me = x
            .history
            .iter()
            .find(|v| v["event"] == "logged_in")
            .expect("logged_in");
        assert_eq!(me["address"]["ip"], json!(ip.to_string()), "{me}");
    }

    form_room(&mut p, "mesh", Duration::from_secs(20));

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
