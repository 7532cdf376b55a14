//! Several nodes on one catalogue: which open pushes no node is publishing any more.
//!
//! A push is published under its stream lease (`acquire_stream_lease`): the lease is taken
//! before the push session is written and released after it is ended, and renewed while the
//! push lasts. So an open push session with no unexpired lease on its stream belongs to a
//! node that died (or was cut off from the catalogue for longer than the lease): any node may
//! end it, and [`Catalog::end_push`] lets exactly one of them do so (its event 0 is queued
//! once).

use crate::backend::Conn;
use crate::catalog::{Catalog, push_cols};
use crate::error::{Result, db_err};
use crate::model::PushSession;
use crate::writer::Write;

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

/// The stream lease key of a push of `stream` on `app` (one publisher per key cluster-wide).
pub fn stream_lease_key(app: &str, stream: &str) -> String {
    format!("{app}/{stream}")
}

impl Catalog {
    /// Open push sessions that no live lease covers at `now_ms`: no lease on their stream,
    /// or an expired one, or one held by `dead_node` (a node that just started holds nothing,
    /// whatever its leases from before a crash say). Oldest first.
    pub async fn orphaned_pushes(&self, now_ms: i64, dead_node: &str) -> Result<Vec<PushSession>> {
        on_pool!(&self.db, |pool| sqlx::query_as(ORPHANED_PUSHES_SQL)
            .bind(now_ms)
            .bind(dead_node)
            .fetch_all(pool)
            .await)
        .map_err(db_err("orphaned_pushes", ""))
    }

    /// Drops every stream lease `node` holds (at start-up: a node that was restarted publishes
    /// nothing yet, so a crash does not keep its streams locked until the leases expire).
    pub async fn release_node_leases(&self, node: &str) -> Result<u64> {
        on_pool!(&self.db, |pool| sqlx::query(
            "DELETE FROM stream_leases WHERE node = $1"
        )
        .bind(node)
        .execute(pool)
        .await
        .map(|d| d.rows_affected()))
        .map_err(db_err("release_node_leases", format_args!("node={node}")))
    }

    /// Clears every outbox claim `node` holds (at start-up: a restarted node sends nothing
    /// yet, so its events from before a crash are due again at once, not when the claims
    /// expire).
    pub async fn release_node_claims(&self, node: &str) -> Result<u64> {
        on_pool!(&self.db, |pool| sqlx::query(
            "UPDATE outbox SET claimed_by = NULL, claim_until_ms = NULL WHERE claimed_by = $1"
        )
        .bind(node)
        .execute(pool)
        .await
        .map(|d| d.rows_affected()))
        .map_err(db_err("release_node_claims", format_args!("node={node}")))
    }

    /// Clears `node`'s claims on `ids` (events it claimed but did not start sending), so any
    /// node may take them at once.
    pub async fn release_claims(&self, node: &str, ids: &[i64]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let write = Write::ReleaseClaims {
            node: node.to_owned(),
            ids: ids.to_vec(),
        };
        self.writer.submit(write).await
    }
}

// ---- the group-committed writes (run by `writer` inside its transaction) ----

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
