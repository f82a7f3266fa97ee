use super::*; pub struct SqliteStore; impl SqliteStore { pub fn open(_p: &str) -> StoreResult<SqliteStore> { Err(StoreError::Other("x".into())) } }
