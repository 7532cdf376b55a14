//! The recording spool writer, its finalisation plan and crash recovery.

use crate::amf0::{Amf0Value, script_name};
use crate::{
    FILE_HEADER_LEN, FlvError, FlvReader, FlvSink, FlvTag, MAX_TAG_DATA_SIZE, file_header,
    tag_header, tag_len, write_tag,
};
use bytes::{Bytes, BytesMut};
use livetape_media::aac::AacConfig;
use livetape_media::av1::Av1Config;
use livetape_media::avc::AvcConfig;
use livetape_media::hevc::HevcConfig;
use livetape_media::{
    AudioCodec, AudioPacket, AudioTag, MediaFrame, MediaKind, VideoCodec, VideoPacket, VideoTag,
};

/// Keyframe index entries kept. Past this the index is thinned to every 2nd, 4th, … keyframe so
/// a days-long recording's metadata tag stays small (100k entries ≈ 1.8 MB of AMF0).
pub const MAX_INDEXED_KEYFRAMES: usize = 100_000;

const METADATA_CREATOR: &str = "livetape";
/// `onMetaData` bytes besides the keyframe index (every field present, generous): see
/// [`metadata_reserve`].
const METADATA_FIXED_RESERVE: usize = 1024;
/// AMF0 bytes per keyframe index entry: one number in `filepositions`, one in `times`.
const KEYFRAME_ENTRY_BYTES: usize = 18;

/// Body bytes to reserve for the spool's `onMetaData` so that the final one, with a keyframe
/// index of up to `keyframes` entries, can be written over it in place (no copy of the file).
pub fn metadata_reserve(keyframes: usize) -> usize {
    METADATA_FIXED_RESERVE + KEYFRAME_ENTRY_BYTES * keyframes.min(MAX_INDEXED_KEYFRAMES)
}
/// Legacy FLV SoundRate values.
const LEGACY_AUDIO_RATES: [u32; 4] = [5512, 11025, 22050, 44100];

/// How to produce the final file: write `prefix`, then append spool bytes
/// `[copy_from, copy_from + copy_len)` verbatim (e.g. with `copy_file_range`). When the new
/// metadata fits the room the spool reserved for it, `prefix` is exactly as long as what it
/// replaces ([`FinalizePlan::in_place`]): writing it over the spool's first `copy_from` bytes
/// turns the spool itself into the final file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizePlan {
    /// FLV header + the new `onMetaData` tag + its PreviousTagSize.
    pub prefix: Bytes,
    pub copy_from: u64,
    pub copy_len: u64,
    pub final_len: u64,
    pub duration_ms: u64,
    /// Audio and video frames in the file (codec headers not counted): 0 means the spool
    /// holds nothing playable (e.g. a crash right after it was opened).
    pub media_frames: u64,
}

impl FinalizePlan {
    /// The prefix replaces the spool's head byte for byte: no copy needed.
    pub fn in_place(&self) -> bool {
        self.prefix.len() as u64 == self.copy_from
    }
}

/// What the spool tells us about the recording; everything the final `onMetaData` needs.
#[derive(Clone, Debug)]
struct Stats {
    has_audio: bool,
    has_video: bool,
    /// Legacy CodecID or, for Enhanced RTMP, the FourCC as a number (what E-RTMP specifies).
    video_codec_id: Option<u32>,
    audio_codec_id: Option<u32>,
    width: Option<f64>,
    height: Option<f64>,
    audio_sample_rate: Option<u32>,
    audio_sample_size: Option<u8>,
    stereo: Option<bool>,
    /// Set only for AAC, whose frame duration is known (1024 samples).
    aac_frame_ms: Option<f64>,
    publisher_framerate: Option<f64>,
    video_frames: u64,
    audio_frames: u64,
    first_video_ts: Option<u64>,
    last_video_ts: u64,
    last_audio_ts: Option<u64>,
    last_ts: u64,
    video_bytes: u64,
    audio_bytes: u64,
    /// (timestamp ms, spool offset of the tag header).
    keyframes: Vec<(u64, u64)>,
    keyframes_seen: u64,
    keyframe_stride: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            has_audio: false,
            has_video: false,
            video_codec_id: None,
            audio_codec_id: None,
            width: None,
            height: None,
            audio_sample_rate: None,
            audio_sample_size: None,
            stereo: None,
            aac_frame_ms: None,
            publisher_framerate: None,
            video_frames: 0,
            audio_frames: 0,
            first_video_ts: None,
            last_video_ts: 0,
            last_audio_ts: None,
            last_ts: 0,
            video_bytes: 0,
            audio_bytes: 0,
            keyframes: Vec::new(),
            keyframes_seen: 0,
            keyframe_stride: 1,
        }
    }
}

impl Stats {
    fn account(&mut self, kind: Option<MediaKind>, ts: u64, body: &[u8], offset: u64) {
        match kind {
            Some(MediaKind::Video) => self.account_video(ts, body, offset),
            Some(MediaKind::Audio) => self.account_audio(ts, body),
            Some(MediaKind::Script) | None => {}
        }
        self.last_ts = self.last_ts.max(ts);
    }

