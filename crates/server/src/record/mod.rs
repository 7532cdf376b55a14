//! Recorders: one per push, holding one open file per format of its template.
//!
//! Runs inside the publisher's connection task (no channel between ingest and recorder, so
//! backpressure is the TCP window and no frame can be dropped on the way). Each file is first a
//! *spool* in a crash-safe form (FLV / fragmented MP4, appended in batches); at close it is
//! *finalized* off the connection task (FLV gets its seek index, MP4 becomes faststart) and only
//! then catalogued. See ARCHITECTURE.md for the invariants.
//!
//! A file's tracks come from what the stream really carries, not from its first frame:
//! * **The start.** No file opens before the stream has shown its tracks. With video, the
//!   first file starts at the first video keyframe; while the stream may still reveal a track
//!   (its `onMetaData` declares it, or there is no metadata to ask), frames are held from
//!   that start for up to [`START_WAIT_DECLARED_MS`] / [`START_WAIT_MS`] of media, so a video
//!   header that follows the audio by seconds (relays, mobile SDKs) or an audio header just
//!   after the first picture still gives one file with both tracks. Frames before the first
//!   keyframe cannot start a file; they are counted (`livetape_recording_dropped_frames_total
//!   {reason="before_keyframe"}`) and logged, never silently lost.
//! * **Later changes.** A track that joins mid-file or a changed configuration (resolution,
//!   sample rate) splits the file at the next keyframe where the format fixes its track list
//!   up front (MP4, M4A); FLV takes a joining track in place (and splits on a changed
//!   configuration); HLS takes both in place (a new segment, `EXT-X-DISCONTINUITY` when the
//!   elementary streams change).
//! * **What a format cannot hold** (Opus or AV1 in MP4/TS today, extra E-RTMP tracks outside
//!   FLV) is reported once per push and format as event 332 `record_error` naming the track, or
//!   `record_start_failed` when nothing is left to record; FLV keeps every track.
//! * **Time.** Files run on the recording's [`timeline`]: a publisher clock that starts high,
//!   jumps or restarts never shows as a gap, a bogus duration or a premature split.

mod finalize;
mod muxer;
pub mod recover;
mod resume;
mod spool;
mod timeline;

pub use finalize::{ClosedFile, FinishedFile, finalize};
pub use resume::Parking;
/// The playlist file of an HLS recording (beside its segments).
pub const HLS_PLAYLIST_NAME: &str = muxer::HLS_PLAYLIST;

use crate::metrics::{DropReason, FileMeter, RecordMeters};
use crate::model::{Format, RecordTemplate};
use bytes::Bytes;
use livetape_media::av1::Av1Config;
use livetape_media::avc::AvcConfig;
use livetape_media::{
    AudioCodec, AudioPacket, MediaFrame, MediaKind, VideoCodec, VideoPacket, VideoTag,
};
use muxer::{FileStart, FileTracks, Muxer};
use spool::Spool;
use std::path::PathBuf;
use std::sync::Arc;
use timeline::{Jump, Timeline};

/// How long the start waits, in media time from the first frame it holds, for a track that
/// the publisher's `onMetaData` declares but that has not shown up yet (a relay's video
/// sequence header seconds after its audio; a GOP of up to this long).
pub const START_WAIT_DECLARED_MS: u64 = 10_000;
/// The same wait when there is no `onMetaData` to tell which tracks will come.
pub const START_WAIT_MS: u64 = 3_000;
/// Past this many bytes held at the start, the files open with the tracks known so far.
pub const MAX_HELD_BYTES: usize = 16 << 20;
/// Splits follow the publisher's timestamps, which a hostile (or broken) publisher controls:
/// a file is closed at its interval only once at least `interval / MAX_SPLIT_SPEEDUP` of wall
/// time has passed since it opened. Media pushed up to 50× faster than real time splits as
/// usual; keyframes 30 minutes apart every few milliseconds no longer make a file, a row, an
/// fsync and an event 100 each (at the default 1800 s interval: at most one file per 36 s).
pub const MAX_SPLIT_SPEEDUP: u64 = 50;

/// Who a recording belongs to; shared by every file of one push.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RecordContext {
    pub appid: u64,
    pub domain: String,
    pub appname: String,
    pub stream: String,
    pub sequence: String,
    pub stream_param: String,
    /// The callback template in force when the recording started: a later edit never
    /// redirects the events of a running recording.
    #[serde(default)]
    pub callbacks: Option<crate::model::CallbackTemplate>,
    /// The template's retention (days, 0 = forever), pinned like `callbacks`.
    #[serde(default)]
    pub storage_days: u64,
    /// The record template's number (`record_temp_id` in event 100; 0 if unknown).
    #[serde(default)]
    pub template_id: i64,
}

/// Errors while writing a recording; they stop that recording, never the push.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{stream} {format}: spool {path}: {source}")]
    Io {
        stream: String,
        format: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{stream} {format}: {reason}")]
    Mux {
        stream: String,
        format: &'static str,
        reason: String,
    },
    /// The spool holds codec headers but no frame (a crash right after it was opened): there
    /// is nothing to catalogue, and the spool is discarded.
    #[error("{stream} {format}: spool {path} holds no media frame")]
    Empty {
        stream: String,
        format: &'static str,
        path: PathBuf,
    },
}

/// What the stream carries now: the latest codec headers of its default tracks (replayed at
/// the start of every file so each file stands alone) and what its metadata declares.
#[derive(Default, Clone)]
pub(crate) struct Headers {
    pub metadata: Option<Bytes>,
    pub video: Option<Bytes>,
    pub audio: Option<Bytes>,
    /// The default tracks' codecs: from their sequence headers or, for codecs that send none
    /// (MP3, legacy video), from their first frame.
    pub video_codec: Option<VideoCodec>,
    pub audio_codec: Option<AudioCodec>,
    /// Configuration tags only FLV records: other E-RTMP tracks' sequence headers and every
    /// track's multichannel layout, latest per (kind, track, packet), in arrival order.
    pub extra: Vec<(ExtraKey, MediaFrame)>,
    declared: livetape_flv::DeclaredTracks,
}

/// (kind, track, packet type) of a configuration tag in [`Headers::extra`].
pub(crate) type ExtraKey = (MediaKind, u8, u8);

impl Headers {
    fn extra_frames(&self) -> Vec<MediaFrame> {
        self.extra.iter().map(|(_, f)| f.clone()).collect()
    }
}

