//! A push's catalogue writes are retried until they are written: a database that blinks, a
//! full disk or a read-only catalogue file must not cost a push's end, its status events or a
//! finished file's row and event 100. The write is the same each time (same times, errcodes,
//! durations: the true facts, not what a later recovery would guess), so callbacks keep
//! their order and content.
//!
//! Transient failures ([`CatalogError::is_transient`]) are retried 100 ms after the first,
//! doubling to 5 s, for as long as the server runs; once it stops, for at most
//! `shutdown_flush_s` more (what is still unwritten then is recovered by the next start:
//! spools are kept until their row is in). A permanent failure — the write itself is at
//! fault — is reported at once.
//!
//! A write that carries a [`Fact`] (a push's end, its status events) is also journaled at its
//! first failure (`store::journal`) and the entry removed once written, so a crash or a stop
//! before then does not lose it: the next start writes it first.

use crate::state::AppState;
use crate::store::journal::Fact;
use livetape_catalog::CatalogError;
use std::future::Future;
use std::time::Duration;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Runs `write` until it succeeds (see the module docs); `what` names it in the logs; `fact`
/// is what `write` writes, journaled if it fails.
pub(crate) async fn until_written<T, F, Fut>(
    st: &AppState,
    what: &str,
    key: &str,
    fact: Option<&Fact>,
    mut write: F,
) -> Result<T, CatalogError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CatalogError>>,
{
    let mut wait = FIRST_RETRY;
    let mut tries = 0u32;
    let mut stopped_at: Option<tokio::time::Instant> = None;
    let flush = Duration::from_secs(st.cfg.server.shutdown_flush_s);
    let mut journaled = None;
    loop {
        let e = match write().await {
            Ok(v) => {
                if let Some(entry) = journaled {
                    crate::store::journal::Entry::remove(entry);
                }
                if tries > 0 {
                    tracing::info!(
                        what,
                        key,
                        tries,
                        "catalogue write went through after retries"
                    );
                }
                return Ok(v);
            }
            Err(e) if !e.is_transient() => return Err(e),
            Err(e) => e,
        };
        tries += 1;
        st.metrics.catalogue_retry();
        if tries == 1
            && let Some(fact) = fact
        {
            match st.journal.record(fact) {
                Ok(entry) => journaled = Some(entry),
                Err(je) => {
                    tracing::error!(what, key, error = %je, "could not journal the push fact; only this run's retries keep it")
                }
            }
        }
        if tries == 1 {
            tracing::error!(what, key, error = %e, "catalogue write failed; retrying until it is written");
        } else {
            tracing::warn!(what, key, tries, error = %e, "catalogue write failed again");
        }
        if st.stop.is_cancelled() {
            let since = *stopped_at.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() >= flush {
                tracing::error!(
                    what,
                    key,
                    tries,
                    journaled = journaled.is_some(),
                    "server stopping: catalogue write given up; the next start writes it from the journal (or, for a file, from its spool)"
                );
                return Err(e);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            // A stop starts the shutdown window at once.
            _ = st.stop.cancelled(), if stopped_at.is_none() => {}
        }
        wait = (wait * 2).min(MAX_RETRY);
    }
}
