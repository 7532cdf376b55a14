//! `GET /metrics`: Prometheus metrics (names `livetape_*`, listed in the README).
//!
//! Every hot-path metric is a `prometheus-client` [`Counter`]/[`Gauge`], i.e. one `Arc`ed
//! atomic updated with a relaxed add: ingest counts bytes once per socket read, the recorder
//! once per `write_out`/flush, never per frame. Labelled families (a read lock) are only touched
//! per HTTP request, per finished file or per refused publish. What the catalogue or the hub
//! knows (outbox depth, live streams) is read at scrape time instead of being tracked.

use crate::model::Format;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

/// Upper bounds (seconds) of the HTTP latency buckets: 1 ms (a cached catalogue read) to 10 s.
const HTTP_BUCKETS_S: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// The OpenMetrics media type; served when the scraper asks for it (Prometheus does).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic Prometheus text format (0.0.4), served otherwise.
pub const PROMETHEUS_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FormatLabel {
    format: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabel {
    job: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    /// The route template (`/vod/{file_id}/{name}`), never the raw path: bounded cardinality.
    route: String,
    method: &'static str,
    /// `2xx`, `4xx`, …
    status: &'static str,
}

/// Why a publish was refused (`livetape_rtmp_publish_refused_total{reason}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Push authentication (`txSecret`/`txTime`) failed.
    Auth,
    /// The stream is already being published.
    Duplicate,
    /// Empty or too long app/stream name.
    BadName,
    /// The catalogue could not record the push.
    Internal,
    /// Over a connection cap (`[server] rtmp_max_connections*`), closed at accept.
    ConnectionLimit,
    /// No `publish` within [`crate::config::PUBLISH_DEADLINE`] of accept.
    PublishDeadline,
    /// Over `[server] rtmp_pre_publish_budget_bytes` before publishing.
    MemoryBudget,
    /// Forbidden until a time (Tencent API `ForbidLiveStream`).
    Forbidden,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Duplicate => "duplicate",
            Self::BadName => "bad_name",
            Self::Internal => "internal",
            Self::ConnectionLimit => "connection_limit",
            Self::PublishDeadline => "publish_deadline",
            Self::MemoryBudget => "memory_budget",
            Self::Forbidden => "forbidden",
        }
    }
}

/// The recorder's meters, cloned into each [`crate::record::Recorder`] (cheap: two `Arc`s).
/// `Default` gives detached meters, for recorders outside a server (tests, tools).
#[derive(Clone, Debug, Default)]
pub struct RecordMeters {
    pub(crate) written: Counter,
    pub(crate) open: Gauge,
    /// Frames a recording could not take, by reason (see [`DropReason`]).
    dropped: Family<ReasonLabel, Counter>,
}

/// Why the recorder left frames out (`livetape_recording_dropped_frames_total{reason}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Before the stream's first video keyframe (a file starts at one).
    BeforeKeyframe,
    /// A track that appeared mid-file, until the file split at the next keyframe to take it
    /// (formats whose track list is fixed at the start: MP4, M4A).
    TrackJoining,
}

impl DropReason {
    const ALL: [Self; 2] = [Self::BeforeKeyframe, Self::TrackJoining];

    fn as_str(self) -> &'static str {
        match self {
            Self::BeforeKeyframe => "before_keyframe",
            Self::TrackJoining => "track_joining",
        }
    }
}

impl RecordMeters {
    /// Counts frames left out of a recording (once per batch, not per frame).
    pub(crate) fn dropped(&self, why: DropReason, n: u64) {
        if n > 0 {
            self.dropped
                .get_or_create(&ReasonLabel {
                    reason: why.as_str(),
                })
                .inc_by(n);
        }
    }
}

/// Accounts one open recording file: counted open while alive, and its spool bytes reported
/// as they reach the OS ([`FileMeter::sync`], once per write-out, not per frame).
#[derive(Debug)]
pub(crate) struct FileMeter {
    meters: RecordMeters,
    reported: u64,
}

