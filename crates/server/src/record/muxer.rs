//! Adapts the sans-IO format crates to a spool file.

use super::Headers;
use super::spool::Spool;
use crate::model::Format;
use bytes::Bytes;
use livetape_flv::{FlvFileWriter, FlvSink};
use livetape_hls::{HlsConfig, HlsOutput, HlsWriter};
use livetape_media::{AudioCodec, MediaFrame, MediaKind, VideoCodec};
use livetape_mp4::{AudioTrack, FragmentWriter, VideoTrack};
use std::io;
use std::path::Path;

pub(crate) enum WriteError {
    Io(io::Error),
    Mux(String),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => e.fmt(f),
            Self::Mux(reason) => f.write_str(reason),
        }
    }
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// The FLV writer emits through an infallible sink; the spool keeps the first IO error and
/// reports it after the call.
struct SpoolSink<'a> {
    spool: &'a mut Spool,
    error: Option<io::Error>,
}

impl FlvSink for SpoolSink<'_> {
    fn put_slice(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            let r = self.spool.append(bytes);
            self.keep_error(r);
        }
    }
    fn put_bytes(&mut self, bytes: Bytes) {
        // Frame payloads: queued as they are, shared with the socket buffer.
        if self.error.is_none() {
            let r = self.spool.append_bytes(bytes);
            self.keep_error(r);
        }
    }
}

impl SpoolSink<'_> {
    fn keep_error(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            self.error = Some(e);
        }
    }

    fn done(self) -> Result<(), WriteError> {
        self.error.map_or(Ok(()), |e| Err(WriteError::Io(e)))
    }
}

/// What a new file starts with: the tracks it records and, for FLV, the publisher's metadata
/// and the configuration tags of the tracks only FLV keeps.
pub(crate) struct FileStart<'a> {
    pub tracks: &'a FileTracks,
    pub metadata: Option<&'a Bytes>,
    pub extra: &'a [MediaFrame],
}

/// The tracks one file records: the default tracks' sequence headers (tag bodies) the format
/// can hold. A codec without a sequence header (MP3, legacy video) is known by its codec alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileTracks {
    pub video: Option<Bytes>,
    pub audio: Option<Bytes>,
    pub video_codec: Option<VideoCodec>,
    pub audio_codec: Option<AudioCodec>,
}

impl FileTracks {
    pub fn is_empty(&self) -> bool {
        self.video_codec.is_none() && self.audio_codec.is_none()
    }

    /// What `format` records of a stream with these headers, and why it leaves out the rest
    /// (one line per track left out, for event 332).
    pub fn for_format(format: Format, h: &Headers) -> (Self, Vec<String>) {
        let mut t = Self::default();
        let mut left_out = Vec::new();
        let name = format.as_str();
        if let Some(codec) = h.video_codec
            && format != Format::Aac
        {
            let ok = match format {
                Format::Flv => Ok(()),
                _ => video_fits(codec, h.video.as_ref()),
            };
            match ok {
                Ok(()) => (t.video, t.video_codec) = (h.video.clone(), Some(codec)),
                Err(why) => left_out.push(format!(
                    "{} video is not recorded in {name}: {why}",
                    codec.name()
                )),
            }
        }
        if let Some(codec) = h.audio_codec {
            let ok = match format {
                Format::Flv => Ok(()),
                _ => audio_fits(codec, h.audio.as_ref()),
            };
            match ok {
                Ok(()) => (t.audio, t.audio_codec) = (h.audio.clone(), Some(codec)),
                Err(why) => left_out.push(format!(
                    "{} audio is not recorded in {name}: {why}",
                    codec.name()
                )),
            }
        }
        // Other E-RTMP tracks: FLV keeps them; the others record the default track only.
        for ((kind, track, packet), f) in &h.extra {
            if format == Format::Flv
                || *packet != 0
                || (format == Format::Aac && *kind != MediaKind::Audio)
            {
                continue;
            }
            let codec = match kind {
                MediaKind::Video => f.video().and_then(Result::ok).map(|v| v.codec.name()),
                _ => f.audio().and_then(Result::ok).map(|a| a.codec.name()),
            };
            let what = if *kind == MediaKind::Video {
                "video"
            } else {
                "audio"
            };
            left_out.push(format!(
                "{} {what} track {track} is not recorded in {name}: it keeps the default track only (flv keeps every track)",
                codec.unwrap_or("unknown")
            ));
        }
        (t, left_out)
    }
}

