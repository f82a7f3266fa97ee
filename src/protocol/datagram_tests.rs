use super::*;

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
    ] {
        let bytes = d.encode(&KEY, &NONCE);
        assert_eq!(Datagram::decode(&bytes, |_| Some(KEY)), Ok(d.clone()));
        let other_key = RoomKey {
            key: [8; 32],
            ..KEY
        };
        assert_eq!(
            Datagram::decode(&bytes, |_| Some(other_key)),
            Err(DecodeError::BadTag)
        );
        let next_epoch = RoomKey { epoch: 4, ..KEY };
        assert_eq!(
            Datagram::decode(&bytes, |_| Some(next_epoch)),
            Err(DecodeError::OtherEpoch {
                room: "lab".into(),
                epoch: 3
            })
        );
        assert_eq!(
            Datagram::decode(&bytes, |_| None),
            Err(DecodeError::UnknownRoom)
        );
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1;
            assert!(Datagram::decode(&flipped, |_| Some(KEY)).is_err(), "{at}");
        }
        for cut in 0..bytes.len() {
            assert!(Datagram::decode(&bytes[..cut], |_| Some(KEY)).is_err());
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
    let bytes = d.encode(&KEY, &NONCE);
    assert!(!bytes.windows(6).any(|w| secret.windows(6).any(|s| s == w)));
    // Another nonce, other bytes: nothing repeats between datagrams.
    let again = d.encode(&KEY, &[10; NONCE_LEN]);
    assert_ne!(bytes[bytes.len() - 40..], again[again.len() - 40..]);
}

#[test]
fn exact_header() {
    let bytes = data().encode(&KEY, &NONCE);
    let mut expect = b"LC\x03\x01\x00\x03lab\x05alice".to_vec();
    expect.extend_from_slice(&3u64.to_be_bytes());
    expect.extend_from_slice(&NONCE);
    assert_eq!(bytes[..expect.len()], expect[..]);
    // The 31-byte DATA body with its 2 bytes of text, then the tag.
    assert_eq!(bytes.len(), expect.len() + 31 + 2 + TAG_LEN);
}

#[test]
fn versions_1_and_2_and_signed_datagrams_are_refused() {
    for (at, byte) in [(2, 1), (2, 2), (4, 1)] {
        let mut bytes = data().encode(&KEY, &NONCE);
        bytes[at] = byte;
        assert_eq!(
            Datagram::decode(&bytes, |_| Some(KEY)),
            Err(DecodeError::Malformed)
        );
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
            missing: (0..n).map(|i| (cum + 1 + 2 * i, 1)).collect(),
        },
        ..data()
    };
    let bytes = ack(10, 200, 40).encode(&KEY, &NONCE);
    match Datagram::decode(&bytes, |_| Some(KEY)) {
        Ok(Datagram {
            body: Body::Ack { missing, .. },
            ..
        }) => assert_eq!(missing.len(), MAX_RANGES),
        other => panic!("{other:?}"),
    }
    assert!(bytes.len() <= MAX_DATAGRAM);
    let bytes = ack(10, 9, 0).encode(&KEY, &NONCE);
    assert_eq!(
        Datagram::decode(&bytes, |_| Some(KEY)),
        Err(DecodeError::Malformed)
    );
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
    let bytes = d.encode(&KEY, &NONCE);
    assert!(bytes.len() <= MAX_DATAGRAM, "{}", bytes.len());
    assert!(Datagram::decode(&bytes, |_| Some(KEY)).is_ok());
}

#[test]
fn keys() {
    assert_eq!(parse_key(&"0a".repeat(32)), Some([10; 32]));
    assert_eq!(parse_key("zz"), None);
    assert_eq!(parse_key(&"g0".repeat(32)), None);
}