impl FileMeter {
    pub(crate) fn new(meters: &RecordMeters) -> Self {
        meters.open.inc();
        Self {
            meters: meters.clone(),
            reported: 0,
        }
    }

    /// `flushed`: the spool's total bytes handed to the OS so far.
    pub(crate) fn sync(&mut self, flushed: u64) {
        if flushed > self.reported {
            self.meters.written.inc_by(flushed - self.reported);
            self.reported = flushed;
        }
    }
}

impl Drop for FileMeter {
    fn drop(&mut self) {
        self.meters.open.dec();
    }
}

/// Counts a live viewer while alive (see [`Metrics::viewer`]).
#[derive(Debug)]
pub struct ViewerGuard(Gauge);

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Every metric of the server (one per running server), encoded by [`Metrics::encode`].
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    live_streams: Gauge,
    viewers: Gauge,
    ingest_bytes: Counter,
    playback_bytes: Counter,
    record: RecordMeters,
    quarantined: Counter,
    catalogue_retries: Counter,
    finished: Family<FormatLabel, Counter>,
    failed: Family<FormatLabel, Counter>,
    outbox_pending: Gauge,
    outbox_dead: Gauge,
    outbox_oldest_age: Gauge<f64, AtomicU64>,
    deliveries: Family<ResultLabel, Counter>,
    given_up: Counter,
    http: Family<HttpLabels, Histogram>,
    rtmp_connections: Counter,
    rtmp_publishes: Counter,
    rtmp_refused: Family<ReasonLabel, Counter>,
    uploads_pending: Gauge,
    uploaded_bytes: Counter,
    upload_failures: Counter,
    job_done: Family<JobLabel, Gauge>,
    job_total: Family<JobLabel, Gauge>,
    /// Long jobs running now (see [`Progress`]).
    pub(crate) jobs: Jobs,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("livetape");
        let m = Self {
            registry: Registry::default(),
            live_streams: Gauge::default(),
            viewers: Gauge::default(),
            ingest_bytes: Counter::default(),
            playback_bytes: Counter::default(),
            record: RecordMeters::default(),
            quarantined: Counter::default(),
            catalogue_retries: Counter::default(),
            finished: Family::default(),
            failed: Family::default(),
            outbox_pending: Gauge::default(),
            outbox_dead: Gauge::default(),
            outbox_oldest_age: Gauge::default(),
            deliveries: Family::default(),
            given_up: Counter::default(),
            http: Family::new_with_constructor(|| Histogram::new(HTTP_BUCKETS_S)),
            rtmp_connections: Counter::default(),
            rtmp_publishes: Counter::default(),
            rtmp_refused: Family::default(),
            uploads_pending: Gauge::default(),
            uploaded_bytes: Counter::default(),
            upload_failures: Counter::default(),
            job_done: Family::default(),
            job_total: Family::default(),
            jobs: Jobs::default(),
        };
        // Known label values exist from the start (at 0), so rates and alerts see them.
        for f in Format::ALL {
            let l = FormatLabel { format: f.as_str() };
            let _ = m.finished.get_or_create(&l);
            let _ = m.failed.get_or_create(&l);
        }
        for result in ["ok", "failed"] {
            let _ = m.deliveries.get_or_create(&ResultLabel { result });
        }
        for why in DropReason::ALL {
            let _ = m.record.dropped.get_or_create(&ReasonLabel {
                reason: why.as_str(),
            });
        }
        for why in [
            Refusal::Auth,
            Refusal::Duplicate,
            Refusal::BadName,
            Refusal::Internal,
            Refusal::ConnectionLimit,
            Refusal::PublishDeadline,
            Refusal::MemoryBudget,
            Refusal::Forbidden,
        ] {
            let _ = m.rtmp_refused.get_or_create(&ReasonLabel {
                reason: why.as_str(),
            });
        }
        r.register(
            "live_streams",
            "Streams being published now",
            m.live_streams.clone(),
        );
        r.register("viewers", "Live viewers connected now", m.viewers.clone());
        r.register_with_unit(
            "ingest_received",
            "Bytes read from RTMP publishers' sockets",
            Unit::Bytes,
            m.ingest_bytes.clone(),
        );
        r.register_with_unit(
            "playback_sent",
            "Bytes of playback response bodies (Content-Length of the served range)",
            Unit::Bytes,
            m.playback_bytes.clone(),
        );
        r.register(
            "recordings_open",
            "Recording files being written (including those parked in a reconnect window)",
            m.record.open.clone(),
        );
        r.register(
            "recordings_finished",
            "Recording files finalized and catalogued",
            m.finished.clone(),
        );
        r.register(
            "recordings_failed",
            "Recordings that failed to start, stopped on an error, or could not be finalized or catalogued",
            m.failed.clone(),
        );
        r.register_with_unit(
            "recording_written",
            "Bytes the recorders wrote to their spools",
            Unit::Bytes,
            m.record.written.clone(),
        );
        r.register(
            "recording_dropped_frames",
            "Frames left out of recordings, by reason: before_keyframe (a file starts at the first video keyframe), track_joining (a track that appeared mid-file in a format with a fixed track list, until the split that takes it)",
            m.record.dropped.clone(),
        );
        r.register(
            "catalogue_write_retries",
            "Catalogue writes of a push (session end, status events, a file's row and event 100) that failed and were tried again (push/retry.rs); rising while the catalogue is away",
            m.catalogue_retries.clone(),
        );
        r.register(
            "spools_quarantined",
            "Spools that can never be finalized (malformed content), moved to spool/quarantine/",
            m.quarantined.clone(),
        );
        r.register(
            "outbox_pending",
            "Callback events not yet delivered nor given up (read at scrape time)",
            m.outbox_pending.clone(),
        );
        r.register(
            "outbox_dead",
            "Callback events given up after their template's retries and not delivered since (resent when their receiver answers again; read at scrape time)",
            m.outbox_dead.clone(),
        );
        r.register_with_unit(
            "outbox_oldest_pending_age",
            "Age of the oldest pending callback event, 0 when none (read at scrape time)",
            Unit::Seconds,
            m.outbox_oldest_age.clone(),
        );
        r.register(
            "callback_deliveries",
            "Callback POST attempts by result: ok (HTTP 200) or failed (anything else)",
            m.deliveries.clone(),
        );
        r.register(
            "callback_given_up",
            "Callback events given up after their last retry",
            m.given_up.clone(),
        );
        r.register_with_unit(
            "http_request_duration",
            "HTTP request latency to the response head, by route template, method and status class",
            Unit::Seconds,
            m.http.clone(),
        );
        r.register(
            "rtmp_connections",
            "RTMP connections accepted",
            m.rtmp_connections.clone(),
        );
        r.register(
            "rtmp_publishes",
            "RTMP publishes accepted",
            m.rtmp_publishes.clone(),
        );
        r.register(
            "rtmp_publish_refused",
            "RTMP publishes refused, by reason (connection_limit and publish_deadline: connections closed before any publish)",
            m.rtmp_refused.clone(),
        );
        r.register(
            "job_done",
            "Items a long job running now has done (start-up recovery: spools; retention: \
             recordings deleted; uploads: files), by job; absent when none runs",
            m.job_done.clone(),
        );
        r.register(
            "job_total",
            "Items a long job running now has to do, when known ahead (start-up recovery)",
            m.job_total.clone(),
        );
        r.register(
            "uploads_pending",
            "Finished files waiting to be uploaded to object storage (read at scrape time)",
            m.uploads_pending.clone(),
        );
        r.register_with_unit(
            "uploaded",
            "Bytes uploaded to object storage",
            Unit::Bytes,
            m.uploaded_bytes.clone(),
        );
        r.register(
            "upload_failures",
            "Failed upload attempts to object storage (each is retried)",
            m.upload_failures.clone(),
        );
        Self { registry: r, ..m }
    }

    /// A live viewer connected; pair with [`Metrics::viewer_gone`] (or use [`Metrics::viewer`]).
    pub fn viewer_connected(&self) {
        self.viewers.inc();
    }

    pub fn viewer_gone(&self) {
        self.viewers.dec();
    }

    /// Counts a viewer until the guard is dropped (`'static`, can move into a task).
    pub fn viewer(&self) -> ViewerGuard {
        self.viewers.inc();
        ViewerGuard(self.viewers.clone())
    }

    /// Bytes sent to players (playback bodies).
    pub fn add_bytes_out(&self, n: u64) {
        self.playback_bytes.inc_by(n);
    }

    /// Bytes read from a publisher's socket (once per read).
    pub(crate) fn add_bytes_in(&self, n: usize) {
        self.ingest_bytes.inc_by(n as u64);
    }

    pub(crate) fn record_meters(&self) -> RecordMeters {
        self.record.clone()
    }

    pub(crate) fn recording_finished(&self, f: Format) {
        self.finished
            .get_or_create(&FormatLabel { format: f.as_str() })
            .inc();
    }

    pub(crate) fn recording_failed(&self, f: Format) {
        self.failed
            .get_or_create(&FormatLabel { format: f.as_str() })
            .inc();
    }

    /// A spool that can never be finalized was moved aside.
    pub(crate) fn spool_quarantined(&self) {
        self.quarantined.inc();
    }

    /// A push's catalogue write failed and will be tried again.
    pub(crate) fn catalogue_retry(&self) {
        self.catalogue_retries.inc();
    }

    pub(crate) fn delivery(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.deliveries.get_or_create(&ResultLabel { result }).inc();
    }

    pub(crate) fn delivery_given_up(&self) {
        self.given_up.inc();
    }

    pub(crate) fn rtmp_connection(&self) {
        self.rtmp_connections.inc();
    }

    pub(crate) fn rtmp_publish(&self) {
        self.rtmp_publishes.inc();
    }

    pub(crate) fn rtmp_refused(&self, why: Refusal) {
        self.rtmp_refused
            .get_or_create(&ReasonLabel {
                reason: why.as_str(),
            })
            .inc();
    }

    /// One HTTP request: its route template, method and status class (`2xx`, …).
    pub(crate) fn observe_http(
        &self,
        route: &str,
        method: &'static str,
        status: &'static str,
        secs: f64,
    ) {
        let labels = HttpLabels {
            route: route.to_owned(),
            method,
            status,
        };
        self.http.get_or_create(&labels).observe(secs);
    }

    pub(crate) fn uploaded(&self, bytes: u64) {
        self.uploaded_bytes.inc_by(bytes);
    }

    pub(crate) fn upload_failed(&self) {
        self.upload_failures.inc();
    }

    pub(crate) fn set_uploads_pending(&self, n: u64) {
        self.uploads_pending
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn set_outbox_dead(&self, n: u64) {
        self.outbox_dead.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Sets the gauges read at scrape time.
    pub(crate) fn set_snapshot(&self, live_streams: usize, pending: u64, oldest_age_s: f64) {
        self.live_streams
            .set(i64::try_from(live_streams).unwrap_or(i64::MAX));
        self.outbox_pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        self.outbox_oldest_age.set(oldest_age_s);
    }

    /// Sets the job gauges from the jobs running now (at scrape time).
    pub(crate) fn set_jobs(&self) {
        self.job_done.clear();
        self.job_total.clear();
        for j in self.jobs.running() {
            let l = JobLabel { job: j.job };
            self.job_done
                .get_or_create(&l)
                .set(i64::try_from(j.done).unwrap_or(i64::MAX));
            if let Some(t) = j.total {
                self.job_total
                    .get_or_create(&l)
                    .set(i64::try_from(t).unwrap_or(i64::MAX));
            }
        }
    }

    /// The text exposition: OpenMetrics 1.0 or Prometheus 0.0.4.
    pub fn encode(&self, openmetrics: bool) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let res = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        };
        // Writing into a String cannot fail; the encoder only propagates the writer's errors.
        debug_assert!(res.is_ok());
        out
    }
}

