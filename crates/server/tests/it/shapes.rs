//! Every stream *shape* a real publisher produces is recorded whole, in every format: late and
//! missing codec headers, odd starts, odd timestamps, odd endings, Enhanced RTMP v2 tags.
//!
//! Shapes no encoder we can run produces on demand are sent with our own publisher
//! (`livetape-publish`, which sends any tag order) from the generated clip; the rest with real
//! publishers in `publishers.rs`. Every file of every format is read back over HTTP and counted
//! and decoded by ffmpeg 9 (`-xerror`): packet counts equal what was sent, minus the frames
//! before the first video keyframe, which the recorder documents and counts.

use crate::common::*;
use bytes::{Bytes, BytesMut};
use livetape_flv::amf0::Amf0Value;
use livetape_media::{AudioPacket, MediaFrame, MediaKind, VideoPacket};
use livetape_publish::{Ending, Pace, PublishOptions, PublishStats, load_flv, publish_frames};
use livetape_testkit as tk;
use serde_json::Value;
use std::sync::Arc;

/// Every format, one file per push unless a shape splits it.
pub const ALL_FORMATS: &str = r#"
[[record_template]]
name = "default"
formats = ["flv", "mp4", "hls", "aac"]
"#;

/// One recorded file as the server announced and served it.
#[derive(Debug)]
pub struct Rec {
    pub format: String,
    pub event: Value,
    pub counts: tk::Counts,
}

pub fn frames_of(clip: &tk::Clip) -> Vec<MediaFrame> {
    load_flv(tk::fixture(clip)).unwrap()
}

fn is_video_header(f: &MediaFrame) -> bool {
    matches!(f.video(), Some(Ok(v)) if v.packet == VideoPacket::SequenceHeader)
}

fn is_audio_header(f: &MediaFrame) -> bool {
    matches!(f.audio(), Some(Ok(a)) if a.packet == AudioPacket::SequenceHeader)
}

/// Coded frames of the default tracks: (video, audio).
pub fn coded(frames: &[MediaFrame]) -> (u64, u64) {
    let mut c = (0, 0);
    for f in frames {
        match (f.video(), f.audio()) {
            (Some(Ok(v)), _) if v.packet == VideoPacket::Frame && v.track == 0 => c.0 += 1,
            (_, Some(Ok(a))) if a.packet == AudioPacket::Frame && a.track == 0 => c.1 += 1,
            _ => {}
        }
    }
    c
}

/// What a recording of `frames` holds: with video, everything from the first video keyframe
/// on (in arrival order); audio-only, everything.
pub fn from_first_key(frames: &[MediaFrame]) -> (u64, u64) {
    match frames.iter().position(MediaFrame::is_video_keyframe) {
        Some(i) => coded(&frames[i..]),
        None => coded(frames),
    }
}

/// Pushes `frames` with our publisher, unpaced unless `tune` says otherwise.
pub async fn push(
    s: &TestServer,
    stream: &str,
    frames: Vec<MediaFrame>,
    tune: impl FnOnce(&mut PublishOptions),
) -> PublishStats {
    let mut opts = PublishOptions::new(format!("rtmp://{}/live/{stream}", s.rtmp()));
    opts.pace = Pace::Fast;
    tune(&mut opts);
    let frames: Arc<[MediaFrame]> = frames.into();
    publish_frames(frames, &opts).await.expect("publish")
}

/// The next `n` event 100s (any stream), each file read back through its `video_url` and
/// counted by ffmpeg 9 and decoded with `-xerror` (which must be clean).
pub async fn files(s: &mut TestServer, n: usize) -> Vec<Rec> {
    let ff = tk::ffmpeg9();
    let mut out = Vec::new();
    for _ in 0..n {
        let event = s.receiver.next_of(100).await.body;
        let url = s.local_url(event["video_url"].as_str().unwrap());
        let format = event["file_format"].as_str().unwrap().to_owned();
        // HLS is read as players read it (playlist, then segments); the others as one file.
        let input = if format == "hls" {
            std::path::PathBuf::from(&url)
        } else {
            let bytes = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
            assert_eq!(bytes.len() as u64, event["file_size"].as_u64().unwrap());
            let p = s.dir.path().join(format!(
                "dl-{}.{format}",
                event["file_id"].as_str().unwrap()
            ));
            std::fs::write(&p, &bytes).unwrap();
            p
        };
        let counts = tk::count_packets(&ff, &input);
        let errors = tk::decode_errors(&ff, &input);
        assert_eq!(errors, "", "{format} file {url} does not decode cleanly");
        out.push(Rec {
            format,
            event,
            counts,
        });
    }
    out
}

