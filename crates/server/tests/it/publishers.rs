//! Real publishers none of us wrote, into every format: ffmpeg 9 (Enhanced RTMP v2: 5.1 AAC,
//! two audio tracks, Opus, HEVC, AV1), GStreamer's `rtmp2sink`, and nginx-rtmp relaying an
//! ffmpeg push (the relay starts the stream with audio and sends the first video header with
//! the first keyframe it forwards). Each file is counted and decoded by ffmpeg 9; event 100
//! must describe it (codec, resolution), and whatever a format cannot hold is said in event
//! 332, never dropped silently.

use crate::common::*;
use crate::shapes::{ALL_FORMATS, Rec, ext, files, totals};
use livetape_testkit as tk;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A 10 s source made by ffmpeg 9 itself (so a real ffmpeg 9 muxes it into Enhanced RTMP on
/// the way out): testsrc2 320x240@30, a keyframe every second, plus `audio` sine inputs.
fn ff9_source(name: &str, video: &[&str], audio_inputs: usize, audio: &[&str]) -> PathBuf {
    let mut args: Vec<String> = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"]
        .map(String::from)
        .to_vec();
    for i in 0..audio_inputs {
        args.extend(["-f", "lavfi", "-i"].map(String::from));
        args.push(format!(
            "sine=frequency={}:sample_rate=48000",
            440 * (i + 1)
        ));
    }
    args.extend(["-t", "10", "-map", "0:v"].map(String::from));
    for i in 0..audio_inputs {
        args.extend(["-map".into(), format!("{}:a", i + 1)]);
    }
    args.extend(["-g", "30", "-threads", "1"].map(String::from));
    args.extend(video.iter().map(|s| (*s).to_owned()));
    args.extend(audio.iter().map(|s| (*s).to_owned()));
    args.extend(["-f", "flv"].map(String::from));
    tk::generated(&format!("{name}.flv"), &tk::ffmpeg9(), &args)
}

/// `ffmpeg -readrate 20 -i SRC -map 0 -c copy -f flv rtmp://…/live/STREAM`.
async fn ffmpeg_push(ffmpeg: &Path, src: &Path, url: &str) {
    let status = tokio::process::Command::new(ffmpeg)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-readrate",
            "20",
            "-i",
        ])
        .arg(src)
        .args(["-map", "0", "-c", "copy", "-f", "flv", url])
        .kill_on_drop(true)
        .status()
        .await
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg pushed {}", src.display());
}

/// The event 332s of a push, up to its event 0 (which follows them).
async fn statuses(s: &mut TestServer) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let d = s.receiver.next().await;
        if d.status != 200 {
            continue;
        }
        match d.body["event_type"].as_i64() {
            Some(0) => return out,
            Some(332) => out.push(d.body),
            _ => {}
        }
    }
}

fn errors_of(statuses: &[Value], file_format: i64) -> Vec<String> {
    statuses
        .iter()
        .filter_map(|st| {
            let d: Value = serde_json::from_str(st["record_detail"].as_str()?).ok()?;
            (d["file_format"] == file_format
                && matches!(
                    st["record_event"].as_str(),
                    Some("record_error" | "record_start_failed")
                ))
            .then(|| format!("{}: {}", st["record_event"], d["error"]))
        })
        .collect()
}

