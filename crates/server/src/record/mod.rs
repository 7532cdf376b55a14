//! Recorders: one per push, holding one open file per format of its template.
//!
//! Runs inside the publisher's connection task (no channel between ingest and recorder, so
//! backpressure is the TCP window and no frame can be dropped on the way). Each file is first a
//! *spool* in a crash-safe form (FLV / fragmented MP4, appended in batches); at close it is
//! *finalized* off the connection task (FLV gets its seek index, MP4 becomes faststart) and only
//! then catalogued. See ARCHITECTURE.md for the invariants.

mod finalize;
mod muxer;
pub mod recover;
mod resume;
mod spool;

pub use finalize::{ClosedFile, FinishedFile, finalize};
pub use resume::Parking;
/// The playlist file of an HLS recording (beside its segments).
pub const HLS_PLAYLIST_NAME: &str = muxer::HLS_PLAYLIST;

/// Tencent's numeric `file_format` in event 332's `record_detail`.
pub fn tencent_format_code(f: Format) -> i32 {
    match f {
        Format::Flv => 1,
        Format::Mp4 => 3,
        Format::Hls => 2,
        Format::Aac => 4,
    }
}

use crate::config::{Format, RecordTemplate};
use crate::metrics::{FileMeter, RecordMeters};
use bytes::Bytes;
use livetape_media::avc::AvcConfig;
use livetape_media::{MediaFrame, MediaKind, VideoPacket};
use muxer::Muxer;
use spool::Spool;
use std::path::PathBuf;
use std::sync::Arc;

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
    pub callbacks: Option<crate::config::CallbackTemplate>,
    /// The template's retention (days, 0 = forever), pinned like `callbacks`.
    #[serde(default)]
    pub storage_days: u64,
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

/// The latest codec headers, replayed at the start of every file so each file stands alone.
#[derive(Default, Clone)]
pub(crate) struct Headers {
    pub metadata: Option<Bytes>,
    pub video: Option<Bytes>,
    pub audio: Option<Bytes>,
}

struct OpenFile {
    file_id: String,
    spool: Spool,
    muxer: Muxer,
    started_wall_ms: i64,
    first_dts: u64,
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
}

