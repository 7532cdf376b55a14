//! The uploader (`[storage] kind = "s3"`): moves finished local files into the bucket.
//!
//! A finished file is not catalogued directly: `commit_file` stores an `uploads` row (the
//! whole recording) and holds its event 100. This task uploads due rows, at most
//! [`MAX_CONCURRENT_UPLOADS`] at a time: a single PUT up to [`MULTIPART_THRESHOLD`], a
//! multipart upload of [`PART_SIZE`] parts above it; an HLS recording uploads every segment,
//! then its playlist last. Then, in ONE transaction, the recordings row goes in, the held
//! events become deliverable and the upload row goes; the local copy is then deleted
//! (two-phase, like retention) unless `keep_local`. A failure is retried forever with
//! exponential backoff ([`RETRY_BASE_MS`] doubling up to [`RETRY_CAP_MS`]); a crash just
//! leaves the row, and the next start uploads the file again (PUT is idempotent).

use crate::AppState;
use crate::objects::{ObjectError, Objects, parse};
use bytes::Bytes;
use livetape_catalog::PendingUpload;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Files uploaded at the same time.
pub const MAX_CONCURRENT_UPLOADS: usize = 4;
/// Files up to this size go in one PUT (read into memory whole); larger ones multipart.
pub const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// Multipart part size (S3's minimum is 5 MiB, all parts but the last).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one file in flight at once (memory: about `PART_SIZE` × (this + 1) per file).
pub const PARTS_IN_FLIGHT: usize = 2;
/// First retry delay after a failed upload; doubles per attempt…
pub const RETRY_BASE_MS: i64 = 1_000;
/// …up to this.
pub const RETRY_CAP_MS: i64 = 5 * 60 * 1000;
/// Longest sleep without a wake-up (a safety net; commits and timers wake it sooner).
const IDLE_POLL: Duration = Duration::from_secs(30);
/// `garbage` id of the local copy of an uploaded recording (its own file id stays free for
/// the recording's later deletion).
pub(crate) fn local_garbage_id(file_id: &str) -> String {
    format!("{file_id}:local")
}

/// Delay before attempt `attempts + 1`, after `attempts` failures (≥ 1).
pub fn backoff_ms(attempts: u32) -> i64 {
    let shift = attempts.saturating_sub(1).min(20);
    RETRY_BASE_MS.saturating_mul(1 << shift).min(RETRY_CAP_MS)
}

/// Starts the uploader; it stops when the server stops (uploads in flight are dropped and
/// redone at the next start).
pub(crate) fn spawn(st: Arc<AppState>, objects: Arc<Objects>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut running: JoinSet<String> = JoinSet::new();
        let mut in_flight: HashSet<String> = HashSet::new();
        loop {
            let now = st.clock.now_ms();
            if in_flight.len() < MAX_CONCURRENT_UPLOADS {
                let want = (MAX_CONCURRENT_UPLOADS + in_flight.len()) as u32;
                match st.catalog.due_uploads(&st.node_id, now, want).await {
                    Ok(rows) => {
                        for up in rows {
                            if in_flight.len() >= MAX_CONCURRENT_UPLOADS {
                                break;
                            }
                            if in_flight.insert(up.recording.file_id.clone()) {
                                let (st, objects) = (st.clone(), objects.clone());
                                running.spawn(async move {
                                    let id = up.recording.file_id.clone();
                                    run_one(&st, &objects, up).await;
                                    id
                                });
                            }
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "uploader: cannot list uploads"),
                }
            }
            let sleep = match st.catalog.next_upload_at(&st.node_id).await {
                Ok(Some(t)) => {
                    Duration::from_millis(u64::try_from(t - st.clock.now_ms()).unwrap_or(0).max(10))
                        .min(IDLE_POLL)
                }
                _ => IDLE_POLL,
            };
            // With every slot taken, only a finished upload can let a due one start.
            let full = in_flight.len() >= MAX_CONCURRENT_UPLOADS;
            tokio::select! {
                _ = st.stop.cancelled() => return,
                _ = st.upload_wake.notified() => {}
                Some(done) = running.join_next(), if !running.is_empty() => {
                    if let Ok(id) = done {
                        in_flight.remove(&id);
                    }
                }
                _ = tokio::time::sleep(sleep), if !full => {}
            }
            // Collect any other finished uploads without waiting.
            while let Some(Ok(id)) = running.try_join_next() {
                in_flight.remove(&id);
            }
        }
    })
}

/// One attempt for one file, with its catalogue outcome.
async fn run_one(st: &AppState, objects: &Objects, up: PendingUpload) {
    let file_id = up.recording.file_id.clone();
    let started = std::time::Instant::now();
    match upload(st, objects, &up).await {
        Ok(bytes) => {
            crate::failpoint::hit("upload.stored");
            let keep = objects.keep_local;
            let gid = local_garbage_id(&file_id);
            let now = st.clock.now_ms();
            match st
                .catalog
                .upload_done(&file_id, (!keep).then_some(gid.as_str()), now)
                .await
            {
                Ok(_) => {
                    st.metrics.uploaded(bytes);
                    st.notifier.wake();
                    let secs = started.elapsed().as_secs_f64();
                    tracing::info!(
                        file_id,
                        key = up.object_key,
                        bytes,
                        mb_per_s = bytes as f64 / 1e6 / secs.max(1e-6),
                        "recording uploaded and catalogued"
                    );
                    if !keep {
                        crate::retention::finish(st, &gid, &up.recording.path).await;
                    }
                }
                // The object is in place; the next attempt uploads it again, then commits.
                Err(e) => failed(st, &up, &format!("catalogue: {e}")).await,
            }
        }
        Err(e) => failed(st, &up, &e.to_string()).await,
    }
}

