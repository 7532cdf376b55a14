//! RTMP publisher for load tests and replays: pushes in-memory [`MediaFrame`]s (typically a whole
//! FLV file loaded once with [`load_flv`]) to an RTMP server, many streams from one process.
//!
//! All protocol work happens in the sans-IO [`livetape_rtmp::ClientSession`]; this crate only
//! moves bytes. One tokio task per publisher; frames are shared (`Arc<[MediaFrame]>`, payloads
//! are slices of one buffer) and written with `writev` straight from those slices.

mod conn;
mod url;

use bytes::Bytes;
use conn::Conn;
use livetape_flv::FlvReader;
use livetape_media::MediaFrame;
use livetape_rtmp::{ClientConfig, RtmpError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

pub use url::RtmpUrl;

/// After `finish()`, how long we keep reading for the server to close the connection. Closing
/// with unread bytes in our receive buffer would send a TCP RST, and a server that gets an RST
/// may discard data it had not read yet (the tail of our stream): ffmpeg has this bug.
pub const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// A publish fails if the socket makes no progress (nothing read or written) for this long.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Connect timeout used by [`run_many`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How fast frames are sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// Each frame is sent once wall time since the publish started reaches its dts.
    Realtime,
    /// As fast as the socket accepts.
    Fast,
    /// `Rate(k)`: `k` times real time (`Rate(1.0)` = [`Pace::Realtime`]).
    Rate(f64),
}

