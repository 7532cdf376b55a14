use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::error::{CatalogError, Result, db_err, to_i64};
use crate::model::{
    NewEvent, NewPush, OutboxEvent, OutboxState, PushSession, Recording, RecordingQuery, SortOrder,
};
use crate::writer::{Write, Writer};

/// Upper bound on one `list_recordings`/`list_outbox` page, so a careless
/// query parameter cannot make us materialise the whole table.
pub const MAX_LIST_LIMIT: u32 = 1000;
/// How long a connection waits on another writer before failing with BUSY.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite serialises writers anyway; a few connections let readers run
/// alongside the single writer in WAL mode.
const POOL_SIZE: u32 = 4;
/// Reads go through a memory map of (up to) this much of the file instead of a
/// `pread` per page missing from SQLite's 2 MB page cache: at a million files a
/// page of 20 recordings is ~20 scattered table pages, and the syscalls were most
/// of its time. Address space only; the OS page cache holds the data either way.
const MMAP_BYTES: u64 = 1 << 30;
/// Write transactions take the write lock up front: a deferred transaction
/// that reads first can fail with SQLITE_BUSY_SNAPSHOT instead of waiting.
pub(crate) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

// Column lists as macros so they can be spliced into `&'static str` SQL with
// `concat!` (sqlx only accepts static strings without `AssertSqlSafe`).
macro_rules! push_cols {
    () => {
        "sequence, app, appname, stream_id, stream_param, client_ip, node, started_at_ms, \
         ended_at_ms, errcode, errmsg, width, height"
    };
}
macro_rules! recording_cols {
    () => {
        "file_id, sequence, app, appname, stream_id, format, start_ms, end_ms, duration_ms, \
         size_bytes, path, video_url, stream_param, video_codec, width, height, media_start_ms, \
         created_at_ms, expires_at_ms"
    };
}
macro_rules! outbox_cols {
    () => {
        "id, event_id, event_type, url, body, sign_key, stream_id, attempts, max_attempts, \
         retry_interval_ms, next_attempt_at_ms, created_at_ms, delivered_at_ms, last_error, state"
    };
}

/// Strict per-stream delivery order: an outbox row is held back while an earlier (smaller id)
/// row of its stream is still pending, whatever that row's next attempt time, so a receiver
/// back from an outage gets each stream's events in creation order. Delivered and dead rows
/// hold back nothing, and neither do recording-status events (332): a receiver that refuses
/// them (many only handle 1/0/100) must not delay a stream's push and file events. One seek
/// in `idx_outbox_stream_state_id` per candidate row.
macro_rules! outbox_unblocked {
    () => {
        " AND NOT EXISTS (SELECT 1 FROM outbox AS earlier \
         WHERE earlier.stream_id = outbox.stream_id AND earlier.state = 'pending' \
         AND earlier.id < outbox.id AND earlier.event_type <> 332)"
    };
}

/// Plans checked in internal_tests.
pub(crate) const DUE_EVENTS_SQL: &str = concat!(
    "SELECT ",
    outbox_cols!(),
    " FROM outbox WHERE state = 'pending' AND next_attempt_at_ms <= ?",
    outbox_unblocked!(),
    " ORDER BY id LIMIT ?"
);
/// Walks `idx_outbox_state_due` in time order and stops at the first unblocked row (a plain
/// `MIN` with the extra condition would visit every pending row).
/// Pending outbox rows and the oldest one's creation time (`/metrics`).
pub(crate) const OUTBOX_PENDING_STATS_SQL: &str =
    "SELECT COUNT(*), MIN(created_at_ms) FROM outbox WHERE state = 'pending'";
pub(crate) const NEXT_DUE_SQL: &str = concat!(
    "SELECT next_attempt_at_ms FROM outbox WHERE state = 'pending'",
    outbox_unblocked!(),
    " ORDER BY next_attempt_at_ms LIMIT 1"
);
pub(crate) const OUTBOX_DUE_SQL: &str = concat!(
    "SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND next_attempt_at_ms <= ?",
    outbox_unblocked!()
);

