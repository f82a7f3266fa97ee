//! Rooms: fan-out latency and loss by room size and offered rate, and a
//! lossy room on a virtual LAN of network namespaces.

use super::*;

#[derive(Clone)]
pub struct RoomRun {
    pub members: usize,
    pub offered: f64,
    pub msgs: usize,
    pub achieved: f64,
    pub lat: Lat,
    /// (message, member) pairs never delivered.
    pub lost: usize,
    pub dups: u64,
    pub incidents: Vec<String>,
    pub drained: bool,
    pub peer_cores: f64,
    /// Messages the sender reported as delivered (`acked == total`) although
    /// some member never got them.
    pub false_delivered: usize,
    /// `delivery_failed` events the sender emitted.
    pub failed_reported: usize,
}

impl RoomRun {
    pub fn sustained(&self) -> bool {
        self.lost == 0
            && self.dups == 0
            && self.drained
            && !self.incidents.iter().any(|i| i.contains("delivery_failed"))
            && self.achieved >= MIN_ACHIEVED * self.offered
            && self.lat.p99 <= BLOWUP_P99_US
    }

    pub fn json(&self, floor: Option<&Floor>) -> Value {
        let (f50, f99) = (floor.map(|f| f.udp.p50), floor.map(|f| f.udp.p99));
        json!({
            "members": self.members, "offered_per_sec": self.offered, "messages": self.msgs,
            "achieved_per_sec": round2(self.achieved),
            "latency_send_to_last_member": lat_json(&self.lat),
            "p50_over_udp_floor": ratio_json(self.lat.p50, f50),
            "p99_over_udp_floor": ratio_json(self.lat.p99, f99),
            "lost_member_messages": self.lost, "duplicates": self.dups,
            "all_delivered_in_time": self.drained,
            "incidents": self.incidents.iter().take(20).collect::<Vec<_>>(),
            "incident_count": self.incidents.len(),
            "peer_cpu_cores": round2(self.peer_cores),
            "sender_reported_delivered_but_not_received": self.false_delivered,
            "sender_delivery_failed_events": self.failed_reported,
            "sustained": self.sustained(),
        })
    }
}

/// Sends `n` messages from `sender` at `rate` a second (on a schedule;
/// late ones go at once) and measures, for each, the time from the
/// sender's own `message` event to the last member's.
pub fn run_room(
    hub: &mut Hub,
    tag: &str,
    sender: usize,
    receivers: &[usize],
    rate: f64,
    n: usize,
    drain: Duration,
) -> Result<RoomRun, String> {
    hub.clear_pending();
    hub.acc = Some(RunAcc::new(tag, sender, receivers, n));
    let ticks0 = hub.cpu_ticks_all();
    let t0 = Instant::now();
    for i in 0..n {
        let due = t0 + Duration::from_secs_f64(i as f64 / rate);
        loop {
            let now = Instant::now();
            if now + Duration::from_micros(200) >= due {
                break;
            }
            match hub.rx.recv_timeout(due - now - Duration::from_micros(150)) {
                Ok(ev) => hub.dispatch(ev),
                Err(_) => continue,
            }
        }
        hub.send(sender, &format!("{tag}.{i}"))?;
    }
    let deadline = Instant::now() + drain;
    while !hub.acc.as_ref().is_some_and(RunAcc::done) && Instant::now() < deadline {
        hub.pump(deadline);
    }
    // Late duplicates, if any, show up here.
    let extra = Instant::now() + Duration::from_millis(200);
    while hub.pump(extra) {}
    let wall = t0.elapsed().as_secs_f64();
    let ticks1 = hub.cpu_ticks_all();
    let acc = hub.acc.take().expect("run");
    let drained = acc.done();
    let receivers_n = acc.counts.len();
    let lat: Vec<u64> = acc
        .own_ts
        .iter()
        .zip(&acc.max_ts)
        .zip(&acc.got)
        .filter(|((&own, _), &got)| own > 0 && got == receivers_n)
        .map(|((&own, &last), _)| last.saturating_sub(own) * 1000)
        .collect();
    let lost = acc.n * receivers_n - acc.pairs;
    let false_delivered = acc
        .reported_done
        .iter()
        .zip(&acc.got)
        .filter(|(&done, &got)| done && got < receivers_n)
        .count();
    let own: Vec<u64> = acc.own_ts.iter().copied().filter(|&t| t > 0).collect();
    let achieved = match (own.iter().min(), own.iter().max()) {
        (Some(a), Some(b)) if b > a && own.len() > 1 => {
            (own.len() - 1) as f64 / ((b - a) as f64 / 1e6)
        }
        _ => 0.0,
    };
    let mut incidents = acc.incidents;
    if acc.own_seen < acc.n {
        incidents.push(format!(
            "the sender showed only {} of {} messages as sent",
            acc.own_seen, acc.n
        ));
    }
    Ok(RoomRun {
        members: receivers_n + 1,
        offered: rate,
        msgs: n,
        achieved,
        lat: lat_ns(lat),
        lost,
        dups: acc.dups,
        incidents,
        drained,
        peer_cores: ticks1.saturating_sub(ticks0) as f64 / clk_tck() as f64 / wall,
        false_delivered,
        failed_reported: acc.failed_reported,
    })
}

