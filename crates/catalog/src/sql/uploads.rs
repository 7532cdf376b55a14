//! Uploads to object storage: what a recording's deletion queues for the bucket.

use crate::backend::Conn;
use crate::error::{Result, db_err};

/// Called inside the transaction that deletes a recordings row (before the `DELETE`): an
/// uploaded recording's object is queued for removal from the bucket.
pub(crate) async fn queue_object_garbage_in(
    conn: &mut Conn<'_>,
    file_id: &str,
    now_ms: i64,
) -> Result<()> {
    on_conn!(conn, |c| sqlx::query(
        "INSERT INTO object_garbage (file_id, object_key, created_at_ms) \
         SELECT file_id, object_key, $2 FROM recordings \
         WHERE file_id = $1 AND object_key IS NOT NULL",
    )
    .bind(file_id)
    .bind(now_ms)
    .execute(c)
    .await
    .map(|d| d.rows_affected()))
    .map_err(db_err(
        "queue_object_garbage",
        format_args!("file_id={file_id}"),
    ))?;
    Ok(())
}
