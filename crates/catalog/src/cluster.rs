//! Several nodes on one catalogue: which open pushes no node is publishing any more.
//!
//! A push is published under its stream lease (`acquire_stream_lease`): the lease is taken
//! before the push session is written and released after it is ended, and renewed while the
//! push lasts. So an open push session with no unexpired lease on its stream belongs to a
//! node that died (or was cut off from the catalogue for longer than the lease): any node may
//! end it, and [`Catalog::end_push`] lets exactly one of them do so (its event 0 is queued
//! once).

use crate::catalog::Catalog;
use crate::error::{Result, db_err};
use crate::model::PushSession;
use crate::sql::sessions::ORPHANED_PUSHES_SQL;
use crate::writer::Write;

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
