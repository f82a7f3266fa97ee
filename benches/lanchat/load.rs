//! Load on the registry: [`RegClient`] (a kit [`Client`] logged in, with
//! retries on `server_busy`), many logins at once, closed-loop runs of one op.

use super::*;

/// A kit [`Client`] for load: one request at a time, replies kept as text
/// on the hot path, the user and token once logged in.
pub struct RegClient {
    c: Client,
    reply: Vec<u8>,
    pub user: String,
    pub token: String,
}

pub fn is_ok(reply: &str) -> bool {
    reply.contains("\"ok\":true")
}

impl RegClient {
    /// Connects within 10 s; reads and writes bounded by `timeout`.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<RegClient> {
        Ok(RegClient {
            c: Client::try_connect(addr, Duration::from_secs(10), timeout)?,
            reply: Vec::with_capacity(1024),
            user: String::new(),
            token: String::new(),
        })
    }

    /// Sends `{"id":N,BODY}` and returns the reply line.
    pub fn raw(&mut self, body: &str) -> io::Result<&str> {
        self.c.try_raw(body, &mut self.reply)
    }

    /// A request given as a JSON object; the parsed reply, or the error.
    pub fn req(&mut self, body: Value) -> Result<Value, String> {
        let s = body.to_string();
        let inner = &s[1..s.len() - 1];
        let line = self.raw(inner).map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(line).map_err(|e| format!("reply {line:?}: {e}"))?;
        if v["ok"] == json!(true) {
            Ok(v)
        } else {
            Err(format!(
                "{}: {}",
                v["code"].as_str().unwrap_or("?"),
                v["message"].as_str().unwrap_or("?")
            ))
        }
    }

    /// Retries while the registry answers `server_busy` (bounded).
    pub fn req_retry(&mut self, body: Value) -> Result<Value, String> {
        let mut tries = 0;
        loop {
            match self.req(body.clone()) {
                Err(e) if e.starts_with("server_busy") && tries < 20 => {
                    tries += 1;
                    thread::sleep(Duration::from_millis(100));
                }
                r => return r,
            }
        }
    }

    pub fn register(&mut self, user: &str) -> Result<(), String> {
        self.req_retry(json!({"op": "register", "username": user, "password": PASSWORD}))
            .map(|_| ())
    }

    pub fn login(&mut self, user: &str) -> Result<(), String> {
        let v = self.req_retry(json!({
            "op": "login", "username": user, "password": PASSWORD,
            "tcp_port": 40000, "udp_port": 40000,
        }))?;
        self.user = user.to_string();
        self.token = v["token"].as_str().ok_or("no token")?.to_string();
        crate::kit::heartbeat::note_session(&v);
        Ok(())
    }

    pub fn logout(&mut self) -> Result<(), String> {
        let body = json!({"op": "logout", "token": self.token});
        self.req(body).map(|_| ())
    }

    /// Keeps only the connection (one descriptor instead of two).
    pub fn into_stream(self) -> TcpStream {
        self.c.stream
    }
}

/// Registers and logs in `names`, each on its own connection, from
/// `workers` threads; calls `on_login(token)` right after each login.
/// Stops early after 20 failures or when `bound` has passed. Returns the
/// clients (in `names` order, failures left out), the failure count and
/// the first failure.
pub fn login_many(
    addr: SocketAddr,
    names: &[String],
    workers: usize,
    bound: Duration,
    timeout: Duration,
    on_login: &(dyn Fn(&str) + Sync),
) -> (Vec<RegClient>, usize, Option<String>) {
    login_many_as(addr, names, workers, bound, timeout, on_login, &|c| c)
}