/// MP4 and MPEG-TS (HLS) carry H.264 and H.265 with a valid configuration record.
fn video_fits(codec: VideoCodec, sh: Option<&Bytes>) -> Result<(), String> {
    let config = sh
        .and_then(|sh| livetape_media::VideoTag::parse(sh).ok().map(|t| t.data(sh)))
        .unwrap_or_default();
    let parsed = match codec {
        VideoCodec::Avc => livetape_media::avc::AvcConfig::parse(config).map(drop),
        VideoCodec::Hevc => livetape_media::hevc::HevcConfig::parse(config).map(drop),
        _ => return Err("only h264 and h265 are supported".into()),
    };
    parsed.map_err(|e| format!("bad sequence header ({e})"))
}

/// MP4, M4A and MPEG-TS (HLS) carry AAC with a valid AudioSpecificConfig.
fn audio_fits(codec: AudioCodec, sh: Option<&Bytes>) -> Result<(), String> {
    if codec != AudioCodec::Aac {
        return Err("only aac is supported".into());
    }
    let config = sh
        .and_then(|sh| livetape_media::AudioTag::parse(sh).ok().map(|t| t.data(sh)))
        .unwrap_or_default();
    livetape_media::aac::AacConfig::parse(config)
        .map(drop)
        .map_err(|e| format!("bad sequence header ({e})"))
}

pub(crate) enum Muxer {
    Flv(FlvFileWriter),
    Mp4 {
        writer: FragmentWriter,
        pieces: Vec<Bytes>,
    },
    Hls {
        // Boxed: the TS muxer state is several times the size of the other variants.
        writer: Box<HlsWriter>,
        out: HlsOutput,
    },
}

/// Keyframe index entries an FLV spool reserves room for, so its final metadata is written
/// in place instead of copying the file: one per second of the split interval (GOPs of 1 s
/// or longer), at most [`MAX_INDEX_RESERVE`]. A file with more keyframes is copied instead.
fn index_reserve(interval_ms: u64) -> usize {
    match interval_ms / 1000 {
        0 => MAX_INDEX_RESERVE,
        s => usize::try_from(s)
            .unwrap_or(usize::MAX)
            .min(MAX_INDEX_RESERVE),
    }
}

/// 4096 entries ≈ 74 KiB of zero padding at most in a file's metadata tag.
const MAX_INDEX_RESERVE: usize = 4096;

/// What finalize needs besides the spool itself.
pub(crate) enum ClosePlan {
    Flv(livetape_flv::FinalizePlan),
    /// The MP4 plan is derived by scanning the spool (the same path crash recovery takes).
    Mp4,
    /// A spool from an earlier run: rebuild the plan from the spool alone.
    Recover,
    /// HLS: the spool directory is finalized in place and renamed (see finalize).
    Hls {
        segments: Vec<livetape_hls::SegmentInfo>,
    },
}

pub(crate) struct ResolvedPlan {
    pub prefix: Bytes,
    pub ranges: Vec<(u64, u64)>,
    pub duration_ms: u64,
    /// Writing `prefix` over the spool's head makes the spool the final file (FLV with room
    /// reserved for its metadata): no copy.
    pub in_place: bool,
    /// Not a single frame: nothing to catalogue.
    pub empty: bool,
}

impl ResolvedPlan {
    const EMPTY: ResolvedPlan = ResolvedPlan {
        prefix: Bytes::new(),
        ranges: Vec::new(),
        duration_ms: 0,
        in_place: false,
        empty: true,
    };
}

/// Why a spool's plan could not be made: its file could not be read (worth retrying), or its
/// content is malformed (never will be).
pub(crate) enum PlanError {
    Io(io::Error),
    Malformed(String),
}

impl ClosePlan {
    pub fn resolve(self, format: Format, spool: &Path) -> Result<ResolvedPlan, PlanError> {
        // A spool whose very first write failed holds nothing, not even a header.
        if matches!(self, Self::Recover)
            && std::fs::metadata(spool).map_err(PlanError::Io)?.len() == 0
        {
            return Ok(ResolvedPlan::EMPTY);
        }
        match self {
            Self::Recover if format == Format::Flv => {
                let p = recover_flv(spool)?;
                Ok(ResolvedPlan {
                    in_place: p.in_place(),
                    empty: p.media_frames == 0,
                    prefix: p.prefix,
                    ranges: vec![(p.copy_from, p.copy_len)],
                    duration_ms: p.duration_ms,
                })
            }
            Self::Flv(p) => Ok(ResolvedPlan {
                in_place: p.in_place(),
                empty: p.media_frames == 0,
                prefix: p.prefix,
                ranges: vec![(p.copy_from, p.copy_len)],
                duration_ms: p.duration_ms,
            }),
            Self::Hls { .. } => Err(PlanError::Malformed("an HLS spool is not copied".into())),
            Self::Recover if format == Format::Hls => {
                Err(PlanError::Malformed("an HLS spool is not copied".into()))
            }
            Self::Mp4 | Self::Recover => {
                let Some(p) = plan_mp4(spool)? else {
                    return Ok(ResolvedPlan::EMPTY);
                };
                Ok(ResolvedPlan {
                    prefix: p.prefix,
                    ranges: p.copy_ranges.iter().map(|r| (r.offset, r.len)).collect(),
                    duration_ms: p.duration_ms,
                    in_place: false,
                    empty: false,
                })
            }
        }
    }
}

