//! Stream leases: one publishing node per stream key across the cluster.

use crate::backend::Conn;
use crate::error::{Result, db_err};

/// One upsert, so of two nodes racing for a free key exactly one wins.
pub(crate) async fn acquire_lease_in(
    conn: &mut Conn<'_>,
    stream_key: &str,
    node: &str,
    now_ms: i64,
    until_ms: i64,
) -> Result<Option<String>> {
    const OP: &str = "acquire_stream_lease";
    let key = || format!("stream_key={stream_key}");
    let won: Option<String> = on_conn!(conn, |c| sqlx::query_scalar(
        "INSERT INTO stream_leases (stream_key, node, expires_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (stream_key) DO UPDATE \
         SET node = excluded.node, expires_at_ms = excluded.expires_at_ms \
         WHERE stream_leases.expires_at_ms <= $4 OR stream_leases.node = excluded.node \
         RETURNING node"
    )
    .bind(stream_key)
    .bind(node)
    .bind(until_ms)
    .bind(now_ms)
    .fetch_optional(c)
    .await)
    .map_err(db_err(OP, key()))?;
    if won.is_some() {
        return Ok(None);
    }
    let holder: Option<String> = on_conn!(conn, |c| sqlx::query_scalar(
        "SELECT node FROM stream_leases WHERE stream_key = $1"
    )
    .bind(stream_key)
    .fetch_optional(c)
    .await)
    .map_err(db_err(OP, key()))?;
    // Within one transaction the conflicting row is still there; `unwrap_or_default` only
    // guards against a driver surprise.
    Ok(Some(holder.unwrap_or_default()))
}

pub(crate) async fn renew_leases_in(conn: &mut Conn<'_>, node: &str, until_ms: i64) -> Result<u64> {
    on_conn!(conn, |c| sqlx::query(
        "UPDATE stream_leases SET expires_at_ms = $2 WHERE node = $1"
    )
    .bind(node)
    .bind(until_ms)
    .execute(c)
    .await
    .map(|d| d.rows_affected()))
    .map_err(db_err("renew_stream_leases", format_args!("node={node}")))
}

pub(crate) async fn release_lease_in(
    conn: &mut Conn<'_>,
    stream_key: &str,
    node: &str,
) -> Result<u64> {
    on_conn!(conn, |c| sqlx::query(
        "DELETE FROM stream_leases WHERE stream_key = $1 AND node = $2"
    )
    .bind(stream_key)
    .bind(node)
    .execute(c)
    .await
    .map(|d| d.rows_affected()))
    .map_err(db_err(
        "release_stream_lease",
        format_args!("stream_key={stream_key}"),
    ))
}
