//! Tests of the link on loopback sockets.

use super::*;
use std::net::TcpListener;

fn connect(link: &mut Link<u32>, rx: &Receiver<Event>, now: Instant) -> SocketAddr {
    link.poll_connect(now);
    // (Skipping the reader's report that the previous one closed.)
    let (stream, report) = loop {
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Event::RegistryConnected(stream, report)) => break (stream, report),
            Ok(Event::RegistryConnectFailed(e, _)) => panic!("{e}"),
            Ok(Event::RegistryClosed { .. }) => {}
            _ => panic!("no connection"),
        }
    };
    link.dialed(&report);
    link.connected(stream).unwrap();
    link.remote().unwrap()
}

/// With two registries, a lost connection is followed at once by one
/// to the other; another loss within a second waits out the backoff,
/// then goes round to the first again.
#[test]
fn a_lost_registry_is_followed_at_once_by_the_next() {
    let (la, lb) = (
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    let (a, b) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
    let (tx, rx) = crossbeam_channel::bounded(16);
    let mut link: Link<u32> = Link::new(format!("{a}, {b}"), tx);
    assert!(link.has_alternatives());
    assert_eq!(connect(&mut link, &rx, Instant::now()), a);

    let now = Instant::now();
    link.down(now);
    assert_eq!(link.deadline(), Some(now));
    assert_eq!(connect(&mut link, &rx, now), b);

    let soon = now + FAILOVER_EVERY / 2;
    link.down(soon);
    let retry = link.deadline().unwrap();
    assert!(retry > soon);
    assert_eq!(connect(&mut link, &rx, retry), a);
}

/// A registry that stops reading does not stall the caller: requests
/// queue for the writer thread, then fail at once when the queue is
/// full.
#[test]
fn requests_never_block_on_a_registry_that_stops_reading() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (tx, rx) = crossbeam_channel::bounded(16);
    let mut link: Link<u32> = Link::new(listener.local_addr().unwrap().to_string(), tx);
    link.poll_connect(Instant::now());
    let (_server, _) = listener.accept().unwrap();
    let Ok(Event::RegistryConnected(stream, _)) = rx.recv_timeout(Duration::from_secs(5)) else {
        panic!("no connection");
    };
    link.connected(stream).unwrap();
    let req = Request::Search {
        token: "t".into(),
        username: "x".repeat(60_000),
    };
    let started = Instant::now();
    let failed = (0..10_000u32).find_map(|i| link.request(&req, i).err());
    let (_, e) = failed.expect("the write queue never filled");
    assert_eq!(e.code, ErrorCode::RegistryUnreachable);
    assert!(e.message.contains("too many requests waiting"), "{e:?}");
    // Each write could otherwise wait out the 2 s write time-out.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
