//! Sans-IO HLS recording: frames in, MPEG-TS segment bytes and segment events out.
//!
//! * An in-house MPEG-TS muxer (the `mpeg2ts` crate only reads/writes single packets): PAT+PMT
//!   at the start of every segment, H.264 (stream type 0x1b) or HEVC (0x24) on PID 0x100,
//!   AAC/ADTS on PID 0x101, PCR on the video PID (audio PID when audio-only).
//! * A keyframe segmenter: a segment is cut at the first video keyframe at or past the target
//!   duration (any audio frame when audio-only), and every segment starts with PAT, PMT and —
//!   when there is video — a keyframe PES carrying a PCR and the parameter sets.
//! * A playlist writer ([`HlsWriter::playlist`], [`rebuild_playlist`]) and a timestamp probe
//!   ([`probe_segment`]) so crash recovery can rebuild a playlist from the files alone.
//!
//! Timeline: output timestamps start at 0 ms for the first frame and stay monotonic across
//! [`HlsWriter::mark_discontinuity`] (a resumed publisher's timestamps are rebased to continue
//! where the previous segment ended), then [`TIMESTAMP_OFFSET_MS`] is added for the TS so that
//! the PCR, which leads DTS, never goes negative.
//!
//! Sequence headers are fed as ordinary frames (the hub replays the cached ones first). The
//! set of elementary streams is fixed when a segment opens: send both sequence headers before
//! the first coded frame. A track or codec that appears later triggers a new segment (with
//! `EXT-X-DISCONTINUITY`) at the next opportunity. Only AVC/HEVC video and AAC audio are
//! recorded; frames of other codecs are skipped.

mod es;
mod playlist;
mod ts;

pub use playlist::{parse_segment_uri, rebuild_playlist, segment_uri};
pub use ts::{SegmentProbe, probe_segment, whole_frames_len};

use bytes::{Bytes, BytesMut};
use es::{AdtsConfig, VideoConfig};
use livetape_media::{
    AudioCodec, AudioPacket, MediaError, MediaFrame, MediaKind, VideoCodec, VideoPacket,
};
use std::collections::VecDeque;
use ts::{PesStart, TsMuxer};

/// Added to every output timestamp before it is written as a 90 kHz PTS/DTS.
pub const TIMESTAMP_OFFSET_MS: u64 = 1_000;
/// How far the PCR runs behind the DTS of the PES it precedes (decoder buffering time).
const PCR_LEAD_MS: u64 = 500;
/// Video PES carry a DTS this much earlier than the frame's decode time on the output
/// timeline (its PTS is unchanged): MPEG-TS needs PTS >= DTS, and publishers that send
/// negative composition offsets (B-frames ahead of their decode time, cts < 0) need that
/// room. Covers reorder depths up to 3 frames at 30 fps; the PCR still precedes every DTS.
pub const VIDEO_DECODE_LEAD_MS: u64 = 100;
const _: () = assert!(VIDEO_DECODE_LEAD_MS < PCR_LEAD_MS);
/// ISO 13818-1 requires a PCR at least every 100 ms.
const MAX_PCR_INTERVAL_MS: u64 = 100;
/// Audio held while waiting for the first video keyframe (~5 s of 48 kHz AAC); past this the
/// writer stops waiting and opens an audio-only segment.
const MAX_PENDING_AUDIO: usize = 256;
/// Frame duration assumed for a lone video frame (30 fps).
const DEFAULT_VIDEO_FRAME_MS: u64 = 33;
/// Coded frames above this are rejected rather than buffered.
const MAX_FRAME_BYTES: usize = 32 << 20;
/// Segments shorter than this make no sense for recording and would flood the playlist.
const MIN_TARGET_DURATION_MS: u64 = 1_000;

/// Errors from [`HlsWriter::push`]. The offending frame is skipped; the writer stays usable.
#[derive(Debug, thiserror::Error)]
pub enum HlsError {
    #[error("hls: bad tag header: {0}")]
    Media(#[from] MediaError),
    #[error("hls: {what}: {reason}")]
    Malformed {
        what: &'static str,
        reason: &'static str,
    },
    #[error("hls: unsupported codec {0}")]
    UnsupportedCodec(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HlsConfig {
    /// A segment is cut at the first keyframe at or past this duration (clamped to ≥ 1 s).
    pub target_duration_ms: u64,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            target_duration_ms: 6_000,
        }
    }
}

/// A closed segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    pub index: u64,
    /// Relative to the playlist, see [`segment_uri`].
    pub uri: String,
    /// Next segment's first DTS − this one's; for a last segment (or one closed by a
    /// discontinuity) the end is estimated as last DTS + one frame duration.
    pub duration_ms: u64,
    pub bytes: u64,
    /// Preceded by `EXT-X-DISCONTINUITY` (first segment after a resume or format change).
    pub discontinuity: bool,
    /// On the writer's output timeline (starts at 0, excludes [`TIMESTAMP_OFFSET_MS`]).
    pub first_dts_ms: u64,
}