/// Reads an FLV spool to its last complete tag (a torn tail is left out).
fn recover_flv(spool: &Path) -> Result<livetape_flv::FinalizePlan, PlanError> {
    use std::io::Read;
    let ctx = PlanError::Io;
    let mut f = std::fs::File::open(spool).map_err(ctx)?;
    let mut rec = FlvFileWriter::recover();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(ctx)?;
        if n == 0 {
            break;
        }
        rec.feed(&buf[..n]);
    }
    let r = rec
        .finish()
        .map_err(|e| PlanError::Malformed(e.to_string()))?;
    if r.torn_bytes > 0 {
        tracing::info!(spool = %spool.display(), torn_bytes = r.torn_bytes, "dropped a torn tail");
    }
    Ok(r.writer.finalize_plan())
}

/// Drives the sans-IO spool scanner over the file: it asks only for box headers and
/// `moov`/`moof` boxes, never the media payload.
/// `None`: the spool holds no sample.
fn plan_mp4(spool: &Path) -> Result<Option<livetape_mp4::FinalizePlan>, PlanError> {
    use std::io::{Read, Seek, SeekFrom};
    let ctx = PlanError::Io;
    let mut f = std::fs::File::open(spool).map_err(ctx)?;
    let len = f.metadata().map_err(ctx)?.len();
    let mut scanner = livetape_mp4::SpoolScanner::new(len);
    let mut buf = Vec::new();
    while let livetape_mp4::ScanStep::Read { offset, len } = scanner.next_step() {
        buf.resize(len, 0);
        f.seek(SeekFrom::Start(offset)).map_err(ctx)?;
        f.read_exact(&mut buf).map_err(ctx)?;
        scanner
            .feed(&buf)
            .map_err(|e| PlanError::Malformed(e.to_string()))?;
    }
    match scanner.finish() {
        Ok(p) => Ok(Some(p)),
        Err(livetape_mp4::Mp4Error::Empty) => Ok(None),
        Err(e) => Err(PlanError::Malformed(e.to_string())),
    }
}

/// Performs what one `HlsWriter` call produced: finish a segment (and republish the
/// playlist), open the next, append the bytes.
fn drain_hls(writer: &HlsWriter, out: &mut HlsOutput, spool: &mut Spool) -> io::Result<()> {
    if out.closed.take().is_some() {
        spool.flush()?;
        // An EVENT playlist of the closed segments: what a crash recovery would rebuild.
        spool.write_beside(HLS_PLAYLIST, writer.playlist(false).as_bytes())?;
    }
    if let Some(opened) = out.opened.take() {
        spool.open_segment(&opened.uri)?;
    }
    if !out.data.is_empty() {
        spool.append(&out.data)?;
        out.data.clear();
    }
    Ok(())
}

/// Name of the playlist inside an HLS recording's directory.
pub const HLS_PLAYLIST: &str = "playlist.m3u8";

impl Muxer {
    /// HLS only: the next segment follows a reconnect (`EXT-X-DISCONTINUITY`).
    pub fn discontinuity(&mut self, spool: &mut Spool) -> Result<(), WriteError> {
        if let Self::Hls { writer, out } = self {
            writer.mark_discontinuity(out);
            drain_hls(writer, out, spool)?;
        }
        Ok(())
    }

