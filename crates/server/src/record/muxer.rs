//! Adapts the sans-IO format crates to a spool file.

use super::Headers;
use super::spool::Spool;
use crate::config::Format;
use bytes::Bytes;
use livetape_flv::{FlvFileWriter, FlvSink};
use livetape_hls::{HlsConfig, HlsOutput, HlsWriter};
use livetape_media::{MediaFrame, MediaKind};
use livetape_mp4::{AudioTrack, FragmentWriter, VideoTrack};
use std::io;
use std::path::Path;

pub(crate) enum WriteError {
    Io(io::Error),
    Mux(String),
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

impl ClosePlan {
    pub fn resolve(self, format: Format, spool: &Path) -> Result<ResolvedPlan, String> {
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
            Self::Hls { .. } => Err("an HLS spool is not copied".into()),
            Self::Recover if format == Format::Hls => Err("an HLS spool is not copied".into()),
            Self::Mp4 | Self::Recover => {
                let p = plan_mp4(spool)?;
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
fn recover_flv(spool: &Path) -> Result<livetape_flv::FinalizePlan, String> {
    use std::io::Read;
    let ctx = |e: std::io::Error| format!("{}: {e}", spool.display());
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
    let r = rec.finish().map_err(|e| e.to_string())?;
    if r.torn_bytes > 0 {
        tracing::info!(spool = %spool.display(), torn_bytes = r.torn_bytes, "dropped a torn tail");
    }
    Ok(r.writer.finalize_plan())
}

/// Drives the sans-IO spool scanner over the file: it asks only for box headers and
/// `moov`/`moof` boxes, never the media payload.
fn plan_mp4(spool: &Path) -> Result<livetape_mp4::FinalizePlan, String> {
    use std::io::{Read, Seek, SeekFrom};
    let ctx = |e: std::io::Error| format!("{}: {e}", spool.display());
    let mut f = std::fs::File::open(spool).map_err(ctx)?;
    let len = f.metadata().map_err(ctx)?.len();
    let mut scanner = livetape_mp4::SpoolScanner::new(len);
    let mut buf = Vec::new();
    while let livetape_mp4::ScanStep::Read { offset, len } = scanner.next_step() {
        buf.resize(len, 0);
        f.seek(SeekFrom::Start(offset)).map_err(ctx)?;
        f.read_exact(&mut buf).map_err(ctx)?;
        scanner.feed(&buf).map_err(|e| e.to_string())?;
    }
    scanner.finish().map_err(|e| e.to_string())
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
        headers: &Headers,
        first_dts: u64,
        hls_target_ms: u64,
        interval_ms: u64,
        spool: &mut Spool,
    ) -> Result<Self, WriteError> {
        match format {
            Format::Hls => {
                let mut writer = HlsWriter::new(HlsConfig {
                    target_duration_ms: hls_target_ms,
                });
                let mut out = HlsOutput::default();
                // The writer learns the tracks from the sequence headers, as frames.
                for (kind, sh) in [
                    (MediaKind::Video, &headers.video),
                    (MediaKind::Audio, &headers.audio),
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
                let w = FlvFileWriter::start(
                    first_dts,
                    headers.metadata.as_ref(),
                    headers.video.as_ref(),
                    headers.audio.as_ref(),
                    livetape_flv::metadata_reserve(index_reserve(interval_ms)),
                    &mut sink,
                )
                .map_err(|e| WriteError::Mux(e.to_string()))?;
                sink.done()?;
                Ok(Self::Flv(w))
            }
            Format::Mp4 | Format::Aac => {
                let payload = |b: &Bytes, skip: usize| b.slice(skip.min(b.len())..);
                if format == Format::Aac && headers.audio.is_none() {
                    return Err(WriteError::Mux(
                        "the stream has no AAC audio, so there is nothing to record as aac".into(),
                    ));
                }
                let video = match headers.video.as_ref() {
                    _ if format == Format::Aac => None,
                    None => None,
                    Some(sh) => {
                        let tag = livetape_media::VideoTag::parse(sh)
                            .map_err(|e| WriteError::Mux(e.to_string()))?;
                        let config = payload(sh, tag.header_len);
                        let track = match tag.codec {
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
                };
                let audio = headers
                    .audio
                    .as_ref()
                    .map(|sh| AudioTrack::aac(payload(sh, 2)))
                    .transpose()
                    .map_err(|e| WriteError::Mux(e.to_string()))?;
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
