//! Issue 16's room workload on lanchat, the same as the IRC baseline's
//! ([`irc_run`]): real `peer --json` processes in one room, one warm-up line
//! every member must get, then paced messages, then a burst handed to the
//! sender's stdin as fast as the pipe takes them.
//!
//! The members are real peers, so a line's arrival is the member's
//! `message` event `ts_us` (wall clock, taken as the peer prints the event):
//! later than a socket's receive timestamp by the member's own processing.

use super::*;
use std::os::fd::AsRawFd;

#[derive(Default)]
pub struct LectureRun {
    pub fig: Fanout,
    pub peer_cores: f64,
    pub incidents: Vec<String>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    /// The room idle before its first line ([`idle`]).
    pub idle: Option<IdleRoom>,
}

pub struct Lecture {
    pub sizes: Vec<(usize, Result<LectureRun, String>)>,
}

pub fn lecture_section(p: &Params, dir: &Path) -> Result<Lecture, String> {
    let reg = registry(&dir.join("registry-lecture.log"))
        .store(&dir.join("lecture.db").to_string_lossy())
        .flags(&CHEAP_ARGON2)
        .try_start()?;
    let ldir = dir.join("lecture");
    fs::create_dir_all(&ldir).map_err(|e| e.to_string())?;
    let mut hub = Hub::new(reg.addr(), &ldir);
    let mut sizes = Vec::new();
    for &n in &p.room_sizes {
        let deadline = Instant::now() + p.lecture_limit;
        let run = lecture_size(p, &mut hub, n, deadline);
        match &run {
            Ok(x) => progress!(
                "lecture: {n} members: {:.0} sent/s, p50 {}, p99 {}; burst {}/{} in {:.3} s ({}/s); lost {}, dups {}, reordered {}{}",
                x.fig.achieved,
                fmt_us(x.fig.paced_lat.p50),
                fmt_us(x.fig.paced_lat.p99),
                x.fig.burst_complete,
                x.fig.burst,
                x.fig.burst_secs,
                fmt_rate(x.fig.deliveries_per_sec()),
                x.fig.lost,
                x.fig.dups,
                x.fig.reordered,
                x.stopped.as_ref().map_or(String::new(), |s| format!("; {s}"))
            ),
            Err(e) => progress!("lecture: {n} members: {e}"),
        }
        sizes.push((n, run));
    }
    drop(hub);
    drop(reg);
    Ok(Lecture { sizes })
}

fn lecture_size(
    p: &Params,
    hub: &mut Hub,
    n: usize,
    deadline: Instant,
) -> Result<LectureRun, String> {
    let have = hub.peers.len();
    if have < n {
        progress!("lecture: starting peers {have}..{n}");
        let mut new = Vec::new();
        for i in have..n {
            new.push(hub.spawn(&format!("m{i:03}"), &[])?);
        }
        hub.login(&new)?;
    }
    let members: Vec<usize> = (0..n).collect();
    let room = format!("l{n}");
    setup_room(hub, &room, &members)?;
    let idle = idle_room(hub, n, p.idle_settle, p.idle_window);
    progress!("lecture: {}", idle.line());
    let run = lecture_run(p, hub, n, &members, deadline).map(|mut x| {
        x.idle = Some(idle);
        x
    });
    leave_room(hub, &room, &members);
    run
}

/// Writes `line` to the sender's (non-blocking) stdin, handling events
/// while the pipe is full; returns the wall clock (ns) of the write that
/// took it.
fn hand(hub: &mut Hub, idx: usize, fd: i32, line: &str, deadline: Instant) -> Result<u64, String> {
    let buf = format!("{line}\n");
    loop {
        let ts = realtime_ns();
        // SAFETY: a live descriptor and a buffer of the length given; a
        // pipe write of at most PIPE_BUF bytes is all or nothing.
        let r = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if r == buf.len() as isize {
            return Ok(ts);
        }
        let e = io::Error::last_os_error();
        if r >= 0 || e.kind() != io::ErrorKind::WouldBlock {
            return Err(format!("{}: writing to stdin: {e}", hub.peers[idx].name));
        }
        if Instant::now() >= deadline {
            return Err("the sender's stdin stayed full until the deadline".into());
        }
        hub.pump(Instant::now() + Duration::from_millis(1));
    }
}