/// A segment that was opened; its bytes follow in [`HlsOutput::data`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentStart {
    pub index: u64,
    pub uri: String,
}

/// What one call produced. Process in field order — finish `closed`, open `opened`, append
/// `data` to the open segment — then clear `data` (e.g. `data.split().freeze()` to hand the
/// bytes off) before the next call: a segment's bytes never straddle a close. `closed` and
/// `opened` are reset by every call.
#[derive(Debug, Default)]
pub struct HlsOutput {
    pub closed: Option<SegmentInfo>,
    pub opened: Option<SegmentStart>,
    pub data: BytesMut,
}

#[derive(Debug)]
struct OpenSegment {
    index: u64,
    first_dts_ms: u64,
    bytes: u64,
    discontinuity: bool,
    video: bool,
    audio: bool,
    /// No PES written yet (the first one carries the discontinuity indicator).
    fresh: bool,
}

/// Maps one publish session's input DTS onto the continuous output timeline.
#[derive(Clone, Copy, Debug)]
struct Epoch {
    base_in: u64,
    base_out: u64,
}

/// Per-track output DTS, kept strictly increasing.
#[derive(Clone, Copy, Debug, Default)]
struct Clock {
    last: Option<u64>,
    step: u64,
    /// The next step spans a resume gap, not a frame: don't learn a duration from it.
    gap: bool,
}

impl Clock {
    fn advance(&mut self, dts: u64) -> u64 {
        let dts = match self.last {
            Some(l) if dts <= l => l.saturating_add(1),
            _ => dts,
        };
        if let Some(l) = self.last.filter(|_| !std::mem::take(&mut self.gap)) {
            self.step = dts - l;
        }
        self.last = Some(dts);
        dts
    }
}

/// Converts output-timeline ms to a 90 kHz TS timestamp (masked to 33 bits when written).
fn ts90(ms: u64) -> u64 {
    ms.wrapping_add(TIMESTAMP_OFFSET_MS).wrapping_mul(90)
}

/// The HLS recorder for one stream. See the crate docs.
#[derive(Debug)]
pub struct HlsWriter {
    target_ms: u64,
    video: Option<VideoConfig>,
    audio: Option<AdtsConfig>,
    mux: TsMuxer,
    segments: Vec<SegmentInfo>,
    open: Option<OpenSegment>,
    /// The next segment follows a resume: `EXT-X-DISCONTINUITY`.
    resumed: bool,
    /// A sequence header changed the elementary streams: cut at the next opportunity.
    format_changed: bool,
    /// Stream types of the last opened segment's PMT; a change means a discontinuity.
    last_streams: Option<(Option<u8>, bool)>,
    /// The video configuration record in use; a different one (new SPS: resolution,
    /// profile) starts a segment with `EXT-X-DISCONTINUITY` at the next keyframe.
    video_record: Vec<u8>,
    /// The next segment follows a change of coding parameters.
    params_changed: bool,
    epoch: Option<Epoch>,
    next_base_out: u64,
    vclock: Clock,
    aclock: Clock,
    last_pcr_ms: Option<u64>,
    pending_audio: VecDeque<(u64, Bytes)>,
    /// Reused Annex B conversion buffer: no per-frame allocation once warmed up.
    es: Vec<u8>,
    next_index: u64,
}

impl HlsWriter {
    pub fn new(config: HlsConfig) -> Self {
        Self {
            target_ms: config.target_duration_ms.max(MIN_TARGET_DURATION_MS),
            video: None,
            audio: None,
            mux: TsMuxer::new(),
            segments: Vec::new(),
            open: None,
            resumed: false,
            format_changed: false,
            last_streams: None,
            video_record: Vec::new(),
            params_changed: false,
            epoch: None,
            next_base_out: 0,
            vclock: Clock::default(),
            aclock: Clock::default(),
            last_pcr_ms: None,
            pending_audio: VecDeque::new(),
            es: Vec::new(),
            next_index: 0,
        }
    }

