//! The per-stream feed: header cache, GOP cache + fan-out ring, viewer cursors.

use crate::{ARENA_CHUNK, DEFAULT_MAX_BUFFER_BYTES, DEFAULT_MAX_LAG_MS};
use bytes::{Bytes, BytesMut};
use livetape_flv::{
    FILE_HEADER_LEN, MAX_TAG_DATA_SIZE, PREV_TAG_SIZE_LEN, TAG_HEADER_LEN, file_header, tag_header,
};
use livetape_media::av1::Av1Config;
use livetape_media::avc::AvcConfig;
use livetape_media::hevc::HevcConfig;
use livetape_media::{
    AudioCodec, AudioPacket, AudioTag, MediaFrame, MediaKind, VideoCodec, VideoPacket, VideoTag,
};
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedConfig {
    /// Keep the frames since the last keyframe so a new viewer starts at once (else it waits
    /// for the next keyframe). With it off and no viewer, [`Feed::push`] copies nothing.
    pub gop_cache: bool,
    /// A viewer further behind than this (media time, newest frame − its next frame) loses
    /// the frames in between and resumes at the newest keyframe. The current GOP is never
    /// dropped for lag, so the effective bound is max(this, one GOP).
    pub max_lag_ms: u64,
    /// Hard cap of the ring per stream, GOP cache included.
    pub max_buffer_bytes: usize,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            gop_cache: true,
            max_lag_ms: DEFAULT_MAX_LAG_MS,
            max_buffer_bytes: DEFAULT_MAX_BUFFER_BYTES,
        }
    }
}

pub type ViewerId = u64;

/// What the sequence headers say about a stream (for listings).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamInfo {
    pub video_codec: Option<&'static str>,
    pub audio_codec: Option<&'static str>,
    pub width: u32,
    pub height: u32,
    /// Hz: the AAC AudioSpecificConfig's, else the legacy FLV rate bits (0: unknown).
    pub sample_rate: u32,
    /// What `onMetaData` declares (`videodatarate`, `audiodatarate`, `framerate`).
    pub declared: livetape_flv::DeclaredRates,
}

/// One frame in the ring, stored as a complete FLV tag (header, body, PreviousTagSize).
#[derive(Debug)]
struct Entry {
    seq: u64,
    dts_ms: u64,
    kind: MediaKind,
    /// A place a viewer may start: a video keyframe, or any audio frame of an audio-only stream.
    key: bool,
    tag: Bytes,
}

impl Entry {
    fn body(&self) -> Bytes {
        self.tag
            .slice(TAG_HEADER_LEN..self.tag.len().saturating_sub(PREV_TAG_SIZE_LEN))
    }
}

/// Latest `onMetaData`, video and audio sequence headers (tag bodies, copied).
#[derive(Debug, Default)]
struct Headers {
    metadata: Option<Bytes>,
    video: Option<Bytes>,
    audio: Option<Bytes>,
}

/// The media half of a feed, which moves between the publisher's private feed and the shared
/// one ([`Feed::hand_over`]).
#[derive(Debug, Default)]
struct Media {
    headers: Headers,
    ring: VecDeque<Entry>,
    ring_bytes: usize,
    /// Sequence number of the next appended entry; entries in the ring are contiguous.
    next_seq: u64,
    last_key: Option<u64>,
    newest_dts: u64,
    has_video: bool,
    arena: BytesMut,
    info: StreamInfo,
}

impl Media {
    fn base(&self) -> u64 {
        self.ring.front().map_or(self.next_seq, |e| e.seq)
    }

    fn get(&self, seq: u64) -> Option<&Entry> {
        let i = usize::try_from(seq.checked_sub(self.base())?).ok()?;
        self.ring.get(i)
    }

    /// Copies one FLV tag into the arena. A new chunk is allocated only when the current one
    /// is full and still referenced; once the ring has dropped a GOP, the chunk is reused.
    fn copy_tag(&mut self, kind: MediaKind, dts_ms: u64, body: &[u8], size: u32) -> Bytes {
        let total = body.len() + TAG_HEADER_LEN + PREV_TAG_SIZE_LEN;
        if self.arena.capacity() < total && !self.arena.try_reclaim(total) {
            self.arena = BytesMut::with_capacity(total.max(ARENA_CHUNK));
        }
        // FLV timestamps are 32-bit (24 + extension byte): they wrap like RTMP's.
        self.arena
            .extend_from_slice(&tag_header(kind, dts_ms as u32, size));
        self.arena.extend_from_slice(body);
        self.arena
            .extend_from_slice(&(size + TAG_HEADER_LEN as u32).to_be_bytes());
        self.arena.split().freeze()
    }

