//! `make demo-tmux` (demos/tmux.sh): the three demo students in tmux panes
//! side by side, each a real interactive peer. Started without attaching,
//! on a tmux server of its own, at full speed (`DEMO_PACE=0`): every pane
//! plays its script to the end, shows the conversation, and then takes
//! commands typed into it. The server is killed at the end, or on failure.

mod kit;

use kit::tmux::tmux_available;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole demo must be done well within this.
const LIMIT: Duration = Duration::from_secs(40);

/// Kills the demo's tmux server on drop.
struct Server(String);

impl Server {
    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.0])
            .args(args)
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Pane titles and their screens.
    fn panes(&self) -> Vec<(String, String)> {
        self.tmux(&[
            "list-panes",
            "-t",
            "lanchat-demo",
            "-F",
            "#{pane_id} #{pane_title}",
        ])
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, title)| {
            let screen = self.tmux(&["capture-pane", "-p", "-J", "-t", id, "-S", "-200"]);
            (title.to_string(), screen)
        })
        .collect()
    }

    fn pane(&self, title: &str) -> String {
        self.panes()
            .into_iter()
            .find(|(t, _)| t == title)
            .map(|(_, s)| s)
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

#[test]
fn demo_tmux_shows_three_interactive_students() {
    if !tmux_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let server = Server(format!("lanchat-demo-test-{}", std::process::id()));
    let bin = Path::new(env!("CARGO_BIN_EXE_peer")).parent().unwrap();
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/demos/tmux.sh"))
        .arg(bin)
        .env("DEMO_TMUX_SOCKET", &server.0)
        .env("DEMO_TMUX_ATTACH", "0")
        .env("DEMO_PACE", "0")
        .env("DEMO_WORK", work.path())
        .env_remove("TMUX")
        .env_remove("REGISTRY_ADDR")
        .stdin(Stdio::null())
        .output()
        .expect("demos/tmux.sh runs");
    assert!(
        out.status.success(),
        "demos/tmux.sh failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let started = Instant::now();
    let done = "the terminal is yours now";
    loop {
        let panes = server.panes();
        let finished = panes.iter().filter(|(_, s)| s.contains(done)).count();
        if finished == 3 {
            break;
        }
        if started.elapsed() > LIMIT || panes.iter().any(|(_, s)| s.contains("script failed")) {
            let all: Vec<String> = panes.iter().map(|(t, s)| format!("=== {t}\n{s}")).collect();
            panic!("the demo did not finish in its panes:\n{}", all.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let titles: Vec<String> = server.panes().into_iter().map(|(t, _)| t).collect();
    assert_eq!(titles.len(), 4, "{titles:?}");
    for name in ["alice", "bob", "carol", "registry"] {
        assert!(
            titles.iter().any(|t| t == name),
            "no pane {name}: {titles:?}"
        );
    }
    let (alice, bob, carol) = (
        server.pane("alice"),
        server.pane("bob"),
        server.pane("carol"),
    );
    // Each pane shows the steps as typed, and the conversation.
    assert!(alice.contains("> /create lab"), "{alice}");
    assert!(
        alice.contains("bob (private) Could we go over question 3 later?"),
        "{alice}"
    );
    assert!(
        bob.contains("#lab <alice> Welcome to lab, everyone!"),
        "{bob}"
    );
    assert!(bob.contains("<-- carol left #lab"), "{bob}");
    assert!(
        carol.contains("alice declined your chat request"),
        "{carol}"
    );

    // A real interactive terminal: bob's pane takes a command.
    let bob_id = server
        .tmux(&[
            "list-panes",
            "-t",
            "lanchat-demo",
            "-F",
            "#{pane_id} #{pane_title}",
        ])
        .lines()
        .find_map(|l| l.strip_suffix(" bob").map(str::to_string))
        .expect("bob's pane");
    server.tmux(&["send-keys", "-t", &bob_id, "-l", "/history 2"]);
    server.tmux(&["send-keys", "-t", &bob_id, "Enter"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let bob = server.pane("bob");
        if bob.contains("last 2 line(s) of #lab:") && bob.contains("<bob> See you all on Friday!") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no /history in bob's pane:\n{bob}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