    fn account_video(&mut self, ts: u64, body: &[u8], offset: u64) {
        self.has_video = true;
        self.video_bytes += body.len() as u64;
        // Extra E-RTMP tracks ride along in the file; the metadata describes the default one.
        let Some(v) = VideoTag::parse(body).ok().filter(|v| v.track == 0) else {
            return;
        };
        // Enhanced RTMP: `videocodecid` is the FourCC as a number; legacy: the codec id.
        self.video_codec_id = Some(match (body[0] & 0x80 != 0, v.codec) {
            (false, _) => u32::from(body[0] & 0x0f),
            (true, VideoCodec::Avc) => u32::from_be_bytes(*b"avc1"),
            (true, VideoCodec::Hevc) => u32::from_be_bytes(*b"hvc1"),
            (true, VideoCodec::Av1) => u32::from_be_bytes(*b"av01"),
            (true, VideoCodec::Other(cc)) => cc,
        });
        match v.packet {
            VideoPacket::SequenceHeader => {
                let config = v.data(body);
                let dims = match v.codec {
                    VideoCodec::Avc => AvcConfig::parse(config).map(|c| (c.width, c.height)).ok(),
                    VideoCodec::Hevc => HevcConfig::parse(config).map(|c| (c.width, c.height)).ok(),
                    VideoCodec::Av1 => Av1Config::parse(config).map(|c| (c.width, c.height)).ok(),
                    VideoCodec::Other(_) => None,
                };
                if let Some((w, h)) = dims {
                    self.width = Some(f64::from(w));
                    self.height = Some(f64::from(h));
                }
            }
            VideoPacket::Frame => {
                self.video_frames += 1;
                self.first_video_ts.get_or_insert(ts);
                self.last_video_ts = ts;
            }
            _ => {}
        }
        // yamdi/flvmeta index every video tag flagged as a keyframe, sequence header included;
        // flv.js/mpegts.js rely on that and skip the first entry.
        if v.keyframe && matches!(v.packet, VideoPacket::SequenceHeader | VideoPacket::Frame) {
            self.index_keyframe(ts, offset);
        }
    }

    fn account_audio(&mut self, ts: u64, body: &[u8]) {
        self.has_audio = true;
        self.audio_bytes += body.len() as u64;
        let Some(a) = AudioTag::parse(body).ok().filter(|a| a.track == 0) else {
            return;
        };
        let Some(&b0) = body.first() else { return };
        self.audio_codec_id = Some(match (b0 >> 4, a.codec) {
            (9, AudioCodec::Aac) => u32::from_be_bytes(*b"mp4a"),
            (9, AudioCodec::Opus) => u32::from_be_bytes(*b"Opus"),
            (9, AudioCodec::Flac) => u32::from_be_bytes(*b"fLaC"),
            (9, AudioCodec::Mp3) => u32::from_be_bytes(*b".mp3"),
            (9, AudioCodec::Ac3) => u32::from_be_bytes(*b"ac-3"),
            (9, AudioCodec::Eac3) => u32::from_be_bytes(*b"ec-3"),
            (9, AudioCodec::Other(cc)) => cc,
            (format, _) => u32::from(format),
        });
        match a.packet {
            AudioPacket::SequenceHeader => {
                if a.codec == AudioCodec::Aac
                    && let Ok(c) = AacConfig::parse(a.data(body))
                {
                    self.audio_sample_rate = Some(c.sample_rate);
                    self.audio_sample_size = Some(16);
                    self.stereo = Some(c.channel_config != 1);
                    self.aac_frame_ms =
                        Some(f64::from(c.samples_per_frame()) * 1000.0 / f64::from(c.sample_rate));
                }
                return;
            }
            AudioPacket::Frame => {}
            _ => return,
        }
        if b0 >> 4 != 9 && a.codec != AudioCodec::Aac {
            // Legacy codecs describe themselves in every tag header.
            self.audio_sample_rate = Some(LEGACY_AUDIO_RATES[usize::from((b0 >> 2) & 3)]);
            self.audio_sample_size = Some(if b0 & 2 != 0 { 16 } else { 8 });
            self.stereo = Some(b0 & 1 != 0);
        }
        self.last_audio_ts = Some(ts);
        self.audio_frames += 1;
    }

    fn index_keyframe(&mut self, ts: u64, offset: u64) {
        let n = self.keyframes_seen;
        self.keyframes_seen += 1;
        if self.keyframes.len() >= MAX_INDEXED_KEYFRAMES {
            // Keep entries for keyframe numbers that are multiples of the doubled stride.
            let mut i = 0;
            self.keyframes.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.keyframe_stride *= 2;
        }
        if n.is_multiple_of(self.keyframe_stride) {
            self.keyframes.push((ts, offset));
        }
    }

