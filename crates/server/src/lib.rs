//! livetape: RTMP in → stream hub → recorders → storage → catalogue → notifier; the HTTP API
//! reads the catalogue and storage. Module order below follows that flow.

pub mod api;
pub mod bench;
pub mod clock;
mod cluster;
pub mod config;
pub mod console;
pub mod deliveries;
mod events;
pub mod failpoint;
pub mod hub;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod model;
pub mod objects;
mod outbox;
pub mod query;
pub mod record;
pub(crate) mod retention;
pub mod storage;
pub mod templates;
pub(crate) mod upload;

use clock::SharedClock;
use config::Config;
use hub::Hub;
use livetape_catalog::Catalog;
use livetape_notify::{NotifierHandle, NotifierWaker};
use std::net::SocketAddr;
use std::sync::Arc;
use storage::Storage;
use tokio::net::TcpListener;

/// Everything the ingest tasks and HTTP handlers share.
pub struct AppState {
    pub cfg: Arc<Config>,
    pub catalog: Catalog,
    pub storage: Storage,
    pub hub: Arc<Hub>,
    /// Record/callback templates and rules (catalogue-backed, editable at run time).
    pub templates: Arc<templates::Templates>,
    /// Recordings waiting out their reconnect window.
    pub parking: record::Parking,
    pub clock: SharedClock,
    pub notifier: NotifierWaker,
    /// `node` in push callbacks.
    pub node: String,
    /// This node's name in stream leases and outbox claims (`[cluster] node_id`).
    pub node_id: String,
    /// Free space of the data dir against `[storage] min_free_bytes`.
    pub disk: storage::DiskGuard,
    /// Prometheus metrics (`GET /metrics`).
    pub metrics: Arc<metrics::Metrics>,
    /// The bucket when `[storage] kind = "s3"`: finished files are uploaded (`upload`).
    pub objects: Option<Arc<objects::Objects>>,
    /// Wakes the uploader after a file is queued.
    pub(crate) upload_wake: tokio::sync::Notify,
    /// Cancelled when the server stops: no new pushes, publishers are closed.
    pub(crate) stop: tokio_util::sync::CancellationToken,
    /// Connection and finalize tasks, awaited by a graceful stop.
    pub(crate) tasks: tokio_util::task::TaskTracker,
}

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
    Objects(#[from] objects::ObjectError),
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
    pub state: Arc<AppState>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    notifier: NotifierHandle,
}

impl Running {
    /// Enforces retention now (at the clock's current time) instead of waiting for the next
    /// `retention_check_s` tick; returns how many recordings were deleted.
    pub async fn run_retention(&self) -> usize {
        retention::enforce(&self.state, self.state.clock.now_ms()).await
    }

