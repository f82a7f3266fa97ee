//! Registry requests: throughput and latency of each op per store
//! (embedded and MongoDB), logins, and a registry full of sessions.

use super::*;

pub const OPS: [&str; 3] = ["search", "online", "heartbeat"];
pub const CLIENT_COUNTS: [usize; 4] = [1, 8, 32, 256];

pub struct OpRow {
    pub op: &'static str,
    pub clients: usize,
    pub run: OpRun,
}

pub struct LoginRow {
    pub clients: usize,
    pub run: OpRun,
}

pub struct StoreBench {
    pub store: String,
    pub what: String,
    pub ops: Vec<OpRow>,
    pub online_bytes: usize,
    pub online_users: usize,
    pub logins: Vec<LoginRow>,
    /// Sessions the registry timed out although the bench sent their
    /// heartbeats every second, and the heartbeats sent / dropped by the
    /// kernel at the registry's UDP socket.
    pub timed_out: usize,
    pub first_timeout: Option<String>,
    pub hb_sent: u64,
    pub hb_dropped: Option<u64>,
    pub error: Option<String>,
}

/// The MongoDB the registry benchmark uses: `$MONGODB_URI` (each registry
/// gets a database of its own), else a throwaway nx-27017 started here and
/// killed when this is dropped.
pub enum Mongo {
    Uri,
    Nx(support::NxServer),
}

pub fn start_mongo() -> Result<Mongo, String> {
    if std::env::var("MONGODB_URI").is_ok_and(|u| !u.trim().is_empty()) {
        return Ok(Mongo::Uri);
    }
    progress!("starting nx-27017");
    catch_unwind(|| support::nx_server_start(&support::fresh_dir("bench")))
        .map(Mongo::Nx)
        .map_err(|e| format!("cannot start nx-27017: {}", panic_text(&*e)))
}

/// A `--store` spec for a fresh store, and what it is.
pub fn store_spec(mongo: Option<&Mongo>, dir: &Path, hint: &str) -> (String, String) {
    match mongo {
        None => (
            dir.join(format!("{hint}.db")).to_string_lossy().into_owned(),
            "embedded SQLite (WAL)".into(),
        ),
        Some(Mongo::Uri) => (support::mongo_uri(hint), "MongoDB at $MONGODB_URI".into()),
        Some(Mongo::Nx(server)) => (
            server.uri(&format!("bench_{hint}_{}", std::process::id())),
            "nx-27017 0.8.1 (a MongoDB-wire-compatible server in Python on SQLite, started by the bench; not a real mongod)".into(),
        ),
    }
}

pub fn empty_store_bench(kind: &str) -> StoreBench {
    StoreBench {
        store: kind.to_string(),
        what: String::new(),
        ops: Vec::new(),
        online_bytes: 0,
        online_users: 0,
        logins: Vec::new(),
        timed_out: 0,
        first_timeout: None,
        hb_sent: 0,
        hb_dropped: None,
        error: None,
    }
}

pub fn registry_store(p: &Params, kind: &str, mongo: Option<&Mongo>, dir: &Path) -> StoreBench {
    let mut out = empty_store_bench(kind);
    if let Err(e) = registry_store_inner(p, kind, mongo, dir, &mut out) {
        progress!("{kind}: {e}");
        out.error = Some(e);
    }
    out
}