struct OpenFile {
    file_id: String,
    spool: Spool,
    muxer: Muxer,
    started_wall_ms: i64,
    first_dts: u64,
    /// The tracks this file was opened with (plus, for FLV and HLS, any that joined).
    tracks: FileTracks,
    /// Frames of a track this file cannot take in place, until the split that takes it.
    dropped_joining: u64,
    /// Counts the file open and its bytes written, for `/metrics` (set by the recorder).
    meter: Option<FileMeter>,
}

impl OpenFile {
    /// Reports what the spool handed to the OS since the last call (one atomic add).
    fn sync_meter(&mut self) {
        if let Some(m) = self.meter.as_mut() {
            m.sync(self.spool.flushed());
        }
    }

    fn holds(&self, kind: MediaKind) -> bool {
        match kind {
            MediaKind::Video => self.tracks.video_codec.is_some(),
            MediaKind::Audio => self.tracks.audio_codec.is_some(),
            MediaKind::Script => true,
        }
    }
}

struct Output {
    format: Format,
    file: Option<OpenFile>,
    /// Set when a write failed: the format stops for the rest of this push.
    failed: bool,
    /// Stopped (or never started) for the free-space floor, not for an error of its own: it
    /// opens a new file at the next split point once [`Recorder::resume_after_floor`] says
    /// the space is back.
    paused: bool,
    /// The first file of this format was opened.
    started: bool,
    /// A track joined or a configuration changed: split at the next split point (HLS: the
    /// joining track is taken there, in a new segment, without a new file).
    split_pending: bool,
    /// The format can hold none of the stream's tracks: no file until a track changes.
    blocked: bool,
    /// Tracks already reported (event 332) as not recorded by this format.
    left_out: Vec<String>,
}

/// A recording status change of one format (Tencent event 332).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusKind {
    StartSucceeded,
    StartFailed,
    Error,
    Ended,
}

impl StatusKind {
    pub fn record_event(&self) -> &'static str {
        match self {
            Self::StartSucceeded => "record_start_succeeded",
            Self::StartFailed => "record_start_failed",
            Self::Error => "record_error",
            Self::Ended => "record_ended",
        }
    }
}

#[derive(Clone, Debug)]
pub struct RecordStatus {
    pub format: Format,
    pub kind: StatusKind,
    pub file_id: Option<String>,
    pub error: Option<String>,
}

/// Frames held before the first files open (see the module docs).
#[derive(Default)]
struct Gate {
    /// Held frames in arrival order; `true` marks frames of other E-RTMP tracks (FLV only).
    held: Vec<(MediaFrame, bool)>,
    held_bytes: usize,
    /// Timeline dts of the first held frame.
    since: Option<u64>,
    /// The held frames start at a video keyframe (else: audio, while video may still come).
    from_key: bool,
    /// Frames that arrived before the first keyframe and cannot start a file.
    dropped_video: u64,
    dropped_audio: u64,
}

impl Gate {
    fn hold(&mut self, frame: MediaFrame, extra: bool) {
        self.since.get_or_insert(frame.dts_ms);
        self.held_bytes += frame.payload.len();
        self.held.push((frame, extra));
    }

    /// Drops what is held (a keyframe arrived after audio that waited for video).
    fn drop_held(&mut self) {
        for (f, _) in self.held.drain(..) {
            match f.kind {
                MediaKind::Video => self.dropped_video += 1,
                _ => self.dropped_audio += 1,
            }
        }
        (self.held_bytes, self.since) = (0, None);
    }
}

/// What one tag is to the recorder.
enum Part {
    Metadata,
    /// A default track's sequence header.
    Config(MediaKind),
    /// A configuration tag only FLV records (see [`Headers::extra`]).
    ExtraConfig(ExtraKey),
    /// A coded frame of a default track; `codec` identifies codecs without a sequence header.
    Frame {
        key: bool,
        video: Option<VideoCodec>,
        audio: Option<AudioCodec>,
    },
    /// A coded frame of another E-RTMP track: FLV only.
    ExtraFrame,
    /// Nothing a recording keeps: end of sequence, command frames, E-RTMP video metadata,
    /// unparsable tags.
    Skip,
}

fn classify(frame: &MediaFrame) -> Part {
    match frame.kind {
        MediaKind::Script => Part::Metadata,
        MediaKind::Video => match VideoTag::parse(&frame.payload) {
            Ok(v) if v.track != 0 => match v.packet {
                VideoPacket::SequenceHeader => Part::ExtraConfig((MediaKind::Video, v.track, 0)),
                VideoPacket::Frame => Part::ExtraFrame,
                _ => Part::Skip,
            },
            Ok(v) => match v.packet {
                VideoPacket::SequenceHeader => Part::Config(MediaKind::Video),
                VideoPacket::Frame => Part::Frame {
                    key: v.keyframe,
                    video: Some(v.codec),
                    audio: None,
                },
                _ => Part::Skip,
            },
            Err(_) => Part::Skip,
        },
        MediaKind::Audio => match livetape_media::AudioTag::parse(&frame.payload) {
            Ok(a) => match (a.track, a.packet) {
                (0, AudioPacket::SequenceHeader) => Part::Config(MediaKind::Audio),
                (t, AudioPacket::SequenceHeader) => Part::ExtraConfig((MediaKind::Audio, t, 0)),
                (t, AudioPacket::MultichannelConfig) => Part::ExtraConfig((MediaKind::Audio, t, 4)),
                (0, AudioPacket::Frame) => Part::Frame {
                    key: false,
                    video: None,
                    audio: Some(a.codec),
                },
                (_, AudioPacket::Frame) => Part::ExtraFrame,
                _ => Part::Skip,
            },
            Err(_) => Part::Skip,
        },
    }
}

pub struct Recorder {
    ctx: Arc<RecordContext>,
    spool_dir: PathBuf,
    interval_ms: u64,
    headers: Headers,
    outputs: Vec<Output>,
    /// `Some` until the first files open.
    gate: Option<Gate>,
    /// The stream has video (a header or a frame was seen): only video keyframes split.
    has_video: bool,
    resume_ms: u64,
    timeline: Timeline,
    /// HLS outputs mark the reconnect with `EXT-X-DISCONTINUITY` at the next frame.
    discontinuity_pending: bool,
    hls_target_ms: u64,
    statuses: Vec<RecordStatus>,
    meters: RecordMeters,
}