    fn video_header(&mut self, tag: VideoTag, payload: &[u8]) {
        let config = tag.data(payload);
        let dims = match tag.codec {
            VideoCodec::Avc => AvcConfig::parse(config).ok().map(|c| (c.width, c.height)),
            VideoCodec::Hevc => HevcConfig::parse(config).ok().map(|c| (c.width, c.height)),
            VideoCodec::Av1 => Av1Config::parse(config).ok().map(|c| (c.width, c.height)),
            VideoCodec::Other(_) => None,
        };
        self.info.video_codec = Some(tag.codec.name());
        if let Some((w, h)) = dims {
            self.info.width = w;
            self.info.height = h;
        }
    }
}

/// The sampling rate an audio tag tells (0: not from this tag). AAC's is in its
/// AudioSpecificConfig (the FLV rate bits always say 44.1 kHz for it); Opus decodes at 48 kHz;
/// a legacy tag's other codecs say it in the rate bits; other Enhanced RTMP codecs: unknown.
fn sample_rate(a: &AudioTag, payload: &[u8]) -> u32 {
    const LEGACY_RATES: [u32; 4] = [5512, 11025, 22050, 44100];
    /// SoundFormat 9 marks an Enhanced RTMP audio header.
    const EX_HEADER: u8 = 9;
    let Some(&b0) = payload.first() else {
        return 0;
    };
    match a.codec {
        AudioCodec::Aac if a.packet == AudioPacket::SequenceHeader => {
            livetape_media::aac::AacConfig::parse(a.data(payload)).map_or(0, |c| c.sample_rate)
        }
        AudioCodec::Aac => 0,
        AudioCodec::Opus => 48_000,
        _ if b0 >> 4 != EX_HEADER => LEGACY_RATES[usize::from((b0 >> 2) & 3)],
        _ => 0,
    }
}

#[derive(Debug)]
struct Viewer {
    id: ViewerId,
    /// The FLV file header (and metadata) went out.
    started: bool,
    /// Next sequence number to send; `None` = waiting for a keyframe (new, or skipped).
    cursor: Option<u64>,
    skips: u64,
}

/// What a read produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStatus {
    /// Output was appended.
    Data,
    /// Nothing yet: wait for the next push.
    Pending,
    /// The stream ended and this viewer has read everything.
    Ended,
    /// No such viewer.
    Gone,
}

/// One item handed to a reader: the start (headers) or a frame.
enum Item<'a> {
    Start {
        headers: &'a Headers,
        dts_ms: u64,
        first: bool,
        has_video: bool,
        has_audio: bool,
    },
    Frame(&'a Entry),
}

/// A live stream's feed: see the crate docs.
#[derive(Debug)]
pub struct Feed {
    cfg: FeedConfig,
    media: Media,
    viewers: Vec<Viewer>,
    next_viewer: ViewerId,
    live: bool,
    ended: bool,
}

impl Feed {
    /// A feed fed directly by its publisher (readable at once).
    pub fn new(cfg: FeedConfig) -> Self {
        Self {
            cfg,
            media: Media::default(),
            viewers: Vec::new(),
            next_viewer: 0,
            live: true,
            ended: false,
        }
    }

    /// A feed that holds no media until [`Feed::hand_over`] gives it some: the shared side of
    /// a publisher that keeps its media private while nobody watches.
    pub fn new_detached(cfg: FeedConfig) -> Self {
        Self {
            live: false,
            ..Self::new(cfg)
        }
    }

    pub fn config(&self) -> FeedConfig {
        self.cfg
    }

    /// Feeds one frame. Returns true when the stream info (codecs, size) changed.
    ///
    /// A sequence header that is new or different is also appended to the ring (as a
    /// non-key entry): viewers already past their start get it in order, before the frames
    /// that need it — a video header arriving after audio (relays, mobile SDKs) or a
    /// resolution change mid-stream. New viewers get the current headers at their start.
    pub fn push(&mut self, frame: &MediaFrame) -> bool {
        let m = &mut self.media;
        let mut changed = false;
        let key = match frame.kind {
            MediaKind::Script => {
                if m.headers.metadata.as_ref() != Some(&frame.payload) {
                    m.headers.metadata = Some(Bytes::copy_from_slice(&frame.payload));
                    let declared = livetape_flv::declared_rates(&frame.payload);
                    if declared != m.info.declared {
                        m.info.declared = declared;
                        return true;
                    }
                }
                return false;
            }
            MediaKind::Video => match frame.video() {
                Some(Ok(v)) if v.track != 0 => false,
                Some(Ok(v)) if v.packet == VideoPacket::SequenceHeader => {
                    m.has_video = true;
                    if m.headers.video.as_ref() == Some(&frame.payload) {
                        return false;
                    }
                    m.headers.video = Some(Bytes::copy_from_slice(&frame.payload));
                    m.video_header(v, &frame.payload);
                    changed = true;
                    false
                }
                Some(Ok(v)) if v.packet == VideoPacket::Frame => {
                    m.has_video = true;
                    if m.info.video_codec.is_none() {
                        m.info.video_codec = Some(v.codec.name());
                        changed = true;
                    }
                    v.keyframe
                }
                _ => return false,
            },
            MediaKind::Audio => match frame.audio() {
                Some(Ok(a)) if a.track != 0 => false,
                Some(Ok(a)) => {
                    if m.info.audio_codec.is_none() {
                        m.info.audio_codec = Some(a.codec.name());
                        changed = true;
                    }
                    if m.info.sample_rate == 0 {
                        m.info.sample_rate = sample_rate(&a, &frame.payload);
                        changed |= m.info.sample_rate != 0;
                    }
                    match a.packet {
                        AudioPacket::SequenceHeader => {
                            if m.headers.audio.as_ref() == Some(&frame.payload) {
                                return changed;
                            }
                            m.headers.audio = Some(Bytes::copy_from_slice(&frame.payload));
                            false
                        }
                        AudioPacket::Frame => !m.has_video,
                        _ => false,
                    }
                }
                _ => return false,
            },
        };
        if self.cfg.gop_cache || !self.viewers.is_empty() {
            self.append(frame, key);
        }
        changed
    }

