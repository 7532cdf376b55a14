//! The webhook outbox: queueing events, the notifier's due/claim queries and its marks.

use crate::backend::Conn;
use crate::error::{Result, db_err, to_i64};
use crate::model::{NewEvent, OutboxEvent, OutboxState};

macro_rules! outbox_cols {
    () => {
        "id, event_id, event_type, url, body, sign_key, stream_id, attempts, max_attempts, \
         retry_interval_ms, next_attempt_at_ms, created_at_ms, delivered_at_ms, last_error, state"
    };
}
pub(crate) use outbox_cols;

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
    " FROM outbox WHERE state = 'pending' AND next_attempt_at_ms <= $1",
    outbox_unblocked!(),
    " ORDER BY id LIMIT $2"
);
/// Pending outbox rows and the oldest one's creation time (`/metrics`).
pub(crate) const OUTBOX_PENDING_STATS_SQL: &str =
    "SELECT COUNT(*), MIN(created_at_ms) FROM outbox WHERE state = 'pending'";
/// Unclaimed rows: walks `idx_outbox_state_due` in time order and stops at the first
/// unblocked row (a plain `MIN` with the extra condition would visit every pending row).
///
/// A claimed row (in flight somewhere) counts at the later of its attempt time and its claim's
/// expiry: a survivor wakes up when a dead node's claim runs out. Claimed rows are few (claims
/// are cleared when marked), found through the partial `idx_outbox_claimed`; only pending rows
/// carry a claim (set on pending rows only, cleared by every change of state).
pub(crate) const NEXT_DUE_SQL: &str = concat!(
    "SELECT MIN(t) FROM (SELECT * FROM (SELECT next_attempt_at_ms AS t FROM outbox \
     WHERE state = 'pending' AND claim_until_ms IS NULL",
    outbox_unblocked!(),
    " ORDER BY next_attempt_at_ms LIMIT 1) AS unclaimed \
     UNION ALL SELECT CASE WHEN claim_until_ms > next_attempt_at_ms THEN claim_until_ms \
     ELSE next_attempt_at_ms END FROM outbox WHERE claim_until_ms IS NOT NULL",
    outbox_unblocked!(),
    ") AS due"
);
/// `$1` node, `$2` now, `$3` claim expiry, `$4` limit. The engine-specific tail locks the
/// chosen rows (PostgreSQL) or is empty (SQLite: the UPDATE holds the database write lock).
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE outbox SET claimed_by = $1, claim_until_ms = $3 WHERE id IN (\
             SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at_ms <= $2 \
             AND (claim_until_ms IS NULL OR claim_until_ms <= $2)",
            outbox_unblocked!(),
            " ORDER BY id LIMIT $4",
            $lock,
            ") RETURNING ",
            outbox_cols!()
        )
    };
}
pub(crate) const CLAIM_SQLITE_SQL: &str = claim_sql!("");
pub(crate) const CLAIM_PG_SQL: &str = claim_sql!(" FOR UPDATE SKIP LOCKED");
pub(crate) const OUTBOX_DUE_SQL: &str = concat!(
    "SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND next_attempt_at_ms <= $1",
    outbox_unblocked!()
);

pub(crate) async fn insert_events_in<'e>(
    conn: &mut Conn<'_>,
    op: &'static str,
    events: impl IntoIterator<Item = &'e NewEvent>,
) -> Result<()> {
    for ev in events {
        let retry = to_i64(op, "retry_interval_ms", ev.retry_interval_ms)?;
        on_conn!(conn, |c| sqlx::query(
            "INSERT INTO outbox (event_id, event_type, url, body, sign_key, stream_id, attempts, \
             max_attempts, retry_interval_ms, next_attempt_at_ms, created_at_ms, state) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $9, 'pending')",
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
        .execute(c)
        .await
        .map(drop))
        .map_err(db_err(op, format_args!("event_id={}", ev.event_id)))?;
    }
    Ok(())
}

pub(crate) async fn claim_due_in(
    conn: &mut Conn<'_>,
    node: &str,
    now_ms: i64,
    until_ms: i64,
    limit: i64,
) -> Result<Vec<OutboxEvent>> {
    let sql = match conn {
        Conn::Sqlite(_) => CLAIM_SQLITE_SQL,
        Conn::Postgres(_) => CLAIM_PG_SQL,
    };
    let mut rows: Vec<OutboxEvent> = on_conn!(conn, |c| sqlx::query_as(sql)
        .bind(node)
        .bind(now_ms)
        .bind(until_ms)
        .bind(limit)
        .fetch_all(c)
        .await)
    .map_err(db_err("claim_due_events", format_args!("node={node}")))?;
    // RETURNING has no order.
    rows.sort_unstable_by_key(|e| e.id);
    Ok(rows)
}

pub(crate) async fn release_claims_in(conn: &mut Conn<'_>, node: &str, ids: &[i64]) -> Result<u64> {
    on_conn!(conn, |c| {
        let mut qb = sqlx::QueryBuilder::new(
            "UPDATE outbox SET claimed_by = NULL, claim_until_ms = NULL WHERE claimed_by = ",
        );
        qb.push_bind(node).push(" AND id IN (");
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        qb.push(")");
        qb.build().execute(c).await.map(|d| d.rows_affected())
    })
    .map_err(db_err("release_claims", format_args!("node={node}")))
}

pub(crate) async fn mark_delivered_in(conn: &mut Conn<'_>, id: i64, now_ms: i64) -> Result<u64> {
    on_conn!(conn, |c| sqlx::query(
        "UPDATE outbox SET state = 'delivered', delivered_at_ms = $1, \
         attempts = attempts + 1, last_error = NULL, claimed_by = NULL, claim_until_ms = NULL \
         WHERE id = $2 AND state = 'pending'",
    )
    .bind(now_ms)
    .bind(id)
    .execute(c)
    .await
    .map(|d| d.rows_affected()))
    .map_err(db_err("mark_delivered", format_args!("id={id}")))
}

pub(crate) async fn mark_failed_in(
    conn: &mut Conn<'_>,
    id: i64,
    attempts_done: u32,
    next_attempt_at_ms: Option<i64>,
    error: &str,
) -> Result<u64> {
    let state = match next_attempt_at_ms {
        Some(_) => OutboxState::Pending,
        None => OutboxState::Dead,
    };
    on_conn!(conn, |c| sqlx::query(
        "UPDATE outbox SET attempts = $1, \
         next_attempt_at_ms = COALESCE($2, next_attempt_at_ms), \
         last_error = $3, state = $4, claimed_by = NULL, claim_until_ms = NULL \
         WHERE id = $5 AND state = 'pending'",
    )
    .bind(i64::from(attempts_done))
    .bind(next_attempt_at_ms)
    .bind(error)
    .bind(state.as_str())
    .bind(id)
    .execute(c)
    .await
    .map(|d| d.rows_affected()))
    .map_err(db_err("mark_failed", format_args!("id={id}")))
}