impl Pace {
    /// Wall-clock speed-up factor; `None` for unpaced.
    fn speed(self) -> Option<f64> {
        match self {
            Self::Realtime => Some(1.0),
            Self::Fast => None,
            Self::Rate(r) if r.is_finite() && r > 0.0 => Some(r),
            Self::Rate(_) => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PublishOptions {
    /// `rtmp://host[:port]/app/stream[?query]`.
    pub url: String,
    pub pace: Pace,
    /// How many times the frames are sent back to back (timestamps keep increasing); 0 sends
    /// nothing but still connects and publishes.
    pub loops: u32,
    /// Limit for TCP connect and, separately, for the RTMP handshake up to Publish.Start.
    pub connect_timeout: Duration,
    /// Stop after this much media (timestamps relative to the first frame): at the first pass
    /// start or video keyframe (any frame if there is no video) at or beyond the limit, so the
    /// cut falls on a GOP boundary. `loops` still caps the passes; `None` sends all of them.
    pub media_limit: Option<Duration>,
    /// How the publish ends once everything is sent.
    pub ending: Ending,
    /// `onMetaData` behind `@setDataFrame` (true, what OBS/ffmpeg send) or bare.
    pub set_data_frame: bool,
}

/// How a publish ends (publishers differ, and servers must take each).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ending {
    /// `FCUnpublish` + `deleteStream`, then close our side and drain until the server closes
    /// (what a well-behaved encoder does; no tail lost to a TCP reset).
    #[default]
    Unpublish,
    /// `FCUnpublish` + `deleteStream`, then keep the TCP connection open (reading) until the
    /// server closes it: the server must end the push on the commands alone.
    UnpublishKeepOpen,
    /// No unpublish command at all: close our side (the server sees end of stream).
    Close,
}

impl PublishOptions {
    /// Defaults for one push of `url`: real time, one pass, the default connect timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pace: Pace::Realtime,
            loops: 1,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            media_limit: None,
            ending: Ending::Unpublish,
            set_data_frame: true,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishStats {
    /// Bytes written to the socket, handshake included.
    pub bytes_sent: u64,
    pub frames_sent: u64,
    /// Of `frames_sent`, the coded video frames and audio frames, sequence headers not
    /// counted: what a recording of the publish must hold (ffprobe's packet counts).
    pub video_frames: u64,
    pub audio_frames: u64,
    /// Wall clock (ms since the Unix epoch) when the unpublish left this process: the reference
    /// for "stream end → callback" latencies.
    pub unpublished_unix_ms: u64,
    /// From Publish.Start until the server closed (or the drain grace ran out).
    pub duration: Duration,
    /// Bytes the server acknowledged (RTMP Acknowledgement messages).
    pub ack_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("invalid RTMP URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: &'static str },
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("socket error {during}: {source}")]
    Io {
        during: &'static str,
        source: std::io::Error,
    },
    #[error("server closed the connection {0}")]
    Closed(&'static str),
    #[error("RTMP protocol error: {0}")]
    Rtmp(#[from] RtmpError),
    #[error("publish rejected: {code} ({description})")]
    Rejected { code: String, description: String },
    #[error("reading {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Flv {
        path: PathBuf,
        source: livetape_flv::FlvError,
    },
}

/// Loads a whole FLV file into memory. The file is held in one buffer and every frame's payload
/// is a slice of it; tags of unknown types are skipped, a torn tail is ignored.
pub fn load_flv(path: impl AsRef<Path>) -> Result<Vec<MediaFrame>, PublishError> {
    let path = path.as_ref();
    let data = std::fs::read(path).map_err(|source| PublishError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let mut reader = FlvReader::new();
    reader.feed(&data);
    drop(data);
    let mut frames = Vec::new();
    while let Some(tag) = reader.next_tag() {
        let tag = tag.map_err(|source| PublishError::Flv {
            path: path.to_owned(),
            source,
        })?;
        frames.extend(tag.into_frame());
    }
    Ok(frames)
}

/// Publishes `frames` `opts.loops` times to `opts.url`, then unpublishes and waits (up to
/// [`DRAIN_GRACE`]) for the server to close.
pub async fn publish_frames(
    frames: Arc<[MediaFrame]>,
    opts: &PublishOptions,
) -> Result<PublishStats, PublishError> {
    let url = RtmpUrl::parse(&opts.url)?;
    let addr = format!("{}:{}", url.host, url.port);
    let stream = tokio::time::timeout(opts.connect_timeout, TcpStream::connect(&addr))
        .await
        .map_err(|_| PublishError::Timeout("connecting"))?
        .map_err(|source| PublishError::Connect {
            addr: addr.clone(),
            source,
        })?;
    // Frames are written as soon as they are due; Nagle would only add latency.
    stream
        .set_nodelay(true)
        .map_err(|source| PublishError::Io {
            during: "setting TCP_NODELAY",
            source,
        })?;
    let config = ClientConfig {
        app: url.app.clone(),
        tc_url: url.tc_url(),
        stream: url.stream.clone(),
        set_data_frame: opts.set_data_frame,
        ..ClientConfig::default()
    }
    .with_enhanced_rtmp();
    let mut conn = Conn::new(stream, config);

    let deadline = Instant::now() + opts.connect_timeout;
    loop {
        conn.step(Some(deadline), "negotiating").await?;
        if let Some(rejected) = conn.take_rejection() {
            conn.close_gracefully(DRAIN_GRACE).await;
            return Err(rejected);
        }
        if conn.session.is_publishing() {
            break;
        }
        if Instant::now() >= deadline {
            return Err(PublishError::Timeout("waiting for NetStream.Publish.Start"));
        }
    }

    let start = Instant::now();
    let sent = send_all(&mut conn, &frames, opts, start).await?;
    if opts.ending != Ending::Close {
        conn.session.finish()?;
    }
    conn.flush("sending FCUnpublish").await?;
    let unpublished_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    if opts.ending == Ending::UnpublishKeepOpen {
        conn.wait_for_close(STALL_TIMEOUT).await;
    }
    conn.close_gracefully(DRAIN_GRACE).await;
    Ok(PublishStats {
        bytes_sent: conn.written,
        frames_sent: sent.video + sent.audio + sent.other,
        video_frames: sent.video,
        audio_frames: sent.audio,
        unpublished_unix_ms,
        duration: start.elapsed(),
        ack_bytes: conn.session.acked_bytes(),
    })
}

/// Messages sent, by kind.
#[derive(Default)]
struct Sent {
    video: u64,
    audio: u64,
    other: u64,
}

async fn send_all(
    conn: &mut Conn,
    frames: &[MediaFrame],
    opts: &PublishOptions,
    start: Instant,
) -> Result<Sent, PublishError> {
    let mut sent = Sent::default();
    let Some(first) = frames.iter().map(|f| f.dts_ms).min() else {
        return Ok(sent);
    };
    let last = frames.iter().map(|f| f.dts_ms).max().unwrap_or(first);
    // Each loop continues one nominal frame interval after the previous loop's last frame.
    let video = frames
        .iter()
        .filter(|f| f.kind == livetape_media::MediaKind::Video)
        .count() as u64;
    let gap = if video > 1 {
        ((last - first) / (video - 1)).max(1)
    } else {
        40
    };
    let span = last - first + gap;
    let speed = opts.pace.speed();
    let limit_ms = opts
        .media_limit
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    for round in 0..u64::from(opts.loops) {
        let offset = round * span;
        for (i, f) in frames.iter().enumerate() {
            let rel = f.dts_ms - first + offset;
            if limit_ms.is_some_and(|l| rel >= l) && (i == 0 || video == 0 || f.is_video_keyframe())
            {
                return Ok(sent);
            }
            if let Some(speed) = speed {
                let due = start + Duration::from_secs_f64(rel as f64 / 1000.0 / speed);
                // Write what is queued and answer the server while waiting; no busy loop.
                while Instant::now() < due {
                    conn.step(Some(due), "publishing").await?;
                }
            }
            if !conn.session.is_publishing() {
                // The server revoked the publish (onStatus error) while we were sending.
                return Err(conn
                    .take_rejection()
                    .unwrap_or(PublishError::Closed("after revoking the publish")));
            }
            if offset == 0 {
                conn.session.send_frame(f)?;
            } else {
                let shifted = MediaFrame::new(f.kind, f.dts_ms + offset, Bytes::clone(&f.payload));
                conn.session.send_frame(&shifted)?;
            }
            match (f.video(), f.audio()) {
                (Some(Ok(v)), _)
                    if v.packet == livetape_media::VideoPacket::Frame && v.track == 0 =>
                {
                    sent.video += 1
                }
                (_, Some(Ok(a)))
                    if a.packet == livetape_media::AudioPacket::Frame && a.track == 0 =>
                {
                    sent.audio += 1
                }
                _ => sent.other += 1,
            }
            conn.backpressure().await?;
        }
    }
    Ok(sent)
}

/// Result of [`run_many`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub ok: usize,
    pub failed: usize,
    /// Bytes sent by the publishes that succeeded.
    pub bytes: u64,
    /// One line per failed publish: `stream <i>: <error>`.
    pub errors: Vec<String>,
}

/// Runs `n_streams` publishers concurrently, stream `i` to `url_template` with `{i}` replaced by
/// `i`, one pass each. Must be called inside a tokio runtime.
pub async fn run_many(
    frames: Arc<[MediaFrame]>,
    n_streams: usize,
    url_template: &str,
    pace: Pace,
) -> Summary {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n_streams {
        let opts = PublishOptions {
            pace,
            ..PublishOptions::new(url_template.replace("{i}", &i.to_string()))
        };
        let frames = Arc::clone(&frames);
        tasks.spawn(async move { (i, publish_frames(frames, &opts).await) });
    }
    let mut summary = Summary::default();
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, Ok(stats))) => {
                summary.ok += 1;
                summary.bytes += stats.bytes_sent;
            }
            Ok((i, Err(e))) => {
                summary.failed += 1;
                errors.push((i, format!("stream {i}: {e}")));
            }
            Err(e) => {
                summary.failed += 1;
                errors.push((usize::MAX, format!("publisher task failed: {e}")));
            }
        }
    }
    errors.sort();
    summary.errors = errors.into_iter().map(|(_, e)| e).collect();
    summary
}
