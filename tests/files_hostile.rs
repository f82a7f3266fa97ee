//! A hostile sender of files (issue 14, Tests): a raw client, logged in at
//! the real registry as mallory, opens a chat with a real `peer` and
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
use lanchat::protocol::secure::{Deframer, Handshake, Next, Opener, Sealer};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The attacker's end of the chat with the victim: a Noise channel
/// (protocol.md, "Secure channel") under mallory's own registered keys,
/// carrying chat JSON lines.
struct Raw {
    s: TcpStream,
    frames: Deframer,
    seal: Sealer,
    open: Opener,
    lines: Vec<u8>,
}

impl Raw {
    /// Dials `port` as mallory (keys [`raw_identity`], which the kit's
    /// raw logins register) and completes the handshake with `user`,
    /// whose key is `key`.
    fn dial(port: u16, user: &str, key: [u8; 32]) -> Raw {
        let mut s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).expect("dial");
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        let me = kit::rooms::raw_identity();
        let (hs, m1) =
            Handshake::initiator(&me.kx_secret(), "mallory", user, key, None).expect("handshake");
        s.write_all(&m1).expect("message 1");
        let mut frames = Deframer::default();
        let m2 = next_msg(&mut s, &mut frames).expect("message 2");
        let Ok(Next::Done(sec, Some(m3))) = hs.read(&m2) else {
            panic!("handshake with {user} failed")
        };
        s.write_all(&m3).expect("message 3");
        let (seal, open) = sec.channel.split();
        Raw {
            s,
            frames,
            seal,
            open,
            lines: Vec::new(),
        }
    }

    fn send(&mut self, v: Value) {
        let msg = self.seal.seal(format!("{v}\n").as_bytes()).expect("seal");
        self.s.write_all(&msg).expect("write");
    }

    /// The next line that is not a ping.
    fn next(&mut self) -> Value {
        loop {
            while let Some(i) = self.lines.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.lines.drain(..=i).collect();
                let v: Value = serde_json::from_slice(&line).expect("JSON");
                if v["type"] != "ping" {
                    return v;
                }
            }
            let m = next_msg(&mut self.s, &mut self.frames).expect("a message from the victim");
            let plain = self.open.open(&m).expect("open");
            self.lines.extend(plain);
        }
    }
}

fn next_msg(s: &mut TcpStream, d: &mut Deframer) -> Option<Vec<u8>> {
    let mut buf = [0u8; 4096];
    for _ in 0..10_000 {
        if let Some(m) = d.next_msg() {
            return Some(m);
        }
        let n = s.read(&mut buf).ok().filter(|n| *n > 0)?;
        d.push(&buf[..n]);
    }
    None
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
    let _mallory = reg.ghost_login("mallory", 9, 9);

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

    let bob_key =
        Identity::load_or_create(&Identity::path(&bob.config_dir().join("lanchat"), "bob"))
            .expect("bob's keys")
            .0
            .public()
            .kx;
    let mut att = Raw::dial(bob.tcp_port, "bob", bob_key);
    att.send(json!({"type": "hello", "from": "mallory", "version": 1}));
    bob.expect("chat_request", &[("from", "mallory")], WAIT);
    bob.send("/accept mallory");
    assert_eq!(att.next()["type"], "accept");

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
        let done = att.next();
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
        let v = att.next();
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
