//! Push sessions: a publish's start and end (with their events), and the open sessions no
//! live stream lease covers.

use crate::backend::Conn;
use crate::error::{Result, db_err};
use crate::model::{NewEvent, NewPush};
use crate::sql::outbox::insert_events_in;

// Column lists as macros so they can be spliced into `&'static str` SQL with
// `concat!` (sqlx only accepts static strings without `AssertSqlSafe`).
macro_rules! push_cols {
    () => {
        "sequence, app, appname, stream_id, stream_param, client_ip, node, started_at_ms, \
         ended_at_ms, errcode, errmsg, width, height"
    };
}
pub(crate) use push_cols;

/// Run by every node every `lease_s / 3`: served by the partial index `idx_push_sessions_open`
/// (checked in internal_tests), so it reads the open sessions only.
pub(crate) const ORPHANED_PUSHES_SQL: &str = concat!(
    "SELECT ",
    push_cols!(),
    " FROM push_sessions WHERE ended_at_ms IS NULL AND NOT EXISTS (\
     SELECT 1 FROM stream_leases AS l \
     WHERE l.stream_key = push_sessions.appname || '/' || push_sessions.stream_id \
     AND l.expires_at_ms > $1 AND l.node <> $2) \
     ORDER BY started_at_ms"
);

pub(crate) async fn begin_push_in(
    conn: &mut Conn<'_>,
    push: &NewPush,
    event: Option<&NewEvent>,
) -> Result<u64> {
    const OP: &str = "begin_push";
    let done = on_conn!(conn, |c| sqlx::query(concat!(
        "INSERT INTO push_sessions (",
        push_cols!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL, $9, $10)"
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
    .execute(c)
    .await
    .map(|d| d.rows_affected()))
    .map_err(db_err(OP, format_args!("sequence={}", push.sequence)))?;
    insert_events_in(conn, OP, event).await?;
    Ok(done)
}

pub(crate) async fn end_push_in(
    conn: &mut Conn<'_>,
    sequence: &str,
    ended_at_ms: i64,
    errcode: i32,
    errmsg: &str,
    first: &[NewEvent],
    events: &[NewEvent],
) -> Result<u64> {
    const OP: &str = "end_push";
    insert_events_in(conn, OP, first).await?;
    let updated = on_conn!(conn, |c| sqlx::query(
        "UPDATE push_sessions SET ended_at_ms = $1, errcode = $2, errmsg = $3 \
         WHERE sequence = $4 AND ended_at_ms IS NULL",
    )
    .bind(ended_at_ms)
    .bind(errcode)
    .bind(errmsg)
    .bind(sequence)
    .execute(c)
    .await
    .map(|d| d.rows_affected()))
    .map_err(db_err(OP, format_args!("sequence={sequence}")))?;
    // Only the first end counts: when several nodes end a dead node's push, one event 0. A
    // session row that is gone (pruned) still gets its events: the receiver wants the end.
    let already_ended = updated == 0
        && on_conn!(conn, |c| sqlx::query_scalar::<_, i64>(
            "SELECT CAST(1 AS BIGINT) FROM push_sessions WHERE sequence = $1"
        )
        .bind(sequence)
        .fetch_optional(c)
        .await)
        .map_err(db_err(OP, format_args!("sequence={sequence}")))?
        .is_some();
    if !already_ended {
        insert_events_in(conn, OP, events).await?;
    }
    Ok(updated)
}
