//! MongoDB for tests: `MONGODB_URI` if set (each call gets its own database),
//! else a throwaway `nx-27017` server (a MongoDB-wire-compatible server on
//! SQLite, from PyPI) started once per test process. The executable is
//! `$NX27017`, else `<repo>/target/nx-venv/bin/nx-27017`, which is created on
//! first use (under a file lock, so concurrent test binaries do not race).
//! Servers are spawned like every child of the kit (see `process`), so they
//! die with the test process.

use super::process::spawn_child;
use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const NX_VERSION: &str = "0.8.1";

/// A MongoDB URI with a database of its own (`test_<hint>_<pid>_<n>`).
pub fn mongo_uri(db_hint: &str) -> String {
    let db = unique_db(db_hint);
    match std::env::var("MONGODB_URI") {
        Ok(uri) if !uri.trim().is_empty() => with_database(uri.trim(), &db),
        _ => shared_server().uri(&db),
    }
}

fn unique_db(hint: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let hint: String = hint
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(24)
        .collect();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("test_{hint}_{}_{n}", std::process::id())
}

/// Puts `db` in the path of a `mongodb://` URI, keeping its options. With
/// credentials and no `authSource`, the auth database stays what it was.
fn with_database(uri: &str, db: &str) -> String {
    let (scheme, rest) = uri.split_once("://").expect("MONGODB_URI has no scheme");
    let (before_q, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (hosts, old_db) = match before_q.split_once('/') {
        Some((h, d)) => (h, d),
        None => (before_q, ""),
    };
    let mut opts: Vec<String> = query
        .unwrap_or("")
        .split('&')
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect();
    let has_auth_source = opts
        .iter()
        .any(|o| o.to_ascii_lowercase().starts_with("authsource="));
    if hosts.contains('@') && !has_auth_source {
        let source = if old_db.is_empty() { "admin" } else { old_db };
        opts.push(format!("authSource={source}"));
    }
    let mut out = format!("{scheme}://{hosts}/{db}");
    if !opts.is_empty() {
        out.push('?');
        out.push_str(&opts.join("&"));
    }
    out
}

fn shared_server() -> &'static NxServer {
    static SHARED: OnceLock<NxServer> = OnceLock::new();
    SHARED.get_or_init(|| nx_server_start(&fresh_dir("shared")))
}

/// A fresh directory `<tmp>/lanchat-nx-<pid>-<n>-<hint>`; directories left by
/// earlier test processes that are gone are removed on the way.
pub fn fresh_dir(hint: &str) -> PathBuf {
    static CLEANED: OnceLock<()> = OnceLock::new();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let tmp = std::env::temp_dir();
    CLEANED.get_or_init(|| remove_dead_dirs(&tmp));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = tmp.join(format!("lanchat-nx-{}-{n}-{hint}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create nx-27017 data dir");
    dir
}

fn remove_dead_dirs(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("lanchat-nx-")
            .and_then(|r| r.split('-').next())
        else {
            continue;
        };
        let Ok(pid) = pid.parse::<libc::pid_t>() else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks that the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// A running (or killed) nx-27017 server on 127.0.0.1.
pub struct NxServer {
    port: u16,
    data_dir: PathBuf,
    child: Mutex<Option<Child>>,
}

/// Starts nx-27017 on a free port with `data_dir` (which must exist) holding
/// its databases, log and pid file. Panics if it does not come up.
pub fn nx_server_start(data_dir: &Path) -> NxServer {
    let mut last_err = String::new();
    for _ in 0..5 {
        let port = free_port();
        match spawn_ready(port, data_dir) {
            Ok(child) => {
                return NxServer {
                    port,
                    data_dir: data_dir.to_path_buf(),
                    child: Mutex::new(Some(child)),
                }
            }
            Err(e) => last_err = e,
        }
    }
    panic!("nx-27017 did not start: {last_err}");
}

impl NxServer {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `mongodb://127.0.0.1:<port>/<db>`.
    pub fn uri(&self, db: &str) -> String {
        format!("mongodb://127.0.0.1:{}/{db}", self.port)
    }

    /// SIGKILLs the server and waits for it; no-op if it is not running.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it if running, then starts it again on the same port and data
    /// directory. Panics if it does not come up.
    pub fn restart(&self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match spawn_ready(self.port, &self.data_dir) {
                Ok(child) => {
                    *self.child.lock().unwrap() = Some(child);
                    return;
                }
                // The port may linger briefly after the kill.
                Err(e) if Instant::now() >= deadline => panic!("nx-27017 did not restart: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl Drop for NxServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Spawns the server and waits (up to 10 s) until it accepts connections.
fn spawn_ready(port: u16, dir: &Path) -> Result<Child, String> {
    let _ = fs::remove_file(dir.join("nx.pid"));
    let mut cmd = Command::new(nx_executable());
    cmd.arg("--host")
        .arg("127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .arg("--data-dir")
        .arg(dir)
        .arg("--log-file")
        .arg(dir.join("nx.log"))
        .arg("--pid-file")
        .arg(dir.join("nx.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = spawn_child(cmd).map_err(|e| format!("cannot run nx-27017: {e}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pause = Duration::from_millis(10);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        let log = || fs::read_to_string(dir.join("nx.log")).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "exited with {status} on port {port}; log:\n{}",
                log()
            ));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "not listening on port {port} after 10 s; log:\n{}",
                log()
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// `$NX27017`, else the repo's venv copy, installed on first use.
fn nx_executable() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        if let Some(p) = std::env::var_os("NX27017").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        let venv = target.join("nx-venv");
        let exe = venv.join("bin").join("nx-27017");
        fs::create_dir_all(&target).expect("create target dir");
        let lock = File::create(target.join("nx-venv.lock")).expect("create venv lock file");
        // SAFETY: flock on a descriptor we own; released when `lock` closes.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            panic!("flock: {}", std::io::Error::last_os_error());
        }
        if !exe.exists() {
            run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
            run(Command::new(venv.join("bin").join("pip")).args([
                "install",
                "-q",
                &format!("nx-27017=={NX_VERSION}"),
            ]));
        }
        drop(lock);
        assert!(exe.exists(), "{} missing after install", exe.display());
        exe
    })
    .clone()
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
