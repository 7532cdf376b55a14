//! Sans-IO FLV for livetape: tag framing, the crash-safe recording spool writer with a seekable
//! finalisation plan, a push-style reader and spool recovery.
//!
//! RTMP audio/video/data message payloads are FLV tag bodies, so writing a tag is an 11-byte
//! header, the payload (`Bytes`, zero-copy) and a 4-byte PreviousTagSize.
//!
//! Recording flow (the driver owns all IO):
//! 1. [`FlvFileWriter::start`] + [`FlvFileWriter::push`] emit byte pieces the driver appends to
//!    the spool `X.flv.part`; the spool is a playable FLV after every complete tag.
//! 2. [`FlvFileWriter::finalize_plan`] gives the final file's prefix (header + a new
//!    `onMetaData` with duration and a keyframe index) and the spool byte range to copy after it.
//! 3. After a crash, [`Recovery`] rebuilds the writer state from the spool bytes and reports the
//!    length to truncate the torn tail to.

pub mod amf0;
pub mod build;
mod reader;
mod writer;

pub use reader::{FlvHeader, FlvReader, FlvTag};
pub use writer::{
    FinalizePlan, FlvFileWriter, MAX_INDEXED_KEYFRAMES, Recovered, Recovery, metadata_reserve,
};

use bytes::{Bytes, BytesMut};
use livetape_media::MediaKind;

/// FLV file header (9 bytes) plus PreviousTagSize0.
pub const FILE_HEADER_LEN: usize = 13;
pub const TAG_HEADER_LEN: usize = 11;
pub const PREV_TAG_SIZE_LEN: usize = 4;
const _: () = assert!(FILE_HEADER_LEN == 9 + PREV_TAG_SIZE_LEN);
/// The tag DataSize field is 24 bits wide.
pub const MAX_TAG_DATA_SIZE: u32 = 0x00ff_ffff;
/// Largest FLV header DataOffset the reader accepts (the spec'd value is 9; a few writers pad).
pub const MAX_HEADER_DATA_OFFSET: u32 = 1024;

/// The single error type of this crate.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FlvError {
    #[error("not an FLV stream (bad signature)")]
    BadSignature,
    #[error("unsupported FLV version {0}")]
    UnsupportedVersion(u8),
    #[error("FLV header DataOffset {0} out of range")]
    BadDataOffset(u32),
    #[error("tag at offset {offset}: data size {size} exceeds limit {max}")]
    TagTooLarge { offset: u64, size: u32, max: u32 },
    #[error("tag at offset {offset}: PreviousTagSize {found}, expected {expected}")]
    PrevTagSizeMismatch {
        offset: u64,
        expected: u32,
        found: u32,
    },
    #[error("tag at offset {offset} is encrypted (filter bit set)")]
    Encrypted { offset: u64 },
    #[error("AMF0 at byte {offset}: {reason}")]
    Amf0 { reason: &'static str, offset: usize },
    #[error("FLV stream ended inside the file header ({len} bytes)")]
    TruncatedHeader { len: u64 },
}

/// The FLV file header with PreviousTagSize0 (always 0).
pub fn file_header(has_audio: bool, has_video: bool) -> [u8; FILE_HEADER_LEN] {
    let flags = (u8::from(has_audio) << 2) | u8::from(has_video);
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// An FLV tag header. `timestamp_ms` is split into the 24-bit field and the extension byte (its
/// upper 8 bits), as the spec requires. `data_len` must be at most [`MAX_TAG_DATA_SIZE`]; higher
/// bits are dropped (callers check with [`write_tag`]).
pub fn tag_header(kind: MediaKind, timestamp_ms: u32, data_len: u32) -> [u8; TAG_HEADER_LEN] {
    let l = data_len.to_be_bytes();
    let t = timestamp_ms.to_be_bytes();
    [
        kind.tag_type(),
        l[1],
        l[2],
        l[3],
        t[1],
        t[2],
        t[3],
        t[0],
        0,
        0,
        0,
    ]
}

/// Where the writer's output goes. Framing bytes arrive as small slices to copy; payloads arrive
/// as `Bytes` so a vectored-write driver can keep them zero-copy.
pub trait FlvSink {
    fn put_slice(&mut self, bytes: &[u8]);
    fn put_bytes(&mut self, bytes: Bytes);
}

/// Pieces for `write_vectored`: framing is copied into small `Bytes`, payloads are shared.
impl FlvSink for Vec<Bytes> {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.push(Bytes::copy_from_slice(bytes));
    }
    fn put_bytes(&mut self, bytes: Bytes) {
        self.push(bytes);
    }
}

