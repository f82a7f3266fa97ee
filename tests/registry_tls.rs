//! The registry link over TLS (issue 12, item 1), on the real binaries:
//! certificate pinning (given up front, or trusted on first use), a man in
//! the middle refused, a changed certificate refused with the command that
//! re-trusts it, `--insecure` on one side only, plaintext clients told
//! `tls_required`, and heartbeats that carry no token and cannot be
//! replayed or forged.

mod kit;

use kit::capture::{self, Capture};
use kit::tls::{Impostor, TlsClient};
use kit::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(15);
/// Cheap password hashes: these tests are about the link, not hashing.
const CHEAP_HASH: &[&str] = &["--argon2-memory-kib", "256", "--argon2-passes", "1"];

fn tls_registry() -> Registry {
    Registry::builder().flags(CHEAP_HASH).tls_only().start()
}

/// A peer whose trusted registries are kept in `known` (a file the test
/// owns, so a later peer or `--forget-registry` sees the same), plus `extra`.
fn peer_with(registry: &str, name: &str, known: &Path, extra: &[&str]) -> Peer {
    let mut args = vec![
        "--known-registries".to_string(),
        known.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let opts = PeerOpts {
        args,
        ..PeerOpts::default()
    };
    Peer::start(registry, name, &opts)
}

fn error_event(p: &mut Peer, code: &str) -> String {
    let v = p.expect("error", &[("code", code)], T);
    v["message"].as_str().unwrap_or_default().to_string()
}

/// Waits until the registry's log has a line containing `needle`.
fn wait_log(r: &Registry, needle: &str) {
    let deadline = Instant::now() + T;
    while !r.log().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the registry log:\n{}",
            r.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_fingerprint_is_printed_at_start_and_by_the_fingerprint_flag() {
    let r = tls_registry();
    assert!(
        r.fingerprint().starts_with("SHA256:"),
        "{}",
        r.fingerprint()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_registry"))
        .args(["--fingerprint", "--store"])
        .arg(r.dir().join("r.db"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r.fingerprint());
    // The key is the owner's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(r.dir().join("registry-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// A peer given the fingerprint up front talks to the registry; pointed at
/// an impostor with a certificate of its own, it refuses it, naming both
/// fingerprints, and sends it nothing.
#[test]
fn a_man_in_the_middle_is_refused_when_the_fingerprint_is_pinned() {
    let r = tls_registry();
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known");
    let pin = ["--registry-fingerprint", r.fingerprint()];
    let mut good = peer_with(&r.addr().to_string(), "good", &known, &pin);
    good.register("alice");
    good.login("alice");

    let mitm = Impostor::start("127.0.0.1:0");
    let mut p = peer_with(&mitm.addr.to_string(), "fooled?", &known, &pin);
    p.send(&format!("/login alice {PASSWORD}"));
    let said = error_event(&mut p, "registry_untrusted");
    assert!(said.contains("REFUSED"), "{said}");
    assert!(
        said.contains(&mitm.fingerprint) && said.contains(r.fingerprint()),
        "{said}"
    );
    assert!(
        mitm.heard().is_empty(),
        "the impostor heard {:?}",
        mitm.heard()
    );
    // Nothing was remembered for a pinned registry.
    assert!(!known.exists() || !std::fs::read_to_string(&known).unwrap().contains("SHA256"));
}

/// Trust on first use: the first certificate of an address is remembered;
/// an impostor later on that address, and then the real registry with a
/// new certificate, are refused with the command that re-trusts; after
/// `peer --forget-registry` the new certificate is trusted.
#[test]
fn a_changed_certificate_is_refused_after_trust_on_first_use_until_forgotten() {
    let mut r = tls_registry();
    let addr = r.addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_registries");
    let mut p = peer_with(&addr, "alice", &known, &[]);
    let note = p.expect_where("the first-use notice", |v| v["event"] == "notice", T);
    assert!(
        note["text"].as_str().unwrap().contains(r.fingerprint()),
        "{note}"
    );
    p.register("alice");
    p.login("alice");
    let saved = std::fs::read_to_string(&known).unwrap();
    assert!(
        saved.contains(&format!("{addr} {}", r.fingerprint())),
        "{saved}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&known).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The registry goes; an impostor takes its address.
    let old_fp = r.fingerprint().to_string();
    r.kill9();
    let mitm = Impostor::start(&addr);
    let said = error_event(&mut p, "registry_untrusted");
    assert!(
        said.contains(&mitm.fingerprint) && said.contains(&old_fp),
        "{said}"
    );
    assert!(
        said.contains(&format!("peer --forget-registry {addr}")),
        "{said}"
    );
    assert!(
        mitm.heard().is_empty(),
        "the impostor heard {:?}",
        mitm.heard()
    );
    drop(p);
    drop(mitm);

    // The registry comes back with a new certificate: refused the same way.
    for f in ["registry-cert.pem", "registry-key.pem"] {
        std::fs::remove_file(r.dir().join(f)).unwrap();
    }
    r.restart();
    assert_ne!(r.fingerprint(), old_fp);
    let mut p = peer_with(&addr, "alice again", &known, &[]);
    p.send(&format!("/login alice {PASSWORD}"));
    let said = error_event(&mut p, "registry_untrusted");
    assert!(
        said.contains(r.fingerprint()) && said.contains(&old_fp),
        "{said}"
    );
    drop(p);

    // Re-trusted as the refusal says.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_peer"))
        .args(["--known-registries"])
        .arg(&known)
        .args(["--forget-registry", &addr])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("forgot"),
        "{out:?}"
    );
    let mut p = peer_with(&addr, "alice at last", &known, &[]);
    p.login("alice");
    assert!(std::fs::read_to_string(&known)
        .unwrap()
        .contains(r.fingerprint()));
}

/// `--insecure` on the peer only: the registry answers `tls_required` and
/// the peer says so. On the registry only: a TLS peer still gets TLS. A
/// registry that does not speak TLS at all (version 1): the peer says it
/// did not answer in TLS, naming --insecure.
#[test]
fn insecure_on_one_side_only_fails_clearly() {
    let r = tls_registry();
    let mut p = Peer::spawn_named("plain", r.addr(), &["--insecure"]);
    p.send(&format!("/register bob {PASSWORD}"));
    let said = error_event(&mut p, "tls_required");
    assert!(said.contains("--insecure"), "{said}");
    assert!(p.stderr().contains("WARNING: --insecure"), "{}", p.stderr());

    // The kit's registries run --insecure: TLS peers still get TLS there.
    let both = Registry::builder().flags(CHEAP_HASH).start();
    let mut tls = Peer::spawn_named("tls", both.addr(), &[]);
    tls.expect_where("the first-use notice", |v| v["event"] == "notice", T);
    tls.register("carol");
    tls.login("carol");

    // A plaintext server in place of a registry (as version 1 was).
    let v1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let v1_addr = v1.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in v1.incoming().flatten() {
            let mut w = &s;
            let _ = w.write_all(b"{\"id\":null,\"ok\":false,\"code\":\"bad_encoding\",\"message\":\"line is not UTF-8; closing\"}\n");
        }
    });
    let mut old = Peer::spawn_named("to v1", v1_addr, &[]);
    let said = error_event(&mut old, "registry_unreachable");
    assert!(
        said.contains("did not answer in TLS") && said.contains("--insecure"),
        "{said}"
    );
}

/// A version-1 client (plaintext JSON) of a TLS registry gets one
/// `tls_required` line, answering its first request, and the connection is
/// closed.
#[test]
fn a_plaintext_client_gets_tls_required() {
    let r = tls_registry();
    let mut s = TcpStream::connect(r.addr()).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"{\"id\":1,\"op\":\"login\",\"username\":\"a\",\"password\":\"b\",\"tcp_port\":1,\"udp_port\":1}\n")
        .unwrap();
    let mut r1 = BufReader::new(s);
    let mut line = String::new();
    r1.read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    // The answer to the request sent (a version-1 peer shows it as such).
    assert_eq!(
        (&v["id"], &v["ok"], &v["code"]),
        (&json!(1), &json!(false), &json!("tls_required"))
    );
    line.clear();
    assert_eq!(r1.read_line(&mut line).unwrap(), 0, "not closed: {line:?}");
}

/// Everything a peer's registry link puts on the loopback wire, captured
/// raw: no password and no token anywhere (register, login, requests,
/// heartbeats); the heartbeats are MACed datagrams, and one captured and
/// sent again later is dropped and counted, as is one with a forged MAC.
#[test]
fn nothing_readable_on_the_wire_and_captured_heartbeats_do_not_replay() {
    let r = tls_registry();
    let Some(cap) = Capture::loopback() else {
        eprintln!("skipped: no AF_PACKET socket (not root)");
        return;
    };
    let password = "a quite secret password";
    let mut p = Peer::spawn_named(
        "alice",
        r.addr(),
        &["--registry-fingerprint", r.fingerprint()],
    );
    p.send(&format!("/register alice {password}"));
    p.expect("registered", ANY, T);
    p.send(&format!("/login alice {password}"));
    p.expect("logged_in", ANY, T);
    // A raw TLS client of its own, whose token the test knows.
    let mut c = TlsClient::connect(r.addr(), r.fingerprint()).unwrap();
    c.ok(json!({"op": "register", "username": "bob", "password": password}));
    let reply = c.ok(json!({"op": "login", "username": "bob", "password": password, "tcp_port": 9, "udp_port": 9}));
    let token = reply["token"].as_str().unwrap().to_string();
    let hb_key = reply["heartbeat_key"].as_str().unwrap().to_string();
    c.ok(json!({"op": "online", "token": token}));
    // Three of alice's heartbeats (one a second) go by.
    let hb_port = r.port();
    let beats_in = |frames: &[Vec<u8>]| -> Vec<Vec<u8>> {
        capture::udp_payloads_to(frames, hb_port)
            .into_iter()
            .filter(|d| d.starts_with(b"{\"op\":\"heartbeat\""))
            .collect()
    };
    // (Each datagram is seen twice on loopback: going out and coming in.)
    assert!(
        cap.wait_until(T, |f| beats_in(f).len() >= 6),
        "no heartbeats captured"
    );
    let frames = cap.stop();
    let all: Vec<u8> = frames.concat();
    assert!(!frames.is_empty());
    for secret in [password, token.as_str(), hb_key.as_str()] {
        assert!(
            !capture::contains(&all, secret.as_bytes()),
            "{secret:?} is on the wire"
        );
    }
    let beats = beats_in(&frames);
    // A token is 64 hex digits: the only such runs on the registry's port
    // are the heartbeats' MACs (so the peer's token, which the test cannot
    // know, is not there either).
    let macs: Vec<String> = beats
        .iter()
        .map(|b| {
            serde_json::from_slice::<Value>(b).unwrap()["mac"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let runs: Vec<String> = capture::payloads_on_port(&frames, hb_port)
        .iter()
        .flat_map(|p| capture::hex_runs(p, 64))
        .collect();
    assert!(runs.len() >= macs.len(), "the MACs not found: {runs:?}");
    for run in runs {
        assert!(
            macs.contains(&run),
            "64 hex digits on the wire, not a MAC: {run}"
        );
    }
    for b in &beats {
        let v: Value = serde_json::from_slice(b).unwrap();
        assert!(v.get("token").is_none() && v["mac"].is_string(), "{v}");
    }

    // Replayed: the first captured heartbeat again, later.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(&beats[0], r.addr()).unwrap();
    wait_log(&r, "dropped 1 replayed heartbeat datagrams");
    // Forged: a counter far ahead, the MAC not recomputed.
    let mut v: Value = serde_json::from_slice(&beats[0]).unwrap();
    v["ctr"] = json!(1_000_000);
    udp.send_to(v.to_string().as_bytes(), r.addr()).unwrap();
    wait_log(
        &r,
        "dropped 1 heartbeat datagrams with an unknown id or a wrong MAC",
    );
}

/// Loopback figures for the report: a login round trip (connect,
/// handshake, `login`) with and without TLS.
#[test]
fn login_round_trip_with_and_without_tls() {
    let r = Registry::builder().flags(CHEAP_HASH).start();
    let mut c = r.client();
    c.register("timer");
    let n = 20;
    let mut plain = Vec::new();
    let mut tls = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        let mut c = r.client();
        let v = c.ok(json!({"op": "login", "username": "timer", "password": PASSWORD, "tcp_port": 9, "udp_port": 9}));
        plain.push(t0.elapsed());
        c.ok(json!({"op": "logout", "token": v["token"]}));
        let t0 = Instant::now();
        let mut c = TlsClient::connect(r.addr(), r.fingerprint()).unwrap();
        let v = c.ok(json!({"op": "login", "username": "timer", "password": PASSWORD, "tcp_port": 9, "udp_port": 9}));
        tls.push(t0.elapsed());
        c.ok(json!({"op": "logout", "token": v["token"]}));
    }
    plain.sort();
    tls.sort();
    eprintln!(
        "login round trip over {n} runs, median: plaintext {:?}, TLS {:?} (connect + handshake + login)",
        plain[n / 2],
        tls[n / 2]
    );
}

/// SIGINT stops a TLS registry within its 3 s promise while a TLS peer is
/// logged in, a TLS client sits idle after its handshake and a connection
/// has sent nothing yet (waiting for its first byte): shutting the sockets
/// down wakes every thread.
#[test]
fn a_tls_registry_stops_promptly_with_connections_in_every_state() {
    let mut r = tls_registry();
    let mut p = Peer::spawn_named(
        "alice",
        r.addr(),
        &["--registry-fingerprint", r.fingerprint()],
    );
    p.register("alice");
    p.login("alice");
    let _idle_tls = TlsClient::connect(r.addr(), r.fingerprint()).unwrap();
    let _silent = TcpStream::connect(r.addr()).unwrap();
    let started = Instant::now();
    let status = r.interrupt(Duration::from_secs(3));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?} after {:?}",
        started.elapsed()
    );
}