/// `livetape_recording_dropped_frames_total{reason="before_keyframe"}` now.
async fn dropped_before_keyframe(s: &TestServer) -> u64 {
    let metrics = reqwest::get(s.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find(|l| {
            l.starts_with("livetape_recording_dropped_frames_total{reason=\"before_keyframe\"}")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no dropped-frames metric in\n{metrics}"))
}

/// Prints one row per format (the closing note's table) and returns the totals.
fn table(shape: &str, recs: &[Rec]) {
    for f in ["flv", "mp4", "hls", "aac"] {
        let (n, v, a) = totals(recs, f);
        eprintln!("| {shape} | {f} | {n} | {v} | {a} |");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg9_enhanced_rtmp_v2() {
    let ff = tk::ffmpeg9();
    let x264: &[&str] = &["-c:v", "libx264", "-preset", "veryfast"];
    let aac: &[&str] = &["-c:a", "aac", "-ar", "48000"];
    let cases: [(&str, PathBuf); 5] = [
        (
            "aac-5.1",
            ff9_source("ff9-h264-aac51", x264, 1, &["-c:a", "aac", "-ac", "6"]),
        ),
        ("two-aac-tracks", ff9_source("ff9-h264-2aac", x264, 2, aac)),
        (
            "opus",
            ff9_source("ff9-h264-opus", x264, 1, &["-c:a", "libopus"]),
        ),
        (
            "hevc",
            ff9_source(
                "ff9-hevc-aac",
                &["-c:v", "libx265", "-preset", "ultrafast"],
                1,
                aac,
            ),
        ),
        (
            "av1",
            ff9_source(
                "ff9-av1-aac",
                &["-c:v", "libsvtav1", "-preset", "10"],
                1,
                aac,
            ),
        ),
    ];
    let mut s = TestServer::start(ALL_FORMATS).await;
    for (name, src) in &cases {
        let sent = tk::count_packets(&ff, src);
        let url = format!("rtmp://{}/live/{name}", s.rtmp());
        let dropped_before = dropped_before_keyframe(&s).await;
        ffmpeg_push(&ff, src, &url).await;
        let st = statuses(&mut s).await;
        // Audio an encoder sends ahead of its first picture (SVT-AV1's delay: one frame)
        // cannot start a file: counted, and nothing else is missing.
        let early = dropped_before_keyframe(&s).await - dropped_before;
        let max_early = if *name == "av1" { 2 } else { 0 };
        assert!(
            early <= max_early,
            "{name}: {early} frames before the first keyframe"
        );
        // One audio track's worth (ffmpeg counts every track).
        let tracks = if *name == "two-aac-tracks" { 2 } else { 1 };
        let (v, a) = (sent.video, sent.audio / tracks - early);
        let expect: Vec<(&str, u64, u64)> = match *name {
            "aac-5.1" | "hevc" => vec![("flv", v, a), ("mp4", v, a), ("hls", v, a), ("aac", 0, a)],
            // FLV keeps both audio tracks; the others the default one, and say so.
            "two-aac-tracks" => vec![
                ("flv", v, 2 * a),
                ("mp4", v, a),
                ("hls", v, a),
                ("aac", 0, a),
            ],
            // Opus fits FLV only (yet): MP4/HLS keep the video and say the audio is left out,
            // m4a has nothing to record.
            "opus" => vec![("flv", v, a), ("mp4", v, 0), ("hls", v, 0)],
            // AV1 fits FLV only (yet): MP4/HLS keep the audio and say the video is left out.
            "av1" => vec![("flv", v, a), ("mp4", 0, a), ("hls", 0, a), ("aac", 0, a)],
            _ => unreachable!(),
        };
        let recs = files(&mut s, expect.len()).await;
        table(&format!("ffmpeg 9 {name}"), &recs);
        for (f, v, a) in &expect {
            assert_eq!(totals(&recs, f), (1, *v, *a), "{name} {f}");
        }
        for r in &recs {
            let e = ext(&r.event);
            let (codec, res) = match (*name, r.format.as_str()) {
                (_, "aac") | ("av1", "mp4" | "hls") => ("", ""),
                ("hevc", _) => ("h265", "320x240"),
                ("av1", _) => ("av1", "320x240"),
                _ => ("h264", "320x240"),
            };
            assert_eq!(
                (e["video_codec"].as_str(), e["resolution"].as_str()),
                (Some(codec), Some(res)),
                "{name} {}",
                r.format
            );
        }
        let said = |code| errors_of(&st, code);
        match *name {
            "two-aac-tracks" => {
                for code in [2, 3, 4] {
                    assert!(
                        said(code).iter().any(|e| e.contains("audio track 1")),
                        "{name} format {code}: {:?}",
                        said(code)
                    );
                }
                assert!(said(1).is_empty(), "flv keeps both tracks");
            }
            "opus" => {
                for code in [2, 3] {
                    assert!(
                        said(code)
                            .iter()
                            .any(|e| e.contains("opus audio is not recorded")),
                        "{:?}",
                        said(code)
                    );
                }
                assert!(
                    said(4).iter().any(|e| e.contains("record_start_failed")),
                    "{:?}",
                    said(4)
                );
            }
            "av1" => {
                for code in [2, 3] {
                    assert!(
                        said(code)
                            .iter()
                            .any(|e| e.contains("av1 video is not recorded")),
                        "{:?}",
                        said(code)
                    );
                }
            }
            _ => {
                for code in 1..=4 {
                    assert!(said(code).is_empty(), "{name} {code}: {:?}", said(code));
                }
            }
        }
    }
}

/// GStreamer's `flvmux ! rtmp2sink` (x264enc + voaacenc): the same pipeline into a file gives
/// the reference counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_rtmp2sink() {
    let mut s = TestServer::start(ALL_FORMATS).await;
    let pipeline = |sink: &str| -> String {
        format!(
            "flvmux name=m streamable=true ! {sink} \
             videotestsrc num-buffers=300 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
             x264enc key-int-max=60 threads=1 ! h264parse ! queue ! m. \
             audiotestsrc num-buffers=470 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! \
             voaacenc ! aacparse ! queue ! m."
        )
    };
    // Whether gst-launch exited 0; its error output is kept for the failure message.
    let gst = |desc: String| async move {
        let out = tokio::process::Command::new("gst-launch-1.0")
            .arg("-q")
            .args(desc.split_whitespace())
            .kill_on_drop(true)
            .output()
            .await
            .expect("gst-launch-1.0 runs (apt-get install gstreamer1.0-tools gstreamer1.0-plugins-{good,bad,ugly})");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let reference = s.dir.path().join("gst-reference.flv");
    let (ok, err) = gst(pipeline(&format!(
        "filesink location={}",
        reference.display()
    )))
    .await;
    assert!(ok, "the reference pipeline: {err}");
    let sent = tk::count_packets(&tk::ffmpeg9(), &reference);
    assert_eq!(sent.video, 300);
    let (ok, err) = gst(pipeline(&format!(
        "rtmp2sink location=rtmp://{}/live/gst",
        s.rtmp()
    )))
    .await;
    // Seen once in ~10 full runs under load: rtmp2sink reported an error while closing,
    // after the server had recorded the whole push. What must hold is that every frame the
    // pipeline made is recorded (checked below); the exit status is only reported.
    if !ok {
        eprintln!("gst-launch (rtmp2sink) exited non-zero after publishing: {err}");
    }
    let recs = files(&mut s, 4).await;
    table("GStreamer rtmp2sink", &recs);
    for f in ["flv", "mp4", "hls", "aac"] {
        let v = if f == "aac" { 0 } else { sent.video };
        assert_eq!(totals(&recs, f), (1, v, sent.audio), "{f}");
    }
}

/// A private nginx (Debian's nginx + libnginx-mod-rtmp) relaying with `push` to livetape.
struct Nginx {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    async fn relay_to(target: std::net::SocketAddr) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = S3Server::free_port();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        let conf = dir.path().join("nginx.conf");
        // Workers run as `nobody` unless told otherwise; as root, keep them root so they can
        // write their logs in the temp dir.
        let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        });
        let user = if root { "user root root;" } else { "" };
        std::fs::write(
            &conf,
            format!(
                "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\n{user}\n\
                 worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\n\
                 error_log {d}/logs/error.log info;\nevents {{ worker_connections 64; }}\n\
                 rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; \
                 push rtmp://{target}/live; }} }} }}\n",
                d = dir.path().display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx runs (apt-get install nginx libnginx-mod-rtmp)");
        let deadline = std::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(std::time::Instant::now() < deadline, "nginx did not listen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The relay shape of the original bug: MP4 held only audio and the FLV no video header.
/// Now every format has both tracks from the first keyframe the relay forwarded, decodes
/// cleanly, and the audio before that keyframe is counted as dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_rtmp_relay() {
    let mut s = TestServer::start(ALL_FORMATS).await;
    let nginx = Nginx::relay_to(s.rtmp()).await;
    let clip = tk::clip_10s();
    assert!(
        publish(
            format!("127.0.0.1:{}", nginx.port).parse().unwrap(),
            "live",
            "relayed",
            &clip,
            Pace::Realtime
        )
        .await
    );
    let recs = files(&mut s, 4).await;
    table("nginx-rtmp relay (ffmpeg 5.1 push)", &recs);
    let dropped = dropped_before_keyframe(&s).await;
    eprintln!("nginx relay: {dropped} frames before the first forwarded keyframe");
    for f in ["flv", "mp4", "hls"] {
        let (n, v, a) = totals(&recs, f);
        assert_eq!(n, 1, "{f}");
        // The relay forwards from a keyframe: at most the first GOP is missing.
        assert!((240..=300).contains(&v), "{f}: {v} video packets");
        assert!(
            a + dropped >= 440 && a <= 470,
            "{f}: {a} audio packets, {dropped} dropped"
        );
        let e = ext(&recs.iter().find(|r| r.format == f).unwrap().event);
        assert_eq!(e["resolution"], "640x360", "{f}");
    }
    let (_, _, a) = totals(&recs, "aac");
    assert_eq!(a, totals(&recs, "mp4").2, "m4a holds the MP4's audio");
}
