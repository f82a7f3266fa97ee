//! File transfers between real peers on loopback (issue 14 item 3):
//! `/send`, `/get`, `/refuse`, `/cancel` on the real binaries, the file
//! checked on disk against its SHA-256, the size limit on both sides,
//! names that are not safe as sent, never overwriting.
//!
//! - `file_crosses_with_its_hash_checked`
//! - `a_second_copy_is_never_written_over_the_first`
//! - `a_file_whose_hash_does_not_match_is_not_kept`
//! - `refused_offer_is_reported_to_the_sender`
//! - `offer_above_the_receivers_limit_is_refused_with_the_limit`
//! - `sender_will_not_offer_above_its_own_limit`
//! - `cancel_by_the_receiver_mid_transfer_removes_the_part`
//! - `cancel_by_the_sender_mid_transfer_stops_the_receiver`
//! - `unsafe_names_are_saved_safely` (names with escape sequences, `CON`)
//! - `room_offer_is_fetched_by_two_members`

mod kit;

use kit::*;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// Alice and bob logged in, each with a download folder of its own.
fn setup(alice_args: &[&str], bob_args: &[&str]) -> (Registry, Peer, Peer, tempfile::TempDir) {
    let reg = Registry::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    for who in ["alice", "bob", "src"] {
        std::fs::create_dir(dir.path().join(who)).expect("mkdir");
    }
    let opts = |who: &str, more: &[&str]| {
        let mut args = vec![
            "--download-dir".to_string(),
            dir.path().join(who).display().to_string(),
        ];
        args.extend(more.iter().map(|s| s.to_string()));
        PeerOpts {
            args,
            ..PeerOpts::default()
        }
    };
    let specs = [
        ("alice", opts("alice", alice_args)),
        ("bob", opts("bob", bob_args)),
    ];
    let mut p = login_peers(reg.addr(), &specs);
    let bob = p.pop().expect("bob");
    let alice = p.pop().expect("alice");
    (reg, alice, bob, dir)
}

/// A file of `size` pseudo-random bytes at `path`.
fn make_file(path: &Path, size: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut x: u64 = 0x9e3779b97f4a7c15 ^ size;
    let mut left = size;
    let mut block = vec![0u8; 1 << 16];
    while left > 0 {
        for b in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
        }
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n]).expect("write");
        left -= n as u64;
    }
    f.flush().expect("flush");
}

fn sha256(path: &Path) -> String {
    let mut f = std::fs::File::open(path).expect("open");
    lanchat::peer::files::transfer::sha256_of(&mut f).expect("hash")
}

/// Alice offers `path` to bob (asking for the chat, which bob accepts);
/// bob's `file_offered`.
fn offer(alice: &mut Peer, bob: &mut Peer, path: &Path) -> Value {
    alice.send(&format!("/send bob {}", path.display()));
    bob.expect("chat_request", &[("from", "alice")], WAIT);
    bob.send("/accept alice");
    bob.expect("file_offered", &[("from", "alice")], LONG)
}

/// Files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn id(v: &Value) -> String {
    v["offer"].as_str().expect("offer id").to_string()
}

#[test]
fn file_crosses_with_its_hash_checked() {
    let (_reg, mut alice, mut bob, dir) = setup(&[], &[]);
    let src = dir.path().join("src/worksheet.pdf");
    make_file(&src, 3 * 1024 * 1024 + 17);
    let want = sha256(&src);
    let o = offer(&mut alice, &mut bob, &src);
    assert_eq!(o["name"], "worksheet.pdf");
    assert_eq!(o["size"], 3 * 1024 * 1024 + 17);
    assert_eq!(o["sha256"], want.as_str());
    bob.send(&format!("/get {}", id(&o)));
    let got = bob.expect("file_received", &[("from", "alice")], LONG);
    let path = PathBuf::from(got["path"].as_str().expect("path"));
    assert_eq!(path, dir.path().join("bob/worksheet.pdf"));
    assert_eq!(sha256(&path), want);
    assert_eq!(got["sha256"], want.as_str());
    alice.expect(
        "file_sent",
        &[("to", "bob"), ("name", "worksheet.pdf")],
        WAIT,
    );
    assert_eq!(
        listing(&dir.path().join("bob")),
        ["worksheet.pdf"],
        "no .part left"
    );
}