    /// Graceful stop: refuse new pushes, close publishers, finalize and catalogue every open
    /// recording (reconnect windows included), deliver queued callbacks for up to
    /// `shutdown_flush_s`, then stop. Anything left is picked up by the next start.
    pub async fn shutdown(self) {
        let st = &self.state;
        st.stop.cancel();
        st.tasks.close();
        st.tasks.wait().await;
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
        let deadline = tokio::time::Instant::now()
            + std::time::Duration::from_secs(st.cfg.server.shutdown_flush_s);
        loop {
            match st.catalog.outbox_due(st.clock.now_ms()).await {
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
    let objects = upload::objects_from(&cfg)?;
    // The config file seeds templates and rules once; afterwards the catalogue is the truth.
    catalog
        .seed_templates(&templates::seed_from_config(&cfg), clock.now_ms())
        .await?;
    let templates = Arc::new(templates::Templates::load(&catalog).await?);
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
    let node_id = cluster::node_id(&cfg, storage.root()).map_err(|source| StartError::DataDir {
        path: storage.root().join(cluster::NODE_ID_FILE),
        source,
    })?;
    // A node that starts publishes and sends nothing: its leases and claims from before a
    // crash are void.
    catalog.release_node_leases(&node_id).await?;
    catalog.release_node_claims(&node_id).await?;
    let notifier = outbox::spawn_notifier(
        catalog.clone(),
        clock.clone(),
        metrics.clone(),
        outbox::Claims::new(&node_id, &cfg),
    )?;
    let node = if cfg.server.node.is_empty() {
        rtmp_addr.ip().to_string()
    } else {
        cfg.server.node.clone()
    };
    let (cfg_root, cfg_floor) = (storage.root().to_path_buf(), cfg.storage.min_free_bytes);
    let state = Arc::new(AppState {
        cfg,
        catalog,
        storage,
        hub: Arc::new(Hub::default()),
        templates,
        parking: record::Parking::default(),
        clock,
        notifier: notifier.waker(),
        node,
        node_id,
        disk: storage::DiskGuard::new(&cfg_root, cfg_floor),
        metrics,
        objects,
        upload_wake: tokio::sync::Notify::new(),
        stop: tokio_util::sync::CancellationToken::new(),
        tasks: tokio_util::task::TaskTracker::new(),
    });
    recover_spools(&state).await;
    end_cut_pushes(&state).await;
    retention::sweep_garbage(&state).await;
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(watch_disk(state.clone())));
    tasks.push(cluster::spawn_lease_keeper(state.clone()));
    if let Some(objects) = state.objects.clone() {
        tasks.push(upload::spawn(state.clone(), objects));
    }
    tasks.push(tokio::spawn(ingest::serve(state.clone(), rtmp)));
    let app = api::router(state.clone());
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(
            http,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        {
            tracing::error!(error = %e, "http server stopped");
        }
    }));
    retention::spawn(state.clone());
    tracing::info!(%rtmp_addr, %http_addr, "livetape serving");
    Ok(Running {
        rtmp_addr,
        http_addr,
        state,
        tasks,
        notifier,
    })
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
                    "free space back above min_free_bytes: new pushes are recorded"
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
    let deleted: std::collections::HashSet<String> = match st.catalog.garbage().await {
        Ok(g) => g.into_iter().map(|(id, _)| id).collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read deletions; recovery skipped");
            return;
        }
    };
    for f in found {
        match f {
            record::recover::Found::Spool(c) if deleted.contains(&c.file_id) => {
                let _ = record::recover::remove(&c.spool_path);
            }
            record::recover::Found::Spool(c)
                if c.spool_path.exists() && record::recover::is_empty(&c.spool_path) =>
            {
                tracing::info!(file_id = c.file_id, "empty spool discarded");
                if c.spool_path.is_dir() {
                    let _ = std::fs::remove_dir(&c.spool_path);
                }
                let _ = record::recover::remove(&c.spool_path);
            }
            record::recover::Found::Unreadable { spool, reason } => {
                tracing::error!(spool = %spool.display(), reason, "spool without readable metadata; left in place");
            }
            record::recover::Found::Spool(c) => {
                failpoint::hit("recover.spool");
                match upload::is_known(st, &c.file_id).await {
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
}

/// Pushes that were live when the previous run died get their end (and event 0) now, with
/// those of any other node that died meanwhile. Their `push_duration` runs to this start, the
/// only end time known.
async fn end_cut_pushes(st: &Arc<AppState>) {
    cluster::end_orphaned_pushes(st, &st.node_id, "server restart").await;
    st.notifier.wake();
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
    let st2 = st.clone();
    let res = tokio::task::spawn_blocking(move || {
        let now = st2.clock.now_ms();
        record::finalize(c, &st2.storage, st2.cfg.public_url(), now)
    })
    .await;
    let done = match res {
        Ok(Ok(done)) => done,
        Ok(Err(record::RecordError::Empty { path, .. })) => {
            tracing::warn!(stream, file_id, "spool held no media frame; discarded");
            if let Err(e) = record::recover::remove(&path) {
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
            emit_statuses(&st, &ctx, vec![status]).await;
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
    let event = events::record_file(&st.cfg, callbacks.as_ref(), &done.recording, now);
    let res = match &st.objects {
        // Not catalogued yet: queued for upload, its event 100 held until the object is in
        // the bucket (`upload`).
        Some(objects) => {
            let key = objects.key_for(&done.recording.path);
            let events = event.into_iter().collect();
            st.catalog
                .insert_upload(&done.recording, &key, &st.node_id, events, now)
                .await
        }
        None => {
            st.catalog
                .insert_recording(&done.recording, event.into_iter().collect())
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

/// Queues event 332 for each recording status change.
pub(crate) async fn emit_statuses(
    st: &AppState,
    ctx: &record::RecordContext,
    statuses: Vec<record::RecordStatus>,
) {
    let events = status_events(st, ctx, statuses);
    if events.is_empty() {
        return;
    }
    if let Err(e) = st.catalog.insert_events(events).await {
        tracing::error!(stream = ctx.stream, error = %e, "could not queue record status events");
    }
    st.notifier.wake();
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
        .filter_map(|s| events::record_status(&st.cfg, ctx, s, now))
        .collect()
}
