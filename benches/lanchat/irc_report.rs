//! The IRC baseline section: ngircd found or installed, one run per room
//! size, and the report (a table, `results.json` under "irc", and the
//! issue-16 targets that compare lanchat with it).

use super::*;

pub struct Irc {
    pub binary: PathBuf,
    pub version: String,
    pub installed_now: bool,
    pub sizes: Vec<(usize, Result<IrcRun, String>)>,
}

pub fn irc_section(p: &Params, dir: &Path) -> Result<Irc, String> {
    let (binary, installed_now) = ensure_ngircd(dir).map_err(|e| format!("not measured: {e}"))?;
    let version = ngircd_version(&binary);
    progress!("irc: {version} ({})", binary.display());
    let mut sizes = Vec::new();
    for &n in &p.room_sizes {
        // A fresh server per size, so no size inherits another's state.
        let run = Ngircd::start(&binary, dir).and_then(|server| {
            irc_run(
                &server,
                n,
                p.base_rate,
                p.irc_paced,
                p.irc_burst,
                p.irc_limit,
            )
        });
        match &run {
            Ok(x) => progress!(
                "irc: {n} members: {:.0} sent/s, p50 {}, p99 {}; burst of {} in {:.3} s ({}/s); lost {}, dups {}, reordered {}",
                x.fig.achieved,
                fmt_us(x.fig.paced_lat.p50),
                fmt_us(x.fig.paced_lat.p99),
                x.fig.burst,
                x.fig.burst_secs,
                fmt_rate(x.fig.deliveries_per_sec()),
                x.fig.lost,
                x.fig.dups,
                x.fig.reordered
            ),
            Err(e) => progress!("irc: {n} members: {e}"),
        }
        sizes.push((n, run));
    }
    Ok(Irc {
        binary,
        version,
        installed_now,
        sizes,
    })
}

fn run_json(x: &IrcRun) -> Value {
    json!({
        "members": x.fig.members, "offered_per_sec": x.fig.rate, "paced_messages": x.fig.paced,
        "achieved_per_sec": round2(x.fig.achieved), "paced_messages_complete": x.fig.paced_complete,
        "paced_latency_send_to_last_member": lat_json(&x.fig.paced_lat),
        "burst_messages": x.fig.burst, "burst_messages_complete": x.fig.burst_complete,
        "burst_secs": (x.fig.burst_secs * 1e4).round() / 1e4,
        "burst_deliveries_per_sec": x.fig.deliveries_per_sec().round(),
        "burst_latency_send_to_last_member": lat_json(&x.fig.burst_lat),
        "lost_member_messages": x.fig.lost, "duplicates": x.fig.dups, "reordered": x.fig.reordered,
        "reads": x.reads, "reads_without_kernel_timestamp": x.untimestamped_reads,
        "ngircd_cpu_cores": round2(x.server_cores),
        "errors": x.errors.iter().take(20).collect::<Vec<_>>(),
    })
}

pub fn report_irc(r: &mut Report, res: &Result<Irc, String>, lec: Option<&Lecture>, p: &Params) {
    r.heading("IRC baseline: the room workload through ngircd (Debian), same run");
    r.line("  N members = N-1 reading clients + the sender, plain TCP on 127.0.0.1, all in #bench and all");
    r.line("  holding one unmeasured warm-up line first (without it ngircd holds the first lines ~40 ms);");
    r.line(format!(
        "  the sender sends {} PRIVMSGs at {} msg/s, waits for them to arrive, then a burst of {} as fast as it can write.",
        p.irc_paced, p.base_rate, p.irc_burst
    ));
    r.line("  latency = max over members of (kernel receive timestamp of the read holding the line, SO_TIMESTAMPNS)");
    r.line("  - (wall clock just before the sender's write()); burst time = first burst write -> last member's last read.");
    r.line("  Throttling off, as ngircd documents it: MaxPenaltyTime = 0 (\"0 to disable penalties altogether\"),");
    r.line("  and the sender is an IRC operator ([Operator] block, OPER) with user mode F (\"relaxed flood protection\").");
    let irc = match res {
        Ok(x) => x,
        Err(e) => {
            r.line(format!("  {e}"));
            r.json.insert("irc".into(), json!({"error": e}));
            irc_targets(r, None, lec);
            return;
        }
    };
    r.line(format!(
        "  server: {}{}",
        irc.version,
        if irc.installed_now {
            " (installed by this run: apt-get install -y ngircd)"
        } else {
            ""
        }
    ));
    let mut rows = Vec::new();
    for (n, run) in &irc.sizes {
        match run {
            Ok(x) => rows.push(x.fig.cells(x.server_cores)),
            Err(e) => r.line(format!("  {n} members: error: {e}")),
        }
    }
    table(&mut r.text, &Fanout::header("ngircd CPU"), &rows);
    for (n, x) in irc
        .sizes
        .iter()
        .filter_map(|(n, x)| Some((n, x.as_ref().ok()?)))
    {
        if x.untimestamped_reads > 0 {
            r.line(format!(
                "  {n} members: {} of {} reads had no kernel timestamp (read time used)",
                x.untimestamped_reads, x.reads
            ));
        }
        for e in x.errors.iter().take(3) {
            r.line(format!("  {n} members: {e}"));
        }
    }
    let sizes: Vec<Value> = irc
        .sizes
        .iter()
        .map(|(n, x)| match x {
            Ok(x) => run_json(x),
            Err(e) => json!({"members": n, "error": e}),
        })
        .collect();
    r.json.insert(
        "irc".into(),
        json!({
            "server": irc.version, "binary": irc.binary.display().to_string(),
            "installed_by_this_run": irc.installed_now,
            "throttling": "MaxPenaltyTime = 0; sender is an IRC operator with user mode F",
            "receive_timestamp": "SO_TIMESTAMPNS (kernel), per read",
            "sizes": sizes,
        }),
    );
    irc_targets(r, Some(irc), lec);
}