    /// Closed segments, in order.
    pub fn segments(&self) -> &[SegmentInfo] {
        &self.segments
    }

    /// Forgets the records of all closed segments but the last `keep` (at least one is kept, so
    /// discontinuity marking still knows segments came before). For a live sliding window,
    /// whose playlist is rendered by the caller: keeps a long-watched stream's memory flat.
    pub fn forget_segments(&mut self, keep: usize) {
        let drop = self.segments.len().saturating_sub(keep.max(1));
        self.segments.drain(..drop);
    }

    /// The playlist of the closed segments (`EVENT` while recording, `VOD` + `ENDLIST` when
    /// `ended`).
    pub fn playlist(&self, ended: bool) -> String {
        playlist::render(&self.segments, ended, self.target_ms)
    }

    /// Feeds one frame (sequence headers included; script data is ignored).
    pub fn push(&mut self, frame: &MediaFrame, out: &mut HlsOutput) -> Result<(), HlsError> {
        out.closed = None;
        out.opened = None;
        match frame.kind {
            MediaKind::Video => self.push_video(frame, out),
            MediaKind::Audio => self.push_audio(frame, out),
            MediaKind::Script => Ok(()),
        }
    }

    /// The publisher went away and may resume: closes the open segment now; the next segment
    /// gets `EXT-X-DISCONTINUITY` and the next frames' timestamps may restart or jump (they
    /// are rebased to continue the output timeline). New sequence headers may follow.
    pub fn mark_discontinuity(&mut self, out: &mut HlsOutput) {
        out.closed = None;
        out.opened = None;
        let end = self.segment_end();
        self.close_segment(end, out);
        if self.epoch.take().is_some() {
            // Continue after both tracks so neither goes backwards.
            let both = self.video_end().max(self.audio_end()).unwrap_or(0);
            self.next_base_out = self.next_base_out.max(both);
        }
        self.pending_audio.clear();
        self.vclock.gap = true;
        self.resumed = true;
    }

    /// Closes the last segment (the recording ended).
    pub fn finish(&mut self, out: &mut HlsOutput) {
        out.closed = None;
        out.opened = None;
        let end = self.segment_end();
        self.close_segment(end, out);
        self.pending_audio.clear();
    }

    fn map_dts(&mut self, dts_in: u64) -> u64 {
        let base_out = self.next_base_out;
        let e = self.epoch.get_or_insert(Epoch {
            base_in: dts_in,
            base_out,
        });
        // Frames slightly older than the session's first frame are clamped to its start.
        e.base_out.saturating_add(dts_in.saturating_sub(e.base_in))
    }

    fn video_end(&self) -> Option<u64> {
        let step = match self.vclock.step {
            0 => DEFAULT_VIDEO_FRAME_MS,
            s => s,
        };
        self.vclock.last.map(|l| l.saturating_add(step))
    }

    fn audio_end(&self) -> Option<u64> {
        let step = self.audio.map_or(0, |c| c.frame_ms());
        self.aclock.last.map(|l| l.saturating_add(step))
    }

    /// Where the open segment's media ends (last DTS + one frame), measured on the track that
    /// cuts segments — video when the segment has it — so durations of closed and last
    /// segments are measured alike.
    fn segment_end(&self) -> u64 {
        let video = self.open.as_ref().is_some_and(|s| s.video);
        let end = if video {
            self.video_end()
        } else {
            self.audio_end()
        };
        end.unwrap_or(0)
    }

    fn close_segment(&mut self, end_ms: u64, out: &mut HlsOutput) {
        let Some(seg) = self.open.take() else { return };
        let info = SegmentInfo {
            index: seg.index,
            uri: segment_uri(seg.index),
            duration_ms: end_ms.saturating_sub(seg.first_dts_ms),
            bytes: seg.bytes,
            discontinuity: seg.discontinuity,
            first_dts_ms: seg.first_dts_ms,
        };
        self.segments.push(info.clone());
        out.closed = Some(info);
    }

