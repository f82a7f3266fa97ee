//! `/who` in the peer: the count of online users and a page of 50, `/who +`
//! for the next page, `/who PREFIX` for names starting with PREFIX; the
//! `who` event carries `total` and `next` (protocol.md §5).

mod kit;

use kit::*;
use serde_json::{json, Value};

fn names_of(v: &Value) -> Vec<String> {
    names(&v["users"])
}

#[test]
fn who_pages_through_the_online_users() {
    let reg = Registry::start(LONG_SESSIONS);
    // 54 others online (raw clients, kept open), and alice in the peer.
    let others: Vec<String> = (0..54).map(|i| format!("user{i:02}")).collect();
    let mut c = reg.client();
    for n in &others {
        c.register(n);
    }
    let mut conns = Vec::new();
    for (i, n) in others.iter().enumerate() {
        let mut s = reg.client();
        s.login_token(n, 20000 + 2 * i as u16);
        conns.push(s);
    }
    let mut alice = Peer::spawn_named("alice", reg.addr(), &[]);
    alice.login_new("alice");
    let mut all = vec!["alice".to_string()];
    all.extend(others.iter().cloned());

    let first = alice.command_ok("/who", "who", ANY, WAIT);
    assert_eq!(names_of(&first), all[..50], "{first}");
    assert_eq!(
        (&first["total"], &first["next"]),
        (&json!(55), &json!("user48"))
    );
    let second = alice.command_ok("/who +", "who", ANY, WAIT);
    assert_eq!(names_of(&second), all[50..], "{second}");
    assert_eq!(
        (&second["total"], &second["next"]),
        (&json!(55), &Value::Null)
    );
    // Past the last page: said so, and /who starts again.
    alice.send("/who +");
    alice.expect("error", ANY, WAIT);
    let some = alice.command_ok("/who user5", "who", ANY, WAIT);
    assert_eq!(names_of(&some), others[50..], "{some}");
    assert_eq!((&some["total"], &some["next"]), (&json!(4), &Value::Null));
}
