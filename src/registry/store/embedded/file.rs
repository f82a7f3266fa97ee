//! The embedded store's file: how a new database is created and how an
//! existing one is checked before the registry serves from it.

use super::keys_upgrade::upgrade_to_v6;
use super::roles::SCHEMA_V4;
use super::{err, StoreError, StoreResult};
use rusqlite::Connection;

/// `PRAGMA application_id` of a registry database: "LANc".
pub(super) const APPLICATION_ID: i32 = 0x4C41_4E63;
/// The tables and indexes, as created in a new file.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_ms    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash   TEXT PRIMARY KEY,
    username     TEXT NOT NULL UNIQUE,
    ip           TEXT NOT NULL,
    tcp_port     INTEGER NOT NULL,
    udp_port     INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    instance     TEXT NOT NULL,
    attached     INTEGER NOT NULL,
    created_ms   INTEGER NOT NULL,
    away         TEXT,
    sign_key     TEXT,
    kx_key       TEXT
);
CREATE INDEX IF NOT EXISTS sessions_instance ON sessions(instance);
CREATE INDEX IF NOT EXISTS sessions_last_seen ON sessions(last_seen_ms);
CREATE TABLE IF NOT EXISTS rooms (
    name       TEXT PRIMARY KEY,
    key        TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    epoch      INTEGER NOT NULL DEFAULT 1,
    topic      TEXT,
    topic_by   TEXT
);
CREATE TABLE IF NOT EXISTS members (
    room     TEXT NOT NULL,
    username TEXT NOT NULL,
    PRIMARY KEY (room, username)
);
CREATE INDEX IF NOT EXISTS members_username ON members(username);
";

/// `PRAGMA user_version`: the schema version this build writes and reads.
/// Version 2 added `rooms.epoch`, version 3 `rooms.topic`, `rooms.topic_by`
/// and `sessions.away`, version 4 the tables `room_policies` and
/// `announcements` (see `upgrade_to_v4`), version 5 `sessions.sign_key` and
/// `sessions.kx_key` (identity keys), version 6 retired the room keys the
/// registry used to make (see `upgrade_to_v6`); an older file is upgraded
/// in place.
const SCHEMA_VERSION: i32 = 6;
/// The columns added since version 1: table, column, type.
const ADDED: [(&str, &str, &str); 6] = [
    ("rooms", "epoch", "INTEGER NOT NULL DEFAULT 1"),
    ("rooms", "topic", "TEXT"),
    ("rooms", "topic_by", "TEXT"),
    ("sessions", "away", "TEXT"),
    ("sessions", "sign_key", "TEXT"),
    ("sessions", "kx_key", "TEXT"),
];
/// The tables of [`SCHEMA`]; a database of the first release has exactly
/// these and no application id yet.
const TABLES: [&str; 4] = ["members", "rooms", "sessions", "users"];

/// Creates a new registry database at `path`: the schema is written to a
/// temporary file beside it, which is then renamed into place, so a crash
/// during creation leaves either no file or a complete one, never an empty
/// file that the next start would have to refuse.
pub(super) fn create_new(path: &str) -> StoreResult<()> {
    let tmp = format!("{path}.new-{}", std::process::id());
    let _ = std::fs::remove_file(&tmp);
    let made = (|| -> rusqlite::Result<()> {
        let conn = Connection::open(&tmp)?;
        conn.execute_batch(&format!(
            "BEGIN; {SCHEMA} {SCHEMA_V4} PRAGMA application_id={APPLICATION_ID}; \
             PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
        ))?;
        conn.close().map_err(|(_, e)| e)
    })();
    let done = made
        .map_err(|e| format!("cannot create {path}: {e}"))
        .and_then(|()| {
            std::fs::rename(&tmp, path).map_err(|e| format!("cannot create {path}: {e}"))
        });
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(StoreError::Other(e));
    }
    log::info!("created a new registry database at {path}");
    Ok(())
}

