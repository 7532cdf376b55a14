//! Several nodes, one catalogue: this node's name, its stream leases kept alive, and the
//! pushes of nodes that died ended on their behalf.
//!
//! Invariants (with the catalogue's): a push is published under its stream lease, taken
//! before its session row is written and released after the session is ended; the lease is
//! renewed every third of `[cluster] lease_s`. So an open session without a live lease is a
//! dead node's, and any node may end it (event 0 once, whoever wins).
//!
//! A catalogue that was slow or away must not end live pushes. So: a node never ends a push
//! that is live in its own hub; it judges other nodes' leases only after its own renewal
//! succeeded, with the time read after that wait, and only once it has been connected for a
//! whole `lease_s` — every live node renews three times in that span, so a lease still
//! expired then belongs to a node that is really gone (or cut off from the catalogue for
//! longer than `lease_s`: then its pushes are ended on its behalf, and its own end of them
//! later finds them ended and sends no second event 0).

use super::events;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::hub::Hub;
use crate::rules::Templates;
use livetape_catalog::Catalog;
use livetape_notify::NotifierWaker;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// File in the data dir holding this node's generated name.
pub(crate) const NODE_ID_FILE: &str = "node_id";
/// Longest `[cluster] node_id` / node id file accepted.
const MAX_NODE_ID_LEN: usize = 128;

/// This node's name in leases, claims and uploads: `[cluster] node_id`, else the name kept in
/// `DATA_DIR/node_id`, made once as `{hostname}-{random}`. Tied to the data dir because what
/// a node owns (spools, files waiting for upload) lives there: the same dir restarted is the
/// same node, two dirs are two nodes even on one host.
pub(crate) fn node_id(cfg: &Config, data_dir: &Path) -> std::io::Result<String> {
    if !cfg.cluster.node_id.is_empty() {
        return Ok(cfg.cluster.node_id.clone());
    }
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() && id.trim().len() <= MAX_NODE_ID_LEN => {
            return Ok(id.trim().to_owned());
        }
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is empty or too long", path.display()),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let uname = rustix::system::uname();
    let host: String = uname
        .nodename()
        .to_string_lossy()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(64)
        .collect();
    let id = format!("{host}-{:08x}", rand::random::<u32>());
    // Written whole or not at all: a torn file would rename the node after a crash.
    let tmp = data_dir.join(format!("{NODE_ID_FILE}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, id.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(id)
}

pub(crate) fn lease_ms(cfg: &Config) -> u64 {
    cfg.cluster.lease_s.saturating_mul(1000)
}

/// What the lease keeper and the orphan check use.
#[derive(Clone)]
pub(crate) struct Leases {
    pub cfg: Arc<Config>,
    pub catalog: Catalog,
    pub node_id: String,
    pub templates: Arc<Templates>,
    /// This node's live pushes: never ended as orphans, whatever their lease says.
    pub hub: Arc<Hub>,
    pub notifier: NotifierWaker,
    pub clock: SharedClock,
    pub stop: CancellationToken,
}

impl Leases {
    /// Renews this node's leases every third of `lease_s` and ends orphaned pushes, until stop.
    pub(crate) fn spawn_keeper(self) -> tokio::task::JoinHandle<()> {
        let st = self;
        tokio::spawn(async move {
            let every = Duration::from_millis((lease_ms(&st.cfg) / 3).max(1));
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Since when the renewals have succeeded without a break (None: the last failed).
            let mut connected_since: Option<i64> = None;
            loop {
                tokio::select! {
                    _ = st.stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let now = st.clock.now_ms();
                match st
                    .catalog
                    .renew_stream_leases(&st.node_id, now, lease_ms(&st.cfg))
                    .await
                {
                    Ok(_) => {
                        // Read after the wait: the renewal may have queued for seconds.
                        let now = st.clock.now_ms();
                        let since = *connected_since.get_or_insert(now);
                        if (now - since) as u64 >= lease_ms(&st.cfg) {
                            st.end_orphaned_pushes("", "publishing node lost").await;
                        }
                    }
                    Err(e) => {
                        if connected_since.take().is_some() {
                            tracing::error!(error = %e, "could not renew stream leases; live pushes go on, orphans are not judged until the catalogue is back for lease_s");
                        } else {
                            tracing::warn!(error = %e, "could not renew stream leases");
                        }
                    }
                }
            }
        })
    }

    /// Ends (with event 0) every open push no live lease covers; `dead_node`'s leases count as
    /// dead too (this node, at start-up). Returns how many this node ended.
    pub(crate) async fn end_orphaned_pushes(&self, dead_node: &str, reason: &str) -> u32 {
        let st = self;
        let now = st.clock.now_ms();
        let open = match st.catalog.orphaned_pushes(now, dead_node).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot list orphaned pushes");
                return 0;
            }
        };
        let snapshot = st.templates.snapshot();
        let mut ended = 0;
        for p in open {
            if st.hub.is_live(&p.sequence) {
                // Ours and live: its lease lapsed while the catalogue was away.
                continue;
            }
            let facts = events::PushFacts {
                callbacks: snapshot.callback_template_for(&p.app, &p.appname),
                domain: p.app,
                appname: p.appname,
                stream: p.stream_id,
                sequence: p.sequence,
                node: p.node,
                user_ip: p.client_ip,
                stream_param: p.stream_param,
                width: p.width,
                height: p.height,
            };
            // The only end time known: now.
            let duration = (now - p.started_at_ms).max(0) as u64;
            let code = livetape_tencent::errcode::INTERNAL_ERROR;
            let ev = events::push_end(&st.cfg, &facts, duration, code, reason, now);
            match st
                .catalog
                .end_push(&facts.sequence, now, code, reason, ev.into_iter().collect())
                .await
            {
                Ok(true) => {
                    ended += 1;
                    tracing::info!(
                        stream = facts.stream,
                        sequence = facts.sequence,
                        reason,
                        "orphaned push ended"
                    );
                }
                // Another node ended it first.
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(sequence = facts.sequence, error = %e, "could not end an orphaned push")
                }
            }
        }
        if ended > 0 {
            st.notifier.wake();
        }
        ended
    }
}
