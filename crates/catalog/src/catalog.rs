use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Database, Encode, QueryBuilder, Type};

use crate::backend::{Begin, Conn, Db, PG_CONNECT_TIMEOUT, PG_POOL_SIZE, redact_url};
use crate::error::{CatalogError, Result, db_err, to_i64};
use crate::model::{
    NewEvent, NewPush, OutboxEvent, OutboxState, PushSession, Recording, RecordingQuery, SortOrder,
};
use crate::sql::outbox::{
    DUE_EVENTS_SQL, NEXT_DUE_SQL, OUTBOX_DUE_SQL, OUTBOX_PENDING_STATS_SQL, outbox_cols,
};
use crate::sql::recordings::{EXPIRED_SQL, recording_cols};
use crate::sql::sessions::push_cols;
use crate::sql::uploads::queue_object_garbage_in;
use crate::writer::{Applied, Write, Writer};

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

/// Handle to the catalogue database. Cheap to clone (shares the pool).
#[derive(Debug, Clone)]
pub struct Catalog {
    pub(crate) db: Db,
    /// The hot writes, group-committed (see `writer`).
    pub(crate) writer: Writer,
}

/// Binds a `u32` limit clamped to [`MAX_LIST_LIMIT`].
fn page_limit(limit: u32) -> i64 {
    i64::from(limit.min(MAX_LIST_LIMIT))
}

