//! The composition root: opens storage and catalogue, seeds templates, recovers what an
//! earlier run left (spools, cut pushes, half-done deletes) before anything serves, starts the
//! background jobs with their handles, binds the listeners; and the graceful stop.

use crate::archive::{self, Deletes};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::hub::Hub;
use crate::push::{self, commit_file, emit_statuses};
use crate::rules::{Templates, seed_from_config};
use crate::state::AppState;
use crate::store::disk::{DiskGuard, Storage};
use crate::{failpoint, http, ingest, metrics, record};
use livetape_catalog::Catalog;
use livetape_notify::NotifierHandle;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data dir {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("catalogue: {0}")]
    Catalog(#[from] livetape_catalog::CatalogError),
    #[error("notifier: {0}")]
    Notifier(#[from] livetape_notify::NotifyError),
    #[error("storage: {0}")]
    Objects(#[from] crate::store::bucket::ObjectError),
    #[error("listen on {addr} ({what}): {source}")]
    Listen {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running server; dropping it does not stop it (call [`Running::shutdown`]).
pub struct Running {
    pub rtmp_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub(crate) state: Arc<AppState>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    notifier: NotifierHandle,
}

impl Running {
    /// Enforces retention now (at the clock's current time) instead of waiting for the next
    /// `retention_check_s` tick; returns how many recordings were deleted.
    pub async fn run_retention(&self) -> usize {
        self.retention().enforce(self.state.clock.now_ms()).await
    }

    /// The catalogue this server writes (for tests and tools that inspect it).
    pub fn catalog(&self) -> &Catalog {
        &self.state.catalog
    }

    fn retention(&self) -> archive::Retention {
        retention_of(&self.state)
    }

    /// Graceful stop: refuse new pushes, close publishers, finalize and catalogue every open
    /// recording (reconnect windows included), deliver queued callbacks for up to
    /// `shutdown_flush_s`, then stop. Anything left is picked up by the next start.
    pub async fn shutdown(self) {
        let st = &self.state;
        st.stop.cancel();
        st.tasks.close();
        // Connections end their pushes (each write is bounded by WRITE_TIMEOUT); one stuck on
        // an unreachable catalogue must not keep the process alive: its spools are recovered
        // by the next start.
        if tokio::time::timeout(crate::config::SHUTDOWN_DRAIN, st.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = st.tasks.len(),
                "connections still ending after {} s; stopping without them (the next start recovers their recordings)",
                crate::config::SHUTDOWN_DRAIN.as_secs()
            );
        }
        // Recordings waiting for a reconnect will not get one from this process.
        let (mut closed, mut errors) = (Vec::new(), Vec::new());
        for (ctx, statuses) in st
            .parking
            .drain(st.clock.now_ms(), &mut closed, &mut errors)
        {
            emit_statuses(st, &ctx, statuses).await;
        }
        for e in errors {
            tracing::error!(error = %e, "recording stopped");
        }
        for c in closed {
            commit_file(st.clone(), c, None).await;
        }
        let flush = std::time::Duration::from_secs(st.cfg.server.shutdown_flush_s);
        let deadline = tokio::time::Instant::now() + flush;
        // Not only what is due now: a retry that falls due inside the window is waited for.
        let deadline_ms = st.clock.now_ms() + flush.as_millis() as i64;
        loop {
            match st.catalog.outbox_due(deadline_ms).await {
                Ok(0) => break,
                Ok(n) if tokio::time::Instant::now() >= deadline => {
                    tracing::warn!(
                        pending = n,
                        "callbacks still queued at exit; the next start sends them"
                    );
                    break;
                }
                Ok(_) => {
                    st.notifier.wake();
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "outbox unreadable at exit");
                    break;
                }
            }
        }
        if let Err(e) = self
            .notifier
            .shutdown(std::time::Duration::from_secs(5))
            .await
        {
            tracing::warn!(error = %e, "notifier shutdown");
        }
        for t in &self.tasks {
            t.abort();
        }
        tracing::info!("stopped");
    }
}

/// Opens storage and catalogue, binds both listeners and starts serving.
pub async fn start(cfg: Config, clock: SharedClock) -> Result<Running, StartError> {
    let cfg = Arc::new(cfg);
    let storage = Storage::open(&cfg.server.data_dir).map_err(|source| StartError::DataDir {
        path: cfg.server.data_dir.clone(),
        source,
    })?;
    let catalog = match &cfg.catalog.url {
        Some(url) => Catalog::connect(url).await?,
        None => Catalog::open(&storage.root().join("catalog.db")).await?,
    };
    let objects = match cfg.storage.kind {
        crate::config::StorageKind::S3 => {
            Some(Arc::new(crate::store::bucket::Objects::new(&cfg.storage)?))
        }
        crate::config::StorageKind::Local => None,
    };
    // The config file seeds templates and rules once; afterwards the catalogue is the truth.
    catalog
        .seed_all(&seed_from_config(&cfg)?, clock.now_ms())
        .await?;
    let templates = Arc::new(Templates::load(&catalog).await?);
    let keys = Arc::new(crate::keys::Keys::load(&cfg, &catalog).await?);
    for (kind, domain) in keys.overrides() {
        tracing::info!(
            kind = kind.as_str(),
            domain,
            "auth key set over Tencent Cloud API 3.0 overrides the file's for this domain"
        );
    }
    let bind = |what, addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Listen { what, addr, source })
    };
    let rtmp = bind("rtmp", cfg.server.rtmp_listen).await?;
    let http = bind("http", cfg.server.http_listen).await?;
    let rtmp_addr = rtmp.local_addr().expect("bound socket has an address");
    let http_addr = http.local_addr().expect("bound socket has an address");
    let metrics = Arc::new(metrics::Metrics::new());
    let node_id =
        push::leases::node_id(&cfg, storage.root()).map_err(|source| StartError::DataDir {
            path: storage.root().join(push::leases::NODE_ID_FILE),
            source,
        })?;
    // A node that starts publishes and sends nothing: its leases and claims from before a
    // crash are void.
    catalog.release_node_leases(&node_id).await?;
    catalog.release_node_claims(&node_id).await?;
    let dead = Arc::new(push::dead::DeadLetters::default());
    let notifier = push::notifier::spawn_notifier(
        catalog.clone(),
        clock.clone(),
        metrics.clone(),
        push::notifier::Claims::new(&node_id, &cfg),
        dead.clone(),
    )?;
    let node = if cfg.server.node.is_empty() {
        rtmp_addr.ip().to_string()
    } else {
        cfg.server.node.clone()
    };
    let (cfg_root, cfg_floor) = (storage.root().to_path_buf(), cfg.storage.min_free_bytes);
    let journal = crate::store::journal::Journal::open(storage.root()).map_err(|source| {
        StartError::DataDir {
            path: storage.root().join(crate::store::journal::Journal::DIR),
            source,
        }
    })?;
    let deletes = Deletes {
        node_id: node_id.clone(),
        catalog: catalog.clone(),
        storage: storage.clone(),
        objects: objects.clone(),
        clock: clock.clone(),
    };
    let state = Arc::new(AppState {
        cfg,
        catalog,
        storage,
        hub: Arc::new(Hub::default()),
        templates,
        keys,
        parking: record::Parking::default(),
        clock,
        notifier: notifier.waker(),
        node,
        node_id,
        disk: DiskGuard::new(&cfg_root, cfg_floor),
        metrics,
        deletes,
        journal,
        objects,
        upload_wake: Arc::new(tokio::sync::Notify::new()),
        stop: tokio_util::sync::CancellationToken::new(),
        tasks: tokio_util::task::TaskTracker::new(),
    });
    replay_journal(&state).await;
    recover_spools(&state).await;
    end_cut_pushes(&state).await;
    state.deletes.sweep_garbage().await;
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(watch_disk(state.clone())));
    tasks.push(leases_of(&state).spawn_keeper());
    tasks.push(
        push::dead::DeadProbe {
            catalog: state.catalog.clone(),
            dead,
            metrics: state.metrics.clone(),
            notifier: state.notifier.clone(),
            clock: state.clock.clone(),
            every: std::time::Duration::from_secs(state.cfg.callbacks.dead_probe_s),
            stop: state.stop.clone(),
        }
        .spawn(),
    );
    if let Some(objects) = state.objects.clone() {
        let uploader = archive::Uploader {
            catalog: state.catalog.clone(),
            objects,
            deletes: state.deletes.clone(),
            metrics: state.metrics.clone(),
            notifier: state.notifier.clone(),
            wake: state.upload_wake.clone(),
            stop: state.stop.clone(),
            node_id: state.node_id.clone(),
        };
        tasks.push(uploader.spawn());
    }
    let server = &state.cfg.server;
    let nofile = crate::net::fd_budget::raise_nofile();
    let (rtmp_cap, http_cap) = crate::net::fd_budget::fit(
        nofile,
        server.rtmp_max_connections,
        server.http_max_connections,
    );
    if (rtmp_cap, http_cap) != (server.rtmp_max_connections, server.http_max_connections) {
        tracing::info!(
            nofile,
            rtmp_cap,
            http_cap,
            "connection caps lowered to fit the descriptor limit (ulimit -n), so a flood of connections cannot take the files recordings need"
        );
    }
    let rtmp_limits =
        crate::net::ConnLimits::new(rtmp_cap, server.rtmp_max_connections_per_ip.min(rtmp_cap));
    tasks.push(tokio::spawn(ingest::rtmp::serve(
        state.clone(),
        rtmp,
        rtmp_limits,
    )));
    let app = http::router(state.clone());
    let limits = http::serve::Limits {
        max_connections: http_cap,
        max_connections_per_ip: server.http_max_connections_per_ip.min(http_cap),
        idle: std::time::Duration::from_secs(state.cfg.server.http_idle_timeout_s),
    };
    tasks.push(tokio::spawn(http::serve::serve(http, app, limits)));
    retention_of(&state).spawn(&state.tasks);
    tracing::info!(%rtmp_addr, %http_addr, "livetape serving");
    log_exposure(&state.cfg);
    Ok(Running {
        rtmp_addr,
        http_addr,
        state,
        tasks,
        notifier,
    })
}

