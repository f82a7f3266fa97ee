//! One IRC room run: the sender paces `PRIVMSG #bench :seq-N-SENDNS` lines,
//! then bursts; a few reader threads poll the members' sockets and take
//! each read's kernel receive timestamp (SO_TIMESTAMPNS on `recvmsg`).

use super::*;
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

/// Member sockets per reader thread (at most [`MAX_READERS`] threads).
const PER_READER: usize = 25;
const MAX_READERS: usize = 4;

#[derive(Default)]
pub struct IrcRun {
    pub fig: Fanout,
    /// Reads that carried no kernel timestamp (the read time was used).
    pub untimestamped_reads: u64,
    pub reads: u64,
    pub server_cores: f64,
    pub errors: Vec<String>,
}

struct Member {
    conn: IrcConn,
    seen: Vec<bool>,
    unique: usize,
    next: usize,
}

#[derive(Default)]
struct ReaderOut {
    max_rx: Vec<u64>,
    got: Vec<u32>,
    dups: u64,
    reordered: u64,
    untimestamped: u64,
    reads: u64,
    errors: Vec<String>,
}

/// `recvmsg` with the kernel's receive timestamp of the data, if any.
fn recv_ts(fd: i32, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; 16];
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    // SAFETY: msg points at live buffers of the lengths given.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ts = None;
    // SAFETY: the CMSG macros walk the control buffer the kernel filled.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let t: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                ts = Some(t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, ts))
}

fn set_timestamping(s: &TcpStream) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and an int option.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Handles the complete lines in `m.buf`, all read at `ts`.
fn take_lines(m: &mut Member, ts: u64, out: &mut ReaderOut, pairs: &AtomicUsize) {
    let prefix = format!(" PRIVMSG {CHANNEL} :seq-");
    while let Some(end) = m.conn.buf.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = m.conn.buf.drain(..=end).collect();
        let line = String::from_utf8_lossy(&line);
        if let Some(rest) = line.strip_prefix("PING ") {
            let _ = m.conn.send(&format!("PONG {}", rest.trim_end()));
            continue;
        }
        let Some(at) = line.find(&prefix) else {
            continue;
        };
        let seq = line[at + prefix.len()..]
            .split('-')
            .next()
            .and_then(|s| s.parse::<usize>().ok());
        let Some(seq) = seq.filter(|&s| s < m.seen.len()) else {
            out.errors
                .push(format!("unexpected line: {}", line.trim_end()));
            continue;
        };
        if m.seen[seq] {
            out.dups += 1;
            continue;
        }
        if seq < m.next {
            out.reordered += 1;
        }
        m.next = m.next.max(seq + 1);
        m.seen[seq] = true;
        m.unique += 1;
        out.got[seq] += 1;
        out.max_rx[seq] = out.max_rx[seq].max(ts);
        pairs.fetch_add(1, Ordering::Relaxed);
    }
}

