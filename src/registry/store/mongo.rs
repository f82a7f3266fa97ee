//! MongoDB backend (placeholder while it is being written).
use super::*;

pub struct MongoStore;

impl MongoStore {
    pub fn connect(_uri: &str) -> StoreResult<MongoStore> {
        Err(StoreError::Other("MongoDB backend not built yet".into()))
    }
}
