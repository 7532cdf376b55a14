//! Sans-IO live viewing for livetape: frames in, viewer bytes/frames and segments out.
//!
//! * [`Feed`]: one per live stream. Cached sequence headers and metadata, a ring of recent
//!   frames — the GOP cache (everything since the last keyframe) plus what attached viewers
//!   have not read yet — and one cursor per viewer. Frames are **copied** into a per-stream
//!   arena, already framed as FLV tags, so the ring never pins the ingest read buffer and every
//!   viewer sends the same shared `Bytes` (no per-viewer, per-frame work beyond a refcount).
//!   A viewer that falls more than [`FeedConfig::max_lag_ms`] behind (or whose frames were
//!   evicted by the byte cap) skips to the newest keyframe: slow viewers drop, never block.
//! * [`LiveHls`]: a sliding window of in-memory MPEG-TS segments built with `livetape-hls`.
//! * [`RateMeter`]: a ~5 s moving average of a stream's bitrate.
//!
//! With no viewer attached, [`Feed::push`] copies nothing unless the GOP cache is on, and
//! then only into the arena (no allocation per frame; the arena is reused once a GOP is
//! dropped at the next keyframe).

mod feed;
mod hls;
mod rate;

pub use feed::{Feed, FeedConfig, ReadStatus, StreamInfo, ViewerId};
pub use hls::{LiveHls, LiveSegment};
pub use rate::RateMeter;

/// Arena chunk size: frames are copied into chunks of this size (a larger frame gets its own).
pub const ARENA_CHUNK: usize = 256 * 1024;
/// Default for [`FeedConfig::max_lag_ms`].
pub const DEFAULT_MAX_LAG_MS: u64 = 4_000;
/// Default for [`FeedConfig::max_buffer_bytes`]: the ring's hard cap per stream.
pub const DEFAULT_MAX_BUFFER_BYTES: usize = 32 << 20;
/// Default live HLS target segment duration.
pub const DEFAULT_HLS_TARGET_MS: u64 = 2_000;
/// Default live HLS window length (segments in the playlist).
pub const DEFAULT_HLS_WINDOW: usize = 6;

/// The crate's error type.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A frame the live HLS muxer could not take (it is skipped; the window goes on).
    #[error("live hls: {0}")]
    Hls(#[from] livetape_hls::HlsError),
}