/// Polls `members` until each has every message, `stop`, or `deadline`.
fn reader(
    mut members: Vec<Member>,
    total: usize,
    pairs: &AtomicUsize,
    stop: &AtomicBool,
    deadline: Instant,
) -> ReaderOut {
    let mut out = ReaderOut {
        max_rx: vec![0; total],
        got: vec![0; total],
        ..ReaderOut::default()
    };
    let mut fds: Vec<libc::pollfd> = members
        .iter()
        .map(|m| libc::pollfd {
            fd: m.conn.s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut chunk = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed)
        && Instant::now() < deadline
        && members.iter().any(|m| m.unique < total)
    {
        // SAFETY: fds is a live array of pollfd of the length given.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 50) };
        if r <= 0 {
            continue;
        }
        for (m, p) in members.iter_mut().zip(fds.iter_mut()) {
            if p.revents == 0 || p.fd < 0 {
                continue;
            }
            p.revents = 0;
            loop {
                match recv_ts(p.fd, &mut chunk) {
                    Ok((0, _)) => {
                        out.errors
                            .push("the server closed a member's connection".into());
                        p.fd = -1;
                        break;
                    }
                    Ok((n, ts)) => {
                        out.reads += 1;
                        let ts = ts.unwrap_or_else(|| {
                            out.untimestamped += 1;
                            realtime_ns()
                        });
                        m.conn.buf.extend_from_slice(&chunk[..n]);
                        take_lines(m, ts, &mut out, pairs);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        out.errors.push(format!("reading a member: {e}"));
                        p.fd = -1;
                        break;
                    }
                }
            }
        }
    }
    out
}

/// One run: `n` channel members (the sender is one of them), `paced`
/// messages at `rate` a second, then `burst` as fast as the sender can
/// write them, everything done within `limit`.
pub fn irc_run(
    server: &Ngircd,
    n: usize,
    rate: f64,
    paced: usize,
    burst: usize,
    limit: Duration,
) -> Result<IrcRun, String> {
    let deadline = Instant::now() + limit;
    let (mut sender, conns) = irc_setup(server, n, deadline)?;
    let total = paced + burst;
    let receivers = conns.len();
    let mut members = Vec::with_capacity(receivers);
    for c in conns {
        set_timestamping(&c.s).map_err(|e| format!("SO_TIMESTAMPNS: {e}"))?;
        c.s.set_nonblocking(true).map_err(|e| e.to_string())?;
        members.push(Member {
            conn: c,
            seen: vec![false; total],
            unique: 0,
            next: 0,
        });
    }
    let pairs = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads = receivers.div_ceil(PER_READER).clamp(1, MAX_READERS);
    let per = receivers.div_ceil(threads).max(1);
    let mut handles = Vec::new();
    while !members.is_empty() {
        let group: Vec<Member> = members.drain(..per.min(members.len())).collect();
        let (pairs, stop) = (pairs.clone(), stop.clone());
        handles.push(thread::spawn(move || {
            reader(group, total, &pairs, &stop, deadline)
        }));
    }
    let ticks0 = cpu_ticks(server.pid()).unwrap_or(0);
    let t_cpu = Instant::now();
    let mut sent = vec![0u64; total];
    let mut send = |sender: &mut IrcConn, i: usize| -> Result<(), String> {
        let ts = realtime_ns();
        sent[i] = ts;
        sender.send(&format!("PRIVMSG {CHANNEL} :seq-{i}-{ts}"))
    };
    let t0 = Instant::now();
    let mut result = Ok(());
    for i in 0..paced {
        let due = t0 + Duration::from_secs_f64(i as f64 / rate);
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        if let Err(e) = send(&mut sender, i) {
            result = Err(e);
            break;
        }
    }
    // The burst starts once the paced messages are in (or given up on).
    let paced_pairs = paced * receivers;
    let settle = (Instant::now() + Duration::from_secs(5)).min(deadline);
    while result.is_ok() && pairs.load(Ordering::Relaxed) < paced_pairs && Instant::now() < settle {
        thread::sleep(Duration::from_millis(5));
    }
    if result.is_ok() {
        for i in paced..total {
            if let Err(e) = send(&mut sender, i) {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_err() {
        stop.store(true, Ordering::Relaxed);
    }
    let outs: Vec<ReaderOut> = handles
        .into_iter()
        .map(|h| h.join().unwrap_or_default())
        .collect();
    let server_cores = cpu_ticks(server.pid()).unwrap_or(0).saturating_sub(ticks0) as f64
        / clk_tck() as f64
        / t_cpu.elapsed().as_secs_f64();
    result?;
    let mut max_rx = vec![0u64; total];
    let mut got = vec![0usize; total];
    let mut run = IrcRun {
        server_cores,
        ..IrcRun::default()
    };
    let (mut dups, mut reordered) = (0, 0);
    for o in outs {
        for i in 0..total {
            max_rx[i] = max_rx[i].max(o.max_rx.get(i).copied().unwrap_or(0));
            got[i] += o.got.get(i).copied().unwrap_or(0) as usize;
        }
        dups += o.dups;
        reordered += o.reordered;
        run.untimestamped_reads += o.untimestamped;
        run.reads += o.reads;
        run.errors.extend(o.errors);
    }
    let complete = |i: usize| got[i] == receivers;
    run.fig = Fanout::timed(n, rate, (paced, burst), &sent, &max_rx, &complete);
    run.fig.lost = total * receivers - got.iter().sum::<usize>();
    run.fig.dups = dups;
    run.fig.reordered = reordered;
    Ok(run)
}
