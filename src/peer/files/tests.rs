//! The serving side of the transfer connection on a real loopback socket:
//! who gets `no`, and that what is served opens only under the offer's key.

use super::{transfer, Served, Table};
use crate::protocol::file::{self, Fetch, FetchReply, CHUNK, TAG};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const OFFER: &str = "0a0b0c0d0e0f";

/// Serves one connection; returns the reply line and what follows it.
fn ask(table: &Table, line: &str) -> (FetchReply, Vec<u8>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, _rx) = crossbeam_channel::unbounded();
    let table = table.clone();
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        transfer::serve(s, table, tx);
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(line.as_bytes()).unwrap();
    let mut r = BufReader::new(c);
    let mut reply = String::new();
    r.read_line(&mut reply).unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    server.join().unwrap();
    (serde_json::from_str(&reply).unwrap(), rest)
}

fn setup(size: usize) -> (Table, [u8; 32], Vec<u8>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let path = dir.path().join("f");
    std::fs::write(&path, &data).unwrap();
    let key = [9u8; 32];
    let table: Table = Default::default();
    let served = Served {
        path,
        key,
        size: size as u64,
        users: HashSet::from(["bob".to_string()]),
        cancel: Arc::new(AtomicBool::new(false)),
    };
    table.lock().unwrap().insert(OFFER.into(), served);
    (table, key, data, dir)
}

fn fetch(key: &[u8; 32], offer: &str, user: &str, offset: u64) -> String {
    let f = Fetch {
        offer: offer.into(),
        user: user.into(),
        offset,
        proof: file::proof(key, offer, user, offset),
    };
    format!("{}\n", serde_json::to_string(&f).unwrap())
}

fn no() -> FetchReply {
    FetchReply::No {
        reason: "no such offer".into(),
    }
}

#[test]
fn a_stranger_without_the_key_gets_nothing() {
    let (table, key, _, _dir) = setup(1000);
    // A wrong key: the same answer as an offer that does not exist.
    let (r, rest) = ask(&table, &fetch(&[1u8; 32], OFFER, "bob", 0));
    assert_eq!((r, rest.len()), (no(), 0));
    let (r, _) = ask(&table, &fetch(&key, "ffffffffffff", "bob", 0));
    assert_eq!(r, no());
    // The right key, but not the user it was offered to.
    let (r, rest) = ask(&table, &fetch(&key, OFFER, "eve", 0));
    assert_eq!((r, rest.len()), (no(), 0));
    // Not a fetch at all.
    let (r, _) = ask(&table, "GET / HTTP/1.0\n");
    assert!(matches!(r, FetchReply::No { .. }));
}

#[test]
fn a_cancelled_offer_is_no_longer_served() {
    let (table, key, _, _dir) = setup(1000);
    table.lock().unwrap().remove(OFFER);
    let (r, _) = ask(&table, &fetch(&key, OFFER, "bob", 0));
    assert_eq!(r, no());
}

#[test]
fn served_chunks_open_under_the_key_from_the_offset() {
    let size = 2 * CHUNK as usize + 10;
    let (table, key, data, _dir) = setup(size);
    let (r, rest) = ask(&table, &fetch(&key, OFFER, "bob", CHUNK));
    assert_eq!(
        r,
        FetchReply::Ok {
            offset: CHUNK,
            size: size as u64
        }
    );
    let mut got = Vec::new();
    let mut at = 0;
    let mut index = 1;
    while at < rest.len() {
        let n = u32::from_be_bytes(rest[at..at + 4].try_into().unwrap()) as usize;
        let mut buf = rest[at + 4..at + 4 + n].to_vec();
        assert_eq!(n, file::chunk_len(size as u64, index) + TAG);
        // Nothing readable crosses: the plaintext is not in the frame.
        let start = index as usize * CHUNK as usize;
        let plain = &data[start..(start + 8).min(data.len())];
        assert!(!buf.windows(plain.len()).any(|w| w == plain));
        assert!(file::open(&key, OFFER, index, &mut buf));
        got.extend(buf);
        at += 4 + n;
        index += 1;
    }
    assert_eq!(got, data[CHUNK as usize..]);
    // An offset that is not a chunk's start is refused.
    let (r, _) = ask(&table, &fetch(&key, OFFER, "bob", 5));
    assert!(matches!(r, FetchReply::No { .. }));
}
