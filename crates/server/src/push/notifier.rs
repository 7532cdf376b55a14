//! The catalogue's outbox table as the notifier's [`Outbox`].

use super::dead::DeadLetters;
use crate::clock::{DynClock, SharedClock};
use crate::metrics::Metrics;
use livetape_catalog::{Catalog, CatalogError};
use livetape_notify::{Notifier, NotifierConfig, NotifierHandle, Outbox, PendingEvent};
use std::sync::Arc;
use std::time::Duration;

/// How this node claims due events (see `[cluster] claim_s`).
#[derive(Clone, Debug)]
pub(crate) struct Claims {
    node: String,
    lease_ms: u64,
}

impl Claims {
    pub(crate) fn new(node: &str, cfg: &crate::config::Config) -> Self {
        Self {
            node: node.to_owned(),
            lease_ms: cfg.cluster.claim_s.saturating_mul(1000),
        }
    }

    /// A request times out at half the claim (at most Tencent's 20 s): an attempt always
    /// ends, and is marked, before another node may take the event over.
    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.lease_ms / 2).min(livetape_notify::DEFAULT_REQUEST_TIMEOUT)
    }
}

/// Also counts delivery outcomes for `/metrics` (the notifier reports every attempt here)
/// and keeps the dead letters' receivers (see [`super::dead`]).
pub(crate) struct CatalogOutbox {
    catalog: Catalog,
    metrics: Arc<Metrics>,
    claims: Claims,
    dead: Arc<DeadLetters>,
}

impl Outbox for CatalogOutbox {
    type Error = CatalogError;

    async fn due(&self, now_ms: i64, limit: u32) -> Result<Vec<PendingEvent>, CatalogError> {
        Ok(self
            .catalog
            .claim_due_events(&self.claims.node, now_ms, self.claims.lease_ms, limit)
            .await?
            .into_iter()
            .map(|e| PendingEvent {
                id: e.id,
                // Per-stream order: a stream's push end never overtakes its push start.
                ordering_key: e.stream_id,
                event_id: e.event_id,
                url: e.url,
                body: e.body,
                sign_key: e.sign_key,
                attempts: e.attempts,
                max_attempts: e.max_attempts,
                retry_interval_ms: e.retry_interval_ms,
            })
            .collect())
    }

    async fn release(&self, ids: &[i64]) -> Result<(), CatalogError> {
        self.catalog
            .release_claims(&self.claims.node, ids)
            .await
            .map(drop)
    }

    async fn next_due_at(&self) -> Result<Option<i64>, CatalogError> {
        self.catalog.next_due_at().await
    }

    async fn delivered(&self, id: i64, url: &str, now_ms: i64) -> Result<(), CatalogError> {
        self.metrics.delivery(true);
        crate::failpoint::hit("notify.acked");
        self.catalog.mark_delivered(id, now_ms).await?;
        self.dead.answered(&self.catalog, url, now_ms).await;
        Ok(())
    }

    async fn failed(
        &self,
        id: i64,
        url: &str,
        attempts: u32,
        next_at_ms: Option<i64>,
        error: &str,
    ) -> Result<(), CatalogError> {
        self.metrics.delivery(false);
        self.catalog
            .mark_failed(id, attempts, next_at_ms, error)
            .await?;
        if next_at_ms.is_none() {
            self.metrics.delivery_given_up();
            self.dead.given_up(url);
        }
        Ok(())
    }
}

pub(crate) fn spawn_notifier(
    catalog: Catalog,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    claims: Claims,
    dead: Arc<DeadLetters>,
) -> Result<NotifierHandle, livetape_notify::NotifyError> {
    let config = NotifierConfig {
        request_timeout: claims.request_timeout(),
        ..NotifierConfig::default()
    };
    Notifier::spawn(
        Arc::new(CatalogOutbox {
            catalog,
            metrics,
            claims,
            dead,
        }),
        Arc::new(DynClock(clock)),
        config,
    )
}
