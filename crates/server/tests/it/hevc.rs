//! H.265 end to end: an Enhanced-RTMP publisher (hvc1 FourCC, as OBS ≥ 29.1 and ffmpeg ≥ 6.1
//! send it) is recorded to every format, and each file holds every frame.

use crate::common::*;
use livetape::model::Format;
use livetape_flv::FlvReader;
use livetape_media::{MediaFrame, VideoCodec, VideoPacket};
use livetape_publish::{Pace, PublishOptions, load_flv, publish_frames};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const VIDEO_FRAMES: u64 = 120;

/// `ffmpeg … {args} {out}`; `args` split at spaces.
fn ffmpeg(args: &str, out: &Path) {
    let st = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args.split_whitespace())
        .arg(out)
        .status()
        .expect("ffmpeg runs");
    assert!(st.success(), "ffmpeg {args}");
}

/// A 4 s 640x360 30 fps HEVC (no B-frames: E-RTMP CodedFramesX has no composition time) + AAC
/// Enhanced FLV; returns its path and the number of AAC frames in it.
fn build_clip(dir: &Path) -> (PathBuf, u64) {
    let (v, a, flv) = (dir.join("v.hevc"), dir.join("a.aac"), dir.join("hevc.flv"));
    ffmpeg(
        "-f lavfi -i testsrc2=size=640x360:rate=30 -t 4 -c:v libx265 -preset ultrafast \
         -x265-params bframes=0:keyint=30:min-keyint=30:scenecut=0:log-level=error -f hevc",
        &v,
    );
    ffmpeg(
        "-f lavfi -i sine=frequency=1000:sample_rate=48000 -t 4 -c:a aac -f adts",
        &a,
    );
    let (_, audio) = probe_counts(&a);
    assert!(audio > 150, "{audio} AAC frames for 4 s");
    let eflv = livetape_flv::build::eflv_from_annexb_hevc(
        &std::fs::read(&v).unwrap(),
        30,
        Some(&std::fs::read(&a).unwrap()),
    )
    .unwrap();
    std::fs::write(&flv, eflv).unwrap();
    (flv, audio)
}

async fn download(s: &TestServer, video_url: &str, to: &Path) {
    let r = reqwest::get(s.local_url(video_url)).await.unwrap();
    assert!(r.status().is_success(), "{video_url}: {}", r.status());
    std::fs::write(to, r.bytes().await.unwrap()).unwrap();
}

fn ffprobe_video(p: &Path) -> Value {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=codec_name,width,height", "-of", "json"])
        .arg(p)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe {}", p.display());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["streams"][0].clone()
}

/// Coded (video, audio) frames of an FLV and the codec of its video, read with our own FLV
/// reader: Debian's ffprobe 5.1 predates Enhanced FLV (ffmpeg 6.1) and cannot demux it.
fn flv_counts(p: &Path) -> (u64, u64, Option<VideoCodec>) {
    let mut r = FlvReader::new();
    r.feed(&std::fs::read(p).unwrap());
    let (mut video, mut audio, mut codec) = (0, 0, None);
    while let Some(tag) = r.next_tag() {
        let Some(f): Option<MediaFrame> = tag.unwrap().into_frame() else {
            continue;
        };
        if let Some(v) = f.video() {
            let v = v.unwrap();
            codec = Some(v.codec);
            video += u64::from(v.packet == VideoPacket::Frame);
        } else if let Some(a) = f.audio() {
            audio += u64::from(!a.unwrap().is_sequence_header());
        }
    }
    (video, audio, codec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_is_recorded_to_every_format() {
    let work = tempfile::tempdir().unwrap();
    let (clip, audio) = build_clip(work.path());
    // HLS joins the check once the server knows the format.
    let hls = Format::from_name("hls").is_some();
    let formats: &[&str] = if hls {
        &["flv", "mp4", "hls"]
    } else {
        &["flv", "mp4"]
    };
    let mut s = TestServer::start(&format!(
        "[[record_template]]\nname = \"default\"\nformats = {formats:?}\n"
    ))
    .await;

    let frames: Arc<[MediaFrame]> = load_flv(&clip).unwrap().into();
    let opts = PublishOptions {
        pace: Pace::Fast,
        connect_timeout: Duration::from_secs(10),
        ..PublishOptions::new(format!("rtmp://{}/live/hevc", s.rtmp()))
    };
    publish_frames(frames, &opts).await.unwrap();

    let mut seen = Vec::new();
    for _ in formats {
        let f = s.receiver.next_of(100).await.body;
        let format = f["file_format"].as_str().unwrap().to_owned();
        let ext: Value = serde_json::from_str(f["callback_ext"].as_str().unwrap()).unwrap();
        assert_eq!(ext["video_codec"], "h265", "{format}");
        assert_eq!(ext["resolution"], "640x360", "{format}");
        let url = f["video_url"].as_str().unwrap();
        let dir = work.path().join(&format);
        std::fs::create_dir_all(&dir).unwrap();
        let local = dir.join(url.rsplit('/').next().unwrap());
        download(&s, url, &local).await;
        match format.as_str() {
            "mp4" => {
                let v = ffprobe_video(&local);
                assert_eq!(
                    (&v["codec_name"], &v["width"], &v["height"]),
                    (&"hevc".into(), &640.into(), &360.into())
                );
                assert_eq!(probe_counts(&local), (VIDEO_FRAMES, audio));
                assert_eq!(decode_errors(&local), "");
            }
            "flv" => {
                assert_eq!(
                    flv_counts(&local),
                    (VIDEO_FRAMES, audio, Some(VideoCodec::Hevc))
                );
            }
            _ => {
                // HLS: segments (and an fMP4 init section) are served beside the playlist.
                // Fetch each and point a local copy of the playlist at the files, so ffprobe
                // reads it as a player would without reaching `public_url`.
                let playlist = std::fs::read_to_string(&local).unwrap();
                assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
                let base = url.rsplit_once('/').unwrap().0;
                let mut rewritten = String::new();
                let mut segments = 0;
                for line in playlist.lines() {
                    let uri = match line.strip_prefix("#EXT-X-MAP:URI=\"") {
                        Some(rest) => rest.split('"').next(),
                        None => (!line.is_empty() && !line.starts_with('#')).then_some(line),
                    };
                    let Some(uri) = uri else {
                        rewritten.push_str(line);
                        rewritten.push('\n');
                        continue;
                    };
                    let remote = if uri.contains("://") {
                        uri.to_owned()
                    } else {
                        format!("{base}/{uri}")
                    };
                    let name = format!("part{segments}-{}", uri.rsplit('/').next().unwrap());
                    download(&s, &remote, &dir.join(&name)).await;
                    rewritten.push_str(&line.replace(uri, &name));
                    rewritten.push('\n');
                    segments += 1;
                }
                assert!(segments > 0, "{playlist}");
                std::fs::write(&local, rewritten).unwrap();
                assert_eq!(ffprobe_video(&local)["codec_name"], "hevc");
                assert_eq!(probe_counts(&local), (VIDEO_FRAMES, audio));
                assert_eq!(decode_errors(&local), "");
            }
        }
        seen.push(format);
    }
    seen.sort();
    let mut want: Vec<&str> = formats.to_vec();
    want.sort();
    assert_eq!(seen, want);
    println!("HEVC checked in {seen:?} ({audio} AAC frames)");
}
