//! Issue 15's items that are about how the peer is started rather than what
//! it draws, seen in real terminals (tmux): two `make run-peer` at once
//! both start the built binary (no "Blocking waiting for file lock" from
//! two cargo runs), and piped commands run in order, each after the answer
//! it depends on.
//!
//! Needs `tmux` and `make`. Without tmux the test is skipped with a message,
//! unless the `CI` environment variable is set: then it fails.

mod kit;

use kit::tmux::{last_line, tmux_available, Tmux};
use kit::*;
use std::path::Path;

#[test]
fn two_make_run_peer_at_once_start_the_built_binary() {
    if !tmux_available() {
        return;
    }
    let reg = Registry::start(&[]);
    // A release directory whose binaries are newer than every source, so
    // that make has nothing to build: the debug binaries of this test run.
    let dir = tempfile::tempdir().expect("temporary directory");
    for bin in [env!("CARGO_BIN_EXE_peer"), env!("CARGO_BIN_EXE_registry")] {
        let name = Path::new(bin).file_name().expect("file name");
        std::fs::copy(bin, dir.path().join(name)).expect("copy the binary");
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let cmd = format!(
        "cd '{root}' && exec env LANCHAT_NO_LOG=1 RUST_LOG=error LANCHAT_REGISTRY_FINGERPRINT={} make --no-print-directory run-peer RELEASE='{}' ARGS='--registry {} --bind 127.0.0.1'",
        reg.fingerprint(),
        dir.path().display(),
        reg.addr()
    );
    let a = Tmux::start(&cmd, 120, 20);
    let b = Tmux::start(&cmd, 120, 20);
    for t in [&a, &b] {
        let s = t.wait_screen("the peer's prompt", WAIT, |s| {
            s.contains("connected to the registry") && last_line(s).trim_end() == ">"
        });
        assert!(!s.contains("Blocking waiting for file lock"), "{s}");
        assert!(!s.contains("Compiling"), "make built something: {s}");
        t.type_command("/quit");
    }
}

#[test]
fn piped_commands_run_in_order_in_a_terminal() {
    if !tmux_available() {
        return;
    }
    let reg = Registry::start(&[]);
    // The commands come down a pipe (not a terminal), all at once: /create
    // must wait for /login's answer, which waits for /register's.
    let cmd = format!(
        "printf '/register pipe {PASSWORD}\\n/login pipe {PASSWORD}\\n/create lab\\n/who\\n' | env LANCHAT_NO_LOG=1 RUST_LOG=error LANCHAT_REGISTRY_FINGERPRINT={} '{}' --no-color --registry {} --bind 127.0.0.1; sleep 30",
        reg.fingerprint(),
        env!("CARGO_BIN_EXE_peer"),
        reg.addr()
    );
    let t = Tmux::start(&cmd, 120, 20);
    let s = t.wait_screen("every command answered", WAIT, |s| {
        s.contains("joined #lab") && s.contains("online (1): pipe")
    });
    assert!(!s.contains("not logged in"), "{s}");
    let at = |what: &str| s.find(what).unwrap_or_else(|| panic!("{what}: {s}"));
    assert!(at("registered pipe") < at("logged in as pipe"), "{s}");
    assert!(at("logged in as pipe") < at("joined #lab"), "{s}");
    assert!(at("joined #lab") < at("online (1): pipe"), "{s}");
}