    /// Picks framerate (and dimensions when the codec record did not give them) from a
    /// publisher's `onMetaData`; advisory, so malformed metadata is ignored.
    fn absorb_metadata(&mut self, body: &[u8]) {
        let mut rest = body;
        while !rest.is_empty() {
            let Ok((v, used)) = Amf0Value::decode_lenient(rest) else {
                return;
            };
            rest = rest.get(used..).unwrap_or_default();
            if !matches!(v, Amf0Value::Object(_) | Amf0Value::EcmaArray(_)) {
                continue;
            }
            let num = |k: &str| {
                v.get(k)
                    .and_then(Amf0Value::as_number)
                    .filter(|n| n.is_finite() && *n > 0.0 && *n < 100_000.0)
            };
            if let Some(f) = num("framerate").or_else(|| num("fps")) {
                self.publisher_framerate = Some(f);
            }
            if self.width.is_none() {
                self.width = num("width");
            }
            if self.height.is_none() {
                self.height = num("height");
            }
            return;
        }
    }

    fn framerate(&self) -> Option<f64> {
        self.publisher_framerate.or_else(|| {
            let span = self.last_video_ts.checked_sub(self.first_video_ts?)?;
            (self.video_frames >= 2 && span > 0)
                .then(|| (self.video_frames - 1) as f64 * 1000.0 / span as f64)
        })
    }

    /// End of the last sample: the last DTS plus one frame, per track.
    fn duration_ms(&self) -> u64 {
        let video_end = match self.first_video_ts {
            Some(first) if self.video_frames >= 2 => {
                let span = self.last_video_ts.saturating_sub(first);
                self.last_video_ts + span / (self.video_frames - 1)
            }
            _ => self.last_video_ts,
        };
        let audio_end = self
            .last_audio_ts
            .map_or(0, |t| t + self.aac_frame_ms.unwrap_or(0.0).round() as u64);
        video_end.max(audio_end).max(self.last_ts)
    }

    /// `onMetaData` fields. `fin` = (prefix_len, tags_start, final_len) for the final file;
    /// `None` for the spool's stub, which omits everything only known at the end.
    fn metadata(&self, fin: Option<(u64, u64, u64)>) -> Vec<u8> {
        let mut p: Vec<(String, Amf0Value)> = Vec::with_capacity(24);
        let mut put = |k: &str, v: Amf0Value| p.push((k.to_owned(), v));
        let secs = |ms: u64| Amf0Value::Number(ms as f64 / 1000.0);
        let num = Amf0Value::Number;
        let duration_ms = self.duration_ms();
        let dur_s = duration_ms as f64 / 1000.0;
        if fin.is_some() {
            put("hasMetadata", Amf0Value::Boolean(true));
        }
        put("hasVideo", Amf0Value::Boolean(self.has_video));
        put("hasAudio", Amf0Value::Boolean(self.has_audio));
        if fin.is_some() {
            put("duration", secs(duration_ms));
            put("lasttimestamp", secs(self.last_ts));
            if let Some(&(t, _)) = self.keyframes.last() {
                put("lastkeyframetimestamp", secs(t));
            }
        }
        if self.has_video {
            if let (Some(w), Some(h)) = (self.width, self.height) {
                put("width", num(w));
                put("height", num(h));
            }
            if fin.is_some() && dur_s > 0.0 {
                put(
                    "videodatarate",
                    num(self.video_bytes as f64 * 8.0 / 1000.0 / dur_s),
                );
            }
            if let Some(f) = self.framerate() {
                put("framerate", num(f));
            }
            if let Some(c) = self.video_codec_id {
                put("videocodecid", num(f64::from(c)));
            }
        }
        if self.has_audio {
            if fin.is_some() && dur_s > 0.0 {
                put(
                    "audiodatarate",
                    num(self.audio_bytes as f64 * 8.0 / 1000.0 / dur_s),
                );
            }
            if let Some(r) = self.audio_sample_rate {
                put("audiosamplerate", num(f64::from(r)));
            }
            if let Some(s) = self.audio_sample_size {
                put("audiosamplesize", num(f64::from(s)));
            }
            if let Some(s) = self.stereo {
                put("stereo", Amf0Value::Boolean(s));
            }
            if let Some(c) = self.audio_codec_id {
                put("audiocodecid", num(f64::from(c)));
            }
        }
        put(
            "metadatacreator",
            Amf0Value::String(METADATA_CREATOR.into()),
        );
        if let Some((prefix_len, tags_start, final_len)) = fin {
            let pos = |off: u64| (off.saturating_sub(tags_start) + prefix_len) as f64;
            put("filesize", num(final_len as f64));
            put(
                "hasKeyframes",
                Amf0Value::Boolean(!self.keyframes.is_empty()),
            );
            put("hasCuePoints", Amf0Value::Boolean(false));
            if let Some(&(_, off)) = self.keyframes.last() {
                put("lastkeyframelocation", num(pos(off)));
            }
            // Only these two keys: ffmpeg rejects a keyframes object with any other member.
            let (positions, times) = self
                .keyframes
                .iter()
                .map(|&(t, off)| (num(pos(off)), secs(t)))
                .unzip();
            put(
                "keyframes",
                Amf0Value::Object(vec![
                    ("filepositions".into(), Amf0Value::StrictArray(positions)),
                    ("times".into(), Amf0Value::StrictArray(times)),
                ]),
            );
        }
        let mut body = Vec::new();
        Amf0Value::String("onMetaData".into()).encode(&mut body);
        Amf0Value::EcmaArray(p).encode(&mut body);
        body
    }
}

