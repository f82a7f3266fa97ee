//! Piped commands run in order, as a script's do: `/register`, `/login`
//! and `/create` written at once used to answer "not logged in" to
//! `/create`, because the login had not come back yet.

mod kit;

use kit::*;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

#[test]
fn piped_commands_wait_for_the_login_before_them() {
    let reg = Registry::start(&[]);
    let mut p = Peer::spawn(reg.addr(), &[]);
    // All at once, before any answer can have come back.
    p.send_lines([
        format!("/register carl {PASSWORD}"),
        format!("/login carl {PASSWORD}"),
        "/create lab".to_string(),
        "/rooms".to_string(),
    ]);
    p.expect("registered", &[("username", json!("carl"))], T);
    p.expect("logged_in", &[("username", json!("carl"))], T);
    p.expect("room_joined", &[("room", json!("lab"))], T);
    p.expect("rooms", &[] as &[(&str, serde_json::Value)], T);
    let errors: Vec<_> = p
        .backlog()
        .iter()
        .filter(|v| v["event"] == "error")
        .cloned()
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    // A failed login lets what follows run too (and fail on its own).
    p.send_lines([
        "/logout".to_string(),
        "/login carl wrong-password".to_string(),
        "/create den".to_string(),
    ]);
    p.expect("error", &[("code", json!("invalid_credentials"))], T);
    p.expect("error", &[("code", json!("not_logged_in"))], T);
}