fn set_nonblocking(fd: i32, on: bool) {
    // SAFETY: fcntl on a live descriptor.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            let fl = if on {
                fl | libc::O_NONBLOCK
            } else {
                fl & !libc::O_NONBLOCK
            };
            libc::fcntl(fd, libc::F_SETFL, fl);
        }
    }
}

fn lecture_run(
    p: &Params,
    hub: &mut Hub,
    n: usize,
    members: &[usize],
    deadline: Instant,
) -> Result<LectureRun, String> {
    let (sender, receivers) = (members[0], &members[1..]);
    // The warm-up line, as on the IRC side: the run starts from a room that
    // has already carried a line to every member.
    hub.clear_pending();
    let wtag = format!("w{n}");
    hub.acc = Some(RunAcc::new(&wtag, sender, receivers, 1));
    hub.send(sender, &format!("{wtag}.0"))?;
    let warm = (Instant::now() + Duration::from_secs(10)).min(deadline);
    while !hub.acc.as_ref().is_some_and(RunAcc::done) && Instant::now() < warm {
        hub.pump(warm);
    }
    let acc = hub.acc.take().expect("warm-up");
    if !acc.done() {
        return Err(format!(
            "the warm-up line reached {} of {} members",
            acc.pairs,
            receivers.len()
        ));
    }
    let fd = hub.peers[sender]
        .stdin
        .as_ref()
        .map(|s| s.as_raw_fd())
        .ok_or("the sender's stdin is closed")?;
    let (paced, burst, rate) = (p.irc_paced, p.irc_burst, p.base_rate);
    let total = paced + burst;
    let tag = format!("L{n}");
    hub.acc = Some(RunAcc::new(&tag, sender, receivers, total));
    let ticks0 = hub.cpu_ticks_all();
    let t_cpu = Instant::now();
    set_nonblocking(fd, true);
    let mut sent = vec![0u64; total];
    let mut stopped = None;
    let t0 = Instant::now();
    for (i, s) in sent.iter_mut().enumerate().take(paced) {
        let due = t0 + Duration::from_secs_f64(i as f64 / rate);
        while Instant::now() < due {
            hub.pump(due);
        }
        match hand(hub, sender, fd, &format!("{tag}.{i}"), deadline) {
            Ok(ts) => *s = ts,
            Err(e) => {
                stopped = Some(e);
                break;
            }
        }
    }
    // The burst starts once the paced messages are in (at most 5 s).
    let settle = (Instant::now() + Duration::from_secs(5)).min(deadline);
    let paced_pairs = paced * receivers.len();
    while stopped.is_none()
        && hub.acc.as_ref().is_some_and(|a| a.pairs < paced_pairs)
        && Instant::now() < settle
    {
        hub.pump(settle);
    }
    if stopped.is_none() {
        for (i, s) in sent.iter_mut().enumerate().skip(paced) {
            match hand(hub, sender, fd, &format!("{tag}.{i}"), deadline) {
                Ok(ts) => *s = ts,
                Err(e) => {
                    stopped = Some(e);
                    break;
                }
            }
        }
    }
    set_nonblocking(fd, false);
    while !hub.acc.as_ref().is_some_and(RunAcc::done) && Instant::now() < deadline {
        hub.pump(deadline);
    }
    // Late duplicates, if any, show up here.
    let extra = (Instant::now() + Duration::from_millis(200)).min(deadline);
    while hub.pump(extra) {}
    let peer_cores = hub.cpu_ticks_all().saturating_sub(ticks0) as f64
        / clk_tck() as f64
        / t_cpu.elapsed().as_secs_f64();
    let acc = hub.acc.take().expect("run");
    if !acc.done() && stopped.is_none() {
        stopped = Some(format!(
            "{} of {} member-messages arrived by the deadline",
            acc.pairs,
            total * receivers.len()
        ));
    }
    let r = receivers.len();
    let complete = |i: usize| acc.got[i] == r && sent[i] > 0;
    let last: Vec<u64> = acc.max_ts.iter().map(|us| us * 1000).collect();
    let mut fig = Fanout::timed(n, rate, (paced, burst), &sent, &last, &complete);
    fig.lost = total * r - acc.pairs;
    fig.dups = acc.dups;
    fig.reordered = acc.reordered;
    Ok(LectureRun {
        fig,
        peer_cores,
        incidents: acc.incidents,
        stopped,
        idle: None,
    })
}