/// Refuses a file that is not a registry database this build can use: not
/// SQLite, another application's, a newer schema, or damaged (SQLite's
/// `quick_check`). A database of the first release (no application id,
/// exactly the registry's tables) is stamped with the id and version.
pub(super) fn check_existing(conn: &Connection, path: &str) -> StoreResult<()> {
    let header = conn.query_row(
        "SELECT application_id, user_version FROM pragma_application_id, pragma_user_version",
        [],
        |r| Ok((r.get::<_, i32>(0)?, r.get::<_, i32>(1)?)),
    );
    let (app_id, version) = header.map_err(|e| {
        StoreError::Other(format!(
            "{path} is not a registry database ({e}); \
             pass another --store, or move the file away to start an empty registry"
        ))
    })?;
    let damaged = |why: String| {
        StoreError::Other(format!(
            "{path} is damaged ({why}); restore it from a backup, \
             or move it away to start an empty registry"
        ))
    };
    let mut check = conn
        .prepare("PRAGMA quick_check")
        .map_err(|e| damaged(e.to_string()))?;
    let problems: Vec<String> = check
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| damaged(e.to_string()))?;
    if problems.first().map(String::as_str) != Some("ok") {
        return Err(damaged(format!("quick_check: {}", problems.join("; "))));
    }
    match app_id {
        APPLICATION_ID if version > SCHEMA_VERSION => Err(StoreError::Other(format!(
            "{path} has schema version {version}, newer than this registry's \
             {SCHEMA_VERSION}: run a newer registry"
        ))),
        APPLICATION_ID if version == SCHEMA_VERSION => Ok(()),
        APPLICATION_ID if (1..SCHEMA_VERSION).contains(&version) => upgrade(conn, path),
        0 => {
            let mut q = conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                .map_err(err)?;
            let tables: Vec<String> = q
                .query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(err)?;
            if tables != TABLES {
                let found = if tables.is_empty() {
                    "no tables".to_string()
                } else {
                    format!("tables {}", tables.join(", "))
                };
                return Err(StoreError::Other(format!(
                    "{path} is an SQLite database but not a registry's ({found}); \
                     pass another --store, or move it away to start an empty registry"
                )));
            }
            log::info!("{path}: a registry database without a schema version; stamping it");
            conn.execute_batch(&format!("PRAGMA application_id={APPLICATION_ID};"))
                .map_err(err)?;
            upgrade(conn, path)
        }
        APPLICATION_ID => Err(StoreError::Other(format!(
            "{path} has an unknown schema version {version}"
        ))),
        other => Err(StoreError::Other(format!(
            "{path} belongs to another application (SQLite application_id {other:#x}); \
             pass another --store"
        ))),
    }
}

/// Brings an older database (version 1 or 2, or a first-release one) to
/// [`SCHEMA_VERSION`], in one transaction: each column of [`ADDED`] it
/// lacks is added (rooms get a key epoch, topics; sessions away messages).
fn upgrade(conn: &Connection, path: &str) -> StoreResult<()> {
    let mut add = String::new();
    for (table, column, kind) in ADDED {
        let has: i64 = conn
            .query_row(
                &format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
                [column],
                |r| r.get(0),
            )
            .map_err(err)?;
        if has == 0 {
            add.push_str(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind};"));
        }
    }
    let v4 = upgrade_to_v4();
    let v6 = upgrade_to_v6();
    conn.execute_batch(&format!(
        "BEGIN; {add} {v4} {v6} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
    ))
    .map_err(err)?;
    log::info!("{path}: upgraded to schema version {SCHEMA_VERSION}");
    Ok(())
}

