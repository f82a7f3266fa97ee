//! The embedded store's file at start, on the real `registry` binary: an
//! empty, foreign or damaged file is refused with a clear message and a
//! non-zero exit, and the file is left as it was.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Starts the registry on `store` and returns its exit success and its
/// stderr, or panics if it is still running after 20 s (it served instead
/// of refusing).
fn start(store: &std::path::Path) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_registry"))
        .args(["--listen", "127.0.0.1:0", "--store"])
        .arg(store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn registry");
    let mut stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(text) => (child.wait().expect("wait").success(), text),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the registry started serving from {}", store.display());
        }
    }
}

#[test]
fn an_empty_database_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("registry.db");
    std::fs::write(&db, b"").unwrap();
    let (ok, err) = start(&db);
    assert!(!ok, "{err}");
    assert!(
        err.contains("is an empty file (0 bytes), not a registry database"),
        "{err}"
    );
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);
}

#[test]
fn a_foreign_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.txt");
    std::fs::write(&db, "shopping list\n".repeat(400)).unwrap();
    let (ok, err) = start(&db);
    assert!(!ok, "{err}");
    assert!(err.contains("is not a registry database"), "{err}");
}