/// Served by the partial index `idx_recordings_expires` (checked in internal_tests).
pub(crate) const EXPIRED_SQL: &str = concat!(
    "SELECT ",
    recording_cols!(),
    " FROM recordings WHERE expires_at_ms <= ? ORDER BY expires_at_ms, file_id LIMIT ?"
);

/// Handle to the catalogue database. Cheap to clone (shares the pool).
#[derive(Debug, Clone)]
pub struct Catalog {
    pub(crate) pool: SqlitePool,
    /// The hot writes, group-committed (see `writer`).
    writer: Writer,
}

impl Catalog {
    /// Opens (creating if needed) the catalogue at `path` and applies pending
    /// migrations.
    ///
    /// WAL + `synchronous=FULL`: every commit fsyncs the WAL before it is
    /// acknowledged, so a returned `Ok` survives kill -9 and power loss.
    pub async fn open(path: &Path) -> Result<Catalog> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .pragma("mmap_size", MMAP_BYTES.to_string());
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_with(options)
            .await
            .map_err(|source| CatalogError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Self::migrate(pool).await
    }

    /// A private in-memory catalogue (for tests). Uses a single connection
    /// that is never recycled, since the database dies with its connection.
    pub async fn open_in_memory() -> Result<Catalog> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|source| CatalogError::Open {
                path: ":memory:".into(),
                source,
            })?
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|source| CatalogError::Open {
                path: ":memory:".into(),
                source,
            })?;
        Self::migrate(pool).await
    }

    async fn migrate(pool: SqlitePool) -> Result<Catalog> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(CatalogError::Migrate)?;
        let writer = Writer::spawn(pool.clone());
        Ok(Catalog { pool, writer })
    }

    /// Waits for in-flight queries and closes every connection (checkpointing
    /// the WAL). Not required for durability, only for a tidy shutdown.
    pub async fn close(self) {
        self.pool.close().await;
    }

    #[cfg(test)]
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Transactions the group-commit writer has committed (each holds one or more writes).
    pub fn writer_commits(&self) -> u64 {
        self.writer.commits()
    }

    // ---- push sessions -------------------------------------------------

    /// Records the start of a publish and, in the same transaction, enqueues
    /// its push event (Tencent event 1), if any.
    pub async fn begin_push(&self, push: &NewPush, event: Option<NewEvent>) -> Result<()> {
        let write = Write::BeginPush(Box::new(push.clone()), event);
        self.writer.submit(write).await.map(drop)
    }

    /// Records the end of a publish and, in the same transaction, enqueues
    /// `events` (Tencent event 0).
    ///
    /// Returns whether a session row matched. The events are enqueued even
    /// when it did not (e.g. the row was pruned): the receiver still wants
    /// to hear that the stream stopped.
    pub async fn end_push(
        &self,
        sequence: &str,
        ended_at_ms: i64,
        errcode: i32,
        errmsg: &str,
        events: Vec<NewEvent>,
    ) -> Result<bool> {
        let write = Write::EndPush {
            sequence: sequence.to_owned(),
            ended_at_ms,
            errcode,
            errmsg: errmsg.to_owned(),
            events,
        };
        Ok(self.writer.submit(write).await? > 0)
    }

    pub async fn get_push(&self, sequence: &str) -> Result<Option<PushSession>> {
        sqlx::query_as(concat!(
            "SELECT ",
            push_cols!(),
            " FROM push_sessions WHERE sequence = ?"
        ))
        .bind(sequence)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err("get_push", format_args!("sequence={sequence}")))
    }

    /// Push sessions that never ended: after a crash, the pushes it cut.
    pub async fn open_pushes(&self) -> Result<Vec<PushSession>> {
        sqlx::query_as(concat!(
            "SELECT ",
            push_cols!(),
            " FROM push_sessions WHERE ended_at_ms IS NULL ORDER BY started_at_ms"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("open_pushes", ""))
    }

    // ---- recordings ----------------------------------------------------

    /// Inserts a finished recording and its events (Tencent event 100) in one
    /// transaction: either both are stored or neither is. The caller must
    /// have fsynced the file before calling.
    pub async fn insert_recording(&self, rec: &Recording, events: Vec<NewEvent>) -> Result<()> {
        let write = Write::InsertRecording(Box::new(rec.clone()), events);
        self.writer.submit(write).await.map(drop)
    }

    pub async fn get_recording(&self, file_id: &str) -> Result<Option<Recording>> {
        sqlx::query_as(concat!(
            "SELECT ",
            recording_cols!(),
            " FROM recordings WHERE file_id = ?"
        ))
        .bind(file_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err("get_recording", format_args!("file_id={file_id}")))
    }

    /// One page of recordings matching `q`, plus the total number of matches
    /// (ignoring offset/limit). Both are read from one snapshot.
    pub async fn list_recordings(&self, q: &RecordingQuery) -> Result<(u64, Vec<Recording>)> {
        const OP: &str = "list_recordings";
        let offset = to_i64(OP, "offset", q.offset)?;
        // A read transaction so the count and the page agree.
        let mut tx = self.pool.begin().await.map_err(db_err(OP, ""))?;
        let total: i64 = count_recordings_sql(q, "")
            .build_query_scalar()
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err(OP, ""))?;
        let rows: Vec<Recording> = page_recordings_sql(q, offset, "")
            .build_query_as()
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err(OP, ""))?;
        tx.commit().await.map_err(db_err(OP, ""))?;
        // COUNT(*) is never negative.
        Ok((u64::try_from(total).unwrap_or(0), rows))
    }

    /// Only the total [`Catalog::list_recordings`] reports (its first statement).
    pub async fn count_recordings(&self, q: &RecordingQuery) -> Result<u64> {
        let total: i64 = count_recordings_sql(q, "")
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(db_err("count_recordings", ""))?;
        Ok(u64::try_from(total).unwrap_or(0))
    }

    /// Only the page [`Catalog::list_recordings`] returns (its second statement).
    pub async fn page_recordings(&self, q: &RecordingQuery) -> Result<Vec<Recording>> {
        let offset = to_i64("page_recordings", "offset", q.offset)?;
        page_recordings_sql(q, offset, "")
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("page_recordings", ""))
    }

    /// `EXPLAIN QUERY PLAN` details of the count and of the page statement behind
    /// [`Catalog::list_recordings`], for tests and the query benchmark.
    pub async fn explain_list_recordings(
        &self,
        q: &RecordingQuery,
    ) -> Result<(Vec<String>, Vec<String>)> {
        const OP: &str = "explain_list_recordings";
        let offset = to_i64(OP, "offset", q.offset)?;
        let detail = |rows: Vec<sqlx::sqlite::SqliteRow>| -> Vec<String> {
            rows.iter()
                .map(|r| sqlx::Row::get::<String, _>(r, "detail"))
                .collect()
        };
        let count = count_recordings_sql(q, "EXPLAIN QUERY PLAN ")
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(db_err(OP, "count"))?;
        let page = page_recordings_sql(q, offset, "EXPLAIN QUERY PLAN ")
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(db_err(OP, "page"))?;
        Ok((detail(count), detail(page)))
    }

    /// Removes a recording row outright and returns it. Nothing remembers its
    /// file: a crash before the caller deletes it leaks the file. Only for
    /// rows without a file of ours (tests, tools); the server deletes with
    /// [`Catalog::tombstone_recording`].
    pub async fn delete_recording(&self, file_id: &str) -> Result<Option<Recording>> {
        sqlx::query_as(concat!(
            "DELETE FROM recordings WHERE file_id = ? RETURNING ",
            recording_cols!()
        ))
        .bind(file_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err(
            "delete_recording",
            format_args!("file_id={file_id}"),
        ))
    }

    // ---- retention -----------------------------------------------------

    /// First step of deleting a recording: in one transaction the row is
    /// removed (it is no longer listed or served) and its path is queued in
    /// `garbage`. The caller then removes the file and calls
    /// [`Catalog::forget_garbage`]; after a crash, [`Catalog::garbage`] lists
    /// what is left to remove. Returns the deleted row, `None` if there was
    /// none (so of two concurrent deleters exactly one gets it).
    pub async fn tombstone_recording(
        &self,
        file_id: &str,
        now_ms: i64,
    ) -> Result<Option<Recording>> {
        const OP: &str = "tombstone_recording";
        let key = || format!("file_id={file_id}");
        let mut tx = self
            .pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(db_err(OP, key()))?;
        // An uploaded recording's object goes too (`uploads.rs`).
        crate::uploads::queue_object_garbage_in(&mut tx, file_id, now_ms).await?;
        let row: Option<Recording> = sqlx::query_as(concat!(
            "DELETE FROM recordings WHERE file_id = ? RETURNING ",
            recording_cols!()
        ))
        .bind(file_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err(OP, key()))?;
        let Some(row) = row else {
            // Nothing changed; dropping the transaction rolls it back.
            return Ok(None);
        };
        sqlx::query("INSERT INTO garbage (file_id, path, created_at_ms) VALUES (?, ?, ?)")
            .bind(&row.file_id)
            .bind(&row.path)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db_err(OP, key()))?;
        tx.commit().await.map_err(db_err(OP, key()))?;
        Ok(Some(row))
    }

    /// Recordings whose `expires_at_ms` is at or before `now_ms`, earliest
    /// expiry first (index order), at most `limit` (clamped to
    /// [`MAX_LIST_LIMIT`]). Rows kept forever (`NULL`) never appear.
    pub async fn expired_recordings(&self, now_ms: i64, limit: u32) -> Result<Vec<Recording>> {
        sqlx::query_as(EXPIRED_SQL)
            .bind(now_ms)
            .bind(i64::from(limit.min(MAX_LIST_LIMIT)))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("expired_recordings", ""))
    }

    /// The oldest recordings by start time (ties by `file_id`), at most
    /// `limit` (clamped to [`MAX_LIST_LIMIT`]).
    pub async fn oldest_recordings(&self, limit: u32) -> Result<Vec<Recording>> {
        sqlx::query_as(concat!(
            "SELECT ",
            recording_cols!(),
            " FROM recordings ORDER BY start_ms, file_id LIMIT ?"
        ))
        .bind(i64::from(limit.min(MAX_LIST_LIMIT)))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("oldest_recordings", ""))
    }

    /// Total size of every catalogued recording, in bytes.
    ///
    /// A plain `SUM` (one table scan): retention asks once per check, every
    /// few minutes, and a few hundred thousand rows sum in milliseconds, so a
    /// maintained counter (and its triggers) is not worth it yet.
    pub async fn total_recording_bytes(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(size_bytes), 0) FROM recordings")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err("total_recording_bytes", ""))?;
        // Sizes are stored from u64 values that fit i64; a sum is never negative.
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Files queued for removal by [`Catalog::tombstone_recording`] and not
    /// yet forgotten, as `(file_id, path)`, oldest first.
    pub async fn garbage(&self) -> Result<Vec<(String, String)>> {
        sqlx::query_as("SELECT file_id, path FROM garbage ORDER BY created_at_ms, file_id")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("garbage", ""))
    }

    /// Drops a garbage row once its file is gone. Returns whether it existed.
    pub async fn forget_garbage(&self, file_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM garbage WHERE file_id = ?")
            .bind(file_id)
            .execute(&self.pool)
            .await
            .map_err(db_err("forget_garbage", format_args!("file_id={file_id}")))?;
        Ok(done.rows_affected() > 0)
    }

    // ---- outbox --------------------------------------------------------

    /// Enqueues events on their own (one transaction for all of them).
    pub async fn insert_events(&self, events: Vec<NewEvent>) -> Result<()> {
        self.writer
            .submit(Write::InsertEvents(events))
            .await
            .map(drop)
    }

    /// Pending events whose next attempt is due at or before `now_ms` and
    /// that no earlier pending event of the same stream holds back (strict
    /// per-stream order, see `outbox_unblocked!`), in delivery (id) order, at
    /// most `limit` (clamped to [`MAX_LIST_LIMIT`]). So at most one event per
    /// stream: its oldest pending one.
    pub async fn due_events(&self, now_ms: i64, limit: u32) -> Result<Vec<OutboxEvent>> {
        sqlx::query_as(DUE_EVENTS_SQL)
            .bind(now_ms)
            .bind(i64::from(limit.min(MAX_LIST_LIMIT)))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("due_events", ""))
    }

    /// The earliest `next_attempt_at_ms` among pending events not held back
    /// by an earlier pending event of their stream (those [`Catalog::due_events`]
    /// can return), so the notifier can sleep until then; `None` when nothing
    /// is sendable. A held-back row's own time is ignored: it may be long
    /// past, and the notifier would then poll for a row it cannot send instead
    /// of sleeping until the row holding it back is due.
    pub async fn next_due_at(&self) -> Result<Option<i64>> {
        sqlx::query_scalar(NEXT_DUE_SQL)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("next_due_at", ""))
    }

    /// Marks a pending event delivered. Returns false if the event does not
    /// exist or is no longer pending.
    pub async fn mark_delivered(&self, id: i64, now_ms: i64) -> Result<bool> {
        Ok(self
            .writer
            .submit(Write::MarkDelivered { id, now_ms })
            .await?
            > 0)
    }

    /// Records a failed attempt. `attempts_done` is the total number of
    /// attempts made so far. `Some(t)` schedules a retry at `t`; `None` gives
    /// up and moves the event to `dead`. The retry policy (max_attempts,
    /// interval) is the notifier's: the catalogue stores what it is told.
    /// Returns false if the event does not exist or is no longer pending.
    pub async fn mark_failed(
        &self,
        id: i64,
        attempts_done: u32,
        next_attempt_at_ms: Option<i64>,
        error: &str,
    ) -> Result<bool> {
        let write = Write::MarkFailed {
            id,
            attempts_done,
            next_attempt_at_ms,
            error: error.to_owned(),
        };
        Ok(self.writer.submit(write).await? > 0)
    }

    /// Newest-first listing of the outbox, optionally filtered by state
    /// (for the console). `limit` is clamped to [`MAX_LIST_LIMIT`].
    pub async fn list_outbox(
        &self,
        state: Option<OutboxState>,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>> {
        sqlx::query_as(concat!(
            "SELECT ",
            outbox_cols!(),
            " FROM outbox WHERE (? IS NULL OR state = ?) ORDER BY id DESC LIMIT ?"
        ))
        .bind(state.map(OutboxState::as_str))
        .bind(state.map(OutboxState::as_str))
        .bind(i64::from(limit.min(MAX_LIST_LIMIT)))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("list_outbox", ""))
    }

    /// Number of pending (not yet delivered, not dead) events.
    pub async fn outbox_depth(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err("outbox_depth", ""))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Pending events and the creation time of the oldest (`None` when
    /// nothing is pending), for monitoring. One pass over the pending rows
    /// through `idx_outbox_state_due`; delivered and dead rows are not read.
    pub async fn outbox_pending_stats(&self) -> Result<(u64, Option<i64>)> {
        let (n, oldest): (i64, Option<i64>) = sqlx::query_as(OUTBOX_PENDING_STATS_SQL)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err("outbox_pending_stats", ""))?;
        Ok((u64::try_from(n).unwrap_or(0), oldest))
    }

    /// Pending events due at `now_ms` (being sent, or waiting for their
    /// first attempt) and not held back by an earlier pending event of their
    /// stream: what [`Catalog::due_events`] would return, without the limit.
    /// A row behind an in-flight one is counted once that one is delivered.
    pub async fn outbox_due(&self, now_ms: i64) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(OUTBOX_DUE_SQL)
            .bind(now_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err("outbox_due", ""))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Deletes delivered and dead events created before `before_ms`; pending
    /// ones are never purged. Returns how many rows went.
    pub async fn purge_outbox(&self, before_ms: i64) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM outbox WHERE state IN ('delivered', 'dead') AND created_at_ms < ?",
        )
        .bind(before_ms)
        .execute(&self.pool)
        .await
        .map_err(db_err("purge_outbox", ""))?;
        Ok(done.rows_affected())
    }
}

