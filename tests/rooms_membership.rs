//! Room membership follows the registry, on the real binaries and the real
//! wire (loopback): holding the room key proves nothing about a name, a
//! member the registry stops listing is dropped within 5 s, an ex-member's
//! old key opens and posts nothing once the room is re-keyed, and a member
//! cut off from everyone is told who did not get its message.
//!
//! "Mallory" is the test itself: a real account whose UDP socket is the
//! test's, crafting datagrams with the key the registry gave it.

mod kit;

use kit::*;
use lanchat::protocol::datagram::{Body, Datagram, EventKind, RoomKey};
use serde_json::{json, Value};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);
const ROOM: &str = "sec";

/// A registered user whose room datagrams the test writes by hand.
struct Mallory {
    sock: UdpSocket,
    session: Session,
    name: String,
    stream: u64,
}

impl Mallory {
    fn login(reg: SocketAddr, name: &str) -> Mallory {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let session =
            Session::login(reg, name, port, port).with_heartbeats(Duration::from_millis(300));
        Mallory {
            sock,
            session,
            name: name.to_string(),
            stream: now_us(),
        }
    }

    /// Joins the room through the registry; returns its key.
    fn join(&mut self) -> RoomKey {
        let joined = self.session.ok(json!({"op": "join_room", "room": ROOM}));
        room_key(&mut self.session, &self.name, &joined)
    }

    /// Sends `body` to `to` at `addr` as `from`, sealed under `key`.
    fn send(&self, key: &RoomKey, from: &str, (to, addr): (&str, SocketAddr), body: Body) {
        let _ = to; // DATA and PING go to the room, whoever gets them
        let dg = Datagram {
            room: ROOM.into(),
            from: from.into(),
            body,
        };
        self.sock.send_to(&seal(&dg, key), addr).expect("send");
    }

    /// A DATA of ours on our stream.
    fn data(&self, seq: u64, event: EventKind, text: &str) -> Body {
        Body::Data {
            stream: self.stream,
            seq,
            event,
            msg_id: if event == EventKind::Text { seq } else { 0 },
            frag: 0,
            frags: 1,
            bytes: text.as_bytes().to_vec(),
        }
    }

    /// Every datagram that reaches our socket within `d`.
    fn receive_for(&self, d: Duration) -> Vec<Vec<u8>> {
        let end = Instant::now() + d;
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while Instant::now() < end {
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                got.push(buf[..n].to_vec());
            }
        }
        got
    }
}

fn addr(p: &Peer) -> (&str, SocketAddr) {
    (p.name.as_str(), ([127, 0, 0, 1], p.udp_port).into())
}

/// alice creates the room, bob joins, each sees the other.
fn room_of_two(reg: &Registry) -> Vec<Peer> {
    let mut p = login_all(reg.addr(), &["alice", "bob"], &PeerOpts::default());
    form_room(&mut p, ROOM, T);
    p
}