impl Recorder {
    pub fn new(ctx: RecordContext, template: &RecordTemplate, spool_dir: PathBuf) -> Self {
        let mut formats = template.formats.clone();
        formats.dedup();
        Self {
            ctx: Arc::new(ctx),
            spool_dir,
            interval_ms: template.interval_s * 1000,
            headers: Headers::default(),
            outputs: formats
                .into_iter()
                .map(|format| Output {
                    format,
                    file: None,
                    failed: false,
                    paused: false,
                    started: false,
                    split_pending: false,
                    blocked: false,
                    left_out: Vec::new(),
                })
                .collect(),
            gate: Some(Gate::default()),
            has_video: false,
            resume_ms: template.resume_s * 1000,
            timeline: Timeline::default(),
            discontinuity_pending: false,
            hls_target_ms: template.hls_target_s * 1000,
            statuses: Vec::new(),
            meters: RecordMeters::default(),
        }
    }

    /// Reports open files and bytes written to these meters (the server's `/metrics`).
    pub fn with_meters(mut self, meters: RecordMeters) -> Self {
        self.meters = meters;
        self
    }

    /// Status changes since the last call (for event 332).
    pub fn take_statuses(&mut self) -> Vec<RecordStatus> {
        std::mem::take(&mut self.statuses)
    }

    pub fn has_statuses(&self) -> bool {
        !self.statuses.is_empty()
    }

    /// The reconnect window of this recording's template (0 = none).
    pub fn resume_ms(&self) -> u64 {
        self.resume_ms
    }

    pub fn context(&self) -> &RecordContext {
        &self.ctx
    }

    /// A new push continues this recording: its timestamps are shifted to follow on from the
    /// last frame written, so the same files go on with a continuous timeline.
    pub fn resume(&mut self) {
        self.timeline.resume();
        self.discontinuity_pending = self.gate.is_none() && self.timeline.last().is_some();
    }

    /// Codec name, width and height from the video sequence header.
    pub fn video_info(&self) -> Option<(String, u32, u32)> {
        video_info(self.headers.video_codec, self.headers.video.as_ref())
    }

