//! Shared test helpers: a tiny FLV tag loop, a driver that writes segments to disk as the
//! server would, and ffprobe/ffmpeg oracles.
#![allow(dead_code)]

use bytes::Bytes;
use livetape_hls::{HlsConfig, HlsOutput, HlsWriter, SegmentInfo};
use livetape_media::{MediaFrame, MediaKind};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The 10 s fixture (generated with ffmpeg, cached under `target/testkit`).
pub fn clip() -> String {
    livetape_testkit::clip_10s().to_string_lossy().into_owned()
}

/// Reads every audio/video/script tag: 13-byte file header, then 11-byte tag header + body +
/// 4-byte previous tag size.
pub fn read_flv(path: &str) -> Vec<MediaFrame> {
    let data = std::fs::read(path).expect("read flv");
    let mut pos = 13;
    let mut frames = Vec::new();
    let data = Bytes::from(data);
    while pos + 11 <= data.len() {
        let h = &data[pos..pos + 11];
        let size = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
        let ts = (u64::from(h[7]) << 24)
            | (u64::from(h[4]) << 16)
            | (u64::from(h[5]) << 8)
            | u64::from(h[6]);
        let body = data.slice(pos + 11..pos + 11 + size);
        if let Some(kind) = MediaKind::from_tag_type(h[0]) {
            frames.push(MediaFrame::new(kind, ts, body));
        }
        pos += 11 + size + 4;
    }
    frames
}

pub struct Recording {
    pub dir: tempfile::TempDir,
    pub segments: Vec<SegmentInfo>,
    pub playlist: PathBuf,
    pub playlist_text: String,
}

impl Recording {
    pub fn seg_path(&self, s: &SegmentInfo) -> PathBuf {
        self.dir.path().join(&s.uri)
    }
}

/// Drives a writer over `sessions` (a discontinuity between each), doing the IO the server
/// does: segment files opened/appended/closed per `HlsOutput`, playlist rewritten on close.
pub fn record(sessions: &[Vec<MediaFrame>], target_ms: u64) -> Recording {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HlsWriter::new(HlsConfig {
        target_duration_ms: target_ms,
    });
    let mut out = HlsOutput::default();
    let mut current: Option<(PathBuf, Vec<u8>)> = None;
    let mut closed = Vec::new();
    let mut handle = |out: &mut HlsOutput, current: &mut Option<(PathBuf, Vec<u8>)>| {
        if let Some(c) = out.closed.take() {
            let (path, bytes) = current.take().expect("closed without open");
            assert_eq!(path.file_name().unwrap().to_str().unwrap(), c.uri);
            assert_eq!(bytes.len() as u64, c.bytes, "SegmentInfo.bytes");
            std::fs::write(&path, bytes).unwrap();
            closed.push(c);
        }
        if let Some(o) = out.opened.take() {
            assert!(current.is_none(), "opened while another is open");
            *current = Some((dir.path().join(&o.uri), Vec::new()));
        }
        if !out.data.is_empty() {
            current
                .as_mut()
                .expect("data without a segment")
                .1
                .extend_from_slice(&out.data);
            out.data.clear();
        }
    };
    for (i, frames) in sessions.iter().enumerate() {
        if i > 0 {
            w.mark_discontinuity(&mut out);
            handle(&mut out, &mut current);
        }
        for f in frames {
            w.push(f, &mut out).expect("push");
            handle(&mut out, &mut current);
        }
    }
    w.finish(&mut out);
    handle(&mut out, &mut current);
    assert!(current.is_none());
    assert_eq!(closed, w.segments());
    let playlist = dir.path().join("playlist.m3u8");
    let text = w.playlist(true);
    std::fs::write(&playlist, &text).unwrap();
    Recording {
        dir,
        segments: closed,
        playlist,
        playlist_text: text,
    }
}

fn run(cmd: &str, args: &[&str]) -> (String, String) {
    let o = Command::new(cmd)
        .args(args)
        .output()
        .expect("spawn ffmpeg/ffprobe");
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// (video packets, audio packets) as ffprobe counts them.
pub fn ffprobe_counts(path: &Path) -> (u64, u64) {
    let (out, err) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_packets",
            "-show_entries",
            "stream=codec_type,nb_read_packets",
            "-of",
            "json",
            path.to_str().unwrap(),
        ],
    );
    assert!(err.is_empty(), "ffprobe stderr: {err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut counts = (0, 0);
    for s in j["streams"].as_array().unwrap() {
        let n: u64 = s["nb_read_packets"].as_str().unwrap().parse().unwrap();
        match s["codec_type"].as_str().unwrap() {
            "video" => counts.0 += n,
            "audio" => counts.1 += n,
            _ => {}
        }
    }
    counts
}

/// ffmpeg's stderr when decoding everything with -xerror (empty = clean).
pub fn ffmpeg_decode_errors(path: &Path) -> String {
    let (_, err) = run(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-xerror",
            "-i",
            path.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ],
    );
    err
}

/// Per packet: (codec_type, pts ms, dts ms, duration ms, keyframe).
pub fn ffprobe_packets(path: &Path) -> Vec<(String, f64, f64, f64, bool)> {
    let (out, err) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "packet=codec_type,pts_time,dts_time,duration_time,flags",
            "-of",
            "json",
            path.to_str().unwrap(),
        ],
    );
    assert!(err.is_empty(), "ffprobe stderr: {err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    let f = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .map_or(f64::NAN, |x| x * 1000.0)
    };
    j["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["codec_type"].as_str().unwrap().to_owned(),
                f(&p["pts_time"]),
                f(&p["dts_time"]),
                f(&p["duration_time"]),
                p["flags"].as_str().unwrap().starts_with('K'),
            )
        })
        .collect()
}