/// A contiguous buffer (HTTP-FLV chunks, tests).
impl FlvSink for BytesMut {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    fn put_bytes(&mut self, bytes: Bytes) {
        self.extend_from_slice(&bytes);
    }
}

impl FlvSink for Vec<u8> {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    fn put_bytes(&mut self, bytes: Bytes) {
        self.extend_from_slice(&bytes);
    }
}

/// Writes one complete tag (header, body, PreviousTagSize) and returns the bytes written.
/// `offset` is only used to give an error context.
pub fn write_tag<S: FlvSink + ?Sized>(
    out: &mut S,
    kind: MediaKind,
    timestamp_ms: u32,
    body: &Bytes,
    offset: u64,
) -> Result<u64, FlvError> {
    let size = u32::try_from(body.len())
        .ok()
        .filter(|&s| s <= MAX_TAG_DATA_SIZE)
        .ok_or(FlvError::TagTooLarge {
            offset,
            size: u32::try_from(body.len()).unwrap_or(u32::MAX),
            max: MAX_TAG_DATA_SIZE,
        })?;
    out.put_slice(&tag_header(kind, timestamp_ms, size));
    out.put_bytes(body.clone());
    out.put_slice(&(size + TAG_HEADER_LEN as u32).to_be_bytes());
    Ok(tag_len(size))
}

/// Bytes a tag with `data_len` body bytes occupies, PreviousTagSize included.
pub(crate) fn tag_len(data_len: u32) -> u64 {
    u64::from(data_len) + (TAG_HEADER_LEN + PREV_TAG_SIZE_LEN) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_flags() {
        assert_eq!(file_header(true, true)[4], 5);
        assert_eq!(file_header(true, false)[4], 4);
        assert_eq!(file_header(false, true)[4], 1);
        assert_eq!(&file_header(false, false)[..3], b"FLV");
    }

    #[test]
    fn tag_header_extended_timestamp() {
        let h = tag_header(MediaKind::Video, 0x1234_5678, 0x00ab_cdef);
        assert_eq!(h, [9, 0xab, 0xcd, 0xef, 0x34, 0x56, 0x78, 0x12, 0, 0, 0]);
    }

    #[test]
    fn write_tag_frames_body() {
        let mut out = Vec::<u8>::new();
        let n = write_tag(
            &mut out,
            MediaKind::Audio,
            7,
            &Bytes::from_static(&[0xaf, 1, 2]),
            0,
        )
        .unwrap();
        assert_eq!(n, 18);
        assert_eq!(out.len(), 18);
        assert_eq!(&out[11..14], &[0xaf, 1, 2]);
        assert_eq!(&out[14..], &14u32.to_be_bytes());
    }

    #[test]
    fn write_tag_rejects_oversized_body() {
        let big = Bytes::from(vec![0u8; MAX_TAG_DATA_SIZE as usize + 1]);
        let mut out = Vec::<Bytes>::new();
        assert!(matches!(
            write_tag(&mut out, MediaKind::Video, 0, &big, 42),
            Err(FlvError::TagTooLarge { offset: 42, .. })
        ));
        assert!(out.is_empty());
    }
}

/// Which tracks a publisher's `onMetaData` declares (`None`: it does not say).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeclaredTracks {
    pub video: Option<bool>,
    pub audio: Option<bool>,
}

/// The properties object of an `onMetaData` body (`None`: malformed, or there is none).
fn metadata_object(body: &[u8]) -> Option<amf0::Amf0Value> {
    amf0::Amf0Value::decode_all_lenient(body)
        .ok()?
        .into_iter()
        .find(|v| {
            matches!(
                v,
                amf0::Amf0Value::Object(_) | amf0::Amf0Value::EcmaArray(_)
            )
        })
}