/// The long jobs running now, by name, each while its [`Progress`] lives: what `/metrics`
/// (`livetape_job_done`, `livetape_job_total`) and `GET /v1/jobs` (the console's running
/// jobs) show. A handful of entries, updated a few times a second at most: one mutex.
#[derive(Clone, Debug, Default)]
pub(crate) struct Jobs(
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<&'static str, JobState>>>,
);

/// How far one running job is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JobState {
    pub job: &'static str,
    pub done: u64,
    pub total: Option<u64>,
    pub started: std::time::Instant,
}

impl JobState {
    pub(crate) fn per_s(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(0.001)
    }
}

impl Jobs {
    /// The jobs running now, by name.
    pub(crate) fn running(&self) -> Vec<JobState> {
        self.lock().values().copied().collect()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<&'static str, JobState>> {
        // A panic while holding it left plain numbers behind: still good to read.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A long job (start-up recovery of many spools, a retention sweep that deletes many files,
/// the uploads of a backlog): listed in [`Jobs`] while it lives, and log lines of how far it
/// is, its rate and, with a known total, the time left — at most every [`Progress::EVERY`],
/// so a quick job says nothing until its summary.
pub(crate) struct Progress {
    job: &'static str,
    total: Option<usize>,
    started: std::time::Instant,
    last: std::time::Instant,
    jobs: Jobs,
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.jobs.lock().remove(self.job);
    }
}

impl Progress {
    pub(crate) const EVERY: std::time::Duration = std::time::Duration::from_secs(2);

