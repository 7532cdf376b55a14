//! A full disk, for real: the data dir is a small tmpfs (mounting needs root, as in CI).

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs needs root (CI runs as root)");
        Self(dir.path().to_path_buf(), dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn free(p: &Path) -> u64 {
    livetape::store::disk::free_bytes(p).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_free_space_floor_recording_stops_cleanly_and_resumes_when_space_returns() {
    let fs = Tmpfs::mount("48m");
    let data = fs.0.join("data");
    const FLOOR: u64 = 16 << 20;
    let mut s = TestServer::start_with(
        &format!("data_dir = \"{}\"", data.display()),
        &format!("[storage]\nmin_free_bytes = {FLOOR}\n"),
        true,
    )
    .await;
    // Leave ~6 MB above the floor: a 20 MB push crosses it about a third of the way in.
    let filler = fs.0.join("filler");
    let room = free(&fs.0) - FLOOR - (6 << 20);
    std::fs::write(&filler, vec![0u8; room as usize]).unwrap();

    let pushed = publish(s.rtmp(), "live", "big", &fixture(CLIP_60S), Pace::Rate(12)).await;
    assert!(
        pushed,
        "the publisher is not disconnected when recording stops"
    );
    let mut error = None;
    let mut file = None;
    while error.is_none() || file.is_none() {
        let d = s.receiver.next().await;
        match d.body["event_type"].as_i64() {
            Some(332) if d.body["record_event"] == "record_error" => error = Some(d.body),
            Some(100) => file = Some(d.body),
            _ => {}
        }
    }
    let detail: Value =
        serde_json::from_str(error.unwrap()["record_detail"].as_str().unwrap()).unwrap();
    assert!(
        detail["error"].as_str().unwrap().contains("min_free_bytes"),
        "{detail}"
    );
    // What was written before the stop is a valid, catalogued, playable file.
    let tmp = s.download(&file.unwrap()).await;
    let (v, a) = probe_counts(&tmp);
    assert!(v > 60 && v < 1800, "a partial recording: {v} video frames");
    assert!(a > 0);
    assert_eq!(decode_errors(&tmp), "");

    // While below the floor, a new push is accepted but not recorded. (Finalizing and dropping
    // the spool moved the free space around the floor; pin it below.)
    let filler2 = fs.0.join("filler2");
    let more = (free(&fs.0) + (2 << 20)).saturating_sub(FLOOR);
    std::fs::write(&filler2, vec![0u8; more as usize]).unwrap();
    assert!(free(&fs.0) < FLOOR);
    assert!(s.publish("live", "refused", &fixture(CLIP_10S)).await);
    let failed = loop {
        let d = s.receiver.next_of(332).await.body;
        if d["record_event"] == "record_start_failed" {
            break d;
        }
    };
    assert_eq!(failed["stream_id"], "refused");
    // The server still answers queries.
    let h: Value = reqwest::get(s.http("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["status"], "ok");

    // Space comes back: the next push records in full.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&filler2).unwrap();
    assert!(s.publish("live", "after", &fixture(CLIP_10S)).await);
    let f = loop {
        let f = s.receiver.next_of(100).await.body;
        if f["stream_id"] == "after" {
            break f;
        }
    };
    assert_eq!(probe_counts(&s.download(&f).await), (300, 470));
    let v: Value = reqwest::get(s.http("/v1/recordings?stream_id=refused"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["total"], 0, "the refused push recorded nothing");
    s.running.shutdown().await;
}
