//! The room benchmark's peers: many `peer --json` processes whose events
//! all come to one channel, and the bookkeeping of a measured run.

use super::*;

pub enum PEv {
    Msg {
        idx: usize,
        own: bool,
        id: u64,
        text: String,
        ts: u64,
    },
    /// A `delivery` event with `acked == total`: the sender considers the
    /// message delivered to every member it still has.
    Delivered {
        idx: usize,
        id: u64,
    },
    Other {
        idx: usize,
        v: Value,
    },
    Closed {
        idx: usize,
    },
}

/// A running `peer --json`, SIGKILLed on drop.
pub struct PeerProc {
    pub name: String,
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub log: PathBuf,
}

impl Drop for PeerProc {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Receives one room run's `message` events.
pub struct RunAcc {
    pub tag: String,
    pub sender: usize,
    pub n: usize,
    pub slot: HashMap<usize, usize>,
    pub own_ts: Vec<u64>,
    pub max_ts: Vec<u64>,
    pub counts: Vec<Vec<u16>>,
    /// Per member: one past the highest message index it got so far.
    pub next: Vec<usize>,
    /// Messages a member got after a later one.
    pub reordered: u64,
    pub got: Vec<usize>,
    pub own_seen: usize,
    pub pairs: usize,
    pub dups: u64,
    pub foreign: u64,
    pub incidents: Vec<String>,
    /// The sender's message id → index, from its own `message` events.
    pub id_of: HashMap<u64, usize>,
    pub reported_done: Vec<bool>,
    pub failed_reported: usize,
}

impl RunAcc {
    pub fn new(tag: &str, sender: usize, receivers: &[usize], n: usize) -> RunAcc {
        RunAcc {
            tag: tag.to_string(),
            sender,
            n,
            slot: receivers.iter().enumerate().map(|(s, &i)| (i, s)).collect(),
            own_ts: vec![0; n],
            max_ts: vec![0; n],
            counts: vec![vec![0; n]; receivers.len()],
            next: vec![0; receivers.len()],
            reordered: 0,
            got: vec![0; n],
            own_seen: 0,
            pairs: 0,
            dups: 0,
            foreign: 0,
            incidents: Vec::new(),
            id_of: HashMap::new(),
            reported_done: vec![false; n],
            failed_reported: 0,
        }
    }

    pub fn delivered(&mut self, idx: usize, id: u64) {
        if idx == self.sender {
            if let Some(&i) = self.id_of.get(&id) {
                self.reported_done[i] = true;
            }
        }
    }

    pub fn message(&mut self, idx: usize, own: bool, id: u64, text: &str, ts: u64) {
        let i = text
            .strip_prefix(self.tag.as_str())
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|r| r.parse::<usize>().ok())
            .filter(|i| *i < self.n);
        let Some(i) = i else {
            self.foreign += 1;
            return;
        };
        if own {
            if idx == self.sender && self.own_ts[i] == 0 {
                self.own_ts[i] = ts;
                self.own_seen += 1;
                self.id_of.insert(id, i);
            }
            return;
        }
        let Some(&s) = self.slot.get(&idx) else {
            self.foreign += 1;
            return;
        };
        let c = &mut self.counts[s][i];
        *c = c.saturating_add(1);
        if *c == 1 {
            if i < self.next[s] {
                self.reordered += 1;
            }
            self.next[s] = self.next[s].max(i + 1);
            self.pairs += 1;
            self.got[i] += 1;
            self.max_ts[i] = self.max_ts[i].max(ts);
        } else {
            self.dups += 1;
        }
    }

    pub fn done(&self) -> bool {
        self.own_seen == self.n && self.pairs == self.n * self.counts.len()
    }
}

/// With `--keep`: every peer's stdout (its JSON events) is copied to a file.
pub static TEE: AtomicBool = AtomicBool::new(false);

/// Peers, their events (one channel for all), and the run being measured.
pub struct Hub {
    pub registry: SocketAddr,
    pub dir: PathBuf,
    pub peers: Vec<PeerProc>,
    pub tx: Sender<PEv>,
    pub rx: Receiver<PEv>,
    pub pending: Vec<VecDeque<Value>>,
    pub alive: Vec<bool>,
    pub acc: Option<RunAcc>,
    /// More arguments for every peer started from now on.
    pub args: Vec<String>,
}

impl Hub {
    pub fn new(registry: SocketAddr, dir: &Path) -> Hub {
        let (tx, rx) = mpsc::channel();
        Hub {
            registry,
            dir: dir.to_path_buf(),
            peers: Vec::new(),
            tx,
            rx,
            pending: Vec::new(),
            alive: Vec::new(),
            acc: None,
            args: Vec::new(),
        }
    }

