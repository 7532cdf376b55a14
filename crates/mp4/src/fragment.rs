//! The recording-time writer: fragmented MP4 spool (init segment, then `moof` + `mdat` pieces).

use crate::Mp4Error;
use crate::boxes::{BoxWriter, mdat_header};
use crate::track::{
    AudioTrack, FLAGS_NON_SYNC, FLAGS_SYNC, TrackInfo, TrackKind, VideoTrack, init_segment,
};
use bytes::Bytes;
use livetape_media::{
    AudioCodec, AudioPacket, AudioTag, MediaFrame, MediaKind, VideoCodec, VideoPacket, VideoTag,
};

/// Flush at least this often (ms of buffered media), bounding what a crash can lose.
pub const FRAGMENT_TARGET_MS: u64 = 1000;
/// Flush when this much payload is buffered, whatever the timing (bounds memory and keeps every
/// fragment's `mdat` far below 4 GiB).
pub const MAX_FRAGMENT_BYTES: u64 = 64 << 20;

/// Durations to assume for a fragment's last sample before any real one is known.
const DEFAULT_VIDEO_DURATION: u32 = 3000; // 1/30 s at 90 kHz
const DEFAULT_AUDIO_DURATION: u32 = 1024; // one AAC frame

const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
const TRUN_DATA_OFFSET: u32 = 0x001;
const TRUN_DURATION: u32 = 0x100;
const TRUN_SIZE: u32 = 0x200;
const TRUN_FLAGS: u32 = 0x400;
const TRUN_CTS: u32 = 0x800;

struct Pending {
    payload: Bytes,
    dts: u64,
    cts: i32,
    sync: bool,
}

struct WTrack {
    info: TrackInfo,
    pending: Vec<Pending>,
    last_dts: Option<u64>,
    /// The latest real duration, used as the estimate for a fragment's last sample.
    last_duration: u32,
}

impl WTrack {
    fn new(info: TrackInfo, default_duration: u32) -> Self {
        Self {
            info,
            pending: Vec::new(),
            last_dts: None,
            last_duration: default_duration,
        }
    }

    fn ms_to_ticks(&self, ms: u64) -> u64 {
        let t = u128::from(ms) * u128::from(self.info.timescale) / 1000;
        u64::try_from(t).unwrap_or(u64::MAX)
    }
}

/// Writes one recording's fragmented MP4 spool. Sans-IO: it returns bytes, the driver appends
/// them to `X.mp4.part`.
///
/// ```text
/// write(w.init_segment());
/// for frame in frames {
///     if w.should_flush_before(&frame) { w.flush(&mut out); write(out.drain(..)); }
///     w.push(&frame)?;
/// }
/// w.flush(&mut out); write(out.drain(..));
/// ```
pub struct FragmentWriter {
    tracks: Vec<WTrack>,
    video: Option<(usize, VideoCodec)>,
    audio: Option<usize>,
    base_dts_ms: u64,
    init: Bytes,
    sequence: u32,
    pending_bytes: u64,
    /// Rebased dts (ms) of the first buffered frame.
    pending_start_ms: Option<u64>,
    spool_len: u64,
    scratch: BoxWriter,
}

impl FragmentWriter {
    /// `base_dts_ms` is the dts of the first frame given to this file; it becomes time 0.
    pub fn new(
        video: Option<VideoTrack>,
        audio: Option<AudioTrack>,
        base_dts_ms: u64,
    ) -> Result<Self, Mp4Error> {
        let mut tracks = Vec::new();
        let mut video_idx = None;
        let mut audio_idx = None;
        if let Some(v) = &video {
            video_idx = Some((tracks.len(), v.media_codec()));
            let id = tracks.len() as u32 + 1;
            tracks.push(WTrack::new(TrackInfo::video(id, v), DEFAULT_VIDEO_DURATION));
        }
        if let Some(a) = &audio {
            audio_idx = Some(tracks.len());
            let id = tracks.len() as u32 + 1;
            tracks.push(WTrack::new(TrackInfo::audio(id, a), DEFAULT_AUDIO_DURATION));
        }
        if tracks.is_empty() {
            return Err(Mp4Error::NoTracks);
        }
        let infos: Vec<TrackInfo> = tracks.iter().map(|t| t.info.clone()).collect();
        let init = Bytes::from(init_segment(&infos));
        Ok(Self {
            tracks,
            video: video_idx,
            audio: audio_idx,
            base_dts_ms,
            spool_len: init.len() as u64,
            init,
            sequence: 0,
            pending_bytes: 0,
            pending_start_ms: None,
            scratch: BoxWriter::with_capacity(4096),
        })
    }

