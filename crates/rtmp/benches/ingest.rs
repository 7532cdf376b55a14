//! Server-side ingest throughput: a recorded publish byte stream (handshake, connect, publish,
//! then every frame of the fixture clip) replayed into a fresh `ServerSession` in 64 KiB reads,
//! through the zero-copy `handle_input_buf` path the server's ingest loop uses. Reports MB/s of
//! input bytes.
//!
//! The stream is produced once by the crate's own `ClientSession` (the chunking ffmpeg does:
//! 4096-byte chunks, and a 128-byte variant for encoders that never raise the chunk size).
//!
//! Run: `cargo bench -p livetape-rtmp --bench ingest`

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use livetape_flv::FlvReader;
use livetape_media::MediaFrame;
use livetape_rtmp::{
    ClientConfig, ClientEvent, ClientSession, Event, ServerSession, SessionConfig,
};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

/// What the server's ingest loop reads at a time (`livetape::ingest::READ_BUFFER`).
const READ_SIZE: usize = 64 * 1024;
/// Round trips allowed to reach NetStream.Publish.Start (a handful are needed).
const MAX_SETUP_ROUNDS: usize = 32;

/// The 60 s fixture (generated with ffmpeg on first use, cached under `target/testkit`).
fn fixture() -> PathBuf {
    livetape_testkit::clip_60s()
}

fn load_frames() -> Option<Vec<MediaFrame>> {
    let path = fixture();
    let data = std::fs::read(&path).ok()?;
    let mut r = FlvReader::new();
    r.feed(&data);
    let mut frames = Vec::new();
    while let Some(tag) = r.next_tag() {
        match tag {
            Ok(t) => frames.extend(t.into_frame()),
            Err(e) => {
                eprintln!("ingest bench: {}: {e}, skipping", path.display());
                return None;
            }
        }
    }
    Some(frames)
}

/// What a publisher sends: the setup (up to and including `publish`) and then the media.
struct Stream {
    wire: Vec<u8>,
    /// Length of the setup prefix. A real client waits for NetStream.Publish.Start before it
    /// sends media, so the setup is its own read; media read before the accept would be dropped.
    setup_len: usize,
}

/// Everything a publisher sends for `frames`, as one byte stream (what the server reads).
fn publish_stream(frames: &[MediaFrame], chunk_size: u32) -> Stream {
    let mut client = ClientSession::new(ClientConfig {
        app: "live".into(),
        tc_url: "rtmp://127.0.0.1:1935/live".into(),
        stream: "bench".into(),
        chunk_size,
        ..ClientConfig::default()
    });
    let mut server = ServerSession::new(SessionConfig::default());
    let (mut client_events, mut server_events) = (Vec::<ClientEvent>::new(), Vec::new());
    let mut wire = Vec::new();
    for _ in 0..MAX_SETUP_ROUNDS {
        if client.is_publishing() {
            break;
        }
        let c2s: Vec<u8> = client.take_output().concat();
        wire.extend_from_slice(&c2s);
        server
            .handle_input(&c2s, &mut server_events)
            .expect("server accepts the client's setup");
        if server_events
            .drain(..)
            .any(|e| matches!(e, Event::PublishRequested { .. }))
        {
            server.accept_publish().expect("publish pending");
        }
        if let Some(s2c) = server.take_output() {
            client
                .handle_input(&s2c, &mut client_events)
                .expect("client accepts the server's replies");
        }
    }
    assert!(client.is_publishing(), "setup failed: {client_events:?}");
    let setup_len = wire.len();
    let mut pieces = Vec::<Bytes>::new();
    for f in frames {
        client.send_frame(f).expect("fixture frame fits RTMP");
        client.take_output_into(&mut pieces);
        for p in pieces.drain(..) {
            wire.extend_from_slice(&p);
        }
    }
    Stream { wire, setup_len }
}

/// Replays `wire` the way `ingest.rs` does; returns the media frames and their payload bytes.
fn ingest(stream: &Stream) -> (usize, usize) {
    let mut session = ServerSession::new(SessionConfig::default());
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    let mut events = Vec::new();
    let (mut frames, mut bytes) = (0, 0);
    let (setup, media) = stream.wire.split_at(stream.setup_len);
    for read in std::iter::once(setup).chain(media.chunks(READ_SIZE)) {
        buf.reserve(READ_SIZE);
        // Stands in for `read_buf`: the kernel copies the same bytes into the same buffer.
        buf.extend_from_slice(read);
        session
            .handle_input_buf(&mut buf, read.len(), &mut events)
            .expect("server accepts the recorded stream");
        for ev in events.drain(..) {
            match ev {
                Event::PublishRequested { .. } => session.accept_publish().expect("pending"),
                Event::Media(f) => {
                    frames += 1;
                    bytes += f.payload.len();
                }
                _ => {}
            }
        }
        while let Some(out) = session.take_output() {
            black_box(out);
        }
    }
    (frames, bytes)
}

fn bench_ingest(c: &mut Criterion) {
    let Some(frames) = load_frames() else {
        return;
    };
    let mut group = c.benchmark_group("rtmp_ingest");
    for chunk_size in [4096u32, 128] {
        let stream = publish_stream(&frames, chunk_size);
        // Not timed: the replay must deliver every frame, or the figure means nothing.
        let (n, _) = ingest(&stream);
        assert_eq!(n, frames.len(), "chunk size {chunk_size}: frames lost");
        group.throughput(Throughput::Bytes(stream.wire.len() as u64));
        group.bench_function(format!("server_session/chunk{chunk_size}/read64k"), |b| {
            b.iter(|| ingest(black_box(&stream)))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_ingest
}
criterion_main!(benches);
