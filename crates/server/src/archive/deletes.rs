//! Deleting a recording is two-phase, so that a crash never leaks a file nobody knows about:
//! 1. the catalogue row is swapped for a `garbage` row in one transaction (from then on the
//!    recording is neither listed nor served); its objects, if uploaded, are queued in
//!    `object_garbage` in the same transaction;
//! 2. the file (or HLS directory) is removed and its directory fsynced; the objects deleted;
//! 3. the garbage rows are forgotten.
//!
//! A crash between 1 and 3 leaves the garbage row; [`Deletes::sweep_garbage`] finishes it at
//! the next start. Only catalogued rows are candidates, and a row exists only once its file is
//! final, so a file still being written (a spool) is never touched.

use crate::clock::SharedClock;
use crate::store::bucket::Objects;
use crate::store::disk::{Storage, sync_dir};
use livetape_catalog::{Catalog, CatalogError, Recording};
use std::io;
use std::path::{Component, Path};
use std::sync::Arc;

/// The only top-level directory a delete removes from (finished recordings).
const RECORDS_DIR: &str = "records";

/// `garbage` id of the local copy of an uploaded recording (its own file id stays free for
/// the recording's later deletion).
pub(crate) fn local_garbage_id(file_id: &str) -> String {
    format!("{file_id}:local")
}

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

/// What a delete needs, and nothing else (the API's `DELETE`, retention, the uploader).
#[derive(Clone)]
pub(crate) struct Deletes {
    /// Local files are removed only by the node whose data dir holds them.
    pub node_id: String,
    pub catalog: Catalog,
    pub storage: Storage,
    pub objects: Option<Arc<Objects>>,
    pub clock: SharedClock,
}

impl Deletes {
    /// Deletes one recording: its row (tombstoned), then its file, then the tombstone. `None` if
    /// no such recording exists (or another deleter got it first). A file that cannot be removed
    /// is logged and left queued for the next start; the recording is gone from the catalogue
    /// either way.
    pub(crate) async fn delete(
        &self,
        file_id: &str,
        reason: Reason,
    ) -> Result<Option<Recording>, CatalogError> {
        let Some(rec) = self
            .catalog
            .tombstone_recording(file_id, self.clock.now_ms())
            .await?
        else {
            return Ok(None);
        };
        // The file is ours to remove unless it is a copy on another node's disk
        // (`[storage] keep_local` there): that node removes it at its next sweep.
        let removed = match self.catalog.garbage_of(&rec.file_id, &self.node_id).await {
            Ok(Some(path)) => self.finish(&rec.file_id, &path).await,
            Ok(None) => false,
            // Queued all the same: the sweeps retry it.
            Err(e) => {
                tracing::warn!(file_id, error = %e, "file deletion left to the next sweep");
                false
            }
        };
        // Its object too, if it was uploaded (queued by the tombstone). Only its own: objects
        // that failed before are retried by the periodic sweep, not by every later delete.
        self.sweep_objects_of(Some(&rec.file_id)).await;
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

    /// Finishes every queued deletion that is this node's (file removed if still there, garbage
    /// row forgotten: what a crash interrupted, and copies on this node deleted through
    /// another), then the bucket objects still queued. At start-up, before any listener
    /// serves, and at every retention check.
    pub(crate) async fn sweep_garbage(&self) {
        let rows = match self.catalog.garbage(&self.node_id).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "cannot read pending deletions; retried at next start");
                return;
            }
        };
        for (file_id, path) in rows {
            if self.finish(&file_id, &path).await {
                tracing::info!(file_id, path, "interrupted deletion finished");
            }
        }
        self.sweep_objects().await;
    }

    /// Removes a tombstoned file and forgets its garbage row. Returns whether the file is gone; if
    /// not, the row stays and the next start retries.
    pub(crate) async fn finish(&self, file_id: &str, rel: &str) -> bool {
        let storage = self.storage.clone();
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
        if let Err(e) = self.catalog.forget_garbage(file_id).await {
            // Harmless: the next start finds the file gone and forgets the row then.
            tracing::warn!(file_id, error = %e, "could not forget a finished deletion");
        }
        true
    }

    /// Removes the objects of deleted recordings (`object_garbage`); what fails stays queued for
    /// the next call. Returns how many recordings' objects went.
    pub(crate) async fn sweep_objects(&self) -> usize {
        self.sweep_objects_of(None).await
    }

    /// [`Deletes::sweep_objects`] for one recording's object, or all (`None`).
    async fn sweep_objects_of(&self, only: Option<&str>) -> usize {
        let Some(objects) = &self.objects else {
            return 0;
        };
        let rows = match self.catalog.object_garbage(1000).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot list objects to delete");
                return 0;
            }
        };
        let mut n = 0;
        for (file_id, key) in rows {
            if only.is_some_and(|id| id != file_id) {
                continue;
            }
            match objects.delete_all(&key).await {
                Ok(()) => {
                    n += 1;
                    if let Err(e) = self.catalog.forget_object_garbage(&file_id).await {
                        tracing::warn!(file_id, error = %e, "could not forget a deleted object");
                    }
                }
                Err(e) => {
                    tracing::warn!(file_id, error = %e, "could not delete object; retried at the next retention check")
                }
            }
        }
        n
    }
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
