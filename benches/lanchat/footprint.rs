//! Footprint: memory and CPU of an idle peer and of the registry.

use super::*;

/// Registry memory for sessions logged in at the default Argon2id cost.
pub struct MemAtCost {
    pub env: String,
    pub sessions: usize,
    pub idle: u64,
    pub loaded: u64,
    pub after_close: u64,
}

impl MemAtCost {
    pub fn per_session_kib(&self) -> f64 {
        self.loaded.saturating_sub(self.idle) as f64 / self.sessions.max(1) as f64
    }
}

pub fn mem_at_default_cost(
    dir: &Path,
    n: usize,
    env: &[(&str, &str)],
    hint: &str,
) -> Result<MemAtCost, String> {
    let reg = registry(&dir.join(format!("registry-mem-{hint}.log")))
        .store(&dir.join(format!("mem-{hint}.db")).to_string_lossy())
        .flags(&NO_PACING)
        .envs(env)
        .try_start()?;
    thread::sleep(Duration::from_millis(300));
    let idle = rss_kib(reg.pid());
    let hb = Heartbeater::start(reg.addr(), Duration::from_secs(1), 1, &[]);
    let names: Vec<String> = (0..n).map(|i| format!("mem{i:03}")).collect();
    let (clients, fails, err) = login_many(
        reg.addr(),
        &names,
        2,
        Duration::from_secs(60),
        LONG_WAIT,
        &|t: &str| hb.add(t),
    );
    if fails > 0 {
        return Err(format!("logins failed: {}", err.unwrap_or_default()));
    }
    thread::sleep(Duration::from_millis(300));
    let loaded = rss_kib(reg.pid());
    drop(clients);
    thread::sleep(Duration::from_millis(700));
    let after_close = rss_kib(reg.pid());
    Ok(MemAtCost {
        env: env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
        sessions: n,
        idle,
        loaded,
        after_close,
    })
}

pub struct Footprint {
    pub mem: Vec<Result<MemAtCost, String>>,
    pub secs: f64,
    pub rss: u64,
    pub hwm: u64,
    pub threads: u64,
    pub cpu_pct: f64,
    pub cpu_pct_ns: Option<f64>,
    pub tick_ms: f64,
}

pub fn footprint_section(p: &Params, dir: &Path) -> Result<Footprint, String> {
    let reg = registry(&dir.join("registry-footprint.log"))
        .store(&dir.join("footprint.db").to_string_lossy())
        .flags(&CHEAP_ARGON2)
        .try_start()?;
    let fdir = dir.join("footprint");
    fs::create_dir_all(&fdir).map_err(|e| e.to_string())?;
    let mut hub = Hub::new(reg.addr(), &fdir);
    let i = hub.spawn("idle", &[])?;
    hub.login(&[i])?;
    hub.pump_for(Duration::from_secs(2));
    let pid = hub.pid(i);
    progress!("idle peer: measuring for {} s", p.idle_secs);
    let (t0, k0, n0) = (Instant::now(), cpu_ticks(pid), cpu_ns(pid));
    hub.pump_for(Duration::from_secs(p.idle_secs));
    let (secs, k1, n1) = (t0.elapsed().as_secs_f64(), cpu_ticks(pid), cpu_ns(pid));
    let rss = rss_kib(pid);
    let hwm = proc_status_kib(pid, "VmHWM").unwrap_or(0);
    let threads = proc_status_kib(pid, "Threads").unwrap_or(0);
    let ticks = k1
        .zip(k0)
        .map(|(a, b)| a.saturating_sub(b))
        .ok_or("no /proc stat")?;
    let cpu_pct = ticks as f64 / clk_tck() as f64 / secs * 100.0;
    let cpu_pct_ns = n1
        .zip(n0)
        .map(|(a, b)| a.saturating_sub(b) as f64 / 1e9 / secs * 100.0);
    if !hub.alive[i] {
        return Err("the idle peer exited".into());
    }
    drop(hub);
    drop(reg);
    let n = if p.quick { 10 } else { 20 };
    progress!("registry memory for {n} sessions at the default Argon2id cost");
    let mut mem = vec![mem_at_default_cost(dir, n, &[], "plain")];
    // Diagnostic: a fixed mmap threshold (glibc) keeps Argon2's big buffer
    // out of the heap.
    mem.push(mem_at_default_cost(
        dir,
        n,
        &[("MALLOC_MMAP_THRESHOLD_", "131072")],
        "mmap",
    ));
    Ok(Footprint {
        mem,
        secs,
        rss,
        hwm,
        threads,
        cpu_pct,
        cpu_pct_ns,
        tick_ms: 1000.0 / clk_tck() as f64,
    })
}

