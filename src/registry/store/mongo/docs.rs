//! Records to and from BSON documents, tolerant of what other writers (a
//! shell, a MongoDB-compatible server) store: integral doubles for
//! integers, 0/1 for booleans.

use super::{PeerKeys, RoomRecord, SessionRecord, StoreError, StoreResult, Topic};
use mongodb::bson::{doc, Bson, Document};

pub(super) fn bad(d: &Document, field: &str) -> StoreError {
    let id = d.get("_id").map_or("?".to_string(), Bson::to_string);
    StoreError::Other(format!("bad or missing field {field:?} in document {id}"))
}

pub(super) fn get_str(d: &Document, field: &str) -> StoreResult<String> {
    d.get_str(field)
        .map(str::to_string)
        .map_err(|_| bad(d, field))
}

/// An integer field, also accepting an integral double (what a shell writes).
pub(super) fn get_i64(d: &Document, field: &str) -> StoreResult<i64> {
    match d.get(field) {
        Some(Bson::Int64(v)) => Ok(*v),
        Some(Bson::Int32(v)) => Ok(i64::from(*v)),
        Some(Bson::Double(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(*f as i64),
        _ => Err(bad(d, field)),
    }
}

/// A boolean, also accepting 0/1 (some MongoDB-compatible servers, e.g.
/// nx-27017, store a `$set` boolean as an integer).
pub(super) fn get_bool(d: &Document, field: &str) -> StoreResult<bool> {
    match d.get(field) {
        Some(Bson::Boolean(b)) => Ok(*b),
        Some(Bson::Int32(0)) | Some(Bson::Int64(0)) => Ok(false),
        Some(Bson::Int32(1)) | Some(Bson::Int64(1)) => Ok(true),
        _ => Err(bad(d, field)),
    }
}

pub(super) fn get_port(d: &Document, field: &str) -> StoreResult<u16> {
    u16::try_from(get_i64(d, field)?).map_err(|_| bad(d, field))
}

pub(super) fn session_doc(s: &SessionRecord) -> Document {
    doc! {
        "token_hash": &s.token_hash,
        "username": &s.username,
        "ip": &s.ip,
        "tcp_port": i32::from(s.tcp_port),
        "udp_port": i32::from(s.udp_port),
        "last_seen_ms": s.last_seen_ms,
        "instance": &s.instance,
        "attached": s.attached,
        "created_ms": s.created_ms,
        "away": s.away.as_deref(),
        "sign_key": s.keys.as_ref().map(|k| k.sign.as_str()),
        "kx_key": s.keys.as_ref().map(|k| k.kx.as_str()),
    }
}

/// An optional text field: absent, null or empty is `None`.
pub(super) fn get_text(d: &Document, field: &str) -> Option<String> {
    d.get_str(field)
        .ok()
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

pub(super) fn session_from(d: &Document) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        token_hash: get_str(d, "token_hash")?,
        username: get_str(d, "username")?,
        ip: get_str(d, "ip")?,
        tcp_port: get_port(d, "tcp_port")?,
        udp_port: get_port(d, "udp_port")?,
        last_seen_ms: get_i64(d, "last_seen_ms")?,
        instance: get_str(d, "instance")?,
        attached: get_bool(d, "attached")?,
        created_ms: get_i64(d, "created_ms")?,
        away: get_text(d, "away"),
        keys: match (get_text(d, "sign_key"), get_text(d, "kx_key")) {
            (Some(sign), Some(kx)) => Some(PeerKeys { sign, kx }),
            _ => None,
        },
    })
}

pub(super) fn room_from(d: &Document) -> StoreResult<RoomRecord> {
    Ok(RoomRecord {
        name: get_str(d, "name")?,
        key: get_str(d, "key")?,
        // Rooms written before key epochs had none: epoch 0 (`$inc` then
        // makes the next one 1).
        epoch: match d.get("epoch") {
            None => 0,
            Some(_) => get_i64(d, "epoch")?.max(0) as u64,
        },
        created_ms: get_i64(d, "created_ms")?,
        topic: match (get_text(d, "topic"), get_text(d, "topic_by")) {
            (Some(text), Some(by)) => Some(Topic { text, by }),
            _ => None,
        },
    })
}
