//! HLS recording throughput: `HlsWriter` (Annex B conversion, PES/TS packetising, keyframe
//! segmenting with the default target duration) fed every frame of the fixture clip, with its
//! output drained after each call as the recorder does. MB/s of media (FLV tag bodies) in.
//!
//! Run: `cargo bench -p livetape-hls --bench segmenter`

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use livetape_flv::FlvReader;
use livetape_hls::{HlsConfig, HlsOutput, HlsWriter};
use livetape_media::{MediaFrame, MediaKind, VideoPacket};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

/// The 60 s fixture (generated with ffmpeg on first use, cached under `target/testkit`).
fn fixture() -> PathBuf {
    livetape_testkit::clip_60s()
}

/// The fixture split the way the recorder sees it: the sequence headers, then the frames.
struct Clip {
    metadata: Option<Bytes>,
    video_sh: Option<Bytes>,
    audio_sh: Option<Bytes>,
    frames: Vec<MediaFrame>,
    frame_bytes: u64,
}

fn load() -> Option<Clip> {
    let path = fixture();
    let file = std::fs::read(&path).ok()?;
    let mut r = FlvReader::new();
    r.feed(&file);
    let mut clip = Clip {
        metadata: None,
        video_sh: None,
        audio_sh: None,
        frames: Vec::new(),
        frame_bytes: 0,
    };
    while let Some(tag) = r.next_tag() {
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
    Some(clip)
}

/// One recording of the clip; returns (segments, TS bytes).
fn record(clip: &Clip, out: &mut HlsOutput) -> (usize, u64) {
    let mut w = HlsWriter::new(HlsConfig::default());
    let mut ts_bytes = 0u64;
    let mut drain = |w: &HlsWriter, out: &mut HlsOutput| {
        if out.closed.take().is_some() {
            // The recorder republishes the EVENT playlist at every cut.
            black_box(w.playlist(false));
        }
        out.opened = None;
        ts_bytes += out.data.len() as u64;
        black_box(&out.data[..]);
        out.data.clear();
    };
    let first_dts = clip.frames.first().map_or(0, |f| f.dts_ms);
    // As `Muxer::begin`: the writer learns the tracks from the sequence headers, as frames.
    for (kind, sh) in [
        (MediaKind::Video, &clip.video_sh),
        (MediaKind::Audio, &clip.audio_sh),
    ] {
        if let Some(sh) = sh {
            let f = MediaFrame::new(kind, first_dts, sh.clone());
            w.push(&f, out).expect("fixture sequence header");
            drain(&w, out);
        }
    }
    for f in &clip.frames {
        w.push(f, out).expect("fixture frame muxes");
        drain(&w, out);
    }
    w.finish(out);
    drain(&w, out);
    (w.segments().len(), ts_bytes)
}

fn bench_hls(c: &mut Criterion) {
    let Some(clip) = load() else {
        return;
    };
    let mut out = HlsOutput::default();
    // Not timed: a recording that cut no segment or wrote no TS would make the figure meaningless.
    let (segments, ts_bytes) = record(&clip, &mut out);
    assert!(
        segments > 0 && ts_bytes > clip.frame_bytes / 2,
        "{segments} segments, {ts_bytes} B"
    );
    let mut group = c.benchmark_group("hls");
    group.throughput(Throughput::Bytes(clip.frame_bytes));
    group.bench_function("ts_segmenter", |b| {
        b.iter(|| record(black_box(&clip), &mut out))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_hls
}
criterion_main!(benches);
