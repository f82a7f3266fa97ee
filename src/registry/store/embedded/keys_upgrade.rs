//! Schema version 6: rooms' `key` holds member-made sealed packages
//! (`store::roomkeys`), no longer a key the registry made.

/// Version 5 to 6: every room drops its registry-made key and moves to the
/// next epoch, so no such key survives the upgrade (nor serves the epoch it
/// sealed) and the members make a new one. Runs once per upgrade, from any
/// older version, after the columns are added.
pub(super) fn upgrade_to_v6() -> &'static str {
    "UPDATE rooms SET key = '', epoch = epoch + 1;"
}

#[cfg(test)]
mod tests {
    use super::super::file::{APPLICATION_ID, SCHEMA};
    use super::super::roles::SCHEMA_V4;
    use super::super::SqliteStore;
    use crate::registry::store::Store;
    use rusqlite::Connection;

    #[test]
    fn a_version_5_database_loses_its_registry_made_room_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("registry.db").to_str().unwrap().to_string();
        let conn = Connection::open(&p).unwrap();
        conn.execute_batch(&format!(
            "{SCHEMA} {SCHEMA_V4} PRAGMA application_id={APPLICATION_ID}; PRAGMA user_version=5;"
        ))
        .unwrap();
        let old = "ab".repeat(32);
        conn.execute(
            "INSERT INTO rooms (name, key, created_ms, epoch) VALUES ('lab', ?1, 1, 3), \
             ('den', ?1, 1, 1)",
            [&old],
        )
        .unwrap();
        drop(conn);
        let store = SqliteStore::open(&p).unwrap();
        for (room, epoch) in [("lab", 4), ("den", 2)] {
            let r = store.find_room(room).unwrap().unwrap();
            assert_eq!((r.key.as_str(), r.epoch), ("", epoch), "{room}");
        }
        drop(store);
        // Once: opening the upgraded file again changes nothing.
        let store = SqliteStore::open(&p).unwrap();
        assert_eq!(store.find_room("lab").unwrap().unwrap().epoch, 4);
        drop(store);
        let version: i32 = Connection::open(&p)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 6);
    }
}