pub struct RoomSize {
    pub members: usize,
    /// CPU of all peers while the room is idle (liveness pings only), in cores.
    pub idle_cores: Option<f64>,
    pub runs: Vec<RoomRun>,
    pub max_sustained: Option<f64>,
    pub stepped: bool,
    pub error: Option<String>,
}

pub struct Lossy {
    pub run: RoomRun,
    pub nft_dropped: u64,
    pub retransmits: Option<u64>,
    pub duplicates_dropped: Option<u64>,
    /// The sender's datagrams, and those of them sent to the room's group.
    pub sent: Option<u64>,
    pub group_out: Option<u64>,
    /// Datagrams the members received, all together.
    pub received: Option<u64>,
}

/// The lossy room is run once per transport: `auto` (multicast on the
/// namespaces' bridge) and `unicast`.
pub const LOSSY_TRANSPORTS: [&str; 2] = ["auto", "unicast"];

pub struct Rooms {
    pub sizes: Vec<RoomSize>,
    /// Per transport of [`LOSSY_TRANSPORTS`].
    pub lossy: Vec<Result<Lossy, String>>,
}

pub fn rooms_section(p: &Params, dir: &Path) -> Result<Rooms, String> {
    let reg = registry(&dir.join("registry-rooms.log"))
        .store(&dir.join("rooms.db").to_string_lossy())
        .flags(&CHEAP_ARGON2)
        .try_start()?;
    let mut hub = Hub::new(reg.addr(), dir);
    let mut sizes = Vec::new();
    for &n in &p.room_sizes {
        let mut size = RoomSize {
            members: n,
            idle_cores: None,
            runs: Vec::new(),
            max_sustained: None,
            stepped: p.step_sizes.contains(&n),
            error: None,
        };
        if let Err(e) = room_size(p, &mut hub, n, &mut size) {
            progress!("room of {n}: {e}");
            size.error = Some(e);
        }
        sizes.push(size);
    }
    drop(hub);
    drop(reg);
    let lossy = LOSSY_TRANSPORTS
        .iter()
        .map(|t| {
            if p.lossy_members > 0 {
                lossy_room(p, dir, t)
            } else {
                Err("skipped: not requested".into())
            }
        })
        .collect();
    Ok(Rooms { sizes, lossy })
}