impl Catalog {
    /// Opens the catalogue named by `url`: `sqlite://PATH` (created if missing, as
    /// [`Catalog::open`]), `sqlite::memory:`, or `postgres://USER:PASSWORD@HOST:PORT/DB`
    /// (the database must exist). Pending migrations are applied either way; on PostgreSQL
    /// sqlx serialises concurrent migrators with an advisory lock, so several nodes may start
    /// at once.
    pub async fn connect(url: &str) -> Result<Catalog> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Self::connect_postgres(url).await;
        }
        if url == "sqlite::memory:" {
            return Self::open_in_memory().await;
        }
        let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        else {
            return Err(CatalogError::BadUrl {
                url: redact_url(url),
                reason: "expected sqlite://PATH or postgres://..".into(),
            });
        };
        // Query parameters (e.g. `?mode=..`) are not ours to honour: the durability settings
        // of `open` are the catalogue's invariants.
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() {
            return Err(CatalogError::BadUrl {
                url: url.to_owned(),
                reason: "no file path".into(),
            });
        }
        Self::open(Path::new(path)).await
    }

    async fn connect_postgres(url: &str) -> Result<Catalog> {
        let open_err = |source| CatalogError::Open {
            target: redact_url(url),
            source,
        };
        let options = PgConnectOptions::from_str(url).map_err(open_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(PG_POOL_SIZE)
            .acquire_timeout(PG_CONNECT_TIMEOUT)
            .before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
            .connect_with(options)
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(CatalogError::Migrate)?;
        Ok(Self::with_db(Db::Postgres(pool)))
    }

    /// Opens (creating if needed) the SQLite catalogue at `path` and applies pending
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
            // A connection still inside a transaction when it comes back is broken: a COMMIT
            // that failed on a full disk can leave SQLite rolled back while sqlx still counts
            // the transaction, and every later BEGIN on it would fail ("attempted to call
            // begin_with at non-zero transaction depth"). Such a connection is closed and
            // replaced instead of reused. (A rollback still queued on a healthy one costs
            // one reconnect; it only happens after a failed transaction.)
            .before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
            .connect_with(options)
            .await
            .map_err(|source| CatalogError::Open {
                target: path.display().to_string(),
                source,
            })?;
        // A catalogue file this process may read but not write (wrong owner or mode, a
        // read-only mount) opens fine and fails at the first write, deep in start-up: find
        // out now, naming the file. Writing the header's user_version back is a write.
        let probe = async {
            let v: i64 = sqlx::query_scalar("PRAGMA user_version")
                .fetch_one(&pool)
                .await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PRAGMA user_version = {v}")))
                .execute(&pool)
                .await
        };
        probe.await.map_err(|source| CatalogError::Open {
            target: path.display().to_string(),
            source,
        })?;
        Self::migrate_sqlite(pool).await
    }

    /// A private in-memory SQLite catalogue (for tests). Uses a single connection
    /// that is never recycled, since the database dies with its connection.
    pub async fn open_in_memory() -> Result<Catalog> {
        let open_err = |source| CatalogError::Open {
            target: ":memory:".into(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(open_err)?
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        Self::migrate_sqlite(pool).await
    }

    async fn migrate_sqlite(pool: SqlitePool) -> Result<Catalog> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(CatalogError::Migrate)?;
        Ok(Self::with_db(Db::Sqlite(pool)))
    }

    fn with_db(db: Db) -> Catalog {
        let writer = Writer::spawn(db.clone());
        Catalog { db, writer }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Waits for in-flight queries and closes every connection (checkpointing
    /// the WAL). Not required for durability, only for a tidy shutdown.
    pub async fn close(self) {
        on_pool!(&self.db, |pool| pool.close().await)
    }

    #[cfg(test)]
    pub(crate) fn pool(&self) -> &SqlitePool {
        match &self.db {
            Db::Sqlite(pool) => pool,
            Db::Postgres(_) => panic!("a SQLite catalogue was expected"),
        }
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
    /// Returns whether an open session row matched. The events are enqueued even
    /// when no row exists (e.g. it was pruned): the receiver still wants
    /// to hear that the stream stopped; but not when the session had already
    /// ended (another node ended a dead node's push first): one end, one event 0.
    pub async fn end_push(
        &self,
        sequence: &str,
        ended_at_ms: i64,
        errcode: i32,
        errmsg: &str,
        events: Vec<NewEvent>,
    ) -> Result<bool> {
        self.end_push_after(sequence, ended_at_ms, errcode, errmsg, Vec::new(), events)
            .await
    }

    /// [`Catalog::end_push`], with `first` enqueued before its events in the same
    /// transaction, and always (also when the session had already ended): the push's
    /// last recording status events, one commit instead of two.
    pub async fn end_push_after(
        &self,
        sequence: &str,
        ended_at_ms: i64,
        errcode: i32,
        errmsg: &str,
        first: Vec<NewEvent>,
        events: Vec<NewEvent>,
    ) -> Result<bool> {
        let write = Write::EndPush {
            sequence: sequence.to_owned(),
            ended_at_ms,
            errcode,
            errmsg: errmsg.to_owned(),
            first,
            events,
        };
        Ok(self.writer.submit(write).await? > 0)
    }

    pub async fn get_push(&self, sequence: &str) -> Result<Option<PushSession>> {
        on_pool!(&self.db, |pool| sqlx::query_as(concat!(
            "SELECT ",
            push_cols!(),
            " FROM push_sessions WHERE sequence = $1"
        ))
        .bind(sequence)
        .fetch_optional(pool)
        .await)
        .map_err(db_err("get_push", format_args!("sequence={sequence}")))
    }

    /// Push sessions that never ended: after a crash, the pushes it cut.
    pub async fn open_pushes(&self) -> Result<Vec<PushSession>> {
        on_pool!(&self.db, |pool| sqlx::query_as(concat!(
            "SELECT ",
            push_cols!(),
            " FROM push_sessions WHERE ended_at_ms IS NULL ORDER BY started_at_ms"
        ))
        .fetch_all(pool)
        .await)
        .map_err(db_err("open_pushes", ""))
    }

    /// [`Catalog::open_pushes`] of one node: on a catalogue shared by several nodes, a
    /// restarting node must end only the pushes it was serving, not its peers' live ones.
    pub async fn open_pushes_on(&self, node: &str) -> Result<Vec<PushSession>> {
        on_pool!(&self.db, |pool| sqlx::query_as(concat!(
            "SELECT ",
            push_cols!(),
            " FROM push_sessions WHERE ended_at_ms IS NULL AND node = $1 ORDER BY started_at_ms"
        ))
        .bind(node)
        .fetch_all(pool)
        .await)
        .map_err(db_err("open_pushes_on", format_args!("node={node}")))
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
        on_pool!(&self.db, |pool| sqlx::query_as(concat!(
            "SELECT ",
            recording_cols!(),
            " FROM recordings WHERE file_id = $1"
        ))
        .bind(file_id)
        .fetch_optional(pool)
        .await)
        .map_err(db_err("get_recording", format_args!("file_id={file_id}")))
    }

    /// One page of recordings matching `q`, plus the total number of matches
    /// (ignoring offset/limit). Both are read from one snapshot.
    pub async fn list_recordings(&self, q: &RecordingQuery) -> Result<(u64, Vec<Recording>)> {
        const OP: &str = "list_recordings";
        let offset = to_i64(OP, "offset", q.offset)?;
        let (total, rows): (i64, Vec<Recording>) = on_pool!(&self.db, |pool| {
            // A read transaction so the count and the page agree.
            let mut tx = pool.begin_read().await.map_err(db_err(OP, ""))?;
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
            (total, rows)
        });
        // COUNT(*) is never negative.
        Ok((u64::try_from(total).unwrap_or(0), rows))
    }

    /// Only the total [`Catalog::list_recordings`] reports (its first statement).
    pub async fn count_recordings(&self, q: &RecordingQuery) -> Result<u64> {
        let total: i64 = on_pool!(&self.db, |pool| count_recordings_sql(q, "")
            .build_query_scalar()
            .fetch_one(pool)
            .await)
        .map_err(db_err("count_recordings", ""))?;
        Ok(u64::try_from(total).unwrap_or(0))
    }

    /// Only the page [`Catalog::list_recordings`] returns (its second statement).
    pub async fn page_recordings(&self, q: &RecordingQuery) -> Result<Vec<Recording>> {
        let offset = to_i64("page_recordings", "offset", q.offset)?;
        on_pool!(&self.db, |pool| page_recordings_sql(q, offset, "")
            .build_query_as()
            .fetch_all(pool)
            .await)
        .map_err(db_err("page_recordings", ""))
    }

    /// The query plans of the count and of the page statement behind
    /// [`Catalog::list_recordings`], for tests and the query benchmark: SQLite's
    /// `EXPLAIN QUERY PLAN` details, or PostgreSQL's `EXPLAIN` lines.
    pub async fn explain_list_recordings(
        &self,
        q: &RecordingQuery,
    ) -> Result<(Vec<String>, Vec<String>)> {
        const OP: &str = "explain_list_recordings";
        let offset = to_i64(OP, "offset", q.offset)?;
        match &self.db {
            Db::Sqlite(pool) => {
                let detail = |rows: Vec<sqlx::sqlite::SqliteRow>| -> Vec<String> {
                    rows.iter()
                        .map(|r| sqlx::Row::get::<String, _>(r, "detail"))
                        .collect()
                };
                let count = count_recordings_sql(q, "EXPLAIN QUERY PLAN ")
                    .build()
                    .fetch_all(pool)
                    .await
                    .map_err(db_err(OP, "count"))?;
                let page = page_recordings_sql(q, offset, "EXPLAIN QUERY PLAN ")
                    .build()
                    .fetch_all(pool)
                    .await
                    .map_err(db_err(OP, "page"))?;
                Ok((detail(count), detail(page)))
            }
            Db::Postgres(pool) => {
                let lines = |rows: Vec<sqlx::postgres::PgRow>| -> Vec<String> {
                    rows.iter()
                        .map(|r| sqlx::Row::get::<String, _>(r, 0))
                        .collect()
                };
                let count = count_recordings_sql(q, "EXPLAIN ")
                    .build()
                    .fetch_all(pool)
                    .await
                    .map_err(db_err(OP, "count"))?;
                let page = page_recordings_sql(q, offset, "EXPLAIN ")
                    .build()
                    .fetch_all(pool)
                    .await
                    .map_err(db_err(OP, "page"))?;
                Ok((lines(count), lines(page)))
            }
        }
    }

    /// Removes a recording row outright and returns it. Nothing remembers its
    /// file: a crash before the caller deletes it leaks the file. Only for
    /// rows without a file of ours (tests, tools); the server deletes with
    /// [`Catalog::tombstone_recording`].
    pub async fn delete_recording(&self, file_id: &str) -> Result<Option<Recording>> {
        on_pool!(&self.db, |pool| sqlx::query_as(concat!(
            "DELETE FROM recordings WHERE file_id = $1 RETURNING ",
            recording_cols!()
        ))
        .bind(file_id)
        .fetch_optional(pool)
        .await)
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
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin_write().await.map_err(db_err(OP, key()))?;
            // An uploaded recording's object goes too (`uploads.rs`).
            queue_object_garbage_in(&mut Conn::from(&mut *tx), file_id, now_ms).await?;
            // The file's node, if it is a copy on one node's disk (`local_node`).
            sqlx::query(
                "INSERT INTO garbage (file_id, path, created_at_ms, node) \
                 SELECT file_id, path, $2, local_node FROM recordings WHERE file_id = $1",
            )
            .bind(file_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db_err(OP, key()))?;
            let row: Option<Recording> = sqlx::query_as(concat!(
                "DELETE FROM recordings WHERE file_id = $1 RETURNING ",
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
            tx.commit().await.map_err(db_err(OP, key()))?;
            Ok(Some(row))
        })
    }

    /// Recordings whose `expires_at_ms` is at or before `now_ms`, earliest
    /// expiry first (index order), at most `limit` (clamped to
    /// [`MAX_LIST_LIMIT`]). Rows kept forever (`NULL`) never appear.
    pub async fn expired_recordings(&self, now_ms: i64, limit: u32) -> Result<Vec<Recording>> {
        on_pool!(&self.db, |pool| sqlx::query_as(EXPIRED_SQL)
            .bind(now_ms)
            .bind(page_limit(limit))
            .fetch_all(pool)
            .await)
        .map_err(db_err("expired_recordings", ""))
    }

    /// Sets when a recording may be deleted (`None`: kept forever); retention deletes it at
    /// its first check after that time. `false` if there is no such recording.
    pub async fn set_recording_expiry(
        &self,
        file_id: &str,
        expires_at_ms: Option<i64>,
    ) -> Result<bool> {
        on_pool!(&self.db, |pool| sqlx::query(
            "UPDATE recordings SET expires_at_ms = $1 WHERE file_id = $2"
        )
        .bind(expires_at_ms)
        .bind(file_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() > 0))
        .map_err(db_err(
            "set_recording_expiry",
            format_args!("file_id={file_id}"),
        ))
    }

    /// The oldest recordings by start time (ties by `file_id`), at most
    /// `limit` (clamped to [`MAX_LIST_LIMIT`]).
    pub async fn oldest_recordings(&self, limit: u32) -> Result<Vec<Recording>> {
        on_pool!(&self.db, |pool| sqlx::query_as(concat!(
            "SELECT ",
            recording_cols!(),
            " FROM recordings ORDER BY start_ms, file_id LIMIT $1"
        ))
        .bind(page_limit(limit))
        .fetch_all(pool)
        .await)
        .map_err(db_err("oldest_recordings", ""))
    }

    /// Total size of every catalogued recording, in bytes.
    ///
    /// A plain `SUM` (one table scan): retention asks once per check, every
    /// few minutes, and a few hundred thousand rows sum in milliseconds, so a
    /// maintained counter (and its triggers) is not worth it yet.
    pub async fn total_recording_bytes(&self) -> Result<u64> {
        // PostgreSQL sums BIGINT as NUMERIC.
        self.scalar_u64(
            "total_recording_bytes",
            "SELECT CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM recordings",
        )
        .await
    }

    /// A parameterless query of one non-negative BIGINT (a count or a sum of sizes).
    pub(crate) async fn scalar_u64(&self, op: &'static str, sql: &'static str) -> Result<u64> {
        let n: i64 = on_pool!(&self.db, |pool| sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await)
        .map_err(db_err(op, ""))?;
        // Counts and sums of stored u64 sizes (which fit i64) are never negative.
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Files queued for removal by [`Catalog::tombstone_recording`] and not
    /// yet forgotten that are `node`'s to remove (its own, and those of no
    /// particular node), as `(file_id, path)`, oldest first.
    pub async fn garbage(&self, node: &str) -> Result<Vec<(String, String)>> {
        on_pool!(&self.db, |pool| sqlx::query_as(
            "SELECT file_id, path FROM garbage WHERE node IS NULL OR node = $1 \
             ORDER BY created_at_ms, file_id"
        )
        .bind(node)
        .fetch_all(pool)
        .await)
        .map_err(db_err("garbage", ""))
    }

    /// The path of garbage row `file_id` if it is `node`'s to remove (see
    /// [`Catalog::garbage`]).
    pub async fn garbage_of(&self, file_id: &str, node: &str) -> Result<Option<String>> {
        on_pool!(&self.db, |pool| sqlx::query_scalar(
            "SELECT path FROM garbage WHERE file_id = $1 AND (node IS NULL OR node = $2)"
        )
        .bind(file_id)
        .bind(node)
        .fetch_optional(pool)
        .await)
        .map_err(db_err("garbage_of", format_args!("file_id={file_id}")))
    }

    /// Which of `event_ids` are in the outbox already (for a write redone after a crash,
    /// which must not enqueue an event twice).
    pub async fn known_event_ids(&self, event_ids: &[String]) -> Result<Vec<String>> {
        let mut known = Vec::new();
        for id in event_ids {
            let hit: Option<String> = on_pool!(&self.db, |pool| sqlx::query_scalar(
                "SELECT event_id FROM outbox WHERE event_id = $1"
            )
            .bind(id)
            .fetch_optional(pool)
            .await)
            .map_err(db_err("known_event_ids", format_args!("event_id={id}")))?;
            known.extend(hit);
        }
        Ok(known)
    }

    /// Drops a garbage row once its file is gone. Returns whether it existed.
    pub async fn forget_garbage(&self, file_id: &str) -> Result<bool> {
        let done = on_pool!(&self.db, |pool| sqlx::query(
            "DELETE FROM garbage WHERE file_id = $1"
        )
        .bind(file_id)
        .execute(pool)
        .await
        .map(|d| d.rows_affected()))
        .map_err(db_err("forget_garbage", format_args!("file_id={file_id}")))?;
        Ok(done > 0)
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
    /// stream: its oldest pending one. Claims are ignored: a single node
    /// reads with this; nodes sharing a catalogue use [`Catalog::claim_due_events`].
    pub async fn due_events(&self, now_ms: i64, limit: u32) -> Result<Vec<OutboxEvent>> {
        on_pool!(&self.db, |pool| sqlx::query_as(DUE_EVENTS_SQL)
            .bind(now_ms)
            .bind(page_limit(limit))
            .fetch_all(pool)
            .await)
        .map_err(db_err("due_events", ""))
    }

    /// What [`Catalog::due_events`] returns, minus rows under another claim that has not
    /// expired at `now_ms`, now claimed by `node` until `now_ms + lease_ms` (in one statement:
    /// of nodes claiming at once, each row goes to exactly one). Id order, at most `limit`.
    ///
    /// Per-stream order holds across nodes: a claimed row is still pending, so it holds back
    /// the later rows of its stream until it is marked. A node that dies with claims leaves
    /// them to expire; then any node claims them again (delivery stays at-least-once).
    /// [`Catalog::mark_delivered`] and [`Catalog::mark_failed`] clear the claim.
    pub async fn claim_due_events(
        &self,
        node: &str,
        now_ms: i64,
        lease_ms: u64,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>> {
        const OP: &str = "claim_due_events";
        let write = Write::ClaimDue {
            node: node.to_owned(),
            now_ms,
            until_ms: now_ms.saturating_add(to_i64(OP, "lease_ms", lease_ms)?),
            limit: page_limit(limit),
        };
        match self.writer.submit_any(write).await? {
            Applied::Events(events) => Ok(events),
            other => unreachable!("{OP} returned {other:?}"),
        }
    }

    /// The earliest time a pending event not held back by an earlier pending event of its
    /// stream (one [`Catalog::due_events`] can return) may be sent, so the notifier can sleep
    /// until then; `None` when nothing is pending. For an event under a claim (being sent by
    /// some node) that is the later of its attempt time and the claim's expiry, so a node
    /// wakes up to take over the events of a node that died mid-delivery. A held-back row's
    /// own time is ignored: it may be long past, and the notifier would then poll for a row
    /// it cannot send instead of sleeping until the row holding it back is due.
    pub async fn next_due_at(&self) -> Result<Option<i64>> {
        on_pool!(&self.db, |pool| sqlx::query_scalar(NEXT_DUE_SQL)
            .fetch_one(pool)
            .await)
        .map_err(db_err("next_due_at", ""))
    }

    /// Marks a pending event delivered (and clears its claim). Returns false if the event
    /// does not exist or is no longer pending. Any node may mark, claimant or not: a late
    /// acknowledgement of an event another node took over is still an acknowledgement.
    pub async fn mark_delivered(&self, id: i64, now_ms: i64) -> Result<bool> {
        Ok(self
            .writer
            .submit(Write::MarkDelivered { id, now_ms })
            .await?
            > 0)
    }

    /// Records a failed attempt and clears the event's claim. `attempts_done` is the total
    /// number of attempts made so far. `Some(t)` schedules a retry at `t`; `None` gives
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
        on_pool!(&self.db, |pool| sqlx::query_as(concat!(
            "SELECT ",
            outbox_cols!(),
            " FROM outbox WHERE ($1 IS NULL OR state = $1) ORDER BY id DESC LIMIT $2"
        ))
        .bind(state.map(OutboxState::as_str))
        .bind(page_limit(limit))
        .fetch_all(pool)
        .await)
        .map_err(db_err("list_outbox", ""))
    }

    /// Number of pending (not yet delivered, not dead) events.
    pub async fn outbox_depth(&self) -> Result<u64> {
        self.scalar_u64(
            "outbox_depth",
            "SELECT COUNT(*) FROM outbox WHERE state = 'pending'",
        )
        .await
    }

    /// Pending events and the creation time of the oldest (`None` when
    /// nothing is pending), for monitoring. One pass over the pending rows
    /// through `idx_outbox_state_due`; delivered and dead rows are not read.
    pub async fn outbox_pending_stats(&self) -> Result<(u64, Option<i64>)> {
        let (n, oldest): (i64, Option<i64>) =
            on_pool!(&self.db, |pool| sqlx::query_as(OUTBOX_PENDING_STATS_SQL)
                .fetch_one(pool)
                .await)
            .map_err(db_err("outbox_pending_stats", ""))?;
        Ok((u64::try_from(n).unwrap_or(0), oldest))
    }

    /// Pending events due at `now_ms` (being sent, or waiting for their
    /// first attempt) and not held back by an earlier pending event of their
    /// stream: what [`Catalog::due_events`] would return, without the limit.
    /// A row behind an in-flight one is counted once that one is delivered.
    pub async fn outbox_due(&self, now_ms: i64) -> Result<u64> {
        let n: i64 = on_pool!(&self.db, |pool| sqlx::query_scalar(OUTBOX_DUE_SQL)
            .bind(now_ms)
            .fetch_one(pool)
            .await)
        .map_err(db_err("outbox_due", ""))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Deletes delivered and dead events created before `before_ms`; pending
    /// ones are never purged. Returns how many rows went.
    pub async fn purge_outbox(&self, before_ms: i64) -> Result<u64> {
        on_pool!(&self.db, |pool| sqlx::query(
            "DELETE FROM outbox WHERE state IN ('delivered', 'dead') AND created_at_ms < $1",
        )
        .bind(before_ms)
        .execute(pool)
        .await
        .map(|d| d.rows_affected()))
        .map_err(db_err("purge_outbox", ""))
    }

    // ---- stream leases -------------------------------------------------

    /// Takes (or renews) the cluster-wide lease on `stream_key` for `node` until
    /// `now_ms + ttl_ms`. `None`: `node` holds it now (it was free, expired, or already
    /// `node`'s). `Some(holder)`: another node holds an unexpired lease; nothing changed.
    /// One upsert, so of two nodes racing for a free key exactly one wins.
    pub async fn acquire_stream_lease(
        &self,
        stream_key: &str,
        node: &str,
        now_ms: i64,
        ttl_ms: u64,
    ) -> Result<Option<String>> {
        const OP: &str = "acquire_stream_lease";
        let write = Write::AcquireLease {
            stream_key: stream_key.to_owned(),
            node: node.to_owned(),
            now_ms,
            until_ms: now_ms.saturating_add(to_i64(OP, "ttl_ms", ttl_ms)?),
        };
        match self.writer.submit_any(write).await? {
            Applied::Lease(held) => Ok(held),
            other => unreachable!("{OP} returned {other:?}"),
        }
    }

    /// Extends every lease `node` holds to `now_ms + ttl_ms`; returns how many. A lease that
    /// expired and was taken by another node is no longer `node`'s and stays taken.
    pub async fn renew_stream_leases(&self, node: &str, now_ms: i64, ttl_ms: u64) -> Result<u64> {
        const OP: &str = "renew_stream_leases";
        let until_ms = now_ms.saturating_add(to_i64(OP, "ttl_ms", ttl_ms)?);
        let node = node.to_owned();
        self.writer
            .submit(Write::RenewLeases { node, until_ms })
            .await
    }

    /// Drops `node`'s lease on `stream_key`. False if `node` did not hold it (never did, or
    /// another node took it over after it expired).
    pub async fn release_stream_lease(&self, stream_key: &str, node: &str) -> Result<bool> {
        let write = Write::ReleaseLease {
            stream_key: stream_key.to_owned(),
            node: node.to_owned(),
        };
        let gone = self.writer.submit(write).await?;
        Ok(gone > 0)
    }
}

/// Appends ` WHERE ...` for the query's filters, binding every value (the builder writes
/// each engine's placeholders).
fn push_recording_filters<DB>(qb: &mut QueryBuilder<DB>, q: &RecordingQuery)
where
    DB: Database,
    String: for<'t> Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    let mut sep = " WHERE ";
    let mut text = |qb: &mut QueryBuilder<DB>, col: &str, v: &Option<String>| {
        if let Some(v) = v {
            qb.push(sep).push(col).push(" = ").push_bind(v.clone());
            sep = " AND ";
        }
    };
    text(qb, "stream_id", &q.stream_id);
    text(qb, "appname", &q.appname);
    text(qb, "app", &q.app);
    text(qb, "format", &q.format);
    if !q.stream_ids.is_empty() {
        qb.push(sep).push("stream_id IN (");
        let mut list = qb.separated(", ");
        for s in &q.stream_ids {
            list.push_bind(s.clone());
        }
        list.push_unseparated(")");
        sep = " AND ";
    }
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
pub(crate) fn count_recordings_sql<DB>(q: &RecordingQuery, prefix: &str) -> QueryBuilder<DB>
where
    DB: Database,
    String: for<'t> Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    let mut qb = QueryBuilder::new(prefix);
    if q.stream_id.is_none() && q.stream_ids.is_empty() && q.from_ms.is_none() && q.to_ms.is_none()
    {
        // PostgreSQL sums BIGINT as NUMERIC.
        qb.push("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM recording_counts");
    } else {
        qb.push("SELECT COUNT(*) FROM recordings");
    }
    push_recording_filters(&mut qb, q);
    qb
}

pub(crate) fn page_recordings_sql<DB>(
    q: &RecordingQuery,
    offset: i64,
    prefix: &str,
) -> QueryBuilder<DB>
where
    DB: Database,
    String: for<'t> Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    let mut qb = QueryBuilder::new(prefix);
    qb.push(concat!("SELECT ", recording_cols!(), " FROM recordings"));
    push_recording_filters(&mut qb, q);
    // file_id breaks ties so paging is stable when start times collide.
    qb.push(match q.order {
        SortOrder::Asc => " ORDER BY start_ms ASC, file_id ASC",
        SortOrder::Desc => " ORDER BY start_ms DESC, file_id DESC",
    });
    qb.push(" LIMIT ")
        .push_bind(page_limit(q.limit))
        .push(" OFFSET ")
        .push_bind(offset);
    qb
}
