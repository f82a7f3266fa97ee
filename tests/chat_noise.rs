//! One-to-one chats over Noise on the real binaries and the real wire
//! (issue 12 item 3): a man in the middle with its own keys is refused on
//! both sides, a raw client on the same IP claiming another user's name is
//! refused, a version-1 hello gets a clear answer, and a chat's captured
//! bytes hold none of its text.
//!
//! The man in the middle sits where the registry says bob is: bob listens
//! on 127.0.0.3 and advertises 127.0.0.1, where the test's proxy listens on
//! the same port.

mod kit;

use kit::*;
use lanchat::identity::Identity;
use lanchat::protocol::secure::{Deframer, Handshake, Next};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const IO: Duration = Duration::from_secs(10);

/// Dials `addr` as `me` with `secret`, expecting `user` with `key`, and
/// sends `line` (a chat JSON line) through the channel; gives the
/// plaintext answered before the connection closed.
fn dial_and_say(
    addr: &str,
    secret: [u8; 32],
    me: &str,
    user: &str,
    key: [u8; 32],
    line: &str,
) -> String {
    let id = Identity::from_secrets([1; 32], secret);
    let to = addr.parse().unwrap();
    let mut conn = NoiseConn::try_dial_addr(to, &id, me, user, key)
        .unwrap_or_else(|e| panic!("handshake with {user} failed: {e:?}"));
    conn.line(line.trim_end());
    conn.rest(IO)
}

/// A free loopback port (for a peer's `--port`).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn error_with(p: &mut Peer, code: &str, text: &str) {
    let v = p.expect("error", &[("code", code)], WAIT);
    let msg = v["message"].as_str().unwrap_or_default();
    assert!(msg.contains(text), "{msg:?} lacks {text:?}");
}

/// bob behind 127.0.0.1:PORT (a listener of the test's) at 127.0.0.3.
fn behind_proxy(reg: &Registry) -> (Peer, TcpListener, u16) {
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = proxy.local_addr().unwrap().port();
    let port_s = port.to_string();
    let args = [
        "--bind",
        "127.0.0.3",
        "--port",
        &port_s,
        "--advertise",
        "127.0.0.1",
    ];
    let mut bob = Peer::spawn_named("bob", reg.addr(), &args);
    bob.login_new("bob");
    (bob, proxy, port)
}

#[test]
fn a_man_in_the_middle_with_its_own_keys_is_refused_on_both_sides() {
    let reg = Registry::start(&[]);
    let (mut bob, proxy, port) = behind_proxy(&reg);
    let mut alice = Peer::spawn_named("alice", reg.addr(), &[]);
    alice.login_new("alice");
    let bob_key = keys_of(&bob, "bob").public().kx;
    let mallory = Identity::generate();
    let m_secret = mallory.kx_secret();
    let mitm = thread::spawn(move || {
        // Alice's side: answer as bob with mallory's keys.
        let (mut from_alice, _) = proxy.accept().unwrap();
        from_alice.set_read_timeout(Some(IO)).unwrap();
        let hs = Handshake::responder(&m_secret, "bob", None).unwrap();
        let mut d = Deframer::default();
        let m1 =
            read_frame(&mut from_alice, &mut d, Instant::now() + IO).expect("alice's message 1");
        let Ok(Next::Continue(_, m2)) = hs.read(&m1) else {
            panic!("message 1")
        };
        from_alice.write_all(&m2).unwrap();
        // Alice must now close without her message 3.
        let after = read_frame(&mut from_alice, &mut d, Instant::now() + IO);
        // Bob's side: dial the real bob as alice, with mallory's keys.
        let hello = "{\"type\":\"hello\",\"from\":\"alice\",\"version\":1,\"chat\":\"c1\"}\n";
        let to_bob = format!("127.0.0.3:{port}");
        let answer = dial_and_say(&to_bob, m_secret, "alice", "bob", bob_key, hello);
        (after, answer)
    });
    alice.send("/chat bob");
    error_with(
        &mut alice,
        "key_mismatch",
        "bob's key does not match the one the registry vouches for: someone may be in the middle",
    );
    error_with(
        &mut bob,
        "key_mismatch",
        "alice's key does not match the one the registry vouches for: someone may be in the middle",
    );
    let (after, answer) = mitm.join().unwrap();
    assert_eq!(after, None, "alice sent her message 3 to a wrong key");
    assert!(answer.contains("identity check failed"), "{answer:?}");
    bob.expect_none(
        "chat_request",
        &[("from", "alice")],
        Duration::from_millis(300),
    );
}