    /// Feeds one frame. Returns files closed by a split (to be finalized by the caller) and
    /// any write error (that format is then stopped; the others go on).
    pub fn push(
        &mut self,
        frame: &MediaFrame,
        now_ms: i64,
        closed: &mut Vec<ClosedFile>,
        errors: &mut Vec<RecordError>,
    ) {
        let part = classify(frame);
        match part {
            Part::Skip => return,
            Part::Metadata => {
                self.headers.declared = livetape_flv::declared_tracks(&frame.payload);
                self.headers.metadata = Some(frame.payload.clone());
                self.try_start(now_ms, closed, errors);
                return;
            }
            _ => {}
        }
        // Configuration tags carry no timing of their own (many encoders stamp them 0): they
        // are placed on the timeline without moving it.
        let (dts, jump) = match part {
            Part::Config(_) | Part::ExtraConfig(_) => {
                (self.timeline.place(frame.dts_ms), Jump::None)
            }
            _ => self
                .timeline
                .map(frame.dts_ms, frame.kind == MediaKind::Video, now_ms),
        };
        if jump != Jump::None {
            tracing::info!(
                stream = %self.ctx.stream,
                ?jump,
                "publisher timestamps jumped; the recording's timeline continues across it"
            );
        }
        let mapped;
        let frame = if dts == frame.dts_ms {
            frame
        } else {
            mapped = MediaFrame::new(frame.kind, dts, frame.payload.clone());
            &mapped
        };
        match part {
            Part::Config(kind) => self.on_config(kind, frame, now_ms, closed, errors),
            Part::ExtraConfig(key) => {
                let new_track = match self.headers.extra.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, f)) if f.payload == frame.payload => return,
                    Some((_, f)) => {
                        *f = frame.clone();
                        false
                    }
                    None => {
                        self.headers.extra.push((key, frame.clone()));
                        true
                    }
                };
                // Before the first files open, the configuration is replayed at their start.
                if self.gate.is_none() {
                    if new_track {
                        for i in 0..self.outputs.len() {
                            let (_, left_out) =
                                FileTracks::for_format(self.outputs[i].format, &self.headers);
                            self.report_left_out(i, left_out);
                        }
                    }
                    self.write_extra(frame, now_ms, closed, errors);
                }
            }
            Part::ExtraFrame => self.write_extra(frame, now_ms, closed, errors),
            Part::Frame { key, video, audio } => {
                if frame.kind == MediaKind::Video {
                    self.has_video = true;
                }
                // Codecs without a sequence header are known by their first frame.
                let joined = match (video, audio) {
                    (Some(c), _) if self.headers.video_codec.is_none() => {
                        self.headers.video_codec = Some(c);
                        true
                    }
                    (_, Some(c)) if self.headers.audio_codec.is_none() => {
                        self.headers.audio_codec = Some(c);
                        true
                    }
                    _ => false,
                };
                if joined && self.gate.is_none() {
                    self.track_changed(frame.kind, None);
                }
                if self.gate.is_some() {
                    self.gate_frame(frame, key, now_ms, closed, errors);
                } else {
                    self.write(frame, now_ms, closed, errors);
                }
            }
            Part::Metadata | Part::Skip => {}
        }
    }

    /// A default track's sequence header.
    fn on_config(
        &mut self,
        kind: MediaKind,
        frame: &MediaFrame,
        now_ms: i64,
        closed: &mut Vec<ClosedFile>,
        errors: &mut Vec<RecordError>,
    ) {
        let (slot, codec_changed) = match kind {
            MediaKind::Video => {
                let codec = frame.video().and_then(Result::ok).map(|v| v.codec);
                self.has_video = true;
                let changed = self.headers.video_codec != codec;
                self.headers.video_codec = codec;
                (&mut self.headers.video, changed)
            }
            _ => {
                let codec = frame.audio().and_then(Result::ok).map(|a| a.codec);
                let changed = self.headers.audio_codec != codec;
                self.headers.audio_codec = codec;
                (&mut self.headers.audio, changed)
            }
        };
        if slot.as_ref() == Some(&frame.payload) && !codec_changed {
            // Encoders repeat identical headers before keyframes: nothing changes.
            return;
        }
        *slot = Some(frame.payload.clone());
        if self.gate.is_some() {
            self.try_start(now_ms, closed, errors);
        } else {
            self.track_changed(kind, Some(frame));
        }
    }

    /// A track appeared or its configuration changed while files are open: each format takes
    /// it in place or at the next split point (see the module docs).
    fn track_changed(&mut self, kind: MediaKind, header: Option<&MediaFrame>) {
        for i in 0..self.outputs.len() {
            let format = self.outputs[i].format;
            let (now, left_out) = FileTracks::for_format(format, &self.headers);
            self.report_left_out(i, left_out);
            let out = &mut self.outputs[i];
            // A format that could record nothing may have something now.
            out.blocked = false;
            let Some(f) = out.file.as_mut() else { continue };
            if out.failed || now == f.tracks {
                continue;
            }
            // A track the file has no configuration for yet (absent, or known only by a frame).
            let joins = match kind {
                MediaKind::Video => f.tracks.video.is_none(),
                _ => f.tracks.audio.is_none(),
            };
            // HLS takes a new configuration of the same codec in place (new parameter sets at
            // the next keyframe, in a segment after EXT-X-DISCONTINUITY); FLV a new track.
            let same_codec = match kind {
                MediaKind::Video => now.video_codec == f.tracks.video_codec,
                _ => now.audio_codec == f.tracks.audio_codec,
            };
            let in_place = match format {
                Format::Flv => joins,
                Format::Hls => !joins && same_codec,
                _ => false,
            };
            if !in_place {
                out.split_pending = true;
                continue;
            }
            if let Some(h) = header
                && let Err(e) = f.muxer.push(h, &mut f.spool)
            {
                tracing::warn!(stream = %self.ctx.stream, error = %e, "could not add a track");
            }
            f.tracks = now;
        }
    }

    /// Event 332 `record_error` for each track output `i` newly leaves out.
    fn report_left_out(&mut self, i: usize, lines: Vec<String>) {
        let out = &mut self.outputs[i];
        if out.failed || !out.started {
            return;
        }
        for line in lines {
            if out.left_out.contains(&line) {
                continue;
            }
            tracing::warn!(stream = %self.ctx.stream, format = out.format.as_str(), "{line}");
            self.statuses.push(RecordStatus {
                format: out.format,
                kind: StatusKind::Error,
                file_id: out.file.as_ref().map(|f| f.file_id.clone()),
                error: Some(line.clone()),
            });
            out.left_out.push(line);
        }
    }

    /// A coded frame before the first files are open.
    fn gate_frame(
        &mut self,
        frame: &MediaFrame,
        key: bool,
        now_ms: i64,
        closed: &mut Vec<ClosedFile>,
        errors: &mut Vec<RecordError>,
    ) {
        let video_known = self.headers.video_codec.is_some();
        let no_video = self.headers.declared.video == Some(false);
        let Some(gate) = self.gate.as_mut() else {
            return;
        };
        match frame.kind {
            MediaKind::Video if key && !gate.from_key => {
                // The start point: what waited for it (audio) cannot go before it.
                gate.drop_held();
                gate.from_key = true;
                gate.hold(frame.clone(), false);
            }
            _ if gate.from_key => gate.hold(frame.clone(), false),
            MediaKind::Video => gate.dropped_video += 1,
            // Video is coming (its header is here): audio waits for its first keyframe.
            _ if video_known && !no_video => gate.dropped_audio += 1,
            _ => gate.hold(frame.clone(), false),
        }
        self.try_start(now_ms, closed, errors);
    }

    /// Opens the first files once the stream has shown its tracks (or stopped making us wait).
    fn try_start(
        &mut self,
        now_ms: i64,
        closed: &mut Vec<ClosedFile>,
        errors: &mut Vec<RecordError>,
    ) {
        let Some(gate) = self.gate.as_ref() else {
            return;
        };
        let Some(since) = gate.since else { return };
        let h = &self.headers;
        let declared = h.declared.video.is_some() || h.declared.audio.is_some();
        let wait = if declared {
            START_WAIT_DECLARED_MS
        } else {
            START_WAIT_MS
        };
        let waited = self.timeline.last().unwrap_or(since).saturating_sub(since) >= wait
            || gate.held_bytes >= MAX_HELD_BYTES;
        let ready = if gate.from_key {
            h.audio_codec.is_some() || h.declared.audio == Some(false) || waited
        } else {
            // Audio that may be all there is: open once video is ruled out or late.
            h.video_codec.is_none() && (h.declared.video == Some(false) || waited)
        };
        if ready {
            self.start(now_ms, closed, errors);
        }
    }

    /// Ends the start: the held frames go into the first files.
    fn start(&mut self, now_ms: i64, closed: &mut Vec<ClosedFile>, errors: &mut Vec<RecordError>) {
        let Some(gate) = self.gate.take() else { return };
        self.report_dropped(&gate);
        for (f, extra) in gate.held {
            if extra {
                self.write_extra(&f, now_ms, closed, errors);
            } else {
                self.write(&f, now_ms, closed, errors);
            }
        }
    }

    fn report_dropped(&self, gate: &Gate) {
        let n = gate.dropped_video + gate.dropped_audio;
        if n > 0 {
            tracing::info!(
                stream = %self.ctx.stream,
                video = gate.dropped_video,
                audio = gate.dropped_audio,
                "frames before the first video keyframe are not recorded (a file starts at one)"
            );
            self.meters.dropped(DropReason::BeforeKeyframe, n);
        }
    }

    /// Frames and configurations of other E-RTMP tracks: FLV records them as they come.
    fn write_extra(
        &mut self,
        frame: &MediaFrame,
        now_ms: i64,
        closed: &mut Vec<ClosedFile>,
        errors: &mut Vec<RecordError>,
    ) {
        if let Some(gate) = self.gate.as_mut() {
            if gate.since.is_some() {
                gate.hold(frame.clone(), true);
            } else if frame.kind == MediaKind::Video {
                gate.dropped_video += 1;
            } else {
                gate.dropped_audio += 1;
            }
            return;
        }
        for i in 0..self.outputs.len() {
            let out = &mut self.outputs[i];
            if out.failed || out.format != Format::Flv {
                continue;
            }
            let Some(f) = out.file.as_mut() else { continue };
            let res = f
                .muxer
                .push(frame, &mut f.spool)
                .and_then(|()| f.spool.maybe_flush(now_ms).map_err(Into::into));
            if let Err(e) = res {
                self.fail(i, e, now_ms, closed, errors);
            }
        }
    }

    /// Writes one coded frame of a default track to every format.
    fn write(
        &mut self,
        frame: &MediaFrame,
        now_ms: i64,
        closed: &mut Vec<ClosedFile>,
        errors: &mut Vec<RecordError>,
    ) {
        // A split point: a video keyframe, or any audio frame of an audio-only stream.
        let split_point = if self.has_video {
            frame.is_video_keyframe()
        } else {
            frame.kind == MediaKind::Audio
        };
        let discontinuity = std::mem::take(&mut self.discontinuity_pending);
        for i in 0..self.outputs.len() {
            let out = &mut self.outputs[i];
            if out.failed {
                continue;
            }
            // HLS is one playlist per push session / resume window (Tencent §3): no interval
            // splits; a new track or codec does split it (players cannot add one mid-playlist).
            if let Some(f) = &out.file
                && split_point
                && (out.split_pending
                    || (out.format != Format::Hls
                        && frame.dts_ms.saturating_sub(f.first_dts) >= self.interval_ms
                        && now_ms.saturating_sub(f.started_wall_ms)
                            >= (self.interval_ms / MAX_SPLIT_SPEEDUP) as i64))
                && let Some(f) = out.file.take()
            {
                out.split_pending = false;
                let (c, e) = close_file(&self.ctx, out.format, f, now_ms, &self.meters);
                if let Some(e) = e {
                    close_failed(out.format, &c.file_id, e, &mut self.statuses, errors);
                }
                closed.push(c);
                crate::failpoint::hit("record.split");
            }
            // A file starts only at a split point (the first one: where the start gate opened).
            if out.file.is_none()
                && (!split_point || out.blocked || !self.open(i, frame.dts_ms, now_ms, errors))
            {
                continue;
            }
            let out = &mut self.outputs[i];
            let Some(f) = out.file.as_mut() else { continue };
            if !f.holds(frame.kind) {
                if out.split_pending {
                    f.dropped_joining += 1;
                }
                continue;
            }
            let res = if discontinuity {
                f.muxer.discontinuity(&mut f.spool)
            } else {
                Ok(())
            };
            let res = res
                .and_then(|()| f.muxer.push(frame, &mut f.spool))
                .and_then(|()| f.spool.maybe_flush(now_ms).map_err(Into::into));
            if let Err(e) = res {
                self.fail(i, e, now_ms, closed, errors);
            }
        }
    }

    /// Opens output `i`'s next file at `first_dts`; false if the format cannot record now
    /// (it then stops, with its status).
    fn open(
        &mut self,
        i: usize,
        first_dts: u64,
        now_ms: i64,
        errors: &mut Vec<RecordError>,
    ) -> bool {
        let format = self.outputs[i].format;
        let (tracks, left_out) = FileTracks::for_format(format, &self.headers);
        if tracks.is_empty() {
            // Nothing this format can record (yet): it opens when a track it can hold
            // appears. Said once, as `record_start_failed` until it has started.
            let out = &mut self.outputs[i];
            out.blocked = true;
            let reason = if left_out.is_empty() {
                match format {
                    Format::Aac => {
                        "the stream has no AAC audio, so there is nothing to record as aac"
                            .to_owned()
                    }
                    _ => "the stream has no track to record".to_owned(),
                }
            } else {
                left_out.join("; ")
            };
            if !out.left_out.contains(&reason) {
                tracing::warn!(stream = %self.ctx.stream, format = format.as_str(), reason, "nothing to record");
                self.statuses.push(RecordStatus {
                    format,
                    kind: if out.started {
                        StatusKind::Error
                    } else {
                        StatusKind::StartFailed
                    },
                    file_id: None,
                    error: Some(reason.clone()),
                });
                out.left_out.push(reason);
            }
            return false;
        }
        let extra = if format == Format::Flv {
            self.headers.extra_frames()
        } else {
            Vec::new()
        };
        let start = FileStart {
            tracks: &tracks,
            metadata: self.headers.metadata.as_ref(),
            extra: &extra,
        };
        match open_file(
            &self.ctx,
            &self.spool_dir,
            format,
            &start,
            first_dts,
            self.hls_target_ms,
            self.interval_ms,
            now_ms,
        ) {
            Ok(mut f) => {
                f.meter = Some(FileMeter::new(&self.meters));
                let out = &mut self.outputs[i];
                if !out.started {
                    out.started = true;
                    self.statuses.push(RecordStatus {
                        format,
                        kind: StatusKind::StartSucceeded,
                        file_id: Some(f.file_id.clone()),
                        error: None,
                    });
                }
                f.tracks = tracks;
                out.file = Some(f);
                self.report_left_out(i, left_out);
                true
            }
            Err(e) => {
                let out = &mut self.outputs[i];
                out.failed = true;
                self.statuses.push(RecordStatus {
                    format,
                    kind: if out.started {
                        StatusKind::Error
                    } else {
                        StatusKind::StartFailed
                    },
                    file_id: None,
                    error: Some(e.to_string()),
                });
                errors.push(e);
                false
            }
        }
    }

    /// Writes what the spools have queued (ingest calls it after each socket read, so frame
    /// payloads are written before the read buffer they live in is reused). MP4 fragments in
    /// progress stay open.
    pub fn write_out(
        &mut self,
        now_ms: i64,
        closed: &mut Vec<ClosedFile>,
        errors: &mut Vec<RecordError>,
    ) {
        for i in 0..self.outputs.len() {
            let Some(f) = self.outputs[i].file.as_mut() else {
                continue;
            };
            let res = f.spool.flush();
            // Once per write-out (not per frame): the bytes this read's frames became.
            f.sync_meter();
            if let Err(e) = res {
                self.fail(i, e.into(), now_ms, closed, errors);
            }
        }
    }

    /// A write to output `i` failed: that format stops for the rest of this push.
    fn fail(
        &mut self,
        i: usize,
        e: muxer::WriteError,
        now_ms: i64,
        closed: &mut Vec<ClosedFile>,
        errors: &mut Vec<RecordError>,
    ) {
        let out = &mut self.outputs[i];
        let Some(f) = out.file.as_ref() else { return };
        out.failed = true;
        let e = self::err(&self.ctx, out.format, &f.spool, e);
        self.statuses.push(RecordStatus {
            format: out.format,
            kind: StatusKind::Error,
            file_id: Some(f.file_id.clone()),
            error: Some(e.to_string()),
        });
        errors.push(e);
        // What reached the spool before the failure is still catalogued. Nothing more is
        // written to it (a failed write may have left part of a batch): finalize plans from
        // what the file holds, as start-up recovery does, which cuts a torn tail.
        if let Some(f) = out.file.take() {
            closed.push(abandon_file(&self.ctx, out.format, f, now_ms));
        }
    }

    /// Recording is refused for this push (e.g. the disk is below its free-space floor): every
    /// format reports `record_start_failed` and nothing is written.
    pub fn refuse(&mut self, reason: &str) {
        self.gate = None;
        for out in &mut self.outputs {
            out.failed = true;
            out.paused = true;
            self.statuses.push(RecordStatus {
                format: out.format,
                kind: StatusKind::StartFailed,
                file_id: None,
                error: Some(reason.to_owned()),
            });
        }
    }

    /// Stops every format cleanly (e.g. the disk fell below its floor): what was written is
    /// closed as valid files to be catalogued; the push itself goes on, unrecorded.
    pub fn stop(
        &mut self,
        reason: &str,
        now_ms: i64,
        closed: &mut Vec<ClosedFile>,
        errors: &mut Vec<RecordError>,
    ) {
        let never_started = self.gate.take().is_some();
        for out in &mut self.outputs {
            if out.failed {
                continue;
            }
            out.failed = true;
            out.paused = true;
            let file_id = out.file.as_ref().map(|f| f.file_id.clone());
            if let Some(f) = out.file.take() {
                let (c, e) = close_file(&self.ctx, out.format, f, now_ms, &self.meters);
                if let Some(e) = e {
                    close_failed(out.format, &c.file_id, e, &mut self.statuses, errors);
                }
                closed.push(c);
            }
            if out.started || never_started {
                self.statuses.push(RecordStatus {
                    format: out.format,
                    kind: if out.started {
                        StatusKind::Error
                    } else {
                        StatusKind::StartFailed
                    },
                    file_id,
                    error: Some(reason.to_owned()),
                });
            }
        }
    }

    /// Whether some format waits for free space (see [`Recorder::stop`], [`Recorder::refuse`]).
    pub fn paused(&self) -> bool {
        self.outputs.iter().any(|o| o.paused)
    }

    /// The space is back: every format stopped by the floor records again, in a new file from
    /// the next split point (a keyframe), announced with its `record_start_succeeded`.
    pub fn resume_after_floor(&mut self) {
        for out in &mut self.outputs {
            if out.paused {
                out.paused = false;
                out.failed = false;
                out.started = false;
            }
        }
    }

    /// Nothing recorded yet (a fresh recorder rather than a resumed one).
    pub fn last_dts_is_none(&self) -> bool {
        self.timeline.last().is_none()
    }

    /// True once every format has stopped (or never started).
    pub fn stopped(&self) -> bool {
        self.outputs.iter().all(|o| o.failed)
    }

    /// Pushes everything buffered to the OS (the push ended but the files stay open, e.g.
    /// waiting out a reconnect window): a crash now loses nothing already received.
    pub fn flush(
        &mut self,
        now_ms: i64,
        closed: &mut Vec<ClosedFile>,
        errors: &mut Vec<RecordError>,
    ) {
        // Frames held at the start would be lost by a crash in the window: into files now.
        if self.gate.as_ref().is_some_and(|g| !g.held.is_empty()) {
            self.start(now_ms, closed, errors);
        }
        for out in &mut self.outputs {
            let Some(f) = out.file.as_mut() else { continue };
            let res = f.muxer.flush(&mut f.spool);
            f.sync_meter();
            if let Err(e) = res {
                errors.push(self::err(&self.ctx, out.format, &f.spool, e));
            }
        }
    }

    /// Closes every open file (push ended). Frames still held at the start go in first; a
    /// push that never showed a frame a file could start at reports `record_start_failed`.
    pub fn finish(
        &mut self,
        now_ms: i64,
        closed: &mut Vec<ClosedFile>,
        errors: &mut Vec<RecordError>,
    ) {
        if let Some(gate) = self.gate.as_ref() {
            if gate.held.is_empty() {
                let gate = self.gate.take().unwrap_or_default();
                self.report_dropped(&gate);
                let seen = gate.dropped_video + gate.dropped_audio;
                if seen > 0 || self.headers.video_codec.is_some() {
                    let reason = format!(
                        "the stream sent no video keyframe to start a file at ({} video and {} audio frames not recorded)",
                        gate.dropped_video, gate.dropped_audio
                    );
                    for out in &mut self.outputs {
                        if !out.failed {
                            out.failed = true;
                            self.statuses.push(RecordStatus {
                                format: out.format,
                                kind: StatusKind::StartFailed,
                                file_id: None,
                                error: Some(reason.clone()),
                            });
                        }
                    }
                }
            } else {
                self.start(now_ms, closed, errors);
            }
        }
        for out in &mut self.outputs {
            if let Some(f) = out.file.take() {
                let (c, e) = close_file(&self.ctx, out.format, f, now_ms, &self.meters);
                if let Some(e) = e {
                    close_failed(out.format, &c.file_id, e, &mut self.statuses, errors);
                }
                closed.push(c);
            }
            if out.started {
                self.statuses.push(RecordStatus {
                    format: out.format,
                    kind: StatusKind::Ended,
                    file_id: None,
                    error: None,
                });
            }
        }
    }
}

