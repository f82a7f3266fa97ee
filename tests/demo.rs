//! The classroom demo (`demos/run.sh`) and demo-script failures.
//!
//! - [`classroom_demo_succeeds_quickly_and_leaves_nothing_running`] runs the
//!   real demo against the debug binaries and checks its verdict, its speed,
//!   and that no registry or peer outlives it.
//! - A script whose `/wait` cannot be satisfied makes the peer exit 1 and
//!   name the line and what it waited for.
//! - A script with a bad line is refused before anything runs (exit 2),
//!   naming the line on stderr.

mod kit;

use kit::process::{kill_child, spawn_child, wait_child};
use kit::Registry;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The demo must finish well within this.
const DEMO_LIMIT: Duration = Duration::from_secs(20);
/// After this the test stops waiting and kills what it started.
const HARD_LIMIT: Duration = Duration::from_secs(45);
const NAMES: [&str; 3] = ["alice", "bob", "carol"];

/// The folder holding the debug `peer` and `registry` binaries.
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_peer"))
        .parent()
        .expect("the peer binary has a folder")
        .to_path_buf()
}

/// Waits for `child` up to `limit`; on time-out kills its process group
/// (the child leads one) and returns `None`.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let status = wait_child(child, limit);
    if status.is_none() {
        // SAFETY: kill(2) on the group we created; no memory involved.
        unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
        kill_child(child);
    }
    status
}

/// Processes (pid, command line) with an argument that is one of `needles`
/// or a path under one.
fn processes_mentioning(needles: &[&str]) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw);
        let args: Vec<&str> = cmdline.split('\0').filter(|a| !a.is_empty()).collect();
        let hit = args.iter().any(|a| {
            needles
                .iter()
                .any(|n| a == n || a.strip_prefix(n).is_some_and(|r| r.starts_with('/')))
        });
        if hit {
            found.push((pid, args.join(" ")));
        }
    }
    found
}

/// Removes ANSI escape sequences (CSI and OSC 8 links) from `s`.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            Some(']') => {
                // Up to BEL or ST (ESC \).
                while let Some(c) = chars.next() {
                    if c == '\x07' {
                        break;
                    }
                    if c == '\x1b' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn classroom_demo_succeeds_quickly_and_leaves_nothing_running() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // run.sh deletes its scratch folder when it ends; keep it one level down
    // so the TempDir (and the output file) stay ours.
    let work = tmp.path().join("demo-work");
    let out_path = tmp.path().join("demo.out");
    let out = File::create(&out_path).expect("output file");
    let err = out.try_clone().expect("clone output file");
    let mut cmd = Command::new("bash");
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/demos/run.sh"))
        .arg(bin_dir())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DEMO_WORK", &work)
        // Today's fast run: no pause between steps.
        .env("DEMO_PACE", "0")
        .env_remove("REGISTRY_ADDR")
        .env_remove("LANCHAT_FAULTS")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);

    let started = Instant::now();
    let mut child = spawn_child(cmd).expect("start bash demos/run.sh");
    let status = wait_bounded(&mut child, HARD_LIMIT);
    let took = started.elapsed();
    let raw = fs::read_to_string(&out_path).unwrap_or_default();
    let text = strip_ansi(&raw);

    // Whatever happened, nothing the demo started may still run.
    let addr = text
        .lines()
        .find_map(|l| l.strip_prefix("registry on "))
        .map(|a| a.trim().to_string());
    let work_str = work.to_string_lossy().into_owned();
    let mut needles = vec![work_str.as_str()];
    if let Some(a) = &addr {
        needles.push(a.as_str());
    }
    // Processes that are just exiting get a moment to go.
    let mut left = processes_mentioning(&needles);
    let grace = Instant::now() + Duration::from_secs(2);
    while !left.is_empty() && Instant::now() < grace {
        thread::sleep(Duration::from_millis(50));
        left = processes_mentioning(&needles);
    }
    for (pid, _) in &left {
        // SAFETY: kill(2) on a process this test started (it names our
        // fresh scratch folder or our registry's address).
        unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
    }

    let Some(status) = status else {
        panic!("the demo did not end within {HARD_LIMIT:?}; output so far:\n{text}");
    };
    assert!(
        status.success(),
        "the demo failed ({status}) after {took:?}:\n{text}"
    );
    let addr = addr.unwrap_or_else(|| panic!("no `registry on ADDR` line:\n{text}"));
    assert!(
        left.is_empty(),
        "processes left behind by the demo (DEMO_WORK {work_str}, registry {addr}):\n{}",
        left.iter()
            .map(|(p, c)| format!("{p}: {c}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        took < DEMO_LIMIT,
        "the demo took {took:?} (limit {DEMO_LIMIT:?}):\n{text}"
    );
    for name in NAMES {
        let prefix = format!("{name:<6}│ ");
        assert!(
            text.lines().any(|l| l.starts_with(&prefix)),
            "no line from {name} (prefix {prefix:?}):\n{text}"
        );
    }
    assert!(
        text.contains("demo: all 3 scripts succeeded"),
        "no success line:\n{text}"
    );
    eprintln!("demo took {took:?}");
}

/// Runs `peer --script` on `script` against `registry`, bounded; returns
/// the exit code, stdout and stderr.
fn run_script(registry: &str, script: &str, json: bool) -> (Option<i32>, String, String) {
    run_script_with(registry, script, json, &[])
}

/// [`run_script`] with more peer arguments.
fn run_script_with(
    registry: &str,
    script: &str,
    json: bool,
    extra: &[&str],
) -> (Option<i32>, String, String) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("test.script");
    fs::write(&path, script).expect("write script");
    let out_path = tmp.path().join("stdout");
    let err_path = tmp.path().join("stderr");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer"));
    cmd.arg("--registry")
        .arg(registry)
        .arg("--script")
        .arg(&path)
        .arg("--color")
        .arg("never")
        .env_remove("REGISTRY_ADDR")
        .env_remove("LANCHAT_FAULTS")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::from(File::create(&out_path).expect("stdout file")))
        .stderr(Stdio::from(File::create(&err_path).expect("stderr file")));
    if json {
        cmd.arg("--json");
    }
    cmd.args(extra);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = spawn_child(cmd).expect("start peer");
    let status = wait_bounded(&mut child, Duration::from_secs(20));
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    let Some(status) = status else {
        panic!("the peer did not exit within 20 s\nstdout:\n{stdout}\nstderr:\n{stderr}");
    };
    (status.code(), stdout, stderr)
}

