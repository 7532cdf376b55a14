//! `livetape bench publish` end to end: the real binary publishes three streams to an
//! in-process server, and every stream must arrive whole (ffprobe on the recordings).

use crate::common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_publish_sends_every_stream_whole() {
    let mut s = TestServer::start("").await;
    let clip = fixture(CLIP_10S);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_livetape"))
        .args(["bench", "publish", "--streams", "3", "--fast", "--json"])
        .args(["--duration", "10", "--url"])
        .arg(format!("rtmp://{}/live/bench-cli-", s.rtmp()))
        .arg("--file")
        .arg(&clip)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{stdout}");
    let r: Value = serde_json::from_str(&stdout).expect("--json prints one JSON object");
    assert_eq!(
        (r["streams"].as_u64(), r["ok"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(r["failed"], 0);
    assert_eq!(
        r["failures"],
        serde_json::json!({"connect": 0, "rejected": 0, "publish": 0})
    );
    assert_eq!(r["errors"], serde_json::json!([]));
    // --duration 10 is exactly one pass of the 10.05 s clip (no keyframe of it reaches 10 s).
    let frames = livetape_publish::load_flv(&clip).unwrap();
    assert_eq!(r["frames_sent"].as_u64(), Some(3 * frames.len() as u64));
    let payload: u64 = frames.iter().map(|f| f.payload.len() as u64).sum();
    let bytes = r["bytes_sent"].as_u64().unwrap();
    assert!(
        bytes > 3 * payload,
        "{bytes} bytes for 3 x {payload} payload bytes"
    );
    assert!(r["aggregate_kbps"].as_f64().unwrap() > 0.0);
    assert!(r["cpu_s"].as_f64().is_some_and(|c| c >= 0.0));

    let mut streams = Vec::new();
    for _ in 0..3 {
        let f = s.receiver.next_of(100).await.body;
        assert_eq!(f["file_format"], "mp4");
        let url = f["video_url"].as_str().unwrap();
        let bytes = reqwest::get(s.local_url(url))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let stream = f["stream_id"].as_str().unwrap().to_owned();
        let p = s.dir.path().join(format!("{stream}.mp4"));
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(probe_counts(&p), (300, 470), "{stream}");
        streams.push(stream);
    }
    streams.sort();
    assert_eq!(streams, ["bench-cli-0", "bench-cli-1", "bench-cli-2"]);
}