fn counter(s: &Value, name: &str) -> u64 {
    s[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in {s}"))
}

/// A member holding the key sends a signed "join" as "admin", a name the
/// registry does not list in the room (here: not even registered). It
/// used to be shown as "admin joined #sec" and let in. Now each member asks
/// the registry, which does not list it: never shown, never added, and the
/// text it sends under that name never appears.
#[test]
fn a_join_under_a_name_the_registry_does_not_list_is_refused() {
    let reg = Registry::start(&[]);
    let mut p = room_of_two(&reg);
    let mut m = Mallory::login(reg.addr(), "mallory");
    let key = m.join();
    for x in p.iter_mut() {
        x.expect(
            "member_joined",
            &[("room", json!(ROOM)), ("user", json!("mallory"))],
            T,
        );
    }
    let base: Vec<u64> = p
        .iter_mut()
        .map(|x| counter(&x.stats(), "unknown_sender"))
        .collect();
    // As a retransmitting sender would: the join, then a text, repeated
    // over two seconds (more than the registry needs to answer).
    for _ in 0..8 {
        for x in &p {
            m.send(&key, "admin", addr(x), m.data(1, EventKind::Join, ""));
            m.send(
                &key,
                "admin",
                addr(x),
                m.data(2, EventKind::Text, "I am admin"),
            );
        }
        // Paced like a sender's retransmissions.
        let _ = m.receive_for(Duration::from_millis(250));
    }
    // A real member's text after all that: once it arrives, the forgeries
    // before it have been looked at.
    p[0].send("after the forgeries");
    p[1].wait_messages(&format!("#{ROOM}"), "alice", 1, T);
    for (i, x) in p.iter_mut().enumerate() {
        let s = x.wait_stats("admin's datagrams counted", T, |s| {
            counter(s, "unknown_sender") >= base[i] + 8
        });
        assert!(counter(&s, "unknown_sender") >= base[i] + 8, "{s}");
        x.expect_none(
            "member_joined",
            &[("room", json!(ROOM)), ("user", json!("admin"))],
            Duration::from_millis(200),
        );
        assert!(x.texts_from(&format!("#{ROOM}"), "admin").is_empty());
    }
    // Mallory under its own name is a member, and is heard.
    let ours = m.data(1, EventKind::Join, "");
    m.send(&key, "mallory", addr(&p[1]), ours);
    m.send(
        &key,
        "mallory",
        addr(&p[1]),
        m.data(2, EventKind::Text, "hi"),
    );
    p[1].wait_messages(&format!("#{ROOM}"), "mallory", 1, T);
}

/// Mallory is a member, then leaves through the registry but keeps its
/// heartbeats and pings going with the key it holds. It used to keep
/// receiving the room's messages. Now the registry re-keys the room, the
/// members take up the new epoch and drop mallory within 5 s, nothing sent
/// afterwards reaches or opens for it, and what it posts with its old key
/// is dropped.
#[test]
fn an_ex_member_can_neither_read_nor_post() {
    let reg = Registry::start(&[]);
    let mut p = room_of_two(&reg);
    let mut m = Mallory::login(reg.addr(), "mallory");
    let old = m.join();
    for x in p.iter_mut() {
        x.expect(
            "member_joined",
            &[("room", json!(ROOM)), ("user", json!("mallory"))],
            T,
        );
    }
    for x in &p {
        m.send(&old, "mallory", addr(x), m.data(1, EventKind::Join, ""));
    }
    p[0].send("while mallory is in");
    let captured = m.receive_for(Duration::from_millis(500));
    assert!(
        captured.iter().any(|b| kit::rooms::open(b, &old).is_ok_and(
            |d| matches!(d.body, Body::Data { ref bytes, .. } if bytes == b"while mallory is in")
        )),
        "mallory, still a member, reads the room"
    );

    let left_reply = m.session.ok(json!({"op": "leave_room", "room": ROOM}));
    assert_eq!(left_reply["deleted"], json!(false));
    let left_at = Instant::now();

    // Mallory keeps pinging under its old key while the members notice.
    let mut dropped = vec![None; p.len()];
    while dropped.iter().any(Option::is_none) && left_at.elapsed() < Duration::from_secs(8) {
        for x in &p {
            m.send(&old, "mallory", addr(x), Body::Ping);
        }
        for (i, x) in p.iter_mut().enumerate() {
            let gone = x
                .backlog()
                .iter()
                .any(|v| matches(v, "member_left", &[("user", "mallory")]));
            if gone && dropped[i].is_none() {
                dropped[i] = Some(left_at.elapsed());
            }
        }
        let _ = m.receive_for(Duration::from_millis(100));
    }
    for (x, d) in p.iter().zip(&dropped) {
        let d = d.unwrap_or_else(|| panic!("{} still counts mallory in", x.name));
        eprintln!("{} dropped mallory {d:?} after it left", x.name);
        assert!(d <= Duration::from_secs(5), "{}: {d:?}", x.name);
    }

    // Nothing said now opens for mallory, and its old key posts nothing.
    p[0].send("after mallory left");
    for x in &p {
        m.send(
            &old,
            "mallory",
            addr(x),
            m.data(2, EventKind::Text, "old key"),
        );
    }
    let after = m.receive_for(Duration::from_millis(700));
    assert!(
        after.iter().all(|b| kit::rooms::open(b, &old).is_err()),
        "{} datagrams reached mallory, some opening under its old key",
        after.len()
    );
    p[1].wait_messages(&format!("#{ROOM}"), "alice", 2, T);
    p[0].send("and once more");
    p[1].wait_messages(&format!("#{ROOM}"), "alice", 3, T);
    for x in p.iter_mut() {
        assert!(
            !x.texts_from(&format!("#{ROOM}"), "mallory")
                .contains(&"old key".to_string()),
            "{} showed a text under the old key",
            x.name
        );
    }
    let s = p[1].stats();
    assert!(counter(&s, "other_epoch") > 0, "{s}");
}

/// A member cut off from everyone, the registry included, keeps talking:
/// its member list empties as the others fall silent, but the registry
/// last listed them, so its message is reported as not reaching them, by
/// name. It used to be reported as "delivered 0/0".
#[test]
fn a_cut_off_member_is_told_who_did_not_get_its_message() {
    let mut reg = Registry::start(&[]);
    let mut p = room_of_two(&reg);
    // Bob stops answering (as if his cable were pulled), and the registry
    // can no longer be asked.
    p[1].signal(libc::SIGSTOP);
    // SAFETY: kill(2) on the registry child's pid.
    unsafe { libc::kill(reg.pid() as i32, libc::SIGKILL) };
    wait_until(T, Duration::from_millis(20), "the registry to die", || {
        !reg.is_running()
    });
    p[0].expect(
        "member_left",
        &[("user", json!("bob")), ("reason", json!("not responding"))],
        T,
    );
    p[0].send("anyone there?");
    let failed = p[0].expect("delivery_failed", &[("room", json!(ROOM))], T);
    assert_eq!(failed["missing"], json!(["bob"]), "{failed}");
    p[0].expect_none(
        "delivery",
        &[("room", json!(ROOM)), ("total", json!(0))],
        Duration::from_millis(300),
    );
    p[1].signal(libc::SIGCONT);
}