pub fn registry_store_inner(
    p: &Params,
    kind: &str,
    mongo: Option<&Mongo>,
    dir: &Path,
    out: &mut StoreBench,
) -> Result<(), String> {
    let (spec, what) = store_spec(mongo, dir, "ops");
    out.what = what;
    let mut args: Vec<&str> = NO_PACING.to_vec();
    args.extend(CHEAP_ARGON2);
    let reg = registry(&dir.join(format!("registry-ops-{kind}.log")))
        .store(&spec)
        .flags(&args)
        .try_start()?;
    let nmax = *CLIENT_COUNTS.iter().max().unwrap_or(&1);
    let names: Vec<String> = (0..nmax).map(|i| format!("u{i:03}")).collect();
    let hb = Heartbeater::start(reg.addr(), Duration::from_secs(1), 2, &[]);
    progress!("{kind}: registering and logging in {nmax} users");
    let (mut clients, nfail, err) = login_many(
        reg.addr(),
        &names,
        8,
        Duration::from_secs(120),
        LONG_WAIT,
        &|t: &str| hb.add(t),
    );
    if nfail > 0 || clients.len() < nmax {
        return Err(format!(
            "only {} of {nmax} logins worked: {}",
            clients.len(),
            err.unwrap_or_default()
        ));
    }
    let users: Vec<String> = clients.iter().map(|c| c.user.clone()).collect();
    for &c in &CLIENT_COUNTS {
        for op in OPS {
            let bodies: Vec<Vec<String>> = clients[..c]
                .iter()
                .enumerate()
                .map(|(i, cl)| match op {
                    "search" => (1..=16)
                        .map(|k| {
                            format!(
                                r#""op":"search","token":"{}","username":"{}""#,
                                cl.token,
                                users[(i + k * 7) % users.len()]
                            )
                        })
                        .collect(),
                    _ => vec![format!(r#""op":"{op}","token":"{}""#, cl.token)],
                })
                .collect();
            let run = run_op(&mut clients[..c], &bodies, p.op_secs, p.op_max, reg.pid());
            progress!(
                "{kind}: {op:<9} {c:>3} clients: {} req/s, p50 {}, p99 {}, {} errors",
                fmt_rate(run.rate()),
                fmt_us(run.lat.p50),
                fmt_us(run.lat.p99),
                run.errors
            );
            // Every client's last reply: all `nmax` users online if none failed.
            if op == "online" && c == nmax && run.errors == 0 {
                out.online_bytes = run.reply_bytes;
                out.online_users = nmax;
            }
            out.ops.push(OpRow {
                op,
                clients: c,
                run,
            });
        }
    }
    out.hb_sent = hb.sent();
    out.hb_dropped = udp_drops(reg.addr().port());
    let log = reg.log();
    let timeouts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("timed out (no heartbeat)"))
        .collect();
    out.timed_out = timeouts.len();
    out.first_timeout = timeouts.first().map(|l| l.to_string());
    drop(clients);
    drop(hb);
    drop(reg);

    // Logins at the default Argon2id cost, on a registry of their own.
    let (spec, _) = store_spec(mongo, dir, "logins");
    let reg = registry(&dir.join(format!("registry-logins-{kind}.log")))
        .store(&spec)
        .flags(&NO_PACING)
        .try_start()?;
    let nl = p.login_clients.iter().copied().max().unwrap_or(1);
    progress!("{kind}: registering {nl} users at the default Argon2id cost");
    let mut lclients = Vec::new();
    for i in 0..nl {
        let mut c = RegClient::connect(reg.addr(), Duration::from_secs(30))
            .map_err(|e| format!("connect: {e}"))?;
        c.register(&format!("lg{i}"))?;
        c.user = format!("lg{i}");
        lclients.push(c);
    }
    for &n in &p.login_clients {
        let run = login_cycles(&mut lclients[..n], p.login_secs, reg.pid());
        progress!(
            "{kind}: logins, {n} clients: {:.1}/s, p50 {}, p99 {}, {} errors",
            run.rate(),
            fmt_us(run.lat.p50),
            fmt_us(run.lat.p99),
            run.errors
        );
        out.logins.push(LoginRow { clients: n, run });
    }
    Ok(())
}

/// login + logout cycles on each client's own user, until `secs` pass
/// (a cycle started before then finishes). Latency is the login's.
pub fn login_cycles(clients: &mut [RegClient], secs: f64, reg_pid: u32) -> OpRun {
    let barrier = Barrier::new(clients.len() + 1);
    let ticks0 = cpu_ticks(reg_pid).unwrap_or(0);
    let (parts, elapsed) = thread::scope(|s| {
        let hs: Vec<_> = clients
            .iter_mut()
            .map(|c| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let deadline = Instant::now() + Duration::from_secs_f64(secs);
                    let mut lat = Vec::new();
                    let mut errors = 0u64;
                    let mut first = None;
                    let user = c.user.clone();
                    while Instant::now() < deadline && lat.len() < 10_000 {
                        let t = Instant::now();
                        match c.login(&user) {
                            Ok(()) => {
                                lat.push(t.elapsed().as_nanos() as u64);
                                if let Err(e) = c.logout() {
                                    errors += 1;
                                    first.get_or_insert(e);
                                }
                            }
                            Err(e) => {
                                errors += 1;
                                first.get_or_insert(e);
                                if errors > 20 {
                                    break;
                                }
                            }
                        }
                    }
                    (lat, errors, first)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let parts: Vec<_> = hs.into_iter().map(|h| h.join().expect("client")).collect();
        (parts, start.elapsed().as_secs_f64())
    });
    let ticks1 = cpu_ticks(reg_pid).unwrap_or(0);
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for (l, e, f) in parts {
        all.extend(l);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    OpRun {
        requests: all.len() as u64,
        errors,
        first_error,
        secs: elapsed,
        lat: lat_ns(all),
        reply_bytes: 0,
        reg_cores: ticks1.saturating_sub(ticks0) as f64 / clk_tck() as f64 / elapsed.max(1e-9),
    }
}

pub fn report_registry(
    r: &mut Report,
    res: &Result<Vec<StoreBench>, String>,
    floor: Option<&Floor>,
) {
    r.heading("1. Registry requests: closed loop, each client its own TCP connection and user");
    r.line("  registry started with --requests-per-sec 1000000, so per-connection pacing does not cap throughput;");
    r.line("  the sessions for search/online/heartbeat were set up with --argon2-memory-kib 256 --argon2-passes 1");
    r.line("  (those ops do no hashing). Ratios: latency / loopback TCP round-trip floor (p50/p50, p99/p99).");
    r.line("  The bench's client threads share the same CPUs as the registry.");
    let stores = match res {
        Ok(s) => s,
        Err(e) => {
            r.line(format!("  error: {e}"));
            r.json.insert("registry".into(), json!({"error": e}));
            return;
        }
    };
    let (f50, f99) = (floor.map(|f| f.tcp.p50), floor.map(|f| f.tcp.p99));
    let mut rows = Vec::new();
    let mut js = Vec::new();
    for s in stores {
        let mut ops = Vec::new();
        for o in &s.ops {
            rows.push(vec![
                s.store.clone(),
                o.op.to_string(),
                o.clients.to_string(),
                group(o.run.requests),
                fmt_rate(o.run.rate()),
                fmt_us(o.run.lat.p50),
                fmt_us(o.run.lat.p99),
                ratio(o.run.lat.p50, f50),
                ratio(o.run.lat.p99, f99),
                format!("{:.2}", o.run.reg_cores),
                o.run.errors.to_string(),
            ]);
            ops.push(json!({
                "op": o.op, "clients": o.clients, "requests": o.run.requests,
                "errors": o.run.errors, "first_error": o.run.first_error,
                "secs": round2(o.run.secs), "req_per_sec": round2(o.run.rate()),
                "latency": lat_json(&o.run.lat),
                "p50_over_tcp_floor": ratio_json(o.run.lat.p50, f50),
                "p99_over_tcp_floor": ratio_json(o.run.lat.p99, f99),
                "reply_bytes": o.run.reply_bytes,
                "registry_cpu_cores": round2(o.run.reg_cores),
            }));
        }
        let logins: Vec<Value> = s
            .logins
            .iter()
            .map(|l| {
                json!({
                    "clients": l.clients, "logins": l.run.requests,
                    "logins_per_sec": round2(l.run.rate()), "errors": l.run.errors,
                    "first_error": l.run.first_error, "secs": round2(l.run.secs),
                    "login_latency": lat_json(&l.run.lat),
                    "registry_cpu_cores": round2(l.run.reg_cores),
                })
            })
            .collect();
        js.push(json!({
            "store": s.store, "what": s.what, "ops": ops, "logins": logins,
            "online_reply_bytes": s.online_bytes, "online_reply_users": s.online_users,
            "heartbeats_sent": s.hb_sent, "heartbeats_dropped_by_kernel": s.hb_dropped,
            "sessions_timed_out_despite_heartbeats": s.timed_out,
            "first_timeout_log_line": s.first_timeout,
            "error": s.error,
        }));
    }
    table(
        &mut r.text,
        &[
            "store",
            "op",
            "clients",
            "requests",
            "req/s",
            "p50",
            "p99",
            "p50/floor",
            "p99/floor",
            "reg CPU",
            "errors",
        ],
        &rows,
    );
    for s in stores {
        r.line(format!("  {}: {}", s.store, s.what));
        if s.online_bytes > 0 {
            r.line(format!(
                "  {}: the `online` reply lists every online user, so it grows with them: {} bytes with {} users online",
                s.store,
                group(s.online_bytes as u64),
                s.online_users
            ));
        }
        if let Some(e) = &s.error {
            r.line(format!("  {}: error: {e}", s.store));
        }
        if s.hb_sent > 0 {
            r.line(format!(
                "  {}: UDP heartbeats sent every second for all 256 sessions: {} ({} dropped by the kernel at the registry); sessions the registry timed out anyway: {}{}",
                s.store,
                group(s.hb_sent),
                s.hb_dropped.map_or("?".into(), group),
                s.timed_out,
                s.first_timeout
                    .as_ref()
                    .map_or(String::new(), |l| format!(" (first: {l})"))
            ));
        }
        for o in s.ops.iter().filter(|o| o.run.errors > 0) {
            r.line(format!(
                "  {} {} x{}: first error: {}",
                s.store,
                o.op,
                o.clients,
                o.run.first_error.as_deref().unwrap_or("?")
            ));
        }
    }
    r.line("");
    r.line("  Logins: login+logout cycles at the DEFAULT Argon2id cost (19456 KiB, 2 passes).");
    r.line("  Argon2id is slow on purpose (it makes guessing passwords expensive); the registry hashes");
    r.line("  at most nproc passwords at once (--hash-concurrency).");
    let mut rows = Vec::new();
    for s in stores {
        for l in &s.logins {
            rows.push(vec![
                s.store.clone(),
                l.clients.to_string(),
                group(l.run.requests),
                format!("{:.1}", l.run.rate()),
                fmt_us(l.run.lat.p50),
                fmt_us(l.run.lat.p99),
                format!("{:.2}", l.run.reg_cores),
                l.run.errors.to_string(),
            ]);
        }
    }
    table(
        &mut r.text,
        &[
            "store",
            "clients",
            "logins",
            "logins/s",
            "login p50",
            "login p99",
            "reg CPU",
            "errors",
        ],
        &rows,
    );
    r.json.insert(
        "registry".into(),
        json!({
            "requests_per_sec_flag": 1_000_000,
            "setup_argon2": "--argon2-memory-kib 256 --argon2-passes 1 (ops registry only)",
            "login_argon2": "default: 19456 KiB, 2 passes",
            "stores": js,
        }),
    );
    for s in stores {
        let row = s.ops.iter().find(|o| o.op == "search" && o.clients == 256);
        match row {
            Some(o) if o.run.requests > 0 => {
                let met = o.run.lat.p99 <= 10_000.0 && o.run.errors == 0;
                r.target(
                    &format!(
                    "search p99 <= 10 ms with 256 clients ({}; before issue 13: 34 ms embedded)",
                    s.store
                ),
                    fmt_us(o.run.lat.p99),
                    Some(met),
                );
            }
            _ => r.target(
                &format!(
                    "search p99 <= 10 ms with 256 clients ({}; before issue 13: 34 ms embedded)",
                    s.store
                ),
                s.error.clone().unwrap_or_else(|| "no data".into()),
                None,
            ),
        }
    }
}