/// Codec name, width and height of a video track from its codec and sequence header.
fn video_info(codec: Option<VideoCodec>, sh: Option<&Bytes>) -> Option<(String, u32, u32)> {
    let codec = codec?;
    let config = sh.and_then(|sh| VideoTag::parse(sh).ok().map(|t| t.data(sh)));
    let dims = config.and_then(|config| match codec {
        VideoCodec::Avc => AvcConfig::parse(config).map(|c| (c.width, c.height)).ok(),
        VideoCodec::Hevc => livetape_media::hevc::HevcConfig::parse(config)
            .map(|c| (c.width, c.height))
            .ok(),
        VideoCodec::Av1 => Av1Config::parse(config).map(|c| (c.width, c.height)).ok(),
        VideoCodec::Other(_) => None,
    });
    let (w, h) = dims.unwrap_or((0, 0));
    Some((codec.name().to_owned(), w, h))
}

fn err(ctx: &RecordContext, format: Format, spool: &Spool, e: muxer::WriteError) -> RecordError {
    match e {
        muxer::WriteError::Io(source) => RecordError::Io {
            stream: ctx.stream.clone(),
            format: format.as_str(),
            path: spool.path().to_path_buf(),
            source,
        },
        muxer::WriteError::Mux(reason) => RecordError::Mux {
            stream: ctx.stream.clone(),
            format: format.as_str(),
            reason,
        },
    }
}

