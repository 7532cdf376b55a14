//! Formats beyond the basics, and the reconnect window.

use crate::common::*;
use serde_json::Value;
use std::path::Path;

/// ffmpeg `-c copy` of the fixture with some streams dropped (`-vn` / `-an`).
async fn publish_with(s: &TestServer, stream: &str, drop: &str) -> bool {
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
        .arg(fixture(CLIP_10S))
        .args([drop, "-c", "copy", "-f", "flv"])
        .arg(format!("rtmp://{}/live/{stream}", s.rtmp()))
        .kill_on_drop(true)
        .status()
        .await
        .unwrap();
    status.success()
}

fn codec_names(p: &Path) -> Vec<String> {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aac_is_recorded_from_audio_video_and_audio_only_pushes() {
    let mut s = TestServer::start(
        r#"
        [[record_template]]
        name = "default"
        formats = ["aac", "mp4"]
        "#,
    )
    .await;
    // Audio + video → an audio-only m4a with every audio frame, and the mp4.
    assert!(s.publish("live", "av", &fixture(CLIP_10S)).await);
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(s.receiver.next_of(100).await.body);
    }
    got.sort_by_key(|f| f["file_format"].as_str().unwrap().to_owned());
    assert_eq!(got[0]["file_format"], "aac");
    assert!(got[0]["video_url"].as_str().unwrap().ends_with("/f0.m4a"));
    let m4a = s.download(&got[0]).await;
    assert_eq!(codec_names(&m4a), ["aac"]);
    assert_eq!(probe_counts(&m4a), (0, 470));
    assert_eq!(decode_errors(&m4a), "");
    let r = reqwest::get(s.local_url(got[0]["video_url"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "audio/mp4");

    // Audio-only push → aac and an audio-only mp4.
    assert!(publish_with(&s, "audio", "-vn").await);
    for _ in 0..2 {
        let f = s.receiver.next_of(100).await.body;
        let p = s.download(&f).await;
        assert_eq!(probe_counts(&p), (0, 470), "{}", f["file_format"]);
        assert_eq!(decode_errors(&p), "");
    }

    // Video-only push → no aac file (nothing to record), the mp4 as usual.
    assert!(publish_with(&s, "video", "-an").await);
    let failed = loop {
        let d = s.receiver.next_of(332).await.body;
        if d["record_event"] == "record_start_failed" {
            break d;
        }
    };
    let detail: Value = serde_json::from_str(failed["record_detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["file_format"], 4, "aac");
    assert!(
        detail["error"].as_str().unwrap().contains("no AAC audio"),
        "{detail}"
    );
    let f = s.receiver.next_of(100).await.body;
    assert_eq!(f["file_format"], "mp4");
    let p = s.download(&f).await;
    assert_eq!(probe_counts(&p), (300, 0));
    let v: Value = reqwest::get(s.http("/v1/recordings?stream_id=video"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["total"], 1, "no aac recording for a push without audio");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_inside_the_window_continues_the_same_files() {
    let mut s = TestServer::start(
        r#"
        [[record_template]]
        name = "default"
        formats = ["mp4", "flv"]
        resume_s = 2
        "#,
    )
    .await;
    let clip = fixture(CLIP_10S);
    assert!(s.publish("live", "flaky", &clip).await);
    let first_end = s.receiver.next_of(0).await.body;
    assert!(s.publish("live", "flaky", &clip).await, "reconnect");
    // Each push has its own events 1 and 0...
    let second_end = s.receiver.next_of(0).await.body;
    assert_ne!(first_end["sequence"], second_end["sequence"]);
    // ...but there is one recording per format, announced once the window has passed.
    let mut files = Vec::new();
    for _ in 0..2 {
        files.push(s.receiver.next_of(100).await.body);
    }
    for f in &files {
        let p = s.download(f).await;
        assert_eq!(
            probe_counts(&p),
            (600, 940),
            "{}: both pushes in one file",
            f["file_format"]
        );
        assert_eq!(decode_errors(&p), "", "{}", f["file_format"]);
        let d = f["duration"].as_i64().unwrap();
        assert!((19..=21).contains(&d), "continuous timeline: {d} s");
        assert_eq!(
            f["task_id"], first_end["sequence"],
            "the recording belongs to the first push"
        );
    }
    let v: Value = reqwest::get(s.http("/v1/recordings?stream_id=flaky"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["total"], 2);

    // After the window, a push is a new recording.
    assert!(s.publish("live", "flaky", &clip).await);
    for _ in 0..2 {
        let f = s.receiver.next_of(100).await.body;
        assert!(!files.iter().any(|g| g["file_id"] == f["file_id"]));
        let p = s.download(&f).await;
        assert_eq!(probe_counts(&p), (300, 470));
    }
}

/// The HLS playlist of a recording, fetched over HTTP, with every segment beside it.
async fn download_hls(s: &TestServer, f: &Value) -> (std::path::PathBuf, String) {
    let url = s.local_url(f["video_url"].as_str().unwrap());
    assert!(url.ends_with("/playlist.m3u8"), "{url}");
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
    let playlist = r.text().await.unwrap();
    let dir = s.dir.path().join(f["file_id"].as_str().unwrap());
    std::fs::create_dir_all(&dir).unwrap();
    let base = url.trim_end_matches("playlist.m3u8");
    let mut total = 0;
    for seg in playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let r = reqwest::get(format!("{base}{seg}")).await.unwrap();
        assert_eq!(r.headers()["content-type"], "video/mp2t");
        let b = r.bytes().await.unwrap();
        total += b.len() as u64;
        std::fs::write(dir.join(seg), &b).unwrap();
    }
    assert_eq!(
        total,
        f["file_size"].as_u64().unwrap(),
        "file_size = sum of segments"
    );
    let p = dir.join("playlist.m3u8");
    std::fs::write(&p, &playlist).unwrap();
    (p, playlist)
}

/// `#EXTINF` durations, and `#EXT-X-TARGETDURATION` ≥ each of them rounded.
fn check_playlist(playlist: &str) -> Vec<f64> {
    assert!(playlist.starts_with("#EXTM3U"));
    assert!(
        playlist.trim_end().ends_with("#EXT-X-ENDLIST"),
        "{playlist}"
    );
    let target: f64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .unwrap()
        .parse()
        .unwrap();
    let durations: Vec<f64> = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').parse().unwrap())
        .collect();
    for d in &durations {
        assert!(d.round() <= target, "{d} > target {target}");
    }
    durations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_recording_is_a_valid_vod_playlist() {
    let mut s = TestServer::start(
        r#"
        [[record_template]]
        name = "default"
        formats = ["hls"]
        hls_target_s = 2
        "#,
    )
    .await;
    assert!(s.publish("live", "tv", &fixture(CLIP_10S)).await);
    let f = s.receiver.next_of(100).await.body;
    assert_eq!(f["file_format"], "hls");
    let (p, playlist) = download_hls(&s, &f).await;
    let durations = check_playlist(&playlist);
    assert_eq!(durations.len(), 5, "2 s target, 2 s GOP: {playlist}");
    let total: f64 = durations.iter().sum();
    assert!((total - 10.0).abs() < 0.1, "{total}");
    assert_eq!(f["duration"], 10);
    assert_eq!(probe_counts(&p), (300, 470));
    assert_eq!(decode_errors(&p), "");
    // Only the playlist and seg-N.ts exist under a recording.
    let base = s.local_url(f["video_url"].as_str().unwrap());
    for bad in ["seg-.ts", "seg-1.ts.bak", "..%2Fcatalog.db", "f0.mp4"] {
        let url = base.replace("playlist.m3u8", bad);
        assert_eq!(reqwest::get(&url).await.unwrap().status(), 404, "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_reconnect_inside_the_window_is_one_playlist_with_a_discontinuity() {
    let mut s = TestServer::start(
        r#"
        [[record_template]]
        name = "default"
        formats = ["hls"]
        hls_target_s = 4
        resume_s = 2
        "#,
    )
    .await;
    let clip = fixture(CLIP_10S);
    assert!(s.publish("live", "hlsflaky", &clip).await);
    s.receiver.next_of(0).await;
    assert!(s.publish("live", "hlsflaky", &clip).await);
    let f = s.receiver.next_of(100).await.body;
    let (p, playlist) = download_hls(&s, &f).await;
    check_playlist(&playlist);
    assert_eq!(
        playlist.matches("#EXT-X-DISCONTINUITY\n").count(),
        1,
        "{playlist}"
    );
    assert_eq!(probe_counts(&p), (600, 940));
    assert_eq!(decode_errors(&p), "");
    let v: Value = reqwest::get(s.http("/v1/recordings?stream_id=hlsflaky"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["total"], 1, "one recording for both pushes");
}
