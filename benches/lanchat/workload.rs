//! The original registry's workload, the one issue 13 measured: each of 32
//! clients, in a closed loop, connects, logs in, makes 5 searches, lists who
//! is online, logs out and hangs up (users registered once beforehand;
//! password hashing set cheap so the request path is what is measured).
//! On MongoDB it is reported next to the store's own floor: point reads by
//! `_id` with the same driver, from as many threads, in the same run.

use super::*;

pub const WL_CLIENTS: usize = 32;
const WL_SEARCHES: usize = 5;
/// What issue 13 measured before the work, on nx-27017 (requests/s).
pub const WL_BASELINE_RPS: f64 = 600.0;

pub struct WorkloadRun {
    pub store: String,
    pub what: String,
    pub cycles: u64,
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub secs: f64,
    pub search: Lat,
    pub all: Lat,
    pub reg_cores: f64,
    /// The store's point-read floor (MongoDB only).
    pub floor: Option<Result<PointReads, String>>,
    pub error: Option<String>,
}

impl WorkloadRun {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.secs.max(1e-9)
    }
}

pub struct PointReads {
    pub threads: usize,
    pub reads: u64,
    pub secs: f64,
    pub lat: Lat,
}

impl PointReads {
    pub fn rate(&self) -> f64 {
        self.reads as f64 / self.secs.max(1e-9)
    }
}