/// Writes one recording spool and plans its finalisation. Sans-IO: every call hands byte pieces
/// to a [`FlvSink`]; the driver appends them to the spool file in order.
#[derive(Clone, Debug)]
pub struct FlvFileWriter {
    base_dts_ms: u64,
    spool_len: u64,
    /// Spool offset of the first tag after the spool's own `onMetaData`; the copy starts here.
    tags_start: u64,
    /// Body size of the spool's `onMetaData` tag (its own metadata plus zero padding): a final
    /// metadata body up to this size is written in place.
    meta_capacity: u64,
    stats: Stats,
}

impl FlvFileWriter {
    /// Starts a spool: FLV header, `onMetaData` (the publisher's, or a stub derived from the
    /// sequence headers), then the sequence headers at timestamp 0. Timestamps of pushed frames
    /// are `dts_ms - base_dts_ms` (the file's first frame should be at 0).
    ///
    /// The metadata tag is padded with zeros after its AMF0 value to `metadata_reserve` body
    /// bytes (see [`metadata_reserve`]; players parse the value and skip to the tag's end), so
    /// the final metadata can later be written over it in place.
    ///
    /// A publisher's `@setDataFrame` wrapper is stripped (zero-copy). Fails, writing nothing,
    /// only if a body exceeds the 24-bit tag size.
    pub fn start<S: FlvSink + ?Sized>(
        base_dts_ms: u64,
        metadata: Option<&Bytes>,
        video_seq_header: Option<&Bytes>,
        audio_seq_header: Option<&Bytes>,
        metadata_reserve: usize,
        out: &mut S,
    ) -> Result<Self, FlvError> {
        let metadata_reserve = metadata_reserve.min(MAX_TAG_DATA_SIZE as usize);
        let metadata = metadata.and_then(publisher_on_metadata);
        // Check sizes before emitting anything so an error leaves the sink untouched.
        for body in [metadata.as_ref(), video_seq_header, audio_seq_header]
            .into_iter()
            .flatten()
        {
            if body.len() > MAX_TAG_DATA_SIZE as usize {
                return Err(FlvError::TagTooLarge {
                    offset: 0,
                    size: u32::try_from(body.len()).unwrap_or(u32::MAX),
                    max: MAX_TAG_DATA_SIZE,
                });
            }
        }
        // Probe the codec records first: the stub metadata precedes them in the file.
        let mut probe = Stats::default();
        for (kind, sh) in [
            (MediaKind::Video, video_seq_header),
            (MediaKind::Audio, audio_seq_header),
        ] {
            if let Some(sh) = sh {
                probe.account(Some(kind), 0, sh, 0);
            }
        }
        let metadata = match metadata {
            Some(m) => {
                probe.absorb_metadata(&m);
                m
            }
            None => Bytes::from(probe.metadata(None)),
        };
        let (has_audio, has_video) = match (audio_seq_header, video_seq_header) {
            // Nothing known yet (e.g. MP3, or headers still to come): announce both.
            (None, None) => (true, true),
            (a, v) => (a.is_some(), v.is_some()),
        };
        out.put_slice(&file_header(has_audio, has_video));
        let capacity = metadata.len().max(metadata_reserve);
        let mut w = Self {
            base_dts_ms,
            spool_len: FILE_HEADER_LEN as u64,
            tags_start: 0,
            meta_capacity: capacity as u64,
            stats: Stats {
                publisher_framerate: probe.publisher_framerate,
                ..Stats::default()
            },
        };
        let metadata = if capacity > metadata.len() {
            let mut padded = BytesMut::with_capacity(capacity);
            padded.extend_from_slice(&metadata);
            padded.resize(capacity, 0);
            padded.freeze()
        } else {
            metadata
        };
        w.spool_len += write_tag(out, MediaKind::Script, 0, &metadata, w.spool_len)?;
        w.tags_start = w.spool_len;
        for (kind, sh) in [
            (MediaKind::Video, video_seq_header),
            (MediaKind::Audio, audio_seq_header),
        ] {
            if let Some(sh) = sh {
                let offset = w.spool_len;
                w.spool_len += write_tag(out, kind, 0, sh, offset)?;
                w.stats.account(Some(kind), 0, sh, offset);
            }
        }
        // Dimensions from a publisher's metadata only fill gaps the codec record left.
        if w.stats.width.is_none() {
            (w.stats.width, w.stats.height) = (probe.width, probe.height);
        }
        Ok(w)
    }