fn run_json(x: &LectureRun) -> Value {
    json!({
        "members": x.fig.members, "offered_per_sec": x.fig.rate, "paced_messages": x.fig.paced,
        "achieved_per_sec": round2(x.fig.achieved), "paced_messages_complete": x.fig.paced_complete,
        "paced_latency_stdin_to_last_member": lat_json(&x.fig.paced_lat),
        "burst_messages": x.fig.burst, "burst_messages_complete": x.fig.burst_complete,
        "burst_secs": (x.fig.burst_secs * 1e4).round() / 1e4,
        "burst_deliveries_per_sec": x.fig.deliveries_per_sec().round(),
        "burst_latency_stdin_to_last_member": lat_json(&x.fig.burst_lat),
        "lost_member_messages": x.fig.lost, "duplicates": x.fig.dups, "reordered": x.fig.reordered,
        "delivered_percent": round2(x.fig.delivered_pct()),
        "peer_cpu_cores": round2(x.peer_cores), "stopped": x.stopped,
        "incident_count": x.incidents.len(),
        "incidents": x.incidents.iter().take(20).collect::<Vec<_>>(),
        "idle_before_run": x.idle.map(|i| i.json()),
    })
}

pub fn report_lecture(r: &mut Report, res: &Result<Lecture, String>, p: &Params) {
    r.heading("Rooms, issue-16 workload: lanchat on the IRC baseline's workload");
    r.line("  N members = N real `peer --json` processes on loopback in one room (the sender is one), one");
    r.line(format!(
        "  unmeasured warm-up line every member got; then {} lines at {} msg/s handed to the sender's stdin,",
        p.irc_paced, p.base_rate
    ));
    r.line(format!(
        "  a wait for them (<= 5 s), then {} handed as fast as the pipe takes them; {} s a size incl. setup.",
        p.irc_burst,
        p.lecture_limit.as_secs()
    ));
    r.line("  latency = max over members of the member's `message` event ts_us (wall clock as the member prints");
    r.line("  it: later than its socket's receive time) - wall clock just before the write to the sender's stdin.");
    let lec = match res {
        Ok(x) => x,
        Err(e) => {
            r.line(format!("  error: {e}"));
            r.json.insert("lecture".into(), json!({"error": e}));
            return;
        }
    };
    let mut rows = Vec::new();
    for (n, run) in &lec.sizes {
        match run {
            Ok(x) => rows.push(x.fig.cells(x.peer_cores)),
            Err(e) => r.line(format!("  {n} members: error: {e}")),
        }
    }
    table(&mut r.text, &Fanout::header("peer CPU"), &rows);
    for (n, x) in lec
        .sizes
        .iter()
        .filter_map(|(n, x)| Some((n, x.as_ref().ok()?)))
    {
        if let Some(s) = &x.stopped {
            r.line(format!(
                "  {n} members: {s} ({:.2}% delivered)",
                x.fig.delivered_pct()
            ));
        }
        for line in incident_summary(&x.incidents) {
            r.line(format!("  {n} members: {line}"));
        }
        if let Some(i) = &x.idle {
            r.line(format!("  {}", i.line()));
        }
    }
    let idle = lec
        .sizes
        .iter()
        .filter_map(|(_, x)| x.as_ref().ok()?.idle)
        .max_by_key(|i| i.members);
    r.target(
        "idle 100-member room: under 1% of a core per peer",
        idle.map_or("not measured (no room of 100 in this run)".into(), |i| {
            i.line()
        }),
        idle.filter(|i| i.members >= 100).map(|i| i.met()),
    );
    let sizes: Vec<Value> = lec
        .sizes
        .iter()
        .map(|(n, x)| match x {
            Ok(x) => run_json(x),
            Err(e) => json!({"members": n, "error": e}),
        })
        .collect();
    r.json.insert(
        "lecture".into(),
        json!({
            "arrival_time": "member's `message` event ts_us (wall clock at print)",
            "sizes": sizes,
        }),
    );
}
