//! Crash recovery with the real binary: kill -9 while recording, and during a reconnect
//! window; the next start turns the spools into catalogued recordings with their event 100.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Proc {
    child: Child,
    rtmp: SocketAddr,
    http: SocketAddr,
}

impl Drop for Proc {
    // A failing test must not leave a server behind holding the test's pipes open.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `livetape serve` and waits for the line with its bound addresses (printed once
/// recovery is done and it serves).
fn spawn_server(config: &Path) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_livetape"))
        .args(["serve", "--config"])
        .arg(config)
        .env("LIVETAPE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "livetape: rtmp://127.0.0.1:X http://127.0.0.1:Y"
    let addr = |scheme: &str| -> SocketAddr {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(scheme))
            .unwrap_or_else(|| panic!("no {scheme} in {line:?}"))
            .parse()
            .unwrap()
    };
    Proc {
        rtmp: addr("rtmp://"),
        http: addr("http://"),
        child,
    }
}

fn write_config(dir: &Path, receiver: &str, extra: &str) -> std::path::PathBuf {
    let p = dir.join("livetape.toml");
    std::fs::write(
        &p,
        format!(
            r#"
            [server]
            rtmp_listen = "127.0.0.1:0"
            http_listen = "127.0.0.1:0"
            data_dir = "{}"
            [[callback_template]]
            name = "cb"
            key = "{CALLBACK_KEY}"
            stream_begin_url = "{receiver}/begin"
            stream_end_url = "{receiver}/end"
            record_url = "{receiver}/record"
            retry_interval_s = 1
            [[callback_rule]]
            template = "cb"
            {extra}
            "#,
            dir.join("data").display()
        ),
    )
    .unwrap();
    p
}

