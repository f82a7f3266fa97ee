//! Child processes that cannot outlive the test: every one is spawned from
//! one long-lived helper thread with `PR_SET_PDEATHSIG = SIGKILL` (the
//! signal fires when the *spawning thread* exits, hence the thread that
//! never does), so fixtures may be created on any thread, and children die
//! with the test process even when it is killed before destructors run.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::{mpsc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long a child may take to print its first line (`listening`, `ready`).
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// A command for `bin`, run through `prefix` (e.g. `ip netns exec NS`, which
/// execs the program in the same process, so the death signal carries over)
/// when it is not empty.
pub fn command(prefix: &[String], bin: impl AsRef<OsStr>) -> Command {
    match prefix.split_first() {
        None => Command::new(bin),
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
    }
}

/// Peers started by tests write no conversation logs into the home folder:
/// `LANCHAT_NO_LOG=1` unless the command says where logs go (`--log-dir`,
/// `LANCHAT_LOG_DIR`) or sets `LANCHAT_NO_LOG` itself.
fn no_logs_at_home(cmd: &mut Command) {
    let set = |k: &str| cmd.get_envs().any(|(name, _)| name == k);
    let dir_arg = cmd
        .get_args()
        .any(|a| a.to_str().is_some_and(|a| a.starts_with("--log-dir")));
    if !set("LANCHAT_NO_LOG") && !set("LANCHAT_LOG_DIR") && !dir_arg {
        cmd.env("LANCHAT_NO_LOG", "1");
    }
}

/// Peers started by tests remember no registry certificates in the home
/// folder (a later registry on a reused port, with another certificate,
/// would be refused): `XDG_CONFIG_HOME` is a fresh directory of its own
/// unless the command sets it.
pub fn no_config_at_home(cmd: &mut Command) {
    if cmd.get_envs().any(|(name, _)| name == "XDG_CONFIG_HOME") {
        return;
    }
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = option_env!("CARGO_TARGET_TMPDIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("kit-config-{}-{n}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    cmd.env("XDG_CONFIG_HOME", dir);
}

/// Spawns `cmd` from the keeper thread with `PR_SET_PDEATHSIG = SIGKILL`,
/// and with the open-file limit `nofile` (soft and hard) when not 0.
pub fn spawn_child_with_nofile(mut cmd: Command, nofile: u64) -> io::Result<Child> {
    no_logs_at_home(&mut cmd);
    no_config_at_home(&mut cmd);
    static KEEPER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            if nofile > 0 {
                let lim = libc::rlimit {
                    rlim_cur: nofile,
                    rlim_max: nofile,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        thread::Builder::new()
            .name("kit-spawner".into())
            .spawn(move || {
                // The sender lives in a static, so this loop never ends.
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("start the spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    keeper
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("spawner thread gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("spawner thread gone"))?
}

/// [`spawn_child_with_nofile`] keeping the test's own open-file limit.
pub fn spawn_child(cmd: Command) -> io::Result<Child> {
    spawn_child_with_nofile(cmd, 0)
}

/// Waits up to `limit` for `child` to exit (`None`: still running).
pub fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(e) => panic!("waiting for pid {}: {e}", child.id()),
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// SIGKILLs `child` and reaps it.
pub fn kill_child(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends `sig` to a child by pid.
pub fn signal(pid: u32, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: signalling our own (not yet reaped) child by pid.
    if unsafe { libc::kill(pid as libc::pid_t, sig) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads the first line of a child's stdout (bounded by [`START_TIMEOUT`]),
/// then keeps draining the rest on a thread so the child never blocks on
/// a full pipe.
pub fn first_line(child: &mut Child) -> Result<String, String> {
    Ok(first_lines(child, 1)?.remove(0))
}

/// The first `n` lines the child prints on stdout (its stdout is then
/// drained on a thread of its own).
pub fn first_lines(child: &mut Child, n: usize) -> Result<Vec<String>, String> {
    let stdout = child.stdout.take().ok_or("no piped stdout")?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        for _ in 0..n {
            let mut line = String::new();
            let res = r.read_line(&mut line).map(|_| line);
            if tx.send(res).is_err() {
                return;
            }
        }
        let _ = io::copy(&mut r, &mut io::sink());
    });
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    let mut lines = Vec::new();
    for _ in 0..n {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(line)) if !line.is_empty() => lines.push(line.trim_end().to_string()),
            Ok(Ok(_)) => return Err(format!("exited after printing {lines:?}")),
            Ok(Err(e)) => return Err(format!("reading its stdout: {e}")),
            Err(_) => return Err(format!("not printed in time (so far: {lines:?})")),
        }
    }
    Ok(lines)
}

/// Sets `RUST_LOG` to `level` unless the test runner's environment sets it.
pub fn default_log(cmd: &mut Command, level: &str) {
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", level);
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Threads of process `pid` now.
pub fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Raises this process's open-file limit to `want` (at most the hard
/// limit), for tests that hold many sockets.
pub fn raise_nofile(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