// ---- the group-committed writes (run by `writer` inside its transaction) ----

pub(crate) async fn begin_push_in(
    conn: &mut SqliteConnection,
    push: &NewPush,
    event: Option<NewEvent>,
) -> Result<u64> {
    const OP: &str = "begin_push";
    let done = sqlx::query(concat!(
        "INSERT INTO push_sessions (",
        push_cols!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?)"
    ))
    .bind(&push.sequence)
    .bind(&push.app)
    .bind(&push.appname)
    .bind(&push.stream_id)
    .bind(&push.stream_param)
    .bind(&push.client_ip)
    .bind(&push.node)
    .bind(push.started_at_ms)
    .bind(i64::from(push.width))
    .bind(i64::from(push.height))
    .execute(&mut *conn)
    .await
    .map_err(db_err(OP, format_args!("sequence={}", push.sequence)))?;
    insert_events_in(conn, OP, event).await?;
    Ok(done.rows_affected())
}

pub(crate) async fn end_push_in(
    conn: &mut SqliteConnection,
    sequence: &str,
    ended_at_ms: i64,
    errcode: i32,
    errmsg: &str,
    events: Vec<NewEvent>,
) -> Result<u64> {
    const OP: &str = "end_push";
    let updated = sqlx::query(
        "UPDATE push_sessions SET ended_at_ms = ?, errcode = ?, errmsg = ? WHERE sequence = ?",
    )
    .bind(ended_at_ms)
    .bind(errcode)
    .bind(errmsg)
    .bind(sequence)
    .execute(&mut *conn)
    .await
    .map_err(db_err(OP, format_args!("sequence={sequence}")))?
    .rows_affected();
    insert_events_in(conn, OP, events).await?;
    Ok(updated)
}