/// Version 3 to 4: the room policy and announcement tables (created if
/// absent, so it applies to any older version).
fn upgrade_to_v4() -> &'static str {
    SCHEMA_V4
}

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;
    use super::*;
    use crate::registry::store::{Store, UserRecord};
    use std::io::{Seek, SeekFrom, Write};

    fn path(dir: &tempfile::TempDir, name: &str) -> String {
        dir.path().join(name).to_str().unwrap().to_string()
    }

    fn refused(path: &str) -> String {
        match SqliteStore::open(path) {
            Ok(_) => panic!("{path} was opened"),
            Err(e) => e.to_string(),
        }
    }

    fn header(path: &str) -> (i32, i32) {
        let conn = Connection::open(path).unwrap();
        conn.query_row(
            "SELECT application_id, user_version FROM pragma_application_id, pragma_user_version",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    #[test]
    fn a_new_file_is_created_stamped_and_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(&dir, "sub/registry.db");
        drop(SqliteStore::open(&p).unwrap());
        assert_eq!(header(&p), (APPLICATION_ID, SCHEMA_VERSION));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".new-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        SqliteStore::open(&p).unwrap().ping().unwrap();
    }

    #[test]
    fn an_empty_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(&dir, "registry.db");
        std::fs::write(&p, b"").unwrap();
        let e = refused(&p);
        assert!(e.contains("empty file (0 bytes)"), "{e}");
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(&dir, "registry.db");
        std::fs::write(&p, vec![b'x'; 8192]).unwrap();
        let e = refused(&p);
        assert!(e.contains("is not a registry database"), "{e}");
    }

    #[test]
    fn another_applications_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let foreign = path(&dir, "foreign.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE notes (body TEXT);")
            .unwrap();
        let e = refused(&foreign);
        assert!(e.contains("not a registry's (tables notes)"), "{e}");
        let stamped = path(&dir, "stamped.db");
        Connection::open(&stamped)
            .unwrap()
            .execute_batch(&format!("{SCHEMA} PRAGMA application_id=7;"))
            .unwrap();
        let e = refused(&stamped);
        assert!(
            e.contains("another application (SQLite application_id 0x7)"),
            "{e}"
        );
        let newer = path(&dir, "newer.db");
        Connection::open(&newer)
            .unwrap()
            .execute_batch(&format!(
                "{SCHEMA} PRAGMA application_id={APPLICATION_ID}; PRAGMA user_version=99;"
            ))
            .unwrap();
        let e = refused(&newer);
        assert!(e.contains("schema version 99, newer"), "{e}");
    }

    #[test]
    fn a_first_release_database_is_kept_and_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(&dir, "registry.db");
        let conn = Connection::open(&p).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute(
            "INSERT INTO users (username, password_hash, created_ms) VALUES ('ann', 'h', 1)",
            [],
        )
        .unwrap();
        drop(conn);
        let store = SqliteStore::open(&p).unwrap();
        assert_eq!(store.find_user("ann").unwrap().unwrap().password_hash, "h");
        drop(store);
        assert_eq!(header(&p), (APPLICATION_ID, SCHEMA_VERSION));
    }

    #[test]
    fn a_version_1_database_gets_room_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(&dir, "registry.db");
        let v1 = without_v3(&SCHEMA.replace(",\n    epoch      INTEGER NOT NULL DEFAULT 1", ""));
        assert!(!v1.contains("epoch"));
        let conn = Connection::open(&p).unwrap();
        conn.execute_batch(&format!(
            "{v1} PRAGMA application_id={APPLICATION_ID}; PRAGMA user_version=1;"
        ))
        .unwrap();
        conn.execute_batch(
            "INSERT INTO rooms (name, key, created_ms) VALUES ('lab', 'k', 1);
             INSERT INTO members (room, username) VALUES ('lab', 'ann'), ('lab', 'bob');",
        )
        .unwrap();
        drop(conn);
        let store = SqliteStore::open(&p).unwrap();
        // Version 6 retired the registry-made key 'k' with its epoch.
        let room = store.find_room("lab").unwrap().unwrap();
        assert_eq!((room.key.as_str(), room.epoch), ("", 2));
        assert!(store.swap_room_key("lab", 2, "", "k2").unwrap());
        store.remove_member("lab", "ann", "").unwrap();
        let room = store.find_room("lab").unwrap().unwrap();
        assert_eq!((room.key.as_str(), room.epoch), ("", 3));
        drop(store);
        assert_eq!(header(&p), (APPLICATION_ID, SCHEMA_VERSION));
    }

    /// [`SCHEMA`] without the columns versions 3 and 5 added.
    fn without_v3(schema: &str) -> String {
        let v2 = schema
            .replace(",\n    topic      TEXT,\n    topic_by   TEXT", "")
            .replace(",\n    sign_key     TEXT,\n    kx_key       TEXT", "")
            .replace(",\n    away         TEXT", "");
        assert!(
            !v2.contains("topic") && !v2.contains("away") && !v2.contains("kx_key"),
            "{v2}"
        );
        v2
    }

    #[test]
    fn a_version_2_database_gets_topics_and_away_messages() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(&dir, "registry.db");
        let conn = Connection::open(&p).unwrap();
        conn.execute_batch(&format!(
            "{} PRAGMA application_id={APPLICATION_ID}; PRAGMA user_version=2;",
            without_v3(SCHEMA)
        ))
        .unwrap();
        conn.execute_batch(
            "INSERT INTO rooms (name, key, created_ms, epoch) VALUES ('lab', 'k', 1, 4);
             INSERT INTO members (room, username) VALUES ('lab', 'ann');
             INSERT INTO sessions VALUES ('t', 'ann', '127.0.0.1', 1, 2, 3, 'i', 1, 4);",
        )
        .unwrap();
        drop(conn);
        let store = SqliteStore::open(&p).unwrap();
        let room = store.find_room("lab").unwrap().unwrap();
        assert_eq!((room.key.as_str(), room.epoch, room.topic), ("", 5, None));
        let ann = store.session_by_token("t").unwrap().unwrap();
        assert_eq!((ann.away, ann.keys), (None, None));
        assert!(store.set_topic("lab", "ann", "plans").unwrap());
        assert!(store.set_away("t", "lunch").unwrap());
        let room = store.find_room("lab").unwrap().unwrap();
        assert_eq!(
            room.topic.map(|t| (t.text, t.by)),
            Some(("plans".into(), "ann".into()))
        );
        let away = store.session_by_token("t").unwrap().unwrap().away;
        assert_eq!(away.as_deref(), Some("lunch"));
        drop(store);
        assert_eq!(header(&p), (APPLICATION_ID, SCHEMA_VERSION));
    }

    #[test]
    fn a_damaged_page_is_found_before_serving() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(&dir, "registry.db");
        let store = SqliteStore::open(&p).unwrap();
        for i in 0..400 {
            let user = UserRecord {
                username: format!("user{i:04}"),
                password_hash: "x".repeat(100),
                created_ms: i,
            };
            store.create_user(&user).unwrap();
        }
        drop(store); // checkpoints the WAL into the file
        let pages = std::fs::metadata(&p).unwrap().len() / 4096;
        assert!(pages > 8, "{pages} pages");
        let mut f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.seek(SeekFrom::Start(4 * 4096)).unwrap();
        f.write_all(&[0xA5; 4096]).unwrap();
        drop(f);
        let e = refused(&p);
        assert!(e.contains("is damaged"), "{e}");
    }
}