/// `{appid}_{32 hex}`: opaque, unique, URL-safe, and shaped like Tencent's newer file ids.
pub fn new_file_id(appid: u64) -> String {
    format!("{appid}_{:032x}", rand::random::<u128>())
}

#[allow(clippy::too_many_arguments)] // each is a distinct fact about the new file
fn open_file(
    ctx: &Arc<RecordContext>,
    spool_dir: &std::path::Path,
    format: Format,
    start: &FileStart<'_>,
    first_dts: u64,
    hls_target_ms: u64,
    interval_ms: u64,
    now_ms: i64,
) -> Result<OpenFile, RecordError> {
    let file_id = new_file_id(ctx.appid);
    let path = spool_dir.join(format!("{file_id}.{}.part", format.as_str()));
    let io = |source| RecordError::Io {
        stream: ctx.stream.clone(),
        format: format.as_str(),
        path: path.clone(),
        source,
    };
    // Metadata first: a crash between the two leaves a stale metadata file (dropped at the
    // next start), never a spool that recovery cannot place.
    recover::write_meta(
        &path,
        &recover::SpoolMeta {
            file_id: file_id.clone(),
            format,
            ctx: RecordContext::clone(ctx),
            started_wall_ms: now_ms,
            media_start_ms: first_dts,
            video: video_info(start.tracks.video_codec, start.tracks.video.as_ref()),
            ended_wall_ms: None,
            adopted: None,
        },
    )
    .map_err(io)?;
    let mut spool = if format == Format::Hls {
        Spool::create_dir(&path, now_ms)
    } else {
        Spool::create(&path, now_ms, format == Format::Flv)
    }
    .map_err(|e| {
        let _ = recover::remove(&path);
        io(e)
    })?;

    let begun = Muxer::begin(
        format,
        start,
        first_dts,
        hls_target_ms,
        interval_ms,
        &mut spool,
    );
    let muxer = match begun {
        Ok(m) => m,
        Err(e) => {
            // Nothing usable was written: the spool must not linger until the next start.
            drop(spool);
            if path.is_dir() {
                let _ = std::fs::remove_dir_all(&path);
            }
            let _ = recover::remove(&path);
            return Err(match e {
                muxer::WriteError::Io(source) => io(source),
                muxer::WriteError::Mux(reason) => RecordError::Mux {
                    stream: ctx.stream.clone(),
                    format: format.as_str(),
                    reason,
                },
            });
        }
    };
    tracing::info!(stream = %ctx.stream, sequence = %ctx.sequence, file_id, format = format.as_str(), "recording file opened");
    Ok(OpenFile {
        file_id,
        spool,
        muxer,
        started_wall_ms: now_ms,
        first_dts,
        tracks: FileTracks::default(),
        dropped_joining: 0,
        meter: None,
    })
}