    fn open_segment(&mut self, first_dts_ms: u64, with_video: bool, out: &mut HlsOutput) {
        let index = self.next_index;
        self.next_index += 1;
        let video_type = self
            .video
            .as_ref()
            .filter(|_| with_video)
            .map(|v| v.kind.stream_type());
        let audio = self.audio.is_some();
        self.mux.set_streams(video_type, audio);
        let changed = self
            .last_streams
            .replace((video_type, audio))
            .is_some_and(|s| s != (video_type, audio));
        let discontinuity = (std::mem::take(&mut self.resumed)
            || std::mem::take(&mut self.params_changed)
            || changed)
            && !self.segments.is_empty();
        self.format_changed = false;
        let before = out.data.len();
        self.mux.write_psi(&mut out.data);
        self.open = Some(OpenSegment {
            index,
            first_dts_ms,
            bytes: (out.data.len() - before) as u64,
            discontinuity,
            video: video_type.is_some(),
            audio,
            fresh: true,
        });
        out.opened = Some(SegmentStart {
            index,
            uri: segment_uri(index),
        });
    }

    /// Writes one PES into the open segment, with PCR handling.
    fn write_pes(
        &mut self,
        out: &mut HlsOutput,
        video: bool,
        pts_ms: u64,
        dts_ms: u64,
        keyframe: bool,
        es: &[&[u8]],
    ) {
        let Some(seg) = self.open.as_mut() else {
            return;
        };
        let before = out.data.len();
        let pcr_pid = self.mux.pcr_pid();
        let pid = if video { ts::PID_VIDEO } else { ts::PID_AUDIO };
        let pcr_ms = dts_ms
            .saturating_add(TIMESTAMP_OFFSET_MS - PCR_LEAD_MS)
            .max(self.last_pcr_ms.unwrap_or(0));
        // Video always carries the PCR. For audio, refresh now if waiting for the next audio
        // PES (one frame away, plus 1 ms of rounding) could overrun the interval.
        let next_step_ms = self.audio.map_or(0, |c| c.frame_ms());
        let pcr_due = self
            .last_pcr_ms
            .is_none_or(|l| pcr_ms.saturating_sub(l) + next_step_ms + 1 >= MAX_PCR_INTERVAL_MS);
        let mut pcr = None;
        if pid == pcr_pid {
            // Every PES start on the PCR PID carries one: cheap, and keyframes always have it.
            pcr = Some(pcr_ms.wrapping_mul(90));
            self.last_pcr_ms = Some(pcr_ms);
        } else if pcr_due {
            self.mux
                .write_pcr_only(&mut out.data, pcr_pid, pcr_ms.wrapping_mul(90));
            self.last_pcr_ms = Some(pcr_ms);
        }
        let start = PesStart {
            pid,
            stream_id: if video {
                ts::STREAM_ID_VIDEO
            } else {
                ts::STREAM_ID_AUDIO
            },
            pts: ts90(pts_ms),
            dts: if video {
                ts90(dts_ms).wrapping_sub(VIDEO_DECODE_LEAD_MS * 90)
            } else {
                ts90(dts_ms)
            },
            pcr,
            random_access: keyframe,
            discontinuity: seg.fresh && seg.discontinuity,
        };
        seg.fresh = false;
        self.mux.write_pes(&mut out.data, start, es);
        seg.bytes += (out.data.len() - before) as u64;
    }

