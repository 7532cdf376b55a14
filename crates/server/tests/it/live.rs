//! Live viewing: HTTP-FLV and live HLS while a real ffmpeg publishes, a stalled viewer,
//! play auth, and the live stream listing.

use crate::common::*;
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Polls `/v1/streams` until `pred` holds for stream `name` (no event exists for this).
async fn wait_stream(s: &TestServer, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v: Value = reqwest::get(s.http("/v1/streams"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(st) = v["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["stream"] == name && pred(x))
        {
            return st.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "stream {name}: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// ffprobe's packets (codec_type, keyframe) and streams of a URL, read to its end.
async fn probe_packets(url: &str) -> (Vec<(String, bool)>, Vec<Value>) {
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "packet=codec_type,flags"])
        .args(["-show_entries", "stream=codec_name,codec_type,width,height"])
        .args(["-of", "json", url])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let packets = v["packets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                p["codec_type"].as_str().unwrap_or("").to_owned(),
                p["flags"].as_str().unwrap_or("").starts_with('K'),
            )
        })
        .collect();
    (
        packets,
        v["streams"].as_array().cloned().unwrap_or_default(),
    )
}

fn codec(streams: &[Value], kind: &str) -> String {
    streams
        .iter()
        .find(|s| s["codec_type"] == kind)
        .map(|s| s["codec_name"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Removes HTTP/1.1 chunked framing.
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&b[..i]).unwrap().trim(), 16).unwrap();
        if n == 0 || b.len() < i + 2 + n {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[(i + 4 + n).min(b.len())..];
    }
    out
}

/// (tag type, timestamp, is video keyframe, is sequence header) of an FLV byte stream.
fn flv_tags(all: &[u8]) -> Vec<(u8, u32, bool, bool)> {
    assert_eq!(&all[..3], b"FLV");
    let mut pos = 13;
    let mut out = Vec::new();
    while pos + 11 <= all.len() {
        let h = &all[pos..pos + 11];
        let size = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
        if pos + 15 + size > all.len() {
            break;
        }
        let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let body = &all[pos + 11..pos + 11 + size];
        let sh = matches!(h[0], 8 | 9) && body.get(1) == Some(&0);
        out.push((h[0], ts, h[0] == 9 && body[0] >> 4 == 1 && !sh, sh));
        pos += 15 + size;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_flv_viewers_and_a_stalled_one_while_recording_stays_exact() {
    let mut s = TestServer::start(
        r#"
        [[record_template]]
        name = "default"
        formats = ["flv"]
        "#,
    )
    .await;
    // Not live yet.
    let r = reqwest::get(s.http("/live/live/cam.flv")).await.unwrap();
    assert_eq!(r.status(), 404);
    // The 60 s clip at 6x: ~10 s, far more than socket buffers hold.
    let rtmp = s.rtmp();
    let clip = fixture(CLIP_60S);
    let push =
        tokio::spawn(async move { publish(rtmp, "live", "cam", &clip, Pace::Rate(6)).await });
    wait_stream(&s, "cam", |x| x["video_codec"] == "h264").await;

    // A viewer that never reads: tiny receive buffer, request sent, then silence.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut stalled = sock.connect(s.running.http_addr).await.unwrap();
    stalled
        .write_all(b"GET /live/live/cam.flv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // A real player reading along.
    let url = s.http("/live/live/cam.flv");
    let viewer = tokio::spawn(async move { probe_packets(&url).await });

    let st = wait_stream(&s, "cam", |x| x["viewers"].as_u64() >= Some(2)).await;
    assert_eq!(
        (st["width"].as_u64(), st["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert_eq!(
        (&st["video_codec"], &st["audio_codec"]),
        (&"h264".into(), &"aac".into())
    );
    assert_eq!(st["since_ms"], st["started_at_ms"]);

    assert!(push.await.unwrap(), "publisher ran to the end");
    // Recording is untouched by viewers: packet-exact.
    let ev = s.receiver.next_of(100).await.body;
    let file = s.download(&ev).await;
    assert_eq!(probe_counts(&file), (1800, 2814));

    // The reading viewer got the stream from a keyframe to the end.
    let (packets, streams) = tokio::time::timeout(WAIT, viewer).await.unwrap().unwrap();
    assert_eq!(codec(&streams, "video"), "h264");
    assert_eq!(codec(&streams, "audio"), "aac");
    let first_video = packets.iter().find(|p| p.0 == "video").unwrap();
    assert!(first_video.1, "starts at a keyframe");
    let video = packets.iter().filter(|p| p.0 == "video").count();
    let audio = packets.iter().filter(|p| p.0 == "audio").count();
    assert!(
        video >= 1700 && audio >= 2600,
        "{video} video, {audio} audio"
    );

    // The stalled one was skipped ahead (not waited for): fewer frames, each gap ends at a
    // keyframe.
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stalled.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let head = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(raw.starts_with(b"HTTP/1.1 200"));
    let tags = flv_tags(&dechunk(&raw[head + 4..]));
    let vids: Vec<_> = tags.iter().filter(|t| t.0 == 9 && !t.3).collect();
    assert!(vids[0].2, "starts at a keyframe");
    assert!(
        vids.len() < 1500,
        "{} video tags: nothing was dropped",
        vids.len()
    );
    let mut gaps = 0;
    for w in vids.windows(2) {
        if w[1].1 > w[0].1 + 100 {
            gaps += 1;
            assert!(w[1].2, "resumed at a non-keyframe at {} ms", w[1].1);
        }
    }
    assert!(gaps >= 1);

    // Viewers gone, stream gone.
    let r = reqwest::get(s.http("/live/live/cam.flv")).await.unwrap();
    assert_eq!(r.status(), 404);
}

fn signed(key: &str, stream: &str, expiry: i64) -> String {
    let tx_time = format!("{expiry:x}");
    let secret = md5_hex(&format!("{key}{stream}{tx_time}"));
    format!("txSecret={secret}&txTime={tx_time}")
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn play_auth_disconnects_and_live_hls() {
    let s = TestServer::start("[live]\nplay_key = \"playkey\"\n").await;
    let ok = signed("playkey", "room", now_s() + 300);
    let get = |path: String| {
        let url = s.http(&path);
        async move { reqwest::get(url).await.unwrap() }
    };
    assert_eq!(get("/live/live/room.flv".into()).await.status(), 403);
    assert_eq!(get(format!("/live/live/room.flv?{ok}")).await.status(), 404);

    let rtmp = s.rtmp();
    let clip = fixture(CLIP_10S);
    let push =
        tokio::spawn(async move { publish(rtmp, "live", "room", &clip, Pace::Realtime).await });
    wait_stream(&s, "room", |x| x["video_codec"] == "h264").await;

    let wrong = signed("otherkey", "room", now_s() + 300);
    let expired = signed("playkey", "room", now_s() - 10);
    let other_stream = signed("playkey", "room2", now_s() + 300);
    for q in [&wrong, &expired, &other_stream] {
        assert_eq!(
            get(format!("/live/live/room.flv?{q}")).await.status(),
            403,
            "{q}"
        );
        assert_eq!(
            get(format!("/live/live/room.m3u8?{q}")).await.status(),
            403,
            "{q}"
        );
    }
    // Signed: the FLV header arrives at once (GOP cache); hanging up detaches the viewer.
    let mut r = get(format!("/live/live/room.flv?{ok}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/x-flv");
    let first = r.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..3], b"FLV");
    wait_stream(&s, "room", |x| x["viewers"] == 1).await;
    drop(r);
    wait_stream(&s, "room", |x| x["viewers"] == 0).await;

    // Live HLS: built on first request; poll until the first segment is out.
    let deadline = tokio::time::Instant::now() + WAIT;
    let playlist = loop {
        let r = get(format!("/live/live/room.m3u8?{ok}")).await;
        if r.status() == 200 {
            break r.text().await.unwrap();
        }
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key("retry-after"));
        assert!(tokio::time::Instant::now() < deadline);
    };
    assert!(playlist.starts_with("#EXTM3U"), "{playlist}");
    assert!(!playlist.contains("ENDLIST"));
    let seg = playlist
        .lines()
        .find(|l| l.starts_with("room/"))
        .unwrap()
        .to_owned();
    assert!(
        seg.contains("txSecret="),
        "segments carry the signature: {seg}"
    );
    let unsigned = seg.split('?').next().unwrap();
    assert_eq!(get(format!("/live/live/{unsigned}")).await.status(), 403);
    let r = get(format!("/live/live/{seg}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp2t");
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("seg.ts");
    std::fs::write(&ts, r.bytes().await.unwrap()).unwrap();
    assert_eq!(decode_errors(&ts), "");
    let (v, a) = probe_counts(&ts);
    assert!(v > 0 && a > 0, "{v} video, {a} audio");
    wait_stream(&s, "room", |x| x["viewers"].as_u64() >= Some(1)).await;

    // A real HLS client plays along until the stream ends.
    let (packets, streams) = probe_packets(&s.http(&format!("/live/live/room.m3u8?{ok}"))).await;
    assert_eq!(codec(&streams, "video"), "h264");
    assert_eq!(codec(&streams, "audio"), "aac");
    let video = packets.iter().filter(|p| p.0 == "video").count();
    assert!(video >= 60, "{video} video packets");
    assert!(packets.iter().find(|p| p.0 == "video").unwrap().1);
    assert!(push.await.unwrap());
}

/// A viewer that joins while the stream is still audio only (a relay or a mobile SDK whose
/// camera starts late) gets the video once its header arrives: the header is passed in order
/// to viewers already watching.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_from_before_the_late_video_header_sees_the_video() {
    use crate::shapes::{frames_of, push};
    use livetape_media::{MediaFrame, MediaKind, VideoPacket};
    let s = TestServer::start("").await;
    let clip = frames_of(&livetape_testkit::CLIP_10S);
    let vsh = clip
        .iter()
        .find(|f| matches!(f.video(), Some(Ok(v)) if v.packet == VideoPacket::SequenceHeader))
        .unwrap()
        .clone();
    // Audio from 0, the video header and pictures from the keyframe at 4 s.
    let mut frames = Vec::new();
    let mut sent_header = false;
    for f in &clip {
        if f.kind == MediaKind::Video {
            if f.payload == vsh.payload || f.dts_ms < 4_000 {
                continue;
            }
            if !sent_header {
                frames.push(MediaFrame::new(
                    MediaKind::Video,
                    f.dts_ms,
                    vsh.payload.clone(),
                ));
                sent_header = true;
            }
        }
        frames.push(f.clone());
    }
    let video_sent = frames
        .iter()
        .filter(|f| matches!(f.video(), Some(Ok(v)) if v.packet == VideoPacket::Frame))
        .count();
    let s2 = std::sync::Arc::new(s);
    let pusher = {
        let s = s2.clone();
        tokio::spawn(async move {
            push(&s, "late", frames, |o| {
                o.pace = livetape_publish::Pace::Realtime
            })
            .await
        })
    };
    // Watching while only audio is there.
    let st = wait_stream(&s2, "late", |x| x["audio_codec"] == "aac").await;
    assert_eq!(st["video_codec"], "", "audio only so far: {st}");
    let url = s2.http("/live/live/late.flv");
    let ff = livetape_testkit::ffmpeg9();
    let viewer = tokio::spawn(async move {
        let out = tokio::process::Command::new(ff)
            .args(["-v", "error", "-nostdin", "-i", &url])
            .args(["-map", "0", "-c", "copy", "-f", "framecrc", "-"])
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    pusher.await.unwrap();
    let crc = tokio::time::timeout(WAIT, viewer).await.unwrap().unwrap();
    let kinds: Vec<&str> = crc
        .lines()
        .filter_map(|l| l.strip_prefix("#media_type "))
        .collect();
    assert!(kinds.iter().any(|k| k.ends_with("video")), "{kinds:?}");
    let video_index = kinds
        .iter()
        .position(|k| k.ends_with("video"))
        .unwrap()
        .to_string();
    let video = crc
        .lines()
        .filter(|l| !l.starts_with('#') && l.split(',').next() == Some(video_index.as_str()))
        .count();
    assert_eq!(video, video_sent, "every picture reached the early viewer");
}