/// A file's last writes failed as it closed: what it held is still finalized, and the loss
/// of its unflushed tail is announced (event 332 `record_error`) as any failed write is.
fn close_failed(
    format: Format,
    file_id: &str,
    e: RecordError,
    statuses: &mut Vec<RecordStatus>,
    errors: &mut Vec<RecordError>,
) {
    statuses.push(RecordStatus {
        format,
        kind: StatusKind::Error,
        file_id: Some(file_id.to_owned()),
        error: Some(e.to_string()),
    });
    errors.push(e);
}

/// A file whose spool failed a write, for finalize from what it holds (`ClosePlan::Recover`).
fn abandon_file(ctx: &Arc<RecordContext>, format: Format, f: OpenFile, now_ms: i64) -> ClosedFile {
    closed_file(ctx, format, f, now_ms, muxer::ClosePlan::Recover)
}

/// The finalize request of a file closed at `now_ms` with `plan`.
fn closed_file(
    ctx: &Arc<RecordContext>,
    format: Format,
    f: OpenFile,
    now_ms: i64,
    plan: muxer::ClosePlan,
) -> ClosedFile {
    ClosedFile {
        // An audio-only format never describes the push's video.
        video: video_info(f.tracks.video_codec, f.tracks.video.as_ref())
            .filter(|_| format != Format::Aac),
        ctx: Arc::clone(ctx),
        format,
        file_id: f.file_id,
        spool_path: f.spool.path().to_path_buf(),
        started_wall_ms: f.started_wall_ms,
        ended_wall_ms: now_ms,
        media_start_ms: f.first_dts,
        plan,
    }
}

