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

use super::{Deletes, local_garbage_id};
use crate::metrics::Metrics;
use crate::store::bucket::{ObjectError, Objects};
use livetape_catalog::{Catalog, PendingUpload};
use livetape_notify::NotifierWaker;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Files uploaded at the same time.
pub const MAX_CONCURRENT_UPLOADS: usize = 4;
/// First retry delay after a failed upload; doubles per attempt…
pub const RETRY_BASE_MS: i64 = 1_000;
/// …up to this.
pub const RETRY_CAP_MS: i64 = 5 * 60 * 1000;
/// Longest sleep without a wake-up (a safety net; commits and timers wake it sooner).
const IDLE_POLL: Duration = Duration::from_secs(30);
/// Delay before attempt `attempts + 1`, after `attempts` failures (≥ 1).
pub fn backoff_ms(attempts: u32) -> i64 {
    let shift = attempts.saturating_sub(1).min(20);
    RETRY_BASE_MS.saturating_mul(1 << shift).min(RETRY_CAP_MS)
}

/// The uploader's handles.
#[derive(Clone)]
pub(crate) struct Uploader {
    pub catalog: Catalog,
    pub objects: Arc<Objects>,
    /// The local copy goes through the two-phase delete once the object is in place.
    pub deletes: Deletes,
    pub metrics: Arc<Metrics>,
    /// Wakes the notifier once an upload made its event 100 deliverable.
    pub notifier: NotifierWaker,
    /// Woken when a file is queued.
    pub wake: Arc<Notify>,
    pub stop: CancellationToken,
    /// Only this node's uploads (the files are on its disk).
    pub node_id: String,
}

impl Uploader {
    /// Starts the uploader; it stops when the server stops (uploads in flight are dropped and
    /// redone at the next start).
    pub(crate) fn spawn(self) -> tokio::task::JoinHandle<()> {
        let st = Arc::new(self);
        tokio::spawn(async move {
            let mut running: JoinSet<String> = JoinSet::new();
            let mut in_flight: HashSet<String> = HashSet::new();
            // While files are being uploaded: a job in `/v1/jobs` and `/metrics`, with how many
            // attempts finished since the queue was last empty.
            let mut progress: Option<crate::metrics::Progress> = None;
            let mut finished = 0;
            loop {
                let now = st.deletes.clock.now_ms();
                if in_flight.len() < MAX_CONCURRENT_UPLOADS {
                    let want = (MAX_CONCURRENT_UPLOADS + in_flight.len()) as u32;
                    match st.catalog.due_uploads(&st.node_id, now, want).await {
                        Ok(rows) => {
                            for up in rows {
                                if in_flight.len() >= MAX_CONCURRENT_UPLOADS {
                                    break;
                                }
                                if in_flight.insert(up.recording.file_id.clone()) {
                                    let st = st.clone();
                                    running.spawn(async move {
                                        let id = up.recording.file_id.clone();
                                        st.run_one(up).await;
                                        id
                                    });
                                }
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "uploader: cannot list uploads"),
                    }
                }
                let sleep = match st.catalog.next_upload_at(&st.node_id).await {
                    Ok(Some(t)) => Duration::from_millis(
                        u64::try_from(t - st.deletes.clock.now_ms())
                            .unwrap_or(0)
                            .max(10),
                    )
                    .min(IDLE_POLL),
                    _ => IDLE_POLL,
                };
                // With every slot taken, only a finished upload can let a due one start.
                let full = in_flight.len() >= MAX_CONCURRENT_UPLOADS;
                tokio::select! {
                    _ = st.stop.cancelled() => return,
                    _ = st.wake.notified() => {}
                    Some(done) = running.join_next(), if !running.is_empty() => {
                        if let Ok(id) = done {
                            in_flight.remove(&id);
                            finished += 1;
                        }
                    }
                    _ = tokio::time::sleep(sleep), if !full => {}
                }
                // Collect any other finished uploads without waiting.
                while let Some(Ok(id)) = running.try_join_next() {
                    in_flight.remove(&id);
                    finished += 1;
                }
                if in_flight.is_empty() {
                    (progress, finished) = (None, 0);
                } else {
                    progress
                        .get_or_insert_with(|| {
                            crate::metrics::Progress::new("uploads", None, &st.metrics.jobs)
                        })
                        .tick(finished);
                }
            }
        })
    }

    /// One attempt for one file, with its catalogue outcome.
    async fn run_one(&self, up: PendingUpload) {
        let st = self;
        let file_id = up.recording.file_id.clone();
        let started = std::time::Instant::now();
        match self.upload(&up).await {
            Ok(bytes) => {
                crate::failpoint::hit("upload.stored");
                let keep = self.objects.keep_local;
                let gid = local_garbage_id(&file_id);
                let now = st.deletes.clock.now_ms();
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
                            st.deletes.finish(&gid, &up.recording.path).await;
                        }
                    }
                    // The object is in place; the next attempt uploads it again, then commits.
                    Err(e) => self.failed(&up, &format!("catalogue: {e}")).await,
                }
            }
            Err(e) => self.failed(&up, &e.to_string()).await,
        }
    }

    async fn failed(&self, up: &PendingUpload, error: &str) {
        let st = self;
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
        let next = st.deletes.clock.now_ms().saturating_add(delay);
        if let Err(e) = st
            .catalog
            .upload_failed(&up.recording.file_id, next, error)
            .await
        {
            tracing::error!(file_id = up.recording.file_id, error = %e, "cannot record an upload failure");
        }
    }

    /// Uploads the file (or HLS directory) of `up`; returns the bytes sent.
    async fn upload(&self, up: &PendingUpload) -> Result<u64, ObjectError> {
        let objects = &self.objects;
        let local = self
            .deletes
            .storage
            .resolve(&up.recording.path)
            .ok_or_else(|| ObjectError::BadKey {
                key: up.recording.path.clone(),
                reason: "not a path inside the data dir".into(),
            })?;
        if up.recording.format != crate::model::Format::Hls.as_str() {
            return objects.put_file(&local, &up.object_key).await;
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
                Some((livetape_hls::parse_segment_uri(&name)?, name))
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
            total += objects.put_file(&local.join(&name), &key).await?;
        }
        Ok(total)
    }
}