    /// `ftyp` + `moov`: the first bytes of the spool.
    pub fn init_segment(&self) -> Bytes {
        self.init.clone()
    }

    /// Buffers a coded frame (zero-copy). Returns `Ok(false)` for frames that carry no sample
    /// (sequence headers, script data, end-of-sequence, or a kind without a track).
    pub fn push(&mut self, frame: &MediaFrame) -> Result<bool, Mp4Error> {
        let (idx, payload, cts_ms, sync) = match frame.kind {
            MediaKind::Video => {
                let Some((idx, codec)) = self.video else {
                    return Ok(false);
                };
                let tag = VideoTag::parse(&frame.payload).map_err(Mp4Error::Frame)?;
                // Only the default E-RTMP track is recorded.
                if tag.packet != VideoPacket::Frame || tag.track != 0 {
                    return Ok(false);
                }
                if tag.codec != codec {
                    return Err(Mp4Error::CodecMismatch {
                        kind: "video",
                        reason: "codec differs from the track's",
                    });
                }
                let payload = frame.payload.slice(tag.header_len..tag.data_end);
                (idx, payload, tag.cts_ms, tag.keyframe)
            }
            MediaKind::Audio => {
                let Some(idx) = self.audio else {
                    return Ok(false);
                };
                let tag = AudioTag::parse(&frame.payload).map_err(Mp4Error::Frame)?;
                // Configuration, E-RTMP multichannel layout, extra tracks: no sample.
                if tag.packet != AudioPacket::Frame || tag.track != 0 {
                    return Ok(false);
                }
                if tag.codec != AudioCodec::Aac {
                    return Err(Mp4Error::CodecMismatch {
                        kind: "audio",
                        reason: "only AAC is recorded to MP4",
                    });
                }
                (
                    idx,
                    frame.payload.slice(tag.header_len..tag.data_end),
                    0,
                    true,
                )
            }
            MediaKind::Script => return Ok(false),
        };
        let rel_ms = frame.dts_ms.saturating_sub(self.base_dts_ms);
        let Some(t) = self.tracks.get_mut(idx) else {
            return Ok(false);
        };
        let mut dts = t.ms_to_ticks(rel_ms);
        if let Some(last) = t.last_dts {
            // Decode time never goes backwards within a track.
            dts = dts.max(last);
        }
        t.last_dts = Some(dts);
        // Video: cts_ms is an SI24, so * 90 fits an i32.
        let cts = cts_ms.saturating_mul((t.info.timescale / 1000) as i32);
        self.pending_bytes += payload.len() as u64;
        self.pending_start_ms.get_or_insert(rel_ms);
        t.pending.push(Pending {
            payload,
            dts,
            cts,
            sync,
        });
        Ok(true)
    }

    /// Whether to [`flush`](Self::flush) before pushing `next`: at every video keyframe (so each
    /// fragment starts with one), after [`FRAGMENT_TARGET_MS`] of buffered media, or after
    /// [`MAX_FRAGMENT_BYTES`].
    pub fn should_flush_before(&self, next: &MediaFrame) -> bool {
        let Some(start) = self.pending_start_ms else {
            return false;
        };
        if self.video.is_some() && next.is_video_keyframe() {
            return true;
        }
        let rel_ms = next.dts_ms.saturating_sub(self.base_dts_ms);
        rel_ms.saturating_sub(start) >= FRAGMENT_TARGET_MS
            || self.pending_bytes >= MAX_FRAGMENT_BYTES
    }

    /// True if frames are buffered.
    pub fn has_pending(&self) -> bool {
        self.pending_start_ms.is_some()
    }

