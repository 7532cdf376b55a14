//! Recording status changes (Tencent event 332): logged, counted, queued.

use crate::record;
use crate::state::AppState;
use std::sync::Arc;

/// Queues event 332 for each recording status change.
pub(crate) async fn emit_statuses(
    st: &Arc<AppState>,
    ctx: &record::RecordContext,
    statuses: Vec<record::RecordStatus>,
) {
    let events = status_events(st, ctx, statuses);
    if events.is_empty() {
        return;
    }
    match st.catalog.insert_events(events.clone()).await {
        Ok(()) => st.notifier.wake(),
        Err(e) if e.is_transient() => {
            // Not on the media path: retried in the background until written.
            tracing::error!(stream = ctx.stream, error = %e, "could not queue record status events; retrying");
            let st = st.clone();
            let stream = ctx.stream.clone();
            let fact = crate::store::journal::Fact::Events { events };
            st.tasks.clone().spawn(async move {
                let r = super::until_written(&st, "insert_events", &stream, Some(&fact), || {
                    fact.apply(&st.catalog)
                })
                .await;
                match r {
                    Ok(()) => st.notifier.wake(),
                    Err(e) => {
                        tracing::error!(stream, error = %e, "could not queue record status events")
                    }
                }
            });
        }
        Err(e) => {
            tracing::error!(stream = ctx.stream, error = %e, "could not queue record status events")
        }
    }
}

/// Logs and counts recording status changes; returns their events 332 (for the streams
/// whose callback template has a `record_url`), for the caller to queue.
pub(crate) fn status_events(
    st: &AppState,
    ctx: &record::RecordContext,
    statuses: Vec<record::RecordStatus>,
) -> Vec<livetape_catalog::NewEvent> {
    let now = st.clock.now_ms();
    statuses
        .iter()
        .inspect(|s| {
            tracing::info!(
                stream = ctx.stream,
                format = s.format.as_str(),
                status = s.kind.record_event(),
                error = s.error.as_deref().unwrap_or(""),
                "recording status"
            );
            if matches!(
                s.kind,
                record::StatusKind::StartFailed | record::StatusKind::Error
            ) {
                st.metrics.recording_failed(s.format);
            }
        })
        .filter_map(|s| super::events::record_status(&st.cfg, ctx, s, now))
        .collect()
}
