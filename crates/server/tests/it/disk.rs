//! A full disk, for real: the data dir is a small tmpfs (mounting needs root, as in CI).

use crate::common::*;
use livetape_testkit::Tmpfs;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn free(p: &Path) -> u64 {
    livetape::store::disk::free_bytes(p).unwrap()
}

const FLOOR: u64 = 16 << 20;

/// A server whose data dir is on a fresh 48 MB tmpfs with a 16 MB free-space floor, and a
/// filler file leaving `room` bytes above the floor.
async fn server_near_the_floor(room: u64) -> (Tmpfs, TestServer, PathBuf) {
    let fs = Tmpfs::mount(48 << 20);
    let data = fs.path().join("data");
    let s = TestServer::start_with(
        &format!("data_dir = \"{}\"", data.display()),
        &format!("[storage]\nmin_free_bytes = {FLOOR}\n"),
        true,
    )
    .await;
    let filler = fs.path().join("filler");
    let fill = free(fs.path()) - FLOOR - room;
    std::fs::write(&filler, vec![0u8; fill as usize]).unwrap();
    (fs, s, filler)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_free_space_floor_recording_stops_cleanly_and_resumes_when_space_returns() {
    // Leave ~6 MB above the floor: a 20 MB push crosses it about a third of the way in.
    let (fs, mut s, filler) = server_near_the_floor(6 << 20).await;

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
    let filler2 = fs.path().join("filler2");
    let more = (free(fs.path()) + (2 << 20)).saturating_sub(FLOOR);
    std::fs::write(&filler2, vec![0u8; more as usize]).unwrap();
    assert!(free(fs.path()) < FLOOR);
    assert!(s.publish("live", "refused", &fixture(CLIP_10S)).await);
    let failed = loop {
        let d = s.receiver.next_of(332).await.body;
        if d["record_event"] == "record_start_failed" {
            break d;
        }
    };
    assert_eq!(failed["stream_id"], "refused");
    // Over on the server too (it may still be reading what ffmpeg sent when ffmpeg exits):
    // a push still live when space returns is recorded again, from its next keyframe.
    let end = s.receiver.next_of(0).await.body;
    assert_eq!(end["stream_id"], "refused");
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

/// A push that stays connected through the floor is recorded again once the space is back:
/// the file closed at the floor, then a new file from the next keyframe (with its
/// `record_start_succeeded`), both catalogued and playable. (It once stayed unrecorded until
/// the publisher reconnected.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_push_is_recorded_again_when_space_returns() {
    let (_fs, mut s, filler) = server_near_the_floor(4 << 20).await;

    let (addr, clip) = (s.rtmp(), fixture(CLIP_60S));
    let push =
        tokio::spawn(async move { publish(addr, "live", "247", &clip, Pace::Rate(3)).await });
    // The floor is crossed: the first file is closed (event 332 record_error); then the
    // space comes back and recording resumes on the same connection (a new
    // record_start_succeeded), and both files are announced.
    let (mut errored, mut resumed, mut files) = (false, false, Vec::new());
    while !resumed || files.len() < 2 {
        let d = s.receiver.next().await;
        if d.status != 200 {
            continue;
        }
        let b = d.body;
        match (b["event_type"].as_i64(), b["record_event"].as_str()) {
            (Some(332), Some("record_error")) if !errored => {
                errored = true;
                std::fs::remove_file(&filler).unwrap();
            }
            (Some(332), Some("record_start_succeeded")) if errored => resumed = true,
            (Some(100), _) => {
                assert_eq!(b["stream_id"], "247");
                files.push(b);
            }
            _ => {}
        }
    }
    assert!(push.await.unwrap(), "the publisher stayed connected");
    files.sort_by_key(|f| f["start_time"].as_i64());
    let mut video = Vec::new();
    for f in &files {
        let p = s.download(f).await;
        assert_eq!(decode_errors(&p), "", "{f}");
        video.push(probe_counts(&p).0);
    }
    assert!(video[0] > 30, "before the floor: {video:?}");
    assert!(video[1] > 300, "after the space came back: {video:?}");
    assert!(video[0] + video[1] <= 1800, "{video:?}");
    s.running.shutdown().await;
}
