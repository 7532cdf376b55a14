//! `[storage] kind = "s3"` against a real S3-compatible server (`s3s-fs`): uploads (single
//! PUT, multipart, HLS), playback from the bucket through livetape, event 100 held until the
//! object is in place, retries while the bucket is down, and crashes mid-upload.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Polls `cond` until true (for states no event announces); fails after [`WAIT`].
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut cond: impl FnMut() -> F) {
    let deadline = std::time::Instant::now() + WAIT;
    while !cond().await {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn get_range(url: &str, range: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .header("range", range)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_are_uploaded_and_played_back_from_the_bucket() {
    let bucket_dir = tempfile::tempdir().unwrap();
    let port = S3Server::free_port();
    let s3 = S3Server::start_on(bucket_dir.path(), port).await;
    let mut s = TestServer::start(&format!(
        r#"
        [[record_template]]
        name = "default"
        formats = ["mp4", "hls"]
        hls_target_s = 2
        {}
        "#,
        S3Server::toml(port, "keep_local = false")
    ))
    .await;
    assert!(s.publish("live", "s3a", &fixture(CLIP_10S)).await);
    let mut files = Vec::new();
    for _ in 0..2 {
        files.push(s.receiver.next_of(100).await.body);
    }
    files.sort_by_key(|f| f["file_format"].as_str().unwrap().to_owned());
    let (hls, mp4) = (&files[0], &files[1]);
    assert_eq!(
        (hls["file_format"].as_str(), mp4["file_format"].as_str()),
        (Some("hls"), Some("mp4"))
    );
    let cat = s.running.catalog();

    // MP4: the object holds exactly the recording, and the local copy goes.
    let id = mp4["file_id"].as_str().unwrap();
    let rec = cat.get_recording(id).await.unwrap().unwrap();
    let key = cat.object_key(id).await.unwrap().unwrap();
    assert_eq!(key, format!("lt/v1/{}", rec.path));
    let object = std::fs::read(s3.object_path(&key)).unwrap();
    assert_eq!(object.len() as u64, mp4["file_size"].as_u64().unwrap());
    let local = s.data_path(&rec.path);
    until("local copy removed", || {
        let l = local.clone();
        async move { !l.exists() }
    })
    .await;
    let url = s.local_url(mp4["video_url"].as_str().unwrap());
    let whole = reqwest::get(&url).await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    let etag = whole.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(whole.bytes().await.unwrap(), object);
    let r = get_range(&url, "bytes=100-1099").await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 100-1099/{}", object.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap(), object[100..1100]);
    let r = get_range(&url, "bytes=-500").await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), object[object.len() - 500..]);
    let r = get_range(&url, &format!("bytes={}-", object.len())).await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{}", object.len()).as_str()
    );
    let head = reqwest::Client::new().head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["content-length"],
        object.len().to_string().as_str()
    );
    let cached = reqwest::Client::new()
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    // ffprobe reads the whole recording through livetape (range requests for the moov).
    assert_eq!(probe_counts(Path::new(&url)), (300, 470));

    // HLS: every segment, then the playlist, is in the bucket and served from it.
    let hid = hls["file_id"].as_str().unwrap();
    let hrec = cat.get_recording(hid).await.unwrap().unwrap();
    let hkey = cat.object_key(hid).await.unwrap().unwrap();
    let hlocal = s.data_path(&hrec.path);
    until("local HLS dir removed", || {
        let l = hlocal.clone();
        async move { !l.exists() }
    })
    .await;
    let purl = s.local_url(hls["video_url"].as_str().unwrap());
    let playlist = reqwest::get(&purl).await.unwrap().text().await.unwrap();
    assert_eq!(
        playlist,
        std::fs::read_to_string(s3.object_path(&format!("{hkey}/playlist.m3u8"))).unwrap()
    );
    let segs: Vec<&str> = playlist.lines().filter(|l| l.starts_with("seg-")).collect();
    assert!(segs.len() >= 4, "{playlist}");
    let mut total = playlist.len() as u64;
    for seg in &segs {
        let body = reqwest::get(purl.replace("playlist.m3u8", seg))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(
            body,
            std::fs::read(s3.object_path(&format!("{hkey}/{seg}"))).unwrap()
        );
        total += body.len() as u64;
    }
    assert_eq!(
        metric(&s.http(""), "livetape_uploaded_bytes_total").await,
        (object.len() as u64 + total) as f64
    );
    assert_eq!(metric(&s.http(""), "livetape_uploads_pending").await, 0.0);

    // Deleting a recording deletes its object.
    let del = reqwest::Client::new()
        .delete(s.http(&format!("/v1/recordings/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    assert!(!s3.object_path(&key).exists());
    assert_eq!(
        reqwest::get(&url).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    // Deleting an HLS recording deletes its playlist and every segment (a prefix, not one
    // key: s3s-fs keeps it as a directory and refuses to delete that before its contents).
    let del = reqwest::Client::new()
        .delete(s.http(&format!("/v1/recordings/{hid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    until("HLS objects deleted", || {
        let cat = cat.clone();
        async move { cat.object_garbage(10).await.unwrap().is_empty() }
    })
    .await;
    assert!(!s3.object_path(&format!("{hkey}/playlist.m3u8")).exists());
    for seg in &segs {
        assert!(!s3.object_path(&format!("{hkey}/{seg}")).exists(), "{seg}");
    }
    assert_eq!(
        reqwest::get(&purl).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_100_waits_for_the_bucket_and_presigned_playback_redirects() {
    let bucket_dir = tempfile::tempdir().unwrap();
    let port = S3Server::free_port();
    let mut s = TestServer::start(&S3Server::toml(port, "presign_s = 600")).await;
    assert!(s.publish("live", "s3down", &fixture(CLIP_10S)).await);
    // The push ends (event 0), the upload fails (nobody listens), event 100 stays held.
    s.receiver.next_of(0).await;
    let http = s.http("");
    until("an upload attempt failed", || {
        let h = http.clone();
        async move { metric(&h, "livetape_upload_failures_total").await >= 1.0 }
    })
    .await;
    assert_eq!(metric(&http, "livetape_uploads_pending").await, 1.0);
    // And the console's running jobs say so.
    let jobs: Value = reqwest::get(s.http("/v1/jobs"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jobs["uploads_pending"], 1, "{jobs}");
    while let Some(d) = s.receiver.try_next() {
        assert_ne!(d.body["event_type"], 100, "event 100 before the upload");
    }
    let v: Value = reqwest::get(s.http("/v1/recordings?stream_id=s3down"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["total"], 0, "not catalogued before the upload");

    // The bucket comes back: the retry uploads it, then event 100 goes out.
    let s3 = S3Server::start_on(bucket_dir.path(), port).await;
    let f = s.receiver.next_of(100).await.body;
    let id = f["file_id"].as_str().unwrap();
    let key = s.running.catalog().object_key(id).await.unwrap().unwrap();
    let object = std::fs::read(s3.object_path(&key)).unwrap();
    assert_eq!(object.len() as u64, f["file_size"].as_u64().unwrap());
    // presign_s > 0: /vod answers with a presigned URL of the object, which S3 serves.
    let url = s.local_url(f["video_url"].as_str().unwrap());
    until("local copy removed", || {
        let l = s.data_path(&s3_local_path(&key));
        async move { !l.exists() }
    })
    .await;
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_follow.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        loc.starts_with(&format!("http://127.0.0.1:{port}/")),
        "{loc}"
    );
    assert!(loc.contains("X-Amz-Signature"), "{loc}");
    let signed = reqwest::get(&loc).await.unwrap();
    assert_eq!(signed.status(), StatusCode::OK);
    assert_eq!(signed.bytes().await.unwrap(), object);
    s.running.shutdown().await;
}

/// The catalogue path of an object key made by `S3Server::toml` (prefix `lt/v1`).
fn s3_local_path(key: &str) -> String {
    key.strip_prefix("lt/v1/").unwrap().to_owned()
}

/// Crashes at `point` during the upload of a pushed `clip`, restarts, and checks the upload
/// completes: one recording, event 100 once, the object holding the whole file.
async fn crash_mid_upload(
    point: &str,
    format: &str,
    clip: Clip,
    pace: Pace,
    object_before_restart: bool,
) {
    let dir = tempfile::tempdir().unwrap();
    let port = S3Server::free_port();
    let s3 = S3Server::start_on(&dir.path().join("bucket"), port).await;
    let mut rx = Receiver::start().await;
    let cfg = dir.path().join("livetape.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
            [server]
            rtmp_listen = "127.0.0.1:0"
            http_listen = "127.0.0.1:0"
            data_dir = "{}"
            [[record_template]]
            name = "default"
            formats = ["{format}"]
            [[callback_template]]
            name = "cb"
            key = "{CALLBACK_KEY}"
            stream_end_url = "{u}/end"
            record_url = "{u}/record"
            retry_interval_s = 1
            [[callback_rule]]
            template = "cb"
            {}
            "#,
            dir.path().join("data").display(),
            S3Server::toml(port, ""),
            u = rx.url,
        ),
    )
    .unwrap();
    let mut server = spawn(&cfg, Some(point));
    assert!(publish(server.rtmp, "live", "crashy", &fixture(clip), pace).await);
    // The server aborts at the failpoint once the upload reaches it.
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(st) = server.child.try_wait().unwrap() {
            break st;
        }
        assert!(std::time::Instant::now() < deadline, "no crash at {point}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(!status.success());
    // At the crash: an upload row, no recording, event 100 held (not in the outbox).
    {
        let cat = livetape_catalog::Catalog::open(&dir.path().join("data/catalog.db"))
            .await
            .unwrap();
        let node = std::fs::read_to_string(dir.path().join("data/node_id")).unwrap();
        let ups = cat.due_uploads(&node, i64::MAX, 10).await.unwrap();
        assert_eq!(ups.len(), 1);
        let up = &ups[0];
        assert!(
            cat.get_recording(&up.recording.file_id)
                .await
                .unwrap()
                .is_none()
        );
        let outbox = cat.list_outbox(None, 100).await.unwrap();
        assert!(outbox.iter().all(|e| e.event_type != 100), "{outbox:?}");
        assert!(dir.path().join("data").join(&up.recording.path).exists());
        assert_eq!(
            s3.object_path(&up.object_key).exists(),
            object_before_restart,
            "object in the bucket at the crash"
        );
        cat.close().await;
    }
    drop(server);
    let server = spawn(&cfg, None);
    let f = rx.next_of(100).await.body;
    let id = f["file_id"].as_str().unwrap();
    let v: Value = reqwest::get(format!(
        "http://{}/v1/recordings?stream_id=crashy",
        server.http
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["total"], 1);
    assert_eq!(v["recordings"][0]["file_id"], id);
    let rec = &v["recordings"][0];
    assert_eq!(rec["size_bytes"], f["file_size"]);
    let key = rec["video_url"]
        .as_str()
        .unwrap()
        .split_once("/vod/")
        .unwrap()
        .1;
    let body = reqwest::get(format!("http://{}/vod/{key}", server.http))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len() as u64, f["file_size"].as_u64().unwrap());
    let objects: Vec<_> = walk(&s3.root.join(S3_BUCKET));
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(std::fs::read(&objects[0]).unwrap(), body);
    // Event 100 exactly once.
    while let Some(d) = rx.try_next() {
        assert_ne!(d.body["event_type"], 100, "event 100 twice");
    }
}

/// Regular files under `dir`, hidden entries skipped: the objects s3s-fs holds.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
        let p = e.path();
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_object_is_stored_is_resumed() {
    crash_mid_upload("upload.stored", "flv", CLIP_10S, Pace::Fast, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_multipart_parts_is_resumed() {
    // clip-60s is 20 MB: a multipart upload of three parts.
    crash_mid_upload("upload.part", "flv", CLIP_60S, Pace::Rate(30), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_queueing_keeps_the_file_for_its_upload() {
    // Upload row committed, MP4 spool not yet removed: recovery removes the spool only, and
    // the finished file is still there to upload.
    crash_mid_upload("commit.catalogued", "mp4", CLIP_10S, Pace::Fast, false).await;
}

/// Measurement, not a check (run in release with `--ignored --nocapture`): upload throughput
/// of a ~260 MB FLV to s3s-fs (multipart), and the time from a push's end to its event 100
/// with `kind = "s3"` versus `local`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_upload_throughput_and_callback_latency() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.flv");
    let ok = Command::new("ffmpeg")
        .args(["-v", "error", "-stream_loop", "12", "-i"])
        .arg(fixture(CLIP_60S))
        .args(["-c", "copy", "-f", "flv"])
        .arg(&big)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let size = std::fs::metadata(&big).unwrap().len();
    let port = S3Server::free_port();
    let _s3 = S3Server::start_on(&dir.path().join("bucket"), port).await;
    let cfg = livetape::config::Config::from_toml_str(&S3Server::toml(port, "")).unwrap();
    let objects = livetape::store::bucket::Objects::new(&cfg.storage).unwrap();
    for run in 0..2 {
        let t = std::time::Instant::now();
        objects
            .put_file(&big, &format!("bench/big-{run}.flv"))
            .await
            .unwrap();
        let s = t.elapsed().as_secs_f64();
        println!(
            "upload {:.1} MB in {s:.2} s = {:.1} MB/s",
            size as f64 / 1e6,
            size as f64 / 1e6 / s
        );
    }
    for kind in ["local", "s3"] {
        let storage = if kind == "s3" {
            S3Server::toml(port, "")
        } else {
            String::new()
        };
        let mut s = TestServer::start(&format!(
            "[[record_template]]\nname = \"default\"\nformats = [\"flv\"]\n{storage}"
        ))
        .await;
        for (name, clip, pace) in [
            ("10s", fixture(CLIP_10S), Pace::Rate(4)),
            ("big", big.clone(), Pace::Rate(100)),
        ] {
            assert!(publish(s.rtmp(), "live", name, &clip, pace).await);
            let t = std::time::Instant::now();
            let f = s.receiver.next_of(100).await.body;
            println!(
                "{kind}: {name} ({:.1} MB): push end → event 100 in {} ms",
                f["file_size"].as_u64().unwrap() as f64 / 1e6,
                t.elapsed().as_millis()
            );
        }
        s.running.shutdown().await;
    }
}

/// The bucket down while a recording is deleted: the delete itself succeeds (the row goes,
/// the object is queued), and the object is deleted by the next retention check once the
/// bucket is back — it has a retry timer of its own, not only later deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_whose_delete_failed_is_deleted_when_the_bucket_is_back() {
    let bucket_dir = tempfile::tempdir().unwrap();
    let port = S3Server::free_port();
    let s3 = S3Server::start_on(bucket_dir.path(), port).await;
    let mut s = TestServer::start(&S3Server::toml(port, "retention_check_s = 1")).await;
    assert!(s.publish("live", "gone", &fixture(CLIP_10S)).await);
    let file = s.receiver.next_of(100).await.body;
    let id = file["file_id"].as_str().unwrap().to_owned();
    let cat = s.running.catalog().clone();
    let key = cat.object_key(&id).await.unwrap().unwrap();
    assert!(s3.object_path(&key).exists());

    drop(s3); // the bucket goes away
    let del = reqwest::Client::new()
        .delete(s.http(&format!("/v1/recordings/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        del.status(),
        StatusCode::NO_CONTENT,
        "the delete itself succeeds"
    );
    assert_eq!(
        cat.object_garbage(10).await.unwrap().len(),
        1,
        "the object is queued"
    );
    assert!(
        bucket_dir.path().join(S3_BUCKET).join(&key).exists(),
        "the object is still in the bucket"
    );

    let s3 = S3Server::start_on(bucket_dir.path(), port).await; // back, same data
    until("the queued object deleted", || {
        let cat = cat.clone();
        async move { cat.object_garbage(10).await.unwrap().is_empty() }
    })
    .await;
    assert!(!s3.object_path(&key).exists());
    s.running.shutdown().await;
}