/// (files, video packets, audio packets) of one format.
pub fn totals(recs: &[Rec], format: &str) -> (usize, u64, u64) {
    recs.iter()
        .filter(|r| r.format == format)
        .fold((0, 0, 0), |(n, v, a), r| {
            (n + 1, v + r.counts.video, a + r.counts.audio)
        })
}

/// `callback_ext` of an event 100, parsed.
pub fn ext(event: &Value) -> Value {
    serde_json::from_str(event["callback_ext"].as_str().unwrap()).unwrap()
}

/// Checks each format got `files` files holding exactly `want` (video, audio) in total; the
/// aac format holds only the audio.
pub fn assert_whole(recs: &[Rec], files: [(&str, usize); 4], want: (u64, u64)) {
    for (format, n) in files {
        let (got_n, v, a) = totals(recs, format);
        let want = if format == "aac" { (0, want.1) } else { want };
        assert_eq!(
            (got_n, v, a),
            (n, want.0, want.1),
            "{format}: files, video, audio"
        );
    }
}

/// The rows of one stream in `/v1/recordings`.
async fn rows(s: &TestServer, stream: &str) -> Vec<Value> {
    let v: Value =
        reqwest::get(s.http(&format!("/v1/recordings?stream_id={stream}&page_size=100")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    v["recordings"].as_array().unwrap().clone()
}

/// Event 332s with this `record_event` seen while waiting for `until` (an event type).
async fn statuses_until(s: &mut TestServer, until: i64) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let d = s.receiver.next().await;
        if d.status != 200 {
            continue;
        }
        if d.body["event_type"] == until {
            return seen;
        }
        if d.body["event_type"] == 332 {
            seen.push(d.body);
        }
    }
}

fn detail(status: &Value) -> Value {
    serde_json::from_str(status["record_detail"].as_str().unwrap()).unwrap()
}

/// An `onMetaData` body declaring only the given tracks (as an encoder without the other
/// track writes it).
pub fn metadata(video: bool, audio: bool) -> MediaFrame {
    let mut props = vec![("duration".to_owned(), Amf0Value::Number(0.0))];
    if video {
        props.push(("width".into(), Amf0Value::Number(640.0)));
        props.push(("height".into(), Amf0Value::Number(360.0)));
        props.push(("videocodecid".into(), Amf0Value::Number(7.0)));
    }
    if audio {
        props.push(("audiocodecid".into(), Amf0Value::Number(10.0)));
        props.push(("audiosamplerate".into(), Amf0Value::Number(48000.0)));
    }
    let mut body = Vec::new();
    Amf0Value::String("onMetaData".into()).encode(&mut body);
    Amf0Value::EcmaArray(props).encode(&mut body);
    MediaFrame::new(MediaKind::Script, 0, Bytes::from(body))
}

fn without_metadata(frames: Vec<MediaFrame>) -> Vec<MediaFrame> {
    frames
        .into_iter()
        .filter(|f| f.kind != MediaKind::Script)
        .collect()
}

/// Audio first, the video header and first keyframe seconds later: what a relay or a mobile
/// SDK that starts its microphone before its camera sends.
fn audio_first(frames: &[MediaFrame], video_from_ms: u64) -> Vec<MediaFrame> {
    let vsh = frames.iter().find(|f| is_video_header(f)).unwrap().clone();
    let mut out = Vec::new();
    let mut sent_header = false;
    for f in frames {
        if f.kind == MediaKind::Video {
            if is_video_header(f) || f.dts_ms < video_from_ms {
                continue;
            }
            if !sent_header {
                out.push(MediaFrame::new(
                    MediaKind::Video,
                    f.dts_ms,
                    vsh.payload.clone(),
                ));
                sent_header = true;
            }
        }
        out.push(f.clone());
    }
    out
}