/// One client's share: latencies of every request and of the searches,
/// cycles done, errors.
#[derive(Default)]
struct Share {
    all: Vec<u64>,
    search: Vec<u64>,
    cycles: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Share {
    fn fail(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }

    /// Sends one request and records its latency; false if it failed.
    fn timed(&mut self, c: &mut RegClient, body: &str, is_search: bool) -> bool {
        let t = Instant::now();
        match c.raw(body) {
            Ok(r) => {
                let d = t.elapsed().as_nanos() as u64;
                self.all.push(d);
                if is_search {
                    self.search.push(d);
                }
                if is_ok(r) {
                    return true;
                }
                let r = r.to_string();
                self.fail(r);
                false
            }
            Err(e) => {
                self.fail(e.to_string());
                false
            }
        }
    }

    /// One cycle: connect, login, searches, online, logout, hang up.
    fn cycle(&mut self, addr: SocketAddr, me: usize, names: &[String]) {
        let mut c = match RegClient::connect(addr, LONG_WAIT) {
            Ok(c) => c,
            Err(e) => return self.fail(format!("connect: {e}")),
        };
        let login = format!(
            r#""op":"login","username":"{}","password":"{PASSWORD}","tcp_port":40000,"udp_port":40000"#,
            names[me]
        );
        let t = Instant::now();
        let token = match c.raw(&login) {
            Ok(r) => {
                self.all.push(t.elapsed().as_nanos() as u64);
                match serde_json::from_str::<Value>(r)
                    .ok()
                    .and_then(|v| v["token"].as_str().map(str::to_string))
                {
                    Some(t) => t,
                    None => return self.fail(format!("login: {r}")),
                }
            }
            Err(e) => return self.fail(format!("login: {e}")),
        };
        for k in 1..=WL_SEARCHES {
            let other = &names[(me + k * 7 + self.cycles as usize) % names.len()];
            let body = format!(r#""op":"search","token":"{token}","username":"{other}""#);
            if !self.timed(&mut c, &body, true) {
                return;
            }
        }
        if !self.timed(
            &mut c,
            &format!(r#""op":"online","token":"{token}""#),
            false,
        ) {
            return;
        }
        if self.timed(
            &mut c,
            &format!(r#""op":"logout","token":"{token}""#),
            false,
        ) {
            self.cycles += 1;
        }
    }
}

pub fn workload(p: &Params, kind: &str, mongo: Option<&Mongo>, dir: &Path) -> WorkloadRun {
    let mut out = WorkloadRun {
        store: kind.to_string(),
        what: String::new(),
        cycles: 0,
        requests: 0,
        errors: 0,
        first_error: None,
        secs: 0.0,
        search: Lat::default(),
        all: Lat::default(),
        reg_cores: 0.0,
        floor: None,
        error: None,
    };
    if let Err(e) = workload_inner(p, mongo, dir, &mut out) {
        progress!("{kind}: workload: {e}");
        out.error = Some(e);
    }
    if let Some(m) = mongo {
        out.floor = Some(point_reads(m, dir, p.workload_secs));
        if let Some(Ok(f)) = &out.floor {
            progress!(
                "{kind}: store floor, point reads from {} threads: {}/s, p50 {}, p99 {}",
                f.threads,
                fmt_rate(f.rate()),
                fmt_us(f.lat.p50),
                fmt_us(f.lat.p99)
            );
        }
    }
    out
}

fn workload_inner(
    p: &Params,
    mongo: Option<&Mongo>,
    dir: &Path,
    out: &mut WorkloadRun,
) -> Result<(), String> {
    let (spec, what) = store_spec(mongo, dir, "workload");
    out.what = what;
    let mut args: Vec<&str> = NO_PACING.to_vec();
    args.extend(CHEAP_ARGON2);
    let reg = registry(&dir.join(format!("registry-workload-{}.log", out.store)))
        .store(&spec)
        .flags(&args)
        .try_start()?;
    let names: Vec<String> = (0..WL_CLIENTS).map(|i| format!("w{i:02}")).collect();
    for n in &names {
        let mut c =
            RegClient::connect(reg.addr(), LONG_WAIT).map_err(|e| format!("connect: {e}"))?;
        c.register(n)?;
    }
    let secs = Duration::from_secs_f64(p.workload_secs);
    let barrier = Barrier::new(WL_CLIENTS + 1);
    let ticks0 = cpu_ticks(reg.pid()).unwrap_or(0);
    let (shares, elapsed) = thread::scope(|s| {
        let hs: Vec<_> = (0..WL_CLIENTS)
            .map(|me| {
                let (barrier, names, addr) = (&barrier, &names, reg.addr());
                s.spawn(move || {
                    let mut share = Share::default();
                    barrier.wait();
                    let deadline = Instant::now() + secs;
                    // Bounded: by time, and by failures (a dead registry
                    // fails fast).
                    while Instant::now() < deadline && share.errors < 100 {
                        share.cycle(addr, me, names);
                    }
                    share
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let shares: Vec<Share> = hs
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        (shares, start.elapsed().as_secs_f64())
    });
    let ticks1 = cpu_ticks(reg.pid()).unwrap_or(0);
    let (mut all, mut search) = (Vec::new(), Vec::new());
    for s in shares {
        out.cycles += s.cycles;
        out.errors += s.errors;
        if out.first_error.is_none() {
            out.first_error = s.first_error;
        }
        all.extend(s.all);
        search.extend(s.search);
    }
    out.requests = all.len() as u64;
    out.all = lat_ns(all);
    out.search = lat_ns(search);
    out.secs = elapsed;
    out.reg_cores = ticks1.saturating_sub(ticks0) as f64 / clk_tck() as f64 / elapsed.max(1e-9);
    progress!(
        "{}: original workload, {WL_CLIENTS} clients: {} req/s ({} cycles), search p99 {}, {} errors",
        out.store,
        fmt_rate(out.rate()),
        out.cycles,
        fmt_us(out.search.p99),
        out.errors
    );
    Ok(())
}

/// The store's own floor: `find_one({_id})` on a small collection with the
/// driver the registry uses, from as many threads as the workload has
/// clients, for `secs`.
#[cfg(feature = "mongodb")]
fn point_reads(m: &Mongo, dir: &Path, secs: f64) -> Result<PointReads, String> {
    use mongodb::bson::{doc, Document};
    let (uri, _) = store_spec(Some(m), dir, "floor");
    let client = mongodb::sync::Client::with_uri_str(&uri).map_err(|e| e.to_string())?;
    let db = client
        .default_database()
        .unwrap_or_else(|| client.database("lanchat_floor"));
    let coll = db.collection::<Document>("points");
    let docs: Vec<Document> = (0..256)
        .map(|i| doc! {"_id": format!("w{i:03}"), "hash": "x".repeat(96), "created": i})
        .collect();
    coll.insert_many(docs).run().map_err(|e| e.to_string())?;
    let barrier = Barrier::new(WL_CLIENTS + 1);
    let (parts, elapsed) = thread::scope(|s| {
        let hs: Vec<_> = (0..WL_CLIENTS)
            .map(|t| {
                let (coll, barrier) = (coll.clone(), &barrier);
                s.spawn(move || {
                    let mut lat = Vec::with_capacity(4096);
                    let mut err = None;
                    barrier.wait();
                    let deadline = Instant::now() + Duration::from_secs_f64(secs);
                    let mut k = t;
                    while Instant::now() < deadline && lat.len() < 1_000_000 {
                        k = (k + 7) % 256;
                        let t0 = Instant::now();
                        match coll.find_one(doc! {"_id": format!("w{k:03}")}).run() {
                            Ok(Some(_)) => lat.push(t0.elapsed().as_nanos() as u64),
                            Ok(None) => {
                                err = Some(format!("w{k:03} not found"));
                                break;
                            }
                            Err(e) => {
                                err = Some(e.to_string());
                                break;
                            }
                        }
                    }
                    (lat, err)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let parts: Vec<_> = hs
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        (parts, start.elapsed().as_secs_f64())
    });
    let mut all = Vec::new();
    for (lat, err) in parts {
        if let Some(e) = err {
            return Err(format!("point read: {e}"));
        }
        all.extend(lat);
    }
    Ok(PointReads {
        threads: WL_CLIENTS,
        reads: all.len() as u64,
        secs: elapsed,
        lat: lat_ns(all),
    })
}

#[cfg(not(feature = "mongodb"))]
fn point_reads(_: &Mongo, _: &Path, _: f64) -> Result<PointReads, String> {
    Err("built without the mongodb feature".into())
}

pub fn report_workload(r: &mut Report, res: &Result<Vec<WorkloadRun>, String>) {
    r.heading(&format!(
        "1b. The original registry's workload: {WL_CLIENTS} clients, each in a closed loop: connect, login, {WL_SEARCHES} searches, online, logout"
    ));
    r.line("  (users registered once beforehand; --argon2-memory-kib 256 --argon2-passes 1, so hashing does not dominate;");
    r.line("  a request is one of login/search/online/logout.) MongoDB's floor: find_one by _id with the same driver,");
    r.line(format!(
        "  {WL_CLIENTS} threads, same run. Before issue 13: about {WL_BASELINE_RPS:.0} req/s on nx-27017 (search p99 71 ms)."
    ));
    let runs = match res {
        Ok(x) => x,
        Err(e) => {
            r.line(format!("  error: {e}"));
            r.json.insert("workload".into(), json!({"error": e}));
            r.target(
                "original workload on MongoDB: >= 2x before",
                e.clone(),
                None,
            );
            return;
        }
    };
    let mut rows = Vec::new();
    let mut js = Vec::new();
    for w in runs {
        let floor = match &w.floor {
            Some(Ok(f)) => format!("{}/s", fmt_rate(f.rate())),
            Some(Err(e)) => format!("error: {e}"),
            None => "-".into(),
        };
        let share = match &w.floor {
            Some(Ok(f)) if f.reads > 0 => format!("{:.0}%", 100.0 * w.rate() / f.rate()),
            _ => "-".into(),
        };
        rows.push(vec![
            w.store.clone(),
            group(w.requests),
            group(w.cycles),
            fmt_rate(w.rate()),
            fmt_us(w.search.p50),
            fmt_us(w.search.p99),
            fmt_us(w.all.p99),
            format!("{:.2}", w.reg_cores),
            floor,
            share,
            w.errors.to_string(),
        ]);
        js.push(json!({
            "store": w.store, "what": w.what, "clients": WL_CLIENTS,
            "requests": w.requests, "cycles": w.cycles, "secs": round2(w.secs),
            "req_per_sec": round2(w.rate()), "errors": w.errors,
            "first_error": w.first_error, "error": w.error,
            "search_latency": lat_json(&w.search), "request_latency": lat_json(&w.all),
            "registry_cpu_cores": round2(w.reg_cores),
            "store_floor": match &w.floor {
                Some(Ok(f)) => json!({
                    "point_reads_per_sec": round2(f.rate()), "threads": f.threads,
                    "reads": f.reads, "latency": lat_json(&f.lat),
                }),
                Some(Err(e)) => json!({"error": e}),
                None => Value::Null,
            },
        }));
    }
    table(
        &mut r.text,
        &[
            "store",
            "requests",
            "cycles",
            "req/s",
            "search p50",
            "search p99",
            "any p99",
            "reg CPU",
            "store floor",
            "req/s / floor",
            "errors",
        ],
        &rows,
    );
    for w in runs {
        r.line(format!("  {}: {}", w.store, w.what));
        if let Some(e) = w.error.as_ref().or(w.first_error.as_ref()) {
            r.line(format!("  {}: first error: {e}", w.store));
        }
    }
    r.json.insert(
        "workload".into(),
        json!({"baseline_req_per_sec_before_issue_13": WL_BASELINE_RPS, "runs": js}),
    );
    let Some(m) = runs.iter().find(|w| w.store == "mongodb") else {
        return;
    };
    let measured = m.error.is_none() && m.requests > 0;
    r.target(
        &format!(
            "original workload on MongoDB, {WL_CLIENTS} clients: >= 2x {WL_BASELINE_RPS:.0} req/s"
        ),
        match &m.error {
            Some(e) => e.clone(),
            None => format!("{} req/s ({} errors)", fmt_rate(m.rate()), m.errors),
        },
        measured.then(|| m.rate() >= 2.0 * WL_BASELINE_RPS && m.errors == 0),
    );
    let what = "original workload on MongoDB: >= 70% of the store's point-read floor";
    match &m.floor {
        Some(Ok(f)) if measured && f.reads > 0 => r.target(
            what,
            format!(
                "{} req/s / {} reads/s = {:.0}%",
                fmt_rate(m.rate()),
                fmt_rate(f.rate()),
                100.0 * m.rate() / f.rate()
            ),
            Some(m.rate() >= 0.7 * f.rate()),
        ),
        Some(Err(e)) => r.target(what, e.clone(), None),
        _ => r.target(what, "no data".into(), None),
    }
}