    pub fn begin(
        format: Format,
        start: &FileStart<'_>,
        first_dts: u64,
        hls_target_ms: u64,
        interval_ms: u64,
        spool: &mut Spool,
    ) -> Result<Self, WriteError> {
        let tracks = start.tracks;
        match format {
            Format::Hls => {
                let mut writer = HlsWriter::new(HlsConfig {
                    target_duration_ms: hls_target_ms,
                });
                let mut out = HlsOutput::default();
                // The writer learns the tracks from the sequence headers, as frames.
                for (kind, sh) in [
                    (MediaKind::Video, &tracks.video),
                    (MediaKind::Audio, &tracks.audio),
                ] {
                    if let Some(sh) = sh {
                        let f = MediaFrame::new(kind, first_dts, sh.clone());
                        writer
                            .push(&f, &mut out)
                            .map_err(|e| WriteError::Mux(e.to_string()))?;
                    }
                }
                drain_hls(&writer, &mut out, spool)?;
                Ok(Self::Hls {
                    writer: Box::new(writer),
                    out,
                })
            }
            Format::Flv => {
                let mut sink = SpoolSink { spool, error: None };
                let mut w = FlvFileWriter::start(
                    first_dts,
                    start.metadata,
                    tracks.video.as_ref(),
                    tracks.audio.as_ref(),
                    livetape_flv::metadata_reserve(index_reserve(interval_ms)),
                    &mut sink,
                )
                .map_err(|e| WriteError::Mux(e.to_string()))?;
                // Other E-RTMP tracks' configurations and channel layouts: FLV keeps them.
                for f in start.extra {
                    w.push(
                        &MediaFrame::new(f.kind, first_dts, f.payload.clone()),
                        &mut sink,
                    )
                    .map_err(|e| WriteError::Mux(e.to_string()))?;
                }
                sink.done()?;
                Ok(Self::Flv(w))
            }
            Format::Mp4 | Format::Aac => {
                let payload =
                    |b: &Bytes| -> Result<(Bytes, livetape_media::VideoCodec), WriteError> {
                        let tag = livetape_media::VideoTag::parse(b)
                            .map_err(|e| WriteError::Mux(e.to_string()))?;
                        Ok((b.slice(tag.header_len..tag.data_end), tag.codec))
                    };
                let video = match tracks.video.as_ref() {
                    Some(sh) if format == Format::Mp4 => {
                        let (config, codec) = payload(sh)?;
                        let track = match codec {
                            livetape_media::VideoCodec::Avc => VideoTrack::avc(config),
                            livetape_media::VideoCodec::Hevc => VideoTrack::hevc(config),
                            other => {
                                return Err(WriteError::Mux(format!(
                                    "{} video in MP4 is not supported",
                                    other.name()
                                )));
                            }
                        };
                        Some(track.map_err(|e| WriteError::Mux(e.to_string()))?)
                    }
                    _ => None,
                };
                let audio = tracks
                    .audio
                    .as_ref()
                    .map(|sh| {
                        let tag = livetape_media::AudioTag::parse(sh)
                            .map_err(|e| WriteError::Mux(e.to_string()))?;
                        AudioTrack::aac(sh.slice(tag.header_len..tag.data_end))
                            .map_err(|e| WriteError::Mux(e.to_string()))
                    })
                    .transpose()?;
                let writer = FragmentWriter::new(video, audio, first_dts)
                    .map_err(|e| WriteError::Mux(e.to_string()))?;
                spool.append(&writer.init_segment())?;
                Ok(Self::Mp4 {
                    writer,
                    pieces: Vec::with_capacity(64),
                })
            }
        }
    }

    pub fn push(&mut self, frame: &MediaFrame, spool: &mut Spool) -> Result<(), WriteError> {
        match self {
            Self::Flv(w) => {
                let mut sink = SpoolSink { spool, error: None };
                w.push(frame, &mut sink)
                    .map_err(|e| WriteError::Mux(e.to_string()))?;
                sink.done()
            }
            Self::Hls { writer, out } => {
                writer
                    .push(frame, out)
                    .map_err(|e| WriteError::Mux(e.to_string()))?;
                drain_hls(writer, out, spool).map_err(Into::into)
            }
            Self::Mp4 { writer, pieces } => {
                if writer.should_flush_before(frame) {
                    writer.flush(pieces);
                    spool.append_all(pieces)?;
                    pieces.clear();
                }
                writer
                    .push(frame)
                    .map(drop)
                    .map_err(|e| WriteError::Mux(e.to_string()))
            }
        }
    }

    /// Writes out what is buffered (a partial MP4 fragment, the spool's buffer).
    pub fn flush(&mut self, spool: &mut Spool) -> Result<(), WriteError> {
        if let Self::Mp4 { writer, pieces } = self {
            writer.flush(pieces);
            spool.append_all(pieces)?;
            pieces.clear();
        }
        spool.flush().map_err(Into::into)
    }

    pub fn close(&mut self, spool: &mut Spool) -> Result<ClosePlan, WriteError> {
        match self {
            Self::Flv(w) => Ok(ClosePlan::Flv(w.finalize_plan())),
            Self::Mp4 { writer, pieces } => {
                writer.flush(pieces);
                spool.append_all(pieces)?;
                pieces.clear();
                Ok(ClosePlan::Mp4)
            }
            Self::Hls { writer, out } => {
                writer.finish(out);
                drain_hls(writer, out, spool)?;
                Ok(ClosePlan::Hls {
                    segments: writer.segments().to_vec(),
                })
            }
        }
    }
}