async fn audio_first_case(metadata_kept: bool) {
    let mut s = TestServer::start(ALL_FORMATS).await;
    let clip = frames_of(&tk::CLIP_10S);
    let mut frames = audio_first(&clip, 2_000);
    if !metadata_kept {
        frames = without_metadata(frames);
    }
    let want = from_first_key(&frames);
    // The whole clip's video from its second keyframe on; audio from that keyframe on.
    assert_eq!(want.0, 240);
    assert!(want.1 > 360, "{want:?}");
    push(&s, "late-video", frames, |_| {}).await;
    let recs = files(&mut s, 4).await;
    assert_whole(
        &recs,
        [("flv", 1), ("mp4", 1), ("hls", 1), ("aac", 1)],
        want,
    );
    for r in &recs {
        let e = ext(&r.event);
        if r.format == "aac" {
            assert_eq!(e["video_codec"], "", "an aac file carries no video codec");
            assert_eq!(e["resolution"], "");
        } else {
            assert_eq!(
                (e["video_codec"].as_str(), e["resolution"].as_str()),
                (Some("h264"), Some("640x360"))
            );
        }
    }
    let aac_row = rows(&s, "late-video")
        .await
        .into_iter()
        .find(|r| r["format"] == "aac")
        .unwrap();
    assert_eq!(
        (
            &aac_row["video_codec"],
            &aac_row["width"],
            &aac_row["height"]
        ),
        (&Value::from(""), &Value::from(0), &Value::from(0))
    );
    // The audio that came before the first picture is counted, not silently lost.
    let m = reqwest::get(s.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dropped = m
        .lines()
        .find(|l| {
            l.starts_with("livetape_recording_dropped_frames_total{reason=\"before_keyframe\"}")
        })
        .unwrap_or_else(|| panic!("no dropped-frames metric in\n{m}"));
    let n: u64 = dropped.rsplit(' ').next().unwrap().parse().unwrap();
    let sent = coded(&audio_first(&clip, 2_000));
    assert_eq!(n, sent.1 - want.1, "dropped audio before the keyframe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_first_then_video_with_metadata() {
    audio_first_case(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_first_then_video_without_metadata() {
    audio_first_case(false).await;
}

/// A video-only and an audio-only push, each with metadata that says so and with none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_track_only() {
    let mut s = TestServer::start(ALL_FORMATS).await;
    let clip = frames_of(&tk::CLIP_10S);
    let video: Vec<MediaFrame> = clip
        .iter()
        .filter(|f| f.kind == MediaKind::Video)
        .cloned()
        .collect();
    let audio: Vec<MediaFrame> = clip
        .iter()
        .filter(|f| f.kind == MediaKind::Audio)
        .cloned()
        .collect();
    for with_meta in [true, false] {
        let mut v = video.clone();
        let mut a = audio.clone();
        if with_meta {
            v.insert(0, metadata(true, false));
            a.insert(0, metadata(false, true));
        }
        push(&s, "video-only", v, |_| {}).await;
        // No aac file: 332 record_start_failed says why; three files for the rest.
        let recs = files(&mut s, 3).await;
        for f in ["flv", "mp4", "hls"] {
            assert_eq!(totals(&recs, f), (1, 300, 0), "{f}, metadata {with_meta}");
        }
        push(&s, "audio-only", a, |_| {}).await;
        let recs = files(&mut s, 4).await;
        for f in ["flv", "mp4", "hls", "aac"] {
            assert_eq!(totals(&recs, f), (1, 0, 470), "{f}, metadata {with_meta}");
            let r = recs.iter().find(|r| r.format == f).unwrap();
            assert_eq!(ext(&r.event)["video_codec"], "", "{f}: audio-only");
        }
    }
}

/// Video only, then the microphone comes on 5 s in: MP4 and HLS split at the next keyframe to
/// take the audio track (players cannot add a track mid-file or mid-playlist), FLV takes it in
/// place, m4a starts with it. The audio between the header and that keyframe is counted as
/// dropped (`track_joining`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_joins_a_video_only_stream() {
    let mut s = TestServer::start(ALL_FORMATS).await;
    let clip = frames_of(&tk::CLIP_10S);
    let ash = clip.iter().find(|f| is_audio_header(f)).unwrap().clone();
    let mut frames = vec![metadata(true, false)];
    let mut joined = false;
    for f in clip.iter().filter(|f| f.kind != MediaKind::Script) {
        if f.kind == MediaKind::Audio {
            if is_audio_header(f) || f.dts_ms < 5_000 {
                continue;
            }
            if !joined {
                frames.push(MediaFrame::new(
                    MediaKind::Audio,
                    f.dts_ms,
                    ash.payload.clone(),
                ));
                joined = true;
            }
        }
        frames.push(f.clone());
    }
    let sent = coded(&frames);
    // Audio recorded where a file can take it: from the keyframe at 6 s (MP4, HLS, m4a).
    let key6 = frames
        .iter()
        .position(|f| f.is_video_keyframe() && f.dts_ms >= 6_000)
        .unwrap();
    let audio_from_6s = coded(&frames[key6..]).1;
    push(&s, "mic-on", frames, |_| {}).await;
    let recs = files(&mut s, 6).await;
    assert_eq!(
        totals(&recs, "flv"),
        (1, 300, sent.1),
        "flv takes the audio in place"
    );
    assert_eq!(
        totals(&recs, "mp4"),
        (2, 300, audio_from_6s),
        "mp4 splits at 6 s"
    );
    assert_eq!(
        totals(&recs, "hls"),
        (2, 300, audio_from_6s),
        "hls splits at 6 s"
    );
    assert_eq!(
        totals(&recs, "aac"),
        (1, 0, audio_from_6s),
        "m4a starts with the audio"
    );
    let mp4: Vec<&Rec> = recs.iter().filter(|r| r.format == "mp4").collect();
    let durations: Vec<i64> = mp4
        .iter()
        .map(|r| r.event["duration"].as_i64().unwrap())
        .collect();
    assert!(
        durations.contains(&6) && durations.contains(&4),
        "{durations:?}"
    );
}

/// Audio stops halfway (a muted microphone that stops sending): nothing else changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_stops_mid_stream() {
    let mut s = TestServer::start(ALL_FORMATS).await;
    let frames: Vec<MediaFrame> = frames_of(&tk::CLIP_10S)
        .into_iter()
        .filter(|f| f.kind != MediaKind::Audio || f.dts_ms < 5_000)
        .collect();
    let want = coded(&frames);
    push(&s, "mute", frames, |_| {}).await;
    let recs = files(&mut s, 4).await;
    assert_whole(
        &recs,
        [("flv", 1), ("mp4", 1), ("hls", 1), ("aac", 1)],
        want,
    );
}

/// No `onMetaData` at all, `onMetaData` repeated before every keyframe, and bare
/// `onMetaData` (no `@setDataFrame`): the same whole recording each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_variants() {
    let mut s = TestServer::start(ALL_FORMATS).await;
    let clip = frames_of(&tk::CLIP_10S);
    let meta = clip
        .iter()
        .find(|f| f.kind == MediaKind::Script)
        .unwrap()
        .clone();
    let repeated: Vec<MediaFrame> = clip
        .iter()
        .flat_map(|f| {
            let again = (f.is_video_keyframe())
                .then(|| MediaFrame::new(MediaKind::Script, f.dts_ms, meta.payload.clone()));
            again.into_iter().chain([f.clone()])
        })
        .collect();
    for (name, frames, set_data_frame) in [
        ("no-meta", without_metadata(clip.clone()), true),
        ("meta-repeated", repeated, true),
        ("meta-bare", clip.clone(), false),
    ] {
        push(&s, name, frames, |o| o.set_data_frame = set_data_frame).await;
        let recs = files(&mut s, 4).await;
        assert_whole(
            &recs,
            [("flv", 1), ("mp4", 1), ("hls", 1), ("aac", 1)],
            (300, 470),
        );
    }
}

