//! Identity keys on the real wire: the registry binds the public keys a
//! session logged in with to the user's name and returns them wherever it
//! returns an address; the peer keeps its secret keys per user and device
//! (mode 0600) and shows fingerprints with `/keys`.

mod kit;

use kit::*;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

fn keys(sign: &str, kx: &str) -> Value {
    json!({"sign": sign, "kx": kx})
}

/// A valid Ed25519 public key (of the secret 32 × 0x01) and any X25519 one.
const SIGN: &str = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
const KX: &str = "2222222222222222222222222222222222222222222222222222222222222222";

#[test]
fn the_registry_returns_the_keys_a_session_logged_in_with() {
    let reg = Registry::start(&[]);
    let mut a = Client::connect(reg.port());
    a.register("alice");
    let mut req = login_req("alice", 4000, 4001);
    req["keys"] = keys(SIGN, KX);
    a.ok(req);
    let mut b = Client::connect(reg.port());
    b.register("bob");
    let bob = b.login_token("bob", 5000);

    // search, online and room replies all carry alice's keys.
    assert_eq!(b.search(&bob, "alice")["keys"], keys(SIGN, KX));
    let online = b.ok(json!({"op": "online", "token": bob}));
    let entry = online["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .cloned()
        .unwrap();
    assert_eq!(entry["keys"], keys(SIGN, KX), "{online}");
    // bob sent no keys (a version-1 peer): his entries have none.
    assert!(b.search(&bob, "bob").get("keys").is_none());
}

#[test]
fn malformed_keys_are_refused_with_invalid_keys() {
    let reg = Registry::start(&[]);
    let mut a = Client::connect(reg.port());
    a.register("alice");
    for bad in [
        keys("00", KX),
        keys(SIGN, "zz"),
        keys(&"zz".repeat(32), KX),
        json!({"sign": SIGN}),
    ] {
        let mut req = login_req("alice", 4000, 4001);
        req["keys"] = bad.clone();
        let code = a.err(req);
        assert!(
            code == "invalid_keys" || code == "bad_request",
            "{bad}: {code}"
        );
    }
}

#[test]
fn a_peer_keeps_its_keys_per_device_and_a_new_device_gets_new_ones() {
    let reg = Registry::start(&[]);
    let mut alice = Peer::spawn_named("alice", reg.addr(), &[]);
    let made = alice.login_new("alice");
    assert_eq!(made["username"], "alice");
    let note = alice.expect_where(
        "made-keys notice",
        |v| {
            v["event"] == "notice"
                && v["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("made identity keys"))
        },
        T,
    );
    let path = alice.config_dir().join("lanchat/identity/alice.key");
    let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    let _ = meta;
    alice.send("/keys");
    let own = alice.expect_where(
        "own fingerprint",
        |v| {
            v["event"] == "notice"
                && v["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("your keys"))
        },
        T,
    );
    let fp = |v: &Value| {
        let t = v["text"].as_str().unwrap().to_string();
        t[t.find("SHA256:").unwrap()..]
            .trim_end_matches([')', ';'])
            .to_string()
    };
    let alice_fp = fp(&own);
    assert!(note["text"].as_str().unwrap().contains(&alice_fp), "{note}");

    // bob sees the same fingerprint, vouched for by the registry.
    let mut bob = Peer::spawn_named("bob", reg.addr(), &[]);
    bob.login_new("bob");
    bob.send("/keys alice");
    let seen = bob.expect_where(
        "alice's fingerprint",
        |v| {
            v["event"] == "notice"
                && v["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("alice's keys"))
        },
        T,
    );
    assert_eq!(fp(&seen), alice_fp);

    // Logging in again on the same device keeps the keys; another device
    // (another config directory) makes new ones, and the registry then
    // vouches for those.
    alice.send("/logout");
    alice.expect("logged_out", ANY, T);
    alice.login("alice");
    alice.send("/keys");
    let again = alice.expect_where(
        "own fingerprint again",
        |v| {
            v["event"] == "notice"
                && v["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("your keys"))
        },
        T,
    );
    assert_eq!(fp(&again), alice_fp);
    alice.send("/logout");
    alice.expect("logged_out", ANY, T);
    let mut laptop = Peer::spawn_named("alice-laptop", reg.addr(), &[]);
    laptop.login("alice");
    laptop.send("/keys");
    let other = laptop.expect_where(
        "new device fingerprint",
        |v| {
            v["event"] == "notice"
                && v["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("your keys"))
        },
        T,
    );
    assert_ne!(fp(&other), alice_fp);
    bob.send("/keys alice");
    let seen = bob.expect_where(
        "alice's new fingerprint",
        |v| {
            v["event"] == "notice"
                && v["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("alice's keys"))
        },
        T,
    );
    assert_eq!(fp(&seen), fp(&other));
}

/// A damaged identity file stops the login with a message that names the
/// file and the way out; nothing is sent to the registry with made-up keys,
/// and once the file is moved away the login makes new keys.
#[test]
fn a_damaged_identity_file_stops_the_login_with_the_way_out() {
    let reg = Registry::start(&[]);
    let mut alice = Peer::spawn_named("alice", reg.addr(), &[]);
    alice.register("alice");
    let path = alice.config_dir().join("lanchat/identity/alice.key");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "sign zzzz\nnot a key file\n\u{1b}[2J").unwrap();
    alice.send(&format!("/login alice {PASSWORD}"));
    let e = alice.expect("error", &[("code", "identity")], T);
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("Move that file away"),
        "{msg}"
    );
    alice.expect_none("logged_in", ANY, Duration::from_millis(300));
    // The file is left as it was.
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .contains("not a key file"));
    std::fs::rename(&path, path.with_extension("broken")).unwrap();
    alice.login("alice");
    alice.expect_where(
        "made-keys notice",
        |v| {
            v["event"] == "notice"
                && v["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("made identity keys"))
        },
        T,
    );
}