pub(crate) async fn insert_recording_in(
    conn: &mut SqliteConnection,
    rec: &Recording,
    events: Vec<NewEvent>,
) -> Result<u64> {
    const OP: &str = "insert_recording";
    let size_bytes = to_i64(OP, "size_bytes", rec.size_bytes)?;
    let done = sqlx::query(concat!(
        "INSERT INTO recordings (",
        recording_cols!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&rec.file_id)
    .bind(&rec.sequence)
    .bind(&rec.app)
    .bind(&rec.appname)
    .bind(&rec.stream_id)
    .bind(&rec.format)
    .bind(rec.start_ms)
    .bind(rec.end_ms)
    .bind(rec.duration_ms)
    .bind(size_bytes)
    .bind(&rec.path)
    .bind(&rec.video_url)
    .bind(&rec.stream_param)
    .bind(&rec.video_codec)
    .bind(i64::from(rec.width))
    .bind(i64::from(rec.height))
    .bind(rec.media_start_ms)
    .bind(rec.created_at_ms)
    .bind(rec.expires_at_ms)
    .execute(&mut *conn)
    .await
    .map_err(db_err(OP, format_args!("file_id={}", rec.file_id)))?;
    insert_events_in(conn, OP, events).await?;
    Ok(done.rows_affected())
}

pub(crate) async fn mark_delivered_in(
    conn: &mut SqliteConnection,
    id: i64,
    now_ms: i64,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE outbox SET state = 'delivered', delivered_at_ms = ?, \
         attempts = attempts + 1, last_error = NULL \
         WHERE id = ? AND state = 'pending'",
    )
    .bind(now_ms)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(db_err("mark_delivered", format_args!("id={id}")))?;
    Ok(done.rows_affected())
}