    /// Emits the buffered samples as `moof` + `mdat`: one `Bytes` with the boxes and the `mdat`
    /// header, then the payloads themselves (zero-copy). Appends nothing if nothing is buffered.
    pub fn flush(&mut self, out: &mut Vec<Bytes>) {
        if self.pending_start_ms.take().is_none() {
            return;
        }
        self.sequence = self.sequence.wrapping_add(1);
        let payload_len = self.pending_bytes;
        self.pending_bytes = 0;
        let mdat = mdat_header(payload_len);

        let w = &mut self.scratch;
        w.buf.clear();
        // (position of the trun data_offset field, offset of the run within the mdat payload)
        let mut patches: [(usize, u64); 2] = [(0, 0); 2];
        let mut n_patches = 0;
        let mut run_start = 0u64;
        let sequence = self.sequence;
        let tracks = &mut self.tracks;
        w.boxed(b"moof", |w| {
            w.full(b"mfhd", 0, 0, |w| w.u32(sequence));
            for t in tracks.iter_mut() {
                if t.pending.is_empty() {
                    continue;
                }
                let video = t.info.kind == TrackKind::Video;
                w.boxed(b"traf", |w| {
                    w.full(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, |w| {
                        w.u32(t.info.track_id)
                    });
                    w.full(b"tfdt", 1, 0, |w| {
                        w.u64(t.pending.first().map_or(0, |p| p.dts))
                    });
                    let flags = if video {
                        TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS | TRUN_CTS
                    } else {
                        TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE
                    };
                    w.full(b"trun", 1, flags, |w| {
                        w.u32(t.pending.len() as u32);
                        if let Some(p) = patches.get_mut(n_patches) {
                            *p = (w.len(), run_start);
                            n_patches += 1;
                        }
                        w.i32(0);
                        let mut it = t.pending.iter().peekable();
                        while let Some(p) = it.next() {
                            let duration = match it.peek() {
                                Some(next) => {
                                    let d = u32::try_from(next.dts.saturating_sub(p.dts))
                                        .unwrap_or(u32::MAX);
                                    t.last_duration = d;
                                    d
                                }
                                None => t.last_duration,
                            };
                            w.u32(duration);
                            w.u32(p.payload.len() as u32);
                            run_start += p.payload.len() as u64;
                            if video {
                                w.u32(if p.sync { FLAGS_SYNC } else { FLAGS_NON_SYNC });
                                w.i32(p.cts);
                            }
                        }
                    });
                });
            }
        });
        let data_base = (w.len() + mdat.len()) as u64;
        for &(pos, off) in patches.iter().take(n_patches) {
            let v = i32::try_from(data_base + off).unwrap_or(i32::MAX);
            w.buf[pos..pos + 4].copy_from_slice(&v.to_be_bytes());
        }
        w.bytes(&mdat);
        self.spool_len += w.len() as u64 + payload_len;
        out.push(Bytes::copy_from_slice(&w.buf));
        for t in &mut self.tracks {
            out.extend(t.pending.drain(..).map(|p| p.payload));
        }
    }

    /// Media duration written or buffered so far, in ms.
    pub fn duration_ms(&self) -> u64 {
        self.tracks
            .iter()
            .filter_map(|t| {
                let end = t.last_dts? + u64::from(t.last_duration);
                Some(end * 1000 / u64::from(t.info.timescale.max(1)))
            })
            .max()
            .unwrap_or(0)
    }

    /// Bytes of spool produced so far (init segment plus flushed fragments).
    pub fn spool_len(&self) -> u64 {
        self.spool_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ASC, AVCC, audio, hevc_video, hvcc, video};

    fn writer(base: u64) -> FragmentWriter {
        let v = VideoTrack::avc(Bytes::from_static(AVCC)).unwrap();
        let a = AudioTrack::aac(Bytes::from_static(ASC)).unwrap();
        FragmentWriter::new(Some(v), Some(a), base).unwrap()
    }

    #[test]
    fn needs_a_track() {
        assert!(matches!(
            FragmentWriter::new(None, None, 0),
            Err(Mp4Error::NoTracks)
        ));
    }

