use super::*;
use crate::identity::Identity;

fn id(n: u8) -> Identity {
    Identity::from_secrets([n; 32], [n + 100; 32])
}

/// Runs a handshake between `a` (dialling `bob` whose key it expects to
/// be `expect`) and `b` (who says it is `bob`); the two results.
fn run(a: &Identity, b: &Identity, expect: [u8; 32]) -> Result<(Secured, Secured), SecureError> {
    let (ia, m1) = Handshake::initiator(&a.kx_secret(), "alice", "bob", expect, None)?;
    let rb = Handshake::responder(&b.kx_secret(), "bob", None)?;
    let mut d = Deframer::default();
    d.push(&m1);
    let Next::Continue(rb, m2) = rb.read(&d.next_msg().unwrap())? else {
        panic!("responder done after message 1")
    };
    d.push(&m2);
    let Next::Done(sa, Some(m3)) = ia.read(&d.next_msg().unwrap())? else {
        panic!("initiator not done after message 2")
    };
    d.push(&m3);
    let Next::Done(sb, None) = rb.read(&d.next_msg().unwrap())? else {
        panic!("responder not done after message 3")
    };
    assert_eq!(d.pending(), 0);
    Ok((sa, sb))
}

#[test]
fn handshake_binds_both_keys_and_names() {
    let (a, b) = (id(1), id(2));
    let (sa, sb) = run(&a, &b, b.public().kx).unwrap();
    assert_eq!(sa.remote_key, b.public().kx);
    assert_eq!(sb.remote_key, a.public().kx);
    assert_eq!(sa.remote, Claim::new("bob"));
    assert_eq!(sb.remote, Claim::new("alice"));
    let (mut seal_a, mut open_a) = sa.channel.split();
    let (mut seal_b, mut open_b) = sb.channel.split();
    let mut d = Deframer::default();
    for text in ["{\"type\":\"ping\"}\n", "second line\n"] {
        d.push(&seal_a.seal(text.as_bytes()).unwrap());
        let got = open_b.open(&d.next_msg().unwrap()).unwrap();
        assert_eq!(got, text.as_bytes());
    }
    d.push(&seal_b.seal(b"back\n").unwrap());
    assert_eq!(open_a.open(&d.next_msg().unwrap()).unwrap(), b"back\n");
}

#[test]
fn a_key_other_than_the_registrys_is_refused_before_the_initiator_speaks() {
    let (a, b, mallory) = (id(1), id(2), id(3));
    // Mallory answers in bob's name with her own keys.
    let err = run(&a, &mallory, b.public().kx).err();
    assert_eq!(err, Some(SecureError::KeyMismatch { user: "bob".into() }));
    assert_eq!(
        err.unwrap().to_string(),
        "bob's key does not match the one the registry vouches for: someone may be in the middle"
    );
}

#[test]
fn long_plaintexts_are_split_and_tampering_is_caught() {
    let (a, b) = (id(1), id(2));
    let (sa, sb) = run(&a, &b, b.public().kx).unwrap();
    let (mut seal, _) = sa.channel.split();
    let (_, mut open) = sb.channel.split();
    let big = vec![b'x'; MAX_PLAIN + 10];
    let mut d = Deframer::default();
    d.push(&seal.seal(&big).unwrap());
    let mut got = Vec::new();
    while let Some(m) = d.next_msg() {
        assert!(m.len() <= MAX_NOISE_MSG);
        got.extend(open.open(&m).unwrap());
    }
    assert_eq!(got, big);
    let mut m = seal.seal(b"hi").unwrap();
    let last = m.len() - 1;
    m[last] ^= 1;
    d.push(&m);
    assert_eq!(open.open(&d.next_msg().unwrap()), Err(SecureError::Crypto));
}

#[test]
fn garbage_and_replays_never_panic() {
    let b = id(2);
    for bytes in [&b""[..], b"\x00", &[7u8; 31], &[0xff; 200]] {
        let rb = Handshake::responder(&b.kx_secret(), "bob", None).unwrap();
        assert!(rb.read(bytes).is_err(), "{bytes:?}");
    }
    // A replayed transport message is refused (its nonce is used up).
    let a = id(1);
    let (sa, sb) = run(&a, &b, b.public().kx).unwrap();
    let (mut seal, _) = sa.channel.split();
    let (_, mut open) = sb.channel.split();
    let m = seal.seal(b"once").unwrap();
    assert!(open.open(&m[2..]).is_ok());
    assert_eq!(open.open(&m[2..]), Err(SecureError::Crypto));
}

#[test]
fn the_first_byte_tells_a_version_1_peer() {
    assert!(is_plaintext(b'{'));
    let a = id(1);
    let (_, m1) = Handshake::initiator(&a.kx_secret(), "alice", "bob", [0; 32], None).unwrap();
    assert!(!is_plaintext(m1[0]));
    assert_eq!(m1.len(), 2 + 32);
}

/// The example of protocol.md: fixed keys and ephemerals give fixed bytes.
#[test]
fn fixed_ephemerals_give_the_documented_first_message() {
    let a = id(1);
    let e = [0x11u8; 32];
    let (_, m1) = Handshake::initiator(&a.kx_secret(), "alice", "bob", [0; 32], Some(&e)).unwrap();
    let (_, again) =
        Handshake::initiator(&a.kx_secret(), "alice", "bob", [0; 32], Some(&e)).unwrap();
    assert_eq!(m1, again);
}
