//! Concurrency: how many sessions one registry holds (the descriptor cap),
//! and searches while thousands are online.

use super::*;

/// How many sessions a registry holds with the open-file limit it inherits.
pub struct Cap {
    pub hard: u64,
    pub reached: usize,
    pub secs: f64,
    pub first_error: Option<String>,
    pub fds: Option<usize>,
    pub registry_problems: Vec<String>,
}

pub struct Conc {
    pub cap: Option<Result<Cap, String>>,
    pub raised_to: Option<Result<u64, String>>,
    pub fds: Option<usize>,
    pub requested: usize,
    pub logged_in: usize,
    pub failures: usize,
    pub first_error: Option<String>,
    pub login_secs: f64,
    pub nofile: (u64, u64, u64),
    pub registry_limit_line: String,
    pub idle_rss: u64,
    pub rss: u64,
    pub hwm: u64,
    pub threads: u64,
    pub search: OpRun,
    pub searchers: usize,
    pub online_count: usize,
    pub online_listed: usize,
    pub online_bytes: usize,
    pub online_us: f64,
    pub heartbeats_sent: u64,
    pub udp_drops: Option<u64>,
    pub registry_problems: Vec<String>,
}

impl Conc {
    pub fn per_session_kib(&self) -> Option<f64> {
        (self.logged_in > 0)
            .then(|| self.rss.saturating_sub(self.idle_rss) as f64 / self.logged_in as f64)
    }
}

/// Lines of a registry log that tell of trouble, summarised.
pub fn log_problems(log: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for key in [
        "accept failed",
        "cannot start a thread",
        "timed out (no heartbeat)",
        "WARN",
        "ERROR",
    ] {
        let hits: Vec<&str> = log.lines().filter(|l| l.contains(key)).collect();
        if let Some(first) = hits.first() {
            problems.push(format!("{} x {key:?}, first: {first}", hits.len()));
        }
    }
    problems
}

/// Logs in sessions on a registry started with the open-file limit the
/// bench has now, until logins fail (or all of them work).
pub fn descriptor_cap(p: &Params, dir: &Path, hard: u64) -> Result<Cap, String> {
    let mut args: Vec<&str> = NO_PACING.to_vec();
    args.extend(CHEAP_ARGON2);
    let reg = registry(&dir.join("registry-cap.log"))
        .store(&dir.join("cap.db").to_string_lossy())
        .flags(&args)
        .try_start()?;
    let hb = Heartbeater::start(reg.addr(), Duration::from_secs(1), 4, &[]);
    let names: Vec<String> = (0..p.sessions).map(|i| format!("c{i:05}")).collect();
    progress!(
        "logging in up to {} sessions with the open-file limit {hard}",
        p.sessions
    );
    let t = Instant::now();
    let (streams, _, first_error) = login_many_as(
        reg.addr(),
        &names,
        8,
        Duration::from_secs(120),
        FILL_WAIT,
        &|t: &str| hb.add(t),
        &RegClient::into_stream,
    );
    let secs = t.elapsed().as_secs_f64();
    let fds = fd_count(reg.pid());
    let reached = streams.len();
    progress!("{reached} sessions before logins failed: {first_error:?}");
    let registry_problems = log_problems(&reg.log());
    drop(hb);
    drop(reg);
    drop(streams);
    Ok(Cap {
        hard,
        reached,
        secs,
        first_error,
        fds,
        registry_problems,
    })
}