    /// Appends one frame as a tag (payload zero-copy). `onMetaData`/`@setDataFrame` script
    /// frames are absorbed (their framerate is kept) rather than written: a second
    /// `onMetaData` in the tag stream would confuse players' seeking. Other script data (cue
    /// points, captions) is written.
    pub fn push<S: FlvSink + ?Sized>(
        &mut self,
        frame: &MediaFrame,
        out: &mut S,
    ) -> Result<(), FlvError> {
        if frame.kind == MediaKind::Script
            && let Some((name, _)) = script_name(&frame.payload)
            && (name == b"onMetaData" || name == b"@setDataFrame")
        {
            self.stats.absorb_metadata(&frame.payload);
            return Ok(());
        }
        let ts = frame.dts_ms.saturating_sub(self.base_dts_ms);
        let offset = self.spool_len;
        // FLV timestamps are 32-bit: wraps after 49.7 days of one file, as every FLV does.
        self.spool_len += write_tag(out, frame.kind, ts as u32, &frame.payload, offset)?;
        self.stats
            .account(Some(frame.kind), ts, &frame.payload, offset);
        Ok(())
    }

    /// Starts crash recovery of a spool; see [`Recovery`].
    pub fn recover() -> Recovery {
        Recovery::new()
    }

    pub fn base_dts_ms(&self) -> u64 {
        self.base_dts_ms
    }

    /// Bytes written to the spool so far.
    pub fn spool_len(&self) -> u64 {
        self.spool_len
    }

    /// Spool offset where the verbatim copy into the final file starts.
    pub fn tags_start(&self) -> u64 {
        self.tags_start
    }

    /// Duration so far: last timestamp plus one frame (file-relative ms).
    pub fn duration_ms(&self) -> u64 {
        self.stats.duration_ms()
    }

    /// Keyframe index entries (sequence headers flagged as keyframes included).
    pub fn keyframe_count(&self) -> usize {
        self.stats.keyframes.len()
    }

    pub fn has_audio(&self) -> bool {
        self.stats.has_audio
    }

    pub fn has_video(&self) -> bool {
        self.stats.has_video
    }

    /// The final file: a new header and `onMetaData` (duration, codec fields, filesize and the
    /// `keyframes {filepositions, times}` index) followed by the spool's tags verbatim.
    pub fn finalize_plan(&self) -> FinalizePlan {
        let copy_len = self.spool_len - self.tags_start;
        // AMF0 numbers are fixed-size, so the metadata length does not depend on the values:
        // a first pass with placeholder positions gives the prefix length.
        let draft = self.stats.metadata(Some((0, self.tags_start, 0)));
        // Padded to the spool's metadata tag when it fits: the prefix then replaces the
        // spool's head exactly and the spool becomes the final file without a copy.
        let body_len = if draft.len() as u64 <= self.meta_capacity {
            self.meta_capacity as usize
        } else {
            draft.len()
        };
        let prefix_len = FILE_HEADER_LEN as u64 + tag_len(body_len as u32);
        let final_len = prefix_len + copy_len;
        let mut body = self
            .stats
            .metadata(Some((prefix_len, self.tags_start, final_len)));
        debug_assert_eq!(body.len(), draft.len());
        body.resize(body_len, 0);
        let size = body.len() as u32;
        let mut prefix = BytesMut::with_capacity(prefix_len as usize);
        prefix.extend_from_slice(&file_header(self.stats.has_audio, self.stats.has_video));
        prefix.extend_from_slice(&tag_header(MediaKind::Script, 0, size));
        prefix.extend_from_slice(&body);
        prefix.extend_from_slice(&(size + crate::TAG_HEADER_LEN as u32).to_be_bytes());
        FinalizePlan {
            prefix: prefix.freeze(),
            copy_from: self.tags_start,
            copy_len,
            final_len,
            duration_ms: self.stats.duration_ms(),
            media_frames: self.stats.video_frames + self.stats.audio_frames,
        }
    }
}

/// The publisher's metadata as an `onMetaData` script body, unwrapping `@setDataFrame`
/// (zero-copy); `None` if it is some other script message.
fn publisher_on_metadata(body: &Bytes) -> Option<Bytes> {
    let (name, used) = script_name(body)?;
    let body = if name == b"@setDataFrame" {
        body.slice(used..)
    } else {
        body.clone()
    };
    (script_name(&body)?.0 == b"onMetaData").then_some(body)
}

/// Rebuilds a writer from an existing spool after a crash. Feed the spool bytes in order, in
/// chunks of any size, then [`Recovery::finish`]. Memory holds at most one tag plus the chunk
/// being fed.
#[derive(Debug, Default)]
pub struct Recovery {
    reader: FlvReader,
    writer: Option<FlvFileWriter>,
    stopped_by: Option<FlvError>,
    fed: u64,
}

/// The outcome of [`Recovery::finish`].
#[derive(Debug)]
pub struct Recovered {
    /// State as if the spool had been written up to `valid_len`; `finalize_plan()` on it gives
    /// the final file. Its base is 0 (spool timestamps are already rebased).
    pub writer: FlvFileWriter,
    /// End of the last complete tag: truncate the spool here before copying.
    pub valid_len: u64,
    /// Bytes after `valid_len` (a torn tag, or data after corruption).
    pub torn_bytes: u64,
    /// Why reading stopped early, if it was corruption rather than a torn tail.
    pub stopped_by: Option<FlvError>,
}

