//! Sans-IO MP4 for livetape recordings: remux only (H.264 or H.265, and AAC).
//!
//! # Design
//!
//! **While recording** the server appends a *fragmented MP4 spool* `X.mp4.part`:
//! [`FragmentWriter::init_segment`] (`ftyp` + `moov` with `mvex/trex` and empty sample tables) is
//! written first, then one `moof` + `mdat` per [`FragmentWriter::flush`]. The driver flushes before
//! every video keyframe and at least every [`FRAGMENT_TARGET_MS`] (see
//! [`FragmentWriter::should_flush_before`]), so a crash loses at most the unflushed fragment and
//! the spool is playable by ffprobe/ffmpeg as is.
//!
//! **At close, and in crash recovery (the same code path)** the final file is *faststart*:
//! `ftyp`, `moov` with full sample tables (`stts`/`ctts`/`stss`/`stsz`/`stsc`/`stco` or `co64`),
//! then a single `mdat`. [`SpoolScanner`] reads the spool's `moov` (track configs) and every
//! `moof` (`tfdt`/`trun`: sizes, durations, flags, composition offsets), never the media bytes:
//! it asks the driver for "N bytes at offset X" and skips `mdat` payloads. The resulting
//! [`FinalizePlan`] is a prefix (`ftyp` + `moov` + `mdat` header) plus the spool byte ranges to
//! append after it (the driver uses `copy_file_range`). A torn tail (a `moof` or `mdat` cut short,
//! or garbage) ends the scan cleanly: that fragment is ignored and
//! [`FinalizePlan::valid_spool_len`] reports how much of the spool was usable.
//!
//! **Timestamps.** Video uses timescale 90000 (`dts_ms * 90`), audio its sample rate, the movie
//! 1000. Timestamps are rebased so the first frame given to the file is at 0 (earlier frames clamp
//! to 0; per-track decode times never go backwards). A sample lasts until the next sample's decode
//! time; the last sample of the file repeats the previous duration. In the spool the last sample
//! of each fragment carries that estimate, and `tfdt` of the next fragment is exact; the scanner
//! recomputes every duration from decode times, so the final file is exact. Composition offsets
//! come from the FLV `cts_ms` (`trun` v1, signed; final `ctts` is v0 unless an offset is negative,
//! then v1). The final file gets an edit list per track so that presentation starts at 0 and
//! tracks stay in sync: an empty edit for a track that starts later than the earliest track, and
//! `media_time` = the first sample's composition offset (the B-frame delay).
//!
//! **Why hand-written boxes.** `mp4-atom` 0.17 was evaluated: it is well hardened, but its typed
//! `Avcc`/`Esds` re-encode codec configuration records instead of passing the bytes through, it
//! decodes whole boxes into owned structs, and it pulls `num` and `pastey`. Remuxing needs about
//! 25 box types, written with a small `BoxWriter` and read with a bounded reader. The
//! finaliser copies the spool's `stsd` verbatim, so the scanner is codec-agnostic: H.265 (`hvc1`)
//! only touched [`VideoCodecConfig`] and its sample entry. Frames of either codec arrive as FLV
//! tag bodies, legacy or Enhanced RTMP; the sample is the payload after the tag header
//! (`VideoTag::header_len`), length-prefixed NAL units as MP4 wants them.
//!
//! Memory: the scanner keeps 12 bytes per sample (size, duration, composition offset) plus sync
//! sample numbers and one chunk entry per fragment and track.

pub(crate) mod boxes;
mod fragment;
mod scan;
mod track;

pub use fragment::{FRAGMENT_TARGET_MS, FragmentWriter, MAX_FRAGMENT_BYTES};
pub use scan::{
    FinalizePlan, MAX_BOX_BYTES, MAX_SAMPLES_PER_TRACK, ScanStep, SpoolRange, SpoolScanner,
    plan_faststart,
};
pub use track::{AudioTrack, VideoCodecConfig, VideoTrack};

use livetape_media::MediaError;

