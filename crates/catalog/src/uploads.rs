//! Uploads to object storage (`[storage] kind = "s3"`): a finished local file waits in
//! `uploads` (the whole recordings row it will become, plus its retry schedule) while its
//! events wait in `held_events`. Success is one transaction ([`Catalog::upload_done`]):
//! recordings row in, events released into the outbox, upload row out. Deleting an uploaded
//! recording queues its object in `object_garbage` in the deleting transaction.
//!
//! One SQL text per statement for both engines (`$n` placeholders).

use crate::backend::Begin;
use crate::catalog::{Catalog, MAX_LIST_LIMIT};
use crate::error::{Result, db_err, to_i64};
use crate::model::{NewEvent, Recording};
use crate::sql::recordings::{bind_recording, recording_cols};

/// A file waiting for (another) upload attempt.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingUpload {
    /// The recordings row it becomes once uploaded.
    #[sqlx(flatten)]
    pub recording: Recording,
    /// Where it goes in the bucket (for HLS, the prefix of its playlist and segments).
    pub object_key: String,
    pub node: String,
    #[sqlx(try_from = "i64")]
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
}

impl Catalog {
    /// Queues a finished (fsynced) local file for upload, with the events its recordings row
    /// would have carried (event 100), held until [`Catalog::upload_done`]. One transaction.
    pub async fn insert_upload(
        &self,
        rec: &Recording,
        object_key: &str,
        node: &str,
        events: Vec<NewEvent>,
        now_ms: i64,
    ) -> Result<()> {
        const OP: &str = "insert_upload";
        let key = || format!("file_id={}", rec.file_id);
        let size_bytes = to_i64(OP, "size_bytes", rec.size_bytes)?;
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin_write().await.map_err(db_err(OP, key()))?;
            bind_recording!(
                sqlx::query(concat!(
                    "INSERT INTO uploads (",
                    recording_cols!(),
                    ", object_key, node, attempts, next_attempt_at_ms, last_error) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
             $19, $20, $21, 0, $22, NULL)"
                )),
                rec,
                size_bytes
            )
            .bind(object_key)
            .bind(node)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db_err(OP, key()))?;
            for ev in events {
                let retry = to_i64(OP, "retry_interval_ms", ev.retry_interval_ms)?;
                sqlx::query(
                    "INSERT INTO held_events (file_id, event_id, event_type, url, body, sign_key, \
                 stream_id, max_attempts, retry_interval_ms, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&rec.file_id)
                .bind(&ev.event_id)
                .bind(ev.event_type)
                .bind(&ev.url)
                .bind(&ev.body)
                .bind(&ev.sign_key)
                .bind(&ev.stream_id)
                .bind(i64::from(ev.max_attempts))
                .bind(retry)
                .bind(ev.created_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(db_err(OP, key()))?;
            }
            tx.commit().await.map_err(db_err(OP, key()))
        })
    }

    /// `node`'s uploads (the file is on its disk; no other node can send it) whose next
    /// attempt is due at or before `now_ms`, earliest first, at most `limit` (clamped to
    /// [`MAX_LIST_LIMIT`]).
    pub async fn due_uploads(
        &self,
        node: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<PendingUpload>> {
        on_pool!(&self.db, |pool| sqlx::query_as(concat!(
            "SELECT ",
            recording_cols!(),
            ", object_key, node, attempts, next_attempt_at_ms, last_error FROM uploads \
             WHERE next_attempt_at_ms <= $1 AND node = $3 \
             ORDER BY next_attempt_at_ms, file_id LIMIT $2"
        ))
        .bind(now_ms)
        .bind(i64::from(limit.min(MAX_LIST_LIMIT)))
        .bind(node)
        .fetch_all(pool)
        .await)
        .map_err(db_err("due_uploads", format_args!("node={node}")))
    }

    /// The earliest `next_attempt_at_ms` of `node`'s pending uploads (`None`: nothing to upload).
    pub async fn next_upload_at(&self, node: &str) -> Result<Option<i64>> {
        on_pool!(&self.db, |pool| sqlx::query_scalar(
            "SELECT MIN(next_attempt_at_ms) FROM uploads WHERE node = $1"
        )
        .bind(node)
        .fetch_one(pool)
        .await)
        .map_err(db_err("next_upload_at", ""))
    }

    /// Pending uploads (`/metrics`).
    pub async fn pending_uploads_count(&self) -> Result<u64> {
        self.scalar_u64("pending_uploads_count", "SELECT COUNT(*) FROM uploads")
            .await
    }

    /// Whether `file_id` waits for its upload (its local file must be kept).
    pub async fn upload_pending(&self, file_id: &str) -> Result<bool> {
        let n: i64 = on_pool!(&self.db, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM uploads WHERE file_id = $1"
        )
        .bind(file_id)
        .fetch_one(pool)
        .await)
        .map_err(db_err("upload_pending", format_args!("file_id={file_id}")))?;
        Ok(n > 0)
    }

    /// The object is in the bucket: in one transaction the recordings row is inserted (with
    /// `storage = 's3'` and its object key), the held events move into the outbox (due at
    /// `now_ms`), the upload row goes, and, when the local copy is not kept, its path is
    /// queued in `garbage` under `local_garbage_id` for the uploading node (then removed by
    /// the caller, the same two-phase delete as retention); when it is kept, the recording
    /// names that node as the copy's holder (`local_node`). Returns false if there was no such upload (done
    /// already).
    pub async fn upload_done(
        &self,
        file_id: &str,
        local_garbage_id: Option<&str>,
        now_ms: i64,
    ) -> Result<bool> {
        const OP: &str = "upload_done";
        let key = || format!("file_id={file_id}");
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin_write().await.map_err(db_err(OP, key()))?;
            let inserted = sqlx::query(concat!(
                "INSERT INTO recordings (",
                recording_cols!(),
                ", storage, object_key, local_node) SELECT ",
                recording_cols!(),
                // Kept locally (no local garbage): the uploading node holds the copy.
                ", 's3', object_key, CASE WHEN $2 THEN node END FROM uploads WHERE file_id = $1"
            ))
            .bind(file_id)
            .bind(local_garbage_id.is_none())
            .execute(&mut *tx)
            .await
            .map_err(db_err(OP, key()))?
            .rows_affected();
            if inserted == 0 {
                return Ok(false);
            }
            sqlx::query(
            "INSERT INTO outbox (event_id, event_type, url, body, sign_key, stream_id, attempts, \
             max_attempts, retry_interval_ms, next_attempt_at_ms, created_at_ms, state) \
             SELECT event_id, event_type, url, body, sign_key, stream_id, 0, max_attempts, \
             retry_interval_ms, $2, created_at_ms, 'pending' FROM held_events \
             WHERE file_id = $1 ORDER BY id",
        )
        .bind(file_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_err(OP, key()))?;
            sqlx::query("DELETE FROM held_events WHERE file_id = $1")
                .bind(file_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err(OP, key()))?;
            // Before the upload row goes: the local copy's node is read from it.
            if let Some(gid) = local_garbage_id {
                sqlx::query(
                    "INSERT INTO garbage (file_id, path, created_at_ms, node) \
                 SELECT $1, r.path, $3, u.node FROM recordings r, uploads u \
                 WHERE r.file_id = $2 AND u.file_id = $2",
                )
                .bind(gid)
                .bind(file_id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(db_err(OP, key()))?;
            }
            sqlx::query("DELETE FROM uploads WHERE file_id = $1")
                .bind(file_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err(OP, key()))?;
            tx.commit().await.map_err(db_err(OP, key()))?;
            Ok(true)
        })
    }

    /// A failed attempt: `attempts + 1`, the next one at `next_attempt_at_ms`, `error` kept.
    pub async fn upload_failed(
        &self,
        file_id: &str,
        next_attempt_at_ms: i64,
        error: &str,
    ) -> Result<bool> {
        let done = on_pool!(&self.db, |pool| sqlx::query(
            "UPDATE uploads SET attempts = attempts + 1, next_attempt_at_ms = $2, \
             last_error = $3 WHERE file_id = $1",
        )
        .bind(file_id)
        .bind(next_attempt_at_ms)
        .bind(error)
        .execute(pool)
        .await
        .map(|d| d.rows_affected()))
        .map_err(db_err("upload_failed", format_args!("file_id={file_id}")))?;
        Ok(done > 0)
    }

    /// Where a catalogued recording lives: `Some(object_key)` when it is in the bucket.
    pub async fn object_key(&self, file_id: &str) -> Result<Option<String>> {
        let key: Option<Option<String>> = on_pool!(&self.db, |pool| sqlx::query_scalar(
            "SELECT object_key FROM recordings WHERE file_id = $1"
        )
        .bind(file_id)
        .fetch_optional(pool)
        .await)
        .map_err(db_err("object_key", format_args!("file_id={file_id}")))?;
        Ok(key.flatten())
    }

    /// Objects of deleted recordings still in the bucket, as `(file_id, object_key)`,
    /// oldest first, at most `limit` (clamped to [`MAX_LIST_LIMIT`]).
    pub async fn object_garbage(&self, limit: u32) -> Result<Vec<(String, String)>> {
        on_pool!(&self.db, |pool| sqlx::query_as(
            "SELECT file_id, object_key FROM object_garbage \
             ORDER BY created_at_ms, file_id LIMIT $1",
        )
        .bind(i64::from(limit.min(MAX_LIST_LIMIT)))
        .fetch_all(pool)
        .await)
        .map_err(db_err("object_garbage", ""))
    }

    /// Drops an `object_garbage` row once its object(s) are gone.
    pub async fn forget_object_garbage(&self, file_id: &str) -> Result<bool> {
        let done = on_pool!(&self.db, |pool| sqlx::query(
            "DELETE FROM object_garbage WHERE file_id = $1"
        )
        .bind(file_id)
        .execute(pool)
        .await
        .map(|d| d.rows_affected()))
        .map_err(db_err(
            "forget_object_garbage",
            format_args!("file_id={file_id}"),
        ))?;
        Ok(done > 0)
    }
}
