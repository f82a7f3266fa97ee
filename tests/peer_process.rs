//! The peer as a process: on a terminal that goes away (the terminal window
//! closed, an SSH connection dropped) it leaves cleanly instead of
//! panicking, and it raises its soft open-file limit, which many systems
//! start at 1,024, so it can hold more than a few hundred chats.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn openpty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two descriptors; the null pointers ask for no
    // name and default settings.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: fcntl on the descriptor we just got. Without close-on-exec
    // the child would hold the master too, and closing ours would not
    // close the terminal.
    unsafe { libc::fcntl(master, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: both descriptors are fresh and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

#[test]
fn a_vanished_terminal_ends_the_peer_cleanly() {
    let (master, slave) = openpty();
    let stdio = || Stdio::from(slave.try_clone().expect("dup"));
    let slave_fd = slave.as_raw_fd();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer"));
    // Nothing listens on port 1: the peer keeps trying in the background.
    cmd.args(["--registry", "127.0.0.1:1", "--color", "never"])
        .env_remove("RUST_LOG")
        .stdin(stdio())
        .stdout(stdio())
        .stderr(stdio());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn peer");
    drop(cmd);
    drop(slave);

    // Wait for the peer's first words on the terminal, then close it: the
    // peer gets SIGHUP, and every read and write on the terminal fails from
    // then on. (The reader owns the only copy of the master side.)
    let mut terminal = File::from(master);
    let (closed_tx, closed) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = terminal.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&text).contains("ready") {
                drop(terminal);
                let _ = closed_tx.send(());
                return;
            }
        }
    });
    closed
        .recv_timeout(Duration::from_secs(20))
        .expect("the peer printed its ready line");

    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait().expect("wait"));
    });
    let status = done
        .recv_timeout(Duration::from_secs(10))
        .expect("the peer exits within 10 s of losing its terminal");
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status:?} (signal {:?}); 101 is a panic",
        status.signal()
    );
}

#[test]
fn the_open_file_limit_is_raised_to_the_hard_one() {
    let mut hard = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we pass.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) },
        0
    );
    if hard.rlim_max <= 512 {
        eprintln!("skipped: the hard open-file limit is {}", hard.rlim_max);
        return;
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer"));
    cmd.args(["--registry", "127.0.0.1:1", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let low = libc::rlimit {
                rlim_cur: 512,
                rlim_max: hard.rlim_max,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &low);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn peer");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    while out.read_line(&mut line).expect("read") > 0 && !line.contains("\"ready\"") {
        line.clear();
    }
    assert!(
        line.contains("\"ready\""),
        "the peer printed no ready event"
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .expect("Max open files in /proc/PID/limits");
    assert_eq!(soft, hard.rlim_max, "{limits}");
}