    pub(crate) fn new(job: &'static str, total: Option<usize>, jobs: &Jobs) -> Self {
        let now = std::time::Instant::now();
        jobs.lock().insert(
            job,
            JobState {
                job,
                done: 0,
                total: total.map(|t| t as u64),
                started: now,
            },
        );
        Self {
            job,
            total,
            started: now,
            last: now,
            jobs: jobs.clone(),
        }
    }

    /// `done` items so far.
    pub(crate) fn tick(&mut self, done: usize) {
        if let Some(j) = self.jobs.lock().get_mut(self.job) {
            j.done = done as u64;
        }
        if self.last.elapsed() < Self::EVERY {
            return;
        }
        self.last = std::time::Instant::now();
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        match self.total {
            Some(total) => tracing::info!(
                job = self.job,
                done,
                total,
                per_s = format!("{rate:.1}"),
                eta_s = (total.saturating_sub(done) as f64 / rate.max(0.001)).round(),
                "in progress"
            ),
            None => tracing::info!(
                job = self.job,
                done,
                per_s = format!("{rate:.1}"),
                "in progress"
            ),
        }
    }

    pub(crate) fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_job_is_exposed_until_it_ends() {
        let m = Metrics::new();
        let mut p = Progress::new("start-up recovery", Some(7), &m.jobs);
        p.tick(3);
        m.set_jobs();
        let s = series(&m.encode(false));
        assert_eq!(s["livetape_job_done{job=\"start-up recovery\"}"], 3.0);
        assert_eq!(s["livetape_job_total{job=\"start-up recovery\"}"], 7.0);
        let running = m.jobs.running();
        assert_eq!((running[0].job, running[0].done), ("start-up recovery", 3));
        drop(p);
        m.set_jobs();
        assert!(m.jobs.running().is_empty());
        let s = series(&m.encode(false));
        assert!(!s.keys().any(|k| k.starts_with("livetape_job_")), "{s:?}");
    }

