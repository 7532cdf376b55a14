//! Retention: recordings past their template's `storage_days` (Tencent `StorageTime`) or beyond
//! the data dir's `[storage] max_bytes` are deleted, oldest first; `DELETE /v1/recordings/{id}`
//! takes the same path.
//!
//! Deleting is two-phase so that a crash never leaks a file nobody knows about:
//! 1. the catalogue row is swapped for a `garbage` row in one transaction (from then on the
//!    recording is neither listed nor served);
//! 2. the file (or HLS directory) is removed and its directory fsynced;
//! 3. the garbage row is forgotten.
//!
//! A crash between 1 and 3 leaves the garbage row; [`sweep_garbage`] finishes it at the next
//! start. Only catalogued rows are candidates, and a row exists only once its file is final,
//! so a file still being written (a spool) is never touched.

use crate::AppState;
use crate::storage::{Storage, sync_dir};
use livetape_catalog::{CatalogError, Recording};
use std::io;
use std::path::{Component, Path};
use std::sync::Arc;
use std::time::Duration;

/// Rows fetched per catalogue query while enforcing.
const BATCH: u32 = 100;
/// The only top-level directory retention deletes from (finished recordings).
const RECORDS_DIR: &str = "records";

/// Why a recording was deleted (logged with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Its template's `storage_days` ran out.
    Expired,
    /// The data dir is over `[storage] max_bytes`.
    OverBudget,
    /// `DELETE /v1/recordings/{file_id}`.
    Api,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Expired => "expired",
            Reason::OverBudget => "over budget",
            Reason::Api => "api",
        }
    }
}

/// Deletes one recording: its row (tombstoned), then its file, then the tombstone. `None` if
/// no such recording exists (or another deleter got it first). A file that cannot be removed
/// is logged and left queued for the next start; the recording is gone from the catalogue
/// either way.
pub(crate) async fn delete(
    st: &AppState,
    file_id: &str,
    reason: Reason,
) -> Result<Option<Recording>, CatalogError> {
    let Some(rec) = st
        .catalog
        .tombstone_recording(file_id, st.clock.now_ms())
        .await?
    else {
        return Ok(None);
    };
    let removed = finish(st, &rec.file_id, &rec.path).await;
    // Its object too, if it was uploaded (queued by the tombstone).
    crate::upload::sweep_objects(st).await;
    tracing::info!(
        file_id,
        reason = reason.as_str(),
        path = rec.path,
        size = rec.size_bytes,
        file_removed = removed,
        "recording deleted"
    );
    Ok(Some(rec))
}

/// Start-up: finishes every deletion a crash interrupted (file removed if still there, garbage
/// row forgotten). Runs before any listener serves.
pub(crate) async fn sweep_garbage(st: &AppState) {
    let rows = match st.catalog.garbage().await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "cannot read pending deletions; retried at next start");
            return;
        }
    };
    for (file_id, path) in rows {
        if finish(st, &file_id, &path).await {
            tracing::info!(file_id, path, "interrupted deletion finished");
        }
    }
    crate::upload::sweep_objects(st).await;
}

/// Deletes every expired recording, then, if `[storage] max_bytes` is set, the oldest
/// recordings until the total fits. Returns how many were deleted. Stops early when the server
/// stops or the catalogue fails (the next run goes on).
pub(crate) async fn enforce(st: &AppState, now_ms: i64) -> usize {
    let mut deleted = 0;
    loop {
        if st.stop.is_cancelled() {
            return deleted;
        }
        let batch = match st.catalog.expired_recordings(now_ms, BATCH).await {
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
            match delete(st, &r.file_id, Reason::Expired).await {
                Ok(Some(_)) => deleted += 1,
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(file_id = r.file_id, error = %e, "retention: delete failed");
                    return deleted;
                }
            }
        }
    }
    let max = st.cfg.storage.max_bytes;
    if max == 0 {
        return deleted;
    }
    loop {
        if st.stop.is_cancelled() {
            return deleted;
        }
        // Re-summed per batch so that concurrent inserts and deletes are accounted for.
        let mut total = match st.catalog.total_recording_bytes().await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "retention: cannot sum recording sizes");
                return deleted;
            }
        };
        if total <= max {
            return deleted;
        }
        let batch = match st.catalog.oldest_recordings(BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "retention: cannot list recordings");
                return deleted;
            }
        };
        if batch.is_empty() {
            return deleted;
        }
        for r in batch {
            if total <= max {
                return deleted;
            }
            tracing::debug!(total, max_bytes = max, file_id = r.file_id, "over budget");
            match delete(st, &r.file_id, Reason::OverBudget).await {
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
pub(crate) fn spawn(st: Arc<AppState>) {
    let period = Duration::from_secs(st.cfg.storage.retention_check_s.max(1));
    let tracker = st.tasks.clone();
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = st.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let n = enforce(&st, st.clock.now_ms()).await;
            if n > 0 {
                tracing::info!(deleted = n, "retention check done");
            }
        }
    });
}