/// The issue-16 targets: lanchat (the `lecture` section, same workload)
/// against ngircd in the same run, both figures side by side.
fn irc_targets(r: &mut Report, irc: Option<&Irc>, lec: Option<&Lecture>) {
    let run = |n: usize| {
        irc.and_then(|i| i.sizes.iter().find(|(m, _)| *m == n))
            .map(|(_, x)| x)
    };
    let lan = |n: usize| {
        lec.and_then(|l| l.sizes.iter().find(|(m, _)| *m == n))
            .map(|(_, x)| x)
    };
    for n in [30, 100] {
        let base = match run(n) {
            Some(Ok(x)) => format!(
                "ngircd p99 {}, {}/{} delivered",
                fmt_us(x.fig.paced_lat.p99),
                x.fig.paced * x.fig.receivers() - x.fig.lost.min(x.fig.paced * x.fig.receivers()),
                x.fig.paced * x.fig.receivers()
            ),
            Some(Err(e)) => format!("ngircd: {e}"),
            None => "ngircd: not run".into(),
        };
        let (ours, met) = match (lan(n), run(n)) {
            (Some(Ok(l)), irc) => {
                let all = l.fig.paced_complete == l.fig.paced;
                let met = irc
                    .and_then(|x| x.as_ref().ok())
                    .map(|x| all && l.fig.paced_lat.p99 <= x.fig.paced_lat.p99);
                (
                    format!(
                        "lanchat p99 {}, {}/{} messages reached every member",
                        fmt_us(l.fig.paced_lat.p99),
                        l.fig.paced_complete,
                        l.fig.paced
                    ),
                    met.or((!all).then_some(false)),
                )
            }
            (Some(Err(e)), _) => (format!("lanchat: {e}"), Some(false)),
            (None, _) => (
                "lanchat: not run (section `lecture` or this size not selected)".into(),
                None,
            ),
        };
        r.target(
            &format!("{n} members at 200 msg/s: 100% delivered, p99 <= ngircd's"),
            format!("{ours}; {base}"),
            met,
        );
    }
    for n in [30, 100] {
        let base = match run(n) {
            Some(Ok(x)) => format!(
                "ngircd {}/{} in {:.3} s, {}/s",
                x.fig.burst_complete,
                x.fig.burst,
                x.fig.burst_secs,
                fmt_rate(x.fig.deliveries_per_sec())
            ),
            Some(Err(e)) => format!("ngircd: {e}"),
            None => "ngircd: not run".into(),
        };
        let (ours, met) = match (lan(n), run(n)) {
            (Some(Ok(l)), irc) => {
                let ok = l.fig.burst_complete == l.fig.burst
                    && l.fig.dups == 0
                    && l.fig.reordered == 0
                    && l.fig.burst_secs <= 2.0;
                let met = irc
                    .and_then(|x| x.as_ref().ok())
                    .map(|x| ok && l.fig.deliveries_per_sec() >= 0.5 * x.fig.deliveries_per_sec());
                (
                    format!(
                        "lanchat {}/{} in {:.3} s, {}/s, dup {} reord {}",
                        l.fig.burst_complete,
                        l.fig.burst,
                        l.fig.burst_secs,
                        fmt_rate(l.fig.deliveries_per_sec()),
                        l.fig.dups,
                        l.fig.reordered
                    ),
                    met.or((!ok).then_some(false)),
                )
            }
            (Some(Err(e)), _) => (format!("lanchat: {e}"), Some(false)),
            (None, _) => (
                "lanchat: not run (section `lecture` or this size not selected)".into(),
                None,
            ),
        };
        r.target(
            &format!(
                "burst of 2,000 to {n}: all, once, in order, <= 2 s; >= half ngircd's deliveries/s"
            ),
            format!("{ours}; {base}"),
            met,
        );
    }
}