/// [`login_many`], each client turned into what `keep` makes of it right
/// after its login (e.g. its user and bare stream: one descriptor, not two,
/// so that 10,000 sessions fit in the bench's own open-file limit).
pub fn login_many_as<T: Send>(
    addr: SocketAddr,
    names: &[String],
    workers: usize,
    bound: Duration,
    timeout: Duration,
    on_login: &(dyn Fn(&str) + Sync),
    keep: &(dyn Fn(RegClient) -> T + Sync),
) -> (Vec<T>, usize, Option<String>) {
    let deadline = Instant::now() + bound;
    let failures = AtomicU64::new(0);
    let first_err: Mutex<Option<String>> = Mutex::new(None);
    let results: Vec<Vec<(usize, T)>> = thread::scope(|s| {
        let hs: Vec<_> = (0..workers)
            .map(|w| {
                let failures = &failures;
                let first_err = &first_err;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in (w..names.len()).step_by(workers) {
                        if failures.load(Ordering::Relaxed) >= 20 || Instant::now() >= deadline {
                            break;
                        }
                        let r = RegClient::connect(addr, timeout)
                            .map_err(|e| format!("connect: {e}"))
                            .and_then(|mut c| {
                                c.register(&names[i])
                                    .map_err(|e| format!("register {}: {e}", names[i]))?;
                                c.login(&names[i])
                                    .map_err(|e| format!("login {}: {e}", names[i]))?;
                                Ok(c)
                            });
                        match r {
                            Ok(c) => {
                                on_login(&c.token);
                                mine.push((i, keep(c)));
                            }
                            Err(e) => {
                                failures.fetch_add(1, Ordering::Relaxed);
                                first_err.lock().unwrap().get_or_insert(e);
                            }
                        }
                    }
                    mine
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut all: Vec<(usize, T)> = results.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    let n_fail = failures.load(Ordering::Relaxed) as usize;
    let err = first_err.into_inner().unwrap();
    (all.into_iter().map(|(_, c)| c).collect(), n_fail, err)
}

/// What a closed-loop run of one op produced.
pub struct OpRun {
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub secs: f64,
    pub lat: Lat,
    pub reply_bytes: usize,
    /// Registry CPU over the run, in cores.
    pub reg_cores: f64,
}

impl OpRun {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.secs.max(1e-9)
    }
}

/// Every client sends its `bodies` (cycling) back to back until `secs` pass
/// or `max_total` requests are done in all; all start together.
pub fn run_op(
    clients: &mut [RegClient],
    bodies: &[Vec<String>],
    secs: f64,
    max_total: u64,
    reg_pid: u32,
) -> OpRun {
    let c = clients.len().max(1);
    let per = (max_total / c as u64).max(1);
    let barrier = Barrier::new(clients.len() + 1);
    let ticks0 = cpu_ticks(reg_pid).unwrap_or(0);
    let (parts, elapsed) = thread::scope(|s| {
        let hs: Vec<_> = clients
            .iter_mut()
            .zip(bodies)
            .map(|(cl, body)| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let deadline = Instant::now() + Duration::from_secs_f64(secs);
                    let mut lat = Vec::with_capacity(4096);
                    let mut errors = 0u64;
                    let mut first_error = None;
                    let mut bytes = 0;
                    let mut k = 0;
                    while (lat.len() as u64) < per && Instant::now() < deadline {
                        let b = &body[k % body.len()];
                        k += 1;
                        let t = Instant::now();
                        match cl.raw(b) {
                            Ok(r) => {
                                let d = t.elapsed().as_nanos() as u64;
                                if !is_ok(r) {
                                    errors += 1;
                                    first_error.get_or_insert_with(|| r.to_string());
                                }
                                bytes = r.len();
                                lat.push(d);
                            }
                            Err(e) => {
                                errors += 1;
                                first_error.get_or_insert_with(|| e.to_string());
                                break;
                            }
                        }
                    }
                    (lat, errors, first_error, bytes)
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
    let mut reply_bytes = 0;
    for (lat, e, fe, b) in parts {
        all.extend(lat);
        errors += e;
        if first_error.is_none() {
            first_error = fe;
        }
        reply_bytes = reply_bytes.max(b);
    }
    OpRun {
        requests: all.len() as u64,
        errors,
        first_error,
        secs: elapsed,
        lat: lat_ns(all),
        reply_bytes,
        reg_cores: ticks1.saturating_sub(ticks0) as f64 / clk_tck() as f64 / elapsed.max(1e-9),
    }
}