/// Closes a file for finalize. If its last writes fail, what reached the spool before is
/// still finalized, from a plan rebuilt from the spool's contents as start-up recovery does
/// (`ClosePlan::Recover`): the error is returned beside it, and nothing flushed is lost.
fn close_file(
    ctx: &Arc<RecordContext>,
    format: Format,
    mut f: OpenFile,
    now_ms: i64,
    meters: &RecordMeters,
) -> (ClosedFile, Option<RecordError>) {
    if f.dropped_joining > 0 {
        tracing::info!(
            stream = %ctx.stream,
            file_id = f.file_id,
            frames = f.dropped_joining,
            format = format.as_str(),
            "frames of a track that joined mid-file are not in this file (the next one has it)"
        );
        meters.dropped(DropReason::TrackJoining, f.dropped_joining);
    }
    let plan = f
        .muxer
        .close(&mut f.spool)
        .and_then(|plan| f.spool.finish().map(|()| plan).map_err(Into::into));
    f.sync_meter();
    let (plan, error) = match plan {
        Ok(plan) => (plan, None),
        Err(e) => (
            muxer::ClosePlan::Recover,
            Some(err(ctx, format, &f.spool, e)),
        ),
    };
    let closed = closed_file(ctx, format, f, now_ms, plan);
    (closed, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::disk::Storage;
    use livetape_flv::FlvReader;
    use std::path::Path;

    fn fixture_frames(clip: &livetape_testkit::Clip) -> Vec<MediaFrame> {
        let data = std::fs::read(livetape_testkit::fixture(clip)).unwrap();
        let mut r = FlvReader::new();
        r.feed(&data);
        let mut out = Vec::new();
        while let Some(t) = r.next_tag() {
            if let Some(f) = t.unwrap().into_frame() {
                out.push(f);
            }
        }
        out
    }

    pub(crate) fn probe(path: &Path) -> (u64, u64) {
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-count_packets", "-show_entries"])
            .args(["stream=codec_type,nb_read_packets", "-of", "csv=p=0"])
            .arg(path)
            .output()
            .unwrap();
        let mut c = (0, 0);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let (kind, n) = line.split_once(',').unwrap();
            let n: u64 = n.trim().parse().unwrap();
            if kind == "video" { c.0 += n } else { c.1 += n }
        }
        c
    }

    /// A recorder of one format into a fresh data dir (kept alive by the returned guard).
    fn one_format_recorder(
        format: Format,
        interval_s: u64,
    ) -> (tempfile::TempDir, Storage, Recorder) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let template = RecordTemplate {
            name: "t".into(),
            formats: vec![format],
            interval_s,
            resume_s: 0,
            hls_target_s: 10,
            storage_days: 0,
        };
        let ctx = RecordContext {
            appid: 1,
            domain: String::new(),
            appname: "live".into(),
            stream: "s".into(),
            sequence: "1".into(),
            stream_param: String::new(),
            callbacks: None,
            storage_days: 0,
            template_id: 0,
        };
        let rec = Recorder::new(ctx, &template, storage.spool_dir());
        (dir, storage, rec)
    }

    /// Splits at every keyframe at or after `interval`; the files add up to the input exactly.
    fn split_exactly(
        format: Format,
        clip: &livetape_testkit::Clip,
        interval_s: u64,
        want_files: usize,
        want: (u64, u64),
    ) {
        let (_dir, storage, mut rec) = one_format_recorder(format, interval_s);
        let (mut closed, mut errors) = (Vec::new(), Vec::new());
        for (i, f) in fixture_frames(clip).iter().enumerate() {
            rec.push(f, 1_000_000 + i as i64, &mut closed, &mut errors);
        }
        rec.finish(2_000_000, &mut closed, &mut errors);
        assert!(errors.is_empty());
        assert_eq!(closed.len(), want_files);
        let mut total = (0, 0);
        for c in closed {
            let done = finalize(c, &storage, "http://x", 0).unwrap_or_else(|e| panic!("{e}"));
            let c = probe(&storage.root().join(&done.recording.path));
            total = (total.0 + c.0, total.1 + c.1);
        }
        assert_eq!(total, want);
    }

    /// Files made from a clip whose timestamps run 1000× too fast, pushed at `wall_per_frame`.
    fn files_of_stretched_clip(wall_per_frame_ms: i64) -> usize {
        let (_dir, _storage, mut rec) = one_format_recorder(Format::Flv, 30);
        let (mut closed, mut errors) = (Vec::new(), Vec::new());
        for (i, f) in fixture_frames(&livetape_testkit::CLIP_10S)
            .iter()
            .enumerate()
        {
            let f = MediaFrame::new(f.kind, f.dts_ms * 1000, f.payload.clone());
            rec.push(
                &f,
                1_000_000 + i as i64 * wall_per_frame_ms,
                &mut closed,
                &mut errors,
            );
        }
        rec.finish(i64::MAX / 2, &mut closed, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        closed.len()
    }

    #[test]
    fn publisher_timestamps_alone_cannot_make_files_faster_than_the_wall_clock_allows() {
        // 10 s of media stamped as 10 000 s: at interval 30 s, every keyframe (5) is a split
        // point. At one frame per second of wall time each one splits…
        assert_eq!(files_of_stretched_clip(1000), 5);
        // …at one frame per millisecond (770 ms in all), a file must stay open for
        // 30 s / MAX_SPLIT_SPEEDUP = 600 ms: one split.
        assert_eq!(files_of_stretched_clip(1), 2);
    }

    #[test]
    fn flv_split_is_packet_exact() {
        split_exactly(Format::Flv, &livetape_testkit::CLIP_10S, 2, 5, (300, 470));
    }

    #[test]
    fn mp4_split_is_packet_exact() {
        split_exactly(Format::Mp4, &livetape_testkit::CLIP_10S, 2, 5, (300, 470));
    }

    #[test]
    fn flv_split_60s() {
        split_exactly(
            Format::Flv,
            &livetape_testkit::CLIP_60S,
            30,
            2,
            (1800, 2814),
        );
    }

    /// Disk full during finalize: the spool itself is adopted as the final file, and a crash
    /// right after that is recovered from the adopted file. Needs root (a real tmpfs).
    #[test]
    fn finalize_adopts_the_spool_when_the_disk_is_full() {
        let mnt = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2500k", "tmpfs"])
            .arg(mnt.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs needs root (CI runs as root)");
        struct Unmount<'a>(&'a Path);
        impl Drop for Unmount<'_> {
            fn drop(&mut self) {
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(self.0)
                    .status();
            }
        }
        let _u = Unmount(mnt.path());
        let storage = Storage::open(mnt.path()).unwrap();
        let template = RecordTemplate {
            name: "t".into(),
            formats: vec![Format::Flv],
            interval_s: 1800,
            resume_s: 0,
            hls_target_s: 10,
            storage_days: 0,
        };
        let ctx = RecordContext {
            appid: 1,
            domain: String::new(),
            appname: "live".into(),
            stream: "full".into(),
            sequence: "1".into(),
            stream_param: String::new(),
            callbacks: None,
            storage_days: 0,
            template_id: 0,
        };
        let mut rec = Recorder::new(ctx, &template, storage.spool_dir());
        let (mut closed, mut errors) = (Vec::new(), Vec::new());
        for (i, f) in fixture_frames(&livetape_testkit::CLIP_10S)
            .iter()
            .enumerate()
        {
            rec.push(f, 1_000_000 + i as i64, &mut closed, &mut errors);
        }
        rec.finish(2_000_000, &mut closed, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let c = closed.pop().unwrap();
        let spool = c.spool_path.clone();
        let spool_len = std::fs::metadata(&spool).unwrap().len();
        // 1.45 MB spool on a 2.5 MB disk: no room for a second copy.
        let done = finalize(c, &storage, "http://x", 0).unwrap_or_else(|e| panic!("{e}"));
        let dest = storage.root().join(&done.recording.path);
        assert!(!spool.exists(), "the spool was moved, not copied");
        assert_eq!(done.recording.size_bytes, spool_len);
        assert_eq!(probe(&dest), (300, 470));
        // A crash before the catalogue commit: recovery finds the adopted file.
        let found = recover::scan(&storage.spool_dir()).unwrap();
        let [recover::Found::Spool(again)] = <[_; 1]>::try_from(found).ok().unwrap() else {
            panic!("expected the adopted recording");
        };
        let redone = finalize(again, &storage, "http://x", 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(redone.recording.path, done.recording.path);
        assert_eq!(redone.recording.size_bytes, spool_len);
        assert!((9_900..=10_100).contains(&redone.recording.duration_ms));
    }
}