/// Reads the tracks an `onMetaData` body (the script tag body, `@setDataFrame` removed)
/// declares: `hasVideo`/`hasAudio` when present, else whether any per-track key
/// (`videocodecid`, `width`, … / `audiocodecid`, `audiosamplerate`, …) is. Encoders write the
/// keys of the tracks they send and only those (ffmpeg, OBS, GStreamer, mobile SDKs), so a
/// metadata object without any video key declares no video. Malformed metadata declares
/// nothing.
pub fn declared_tracks(body: &[u8]) -> DeclaredTracks {
    let Some(obj) = metadata_object(body) else {
        return DeclaredTracks::default();
    };
    let declared = |flag: &str, keys: &[&str]| match obj.get(flag) {
        Some(amf0::Amf0Value::Boolean(b)) => Some(*b),
        _ => Some(keys.iter().any(|k| obj.get(k).is_some())),
    };
    DeclaredTracks {
        video: declared(
            "hasVideo",
            &[
                "videocodecid",
                "width",
                "height",
                "videodatarate",
                "framerate",
            ],
        ),
        audio: declared(
            "hasAudio",
            &[
                "audiocodecid",
                "audiosamplerate",
                "audiodatarate",
                "stereo",
                "audiosamplesize",
            ],
        ),
    }
}

/// The rates an `onMetaData` body declares (what the encoder was set to, not what it sends):
/// `videodatarate`/`audiodatarate` (kbit/s) and `framerate`, each 0 when absent, not a
/// finite number, or malformed metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeclaredRates {
    pub video_kbps: u32,
    pub audio_kbps: u32,
    pub fps: u32,
}

pub fn declared_rates(body: &[u8]) -> DeclaredRates {
    let Some(obj) = metadata_object(body) else {
        return DeclaredRates::default();
    };
    // `as` saturates: NaN is 0, a huge or negative value is clamped.
    let num = |k: &str| match obj.get(k) {
        Some(amf0::Amf0Value::Number(n)) => n.round() as u32,
        _ => 0,
    };
    DeclaredRates {
        video_kbps: num("videodatarate"),
        audio_kbps: num("audiodatarate"),
        fps: num("framerate"),
    }
}

#[cfg(test)]
mod declared_tests {
    use super::amf0::Amf0Value;
    use super::*;

    fn meta(props: Vec<(&str, Amf0Value)>) -> Vec<u8> {
        let mut b = Vec::new();
        Amf0Value::String("onMetaData".into()).encode(&mut b);
        Amf0Value::EcmaArray(props.into_iter().map(|(k, v)| (k.into(), v)).collect())
            .encode(&mut b);
        b
    }

    #[test]
    fn tracks_from_keys_and_flags() {
        let av = meta(vec![
            ("videocodecid", Amf0Value::Number(7.0)),
            ("audiocodecid", Amf0Value::Number(10.0)),
        ]);
        let d = declared_tracks(&av);
        assert_eq!((d.video, d.audio), (Some(true), Some(true)));
        let audio_only = meta(vec![("audiocodecid", Amf0Value::Number(10.0))]);
        let d = declared_tracks(&audio_only);
        assert_eq!((d.video, d.audio), (Some(false), Some(true)));
        let flags = meta(vec![
            ("hasVideo", Amf0Value::Boolean(true)),
            ("hasAudio", Amf0Value::Boolean(false)),
            ("audiocodecid", Amf0Value::Number(10.0)),
        ]);
        let d = declared_tracks(&flags);
        assert_eq!((d.video, d.audio), (Some(true), Some(false)));
        assert_eq!(declared_tracks(b"\x02\x00"), DeclaredTracks::default());
    }

    #[test]
    fn rates_from_numbers_only() {
        let m = meta(vec![
            ("videodatarate", Amf0Value::Number(2500.4)),
            ("audiodatarate", Amf0Value::Number(f64::NAN)),
            ("framerate", Amf0Value::Number(29.97)),
        ]);
        let r = declared_rates(&m);
        assert_eq!((r.video_kbps, r.audio_kbps, r.fps), (2500, 0, 30));
        let strings = meta(vec![("framerate", Amf0Value::String("30".into()))]);
        assert_eq!(declared_rates(&strings), DeclaredRates::default());
        assert_eq!(declared_rates(&[0xff; 3]), DeclaredRates::default());
    }
}