pub fn report_footprint(r: &mut Report, res: &Result<Footprint, String>, conc: Option<&Conc>) {
    r.heading("4. Footprint");
    let per = conc.and_then(Conc::per_session_kib);
    match res {
        Ok(f) => {
            let rows = vec![
                vec![
                    "idle logged-in peer: RSS".into(),
                    format!(
                        "{} (peak {}), {} threads",
                        mib(f.rss),
                        mib(f.hwm),
                        f.threads
                    ),
                ],
                vec![
                    format!("idle logged-in peer: CPU over {:.0} s", f.secs),
                    format!(
                        "{:.3}% of one core (utime+stime, {:.0} ms ticks); {} by schedstat",
                        f.cpu_pct,
                        f.tick_ms,
                        f.cpu_pct_ns.map_or("n/a".into(), |x| format!("{x:.4}%"))
                    ),
                ],
                vec![
                    "registry memory per session (section 2)".into(),
                    per.map_or("n/a (concurrency not run)".into(), |k| {
                        format!("{k:.1} KiB")
                    }),
                ],
            ];
            let mut rows = rows;
            let mut mem_json = Vec::new();
            for m in &f.mem {
                match m {
                    Ok(m) => {
                        let label = if m.env.is_empty() {
                            format!(
                                "registry RSS per session, default Argon2id cost ({} logins)",
                                m.sessions
                            )
                        } else {
                            format!("  same, diagnostic run with {}", m.env)
                        };
                        rows.push(vec![
                            label,
                            format!(
                                "{:.0} KiB  (idle {} -> {} with them; {} after they disconnect)",
                                m.per_session_kib(),
                                mib(m.idle),
                                mib(m.loaded),
                                mib(m.after_close)
                            ),
                        ]);
                        mem_json.push(json!({
                            "env": m.env, "sessions": m.sessions, "rss_idle_kib": m.idle,
                            "rss_loaded_kib": m.loaded, "rss_after_disconnect_kib": m.after_close,
                            "kib_per_session": round2(m.per_session_kib()),
                        }));
                    }
                    Err(e) => {
                        rows.push(vec!["registry RSS at the default cost".into(), e.clone()]);
                        mem_json.push(json!({"error": e}));
                    }
                }
            }
            table(&mut r.text, &["", ""], &rows);
            r.json.insert(
                "footprint".into(),
                json!({
                    "idle_secs": round2(f.secs), "peer_rss_kib": f.rss, "peer_rss_peak_kib": f.hwm,
                    "peer_threads": f.threads, "peer_cpu_percent_of_one_core": (f.cpu_pct * 1000.0).round() / 1000.0,
                    "peer_cpu_percent_schedstat": f.cpu_pct_ns.map(|x| (x * 10000.0).round() / 10000.0),
                    "clock_tick_ms": f.tick_ms,
                    "registry_kib_per_session": per.map(round2),
                    "registry_memory_at_default_argon2": mem_json,
                }),
            );
            r.target(
                "idle peer < 10 MB RSS",
                mib(f.rss),
                Some((f.rss as f64) * 1024.0 < 10.0 * 1024.0 * 1024.0),
            );
            r.target(
                "idle peer < 0.1% CPU",
                format!("{:.3}%", f.cpu_pct),
                Some(f.cpu_pct < 0.1),
            );
        }
        Err(e) => {
            r.line(format!("  error: {e}"));
            r.json.insert("footprint".into(), json!({"error": e}));
            r.target("idle peer < 10 MB RSS", e.clone(), None);
            r.target("idle peer < 0.1% CPU", e.clone(), None);
        }
    }
}
