//! Recording rows: their columns (shared with `uploads`, which holds the same row until the
//! file is in the bucket), the insert with its events, and the expiry scan.

use crate::backend::Conn;
use crate::error::{Result, db_err, to_i64};
use crate::model::{NewEvent, Recording};
use crate::sql::outbox::insert_events_in;

macro_rules! recording_cols {
    () => {
        "file_id, sequence, app, appname, stream_id, format, start_ms, end_ms, duration_ms, \
         size_bytes, path, video_url, stream_param, video_codec, width, height, media_start_ms, \
         created_at_ms, expires_at_ms"
    };
}
pub(crate) use recording_cols;

/// Binds a [`Recording`]'s fields in `recording_cols!` order (`$1..$19`), for `recordings`
/// and for `uploads`, which holds the same row until the file is in the bucket.
macro_rules! bind_recording {
    ($q:expr, $rec:expr, $size_bytes:expr) => {
        $q.bind(&$rec.file_id)
            .bind(&$rec.sequence)
            .bind(&$rec.app)
            .bind(&$rec.appname)
            .bind(&$rec.stream_id)
            .bind(&$rec.format)
            .bind($rec.start_ms)
            .bind($rec.end_ms)
            .bind($rec.duration_ms)
            .bind($size_bytes)
            .bind(&$rec.path)
            .bind(&$rec.video_url)
            .bind(&$rec.stream_param)
            .bind(&$rec.video_codec)
            .bind(i64::from($rec.width))
            .bind(i64::from($rec.height))
            .bind($rec.media_start_ms)
            .bind($rec.created_at_ms)
            .bind($rec.expires_at_ms)
    };
}
pub(crate) use bind_recording;

/// Served by the partial index `idx_recordings_expires` (checked in internal_tests).
pub(crate) const EXPIRED_SQL: &str = concat!(
    "SELECT ",
    recording_cols!(),
    " FROM recordings WHERE expires_at_ms <= $1 ORDER BY expires_at_ms, file_id LIMIT $2"
);

pub(crate) async fn insert_recording_in(
    conn: &mut Conn<'_>,
    rec: &Recording,
    events: &[NewEvent],
) -> Result<u64> {
    const OP: &str = "insert_recording";
    let size_bytes = to_i64(OP, "size_bytes", rec.size_bytes)?;
    let done = on_conn!(conn, |c| bind_recording!(
        sqlx::query(concat!(
            "INSERT INTO recordings (",
            recording_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19)"
        )),
        rec,
        size_bytes
    )
    .execute(c)
    .await
    .map(|d| d.rows_affected()))
    .map_err(db_err(OP, format_args!("file_id={}", rec.file_id)))?;
    insert_events_in(conn, OP, events).await?;
    Ok(done)
}