#[test]
fn a_second_copy_is_never_written_over_the_first() {
    let (_reg, mut alice, mut bob, dir) = setup(&[], &[]);
    std::fs::write(dir.path().join("bob/notes.txt"), "bob's own notes").expect("write");
    let src = dir.path().join("src/notes.txt");
    std::fs::write(&src, "the teacher's notes").expect("write");
    let o = offer(&mut alice, &mut bob, &src);
    bob.send(&format!("/get {}", id(&o)));
    let got = bob.expect("file_received", &[("from", "alice")], LONG);
    assert_eq!(
        got["path"],
        dir.path().join("bob/notes (1).txt").display().to_string()
    );
    alice.send(&format!("/send bob {}", src.display()));
    let o = bob.expect("file_offered", &[("from", "alice")], LONG);
    bob.send("/get notes.txt");
    let got = bob.expect("file_received", &[("offer", id(&o).as_str())], LONG);
    assert_eq!(
        got["path"],
        dir.path().join("bob/notes (2).txt").display().to_string()
    );
    let read = |n: &str| std::fs::read_to_string(dir.path().join("bob").join(n)).expect("read");
    assert_eq!(read("notes.txt"), "bob's own notes");
    assert_eq!(read("notes (1).txt"), "the teacher's notes");
    assert_eq!(read("notes (2).txt"), "the teacher's notes");
}

#[test]
fn a_file_whose_hash_does_not_match_is_not_kept() {
    let (_reg, mut alice, mut bob, dir) = setup(&[], &[]);
    let src = dir.path().join("src/answers.txt");
    std::fs::write(&src, "the right answers").expect("write");
    let o = offer(&mut alice, &mut bob, &src);
    // Changed after it was offered (and hashed): same size, other bytes.
    std::fs::write(&src, "the wrong answers").expect("write");
    bob.send(&format!("/get {}", id(&o)));
    let f = bob.expect("file_failed", &[("offer", id(&o).as_str())], LONG);
    assert!(
        f["reason"]
            .as_str()
            .unwrap_or("")
            .contains("SHA-256 mismatch"),
        "{f}"
    );
    let f = alice.expect("file_failed", &[("offer", id(&o).as_str())], WAIT);
    assert!(
        f["reason"]
            .as_str()
            .unwrap_or("")
            .contains("SHA-256 mismatch"),
        "{f}"
    );
    bob.expect_none(
        "file_received",
        &[("offer", id(&o).as_str())],
        Duration::from_millis(300),
    );
    assert!(
        listing(&dir.path().join("bob")).is_empty(),
        "nothing kept, no .part"
    );
}

#[test]
fn refused_offer_is_reported_to_the_sender() {
    let (_reg, mut alice, mut bob, dir) = setup(&[], &[]);
    let src = dir.path().join("src/a.txt");
    std::fs::write(&src, "x").expect("write");
    let o = offer(&mut alice, &mut bob, &src);
    bob.send("/refuse");
    bob.expect("file_refused", &[("by", "bob")], WAIT);
    alice.expect(
        "file_refused",
        &[("by", "bob"), ("offer", id(&o).as_str())],
        WAIT,
    );
    // Gone on both sides: a fetch of it now is refused by the sender.
    alice.send("/files");
    let l = alice.expect_where("files", |v| v["event"] == "files", WAIT);
    assert_eq!(l["files"], serde_json::json!([]));
    assert!(listing(&dir.path().join("bob")).is_empty());
}

#[test]
fn offer_above_the_receivers_limit_is_refused_with_the_limit() {
    let (_reg, mut alice, mut bob, dir) = setup(&[], &["--max-file-size", "1000"]);
    let src = dir.path().join("src/big.bin");
    make_file(&src, 5000);
    alice.send(&format!("/send bob {}", src.display()));
    bob.expect("chat_request", &[("from", "alice")], WAIT);
    bob.send("/accept alice");
    let r = alice.expect("file_refused", &[("by", "bob")], LONG);
    let reason = r["reason"].as_str().expect("reason");
    assert!(
        reason.contains("5000") && reason.contains("1000"),
        "{reason}"
    );
    bob.expect("file_refused", &[("by", "bob")], WAIT);
    bob.expect_none(
        "file_offered",
        &[("from", "alice")],
        Duration::from_millis(300),
    );
}

#[test]
fn sender_will_not_offer_above_its_own_limit() {
    let (_reg, mut alice, _bob, dir) = setup(&["--max-file-size", "100"], &[]);
    let src = dir.path().join("src/big.bin");
    make_file(&src, 101);
    alice.send(&format!("/send bob {}", src.display()));
    let e = alice.expect("error", &[("code", "file_too_large")], WAIT);
    assert!(
        e["message"].as_str().unwrap_or_default().contains("100"),
        "{e}"
    );
}

