//! A real terminal for tests: a `tmux` server of our own (private socket,
//! no config) running one command in one pane; the test types into it
//! (`send-keys`) and reads the screen (`capture-pane`).
//!
//! Needs `tmux`. Without it [`tmux_available`] says the test is skipped,
//! unless the `CI` environment variable is set: then it fails.

use super::WAIT;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub fn tmux_available() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("tmux is not installed, and CI is set: the terminal test must run in CI");
        }
        eprintln!("SKIPPED: tmux is not installed (install it to run the terminal test)");
    }
    ok
}

/// A tmux server of our own (`-L`, no config) with one session running one
/// command; the server is killed on drop.
pub struct Tmux {
    socket: String,
    /// The server's socket file, removed on drop (tmux leaves it behind).
    socket_path: Option<String>,
}

impl Tmux {
    pub fn start(cmd: &str, width: u16, height: u16) -> Tmux {
        static N: AtomicUsize = AtomicUsize::new(0);
        let mut t = Tmux {
            socket_path: None,
            socket: format!(
                "lanchat-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let (w, h) = (width.to_string(), height.to_string());
        // The pane stays after the command exits, so its status can be read.
        t.run(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &w,
            "-y",
            &h,
            cmd,
            ";",
            "set-option",
            "-w",
            "-t",
            "t",
            "remain-on-exit",
            "on",
        ]);
        let path = t.run(&["display-message", "-p", "-t", "t", "#{socket_path}"]);
        t.socket_path = Some(path.trim().to_string()).filter(|p| !p.is_empty());
        // Debugging aid: LANCHAT_TMUX_LOG=FILE keeps every byte the pane got.
        if let Some(log) = std::env::var_os("LANCHAT_TMUX_LOG") {
            let log = log.to_string_lossy().into_owned();
            t.run(&["pipe-pane", "-t", "t", "-o", &format!("cat >> '{log}'")]);
        }
        t
    }

    pub fn output(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            // Panes inherit the server's environment: no conversation logs
            // in the home folder from tests (one that checks them unsets it),
            // no registry certificates remembered there.
            .env("LANCHAT_NO_LOG", "1")
            .stdin(Stdio::null());
        super::process::no_config_at_home(&mut cmd);
        cmd.output()
            .unwrap_or_else(|e| panic!("tmux {args:?}: {e}"))
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends `text` literally, all at once (no Enter).
    pub fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "t", "-l", "--", text]);
    }

    /// Types `text` into the line editor one key at a time, each once the
    /// previous one shows on the prompt line (whatever the prompt: `> `,
    /// `[#lab]> `) with the cursor after it (no Enter). Keys sent in one
    /// burst can stall in the editor: see `pasted_text_shows_up_at_once`.
    pub fn type_keys(&self, text: &str) {
        let mut typed = String::new();
        for c in text.chars() {
            typed.push(c);
            self.type_text(&c.to_string());
            let want = format!("> {typed}");
            let deadline = Instant::now() + WAIT;
            loop {
                let s = self.screen();
                let line = last_line(&s).trim_end();
                let at_end = line.ends_with(want.trim_end()).then(|| {
                    line.chars().count() - want.trim_end().chars().count() + want.chars().count()
                });
                if at_end.is_some_and(|col| self.cursor_x() == col) {
                    break;
                }
                if Instant::now() >= deadline {
                    panic!("terminal: expected {want:?} on the prompt line within {WAIT:?}; the screen:\n{s}");
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// The cursor's column (0-based).
    pub fn cursor_x(&self) -> usize {
        let out = self.run(&["display-message", "-p", "-t", "t", "#{cursor_x}"]);
        out.trim().parse().unwrap_or(usize::MAX)
    }

    /// [`type_keys`](Self::type_keys), then Enter.
    pub fn type_command(&self, text: &str) {
        self.type_keys(text);
        self.enter();
    }

    pub fn enter(&self) {
        self.key("Enter");
    }

    /// Presses one key by its tmux name (`C-c`, `C-d`, `Enter`).
    pub fn key(&self, name: &str) {
        self.run(&["send-keys", "-t", "t", name]);
    }

    /// For the hidden password prompt (a cooked terminal: no editor).
    pub fn type_line(&self, text: &str) {
        self.type_text(text);
        self.enter();
    }

    /// The visible screen as text.
    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    /// The visible screen with colour escapes (`-e`).
    pub fn screen_ansi(&self) -> String {
        self.run(&["capture-pane", "-e", "-p", "-t", "t"])
    }

    /// Everything printed so far (scrollback included), as text.
    pub fn history(&self) -> String {
        self.run(&["capture-pane", "-p", "-S", "-", "-t", "t"])
    }

    /// Everything printed so far (scrollback included), with escapes.
    pub fn history_ansi(&self) -> String {
        self.run(&["capture-pane", "-e", "-p", "-S", "-", "-t", "t"])
    }

    /// Polls the screen until `ok` holds; panics with the screen if it does
    /// not within `limit`.
    pub fn wait_screen(&self, what: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if Instant::now() >= deadline {
                panic!("terminal: expected {what} within {limit:?}; the screen:\n{s}");
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// The process id of the pane's command.
    pub fn pane_pid(&self) -> u32 {
        let out = self.run(&["display-message", "-p", "-t", "t", "#{pane_pid}"]);
        out.trim().parse().expect("pane_pid")
    }

    /// `Some(status)` once tmux has seen the pane's command exit.
    pub fn exit_status(&self) -> Option<i32> {
        let out = self.run(&[
            "display-message",
            "-p",
            "-t",
            "t",
            "#{pane_dead} #{pane_dead_status}",
        ]);
        match out.split_whitespace().collect::<Vec<_>>()[..] {
            ["1", code] => code.parse().ok(),
            _ => None,
        }
    }
}

impl Tmux {
    /// Whether tmux saw the pane ring the bell (`#{window_bell_flag}`: set
    /// on a bell in a window no client is looking at, which is every
    /// window of this detached session).
    pub fn bell_flag(&self) -> bool {
        let out = self.run(&["display-message", "-p", "-t", "t", "#{window_bell_flag}"]);
        out.trim() == "1"
    }

    /// Copies every byte the pane gets from now on to `path` (`pipe-pane`),
    /// so a test can count what the program wrote (such as BEL bytes).
    pub fn pipe_to(&self, path: &std::path::Path) {
        let cmd = format!("cat >> '{}'", path.display());
        self.run(&["pipe-pane", "-t", "t", "-o", &cmd]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.output(&["kill-server"]);
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The exit code of `pid` if it has exited but is not reaped yet (tmux
/// sometimes takes seconds to reap its pane's process on a loaded machine):
/// the last field of `/proc/PID/stat`, in `waitpid` form. A signal death
/// reads as `128 + signal`.
pub fn zombie_exit_code(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    if fields.first() != Some(&"Z") {
        return None;
    }
    let raw: i32 = fields.last()?.parse().ok()?;
    Some(if raw & 0x7f == 0 {
        (raw >> 8) & 0xff
    } else {
        128 + (raw & 0x7f)
    })
}

/// The last line with something on it.
pub fn last_line(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}
