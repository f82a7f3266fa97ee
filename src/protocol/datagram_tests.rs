use super::*;
use crate::identity::Identity;

fn alice() -> Identity {
    Identity::from_secrets([1; 32], [2; 32])
}

fn mallory() -> Identity {
    Identity::from_secrets([3; 32], [4; 32])
}

/// Opens `bytes` as a datagram from alice, with `key` for the room.
fn open(bytes: &[u8], key: Option<RoomKey>) -> Result<Datagram, DecodeError> {
    let me = alice();
    Datagram::decode(bytes, |_| key, |_| Some(me.public().sign), &me)
}

const KEY: RoomKey = RoomKey {
    epoch: 3,
    key: [7; 32],
};
const NONCE: [u8; NONCE_LEN] = [9; NONCE_LEN];

fn data() -> Datagram {
    Datagram {
        room: "lab".into(),
        from: "alice".into(),
        body: Body::Data {
            stream: 9,
            seq: 1,
            event: EventKind::Text,
            msg_id: 4,
            frag: 0,
            frags: 1,
            bytes: b"hi".to_vec(),
        },
    }
}

#[test]
fn round_trip_and_tag() {
    for d in [
        data(),
        Datagram {
            body: Body::Ack {
                to: "bob".into(),
                stream: 9,
                cum: 3,
                high: 9,
                unsynced: false,
                group: false,
                missing: vec![(4, 2), (8, 1)],
            },
            ..data()
        },
        Datagram {
            body: Body::Ping,
            ..data()
        },
        Datagram {
            body: Body::Sync {
                to: "bob".into(),
                stream: 9,
                next: 17,
            },
            ..data()
        },
        Datagram {
            body: Body::Late {
                to: "bob".into(),
                stream: 9,
                upto: 40,
                noted: true,
            },
            ..data()
        },
    ] {
        let bytes = d.encode(&KEY, &NONCE, &alice());
        assert_eq!(open(&bytes, Some(KEY)), Ok(d.clone()));
        let other_key = RoomKey {
            key: [8; 32],
            ..KEY
        };
        assert_eq!(open(&bytes, Some(other_key)), Err(DecodeError::BadTag));
        let next_epoch = RoomKey { epoch: 4, ..KEY };
        assert_eq!(
            open(&bytes, Some(next_epoch)),
            Err(DecodeError::OtherEpoch {
                room: "lab".into(),
                epoch: 3
            })
        );
        assert_eq!(open(&bytes, None), Err(DecodeError::UnknownRoom));
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1;
            assert!(open(&flipped, Some(KEY)).is_err(), "{at}");
        }
        for cut in 0..bytes.len() {
            assert!(open(&bytes[..cut], Some(KEY)).is_err());
        }
    }
}

#[test]
fn the_text_is_not_on_the_wire() {
    let secret = b"the answer to question 3 is 42";
    let d = Datagram {
        body: Body::Data {
            stream: 9,
            seq: 1,
            event: EventKind::Text,
            msg_id: 4,
            frag: 0,
            frags: 1,
            bytes: secret.to_vec(),
        },
        ..data()
    };
    let bytes = d.encode(&KEY, &NONCE, &alice());
    assert!(!bytes.windows(6).any(|w| secret.windows(6).any(|s| s == w)));
    // Another nonce, other bytes: nothing repeats between datagrams.
    let again = d.encode(&KEY, &[10; NONCE_LEN], &alice());
    assert_ne!(bytes[bytes.len() - 40..], again[again.len() - 40..]);
}

#[test]
fn exact_header() {
    let bytes = data().encode(&KEY, &NONCE, &alice());
    let mut expect = b"LC\x04\x01\x01\x03lab\x05alice".to_vec();
    expect.extend_from_slice(&3u64.to_be_bytes());
    expect.extend_from_slice(&NONCE);
    assert_eq!(bytes[..expect.len()], expect[..]);
    // The 31-byte DATA body with its 2 bytes of text, the tag, the
    // signature of all that.
    assert_eq!(bytes.len(), expect.len() + 31 + 2 + TAG_LEN + SIG_LEN);
    let (msg, sig) = bytes.split_at(bytes.len() - SIG_LEN);
    assert!(alice().public().verify(msg, sig.try_into().unwrap()));
}

#[test]
fn versions_1_to_3_and_other_auth_are_refused() {
    for (at, byte) in [(2, 1), (2, 2), (2, 3), (4, 0), (4, 2)] {
        let mut bytes = data().encode(&KEY, &NONCE, &alice());
        bytes[at] = byte;
        assert_eq!(open(&bytes, Some(KEY)), Err(DecodeError::Malformed));
    }
}