#[test]
fn a_user_on_the_same_ip_claiming_another_name_is_refused() {
    let reg = Registry::start(&[]);
    let port = free_port().to_string();
    let mut alice = Peer::spawn_named("alice", reg.addr(), &["--port", &port]);
    alice.login_new("alice");
    let mut bob = Peer::spawn_named("bob", reg.addr(), &[]);
    bob.login_new("bob");
    let alice_key = keys_of(&alice, "alice").public().kx;
    // Carol, on the same 127.0.0.1, says she is bob: her keys are not his.
    let carol = Identity::generate();
    let hello = "{\"type\":\"hello\",\"from\":\"bob\",\"version\":1}\n";
    let addr = format!("127.0.0.1:{port}");
    let answer = dial_and_say(&addr, carol.kx_secret(), "bob", "alice", alice_key, hello);
    assert!(answer.contains("identity check failed"), "{answer:?}");
    error_with(
        &mut alice,
        "key_mismatch",
        "bob's key does not match the one the registry vouches for",
    );
    alice.expect_none(
        "chat_request",
        &[("from", "bob")],
        Duration::from_millis(300),
    );
    // The real bob, on the same IP, still gets through.
    open_chat(&mut bob, &mut alice);
}

#[test]
fn a_version_1_hello_is_answered_in_plaintext_and_closed() {
    let reg = Registry::start(&[]);
    let port = free_port().to_string();
    let mut alice = Peer::spawn_named("alice", reg.addr(), &["--port", &port]);
    alice.login_new("alice");
    let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    s.set_read_timeout(Some(IO)).unwrap();
    s.write_all(b"{\"type\":\"hello\",\"from\":\"bob\",\"version\":1}\n")
        .unwrap();
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).unwrap();
    assert_eq!(
        line,
        "{\"type\":\"reject\",\"reason\":\"lanchat protocol version 2 is needed: this peer encrypts chats; upgrade lanchat\"}\n"
    );
    let mut rest = Vec::new();
    let _ = (&s).read_to_end(&mut rest);
    assert!(rest.is_empty());
}

/// Relays bytes between `from` and `to`, recording them.
fn relay(mut from: TcpStream, mut to: TcpStream, seen: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        seen.lock().unwrap().extend_from_slice(&buf[..n]);
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

#[test]
fn a_captured_chat_holds_no_message_text() {
    let reg = Registry::start(&[]);
    let (mut bob, proxy, port) = behind_proxy(&reg);
    let mut alice = Peer::spawn_named("alice", reg.addr(), &[]);
    alice.login_new("alice");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    thread::spawn(move || {
        let (a, _) = proxy.accept().unwrap();
        let b = TcpStream::connect(format!("127.0.0.3:{port}")).unwrap();
        let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
        let s3 = s2.clone();
        thread::spawn(move || relay(a2, b2, s3));
        relay(b, a, s2);
    });
    open_chat(&mut alice, &mut bob);
    let (to_bob, to_alice) = ("PAPAYA-7731 is the word", "MANGO-4412 it is");
    alice.send(to_bob);
    bob.wait_messages("alice", "alice", 1, WAIT);
    bob.send(to_alice);
    alice.wait_messages("bob", "bob", 1, WAIT);
    let bytes = seen.lock().unwrap().clone();
    assert!(bytes.len() > 200, "only {} bytes relayed", bytes.len());
    let has = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    for needle in ["PAPAYA", "MANGO", "alice", "hello", "\"type\""] {
        assert!(!has(needle), "{needle:?} is readable on the wire");
    }
}