    fn push_video(&mut self, frame: &MediaFrame, out: &mut HlsOutput) -> Result<(), HlsError> {
        let Some(tag) = frame.video() else {
            return Ok(());
        };
        let tag = tag?;
        if tag.track != 0 {
            // Extra E-RTMP tracks: only the default one is recorded.
            return Ok(());
        }
        let body = tag.data(&frame.payload);
        match tag.packet {
            VideoPacket::SequenceHeader => {
                let cfg = match tag.codec {
                    VideoCodec::Avc => VideoConfig::from_avcc(body)?,
                    VideoCodec::Hevc => VideoConfig::from_hvcc(body)?,
                    other => return Err(HlsError::UnsupportedCodec(other.name())),
                };
                if self.video.as_ref().map(|v| v.kind) != Some(cfg.kind) {
                    self.format_changed = true;
                } else if self.video_record != body {
                    self.format_changed = true;
                    self.params_changed = true;
                }
                self.video_record.clear();
                self.video_record.extend_from_slice(body);
                self.video = Some(cfg);
                return Ok(());
            }
            VideoPacket::Frame => {}
            VideoPacket::EndOfSequence | VideoPacket::Other => return Ok(()),
        }
        let Some(cfg) = self.video.as_ref() else {
            return Ok(());
        };
        let matches = matches!(
            (tag.codec, cfg.kind),
            (VideoCodec::Avc, es::VideoKind::H264) | (VideoCodec::Hevc, es::VideoKind::Hevc)
        );
        if !matches || body.is_empty() {
            return Ok(());
        }
        if body.len() > MAX_FRAME_BYTES {
            return Err(HlsError::Malformed {
                what: "video frame",
                reason: "too large",
            });
        }
        cfg.to_annex_b(body, &mut self.es)?;
        let keyframe = tag.keyframe;
        let dts = self.map_dts(frame.dts_ms);
        match &self.open {
            None if !keyframe => return Ok(()),
            None => self.open_segment(dts, true, out),
            Some(seg) => {
                let due = dts.saturating_sub(seg.first_dts_ms) >= self.target_ms;
                if keyframe && (due || !seg.video || self.format_changed) {
                    self.close_segment(dts, out);
                    self.open_segment(dts, true, out);
                } else if !seg.video {
                    return Ok(());
                }
            }
        }
        let dts = self.vclock.advance(dts);
        // Negative composition offsets (B-frames with pts < dts) stay exact: the written DTS
        // leads by VIDEO_DECODE_LEAD_MS (see write_pes), so pts >= DTS holds down to that.
        let pts = dts
            .saturating_add_signed(i64::from(tag.cts_ms))
            .max(dts.saturating_sub(VIDEO_DECODE_LEAD_MS));
        let es = std::mem::take(&mut self.es);
        self.write_pes(out, true, pts, dts, keyframe, &[&es]);
        self.es = es;
        if out.opened.is_some() {
            self.flush_pending_audio(out);
        }
        Ok(())
    }

    fn flush_pending_audio(&mut self, out: &mut HlsOutput) {
        let Some(cfg) = self.audio else {
            self.pending_audio.clear();
            return;
        };
        while let Some((dts, raw)) = self.pending_audio.pop_front() {
            self.write_audio(cfg, dts, &raw, out);
        }
    }

    fn write_audio(&mut self, cfg: AdtsConfig, dts: u64, raw: &[u8], out: &mut HlsOutput) {
        // Validated before buffering/writing; a failure here would be a size change only.
        let Ok(hdr) = cfg.header(raw.len()) else {
            return;
        };
        let dts = self.aclock.advance(dts);
        self.write_pes(out, false, dts, dts, false, &[&hdr, raw]);
    }

    fn push_audio(&mut self, frame: &MediaFrame, out: &mut HlsOutput) -> Result<(), HlsError> {
        let Some(tag) = frame.audio() else {
            return Ok(());
        };
        let tag = tag?;
        if tag.codec != AudioCodec::Aac || tag.track != 0 {
            return Ok(());
        }
        let body = tag.data(&frame.payload);
        if tag.packet == AudioPacket::SequenceHeader {
            let cfg = AdtsConfig::from_asc(body)?;
            if self.audio.is_none() {
                self.format_changed = true;
            }
            self.audio = Some(cfg);
            return Ok(());
        }
        let Some(cfg) = self.audio.filter(|_| tag.packet == AudioPacket::Frame) else {
            return Ok(());
        };
        if body.is_empty() {
            return Ok(());
        }
        cfg.header(body.len())?;
        let dts = self.map_dts(frame.dts_ms);
        match &self.open {
            None if self.video.is_some() => {
                // Hold audio until the first keyframe so the segment starts with it.
                self.pending_audio
                    .push_back((dts, frame.payload.slice(tag.header_len..tag.data_end)));
                if self.pending_audio.len() >= MAX_PENDING_AUDIO {
                    // Declared video never came: record audio-only rather than nothing.
                    let first = self.pending_audio.front().map_or(dts, |p| p.0);
                    self.open_segment(first, false, out);
                    self.flush_pending_audio(out);
                }
                return Ok(());
            }
            None => self.open_segment(dts, false, out),
            Some(seg) => {
                if !seg.audio {
                    // The PMT has no audio stream; the next cut adds it.
                    return Ok(());
                }
                let due = dts.saturating_sub(seg.first_dts_ms) >= self.target_ms;
                let changed = self.format_changed && self.video.is_none();
                if !seg.video && (due || changed) {
                    self.close_segment(dts, out);
                    self.open_segment(dts, false, out);
                }
            }
        }
        self.write_audio(cfg, dts, body, out);
        Ok(())
    }
}