    fn append(&mut self, frame: &MediaFrame, key: bool) {
        let Some(size) = u32::try_from(frame.payload.len())
            .ok()
            .filter(|&s| s <= MAX_TAG_DATA_SIZE)
        else {
            return;
        };
        if key {
            // Drop what nobody needs *before* copying, so the arena chunk can be reused.
            self.media.last_key = Some(self.media.next_seq);
            self.trim();
        }
        let m = &mut self.media;
        let tag = m.copy_tag(frame.kind, frame.dts_ms, &frame.payload, size);
        m.ring_bytes += tag.len();
        m.ring.push_back(Entry {
            seq: m.next_seq,
            dts_ms: frame.dts_ms,
            kind: frame.kind,
            key,
            tag,
        });
        m.next_seq += 1;
        m.newest_dts = m.newest_dts.max(frame.dts_ms);
        self.trim();
    }

    /// Evicts from the front what neither the GOP cache nor a viewer within its lag bound
    /// needs; the byte cap evicts regardless.
    fn trim(&mut self) {
        let min_cursor = self
            .viewers
            .iter()
            .filter_map(|v| v.cursor)
            .min()
            .unwrap_or(u64::MAX);
        // A viewer waiting to start needs the newest GOP even without the cache.
        let keep_gop = self.cfg.gop_cache || self.viewers.iter().any(|v| v.cursor.is_none());
        let m = &mut self.media;
        while let Some(front) = m.ring.front() {
            let over_bytes = m.ring_bytes > self.cfg.max_buffer_bytes;
            let in_gop = keep_gop && m.last_key.is_some_and(|k| front.seq >= k);
            if in_gop && !over_bytes {
                break;
            }
            let wanted = front.seq >= min_cursor;
            let too_old = m.newest_dts.saturating_sub(front.dts_ms) > self.cfg.max_lag_ms;
            if wanted && !too_old && !over_bytes {
                break;
            }
            m.ring_bytes -= front.tag.len();
            m.ring.pop_front();
        }
    }

    /// Moves this feed's media (headers, GOP cache, arena) into `to`, which becomes readable;
    /// this one is left empty and unreadable. `to` keeps its viewers and their cursors.
    pub fn hand_over(&mut self, to: &mut Feed) {
        std::mem::swap(&mut self.media, &mut to.media);
        self.media = Media::default();
        self.live = false;
        to.live = true;
        to.trim();
    }