    /// `name{labels} value` lines of an exposition, by full series text.
    fn series(text: &str) -> std::collections::HashMap<String, f64> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                (k.to_owned(), v.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn encodes_every_metric_with_units_and_labels() {
        let m = Metrics::new();
        m.add_bytes_in(1000);
        m.add_bytes_in(24);
        m.add_bytes_out(7);
        let meters = m.record_meters();
        {
            let mut f = FileMeter::new(&meters);
            f.sync(100);
            f.sync(100);
            f.sync(250);
            assert_eq!(meters.open.get(), 1);
        }
        let _g = m.viewer();
        let g2 = m.viewer();
        drop(g2);
        m.viewer_connected();
        m.viewer_gone();
        m.recording_finished(Format::Flv);
        m.recording_failed(Format::Mp4);
        m.delivery(true);
        m.delivery(true);
        m.delivery(false);
        m.rtmp_connection();
        m.rtmp_refused(Refusal::Duplicate);
        m.observe_http("/v1/recordings", "GET", "2xx", 0.003);
        m.set_snapshot(2, 5, 1.5);

        let text = m.encode(false);
        let s = series(&text);
        let get = |k: &str| *s.get(k).unwrap_or_else(|| panic!("{k} missing in\n{text}"));
        assert_eq!(get("livetape_ingest_received_bytes_total"), 1024.0);
        assert_eq!(get("livetape_playback_sent_bytes_total"), 7.0);
        assert_eq!(get("livetape_recording_written_bytes_total"), 250.0);
        assert_eq!(get("livetape_recordings_open"), 0.0);
        assert_eq!(get("livetape_viewers"), 1.0);
        assert_eq!(get("livetape_live_streams"), 2.0);
        assert_eq!(get("livetape_outbox_pending"), 5.0);
        assert_eq!(get("livetape_outbox_oldest_pending_age_seconds"), 1.5);
        assert_eq!(
            get(r#"livetape_recordings_finished_total{format="flv"}"#),
            1.0
        );
        assert_eq!(
            get(r#"livetape_recordings_finished_total{format="mp4"}"#),
            0.0
        );
        assert_eq!(
            get(r#"livetape_recordings_failed_total{format="mp4"}"#),
            1.0
        );
        assert_eq!(
            get(r#"livetape_callback_deliveries_total{result="ok"}"#),
            2.0
        );
        assert_eq!(
            get(r#"livetape_callback_deliveries_total{result="failed"}"#),
            1.0
        );
        assert_eq!(get("livetape_rtmp_connections_total"), 1.0);
        assert_eq!(
            get(r#"livetape_rtmp_publish_refused_total{reason="duplicate"}"#),
            1.0
        );
        assert_eq!(
            get(r#"livetape_rtmp_publish_refused_total{reason="auth"}"#),
            0.0
        );
        let h = r#"livetape_http_request_duration_seconds_bucket{route="/v1/recordings",method="GET",status="2xx",le="0.0025"}"#;
        assert_eq!(get(h), 0.0);
        let h = r#"livetape_http_request_duration_seconds_bucket{route="/v1/recordings",method="GET",status="2xx",le="0.005"}"#;
        assert_eq!(get(h), 1.0);
        let c = r#"livetape_http_request_duration_seconds_count{route="/v1/recordings",method="GET",status="2xx"}"#;
        assert_eq!(get(c), 1.0);
        assert!(text.contains("# TYPE livetape_ingest_received_bytes_total counter\n"));
        assert!(text.contains("# TYPE livetape_http_request_duration_seconds histogram\n"));

        let om = m.encode(true);
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(
            om.contains("# UNIT livetape_ingest_received_bytes bytes\n"),
            "{om}"
        );
        assert!(
            om.contains("livetape_ingest_received_bytes_total 1024\n"),
            "{om}"
        );
    }
}
