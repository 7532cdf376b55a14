//! End-to-end over real TCP sockets on 127.0.0.1 against a tiny in-test server built on
//! `livetape_rtmp::ServerSession`.

use bytes::BytesMut;
use livetape_media::{MediaFrame, MediaKind, VideoPacket};
use livetape_publish::{Pace, PublishError, PublishOptions, load_flv, publish_frames, run_many};
use livetape_rtmp::{Event, ServerSession, SessionConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use livetape_testkit::{clip_10s, clip_60s};

#[derive(Debug, Default)]
struct Received {
    stream_name: String,
    frames: Vec<MediaFrame>,
    unpublished: bool,
    bytes: u64,
    /// The connection ended with an error (e.g. ECONNRESET) instead of a clean FIN.
    reset: bool,
}

/// Serves one connection until the client closes it, then closes too.
async fn serve(mut sock: TcpStream, reject: Option<&'static str>) -> Received {
    // A small ack window keeps the server writing to us up to the very end, so a publisher that
    // closes with unread acks gets its tail cut off by the resulting RST.
    let mut session = ServerSession::new(SessionConfig {
        window_ack_size: 64 * 1024,
        peer_bandwidth: 64 * 1024,
        ..SessionConfig::default()
    });
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let mut events = Vec::new();
    let mut got = Received::default();
    loop {
        if buf.capacity() - buf.len() < 64 * 1024 {
            buf.reserve(256 * 1024);
        }
        let n = match sock.read_buf(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => {
                got.reset = true;
                break;
            }
        };
        session
            .handle_input_buf(&mut buf, n, &mut events)
            .expect("valid RTMP from the publisher");
        for e in events.drain(..) {
            match e {
                Event::PublishRequested { stream_name, .. } => {
                    got.stream_name = stream_name;
                    match reject {
                        None => session.accept_publish().unwrap(),
                        Some(code) => session.reject_publish(code, "test says no").unwrap(),
                    }
                }
                Event::Media(f) => got.frames.push(f),
                Event::Unpublished { .. } => got.unpublished = true,
                Event::Connected { .. } => {}
            }
        }
        if let Some(out) = session.take_output()
            && sock.write_all(&out).await.is_err()
        {
            // Like SRS: a failed write ends the connection, unread data is lost.
            got.reset = true;
            break;
        }
    }
    got.bytes = session.bytes_received();
    got
}

async fn server(reject: Option<&'static str>) -> (String, tokio::task::JoinHandle<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        serve(sock, reject).await
    });
    (format!("rtmp://127.0.0.1:{port}/live"), handle)
}

fn opts(url: String, pace: Pace) -> PublishOptions {
    PublishOptions {
        pace,
        connect_timeout: Duration::from_secs(10),
        ..PublishOptions::new(url)
    }
}

/// (coded video frames, audio frames, script tags), i.e. what ffprobe counts as packets.
fn packet_counts(frames: &[MediaFrame]) -> (usize, usize, usize) {
    let video = frames
        .iter()
        .filter(|f| matches!(f.video(), Some(Ok(v)) if v.packet == VideoPacket::Frame))
        .count();
    let audio = frames
        .iter()
        .filter(|f| matches!(f.audio(), Some(Ok(a)) if !a.is_sequence_header()))
        .count();
    let script = frames
        .iter()
        .filter(|f| f.kind == MediaKind::Script)
        .count();
    (video, audio, script)
}

fn assert_identical(got: &[MediaFrame], want: &[MediaFrame]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!((g.kind, g.dts_ms), (w.kind, w.dts_ms), "frame {i}");
        assert!(g.payload == w.payload, "frame {i}: payload differs");
    }
}

