//! The frame model that flows from ingest through the stream hub to every recorder.
//!
//! A frame is an FLV *tag body* (exactly what an RTMP audio/video/data message carries) plus its
//! decode timestamp. Keeping the wire bytes as-is means ingest → hub → FLV recorder is zero-copy,
//! and other muxers take zero-copy `Bytes` slices of the codec payload ([`VideoTag::header_len`]).
//!
//! Everything here is pure: no IO, no clock.

pub mod aac;
pub mod amf0;
pub mod av1;
pub mod avc;
pub mod hevc;
mod tag;

pub use tag::{AudioCodec, AudioPacket, AudioTag, VideoCodec, VideoPacket, VideoTag};

use bytes::Bytes;

/// The kind of a frame, numbered as FLV tag types (and RTMP message type ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio = 8,
    Video = 9,
    /// AMF0 script data, e.g. `onMetaData`.
    Script = 18,
}

impl MediaKind {
    /// FLV tag type / RTMP message type id.
    pub fn tag_type(self) -> u8 {
        self as u8
    }

    pub fn from_tag_type(t: u8) -> Option<Self> {
        match t {
            8 => Some(Self::Audio),
            9 => Some(Self::Video),
            18 => Some(Self::Script),
            _ => None,
        }
    }
}

/// One media frame: an FLV tag body with its decode timestamp in milliseconds.
///
/// `dts_ms` is monotonic-unwrapped by ingest (RTMP carries 32-bit timestamps that wrap after
/// ~49.7 days), so recorders never see a wrap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaFrame {
    pub kind: MediaKind,
    pub dts_ms: u64,
    pub payload: Bytes,
}

impl MediaFrame {
    pub fn new(kind: MediaKind, dts_ms: u64, payload: Bytes) -> Self {
        Self {
            kind,
            dts_ms,
            payload,
        }
    }

    /// Parses the video tag header; `None` for non-video frames.
    pub fn video(&self) -> Option<Result<VideoTag, MediaError>> {
        (self.kind == MediaKind::Video).then(|| VideoTag::parse(&self.payload))
    }

    /// Parses the audio tag header; `None` for non-audio frames.
    pub fn audio(&self) -> Option<Result<AudioTag, MediaError>> {
        (self.kind == MediaKind::Audio).then(|| AudioTag::parse(&self.payload))
    }

    /// True for a video frame that starts a GOP (a random access point), the only place a
    /// recording may be split. Sequence headers are not keyframes.
    pub fn is_video_keyframe(&self) -> bool {
        matches!(self.video(), Some(Ok(v)) if v.keyframe && v.packet == VideoPacket::Frame)
    }
}

/// Errors from parsing tag headers and codec configuration records.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MediaError {
    #[error("{what}: truncated ({len} bytes, need {need})")]
    Truncated {
        what: &'static str,
        len: usize,
        need: usize,
    },
    #[error("{what}: {reason}")]
    Invalid {
        what: &'static str,
        reason: &'static str,
    },
}

pub(crate) fn need(what: &'static str, buf: &[u8], need: usize) -> Result<(), MediaError> {
    if buf.len() < need {
        Err(MediaError::Truncated {
            what,
            len: buf.len(),
            need,
        })
    } else {
        Ok(())
    }
}