pub fn concurrency_section(p: &Params, dir: &Path) -> Result<Conc, String> {
    let mut nofile = raise_nofile();
    progress!(
        "bench open-file limit: {} -> {} (hard {})",
        nofile.0,
        nofile.1,
        nofile.2
    );
    // What the registry and the bench need: one descriptor a connection
    // each (see the report), plus some; three for a margin.
    let need = 3 * (p.sessions as u64 + 4) + 256;
    let mut cap = None;
    let mut raised_to = None;
    if nofile.2 < need {
        let old = nofile.2;
        let want = 4 * p.sessions as u64 + 1024;
        let r = set_nofile(want).map(|_| want);
        if r.is_ok() {
            nofile.1 = want;
            nofile.2 = want;
            progress!("raised the open-file limit (soft and hard) from {old} to {want}");
            if !p.quick {
                // First, what the limit the machine gave us allows.
                CHILD_NOFILE.store(old, Ordering::Relaxed);
                cap = Some(descriptor_cap(p, dir, old));
                CHILD_NOFILE.store(0, Ordering::Relaxed);
            }
        }
        raised_to =
            Some(r.map_err(|e| format!("raising the hard limit from {old} to {want}: {e}")));
    }
    let mut args: Vec<&str> = NO_PACING.to_vec();
    args.extend(CHEAP_ARGON2);
    let reg = registry(&dir.join("registry-sessions.log"))
        .store(&dir.join("sessions.db").to_string_lossy())
        .flags(&args)
        .try_start()?;
    thread::sleep(Duration::from_millis(500));
    let idle_rss = rss_kib(reg.pid());
    let hb = Heartbeater::start(reg.addr(), Duration::from_secs(1), 4, &[]);
    let searcher_names: Vec<String> = (0..4).map(|i| format!("searcher{i}")).collect();
    let (mut searchers, f, e) = login_many(
        reg.addr(),
        &searcher_names,
        4,
        Duration::from_secs(30),
        LONG_WAIT,
        &|t: &str| hb.add(t),
    );
    if f > 0 {
        return Err(format!("searcher logins failed: {}", e.unwrap_or_default()));
    }
    let want = p.sessions;
    let names: Vec<String> = (0..want).map(|i| format!("s{i:05}")).collect();
    progress!("logging in {want} sessions (each its own TCP connection)");
    let t = Instant::now();
    // One descriptor per session, from its login on.
    let (clients, failures, first_error) = login_many_as(
        reg.addr(),
        &names,
        8,
        Duration::from_secs(if p.quick { 60 } else { 180 }),
        FILL_WAIT,
        &|t: &str| hb.add(t),
        &|c: RegClient| (c.user.clone(), c.into_stream()),
    );
    let login_secs = t.elapsed().as_secs_f64();
    let (logged, streams): (Vec<String>, Vec<TcpStream>) = clients.into_iter().unzip();
    progress!(
        "{} sessions logged in in {login_secs:.1} s ({failures} failures)",
        streams.len()
    );
    // Let every session get a couple of heartbeats.
    thread::sleep(Duration::from_secs(2));
    progress!("searching from {} extra clients", searchers.len());
    let targets: Vec<&String> = if logged.is_empty() {
        searcher_names.iter().collect()
    } else {
        logged.iter().collect()
    };
    let bodies: Vec<Vec<String>> = searchers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (0..64)
                .map(|k| {
                    let u = targets[(i * 7919 + k * 104_729) % targets.len()];
                    format!(r#""op":"search","token":"{}","username":"{u}""#, c.token)
                })
                .collect()
        })
        .collect();
    let search = run_op(
        &mut searchers,
        &bodies,
        p.search_secs,
        10_000_000,
        reg.pid(),
    );
    let rss = rss_kib(reg.pid());
    let hwm = proc_status_kib(reg.pid(), "VmHWM").unwrap_or(0);
    let threads = proc_status_kib(reg.pid(), "Threads").unwrap_or(0);
    let fds = fd_count(reg.pid());
    // Everyone online? The list comes in pages (at most 1,000 users each):
    // the first page's time and size are reported, and every page is read
    // to count our sessions (bounded: 20 pages).
    let mine: HashSet<&str> = logged.iter().map(String::as_str).collect();
    let page = |c: &mut RegClient, after: Option<&str>| -> Result<(Value, usize), String> {
        let after = after.map_or(String::new(), |a| format!(r#","after":"{a}""#));
        let body = format!(r#""op":"online","token":"{}","limit":1000{after}"#, c.token);
        let line = c.raw(&body).map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        Ok((v, line.len()))
    };
    let t = Instant::now();
    let first = page(&mut searchers[0], None);
    let online_us = t.elapsed().as_nanos() as f64 / 1000.0;
    let (mut online_count, mut online_listed, mut online_bytes) = (0, 0, 0);
    let mut next = first;
    for _ in 0..20 {
        let Ok((v, bytes)) = next else { break };
        if online_bytes == 0 {
            online_bytes = bytes;
            online_listed = v["total"].as_u64().unwrap_or(0) as usize;
        }
        let users = v["users"].as_array().cloned().unwrap_or_default();
        online_count += users
            .iter()
            .filter(|u| u["online"] == json!(true))
            .filter(|u| u["username"].as_str().is_some_and(|n| mine.contains(n)))
            .count();
        match v["next"].as_str() {
            Some(after) => next = page(&mut searchers[0], Some(after)),
            None => break,
        }
    }
    let udp_drops = udp_drops(reg.addr().port());
    let heartbeats_sent = hb.sent();
    let log = reg.log();
    let registry_limit_line = log
        .lines()
        .find(|l| l.contains("open-file limit"))
        .unwrap_or("(no open-file limit line in the registry's log)")
        .to_string();
    let problems = log_problems(&log);
    progress!(
        "online: {online_count} of {} ours listed online; registry RSS {}",
        logged.len(),
        mib(rss)
    );
    drop(hb);
    // Kill the registry before closing 10k connections (no 10k detaches).
    drop(reg);
    drop(streams);
    drop(searchers);
    Ok(Conc {
        cap,
        raised_to,
        fds,
        requested: want,
        logged_in: logged.len(),
        failures,
        first_error,
        login_secs,
        nofile,
        registry_limit_line,
        idle_rss,
        rss,
        hwm,
        threads,
        searchers: bodies.len(),
        search,
        online_count,
        online_listed,
        online_bytes,
        online_us,
        heartbeats_sent,
        udp_drops,
        registry_problems: problems,
    })
}

pub fn report_conc(r: &mut Report, res: &Result<Conc, String>, floor: Option<&Floor>) {
    r.heading("2. Concurrency: many sessions on one registry (embedded store)");
    r.line("  registry started with --argon2-memory-kib 256 --argon2-passes 1 so that the logins take seconds");
    r.line("  (not the default cost), and --requests-per-sec 1000000. Each session has its own TCP connection");
    r.line("  and gets a UDP heartbeat every second (spread over the second, from 4 sockets).");
    let c = match res {
        Ok(c) => c,
        Err(e) => {
            r.line(format!("  error: {e}"));
            r.json.insert("concurrency".into(), json!({"error": e}));
            r.target("10,000 sessions online at once", e.clone(), None);
            return;
        }
    };
    let (f50, f99) = (floor.map(|f| f.tcp.p50), floor.map(|f| f.tcp.p99));
    let per = c.per_session_kib();
    let mut rows = Vec::new();
    let mut cap_json = Value::Null;
    match &c.cap {
        Some(Ok(cap)) => {
            rows.push(vec![
                format!("with the inherited limit ({})", cap.hard),
                format!(
                    "{} sessions, then logins fail: {} ({} open descriptors in the registry; {:.0} s)",
                    group(cap.reached as u64),
                    cap.first_error.as_deref().unwrap_or("none"),
                    cap.fds.map_or("?".into(), |n| group(n as u64)),
                    cap.secs
                ),
            ]);
            if cap.registry_problems.is_empty() {
                rows.push(vec![
                    "  registry log about it".into(),
                    "nothing (the refused connections are dropped without a log line)".into(),
                ]);
            }
            for pr in &cap.registry_problems {
                rows.push(vec!["  registry log about it".into(), pr.clone()]);
            }
            cap_json = json!({
                "hard_limit": cap.hard, "sessions_reached": cap.reached,
                "first_failure": cap.first_error, "registry_fds": cap.fds,
                "registry_log_problems": cap.registry_problems, "secs": round2(cap.secs),
            });
        }
        Some(Err(e)) => {
            rows.push(vec![
                "with the inherited limit".into(),
                format!("error: {e}"),
            ]);
            cap_json = json!({"error": e});
        }
        None => {}
    }
    match &c.raised_to {
        Some(Ok(n)) => rows.push(vec![
            "limit raised by the bench (root)".into(),
            format!("soft and hard RLIMIT_NOFILE = {n}, inherited by the registry"),
        ]),
        Some(Err(e)) => rows.push(vec![
            "limit raise failed".into(),
            format!(
                "{e} (needs CAP_SYS_RESOURCE): the registry keeps the limit of {}",
                c.nofile.2
            ),
        ]),
        None => {}
    }
    rows.extend([
        vec![
            "bench open-file limit".into(),
            format!("{} -> {} (hard {})", c.nofile.0, c.nofile.1, c.nofile.2),
        ],
        vec!["registry says".into(), c.registry_limit_line.clone()],
        vec![
            "sessions logged in".into(),
            format!(
                "{} of {} in {:.1} s ({:.0}/s, cheap Argon2id), {} failures",
                group(c.logged_in as u64),
                group(c.requested as u64),
                c.login_secs,
                c.logged_in as f64 / c.login_secs.max(1e-9),
                c.failures
            ),
        ],
        vec![
            "online at the end (`online`)".into(),
            format!(
                "{} of {} (total said: {}; first page of 1,000: {} bytes, {})",
                group(c.online_count as u64),
                group(c.logged_in as u64),
                group(c.online_listed as u64),
                group(c.online_bytes as u64),
                fmt_us(c.online_us)
            ),
        ],
        vec![
            format!("search under load ({} clients)", c.searchers),
            format!(
                "{} req/s, p50 {} ({}), p99 {} ({}), {} errors",
                fmt_rate(c.search.rate()),
                fmt_us(c.search.lat.p50),
                ratio(c.search.lat.p50, f50),
                fmt_us(c.search.lat.p99),
                ratio(c.search.lat.p99, f99),
                c.search.errors
            ),
        ],
        vec![
            "registry RSS idle -> loaded".into(),
            format!(
                "{} -> {} (peak {}), {} threads",
                mib(c.idle_rss),
                mib(c.rss),
                mib(c.hwm),
                c.threads
            ),
        ],
        vec![
            "registry memory per session".into(),
            per.map_or("n/a".into(), |k| {
                format!("{k:.1} KiB  ((loaded - idle) / sessions)")
            }),
        ],
        vec![
            "registry open descriptors".into(),
            match c.fds {
                Some(n) if c.logged_in > 0 => format!(
                    "{} for {} connections: {:.2} per connection",
                    group(n as u64),
                    group(c.logged_in as u64 + c.searchers as u64),
                    n as f64 / (c.logged_in + c.searchers) as f64
                ),
                _ => "?".into(),
            },
        ],
        vec![
            "heartbeat datagrams".into(),
            format!(
                "{} sent, {} dropped by the kernel at the registry's socket",
                group(c.heartbeats_sent),
                c.udp_drops.map_or("?".into(), group)
            ),
        ],
    ]);
    table(&mut r.text, &["", ""], &rows);
    if let Some(e) = &c.first_error {
        r.line(format!("  first login failure: {e}"));
        if c.registry_problems.is_empty() {
            r.line("  registry log: nothing about it (the refused connections are dropped without a log line)");
        }
    }
    for p in &c.registry_problems {
        r.line(format!("  registry log: {p}"));
    }
    r.json.insert(
        "concurrency".into(),
        json!({
            "argon2": "--argon2-memory-kib 256 --argon2-passes 1",
            "sessions_requested": c.requested,
            "sessions_logged_in": c.logged_in,
            "login_failures": c.failures,
            "first_login_failure": c.first_error,
            "login_secs": round2(c.login_secs),
            "bench_nofile": {"before": c.nofile.0, "after": c.nofile.1, "hard": c.nofile.2},
            "registry_nofile_log_line": c.registry_limit_line,
            "online_at_end": c.online_count,
            "online_total_said": c.online_listed,
            "online_reply_bytes": c.online_bytes,
            "online_request_us": round2(c.online_us),
            "search": {
                "clients": c.searchers, "requests": c.search.requests,
                "req_per_sec": round2(c.search.rate()), "errors": c.search.errors,
                "first_error": c.search.first_error,
                "latency": lat_json(&c.search.lat),
                "p50_over_tcp_floor": ratio_json(c.search.lat.p50, f50),
                "p99_over_tcp_floor": ratio_json(c.search.lat.p99, f99),
            },
            "registry_rss_idle_kib": c.idle_rss,
            "registry_rss_loaded_kib": c.rss,
            "registry_rss_peak_kib": c.hwm,
            "registry_threads": c.threads,
            "registry_fds": c.fds,
            "inherited_limit_run": cap_json,
            "limit_raised_to": c.raised_to.as_ref().map(|r| match r {
                Ok(n) => json!(n),
                Err(e) => json!({"error": e}),
            }),
            "registry_kib_per_session": per.map(round2),
            "heartbeats_sent": c.heartbeats_sent,
            "heartbeats_dropped_by_kernel": c.udp_drops,
            "registry_log_problems": c.registry_problems,
        }),
    );
    let met = c.requested >= 10_000 && c.online_count >= 10_000;
    let mut figure = format!(
        "{} logged in, {} online at the end",
        group(c.logged_in as u64),
        group(c.online_count as u64)
    );
    if c.failures > 0 {
        if let Some(fds) = c.fds {
            let _ = write!(
                figure,
                " (logins fail at {} registry descriptors, limit {})",
                group(fds as u64),
                group(c.nofile.2)
            );
        }
    }
    if c.requested < 10_000 {
        r.target("10,000 sessions online at once", figure, None);
    } else {
        r.target("10,000 sessions online at once", figure, Some(met));
    }
}