struct Output {
    format: Format,
    file: Option<OpenFile>,
    /// Set when a write failed: the format stops for the rest of this push.
    failed: bool,
    /// The first file of this format was opened.
    started: bool,
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

pub struct Recorder {
    ctx: Arc<RecordContext>,
    spool_dir: PathBuf,
    interval_ms: u64,
    headers: Headers,
    outputs: Vec<Output>,
    /// A codec header changed mid-file: split at the next keyframe so each file has one config.
    split_pending: bool,
    has_video: bool,
    resume_ms: u64,
    /// Largest dts written, on the recording's (continuous) timeline.
    last_dts: Option<u64>,
    /// Added to every incoming dts: non-zero after a resumed push whose clock restarted.
    dts_offset: i64,
    /// A push resumed this recording; the offset is fixed at its first audio/video frame.
    resume_pending: bool,
    /// HLS outputs mark the reconnect with `EXT-X-DISCONTINUITY` at the next frame.
    discontinuity_pending: bool,
    hls_target_ms: u64,
    statuses: Vec<RecordStatus>,
    meters: RecordMeters,
}

/// Gap inserted between the last frame of a push and the first of the push that resumes it.
pub const RESUME_GAP_MS: u64 = 40;

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
                    started: false,
                })
                .collect(),
            split_pending: false,
            has_video: false,
            resume_ms: template.resume_s * 1000,
            last_dts: None,
            dts_offset: 0,
            resume_pending: false,
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
        self.resume_pending = self.last_dts.is_some();
        self.discontinuity_pending = self.resume_pending;
    }

    /// Codec name, width and height from the video sequence header.
    pub fn video_info(&self) -> Option<(String, u32, u32)> {
        video_info(&self.headers)
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
        let shifted;
        let frame = if frame.kind == MediaKind::Script {
            frame
        } else {
            if self.resume_pending {
                self.resume_pending = false;
                let next = self.last_dts.unwrap_or(0) + RESUME_GAP_MS;
                self.dts_offset = next as i64 - frame.dts_ms as i64;
            }
            if self.dts_offset == 0 {
                frame
            } else {
                let dts = (frame.dts_ms as i64 + self.dts_offset).max(0) as u64;
                shifted = MediaFrame::new(frame.kind, dts, frame.payload.clone());
                &shifted
            }
        };
        match frame.kind {
            MediaKind::Script => {
                self.headers.metadata = Some(frame.payload.clone());
                return;
            }
            MediaKind::Video => match frame.video() {
                Some(Ok(v)) if v.packet == VideoPacket::SequenceHeader => {
                    if self.headers.video.as_ref() != Some(&frame.payload) {
                        self.split_pending |= self.headers.video.is_some();
                        self.headers.video = Some(frame.payload.clone());
                    }
                    self.has_video = true;
                    return;
                }
                Some(Ok(v)) if v.packet == VideoPacket::Frame => self.has_video = true,
                // End-of-sequence, command frames and unparsable tags carry no picture.
                _ => return,
            },
            MediaKind::Audio => match frame.audio() {
                Some(Ok(a)) if a.is_sequence_header() => {
                    if self.headers.audio.as_ref() != Some(&frame.payload) {
                        self.split_pending |= self.headers.audio.is_some();
                        self.headers.audio = Some(frame.payload.clone());
                    }
                    return;
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
        self.last_dts = Some(self.last_dts.map_or(frame.dts_ms, |d| d.max(frame.dts_ms)));
        // A split point: a video keyframe, or any audio frame of an audio-only stream.
        let split_point = if self.has_video {
            frame.is_video_keyframe()
        } else {
            frame.kind == MediaKind::Audio
        };
        let split_now = self.split_pending && split_point;
        if split_now {
            self.split_pending = false;
        }
        let discontinuity = std::mem::take(&mut self.discontinuity_pending);
        for i in 0..self.outputs.len() {
            let out = &mut self.outputs[i];
            if out.failed {
                continue;
            }
            // HLS is one playlist per push session / resume window (Tencent §3): no splits.
            if let Some(f) = &out.file
                && out.format != Format::Hls
                && split_point
                && (split_now || frame.dts_ms.saturating_sub(f.first_dts) >= self.interval_ms)
                && let Some(f) = out.file.take()
            {
                match close_file(&self.ctx, &self.headers, out.format, f, now_ms) {
                    Ok(c) => closed.push(c),
                    Err(e) => errors.push(e),
                }
                crate::failpoint::hit("record.split");
            }
            if out.file.is_none() {
                match open_file(
                    &self.ctx,
                    &self.spool_dir,
                    out.format,
                    &self.headers,
                    frame.dts_ms,
                    self.hls_target_ms,
                    self.interval_ms,
                    now_ms,
                ) {
                    Ok(mut f) => {
                        f.meter = Some(FileMeter::new(&self.meters));
                        if !out.started {
                            out.started = true;
                            self.statuses.push(RecordStatus {
                                format: out.format,
                                kind: StatusKind::StartSucceeded,
                                file_id: Some(f.file_id.clone()),
                                error: None,
                            });
                        }
                        out.file = Some(f);
                    }
                    Err(e) => {
                        out.failed = true;
                        self.statuses.push(RecordStatus {
                            format: out.format,
                            kind: if out.started {
                                StatusKind::Error
                            } else {
                                StatusKind::StartFailed
                            },
                            file_id: None,
                            error: Some(e.to_string()),
                        });
                        errors.push(e);
                        continue;
                    }
                }
            }
            let Some(f) = out.file.as_mut() else { continue };
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
        // What was written stays a valid spool: close it so it is still catalogued.
        if let Some(f) = out.file.take()
            && let Ok(c) = close_file(&self.ctx, &self.headers, out.format, f, now_ms)
        {
            closed.push(c);
        }
    }

    /// Recording is refused for this push (e.g. the disk is below its free-space floor): every
    /// format reports `record_start_failed` and nothing is written.
    pub fn refuse(&mut self, reason: &str) {
        for out in &mut self.outputs {
            out.failed = true;
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
        for out in &mut self.outputs {
            if out.failed {
                continue;
            }
            out.failed = true;
            let file_id = out.file.as_ref().map(|f| f.file_id.clone());
            if let Some(f) = out.file.take() {
                match close_file(&self.ctx, &self.headers, out.format, f, now_ms) {
                    Ok(c) => closed.push(c),
                    Err(e) => errors.push(e),
                }
            }
            if out.started {
                self.statuses.push(RecordStatus {
                    format: out.format,
                    kind: StatusKind::Error,
                    file_id,
                    error: Some(reason.to_owned()),
                });
            }
        }
    }

    /// Nothing recorded yet (a fresh recorder rather than a resumed one).
    pub fn last_dts_is_none(&self) -> bool {
        self.last_dts.is_none()
    }

    /// True once every format has stopped (or never started).
    pub fn stopped(&self) -> bool {
        self.outputs.iter().all(|o| o.failed)
    }

    /// Pushes everything buffered to the OS (the push ended but the files stay open, e.g.
    /// waiting out a reconnect window): a crash now loses nothing already received.
    pub fn flush(&mut self, errors: &mut Vec<RecordError>) {
        for out in &mut self.outputs {
            let Some(f) = out.file.as_mut() else { continue };
            let res = f.muxer.flush(&mut f.spool);
            f.sync_meter();
            if let Err(e) = res {
                errors.push(self::err(&self.ctx, out.format, &f.spool, e));
            }
        }
    }

    /// Closes every open file (push ended).
    pub fn finish(
        &mut self,
        now_ms: i64,
        closed: &mut Vec<ClosedFile>,
        errors: &mut Vec<RecordError>,
    ) {
        for out in &mut self.outputs {
            if let Some(f) = out.file.take() {
                match close_file(&self.ctx, &self.headers, out.format, f, now_ms) {
                    Ok(c) => closed.push(c),
                    Err(e) => errors.push(e),
                }
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

fn video_info(headers: &Headers) -> Option<(String, u32, u32)> {
    let sh = headers.video.as_ref()?;
    let tag = livetape_media::VideoTag::parse(sh).ok()?;
    let config = sh.get(tag.header_len..)?;
    let (w, h) = match tag.codec {
        livetape_media::VideoCodec::Avc => {
            AvcConfig::parse(config).map(|c| (c.width, c.height)).ok()
        }
        livetape_media::VideoCodec::Hevc => livetape_media::hevc::HevcConfig::parse(config)
            .map(|c| (c.width, c.height))
            .ok(),
        _ => None,
    }
    .unwrap_or((0, 0));
    Some((tag.codec.name().to_owned(), w, h))
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
    headers: &Headers,
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
            video: video_info(headers),
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
    .map_err(io)?;

    let muxer = Muxer::begin(
        format,
        headers,
        first_dts,
        hls_target_ms,
        interval_ms,
        &mut spool,
    )
    .map_err(|e| match e {
        muxer::WriteError::Io(source) => io(source),
        muxer::WriteError::Mux(reason) => RecordError::Mux {
            stream: ctx.stream.clone(),
            format: format.as_str(),
            reason,
        },
    })?;
    tracing::info!(stream = %ctx.stream, sequence = %ctx.sequence, file_id, format = format.as_str(), "recording file opened");
    Ok(OpenFile {
        file_id,
        spool,
        muxer,
        started_wall_ms: now_ms,
        first_dts,
        meter: None,
    })
}

fn close_file(
    ctx: &Arc<RecordContext>,
    headers: &Headers,
    format: Format,
    mut f: OpenFile,
    now_ms: i64,
) -> Result<ClosedFile, RecordError> {
    let plan = f
        .muxer
        .close(&mut f.spool)
        .and_then(|plan| f.spool.finish().map(|()| plan).map_err(Into::into));
    f.sync_meter();
    let plan = plan.map_err(|e| err(ctx, format, &f.spool, e))?;
    Ok(ClosedFile {
        video: video_info(headers),
        ctx: Arc::clone(ctx),
        format,
        file_id: f.file_id,
        spool_path: f.spool.path().to_path_buf(),
        started_wall_ms: f.started_wall_ms,
        ended_wall_ms: now_ms,
        media_start_ms: f.first_dts,
        plan,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;
    use livetape_flv::FlvReader;
    use std::path::Path;

    fn fixture_frames(name: &str) -> Vec<MediaFrame> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures")
            .join(name);
        let data = std::fs::read(p).unwrap();
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

    /// Splits at every keyframe at or after `interval`; the files add up to the input exactly.
    fn split_exactly(
        format: Format,
        clip: &str,
        interval_s: u64,
        want_files: usize,
        want: (u64, u64),
    ) {
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
        };
        let mut rec = Recorder::new(ctx, &template, storage.spool_dir());
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

    #[test]
    fn flv_split_is_packet_exact() {
        split_exactly(Format::Flv, "clip-10s-1M.flv", 2, 5, (300, 470));
    }

    #[test]
    fn mp4_split_is_packet_exact() {
        split_exactly(Format::Mp4, "clip-10s-1M.flv", 2, 5, (300, 470));
    }

    #[test]
    fn flv_split_60s() {
        split_exactly(Format::Flv, "clip-60s.flv", 30, 2, (1800, 2814));
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
        };
        let mut rec = Recorder::new(ctx, &template, storage.spool_dir());
        let (mut closed, mut errors) = (Vec::new(), Vec::new());
        for (i, f) in fixture_frames("clip-10s-1M.flv").iter().enumerate() {
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
