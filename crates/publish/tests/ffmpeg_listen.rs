//! Third-party oracle: ffmpeg's own RTMP server (`-listen 1`) receives our publish and remuxes it
//! with `-c copy`; the coded frames it writes must be the ones we sent.

use livetape_media::{MediaFrame, VideoPacket};
use livetape_publish::{Pace, PublishError, PublishOptions, load_flv, publish_frames};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// (dts, payload) of each frame.
type Timed<'a> = Vec<(u64, &'a [u8])>;

/// Coded video and audio frames (no sequence headers / end-of-sequence).
fn coded(frames: &[MediaFrame]) -> (Timed<'_>, Timed<'_>) {
    let video = frames
        .iter()
        .filter(|f| matches!(f.video(), Some(Ok(v)) if v.packet == VideoPacket::Frame))
        .map(|f| (f.dts_ms, &f.payload[..]))
        .collect();
    let audio = frames
        .iter()
        .filter(|f| matches!(f.audio(), Some(Ok(a)) if !a.is_sequence_header()))
        .map(|f| (f.dts_ms, &f.payload[..]))
        .collect();
    (video, audio)
}

#[tokio::test]
async fn ffmpeg_rtmp_server_receives_identical_frames() {
    // A missing ffmpeg fails the test (scripts/test.sh installs it): never a silent pass.
    assert!(
        std::process::Command::new("ffmpeg")
            .arg("-version")
            .output()
            .is_ok(),
        "ffmpeg is not installed (apt-get install ffmpeg)"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.flv");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("rtmp://127.0.0.1:{port}/live/oracle");
    let mut ffmpeg = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-listen",
            "1",
            "-f",
            "flv",
            "-i",
        ])
        .arg(&url)
        .args(["-c", "copy", "-f", "flv", "-y"])
        .arg(&out)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();

    let frames: Arc<[MediaFrame]> = load_flv(livetape_testkit::clip_10s()).unwrap().into();
    let opts = PublishOptions {
        pace: Pace::Fast,
        connect_timeout: Duration::from_secs(10),
        ..PublishOptions::new(url)
    };
    // ffmpeg needs a moment before it listens: retry only while the port refuses connections.
    let mut attempts = 0;
    let stats = loop {
        match publish_frames(frames.clone(), &opts).await {
            Err(PublishError::Connect { .. }) if attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other.unwrap(),
        }
    };
    assert_eq!(stats.frames_sent, frames.len() as u64);
    let status = tokio::task::spawn_blocking(move || ffmpeg.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "ffmpeg failed: {status}");

    let written = load_flv(&out).unwrap();
    let (want_v, want_a) = coded(&frames);
    let (got_v, got_a) = coded(&written);
    assert_eq!((got_v.len(), got_a.len()), (300, 470));
    assert!(got_v == want_v, "video frames differ");
    assert!(got_a == want_a, "audio frames differ");
}