async fn fetch(http: SocketAddr, video_url: &str, to: &Path) {
    let path = video_url.split_once("/vod/").unwrap().1;
    let b = reqwest::get(format!("http://{http}/vod/{path}"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    std::fs::write(to, &b).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_recording_loses_at_most_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let mut rx = Receiver::start().await;
    let cfg = write_config(
        dir.path(),
        &rx.url,
        "[[record_template]]\nname = \"default\"\nformats = [\"flv\", \"mp4\", \"hls\"]\nhls_target_s = 2\n",
    );
    let mut server = spawn_server(&cfg);
    let rtmp = server.rtmp;
    let pushing = tokio::spawn(async move {
        publish(rtmp, "live", "cut", &fixture(CLIP_10S), Pace::Realtime).await
    });
    // Wait until about 4 s of media reached the spools, then pull the plug.
    let spool = dir.path().join("data/spool");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let size: u64 = std::fs::read_dir(&spool)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
            .map(|e| e.metadata().unwrap().len())
            .sum();
        // Two file formats of a ~1.2 Mbit/s clip: 1.2 MB ≈ 4 s.
        if size > 1_200_000 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "spools never grew");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let _ = pushing.await;

    let mut server = spawn_server(&cfg);
    let mut files = Vec::new();
    let mut ends = Vec::new();
    let mut begin = None;
    while files.len() < 3 || ends.is_empty() {
        let d = rx.next().await;
        match d.body["event_type"].as_i64() {
            Some(100) => files.push(d.body),
            Some(0) => ends.push(d.body),
            Some(1) => begin = Some(d.body),
            _ => {}
        }
    }
    // The push the crash cut gets its event 0 from the next start, paired with its event 1.
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["errcode"], 5);
    assert_eq!(ends[0]["errmsg"], "server restart");
    assert_eq!(
        ends[0]["sequence"],
        begin.expect("event 1 before the crash")["sequence"]
    );
    let (mut video_counts, mut audio_counts) = (Vec::new(), Vec::new());
    for f in &files {
        assert_signed(f);
        let url = f["video_url"].as_str().unwrap();
        let p = if f["file_format"] == "hls" {
            // ffprobe reads the playlist and its segments over HTTP.
            std::path::PathBuf::from(format!(
                "http://{}/vod/{}",
                server.http,
                url.split_once("/vod/").unwrap().1
            ))
        } else {
            let p = dir
                .path()
                .join(format!("got.{}", f["file_format"].as_str().unwrap()));
            fetch(server.http, url, &p).await;
            p
        };
        let (v, a) = probe_counts(&p);
        assert_eq!(decode_errors(&p), "", "{}", f["file_format"]);
        assert!(
            (90..300).contains(&v),
            "{}: {v} video frames",
            f["file_format"]
        );
        video_counts.push(v);
        audio_counts.push(a);
    }
    // Both formats lost at most ~1 s (the unflushed buffer) relative to each other.
    let spread = video_counts.iter().max().unwrap() - video_counts.iter().min().unwrap();
    assert!(spread <= 31, "{video_counts:?}");
    assert!(
        std::fs::read_dir(&spool).unwrap().next().is_none(),
        "spool emptied"
    );

    // Recovery is idempotent: another start finds nothing to do and lists the same 2 files.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let mut server = spawn_server(&cfg);
    let v: Value = reqwest::get(format!(
        "http://{}/v1/recordings?stream_id=cut",
        server.http
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["total"], 3);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_the_reconnect_window_finalizes_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let mut rx = Receiver::start().await;
    let cfg = write_config(
        dir.path(),
        &rx.url,
        "[[record_template]]\nname = \"default\"\nformats = [\"mp4\"]\nresume_s = 600\n",
    );
    let mut server = spawn_server(&cfg);
    assert!(
        publish(
            server.rtmp,
            "live",
            "parked",
            &fixture(CLIP_10S),
            Pace::Fast
        )
        .await
    );
    rx.next_of(0).await; // the push ended; its recording waits for a reconnect
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let mut server = spawn_server(&cfg);
    let f = rx.next_of(100).await.body;
    let p = dir.path().join("parked.mp4");
    fetch(server.http, f["video_url"].as_str().unwrap(), &p).await;
    assert_eq!(probe_counts(&p), (300, 470), "the whole push, recovered");
    assert_eq!(decode_errors(&p), "");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finalizes_recordings_and_delivers_their_callbacks_before_exit() {
    let dir = tempfile::tempdir().unwrap();
    let mut rx = Receiver::start().await;
    let cfg = write_config(
        dir.path(),
        &rx.url,
        "[[record_template]]\nname = \"default\"\nformats = [\"mp4\", \"hls\"]\nresume_s = 600\n",
    );
    let mut server = spawn_server(&cfg);
    let rtmp = server.rtmp;
    // A push that ended and waits in its reconnect window...
    assert!(publish(rtmp, "live", "parked", &fixture(CLIP_10S), Pace::Fast).await);
    rx.next_of(0).await;
    // ...and one still live.
    let live = tokio::spawn(async move {
        publish(rtmp, "live", "live", &fixture(CLIP_10S), Pace::Realtime).await
    });
    let spool = dir.path().join("data/spool");
    let deadline = std::time::Instant::now() + WAIT;
    while std::fs::read_dir(&spool).unwrap().count() < 8 {
        // 2 recordings × 2 formats × (spool + metadata): both are being written.
        assert!(
            std::time::Instant::now() < deadline,
            "recordings never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "graceful stop exits 0: {exit:?}");
    let _ = live.await;

    // Everything was finalized by the stop itself, not left for recovery...
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "no spool left behind"
    );
    // ...and its callbacks were delivered before the process exited.
    let mut got = Vec::new();
    while let Some(d) = rx.try_next() {
        got.push(d.body);
    }
    let files: Vec<_> = got.iter().filter(|b| b["event_type"] == 100).collect();
    assert_eq!(files.len(), 4, "2 streams × mp4+hls: {got:?}");
    let end = got
        .iter()
        .find(|b| b["event_type"] == 0 && b["stream_id"] == "live")
        .expect("event 0 for the cut push");
    assert_eq!(end["errcode"], 5, "closed by the server: {end}");
}
