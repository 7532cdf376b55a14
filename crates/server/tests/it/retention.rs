//! Retention end to end: real ffmpeg pushes → catalogued files → `storage_days` expiry and the
//! `max_bytes` budget (oldest first) → rows and files gone together; a deletion cut by a crash
//! is finished at the next start. Time is a manual clock the test moves forward.

use crate::common::*;
use livetape::clock::{Clock, SystemClock};
use livetape::config::Config;
use livetape_catalog::Catalog;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const DAY_MS: i64 = 86_400_000;

/// Wall time plus an offset the test advances (recordings still get distinct, ordered times).
#[derive(Default)]
struct ManualClock {
    offset_ms: AtomicI64,
}

impl ManualClock {
    fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.offset_ms.load(Ordering::SeqCst)
    }
}

struct Server {
    running: livetape::Running,
    receiver: Receiver,
    clock: Arc<ManualClock>,
    cfg: Config,
    dir: tempfile::TempDir,
}

impl Server {
    /// `extra` is TOML (templates, rules, `[storage]`) after a config with ephemeral ports, a
    /// temp data dir and a callback template pointing at the receiver.
    async fn start(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let receiver = Receiver::start().await;
        let toml = format!(
            r#"
            [server]
            rtmp_listen = "127.0.0.1:0"
            http_listen = "127.0.0.1:0"
            data_dir = "{}"
            public_url = "http://127.0.0.1:1"
            [[callback_template]]
            name = "cb"
            key = "{CALLBACK_KEY}"
            record_url = "{u}/record"
            retry_interval_s = 1
            [[callback_rule]]
            template = "cb"
            {extra}
            "#,
            dir.path().display(),
            u = receiver.url
        );
        let cfg = Config::from_toml_str(&toml).expect("test config");
        let clock = Arc::new(ManualClock::default());
        let running = livetape::start(cfg.clone(), clock.clone()).await.unwrap();
        Self {
            running,
            receiver,
            clock,
            cfg,
            dir,
        }
    }

    /// Stops the server and starts a new one on the same data dir, config and clock.
    async fn restart(self) -> Self {
        let Self {
            running,
            receiver,
            clock,
            cfg,
            dir,
        } = self;
        running.shutdown().await;
        let running = livetape::start(cfg.clone(), clock.clone()).await.unwrap();
        Self {
            running,
            receiver,
            clock,
            cfg,
            dir,
        }
    }

    /// Pushes clip-10s to `live/{stream}` and waits for its `n` events 100; returns the
    /// file_ids in arrival order.
    async fn record(&mut self, stream: &str, n: usize) -> Vec<String> {
        assert!(
            publish(
                self.running.rtmp_addr,
                "live",
                stream,
                &fixture(CLIP_10S),
                Pace::Fast
            )
            .await
        );
        let mut ids = Vec::new();
        while ids.len() < n {
            let d = self.receiver.next_of(100).await.body;
            assert_eq!(d["stream_id"], stream, "events of one push at a time");
            ids.push(d["file_id"].as_str().unwrap().to_owned());
        }
        ids
    }

    fn catalog(&self) -> &Catalog {
        self.running.catalog()
    }

    /// Absolute path of a catalogued recording (file, or directory for HLS).
    async fn path_of(&self, file_id: &str) -> PathBuf {
        let r = self
            .catalog()
            .get_recording(file_id)
            .await
            .unwrap()
            .unwrap();
        self.dir.path().join(r.path)
    }

