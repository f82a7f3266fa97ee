//! Room roles and announcements in a real terminal (tmux): `/create ROOM
//! --password` asks for the password without echo, `/members` marks the
//! owner with `@`, an announcement is shown with its prefix, and a kick is
//! confirmed.

mod kit;

use kit::tmux::{last_line, tmux_available, Tmux};
use kit::*;

fn peer_command(reg: &Registry) -> String {
    format!(
        "exec env RUST_LOG=error '{}' --registry {} --bind 127.0.0.1",
        env!("CARGO_BIN_EXE_peer"),
        reg.addr()
    )
}

#[test]
fn a_room_password_is_asked_without_echo_and_roles_show_on_screen() {
    if !tmux_available() {
        return;
    }
    let reg = Registry::start(&["--admin", "bob"]);
    let t = Tmux::start(&peer_command(&reg), 160, 40);
    t.wait_screen("the prompt", WAIT, |s| last_line(s).trim_end() == ">");
    t.type_command(&format!("/register alice {PASSWORD}"));
    t.wait_screen("registered", WAIT, |s| s.contains("registered alice"));
    t.type_command(&format!("/login alice {PASSWORD}"));
    t.wait_screen("logged in", WAIT, |s| s.contains("logged in as alice"));

    t.type_command("/create exam --password");
    t.wait_screen("the room password prompt", WAIT, |s| {
        s.contains("password for room exam:")
    });
    t.type_line("s3cret-pass");
    let screen = t.wait_screen("joined", WAIT, |s| s.contains("joined #exam"));
    assert!(!screen.contains("s3cret-pass"), "echoed:\n{screen}");

    let mut bob = Peer::start(reg.addr(), "bob", &PeerOpts::default());
    bob.login_new("bob");
    bob.send("/join exam --password s3cret-pass");
    bob.expect("room_joined", &[("room", "exam")], WAIT);
    t.wait_screen("bob joined", WAIT, |s| s.contains("bob joined #exam"));

    t.type_command("/members");
    t.wait_screen("the owner marked", WAIT, |s| {
        s.contains("#exam: @alice, bob")
    });
    bob.send("/announce 10 minutes left");
    t.wait_screen("the announcement", WAIT, |s| {
        s.contains("📢 announcement from bob: 10 minutes left")
    });
    t.type_command("/kick bob noisy");
    t.wait_screen("the kick confirmed", WAIT, |s| {
        s.contains("#exam: bob kicked")
    });
    bob.expect("kicked", &[("room", "exam"), ("reason", "noisy")], WAIT);
}