#[test]
fn an_ack_lists_at_most_32_ranges_and_never_high_below_cum() {
    let ack = |cum, high, n: u64| Datagram {
        body: Body::Ack {
            to: "bob".into(),
            stream: 1,
            cum,
            high,
            unsynced: true,
            group: false,
            missing: (0..n).map(|i| (cum + 1 + 2 * i, 1)).collect(),
        },
        ..data()
    };
    let bytes = ack(10, 200, 40).encode(&KEY, &NONCE, &alice());
    match open(&bytes, Some(KEY)) {
        Ok(Datagram {
            body: Body::Ack { missing, .. },
            ..
        }) => assert_eq!(missing.len(), MAX_RANGES),
        other => panic!("{other:?}"),
    }
    assert!(bytes.len() <= MAX_DATAGRAM);
    let bytes = ack(10, 9, 0).encode(&KEY, &NONCE, &alice());
    assert_eq!(open(&bytes, Some(KEY)), Err(DecodeError::Malformed));
}

#[test]
fn largest_fragment_fits() {
    let name = "a".repeat(32);
    let d = Datagram {
        room: name.clone(),
        from: name,
        body: Body::Data {
            stream: u64::MAX,
            seq: u64::MAX,
            event: EventKind::Text,
            msg_id: u64::MAX,
            frag: 0,
            frags: 1,
            bytes: vec![b'x'; FRAGMENT_BYTES],
        },
    };
    let bytes = d.encode(&KEY, &NONCE, &alice());
    assert!(bytes.len() <= MAX_DATAGRAM, "{}", bytes.len());
    assert!(open(&bytes, Some(KEY)).is_ok());
}

#[test]
fn keys() {
    assert_eq!(parse_key(&"0a".repeat(32)), Some([10; 32]));
    assert_eq!(parse_key("zz"), None);
    assert_eq!(parse_key(&"g0".repeat(32)), None);
}

#[test]
fn a_member_cannot_sign_as_another() {
    // Mallory holds the room key but not alice's signing key: her datagram
    // named "alice" fails alice's signature, whatever it says.
    let forged = data().encode(&KEY, &NONCE, &mallory());
    assert_eq!(open(&forged, Some(KEY)), Err(DecodeError::BadSignature));
    // Alice's datagram with the signature swapped for mallory's own.
    let mut bytes = data().encode(&KEY, &NONCE, &alice());
    let n = bytes.len();
    let sig = mallory().sign(&bytes[..n - SIG_LEN]);
    bytes[n - SIG_LEN..].copy_from_slice(&sig);
    assert_eq!(open(&bytes, Some(KEY)), Err(DecodeError::BadSignature));
    // A sender we have no key for is named, not guessed at.
    let me = alice();
    assert_eq!(
        Datagram::decode(&forged, |_| Some(KEY), |_| None, &me),
        Err(DecodeError::UnknownSender {
            room: "lab".into(),
            from: "alice".into()
        })
    );
}

/// `d` sealed and signed by alice, with byte `at` of its body (counted
/// from the body's start) set to `byte` before sealing: what a peer that
/// sent a body this version does not know would send.
fn sealed_with(d: &Datagram, at: usize, byte: u8) -> Vec<u8> {
    let bytes = d.encode(&KEY, &NONCE, &alice());
    let h = Header::peek(&bytes).unwrap();
    let end = bytes.len() - TAG_LEN - SIG_LEN;
    let (aad, body) = bytes[..end].split_at(h.len);
    let mut plain = body.to_vec();
    let c = cipher(&KEY.key);
    let tag = Tag::clone_from_slice(&bytes[end..end + TAG_LEN]);
    c.decrypt_in_place_detached(XNonce::from_slice(&NONCE), aad, &mut plain, &tag)
        .unwrap();
    plain[at] = byte;
    let tag = c
        .encrypt_in_place_detached(XNonce::from_slice(&NONCE), aad, &mut plain)
        .unwrap();
    let mut out = aad.to_vec();
    out.extend_from_slice(&plain);
    out.extend_from_slice(&tag);
    let sig = alice().sign(&out);
    out.extend_from_slice(&sig);
    out
}

#[test]
fn unknown_ack_flags_and_late_noted_bytes_are_malformed() {
    let ack = Datagram {
        body: Body::Ack {
            to: "bob".into(),
            stream: 1,
            cum: 2,
            high: 2,
            unsynced: false,
            group: true,
            missing: Vec::new(),
        },
        ..data()
    };
    // The flags byte: after `to` (1 + 3) and three u64s.
    let flags = 4 + 24;
    for (byte, ok) in [
        (0, true),
        (1, true),
        (2, true),
        (3, true),
        (4, false),
        (0x80, false),
    ] {
        let got = open(&sealed_with(&ack, flags, byte), Some(KEY));
        match got {
            Ok(Datagram {
                body: Body::Ack {
                    unsynced, group, ..
                },
                ..
            }) if ok => assert_eq!((unsynced, group), (byte & 1 != 0, byte & 2 != 0)),
            Err(DecodeError::Malformed) if !ok => {}
            other => panic!("flags {byte:02x}: {other:?}"),
        }
    }
    let late = Datagram {
        body: Body::Late {
            to: "bob".into(),
            stream: 1,
            upto: 40,
            noted: false,
        },
        ..data()
    };
    let noted = 4 + 16;
    assert!(open(&sealed_with(&late, noted, 1), Some(KEY)).is_ok());
    for byte in [2, 0xff] {
        assert_eq!(
            open(&sealed_with(&late, noted, byte), Some(KEY)),
            Err(DecodeError::Malformed)
        );
    }
}