pub fn room_size(p: &Params, hub: &mut Hub, n: usize, size: &mut RoomSize) -> Result<(), String> {
    let have = hub.peers.len();
    if have < n {
        progress!("starting peers {have}..{n}");
        let mut new = Vec::new();
        for i in have..n {
            new.push(hub.spawn(&format!("m{i:03}"), &[])?);
        }
        hub.login(&new)?;
    }
    let members: Vec<usize> = (0..n).collect();
    let room = format!("b{n}");
    progress!("room of {n}: setting up #{room}");
    setup_room(hub, &room, &members)?;
    // The cost of just being in the room: every member pings every other
    // one twice a second.
    let (t, k0) = (Instant::now(), hub.cpu_ticks_all());
    hub.pump_for(Duration::from_secs(2));
    let idle = hub.cpu_ticks_all().saturating_sub(k0) as f64
        / clk_tck() as f64
        / t.elapsed().as_secs_f64();
    size.idle_cores = Some(idle);
    progress!("room of {n}: idle (pings only): peers use {idle:.2} cores");
    hub.clear_pending();
    let mut rates = vec![p.base_rate];
    if size.stepped {
        rates.extend(p.step_rates.iter().copied());
    }
    for (k, &rate) in rates.iter().enumerate() {
        let msgs = if k == 0 {
            p.room_msgs
        } else {
            ((rate * p.step_secs) as usize).min(p.step_cap)
        };
        let tag = format!("r{n}x{}", rate as u64);
        let run = run_room(hub, &tag, 0, &members[1..], rate, msgs, p.drain)?;
        progress!(
            "room of {n}: {} msg/s offered, {:.0} sent/s: p50 {}, p99 {}, max {}, lost {}, dups {}, peers {:.2} cores{}",
            rate,
            run.achieved,
            fmt_us(run.lat.p50),
            fmt_us(run.lat.p99),
            fmt_us(run.lat.max),
            run.lost,
            run.dups,
            run.peer_cores,
            if run.sustained() { "" } else { "  <- not sustained" }
        );
        let ok = run.sustained();
        size.runs.push(run);
        if !ok {
            break;
        }
        size.max_sustained = Some(rate);
        // Let retransmissions and pings settle between steps.
        hub.pump_for(Duration::from_millis(500));
        hub.clear_pending();
    }
    leave_room(hub, &room, &members);
    Ok(())
}

// The virtual LAN of the lossy run: the same helpers as the namespace tests.
use kit::netns;

pub const NS_PREFIX: &str = "lcbench";

pub fn lossy_room(p: &Params, dir: &Path, transport: &str) -> Result<Lossy, String> {
    let n = p.lossy_members;
    progress!(
        "lossy room ({transport}): building {} network namespaces",
        n + 2
    );
    let reg_ip = Ipv4Addr::new(10, 198, 0, 1);
    let mut hosts = vec![("reg".to_string(), reg_ip)];
    for i in 0..n {
        hosts.push((format!("m{i:03}"), Ipv4Addr::new(10, 198, 0, 10 + i as u8)));
    }
    let roles: Vec<(&str, Ipv4Addr)> = hosts.iter().map(|(r, ip)| (r.as_str(), *ip)).collect();
    // Declared first, so dropped last: after the processes in it are killed.
    let lab = netns::Lab::try_start(NS_PREFIX, "lossy", &roles, true).map_err(|e| match e {
        netns::Unavailable::Skip(why) => format!("skipped: {why}"),
        netns::Unavailable::Broken(e) => format!("building the namespaces: {e}"),
    })?;
    for (role, _) in &hosts[1..] {
        lab.lossy_input(role)
            .map_err(|e| format!("skipped: nftables: {e}"))?;
    }
    let reg = registry(&dir.join(format!("registry-lossy-{transport}.log")))
        .prefix(&lab.prefix("reg"))
        .listen("0.0.0.0:0")
        .store(&dir.join(format!("lossy-{transport}.db")).to_string_lossy())
        .flags(&CHEAP_ARGON2)
        .connect_ip(IpAddr::V4(reg_ip))
        .try_start()?;
    let ldir = dir.join(format!("lossy-{transport}"));
    fs::create_dir_all(&ldir).map_err(|e| e.to_string())?;
    let mut hub = Hub::new(reg.addr(), &ldir);
    hub.args = vec!["--room-transport".into(), transport.into()];
    let mut idxs = Vec::new();
    for (role, _) in &hosts[1..] {
        idxs.push(hub.spawn(role, &lab.prefix(role))?);
    }
    hub.login(&idxs)?;
    progress!("lossy room: setting up #lossy with {n} members");
    setup_room(&mut hub, "lossy", &idxs)?;
    let run = run_room(
        &mut hub,
        "lossy",
        idxs[0],
        &idxs[1..],
        p.base_rate,
        p.lossy_msgs,
        Duration::from_secs(30),
    )?;
    progress!(
        "lossy room: p50 {}, p99 {}, max {}, lost {}, dups {}",
        fmt_us(run.lat.p50),
        fmt_us(run.lat.p99),
        fmt_us(run.lat.max),
        run.lost,
        run.dups
    );
    let nft_dropped = hosts[1..]
        .iter()
        .map(|(role, _)| lab.dropped(role).unwrap_or(0))
        .sum();
    let stats = hub
        .send(idxs[0], "/stats")
        .and_then(|_| {
            hub.wait(idxs[0], "stats", Duration::from_secs(10), |v| {
                v["event"] == "stats"
            })
        })
        .ok();
    let sender = |key: &str| stats.as_ref().and_then(|s| s["rooms"][key].as_u64());
    let (retransmits, sent, group_out) = (
        sender("retransmits"),
        sender("datagrams_out"),
        sender("group_out"),
    );
    let mut dups = 0;
    let mut received = 0;
    let mut any = false;
    for &i in &idxs[1..] {
        if hub.send(i, "/stats").is_ok() {
            if let Ok(s) = hub.wait(i, "stats", Duration::from_secs(10), |v| {
                v["event"] == "stats"
            }) {
                dups += s["rooms"]["duplicates"].as_u64().unwrap_or(0);
                received += s["rooms"]["datagrams_in"].as_u64().unwrap_or(0);
                any = true;
            }
        }
    }
    drop(hub);
    drop(reg);
    drop(lab);
    Ok(Lossy {
        run,
        nft_dropped,
        retransmits,
        duplicates_dropped: any.then_some(dups),
        sent,
        group_out,
        received: any.then_some(received),
    })
}

