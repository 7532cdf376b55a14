//! MP4 recording throughput: `FragmentWriter` fed every frame of the fixture clip, driven as the
//! server's recorder drives it (flush before each keyframe / on `should_flush_before`, pieces
//! appended to a 256 KiB in-memory spool buffer). MB/s of media (FLV tag bodies) in.
//!
//! Run: `cargo bench -p livetape-mp4 --bench fragment`

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use livetape_flv::FlvReader;
use livetape_media::{MediaFrame, MediaKind, VideoCodec, VideoPacket, VideoTag};
use livetape_mp4::{AudioTrack, FragmentWriter, VideoTrack};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

/// The server's spool write buffer (`record::spool::WRITE_BUFFER`).
const SPOOL_BUFFER: usize = 256 * 1024;

/// The 60 s fixture (generated with ffmpeg on first use, cached under `target/testkit`).
fn fixture() -> PathBuf {
    livetape_testkit::clip_60s()
}

/// The fixture split the way the recorder sees it: the headers `start` takes, then the frames.
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

/// The tracks the recorder builds from the sequence headers (see `record/muxer.rs`).
fn tracks(clip: &Clip) -> (Option<VideoTrack>, Option<AudioTrack>) {
    let video = clip.video_sh.as_ref().and_then(|sh| {
        let tag = VideoTag::parse(sh).ok()?;
        let config = sh.slice(tag.header_len.min(sh.len())..);
        match tag.codec {
            VideoCodec::Avc => VideoTrack::avc(config).ok(),
            VideoCodec::Hevc => VideoTrack::hevc(config).ok(),
            _ => None,
        }
    });
    let audio = clip
        .audio_sh
        .as_ref()
        .and_then(|sh| AudioTrack::aac(sh.slice(2.min(sh.len())..)).ok());
    (video, audio)
}

/// Spool buffer stand-in: copies pieces in and drains when full, like `Spool::append_all`.
struct SpoolBuf {
    buf: Vec<u8>,
    written: u64,
}

impl SpoolBuf {
    fn append_all(&mut self, pieces: &[Bytes]) {
        for p in pieces {
            if self.buf.len() + p.len() > SPOOL_BUFFER && !self.buf.is_empty() {
                self.drain();
            }
            self.buf.extend_from_slice(p);
        }
    }

    fn drain(&mut self) {
        self.written += self.buf.len() as u64;
        black_box(&self.buf[..]);
        self.buf.clear();
    }
}

/// One recording of the clip; returns the spool length.
fn record(clip: &Clip, spool: &mut SpoolBuf, pieces: &mut Vec<Bytes>) -> u64 {
    let (video, audio) = tracks(clip);
    let first_dts = clip.frames.first().map_or(0, |f| f.dts_ms);
    let mut w = FragmentWriter::new(video, audio, first_dts).expect("fixture has tracks");
    spool.written = 0;
    spool.append_all(&[w.init_segment()]);
    for f in &clip.frames {
        if w.should_flush_before(f) {
            w.flush(pieces);
            spool.append_all(pieces);
            pieces.clear();
        }
        w.push(f).expect("fixture frame muxes");
    }
    w.flush(pieces);
    spool.append_all(pieces);
    pieces.clear();
    spool.drain();
    assert_eq!(spool.written, w.spool_len());
    spool.written
}

fn bench_mp4(c: &mut Criterion) {
    let Some(clip) = load() else {
        return;
    };
    let mut group = c.benchmark_group("mp4");
    group.throughput(Throughput::Bytes(clip.frame_bytes));
    let mut spool = SpoolBuf {
        buf: Vec::with_capacity(SPOOL_BUFFER),
        written: 0,
    };
    let mut pieces = Vec::with_capacity(64);
    group.bench_function("fragment_writer", |b| {
        b.iter(|| record(black_box(&clip), &mut spool, &mut pieces))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_mp4
}
criterion_main!(benches);
