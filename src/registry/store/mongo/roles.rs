//! MongoDB: room policies (collection `room_policies`: `_id` the room name,
//! `doc` the policy's JSON, `v` its version) and announcements (collection
//! `announcements`: `n` the id, compared as a number; the next id comes from the `counters`
//! document `{_id: "announcements", n}`, raised with `$inc`, so registries
//! sharing the database never hand out one id twice).

use super::docs::{get_i64, get_str};
use super::{all, ok, Announcement, MongoStore, StoreError, StoreResult, KEPT_ANNOUNCEMENTS};
use mongodb::bson::{doc, Document};
use mongodb::options::ReturnDocument;

impl MongoStore {
    fn policies(&self) -> mongodb::sync::Collection<Document> {
        self.db.collection("room_policies")
    }

    fn announcement_coll(&self) -> mongodb::sync::Collection<Document> {
        self.db.collection("announcements")
    }

    pub(super) fn policy_of(&self, room: &str) -> StoreResult<Option<(String, u64)>> {
        let Some(d) = ok(self.policies().find_one(doc! {"_id": room}).run())? else {
            return Ok(None);
        };
        Ok(Some((get_str(&d, "doc")?, get_i64(&d, "v")?.max(0) as u64)))
    }

    pub(super) fn policy_put(&self, room: &str, text: &str, expected: u64) -> StoreResult<bool> {
        if expected == 0 {
            let d = doc! {"_id": room, "doc": text, "v": 1_i64};
            return match ok(self.policies().insert_one(d).run()) {
                Ok(_) => Ok(true),
                Err(StoreError::Conflict) => Ok(false),
                Err(e) => Err(e),
            };
        }
        let filter = doc! {"_id": room, "v": expected as i64};
        let set = doc! {"$set": {"doc": text, "v": expected as i64 + 1}};
        Ok(ok(self.policies().update_one(filter, set).run())?.modified_count == 1)
    }

    pub(super) fn policy_delete(&self, room: &str) -> StoreResult<()> {
        ok(self.policies().delete_one(doc! {"_id": room}).run()).map(drop)
    }

    pub(super) fn announcement_add(
        &self,
        by: &str,
        text: &str,
        at_ms: i64,
    ) -> StoreResult<Announcement> {
        let counters = self.db.collection::<Document>("counters");
        let next = ok(counters
            .find_one_and_update(doc! {"_id": "announcements"}, doc! {"$inc": {"n": 1_i64}})
            .upsert(true)
            .return_document(ReturnDocument::After)
            .run())?
        .ok_or_else(|| StoreError::Other("the announcement counter vanished".into()))?;
        let id = get_i64(&next, "n")?.max(1);
        let d = doc! {"n": id, "by": by, "text": text, "at_ms": at_ms};
        ok(self.announcement_coll().insert_one(d).run())?;
        let old = id - KEPT_ANNOUNCEMENTS as i64;
        ok(self
            .announcement_coll()
            .delete_many(doc! {"n": {"$lte": old}})
            .run())?;
        Ok(Announcement {
            id: id as u64,
            by: by.to_string(),
            text: text.to_string(),
            at_ms,
        })
    }

    pub(super) fn announcements_since(
        &self,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<Announcement>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let cursor = ok(self
            .announcement_coll()
            .find(doc! {"n": {"$gt": after}})
            .sort(doc! {"n": 1})
            .limit(limit as i64)
            .run())?;
        let docs: Vec<Document> = ok(cursor.collect())?;
        all(docs, |d| {
            Ok(Announcement {
                id: get_i64(d, "n")?.max(0) as u64,
                by: get_str(d, "by")?,
                text: get_str(d, "text")?,
                at_ms: get_i64(d, "at_ms")?,
            })
        })
    }
}