/// Sequence headers repeated, byte for byte, before every keyframe (encoders do this): no
/// split. A changed SPS (the resolution halves): FLV and MP4 split at that keyframe, both
/// files play and report their own resolution; HLS carries on in one playlist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_and_changed_sequence_headers() {
    let mut s = TestServer::start(ALL_FORMATS).await;
    let clip = frames_of(&tk::CLIP_10S);
    let vsh = clip.iter().find(|f| is_video_header(f)).unwrap().clone();
    let ash = clip.iter().find(|f| is_audio_header(f)).unwrap().clone();
    let repeated: Vec<MediaFrame> = clip
        .iter()
        .flat_map(|f| {
            let headers = f.is_video_keyframe().then(|| {
                [
                    MediaFrame::new(MediaKind::Video, f.dts_ms, vsh.payload.clone()),
                    MediaFrame::new(MediaKind::Audio, f.dts_ms, ash.payload.clone()),
                ]
            });
            headers.into_iter().flatten().chain([f.clone()])
        })
        .collect();
    push(&s, "repeat", repeated, |_| {}).await;
    let recs = files(&mut s, 4).await;
    assert_whole(
        &recs,
        [("flv", 1), ("mp4", 1), ("hls", 1), ("aac", 1)],
        (300, 470),
    );

    // 640x360 for 10 s, then 320x240 for 10 s, one continuous timeline.
    let small = frames_of(&SMALL_10S);
    let mut both = clip.clone();
    let next = clip.iter().map(|f| f.dts_ms).max().unwrap() + 33;
    both.extend(
        small
            .iter()
            .filter(|f| f.kind != MediaKind::Script)
            .map(|f| MediaFrame::new(f.kind, f.dts_ms + next, f.payload.clone())),
    );
    push(&s, "resize", both, |_| {}).await;
    let recs = files(&mut s, 6).await;
    assert_whole(
        &recs,
        [("flv", 2), ("mp4", 2), ("hls", 1), ("aac", 1)],
        (600, 940),
    );
    for f in ["flv", "mp4"] {
        let mut res: Vec<String> = recs
            .iter()
            .filter(|r| r.format == f)
            .map(|r| ext(&r.event)["resolution"].as_str().unwrap().to_owned())
            .collect();
        res.sort();
        assert_eq!(res, ["320x240", "640x360"], "{f}");
    }
}