/// Says at start-up what is open to whom, loudly for what is open to everyone.
fn log_exposure(cfg: &crate::config::Config) {
    if cfg.push_auth.is_none() {
        tracing::warn!(
            "push auth off ([push_auth] absent): anyone who reaches the RTMP port may publish"
        );
    } else {
        tracing::info!("pushes need txSecret/txTime ([push_auth])");
    }
    if cfg.api.key.is_none() {
        tracing::warn!(
            "REST API /v1 and Live_Tape_GetFilelist open ([api] key absent): anyone who reaches the HTTP port may read them; changes and deletes only from this machine"
        );
    } else {
        tracing::info!("REST API /v1 needs the [api] key as a bearer token");
    }
    if cfg.metrics.require_key {
        tracing::info!("/metrics needs the [api] key");
    } else {
        tracing::info!("/metrics open");
    }
    if cfg.live.play_key.is_none() {
        tracing::info!("playback (/vod, /live) open to anyone with a URL");
    } else {
        tracing::info!("live playback needs txSecret/txTime ([live] play_key); /vod open");
    }
}

/// Refreshes the free-space reading twice a second, logging floor crossings.
async fn watch_disk(st: Arc<AppState>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    let mut was_low = false;
    loop {
        tokio::select! {
            _ = st.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let free = st.disk.refresh();
        let low = st.disk.low();
        if low != was_low {
            if low {
                tracing::warn!(
                    free,
                    floor = st.disk.floor(),
                    "free space below min_free_bytes: recordings stop, new pushes are not recorded"
                );
            } else {
                tracing::info!(
                    free,
                    "free space back above min_free_bytes: pushes are recorded again"
                );
            }
            was_low = low;
        }
    }
}

/// Turns every spool left by an earlier run into a catalogued recording (before any new
/// push can start, so nothing races with it).
async fn recover_spools(st: &Arc<AppState>) {
    let found = match record::recover::scan(&st.storage.spool_dir()) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the spool directory; recovery skipped");
            return;
        }
    };
    // A recording deleted (tombstoned) after its commit but before its spool was removed must
    // not come back from that spool.
    let deleted: std::collections::HashSet<String> = match st.catalog.garbage(&st.node_id).await {
        Ok(g) => g.into_iter().map(|(id, _)| id).collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read deletions; recovery skipped");
            return;
        }
    };
    let total = found.len();
    if total > 0 {
        tracing::info!(
            spools = total,
            "start-up recovery: checking spools left by an earlier run"
        );
    }
    let mut progress =
        crate::metrics::Progress::new("start-up recovery", Some(total), &st.metrics.jobs);
    for (done, f) in found.into_iter().enumerate() {
        progress.tick(done);
        match f {
            record::recover::Found::Spool(c) if deleted.contains(&c.file_id) => {
                let _ = record::recover::remove(&c.spool_path);
            }
            record::recover::Found::Spool(c)
                if c.spool_path.exists() && record::recover::is_empty(&c.spool_path) =>
            {
                tracing::info!(file_id = c.file_id, "empty spool discarded");
                let _ = record::recover::discard(&c.spool_path);
            }
            record::recover::Found::Unreadable { spool, reason } => {
                tracing::error!(spool = %spool.display(), reason, "spool without readable metadata; left in place");
            }
            record::recover::Found::Spool(c) => {
                failpoint::hit("recover.spool");
                match push::is_known(st, &c.file_id).await {
                    Ok(true) => {
                        // Catalogued (or queued for upload) before the crash; only the spool
                        // deletion was missed.
                        let _ = record::recover::remove(&c.spool_path);
                    }
                    Ok(false) => {
                        tracing::info!(
                            file_id = c.file_id,
                            stream = c.ctx.stream,
                            "recovering a recording left by an earlier run"
                        );
                        commit_file(st.clone(), c, None).await;
                    }
                    Err(e) => tracing::error!(error = %e, "catalogue unavailable; spool kept"),
                }
            }
        }
    }
    if total > 0 {
        tracing::info!(
            spools = total,
            took_ms = progress.elapsed_ms(),
            "start-up recovery done"
        );
    }
}

