//! What the push life, the HTTP faces and the composition root share. Background jobs do not
//! take it: they get the handles they use (`archive::Deletes`, the uploader's and retention's
//! own handles, the notifier's outbox).

use crate::archive::Deletes;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::record::Parking;
use crate::rules::Templates;
use crate::store::bucket::Objects;
use crate::store::disk::{DiskGuard, Storage};
use livetape_catalog::Catalog;
use livetape_notify::NotifierWaker;
use std::sync::Arc;

/// Everything the ingest tasks and HTTP handlers share.
pub(crate) struct AppState {
    pub cfg: Arc<Config>,
    pub catalog: Catalog,
    pub storage: Storage,
    pub hub: Arc<Hub>,
    /// Record/callback templates and rules (catalogue-backed, editable at run time).
    pub templates: Arc<Templates>,
    /// Push and play auth keys in force (the file's, overridden per domain over API 3.0).
    pub keys: Arc<crate::keys::Keys>,
    /// Recordings waiting out their reconnect window.
    pub parking: Parking,
    pub clock: SharedClock,
    pub notifier: NotifierWaker,
    /// `node` in push callbacks.
    pub node: String,
    /// This node's name in stream leases and outbox claims (`[cluster] node_id`).
    pub node_id: String,
    /// Free space of the data dir against `[storage] min_free_bytes`.
    pub disk: DiskGuard,
    /// Prometheus metrics (`GET /metrics`).
    pub metrics: Arc<Metrics>,
    /// The bucket when `[storage] kind = "s3"`: finished files are uploaded (`archive`).
    pub objects: Option<Arc<Objects>>,
    /// Two-phase deletes of recordings (API and retention).
    pub deletes: Deletes,
    /// Push facts whose catalogue write failed, kept until written (`store::journal`).
    pub(crate) journal: crate::store::journal::Journal,
    /// Wakes the uploader after a file is queued.
    pub(crate) upload_wake: Arc<tokio::sync::Notify>,
    /// Cancelled when the server stops: no new pushes, publishers are closed.
    pub(crate) stop: tokio_util::sync::CancellationToken,
    /// Connection and finalize tasks, awaited by a graceful stop.
    pub(crate) tasks: tokio_util::task::TaskTracker,
}
