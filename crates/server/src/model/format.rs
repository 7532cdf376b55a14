//! The recording formats and their names on the wire, on disk and in URLs.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Flv,
    Mp4,
    /// Audio-only recording: AAC in an MP4 container (`.m4a`), which every browser plays
    /// (raw ADTS `.aac` does not seek in most of them).
    Aac,
    /// MPEG-TS segments and a VOD playlist; one recording per push session (or resume
    /// window), never split by `interval_s`.
    Hls,
}

impl Format {
    pub const ALL: [Format; 4] = [Self::Flv, Self::Mp4, Self::Hls, Self::Aac];
    /// What templates may list (Tencent's `FlvParam`/`Mp4Param`/`HlsParam`/`AacParam`).
    pub const NAMES: [&'static str; 4] = ["flv", "mp4", "hls", "aac"];

    /// Tencent's `file_format`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flv => "flv",
            Self::Mp4 => "mp4",
            Self::Aac => "aac",
            Self::Hls => "hls",
        }
    }

    /// File extension of the finished file (a directory for HLS).
    pub fn ext(self) -> &'static str {
        match self {
            Self::Flv => "flv",
            Self::Mp4 => "mp4",
            Self::Aac => "m4a",
            Self::Hls => "hls",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "flv" => Some(Self::Flv),
            "mp4" => Some(Self::Mp4),
            "aac" => Some(Self::Aac),
            "hls" => Some(Self::Hls),
            _ => None,
        }
    }

    /// Last path segment of the playback URL (`/vod/{file_id}/{name}`), Tencent style.
    pub fn url_name(self) -> String {
        match self {
            Self::Hls => "playlist.m3u8".into(),
            _ => format!("f0.{}", self.ext()),
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Self::Flv => "video/x-flv",
            Self::Mp4 => "video/mp4",
            Self::Aac => "audio/mp4",
            Self::Hls => "application/vnd.apple.mpegurl",
        }
    }
}

impl Format {
    /// Tencent's numeric `file_format` in event 332's `record_detail`.
    pub fn tencent_code(self) -> i32 {
        match self {
            Self::Flv => 1,
            Self::Mp4 => 3,
            Self::Hls => 2,
            Self::Aac => 4,
        }
    }
}