/// 10 s at 320x240, same GOP and audio as [`tk::CLIP_10S`].
pub const SMALL_10S: tk::Clip = tk::Clip {
    name: "clip-10s-320x240",
    seconds: 10,
    size: "320x240",
    fps: 30,
    video_kbps: 300,
    gop: 60,
};

/// Rewrites each legacy AVC video tag's composition time and the frame's dts.
fn retime_video(frames: &[MediaFrame], f: impl Fn(u64, i32) -> (u64, i32)) -> Vec<MediaFrame> {
    frames
        .iter()
        .map(|fr| match fr.video() {
            Some(Ok(v)) if v.packet == VideoPacket::Frame => {
                let (dts, cts) = f(fr.dts_ms, v.cts_ms);
                let mut b = BytesMut::from(&fr.payload[..]);
                b[2..5].copy_from_slice(&cts.to_be_bytes()[1..]);
                MediaFrame::new(MediaKind::Video, dts, b.freeze())
            }
            _ => fr.clone(),
        })
        .collect()
}

/// Relay clocks (a start in the billions of ms, a wrap of the 32-bit RTMP timestamp), a
/// clock that jumps 5 minutes forward, interleave jitter, and negative composition offsets:
/// every frame recorded, durations within a frame of the 10 s of media, no premature split.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_timestamps() {
    let mut s = TestServer::start(
        r#"
        [[record_template]]
        name = "default"
        formats = ["flv", "mp4", "hls", "aac"]
        interval_s = 30
        "#,
    )
    .await;
    let clip = frames_of(&tk::CLIP_10S);
    let shift = |by: u64| -> Vec<MediaFrame> {
        clip.iter()
            .map(|f| MediaFrame::new(f.kind, f.dts_ms + by, f.payload.clone()))
            .collect()
    };
    let jump: Vec<MediaFrame> = clip
        .iter()
        .map(|f| {
            let dts = if f.dts_ms >= 5_000 {
                f.dts_ms + 300_000
            } else {
                f.dts_ms
            };
            MediaFrame::new(f.kind, dts, f.payload.clone())
        })
        .collect();
    let jitter: Vec<MediaFrame> = clip
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let back = if f.kind == MediaKind::Audio && i % 3 == 0 {
                7
            } else {
                0
            };
            MediaFrame::new(f.kind, f.dts_ms.saturating_sub(back), f.payload.clone())
        })
        .collect();
    // B-frames with negative composition offsets: decode times moved later by the keyframe's
    // offset, so frames ahead of their decode order get cts < 0 (some encoders send this).
    let lead = clip
        .iter()
        .find_map(|f| {
            f.video()
                .and_then(Result::ok)
                .filter(|v| v.packet == VideoPacket::Frame)
        })
        .unwrap()
        .cts_ms;
    assert!(lead > 0, "the fixture has B-frames");
    let negative = retime_video(&clip, |dts, cts| (dts + lead as u64, cts - lead));
    assert!(
        negative
            .iter()
            .any(|f| matches!(f.video(), Some(Ok(v)) if v.cts_ms < 0)),
        "negative offsets present"
    );
    for (name, frames) in [
        ("large-start", shift(3_000_000_000)),
        ("wraps", shift((1 << 32) - 5_000)),
        ("jump", jump),
        ("jitter", jitter),
        ("negative-cts", negative),
    ] {
        push(&s, name, frames, |_| {}).await;
        let recs = files(&mut s, 4).await;
        assert_whole(
            &recs,
            [("flv", 1), ("mp4", 1), ("hls", 1), ("aac", 1)],
            (300, 470),
        );
        for r in &recs {
            let d = r.event["duration"].as_i64().unwrap();
            assert!((9..=11).contains(&d), "{name} {}: duration {d} s", r.format);
        }
        let rows = rows(&s, name).await;
        for row in &rows {
            let ms = row["duration_ms"].as_i64().unwrap();
            assert!(
                (9_900..=10_200).contains(&ms),
                "{name} {}: {ms} ms",
                row["format"]
            );
        }
    }
}