    /// The publisher is gone: viewers drain what is left, then get [`ReadStatus::Ended`].
    pub fn end(&mut self) {
        self.ended = true;
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn info(&self) -> &StreamInfo {
        &self.media.info
    }

    /// Bytes held by the ring (GOP cache and unread frames), framing included.
    pub fn buffered_bytes(&self) -> usize {
        self.media.ring_bytes
    }

    /// Frames held by the ring.
    pub fn buffered_frames(&self) -> usize {
        self.media.ring.len()
    }

    pub fn attach(&mut self) -> ViewerId {
        let id = self.next_viewer;
        self.next_viewer += 1;
        self.viewers.push(Viewer {
            id,
            started: false,
            cursor: None,
            skips: 0,
        });
        id
    }

    /// Returns whether the viewer existed.
    pub fn detach(&mut self, id: ViewerId) -> bool {
        let before = self.viewers.len();
        self.viewers.retain(|v| v.id != id);
        before != self.viewers.len()
    }

    pub fn viewer_count(&self) -> usize {
        self.viewers.len()
    }

    /// How many times a viewer lagged too far and skipped ahead to a keyframe.
    pub fn skips(&self, id: ViewerId) -> Option<u64> {
        self.viewers.iter().find(|v| v.id == id).map(|v| v.skips)
    }

    /// HTTP-FLV bytes for a viewer: on its first read the FLV header, metadata and sequence
    /// headers, then whole tags from its cursor (about `max_bytes` per call). Every chunk but
    /// the first is a shared slice of the ring.
    pub fn read_flv(&mut self, id: ViewerId, out: &mut Vec<Bytes>, max_bytes: usize) -> ReadStatus {
        self.read_with(id, max_bytes, |item| match item {
            Item::Start {
                headers,
                dts_ms,
                first,
                has_video,
                has_audio,
            } => out.push(start_bytes(headers, dts_ms, first, has_video, has_audio)),
            Item::Frame(e) => out.push(e.tag.clone()),
        })
    }

    /// The same stream as frames (sequence headers first), for muxers such as live HLS.
    pub fn read_frames(
        &mut self,
        id: ViewerId,
        out: &mut Vec<MediaFrame>,
        max_bytes: usize,
    ) -> ReadStatus {
        self.read_with(id, max_bytes, |item| match item {
            Item::Start {
                headers, dts_ms, ..
            } => {
                for (kind, h) in [
                    (MediaKind::Video, &headers.video),
                    (MediaKind::Audio, &headers.audio),
                ] {
                    if let Some(h) = h {
                        out.push(MediaFrame::new(kind, dts_ms, h.clone()));
                    }
                }
            }
            Item::Frame(e) => out.push(MediaFrame::new(e.kind, e.dts_ms, e.body())),
        })
    }

    fn read_with(
        &mut self,
        id: ViewerId,
        max_bytes: usize,
        mut emit: impl FnMut(Item<'_>),
    ) -> ReadStatus {
        let Some(v) = self.viewers.iter_mut().find(|v| v.id == id) else {
            return ReadStatus::Gone;
        };
        let idle = if self.ended {
            ReadStatus::Ended
        } else {
            ReadStatus::Pending
        };
        if !self.live {
            return idle;
        }
        let m = &self.media;
        let base = m.base();
        if v.cursor.is_some_and(|c| c < base) {
            // Lagged past what the ring keeps: drop, resume at the newest keyframe.
            v.cursor = None;
            v.skips += 1;
        }
        let mut produced = false;
        let mut cursor = match v.cursor {
            Some(c) => c,
            None => {
                let Some(start) = m.last_key.and_then(|k| m.get(k)).filter(|e| e.key) else {
                    return idle;
                };
                emit(Item::Start {
                    headers: &m.headers,
                    dts_ms: start.dts_ms,
                    first: !v.started,
                    has_video: m.info.video_codec.is_some(),
                    has_audio: m.info.audio_codec.is_some(),
                });
                v.started = true;
                produced = true;
                start.seq
            }
        };
        let skip = usize::try_from(cursor.saturating_sub(base)).unwrap_or(usize::MAX);
        let mut bytes = 0;
        for e in m.ring.iter().skip(skip) {
            if bytes >= max_bytes {
                break;
            }
            bytes += e.tag.len();
            emit(Item::Frame(e));
            cursor = e.seq + 1;
            produced = true;
        }
        v.cursor = Some(cursor);
        if produced { ReadStatus::Data } else { idle }
    }
}

/// FLV file header and `onMetaData` (first start only), then the sequence headers stamped
/// with the first frame's time.
fn start_bytes(h: &Headers, dts_ms: u64, first: bool, video: bool, audio: bool) -> Bytes {
    let len = |b: &Option<Bytes>| b.as_ref().map_or(0, |b| b.len() + 15);
    let mut out =
        BytesMut::with_capacity(FILE_HEADER_LEN + len(&h.metadata) + len(&h.video) + len(&h.audio));
    if first {
        // Players (flv.js/mpegts.js) wait for every track the header announces.
        let (a, v) = if audio || video {
            (audio, video)
        } else {
            (true, true)
        };
        out.extend_from_slice(&file_header(a, v));
        put_tag(&mut out, MediaKind::Script, 0, &h.metadata);
    }
    put_tag(&mut out, MediaKind::Video, dts_ms, &h.video);
    put_tag(&mut out, MediaKind::Audio, dts_ms, &h.audio);
    out.freeze()
}

fn put_tag(out: &mut BytesMut, kind: MediaKind, ts: u64, body: &Option<Bytes>) {
    if let Some(b) = body
        && let Ok(size) = u32::try_from(b.len())
        && size <= MAX_TAG_DATA_SIZE
    {
        out.extend_from_slice(&tag_header(kind, ts as u32, size));
        out.extend_from_slice(b);
        out.extend_from_slice(&(size + TAG_HEADER_LEN as u32).to_be_bytes());
    }
}