    pub fn spawn(&mut self, name: &str, prefix: &[String]) -> Result<usize, String> {
        let idx = self.peers.len();
        let log = self.dir.join(format!("peer-{name}.log"));
        let err = File::create(&log).map_err(|e| e.to_string())?;
        let mut cmd = peer_command(prefix);
        cmd.arg("--registry")
            .arg(self.registry.to_string())
            .args(["--json", "--no-color"])
            .args(&self.args)
            .env_remove("REGISTRY_ADDR")
            .env_remove("LANCHAT_FAULTS")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err));
        let mut child = spawn(cmd).map_err(|e| format!("spawn peer: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stdin = child.stdin.take();
        let tx = self.tx.clone();
        let mut tee = if TEE.load(Ordering::Relaxed) {
            File::create(self.dir.join(format!("peer-{name}.events")))
                .ok()
                .map(io::LineWriter::new)
        } else {
            None
        };
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(t) = &mut tee {
                    let _ = writeln!(t, "{line}");
                }
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"event": "_unparsed", "line": line}));
                let ev = match v["event"].as_str() {
                    Some("message") => PEv::Msg {
                        idx,
                        own: v["own"] == json!(true),
                        id: v["id"].as_u64().unwrap_or(0),
                        text: v["text"].as_str().unwrap_or_default().to_string(),
                        ts: v["ts_us"].as_u64().unwrap_or(0),
                    },
                    // Only the final one (everyone still listed acked).
                    Some("delivery") if v["acked"] == v["total"] => PEv::Delivered {
                        idx,
                        id: v["id"].as_u64().unwrap_or(0),
                    },
                    Some("delivery") => continue,
                    _ => PEv::Other { idx, v },
                };
                if tx.send(ev).is_err() {
                    return;
                }
            }
            let _ = tx.send(PEv::Closed { idx });
        });
        self.peers.push(PeerProc {
            name: name.to_string(),
            child,
            stdin,
            log,
        });
        self.pending.push(VecDeque::new());
        self.alive.push(true);
        Ok(idx)
    }

    pub fn pid(&self, idx: usize) -> u32 {
        self.peers[idx].child.id()
    }

    pub fn send(&mut self, idx: usize, line: &str) -> Result<(), String> {
        let p = &mut self.peers[idx];
        let stdin = p.stdin.as_mut().ok_or("stdin closed")?;
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        buf.push('\n');
        stdin
            .write_all(buf.as_bytes())
            .map_err(|e| format!("{}: writing to stdin: {e}", p.name))
    }

    pub fn dispatch(&mut self, ev: PEv) {
        match ev {
            PEv::Msg {
                idx,
                own,
                id,
                text,
                ts,
            } => {
                if let Some(acc) = &mut self.acc {
                    acc.message(idx, own, id, &text, ts);
                }
            }
            PEv::Delivered { idx, id } => {
                if let Some(acc) = &mut self.acc {
                    acc.delivered(idx, id);
                }
            }
            PEv::Other { idx, v } => {
                if let Some(acc) = &mut self.acc {
                    let ev = v["event"].as_str().unwrap_or_default();
                    if ev == "delivery_failed" || ev == "member_left" || ev == "registry_lost" {
                        acc.incidents.push(format!("{}: {v}", self.peers[idx].name));
                    }
                    if ev == "delivery_failed" && idx == acc.sender {
                        acc.failed_reported += 1;
                    }
                }
                let q = &mut self.pending[idx];
                q.push_back(v);
                if q.len() > 5000 {
                    q.pop_front();
                }
            }
            PEv::Closed { idx } => self.alive[idx] = false,
        }
    }

    /// Handles one event, waiting until `until` at most; false on time-out.
    pub fn pump(&mut self, until: Instant) -> bool {
        let left = until.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(ev) => {
                self.dispatch(ev);
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => {
                thread::sleep(left.min(Duration::from_millis(20)));
                false
            }
        }
    }

    /// Handles events until `until`.
    pub fn pump_for(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.pump(until);
        }
    }

    pub fn clear_pending(&mut self) {
        while let Ok(ev) = self.rx.try_recv() {
            self.dispatch(ev);
        }
        for q in &mut self.pending {
            q.clear();
        }
    }

    pub fn log_tail(&self, idx: usize) -> String {
        let log = fs::read_to_string(&self.peers[idx].log).unwrap_or_default();
        let recent: Vec<String> = self.pending[idx]
            .iter()
            .rev()
            .take(8)
            .map(|v| v.to_string())
            .collect();
        format!("recent events: {:?}; stderr: {}", recent, tail(&log, 5))
    }

    /// Takes the first pending event of `idx` matching `pred`, waiting up
    /// to `timeout`.
    pub fn wait(
        &mut self,
        idx: usize,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = self.pending[idx].iter().position(&pred) {
                return Ok(self.pending[idx].remove(pos).expect("in range"));
            }
            // A peer's lines all come before its `Closed`.
            if Instant::now() >= deadline || !self.alive[idx] {
                return Err(format!(
                    "{}: no {what} within {timeout:?}; {}",
                    self.peers[idx].name,
                    self.log_tail(idx)
                ));
            }
            self.pump(deadline);
        }
    }

    /// Waits for `ready`, then registers and logs in each of `idxs` (the
    /// peer connects to the registry in the background: "not connected"
    /// means try again shortly).
    pub fn login(&mut self, idxs: &[usize]) -> Result<(), String> {
        for &i in idxs {
            self.wait(i, "ready", START_TIMEOUT, |v| v["event"] == "ready")?;
        }
        for (verb, event) in [("register", "registered"), ("login", "logged_in")] {
            for &i in idxs {
                let line = format!("/{verb} {} {PASSWORD}", self.peers[i].name);
                self.send(i, &line)?;
            }
            for &i in idxs {
                let line = format!("/{verb} {} {PASSWORD}", self.peers[i].name);
                let deadline = Instant::now() + START_TIMEOUT;
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let v = self.wait(i, event, left, |v| {
                        v["event"] == event || v["event"] == "error"
                    })?;
                    if v["event"] == event {
                        break;
                    }
                    let msg = v["message"].as_str().unwrap_or_default();
                    if !msg.contains("not connected") || Instant::now() >= deadline {
                        return Err(format!("{}: {line:?} failed: {v}", self.peers[i].name));
                    }
                    thread::sleep(Duration::from_millis(50));
                    self.send(i, &line)?;
                }
            }
        }
        Ok(())
    }

    /// utime+stime of every peer, in ticks.
    pub fn cpu_ticks_all(&self) -> u64 {
        self.peers
            .iter()
            .filter_map(|p| cpu_ticks(p.child.id()))
            .sum()
    }
}

