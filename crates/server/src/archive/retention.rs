//! Retention: recordings past their template's `storage_days` (Tencent `StorageTime`) or beyond
//! the data dir's `[storage] max_bytes` are deleted, oldest first, through the same two-phase
//! delete as `DELETE /v1/recordings/{id}` ([`super::Deletes`]).

use super::{Deletes, Reason};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Rows fetched per catalogue query while enforcing.
const BATCH: u32 = 100;

/// The retention job's handles.
pub(crate) struct Retention {
    pub deletes: Deletes,
    /// Where a running sweep is listed (`/metrics`, `/v1/jobs`).
    pub jobs: crate::metrics::Jobs,
    /// `[storage] max_bytes` (0 = no budget).
    pub max_bytes: u64,
    /// `[storage] retention_check_s`.
    pub period: Duration,
    pub stop: CancellationToken,
}

impl Retention {
    /// Deletes every expired recording, then, if `[storage] max_bytes` is set, the oldest
    /// recordings until the total fits. Returns how many were deleted. Stops early when the server
    /// stops or the catalogue fails (the next run goes on).
    pub(crate) async fn enforce(&self, now_ms: i64) -> usize {
        let mut deleted = 0;
        let mut progress = crate::metrics::Progress::new("retention", None, &self.jobs);
        loop {
            progress.tick(deleted);
            if self.stop.is_cancelled() {
                return deleted;
            }
            let batch = match self.deletes.catalog.expired_recordings(now_ms, BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "retention: cannot list expired recordings");
                    return deleted;
                }
            };
            if batch.is_empty() {
                break;
            }
            // Every row of the batch is gone afterwards (deleted here or by someone else), so the
            // next query makes progress.
            for r in batch {
                match self.deletes.delete(&r.file_id, Reason::Expired).await {
                    Ok(Some(_)) => deleted += 1,
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(file_id = r.file_id, error = %e, "retention: delete failed");
                        return deleted;
                    }
                }
            }
        }
        let max = self.max_bytes;
        if max == 0 {
            return deleted;
        }
        loop {
            if self.stop.is_cancelled() {
                return deleted;
            }
            // Re-summed per batch so that concurrent inserts and deletes are accounted for.
            let mut total = match self.deletes.catalog.total_recording_bytes().await {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "retention: cannot sum recording sizes");
                    return deleted;
                }
            };
            if total <= max {
                return deleted;
            }
            let batch = match self.deletes.catalog.oldest_recordings(BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "retention: cannot list recordings");
                    return deleted;
                }
            };
            if batch.is_empty() {
                return deleted;
            }
            progress.tick(deleted);
            for r in batch {
                if total <= max {
                    return deleted;
                }
                tracing::debug!(total, max_bytes = max, file_id = r.file_id, "over budget");
                match self.deletes.delete(&r.file_id, Reason::OverBudget).await {
                    Ok(deleted_row) => {
                        deleted += usize::from(deleted_row.is_some());
                        // Gone either way (here or by a concurrent deleter).
                        total = total.saturating_sub(r.size_bytes);
                    }
                    Err(e) => {
                        tracing::error!(file_id = r.file_id, error = %e, "retention: delete failed");
                        return deleted;
                    }
                }
            }
        }
    }

    /// Runs [`enforce`] now and then every `[storage] retention_check_s` until the server stops.
    /// Tracked with the connection tasks, so a graceful stop waits for a deletion in progress.
    pub(crate) fn spawn(self, tracker: &tokio_util::task::TaskTracker) {
        let period = self.period;
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let n = self.enforce(self.deletes.clock.now_ms()).await;
                if n > 0 {
                    tracing::info!(deleted = n, "retention check done");
                }
                // The retry timer of deletes that failed (the bucket was down), and of this
                // node's local copies of recordings deleted through another node. Bucket
                // objects are every node's to delete; a local file only its node's.
                self.deletes.sweep_garbage().await;
            }
        });
    }
}