async fn failed(st: &AppState, up: &PendingUpload, error: &str) {
    st.metrics.upload_failed();
    let attempts = up.attempts.saturating_add(1);
    let delay = backoff_ms(attempts);
    tracing::warn!(
        file_id = up.recording.file_id,
        attempts,
        retry_in_ms = delay,
        error,
        "upload failed; will retry"
    );
    let next = st.clock.now_ms().saturating_add(delay);
    if let Err(e) = st
        .catalog
        .upload_failed(&up.recording.file_id, next, error)
        .await
    {
        tracing::error!(file_id = up.recording.file_id, error = %e, "cannot record an upload failure");
    }
}

/// Uploads the file (or HLS directory) of `up`; returns the bytes sent.
async fn upload(st: &AppState, objects: &Objects, up: &PendingUpload) -> Result<u64, ObjectError> {
    let local = st
        .storage
        .resolve(&up.recording.path)
        .ok_or_else(|| ObjectError::BadKey {
            key: up.recording.path.clone(),
            reason: "not a path inside the data dir".into(),
        })?;
    if up.recording.format != crate::model::Format::Hls.as_str() {
        return put_file(objects.store().as_ref(), &local, &up.object_key).await;
    }
    // Segments first, the playlist last: a playlist in the bucket never names a missing
    // segment.
    let local_err = |source| ObjectError::Local {
        path: local.clone(),
        source,
    };
    let mut segments: Vec<(u64, String)> = std::fs::read_dir(&local)
        .map_err(local_err)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name
                .strip_prefix("seg-")?
                .strip_suffix(".ts")?
                .parse()
                .ok()?;
            Some((n, name))
        })
        .collect();
    segments.sort();
    let mut total = 0;
    let names = segments
        .into_iter()
        .map(|(_, n)| n)
        .chain([crate::record::HLS_PLAYLIST_NAME.to_owned()]);
    for name in names {
        let key = format!("{}/{name}", up.object_key);
        total += put_file(objects.store().as_ref(), &local.join(&name), &key).await?;
    }
    Ok(total)
}

/// One file to one object: a PUT, or a multipart upload for large files.
pub(crate) async fn put_file(
    store: &dyn ObjectStore,
    path: &Path,
    key: &str,
) -> Result<u64, ObjectError> {
    let loc = parse(key)?;
    let local_err = |source| ObjectError::Local {
        path: path.to_path_buf(),
        source,
    };
    let store_err = |source| ObjectError::Store {
        key: key.to_owned(),
        source,
    };
    let file = Arc::new(std::fs::File::open(path).map_err(local_err)?);
    let size = file.metadata().map_err(local_err)?.len();
    if size <= MULTIPART_THRESHOLD {
        let data = read_at(file, 0, size as usize).await.map_err(local_err)?;
        store.put(&loc, data.into()).await.map_err(store_err)?;
        return Ok(size);
    }
    let upload = store.put_multipart(&loc).await.map_err(store_err)?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let mut off = 0u64;
    while off < size {
        let len = (size - off).min(PART_SIZE as u64) as usize;
        let part = match read_at(file.clone(), off, len).await {
            Ok(p) => p,
            Err(e) => {
                let _ = w.abort().await;
                return Err(local_err(e));
            }
        };
        if let Err(e) = w.wait_for_capacity(PARTS_IN_FLIGHT).await {
            let _ = w.abort().await;
            return Err(store_err(e));
        }
        w.put(part);
        off += len as u64;
        if off >= PART_SIZE as u64 * 2 {
            // Crash tests: parts are in the bucket's pending upload, the object is not.
            crate::failpoint::hit("upload.part");
        }
    }
    w.finish().await.map_err(store_err)?;
    Ok(size)
}

/// Reads `len` bytes at `off` on the blocking pool (one hop per part, not per 64 KiB).
async fn read_at(file: Arc<std::fs::File>, off: u64, len: usize) -> std::io::Result<Bytes> {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, off)?;
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Whether a spool's file id is already handled (catalogued, or waiting for its upload):
/// recovery then only removes the spool, never the finished file.
pub(crate) async fn is_known(
    st: &AppState,
    file_id: &str,
) -> Result<bool, livetape_catalog::CatalogError> {
    if st.catalog.get_recording(file_id).await?.is_some() {
        return Ok(true);
    }
    st.catalog.upload_pending(file_id).await
}

/// Removes the objects of deleted recordings (`object_garbage`); what fails stays queued for
/// the next call. Returns how many recordings' objects went.
pub(crate) async fn sweep_objects(st: &AppState) -> usize {
    let Some(objects) = &st.objects else {
        return 0;
    };
    let rows = match st.catalog.object_garbage(1000).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot list objects to delete");
            return 0;
        }
    };
    let mut n = 0;
    for (file_id, key) in rows {
        match objects.delete_all(&key).await {
            Ok(()) => {
                n += 1;
                if let Err(e) = st.catalog.forget_object_garbage(&file_id).await {
                    tracing::warn!(file_id, error = %e, "could not forget a deleted object");
                }
            }
            Err(e) => {
                tracing::warn!(file_id, error = %e, "could not delete object; retried later")
            }
        }
    }
    n
}

/// The object store of a running server, built from `[storage]` (`None` for `kind = local`).
pub(crate) fn objects_from(
    cfg: &crate::config::Config,
) -> Result<Option<Arc<Objects>>, ObjectError> {
    if cfg.storage.kind != crate::config::StorageKind::S3 {
        return Ok(None);
    }
    Objects::new(&cfg.storage).map(|o| Some(Arc::new(o)))
}