impl Recovery {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, data: &[u8]) {
        self.fed += data.len() as u64;
        if self.stopped_by.is_some() {
            return;
        }
        self.reader.feed(data);
        while let Some(r) = self.reader.next_tag() {
            match r {
                Ok(tag) => self.take(tag),
                Err(e) => {
                    self.stopped_by = Some(e);
                    return;
                }
            }
        }
    }

    fn take(&mut self, tag: FlvTag) {
        let end = tag.end_offset();
        if self.writer.is_none() {
            let mut w = FlvFileWriter {
                base_dts_ms: 0,
                spool_len: tag.offset,
                tags_start: tag.offset,
                meta_capacity: 0,
                stats: Stats::default(),
            };
            // Our spools always open with an onMetaData tag, which the final file replaces.
            let is_metadata = tag.kind() == Some(MediaKind::Script)
                && script_name(&tag.body).is_some_and(|(n, _)| n == b"onMetaData");
            if is_metadata {
                w.stats.absorb_metadata(&tag.body);
                w.spool_len = end;
                w.tags_start = end;
                w.meta_capacity = tag.body.len() as u64;
            }
            self.writer = Some(w);
            if is_metadata {
                return;
            }
        }
        if let Some(w) = &mut self.writer {
            w.stats.account(
                tag.kind(),
                u64::from(tag.timestamp_ms),
                &tag.body,
                tag.offset,
            );
            w.spool_len = end;
        }
    }

    /// Fails only if the spool does not even hold a valid FLV header.
    pub fn finish(self) -> Result<Recovered, FlvError> {
        if self.reader.header().is_none() {
            return Err(self
                .stopped_by
                .unwrap_or(FlvError::TruncatedHeader { len: self.fed }));
        }
        let header_end = self.reader.position().min(self.fed);
        let writer = self.writer.unwrap_or(FlvFileWriter {
            base_dts_ms: 0,
            spool_len: header_end,
            tags_start: header_end,
            meta_capacity: 0,
            stats: Stats::default(),
        });
        let valid_len = writer.spool_len;
        Ok(Recovered {
            writer,
            valid_len,
            torn_bytes: self.fed.saturating_sub(valid_len),
            stopped_by: self.stopped_by,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FlvReader;
    use proptest::prelude::*;

    fn avc_sh() -> Bytes {
        // avcC of the 640x360 fixture, behind the 5-byte AVC sequence header tag header.
        let mut b = vec![0x17, 0, 0, 0, 0];
        b.extend_from_slice(&[
            0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x25, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9,
            0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03,
            0x00, 0x3c, 0xe0, 0x60, 0x00, 0xf4, 0x24, 0x00, 0x1e, 0x84, 0xe6, 0xa3, 0x00, 0x78,
            0xb1, 0x6c, 0xb0, 0x01, 0x00, 0x04, 0x68, 0xef, 0xbc, 0xb0, 0xfd, 0xf8, 0xf8, 0x00,
        ]);
        Bytes::from(b)
    }

    fn aac_sh() -> Bytes {
        Bytes::from_static(&[0xaf, 0, 0x11, 0x90])
    }

    fn video(dts: u64, key: bool) -> MediaFrame {
        let b0 = if key { 0x17 } else { 0x27 };
        MediaFrame::new(
            MediaKind::Video,
            dts,
            Bytes::from(vec![b0, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]),
        )
    }

    fn audio(dts: u64) -> MediaFrame {
        MediaFrame::new(MediaKind::Audio, dts, Bytes::from_static(&[0xaf, 1, 0x21]))
    }

    fn tags(file: &[u8]) -> Vec<FlvTag> {
        let mut r = FlvReader::new();
        r.feed(file);
        std::iter::from_fn(|| r.next_tag())
            .map(Result::unwrap)
            .collect()
    }

    fn onmeta(file: &[u8]) -> Amf0Value {
        let t = &tags(file)[0];
        assert_eq!(t.tag_type, 18);
        Amf0Value::decode_all_lenient(&t.body).unwrap().remove(1)
    }

    /// A small recording: frames every 40 ms from `base`, keyframe every 25 frames.
    fn record(base: u64, n: u64) -> (FlvFileWriter, Vec<u8>) {
        let mut out = Vec::<u8>::new();
        let mut w = FlvFileWriter::start(base, None, Some(&avc_sh()), Some(&aac_sh()), 0, &mut out)
            .unwrap();
        for i in 0..n {
            w.push(&video(base + i * 40, i % 25 == 0), &mut out)
                .unwrap();
            w.push(&audio(base + i * 40 + 5), &mut out).unwrap();
        }
        assert_eq!(w.spool_len(), out.len() as u64);
        (w, out)
    }

    fn finalize(w: &FlvFileWriter, spool: &[u8]) -> Vec<u8> {
        let p = w.finalize_plan();
        let mut f = p.prefix.to_vec();
        f.extend_from_slice(&spool[p.copy_from as usize..(p.copy_from + p.copy_len) as usize]);
        assert_eq!(f.len() as u64, p.final_len);
        f
    }

    /// `metadata_reserve(n)` holds the final metadata (every field present) of a file with
    /// `n` indexed keyframes, so such a file is finalized in place; with recovery too, which
    /// learns the room from the spool's metadata tag.
    #[test]
    fn reserved_room_fits_n_keyframes_and_survives_recovery() {
        for n in [0usize, 1, 50, 4096] {
            let mut out = Vec::<u8>::new();
            let mut w = FlvFileWriter::start(
                0,
                None,
                Some(&avc_sh()),
                Some(&aac_sh()),
                metadata_reserve(n),
                &mut out,
            )
            .unwrap();
            // n keyframes besides the sequence header, which the index also lists.
            for i in 0..n.saturating_sub(1) as u64 {
                w.push(&video(i * 40, true), &mut out).unwrap();
                w.push(&audio(i * 40 + 5), &mut out).unwrap();
            }
            let plan = w.finalize_plan();
            assert!(plan.in_place(), "{n} keyframes");
            let mut in_place = out.clone();
            in_place[..plan.prefix.len()].copy_from_slice(&plan.prefix);
            assert_eq!(in_place, finalize(&w, &out));
            let mut rec = FlvFileWriter::recover();
            rec.feed(&in_place);
            let again = rec.finish().unwrap().writer.finalize_plan();
            assert!(again.in_place());
            assert_eq!(again.prefix, plan.prefix, "recovery rewrites the same head");
        }
    }

    /// A spool with codec headers only has no media: recovery must not catalogue it.
    #[test]
    fn header_only_spool_counts_no_media_frames() {
        let mut out = Vec::<u8>::new();
        let mut w =
            FlvFileWriter::start(0, None, Some(&avc_sh()), Some(&aac_sh()), 0, &mut out).unwrap();
        assert_eq!(w.finalize_plan().media_frames, 0);
        let mut rec = FlvFileWriter::recover();
        rec.feed(&out);
        assert_eq!(rec.finish().unwrap().writer.finalize_plan().media_frames, 0);
        w.push(&video(0, true), &mut out).unwrap();
        w.push(&audio(5), &mut out).unwrap();
        assert_eq!(w.finalize_plan().media_frames, 2);
    }

    #[test]
    fn rebases_to_zero() {
        let (_, spool) = record(5000, 3);
        let t = tags(&spool);
        // onMetaData stub, two sequence headers, then 0/5, 40/45, 80/85.
        let ts: Vec<u32> = t.iter().map(|t| t.timestamp_ms).collect();
        assert_eq!(ts, [0, 0, 0, 0, 5, 40, 45, 80, 85]);
        // A frame from before the base is clamped, not wrapped.
        let mut out = Vec::<u8>::new();
        let mut w = FlvFileWriter::start(5000, None, None, None, 0, &mut out).unwrap();
        w.push(&audio(4990), &mut out).unwrap();
        assert_eq!(tags(&out).last().unwrap().timestamp_ms, 0);
    }

    #[test]
    fn spool_stub_metadata_describes_codecs() {
        let (_, spool) = record(0, 1);
        let m = onmeta(&spool);
        assert_eq!(m.get("width").and_then(Amf0Value::as_number), Some(640.0));
        assert_eq!(m.get("height").and_then(Amf0Value::as_number), Some(360.0));
        assert_eq!(
            m.get("audiosamplerate").and_then(Amf0Value::as_number),
            Some(48000.0)
        );
        assert_eq!(
            m.get("videocodecid").and_then(Amf0Value::as_number),
            Some(7.0)
        );
        assert_eq!(m.get("duration"), None);
        assert_eq!(spool[4], 5, "spool header announces audio and video");
    }

    #[test]
    fn final_file_index_points_at_keyframes() {
        let (w, spool) = record(1000, 100);
        let f = finalize(&w, &spool);
        let m = onmeta(&f);
        let num = |k| m.get(k).and_then(Amf0Value::as_number).unwrap();
        assert_eq!(num("filesize"), f.len() as f64);
        // Last video at 3960 + 40 ms frame; last audio 3965 (+21 ms AAC frame).
        assert_eq!(num("duration"), 4.0);
        assert_eq!(num("framerate"), 25.0);
        let kf = m.get("keyframes").unwrap();
        let pos = kf
            .get("filepositions")
            .and_then(Amf0Value::as_array)
            .unwrap();
        let times = kf.get("times").and_then(Amf0Value::as_array).unwrap();
        // Sequence header + keyframes at 0, 1, 2, 3 s.
        assert_eq!(pos.len(), 5);
        let all = tags(&f);
        let secs: Vec<f64> = times.iter().filter_map(Amf0Value::as_number).collect();
        assert_eq!(secs, [0.0, 0.0, 1.0, 2.0, 3.0]);
        for (p, t) in pos.iter().zip(&secs) {
            let p = p.as_number().unwrap() as u64;
            let tag = all
                .iter()
                .find(|t| t.offset == p)
                .expect("index hits a tag");
            assert_eq!(tag.body[0], 0x17);
            assert_eq!(f64::from(tag.timestamp_ms) / 1000.0, *t);
        }
        // The copied tags are the spool's, byte for byte.
        assert_eq!(all.len(), tags(&spool).len());
    }

    #[test]
    fn publisher_metadata_is_unwrapped_and_kept() {
        let mut meta = Vec::new();
        Amf0Value::String("@setDataFrame".into()).encode(&mut meta);
        Amf0Value::String("onMetaData".into()).encode(&mut meta);
        Amf0Value::EcmaArray(vec![("framerate".into(), Amf0Value::Number(29.97))])
            .encode(&mut meta);
        let meta = Bytes::from(meta);
        let mut out = Vec::<u8>::new();
        let mut w =
            FlvFileWriter::start(0, Some(&meta), Some(&avc_sh()), None, 0, &mut out).unwrap();
        assert_eq!(&tags(&out)[0].body[..], &meta[16..]);
        // A mid-stream @setDataFrame is absorbed, not written.
        let before = w.spool_len();
        w.push(
            &MediaFrame::new(MediaKind::Script, 10, meta.clone()),
            &mut out,
        )
        .unwrap();
        assert_eq!(w.spool_len(), before);
        let f = finalize(&w, &out);
        let m = onmeta(&f);
        assert_eq!(
            m.get("framerate").and_then(Amf0Value::as_number),
            Some(29.97)
        );
        assert_eq!(m.get("hasAudio"), Some(&Amf0Value::Boolean(false)));
        assert_eq!(f[4], 1, "final header: video only");
    }

    #[test]
    fn recovery_matches_writer_and_cuts_torn_tail() {
        let (w, spool) = record(0, 60);
        let complete = tags(&spool);
        for cut in [spool.len(), spool.len() - 1, spool.len() - 20, 500, 200] {
            let mut r = Recovery::new();
            for chunk in spool[..cut].chunks(77) {
                r.feed(chunk);
            }
            let rec = r.finish().unwrap();
            let expect = complete
                .iter()
                .map(FlvTag::end_offset)
                .filter(|&e| e <= cut as u64)
                .max()
                .unwrap_or(13);
            assert_eq!(rec.valid_len, expect, "cut {cut}");
            assert_eq!(rec.torn_bytes, cut as u64 - expect);
            assert!(rec.stopped_by.is_none());
            if cut == spool.len() {
                assert_eq!(rec.writer.finalize_plan(), w.finalize_plan());
            }
        }
    }

    #[test]
    fn recovery_of_header_only_and_garbage() {
        let (_, spool) = record(0, 1);
        let mut r = Recovery::new();
        r.feed(&spool[..13]);
        let rec = r.finish().unwrap();
        assert_eq!(rec.valid_len, 13);
        assert_eq!(rec.writer.finalize_plan().copy_len, 0);
        let mut r = Recovery::new();
        r.feed(&spool[..7]);
        assert_eq!(
            r.finish().unwrap_err(),
            FlvError::TruncatedHeader { len: 7 }
        );
        let mut r = Recovery::new();
        r.feed(b"not an flv");
        assert_eq!(r.finish().unwrap_err(), FlvError::BadSignature);
    }

    #[test]
    fn recovery_stops_at_corruption() {
        let (_, mut spool) = record(0, 10);
        let t = tags(&spool);
        // Tag 5's PreviousTagSize no longer matches its DataSize.
        spool[t[5].end_offset() as usize - 1] ^= 0xff;
        let mut r = Recovery::new();
        r.feed(&spool);
        let rec = r.finish().unwrap();
        assert_eq!(rec.valid_len, t[4].end_offset());
        assert!(rec.stopped_by.is_some());
    }

    #[test]
    fn keyframe_index_is_thinned_past_the_cap() {
        let mut s = Stats::default();
        let n = MAX_INDEXED_KEYFRAMES as u64 * 2 + 10;
        for i in 0..n {
            s.index_keyframe(i, i);
        }
        assert!(s.keyframes.len() <= MAX_INDEXED_KEYFRAMES);
        assert!(s.keyframes.len() > MAX_INDEXED_KEYFRAMES / 2);
        assert!(
            s.keyframes
                .windows(2)
                .all(|w| w[1].0 - w[0].0 == s.keyframe_stride)
        );
        assert_eq!(s.keyframes[0].0, 0);
    }

    proptest! {
        #[test]
        fn recovery_never_panics(g in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..2000) {
            let (_, spool) = record(0, 20);
            let mut b = spool[..cut.min(spool.len())].to_vec();
            b.extend_from_slice(&g);
            let mut r = Recovery::new();
            r.feed(&b);
            if let Ok(rec) = r.finish() {
                prop_assert!(rec.valid_len <= b.len() as u64);
                let p = rec.writer.finalize_plan();
                prop_assert_eq!(p.copy_from + p.copy_len, rec.valid_len);
            }
        }
    }
}