    async fn rest_status(&self, file_id: &str) -> u16 {
        reqwest::get(format!(
            "http://{}/v1/recordings/{file_id}",
            self.running.http_addr
        ))
        .await
        .unwrap()
        .status()
        .as_u16()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_recordings_are_deleted_with_their_files() {
    let mut s = Server::start(
        r#"
        [[record_template]]
        name = "short"
        formats = ["flv", "hls"]
        storage_days = 1
        [[record_template]]
        name = "forever"
        formats = ["flv"]
        [[record_rule]]
        stream = "short*"
        template = "short"
        [[record_rule]]
        stream = "keep*"
        template = "forever"
        [storage]
        min_free_bytes = 0
        "#,
    )
    .await;
    let short = s.record("short1", 2).await;
    let keep = s.record("keep1", 1).await;

    let mut short_paths = Vec::new();
    for id in &short {
        let r = s.catalog().get_recording(id).await.unwrap().unwrap();
        assert_eq!(r.expires_at_ms, Some(r.end_ms + DAY_MS), "{}", r.format);
        short_paths.push(s.path_of(id).await);
    }
    assert!(
        short_paths.iter().any(|p| p.is_dir()),
        "the HLS recording is a directory"
    );
    let r = s.catalog().get_recording(&keep[0]).await.unwrap().unwrap();
    assert_eq!(r.expires_at_ms, None, "storage_days = 0 keeps forever");
    let keep_path = s.path_of(&keep[0]).await;

    // Not yet due: nothing goes.
    assert_eq!(s.running.run_retention().await, 0);
    s.clock.advance(DAY_MS / 2);
    assert_eq!(s.running.run_retention().await, 0);
    for p in &short_paths {
        assert!(p.exists(), "{} kept before expiry", p.display());
    }

    s.clock.advance(2 * DAY_MS);
    assert_eq!(s.running.run_retention().await, 2);
    for (id, p) in short.iter().zip(&short_paths) {
        assert_eq!(s.rest_status(id).await, 404);
        assert!(!p.exists(), "{} deleted", p.display());
    }
    assert_eq!(s.rest_status(&keep[0]).await, 200);
    assert!(keep_path.is_file());
    assert!(s.catalog().garbage("").await.unwrap().is_empty());
    // Idempotent.
    assert_eq!(s.running.run_retention().await, 0);
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_budget_deletes_oldest_first() {
    // An FLV recording of the clip is about the clip's size: the budget holds one, not two.
    let clip = std::fs::metadata(fixture(CLIP_10S)).unwrap().len();
    let max = clip * 3 / 2;
    let mut s = Server::start(&format!(
        r#"
        [[record_template]]
        name = "default"
        formats = ["flv"]
        [storage]
        min_free_bytes = 0
        max_bytes = {max}
        "#
    ))
    .await;
    let mut ids = Vec::new();
    for stream in ["b1", "b2", "b3"] {
        ids.extend(s.record(stream, 1).await);
    }
    let mut paths = Vec::new();
    let mut starts = Vec::new();
    for id in &ids {
        let r = s.catalog().get_recording(id).await.unwrap().unwrap();
        assert!(
            r.size_bytes <= max && 2 * r.size_bytes > max,
            "size {} vs budget {max}",
            r.size_bytes
        );
        starts.push(r.start_ms);
        paths.push(s.path_of(id).await);
    }
    assert!(starts.is_sorted(), "pushed one after another: {starts:?}");
    assert!(s.catalog().total_recording_bytes().await.unwrap() > max);

    assert_eq!(s.running.run_retention().await, 2);
    for i in 0..2 {
        assert_eq!(s.rest_status(&ids[i]).await, 404);
        assert!(!paths[i].exists(), "older file {i} deleted");
    }
    assert_eq!(s.rest_status(&ids[2]).await, 200);
    assert!(paths[2].is_file(), "the newest file stays");
    assert!(s.catalog().total_recording_bytes().await.unwrap() <= max);
    assert_eq!(s.running.run_retention().await, 0);
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_cut_by_a_crash_is_finished_at_start() {
    let mut s = Server::start(
        r#"
        [[record_template]]
        name = "default"
        formats = ["flv"]
        [storage]
        min_free_bytes = 0
        "#,
    )
    .await;
    let cut = s.record("c1", 1).await.remove(0);
    let other = s.record("c2", 1).await.remove(0);
    let cut_path = s.path_of(&cut).await;
    let other_path = s.path_of(&other).await;

    // The crash: the row became a tombstone, the file was never removed.
    let db = Catalog::open(&s.dir.path().join("catalog.db"))
        .await
        .unwrap();
    assert!(db.tombstone_recording(&cut, 1).await.unwrap().is_some());
    db.close().await;
    assert!(cut_path.is_file());
    assert_eq!(
        s.rest_status(&cut).await,
        404,
        "a tombstoned recording is not served"
    );

    let s = s.restart().await;
    assert!(!cut_path.exists(), "the start finished the deletion");
    assert!(s.catalog().garbage("").await.unwrap().is_empty());
    assert!(other_path.is_file(), "other recordings are untouched");
    assert_eq!(s.rest_status(&other).await, 200);

    // The API deletes through the same path: row, file and tombstone all gone.
    let r = reqwest::Client::new()
        .delete(format!(
            "http://{}/v1/recordings/{other}",
            s.running.http_addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(!other_path.exists());
    assert_eq!(s.rest_status(&other).await, 404);
    assert!(s.catalog().garbage("").await.unwrap().is_empty());
    s.running.shutdown().await;
}