/// Push facts whose catalogue writes an earlier run could not make (the catalogue was away
/// when it stopped or crashed) are written first, so pushes end with their true errcode and
/// time and their events keep their order (see `store::journal`). One that still fails is
/// retried in the background, and stays journaled until written.
async fn replay_journal(st: &Arc<AppState>) {
    let pending = match st.journal.pending() {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the journal of push facts");
            return;
        }
    };
    if pending.is_empty() {
        return;
    }
    tracing::info!(
        facts = pending.len(),
        "writing push facts journaled by an earlier run"
    );
    for (entry, fact) in pending {
        match fact.replay(&st.catalog).await {
            Ok(()) => entry.remove(),
            Err(e) if e.is_transient() => {
                let st = st.clone();
                st.tasks.clone().spawn(async move {
                    let r =
                        push::until_written(&st, "journal", "", None, || fact.replay(&st.catalog));
                    match r.await {
                        Ok(()) => entry.remove(),
                        Err(e) => {
                            tracing::error!(error = %e, "journaled push fact not written; kept")
                        }
                    }
                });
            }
            Err(e) => {
                // The write itself is at fault: no later start can do better.
                tracing::error!(error = %e, ?fact, "journaled push fact refused by the catalogue; dropped");
                entry.remove();
            }
        }
    }
    st.notifier.wake();
}

/// Pushes that were live when the previous run died get their end (and event 0) now, with
/// those of any other node that died meanwhile. Their `push_duration` runs to this start, the
/// only end time known.
async fn end_cut_pushes(st: &Arc<AppState>) {
    leases_of(st)
        .end_orphaned_pushes(&st.node_id, "server restart")
        .await;
    st.notifier.wake();
}

/// The retention job's handles.
fn retention_of(st: &AppState) -> archive::Retention {
    archive::Retention {
        deletes: st.deletes.clone(),
        jobs: st.metrics.jobs.clone(),
        max_bytes: st.cfg.storage.max_bytes,
        period: std::time::Duration::from_secs(st.cfg.storage.retention_check_s.max(1)),
        stop: st.stop.clone(),
    }
}

/// The lease keeper's handles.
fn leases_of(st: &AppState) -> push::leases::Leases {
    push::leases::Leases {
        cfg: st.cfg.clone(),
        catalog: st.catalog.clone(),
        node_id: st.node_id.clone(),
        templates: st.templates.clone(),
        hub: st.hub.clone(),
        notifier: st.notifier.clone(),
        clock: st.clock.clone(),
        stop: st.stop.clone(),
    }
}