/// `--pace` (the demo's `DEMO_PACE`): a pause before each command after
/// the first, none before a `/wait`; at 0 the same script runs at once.
#[test]
fn pace_pauses_before_each_step() {
    const PACED: &str = "/register pacer pacer-password\n/login pacer pacer-password\n\
                         /wait logged_in\n/wait registered\n/quit\n";
    let reg = Registry::start(&[]);
    let started = Instant::now();
    let (code, stdout, _) =
        run_script_with(&reg.addr().to_string(), PACED, false, &["--pace", "0.4"]);
    let paced = started.elapsed();
    assert_eq!(code, Some(0), "{stdout}");
    // Two pauses (before /login and /quit), not four.
    assert!(paced >= Duration::from_millis(800), "took {paced:?}");
    assert!(paced < Duration::from_millis(800 + 5000), "took {paced:?}");
    let fast = PACED.replace("pacer", "quick");
    let started = Instant::now();
    let (code, stdout, _) =
        run_script_with(&reg.addr().to_string(), &fast, false, &["--pace", "0"]);
    assert_eq!(code, Some(0), "{stdout}");
    eprintln!("paced at 0.4 s: {paced:?}; at 0: {:?}", started.elapsed());
}

const UNSATISFIABLE: &str = "\
# A script that waits for someone who never comes.
/register tester tester-password
/login tester tester-password

/wait message from=nobody timeout=300ms
/quit
";
/// The line of the `/wait` above, counting comments and blank lines.
const WAIT_LINE: usize = 5;

#[test]
fn unsatisfiable_wait_fails_with_exit_1_naming_line_and_event() {
    let reg = Registry::start(&[]);
    let started = Instant::now();
    let (code, stdout, stderr) = run_script(&reg.addr().to_string(), UNSATISFIABLE, false);
    let took = started.elapsed();
    assert_eq!(
        code,
        Some(1),
        "exit code\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let line = stdout
        .lines()
        .find(|l| l.contains("script failed"))
        .unwrap_or_else(|| panic!("no `script failed` line\nstdout:\n{stdout}\nstderr:\n{stderr}"));
    assert!(
        line.contains(&format!("line {WAIT_LINE}:")),
        "the failure does not name line {WAIT_LINE}: {line:?}"
    );
    assert!(
        line.contains("message from=nobody"),
        "the failure does not say what it waited for: {line:?}"
    );
    assert!(
        line.contains("300ms"),
        "the failure does not give the time-out: {line:?}"
    );
    // It got that far only by logging in: the wait, not the login, failed.
    assert!(
        stdout.contains("logged in as tester"),
        "not logged in:\n{stdout}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn unsatisfiable_wait_reported_as_json() {
    let reg = Registry::start(&[]);
    let (code, stdout, stderr) = run_script(&reg.addr().to_string(), UNSATISFIABLE, true);
    assert_eq!(
        code,
        Some(1),
        "exit code\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    let failed = events
        .iter()
        .find(|v| v["event"] == "script_failed")
        .unwrap_or_else(|| panic!("no script_failed event:\n{stdout}"));
    assert_eq!(failed["line"], WAIT_LINE, "{failed}");
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("message from=nobody"), "{failed}");
    assert!(
        !events.iter().any(|v| v["event"] == "script_done"),
        "a failed script also reported script_done:\n{stdout}"
    );
}

#[test]
fn script_with_a_syntax_error_is_refused_with_exit_2() {
    let script = "\
# fine so far
/register tester tester-password
/frobnicate now
/login tester
";
    // Nothing listens on port 9; the script must be refused before any
    // connection matters.
    let started = Instant::now();
    let (code, stdout, stderr) = run_script("127.0.0.1:9", script, false);
    assert_eq!(
        code,
        Some(2),
        "exit code\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for line in ["line 3", "line 4"] {
        assert!(
            stderr.contains(line),
            "stderr does not name {line}:\n{stderr}"
        );
    }
    assert!(
        !stdout.contains("ready"),
        "the peer started before refusing the script:\n{stdout}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
