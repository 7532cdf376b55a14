//! Real ffmpeg publishes the fixture to a tiny tokio driver around `ServerSession`.

use bytes::BytesMut;
use livetape_media::{MediaFrame, MediaKind, VideoPacket};
use livetape_rtmp::{
    DEFAULT_WINDOW_ACK_SIZE, Event, HANDSHAKE_RANDOM_LEN, HANDSHAKE_SIZE, ServerSession,
    SessionConfig,
};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Video and audio tag bodies of an FLV file, in order (the oracle for `-c copy`).
fn flv_bodies(flv: &[u8]) -> (Vec<&[u8]>, Vec<&[u8]>) {
    let (mut video, mut audio) = (Vec::new(), Vec::new());
    let mut pos = 9 + 4;
    while pos + 11 <= flv.len() {
        let ty = flv[pos];
        let size = u32::from_be_bytes([0, flv[pos + 1], flv[pos + 2], flv[pos + 3]]) as usize;
        let body = &flv[pos + 11..pos + 11 + size];
        match ty {
            8 => audio.push(body),
            9 => video.push(body),
            _ => {}
        }
        pos += 11 + size + 4;
    }
    (video, audio)
}

/// Runs one connection; returns its events, bytes received and everything sent.
async fn serve(listener: TcpListener) -> std::io::Result<(Vec<Event>, u64, Vec<u8>)> {
    let (mut sock, _) = listener.accept().await?;
    let mut session = ServerSession::new(SessionConfig {
        handshake_time_ms: 1234,
        handshake_random: [0x5a; HANDSHAKE_RANDOM_LEN],
        ..SessionConfig::default()
    });
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut events = Vec::new();
    let mut all = Vec::new();
    let mut unpublished = false;
    let mut sent = Vec::new();
    loop {
        buf.reserve(64 * 1024);
        let n = match sock.read_buf(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            // ffmpeg may reset the connection right after deleteStream.
            Err(_) if unpublished => break,
            Err(e) => return Err(e),
        };
        session
            .handle_input_buf(&mut buf, n, &mut events)
            .map_err(std::io::Error::other)?;
        for e in events.drain(..) {
            if let Event::PublishRequested { .. } = e {
                session.accept_publish().map_err(std::io::Error::other)?;
            }
            unpublished |= matches!(e, Event::Unpublished { .. });
            all.push(e);
        }
        if let Some(out) = session.take_output() {
            sent.extend_from_slice(&out);
            if let Err(e) = sock.write_all(&out).await
                && !unpublished
            {
                return Err(e);
            }
        }
    }
    Ok((all, session.bytes_received(), sent))
}

#[tokio::test]
async fn ffmpeg_publish_10s_fixture() {
    publish_and_check(&livetape_testkit::clip_10s(), 300, 470, 10_000).await;
}

/// 20 MB: exercises acknowledgement windows and large (multi-chunk) keyframes.
#[tokio::test]
async fn ffmpeg_publish_60s_fixture() {
    publish_and_check(&livetape_testkit::clip_60s(), 1800, 2814, 60_000).await;
}

async fn publish_and_check(
    fixture: &std::path::Path,
    n_video: usize,
    n_audio: usize,
    duration_ms: u64,
) {
    // A missing ffmpeg fails the test (scripts/test.sh installs it): never a silent pass.
    assert!(
        std::process::Command::new("ffmpeg")
            .arg("-version")
            .output()
            .is_ok(),
        "ffmpeg is not installed (apt-get install ffmpeg)"
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("rtmp://127.0.0.1:{port}/live/test?foo=bar&txSecret=x");
    let mut child = tokio::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            // Paced (still 30× real time): at full speed ffmpeg may close before the server
            // has read its last bytes, and the kernel then resets the connection (RST) and
            // drops them — a race of the test, not of the protocol.
            "-readrate",
            "30",
            "-i",
        ])
        .arg(fixture)
        .args(["-c", "copy", "-f", "flv", &url])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (events, received, sent) = tokio::time::timeout(Duration::from_secs(60), serve(listener))
        .await
        .expect("publish did not finish within 60 s")
        .expect("driver failed");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "ffmpeg exited with {status}");
    // One Acknowledgement (fmt 0, csid 2, ts 0, length 4, type 3, stream 0) per window crossed;
    // reads are at most 64 KiB, so each ack lands less than that past its window.
    let ack_header = [2, 0, 0, 0, 0, 0, 4, 3, 0, 0, 0, 0];
    let acks = sent[1 + 2 * HANDSHAKE_SIZE..]
        .windows(ack_header.len())
        .filter(|w| *w == ack_header)
        .count() as u64;
    let window = u64::from(DEFAULT_WINDOW_ACK_SIZE);
    assert!(
        (received / (window + 64 * 1024)..=received / window).contains(&acks),
        "{acks} acks for {received} bytes"
    );

    match &events[0] {
        Event::Connected { app, tc_url, .. } => {
            assert_eq!(app, "live");
            assert_eq!(tc_url, &format!("rtmp://127.0.0.1:{port}/live"));
        }
        e => panic!("first event {e:?}"),
    }
    match &events[1] {
        Event::PublishRequested {
            app,
            stream_name,
            stream_param,
            ..
        } => {
            assert_eq!(
                (app.as_str(), stream_name.as_str(), stream_param.as_str()),
                ("live", "test", "foo=bar&txSecret=x")
            );
        }
        e => panic!("second event {e:?}"),
    }
    assert!(matches!(events.last(), Some(Event::Unpublished { .. })));
    let frames: Vec<&MediaFrame> = events[2..events.len() - 1]
        .iter()
        .map(|e| match e {
            Event::Media(f) => f,
            e => panic!("unexpected event mid-stream {e:?}"),
        })
        .collect();

    let video: Vec<&MediaFrame> = frames
        .iter()
        .copied()
        .filter(|f| matches!(f.video(), Some(Ok(v)) if v.packet == VideoPacket::Frame))
        .collect();
    let audio: Vec<&MediaFrame> = frames
        .iter()
        .copied()
        .filter(|f| matches!(f.audio(), Some(Ok(a)) if !a.is_sequence_header()))
        .collect();
    let scripts: Vec<&MediaFrame> = frames
        .iter()
        .copied()
        .filter(|f| f.kind == MediaKind::Script)
        .collect();
    assert_eq!(video.len(), n_video);
    assert_eq!(audio.len(), n_audio);
    assert_eq!(scripts.len(), 1);
    assert!(scripts[0].payload.starts_with(b"\x02\x00\x0aonMetaData"));
    assert!(video[0].is_video_keyframe());
    assert!(video.windows(2).all(|w| w[0].dts_ms <= w[1].dts_ms));
    let last = video.last().unwrap().dts_ms;
    assert!(
        (duration_ms - 200..=duration_ms + 100).contains(&last),
        "last video dts {last}"
    );

    // -c copy: the frame bodies must be byte-identical to the fixture's tags.
    let flv = std::fs::read(fixture).unwrap();
    let (fv, fa) = flv_bodies(&flv);
    let fv: Vec<&[u8]> = fv.into_iter().filter(|b| b.get(1) == Some(&1)).collect();
    let fa: Vec<&[u8]> = fa.into_iter().filter(|b| b.get(1) == Some(&1)).collect();
    assert_eq!((fv.len(), fa.len()), (n_video, n_audio));
    assert!(video.iter().zip(&fv).all(|(f, b)| &f.payload[..] == *b));
    assert!(audio.iter().zip(&fa).all(|(f, b)| &f.payload[..] == *b));
}
