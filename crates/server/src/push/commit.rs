//! A closed file's way into the catalogue: finalize (off the connection task), then its row and
//! event 100 in one transaction — or, with a bucket, its upload row with the event held — then
//! the spool removed (ARCHITECTURE.md, "Recording invariants").

use crate::failpoint;
use crate::record;
use crate::state::AppState;
use std::sync::Arc;

/// The descriptors or the space a finalize needs may come back (EMFILE/ENFILE under a
/// connection flood, ENOSPC until the retention sweep or an operator frees space): such an
/// error is retried while the server runs — 200 ms after the first, doubling to 10 s — with
/// the spool kept; the retry rebuilds the plan from the spool, as crash recovery does.
const FINALIZE_FIRST_RETRY: std::time::Duration = std::time::Duration::from_millis(200);
const FINALIZE_MAX_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

fn transient_io(e: &record::RecordError) -> bool {
    let record::RecordError::Io { source, .. } = e else {
        return false;
    };
    matches!(source.raw_os_error(), Some(23 | 24 | 28 | 122))
        || matches!(
            source.kind(),
            std::io::ErrorKind::StorageFull
                | std::io::ErrorKind::QuotaExceeded
                | std::io::ErrorKind::Interrupted
                | std::io::ErrorKind::TimedOut
        )
}

async fn finalize_retrying(
    st: &Arc<AppState>,
    c: record::ClosedFile,
) -> Result<Result<record::FinishedFile, record::RecordError>, tokio::task::JoinError> {
    let mut wait = FINALIZE_FIRST_RETRY;
    let mut next = Some(c);
    loop {
        let c = next.take().expect("a file to finalize");
        let again = c.for_retry();
        let st2 = st.clone();
        let res = tokio::task::spawn_blocking(move || {
            let now = st2.clock.now_ms();
            record::finalize(c, &st2.storage, st2.cfg.public_url(), now)
        })
        .await;
        match res {
            Ok(Err(e))
                if transient_io(&e) && !st.stop.is_cancelled() && again.spool_path.exists() =>
            {
                tracing::warn!(file_id = again.file_id, error = %e, retry_in_ms = wait.as_millis() as u64, "finalize failed for want of descriptors or space; retrying, spool kept");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = st.stop.cancelled() => {}
                }
                wait = (wait * 2).min(FINALIZE_MAX_RETRY);
                next = Some(again);
            }
            other => return other,
        }
    }
}

/// Finalizes a closed file, catalogues it with its event 100, then drops its spool.
///
/// `after`: the file's IO (copies, fsyncs) starts at once, but its row and event 100 wait until
/// this token is cancelled. The end of a push passes one cancelled once event 0 is committed,
/// so the fsyncs of both overlap while event 100 still comes after event 0.
pub(crate) async fn commit_file(
    st: Arc<AppState>,
    c: record::ClosedFile,
    after: Option<tokio_util::sync::CancellationToken>,
) {
    let stream = c.ctx.stream.clone();
    let file_id = c.file_id.clone();
    let callbacks = c.ctx.callbacks.clone();
    let format = c.format;
    let (ctx, spool_path) = (Arc::clone(&c.ctx), c.spool_path.clone());
    let res = finalize_retrying(&st, c).await;
    let done = match res {
        Ok(Ok(done)) => done,
        Ok(Err(record::RecordError::Empty { path, .. })) => {
            tracing::warn!(stream, file_id, "spool held no media frame; discarded");
            if let Err(e) = record::recover::discard(&path) {
                tracing::warn!(file_id, error = %e, "could not remove spool");
            }
            return;
        }
        Ok(Err(e @ record::RecordError::Mux { .. })) => {
            // Malformed content: no later attempt can do better. Moved aside once instead of
            // being retried at every start.
            let to = record::recover::quarantine(&spool_path);
            tracing::error!(
                stream,
                file_id,
                error = %e,
                quarantined = ?to.as_ref().map(|p| p.display().to_string()),
                "spool cannot be finalized; moved to spool/quarantine"
            );
            st.metrics.recording_failed(format);
            st.metrics.spool_quarantined();
            let status = record::RecordStatus {
                format,
                kind: record::StatusKind::Error,
                file_id: Some(file_id.clone()),
                error: Some(format!(
                    "the recording could not be finalized ({e}); its spool is kept in spool/quarantine"
                )),
            };
            super::emit_statuses(&st, &ctx, vec![status]).await;
            return;
        }
        Ok(Err(e)) => {
            tracing::error!(stream, file_id, error = %e, "finalize failed; spool kept for recovery");
            st.metrics.recording_failed(format);
            return;
        }
        Err(e) => {
            tracing::error!(stream, file_id, error = %e, "finalize task failed");
            st.metrics.recording_failed(format);
            return;
        }
    };
    if let Some(after) = after {
        after.cancelled().await;
    }
    let now = st.clock.now_ms();
    let event = super::events::record_file(
        &st.cfg,
        callbacks.as_ref(),
        ctx.template_id,
        &done.recording,
        now,
    );
    let events: Vec<_> = event.into_iter().collect();
    let res = match &st.objects {
        // Not catalogued yet: queued for upload, its event 100 held until the object is in
        // the bucket (`upload`).
        Some(objects) => {
            let key = objects.key_for(&done.recording.path);
            super::until_written(&st, "insert_upload", &file_id, None, || {
                st.catalog
                    .insert_upload(&done.recording, &key, &st.node_id, events.clone(), now)
            })
            .await
        }
        None => {
            super::until_written(&st, "insert_recording", &file_id, None, || {
                st.catalog.insert_recording(&done.recording, events.clone())
            })
            .await
        }
    };
    if let Err(e) = res {
        tracing::error!(stream, file_id, error = %e, "could not catalogue recording; spool kept");
        st.metrics.recording_failed(format);
        return;
    }
    st.metrics.recording_finished(format);
    st.notifier.wake();
    st.upload_wake.notify_one();
    failpoint::hit("commit.catalogued");
    if let Err(e) = record::recover::remove(&done.spool_path) {
        tracing::warn!(file_id, error = %e, "could not remove spool");
    }
    let r = &done.recording;
    tracing::info!(
        stream,
        file_id,
        format = r.format,
        duration_ms = r.duration_ms,
        size = r.size_bytes,
        path = r.path,
        "recording catalogued"
    );
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