/// Incidents ("peer: {event json}") counted by event and reason, with the
/// first of each kind.
pub fn incident_summary(incidents: &[String]) -> Vec<String> {
    let mut kinds: Vec<(String, usize, String)> = Vec::new();
    for i in incidents {
        let (who, ev) = i.split_once(": ").unwrap_or(("?", i));
        let v: Value = serde_json::from_str(ev).unwrap_or(Value::Null);
        let key = match (v["event"].as_str(), v["reason"].as_str()) {
            (Some(e), Some(r)) => format!("{e} ({r})"),
            (Some(e), None) => e.to_string(),
            _ => i.chars().take(60).collect(),
        };
        match kinds.iter_mut().find(|(k, _, _)| *k == key) {
            Some(k) => k.1 += 1,
            None => {
                let first = format!("{who}: {}", ev.chars().take(140).collect::<String>());
                kinds.push((key, 1, first));
            }
        }
    }
    kinds
        .into_iter()
        .map(|(k, n, first)| format!("{n} x {k}, first: {first}"))
        .collect()
}

pub fn report_rooms(
    r: &mut Report,
    res: &Result<Rooms, String>,
    floor: Option<&Floor>,
    p: &Params,
) {
    r.heading("3. Rooms: one sender, real `peer --json` processes on loopback");
    r.line("  latency = max over members of (member's `message` ts_us) - (sender's own `message` ts_us), one host clock;");
    r.line("  it starts when the sender's main loop takes the line from its input, so input-queue wait is not in it:");
    r.line("  \"sent/s\" (from the sender's own events) shows when the sender could not keep up with the offered rate;");
    r.line("  ratios are to the loopback UDP round-trip floor (the room figure is one way: a ratio of 0.5 would match it).");
    r.line(format!(
        "  {} messages at {} msg/s offered; then the offered rate steps up ({} msgs or {} s a step) until a step",
        p.room_msgs,
        p.base_rate,
        p.step_cap,
        p.step_secs
    ));
    r.line(format!(
        "  loses or duplicates anything, sends < {:.0}% of the offered rate, or has p99 > {}.",
        MIN_ACHIEVED * 100.0,
        fmt_us(BLOWUP_P99_US)
    ));
    r.line("  Registry for rooms: --argon2-memory-kib 256 --argon2-passes 1. \"peer CPU\" = all peer processes, in cores.");
    let rooms = match res {
        Ok(x) => x,
        Err(e) => {
            r.line(format!("  error: {e}"));
            r.json.insert("rooms".into(), json!({"error": e}));
            r.target("30-member room p99 <= 1 ms on loopback", e.clone(), None);
            r.target("no loss at 10% network loss", e.clone(), None);
            return;
        }
    };
    let (f50, f99) = (floor.map(|f| f.udp.p50), floor.map(|f| f.udp.p99));
    let mut rows = Vec::new();
    for s in &rooms.sizes {
        for run in &s.runs {
            rows.push(vec![
                s.members.to_string(),
                format!("{}", run.offered),
                fmt_rate(run.achieved),
                group(run.msgs as u64),
                fmt_us(run.lat.p50),
                fmt_us(run.lat.p99),
                fmt_us(run.lat.max),
                ratio(run.lat.p50, f50),
                ratio(run.lat.p99, f99),
                format!("{}/{}", run.lost, run.dups),
                format!("{:.2}", run.peer_cores),
                if run.sustained() { "yes" } else { "NO" }.into(),
            ]);
        }
    }
    table(
        &mut r.text,
        &[
            "members",
            "offered/s",
            "sent/s",
            "msgs",
            "p50",
            "p99",
            "max",
            "p50/floor",
            "p99/floor",
            "lost/dup",
            "peer CPU",
            "sustained",
        ],
        &rows,
    );
    for s in &rooms.sizes {
        let best = match (s.stepped, s.max_sustained) {
            (false, _) => "not stepped in this run".to_string(),
            (true, Some(x)) => {
                let top = s.runs.last().is_some_and(RoomRun::sustained);
                if top {
                    format!("{x} msg/s (the highest step tried)")
                } else {
                    format!("{x} msg/s")
                }
            }
            (true, None) => format!("below {} msg/s", p.base_rate),
        };
        r.line(format!(
            "  {} members: highest rate sustained with zero loss: {best}; idle room (liveness pings only, {} datagrams/s): peers use {} cores",
            s.members,
            group(2 * (s.members * s.members.saturating_sub(1)) as u64),
            s.idle_cores.map_or("?".into(), |c| format!("{c:.2}"))
        ));
        if let Some(e) = &s.error {
            r.line(format!("  {} members: error: {e}", s.members));
        }
        for run in s.runs.iter().filter(|r| r.lost > 0) {
            r.line(format!(
                "  {} members at {}/s: {} member-messages never arrived; the sender emitted {} delivery_failed and reported {} of those messages as delivered to all (acked = total)",
                s.members,
                run.offered,
                group(run.lost as u64),
                run.failed_reported,
                run.false_delivered
            ));
        }
        for run in &s.runs {
            for line in incident_summary(&run.incidents) {
                r.line(format!(
                    "  {} members at {}/s: {line}",
                    s.members, run.offered
                ));
            }
        }
    }
    r.line("");
    r.line("  With 10% loss: each member in its own network namespace on a bridge, nftables input rule");
    r.line("  `meta l4proto udp numgen random mod 10 0 drop` in every member namespace.");
    let opt = |v: Option<u64>| v.map_or("?".into(), group);
    let mut rows = Vec::new();
    let mut lossy_json = serde_json::Map::new();
    for (t, l) in LOSSY_TRANSPORTS.iter().zip(&rooms.lossy) {
        match l {
            Ok(l) => {
                let run = &l.run;
                rows.push(vec![
                    t.to_string(),
                    run.members.to_string(),
                    format!("{}", run.offered),
                    group(run.msgs as u64),
                    fmt_us(run.lat.p50),
                    fmt_us(run.lat.p99),
                    fmt_us(run.lat.max),
                    ratio(run.lat.p50, f50),
                    ratio(run.lat.p99, f99),
                    format!("{}/{}", run.lost, run.dups),
                    group(l.nft_dropped),
                    opt(l.sent),
                    opt(l.group_out),
                    opt(l.retransmits),
                    opt(l.received),
                    opt(l.duplicates_dropped),
                ]);
                for line in incident_summary(&run.incidents) {
                    r.line(format!("  lossy ({t}): {line}"));
                }
                let mut j = run.json(floor);
                j["nft_dropped_datagrams"] = json!(l.nft_dropped);
                j["sender_datagrams"] = json!(l.sent);
                j["sender_group_datagrams"] = json!(l.group_out);
                j["sender_retransmits"] = json!(l.retransmits);
                j["receiver_datagrams"] = json!(l.received);
                j["receiver_duplicates_discarded"] = json!(l.duplicates_dropped);
                lossy_json.insert(t.to_string(), j);
            }
            Err(e) => {
                r.line(format!("  {t}: {e}"));
                lossy_json.insert(t.to_string(), json!({"skipped": e}));
            }
        }
    }
    if !rows.is_empty() {
        table(
            &mut r.text,
            &[
                "transport",
                "members",
                "offered/s",
                "msgs",
                "p50",
                "p99",
                "max",
                "p50/floor",
                "p99/floor",
                "lost/dup",
                "nft dropped",
                "sender sent",
                "to group",
                "retransmits",
                "members got",
                "dups discarded",
            ],
            &rows,
        );
    }
    let lossy_json = Value::Object(lossy_json);
    let sizes: Vec<Value> = rooms
        .sizes
        .iter()
        .map(|s| {
            json!({
                "members": s.members,
                "runs": s.runs.iter().map(|x| x.json(floor)).collect::<Vec<_>>(),
                "stepped": s.stepped,
                "idle_peer_cpu_cores": s.idle_cores.map(round2),
                "ping_datagrams_per_sec": 2 * s.members * s.members.saturating_sub(1),
                "max_sustained_per_sec": s.max_sustained,
                "error": s.error,
            })
        })
        .collect();
    r.json.insert(
        "rooms".into(),
        json!({
            "blowup_p99_us": BLOWUP_P99_US, "min_achieved_share": MIN_ACHIEVED,
            "sizes": sizes, "lossy_10pct": lossy_json,
        }),
    );
    let thirty = rooms
        .sizes
        .iter()
        .find(|s| s.members == 30)
        .and_then(|s| s.runs.first());
    match thirty {
        Some(run) if run.lat.n > 0 => r.target(
            "30-member room p99 <= 1 ms on loopback",
            format!("{} at {}/s", fmt_us(run.lat.p99), run.offered),
            Some(run.lat.p99 <= 1000.0 && run.lost == 0),
        ),
        _ => r.target(
            "30-member room p99 <= 1 ms on loopback",
            "no data".into(),
            None,
        ),
    }
    for (t, l) in LOSSY_TRANSPORTS.iter().zip(&rooms.lossy) {
        let what = format!(
            "30 members, 10% loss ({t}): 100% delivered, p99 < 100 ms, duplicates < 5% of datagrams received"
        );
        match l {
            Ok(l) => {
                let dup_share = match (l.duplicates_dropped, l.received) {
                    (Some(d), Some(n)) if n > 0 => Some(d as f64 / n as f64),
                    _ => None,
                };
                r.target(
                    &what,
                    format!(
                        "{} of {} member-messages lost, {} shown twice; p99 {}; {} duplicates in {} datagrams received ({})",
                        l.run.lost,
                        l.run.msgs * (l.run.members - 1),
                        l.run.dups,
                        fmt_us(l.run.lat.p99),
                        opt(l.duplicates_dropped),
                        opt(l.received),
                        dup_share.map_or("?".into(), |f| format!("{:.1}%", f * 100.0)),
                    ),
                    Some(
                        l.run.lost == 0
                            && l.run.dups == 0
                            && l.run.lat.p99 < 100_000.0
                            && dup_share.is_some_and(|f| f < 0.05),
                    ),
                )
            }
            Err(e) => r.target(&what, e.clone(), None),
        }
    }
}
