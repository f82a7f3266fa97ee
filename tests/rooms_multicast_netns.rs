//! Room multicast (issue 16 item 5) on a real (virtual) LAN: the registry
//! and five peers, one network namespace each, on a bridge that carries
//! multicast (each host routes 224.0.0.0/4 to its veth; the bridge does no
//! IGMP snooping).
//!
//! - bob, erin and fred (the default, `--room-transport auto`; fred on
//!   erin's host, sharing its group port) hear the room's group: alice's
//!   texts reach them in one datagram, and they get no copy of their own;
//! - carol runs `--room-transport unicast`, and dave's host drops every
//!   multicast packet (nftables): both get every text by unicast;
//! - then bob's host starts dropping multicast too, in the middle of a
//!   run of texts: his peer falls back to unicast on its own, and nothing
//!   is lost, reordered or doubled.
//!
//! Needs root, `ip` and `nft`. Without them the test prints a SKIP line and
//! passes, unless the environment variable `CI` is set, when it fails.

mod kit;

use kit::*;
use serde_json::Value;
use std::net::Ipv4Addr;
use std::time::Duration;

const NS_PREFIX: &str = "lcmcast";
const T: Duration = Duration::from_secs(20);

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 193, 0, last)
}

fn count(stats: &Value, key: &str) -> u64 {
    stats[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {stats}"))
}

#[test]
fn the_group_carries_a_room_and_members_it_does_not_reach_lose_nothing() {
    let names = ["alice", "bob", "carol", "dave", "erin"];
    let mut hosts = vec![("reg", ip(1))];
    hosts.extend(names.iter().zip(10..).map(|(n, i)| (*n, ip(i))));
    let Some(lab) = Lab::start(NS_PREFIX, "rooms_multicast", &hosts, true) else {
        return;
    };
    lab.deaf_to_multicast("dave")
        .unwrap_or_else(|e| panic!("nftables: {e}"));
    let reg = lab.registry("reg", ip(1));
    let specs: Vec<(&str, PeerOpts)> = names
        .iter()
        .chain(&["fred"])
        .map(|n| {
            // Fred's peer runs on erin's host.
            let mut o = lab.peer_opts(if *n == "fred" { "erin" } else { n });
            if *n == "carol" {
                o.args = vec!["--room-transport".into(), "unicast".into()];
            }
            (*n, o)
        })
        .collect();
    let mut p = login_peers(reg.addr(), &specs);
    form_room(&mut p, "lab", T);
    // A member says it hears alice's copies in its first ACK after one
    // came by the group: until then it gets its own too.
    p[0].send("/msg #lab hello");
    for x in p[1..].iter_mut() {
        x.wait_messages("#lab", "alice", 1, T);
    }
    p[0].expect("delivery", &[("room", "lab")], T);

    let before: Vec<Value> = p.iter_mut().map(|x| x.stats()).collect();
    let mut first = vec!["hello".to_string()];
    first.extend((0..40).map(|k| format!("alice says {k:02}")));
    p[0].send_lines(first[1..].iter().map(|t| format!("/msg #lab {t}")));
    for x in p[1..].iter_mut() {
        x.wait_messages("#lab", "alice", first.len(), T);
        assert_eq!(x.texts_from("#lab", "alice"), first, "{}", x.name);
    }
    p[0].wait_stats("every text delivered", T, |s| {
        count(s, "group_out") >= count(&before[0], "group_out") + 40
    });
    let after: Vec<Value> = p.iter_mut().map(|x| x.stats()).collect();
    let delta = |i: usize, key: &str| count(&after[i], key) - count(&before[i], key);
    for (i, n) in names.iter().chain(&["fred"]).enumerate() {
        eprintln!(
            "{n:>5}: datagrams out {:>4}, to the group {:>3}, in {:>4}, by the group {:>3}, \
             duplicates {:>3}",
            delta(i, "datagrams_out"),
            delta(i, "group_out"),
            delta(i, "datagrams_in"),
            delta(i, "group_in"),
            delta(i, "duplicates"),
        );
    }
    // Each text once to the group…
    assert_eq!(delta(0, "group_out"), 40);
    // …which bob, erin and fred heard, getting (almost) nothing else: no
    // copy of their own.
    for i in [1, 4, 5] {
        assert!(delta(i, "group_in") >= 40, "{}", p[i].name);
        let unicast = delta(i, "datagrams_in") - delta(i, "group_in");
        assert!(
            unicast < 10,
            "{} got {unicast} datagrams unicast",
            p[i].name
        );
    }
    // Carol does not listen, and dave's host drops what comes.
    for i in [2, 3] {
        assert_eq!(count(&after[i], "group_in"), 0, "{}", names[i]);
    }
    // Fewer than a copy per member and text: 40 to the group, 40 each to
    // carol and dave, and some acknowledgements (not 5 × 40).
    assert!(
        delta(0, "datagrams_out") < 4 * 40,
        "alice sent {}",
        delta(0, "datagrams_out")
    );

    // The switch stops passing multicast to bob, while alice talks.
    lab.deaf_to_multicast("bob")
        .unwrap_or_else(|e| panic!("nftables: {e}"));
    let heard = count(&p[1].stats(), "group_in");
    let second: Vec<String> = (40..100).map(|k| format!("alice says {k:02}")).collect();
    for chunk in second.chunks(5) {
        p[0].send_lines(chunk.iter().map(|t| format!("/msg #lab {t}")));
        std::thread::sleep(Duration::from_millis(50));
    }
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    for x in p[1..].iter_mut() {
        x.wait_messages("#lab", "alice", all.len(), T);
        assert_eq!(x.texts_from("#lab", "alice"), all, "{}", x.name);
    }
    assert_eq!(count(&p[1].stats(), "group_in"), heard);
    // Bob told alice: the last texts went to him unicast, at once, not as
    // repairs of what the group did not bring.
    let s = p[0].stats();
    eprintln!(
        "alice after bob went deaf: {} retransmissions in all",
        count(&s, "retransmits")
    );
    assert!(
        count(&s, "retransmits") - count(&after[0], "retransmits") < 60,
        "{s}"
    );
}