    #[test]
    fn non_sample_frames_are_skipped_and_wrong_codecs_rejected() {
        let mut w = writer(0);
        let seq = MediaFrame::new(
            MediaKind::Video,
            0,
            Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]),
        );
        let aac_seq = MediaFrame::new(
            MediaKind::Audio,
            0,
            Bytes::from_static(&[0xaf, 0, 0x11, 0x90]),
        );
        let script = MediaFrame::new(MediaKind::Script, 0, Bytes::from_static(b"x"));
        for f in [&seq, &aac_seq, &script] {
            assert_eq!(w.push(f), Ok(false));
        }
        assert!(!w.has_pending());
        let hevc = MediaFrame::new(
            MediaKind::Video,
            0,
            Bytes::from_static(&[0x1c, 1, 0, 0, 0, 9]),
        );
        assert!(matches!(w.push(&hevc), Err(Mp4Error::CodecMismatch { .. })));
        let mp3 = MediaFrame::new(MediaKind::Audio, 0, Bytes::from_static(&[0x2f, 1]));
        assert!(matches!(w.push(&mp3), Err(Mp4Error::CodecMismatch { .. })));
        assert!(matches!(
            w.push(&MediaFrame::new(MediaKind::Video, 0, Bytes::new())),
            Err(Mp4Error::Frame(_))
        ));
        // Audio frames without an audio track are ignored, not errors.
        let v = VideoTrack::avc(Bytes::from_static(AVCC)).unwrap();
        let mut vo = FragmentWriter::new(Some(v), None, 0).unwrap();
        assert_eq!(vo.push(&audio(0, 4)), Ok(false));
    }

    #[test]
    fn flush_points() {
        let mut w = writer(1000);
        assert!(!w.should_flush_before(&video(1000, true, 0, 1)));
        assert_eq!(w.push(&video(1000, true, 0, 1)), Ok(true));
        assert!(!w.should_flush_before(&video(1033, false, 0, 1)));
        assert!(w.should_flush_before(&video(1500, true, 0, 1)));
        assert!(!w.should_flush_before(&audio(1999, 1)));
        assert!(w.should_flush_before(&audio(2000, 1)));
        let mut out = Vec::new();
        w.flush(&mut out);
        assert_eq!(out.len(), 2); // boxes + one payload
        assert_eq!(out[1].as_ref(), &[0xab]);
        assert!(!w.has_pending());
        out.clear();
        w.flush(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn payloads_are_zero_copy_and_timestamps_rebased() {
        let mut w = writer(5000);
        let f = video(4990, true, 0, 8); // before the base: clamps to 0
        w.push(&f).unwrap();
        w.push(&video(5040, false, 0, 8)).unwrap();
        w.push(&video(5020, false, 0, 8)).unwrap(); // goes backwards: clamps to 40 ms
        let mut out = Vec::new();
        w.flush(&mut out);
        assert_eq!(out[1].as_ptr(), f.payload[5..].as_ptr());
        let moof = &out[0];
        let tfdt = moof.windows(4).position(|b| b == b"tfdt").unwrap();
        assert_eq!(&moof[tfdt + 8..tfdt + 16], &0u64.to_be_bytes());
        // trun v1: header, count, data_offset, then (dur, size, flags, cts) per sample.
        let trun = moof.windows(4).position(|b| b == b"trun").unwrap() + 4;
        let sample = |i: usize, field: usize| {
            let at = trun + 12 + i * 16 + field * 4;
            u32::from_be_bytes(moof[at..at + 4].try_into().unwrap())
        };
        assert_eq!((sample(0, 0), sample(1, 0), sample(2, 0)), (3600, 0, 0));
        assert_eq!((sample(0, 2), sample(1, 2)), (FLAGS_SYNC, FLAGS_NON_SYNC));
        // data_offset points just past the mdat header.
        let off = u32::from_be_bytes(moof[trun + 8..trun + 12].try_into().unwrap()) as usize;
        assert_eq!(off, moof.len());
        assert_eq!(&moof[moof.len() - 4..], b"mdat");
        assert_eq!(w.duration_ms(), 40);
    }

    #[test]
    fn hevc_enhanced_rtmp_frames() {
        let v = VideoTrack::hevc(hvcc()).unwrap();
        assert_eq!((v.width, v.height), (640, 360));
        let mut w = FragmentWriter::new(Some(v), None, 0).unwrap();
        let init = w.init_segment();
        let at = init.windows(4).position(|b| b == b"hvc1").unwrap();
        assert_eq!(&init[at + 4 + 78 + 4..at + 4 + 78 + 8], b"hvcC");
        // SequenceStart carries no sample; AVC frames do not fit an HEVC track.
        let mut seq = vec![0x90];
        seq.extend_from_slice(b"hvc1");
        seq.extend_from_slice(&hvcc());
        let seq = MediaFrame::new(MediaKind::Video, 0, Bytes::from(seq));
        assert_eq!(w.push(&seq), Ok(false));
        assert!(matches!(
            w.push(&video(0, true, 0, 4)),
            Err(Mp4Error::CodecMismatch { .. })
        ));
        let key = hevc_video(0, true, None, 6);
        let inter = hevc_video(40, false, Some(-40), 7);
        assert!(!w.should_flush_before(&hevc_video(80, true, None, 1)));
        assert_eq!(w.push(&key), Ok(true));
        assert_eq!(w.push(&inter), Ok(true));
        assert!(w.should_flush_before(&hevc_video(80, true, None, 1)));
        let mut out = Vec::new();
        w.flush(&mut out);
        // Payloads start after the 5- and 8-byte E-RTMP headers, zero-copy.
        assert_eq!(out[1].as_ptr(), key.payload[5..].as_ptr());
        assert_eq!((out[1].len(), out[2].len()), (6, 7));
        assert_eq!(out[2].as_ptr(), inter.payload[8..].as_ptr());
        let moof = &out[0];
        let trun = moof.windows(4).position(|b| b == b"trun").unwrap() + 4;
        let sample = |i: usize, field: usize| {
            let at = trun + 12 + i * 16 + field * 4;
            u32::from_be_bytes(moof[at..at + 4].try_into().unwrap())
        };
        assert_eq!((sample(0, 2), sample(1, 2)), (FLAGS_SYNC, FLAGS_NON_SYNC));
        assert_eq!(sample(1, 3) as i32, -3600);
    }
}