/// 20 s at 320x240 with a keyframe every 10 s.
const LONG_GOP: tk::Clip = tk::Clip {
    name: "clip-20s-gop10",
    seconds: 20,
    size: "320x240",
    fps: 30,
    video_kbps: 300,
    gop: 300,
};

/// 40 s at 320x240 with keyframes at 0 and 30 s only.
const GOP_30S: tk::Clip = tk::Clip {
    name: "clip-40s-gop30",
    seconds: 40,
    size: "320x240",
    fps: 30,
    video_kbps: 300,
    gop: 900,
};

/// A keyframe only every 10 s; a stream that starts mid-GOP and sends no keyframe for 30 s
/// (the files start at the first keyframe: everything before it is counted as dropped); one
/// that never sends a keyframe (no file, event 332 `record_start_failed` for every format).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_gops_and_missing_keyframes() {
    let mut s = TestServer::start(ALL_FORMATS).await;
    let long = frames_of(&LONG_GOP);
    let want = coded(&long);
    assert_eq!(want.0, 600);
    push(&s, "gop10", long, |_| {}).await;
    let recs = files(&mut s, 4).await;
    assert_whole(
        &recs,
        [("flv", 1), ("mp4", 1), ("hls", 1), ("aac", 1)],
        want,
    );

    let clip = frames_of(&GOP_30S);
    // Starts just after the first keyframe: 30 s of pictures that cannot be decoded.
    let first_key = clip.iter().position(MediaFrame::is_video_keyframe).unwrap();
    let mid_gop: Vec<MediaFrame> = clip[..first_key]
        .iter()
        .chain(&clip[first_key + 1..])
        .cloned()
        .collect();
    let want = from_first_key(&mid_gop);
    assert_eq!(want.0, 300, "10 s of video from the keyframe at 30 s");
    push(&s, "no-key-30s", mid_gop.clone(), |_| {}).await;
    let recs = files(&mut s, 4).await;
    assert_whole(
        &recs,
        [("flv", 1), ("mp4", 1), ("hls", 1), ("aac", 1)],
        want,
    );

    // Only the first 20 s of that: no keyframe at all.
    let never: Vec<MediaFrame> = mid_gop.into_iter().filter(|f| f.dts_ms < 20_000).collect();
    push(&s, "no-key-ever", never, |_| {}).await;
    let statuses = statuses_until(&mut s, 0).await;
    let mut failed: Vec<i64> = statuses
        .iter()
        .filter(|st| {
            st["stream_id"] == "no-key-ever" && st["record_event"] == "record_start_failed"
        })
        .map(|st| {
            let d = detail(st);
            assert!(
                d["error"].as_str().unwrap().contains("no video keyframe"),
                "{d}"
            );
            d["file_format"].as_i64().unwrap()
        })
        .collect();
    failed.sort();
    assert_eq!(failed, [1, 2, 3, 4], "every format says it did not start");
    assert!(rows(&s, "no-key-ever").await.is_empty());
    let spools: Vec<_> = std::fs::read_dir(s.data_path("spool")).unwrap().collect();
    assert!(spools.is_empty(), "no spool left behind: {spools:?}");
}