/// Removes a tombstoned file and forgets its garbage row. Returns whether the file is gone; if
/// not, the row stays and the next start retries.
pub(crate) async fn finish(st: &AppState, file_id: &str, rel: &str) -> bool {
    let storage = st.storage.clone();
    let rel_owned = rel.to_owned();
    let res = tokio::task::spawn_blocking(move || remove_recording_path(&storage, &rel_owned))
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)));
    match res {
        Ok(Removal::Removed) => {}
        Ok(Removal::Refused) => {
            // Never a path we built; nothing of ours to remove, so do not retry forever.
            tracing::error!(
                file_id,
                path = rel,
                "refusing to delete a path outside records/"
            );
        }
        Err(e) => {
            tracing::warn!(file_id, path = rel, error = %e, "could not remove recording file; retried at next start");
            return false;
        }
    }
    if let Err(e) = st.catalog.forget_garbage(file_id).await {
        // Harmless: the next start finds the file gone and forgets the row then.
        tracing::warn!(file_id, error = %e, "could not forget a finished deletion");
    }
    true
}

#[derive(Debug, PartialEq, Eq)]
enum Removal {
    /// Removed now, or already absent.
    Removed,
    /// Not a path under `records/` inside the data dir: left alone.
    Refused,
}

/// Removes a catalogued file or HLS directory and fsyncs its parent, so the removal is durable
/// before the garbage row is forgotten.
fn remove_recording_path(storage: &Storage, rel: &str) -> io::Result<Removal> {
    let under_records = {
        let mut c = Path::new(rel).components();
        c.next() == Some(Component::Normal(RECORDS_DIR.as_ref())) && c.next().is_some()
    };
    let Some(abs) = storage.resolve(rel).filter(|_| under_records) else {
        return Ok(Removal::Refused);
    };
    let meta = match std::fs::symlink_metadata(&abs) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removal::Removed),
        Err(e) => return Err(e),
    };
    // A symlink is unlinked, never followed.
    let res = if meta.is_dir() {
        std::fs::remove_dir_all(&abs)
    } else {
        std::fs::remove_file(&abs)
    };
    match res {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = abs.parent() {
        sync_dir(parent)?;
    }
    Ok(Removal::Removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_files_and_hls_dirs_under_records_only() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let day = dir.path().join("records/live/s/2026-01-01");
        std::fs::create_dir_all(day.join("hls.m3u8.d")).unwrap();
        std::fs::write(day.join("a.mp4"), b"x").unwrap();
        std::fs::write(day.join("hls.m3u8.d/seg-00001.ts"), b"x").unwrap();
        std::fs::write(dir.path().join("catalog.db"), b"keep").unwrap();
        std::fs::write(dir.path().join("spool/x.flv.part"), b"keep").unwrap();

        let rm = |rel: &str| remove_recording_path(&storage, rel).unwrap();
        assert_eq!(rm("records/live/s/2026-01-01/a.mp4"), Removal::Removed);
        assert!(!day.join("a.mp4").exists());
        assert_eq!(rm("records/live/s/2026-01-01/hls.m3u8.d"), Removal::Removed);
        assert!(!day.join("hls.m3u8.d").exists());
        // Already gone: done, not an error.
        assert_eq!(rm("records/live/s/2026-01-01/a.mp4"), Removal::Removed);

        for bad in [
            "catalog.db",
            "spool/x.flv.part",
            "spool",
            "records",
            "records/../catalog.db",
            "/etc/passwd",
            "",
        ] {
            assert_eq!(rm(bad), Removal::Refused, "{bad}");
        }
        assert!(dir.path().join("catalog.db").exists());
        assert!(dir.path().join("spool/x.flv.part").exists());
        assert!(dir.path().join("records").is_dir());
    }
}