pub(crate) async fn mark_failed_in(
    conn: &mut SqliteConnection,
    id: i64,
    attempts_done: u32,
    next_attempt_at_ms: Option<i64>,
    error: &str,
) -> Result<u64> {
    let state = match next_attempt_at_ms {
        Some(_) => OutboxState::Pending,
        None => OutboxState::Dead,
    };
    let done = sqlx::query(
        "UPDATE outbox SET attempts = ?, \
         next_attempt_at_ms = COALESCE(?, next_attempt_at_ms), \
         last_error = ?, state = ? \
         WHERE id = ? AND state = 'pending'",
    )
    .bind(i64::from(attempts_done))
    .bind(next_attempt_at_ms)
    .bind(error)
    .bind(state.as_str())
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(db_err("mark_failed", format_args!("id={id}")))?;
    Ok(done.rows_affected())
}

pub(crate) async fn insert_events_in(
    conn: &mut SqliteConnection,
    op: &'static str,
    events: impl IntoIterator<Item = NewEvent>,
) -> Result<()> {
    for ev in events {
        let retry = to_i64(op, "retry_interval_ms", ev.retry_interval_ms)?;
        sqlx::query(
            "INSERT INTO outbox (event_id, event_type, url, body, sign_key, stream_id, attempts, \
             max_attempts, retry_interval_ms, next_attempt_at_ms, created_at_ms, state) \
             VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, 'pending')",
        )
        .bind(&ev.event_id)
        .bind(ev.event_type)
        .bind(&ev.url)
        .bind(&ev.body)
        .bind(&ev.sign_key)
        .bind(&ev.stream_id)
        .bind(i64::from(ev.max_attempts))
        .bind(retry)
        .bind(ev.created_at_ms)
        .bind(ev.created_at_ms)
        .execute(&mut *conn)
        .await
        .map_err(db_err(op, format_args!("event_id={}", ev.event_id)))?;
    }
    Ok(())
}