/// Errors from writing fragments and finalising a spool.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Mp4Error {
    #[error("codec configuration: {0}")]
    Config(#[from] MediaError),
    #[error("frame: {0}")]
    Frame(MediaError),
    #[error("a recording needs at least one track")]
    NoTracks,
    #[error("{kind} frame does not match the track codec: {reason}")]
    CodecMismatch {
        kind: &'static str,
        reason: &'static str,
    },
    #[error("malformed {what} box: {reason}")]
    Malformed {
        what: &'static str,
        reason: &'static str,
    },
    #[error("spool has no complete init segment (ftyp + moov)")]
    NoInit,
    #[error("spool has no complete fragment")]
    Empty,
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge { what: &'static str, limit: u64 },
    #[error("scanner was fed {got} bytes at the wrong step (expected {expected})")]
    Protocol { got: usize, expected: usize },
}

#[cfg(test)]
pub(crate) mod test_support {
    use bytes::Bytes;
    use livetape_media::{MediaFrame, MediaKind};

    /// avcC of the 640x360 fixture clip (x264 High@3.0).
    pub(crate) const AVCC: &[u8] = &[
        0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x25, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40,
        0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c,
        0xe0, 0x60, 0x00, 0xf4, 0x24, 0x00, 0x1e, 0x84, 0xe6, 0xa3, 0x00, 0x78, 0xb1, 0x6c, 0xb0,
        0x01, 0x00, 0x04, 0x68, 0xef, 0xbc, 0xb0, 0xfd, 0xf8, 0xf8, 0x00,
    ];
    /// `hvcC` built from x265's VPS/SPS/PPS (640x360 Main@L2.1).
    pub(crate) fn hvcc() -> Bytes {
        const VPS: &[u8] = &[
            0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00,
            0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3f, 0x92, 0x80, 0x90,
        ];
        const SPS: &[u8] = &[
            0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
            0x00, 0x03, 0x00, 0x3f, 0xa0, 0x05, 0x02, 0x01, 0x69, 0x65, 0x92, 0xa4, 0x93, 0x2b,
            0xc0, 0x5a, 0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x10,
        ];
        const PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];
        Bytes::from(livetape_media::hevc::build_hvcc(VPS, SPS, PPS).unwrap())
    }

    /// An Enhanced RTMP `hvc1` frame: CodedFrames (with SI24 cts) or CodedFramesX.
    pub(crate) fn hevc_video(
        dts_ms: u64,
        key: bool,
        cts_ms: Option<i32>,
        len: usize,
    ) -> MediaFrame {
        let ft = if key { 0x10 } else { 0x20 };
        let mut b = vec![0x80 | ft | if cts_ms.is_some() { 1 } else { 3 }];
        b.extend_from_slice(b"hvc1");
        if let Some(c) = cts_ms {
            b.extend_from_slice(&c.to_be_bytes()[1..]);
        }
        let header = b.len();
        b.resize(header + len, 0xab);
        MediaFrame::new(MediaKind::Video, dts_ms, Bytes::from(b))
    }

    /// AAC-LC 48 kHz stereo.
    pub(crate) const ASC: &[u8] = &[0x11, 0x90];

    pub(crate) fn video(dts_ms: u64, key: bool, cts_ms: i32, len: usize) -> MediaFrame {
        let c = cts_ms.to_be_bytes();
        let mut b = vec![if key { 0x17 } else { 0x27 }, 1, c[1], c[2], c[3]];
        b.resize(5 + len, 0xab);
        MediaFrame::new(MediaKind::Video, dts_ms, Bytes::from(b))
    }

    pub(crate) fn audio(dts_ms: u64, len: usize) -> MediaFrame {
        let mut b = vec![0xaf, 1];
        b.resize(2 + len, 0xcd);
        MediaFrame::new(MediaKind::Audio, dts_ms, Bytes::from(b))
    }

    /// A small spool: 2 s of 30 fps video (keyframe every 1 s) and 48 kHz AAC.
    pub(crate) fn spool() -> Vec<u8> {
        use crate::{AudioTrack, FragmentWriter, VideoTrack};
        let v = VideoTrack::avc(Bytes::from_static(AVCC)).unwrap();
        let a = AudioTrack::aac(Bytes::from_static(ASC)).unwrap();
        let mut w = FragmentWriter::new(Some(v), Some(a), 0).unwrap();
        let mut frames = Vec::new();
        for i in 0..60u64 {
            frames.push(video(i * 100 / 3, i % 30 == 0, 33, 10 + i as usize));
        }
        for i in 0..94u64 {
            frames.push(audio(i * 64 / 3, 7));
        }
        frames.sort_by_key(|f| f.dts_ms);
        let mut spool = w.init_segment().to_vec();
        let mut out = Vec::new();
        for f in &frames {
            if w.should_flush_before(f) {
                w.flush(&mut out);
            }
            w.push(f).unwrap();
        }
        w.flush(&mut out);
        for b in out {
            spool.extend_from_slice(&b);
        }
        spool
    }
}