#[test]
fn load_flv_shares_one_buffer() {
    let frames = load_flv(clip_10s()).unwrap();
    assert_eq!(packet_counts(&frames), (300, 470, 1));
    // Every payload lies inside one allocation no bigger than the file.
    let lo = frames
        .iter()
        .map(|f| f.payload.as_ptr() as usize)
        .min()
        .unwrap();
    let hi = frames
        .iter()
        .map(|f| f.payload.as_ptr() as usize + f.payload.len())
        .max()
        .unwrap();
    assert!(hi - lo <= std::fs::metadata(clip_10s()).unwrap().len() as usize);
    assert!(matches!(
        load_flv("/nonexistent.flv"),
        Err(PublishError::ReadFile { .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    let not_flv = dir.path().join("clip.json");
    std::fs::write(&not_flv, br#"{"streams": []}"#).unwrap();
    assert!(matches!(load_flv(&not_flv), Err(PublishError::Flv { .. })));
}

#[tokio::test]
async fn fast_publish_arrives_byte_identical() {
    let frames: Arc<[MediaFrame]> = load_flv(clip_10s()).unwrap().into();
    let (url, srv) = server(None).await;
    let stats = publish_frames(frames.clone(), &opts(format!("{url}/cam?k=v"), Pace::Fast))
        .await
        .unwrap();
    let got = srv.await.unwrap();
    assert_eq!(got.stream_name, "cam");
    assert!(got.unpublished && !got.reset);
    assert_eq!(packet_counts(&got.frames), (300, 470, 1));
    assert_identical(&got.frames, &frames);
    assert_eq!(stats.frames_sent, frames.len() as u64);
    assert_eq!(stats.bytes_sent, got.bytes);
}

#[tokio::test]
async fn paced_publish_takes_the_scaled_duration() {
    let frames: Arc<[MediaFrame]> = load_flv(clip_10s()).unwrap().into();
    let last_dts = frames.iter().map(|f| f.dts_ms).max().unwrap();
    let (url, srv) = server(None).await;
    let stats = publish_frames(
        frames.clone(),
        &opts(format!("{url}/cam"), Pace::Rate(20.0)),
    )
    .await
    .unwrap();
    let got = srv.await.unwrap();
    assert_identical(&got.frames, &frames);
    // The last frame cannot leave before its dts / 20.
    assert!(
        stats.duration >= Duration::from_millis(last_dts / 20),
        "{:?}",
        stats.duration
    );
}

#[tokio::test]
async fn loops_continue_timestamps() {
    let frames: Arc<[MediaFrame]> = load_flv(clip_10s()).unwrap()[..50].to_vec().into();
    let (url, srv) = server(None).await;
    let mut o = opts(format!("{url}/cam"), Pace::Fast);
    o.loops = 3;
    let stats = publish_frames(frames.clone(), &o).await.unwrap();
    let got = srv.await.unwrap();
    assert_eq!(stats.frames_sent, 150);
    assert_eq!(got.frames.len(), 150);
    let span = got.frames[50].dts_ms - frames[0].dts_ms;
    assert!(span > frames[49].dts_ms - frames[0].dts_ms);
    for (i, g) in got.frames.iter().enumerate() {
        let w = &frames[i % 50];
        assert_eq!(g.dts_ms, w.dts_ms + (i / 50) as u64 * span, "frame {i}");
        assert!(g.payload == w.payload);
    }
}

/// `media_limit` loops the clip and cuts at the first pass start or keyframe at the limit.
#[tokio::test]
async fn media_limit_cuts_at_a_gop_boundary() {
    let frames: Arc<[MediaFrame]> = load_flv(clip_10s()).unwrap().into();
    let n = frames.len();
    let first = frames.iter().map(|f| f.dts_ms).min().unwrap();
    // (limit, passes expected to be whole): 10 s ends exactly after pass 1 (its last frame is
    // at 10.05 s but no keyframe of it reaches 10 s); 25 s cuts pass 3 inside.
    for (limit_s, whole) in [(10, true), (25, false)] {
        let (url, srv) = server(None).await;
        let mut o = opts(format!("{url}/cut{limit_s}"), Pace::Fast);
        o.loops = u32::MAX;
        o.media_limit = Some(Duration::from_secs(limit_s));
        let stats = publish_frames(frames.clone(), &o).await.unwrap();
        let got = srv.await.unwrap();
        assert_eq!(stats.frames_sent as usize, got.frames.len());
        let sent = got.frames.len();
        if whole {
            assert_eq!(sent, n);
            assert_identical(&got.frames, &frames);
            continue;
        }
        assert!(sent > 2 * n && sent < 3 * n, "{sent}");
        let limit_ms = limit_s * 1000;
        // The next frame (never sent) is a keyframe at or past the limit...
        let next = &frames[sent % n];
        let span = got.frames[n].dts_ms - frames[0].dts_ms;
        assert!(next.is_video_keyframe());
        assert!(next.dts_ms - first + 2 * span >= limit_ms);
        // ...and no keyframe at or past the limit was sent.
        for f in &got.frames {
            assert!(
                !(f.is_video_keyframe() && f.dts_ms - first >= limit_ms),
                "{}",
                f.dts_ms
            );
        }
    }
}

/// 20 MB as fast as possible: the server is still busy parsing when we finish, which is when
/// closing with unread bytes (an RST) would lose the tail.
#[tokio::test]
async fn sixty_second_clip_arrives_complete() {
    let frames: Arc<[MediaFrame]> = load_flv(clip_60s()).unwrap().into();
    assert_eq!(packet_counts(&frames), (1800, 2814, 1));
    let (url, srv) = server(None).await;
    let stats = publish_frames(frames.clone(), &opts(format!("{url}/big"), Pace::Fast))
        .await
        .unwrap();
    let got = srv.await.unwrap();
    assert_eq!(packet_counts(&got.frames), (1800, 2814, 1));
    assert_identical(&got.frames, &frames);
    assert!(got.unpublished);
    assert!(!got.reset, "connection must end with FIN, not RST");
    assert_eq!(stats.bytes_sent, got.bytes);
    // The server acks every 64 KiB window; we read them all before closing.
    assert!(stats.bytes_sent - stats.ack_bytes < 64 * 1024);
}

#[tokio::test]
async fn rejected_publish_returns_the_code() {
    let frames: Arc<[MediaFrame]> = load_flv(clip_10s()).unwrap().into();
    let (url, srv) = server(Some("NetStream.Publish.BadName")).await;
    let err = publish_frames(frames, &opts(format!("{url}/taken"), Pace::Fast))
        .await
        .unwrap_err();
    match err {
        PublishError::Rejected { code, description } => {
            assert_eq!(code, "NetStream.Publish.BadName");
            assert_eq!(description, "test says no");
        }
        other => panic!("{other:?}"),
    }
    let got = srv.await.unwrap();
    assert!(got.frames.is_empty() && !got.reset);
}

#[tokio::test]
async fn connection_refused_and_bad_url() {
    // Bind then drop to get a port nobody listens on.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let frames: Arc<[MediaFrame]> = Vec::new().into();
    let err = publish_frames(
        frames.clone(),
        &opts(format!("rtmp://127.0.0.1:{port}/live/s"), Pace::Fast),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, PublishError::Connect { .. }), "{err:?}");
    let err = publish_frames(frames, &opts("rtmp://h/nostream".into(), Pace::Fast))
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::InvalidUrl { .. }), "{err:?}");
}

/// utime + stime of the calling thread, in clock ticks (USER_HZ, 100 on Linux).
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after_comm` starts at field 3.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Measures (prints, does not assert) publisher CPU per stream, unpaced and at 20x real time
/// (same per-frame work and timer wakeups as real time, 20x compressed). Server and publishers
/// run on separate single-threaded runtimes so the publisher thread's CPU time is its own.
#[test]
fn run_many_fifty_streams_cpu() {
    const STREAMS: usize = 50;
    const MEDIA_SECS: f64 = 10.067;
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().port()).unwrap();
            let mut conns = tokio::task::JoinSet::new();
            for _ in 0..2 * STREAMS {
                let (sock, _) = listener.accept().await.unwrap();
                conns.spawn(serve(sock, None));
            }
            let mut total = Vec::new();
            while let Some(r) = conns.join_next().await {
                let r = r.unwrap();
                assert!(!r.reset);
                total.push((r.stream_name, packet_counts(&r.frames)));
            }
            total
        })
    });
    let port = rx.recv().unwrap();
    let frames: Arc<[MediaFrame]> = load_flv(clip_10s()).unwrap().into();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (label, pace) in [("fast", Pace::Fast), ("20x", Pace::Rate(20.0))] {
        let before = thread_cpu_ticks();
        let wall = std::time::Instant::now();
        let summary = rt.block_on(run_many(
            frames.clone(),
            STREAMS,
            &format!("rtmp://127.0.0.1:{port}/live/{label}{{i}}"),
            pace,
        ));
        let wall = wall.elapsed();
        let ticks = thread_cpu_ticks() - before;
        assert_eq!(
            (summary.ok, summary.failed),
            (STREAMS, 0),
            "{:?}",
            summary.errors
        );
        let cpu_per_stream = Duration::from_millis(ticks * 10) / STREAMS as u32;
        // Each stream carries ~10 s of media: CPU share of one core per real-time stream.
        let pct = cpu_per_stream.as_secs_f64() / MEDIA_SECS * 100.0;
        println!(
            "run_many {label}: {STREAMS} streams x clip-10s in {wall:?}, {} MB sent; publisher \
             CPU {cpu_per_stream:?}/stream = {pct:.4}% of a core per real-time stream \
             (ffmpeg ~0.4%; 10 ms tick resolution; unoptimised in debug builds)",
            summary.bytes / 1_000_000,
        );
    }
    let received = server.join().unwrap();
    assert_eq!(received.len(), 2 * STREAMS);
    assert!(received.iter().all(|(_, c)| *c == (300, 470, 1)));
    let mut names: Vec<_> = received.into_iter().map(|(n, _)| n).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 2 * STREAMS, "each stream used its own name");
}
