//! What real ffprobe/ffmpeg make of a file.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Packets per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub video: u64,
    pub audio: u64,
}

/// (video packets, audio packets) as Debian's ffprobe counts them.
pub fn probe_counts(path: &Path) -> (u64, u64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .args(["stream=codec_type,nb_read_packets", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let mut counts = (0, 0);
    for s in v["streams"].as_array().into_iter().flatten() {
        let n: u64 = s["nb_read_packets"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        match s["codec_type"].as_str() {
            Some("video") => counts.0 += n,
            Some("audio") => counts.1 += n,
            _ => {}
        }
    }
    counts
}

/// Packets per kind as `ffmpeg` (any build, e.g. [`ffmpeg9`] for Enhanced FLV) demuxes them:
/// every stream copied to `framecrc`, one line per packet.
pub fn count_packets(ffmpeg: &Path, path: &Path) -> Counts {
    let out = Command::new(ffmpeg)
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-map", "0", "-c", "copy", "-f", "framecrc", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg could not demux {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // `#media_type N: video` lines name each stream; packets are `N, dts, pts, dur, size, crc`.
    let mut kinds = Vec::new();
    let mut counts = Counts::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#media_type ") {
            kinds.push(
                rest.split(':')
                    .nth(1)
                    .map(str::trim)
                    .unwrap_or("")
                    .to_owned(),
            );
        } else if !line.starts_with('#')
            && let Some(idx) = line
                .split(',')
                .next()
                .and_then(|i| i.trim().parse::<usize>().ok())
        {
            match kinds.get(idx).map(String::as_str) {
                Some("video") => counts.video += 1,
                Some("audio") => counts.audio += 1,
                _ => {}
            }
        }
    }
    counts
}

/// Decodes the whole file with `ffmpeg -xerror`; returns ffmpeg's error output (empty = clean).
pub fn decode_errors(ffmpeg: &Path, path: &Path) -> String {
    let out = Command::new(ffmpeg)
        .args(["-v", "error", "-xerror", "-nostdin", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let mut s = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        s.push_str(&format!("\nexit status {}", out.status));
    }
    s
}

/// The Python of the venv `scripts/test.sh` makes (`target/testkit/venv`), with the pinned
/// PyPI tools of `scripts/requirements-test.txt` (ffmpeg 9, Tencent Cloud's SDKs). Panics
/// with the install command if it is missing (tests that need it fail rather than skip).
pub fn venv_python() -> PathBuf {
    let py = crate::target_dir().join("testkit/venv/bin/python");
    assert!(
        py.is_file(),
        "{} not found: run ./scripts/test.sh (it installs scripts/requirements-test.txt there)",
        py.display()
    );
    py
}

/// The pinned ffmpeg 9 binary: `$LIVETAPE_FFMPEG9`, else the one `scripts/test.sh` installed
/// with PyPI `imageio-ffmpeg` into `target/testkit/venv`. Panics with the install command if
/// neither exists (tests that need it fail rather than skip).
pub fn ffmpeg9() -> PathBuf {
    if let Some(p) = std::env::var_os("LIVETAPE_FFMPEG9").map(PathBuf::from)
        && p.is_file()
    {
        return p;
    }
    let venv = crate::target_dir().join("testkit/venv");
    let found = std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|py| py.path().join("site-packages/imageio_ffmpeg/binaries"))
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ffmpeg-"))
        });
    found.unwrap_or_else(|| {
        panic!(
            "ffmpeg 9 not found: run ./scripts/test.sh (it installs PyPI imageio-ffmpeg, pinned in \
             scripts/requirements-test.txt, into {}), or set LIVETAPE_FFMPEG9",
            venv.display()
        )
    })
}
