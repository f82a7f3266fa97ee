//! A hostile sender of files (issue 14, Tests): a raw Noise client, logged in at
//! the real registry as mallory with keys of its own, opens a chat with a real `peer` and
//! offers files under names no honest peer would send (`../../.bashrc`,
//! `CON`, escape sequences), then serves them with the library's own
//! serving code. The receiver saves each inside its download folder under
//! a safe name, checked on disk.
//!
//! - `hostile_names_from_the_wire_are_saved_safely` (and then a flood of
//!   offers, of which 32 are kept)

mod kit;

use kit::*;
use lanchat::identity::Identity;
use lanchat::peer::files::{transfer, Served, Table};
use lanchat::protocol::file;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The next chat line from the victim that is not a ping.
fn next(att: &mut NoiseConn) -> Value {
    att.next(WAIT).expect("a line from the victim")
}

#[test]
fn hostile_names_from_the_wire_are_saved_safely() {
    let reg = Registry::start(LONG_SESSIONS);
    let dir = tempfile::tempdir().expect("tempdir");
    let down = dir.path().join("down");
    std::fs::create_dir(&down).expect("mkdir");
    let args = ["--download-dir", down.to_str().expect("utf-8")];
    let mut bob = Peer::spawn_named("bob", reg.addr(), &args);
    bob.login_new("bob");
    // mallory: a registered user with keys of her own, no peer behind.
    let keys = Identity::generate();
    let _mallory = keyed_login(reg.addr(), "mallory", &keys, 9);

    // Mallory's file server: the library's own serving code.
    let table: Table = Default::default();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    {
        let table = table.clone();
        std::thread::spawn(move || {
            let (tx, _rx) = crossbeam_channel::unbounded();
            for s in listener.incoming().flatten() {
                transfer::serve(s, table.clone(), tx.clone());
            }
        });
    }

    // The chat runs inside a Noise channel (version 2).
    let bob_key = keys_of(&bob, "bob").public().kx;
    let mut att = NoiseConn::dial(bob.tcp_port, &keys, "mallory", "bob", bob_key);
    att.send(json!({"type": "hello", "from": "mallory", "version": 1}));
    bob.expect("chat_request", &[("from", "mallory")], WAIT);
    bob.send("/accept mallory");
    assert_eq!(next(&mut att)["type"], "accept");

    let hostile = [
        ("../../.bashrc", "bashrc"),
        ("CON", "_CON"),
        (
            "\u{1b}]0;pwned\u{7}\u{1b}[2Jevil.txt",
            "]0;pwned[2Jevil.txt",
        ),
        ("..", "file"),
        ("sub/../../../etc/passwd", "passwd"),
        ("C:\\Windows\\nul.txt", "_nul.txt"),
    ];
    for (i, (name, saved)) in hostile.iter().enumerate() {
        let content = format!("payload {i}\n");
        let path = dir.path().join(format!("src{i}"));
        std::fs::write(&path, &content).expect("write");
        let sha = transfer::sha256_of(&mut content.as_bytes()).expect("hash");
        let key = [i as u8 + 1; 32];
        let id = format!("0000000000{i:02}");
        let served = Served {
            path,
            key,
            size: content.len() as u64,
            users: HashSet::from(["bob".to_string()]),
            cancel: Arc::new(AtomicBool::new(false)),
        };
        table.lock().expect("table").insert(id.clone(), served);
        att.send(json!({"type": "file_offer", "offer": id, "name": name,
            "size": content.len(), "sha256": sha, "key": file::hex(&key), "port": port}));
        let o = bob.expect("file_offered", &[("offer", id.as_str())], WAIT);
        assert_eq!(o["name"], *saved, "the name shown is the safe one");
        att.send(json!({"type": "ping"}));
        bob.send(&format!("/get {id}"));
        let got = bob.expect("file_received", &[("offer", id.as_str())], WAIT);
        let at = PathBuf::from(got["path"].as_str().expect("path"));
        assert_eq!(at, down.join(saved));
        assert_eq!(std::fs::read_to_string(&at).expect("read"), content);
        let done = next(&mut att);
        assert_eq!(
            (done["type"].as_str(), done["ok"].as_bool()),
            (Some("file_done"), Some(true))
        );
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&down)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut want: Vec<String> = hostile.iter().map(|(_, s)| s.to_string()).collect();
    want.sort();
    assert_eq!(on_disk, want, "nothing outside the folder, nothing hidden");
    assert!(!dir.path().join(".bashrc").exists());

    // A flood of offers: at most 32 pending from one user are kept and
    // shown; the others are refused unseen.
    bob.clear_backlog();
    for i in 0..100 {
        att.send(
            json!({"type": "file_offer", "offer": format!("f{i:03}"), "name": "spam",
            "size": 1, "sha256": file::hex(&[0; 32]), "key": file::hex(&[1; 32]), "port": port}),
        );
    }
    let mut refused = 0;
    while refused < 100 - 32 {
        let v = next(&mut att);
        assert_eq!(v["type"], "file_refuse", "{v}");
        refused += 1;
    }
    bob.send("/files");
    let l = bob.expect_where("files", |v| v["event"] == "files", WAIT);
    assert_eq!(l["files"].as_array().map(Vec::len), Some(32));
    assert_eq!(
        bob.history
            .iter()
            .filter(|v| v["event"] == "file_offered" && v["name"] == "spam")
            .count(),
        32
    );
}