/// A large file, fetched until the first progress event; the offer id.
fn start_big(alice: &mut Peer, bob: &mut Peer, dir: &Path) -> String {
    let src = dir.join("src/big.bin");
    make_file(&src, 600 * 1024 * 1024);
    let o = offer(alice, bob, &src);
    bob.send(&format!("/get {}", id(&o)));
    bob.expect("file_progress", &[("offer", id(&o).as_str())], LONG);
    id(&o)
}

#[test]
fn cancel_by_the_receiver_mid_transfer_removes_the_part() {
    let (_reg, mut alice, mut bob, dir) = setup(&[], &[]);
    let offer = start_big(&mut alice, &mut bob, dir.path());
    bob.send(&format!("/cancel {offer}"));
    bob.expect("file_cancelled", &[("by", "bob")], WAIT);
    alice.expect(
        "file_cancelled",
        &[("by", "bob"), ("offer", offer.as_str())],
        WAIT,
    );
    bob.expect_none(
        "file_received",
        &[("offer", offer.as_str())],
        Duration::from_millis(500),
    );
    assert!(
        listing(&dir.path().join("bob")).is_empty(),
        "the .part is removed"
    );
}

#[test]
fn cancel_by_the_sender_mid_transfer_stops_the_receiver() {
    let (_reg, mut alice, mut bob, dir) = setup(&[], &[]);
    let offer = start_big(&mut alice, &mut bob, dir.path());
    alice.send(&format!("/cancel {offer}"));
    alice.expect("file_cancelled", &[("by", "alice")], WAIT);
    bob.expect(
        "file_cancelled",
        &[("by", "alice"), ("offer", offer.as_str())],
        WAIT,
    );
    bob.expect_none(
        "file_received",
        &[("offer", offer.as_str())],
        Duration::from_millis(500),
    );
    assert!(
        listing(&dir.path().join("bob")).is_empty(),
        "the .part is removed"
    );
}

#[test]
fn unsafe_names_are_saved_safely() {
    let (_reg, mut alice, mut bob, dir) = setup(&[], &[]);
    let hostile = ["CON", "\u{1b}[31mred\u{1b}[0m.txt", ".bashrc", "nul.txt"];
    let mut first = true;
    for name in hostile {
        let src = dir.path().join("src").join(name);
        std::fs::write(&src, name).expect("write");
        let o = if first {
            offer(&mut alice, &mut bob, &src)
        } else {
            alice.send(&format!("/send bob {}", src.display()));
            bob.expect("file_offered", &[("from", "alice")], LONG)
        };
        first = false;
        bob.send(&format!("/get {}", id(&o)));
        let got = bob.expect("file_received", &[("offer", id(&o).as_str())], LONG);
        let path = PathBuf::from(got["path"].as_str().expect("path"));
        assert_eq!(path.parent(), Some(dir.path().join("bob").as_path()));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), name);
    }
    assert_eq!(
        listing(&dir.path().join("bob")),
        ["[31mred[0m.txt", "_CON", "_nul.txt", "bashrc"]
    );
}

#[test]
fn room_offer_is_fetched_by_two_members() {
    let reg = Registry::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let names = ["teacher", "bob", "carol"];
    let specs: Vec<(&str, PeerOpts)> = names
        .iter()
        .map(|n| {
            let down = dir.path().join(n);
            std::fs::create_dir(&down).expect("mkdir");
            let args = vec!["--download-dir".to_string(), down.display().to_string()];
            (
                *n,
                PeerOpts {
                    args,
                    ..PeerOpts::default()
                },
            )
        })
        .collect();
    let mut p = login_peers(reg.addr(), &specs);
    form_room(&mut p, "lab", LONG);
    let src = dir.path().join("worksheet.pdf");
    make_file(&src, 2 * 1024 * 1024 + 3);
    let want = sha256(&src);
    p[0].send(&format!("/send #lab {}", src.display()));
    for student in p[1..].iter_mut() {
        student.expect("chat_request", &[("from", "teacher")], WAIT);
        student.send("/accept teacher");
        let o = student.expect("file_offered", &[("from", "teacher")], LONG);
        student.send(&format!("/get {}", id(&o)));
    }
    for (i, student) in p[1..].iter_mut().enumerate() {
        let got = student.expect("file_received", &[("from", "teacher")], LONG);
        let path = PathBuf::from(got["path"].as_str().expect("path"));
        assert_eq!(path, dir.path().join(names[i + 1]).join("worksheet.pdf"));
        assert_eq!(sha256(&path), want);
    }
    p[0].expect("file_sent", &[("to", "bob")], WAIT);
    p[0].expect("file_sent", &[("to", "carol")], WAIT);
}