/// `FCUnpublish` + `deleteStream` with the TCP connection kept open ends the push at once
/// (errcode 1); a publisher that just closes ends it too (errcode 3). Both recorded whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublish_with_connection_open_and_close_without_unpublish() {
    let mut s = TestServer::start(ALL_FORMATS).await;
    let clip = frames_of(&tk::CLIP_10S);
    for (name, ending, errcode) in [
        ("keeps-open", Ending::UnpublishKeepOpen, 1),
        ("just-closes", Ending::Close, 3),
    ] {
        let started = std::time::Instant::now();
        push(&s, name, clip.clone(), |o| o.ending = ending).await;
        assert!(
            started.elapsed() < livetape_publish::STALL_TIMEOUT,
            "the server closed the connection, not our timeout"
        );
        let end = s.receiver.next_of(0).await.body;
        assert_eq!(
            (end["stream_id"].as_str(), end["errcode"].as_i64()),
            (Some(name), Some(errcode))
        );
        let recs = files(&mut s, 4).await;
        assert_whole(
            &recs,
            [("flv", 1), ("mp4", 1), ("hls", 1), ("aac", 1)],
            (300, 470),
        );
    }
}

/// Rewrites the clip's AVC tags in Enhanced RTMP v2 form: ModEx (TimestampOffsetNano) in front
/// of every coded frame, and a second video track (the same pictures, track 1, multitrack
/// OneTrack). The default track is recorded everywhere; FLV keeps track 1 as well; MP4/HLS say
/// in event 332 that they leave it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enhanced_rtmp_v2_modex_and_multitrack_video() {
    let mut s = TestServer::start(ALL_FORMATS).await;
    let clip = frames_of(&tk::CLIP_10S);
    let mut frames = Vec::new();
    for f in &clip {
        let Some(Ok(v)) = f.video() else {
            frames.push(f.clone());
            continue;
        };
        let frame_type: u8 = if v.keyframe { 1 } else { 2 };
        let data = &f.payload[v.header_len..];
        match v.packet {
            VideoPacket::SequenceHeader => {
                let mut b = vec![0x80 | (frame_type << 4)];
                b.extend_from_slice(b"avc1");
                b.extend_from_slice(data);
                frames.push(MediaFrame::new(MediaKind::Video, f.dts_ms, Bytes::from(b)));
                let mut t1 = vec![0x80 | (frame_type << 4) | 6, 0x00];
                t1.extend_from_slice(b"avc1");
                t1.push(1);
                t1.extend_from_slice(data);
                frames.push(MediaFrame::new(MediaKind::Video, f.dts_ms, Bytes::from(t1)));
            }
            VideoPacket::Frame => {
                let cts = v.cts_ms.to_be_bytes();
                // ModEx: size-1 = 2 (3 bytes of nanoseconds), then type 0 | CodedFrames.
                let mut b = vec![0x80 | (frame_type << 4) | 7, 2, 0x01, 0x86, 0xa0, 0x01];
                b.extend_from_slice(b"avc1");
                b.extend_from_slice(&cts[1..]);
                b.extend_from_slice(data);
                frames.push(MediaFrame::new(MediaKind::Video, f.dts_ms, Bytes::from(b)));
                let mut t1 = vec![0x80 | (frame_type << 4) | 6, 0x01];
                t1.extend_from_slice(b"avc1");
                t1.push(1);
                t1.extend_from_slice(&cts[1..]);
                t1.extend_from_slice(data);
                frames.push(MediaFrame::new(MediaKind::Video, f.dts_ms, Bytes::from(t1)));
            }
            _ => frames.push(f.clone()),
        }
    }
    assert_eq!(coded(&frames), (300, 470), "the default track alone");
    push(&s, "multitrack", frames, |_| {}).await;
    let statuses = statuses_until(&mut s, 0).await;
    let recs = files(&mut s, 4).await;
    for f in ["mp4", "hls", "aac"] {
        let want = if f == "aac" {
            (1, 0, 470)
        } else {
            (1, 300, 470)
        };
        assert_eq!(totals(&recs, f), want, "{f}");
    }
    // FLV keeps both video tracks: ffmpeg 9 demuxes the second as a stream of its own.
    assert_eq!(totals(&recs, "flv"), (1, 600, 470));
    for code in [2, 3] {
        assert!(
            statuses.iter().any(|st| {
                let d = detail(st);
                st["record_event"] == "record_error"
                    && d["file_format"] == code
                    && d["error"].as_str().unwrap().contains("track 1")
            }),
            "format {code} reports the extra track: {statuses:#?}"
        );
    }
    assert!(
        !statuses
            .iter()
            .any(|st| detail(st)["file_format"] == 1 && st["record_event"] == "record_error"),
        "flv keeps it"
    );
}

