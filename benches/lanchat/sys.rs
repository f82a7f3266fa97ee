//! What the machine and the processes measure: `/proc` (memory, CPU time,
//! descriptors, UDP drops), open-file limits, a description of the machine.

use super::*;

pub fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS").unwrap_or(0)
}

/// utime + stime, in clock ticks (includes threads that have exited).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat; `rest` starts at field 3.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

pub fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// CPU time of the live threads, in nanoseconds (schedstat).
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for e in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let s = fs::read_to_string(e.path().join("schedstat")).ok()?;
        total += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Datagrams the kernel dropped at the UDP socket bound to `port` (IPv4).
pub fn udp_drops(port: u16) -> Option<u64> {
    let s = fs::read_to_string("/proc/net/udp").ok()?;
    let want = format!(":{port:04X}");
    for l in s.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 13 && f[1].ends_with(&want) {
            return f.last()?.parse().ok();
        }
    }
    None
}

/// Raises this process's soft open-file limit to the hard one:
/// (before, after, hard).
pub fn raise_nofile() -> (u64, u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return (0, 0, 0);
        }
        let old = lim.rlim_cur;
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            return (old, old, lim.rlim_max);
        }
        (old, lim.rlim_cur, lim.rlim_max)
    }
}

/// Sets this process's open-file limit, soft and hard, to `want` if that
/// is higher than the hard limit (which needs root); children inherit it.
pub fn set_nofile(want: u64) -> Result<(), String> {
    let lim = libc::rlimit {
        rlim_cur: want,
        rlim_max: want,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error().to_string())
    }
}

/// Open file descriptors of a process.
pub fn fd_count(pid: u32) -> Option<usize> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

pub fn machine() -> Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let mem_kib = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let cmd = |args: &[&str]| {
        Command::new(args[0])
            .args(&args[1..])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let nproc = thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    json!({
        "nproc": nproc,
        "cpu_model": model,
        "mem_total_kib": mem_kib,
        "mem_total_gib": round2(mem_kib as f64 / 1024.0 / 1024.0),
        "kernel": cmd(&["uname", "-srm"]),
        "date": cmd(&["date", "-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "rustc": cmd(&["rustc", "--version"]),
        "loadavg_at_start": loadavg(),
    })
}

/// The 1-, 5- and 15-minute load averages: other work on the machine
/// skews every figure here.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
