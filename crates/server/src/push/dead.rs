//! Given-up ("dead") callbacks are never final: after its template's retries (Tencent's
//! schedule) an event is listed as dead (`/v1/deliveries?status=dead`, the console,
//! `livetape_outbox_dead`, an error log line), and it goes out again by itself when its
//! receiver answers again:
//! - any later callback to the same URL answered 200 revives every dead event of that URL
//!   ([`DeadLetters::answered`]);
//! - every `[callbacks] dead_probe_s`, each receiver with dead events is sent its oldest one
//!   again ([`DeadProbe`]), so a receiver that only this server calls is found to be back.
//!
//! A revived event gets one more attempt; if it fails, it is dead again until the next probe.

use crate::clock::SharedClock;
use crate::metrics::Metrics;
use livetape_catalog::Catalog;
use livetape_notify::NotifierWaker;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The receivers this node knows have dead events (seeded and refreshed by the probe, grown
/// when this node gives an event up). A hint only: the catalogue is the truth.
#[derive(Default)]
pub(crate) struct DeadLetters {
    urls: Mutex<HashSet<String>>,
}

impl DeadLetters {
    pub(crate) fn given_up(&self, url: &str) {
        self.lock().insert(url.to_owned());
    }

    /// `url` answered 200: makes its dead events due now (the notifier rescans after every
    /// finished attempt, so they go out next). Cheap when the receiver has none.
    pub(crate) async fn answered(&self, catalog: &Catalog, url: &str, now_ms: i64) {
        if !self.lock().remove(url) {
            return;
        }
        match catalog.revive_dead(url, now_ms).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                url = %url,
                revived = n,
                "callback receiver answers again: resending its given-up events"
            ),
            Err(e) => {
                tracing::warn!(url = %url, error = %e, "reviving given-up callbacks failed; the next probe tries again");
                self.given_up(url);
            }
        }
    }

    fn replace(&self, urls: impl IntoIterator<Item = String>) {
        *self.lock() = urls.into_iter().collect();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.urls.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The probe's handles.
pub(crate) struct DeadProbe {
    pub(crate) catalog: Catalog,
    pub(crate) dead: Arc<DeadLetters>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) notifier: NotifierWaker,
    pub(crate) clock: SharedClock,
    pub(crate) every: Duration,
    pub(crate) stop: CancellationToken,
}

impl DeadProbe {
    pub(crate) fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate: it only seeds the set (a probe at start-up would
            // resend what an operator may be looking at right after a restart).
            let mut first = true;
            loop {
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                self.round(!first).await;
                first = false;
            }
        })
    }

    async fn round(&self, probe: bool) {
        let receivers = match self.catalog.dead_receivers().await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "dead callbacks: listing failed; next round");
                return;
            }
        };
        let total: u64 = receivers.iter().map(|r| r.dead).sum();
        self.metrics.set_outbox_dead(total);
        self.dead.replace(receivers.iter().map(|r| r.url.clone()));
        if !probe || receivers.is_empty() {
            return;
        }
        let now = self.clock.now_ms();
        for r in &receivers {
            tracing::warn!(url = %r.url, dead = r.dead, "callbacks given up for this receiver; probing it with the oldest");
            if let Err(e) = self.catalog.retry_delivery_now(r.oldest_id, now).await {
                tracing::debug!(id = r.oldest_id, error = %e, "dead callbacks: probe not queued");
            }
        }
        self.notifier.wake();
    }
}