/// Creates `room` with `members[0]` and has the others join; waits until
/// the first member (the sender) knows every other one.
pub fn setup_room(hub: &mut Hub, room: &str, members: &[usize]) -> Result<(), String> {
    let s = members[0];
    let joined = |room: &str| {
        let room = room.to_string();
        move |v: &Value| v["event"] == "room_joined" && v["room"] == json!(room)
    };
    hub.send(s, &format!("/create {room}"))?;
    hub.wait(s, "room_joined", Duration::from_secs(10), joined(room))?;
    for &m in &members[1..] {
        hub.send(m, &format!("/join {room}"))?;
    }
    for &m in &members[1..] {
        let v = hub.wait(m, "room_joined", Duration::from_secs(30), joined(room))?;
        let sender = hub.peers[s].name.clone();
        let lists_sender = v["members"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == sender.as_str()));
        if !lists_sender {
            return Err(format!(
                "{} joined #{room} without {sender} in its list: {v}",
                hub.peers[m].name
            ));
        }
    }
    let mut missing: HashSet<String> = members[1..]
        .iter()
        .map(|&m| hub.peers[m].name.clone())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !missing.is_empty() {
        let q = &mut hub.pending[s];
        q.retain(|v| {
            if v["event"] == "member_joined" && v["room"] == json!(room) {
                if let Some(u) = v["user"].as_str() {
                    missing.remove(u);
                }
                false
            } else {
                true
            }
        });
        if missing.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the sender never saw {} of the members join #{room}",
                missing.len()
            ));
        }
        hub.pump(deadline);
    }
    hub.send(s, &format!("/switch #{room}"))?;
    hub.pump_for(Duration::from_secs(1));
    hub.clear_pending();
    Ok(())
}

pub fn leave_room(hub: &mut Hub, room: &str, members: &[usize]) {
    for &m in members {
        let _ = hub.send(m, &format!("/leave {room}"));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for &m in members {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = hub.wait(m, "room_left", left, |v| {
            v["event"] == "room_left" && v["room"] == json!(room)
        });
    }
    // The "leave" lingers 1.5 s at most.
    hub.pump_for(Duration::from_millis(1600));
    hub.clear_pending();
}
