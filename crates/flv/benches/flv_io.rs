//! FLV throughput on the fixture clip:
//! - `spool_writer`: `FlvFileWriter::start` + `push` for every frame, the recorder's FLV path,
//!   into a 256 KiB in-memory buffer drained like the server's spool buffer. MB/s of tag bodies in.
//! - `reader`: `FlvReader` parsing the whole file fed in 64 KiB reads. MB/s of file bytes.
//!
//! Run: `cargo bench -p livetape-flv --bench flv_io`

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use livetape_flv::{FlvFileWriter, FlvReader};
use livetape_media::{MediaFrame, MediaKind, VideoPacket};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

/// The server's spool write buffer (`record::spool::WRITE_BUFFER`).
const SPOOL_BUFFER: usize = 256 * 1024;
/// Bytes handed to the reader per call, like a file read loop.
const READ_SIZE: usize = 64 * 1024;

/// The 60 s fixture (generated with ffmpeg on first use, cached under `target/testkit`).
fn fixture() -> PathBuf {
    livetape_testkit::clip_60s()
}

/// The fixture split the way the recorder sees it: the headers `start` takes, then the frames.
struct Clip {
    file: Vec<u8>,
    metadata: Option<Bytes>,
    video_sh: Option<Bytes>,
    audio_sh: Option<Bytes>,
    frames: Vec<MediaFrame>,
    frame_bytes: u64,
    /// Tags in the file, headers included.
    tags: usize,
}

fn load() -> Option<Clip> {
    let path = fixture();
    let file = std::fs::read(&path).ok()?;
    let mut r = FlvReader::new();
    r.feed(&file);
    let mut clip = Clip {
        file: Vec::new(),
        metadata: None,
        video_sh: None,
        audio_sh: None,
        frames: Vec::new(),
        frame_bytes: 0,
        tags: 0,
    };
    while let Some(tag) = r.next_tag() {
        clip.tags += 1;
        let Some(f) = tag.ok()?.into_frame() else {
            continue;
        };
        let (is_header, slot) = match f.kind {
            MediaKind::Script => (true, &mut clip.metadata),
            MediaKind::Video => (
                matches!(f.video(), Some(Ok(v)) if v.packet == VideoPacket::SequenceHeader),
                &mut clip.video_sh,
            ),
            MediaKind::Audio => (
                matches!(f.audio(), Some(Ok(a)) if a.is_sequence_header()),
                &mut clip.audio_sh,
            ),
        };
        if is_header {
            slot.get_or_insert(f.payload);
        } else {
            clip.frame_bytes += f.payload.len() as u64;
            clip.frames.push(f);
        }
    }
    clip.file = file;
    Some(clip)
}

/// One recording of the clip; returns the spool length (checked against the writer's count).
fn write_spool(clip: &Clip, out: &mut Vec<u8>) -> u64 {
    let mut written = 0u64;
    let first_dts = clip.frames.first().map_or(0, |f| f.dts_ms);
    let mut w = FlvFileWriter::start(
        first_dts,
        clip.metadata.as_ref(),
        clip.video_sh.as_ref(),
        clip.audio_sh.as_ref(),
        livetape_flv::metadata_reserve(1800),
        out,
    )
    .expect("fixture headers fit");
    for f in &clip.frames {
        w.push(f, out).expect("fixture frame fits");
        if out.len() >= SPOOL_BUFFER {
            written += out.len() as u64;
            black_box(&out[..]);
            out.clear();
        }
    }
    written += out.len() as u64;
    out.clear();
    assert_eq!(written, w.spool_len());
    w.spool_len()
}

fn read_all(file: &[u8]) -> usize {
    let mut r = FlvReader::new();
    let mut tags = 0;
    for read in file.chunks(READ_SIZE) {
        r.feed(read);
        while let Some(tag) = r.next_tag() {
            black_box(tag.expect("fixture parses"));
            tags += 1;
        }
    }
    tags
}

fn bench_flv(c: &mut Criterion) {
    let Some(clip) = load() else {
        return;
    };
    let mut group = c.benchmark_group("flv");
    group.throughput(Throughput::Bytes(clip.frame_bytes));
    let mut out = Vec::with_capacity(2 * SPOOL_BUFFER);
    group.bench_function("spool_writer", |b| {
        b.iter(|| write_spool(black_box(&clip), &mut out))
    });

    // Not timed: the chunked reads must yield every tag.
    assert_eq!(read_all(&clip.file), clip.tags);
    group.throughput(Throughput::Bytes(clip.file.len() as u64));
    group.bench_function("reader/read64k", |b| {
        b.iter(|| read_all(black_box(&clip.file)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_flv
}
criterion_main!(benches);