/// A spool whose content can never be finalized (here an MP4 spool cut inside its init
/// segment) is moved to `spool/quarantine/` once, counted in `/metrics` and reported with event
/// 332, instead of being retried at every start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_that_cannot_be_finalized_is_quarantined_once() {
    let s = TestServer::start(ALL_FORMATS).await;
    let spool_dir = s.data_path("spool");
    let id = "1250000000_0123456789abcdef0123456789abcdef";
    let spool = spool_dir.join(format!("{id}.mp4.part"));
    std::fs::write(&spool, b"\0\0\0\x20ftypisom\0\0\0\0isomiso2\0\0\x10\0moov").unwrap();
    let meta = serde_json::json!({
        "file_id": id,
        "format": "mp4",
        "ctx": {
            "appid": 1250000000u64, "domain": "", "appname": "live", "stream": "broken",
            "sequence": "7", "stream_param": "",
            "callbacks": {
                "name": "cb", "key": CALLBACK_KEY,
                "stream_begin_url": format!("{}/begin", s.receiver.url),
                "stream_end_url": format!("{}/end", s.receiver.url),
                "record_url": format!("{}/record", s.receiver.url),
                "retry_count": 12, "retry_interval_s": 1,
            },
        },
        "started_wall_ms": 1_700_000_000_000i64,
        "media_start_ms": 0,
        "video": null,
    });
    std::fs::write(spool.with_extension("json"), meta.to_string()).unwrap();
    let mut s = s.restart().await;
    let q = spool_dir.join("quarantine");
    assert!(q.join(format!("{id}.mp4.part")).exists(), "moved aside");
    assert!(
        q.join(format!("{id}.mp4.json")).exists(),
        "with its metadata"
    );
    assert!(!spool.exists());
    let st = s.receiver.next_of(332).await.body;
    assert_eq!(st["record_event"], "record_error");
    assert!(
        detail(&st)["error"]
            .as_str()
            .unwrap()
            .contains("quarantine"),
        "{st}"
    );
    let m = reqwest::get(s.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("livetape_spools_quarantined_total 1"), "{m}");
    // The next start leaves it alone: not retried, not reported again.
    let mut s = s.restart().await;
    let m = reqwest::get(s.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("livetape_spools_quarantined_total 0"), "{m}");
    assert!(q.join(format!("{id}.mp4.part")).exists());
    assert!(rows(&s, "broken").await.is_empty());
    push(&s, "after", frames_of(&tk::CLIP_10S), |_| {}).await;
    let got = s.receiver.next().await.body;
    assert_ne!(got["stream_id"], "broken", "no second report: {got}");
}