/// Appends ` WHERE ...` for the query's filters, binding every value.
fn push_recording_filters(qb: &mut QueryBuilder<Sqlite>, q: &RecordingQuery) {
    let mut sep = " WHERE ";
    let mut text = |qb: &mut QueryBuilder<Sqlite>, col: &str, v: &Option<String>| {
        if let Some(v) = v {
            qb.push(sep).push(col).push(" = ").push_bind(v.clone());
            sep = " AND ";
        }
    };
    text(qb, "stream_id", &q.stream_id);
    text(qb, "appname", &q.appname);
    text(qb, "app", &q.app);
    text(qb, "format", &q.format);
    if let Some(from) = q.from_ms {
        qb.push(sep).push("start_ms >= ").push_bind(from);
        sep = " AND ";
    }
    if let Some(to) = q.to_ms {
        qb.push(sep).push("start_ms < ").push_bind(to);
    }
}

/// `prefix` lets tests prepend `EXPLAIN QUERY PLAN `.
///
/// Without a stream or time filter the total comes from the trigger-kept
/// `recording_counts` (a few rows per domain/app/format): counting a million index
/// entries per page view is what made the unfiltered listing slow. Otherwise the
/// count is an index range over the matches.
pub(crate) fn count_recordings_sql(q: &RecordingQuery, prefix: &str) -> QueryBuilder<Sqlite> {
    let mut qb = QueryBuilder::new(prefix);
    if q.stream_id.is_none() && q.from_ms.is_none() && q.to_ms.is_none() {
        qb.push("SELECT COALESCE(SUM(n), 0) FROM recording_counts");
    } else {
        qb.push("SELECT COUNT(*) FROM recordings");
    }
    push_recording_filters(&mut qb, q);
    qb
}

pub(crate) fn page_recordings_sql(
    q: &RecordingQuery,
    offset: i64,
    prefix: &str,
) -> QueryBuilder<Sqlite> {
    let mut qb = QueryBuilder::new(prefix);
    qb.push(concat!("SELECT ", recording_cols!(), " FROM recordings"));
    push_recording_filters(&mut qb, q);
    // file_id breaks ties so paging is stable when start times collide.
    qb.push(match q.order {
        SortOrder::Asc => " ORDER BY start_ms ASC, file_id ASC",
        SortOrder::Desc => " ORDER BY start_ms DESC, file_id DESC",
    });
    qb.push(" LIMIT ")
        .push_bind(i64::from(q.limit.min(MAX_LIST_LIMIT)))
        .push(" OFFSET ")
        .push_bind(offset);
    qb
}
